#!/usr/bin/env bash
# LeNet inference throughput, moka test vs PyTorch (Debian's python3-torch, eval mode under
# torch.no_grad), on the same machine, weights, batches (the Fashion-MNIST test file in file
# order), batch size and thread count, run alternately for ROUNDS rounds.
#   usage: bench/infer_vs_pytorch.sh [THREADS] [BATCH] [ITERS] [ROUNDS]   (defaults 2 100 2000 3)
#
# The weights are moka's initial ones (the fillers' values, written by one training iteration at
# base_lr 0); both first run the first 2 test batches from them and their losses must agree to
# 1e-4 relative, or the benchmark stops. Both then run the TEST net's whole forward pass, loss and
# accuracy included, ITERS times (wrapping around the 10000 test images). moka's figure is
# BATCH * ITERS over the time between the log lines "Running for N iterations." (net built,
# weights loaded) and "Loss:" (all batches done), so loading the net and the data is not timed;
# moka test logs 2 lines per batch, which is counted. PyTorch's is timed around its loop the same.
set -euo pipefail
threads=${1:-2}
batch=${2:-100}
iters=${3:-2000}
rounds=${4:-3}
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_setup

data=/usr/share/datasets/fashion-mnist
[ -r "$data/t10k-images-idx3-ubyte.gz" ] ||
    die "no Fashion-MNIST under $data (apt-get install dataset-fashion-mnist)"
header "LeNet inference (moka test), batch $batch, $threads threads, $iters batches, $rounds rounds"

sed -e "s/batch_size: 100/batch_size: $batch/" \
    -e "s/shuffle: true/shuffle: false/" examples/mnist/lenet_train_test.prototxt \
    >"$tmp/net.prototxt"
write_solver "$tmp/init.prototxt" "$tmp/net.prototxt" 0 0.9 0.0005 1 0 "$tmp/init"
moka_logged "$tmp/init.log" train --solver="$tmp/init.prototxt" --threads="$threads"
weights=$tmp/init_iter_1.caffemodel
torch_args=(--images "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz"
    --weights "$weights" --threads "$threads" --batch "$batch")

moka_logged "$tmp/check.log" test --model="$tmp/net.prototxt" --weights="$weights" \
    --iterations=2 --threads="$threads"
echo "same weights, same first batches (2 forward passes):"
torch bench/lenet_pytorch.py check "${torch_args[@]}" --steps 2 --lr 0 \
    --moka-log "$tmp/check.log" ||
    die "moka and PyTorch disagree on the loss: the timings would not compare the same work"

run_moka() {
    moka_logged "$tmp/moka.log" test --model="$tmp/net.prototxt" --weights="$weights" \
        --iterations="$iters" --threads="$threads"
    test_ips "$tmp/moka.log" "$batch"
}
run_torch() {
    torch bench/lenet_pytorch.py infer "${torch_args[@]}" --iters "$iters" |
        sed -n 's/^pytorch images\/s: //p'
}
alternate
