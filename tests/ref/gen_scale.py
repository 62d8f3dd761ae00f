"""Fixtures for src/layers/scale.c: y = x * s (+ b), s broadcast over the axes it lacks."""
import torch

import moka_fixture

torch.manual_seed(21)


def case(name, xshape, sshape, view, bias, s_is_bottom):
    x = torch.randn(*xshape)
    s = torch.randn(*sshape)
    b = torch.randn(*sshape)
    dy = torch.randn(*xshape)
    xd = x.double().requires_grad_()
    sd = s.double().requires_grad_()
    bd = b.double().requires_grad_()
    y = xd * sd.view(*view)
    if bias:
        y = y + bd.view(*view)
    y.backward(dy.double())
    t = {"x": x, "dy": dy, "y": y, "dx": xd.grad}
    if s_is_bottom:
        t.update({"x1": s, "dx1": sd.grad})
    else:
        t.update({"w0": s, "dw0": sd.grad})
    if bias:
        w = "w0" if s_is_bottom else "w1"
        t.update({w: b, "d" + w: bd.grad})
    moka_fixture.write("scale_" + name, t)


case("axis1_bias", (2, 3, 4, 5), (3,), (1, 3, 1, 1), True, False)
case("axis1", (2, 3, 4, 5), (3,), (1, 3, 1, 1), False, False)
case("tail", (2, 3, 4, 5), (4, 5), (1, 1, 4, 5), False, False)    # axis 2, num_axes -1
case("scalar", (2, 3, 4, 5), (1,), (1, 1, 1, 1), True, False)     # num_axes 0
case("bottom", (2, 3, 4, 5), (2, 3), (2, 3, 1, 1), False, True)   # scale as bottom[1], axis 0
case("bottom_bias", (2, 3, 4, 5), (3, 4), (1, 3, 4, 1), True, True)
