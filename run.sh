#!/usr/bin/env bash
# run.sh -- set up, build and run moka on Debian 12 (as root, or with sudo available).
#
#   ./run.sh train [moka train flags]   install what is missing, build, train LeNet on Fashion-MNIST
#   ./run.sh test                       install what is missing, build with -Werror, run every test,
#                                       again under ASan+UBSan, and the fuzzers for a bounded time
#   ./run.sh build                      install and build only (build/moka)
#   ./run.sh bench                      the side-by-side benchmark against PyTorch (bench/)
set -euo pipefail
cd "$(dirname "$0")"

BUILD_PKGS="build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler
            libopenblas-openmp-dev libdnnl-dev zlib1g-dev libmicrohttpd-dev liblmdb-dev libhdf5-dev
            libjpeg-dev libpng-dev libcurl4-openssl-dev libssl-dev libopenmpi-dev openmpi-bin
            dataset-fashion-mnist python3"
TEST_PKGS="clang libfuzzer-14-dev libclang-rt-14-dev chromium python3-opencv python3-lmdb python3-numpy
           python3-pil iproute2 iptables util-linux hostname"
BENCH_PKGS="python3-torch python3-numpy"

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "run.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    # $1 build dir, rest: extra cmake args
    local dir=$1; shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOKA_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
train)
    install_missing $BUILD_PKGS
    build build
    exec ./build/moka train --solver=examples/mnist/lenet_solver.prototxt "$@"
    ;;
build)
    install_missing $BUILD_PKGS
    build build
    ;;
test)
    install_missing $BUILD_PKGS $TEST_PKGS
    # The S3 test rig (../shared/tools/s3-test-server) runs on Node.js.
    command -v node >/dev/null && command -v npm >/dev/null || install_missing nodejs npm
    build build
    ctest --test-dir build --output-on-failure -j2 --timeout 900
    # The unit, layer and solver tests again under AddressSanitizer + UndefinedBehaviorSanitizer
    # (a leak is a failure).
    build build-asan -DMOKA_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure -j2 -L 'unit|layers|solvers' --timeout 900
    # Fuzz the text parser and the IDX reader for a bounded time each.
    CC=clang build build-fuzz -DMOKA_FUZZ=ON
    bash tests/fuzz/run_fuzzers.sh build-fuzz "${MOKA_FUZZ_SECONDS:-60}"
    ;;
bench)
    install_missing $BUILD_PKGS $BENCH_PKGS
    build build
    exec bash bench/lenet_vs_pytorch.sh "$@"
    ;;
*)
    echo "usage: ./run.sh train|test|build|bench" >&2
    exit 2
    ;;
esac
