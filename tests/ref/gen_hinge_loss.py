"""Fixtures for tests/layers/test_hinge_loss.c: Caffe's HingeLoss computed from its definition.

t[n, k] = -1 for the labelled class, +1 otherwise; m = max(0, 1 + t * x);
loss = sum(m) / N (L1) or sum(m^2) / N (L2). dx is the gradient of loss_weight * loss.
The data are drawn so that no margin sits within 1e-3 of its kink at 0.
"""
import zlib

import torch

from moka_fixture import write


def case(name, shape, norm, weight):
    torch.manual_seed(zlib.crc32(name.encode()))
    N = shape[0]
    K = 1
    for d in shape[1:]:
        K *= d
    x = torch.randn(*shape, dtype=torch.float64) * 1.5
    label = torch.randint(0, K, (N,))
    t = torch.ones(N, K, dtype=torch.float64)
    t[torch.arange(N), label] = -1.0
    near = (1 + t * x.reshape(N, K)).abs() < 1e-3
    x.reshape(N, K)[near] += 0.01
    x.requires_grad_()
    m = torch.clamp(1 + t * x.reshape(N, K), min=0)
    loss = (m.sum() if norm == "L1" else (m * m).sum()) / N
    (dx,) = torch.autograd.grad(weight * loss, x)
    write("hinge_loss_" + name, {
        "x": x, "label": label.double(), "loss": loss.reshape(()),
        "weight": torch.tensor(weight, dtype=torch.float64).reshape(()), "dx": dx,
    })


case("6x5_l1", (6, 5), "L1", 1.0)
case("6x5_l2", (6, 5), "L2", 1.0)
case("3x2x2x2_l1", (3, 2, 2, 2), "L1", 2.0)
case("4x7_l2", (4, 7), "L2", 0.5)
