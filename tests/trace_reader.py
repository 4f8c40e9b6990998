#!/usr/bin/env python3
"""tests/trace_reader.py — a second reader of the kvsim trace format, written
from traces/FORMAT.md alone (no code shared with traces/trc_read.c), used as
the independent oracle for `kvsim inspect --json`.

    python3 tests/trace_reader.py FILE.trc                 # the summary as JSON
    python3 tests/trace_reader.py FILE.trc --check KVSIM   # compare with `KVSIM inspect FILE.trc --json`

It checks the framing of every block (CRC32C, lengths), the footer and the
index, decodes the header fields, the stage-1 position lists and every
decode-step record, and sums per step what inspect reports: the six byte
categories, sectors, KV pages, attended positions, and the dense K/V bytes a
full attention would read, (position + 1) · 2 · d · b per record. --check
exits 1 naming the first field that differs (numbers compared to 1e-12
relative; integers exactly).
"""
import json
import struct
import subprocess
import sys

CATS = ("weights", "kv_exact", "kv_full", "aux", "kv_write", "scores")
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8-e4m3": 1, "fp8-e5m2": 1}


class Bad(Exception):
    pass


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected 0x82F63B78, init and final xor 0xFFFFFFFF)."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class Cur:
    def __init__(self, buf, off=0):
        self.b, self.o = buf, off

    def u8(self):
        v = self.b[self.o]
        self.o += 1
        return v

    def u32(self):
        v = struct.unpack_from("<I", self.b, self.o)[0]
        self.o += 4
        return v

    def u64(self):
        v = struct.unpack_from("<Q", self.b, self.o)[0]
        self.o += 8
        return v

    def varint(self):
        v, shift = 0, 0
        for i in range(10):
            c = self.u8()
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                if v > 2**63 - 1:
                    raise Bad("varint above 2^63-1")
                return v
        raise Bad("varint longer than 10 bytes")

    def svarint(self):
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def f64(self):
        v = struct.unpack_from("<d", self.b, self.o)[0]
        self.o += 8
        return v

    def f32(self):
        v = struct.unpack_from("<f", self.b, self.o)[0]
        self.o += 4
        return v

    def raw(self, n):
        v = self.b[self.o:self.o + n]
        self.o += n
        return v


def block(buf, off, want):
    """Returns (payload cursor, end offset) of the block at off, type `want`."""
    c = Cur(buf, off)
    t = chr(c.u8())
    n = c.u32()
    if t != want:
        raise Bad("offset %d: block type %r, expected %r" % (off, t, want))
    payload = c.raw(n)
    stored = c.u32()
    if crc32c(buf[off:off + 5 + n]) != stored:
        raise Bad("offset %d: block %r CRC32C mismatch" % (off, t))
    return Cur(payload), off + 5 + n + 4


def poslist(c):
    """Decodes one position list; returns (positions, encoded bytes)."""
    start_off = c.o
    count = c.varint()
    out, end = [], -1
    while len(out) < count:
        v = c.varint()
        start = (0 if not out else end + 1) + (v >> 1)
        if v & 1:
            e = c.varint()
            run = list(range(start, start + e + 2))
        else:
            run = [start]
        out.extend(run)
        end = run[-1]
    if len(out) != count:
        raise Bad("position list covers %d positions, count %d" % (len(out), count))
    return out, c.o - start_off


def header_fields(c):
    fields = {}
    for _ in range(c.varint()):
        kind = c.u8()
        name = c.raw(c.varint()).decode("ascii")
        if kind == 1:
            v = c.svarint()
        elif kind == 2:
            v = c.f64()
        elif kind == 3:
            v = c.raw(c.varint()).decode("utf-8")
        elif kind == 4:
            v = [c.svarint() for _ in range(c.varint())]
        else:
            raise Bad("header field %s: kind %d" % (name, kind))
        if name in fields:
            raise Bad("duplicate header field %s" % name)
        fields[name] = v
    return fields


