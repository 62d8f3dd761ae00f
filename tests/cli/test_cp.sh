#!/usr/bin/env bash
# `moka cp` and `moka ls` against ../shared/tools/s3-test-server (an S3 server that checks SigV4
# signatures): a round trip of a tree with awkward key names and empty files, compared byte for
# byte; the trailing-slash rules; single objects; --sync copying nothing the second time and
# exactly the replaced object (same size) after that; -f and the refusal without it; --delete;
# --dry-run; more than 1000 keys over small list pages; and faults: every 3rd request failing,
# connections cut mid-body, a wrong secret (clear error, no file at the destination).
#   usage: test_cp.sh MOKA SOURCE_DIR
set -u
moka=$1
src_dir=$2
server=$src_dir/../shared/tools/s3-test-server
if "$moka" cp --help 2>&1 | grep -q "unknown command"; then
    echo "skip: this moka has no cp command"; exit 77
fi
[ -x "$server" ] || { echo "skip: no s3-test-server at $server"; exit 77; }
tmp=$(mktemp -d)
servers=()
cleanup() {
    for d in "${servers[@]}"; do "$server" stop "$d" --rm >/dev/null 2>&1; done
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
# check NAME EXPR: EXPR may use $last, the exit status of the command just before the check.
check() { local last=$?; if eval "$2"; then ok "$1"; else fail "$1"; fi; }
# Prints a file (for the log of a failed check) and fails.
show() { cat "$@"; false; }

# Starts a server with the given options; its settings are exported (AWS_* for moka).
start() {
    local out
    out=$("$server" start --export --watch-pid $$ --dir "$tmp/srv$1" "${@:2}" 2>"$tmp/srv$1.err") || {
        echo "skip: s3-test-server does not start: $(tail -3 "$tmp/srv$1.err")"; exit 77; }
    servers+=("$tmp/srv$1")
    eval "$out"
}

# A tree with awkward names, empty files and a deep prefix, contents random.
mk() { mkdir -p "$(dirname "$1")"; head -c "$2" /dev/urandom >"$1"; }
mk "tree/a b.txt" 1000
mk "tree/plus+eq=amp&.bin" 4097
mk "tree/ütf8/日本語 ファイル.txt" 77
mk "tree/deep/1/2/3/4/5/6/leaf.dat" 65536
mk "tree/percent%20sign;semi,comma@at.txt" 13
: >"tree/empty.txt"
mkdir -p tree/e && : >"tree/e/empty2"
mk "tree/same.bin" 5000
nfiles=$(find tree -type f | wc -l)

start 1 --max-keys 100
ep=$S3_ENDPOINT

# ---- round trip ----
"$moka" cp -r tree/ s3://mydata/up/ >up.out 2>up.err
check "upload of the tree succeeds" '[ $last -eq 0 ] || show up.err'
check "summary line counts the files" 'grep -q "^copied $nfiles files" up.out || show up.out'
"$moka" ls s3://mydata/up/ >ls.out 2>ls.err
check "ls lists every object with its size" \
    '[ "$(wc -l <ls.out)" -eq "$nfiles" ] && grep -q "^ *4097  up/plus+eq=amp&.bin$" ls.out && grep -q "^ *0  up/empty.txt$" ls.out'
"$moka" cp -r s3://mydata/up/ back/ >down.out 2>down.err
check "download of the tree succeeds" '[ $last -eq 0 ] || show down.err'
check "round trip is byte-exact (names, empty files, deep prefix)" 'diff -r tree back'
check "no temporaries left" '[ -z "$(find back -name "*.moka-part")" ]'

# ---- trailing-slash rules and single objects ----
"$moka" cp -r s3://mydata/up back2/ >/dev/null 2>&1
check "cp -r s3://b/dir DST puts the objects under DST/dir/" 'diff -r tree back2/up'
"$moka" cp -r tree s3://mydata/named >/dev/null 2>&1
check "cp -r DIR s3://b/p uploads under p/DIR/" \
    '"$moka" ls s3://mydata/named/tree/ 2>/dev/null | grep -q "named/tree/a b.txt$"'
mkdir -p one
"$moka" cp "s3://mydata/up/ütf8/日本語 ファイル.txt" one/ >/dev/null 2>&1
check "single object into a directory keeps its name" 'cmp "one/日本語 ファイル.txt" "tree/ütf8/日本語 ファイル.txt"'
"$moka" cp "s3://mydata/up/a b.txt" one/renamed.txt >/dev/null 2>&1
check "single object to a file name" 'cmp one/renamed.txt "tree/a b.txt"'
"$moka" cp "tree/a b.txt" s3://mydata/single/ >/dev/null 2>&1
check "single upload to a prefix keeps the name" \
    '"$moka" ls s3://mydata/single/ | grep -q "^ *1000  single/a b.txt$"'

# ---- overwrite rules ----
mk other.txt 1000
"$moka" cp other.txt one/renamed.txt >/dev/null 2>&1
"$moka" cp "s3://mydata/up/plus+eq=amp&.bin" one/renamed.txt >/dev/null 2>ow.err
rc=$?
check "an existing differing file is refused without -f (exit 1, named)" \
    '[ $rc -eq 1 ] && grep -q "one/renamed.txt exists and differs" ow.err'
check "... and left untouched" 'cmp one/renamed.txt "tree/a b.txt"'
"$moka" cp -f "s3://mydata/up/plus+eq=amp&.bin" one/renamed.txt >/dev/null 2>&1
check "-f overwrites" 'cmp one/renamed.txt "tree/plus+eq=amp&.bin"'

# ---- --sync ----
"$moka" cp -r --sync s3://mydata/up/ back/ >sync1.out 2>&1
check "--sync right after a copy copies nothing" 'grep -q "^copied 0 files, 0 bytes.*; $nfiles unchanged" sync1.out || show sync1.out'
mk newsame.bin 5000
"$moka" cp -f newsame.bin s3://mydata/up/same.bin >/dev/null 2>&1
"$moka" cp -r --sync --dry-run s3://mydata/up/ back/ >dry.out 2>&1
check "--dry-run lists exactly the replaced object and copies nothing" \
    '[ "$(grep -c "^copy " dry.out)" -eq 1 ] && grep -q "up/same.bin -> back/same.bin" dry.out && cmp -s back/same.bin tree/same.bin'
"$moka" cp -r --sync s3://mydata/up/ back/ >sync2.out 2>&1
check "--sync copies exactly the object replaced by one of the same size" \
    'grep -q "^copied 1 files, 5000 bytes" sync2.out && cmp back/same.bin newsame.bin || show sync2.out'
cp newsame.bin tree/same.bin
"$moka" cp -r --sync tree/ s3://mydata/up/ >sync3.out 2>&1
check "--sync upload of an unchanged tree copies nothing" 'grep -q "^copied 0 files" sync3.out || show sync3.out'
mk back/extra/stale.txt 10
"$moka" cp -r --sync --delete s3://mydata/up/ back/ >del.out 2>&1
check "--delete removes destination files absent from the source" \
    '[ ! -e back/extra/stale.txt ] && grep -q "1 deleted" del.out && diff -r tree back'

# ---- more than 1000 keys over 100-key pages ----
mkdir -p many
for i in $(seq 1 1005); do printf '%d' "$i" >"many/k$i"; done
"$moka" cp -r -j 8 many/ s3://mydata/many/ >many.out 2>&1
check "1005 files upload" 'grep -q "^copied 1005 files" many.out || show many.out'
check "ls pages through 1005 keys" '[ "$("$moka" ls s3://mydata/many/ | wc -l)" -eq 1005 ]'
"$moka" cp -r s3://mydata/many/ many_back/ >/dev/null 2>&1
check "1005 keys download byte-exact" 'diff -r many many_back'

# ---- faults ----
start 2 --fail-every 3 --seed "mydata/up=$tmp/tree"
"$moka" cp -r s3://mydata/up/ fail3/ >f3.out 2>f3.err
check "every 3rd request failing with 503 still gives a complete copy" \
    '[ $last -eq 0 ] && diff -r tree fail3 || show f3.err'
mk big.bin 3000000
mkdir -p bigdir && cp big.bin bigdir/
start 3 --cut-after 700000 --seed "mydata=$tmp/bigdir"
"$moka" cp s3://mydata/big.bin cut/big.bin >cut.out 2>cut.err
check "connections cut mid-body: a correct copy after retries and resume" \
    'cmp cut/big.bin big.bin && [ ! -e cut/big.bin.moka-part ] || show cut.err'

export AWS_SECRET_ACCESS_KEY=wrong-secret
"$moka" cp "s3://mydata/big.bin" wrong/big.bin >ws.out 2>ws.err
rc=$?
check "a wrong secret: non-zero exit" '[ $rc -ne 0 ]'
check "... with a clear message" 'grep -q "secret key does not match" ws.err || show ws.err'
check "... and no file at the destination" '[ ! -e wrong/big.bin ]'
check "... and no secret in the message" '! grep -q wrong-secret ws.err'
"$moka" cp -r "s3://mydata/" wrong2/ >ws2.out 2>ws2.err
check "a wrong secret on a recursive copy: the same clear error, nothing written" \
    '[ $last -eq 1 ] && grep -q "secret key does not match" ws2.err && [ ! -e wrong2/big.bin ] || show ws2.err'
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY

"$moka" cp -r s3://nosuchbucket/ x/ >nb.out 2>nb.err
check "a missing bucket: non-zero exit naming it" '[ $last -ne 0 ] && grep -qi "nosuchbucket" nb.err'
"$moka" cp a b >/dev/null 2>us.err
check "two local paths: usage error (exit 2)" '[ $last -eq 2 ] && grep -q "s3:// or qs://" us.err'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
