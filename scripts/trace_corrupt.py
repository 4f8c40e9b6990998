#!/usr/bin/env python3
"""trace_corrupt.py — makes the corrupt trace samples of tests/data/traces/
from a valid trace (traces/samples/rocketkv.trc): raw damage (truncation,
flipped bytes, bad magic/version) and well-framed damage (valid CRCs around
bad content: counts, positions, runs, flags, dims, header fields), each
rebuilt with correct lengths, checksums, index and footer so that only the
intended check can catch it. test_traces.c lists what each must report.

    python3 scripts/trace_corrupt.py traces/samples/rocketkv.trc tests/data/traces
"""
import os
import struct
import sys

POLY = 0x82F63B78
TAB = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TAB.append(c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = (c >> 8) ^ TAB[(c ^ x) & 0xFF]
    return c ^ 0xFFFFFFFF


def var(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def rvar(b, i):
    v = s = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << s
        s += 7
        if not x & 0x80:
            return v, i


def parse(data):
    index_off = struct.unpack_from("<Q", data, len(data) - 16)[0]
    blocks, off = [], 12
    while off < index_off:
        t, n = data[off], struct.unpack_from("<I", data, off + 1)[0]
        blocks.append([chr(t), bytearray(data[off + 5:off + 5 + n])])
        off += 9 + n
    ip = data[index_off + 5:len(data) - 20]
    batch, i = rvar(ip, 0)
    steps, i = rvar(ip, i)
    return blocks, batch, steps


def frame(t, p):
    h = bytes([ord(t)]) + struct.pack("<I", len(p)) + bytes(p)
    return h + struct.pack("<I", crc32c(h))


def build(blocks, batch, steps, index_tweak=None):
    out = bytearray(b"KVSIMTRC" + struct.pack("<I", 1))
    s1, d = [], []
    for t, p in blocks:
        (s1 if t == "S" else d if t == "D" else []).append(len(out))
        out += frame(t, p)
    offs = s1 + d
    if index_tweak:
        offs = index_tweak(offs)
    ip = var(batch) + var(steps) + b"".join(var(o) for o in offs)
    index_off = len(out)
    out += frame("I", ip)
    foot = struct.pack("<Q", index_off) + b"KTRE"
    return bytes(out + foot + struct.pack("<I", crc32c(foot)))


def header_fields(p):
    n, i = rvar(p, 0)
    fields = []
    for _ in range(n):
        kind = p[i]
        nl, i = rvar(p, i + 1)
        name = bytes(p[i:i + nl])
        i += nl
        j = i
        if kind == 1:
            _, j = rvar(p, i)
        elif kind == 2:
            j = i + 8
        elif kind == 3:
            sl, j = rvar(p, i)
            j += sl
        else:
            cnt, j = rvar(p, i)
            for _ in range(cnt):
                _, j = rvar(p, j)
        fields.append([kind, name, bytes(p[i:j])])
        i = j
    return fields


def header_payload(fields):
    out = bytearray(var(len(fields)))
    for kind, name, val in fields:
        out += bytes([kind]) + var(len(name)) + name + val
    return out


def first_record(p, G=3):
    """Offsets inside a 'D' payload: layer, flags, first position list, dims."""
    i = 0
    for _ in range(3):
        _, i = rvar(p, i)
    at = {"layer": i}
    _, i = rvar(p, i)
    _, i = rvar(p, i)
    at["flags"] = i
    flags = p[i]
    i += 1
    for _ in range(2 + 6 + 3):
        _, i = rvar(p, i)
    at["poslist"] = i
    rows = 1 if flags & 1 else G
    for r in range(rows):
        cnt, i = rvar(p, i)
        got = 0
        while got < cnt:
            v, i = rvar(p, i)
            if v & 1:
                e, i = rvar(p, i)
                got += e + 2
            else:
                got += 1
        if r == 0:
            at["poslist_end"] = i
    nd, i = rvar(p, i)
    at["dims"] = i if nd else None
    return at


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    blocks, batch, steps = parse(data)
    out = {}

    def save(name, b):
        out[name] = b

    save("empty.trc", b"")
    b = bytearray(data); b[0] ^= 0x20; save("bad_magic.trc", bytes(b))
    b = bytearray(data); b[8:12] = struct.pack("<I", 2); save("bad_version.trc", bytes(b))
    save("truncated_middle.trc", data[:len(data) // 2])
    save("truncated_footer.trc", data[:-5])
    save("trailing_garbage.trc", data + b"xx")
    hdr_len = struct.unpack_from("<I", data, 13)[0]
    d0 = 12 + 9 + hdr_len + 9 + len(blocks[1][1])  # first 'D' block (after H and S)
    b = bytearray(data); b[d0 + 5 + 7] ^= 0x04; save("flipped_step_byte.trc", bytes(b))
    b = bytearray(data); b[12 + 5 + 20] ^= 0x01; save("flipped_header_byte.trc", bytes(b))
    save("bad_index_offset.trc", build(blocks, batch, steps, lambda o: o[:2] + [o[2] + 1] + o[3:]))

    fields = header_fields(blocks[0][1])

    def with_header(fl):
        bl = [list(x) for x in blocks]
        bl[0][1] = header_payload(fl)
        return build(bl, batch, steps)

    save("missing_field.trc", with_header([f for f in fields if f[1] != b"budget"]))
    dup = [f for f in fields]
    dup.insert(20, [f for f in fields if f[1] == b"S"][0])
    save("duplicate_field.trc", with_header(dup))
    lay = [list(f) for f in fields]
    for f in lay:
        if f[1] == b"layers":
            f[2] = var(2) + var(2) + var(0)  # zigzag(1), zigzag(0)
        if f[1] == b"batch":
            pass
    save("layers_unsorted.trc", with_header(lay))
    bat = [list(f) for f in fields]
    for f in bat:
        if f[1] == b"batch":
            f[2] = var((1 << 20) * 2)  # zigzag(2^20)
    save("batch_overflow.trc", with_header(bat))

    def with_step(edit):
        bl = [list(x) for x in blocks]
        di = [i for i, x in enumerate(bl) if x[0] == "D"][0]
        p = bytearray(bl[di][1])
        bl[di][1] = edit(p, first_record(p))
        return build(bl, batch, steps)

    save("count_overflow.trc", with_step(lambda p, a: p[:a["poslist"]] + var(1 << 40) + p[a["poslist"] + 1:]))
    save("position_out_of_range.trc",
         with_step(lambda p, a: p[:a["poslist"]] + var(1) + var(5000 << 1) + p[a["poslist_end"]:]))
    save("run_overflows_count.trc",
         with_step(lambda p, a: p[:a["poslist"]] + var(2) + var(1) + var(5) + p[a["poslist_end"]:]))
    save("varint_too_long.trc", with_step(lambda p, a: p[:a["layer"]] + b"\x80" * 11 + b"\x00" + p[a["layer"] + 1:]))

    def popcount(p, a):
        i = a["dims"]
        while p[i] == 0xFF:
            i += 1
        p[i] |= (~p[i] & 0xFF) & -(~p[i] & 0xFF)
        return p

    save("dims_popcount.trc", with_step(popcount))

    def flags(p, a):
        p[a["flags"]] |= 0x80
        return p

    save("bad_flags.trc", with_step(flags))
    save("trailing_record_bytes.trc", with_step(lambda p, a: p + b"\x00"))
    save("wrong_layer.trc", with_step(lambda p, a: p[:a["layer"]] + var(5) + p[a["layer"] + 1:]))

    def with_stage1(edit):
        bl = [list(x) for x in blocks]
        si = [i for i, x in enumerate(bl) if x[0] == "S"][0]
        bl[si][1] = edit(bytearray(bl[si][1]))
        return build(bl, batch, steps)

    # decoded in full (every buffer allocated), then refused: the reader must free them
    save("stage1_trailing_bytes.trc", with_stage1(lambda p: p + b"\x00"))
    os.makedirs(dst, exist_ok=True)
    for name, b in out.items():
        with open(os.path.join(dst, name), "wb") as f:
            f.write(b)
    print("wrote %d samples to %s" % (len(out), dst))


if __name__ == "__main__":
    main()
