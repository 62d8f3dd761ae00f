#!/usr/bin/env bash
# `moka convert_imageset` then `moka compute_image_mean` on PNG and JPEG files written here with
# PIL: the mean.binaryproto (parsed by hand from the protobuf wire format) must equal the mean
# numpy computes from PIL's decoding of the same files, in Caffe's (1, C, H, W) BGR layout; the
# LMDB records, read with python3-lmdb when it is installed, must hold "%08d_<path>" keys and
# exactly the decoded pixels (raw) or the files' own bytes (--encoded). Then --gray, --resize_*,
# --shuffle, and the refusals: a missing image and a malformed list line (named by list:line),
# an existing DB, a bad --encode_type.
#   usage: test_convert_imageset.sh MOKA SOURCE_DIR
set -u
moka=$1
py=/usr/bin/python3
"$py" -c 'import numpy, PIL' 2>/dev/null || { echo "skip: python3-numpy or python3-pil missing"; exit 77; }
if "$moka" convert_imageset --help 2>&1 | grep -q "unknown command"; then
    echo "skip: this moka has no convert_imageset command"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

# 9 RGB PNGs and 3 JPEGs (one gray) of 5 x 6 under imgs/, listed with labels i mod 4.
mkdir imgs
"$py" - <<'PY'
import numpy as np
from PIL import Image
rng = np.random.RandomState(3)
with open("list.txt", "w") as f:
    for i in range(12):
        a = rng.randint(0, 256, size=(5, 6, 3)).astype(np.uint8)
        if i < 9:
            name = "p%02d.png" % i
            Image.fromarray(a, "RGB").save("imgs/" + name)
        elif i < 11:
            name = "j%02d.jpg" % i
            Image.fromarray(a, "RGB").save("imgs/" + name, quality=90)
        else:
            name = "g%02d.jpg" % i
            Image.fromarray(a[:, :, 0], "L").save("imgs/" + name, quality=90)
        f.write("%s %d\n" % (name, i % 4))
PY

# Parses a BlobProto (legacy num/channels/height/width, shape, packed data) and compares it with
# numpy's mean over the listed images as PIL decodes them (colour: B, G, R planes).
cat >check_mean.py <<'PY'
import os, struct, sys
import numpy as np
from PIL import Image

def varint(b, p):
    v, s = 0, 0
    while True:
        c = b[p]; p += 1
        v |= (c & 0x7F) << s; s += 7
        if not c & 0x80:
            return v, p

def fields(b):
    out, p = [], 0
    while p < len(b):
        k, p = varint(b, p)
        field, wire = k >> 3, k & 7
        if wire == 0:
            v, p = varint(b, p)
        elif wire == 2:
            n, p = varint(b, p); v = b[p:p + n]; p += n
        elif wire == 5:
            v = b[p:p + 4]; p += 4
        else:
            raise SystemExit("unexpected wire type %d" % wire)
        out.append((field, v))
    return out

path, mode, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
size = tuple(int(x) for x in sys.argv[4].split("x")) if len(sys.argv) > 4 else None
f = fields(open(path, "rb").read())
legacy = [dict(f).get(k) for k in (1, 2, 3, 4)]
shape = []
for field, v in f:
    if field == 7:
        dims = dict(fields(v)).get(1)
        p, shape = 0, []
        while p < len(dims):
            x, p = varint(dims, p); shape.append(x)
data = np.frombuffer(b"".join(v for k, v in f if k == 5), dtype="<f4")
imgs = []
for line in open(os.environ.get("LIST", "list.txt")):
    name = line.split()[0]
    im = Image.open("imgs/" + name)
    if mode == "gray":
        if name.endswith(".jpg"):
            im.draft("L", None)  # libjpeg's own luminance, as moka (and OpenCV) ask for it
        im = im.convert("L")
        a = np.asarray(im, dtype=np.float64)[None]
    else:
        a = np.asarray(im.convert("RGB"), dtype=np.float64)[:, :, ::-1].transpose(2, 0, 1)
    imgs.append(a)
want = np.mean(imgs, axis=0)
if size:  # resized: only the shape and the overall level can be checked against unresized data
    want_shape = (want.shape[0],) + size
else:
    want_shape = want.shape
if legacy != [1] + list(want_shape) or shape != [1] + list(want_shape):
    raise SystemExit("shape: legacy %s, shape %s, want (1,) + %s" % (legacy, shape, want_shape))
got = data.reshape(want_shape)
if size:
    d = abs(got.mean() - want.mean())
else:
    d = np.abs(got - want).max()
