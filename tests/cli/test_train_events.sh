#!/usr/bin/env bash
# A short LeNet run with --log_dir writes TensorBoard events for every expected tag at the
# expected steps, read back by the independent decoder tests/ref/read_tfevents.py; the logged
# values match the training log; a resumed run appends a new file with a SessionLog START.
#   usage: test_train_events.sh MOKA SOURCE_DIR
set -u
moka=$1
src=$2
data=/usr/share/datasets/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|^net: .*|net: \"$src/examples/mnist/lenet_train_test.prototxt\"|" \
    -e "s|^snapshot_prefix: .*|snapshot_prefix: \"$tmp/lenet\"|" \
    -e "s|^test_interval: .*|test_interval: 100|" -e "s|^test_iter: .*|test_iter: 10|" \
    "$src/examples/mnist/lenet_solver.prototxt" >"$tmp/lenet.prototxt"
cd "$tmp"
"$moka" train --solver=lenet.prototxt --iterations=200 --log_dir=logs --histogram_interval=100 \
    --log_images=2 2>train.log </dev/null || { echo "FAIL training"; tail -3 train.log; exit 1; }
files=(logs/lenet/events.out.tfevents.*)
[ ${#files[@]} -eq 1 ] || { echo "FAIL expected one event file in logs/lenet, got ${#files[@]}"; exit 1; }
/usr/bin/python3 "$src/tests/ref/read_tfevents.py" "${files[0]}" >dump.txt ||
    { echo "FAIL the independent decoder rejects the file"; exit 1; }
/usr/bin/python3 - dump.txt train.log <<'PY'
import re, struct, sys
dump, log = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read()
failed = 0
def check(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what)
    failed += not cond
seen = {}
for line in dump:
    f = line.split()
    if len(f) >= 4 and f[0] == "event" and f[2] in ("scalar", "histo", "image"):
        seen.setdefault((f[2], f[3]), []).append(int(f[1]))
        if f[2] == "scalar":
            seen[("value", f[3], int(f[1]))] = struct.unpack(">f", bytes.fromhex(f[4]))[0]
check(dump[0] == "event 0 file_version brain.Event:2", "first record is file_version brain.Event:2")
for tag in ("train/loss", "train/loss_smoothed", "train/lr"):
    check(seen.get(("scalar", tag)) == [0, 100], "%s at steps 0, 100" % tag)
check(seen.get(("scalar", "train/images_per_sec")) == [100], "train/images_per_sec at step 100")
for tag in ("test/accuracy", "test/loss"):
    check(seen.get(("scalar", tag)) == [0, 100, 200], "%s at steps 0, 100, 200" % tag)
blobs = ["conv1", "conv2", "ip1", "ip2"]
for kind in ("params", "grads"):
    for layer in blobs:
        for b in (0, 1):
            tag = "%s/%s/%d" % (kind, layer, b)
            check(seen.get(("histo", tag)) == [0, 100], "histogram %s at steps 0, 100" % tag)
check(seen.get(("image", "input/0")) == [0, 100] and seen.get(("image", "input/1")) == [0, 100],
      "input images 0 and 1 at steps 0, 100")
graph = [l for l in dump if l.startswith("event 0 graph")]
check(len(graph) == 1 and "nodes=9" in graph[0], "the net graph, 9 nodes")
check(any(l.strip().startswith("node conv2 Convolution inputs=pool1") for l in dump), "conv2's input is pool1")
# Values agree with the log (which prints %g, 6 significant digits).
m = re.search(r"Iteration 100 \(.*\), loss = (\S+)", log)
v = seen.get(("value", "train/loss_smoothed", 100))
check(m is not None and v is not None and abs(float(m.group(1)) - v) <= 1e-5 * max(1, abs(v)),
      "train/loss_smoothed at 100 matches the log (%s vs %s)" % (m and m.group(1), v))
accs = re.findall(r"Test net output #0: accuracy = (\S+)", log)
v = seen.get(("value", "test/accuracy", 200))
check(accs and v is not None and abs(float(accs[-1]) - v) < 1e-5, "test/accuracy at 200 matches the log")
sys.exit(1 if failed else 0)
PY
rc=$?
# Resume: a new file in the same run, starting with a SessionLog START at the snapshot's step.
"$moka" train --solver=lenet.prototxt --iterations=300 --snapshot=lenet_iter_200.solverstate \
    --log_dir=logs 2>resume.log </dev/null || { echo "FAIL resume"; tail -3 resume.log; exit 1; }
n=$(ls logs/lenet/ | wc -l)
newest=$(ls -t logs/lenet/events.out.tfevents.* | head -1)
if [ "$n" -eq 2 ] && /usr/bin/python3 "$src/tests/ref/read_tfevents.py" "$newest" | grep -q "^event 200 session_log 1$"; then
    echo "ok   resume appends a second file that starts a session (SessionLog START) at step 200"
else
    echo "FAIL resume: $n files"; /usr/bin/python3 "$src/tests/ref/read_tfevents.py" "$newest" | head -3; rc=1
fi
[ "$rc" -eq 0 ] && echo "all passed"
exit $rc
