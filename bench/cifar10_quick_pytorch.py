"""The PyTorch side of bench/cifar10_quick_vs_pytorch.sh: Caffe's cifar10_quick net
(examples/cifar10/cifar10_quick_train_test.prototxt) with Debian's python3-torch.

  data  (B, 3, 32, 32)
  conv1 32x5x5 pad 2 -> (B, 32, 32, 32), max-pool 3 stride 2 -> 16x16, ReLU
  conv2 32x5x5 pad 2, ReLU, average-pool 3 stride 2 -> (B, 32, 8, 8)
  conv3 64x5x5 pad 2, ReLU, average-pool 3 stride 2 -> (B, 64, 4, 4)
  ip1 1024 -> 64, ip2 64 -> 10, softmax loss

Caffe's pooling rounds the output size up (32 -> 16, 16 -> 8, 8 -> 4 here, where rounding down
would give 15, 7, 3): ceil_mode=True does the same. Its average pooling divides each window by
the number of its cells inside the input when there is no padding, which is what PyTorch's
count_include_pad does with padding 0.

Modes, flags and batch order are those of bench/lenet_pytorch.py, whose code this reuses, e.g.
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/cifar10_quick_pytorch.py train \
      --weights W.caffemodel --images images.idx --labels labels.idx --batch 100 --threads 2
"""
import sys

import torch.nn as nn
import torch.nn.functional as F

import lenet_pytorch


class Cifar10Quick(nn.Module):
    """Module names are the prototxt's layer names, so the .caffemodel loads by name."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.ip1 = nn.Linear(64 * 4 * 4, 64)
        self.ip2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 3, 2, ceil_mode=True))
        x = F.avg_pool2d(F.relu(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.avg_pool2d(F.relu(self.conv3(x)), 3, 2, ceil_mode=True)
        return self.ip2(self.ip1(x.flatten(1)))


if __name__ == "__main__":
    sys.exit(lenet_pytorch.main(Cifar10Quick))