if not d <= tol:
    raise SystemExit("mean differs by %g > %g" % (d, tol))
print("mean %s matches numpy within %g (max diff %.3g)" % (want_shape, tol, d))
PY

if "$moka" convert_imageset imgs/ list.txt db 2>convert.log; then ok "converts"; else fail "convert: $(cat convert.log)"; fi
if "$moka" compute_image_mean db mean.binaryproto 2>mean.log; then
    ok "computes the mean"
else
    fail "compute_image_mean: $(cat mean.log)"
fi
# float32 of a mean of 12 integers: exact to ~1e-5.
if out=$("$py" check_mean.py mean.binaryproto color 1e-4 2>&1); then ok "$out"; else fail "colour mean: $out"; fi
grep -q "mean_value channel \[2\]" mean.log && ok "prints per-channel means" || fail "no per-channel means: $(cat mean.log)"

# Records read back independently (keys, raw pixels, encoded bytes) when python3-lmdb exists.
cat >check_db.py <<'PY'
import os, sys
import lmdb
import numpy as np
from PIL import Image

def varint(b, p):
    v, s = 0, 0
    while True:
        c = b[p]; p += 1
        v |= (c & 0x7F) << s; s += 7
        if not c & 0x80:
            return v, p

def datum(b):
    out, p = {}, 0
    while p < len(b):
        k, p = varint(b, p)
        field, wire = k >> 3, k & 7
        if wire == 0:
            out[field], p = varint(b, p)
        elif wire == 2:
            n, p = varint(b, p); out[field] = b[p:p + n]; p += n
        else:
            raise SystemExit("unexpected wire type %d" % wire)
    return out

db, mode = sys.argv[1], sys.argv[2]
names = [(l.split()[0], int(l.split()[1])) for l in open(os.environ.get("LIST", "list.txt"))]
env = lmdb.open(db, readonly=True, lock=False)
with env.begin() as txn:
    recs = list(txn.cursor())
if len(recs) != len(names):
    raise SystemExit("%d records for %d images" % (len(recs), len(names)))
seen = set()
for i, (k, v) in enumerate(recs):
    k = k.decode()
    if k[:9] != "%08d_" % i:
        raise SystemExit("key %r at %d" % (k, i))
    name = k[9:]
    label = dict(names)[name]
    seen.add(name)
    d = datum(bytes(v))
    if d.get(5, 0) != label:
        raise SystemExit("%s: label %s, want %d" % (k, d.get(5), label))
    if mode == "encoded":
        if d.get(7) != 1 or d.get(4) != open("imgs/" + name, "rb").read():
            raise SystemExit("%s: not the file's own bytes" % k)
    else:
        im = np.asarray(Image.open("imgs/" + name).convert("RGB"))[:, :, ::-1].transpose(2, 0, 1)
        if (d.get(1), d.get(2), d.get(3)) != im.shape or d.get(4) != im.tobytes():
            raise SystemExit("%s: raw pixels differ" % k)
if mode == "shuffled" and [bytes(k).decode()[9:] for k, _ in recs] == [n for n, _ in names]:
    raise SystemExit("--shuffle kept the list order")
if seen != set(n for n, _ in names):
    raise SystemExit("records miss images")
print("%d records of %s match" % (len(recs), db))
PY
if "$py" -c 'import lmdb' 2>/dev/null; then
    if out=$("$py" check_db.py db raw 2>&1); then ok "raw records: $out"; else fail "raw records: $out"; fi
else
    echo "(python3-lmdb not installed: records not read back)"
fi

# --encoded keeps each file's own bytes, so its mean (decoding them) is that of the files. The
# colour files only: as in Caffe, the gray JPEG would stay a one-channel record (checked below).
head -11 list.txt >list_rgb.txt
if "$moka" convert_imageset --encoded imgs/ list_rgb.txt db_enc 2>enc.log &&
    "$moka" compute_image_mean db_enc mean_enc.binaryproto 2>>enc.log; then
    if out=$(LIST=list_rgb.txt "$py" check_mean.py mean_enc.binaryproto color 1e-4 2>&1); then
        ok "--encoded: $out"
    else
        fail "--encoded: $out"
    fi
    if "$py" -c 'import lmdb' 2>/dev/null; then
        if out=$(LIST=list_rgb.txt "$py" check_db.py db_enc encoded 2>&1); then ok "encoded records: $out"; else fail "encoded records: $out"; fi
    fi
else
    fail "--encoded: $(cat enc.log)"
