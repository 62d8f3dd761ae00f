"""Fixtures for src/layers/conv.c (Caffe's Convolution): torch.nn.functional.conv2d.

Each case stores x, w, b (when bias_term), dy and the results y, dx, dw, db, computed in float64
from the float32 inputs. Run: /usr/bin/python3 tests/ref/gen_conv.py
"""
import torch
import torch.nn.functional as F

import moka_fixture

# name: (x shape, num_output, kernel (h, w), stride, pad, dilation, group, bias)
CASES = {
    "basic": ((2, 3, 7, 6), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    "group_dilation": ((2, 4, 9, 8), 6, (3, 2), (2, 1), (1, 2), (2, 1), 2, True),
    "pointwise": ((3, 5, 4, 4), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1, False),
    "batch9_stride2": ((9, 2, 6, 7), 3, (3, 3), (2, 2), (0, 0), (1, 1), 1, True),
}


def main():
    torch.manual_seed(1)
    for name, (shape, m, k, s, p, d, g, bias) in CASES.items():
        x = torch.rand(shape) * 2 - 1
        w = (torch.rand(m, shape[1] // g, *k) * 2 - 1) * 0.5
        b = torch.rand(m) * 2 - 1
        xd = x.double().requires_grad_()
        wd = w.double().requires_grad_()
        bd = b.double().requires_grad_() if bias else None
        y = F.conv2d(xd, wd, bd, stride=s, padding=p, dilation=d, groups=g)
        dy = torch.rand(y.shape) * 2 - 1
        y.backward(dy.double())
        out = {"x": x, "w": w}
        if bias:
            out["b"] = b
        out.update({"y": y, "dy": dy, "dx": xd.grad, "dw": wd.grad})
        if bias:
            out["db"] = bd.grad
        moka_fixture.write("conv_" + name, out)


if __name__ == "__main__":
    main()
