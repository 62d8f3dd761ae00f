"""Caffe's LeNet trained with PyTorch on Fashion-MNIST: the reference for bench/lenet_vs_pytorch.sh.

Same net (conv 20x5x5, max-pool 2, conv 50x5x5, max-pool 2, fc 500, ReLU, fc 10, softmax loss),
same solver arithmetic (SGD, momentum 0.9, weight decay 5e-4, lr 0.01), same batch, same thread
count. Data are preloaded in memory and batches are taken in a shuffled order, so the figure is
the training step itself. Prints one line: "pytorch images/s: N".

Run with Debian's interpreter: /usr/bin/python3 bench/lenet_pytorch.py --threads 2 --batch 64
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist/"


def load():
    with gzip.open(DATA + "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA + "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 256.0), torch.from_numpy(y.astype(np.int64))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.ip1 = nn.Linear(800, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        return self.ip2(F.relu(self.ip1(x.flatten(1))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=500)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x, y = load()
    net = LeNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    perm = torch.randperm(x.shape[0])

    def step(i):
        idx = perm[(i * a.batch) % (x.shape[0] - a.batch):][: a.batch]
        opt.zero_grad()
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss

    for i in range(50):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.iters):
        loss = step(i)
    dt = time.perf_counter() - t0
    print("pytorch final loss: %.4f" % loss.item())
    print("pytorch images/s: %.1f" % (a.iters * a.batch / dt))


if __name__ == "__main__":
    main()
