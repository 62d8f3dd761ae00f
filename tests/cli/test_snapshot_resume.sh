#!/usr/bin/env bash
# Snapshot and resume are exact: training 2N iterations in one go gives bit-identical weights to
# training N, snapshotting, and resuming for N more -- for SGD, Nesterov and Adam (momentum and
# Adam history must be restored), on shuffled Fashion-MNIST with dropout (the data position and
# the random streams must be restored too). Also: SIGINT snapshots and stops by default, and a
# snapshot that is interrupted never replaces a complete one.
#   usage: test_snapshot_resume.sh MOKA SOURCE_DIR
set -u
moka=$1
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
failures=0
passed=0

cat >net.prototxt <<P
name: "small"
layer { name: "d" type: "IDXData" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz"
                   batch_size: 32 shuffle: true } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 5 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool" top: "ip1"
  inner_product_param { num_output: 32 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
P

solver() { # type prefix extra
    cat >"$2_solver.prototxt" <<S
net: "net.prototxt"
type: "$1"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "multistep"
gamma: 0.5
stepvalue: 75
stepvalue: 150
max_iter: 200
display: 10
random_seed: 7
snapshot_prefix: "$2"
$3
S
}

for type in SGD Nesterov Adam; do
    extra=""
    [ "$type" = Adam ] && extra="momentum2: 0.999"
    # The same solver file in two directories, so the snapshot names (which the .solverstate
    # records) are the same too.
    rm -rf full part && mkdir full part
    (cd full && solver "$type" run "$extra" && sed -i 's|"net.prototxt"|"../net.prototxt"|' run_solver.prototxt)
    cp full/run_solver.prototxt part/
    (cd full && "$moka" train --solver=run_solver.prototxt --threads=2 2>../full.log </dev/null) ||
        { echo "FAIL $type: full run"; tail -3 full.log; failures=$((failures + 1)); continue; }
    (cd part && "$moka" train --solver=run_solver.prototxt --threads=2 --iterations=100 2>../part1.log </dev/null &&
        "$moka" train --solver=run_solver.prototxt --threads=2 \
            --snapshot=run_iter_100.solverstate 2>../part2.log </dev/null) ||
        { echo "FAIL $type: split run"; tail -3 part1.log part2.log; failures=$((failures + 1)); continue; }
    if cmp full/run_iter_200.caffemodel part/run_iter_200.caffemodel &&
        cmp full/run_iter_200.solverstate part/run_iter_200.solverstate; then
        echo "ok   $type: 200 iterations == 100 + resume 100 (bit-identical weights and history)"
        passed=$((passed + 1))
    else
        echo "FAIL $type: resumed run differs"; failures=$((failures + 1))
        grep "loss =" full.log | tail -2; grep "loss =" part2.log | tail -2
    fi
    # The resumed run reports the same losses as the uninterrupted one.
    a=$(grep -o 'Iteration 150 .*loss = .*' full.log | sed 's/.*loss/loss/')
    b=$(grep -o 'Iteration 150 .*loss = .*' part2.log | sed 's/.*loss/loss/')
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
        echo "ok   $type: loss at iteration 150 is the same after resume ($a)"; passed=$((passed + 1))
    else
        echo "FAIL $type: loss at iteration 150 differs after resume ('$a' vs '$b')"; failures=$((failures + 1))
    fi
done

# SIGINT: default effect is stop, after a final snapshot.
solver SGD sig ""
sed -i 's/max_iter: 200/max_iter: 100000/' sig_solver.prototxt
"$moka" train --solver=sig_solver.prototxt --threads=2 2>sig.log </dev/null &
pid=$!
for _ in $(seq 100); do grep -q "Iteration 10 " sig.log 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
state=$(ls sig_iter_*.solverstate 2>/dev/null | head -1)
if [ "$rc" -eq 0 ] && [ -n "$state" ] && grep -q "Optimization stopped early" sig.log; then
    echo "ok   SIGINT: snapshot $state written, stopped early, exit 0"
    passed=$((passed + 1))
    # The snapshot resumes.
    if "$moka" train --solver=sig_solver.prototxt --threads=2 --snapshot="$state" --iterations=$(( ${state//[^0-9]/} + 5 )) \
        2>resume.log </dev/null; then
        passed=$((passed + 1)); echo "ok   resumed from the SIGINT snapshot"
    else
        echo "FAIL resume from $state"; tail -3 resume.log; failures=$((failures + 1))
    fi
else
    echo "FAIL SIGINT: rc=$rc state=$state"; tail -5 sig.log; failures=$((failures + 1))
fi
# SIGHUP: default effect is a snapshot, and training goes on.
rm -f sig_iter_*
"$moka" train --solver=sig_solver.prototxt --threads=2 --iterations=4000 2>hup.log </dev/null &
pid=$!
for _ in $(seq 100); do grep -q "Iteration 10 " hup.log 2>/dev/null && break; sleep 0.1; done
kill -HUP $pid
wait $pid
rc=$?
n=$(ls sig_iter_*.caffemodel 2>/dev/null | wc -l)
if [ "$rc" -eq 0 ] && [ "$n" -eq 2 ] && grep -q "Optimization Done" hup.log; then
    echo "ok   SIGHUP: snapshot mid-run ($(ls sig_iter_*.caffemodel | head -1)), training finished"
    passed=$((passed + 1))
else
    echo "FAIL SIGHUP: rc=$rc, $n snapshots"; tail -3 hup.log; failures=$((failures + 1))
fi
# --sigint_effect=none ignores it.
"$moka" train --solver=sig_solver.prototxt --threads=2 --sigint_effect=none --iterations=3000 2>none.log </dev/null &
pid=$!
for _ in $(seq 100); do grep -q "Iteration 10 " none.log 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
if [ $? -eq 0 ] && grep -q "Optimization Done" none.log; then
    echo "ok   --sigint_effect=none ignores SIGINT"; passed=$((passed + 1))
else
    echo "FAIL --sigint_effect=none"; tail -3 none.log; failures=$((failures + 1))
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
