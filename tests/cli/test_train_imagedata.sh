#!/usr/bin/env bash
# An ImageData net trains: 320 Fashion-MNIST training images written here as PNG files (with
# PIL, from the IDX data), a "path label" list, and a small net (ImageData -> InnerProduct ->
# ReLU -> InnerProduct -> SoftmaxWithLoss) trained by `moka train` for 120 iterations. The mean
# loss of the last 20 iterations must be well below that of the first 20 (an ImageData layer
# that mixed up images and labels would leave the loss near ln 10 = 2.3).
#   usage: test_train_imagedata.sh MOKA SOURCE_DIR
set -u
moka=$1
py=/usr/bin/python3
data=/usr/share/datasets/fashion-mnist
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
"$py" -c 'import PIL' 2>/dev/null || { echo "skip: python3-pil is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

mkdir png
"$py" - "$data" <<'PY'
import gzip, struct, sys
from PIL import Image
d = sys.argv[1]
with gzip.open(d + "/train-images-idx3-ubyte.gz") as f:
    _, n, h, w = struct.unpack(">IIII", f.read(16))
    pix = f.read(320 * h * w)
with gzip.open(d + "/train-labels-idx1-ubyte.gz") as f:
    f.read(8)
    labels = f.read(320)
with open("train.txt", "w") as lst:
    for i in range(320):
        Image.frombytes("L", (w, h), pix[i * h * w:(i + 1) * h * w]).save("png/%03d.png" % i)
        lst.write("%03d.png %d\n" % (i, labels[i]))
PY
[ "$(wc -l <train.txt)" -eq 320 ] && ok "wrote 320 PNG files and the list" || fail "list: $(wc -l <train.txt) lines"

cat >net.prototxt <<'EOF'
name: "imagedata_mlp"
layer {
  name: "data" type: "ImageData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  image_data_param { source: "train.txt" root_folder: "png/" batch_size: 32 shuffle: true
                     is_color: false }
}
layer {
  name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 64 weight_filler { type: "xavier" } }
}
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer {
  name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
EOF
cat >solver.prototxt <<'EOF'
net: "net.prototxt"
base_lr: 0.05
momentum: 0.9
lr_policy: "fixed"
display: 1
max_iter: 120
snapshot_prefix: "mlp"
random_seed: 1701
solver_mode: CPU
EOF
if "$moka" train --solver=solver.prototxt 2>train.log </dev/null; then
    ok "trains 120 iterations"
else
    fail "training failed: $(tail -5 train.log)"
fi
grep -q "layer 'data': 320 images of 1 x 28 x 28 from 'train.txt', shuffled each epoch" train.log &&
    ok "the layer read the list" || fail "no ImageData log line: $(grep -m3 data train.log)"
losses=$(grep -oE "Iteration [0-9]+ \(.*\), loss = [0-9.eE+-]+" train.log | sed 's/.*loss = //')
if out=$(printf '%s\n' "$losses" | awk '
    { l[NR] = $1 }
    END {
        if (NR < 100) { printf "only %d losses logged\n", NR; exit 1 }
        for (i = 1; i <= 20; i++) { a += l[i]; b += l[NR - 20 + i] }
        a /= 20; b /= 20
        printf "mean loss %.3f over the first 20 iterations, %.3f over the last 20\n", a, b
        exit !(b < 0.6 * a && b < 1.2)
    }'); then
    ok "$out"
else
    fail "loss did not go down: $out"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
