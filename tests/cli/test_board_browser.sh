#!/usr/bin/env bash
# tests/cli/test_board_browser.sh -- `moka board` in a real headless browser (Debian's chromium).
#
#   bash test_board_browser.sh MOKA_BINARY SOURCE_DIR
#
# Writes event files with moka's own writer (tests/board/write_events.c, compiled here against the
# build's libmoka_static.a), serves them with `moka board --port 0`, and loads the page in
# `chromium --headless --dump-dom`. The page writes its state as JSON into <pre id="board-state">
# (charts with the number of points each run has in them, errors caught by window.onerror,
# unhandled rejections and console.error, failed fetches), which this script reads back. Checks:
#   - the page loads with no script errors and no failed requests;
#   - the loss chart has exactly as many points per run as the event files hold loss scalars,
#     and so do lr and test/accuracy; histograms, the image and the graph's nodes are all there;
#   - while the writer still holds its file open, more records are appended: after a reload the
#     chart has the new count (the server read on from where it stopped, not from the start);
#   - with --token, the page without the token is refused and with ?token= it works in the
#     browser (the cookie carries it to the scripts and the API);
#   - SIGINT stops the server with status 0.
# A screenshot goes to ./board.png (the test's working directory); with MOKA_UPDATE_SCREENSHOT=1
# it is also copied to SOURCE_DIR/docs/board.png.
# Exit 77 (skipped) when chromium, a C compiler or the `board` command is missing.
# Ends with "N passed, M failed".
set -u
MOKA=$1
SRC=$2
BUILD=${MOKA_BUILD_DIR:-$(dirname "$MOKA")}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ -z "$CHROMIUM" ]; then
    echo "SKIP: chromium is not installed (apt-get install chromium)"
    exit 77
fi
if "$MOKA" board --help 2>&1 | grep -q "unknown command"; then
    echo "SKIP: this moka has no 'board' command"
    exit 77
fi
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null; then
    echo "SKIP: no C compiler to build the event writer"
    exit 77
fi

passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

