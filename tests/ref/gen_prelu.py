"""Fixtures for src/layers/prelu.c: F.prelu with per-channel or one shared slope."""
import torch
import torch.nn.functional as F

import moka_fixture

torch.manual_seed(12)
for name, shape, slopes in (("channels", (2, 3, 4, 5), 3), ("shared", (2, 3, 4, 5), 1),
                            ("2d", (4, 6), 6)):
    x = torch.randn(*shape)
    a = torch.rand(slopes) * 0.8 - 0.2  # some negative slopes too
    dy = torch.randn(*shape)
    xd = x.double().requires_grad_()
    ad = a.double().requires_grad_()
    y = F.prelu(xd, ad)
    y.backward(dy.double())
    moka_fixture.write("prelu_" + name,
                       {"x": x, "w0": a, "dy": dy, "y": y, "dx": xd.grad, "dw0": ad.grad})
