"""Fixtures for tests/layers/test_euclidean_loss.c: Caffe's EuclideanLoss,
loss = sum((a - b)^2) / (2 N), with gradients of loss_weight * loss for both inputs.

F.mse_loss(reduction="sum") is sum((a - b)^2). b may have a different shape with the same count
per item (Caffe compares flattened items).
"""
import zlib

import torch
import torch.nn.functional as F

from moka_fixture import write


def case(name, shape_a, shape_b, weight):
    torch.manual_seed(zlib.crc32(name.encode()))
    a = torch.randn(*shape_a, dtype=torch.float64).requires_grad_()
    b = torch.randn(*shape_b, dtype=torch.float64).requires_grad_()
    N = shape_a[0]
    loss = F.mse_loss(a.reshape(N, -1), b.reshape(N, -1), reduction="sum") / (2 * N)
    da, db = torch.autograd.grad(weight * loss, (a, b))
    write("euclidean_loss_" + name, {
        "a": a, "b": b, "loss": loss.reshape(()),
        "weight": torch.tensor(weight, dtype=torch.float64).reshape(()), "da": da, "db": db,
    })


case("4x10", (4, 10), (4, 10), 1.0)
case("3x12_vs_3x1x3x4", (3, 12), (3, 1, 3, 4), 0.75)
case("2x3x4x5", (2, 3, 4, 5), (2, 3, 4, 5), 3.0)
