#!/usr/bin/python3
"""Compares the weights of two .caffemodel files, decoded with the independent wire reader
read_caffemodel.py (no moka code involved).

Usage: compare_caffemodels.py A B TOLERANCE [--from INIT]
Prints the largest absolute difference over all blobs and the largest relative L2 difference
||a - b|| / ||a|| of a blob; exits 0 when the relative one is <= TOLERANCE, 1 when it is larger
or when the files do not hold the same layers and shapes.
With --from INIT (the weights both runs started from), the measure is instead how far apart the
two runs ended relative to how far training moved: ||a - b|| / ||a - init|| over all blobs
together. Rounding differences give a small fraction; a different data order or gradient, a
fraction near 1.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import read_caffemodel as rc  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        buf = f.read()
    layers = {}
    for number, wtype, value in rc.fields(buf):
        if number in (2, 100):
            name, _, blobs = rc.layer(value, number == 2)
            vals = []
            for legacy, shape, bits in blobs:
                vals.append((shape, [struct.unpack("<f", struct.pack("<I", b))[0] for b in bits]))
            layers[name] = vals
    return layers


def main(argv):
    init = None
    if len(argv) == 6 and argv[4] == "--from":
        init = load(argv[5])
    elif len(argv) != 4:
        sys.stderr.write("usage: compare_caffemodels.py A B TOLERANCE [--from INIT]\n")
        return 2
    a, b, tol = load(argv[1]), load(argv[2]), float(argv[3])
    if sorted(a) != sorted(b):
        print("different layers: %s vs %s" % (sorted(a), sorted(b)))
        return 1
    worst_abs = worst_rel = 0.0
    where = ""
    for name in sorted(a):
        if len(a[name]) != len(b[name]):
            print("layer %s: %d vs %d blobs" % (name, len(a[name]), len(b[name])))
            return 1
        for i, ((sa, va), (sb, vb)) in enumerate(zip(a[name], b[name])):
            if sa != sb:
                print("layer %s blob %d: shape %s vs %s" % (name, i, sa, sb))
                return 1
            norm = max(sum(x * x for x in va) ** 0.5, 1e-30)
            rel = sum((x - y) ** 2 for x, y in zip(va, vb)) ** 0.5 / norm
            if rel > worst_rel:
                worst_rel, where = rel, "%s/%d" % (name, i)
            worst_abs = max(worst_abs, max(abs(x - y) for x, y in zip(va, vb)))
    if init is not None:
        apart = moved = 0.0
        for name in a:
            for (_, va), (_, vb), (_, vi) in zip(a[name], b[name], init[name]):
                apart += sum((x - y) ** 2 for x, y in zip(va, vb))
                moved += sum((x - z) ** 2 for x, z in zip(va, vi))
        frac = (apart / max(moved, 1e-60)) ** 0.5
        ok = frac <= tol
        print("runs apart by %.3g of the distance trained (max abs diff %.3g), tolerance %.3g: %s"
              % (frac, worst_abs, tol, "ok" if ok else "TOO LARGE"))
        return 0 if ok else 1
    ok = worst_rel <= tol
    print("max abs diff %.3g, max rel diff %.3g (at %s), tolerance %.3g: %s"
          % (worst_abs, worst_rel, where or "-", tol, "ok" if ok else "TOO LARGE"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
