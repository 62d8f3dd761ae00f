"""Fixtures for src/layers/inner_product.c (Caffe's InnerProduct): torch.nn.functional.linear on
x flattened from `axis` on. With transpose the stored weight is (K, N) (Caffe's layout).

Each case stores x, w, b (when bias_term), dy and y, dx, dw, db, computed in float64.
Run: /usr/bin/python3 tests/ref/gen_inner_product.py
"""
import torch
import torch.nn.functional as F

import moka_fixture

# name: (x shape, axis, num_output, bias, transpose)
CASES = {
    "basic": ((4, 3, 2, 5), 1, 7, True, False),
    "transpose": ((3, 6), 1, 4, False, True),
    "axis2": ((2, 3, 4, 2), 2, 5, True, False),
}


def main():
    torch.manual_seed(3)
    for name, (shape, axis, n, bias, transpose) in CASES.items():
        k = 1
        for d in shape[axis:]:
            k *= d
        x = torch.rand(shape) * 2 - 1
        w = torch.rand((k, n) if transpose else (n, k)) * 2 - 1
        b = torch.rand(n) * 2 - 1
        xd = x.double().requires_grad_()
        wd = w.double().requires_grad_()
        bd = b.double().requires_grad_() if bias else None
        x2 = xd.reshape(*shape[:axis], k)
        y = F.linear(x2, wd.t() if transpose else wd, bd)
        dy = torch.rand(y.shape) * 2 - 1
        y.backward(dy.double())
        out = {"x": x, "w": w}
        if bias:
            out["b"] = b
        out.update({"y": y, "dy": dy, "dx": xd.grad, "dw": wd.grad})
        if bias:
            out["db"] = bd.grad
        moka_fixture.write("inner_product_" + name, out)


if __name__ == "__main__":
    main()
