"""Fixtures for tests/layers/test_argmax.c: Caffe's ArgMax from torch.topk (random data, so no
ties; tie order is tested by hand in the C test).

With an axis: top = topk along it (indices, or values with out_max_val). Without: each item's
values are flattened and ranked; top is (N, 1, k) indices or (N, 2, k) indices then values,
padded with trailing 1s to the bottom's rank (at least 3 dims).
"""
import zlib

import torch

from moka_fixture import write


def case(name, shape, k, axis, out_max_val):
    torch.manual_seed(zlib.crc32(name.encode()))
    x = torch.randn(*shape, dtype=torch.float64)
    if axis is not None:
        r = x.topk(k, dim=axis)
        y = r.values if out_max_val else r.indices.double()
    else:
        N = shape[0]
        r = x.reshape(N, -1).topk(k, dim=1)
        parts = [r.indices.double()] + ([r.values] if out_max_val else [])
        y = torch.stack(parts, dim=1)  # (N, 1 or 2, k)
        nd = max(3, len(shape))
        y = y.reshape(*y.shape, *([1] * (nd - 3)))
    write("argmax_" + name, {"x": x, "y": y})


case("5x10_k1", (5, 10), 1, None, False)
case("4x12_k3_val", (4, 12), 3, None, True)
case("2x3x4x5_k2", (2, 3, 4, 5), 2, None, False)
case("2x6x3x4_axis1_k2", (2, 6, 3, 4), 2, 1, False)
case("2x6x3x4_axis1_k3_val", (2, 6, 3, 4), 3, 1, True)
case("3x4x8_axisneg1_k1", (3, 4, 8), 1, -1, False)
