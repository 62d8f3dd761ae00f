"""Fixtures for src/layers/exp.c: y = base ** (shift + scale * x), base -1 meaning e."""
import torch

import moka_fixture

torch.manual_seed(18)
for name, base, a, b in (("e", -1.0, 0.5, 0.2), ("base2", 2.0, 1.5, -1.0),
                         ("plain", -1.0, 1.0, 0.0)):
    x = torch.randn(2, 3, 4, 5)
    dy = torch.randn(2, 3, 4, 5)
    xd = x.double().requires_grad_()
    t = b + a * xd
    y = torch.exp(t) if base == -1.0 else torch.pow(torch.tensor(base, dtype=torch.float64), t)
    y.backward(dy.double())
    moka_fixture.write("exp_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})
