"""Fixtures for src/layers/tanh.c: torch.tanh."""
import torch

import moka_fixture

torch.manual_seed(15)
x = torch.randn(2, 3, 4, 5) * 2
x[0, 0, 0, :] = torch.tensor([-30.0, -5.0, 0.0, 5.0, 30.0])
dy = torch.randn(2, 3, 4, 5)
xd = x.double().requires_grad_()
y = torch.tanh(xd)
y.backward(dy.double())
moka_fixture.write("tanh_basic", {"x": x, "dy": dy, "y": y, "dx": xd.grad})
