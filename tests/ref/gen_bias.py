"""Fixtures for src/layers/bias.c: y = x + b, b broadcast over the axes it lacks."""
import torch

import moka_fixture

torch.manual_seed(22)


def case(name, xshape, bshape, view, b_is_bottom):
    x = torch.randn(*xshape)
    b = torch.randn(*bshape)
    dy = torch.randn(*xshape)
    xd = x.double().requires_grad_()
    bd = b.double().requires_grad_()
    y = xd + bd.view(*view)
    y.backward(dy.double())
    t = {"x": x, "dy": dy, "y": y, "dx": xd.grad}
    if b_is_bottom:
        t.update({"x1": b, "dx1": bd.grad})
    else:
        t.update({"w0": b, "dw0": bd.grad})
    moka_fixture.write("bias_" + name, t)


case("axis1", (2, 3, 4, 5), (3,), (1, 3, 1, 1), False)
case("scalar", (2, 3, 4, 5), (1,), (1, 1, 1, 1), False)           # num_axes 0
case("first2", (2, 3, 4, 5), (2, 3), (2, 3, 1, 1), False)         # axis 0, num_axes 2
case("bottom", (2, 3, 4, 5), (3, 4), (1, 3, 4, 1), True)          # bias as bottom[1], axis 1
