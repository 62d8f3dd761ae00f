#!/usr/bin/env bash
# tests/cli/test_train_s3.sh -- training from a bucket: an IDXData net whose images and labels are
# s3:// URLs on the S3 test server (shared/tools/s3-test-server) trains; a second run finds both
# objects in --cache_dir and sends no GET for them (checked in the server's request log); after
# one object is replaced by different bytes, exactly that object is fetched again.
# Usage: test_train_s3.sh MOKA_CLI SOURCE_DIR. Exit 77 when node/npm, the data or the server is
# missing.
set -u
MOKA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$2
RIG=$SRC/../shared/tools/s3-test-server
DATA=/usr/share/datasets/fashion-mnist
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ ! -x "$RIG" ] ||
   [ ! -f "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    echo "skipped: needs node, npm, $RIG and $DATA"
    exit 77
fi
W=$(mktemp -d)
cleanup() {
    "$RIG" stop "$W/srv" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
pass=0
failn=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; failn=$((failn + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

mkdir -p "$W/seed"
cp "$DATA/t10k-images-idx3-ubyte.gz" "$DATA/t10k-labels-idx1-ubyte.gz" "$W/seed/"
if ! "$RIG" start --watch-pid $$ --dir "$W/srv" --seed "mydata/fm=$W/seed" >"$W/env" \
     2>"$W/srv.err"; then
    cat "$W/srv.err"
    echo "skipped: the S3 test server did not start"
    exit 77
fi
set -a
. "$W/env"
set +a
SLOG=$W/srv/server.log
IMG=/mydata/fm/t10k-images-idx3-ubyte.gz
LBL=/mydata/fm/t10k-labels-idx1-ubyte.gz

# LeNet (the example net) with both IDX sources, TRAIN and TEST, read from the bucket.
sed -e 's|"/usr/share/datasets/fashion-mnist/[a-z0-9]*-images-idx3-ubyte.gz"|"s3://mydata/fm/t10k-images-idx3-ubyte.gz"|' \
    -e 's|"/usr/share/datasets/fashion-mnist/[a-z0-9]*-labels-idx1-ubyte.gz"|"s3://mydata/fm/t10k-labels-idx1-ubyte.gz"|' \
    -e 's|batch_size: 64|batch_size: 16|' "$SRC/examples/mnist/lenet_train_test.prototxt" >"$W/net.prototxt"
grep -q 's3://mydata/fm/t10k-images' "$W/net.prototxt" || { echo "FAIL could not point LeNet at the bucket"; exit 1; }
cat >"$W/solver.prototxt" <<SOLVER
net: "$W/net.prototxt"
base_lr: 0.01
lr_policy: "fixed"
display: 10
max_iter: 20
snapshot_after_train: false
snapshot_prefix: "$W/snap"
solver_mode: CPU
SOLVER
CACHE=$W/cache

# train N: runs the solver and keeps only the server log lines written during the run in
# $W/reqN.log, its stderr in $W/trainN.log.
train() {
    local before
    before=$(wc -l <"$SLOG")
    (cd "$W" && "$MOKA" train --solver=solver.prototxt --cache_dir="$CACHE" --threads=2 \
        >/dev/null 2>"$W/train$1.log" </dev/null)
    local rc=$?
    tail -n +$((before + 1)) "$SLOG" >"$W/req$1.log"
    return $rc
}
gets() { grep -c "GET $1 200" "$W/req$2.log"; }

# Run 1: both objects are fetched into the cache and the net trains.
check "first run trains from s3:// sources" 'train 1'
check "first run logs a finite loss at iteration 20" \
    'grep -E "Iteration 20.*loss = [0-9.]+$" "$W/train1.log" >/dev/null'
check "first run GETs the images once" '[ "$(gets $IMG 1)" = 1 ]'
check "first run GETs the labels once" '[ "$(gets $LBL 1)" = 1 ]'
check "first run logs the fetches" \
    '[ "$(grep -c "fetched s3://mydata/fm/t10k-.*bytes) into $CACHE/" "$W/train1.log")" = 2 ]'
cached_img=$(find "$CACHE" -name t10k-images-idx3-ubyte.gz)
check "the cached images are byte-identical" \
    '[ -n "$cached_img" ] && cmp -s "$cached_img" "$DATA/t10k-images-idx3-ubyte.gz"'
check "no partial files remain in the cache" \
    '[ -d "$CACHE" ] && [ -z "$(find "$CACHE" -name "*.moka-part")" ]'
loss1=$(grep -E "Iteration 20.*loss = " "$W/train1.log" | sed 's/.*loss = //')

# Run 2: only HEADs; no GET of either object, same training result.
check "second run trains" 'train 2'
check "second run sends no GET for the images" '[ "$(gets $IMG 2)" = 0 ]'
check "second run sends no GET for the labels" '[ "$(gets $LBL 2)" = 0 ]'
check "second run checks the ETags (HEAD)" '[ "$(grep -c "HEAD /mydata/fm/" "$W/req2.log")" = 2 ]'
check "second run logs the cache hits" \
    '[ "$(grep -c "using cached s3://mydata/fm/" "$W/train2.log")" = 2 ]'
loss2=$(grep -E "Iteration 20.*loss = " "$W/train2.log" | sed 's/.*loss = //')
check "second run reaches the same loss ($loss1)" '[ -n "$loss1" ] && [ "$loss1" = "$loss2" ]'

# Replace the labels with different bytes (label 9 - y): run 3 fetches the labels only.
/usr/bin/python3 - "$DATA/t10k-labels-idx1-ubyte.gz" "$W/labels2.gz" <<'PY'
import gzip, sys
raw = gzip.open(sys.argv[1]).read()
gzip.open(sys.argv[2], "wb").write(raw[:8] + bytes(9 - b for b in raw[8:]))
PY
check "the replacement labels upload" \
    '"$MOKA" cp -f "$W/labels2.gz" s3://mydata/fm/t10k-labels-idx1-ubyte.gz >/dev/null 2>&1'
check "third run trains" 'train 3'
check "third run GETs the replaced labels" '[ "$(gets $LBL 3)" = 1 ]'
check "third run sends no GET for the unchanged images" '[ "$(gets $IMG 3)" = 0 ]'
newest_lbl=$(grep -o "fetched s3://mydata/fm/t10k-labels[^ ]* ([0-9]* bytes) into .*" \
    "$W/train3.log" | sed 's/.* into //')
check "the new labels are cached byte-identically in a new place" \
    '[ -n "$newest_lbl" ] && cmp -s "$newest_lbl" "$W/labels2.gz" &&
     [ "$(find "$CACHE" -name t10k-labels-idx1-ubyte.gz | wc -l)" = 2 ]'
loss3=$(grep -E "Iteration 20.*loss = " "$W/train3.log" | sed 's/.*loss = //')
check "the changed labels change training ($loss3 != $loss1)" \
    '[ -n "$loss3" ] && [ "$loss3" != "$loss1" ]'

# A missing object is a clear error naming the URL, and a non-zero exit.
sed -i 's|t10k-images-idx3-ubyte.gz"|missing.gz"|' "$W/net.prototxt"
train 4
rc=$?
check "a missing object fails the run (exit $rc)" '[ "$rc" = 1 ]'
check "its message names the object" \
    'grep -q "no such key s3://mydata/fm/missing.gz" "$W/train4.log"'

echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
