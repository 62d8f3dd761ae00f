#!/usr/bin/env bash
# Weights written by moka load in OpenCV's dnn module and give the same outputs: for LeNet (the
# deploy net Caffe ships, examples/mnist/lenet.prototxt, unmodified) and for a small net with
# BatchNorm + Scale, Concat, Eltwise (SUM with coefficients, MAX) and LRN, each trained a few
# iterations with `moka train` (so BatchNorm's running statistics and its scale factor are not
# trivial) and snapshotted to a .caffemodel. The same fixed inputs then go through moka
# (tests/tools/forward_dump) and through cv2.dnn.readNetFromCaffe; every output must agree
# within 1e-4 (max abs difference). Skipped (77) only when Debian's python3-opencv is missing.
#   usage: test_opencv_interop.sh MOKA SOURCE_DIR
set -u
moka=$(realpath "$1")
src=$(realpath "$2")
dump=$(dirname "$moka")/tests/forward_dump
py=/usr/bin/python3
if ! $py -c "import cv2, numpy" 2>/dev/null; then
    echo "skipped: python3-opencv (cv2) cannot be imported; apt-get install python3-opencv"
    exit 77
fi
[ -x "$dump" ] || { echo "FAIL: no test helper $dump (build the forward_dump target)"; exit 1; }
lenet_deploy=$src/../shared/compat/caffe/examples/mnist/lenet.prototxt
[ -f "$lenet_deploy" ] || lenet_deploy=/work/shared/compat/caffe/examples/mnist/lenet.prototxt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
failures=0

solver() { # prefix
    cat >"$1_solver.prototxt" <<S
net: "$1_train.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
max_iter: 6
display: 0
snapshot_prefix: "$1"
random_seed: 5
S
}

# (a) LeNet: the layers of Caffe's deploy file, fed by DummyData, with a loss on top.
cat >lenet_train.prototxt <<'P'
name: "LeNet"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 16 dim: 1 dim: 28 dim: 28 } shape { dim: 16 }
    data_filler { type: "uniform" min: 0 max: 1 } data_filler { type: "constant" value: 3 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
P
cp "$lenet_deploy" lenet_deploy.prototxt

# (b) BatchNorm + Scale (in place), Concat, Eltwise SUM with coefficients and MAX, LRN.
layers_b() { # the shared body after the data layer
    cat <<'P'
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1"
  scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 1.5 }
    bias_filler { type: "gaussian" std: 0.2 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2a" type: "Convolution" bottom: "conv1" top: "conv2a"
  convolution_param { num_output: 4 kernel_size: 1
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "conv2b" type: "Convolution" bottom: "conv1" top: "conv2b"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "cat" type: "Concat" bottom: "conv2a" bottom: "conv2b" top: "cat" }
layer { name: "sum" type: "Eltwise" bottom: "cat" bottom: "conv1" top: "sum"
  eltwise_param { operation: SUM coeff: 1 coeff: -0.5 } }
layer { name: "mx" type: "Eltwise" bottom: "sum" bottom: "cat" top: "mx"
  eltwise_param { operation: MAX } }
layer { name: "norm" type: "LRN" bottom: "mx" top: "norm"
  lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 } }
layer { name: "pool" type: "Pooling" bottom: "norm" top: "pool"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
  inner_product_param { num_output: 5
    weight_filler { type: "xavier" } bias_filler { type: "gaussian" std: 0.1 } } }
P
}
{
    echo 'name: "bnnet"'
    echo 'layer { name: "data" type: "DummyData" top: "data" top: "label"'
    echo '  dummy_data_param { shape { dim: 8 dim: 3 dim: 12 dim: 12 } shape { dim: 8 }'
    echo '    data_filler { type: "gaussian" mean: 0.3 std: 1 } data_filler { type: "constant" value: 2 } } }'
    layers_b
    echo 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }'
} >bn_train.prototxt
{
    echo 'name: "bnnet"'
    echo 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 12 dim: 12 } } }'
    layers_b
} >bn_deploy.prototxt

for net in lenet bn; do
    solver $net
    if ! "$moka" train --solver=${net}_solver.prototxt >${net}_train.log 2>&1; then
        echo "FAIL: moka train $net"; tail -5 ${net}_train.log; failures=$((failures + 1)); continue
    fi
    [ -f ${net}_iter_6.caffemodel ] || { echo "FAIL: no ${net}_iter_6.caffemodel"; failures=$((failures + 1)); }
done

# The blobs moka wrote have exactly Caffe's shapes (decoded here from the protobuf wire format by
# hand: NetParameter.layer = 100, LayerParameter name = 1 / blobs = 7, BlobProto shape = 7 and
# data = 5, BlobShape dim = 1), and BatchNorm's third blob holds the moving-average factor that
# OpenCV divides the statistics by: after 6 iterations with the default 0.999, sum 0.999^k.
$py - <<'PY' || failures=$((failures + 1))
import struct, sys
def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, val
def varint(buf, i):
    v = s = 0
    while True:
        b = buf[i]; i += 1
        v |= (b & 0x7f) << s; s += 7
        if b < 0x80:
            return v, i
