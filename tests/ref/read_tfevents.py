#!/usr/bin/python3
"""An independent reader of TensorBoard event files (events.out.tfevents.*), used by
tests/unit/test_tfevents.c and tests/unit/test_png.c to cross-check moka's writer.

Written from the format descriptions, sharing no code with moka (no generated code, no protobuf
library):
  TFRecord framing: uint64 LE length, uint32 LE masked CRC32C of those 8 bytes, the data, uint32
    LE masked CRC32C of the data; CRC32C is the reflected CRC-32 with polynomial 0x82F63B78,
    mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32). Implemented here bit by bit.
  Protobuf wire format: keys are varints `field << 3 | wire type`; wire types 0 varint,
    1 fixed64, 2 length-delimited, 5 fixed32. Repeated scalars may be packed or not.
  Messages (TensorFlow's field numbers):
    Event          wall_time 1 (double), step 2 (int64), file_version 3, graph_def 4 (bytes),
                   summary 5, session_log 7
    Summary        value 1 (repeated Value)
    Value          tag 1, simple_value 2 (float), image 4, histo 5, tensor 8
    HistogramProto min 1, max 2, num 3, sum 4, sum_squares 5 (doubles), bucket_limit 6,
                   bucket 7 (repeated double)
    Image          height 1, width 2, colorspace 3, encoded_image_string 4
    GraphDef       node 1, versions 4 (VersionDef: producer 1)
    NodeDef        name 1, op 2, input 3, device 4, attr 5 (map entry: key 1, value 2)
    AttrValue      i 3 (int64); other kinds print as "<kind>"
    SessionLog     status 1
  PNG: signature, chunks (uint32 BE length, type, data, CRC-32 of type + data, checked with
    zlib.crc32), IHDR (8-bit, colour types 0/2/4/6, no interlace), the IDAT data concatenated
    and inflated with zlib, each row unfiltered (filters 0-4, Paeth included), IEND.

Usage:
  /usr/bin/python3 read_tfevents.py [--wall] EVENTFILE
  /usr/bin/python3 read_tfevents.py --png PNGFILE
Prints a canonical dump on stdout and exits 0, or prints a message on stderr and exits 1 (a CRC
mismatch, malformed protobuf or PNG). Doubles print as the 16 hex digits of their IEEE bits,
floats as 8, so the comparison is exact. Dump lines:
  event <step> file_version <text>
  event <step> scalar <tag> <float bits>
  event <step> tensor_scalar <tag> <double bits>       (a tensor holding one float or double)
  event <step> histo <tag> <min> <max> <num> <sum> <sum_squares> <nbuckets>
    bucket <limit bits> <count bits>                    (one line per bucket)
  event <step> image <tag> <height> <width> <colorspace> <png dump>
  event <step> graph producer=<n> nodes=<n>
    node <name> <op> inputs=<a,b,...> attrs=<key=value,...>   (- for none)
  event <step> session_log <status>
  event <step> empty
  wall <repr of wall_time>                                 (with --wall, after each event line)
  partial_tail <bytes>          (the file ends inside a record: a file still being written)
A PNG dumps as: png <width> <height> <channels> <hex of the pixel bytes, row-major, interleaved>
"""
import struct
import sys
import zlib


class FormatError(Exception):
    pass


# ---- CRC32C ----------------------------------------------------------------------------------

def crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# The byte-at-a-time table, each entry the bitwise register update of one byte (a speed-up only:
# crc32c below equals crc32c_bitwise, which main() checks on the standard vector).
CRC_TABLE = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    CRC_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ---- protobuf wire format -------------------------------------------------------------------

def varint(buf, pos):
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise FormatError("varint runs past the end at byte %d" % pos)
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise FormatError("varint longer than 10 bytes at byte %d" % pos)


def signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