def read(path):
    buf = open(path, "rb").read()
    if buf[:8] != b"KVSIMTRC" or struct.unpack_from("<I", buf, 8)[0] != 1:
        raise Bad("magic or version")
    foot = Cur(buf, len(buf) - 16)
    index_off = foot.u64()
    if foot.raw(4) != b"KTRE" or crc32c(buf[len(buf) - 16:len(buf) - 4]) != foot.u32():
        raise Bad("footer")
    hc, _ = block(buf, 12, "H")
    h = header_fields(hc)
    ic, _ = block(buf, index_off, "I")
    batch, steps = ic.varint(), ic.varint()
    if batch != h["batch"] or steps != h["steps"]:
        raise Bad("index shape differs from the header")
    s1_off = [ic.varint() for _ in range(batch)]
    d_off = [[ic.varint() for _ in range(steps)] for _ in range(batch)]
    G, d, layers, kvh = h["G"], h["d"], h["layers"], h["kv_heads"]
    kvb = DTYPE_BYTES[h["kv_dtype"]]
    stage1 = 0
    per_step = [dict({k: 0 for k in CATS}, sectors_kv=0, sectors_aux=0, pages_kv=0, attended_positions=0,
                     full_kv_bytes=0, poslist_bytes=0, block_bytes=0) for _ in range(steps)]
    for s in range(batch):
        c, _ = block(buf, s1_off[s], "S")
        if c.varint() != s:
            raise Bad("stage-1 block of sequence %d names another" % s)
        for layer in layers:
            for head in range(kvh):
                if c.varint() != layer or c.varint() != head:
                    raise Bad("stage-1 record order")
                for _ in range(c.varint()):
                    pos, _n = poslist(c)
                    if pos and pos[-1] >= h["S"]:
                        raise Bad("stage-1 position beyond S")
                    stage1 += len(pos)
        for k in range(steps):
            c, end = block(buf, d_off[s][k], "D")
            t = per_step[k]
            t["block_bytes"] += end - d_off[s][k]
            if c.varint() != s or c.varint() != k:
                raise Bad("step block order")
            position = c.varint()
            t["position"] = position
            for layer in layers:
                for head in range(kvh):
                    if c.varint() != layer or c.varint() != head:
                        raise Bad("record order")
                    flags = c.u8()
                    if flags & ~7:
                        raise Bad("record flags")
                    c.varint()  # cache_tokens
                    c.varint()  # pages_scored
                    for name in CATS:
                        t[name] += c.varint()
                    t["sectors_kv"] += c.varint()
                    t["sectors_aux"] += c.varint()
                    t["pages_kv"] += c.varint()
                    for _ in range(1 if flags & 1 else G):
                        pos, nb = poslist(c)
                        if pos and pos[-1] > position:
                            raise Bad("attended position beyond the decoded token")
                        t["attended_positions"] += len(pos)
                        t["poslist_bytes"] += nb
                    ndims = c.varint()
                    if ndims:
                        for _ in range(1 if flags & 2 else G):
                            bits = c.raw((d + 7) // 8)
                            if sum(bin(x).count("1") for x in bits) != ndims:
                                raise Bad("dims popcount")
                    if flags & 4:
                        c.raw(G * 4 * 4)
                    t["full_kv_bytes"] += (position + 1) * 2 * d * kvb
            if c.o != len(c.b):
                raise Bad("trailing bytes in a step block")
    return h, buf, stage1, per_step


def summary(path):
    h, buf, stage1, per_step = read(path)
    keys = CATS + ("sectors_kv", "sectors_aux", "pages_kv", "attended_positions", "full_kv_bytes")
    n = len(per_step)
    tot = {k: sum(t[k] for t in per_step) for k in keys + ("poslist_bytes", "block_bytes")}
    read_bytes = tot["kv_exact"] + tot["kv_full"] + tot["aux"]
    pos = tot["attended_positions"]
    return {
        "header": h,
        "file_bytes": len(buf),
        "stage1_retained": stage1,
        "attended_positions": pos,
        "bytes_per_position_lists": tot["poslist_bytes"] / pos if pos else 0.0,
        "bytes_per_position_blocks": tot["block_bytes"] / pos if pos else 0.0,
        "compression_vs_full": tot["full_kv_bytes"] / read_bytes if read_bytes else 0.0,
        "mean_per_step": {k: tot[k] / n for k in keys},
        "per_step": [{k: t[k] for k in keys} for t in per_step],
    }


def differ(path, want, got):
    """First difference between two JSON values, or None."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: expected an object" % path
        for k in want:
            if k not in got:
                return "%s.%s: missing in kvsim's output" % (path, k)
            r = differ("%s.%s" % (path, k), want[k], got[k])
            if r:
                return r
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: expected a list of %d" % (path, len(want))
        for i, (a, b) in enumerate(zip(want, got)):
            r = differ("%s[%d]" % (path, i), a, b)
            if r:
                return r
        return None
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if isinstance(want, int) and isinstance(got, int):
            return None if want == got else "%s: %r, expected %r" % (path, got, want)
        return None if abs(want - got) <= 1e-12 * max(abs(want), 1.0) else "%s: %r, expected %r" % (path, got, want)
    return None if want == got else "%s: %r, expected %r" % (path, got, want)


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        want = summary(sys.argv[1])
    except (Bad, struct.error, IndexError, KeyError) as e:
        print("trace_reader: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    if len(sys.argv) == 2:
        print(json.dumps(want, indent=1))
        return 0
    out = subprocess.run([sys.argv[3], "inspect", sys.argv[1], "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        print("trace_reader: kvsim inspect exited %d: %s" % (out.returncode, out.stderr.strip()), file=sys.stderr)
        return 1
    got = json.loads(out.stdout)
    r = differ("inspect", want, got)
    if r:
        print("trace_reader: %s: %s" % (sys.argv[1], r), file=sys.stderr)
        return 1
    print("trace_reader: %s: kvsim inspect --json agrees with the second reader (%d steps, %d attended positions)"
          % (sys.argv[1], len(want["per_step"]), want["attended_positions"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
