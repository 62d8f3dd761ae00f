#!/usr/bin/env bash
# LeNet training throughput, moka vs PyTorch (Debian's python3-torch), on the same machine, net,
# initial weights, batches, batch size, thread count and solver (SGD, fixed lr 0.01, momentum
# 0.9, weight decay 5e-4, lr_mult 2 on biases), run alternately for ROUNDS rounds.
#   usage: bench/lenet_vs_pytorch.sh [THREADS] [BATCH] [ITERS] [ROUNDS]    (defaults 2 64 1500 3)
#
# First moka writes its initial weights (the fillers' values: one iteration at base_lr 0, then
# snapshot_after_train), and both train 3 iterations from them on the first batches of the
# Fashion-MNIST training file in file order (shuffle: false); the losses of the 3 iterations must
# agree to 1e-4 relative, or the benchmark stops. Then each round times ITERS iterations of moka
# (its "Training throughput", data loading on its prefetch thread included) and of PyTorch (data
# in memory, converted to float per batch as moka's transform does), both from those weights.
set -euo pipefail
threads=${1:-2}
batch=${2:-64}
iters=${3:-1500}
rounds=${4:-3}
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_setup

data=/usr/share/datasets/fashion-mnist
[ -r "$data/train-images-idx3-ubyte.gz" ] ||
    die "no Fashion-MNIST under $data (apt-get install dataset-fashion-mnist)"
header "LeNet training, batch $batch, $threads threads, $iters iterations, $rounds rounds"

# The example net with the requested batch, reading the training file in file order.
sed -e "0,/batch_size: 64/s//batch_size: $batch/" -e "s/shuffle: true/shuffle: false/" \
    examples/mnist/lenet_train_test.prototxt >"$tmp/net.prototxt"
lr=0.01 momentum=0.9 decay=0.0005
write_solver "$tmp/init.prototxt" "$tmp/net.prototxt" 0 $momentum $decay 1 0 "$tmp/init"
write_solver "$tmp/check.prototxt" "$tmp/net.prototxt" $lr $momentum $decay 3 1 ""
write_solver "$tmp/solver.prototxt" "$tmp/net.prototxt" $lr $momentum $decay "$iters" 0 ""
torch_args=(--images "$data/train-images-idx3-ubyte.gz" --labels "$data/train-labels-idx1-ubyte.gz"
    --weights "$tmp/init_iter_1.caffemodel" --threads "$threads" --batch "$batch"
    --lr "$lr" --momentum "$momentum" --weight-decay "$decay")

moka_logged "$tmp/init.log" train --solver="$tmp/init.prototxt" --threads="$threads"
moka_logged "$tmp/check.log" train --solver="$tmp/check.prototxt" --threads="$threads" \
    --weights="$tmp/init_iter_1.caffemodel"
echo "same weights, same first batches (3 SGD iterations):"
torch bench/lenet_pytorch.py check "${torch_args[@]}" --steps 3 --moka-log "$tmp/check.log" ||
    die "moka and PyTorch disagree on the loss: the timings would not compare the same work"

run_moka() {
    moka_logged "$tmp/moka.log" train --solver="$tmp/solver.prototxt" --threads="$threads" \
        --weights="$tmp/init_iter_1.caffemodel"
    train_ips "$tmp/moka.log"
}
run_torch() {
    torch bench/lenet_pytorch.py train "${torch_args[@]}" --iters "$iters" |
        sed -n 's/^pytorch images\/s: //p'
}
alternate
