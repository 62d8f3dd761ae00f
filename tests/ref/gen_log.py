"""Fixtures for src/layers/log.c: y = log_base(shift + scale * x), base -1 meaning e."""
import math

import torch

import moka_fixture

torch.manual_seed(19)
for name, base, a, b in (("e", -1.0, 1.0, 0.0), ("base10", 10.0, 2.0, 3.0),
                         ("base2", 2.0, -0.5, 1.0)):
    x = torch.rand(2, 3, 4, 5) * 1.8 + 0.1  # x in (0.1, 1.9): every argument stays positive
    dy = torch.randn(2, 3, 4, 5)
    xd = x.double().requires_grad_()
    y = torch.log(b + a * xd)
    if base != -1.0:
        y = y / math.log(base)
    y.backward(dy.double())
    moka_fixture.write("log_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})
