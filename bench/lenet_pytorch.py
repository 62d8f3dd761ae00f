"""The PyTorch side of bench/lenet_vs_pytorch.sh and bench/infer_vs_pytorch.sh: Caffe's LeNet
(conv 20x5x5, max-pool 2, conv 50x5x5, max-pool 2, fc 500, ReLU, fc 10, softmax loss) run with
Debian's python3-torch, started from the weights moka wrote, on the batches moka reads.

It also holds what bench/cifar10_quick_pytorch.py reuses: the .caffemodel loader, the IDX reader,
Caffe's SGD arithmetic and the three modes below.

  check  loads a .caffemodel, runs --steps SGD iterations (forward passes only with --lr 0) on
         the first batches of an IDX file in file order and prints the loss of each; with
         --moka-log it compares them with the losses moka logged ("Iteration K (...), loss = X"
         with display: 1, or "Batch K, loss = X" from moka test) and exits 1 when one differs by
         more than --rtol (relative).
  train  times --iters SGD iterations from the loaded weights; prints "pytorch images/s: N".
  infer  times --iters forward passes (eval mode, no_grad, loss and accuracy as moka's TEST net
         computes them); prints "pytorch images/s: N".

Batches: sample i of iteration k is sample (k * B + i) mod N of the file, the order of moka's
IDXData with shuffle: false; the pixels are converted as transform_param { scale: 0.00390625 }
does, inside the timed loop, since moka's prefetch thread does that work too. The timed span runs
from before the first iteration to after the last, as moka's "Training throughput" does, so a
first, slower iteration counts in both.

Solver (Caffe's SGD, fixed lr): v = momentum * v + lr * lr_mult * (grad + weight_decay * w),
w -= v, with lr_mult 2 on biases as in the prototxt. PyTorch's SGD keeps v / lr instead of v,
which is the same update while the rate is fixed.

Run with Debian's interpreter and its OpenBLAS held to one thread, e.g.
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/lenet_pytorch.py train --weights W.caffemodel \
      --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz --threads 2
"""
import argparse
import gzip
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import read_caffemodel  # noqa: E402  (the project's independent .caffemodel decoder)

SCALE = np.float32(0.00390625)


def load_caffemodel(path):
    """Returns {layer name: [float32 arrays in Caffe's blob shapes]} of a .caffemodel."""
    with open(path, "rb") as f:
        buf = f.read()
    out = {}
    for number, _, value in read_caffemodel.fields(buf):
        if number not in (2, 100):
            continue
        name, _, blobs = read_caffemodel.layer(value, number == 2)
        if blobs:
            out[name] = [np.array(data, dtype=np.uint32).view(np.float32).reshape(shape)
                         for _, shape, data in blobs]
    return out


def load_weights(net, path):
    """Copies a .caffemodel into the net's modules of the same names. Caffe's layouts are
    PyTorch's: Convolution weight (O, I, kh, kw), InnerProduct weight (out, in), 1-D biases."""
    blobs = load_caffemodel(path)
    for name, mod in net.named_children():
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        if name not in blobs:
            sys.exit("%s: no blobs for layer '%s'" % (path, name))
        w, b = blobs[name]
        if tuple(w.shape) != tuple(mod.weight.shape) or tuple(b.shape) != tuple(mod.bias.shape):
            sys.exit("%s: layer '%s' holds %s + %s, the PyTorch net wants %s + %s"
                     % (path, name, w.shape, b.shape, tuple(mod.weight.shape),
                        tuple(mod.bias.shape)))
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(w))
            mod.bias.copy_(torch.from_numpy(b))


def read_idx(path):
    """An IDX file (plain or gzip) of unsigned bytes as a numpy array of its dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    if buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        sys.exit("%s: not an IDX file of unsigned bytes" % path)
    ndim = buf[3]
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(buf, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(images, labels):
    """Images as uint8 (N, C, H, W) (an (N, H, W) file gets C = 1) and labels as int64 (N)."""
    x = read_idx(images)
    if x.ndim == 3:
        x = x[:, None]
    y = read_idx(labels).astype(np.int64)
    return torch.from_numpy(np.array(x)), torch.from_numpy(y)


def batch(x, y, k, b):
    """Iteration k's batch in file order, wrapping around as moka's cursor does."""
    n = x.shape[0]
    start = (k * b) % n
    if start + b <= n:
        xb, yb = x[start:start + b], y[start:start + b]
    else:
        idx = torch.arange(start, start + b) % n
        xb, yb = x[idx], y[idx]
    return xb.float() * float(SCALE), yb


def caffe_sgd(net, lr, momentum, weight_decay):
    """SGD with Caffe's lr_mult 1 on weights and 2 on biases, decay_mult 1 on both."""
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    return torch.optim.SGD([{"params": weights, "lr": lr}, {"params": biases, "lr": 2 * lr}],
                           lr=lr, momentum=momentum, weight_decay=weight_decay)