fi
# --encode_type=png re-encodes everything as PNG: lossless, so again the same mean.
if "$moka" convert_imageset --encode_type=png imgs/ list.txt db_png 2>png.log &&
    "$moka" compute_image_mean db_png mean_png.binaryproto 2>>png.log; then
    cmp -s mean.binaryproto mean_png.binaryproto && ok "--encode_type=png: same mean" || fail "--encode_type=png: mean differs"
else
    fail "--encode_type=png: $(cat png.log)"
fi
# --shuffle: the same records in another order, so the same mean.
if "$moka" convert_imageset --shuffle imgs/ list.txt db_shuf 2>shuf.log &&
    "$moka" compute_image_mean db_shuf mean_shuf.binaryproto 2>>shuf.log; then
    if out=$("$py" check_mean.py mean_shuf.binaryproto color 1e-4 2>&1); then ok "--shuffle: $out"; else fail "--shuffle: $out"; fi
    if "$py" -c 'import lmdb' 2>/dev/null; then
        if out=$("$py" check_db.py db_shuf shuffled 2>&1); then ok "shuffled records: $out"; else fail "shuffled records: $out"; fi
    fi
else
    fail "--shuffle: $(cat shuf.log)"
fi
# --gray: one plane; libpng's and PIL's colour-to-gray round differently (at most 1 level).
if "$moka" convert_imageset --gray imgs/ list.txt db_gray 2>gray.log &&
    "$moka" compute_image_mean db_gray mean_gray.binaryproto 2>>gray.log; then
    if out=$("$py" check_mean.py mean_gray.binaryproto gray 1.0 2>&1); then ok "--gray: $out"; else fail "--gray: $out"; fi
else
    fail "--gray: $(cat gray.log)"
fi
# --resize_height/--resize_width: the new shape, and an overall level close to the source's.
if "$moka" convert_imageset --resize_height=4 --resize_width=3 imgs/ list.txt db_small 2>small.log &&
    "$moka" compute_image_mean db_small mean_small.binaryproto 2>>small.log; then
    if out=$("$py" check_mean.py mean_small.binaryproto color 12 4x3 2>&1); then ok "--resize: $out"; else fail "--resize: $out"; fi
else
    fail "--resize: $(cat small.log)"
fi

# Refusals.
expect() { # expect NAME RC TEXT -- command...
    local name=$1 want_rc=$2 text=$3; shift 4
    "$@" >out.log 2>&1; local rc=$?
    if [ $rc -eq "$want_rc" ] && grep -qF -- "$text" out.log; then
        ok "$name"
    else
        fail "$name: rc $rc (want $want_rc), output: $(cat out.log) (want '$text')"
    fi
}
printf 'p00.png 0\nmissing.png 1\n' >bad_missing.txt
expect "missing image names list:line" 1 "bad_missing.txt:2: 'imgs/missing.png': cannot open" -- \
    "$moka" convert_imageset imgs/ bad_missing.txt db_x
printf 'garbage\n' >imgs/bad.png
printf 'p00.png 0\np01.png 1\nbad.png 2\n' >bad_corrupt.txt
expect "corrupt image names list:line" 1 "bad_corrupt.txt:3: 'imgs/bad.png': not a JPEG or PNG image" -- \
    "$moka" convert_imageset imgs/ bad_corrupt.txt db_x
printf 'p00.png 0\np01.png\n' >bad_line.txt
expect "malformed list line" 2 "bad_line.txt:2: expected 'path label', got 'p01.png'" -- \
    "$moka" convert_imageset imgs/ bad_line.txt db_x
[ ! -e db_x ] && ! ls -d db_x.tmp* >/dev/null 2>&1 && ok "no DB left by failures" || fail "a DB was left behind: $(ls)"
expect "existing DB" 1 "db" -- "$moka" convert_imageset imgs/ list.txt db
expect "bad encode_type" 2 "--encode_type=gif: want png or jpg" -- \
    "$moka" convert_imageset --encode_type=gif imgs/ list.txt db_y
expect "resize needs both sides" 2 "give --resize_height and --resize_width together" -- \
    "$moka" convert_imageset --resize_height=4 imgs/ list.txt db_y
"$moka" convert_imageset --encoded imgs/ list.txt db_mixed 2>/dev/null
expect "mean of mixed gray and colour records" 1 \
    "record '00000011_g11.jpg' is 1 x 5 x 6 but the first is 3 x 5 x 6" -- \
    "$moka" compute_image_mean db_mixed mean_x.binaryproto
[ ! -e mean_x.binaryproto ] && ok "no mean written on failure" || fail "mean_x.binaryproto written"
expect "mean of a missing DB" 1 "nope" -- "$moka" compute_image_mean nope mean_x.binaryproto
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
