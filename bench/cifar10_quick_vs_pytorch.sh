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

cifar10_quick_files "$tmp" "$batch"

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
