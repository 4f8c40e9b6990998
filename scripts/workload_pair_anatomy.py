#!/usr/bin/env python3
"""Where real attention's features live, per RoPE pair: for each head class of a
fitted profile's class_map, over the decode queries of KV dumps (kvsim kvdump):

  1. the part of the logit q.k/sqrt(d) each group of RoPE pairs adds, by the
     key's distance from the query (mean over keys in a distance bin, minus the
     mean over all keys but the first): where recency comes from;
  2. how much more the first key (the sink) scores than the mean key, per group;
  3. the mean |q| and |k| per pair (|.| of the pair's two dims);
  4. how often each pair holds one of the query's r = d/16 largest-|q_i|
     channels (SparQ's channel choice at t = 128, S = 2048);
  5. the same distance profile as 1 predicted by each head's mean vectors
     alone: per pair, the mean key and the mean decode query with RoPE taken
     out (mu_k = mean_t z_k(t)·e^(-j·theta·t), mu_q likewise, z = x_i + j·x_(i+d/2)),
     whose product adds Re(mu_q·conj(mu_k)·e^(j·theta·delta))/sqrt(d) at
     distance delta: how much of real recency is a constant direction per
     pair that RoPE turns.

Pair i is dims (i, i + d/2) (the dump's rotate-half order) and turns at
theta_i = base^(-2i/d): pair 0 fastest. numpy only; reads the dump format of
llm/KVDUMP.md (bf16, fp16 or fp32).

Usage: python3 scripts/workload_pair_anatomy.py PROFILE.yaml DUMP.kvd [DUMP.kvd ...]
       [--context 2048] [--steps 8]
"""
import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload_class_stats import class_map  # noqa: E402  (the profile's class_map rows)

BINS = [0, 1, 4, 16, 64, 256, 1024, 2048]


