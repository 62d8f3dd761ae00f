#!/usr/bin/env bash
# moka across hosts: three network namespaces on one bridge (../shared/tools/netns-cluster), so
# ranks talk over real TCP between addresses, and faults can be injected.
#   1. A 3-host LeNet run (per-rank batch 64) reaches the test accuracy of one process with the
#      same global batch (192) after the same iterations, within 1 point.
#   2. With 5 ms delay and 1% loss on every host it still completes.
#   3. `crash` a host mid-run: mpirun exits non-zero within 30 s, the output names the host, the
#      last snapshot is complete (both files decode with the independent reader), and training
#      resumes from it on the two remaining hosts and completes.
#   4. `cut` a host off the network (silent: no RST, no ICMP): the same, within 30 s; the
#      heartbeat watchdog names the lost host.
#   usage: test_cluster.sh MOKA SOURCE_DIR      (needs root: network namespaces)
set -u
source "$(dirname "$0")/common.sh"
cluster=$(cd "$src/.." && pwd)/shared/tools/netns-cluster
[ -x "$cluster" ] || { echo "skip: no $cluster"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: network namespaces need root"; exit 77; }
export NETNS_CLUSTER_PREFIX=mokat NETNS_CLUSTER_SUBNET=10.78.0
# Notice a silent host within seconds rather than Open MPI's default ~8 minutes (README).
export OMPI_MCA_oob_tcp_keepalive_time=5 OMPI_MCA_oob_tcp_keepalive_intvl=2
export OMPI_MCA_oob_tcp_keepalive_probes=3
tmp=$(mktemp -d)
trap '"$cluster" down >/dev/null 2>&1; rm -rf "$tmp"' EXIT
cd "$tmp"
"$cluster" up 3 >/dev/null 2>&1 || { echo "skip: netns-cluster up failed"; exit 77; }

# cluster_train LOG NP [mpirun args] -- moka args...
cluster_train() {
    local log=$1 np=$2
    shift 2
    timeout -k 5 240 "$cluster" mpirun -np "$np" --wdir "$tmp" "$@" >"$log" 2>&1
}
acc() { grep -o 'Test net output #0: accuracy = [0-9.]*' "$1" | tail -1 | sed 's/.*= //'; }

# 1. Accuracy band.
lenet_net net.prototxt 64 train
lenet_solver solver.prototxt SGD 400 acc3 "test_iter: 100
test_interval: 400"
cluster_train run3.log 3 "$moka" train --solver=solver.prototxt --threads=1 ||
    bad "3-host run failed: $(tail -3 run3.log)"
lenet_net net.prototxt 192 train
lenet_solver solver.prototxt SGD 400 acc1 "test_iter: 100
test_interval: 400"
ranks 1 train --solver=solver.prototxt >run1.log 2>&1 || bad "1-process run failed: $(tail -3 run1.log)"
a3=$(acc run3.log)
a1=$(acc run1.log)
if [ -n "$a3" ] && [ -n "$a1" ] && awk -v a="$a3" -v b="$a1" 'BEGIN { d = a - b; exit !(d <= 0.01 && d >= -0.01 && a > 0.7) }'; then
    ok "3 hosts x batch 64: test accuracy $a3, one process x batch 192: $a1"
else
    bad "3 hosts: accuracy '$a3' vs one process '$a1'"
fi
grep -q 'Data-parallel training on 3 ranks.*mokath1 x1, mokath2 x1, mokath3 x1' run3.log &&
    ok "the log names the 3 hosts" || bad "no host line: $(grep Data-parallel run3.log)"

# 2. Delay and loss.
lenet_net net.prototxt 64 train
lenet_solver solver.prototxt SGD 30 netem
"$cluster" netem all 'delay 5ms loss 1%' >/dev/null
if cluster_train netem.log 3 "$moka" train --solver=solver.prototxt --threads=1 &&
    [ -f netem_iter_30.caffemodel ]; then
    ok "completes with 5 ms delay and 1% loss on every host"
else
    bad "netem run: $(tail -3 netem.log)"
fi
"$cluster" netem all clear >/dev/null

# 3 and 4. Faults. fault KIND HOST SURVIVORS
fault() {
    local kind=$1 host=$2 survivors=$3
    rm -f snap_iter_*
    lenet_solver solver.prototxt SGD 100000 snap "snapshot: 20"
    local t0
    t0=$(date +%s)
    cluster_train "$kind.log" 3 "$moka" train --solver=solver.prototxt --threads=1 &
    local pid=$!
    for _ in $(seq 240); do [ -f snap_iter_40.solverstate ] && break; sleep 0.25; done
    [ -f snap_iter_40.solverstate ] || { bad "$kind: no snapshot after 60 s: $(tail -3 "$kind.log")"; kill $pid; return; }
    "$cluster" "$kind" "$host" >/dev/null
    t0=$(date +%s)
    wait $pid
    local rc=$? took=$(($(date +%s) - t0))
    [ "$kind" = cut ] && "$cluster" heal "$host" >/dev/null
    if [ $rc -ne 0 ] && [ $took -le 30 ]; then
        ok "$kind $host: the job ended with status $rc after $took s"
    else
        bad "$kind $host: status $rc after $took s"
    fi
    # moka's watchdog says "lost rank R on host H"; Open MPI, when it notices first, "on node H".
    local named
    named=$(grep -m1 -E "on (host|node) $host\b" "$kind.log")
    [ -n "$named" ] && ok "$kind: the failure names $host: $(echo "$named" | cut -c1-160)" ||
        bad "$kind: $host not named: $(tail -5 "$kind.log")"
    # The newest snapshot whose .solverstate exists is complete, and so is its .caffemodel.
    local last
    last=$(ls snap_iter_*.solverstate | sed 's/snap_iter_\([0-9]*\).*/\1/' | sort -n | tail -1)
    if /usr/bin/python3 "$src/tests/ref/read_caffemodel.py" --solverstate "snap_iter_$last.solverstate" >/dev/null &&
        /usr/bin/python3 "$src/tests/ref/read_caffemodel.py" "snap_iter_$last.caffemodel" >/dev/null; then
        ok "$kind: snapshot $last is complete"
    else
        bad "$kind: snapshot $last does not decode"
    fi
    # Resume on the survivors.
    if cluster_train "$kind-resume.log" 2 -H "$survivors" "$moka" train --solver=solver.prototxt \
        --threads=1 --snapshot="snap_iter_$last.solverstate" --iterations=$((last + 20)) &&
        [ -f "snap_iter_$((last + 20)).caffemodel" ] &&
        grep -q "Data-parallel training on 2 ranks" "$kind-resume.log"; then
        ok "$kind: resumed from iteration $last on $survivors and finished"
    else
        bad "$kind: resume on $survivors: $(tail -3 "$kind-resume.log")"
    fi
}
fault crash mokath3 mokath1,mokath2
fault cut mokath2 mokath1,mokath3

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