def blobs(path):
    out = {}
    for num, _, layer in fields(open(path, "rb").read()):
        if num != 100:
            continue
        name, shapes, data = None, [], []
        for f, _, v in fields(layer):
            if f == 1:
                name = v.decode()
            elif f == 7:
                dims, vals = [], b""
                for g, wt, w in fields(v):
                    if g == 7:
                        for h, hw, d in fields(w):
                            if h == 1 and hw == 2:
                                j = 0
                                while j < len(d):
                                    x, j = varint(d, j); dims.append(x)
                            elif h == 1:
                                dims.append(d)
                    elif g == 5:
                        vals += w
                shapes.append(tuple(dims))
                data.append(struct.unpack("<%df" % (len(vals) // 4), vals))
        out[name] = (shapes, data)
    return out
want = {"lenet": {"conv1": [(20, 1, 5, 5), (20,)], "conv2": [(50, 20, 5, 5), (50,)],
                  "ip1": [(500, 800), (500,)], "ip2": [(10, 500), (10,)]},
        "bn": {"conv1": [(8, 3, 3, 3), (8,)], "bn1": [(8,), (8,), (1,)], "sc1": [(8,), (8,)],
               "conv2a": [(4, 8, 1, 1), (4,)], "conv2b": [(4, 8, 3, 3), (4,)], "ip": [(5, 288), (5,)]}}
bad = 0
for net, layers in want.items():
    got = blobs(net + "_iter_6.caffemodel")
    for layer, shapes in layers.items():
        g = got.get(layer, ([], []))[0]
        if g != shapes:
            print("FAIL %s.caffemodel layer %s: blob shapes %s, Caffe's are %s" % (net, layer, g, shapes))
            bad += 1
factor = blobs("bn_iter_6.caffemodel")["bn1"][1][2][0]
expect = sum(0.999 ** k for k in range(6))
if abs(factor - expect) > 1e-4:
    print("FAIL bn1 moving-average factor %g, want %g" % (factor, expect)); bad += 1
else:
    print("ok   caffemodel blob shapes are Caffe's; bn1 factor %.6g" % factor)
sys.exit(1 if bad else 0)
PY

# Fixed inputs, then moka's forward of every compared blob.
$py - <<'PY'
import numpy as np
rng = np.random.RandomState(7)
rng.uniform(0, 1, (64, 1, 28, 28)).astype(np.float32).tofile("lenet_in.raw")
rng.normal(0.3, 1, (2, 3, 12, 12)).astype(np.float32).tofile("bn_in.raw")
PY
# NET:BLOB:LAYER -- moka's blob BLOB against the output of OpenCV's layer LAYER (OpenCV names
# outputs by layer, so an in-place chain conv1 -> bn1 -> sc1 -> relu1 ends in layer relu1).
compare=""
for spec in lenet:ip2:ip2 lenet:prob:prob bn:conv1:relu1 bn:cat:cat bn:mx:mx bn:norm:norm bn:ip:ip; do
    net=${spec%%:*}
    blob=${spec#*:}
    blob=${blob%%:*}
    if "$dump" ${net}_deploy.prototxt ${net}_iter_6.caffemodel ${net}_in.raw ${net}_${blob}.raw "$blob" \
        2>dump.err; then
        compare="$compare $spec"
    else
        echo "FAIL: forward_dump $spec: $(cat dump.err)"; failures=$((failures + 1))
    fi
done

# OpenCV's forward of the same blobs from the same files.
$py - $compare <<'PY' || failures=$((failures + 1))
import sys
import cv2
import numpy as np
shapes = {"lenet": (64, 1, 28, 28), "bn": (2, 3, 12, 12)}
bad = 0
worst = {}
for spec in sys.argv[1:]:
    net_name, blob, layer = spec.split(":")
    net = cv2.dnn.readNetFromCaffe(net_name + "_deploy.prototxt", net_name + "_iter_6.caffemodel")
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    x = np.fromfile(net_name + "_in.raw", dtype=np.float32).reshape(shapes[net_name])
    net.setInput(x)
    cv_out = net.forward(layer)
    ours = np.fromfile("%s_%s.raw" % (net_name, blob), dtype=np.float32)
    if ours.size != cv_out.size:
        print("FAIL %s: moka gave %d values, OpenCV %s" % (spec, ours.size, cv_out.shape))
        bad += 1
        continue
    diff = float(np.max(np.abs(ours - cv_out.reshape(-1))))
    scale = float(np.max(np.abs(cv_out)))
    ok = diff <= 1e-4
    print("%s %s: max abs difference %.3g (max |value| %.3g, shape %s)"
          % ("ok  " if ok else "FAIL", spec, diff, scale, tuple(cv_out.shape)))
    bad += not ok
sys.exit(1 if bad else 0)
PY

if [ $failures -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all outputs match OpenCV within 1e-4"
