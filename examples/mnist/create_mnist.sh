#!/usr/bin/env sh
# Builds the LMDBs that Caffe's examples/mnist/lenet_train_test.prototxt reads
# (examples/mnist/mnist_train_lmdb and mnist_test_lmdb) from the Fashion-MNIST IDX files, with
# `moka convert_mnist_data`, as Caffe's own create_mnist.sh does with convert_mnist_data.bin.
# Run it from the repository root (or any directory laid out like it):
#   examples/mnist/create_mnist.sh
# Environment: MOKA, the moka binary (default build/moka); DATA, the directory holding the
# *-idx?-ubyte.gz files (default /usr/share/datasets/fashion-mnist, Debian's
# dataset-fashion-mnist). A DB that already exists is kept; delete it to rebuild it.
set -e

EXAMPLE=examples/mnist
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
MOKA=${MOKA:-build/moka}
BACKEND=lmdb

if [ ! -d "$EXAMPLE" ]; then
    echo "create_mnist.sh: run me from the repository root (no $EXAMPLE here)" >&2
    exit 1
fi
if [ ! -x "$MOKA" ]; then
    echo "create_mnist.sh: no moka binary at '$MOKA' (build it, or set MOKA=/path/to/moka)" >&2
    exit 1
fi

# find_idx NAME: the IDX file NAME in $DATA, gzip'ed or not.
find_idx() {
    for f in "$DATA/$1.gz" "$DATA/$1"; do
        if [ -f "$f" ]; then echo "$f"; return 0; fi
    done
    echo "create_mnist.sh: no $1(.gz) in $DATA" >&2
    return 1
}

# convert SPLIT PREFIX: builds $EXAMPLE/mnist_SPLIT_lmdb from PREFIX-{images-idx3,labels-idx1}.
convert() {
    db="$EXAMPLE/mnist_$1_$BACKEND"
    if [ -f "$db/data.mdb" ]; then
        echo "$db exists; keeping it"
        return 0
    fi
    images=$(find_idx "$2-images-idx3-ubyte")
    labels=$(find_idx "$2-labels-idx1-ubyte")
    rm -rf "$db"
    echo "Creating $db..."
    "$MOKA" convert_mnist_data "$images" "$labels" "$db" --backend=$BACKEND
}

convert train train
convert test t10k
echo "Done."
