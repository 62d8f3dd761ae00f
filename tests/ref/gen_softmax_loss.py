"""Fixtures for tests/layers/test_softmax_loss.c: Caffe's SoftmaxWithLoss from F.cross_entropy.

The loss is the summed cross-entropy divided by Caffe's normalizer (FULL: outer * inner,
VALID: non-ignored positions, BATCH_SIZE: outer, NONE: 1; at least 1). dx is the gradient of
loss_weight * loss. Softmax axis != 1 is handled by moving that axis to position 1 and
flattening the rest, which is exactly Caffe's (outer, C, inner) view.
"""
import zlib

import torch
import torch.nn.functional as F

from moka_fixture import write

IGNORE = 255


def case(name, shape, axis, norm, ignore, weight, label_shape=None):
    torch.manual_seed(zlib.crc32(name.encode()))
    x = (torch.randn(*shape, dtype=torch.float64) * 3).requires_grad_()
    ax = axis % len(shape)
    C = shape[ax]
    outer = 1
    for d in shape[:ax]:
        outer *= d
    inner = 1
    for d in shape[ax + 1:]:
        inner *= d
    label = torch.randint(0, C, (outer * inner,))
    if ignore:
        label[torch.rand(outer * inner) < 0.3] = IGNORE
    # (outer, C, inner) view, labels (outer, inner).
    xv = x.reshape(outer, C, inner)
    lv = label.reshape(outer, inner)
    total = F.cross_entropy(xv, lv, ignore_index=IGNORE if ignore else -100, reduction="sum")
    valid = int((lv != IGNORE).sum()) if ignore else outer * inner
    normalizer = {"FULL": outer * inner, "VALID": valid, "BATCH_SIZE": outer, "NONE": 1}[norm]
    loss = total / max(1, normalizer)
    (dx,) = torch.autograd.grad(weight * loss, x)
    prob = torch.softmax(x, dim=ax)
    ls = label_shape if label_shape is not None else (outer * inner,)
    write("softmax_loss_" + name, {
        "x": x, "label": label.reshape(ls).double(), "loss": loss.reshape(()),
        "weight": torch.tensor(weight, dtype=torch.float64).reshape(()),
        "dx": dx, "prob": prob,
    })


case("6x5_valid", (6, 5), 1, "VALID", False, 1.0, (6,))
case("2x4x3x3_ignore_valid", (2, 4, 3, 3), 1, "VALID", True, 1.0, (2, 1, 3, 3))
case("2x4x3x3_ignore_full", (2, 4, 3, 3), 1, "FULL", True, 1.0, (2, 1, 3, 3))
case("2x4x3x3_ignore_batch", (2, 4, 3, 3), 1, "BATCH_SIZE", True, 0.5, (2, 1, 3, 3))
case("2x4x3x3_ignore_none", (2, 4, 3, 3), 1, "NONE", True, 2.5, (2, 1, 3, 3))
case("2x3x5_axis2", (2, 3, 5), 2, "VALID", False, 1.0, (2, 3))
case("3x4x2x2_axisneg2", (3, 4, 2, 2), -2, "BATCH_SIZE", True, 1.0, (3, 4, 2))
