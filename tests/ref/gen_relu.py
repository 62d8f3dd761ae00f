"""Fixtures for src/layers/relu.c: Caffe's ReLU is F.leaky_relu (slope 0: F.relu)."""
import torch
import torch.nn.functional as F

import moka_fixture

torch.manual_seed(11)
for name, slope in (("plain", 0.0), ("leaky", 0.1), ("negative", -0.5)):
    x = torch.randn(2, 3, 4, 5)
    dy = torch.randn(2, 3, 4, 5)
    xd = x.double().requires_grad_()
    y = F.leaky_relu(xd, slope)
    y.backward(dy.double())
    moka_fixture.write("relu_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})
