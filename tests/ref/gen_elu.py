"""Fixtures for src/layers/elu.c: F.elu."""
import torch
import torch.nn.functional as F

import moka_fixture

torch.manual_seed(13)
for name, alpha in (("alpha1", 1.0), ("alpha05", 0.5), ("negative", -0.7)):
    x = torch.randn(2, 3, 4, 5)
    dy = torch.randn(2, 3, 4, 5)
    xd = x.double().requires_grad_()
    # F.elu refuses a negative alpha in its backward; write the formula out instead.
    y = torch.where(xd > 0, xd, alpha * torch.expm1(xd))
    y.backward(dy.double())
    moka_fixture.write("elu_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})
