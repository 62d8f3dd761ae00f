"""Fixtures for src/layers/batch_norm.c.

Outputs and input gradients come from F.batch_norm (training mode: batch statistics; eval mode:
the stored ones). The running statistics follow Caffe's rule, not PyTorch's momentum rule:
  w2' = w2 * maf + 1,  w0' = w0 * maf + mean,  w1' = w1 * maf + var_biased * m / (m - 1)
and eval mode normalises with mean = w0 / w2, var = w1 / w2 (both 0 when w2 is 0).
"""
import torch
import torch.nn.functional as F

import moka_fixture

torch.manual_seed(20)
MAF, EPS = 0.9, 1e-4


def stats_input(c):
    return torch.randn(c) * 0.3, torch.rand(c) + 0.5, torch.tensor([2.5])


def train_case(name, shape):
    c = shape[1]
    x = torch.randn(*shape) * 2 + 0.5
    w0, w1, w2 = stats_input(c)
    dy = torch.randn(*shape)
    xd = x.double().requires_grad_()
    y = F.batch_norm(xd, None, None, training=True, eps=EPS)
    y.backward(dy.double())
    dims = [d for d in range(len(shape)) if d != 1]
    m = x.numel() // c
    mean = x.double().mean(dims)
    var = x.double().var(dims, unbiased=False)
    moka_fixture.write("batch_norm_" + name, {
        "x": x, "w0": w0, "w1": w1, "w2": w2, "dy": dy, "y": y, "dx": xd.grad,
        "w0_new": w0.double() * MAF + mean,
        "w1_new": w1.double() * MAF + var * m / (m - 1),
        "w2_new": w2.double() * MAF + 1})


def eval_case(name, shape, factor):
    c = shape[1]
    x = torch.randn(*shape) * 2 + 0.5
    w0, w1, _ = stats_input(c)
    w2 = torch.tensor([factor])
    dy = torch.randn(*shape)
    xd = x.double().requires_grad_()
    scale = 0.0 if factor == 0 else 1.0 / factor
    y = F.batch_norm(xd, w0.double() * scale, w1.double() * scale, training=False, eps=EPS)
    y.backward(dy.double())
    moka_fixture.write("batch_norm_" + name, {
        "x": x, "w0": w0, "w1": w1, "w2": w2, "dy": dy, "y": y, "dx": xd.grad,
        "w0_new": w0, "w1_new": w1, "w2_new": w2})


train_case("train", (4, 3, 3, 5))
train_case("train_2d", (8, 5))
eval_case("eval", (4, 3, 3, 5), 2.5)
eval_case("eval_zero_factor", (2, 3, 2, 2), 0.0)
