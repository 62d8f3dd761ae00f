#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each, starting from the committed
# seed corpus (copied, so the repository is not modified). Any crash, leak or sanitizer report
# fails the run.
#   usage: tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS
set -euo pipefail
build=$(cd "$1" && pwd)
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
found=0
for bin in "$build"/tests/fuzz_*; do
    [ -x "$bin" ] || continue
    found=1
    name=$(basename "$bin")
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    seeds="$here/corpus_${name#fuzz_}"
    mkdir -p "$work/corpus"
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work/corpus/"
    echo "fuzz: $name for ${secs}s"
    (cd "$work" && "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 \
        corpus >"$work/log" 2>&1) || { tail -40 "$work/log"; echo "fuzz: $name FAILED"; exit 1; }
    grep -E "^(#[0-9]+.*DONE|Done)" "$work/log" | tail -1 || true
    rm -rf "$work"
    trap - EXIT
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets in $build/tests"; exit 1; }
echo "fuzz: all targets ran clean"
