"""Fixtures for tests/layers/test_accuracy.c: Caffe's Accuracy from torch.topk.

A position is correct when its label is among the top_k scores along the axis (random scores,
so no ties). Positions labelled ignore_label are skipped. per_class[c] is the accuracy over
positions labelled c (0 for a class with none).
"""
import zlib

import torch

from moka_fixture import write

IGNORE = -1


def case(name, shape, axis, top_k, ignore, label_shape=None):
    torch.manual_seed(zlib.crc32(name.encode()))
    x = torch.randn(*shape, dtype=torch.float64)
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
        label[torch.rand(outer * inner) < 0.25] = IGNORE
    xv = x.reshape(outer, C, inner).permute(0, 2, 1).reshape(-1, C)  # (positions, C)
    topk = xv.topk(top_k, dim=1).indices
    valid = label != IGNORE
    hit = (topk == label.clamp(min=0).unsqueeze(1)).any(dim=1) & valid
    acc = hit.sum().double() / valid.sum().double()
    per_class = torch.zeros(C, dtype=torch.float64)
    for c in range(C):
        n = int((label == c).sum())
        per_class[c] = float((hit & (label == c)).sum()) / n if n else 0.0
    ls = label_shape if label_shape is not None else (outer * inner,)
    write("accuracy_" + name, {
        "x": x, "label": label.reshape(ls).double(), "accuracy": acc.reshape(()),
        "per_class": per_class,
    })


case("20x6_top1", (20, 6), 1, 1, False, (20,))
case("20x6_top3_ignore", (20, 6), 1, 3, True, (20, 1))
case("2x5x3x4_top1_ignore", (2, 5, 3, 4), 1, 1, True, (2, 1, 3, 4))
case("4x3x7_axis2_top2", (4, 3, 7), 2, 2, False, (4, 3))
case("6x9_axisneg1_top1", (6, 9), -1, 1, False, (6,))
