#!/usr/bin/env bash
# Bad flags, missing files and malformed configs through the CLI: each must give a non-zero exit
# (2 for usage/config, 1 for runtime), exactly one line on stderr naming the problem, no crash,
# and no partial output files.
#   usage: test_errors.sh MOKA SOURCE_DIR
set -u
moka=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
failures=0

# expect CODE SUBSTRING -- ARGS...
expect() {
    local code=$1 want=$2
    shift 3
    "$moka" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    local lines
    lines=$(grep -v '^[IWD][0-9]\{4\} ' "$tmp/err" | wc -l)
    if [ "$rc" -ne "$code" ]; then
        echo "FAIL moka $*: exit $rc, want $code"; cat "$tmp/err"; failures=$((failures + 1)); return
    fi
    if ! grep -qF -- "$want" "$tmp/err" "$tmp/out"; then
        echo "FAIL moka $*: stderr lacks '$want':"; cat "$tmp/err"; failures=$((failures + 1)); return
    fi
    # One line for the error; usage errors add a "(see 'moka CMD --help')" hint line.
    if [ "$code" -ne 0 ] && [ -z "${MULTI:-}" ] && [ "$lines" -ne 1 ] && [ "$lines" -ne 2 ]; then
        echo "FAIL moka $*: want one error line, got $lines:"; cat "$tmp/err"; failures=$((failures + 1)); return
    fi
    echo "ok   moka $* -> $rc"
}

cat >net_ok.prototxt <<'P'
name: "tiny"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 2 } }
P
cat >typo.prototxt <<'P'
name: "typo"
layer {
  name: "conv1"
  type: "Convolution"
  convolution_param {
    num_output: 20
    kernal_size: 5
  }
}
P
printf 'name: "x"\nlayer {\n  name: "a"\n' >unbalanced.prototxt
printf 'layer { name: "p" type: "Pooling" pooling_param { pool: MAXX } }\n' >badenum.prototxt
printf 'layers { name: "c" type: CONVOLUTION }\n' >v1.prototxt
head -c 300 /dev/urandom >garbage.prototxt
printf 'net: "net_ok.prototxt"\nbase_lr: 0.01\nlr_policy: "bogus"\nmax_iter: 10\n' >badpolicy_solver.prototxt
printf 'net: "missing_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\n' >missingnet_solver.prototxt
cat >missingdata.prototxt <<'P'
layer { name: "d" type: "IDXData" top: "data" top: "label"
  idx_data_param { images: "no/such/images.gz" labels: "no/such/labels.gz" batch_size: 4 } }
P
printf 'net: "missingdata.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\n' >missingdata_solver.prototxt
head -c 1000 /dev/urandom >garbage.caffemodel

MULTI=1 # Caffe data and weights (issue 3): corrupt LMDB, missing list entry, truncated caffemodel and
# wrong blob shapes for --weights.
mkdir -p bad_lmdb && head -c 20000 /dev/urandom >bad_lmdb/data.mdb
printf 'layer { name: "d" type: "Data" top: "x" top: "y" data_param { source: "bad_lmdb" batch_size: 2 backend: LMDB } }\n' >lmdb_net.prototxt
printf 'net: "lmdb_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1\n' >lmdb_solver.prototxt
printf 'missing.png 3\n' >list.txt
printf 'layer { name: "d" type: "ImageData" top: "x" top: "y" image_data_param { source: "list.txt" batch_size: 1 } }\n' >imgs_net.prototxt
printf 'net: "imgs_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1\n' >imgs_solver.prototxt
cat >w_net.prototxt <<'P'
name: "w"
layer { name: "d" type: "DummyData" top: "x" top: "y" dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "z" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "z" bottom: "y" top: "l" }
P
sed 's/num_output: 2/num_output: 2 bias_term: true/; s/dim: 3/dim: 5/' w_net.prototxt >w5_net.prototxt
printf 'net: "w_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1\nsnapshot_prefix: "w"\n' >w_solver.prototxt
printf 'net: "w5_net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1\n' >w5_solver.prototxt
"$moka" train --solver=w_solver.prototxt 2>/dev/null </dev/null
head -c 40 w_iter_1.caffemodel >trunc.caffemodel
expect 1 "bad_lmdb" -- train --solver=lmdb_solver.prototxt
expect 1 "list.txt:1" -- train --solver=imgs_solver.prototxt
expect 1 "trunc.caffemodel" -- train --solver=w_solver.prototxt --weights=trunc.caffemodel
expect 2 "layer 'ip'" -- train --solver=w5_solver.prototxt --weights=w_iter_1.caffemodel
rm -f w_iter_1.*

MULTI=1 expect 2 "usage: moka" --
expect 2 "unknown command 'bogus'" -- bogus
expect 2 "--solver=FILE is required" -- train
expect 2 "unknown flag '--bogus=1'" -- train --bogus=1
expect 2 "--iterations must be an integer" -- train --solver=x --iterations=abc
expect 2 "--threads must be an integer" -- train --solver=x --threads=0
expect 2 "--sigint_effect must be stop, snapshot or none" -- train --solver=x --sigint_effect=explode
expect 2 "give --weights or --snapshot, not both" -- train --solver=x --weights=a --snapshot=b
expect 1 "cannot open 'missing_solver.prototxt'" -- train --solver=missing_solver.prototxt
expect 2 "typo.prototxt:7:5: layer 'conv1': unknown field 'kernal_size' in ConvolutionParameter (did you mean 'kernel_size'?)" -- check typo.prototxt
expect 2 "unbalanced.prototxt:" -- check unbalanced.prototxt
expect 2 "unknown value 'MAXX' for 'pool'" -- check badenum.prototxt
expect 2 "upgrade_net_proto_text" -- check v1.prototxt
expect 2 "garbage.prototxt:" -- check garbage.prototxt
expect 2 "unknown lr_policy 'bogus'" -- train --solver=badpolicy_solver.prototxt
expect 1 "cannot open 'missing_net.prototxt'" -- train --solver=missingnet_solver.prototxt
expect 1 "no/such/images.gz" -- train --solver=missingdata_solver.prototxt
expect 1 "garbage.caffemodel" -- test --model=net_ok.prototxt --weights=garbage.caffemodel --iterations=1
expect 0 "ok (net)" -- check net_ok.prototxt
MULTI=1 expect 0 "usage: moka train --solver=SOLVER.prototxt" -- train --help
MULTI=1 expect 0 "usage: moka time" -- help time
MULTI=1 expect 0 "Cores online: $(getconf _NPROCESSORS_ONLN)" -- device_query

# Nothing half-written was left behind by the failures above.
if ls | grep -E '\.(caffemodel|solverstate)\.|\.tmp' >/dev/null; then
    echo "FAIL stray temporary files: $(ls)"; failures=$((failures + 1))
fi
echo "$((26 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
