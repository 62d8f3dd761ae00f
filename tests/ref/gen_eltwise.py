"""Eltwise fixtures: weighted sum, product and maximum of three bottoms, gradients by autograd.

Cases (tests/layers/test_eltwise.c names the matching configs):
  eltwise_sum    y = 0.5 x0 - 2 x1 + 1.5 x2   (coeff: 0.5 -2 1.5)
  eltwise_prod   y = x0 * x1 * x2             (bottoms kept away from 0 for the y / x form)
  eltwise_max    y = max(x0, x1, x2)          (random data: no ties)
All bottoms are (2,3,4,5) in [-1, 1] (prod: magnitudes in [0.5, 1.5] with random sign).
"""
import torch

import moka_fixture


def bottoms(g, prod):
    xs = []
    for _ in range(3):
        if prod:
            mag = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).add(0.5)
            sign = torch.randint(0, 2, (2, 3, 4, 5), generator=g).to(torch.float64).mul(2).sub(1)
            x = mag * sign
        else:
            x = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).mul(2).sub(1)
        xs.append(x.requires_grad_())
    return xs


def case(name, op, seed):
    g = torch.Generator().manual_seed(seed)
    xs = bottoms(g, op == "prod")
    if op == "sum":
        y = 0.5 * xs[0] - 2.0 * xs[1] + 1.5 * xs[2]
    elif op == "prod":
        y = xs[0] * xs[1] * xs[2]
    else:
        y = torch.stack(xs).max(dim=0).values
    dy = torch.rand(y.shape, generator=g, dtype=torch.float64).mul(2).sub(1)
    y.backward(dy)
    out = {"x%d" % i: x for i, x in enumerate(xs)}
    out["y"] = y
    out["dy"] = dy
    for i, x in enumerate(xs):
        out["dx%d" % i] = x.grad
    moka_fixture.write(name, out)


case("eltwise_sum", "sum", 21)
case("eltwise_prod", "prod", 22)
case("eltwise_max", "max", 23)