def load(path):
    with open(path, "rb") as f:
        h = f.read(1024)
    if h[:8] != b"KVSIMKVD":
        sys.exit(f"{path}: offset 0x0: expected the magic \"KVSIMKVD\" (not a kvsim KV dump)")
    _ver, dt, L, Hq, Hkv, d = struct.unpack("<6I", h[8:32])
    n = struct.unpack("<Q", h[32:40])[0]
    theta = struct.unpack("<d", h[40:48])[0]
    if dt not in (0, 1, 2):
        sys.exit(f"{path}: offset 0xc: expected dtype 0, 1 or 2, got {dt}")
    raw = np.memmap(path, mode="r", offset=1024, dtype={0: np.uint16, 1: np.float16, 2: np.float32}[dt],
                    shape=(L * (2 * Hkv + Hq) * n * d,))
    per = (2 * Hkv + Hq) * n * d

    def conv(a):
        a = np.asarray(a)
        return (a.astype(np.uint32) << 16).view(np.float32) if dt == 0 else a.astype(np.float32)

    def layer(l):
        a = raw[l * per:(l + 1) * per]
        K = conv(a[:Hkv * n * d]).reshape(Hkv, n, d)
        Q = conv(a[2 * Hkv * n * d:]).reshape(Hq, n, d)
        return K, Q
    return dict(L=L, Hq=Hq, Hkv=Hkv, d=d, n=n, theta=theta, layer=layer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    cmap = class_map(a.profile)
    acc = {}
    d = None
    for path in a.dumps:
        D = load(path)
        d, h2, G, C = D["d"], D["d"] // 2, D["Hq"] // D["Hkv"], a.context
        if C + a.steps > D["n"]:
            sys.exit(f"{path}: {D['n']} tokens, need context + steps = {C + a.steps}")
        groups = [(0, h2 // 4), (h2 // 4, h2 // 2), (h2 // 2, h2 - h2 // 4 - h2 // 8), (h2 - h2 // 4 - h2 // 8, h2 - h2 // 8 - 2),
                  (h2 - h2 // 8 - 2, h2 - 2), (h2 - 2, h2)]
        r = max(1, d // 16)
        for l in range(D["L"]):
            K, Q = D["layer"](l)
            for hq in range(D["Hq"]):
                c = cmap[l][hq]
                s = acc.setdefault(c, dict(shape=np.zeros((len(groups), len(BINS) - 1)), sink=np.zeros(len(groups)),
                                           q=np.zeros(h2), k=np.zeros(h2), top=np.zeros(h2), n=0, groups=groups,
                                           pred=np.zeros((len(groups), len(BINS) - 1))))
                theta = D["theta"] ** (-2.0 * np.arange(h2) / d)
                kk = K[hq // G, 1:C]
                tt = np.arange(1, C)[:, None]
                mu_k = ((kk[:, :h2] + 1j * kk[:, h2:]) * np.exp(-1j * theta * tt)).mean(0)
                qq = Q[hq, C:C + a.steps]
                pp = np.arange(C, C + a.steps)[:, None]
                mu_q = ((qq[:, :h2] + 1j * qq[:, h2:]) * np.exp(-1j * theta * pp)).mean(0)
                amp = mu_q * np.conj(mu_k) / np.sqrt(d)
                for p in range(C, C + a.steps):
                    delta = p - np.arange(1, p + 1)
                    pred = np.real(amp * np.exp(1j * theta * delta[:, None]))  # (p, h2), keys 1 .. p
                    for gi, (lo, hi) in enumerate(groups):
                        cg = pred[:, lo:hi].sum(1)
                        for b in range(len(BINS) - 1):
                            sel = (delta >= BINS[b]) & (delta < BINS[b + 1])
                            if sel.any():
                                s["pred"][gi, b] += cg[sel].mean() - cg.mean()
                for p in range(C, C + a.steps):
                    q, Kp = Q[hq, p], K[hq // G, :p + 1]
                    part = (Kp[:, :h2] * q[:h2] + Kp[:, h2:] * q[h2:]) / np.sqrt(d)  # (p+1, h2)
                    delta = p - np.arange(p + 1)
                    for gi, (lo, hi) in enumerate(groups):
                        cg = part[:, lo:hi].sum(1)
                        base = cg[1:].mean()
                        s["sink"][gi] += cg[0] - base
                        for b in range(len(BINS) - 1):
                            sel = (delta >= BINS[b]) & (delta < BINS[b + 1]) & (delta < p)
                            if sel.any():
                                s["shape"][gi, b] += cg[sel].mean() - base
                    s["q"] += np.hypot(q[:h2], q[h2:])
                    s["k"] += np.hypot(Kp[1:, :h2], Kp[1:, h2:]).mean(0)
                    for i in np.argsort(-np.abs(q), kind="stable")[:r]:
                        s["top"][i % h2] += 1
                    s["n"] += 1
    print(f"# {', '.join(a.dumps)}: context {a.context}, {a.steps} decode queries per head; classes of {a.profile}")
    print(f"# distance bins (keys back from the query): {BINS}")
    for c in sorted(acc):
        s = acc[c]
        n = s["n"]
        print(f"\n{c} ({n} queries)")
        print("  logit part by distance bin, minus the mean key's:")
        for gi, (lo, hi) in enumerate(s["groups"]):
            print(f"    pairs {lo:2d}-{hi - 1:2d}: " + " ".join(f"{x:6.2f}" for x in s["shape"][gi] / n) +
                  f"   sink excess {s['sink'][gi] / n:6.2f}")
        print("  the same predicted by the heads' mean vectors per pair (5):")
        for gi, (lo, hi) in enumerate(s["groups"]):
            print(f"    pairs {lo:2d}-{hi - 1:2d}: " + " ".join(f"{x:6.2f}" for x in s["pred"][gi] / n))
        print("  |q| per pair: " + " ".join(f"{x:.1f}" for x in s["q"] / n))
        print("  |k| per pair: " + " ".join(f"{x:.1f}" for x in s["k"] / n))
        t = s["top"] / s["top"].sum()
        print("  share of the largest-|q| channels per pair: " + " ".join(f"{x:.2f}" for x in t))


if __name__ == "__main__":
    main()
