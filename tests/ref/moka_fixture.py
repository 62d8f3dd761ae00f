"""Writes moka test fixtures: named float32 tensors, read by tests/harness.c (moka_fixture_load).

Format (little-endian):
  b"MOKAFIX1", uint32 count, uint32 len + bytes of the generator's torch version,
  then per tensor: uint32 name_len, name bytes, uint32 ndim, int64 dims[ndim], float32 data.

Run the generators with Debian's interpreter: /usr/bin/python3 tests/ref/gen_<layer>.py
"""
import os
import struct

import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def write(name, tensors):
    """tensors: dict name -> torch tensor (any float dtype, converted to float32)."""
    path = os.path.join(DATA_DIR, name + ".bin")
    ver = torch.__version__.encode()
    with open(path + ".tmp", "wb") as f:
        f.write(b"MOKAFIX1")
        f.write(struct.pack("<II", len(tensors), len(ver)))
        f.write(ver)
        for key, t in tensors.items():
            t = t.detach().to(torch.float32).contiguous()
            kb = key.encode()
            f.write(struct.pack("<I", len(kb)))
            f.write(kb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())
    os.replace(path + ".tmp", path)
