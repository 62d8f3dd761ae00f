#!/usr/bin/env bash
# The Caffe user's workflow, with Caffe's own unmodified LeNet files (from ../shared/compat/caffe,
# copied at test time into a directory laid out as Caffe's): examples/mnist/create_mnist.sh builds
# the LMDBs with `moka convert_mnist_data`, `moka train` trains from them, and the .caffemodel it
# writes classifies the 10000 test images through OpenCV's dnn module (Caffe's unmodified deploy
# lenet.prototxt) exactly as moka does.
#   usage: test_caffe_seed_workflow.sh MOKA SOURCE_DIR
set -u
moka=$1
src=$2
caffe=$src/../shared/compat/caffe/examples/mnist
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
[ -f "$caffe/lenet_train_test.prototxt" ] || { echo "skip: no $caffe"; exit 77; }
dump=$(dirname "$moka")/tests/forward_dump
min_acc=0.84 # measured 0.859 after 1000 iterations
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/examples/mnist"
cp "$caffe/lenet_solver.prototxt" "$caffe/lenet_train_test.prototxt" "$caffe/lenet.prototxt" "$tmp/examples/mnist/"
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }

MOKA=$moka sh "$src/examples/mnist/create_mnist.sh" >create.log 2>&1 && [ -f examples/mnist/mnist_train_lmdb/data.mdb ] &&
    ok "create_mnist.sh built examples/mnist/mnist_{train,test}_lmdb" || { bad "create_mnist.sh"; cat create.log; }
"$moka" train --solver=examples/mnist/lenet_solver.prototxt --iterations=1000 2>train.log </dev/null ||
    { bad "moka train on Caffe's unmodified files"; tail -3 train.log; echo "$passed passed, $((failed)) failed"; exit 1; }
acc=$(grep "Test net output #0: accuracy" train.log | tail -1 | sed 's/.*accuracy = //')
grep -q "^W.*solver_mode: GPU" train.log && ok "Caffe's solver_mode: GPU warns and trains on the CPU" || bad "no GPU warning"
awk -v a="$acc" -v m="$min_acc" 'BEGIN { exit !(a >= m) }' && ok "LMDB LeNet: test accuracy $acc >= $min_acc after 1000 iterations" ||
    bad "test accuracy $acc < $min_acc"

# OpenCV dnn on all 10000 test images, against moka's own forward of the same deploy net.
if ! /usr/bin/python3 -c "import cv2, numpy" 2>/dev/null; then
    echo "skipped: OpenCV comparison (python3-opencv or python3-numpy not importable)"
else
    sed 's/dim: 64/dim: 10000/' examples/mnist/lenet.prototxt >deploy.prototxt
    /usr/bin/python3 - "$data" <<'PY'
import gzip, sys, numpy as np
d = sys.argv[1]
x = np.frombuffer(gzip.open(d + "/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
(x.astype(np.float32) * np.float32(0.00390625)).tofile("in.raw")  # the net's transform_param scale
PY
    if "$dump" deploy.prototxt examples/mnist/lenet_iter_1000.caffemodel in.raw moka_prob.raw prob 2>dump.log; then
        /usr/bin/python3 - "$data" "$acc" <<'PY'
import gzip, sys, numpy as np, cv2
d, acc = sys.argv[1], float(sys.argv[2])
labels = np.frombuffer(gzip.open(d + "/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
x = np.fromfile("in.raw", np.float32).reshape(10000, 1, 28, 28)
net = cv2.dnn.readNetFromCaffe("examples/mnist/lenet.prototxt", "examples/mnist/lenet_iter_1000.caffemodel")
cv_prob = []
for i in range(0, 10000, 500):
    net.setInput(x[i:i + 500])
    cv_prob.append(net.forward().reshape(500, 10))
cv_prob = np.concatenate(cv_prob)
moka_prob = np.fromfile("moka_prob.raw", np.float32).reshape(10000, 10)
same = float(np.mean(cv_prob.argmax(1) == moka_prob.argmax(1)))
cv_acc = float(np.mean(cv_prob.argmax(1) == labels))
moka_acc = float(np.mean(moka_prob.argmax(1) == labels))
diff = float(np.abs(cv_prob - moka_prob).max())
print("opencv accuracy %.4f, moka forward %.4f, trainer reported %.4f, identical predictions %.4f, max |dp| %.2g"
      % (cv_acc, moka_acc, acc, same, diff))
ok = same >= 0.999 and abs(moka_acc - acc) < 1e-4 and abs(cv_acc - acc) <= 0.001
sys.exit(0 if ok else 1)
PY
        [ $? -eq 0 ] && ok "OpenCV dnn classifies the 10000 test images as moka does" || bad "OpenCV disagrees"
    else
        bad "forward_dump"; cat dump.log
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
