"""Fixtures for tests/layers/test_softmax.c: torch.softmax along an axis, and its gradient.

Each case writes x, y = softmax(x, axis), dy (random upstream gradient) and dx = dy^T dy/dx.
"""
import torch

from moka_fixture import write

CASES = {
    # name: (shape, axis)
    "2x7_axis1": ((2, 7), 1),
    "2x3x4x5_axis1": ((2, 3, 4, 5), 1),
    "2x3x4x5_axis2": ((2, 3, 4, 5), 2),
    "3x4x6_axisneg1": ((3, 4, 6), -1),
    "5x3_axis0": ((5, 3), 0),
}

torch.manual_seed(20240501)
for name, (shape, axis) in CASES.items():
    # Scale 4 spreads the logits so the probabilities are far from uniform.
    x = (torch.randn(*shape, dtype=torch.float64) * 4).requires_grad_()
    y = torch.softmax(x, dim=axis)
    dy = torch.randn(*shape, dtype=torch.float64)
    (dx,) = torch.autograd.grad(y, x, dy)
    write("softmax_" + name, {"x": x, "y": y, "dy": dy, "dx": dx})
