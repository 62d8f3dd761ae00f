"""Fixtures for src/layers/sigmoid.c: torch.sigmoid, including large |x| where 1/(1+e^-x)
saturates."""
import torch

import moka_fixture

torch.manual_seed(14)
x = torch.randn(2, 3, 4, 5) * 3
x[0, 0, 0, :] = torch.tensor([-40.0, -15.0, 0.0, 15.0, 40.0])
dy = torch.randn(2, 3, 4, 5)
xd = x.double().requires_grad_()
y = torch.sigmoid(xd)
y.backward(dy.double())
moka_fixture.write("sigmoid_basic", {"x": x, "dy": dy, "y": y, "dx": xd.grad})
