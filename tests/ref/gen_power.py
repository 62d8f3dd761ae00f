"""Fixtures for src/layers/power.c: y = (shift + scale * x) ** power."""
import torch

import moka_fixture

torch.manual_seed(17)
# (name, power, scale, shift); x is U(-1, 1), so shift 2 keeps fractional powers' bases > 0.
for name, p, a, b in (("general", 2.5, 0.5, 2.0), ("square", 2.0, -1.5, 0.3),
                      ("linear", 1.0, 2.0, -1.0), ("cube", 3.0, 1.2, 0.0),
                      ("inverse", -1.0, 1.0, 2.0), ("zero", 0.0, 3.0, 1.0)):
    x = torch.rand(2, 3, 4, 5) * 2 - 1
    dy = torch.randn(2, 3, 4, 5)
    xd = x.double().requires_grad_()
    y = torch.pow(b + a * xd, p)
    y.backward(dy.double())
    moka_fixture.write("power_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})
