#!/usr/bin/env bash
# What writing TensorBoard events costs: LeNet training throughput with and without --log_dir
# (scalars every display, histograms of every parameter and gradient every 100 iterations, and
# 2 input images per display), runs alternated A B A B, medians compared.
#   usage: bench/events_overhead.sh [ITERS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-1000}
rounds=${2:-3}
moka=${MOKA:-build/moka}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|^snapshot_prefix: .*|snapshot_prefix: \"$tmp/lenet\"|" -e "s|^test_interval: .*|test_interval: 0|" \
    -e "s|^snapshot: .*|snapshot: 0|" examples/mnist/lenet_solver.prototxt |
    grep -v "^test_iter" >"$tmp/solver.prototxt"
echo "snapshot_after_train: false" >>"$tmp/solver.prototxt"
ips() { sed -n 's/.*Training throughput: \([0-9.]*\) images\/s.*/\1/p'; }
plain=() logged=()
for r in $(seq "$rounds"); do
    plain+=("$("$moka" train --solver="$tmp/solver.prototxt" --iterations="$iters" 2>&1 | ips)")
    logged+=("$("$moka" train --solver="$tmp/solver.prototxt" --iterations="$iters" --log_dir="$tmp/logs" \
        ${EXTRA_FLAGS---histogram_interval=100 --log_images=2} 2>&1 | ips)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mp=$(median "${plain[@]}")
ml=$(median "${logged[@]}")
echo "without --log_dir: ${plain[*]} images/s (median $mp)"
echo "with --log_dir:    ${logged[*]} images/s (median $ml)"
awk -v a="$mp" -v b="$ml" 'BEGIN { printf "event writing costs %.2f%% of training throughput\n", 100 * (a - b) / a }'
du -sh "$tmp/logs" | awk '{ print "event files: " $1 }'