TMP=$(mktemp -d)
BOARD_PID=""
WRITER_PID=""
cleanup() {
    [ -n "$BOARD_PID" ] && kill "$BOARD_PID" 2>/dev/null
    [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- the event writer, linked the way the build links moka ----
cache="$BUILD/CMakeCache.txt"
openblas=$(sed -n 's/^OPENBLAS_LIB:FILEPATH=//p' "$cache" 2>/dev/null)
sanitize=""
grep -q '^MOKA_SANITIZE:BOOL=ON' "$cache" 2>/dev/null && sanitize="-fsanitize=address,undefined"
if ! "$CC" -std=c11 -O1 $sanitize -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -I"$SRC/include" -I"$SRC/src" "$SRC/tests/board/write_events.c" "$BUILD/libmoka_static.a" \
        $(pkg-config --libs libprotobuf-c libmicrohttpd) -lz -fopenmp $openblas -lm -lpthread \
        ${openblas:+-Wl,-rpath,$(dirname "$openblas")} -o "$TMP/write_events" 2>"$TMP/cc.log"; then
    cat "$TMP/cc.log"
    bad "build tests/board/write_events.c"
    echo "$passed passed, $failed failed"
    exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

LOG=$TMP/log
N1=40 N2=25 NOTHER=30
# Run "train": N1 loss points plus graph, histograms and an image, then (once $TMP/go exists) N2
# more into the same open file. Run "other": NOTHER points, for the overlay.
"$TMP/write_events" "$LOG" train 0 $N1 --extras --wait "$TMP/go" $N2 &
WRITER_PID=$!
"$TMP/write_events" "$LOG" other 5 $NOTHER || bad "write run 'other'"
for _ in $(seq 100); do [ -e "$TMP/go.ready" ] && break; sleep 0.1; done
check "writer wrote the first $N1 points" test -e "$TMP/go.ready"

# ---- start the server on a free port; its log line says which ----
start_board() { # start_board LOGFILE ARGS...
    local logfile=$1; shift
    "$MOKA" board "$@" 2>"$logfile" &
    BOARD_PID=$!
    URL=""
    for _ in $(seq 100); do
        URL=$(sed -n 's/.*moka board: serving .* at \(http[^ ]*\).*/\1/p' "$logfile" | head -1)
        [ -n "$URL" ] && return 0
        kill -0 "$BOARD_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$logfile"
    return 1
}
stop_board() {
    kill -INT "$BOARD_PID"
    local rc=0
    wait "$BOARD_PID" || rc=$?
    BOARD_PID=""
    return $rc
}

browse() { # browse URL OUT_DOM [SCREENSHOT]
    local args=(--headless --no-sandbox --disable-gpu --disable-background-networking
                --disable-component-update --disable-sync --no-first-run --hide-scrollbars
                --user-data-dir="$(mktemp -d -p "$TMP")" --window-size=1280,1700
                --virtual-time-budget=6000)
    if [ $# -ge 3 ]; then
        timeout 120 "$CHROMIUM" "${args[@]}" --screenshot="$3" "$1" \
            >/dev/null 2>>"$TMP/chromium.log"
    else
        timeout 120 "$CHROMIUM" "${args[@]}" --dump-dom "$1" >"$2" 2>>"$TMP/chromium.log"
    fi
}

# state FILE PYTHON_EXPR: evaluates the expression over the page's state `s`; prints it and
# succeeds when it is true.
state() {
    "$PY" - "$1" "$2" <<'EOF'
import html, json, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'<pre id="board-state"[^>]*>(.*?)</pre>', dom, re.S)
if not m:
    print("  no board-state element in the page (first 300 chars: %r)" % dom[:300])
    sys.exit(1)
s = json.loads(html.unescape(m.group(1)))
ok = eval(sys.argv[2])
if not ok:
    print("  %s is false; state: %s" % (sys.argv[2], json.dumps(s)[:1500]))
sys.exit(0 if ok else 1)
EOF
}

if start_board "$TMP/board.log" --logdir "$LOG" --port 0; then
    ok "moka board starts and reports its URL ($URL)"
    browse "$URL" "$TMP/dom1.html"
    check "page loads with no script errors" state "$TMP/dom1.html" \
        's["ready"] and s["errors"] == [] and s["fetch_errors"] == []'
    check "runs 'other' and 'train' listed" state "$TMP/dom1.html" 's["runs"] == ["other", "train"]'
    check "loss chart has $N1 + $NOTHER points (one per loss scalar)" state "$TMP/dom1.html" \
        "s['charts']['loss'] == {'train': $N1, 'other': $NOTHER}"
    check "lr and test/accuracy charts have one point per 5 steps" state "$TMP/dom1.html" \
        "s['charts']['lr'] == {'train': $(((N1 + 4) / 5)), 'other': $(((NOTHER + 4) / 5))} and \
         s['charts']['test/accuracy'] == s['charts']['lr']"
    NH=$(((N1 + 4) / 5))
    check "histograms, image and graph of the selected run" state "$TMP/dom1.html" \
        "s['histograms'] == {'conv1/weights': $NH, 'ip1/weights_grad': $NH} \
         and s['images'] == 1 and s['graph_nodes'] == 9"

    # More records into the file the writer still holds open.
    touch "$TMP/go"
    wait "$WRITER_PID"
    wrc=$?
    WRITER_PID=""
    check "writer appended $N2 more points" test "$wrc" -eq 0
    browse "$URL" "$TMP/dom2.html"
    check "after a reload the loss chart has $((N1 + N2)) points" state "$TMP/dom2.html" \
        "s['charts']['loss'] == {'train': $((N1 + N2)), 'other': $NOTHER} and s['errors'] == []"

    # A new file in an existing run (a resumed run) and a new run directory are picked up.
    "$TMP/write_events" "$LOG" train $((10 * (N1 + N2))) 5 >/dev/null
    "$TMP/write_events" "$LOG" third 0 7 >/dev/null
    browse "$URL" "$TMP/dom3.html"
    check "new event file and new run picked up" state "$TMP/dom3.html" \
        "s['charts']['loss'] == {'train': $((N1 + N2 + 5)), 'other': $NOTHER, 'third': 7}"

    browse "$URL" "" "$TMP/board.png"
    if [ -s "$TMP/board.png" ] && head -c 8 "$TMP/board.png" | od -An -c | grep -q 'P   N   G'; then
        ok "screenshot taken"
        cp "$TMP/board.png" ./board.png 2>/dev/null
        if [ "${MOKA_UPDATE_SCREENSHOT:-0}" = 1 ]; then
            mkdir -p "$SRC/docs" && cp "$TMP/board.png" "$SRC/docs/board.png"
        fi
    else
        bad "screenshot taken"
    fi
    check "SIGINT stops moka board with status 0" stop_board
else
    bad "moka board starts and reports its URL"
fi

# ---- with a token ----
if start_board "$TMP/board2.log" --logdir "$LOG" --port 0 --token s3cret-t0ken; then
    base=${URL%%\?*}
    check "URL carries the token" test "$URL" = "${base}?token=s3cret-t0ken"
    browse "$base" "$TMP/dom4.html"
    check "page without the token is refused" grep -q 'valid token is required' "$TMP/dom4.html"
    browse "$URL" "$TMP/dom5.html"
    check "page with ?token= loads its scripts and data" state "$TMP/dom5.html" \
        "s['ready'] and s['errors'] == [] and s['fetch_errors'] == [] and \
         s['charts']['loss']['train'] == $((N1 + N2 + 5))"
    check "SIGINT stops moka board (token) with status 0" stop_board
else
    bad "moka board --token starts"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
