#!/usr/bin/env bash
# tests/cli/test_s3_client.sh -- the S3 client (src/io/s3.c, driven by build/tests/s3_tool)
# against the S3 test server (shared/tools/s3-test-server, which checks SigV4 signatures):
# awkward key names, pagination past 1000 keys, multipart upload, resumed downloads, retries on
# 503s, and the messages for a wrong secret, a missing bucket and a stopped server.
# Usage: test_s3_client.sh MOKA_CLI SOURCE_DIR. Exit 77 when node/npm or the server is missing.
set -u
MOKA=$1
SRC=$2
TOOL=$(dirname "$MOKA")/tests/s3_tool
RIG=$SRC/../shared/tools/s3-test-server
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ ! -x "$RIG" ] ||
   [ ! -x "$TOOL" ]; then
    echo "skipped: needs node, npm, $RIG and $TOOL"
    exit 77
fi
W=$(mktemp -d)
SERVERS=()
cleanup() {
    for d in "${SERVERS[@]}"; do "$RIG" stop "$d" >/dev/null 2>&1; done
    rm -rf "$W"
}
trap cleanup EXIT
pass=0
failn=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; failn=$((failn + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

# start NAME [server flags]: starts a server with state in $W/NAME and exports its settings
# under NAME_ENDPOINT (credentials are the same for every server).
start() {
    local name=$1; shift
    if ! "$RIG" start --watch-pid $$ --dir "$W/$name" "$@" >"$W/$name.env" 2>"$W/$name.err"; then
        cat "$W/$name.err"
        echo "skipped: the S3 test server did not start"
        exit 77
    fi
    SERVERS+=("$W/$name")
    eval "${name}_ENDPOINT=\$(sed -n 's/^S3_ENDPOINT=//p' \"$W/$name.env\")"
}

mkdir -p "$W/seed/many" "$W/files"
for i in $(seq -w 1 1100); do printf '%s\n' "$i" > "$W/seed/many/k$i"; done
start main --seed "mydata=$W/seed" --min-part-size 1048576
set -a
. "$W/main.env"
set +a
E=$main_ENDPOINT
s3() { "$TOOL" --endpoint "$E" "$@"; }

# Round trips of awkward key names, byte-exact.
head -c 70000 /dev/urandom > "$W/files/rand"
: > "$W/files/empty"
n=0
for key in "sp ace/a b.bin" "plus+eq=amp&.bin" "utf8/é中文.bin" "deep/a/b/c/d/e/f.bin" \
           "pct%20q?h#.bin" "empty"; do
    src=$W/files/rand
    [ "$key" = empty ] && src=$W/files/empty
    n=$((n + 1))
    if s3 put "$src" "s3://mydata/odd/$key" >/dev/null 2>"$W/err" &&
       s3 get "s3://mydata/odd/$key" "$W/got$n" >/dev/null 2>>"$W/err" &&
       cmp -s "$src" "$W/got$n"; then
        ok "round trip of '$key'"
    else
        bad "round trip of '$key': $(cat "$W/err")"
    fi
done
s3 ls s3://mydata/odd/ > "$W/ls_odd" 2>&1
check "list shows the awkward keys with sizes and MD5 ETags" \
    "grep -qxF '70000 $(md5sum < "$W/files/rand" | cut -c1-32) odd/plus+eq=amp&.bin' '$W/ls_odd' &&
     grep -qF ' odd/utf8/é中文.bin' '$W/ls_odd' && grep -qx 'count 6' '$W/ls_odd'"

# Pagination: 1100 seeded keys in pages of 250.
s3 --max-keys 250 ls s3://mydata/many/ > "$W/ls_many" 2>&1
check "list of 1100 keys pages through markers" \
    "grep -qx 'count 1100' '$W/ls_many' && grep -c ' many/k' '$W/ls_many' | grep -qx 1100 &&
     grep -qF ' many/k1100' '$W/ls_many'"
check "every page asked with max-keys" \
    "[ \$(grep -c 'GET /mydata?marker=many%2Fk.*max-keys=250' '$W/main/server.log') -eq 4 ]"

# head and delete.
check "head gives size and ETag" \
    "s3 head 's3://mydata/odd/sp ace/a b.bin' | head -1 | grep -qx '70000 [0-9a-f]\{32\}'"
s3 rm "s3://mydata/odd/sp ace/a b.bin" >/dev/null 2>&1
s3 head "s3://mydata/odd/sp ace/a b.bin" > /dev/null 2> "$W/err"
check "a deleted key is 'no such key'" \
    "grep -qF 'no such key s3://mydata/odd/sp ace/a b.bin' '$W/err'"

# Multipart: 3 MiB + 5 bytes in 1 MiB parts is 4 parts with an md5-of-md5s "-4" ETag.
head -c $((3 * 1048576 + 5)) /dev/urandom > "$W/files/big"
s3 --part-size 1048576 put "$W/files/big" s3://mydata/big.bin > /dev/null 2> "$W/err"
check "multipart upload succeeds" "[ ! -s '$W/err' ]"
check "multipart upload sent 4 parts" \
    "[ \$(grep -c 'PUT /mydata/big.bin?partNumber=.*uploadId=' '$W/main/server.log') -eq 4 ]"
check "multipart ETag is '-4'" "s3 head s3://mydata/big.bin | grep -q -- '-4\$'"
s3 get s3://mydata/big.bin "$W/big.got" > /dev/null 2>&1
check "multipart object downloads byte-exact" "cmp -s '$W/files/big' '$W/big.got'"

# 40 MiB in 5 MiB parts (S3's smallest): 8 parts.
head -c $((40 * 1048576)) /dev/urandom > "$W/files/big40"
s3 --part-size 5242880 put "$W/files/big40" s3://mydata/big40.bin > /dev/null 2> "$W/err"
s3 get s3://mydata/big40.bin "$W/big40.got" > /dev/null 2>> "$W/err"
check "40 MiB multipart round trip is byte-exact" \
    "cmp -s '$W/files/big40' '$W/big40.got' && s3 head s3://mydata/big40.bin | grep -q -- '-8\$'"
rm -f "$W/files/big40" "$W/big40.got"

# qs:// through QSCTL_* variables and --endpoint (the zone is the SigV4 region).
QSCTL_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID QSCTL_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    QSCTL_ZONE=us-east-1 s3 get qs://mydata/odd/plus+eq=amp\&.bin "$W/qs.got" >/dev/null 2>"$W/err"
check "qs:// download" "cmp -s '$W/files/rand' '$W/qs.got'"

# A wrong secret, an unknown bucket.
AWS_SECRET_ACCESS_KEY=not-the-secret s3 ls s3://mydata/odd/ > /dev/null 2> "$W/err"
want='access denied for s3://mydata: the secret key does not match (SignatureDoesNotMatch)'
check "wrong secret -> SignatureDoesNotMatch message" "grep -qF '$want' '$W/err'"
check "no secret in the message" "! grep -qF -e not-the-secret -e '$AWS_SECRET_ACCESS_KEY' '$W/err'"
s3 ls s3://no-such-bucket/ > /dev/null 2> "$W/err"
check "missing bucket -> NoSuchBucket message" \
    "grep -qF 'no such bucket s3://no-such-bucket (NoSuchBucket)' '$W/err'"
s3 get s3://no-such-bucket/k "$W/nob" > /dev/null 2> "$W/err"
check "download from a missing bucket -> NoSuchBucket message" \
    "grep -qF 'no such bucket s3://no-such-bucket (NoSuchBucket)' '$W/err' && [ ! -e '$W/nob' ]"
AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= HOME=$W/nohome AWS_SHARED_CREDENTIALS_FILE= \
    AWS_CONFIG_FILE= s3 ls s3://mydata/ > /dev/null 2> "$W/err"
check "no credentials -> what was looked at" \
    "grep -qF 'no credentials for s3://: looked at AWS_ACCESS_KEY_ID' '$W/err'"

# Every 3rd request answered 503: everything still completes (retries re-sign).
start flaky --seed "mydata=$W/seed" --min-part-size 1048576 --fail-every 3
E=$flaky_ENDPOINT
s3 --max-keys 250 ls s3://mydata/many/ > "$W/ls_flaky" 2> "$W/err"
check "list with 503s completes" "grep -qx 'count 1100' '$W/ls_flaky'"
s3 --part-size 1048576 put "$W/files/big" s3://mydata/big.bin > /dev/null 2>> "$W/err"
s3 get s3://mydata/big.bin "$W/big.flaky" > /dev/null 2>> "$W/err"
check "multipart put and get with 503s are byte-exact" "cmp -s '$W/files/big' '$W/big.flaky'"
check "the server did answer 503s" "grep -q ' 503 ' '$W/flaky/server.log'"
: > "$W/err"
for i in 1 2 3; do s3 --retries 0 ls s3://mydata/many/ > /dev/null 2>> "$W/err"; done
check "without retries a 503 is reported" "grep -q 'HTTP 503' '$W/err'"

# Connection cut after 100000 body bytes of every GET: a download without retries fails and
# leaves only the part file; the next run resumes from it (Range), and retries resume too.
start cut --cut-after 100000
E=$cut_ENDPOINT
head -c 300000 /dev/urandom > "$W/files/cut"
s3 put "$W/files/cut" s3://mydata/cut.bin > /dev/null 2>&1
s3 --retries 0 get s3://mydata/cut.bin "$W/cut.got" > /dev/null 2> "$W/err"
check "a cut download fails" "[ -s '$W/err' ]"
check "a cut download leaves no file at the destination" "[ ! -e '$W/cut.got' ]"
check "a cut download keeps its part file" \
    "[ \$(stat -c %s '$W/cut.got.moka-part' 2>/dev/null || echo 0) -eq 100000 ]"
s3 --retries 5 get s3://mydata/cut.bin "$W/cut.got" > "$W/out" 2> "$W/err"
check "the resumed download is byte-exact" "cmp -s '$W/files/cut' '$W/cut.got'"
check "the resumed download fetched only the missing 200000 bytes" \
    "grep -qx 'received 200000 requests [0-9]*' '$W/out'"
check "the part file is gone once the download is complete" "[ ! -e '$W/cut.got.moka-part' ]"

# A stopped server.
"$RIG" stop "$W/main" > /dev/null 2>&1
E=$main_ENDPOINT
s3 --retries 1 ls s3://mydata/ > /dev/null 2> "$W/err"
check "stopped server -> cannot reach" "grep -qF \"cannot reach $main_ENDPOINT\" '$W/err'"
s3 --retries 1 get s3://mydata/odd/empty "$W/none" > /dev/null 2>&1
check "no destination file after a failed download" \
    "[ ! -e '$W/none' ] && [ ! -e '$W/none.moka-part' ]"

echo "$pass passed, $failn failed"
[ "$failn" -eq 0 ]
