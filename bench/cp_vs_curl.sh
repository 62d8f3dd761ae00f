#!/usr/bin/env bash
# Download throughput of `moka cp` against curl fetching the same object from the same S3 server
# (../shared/tools/s3-test-server on loopback), in the same run: rounds alternate curl and moka,
# and the medians are compared. curl signs with its own --aws-sigv4.
#   usage: bench/cp_vs_curl.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-200}
rounds=${2:-3}
moka=$(cd build && pwd)/moka
rig=$(cd .. && pwd)/shared/tools/s3-test-server
tmp=$(mktemp -d)
trap '"$rig" stop "$tmp/srv" --rm >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
eval "$("$rig" start --dir "$tmp/srv" --watch-pid $$ --export)"
head -c $((size * 1024 * 1024)) /dev/urandom >"$tmp/big.bin"
"$moka" cp "$tmp/big.bin" s3://mydata/big.bin >/dev/null
now() { date +%s.%N; }
curl_t=() moka_t=()
for r in $(seq "$rounds"); do
    rm -f "$tmp/c.bin" "$tmp/m.bin"
    t0=$(now)
    curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/mydata/big.bin" -o "$tmp/c.bin"
    t1=$(now)
    "$moka" cp s3://mydata/big.bin "$tmp/m.bin" >/dev/null
    t2=$(now)
    cmp -s "$tmp/big.bin" "$tmp/c.bin" && cmp -s "$tmp/big.bin" "$tmp/m.bin" || { echo "downloads differ"; exit 1; }
    curl_t+=("$(echo "$t1 - $t0" | bc)")
    moka_t+=("$(echo "$t2 - $t1" | bc)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mc=$(median "${curl_t[@]}")
mm=$(median "${moka_t[@]}")
echo "object: $size MiB over loopback, $rounds rounds"
echo "curl: ${curl_t[*]} s (median $mc s, $(echo "scale=1; $size / $mc" | bc) MiB/s)"
echo "moka: ${moka_t[*]} s (median $mm s, $(echo "scale=1; $size / $mm" | bc) MiB/s)"
echo "moka throughput / curl throughput: $(echo "scale=3; $mc / $mm" | bc)"
