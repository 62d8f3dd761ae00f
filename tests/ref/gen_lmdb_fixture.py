"""Writes tests/data/lmdb_fixture/data.mdb: a tiny Caffe-style LMDB made without moka and without
a protobuf library, so moka's reader (src/io/db.c, src/io/datum.c) is checked against an
independent writer.

The database is written by Debian's python3-lmdb (the `lmdb` module); each value is a Caffe Datum
(channels 1, height 2, width 3, data 4, label 5, float_data 6, encoded 7) serialized here by hand
from the protobuf wire format. Five records, keys "%08d", each of shape 2 x 3 x 4 (24 values):

  record i, value j (j = 0..23):  data byte (i * 31 + j * 7) mod 256,  label i - 1
  0, 1, 2  fields in Caffe's order (as protobuf-c and C++ protobuf write them)
  3        float_data instead of data, one fixed32 per value (Caffe's non-packed repeated
           float): value j * 0.5 - 3
  4        fields in reverse order, float_data packed into one run of 24 floats with values
           j * 0.25 + 1, plus an unknown varint field 100 that readers must skip

The record-0 label -1 is a 10-byte varint, as protobuf writes negative int32 values.
tests/unit/test_db.c and tests/layers/test_data.c recompute these values from the formulas.

Run with Debian's interpreter: /usr/bin/python3 tests/ref/gen_lmdb_fixture.py
"""
import os
import shutil
import struct

import lmdb

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "lmdb_fixture")
C, H, W = 2, 3, 4
N = C * H * W


def varint(v):
    v &= (1 << 64) - 1  # negative int32 values are sign-extended to 64 bits, as protobuf does
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def int_field(field, v):
    return key(field, 0) + varint(v)


def bytes_field(field, b):
    return key(field, 2) + varint(len(b)) + b


def record(i):
    dims = [int_field(1, C), int_field(2, H), int_field(3, W)]
    label = int_field(5, i - 1)
    if i <= 2:
        data = bytes((i * 31 + j * 7) % 256 for j in range(N))
        return b"".join(dims) + bytes_field(4, data) + label
    if i == 3:
        floats = b"".join(key(6, 5) + struct.pack("<f", j * 0.5 - 3) for j in range(N))
        return b"".join(dims) + label + floats
    packed = bytes_field(6, b"".join(struct.pack("<f", j * 0.25 + 1) for j in range(N)))
    return int_field(100, 12345) + label + packed + b"".join(reversed(dims))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    env = lmdb.open(OUT, map_size=1 << 20, subdir=True)
    with env.begin(write=True) as txn:
        for i in range(5):
            txn.put(b"%08d" % i, record(i))
    env.close()
    os.remove(os.path.join(OUT, "lock.mdb"))  # a lock file is runtime state, not data
    print("wrote", OUT, os.path.getsize(os.path.join(OUT, "data.mdb")), "bytes")


if __name__ == "__main__":
    main()
