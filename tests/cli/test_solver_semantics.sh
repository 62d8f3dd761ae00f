#!/usr/bin/env bash
# Solver behaviour seen from outside, with weights read back by the independent reader
# tests/ref/read_caffemodel.py:
#  - the same random_seed and thread count give a bit-identical run;
#  - iter_size 2 with batch 16 gives the same weights as iter_size 1 with batch 32 (Caffe
#    accumulates the gradients of iter_size passes and averages them), to float rounding;
#  - --weights fine-tunes: a run started from a snapshot tests exactly as the snapshot did;
#  - solver_mode: GPU on this CPU build prints one warning and trains.
#   usage: test_solver_semantics.sh MOKA SOURCE_DIR
set -u
moka=$1
src=$2
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }

net() { # batch_size
    cat <<P
name: "n"
layer { name: "d" type: "IDXData" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz"
                   batch_size: $1 } }
layer { name: "d" type: "IDXData" top: "data" top: "label" include { phase: TEST }
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz"
                   batch_size: 100 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 5 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TEST } }
P
}
solver() { # net prefix iter_size extra
    printf 'net: "%s"\nbase_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.001\nlr_policy: "step"\ngamma: 0.5\nstepsize: 10\nmax_iter: 30\nrandom_seed: 3\nsnapshot_prefix: "%s"\niter_size: %s\ntest_iter: 100\ntest_interval: %s\n%s\n' "$1" "$2" "$3" "${TEST_INTERVAL:-1000}" "${4:-}"
}
net 32 >n32.prototxt
net 16 >n16.prototxt

# Determinism.
solver n32.prototxt a 1 >a.prototxt
solver n32.prototxt b 1 >b.prototxt
"$moka" train --solver=a.prototxt --threads=2 2>a.log </dev/null && "$moka" train --solver=b.prototxt --threads=2 2>b.log </dev/null
if cmp -s a_iter_30.caffemodel b_iter_30.caffemodel; then ok "same seed, same threads: bit-identical weights"; else bad "two identical runs differ"; fi

# iter_size.
solver n16.prototxt c 2 >c.prototxt
"$moka" train --solver=c.prototxt --threads=2 2>c.log </dev/null || { bad "iter_size run"; tail -3 c.log; }
"$py" "$src/tests/ref/read_caffemodel.py" a_iter_30.caffemodel >a.txt
"$py" "$src/tests/ref/read_caffemodel.py" c_iter_30.caffemodel >c.txt
if "$py" - a.txt c.txt <<'PY'
import struct, sys
def floats(path):
    out = []
    for line in open(path):
        if line.startswith("data"):
            out += [struct.unpack("<f", bytes.fromhex(h)[::-1])[0] for h in line.split()[1:]]
    return out
a, c = floats(sys.argv[1]), floats(sys.argv[2])
assert len(a) == len(c) and len(a) > 0, (len(a), len(c))
worst = max(abs(x - y) / max(1.0, abs(x)) for x, y in zip(a, c))
changed = max(abs(x) for x in a)
print("max relative difference %.3g over %d weights" % (worst, len(a)))
sys.exit(0 if worst < 1e-4 and changed > 0 else 1)
PY
then ok "iter_size 2 x batch 16 == iter_size 1 x batch 32"; else bad "iter_size accumulation differs"; fi

# --weights: the first test of a fine-tuning run scores what the snapshot scored at its end.
TEST_INTERVAL=30 solver n32.prototxt f 1 >f.prototxt
"$moka" train --solver=f.prototxt --threads=2 2>f.log </dev/null
acc_end=$(grep "Test net output #0" f.log | tail -1 | sed 's/.*= //')
solver n32.prototxt g 1 "test_initialization: true" >g.prototxt
"$moka" train --solver=g.prototxt --threads=2 --weights=f_iter_30.caffemodel --iterations=1 2>g.log </dev/null
acc_start=$(grep "Test net output #0" g.log | head -1 | sed 's/.*= //')
if grep -q "Finetuning from f_iter_30.caffemodel" g.log && [ -n "$acc_start" ] && [ "$acc_start" = "$acc_end" ]; then
    ok "--weights: fine-tuning starts where the snapshot ended (accuracy $acc_start)"
else
    bad "--weights: start accuracy '$acc_start' vs snapshot's '$acc_end'"; tail -3 g.log
