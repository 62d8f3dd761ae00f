#!/usr/bin/env bash
# moka's bf16 mixed precision against its own fp32: training throughput of the same net, weights,
# batches, threads and solver with --precision=bf16 and --precision=fp32, run alternately.
#   usage: bench/bf16_vs_fp32.sh [NET] [THREADS] [BATCH] [ITERS] [ROUNDS]
#          NET is lenet (Fashion-MNIST, examples/mnist/lenet_train_test.prototxt; defaults
#          2 256 300 3) or cifar10_quick (synthetic data as in cifar10_quick_vs_pytorch.sh;
#          defaults 2 100 200 3)
#
# bf16 rounds the inputs of every convolution and inner product to bfloat16 (8 significant bits),
# so the two runs do not compute the same numbers; before timing, the losses of the first 5 SGD
# iterations from the same (xavier) weights are printed side by side and must agree to 2%
# relative, which shows both train the same net on the same batches.
# Needs a CPU with AVX512_BF16 or AMX; elsewhere moka refuses bf16 and so does this script.
set -euo pipefail
net=${1:-lenet}
threads=${2:-2}
case $net in
lenet) batch=${3:-256} iters=${4:-300} ;;
cifar10_quick) batch=${3:-100} iters=${4:-200} ;;
*)
    echo "$(basename "$0"): NET must be lenet or cifar10_quick, got '$net'" >&2
    exit 2
    ;;
esac
rounds=${5:-3}
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"
bench_setup
header "$net training, bf16 against fp32, batch $batch, $threads threads, $iters iterations," \
    "$rounds rounds"

if [ "$net" = lenet ]; then
    data=/usr/share/datasets/fashion-mnist
    [ -r "$data/train-images-idx3-ubyte.gz" ] ||
        die "no Fashion-MNIST under $data (apt-get install dataset-fashion-mnist)"
    sed -e "0,/batch_size: 64/s//batch_size: $batch/" -e "s/shuffle: true/shuffle: false/" \
        examples/mnist/lenet_train_test.prototxt >"$tmp/net.prototxt"
    cp "$tmp/net.prototxt" "$tmp/net_xavier.prototxt"
    lr=0.01 momentum=0.9 decay=0.0005
else
    cifar10_quick_files "$tmp" "$batch"
    lr=0.001 momentum=0.9 decay=0.004
fi
write_solver "$tmp/init.prototxt" "$tmp/net_xavier.prototxt" 0 $momentum $decay 1 0 "$tmp/init"
write_solver "$tmp/check.prototxt" "$tmp/net_xavier.prototxt" $lr $momentum $decay 5 1 ""
write_solver "$tmp/solver.prototxt" "$tmp/net.prototxt" $lr $momentum $decay "$iters" 0 ""

moka_logged "$tmp/init.log" train --solver="$tmp/init.prototxt" --threads="$threads"
for p in fp32 bf16; do
    moka_logged "$tmp/check_$p.log" train --solver="$tmp/check.prototxt" --threads="$threads" \
        --weights="$tmp/init_iter_1.caffemodel" --precision=$p
    sed -n 's/.*Iteration \([0-9]*\) ([^)]*), loss = \([0-9.e+-]*\).*/\1 \2/p' "$tmp/check_$p.log" \
        >"$tmp/loss_$p.txt"
done
echo "same weights, same first batches (5 SGD iterations):"
join "$tmp/loss_fp32.txt" "$tmp/loss_bf16.txt" | awk '
    { d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > worst) worst = d
      printf "  iteration %d loss: fp32 %s, bf16 %s (relative difference %.1e)\n", $1, $2, $3, d }
    END { exit !(NR == 5 && worst <= 0.02) }' ||
    die "fp32 and bf16 losses differ by more than 2%: they would not train the same net"
grep -h "Precision bf16" "$tmp/check_bf16.log" | sed 's/.*solver\] /moka: /' | head -n 1

run_moka() {
    moka_logged "$tmp/bf16.log" train --solver="$tmp/solver.prototxt" --threads="$threads" \
        --weights="$tmp/init_iter_1.caffemodel" --precision=bf16
    train_ips "$tmp/bf16.log"
}
run_torch() {
    moka_logged "$tmp/fp32.log" train --solver="$tmp/solver.prototxt" --threads="$threads" \
        --weights="$tmp/init_iter_1.caffemodel" --precision=fp32
    train_ips "$tmp/fp32.log"
}
alternate bf16 fp32
