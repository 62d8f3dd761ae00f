"""Fixtures for tests/layers/test_sigmoid_cross_entropy_loss.c: Caffe's SigmoidCrossEntropyLoss
from F.binary_cross_entropy_with_logits.

loss = sum over non-ignored elements of BCE-with-logits, divided by Caffe's normalizer (FULL:
count, VALID: non-ignored elements, BATCH_SIZE: N, NONE: 1; at least 1). An element is ignored
when int(target) == ignore_label (C++ truncation toward zero). dx is the gradient of
loss_weight * loss.
"""
import math
import zlib

import torch
import torch.nn.functional as F

from moka_fixture import write


def case(name, shape, norm, ignore_label, weight, extreme=False):
    torch.manual_seed(zlib.crc32(name.encode()))
    x = torch.randn(*shape, dtype=torch.float64) * 3
    if extreme:
        # Logits whose naive log(sigmoid) under- or overflows in float32.
        flat = x.view(-1)
        flat[0], flat[1], flat[2], flat[3] = 120.0, -120.0, 95.5, -88.25
    x.requires_grad_()
    t = torch.rand(*shape, dtype=torch.float64)
    mask = torch.ones(*shape, dtype=torch.float64)
    if ignore_label is not None:
        drop = torch.rand(*shape) < 0.25
        t[drop] = float(ignore_label)
        mask[drop] = 0.0
    per = F.binary_cross_entropy_with_logits(x, t, reduction="none") * mask
    valid = int(mask.sum())
    N = shape[0]
    count = math.prod(shape)
    normalizer = {"FULL": count, "VALID": valid, "BATCH_SIZE": N, "NONE": 1}[norm]
    loss = per.sum() / max(1, normalizer)
    (dx,) = torch.autograd.grad(weight * loss, x)
    write("sigmoid_cross_entropy_loss_" + name, {
        "x": x, "t": t, "loss": loss.reshape(()),
        "weight": torch.tensor(weight, dtype=torch.float64).reshape(()), "dx": dx,
    })


case("4x6_batch", (4, 6), "BATCH_SIZE", None, 1.0, extreme=True)
case("2x3x4x4_ignore_valid", (2, 3, 4, 4), "VALID", -1, 1.0)
case("2x3x4x4_ignore_full", (2, 3, 4, 4), "FULL", -1, 2.0)
case("2x3x4x4_ignore_none", (2, 3, 4, 4), "NONE", -1, 0.5)
case("5x7_batch_ignore", (5, 7), "BATCH_SIZE", -1, 1.0)
