#!/usr/bin/env bash
# --engine=fast (the default: fast pooling kernels, the fused solver step) and
# --engine=reference (the plain loops) train bit-identical weights and solver history: LeNet
# with MAX and AVE pooling, SGD with momentum, L2 and L1 weight decay, iter_size 2, 20
# iterations; and `moka test` prints the same scores. conv2 is split into 5 groups of 4 input
# channels so that the fast engine keeps it on im2col + GEMM like the reference (oneDNN's direct
# convolutions sum in another order; tests/layers/test_conv.c checks them against the formula);
# with LeNet's own conv2 on oneDNN the test scores agree to 1e-5. conv1 pads its rows' ends by
# one so that the fast engine does not compute its weight gradient with the direct kernel either
# (another summation order; test_conv.c checks it against the formula). Also: a bad --engine is
# a usage error.
#   usage: test_engines.sh MOKA SOURCE_DIR
set -u
moka=$1
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
failures=0
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failures=$((failures + 1)); echo "FAIL: $*"; }

cat >net.prototxt <<P
name: "LeNetAve"
layer { name: "mnist" type: "IDXData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz"
                   batch_size: 32 shuffle: true } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 pad_w: 1 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 group: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  inner_product_param { num_output: 100 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
P
# Each run in its own directory with the same snapshot prefix, since the .solverstate names its
# .caffemodel.
for reg in L2 L1; do
    for e in fast reference; do
        mkdir -p "$e$reg"
        cat >"$e$reg/solver.prototxt" <<S
net: "../net.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
regularization_type: "$reg"
lr_policy: "inv"
gamma: 0.0001
power: 0.75
iter_size: 2
max_iter: 20
display: 0
random_seed: 3
snapshot_prefix: "snap"
S
        (cd "$e$reg" && "$moka" train --solver=solver.prototxt --engine=$e >train.log 2>&1) ||
            bad "$reg $e: training failed: $(tail -2 "$e$reg/train.log")"
    done
    if [ -f "fast$reg/snap_iter_20.caffemodel" ] &&
        cmp -s "fast$reg/snap_iter_20.caffemodel" "reference$reg/snap_iter_20.caffemodel" &&
        cmp -s "fast$reg/snap_iter_20.solverstate" "reference$reg/snap_iter_20.solverstate"; then
        ok "$reg: fast and reference engines train identical weights and history"
    else
        bad "$reg: fast and reference engines differ"
    fi
done
for e in fast reference; do
    "$moka" test --model=net.prototxt --weights=fastL2/snap_iter_20.caffemodel --iterations=5 --engine=$e 2>&1 |
        grep -E '\] (accuracy|loss) = ' | sed 's/.*\] //' >"test_$e.txt"
done
if [ -s test_fast.txt ] && cmp -s test_fast.txt test_reference.txt; then
    ok "moka test: same scores with both engines ($(tr '\n' ' ' <test_fast.txt))"
else
    bad "moka test scores differ: $(cat test_fast.txt) vs $(cat test_reference.txt)"
fi
sed 's/ group: 5//' net.prototxt >net_dnnl.prototxt
for e in fast reference; do
    "$moka" test --model=net_dnnl.prototxt --iterations=5 --engine=$e 2>&1 |
        sed -n 's/.*\] loss = \([0-9.e+-]*\).*/\1/p' >"dnnl_$e.txt"
done
if [ -s dnnl_fast.txt ] && awk -v a="$(cat dnnl_fast.txt)" -v b="$(cat dnnl_reference.txt)" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-5 * b) }'; then
    ok "moka test with conv2 on oneDNN: loss $(cat dnnl_fast.txt), reference $(cat dnnl_reference.txt)"
else
    bad "moka test with conv2 on oneDNN: loss $(cat dnnl_fast.txt) vs $(cat dnnl_reference.txt)"
fi
out=$("$moka" train --solver=fastL2/solver.prototxt --engine=gpu 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "engine must be fast or reference" &&
    ok "--engine=gpu: usage error" || bad "--engine=gpu: status $rc: $out"

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
