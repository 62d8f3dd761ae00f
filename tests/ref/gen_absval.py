"""Fixtures for src/layers/absval.c: torch.abs (gradient sign(x), 0 at 0 as Caffe)."""
import torch

import moka_fixture

torch.manual_seed(16)
x = torch.randn(2, 3, 4, 5)
x[0, 0, 0, 0] = 0.0
dy = torch.randn(2, 3, 4, 5)
xd = x.double().requires_grad_()
y = torch.abs(xd)
y.backward(dy.double())
moka_fixture.write("absval_basic", {"x": x, "dy": dy, "y": y, "dx": xd.grad})