def fields(buf):
    """Yields (field number, wire type, value): an int for varints, raw bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise FormatError("field number 0")
        if wt == 0:
            v, pos = varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise FormatError("fixed64 runs past the end")
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = varint(buf, pos)
            if pos + n > len(buf):
                raise FormatError("length-delimited field %d runs past the end" % num)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise FormatError("fixed32 runs past the end")
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise FormatError("unsupported wire type %d (field %d)" % (wt, num))
        yield num, wt, v


def need(wt, want, what):
    if wt != want:
        raise FormatError("%s has wire type %d, want %d" % (what, wt, want))


def repeated_fixed64(wt, v, out, what):
    """Appends the raw 8-byte values of a repeated double, packed (wire type 2) or not (1)."""
    if wt == 2:
        if len(v) % 8:
            raise FormatError("packed %s of %d bytes" % (what, len(v)))
        out.extend(v[i:i + 8] for i in range(0, len(v), 8))
    else:
        need(wt, 1, what)
        out.append(v)


def bits64(raw):
    return "%016x" % struct.unpack("<Q", raw)[0]


def bits32(raw):
    return "%08x" % struct.unpack("<I", raw)[0]


# ---- messages --------------------------------------------------------------------------------

def histogram(buf):
    h = {k: b"\0" * 8 for k in ("min", "max", "num", "sum", "sum_squares")}
    limits, counts = [], []
    names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
    for num, wt, v in fields(buf):
        if num in names:
            need(wt, 1, "HistogramProto." + names[num])
            h[names[num]] = v
        elif num == 6:
            repeated_fixed64(wt, v, limits, "bucket_limit")
        elif num == 7:
            repeated_fixed64(wt, v, counts, "bucket")
    if len(limits) != len(counts):
        raise FormatError("histogram with %d limits and %d buckets" % (len(limits), len(counts)))
    return h, limits, counts


def png_dump(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise FormatError("not a PNG signature")
    pos = 8
    ihdr = None
    idat = b""
    seen_end = False
    while pos < len(data):
        if pos + 12 > len(data):
            raise FormatError("PNG chunk header runs past the end")
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise FormatError("PNG chunk %r runs past the end" % ctype)
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise FormatError("PNG chunk %r CRC mismatch" % ctype)
        pos += 12 + n
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            seen_end = True
            break
    if ihdr is None or not seen_end:
        raise FormatError("PNG without IHDR or IEND")
    if pos != len(data):
        raise FormatError("PNG has %d bytes after IEND" % (len(data) - pos))
    width, height, depth, ctype, comp, filt, interlace = ihdr
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or comp or filt or interlace:
        raise FormatError("unsupported PNG: depth %d colour type %d interlace %d"
                          % (depth, ctype, interlace))
    raw = zlib.decompress(idat)
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise FormatError("PNG image data has %d bytes, want %d"
                          % (len(raw), height * (stride + 1)))
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise FormatError("PNG filter type %d" % f)
            line[x] = (line[x] + pred) & 0xFF
        out += line
        prev = line
    return "png %d %d %d %s" % (width, height, channels, out.hex())


def image(buf):
    h = w = cs = 0
    enc = b""
    for num, wt, v in fields(buf):
        if num in (1, 2, 3):
            need(wt, 0, "Image field %d" % num)
            if num == 1:
                h = signed64(v)
            elif num == 2:
                w = signed64(v)
            else:
                cs = signed64(v)
        elif num == 4:
            need(wt, 2, "encoded_image_string")
            enc = v
    return "%d %d %d %s" % (h, w, cs, png_dump(enc))


def tensor_scalar(buf):
    """The one float (dtype 1) or double (dtype 2) of a TensorProto, or None."""
    dtype = 0
    content = b""
    floats, doubles = [], []
    for num, wt, v in fields(buf):
        if num == 1:
            need(wt, 0, "TensorProto.dtype")
            dtype = v
        elif num == 4:
            content = v
        elif num == 5:
            if wt == 2:
                floats.extend(v[i:i + 4] for i in range(0, len(v), 4))
            else:
                floats.append(v)
        elif num == 6:
            repeated_fixed64(wt, v, doubles, "double_val")
    if dtype == 1:
        raw = [content] if len(content) == 4 else floats
        if len(raw) == 1:
            return struct.pack("<d", struct.unpack("<f", raw[0])[0])
    if dtype == 2:
        raw = [content] if len(content) == 8 else doubles
        if len(raw) == 1:
            return raw[0]
    return None


def summary(step, buf, out):
    for num, wt, v in fields(buf):
        if num != 1:
            continue
        need(wt, 2, "Summary.value")
        tag = ""
        line = None
        for vn, vwt, vv in fields(v):
            if vn == 1:
                need(vwt, 2, "Value.tag")
                tag = vv.decode("utf-8")
            elif vn == 2:
                need(vwt, 5, "Value.simple_value")
                line = lambda t, vv=vv: "scalar %s %s" % (t, bits32(vv))
            elif vn == 4:
                need(vwt, 2, "Value.image")
                line = lambda t, vv=vv: "image %s %s" % (t, image(vv))
            elif vn == 5:
                need(vwt, 2, "Value.histo")
                h, limits, counts = histogram(vv)
                def hline(t, h=h, limits=limits, counts=counts):
                    head = "histo %s %s %s %s %s %s %d" % (
                        t, bits64(h["min"]), bits64(h["max"]), bits64(h["num"]), bits64(h["sum"]),
                        bits64(h["sum_squares"]), len(limits))
                    rows = ["  bucket %s %s" % (bits64(l), bits64(c))
                            for l, c in zip(limits, counts)]
                    return "\n".join([head] + rows)
                line = hline
            elif vn == 8:
                need(vwt, 2, "Value.tensor")
                x = tensor_scalar(vv)
                line = (lambda t, x=x: "tensor_scalar %s %s" % (t, bits64(x))) if x else None
        out.append("event %d %s" % (step, line(tag) if line else "value %s" % tag))


def attr_value(buf):
    kind = "none"
    kinds = {1: "list", 2: "s", 4: "f", 5: "b", 6: "type", 7: "shape", 8: "tensor",
             9: "placeholder", 10: "func"}
    for num, wt, v in fields(buf):
        if num == 3:
            need(wt, 0, "AttrValue.i")
            kind = str(signed64(v))
        elif num in kinds:
            kind = "<%s>" % kinds[num]
    return kind


def graph(step, buf, out):
    producer = 0
    nodes = []
    for num, wt, v in fields(buf):
        if num == 1:
            need(wt, 2, "GraphDef.node")
            name = op = ""
            inputs, attrs = [], []
            for nn, nwt, nv in fields(v):
                if nn == 1:
                    name = nv.decode("utf-8")
                elif nn == 2:
                    op = nv.decode("utf-8")
                elif nn == 3:
                    inputs.append(nv.decode("utf-8"))
                elif nn == 5:
                    need(nwt, 2, "NodeDef.attr")
                    key, val = "", "none"
                    for en, ewt, ev in fields(nv):
                        if en == 1:
                            key = ev.decode("utf-8")
                        elif en == 2:
                            val = attr_value(ev)
                    attrs.append("%s=%s" % (key, val))
            nodes.append("  node %s %s inputs=%s attrs=%s" % (
                name, op, ",".join(inputs) or "-", ",".join(attrs) or "-"))
        elif num == 4:
            need(wt, 2, "GraphDef.versions")
            for vn, vwt, vv in fields(v):
                if vn == 1:
                    producer = signed64(vv)
    out.append("event %d graph producer=%d nodes=%d" % (step, producer, len(nodes)))
    out.extend(nodes)


def event(buf, out, wall):
    step = 0
    wall_time = 0.0
    what = None
    for num, wt, v in fields(buf):
        if num == 1:
            need(wt, 1, "Event.wall_time")
            (wall_time,) = struct.unpack("<d", v)
        elif num == 2:
            need(wt, 0, "Event.step")
            step = signed64(v)
        elif num in (3, 4, 5, 7):
            need(wt, 2, "Event field %d" % num)
            what = (num, v)
    if what is None:
        out.append("event %d empty" % step)
    elif what[0] == 3:
        out.append("event %d file_version %s" % (step, what[1].decode("utf-8")))
    elif what[0] == 4:
        graph(step, what[1], out)
    elif what[0] == 5:
        summary(step, what[1], out)
    else:
        status = 0
        for sn, swt, sv in fields(what[1]):
            if sn == 1:
                status = sv
        out.append("event %d session_log %d" % (step, status))
    if wall:
        out.append("wall %r" % wall_time)


def read_events(path, wall):
    data = open(path, "rb").read()
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            out.append("partial_tail %d" % (len(data) - pos))
            break
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked_crc32c(header) != hcrc:
            raise FormatError("record at byte %d: length CRC mismatch" % pos)
        if len(data) - pos - 12 < length + 4:
            out.append("partial_tail %d" % (len(data) - pos))
            break
        body = data[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked_crc32c(body) != dcrc:
            raise FormatError("record at byte %d: data CRC mismatch" % pos)
        try:
            event(body, out, wall)
        except (FormatError, UnicodeDecodeError, zlib.error, struct.error) as e:
            raise FormatError("record at byte %d: %s" % (pos, e))
        pos += 16 + length
    return out


def main(argv):
    assert crc32c(b"123456789") == crc32c_bitwise(b"123456789") == 0xE3069283
    try:
        if len(argv) == 3 and argv[1] == "--png":
            print(png_dump(open(argv[2], "rb").read()))
            return 0
        wall = len(argv) == 3 and argv[1] == "--wall"
        if len(argv) != 2 and not wall:
            sys.stderr.write(__doc__)
            return 2
        print("\n".join(read_events(argv[-1], wall)))
        return 0
    except (FormatError, OSError, zlib.error, struct.error) as e:
        sys.stderr.write("read_tfevents.py: %s: %s\n" % (argv[-1], e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
