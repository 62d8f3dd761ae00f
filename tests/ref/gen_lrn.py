"""Fixtures for src/layers/lrn.c (Caffe's LRN).

ACROSS_CHANNELS: torch.nn.functional.local_response_norm (k + alpha / n * window sum of x^2),
checked against a direct sum written here. WITHIN_CHANNEL: Caffe's composition written out here,
y = x (1 + alpha / n^2 * sum of x^2 over the zero-padded n x n box)^-beta (Caffe adds 1, not k).
Gradients by autograd in float64. Each case stores x, dy, y, dx.
Run: /usr/bin/python3 tests/ref/gen_lrn.py
"""
import torch
import torch.nn.functional as F

import moka_fixture


def across(x, n, alpha, beta, k):
    C = x.shape[1]
    h = (n - 1) // 2
    sq = x * x
    sums = [sq[:, max(0, c - h):min(C, c + h + 1)].sum(dim=1) for c in range(C)]
    return x * (k + alpha / n * torch.stack(sums, 1)) ** (-beta)


def within(x, n, alpha, beta):
    C = x.shape[1]
    ones = torch.ones(C, 1, n, n, dtype=x.dtype)
    box = F.conv2d(x * x, ones, padding=(n - 1) // 2, groups=C)
    return x * (1 + alpha / (n * n) * box) ** (-beta)


# name: (x shape, region, local_size, alpha, beta, k)
CASES = {
    "across5": ((2, 7, 3, 4), "ACROSS_CHANNELS", 5, 0.3, 0.75, 2.0),
    "across3": ((2, 4, 3, 3), "ACROSS_CHANNELS", 3, 0.5, 0.6, 1.0),
    "within3": ((2, 3, 6, 5), "WITHIN_CHANNEL", 3, 0.4, 0.75, 1.0),
    "within5": ((1, 2, 7, 6), "WITHIN_CHANNEL", 5, 0.8, 1.3, 1.0),
}


def main():
    torch.manual_seed(5)
    for name, (shape, region, n, alpha, beta, k) in CASES.items():
        x = torch.rand(shape) * 4 - 2
        xd = x.double().requires_grad_()
        if region == "ACROSS_CHANNELS":
            y = F.local_response_norm(xd, n, alpha=alpha, beta=beta, k=k)
            assert torch.allclose(y, across(xd, n, alpha, beta, k)), name
        else:
            y = within(xd, n, alpha, beta)
        dy = torch.rand(y.shape) * 2 - 1
        y.backward(dy.double())
        moka_fixture.write("lrn_" + name, {"x": x, "dy": dy, "y": y, "dx": xd.grad})


if __name__ == "__main__":
    main()