fi

# The solver file's own `weights:` field does the same.
solver n32.prototxt k 1 'weights: "f_iter_30.caffemodel"' >k.prototxt
"$moka" train --solver=k.prototxt --threads=2 --iterations=1 2>k.log </dev/null
acc_k=$(grep "Test net output #0" k.log | head -1 | sed 's/.*= //')
if [ -n "$acc_k" ] && [ "$acc_k" = "$acc_end" ]; then ok "solver weights: field fine-tunes too"
else bad "solver weights: field: '$acc_k' vs '$acc_end'"; tail -2 k.log; fi

# solver_mode: GPU.
solver n32.prototxt h 1 "solver_mode: GPU" >h.prototxt
if "$moka" train --solver=h.prototxt --threads=2 --iterations=2 2>h.log </dev/null &&
    [ "$(grep -c '^W.*solver_mode: GPU' h.log)" = 1 ]; then
    ok "solver_mode: GPU warns once and trains on the CPU"
else
    bad "solver_mode: GPU"; grep -i gpu h.log
fi
# average_loss N: the displayed loss is the mean of the last N iteration losses.
solver n32.prototxt p 1 "display: 1" >p1.prototxt
solver n32.prototxt q 1 "display: 1
average_loss: 5" >p5.prototxt
"$moka" train --solver=p1.prototxt --threads=2 --iterations=12 2>p1.log </dev/null
"$moka" train --solver=p5.prototxt --threads=2 --iterations=12 2>p5.log </dev/null
if "$py" - p1.log p5.log <<'PY'
import re, sys
def losses(path):
    return [float(m.group(1)) for m in re.finditer(r"Iteration \d+ \(.*\), loss = (\S+)", open(path).read())]
raw, smooth = losses(sys.argv[1]), losses(sys.argv[2])
assert len(raw) == 12 and len(smooth) == 12, (len(raw), len(smooth))
for i in range(12):
    window = raw[max(0, i - 4):i + 1]
    want = sum(window) / len(window)
    assert abs(smooth[i] - want) <= 1e-4 * max(1, abs(want)), (i, smooth[i], want)
PY
then ok "average_loss 5 smooths the displayed loss over the last 5 iterations"; else bad "average_loss"; fi

# Nets given as train_net + net_param-style test nets, two test nets, a stage rule.
net 32 | sed 's/include { phase: TEST }/include { phase: TEST stage: "val" }/' >staged.prototxt
cat >multi.prototxt <<S
train_net: "n32.prototxt"
test_net: "staged.prototxt"
test_net_param { name: "inline"
  layer { name: "d" type: "IDXData" top: "data" top: "label"
    transform_param { scale: 0.00390625 }
    idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz" batch_size: 50 } }
  layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
    convolution_param { num_output: 4 kernel_size: 5 stride: 2 } }
  layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 10 } }
  layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" } }
test_state { stage: "val" }
test_state { }
test_iter: 100
test_iter: 200
test_interval: 5
base_lr: 0.05
lr_policy: "fixed"
max_iter: 5
S
if "$moka" train --solver=multi.prototxt --threads=2 2>multi.log </dev/null &&
    grep -q "Testing net (#1)" multi.log; then
    a0=$(grep -A1 "Iteration 5, Testing net (#0)" multi.log | grep -o "acc = .*")
    a1=$(grep -A1 "Iteration 5, Testing net (#1)" multi.log | grep -o "acc = .*")
    # Both test nets share the train weights and see all 10000 images: same accuracy.
    if [ -n "$a0" ] && [ "$a0" = "$a1" ]; then ok "train_net + test_net + test_net_param with stages: $a0 on both"
    else bad "test nets disagree: '$a0' vs '$a1'"; fi
else
    bad "multi-net solver"; tail -3 multi.log
fi
# Without the stage, the staged test net has no TEST data layer.
sed -i 's/test_state { stage: "val" }/test_state { stage: "other" }/' multi.prototxt
if ! "$moka" train --solver=multi.prototxt --threads=2 2>multi2.log </dev/null &&
    grep -q "unknown bottom blob 'data'" multi2.log; then ok "stage rules exclude the layer when the stage is absent"
else bad "stage rule not applied"; tail -2 multi2.log; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
