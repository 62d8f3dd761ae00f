"""Fixtures for src/layers/pooling.c (Caffe's Pooling).

The expected values come from a direct implementation of Caffe's rules written here (output size
with ceil rounding and the "last window starts inside" clip; AVE divides by the window clipped to
the padded bounds, so padding inside those bounds counts), with gradients by autograd through
it. Where PyTorch's max_pool2d / avg_pool2d (ceil_mode=True, count_include_pad=True) give the same
output shape, they are checked to agree. Each case stores x, dy, y, dx and, for MAX, mask (the
flat h * W + w index of each window's first maximum).
Run: /usr/bin/python3 tests/ref/gen_pooling.py
"""
import torch
import torch.nn.functional as F

import moka_fixture


def out_size(n, k, p, s, ceil, padded):
    span = n + 2 * p - k
    out = (-(-span // s) if ceil else span // s) + 1
    if padded and (out - 1) * s >= n + p:
        out -= 1
    return out


def caffe_pool(x, method, k, s, p, ceil=True):
    n, c, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    padded = ph > 0 or pw > 0
    PH, PW = out_size(H, kh, ph, sh, ceil, padded), out_size(W, kw, pw, sw, ceil, padded)
    rows, mrows = [], []
    for i in range(PH):
        cols, mcols = [], []
        for j in range(PW):
            hs, ws = i * sh - ph, j * sw - pw
            he, we = min(hs + kh, H + ph), min(ws + kw, W + pw)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
            win = x[:, :, hs:he, ws:we]
            if method == "MAX":
                flat = win.reshape(n, c, -1)
                cols.append(flat.amax(dim=-1))
                li = flat.argmax(dim=-1)
                mcols.append((hs + li // (we - ws)) * W + ws + li % (we - ws))
            else:
                cols.append(win.sum(dim=(2, 3)) / size)
        rows.append(torch.stack(cols, -1))
        if mcols:
            mrows.append(torch.stack(mcols, -1))
    y = torch.stack(rows, -2)
    return y, (torch.stack(mrows, -2) if mrows else None)


# name: (x shape, method, kernel, stride, pad, ceil, global)
CASES = {
    "max_k3s2": ((2, 3, 7, 7), "MAX", (3, 3), (2, 2), (0, 0), True, False),
    "max_pad": ((2, 2, 6, 6), "MAX", (3, 3), (2, 2), (1, 1), True, False),
    "ave_pad": ((2, 2, 7, 6), "AVE", (3, 3), (2, 2), (1, 1), True, False),
    "ave_edge": ((2, 2, 7, 7), "AVE", (3, 3), (2, 2), (0, 0), True, False),
    "max_rect": ((2, 2, 6, 7), "MAX", (2, 3), (1, 2), (1, 0), True, False),
    "ave_rect": ((2, 2, 6, 7), "AVE", (2, 3), (1, 2), (1, 0), True, False),
    "max_global": ((2, 3, 5, 4), "MAX", None, (1, 1), (0, 0), True, True),
    "ave_global": ((2, 3, 5, 4), "AVE", None, (1, 1), (0, 0), True, True),
    "ave_floor": ((1, 2, 8, 8), "AVE", (3, 3), (2, 2), (1, 1), False, False),
    # (4 - 1) * 2 == 5 + 1: the last window would start in the padding and is dropped (3, not 4).
    "max_clip": ((1, 2, 5, 5), "MAX", (2, 2), (2, 2), (1, 1), True, False),
}


def main():
    torch.manual_seed(4)
    for name, (shape, method, k, s, p, ceil, glob) in CASES.items():
        if glob:
            k = (shape[2], shape[3])
        x = torch.rand(shape) * 2 - 1
        xd = x.double().requires_grad_()
        y, mask = caffe_pool(xd, method, k, s, p, ceil)
        if ceil:
            ref = (F.max_pool2d(xd, k, s, p, ceil_mode=True) if method == "MAX" else
                   F.avg_pool2d(xd, k, s, p, ceil_mode=True, count_include_pad=True))
            if ref.shape == y.shape:
                assert torch.allclose(ref, y), name
        dy = torch.rand(y.shape) * 2 - 1
        y.backward(dy.double())
        out = {"x": x, "dy": dy, "y": y, "dx": xd.grad}
        if mask is not None:
            out["mask"] = mask.double()
        moka_fixture.write("pooling_" + name, out)


if __name__ == "__main__":
    main()
