#!/usr/bin/env bash
# Snapshots do not depend on the world size: with the global batch fixed at 64, training 12
# iterations as 4 ranks x 16 (to 4), then 2 ranks x 32 (to 8), then 1 rank x 64 (to 12), each
# stage resuming from the previous stage's .solverstate, gives the weights of an uninterrupted
# single-process run; and so does the reverse, 1 -> 2 -> 4. The resumed ranks must get rank 0's
# weights and momentum (broadcast), the iteration and lr schedule position, and must continue
# from the same sample of the global order (the .solverstate's data_position), whatever the world
# size was when it was written. Measure and reasoning as in test_dp_equivalence.sh: the runs may
# be 1e-2 of the distance trained apart (rounding: measured ~1e-4); resuming at a wrong data
# position, or without the momentum, is far more.
#   usage: test_dp_resume.sh MOKA SOURCE_DIR
set -u
source "$(dirname "$0")/common.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

init_weights init.caffemodel
DISPLAY_EVERY=4
lenet_solver solver.prototxt SGD 12 snap "snapshot: 4"
lenet_net net.prototxt 64
ranks 1 train --solver=solver.prototxt >full.log 2>&1 || bad "uninterrupted run failed: $(tail -3 full.log)"
mkdir ref && mv snap_iter_* ref/

for order in "4 2 1" "1 2 4"; do
    rm -f snap_iter_*
    stage=0
    for w in $order; do
        lenet_net net.prototxt $((64 / w))
        args=(train --solver=solver.prototxt --iterations=$((stage + 4)))
        [ "$stage" -gt 0 ] && args+=(--snapshot=snap_iter_$stage.solverstate)
        if ! ranks "$w" "${args[@]}" >"stage$stage.log" 2>&1; then
            bad "order $order: stage $stage on $w ranks failed: $(tail -3 "stage$stage.log")"
        fi
        stage=$((stage + 4))
    done
    if out=$($compare ref/snap_iter_12.caffemodel snap_iter_12.caffemodel 1e-2 --from init.caffemodel); then
        ok "ranks $order (4 iterations each) == uninterrupted single process ($out)"
    else
        bad "ranks $order (4 iterations each) != uninterrupted single process ($out)"
    fi
    # The 2-rank stage ends with the loss at iteration 8 (the first batch of the next stage):
    # the uninterrupted run's, within float noise.
    a=$(grep -o 'Iteration 8 (.*loss = [0-9.e-]*' full.log | sed 's/.*loss = //')
    b=$(grep -o 'Iteration 8, loss = [0-9.e-]*' stage4.log | sed 's/.*loss = //')
    if [ -n "$a" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }'; then
        ok "order $order: loss at iteration 8 after resuming on 2 ranks ($b vs $a)"
    else
        bad "order $order: loss at iteration 8 after resuming on 2 ranks '$b' vs '$a'"
    fi
done

# A stop request on one rank stops them all: SIGINT to the last rank's process only (as Slurm's
# scancel or a user's kill would deliver it), and every rank stops at the same iteration, rank 0
# snapshots there (--sigint_effect's default), the job exits 0, and the snapshot resumes.
rm -f snap_iter_*
lenet_net net.prototxt 32
lenet_solver solver.prototxt SGD 100000 snap
timeout -k 5 120 mpirun -np 2 --oversubscribe --bind-to none "$moka" train --solver=solver.prototxt \
    --threads=1 </dev/null >int.log 2>&1 &
pid=$!
for _ in $(seq 150); do grep -q 'Iteration 20 (' int.log && break; sleep 0.2; done
# The ranks are mpirun's children (mpirun is the child of timeout, $pid).
last=$(pgrep -x moka -P "$(pgrep -x mpirun -P $pid)" | sort -n | tail -1)
[ -n "$last" ] && kill -INT "$last"
wait $pid
rc=$?
stopped=$(ls snap_iter_*.solverstate 2>/dev/null | sed 's/snap_iter_\([0-9]*\).*/\1/')
if [ $rc = 0 ] && [ -n "$stopped" ] && grep -q "Optimization stopped early" int.log &&
    /usr/bin/python3 "$src/tests/ref/read_caffemodel.py" --solverstate "snap_iter_$stopped.solverstate" >/dev/null; then
    ok "SIGINT to one rank: all ranks stopped at iteration $stopped, rank 0 wrote a complete snapshot"
else
    bad "SIGINT to one rank: status $rc, snapshot '$stopped': $(tail -3 int.log)"
fi
if [ -n "$stopped" ] && ranks 2 train --solver=solver.prototxt --snapshot="snap_iter_$stopped.solverstate" \
    --iterations=$((stopped + 5)) >int2.log 2>&1 && [ -f "snap_iter_$((stopped + 5)).caffemodel" ]; then
    ok "resumed from that snapshot"
else
    bad "resume after the stop: $(tail -3 int2.log 2>/dev/null)"
fi

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