class LeNet(nn.Module):
    """examples/mnist/lenet_train_test.prototxt; module names are the prototxt's layer names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.ip1 = nn.Linear(800, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x):
        # Caffe's pooling rounds the output size up; with 24 and 8 (even) that changes nothing,
        # but ceil_mode keeps the two identical for other input sizes too.
        x = F.max_pool2d(self.conv1(x), 2, 2, ceil_mode=True)
        x = F.max_pool2d(self.conv2(x), 2, 2, ceil_mode=True)
        return self.ip2(F.relu(self.ip1(x.flatten(1))))


def moka_losses(path):
    """{iteration: loss} from a moka log: training lines "Iteration K (...), loss = X" (display: 1,
    average_loss 1, so the smoothed loss is the iteration's loss) or test lines
    "Batch K, loss = X"."""
    out = {}
    pat = re.compile(r"\] (?:Iteration (\d+) \(.*\)|Batch (\d+)), loss = (\S+)$")
    with open(path) as f:
        for line in f:
            m = pat.search(line.rstrip("\n"))
            if m:
                out[int(m.group(1) or m.group(2))] = float(m.group(3))
    return out


def run_check(net, a, x, y):
    """Prints PyTorch's loss per iteration, beside moka's if given; returns the exit status."""
    opt = caffe_sgd(net, a.lr, a.momentum, a.weight_decay)
    ref = moka_losses(a.moka_log) if a.moka_log else None
    worst, bad = 0.0, False
    for k in range(max(a.steps, 1)):
        xb, yb = batch(x, y, k, a.batch)
        opt.zero_grad()
        loss = F.cross_entropy(net(xb), yb)
        got = loss.item()
        if ref is None:
            print("pytorch iteration %d loss %.6g" % (k, got))
        elif k not in ref:
            print("%s: moka logged no loss for iteration %d" % (a.moka_log, k))
            bad = True
        else:
            rel = abs(got - ref[k]) / max(abs(ref[k]), 1e-12)
            worst = max(worst, rel)
            print("  iteration %d loss: moka %.6g, pytorch %.6g (relative difference %.1e)"
                  % (k, ref[k], got, rel))
            bad |= rel > a.rtol
        if a.steps > 0 and a.lr > 0:
            loss.backward()
            opt.step()
    if bad:
        print("losses differ by up to %.1e (> %.0e): the two do not compute the same thing"
              % (worst, a.rtol))
        return 1
    return 0


def run_train(net, a, x, y):
    net.train()
    opt = caffe_sgd(net, a.lr, a.momentum, a.weight_decay)
    t0 = time.perf_counter()
    for k in range(a.iters):
        xb, yb = batch(x, y, k, a.batch)
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print("pytorch final loss: %.4f" % loss.item())
    print("pytorch images/s: %.1f" % (a.iters * a.batch / dt))
    return 0


def run_infer(net, a, x, y):
    net.eval()
    correct = 0.0
    with torch.no_grad():
        t0 = time.perf_counter()
        for k in range(a.iters):
            xb, yb = batch(x, y, k, a.batch)
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            correct += (out.argmax(1) == yb).float().mean().item()
        dt = time.perf_counter() - t0
    print("pytorch loss %.4f accuracy %.4f" % (loss.item(), correct / a.iters))
    print("pytorch images/s: %.1f" % (a.iters * a.batch / dt))
    return 0


def main(make_net, argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "train", "infer"])
    ap.add_argument("--weights", required=True, help="a .caffemodel written by moka")
    ap.add_argument("--images", required=True, help="IDX images, (N, H, W) or (N, C, H, W)")
    ap.add_argument("--labels", required=True, help="IDX labels, (N)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=500, help="timed iterations (train, infer)")
    ap.add_argument("--steps", type=int, default=0,
                    help="check: SGD steps to take, comparing the loss before each (0: one "
                         "forward pass; with --lr 0, forward passes over successive batches)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--moka-log", help="check: moka's log to compare the losses with")
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    x, y = load_data(a.images, a.labels)
    net = make_net()
    load_weights(net, a.weights)
    return {"check": run_check, "train": run_train, "infer": run_infer}[a.mode](net, a, x, y)


if __name__ == "__main__":
    sys.exit(main(LeNet))
