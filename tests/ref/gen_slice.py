"""Slice fixtures: torch.split along an axis, gradients by autograd.

Cases (tests/layers/test_slice.c names the matching configs):
  slice_points   x (2,6,3), slice_point 1 and 4 on axis 1: tops of 1, 3 and 2
  slice_equal    x (2,3,6), axis -1 split equally into 3 tops of 2
  slice_dim0     x (4,2,2), legacy slice_dim 0, slice_point 3: tops of 3 and 1
"""
import torch

import moka_fixture


def case(name, shape, sizes, axis, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64).mul(2).sub(1).requires_grad_()
    ys = torch.split(x, sizes, dim=axis)
    dys = [torch.rand(y.shape, generator=g, dtype=torch.float64).mul(2).sub(1) for y in ys]
    torch.autograd.backward(ys, dys)
    out = {"x": x}
    for i, y in enumerate(ys):
        out["y%d" % i] = y
    for i, dy in enumerate(dys):
        out["dy%d" % i] = dy
    out["dx"] = x.grad
    moka_fixture.write(name, out)


case("slice_points", (2, 6, 3), [1, 3, 2], 1, 11)
case("slice_equal", (2, 3, 6), [2, 2, 2], -1, 12)
case("slice_dim0", (4, 2, 2), [3, 1], 0, 13)
