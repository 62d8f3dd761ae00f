#!/usr/bin/env bash
# `moka convert_mnist_data` on small IDX files made here (images plain, labels gzip'ed): the LMDB
# it writes is read back by an independent reader (Debian's python3-lmdb, with the Datum bytes
# parsed by hand from the protobuf wire format) and must hold exactly the IDX bytes, in order,
# under Caffe's "%08d" keys. Then the refusals: an existing DB, mismatched counts, a LevelDB
# backend, and no temporary DB left behind by any of them.
#   usage: test_convert_mnist.sh MOKA SOURCE_DIR
set -u
moka=$1
py=/usr/bin/python3
"$py" -c 'import lmdb' 2>/dev/null || { echo "skip: python3-lmdb is not installed"; exit 77; }
if "$moka" convert_mnist_data --help 2>&1 | grep -q "unknown command"; then
    echo "skip: this moka has no convert_mnist_data command"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

# 7 images of 5 x 6 with bytes (i * 37 + j * 11) mod 256, labels (3 * i) mod 10; the labels
# file is gzip'ed, as the datasets are distributed.
"$py" - <<'PY'
import gzip, struct
n, h, w = 7, 5, 6
img = bytes((i * 37 + j * 11) % 256 for i in range(n) for j in range(h * w))
open("images.idx", "wb").write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, h, w) + img)
with gzip.open("labels.idx.gz", "wb") as f:
    f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + bytes((3 * i) % 10 for i in range(n)))
open("labels6.idx", "wb").write(struct.pack(">BBBBI", 0, 0, 8, 1, 6) + bytes(6))
PY

if "$moka" convert_mnist_data images.idx labels.idx.gz db 2>convert.log; then
    ok "converts"
else
    fail "convert failed: $(cat convert.log)"
fi

# The independent read-back: every record, every byte.
if "$py" - <<'PY'
import struct, sys
import lmdb

def varint(b, p):
    v, s = 0, 0
    while True:
        c = b[p]; p += 1
        v |= (c & 0x7F) << s; s += 7
        if not c & 0x80:
            return v, p

def datum(b):
    f, p = {}, 0
    while p < len(b):
        k, p = varint(b, p)
        field, wire = k >> 3, k & 7
        if wire == 0:
            f[field], p = varint(b, p)
        elif wire == 2:
            n, p = varint(b, p)
            f[field] = b[p:p + n]; p += n
        else:
            sys.exit("unexpected wire type %d" % wire)
    return f

data = open("images.idx", "rb").read()[16:]
env = lmdb.open("db", readonly=True, lock=False)
with env.begin() as txn:
    rows = list(txn.cursor())
assert len(rows) == 7, len(rows)
for i, (k, v) in enumerate(rows):
    assert k == b"%08d" % i, k
    d = datum(v)
    assert (d[1], d[2], d[3]) == (1, 5, 6), d
    assert d[4] == data[i * 30:(i + 1) * 30], i
    assert d[5] == (3 * i) % 10, (i, d[5])
    assert 7 not in d  # not encoded
PY
then ok "the LMDB holds exactly the IDX images and labels"; else fail "read-back differs"; fi

"$moka" convert_mnist_data images.idx labels.idx.gz db 2>err.log
rc=$?
if [ $rc -ne 0 ] && grep -q "'db' already exists" err.log; then ok "refuses an existing DB (rc $rc)"
else fail "existing DB: rc $rc, $(cat err.log)"; fi

"$moka" convert_mnist_data images.idx labels6.idx db2 2>err.log
rc=$?
if [ $rc -ne 0 ] && grep -q "holds 7 images but 'labels6.idx' holds 6 labels" err.log && [ ! -e db2 ]
then ok "refuses mismatched counts (rc $rc)"; else fail "mismatch: rc $rc, $(cat err.log)"; fi

"$moka" convert_mnist_data images.idx missing.idx db3 2>err.log
rc=$?
if [ $rc -ne 0 ] && grep -q "missing.idx" err.log && [ ! -e db3 ]
then ok "missing labels file (rc $rc)"; else fail "missing: rc $rc, $(cat err.log)"; fi

"$moka" convert_mnist_data --backend=leveldb images.idx labels.idx.gz db4 2>err.log
rc=$?
if [ $rc -eq 2 ] && grep -q "lmdb only" err.log && [ ! -e db4 ]
then ok "rejects --backend=leveldb"; else fail "leveldb: rc $rc, $(cat err.log)"; fi

if ls | grep -q '\.tmp\.'; then fail "a temporary DB was left: $(ls)"; else ok "no temporary DB left"; fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
