#!/usr/bin/env bash
# LeNet training throughput, moka vs PyTorch (Debian's python3-torch), side by side on the same
# machine, batch and thread count. PyTorch runs tuned: OPENBLAS_NUM_THREADS=1, because its linear
# layers call Debian's OpenBLAS, whose own threads would otherwise fight torch's OpenMP threads.
#   usage: bench/lenet_vs_pytorch.sh [THREADS] [BATCH] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batch=${2:-64}
iters=${3:-500}
moka=${MOKA:-build/moka}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The example net with the requested batch; a solver with no test net, display or snapshots, so
# only training is timed (data loading included, it runs on moka's prefetch thread).
sed "s/batch_size: 64/batch_size: $batch/" examples/mnist/lenet_train_test.prototxt >"$tmp/net.prototxt"
cat >"$tmp/solver.prototxt" <<S
net: "$tmp/net.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
max_iter: $iters
display: 0
snapshot_after_train: false
S

echo "LeNet, batch $batch, $threads threads, $iters iterations ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
# Warm-up run, then the timed one.
"$moka" train --solver="$tmp/solver.prototxt" --threads="$threads" --iterations=50 2>/dev/null
moka_ips=$("$moka" train --solver="$tmp/solver.prototxt" --threads="$threads" 2>&1 |
    sed -n 's/.*Training throughput: \([0-9.]*\) images\/s.*/\1/p')
echo "moka images/s: $moka_ips"
torch_out=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads /usr/bin/python3 bench/lenet_pytorch.py \
    --threads "$threads" --batch "$batch" --iters "$iters")
echo "$torch_out"
torch_ips=$(echo "$torch_out" | sed -n 's/pytorch images\/s: //p')
"$moka" time --model="$tmp/net.prototxt" --threads="$threads" --iterations=50 2>&1 |
    grep -E "Average (Forward|Backward)" | sed 's/.*] /moka time: /'
awk -v m="$moka_ips" -v t="$torch_ips" 'BEGIN { printf "ratio moka/pytorch: %.2f\n", m / t }'
