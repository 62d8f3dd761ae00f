#!/usr/bin/env bash
# Data-parallel scaling across hosts: `moka time` (forward + backward + gradient allreduce,
# overlapped as in training) on 1, 2 and 3 hosts of ../shared/tools/netns-cluster (network
# namespaces on one bridge: ranks talk over TCP between addresses), one rank per host, one
# compute thread per rank, each rank pinned to core (rank mod cores). Prints per net and world
# size: ms per iteration, allreduce ms per iteration and the share hidden behind backward, the
# global images/s, and the scaling efficiency images/s(N) / (N x images/s(1)).
# Nets: Caffe's LeNet (batch 64 per rank, Fashion-MNIST) and a net with cifar10_quick's layers on
# synthetic 32x32x3 data (DummyData, batch 100 per rank).
# With fewer cores than hosts, ranks share cores and the efficiency is bounded by cores / hosts.
#   usage: bench/dist_scaling.sh [ITERS=100] [ROUNDS=3]      (as root: network namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-100}
rounds=${2:-3}
moka=$(realpath "${MOKA:-build/moka}")
cluster=$(realpath ../shared/tools/netns-cluster)
export NETNS_CLUSTER_PREFIX=mokab NETNS_CLUSTER_SUBNET=10.79.0
tmp=$(mktemp -d)
trap '"$cluster" down >/dev/null 2>&1; rm -rf "$tmp"' EXIT
"$cluster" up 3 >/dev/null
cores=$(nproc)

cat >"$tmp/cifar10_quick_synth.prototxt" <<'P'
name: "CIFAR10_quick_synthetic"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 100 dim: 3 dim: 32 dim: 32 } shape { dim: 100 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 3 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.0001 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3"
  convolution_param { num_output: 64 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "pool3" type: "Pooling" bottom: "conv3" top: "pool3" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool3" top: "ip1"
  inner_product_param { num_output: 64 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
P
# Each rank pins itself to one core before starting moka.
cat >"$tmp/pinned" <<EOF
#!/bin/sh
exec taskset -c \$(( \${OMPI_COMM_WORLD_RANK:-0} % $cores )) "$moka" "\$@"
EOF
chmod +x "$tmp/pinned"

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" | tail -1; }

printf '%-16s %5s %10s %12s %8s %10s %11s\n' net hosts ms/iter allreduce_ms hidden images/s efficiency
for spec in "LeNet:$PWD/examples/mnist/lenet_train_test.prototxt:64" \
            "cifar10_quick:$tmp/cifar10_quick_synth.prototxt:100"; do
    IFS=: read -r name model batch <<<"$spec"
    base=""
    for n in 1 2 3; do
        its=() comms=() hids=()
        for _ in $(seq "$rounds"); do
            out=$(timeout -k 5 300 "$cluster" mpirun -np "$n" --wdir "$PWD" "$tmp/pinned" time \
                --model="$model" --iterations="$iters" --threads=1 2>&1)
            its+=("$(echo "$out" | field 'Average Forward-Backward:')")
            comms+=("$(echo "$out" | field 'Average allreduce:' || true)")
            hids+=("$(echo "$out" | sed -n 's/.*, \([0-9]*\)% hidden.*/\1/p' | tail -1)")
        done
        it=$(median "${its[@]}")
        comm=$([ "$n" = 1 ] && echo "-" || median "${comms[@]}")
        hid=$([ "$n" = 1 ] && echo "-" || echo "$(median "${hids[@]}")%")
        ips=$(awk -v n="$n" -v b="$batch" -v t="$it" 'BEGIN { printf "%.0f", n * b * 1000 / t }')
        [ -z "$base" ] && base=$ips
        eff=$(awk -v a="$ips" -v b="$base" -v n="$n" 'BEGIN { printf "%.2f", a / (n * b) }')
        printf '%-16s %5s %10.2f %12s %8s %10s %11s\n' "$name" "$n" "$it" "$comm" "$hid" "$ips" "$eff"
    done
done
echo "($cores cores; ranks pinned to core rank mod $cores; Open MPI over TCP between namespaces)"
