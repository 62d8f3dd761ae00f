# tests/dist/common.sh -- shared by the data-parallel tests: the LeNet net with a per-rank batch,
# its solver, and how to launch moka on N local ranks.
#   source common.sh MOKA SOURCE_DIR

moka=$1
src=$2
data=/usr/share/datasets/fashion-mnist
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "skip: no $data"; exit 77; }
command -v mpirun >/dev/null || { echo "skip: no mpirun (apt-get install openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
compare="/usr/bin/python3 $src/tests/ref/compare_caffemodels.py"

# lenet_net FILE BATCH [SOURCE]: Caffe's LeNet (conv20-pool-conv50-pool-ip500-relu-ip10) on
# shuffled Fashion-MNIST with `BATCH` samples per rank.
lenet_net() {
    local set=${3:-t10k}
    cat >"$1" <<P
name: "LeNet"
layer { name: "mnist" type: "IDXData" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/$set-images-idx3-ubyte.gz" labels: "$data/$set-labels-idx1-ubyte.gz"
                   batch_size: $2 shuffle: true } }
layer { name: "mnist" type: "IDXData" top: "data" top: "label" include { phase: TEST }
  transform_param { scale: 0.00390625 }
  idx_data_param { images: "$data/t10k-images-idx3-ubyte.gz" labels: "$data/t10k-labels-idx1-ubyte.gz"
                   batch_size: 100 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
P
}

# lenet_solver FILE TYPE MAX_ITER PREFIX [EXTRA LINES]
lenet_solver() {
    local extra=""
    [ "$2" = Adam ] && extra="momentum2: 0.999"
    cat >"$1" <<S
net: "net.prototxt"
type: "$2"
base_lr: $( [ "$2" = Adam ] && echo 0.001 || echo 0.01 )
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
max_iter: $3
display: ${DISPLAY_EVERY:-10}
random_seed: 11
snapshot_prefix: "$4"
$extra
${5:-}
S
}

# init_weights FILE: the weights every run here starts from (the fillers are seeded by layer
# name): one iteration at base_lr 0 of the batch-64 net, saved as FILE.
init_weights() {
    mkdir -p init.d
    (cd init.d && lenet_net net.prototxt 64 && lenet_solver solver.prototxt SGD 1 init &&
        sed -i 's/^base_lr: .*/base_lr: 0/' solver.prototxt &&
        ranks 1 train --solver=solver.prototxt >log 2>&1) || { echo "init weights failed"; exit 1; }
    mv init.d/init_iter_1.caffemodel "$1"
    rm -rf init.d
}

# ranks N ARGS...: moka on N local ranks, one thread each, under a time limit.
ranks() {
    local n=$1
    shift
    if [ "$n" = 1 ]; then
        timeout -k 5 300 "$moka" "$@" --threads=1 </dev/null
    else
        timeout -k 5 300 mpirun -np "$n" --oversubscribe --bind-to none \
            "$moka" "$@" --threads=1 </dev/null
    fi
}

failures=0
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failures=$((failures + 1)); echo "FAIL: $*"; }
