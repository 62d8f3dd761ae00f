"""Concat fixtures: torch.cat along an axis, gradients by autograd.

Cases (tests/layers/test_concat.c names the matching configs):
  concat_axis1   x0 (2,3,4), x1 (2,2,4), x2 (2,1,4) joined along axis 1
  concat_axisn1  x0 (3,2,2), x1 (3,2,5) joined along axis -1 (the last)
  concat_dim0    x0 (1,3,2), x1 (2,3,2) joined along the legacy concat_dim 0
"""
import torch

import moka_fixture


def case(name, shapes, axis, seed):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(s, generator=g, dtype=torch.float64).mul(2).sub(1).requires_grad_()
          for s in shapes]
    y = torch.cat(xs, dim=axis)
    dy = torch.rand(y.shape, generator=g, dtype=torch.float64).mul(2).sub(1)
    y.backward(dy)
    out = {}
    for i, x in enumerate(xs):
        out["x%d" % i] = x
    out["y"] = y
    out["dy"] = dy
    for i, x in enumerate(xs):
        out["dx%d" % i] = x.grad
    moka_fixture.write(name, out)


case("concat_axis1", [(2, 3, 4), (2, 2, 4), (2, 1, 4)], 1, 1)
case("concat_axisn1", [(3, 2, 2), (3, 2, 5)], -1, 2)
case("concat_dim0", [(1, 3, 2), (2, 3, 2)], 0, 3)
