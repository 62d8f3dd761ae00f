"""Fixtures for src/layers/deconv.c (Caffe's Deconvolution): torch.nn.functional.conv_transpose2d,
whose weight layout (C_in, C_out / groups, kh, kw) is Caffe's.

Each case stores x, w, b (when bias_term), dy and y, dx, dw, db, computed in float64.
Run: /usr/bin/python3 tests/ref/gen_deconv.py
"""
import torch
import torch.nn.functional as F

import moka_fixture

# name: (x shape, num_output, kernel (h, w), stride, pad, dilation, group, bias)
CASES = {
    "basic": ((2, 3, 4, 5), 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
    "group_dilation": ((3, 4, 3, 4), 6, (2, 3), (1, 2), (0, 1), (2, 1), 2, False),
    "batch7": ((7, 2, 3, 3), 3, (4, 4), (2, 2), (1, 1), (1, 1), 1, True),
    "stride1": ((2, 3, 4, 5), 2, (3, 2), (1, 1), (1, 0), (1, 1), 1, True),
}


def main():
    torch.manual_seed(2)
    for name, (shape, m, k, s, p, d, g, bias) in CASES.items():
        x = torch.rand(shape) * 2 - 1
        w = (torch.rand(shape[1], m // g, *k) * 2 - 1) * 0.5
        b = torch.rand(m) * 2 - 1
        xd = x.double().requires_grad_()
        wd = w.double().requires_grad_()
        bd = b.double().requires_grad_() if bias else None
        y = F.conv_transpose2d(xd, wd, bd, stride=s, padding=p, dilation=d, groups=g)
        dy = torch.rand(y.shape) * 2 - 1
        y.backward(dy.double())
        out = {"x": x, "w": w}
        if bias:
            out["b"] = b
        out.update({"y": y, "dy": dy, "dx": xd.grad, "dw": wd.grad})
        if bias:
            out["db"] = bd.grad
        moka_fixture.write("deconv_" + name, out)


if __name__ == "__main__":
    main()
