#!/usr/bin/env bash
# bf16 mixed precision from the command line and the solver file:
#  - refused with one line and exit 2, leaving no files, where oneDNN finds no bf16 instructions
#    (DNNL_MAX_CPU_ISA=AVX512_CORE makes any CPU look like one without them), whether asked by
#    --precision=bf16 or by the solver's `precision: BF16`; refused with the reference engine;
#  - a bad --precision value and a bad `precision:` field are errors naming the flag / file:line;
#  - on a CPU with bf16: LeNet trains 20 iterations in bf16 from the same weights and batches as
#    fp32, the losses agreeing to 3% (bf16 rounds every product input to 8 bits, so they are not
#    equal, and they must differ somewhere), the log states the precision, and `moka time` shows
#    conv2 and the inner products on oneDNN's bf16 kernels and conv1 (one input channel) in fp32.
#   usage: test_precision.sh MOKA SOURCE_DIR
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

# LeNet as examples/mnist has it, reading the test set for both phases, batch 32, in file order.
sed -e "s|images: \"[^\"]*train-images[^\"]*\"|images: \"$data/t10k-images-idx3-ubyte.gz\"|" \
    -e "s|labels: \"[^\"]*train-labels[^\"]*\"|labels: \"$data/t10k-labels-idx1-ubyte.gz\"|" \
    -e "s|batch_size: 64|batch_size: 32|" -e "s|shuffle: true|shuffle: false|" \
    "$2/examples/mnist/lenet_train_test.prototxt" >net.prototxt
grep -q "train-images" net.prototxt && bad "could not point the net at the test set"
solver() { # $1 file, $2 max_iter, $3 extra line
    cat >"$1" <<S
net: "net.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
max_iter: $2
display: 1
random_seed: 5
snapshot_after_train: true
snapshot_prefix: "out/$1"
solver_mode: CPU
$3
S
}
mkdir -p out

# Refusals.
solver plain.prototxt 2 ""
out=$(DNNL_MAX_CPU_ISA=AVX512_CORE "$moka" train --solver=plain.prototxt --precision=bf16 2>&1)
rc=$?
line=$(echo "$out" | grep "moka train:")
if [ $rc = 2 ] && echo "$line" | grep -q "bf16 precision needs a CPU with AVX512_BF16 or AMX" &&
    echo "$line" | grep -q "finds avx512_core" && [ -z "$(ls out)" ]; then
    ok "no bf16 instructions: one line, exit 2, no files ($line)"
else
    bad "no bf16 instructions: status $rc, files '$(ls out)': $out"
fi
solver field.prototxt 2 "precision: BF16"
out=$(DNNL_MAX_CPU_ISA=AVX512_CORE "$moka" train --solver=field.prototxt 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "bf16 precision needs a CPU" && [ -z "$(ls out)" ] &&
    ok "the solver field precision: BF16 is read (and refused the same way)" ||
    bad "solver field: status $rc: $out"
out=$(DNNL_MAX_CPU_ISA=AVX512_CORE "$moka" train --solver=field.prototxt --precision=fp32 2>&1)
rc=$?
[ $rc = 0 ] && ok "--precision=fp32 overrides the solver field" || bad "override: status $rc: $out"
rm -rf out/*
out=$("$moka" train --solver=plain.prototxt --precision=bf16 --engine=reference 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "reference engine is fp32 only" &&
    ok "bf16 with the reference engine is refused" || bad "reference engine: status $rc: $out"
out=$("$moka" train --solver=plain.prototxt --precision=fp16 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "precision must be fp32 or bf16, got 'fp16'" &&
    ok "--precision=fp16: usage error" || bad "--precision=fp16: status $rc: $out"
solver badfield.prototxt 2 "precision: FP16"
out=$("$moka" train --solver=badfield.prototxt 2>&1)
rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "badfield.prototxt:12:" && echo "$out" | grep -q "FP16" &&
    ok "precision: FP16 in the solver file: $(echo "$out" | grep -m1 badfield)" ||
    bad "precision: FP16: status $rc: $out"

# bf16 training, where the CPU has it.
if "$moka" time --model=net.prototxt --iterations=1 --precision=bf16 >time.log 2>&1; then
    grep -E "conv2.*forward.*oneDNN bf16" time.log >/dev/null &&
        grep -E "ip1.*forward.*oneDNN bf16" time.log >/dev/null &&
        grep -E "conv1.*forward.*fp32\]" time.log >/dev/null &&
        ok "moka time: conv2 and ip1 on bf16 kernels, conv1 in fp32" ||
        bad "moka time kernels: $(grep -E 'conv|ip' time.log | grep forward)"
    solver train.prototxt 20 ""
    for p in fp32 bf16; do
        "$moka" train --solver=train.prototxt --precision=$p >train_$p.log 2>&1 ||
            bad "$p training failed: $(tail -2 train_$p.log)"
        sed -n 's/.*Iteration \([0-9]*\) ([^)]*), loss = \([0-9.e+-]*\).*/\1 \2/p' train_$p.log \
            >loss_$p.txt
    done
    grep -q "Precision bf16" train_bf16.log && ok "the bf16 log states the precision" ||
        bad "no precision line in the bf16 log"
    if join loss_fp32.txt loss_bf16.txt | awk '
        { d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > worst) worst = d; if (d > 0) differ = 1 }
        END { printf "%d iterations, largest relative difference %.1e\n", NR, worst
              exit !(NR == 20 && worst <= 0.03 && differ) }' >cmp.txt; then
        ok "bf16 and fp32 losses agree to 3% over 20 iterations ($(cat cmp.txt))"
    else
        bad "bf16 against fp32 losses: $(cat cmp.txt)"
    fi
    [ -f out/train.prototxt_iter_20.caffemodel ] && ok "bf16 run wrote its fp32 snapshot" ||
        bad "no snapshot after the bf16 run"
else
    grep -q "bf16 precision needs a CPU" time.log && echo "skip: no bf16 on this CPU" ||
        bad "moka time --precision=bf16 failed: $(tail -2 time.log)"
fi

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
