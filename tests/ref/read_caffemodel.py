#!/usr/bin/python3
"""An independent reader of Caffe's .caffemodel and .solverstate files, used by
tests/unit/test_caffemodel.c to cross-check moka's writer and reader.

It decodes the protobuf wire format by hand, from the format's description (varint keys
`field_number << 3 | wire_type`; wire types 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32;
repeated scalars either packed in one length-delimited field or one entry per value), with no
generated code and no protobuf library, so it shares no code with moka's protobuf-c path.

Fields read (Caffe's caffe.proto numbers):
  NetParameter     name 1 (string), layers 2 (V1LayerParameter), layer 100 (LayerParameter)
  LayerParameter   name 1, type 2 (string), blobs 7
  V1LayerParameter name 4, type 5 (enum, printed as "#<number>"), blobs 6
  BlobProto        shape 7 (BlobShape: dim 1, int64), data 5 (float), double_data 8 (double),
                   legacy num 1, channels 2, height 3, width 4 (int32)
  SolverState      iter 1, learned_net 2, history 3 (BlobProto), current_step 4
Other fields are skipped by wire type.

Usage: /usr/bin/python3 read_caffemodel.py [--solverstate] FILE
Prints one canonical text dump on stdout (exit 0), or a message on stderr (exit 1):
  net <name>                                  (a .caffemodel)
  solverstate <iter> <current_step> <learned_net or "-">
  layer <name> <type> <number of blobs>
  blob [legacy] <ndim> <dim>... <count>        legacy: shape from num/channels/height/width
  data <hex>...                               each value's float32 bits as 8 hex digits
Blobs with double_data print the doubles rounded to float32, as Caffe's FromProto stores them.
"""
import struct
import sys


class WireError(Exception):
    pass


def varint(buf, pos):
    """Returns (value, new position) of the base-128 varint at pos."""
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("varint runs past the end at byte %d" % pos)
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes at byte %d" % pos)


def signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


def fields(buf):
    """Yields (field number, wire type, value) over one message's bytes. Value is an int for
    varints, and the raw bytes for the other wire types."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = varint(buf, pos)
        number, wtype = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0 at byte %d" % start)
        if wtype == 0:
            value, pos = varint(buf, pos)
        elif wtype == 1:
            if pos + 8 > len(buf):
                raise WireError("fixed64 field %d at byte %d is cut off" % (number, start))
            value, pos = buf[pos:pos + 8], pos + 8
        elif wtype == 2:
            n, pos = varint(buf, pos)
            if pos + n > len(buf):
                raise WireError("field %d at byte %d declares %d bytes, %d remain"
                                % (number, start, n, len(buf) - pos))
            value, pos = buf[pos:pos + n], pos + n
        elif wtype == 5:
            if pos + 4 > len(buf):
                raise WireError("fixed32 field %d at byte %d is cut off" % (number, start))
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise WireError("unsupported wire type %d at byte %d" % (wtype, start))
        yield number, wtype, value


def repeated_fixed(wtype, value, size, fmt):
    """Values of a repeated fixed-width field entry, packed (wire type 2) or not."""
    if wtype == 2:
        if len(value) % size:
            raise WireError("packed field of %d bytes is not a multiple of %d" % (len(value), size))
        return list(struct.unpack("<%d%s" % (len(value) // size, fmt), value))
    if wtype != (5 if size == 4 else 1):
        raise WireError("wrong wire type %d for a %d-byte value" % (wtype, size))
    return [struct.unpack("<" + fmt, value)[0]]


def repeated_varint(wtype, value):
    if wtype == 0:
        return [value]
    if wtype != 2:
        raise WireError("wrong wire type %d for a varint" % wtype)
    out, pos = [], 0
    while pos < len(value):
        v, pos = varint(value, pos)
        out.append(v)
    return out


def text(wtype, value):
    if wtype != 2:
        raise WireError("wrong wire type %d for a string" % wtype)
    return value.decode("utf-8")


def blob(buf):
    """Returns (legacy, shape list, float32 bit patterns)."""
    shape, data, ddata, legacy = [], [], [], {}
    for number, wtype, value in fields(buf):
        if number == 7:
            for n2, w2, v2 in fields(value):
                if n2 == 1:
                    shape += [signed64(d) for d in repeated_varint(w2, v2)]
        elif number == 5:
            data += repeated_fixed(wtype, value, 4, "I")  # keep the exact bits
        elif number == 8:
            ddata += repeated_fixed(wtype, value, 8, "d")
        elif number in (1, 2, 3, 4):
            if wtype != 0:
                raise WireError("legacy dimension field %d has wire type %d" % (number, wtype))
            legacy[number] = signed64(value)
    if legacy:
        shape = [legacy.get(k, 0) for k in (1, 2, 3, 4)]
    if ddata:
        data = [struct.unpack("<I", struct.pack("<f", d))[0] for d in ddata]
    return bool(legacy), shape, data


def dump_blob(out, b):
    legacy, shape, data = b
    count = 1
    for d in shape:
        count *= d
    if count != len(data):
        raise WireError("blob of shape %s holds %d values" % (shape, len(data)))
    words = ["blob"] + (["legacy"] if legacy else []) + [str(len(shape))]
    out.append(" ".join(words + [str(d) for d in shape] + [str(count)]))
    out.append(" ".join(["data"] + ["%08x" % v for v in data]))


def layer(buf, v1):
    name, ltype, blobs = "", "", []
    for number, wtype, value in fields(buf):
        if v1:
            if number == 4:
                name = text(wtype, value)
            elif number == 5:
                ltype = "#%d" % value
            elif number == 6:
                blobs.append(blob(value))
            elif number == 1:
                raise WireError("V0 layer entries are not read")
        else:
            if number == 1:
                name = text(wtype, value)
            elif number == 2:
                ltype = text(wtype, value)
            elif number == 7:
                blobs.append(blob(value))
    return name, ltype, blobs


def dump_net(buf):
    out, name = [], ""
    layers = []
    for number, wtype, value in fields(buf):
        if number == 1:
            name = text(wtype, value)
        elif number == 2:
            layers.append(layer(value, True))
        elif number == 100:
            layers.append(layer(value, False))
    out.append("net " + name)
    for lname, ltype, blobs in layers:
        out.append("layer %s %s %d" % (lname, ltype, len(blobs)))
        for b in blobs:
            dump_blob(out, b)
    return out


def dump_solverstate(buf):
    it, step, net, hist = 0, 0, "-", []
    for number, wtype, value in fields(buf):
        if number == 1:
            it = signed64(value)
        elif number == 2:
            net = text(wtype, value)
        elif number == 3:
            hist.append(blob(value))
        elif number == 4:
            step = signed64(value)
    out = ["solverstate %d %d %s" % (it, step, net)]
    for b in hist:
        dump_blob(out, b)
    return out


def main(argv):
    solver = "--solverstate" in argv
    paths = [a for a in argv[1:] if a != "--solverstate"]
    if len(paths) != 1:
        sys.stderr.write("usage: read_caffemodel.py [--solverstate] FILE\n")
        return 2
    with open(paths[0], "rb") as f:
        buf = f.read()
    try:
        lines = dump_solverstate(buf) if solver else dump_net(buf)
    except (WireError, UnicodeDecodeError, struct.error) as e:
        sys.stderr.write("%s: %s\n" % (paths[0], e))
        return 1
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
