#!/usr/bin/env bash
# cifar10_quick training throughput, moka vs PyTorch (Debian's python3-torch): Caffe's
# examples/cifar10/cifar10_quick_train_test.prototxt net on synthetic data (CIFAR-10 itself is not
# installed), same initial weights, batches, batch size, threads and solver (cifar10_quick_solver's
# SGD: fixed lr 0.001, momentum 0.9, weight decay 0.004, lr_mult 2 on biases), run alternately.
#   usage: bench/cifar10_quick_vs_pytorch.sh [THREADS] [BATCH] [ITERS] [ROUNDS]
#          (defaults 2 100 200 3)
#
# The data: 1000 random 3 x 32 x 32 uint8 images and labels in 0..9 from a fixed seed, written as
# IDX files that moka's IDXData layer reads in file order and PyTorch reads the same way; pixels
# are scaled by 1/256 (the real net subtracts a mean file instead: the same cost per pixel).
#
# Equal work is checked twice before timing, and the benchmark stops on a loss that differs by
# more than 1e-4 relative:
#  - from the weights the prototxt's own fillers give (gaussian, conv1 std 1e-4): the loss of the
#    first batch. With such small weights every logit is near 0 and the loss near ln 10 whatever
#    the layers do, so this alone would prove little;
#  - so also from xavier-filled weights, whose logits are far from 0: the losses of 3 SGD
#    iterations, which exercise every layer's forward and backward pass and the solver.
# The timed runs start from the fillers' weights.
set -euo pipefail
threads=${1:-2}
batch=${2:-100}
iters=${3:-200}
rounds=${4:-3}
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_setup
header "cifar10_quick training, batch $batch, $threads threads, $iters iterations, $rounds rounds"

# Synthetic CIFAR-10: IDX u8 files of (N, 3, 32, 32) images and (N) labels.
/usr/bin/python3 - "$tmp" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(20240607)
n = 1000
x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
y = rng.integers(0, 10, size=n, dtype=np.uint8)
for name, a in (("images.idx", x), ("labels.idx", y)):
    with open(sys.argv[1] + "/" + name, "wb") as f:
        f.write(bytes([0, 0, 0x08, a.ndim]))
        for d in a.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(a.tobytes())
EOF

# Caffe's cifar10_quick layers, with an IDXData layer in place of the LMDB Data layers. The
# fillers are the prototxt's; the check's second net swaps in xavier (WFILL_* placeholders).
cat >"$tmp/net.in" <<EOF
name: "CIFAR10_quick"
layer {
  name: "cifar" type: "IDXData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$tmp/images.idx" labels: "$tmp/labels.idx"
                   batch_size: $batch shuffle: false }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1
    weight_filler { WFILL_0.0001 } bias_filler { type: "constant" } }
}
layer {
  name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 }
}
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer {
  name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1
    weight_filler { WFILL_0.01 } bias_filler { type: "constant" } }
}
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer {
  name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 }
}
layer {
  name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 64 pad: 2 kernel_size: 5 stride: 1
    weight_filler { WFILL_0.01 } bias_filler { type: "constant" } }
}
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer {
  name: "pool3" type: "Pooling" bottom: "conv3" top: "pool3"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 }
}
layer {
  name: "ip1" type: "InnerProduct" bottom: "pool3" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 64
    weight_filler { WFILL_0.1 } bias_filler { type: "constant" } }
}
layer {
  name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10
    weight_filler { WFILL_0.1 } bias_filler { type: "constant" } }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
EOF
sed 's/WFILL_\([0-9.]*\)/type: "gaussian" std: \1/' "$tmp/net.in" >"$tmp/net.prototxt"
sed 's/WFILL_\([0-9.]*\)/type: "xavier"/' "$tmp/net.in" >"$tmp/net_xavier.prototxt"

lr=0.001 momentum=0.9 decay=0.004
write_solver "$tmp/init.prototxt" "$tmp/net.prototxt" 0 $momentum $decay 1 1 "$tmp/init"
write_solver "$tmp/initx.prototxt" "$tmp/net_xavier.prototxt" 0 $momentum $decay 1 0 "$tmp/initx"
write_solver "$tmp/check.prototxt" "$tmp/net_xavier.prototxt" $lr $momentum $decay 3 1 ""
write_solver "$tmp/solver.prototxt" "$tmp/net.prototxt" $lr $momentum $decay "$iters" 0 ""
torch_args=(--images "$tmp/images.idx" --labels "$tmp/labels.idx" --threads "$threads"
    --batch "$batch" --lr "$lr" --momentum "$momentum" --weight-decay "$decay")

moka_logged "$tmp/init.log" train --solver="$tmp/init.prototxt" --threads="$threads"
moka_logged "$tmp/initx.log" train --solver="$tmp/initx.prototxt" --threads="$threads"
moka_logged "$tmp/check.log" train --solver="$tmp/check.prototxt" --threads="$threads" \
    --weights="$tmp/initx_iter_1.caffemodel"
echo "the fillers' weights, first batch:"
torch bench/cifar10_quick_pytorch.py check "${torch_args[@]}" \
    --weights "$tmp/init_iter_1.caffemodel" --moka-log "$tmp/init.log" ||
    die "moka and PyTorch disagree on the loss: the timings would not compare the same work"
echo "xavier weights, first batches (3 SGD iterations):"
torch bench/cifar10_quick_pytorch.py check "${torch_args[@]}" \
    --weights "$tmp/initx_iter_1.caffemodel" --steps 3 --moka-log "$tmp/check.log" ||
    die "moka and PyTorch disagree on the loss: the timings would not compare the same work"

run_moka() {
    moka_logged "$tmp/moka.log" train --solver="$tmp/solver.prototxt" --threads="$threads" \
        --weights="$tmp/init_iter_1.caffemodel"
    train_ips "$tmp/moka.log"
}
run_torch() {
    torch bench/cifar10_quick_pytorch.py train "${torch_args[@]}" \
        --weights "$tmp/init_iter_1.caffemodel" --iters "$iters" |
        sed -n 's/^pytorch images\/s: //p'
}
alternate
