# shellcheck shell=bash disable=SC2154  # threads and rounds are the sourcing script's
# bench/common.sh -- helpers for the *_vs_pytorch.sh benchmarks; sourced, never run.
#
# Each benchmark: (1) checks that moka and PyTorch compute the same loss from the same weights on
# the same first batches, so that the timings compare equal work, then (2) runs the two systems
# alternately, moka then PyTorch, ROUNDS times, so that a change in the machine's load hits both
# alike, and prints each round's images/s, the medians and the ratio moka/pytorch of the medians.
#
# A sourcing script sets threads, batch, iters and rounds, then calls bench_setup. It gets:
#   $moka      the moka binary (MOKA in the environment, default build/moka)
#   $tmp       a scratch directory, removed on exit (kept with BENCH_KEEP=1)
#   torch ...  runs /usr/bin/python3 (Debian's python3-torch) with OpenBLAS held to one thread:
#              PyTorch's linear layers call Debian's OpenBLAS, whose own threads would otherwise
#              fight torch's OpenMP threads, and torch.set_num_threads(T) sets the rest.

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

bench_setup() {
    cd "$(dirname "$0")/.." || exit 1
    moka=${MOKA:-build/moka}
    [ -x "$moka" ] || die "no moka binary at '$moka' (build it with ./run.sh build, or set MOKA)"
    /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null ||
        die "Debian's python3-torch and python3-numpy are needed (apt-get install python3-torch)"
    for v in threads batch iters rounds; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
    done
    tmp=$(mktemp -d)
    # BENCH_KEEP=1 keeps the scratch files (nets, logs, weights) for a look afterwards.
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "scratch files kept in $tmp" >&2
    else
        trap 'rm -rf "$tmp"' EXIT
    fi
}

torch() {
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads /usr/bin/python3 "$@"
}

# The share of all cores' time spent busy over one second, in percent (from /proc/stat).
busy_percent() {
    local a b
    a=$(head -n 1 /proc/stat)
    sleep 1
    b=$(head -n 1 /proc/stat)
    printf '%s\n%s\n' "$a" "$b" | awk '
        { idle[NR] = $5 + $6; total[NR] = 0; for (i = 2; i <= NF; i++) total[NR] += $i }
        END { t = total[2] - total[1]
              printf "%d\n", (t > 0 ? 100 * (t - idle[2] + idle[1]) / t : 0) }'
}

# One line naming the machine, and what the run compares; a warning when something else is
# already using the CPU, since that spoils the timings.
header() {
    local cpu busy
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
    echo "CPU: ${cpu:-unknown} ($(nproc) cores); $*"
    echo "moka: $moka; PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')" \
        "(OPENBLAS_NUM_THREADS=1, torch.set_num_threads($threads))"
    busy=$(busy_percent)
    if [ "$busy" -gt 20 ]; then
        echo "warning: other processes use ${busy}% of the CPU: the timings will be disturbed"
    fi
}

# A Caffe solver for moka: SGD with a fixed rate and no test net. Arguments: the solver file, the
# net file, base_lr, momentum, weight_decay, max_iter, display, snapshot prefix ("" for none).
write_solver() {
    cat >"$1" <<EOF
net: "$2"
base_lr: $3
momentum: $4
weight_decay: $5
lr_policy: "fixed"
max_iter: $6
display: $7
random_seed: 1
solver_mode: CPU
EOF
    if [ -n "$8" ]; then
        printf 'snapshot_after_train: true\nsnapshot_prefix: "%s"\n' "$8" >>"$1"
    else
        echo "snapshot_after_train: false" >>"$1"
    fi
}

# Runs moka (all arguments), its log into the file named by the first; dies with the log's tail if
# it fails.
moka_logged() {
    local log=$1
    shift
    "$moka" "$@" >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "'moka $*' failed (log above)"
    }
}

# The images/s of a moka train log.
train_ips() {
    sed -n 's/.*Training throughput: \([0-9.]*\) images\/s.*/\1/p' "$1" | tail -n 1
}

# The forward throughput of a moka test log: BATCH * ITERS images over the time between the log's
# "Running for N iterations." line (net built, weights loaded) and its "Loss:" line (all batches
# done), from the log's own microsecond time stamps. Arguments: the log, the batch size.
test_ips() {
    awk -v b="$2" '
        function secs(s,  t) { split(s, t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
        / test\] Running for [0-9]+ iterations/ { t0 = secs($2); n = $(NF - 1) }
        / test\] Loss: / { t1 = secs($2) }
        END {
            if (t1 < t0) t1 += 86400  # the run crossed midnight
            if (n > 0 && t1 > t0) printf "%.1f\n", n * b / (t1 - t0)
        }' "$1"
}

median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2];
                                  else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Runs the caller's functions run_moka and run_torch (each prints one number, images/s) alternately,
# $rounds times, and prints the rounds, the medians and their ratio. The two systems are named
# $1 and $2 (default moka and pytorch).
alternate() {
    local na=${1:-moka} nb=${2:-pytorch} m=() t=() a b r
    for r in $(seq "$rounds"); do
        a=$(run_moka)
        [ -n "$a" ] || die "round $r: $na reported no throughput"
        b=$(run_torch)
        [ -n "$b" ] || die "round $r: $nb reported no throughput"
        m+=("$a")
        t+=("$b")
        printf 'round %d: %s %8.1f images/s   %s %8.1f images/s\n' "$r" "$na" "$a" "$nb" "$b"
    done
    a=$(median "${m[@]}")
    b=$(median "${t[@]}")
    printf 'median:  %s %8.1f images/s   %s %8.1f images/s\n' "$na" "$a" "$nb" "$b"
    awk -v m="$a" -v t="$b" -v na="$na" -v nb="$nb" \
        'BEGIN { printf "ratio %s/%s (medians): %.2f\n", na, nb, m / t }'
}

# Caffe's examples/cifar10/cifar10_quick_train_test.prototxt on synthetic data (CIFAR-10 itself is
# not installed), into directory $1 at batch size $2: images.idx and labels.idx (1000 random
# 3 x 32 x 32 uint8 images and labels in 0..9 from a fixed seed, IDX files that moka's IDXData
# layer and the PyTorch scripts read in file order, pixels scaled by 1/256), net.prototxt (the
# prototxt's own fillers) and net_xavier.prototxt (xavier weights, for loss checks whose logits are
# far from 0).
cifar10_quick_files() {
    local dir=$1 bsz=$2
    # Synthetic CIFAR-10: IDX u8 files of (N, 3, 32, 32) images and (N) labels.
    /usr/bin/python3 - "$dir" <<'EOF'
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
    cat >"$dir/net.in" <<EOF
name: "CIFAR10_quick"
layer {
  name: "cifar" type: "IDXData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$dir/images.idx" labels: "$dir/labels.idx"
                   batch_size: $bsz shuffle: false }
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
    sed 's/WFILL_\([0-9.]*\)/type: "gaussian" std: \1/' "$dir/net.in" >"$dir/net.prototxt"
    sed 's/WFILL_\([0-9.]*\)/type: "xavier"/' "$dir/net.in" >"$dir/net_xavier.prototxt"
}
