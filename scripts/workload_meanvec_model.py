#!/usr/bin/env python3
"""How much of real attention a per-pair mean-vector model reproduces.

For every (layer, query head) of a KV dump, with RoPE's rotation taken out of
each pair (z = x_i + j·x_(i+d/2), z·e^(-j·theta_i·t)): the mean key mu_k
(keys 1 .. C-1), the mean decode query mu_q, and the residual s.d. per pair.
Two synthetic stand-ins are built, RoPE put back, and scored with the real
head's own statistics:

  head:  the head's own mu_q, mu_k and residual s.d., iid Gaussian residuals,
         the real sink key (position 0) kept;
  class: per head class of a profile's class_map, the class mean of
         mu_q·conj(mu_k) (the recency profile is linear in it) and of the
         query residual, the all-head mean |mu_k| and key residual; queries
         mu_q = a·sqrt(d)/|mu_k|; the real sink key kept.

Printed per class, real against each model: SparQ's mass at t = 128 (the true
attention mass on the 64 keys of highest score over the d/16 largest-|q|
channels), the sink's mass and the newest 32 keys' mass, over the first
--steps decode queries at context C. numpy only; seeded (--seed).

Usage: python3 scripts/workload_meanvec_model.py PROFILE.yaml DUMP.kvd [--context 2048] [--steps 8] [--seed 1]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload_class_stats import class_map  # noqa: E402
from workload_pair_anatomy import load  # noqa: E402


def scores(Q, K, C, d):
    """SparQ mass (r = d/16, k = 64), sink mass, newest-32 mass: means over the queries."""
    r = max(1, d // 16)
    out = []
    for s in range(Q.shape[0]):
        p = C + s
        Kp = K[:p + 1]
        sc = Kp @ Q[s] / np.sqrt(d)
        pr = np.exp(sc - sc.max())
        pr /= pr.sum()
        idx = np.argsort(-np.abs(Q[s]), kind="stable")[:r]
        top = np.argsort(-(Kp[:, idx] @ Q[s][idx]), kind="stable")[:64]
        out.append((pr[top].sum(), pr[0], pr[-32:].sum()))
    return np.mean(out, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("dump")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    cm = class_map(a.profile)
    D = load(a.dump)
    C, S, d = a.context, a.steps, D["d"]
    h2, G = d // 2, D["Hq"] // D["Hkv"]
    if C + S > D["n"]:
        sys.exit(f"{a.dump}: {D['n']} tokens, need context + steps = {C + S}")
    theta = D["theta"] ** (-2.0 * np.arange(h2) / d)
    t = np.arange(C + S)[:, None]
    p = np.arange(C, C + S)[:, None]
    rng = np.random.default_rng(a.seed)

    def noise(n, s):
        return (rng.standard_normal((n, h2)) + 1j * rng.standard_normal((n, h2))) * s

    def unpair(z):
        return np.concatenate([z.real, z.imag], 1)

    heads = []
    for layer in range(D["L"]):
        K, Q = D["layer"](layer)
        for hq in range(D["Hq"]):
            Kr, Qr = K[hq // G, :C + S], Q[hq, C:C + S]
            zk = (Kr[:, :h2] + 1j * Kr[:, h2:]) * np.exp(-1j * theta * t)
            zq = (Qr[:, :h2] + 1j * Qr[:, h2:]) * np.exp(-1j * theta * p)
            mk, mq = zk[1:C].mean(0), zq.mean(0)
            heads.append(dict(c=cm[layer][hq], Kr=Kr, Qr=Qr, mk=mk, mq=mq,
                              sk=np.sqrt((np.abs(zk[1:C] - mk) ** 2).mean(0) / 2),
                              sq=np.sqrt((np.abs(zq - mq) ** 2).mean(0) / 2)))
    g = np.mean([np.abs(h["mk"]) for h in heads], 0)
    skg = np.mean([h["sk"] for h in heads], 0)
    by_class = {}
    for h in heads:
        by_class.setdefault(h["c"], []).append(h)
    print(f"# {a.dump}: context {C}, {S} decode queries per head, seed {a.seed}; classes of {a.profile}")
    print("# per class: SparQ mass at t = 128 / sink mass / newest-32 mass")
    print(f"{'class':<10} {'heads':>5}  {'real':>20}  {'head model':>20}  {'class model':>20}")
    for c in sorted(by_class):
        hs = by_class[c]
        amp = np.mean([h["mq"] * np.conj(h["mk"]) for h in hs], 0) / np.sqrt(d)
        sqc = np.mean([h["sq"] for h in hs], 0)
        real, own, cls = [], [], []
        for h in hs:
            real.append(scores(h["Qr"], h["Kr"], C, d))
            Ks = unpair((h["mk"] + noise(C + S, h["sk"])) * np.exp(1j * theta * t))
            Qs = unpair((h["mq"] + noise(S, h["sq"])) * np.exp(1j * theta * p))
            Ks[0] = h["Kr"][0]
            own.append(scores(Qs, Ks, C, d))
            Ks = unpair((g + noise(C + S, skg)) * np.exp(1j * theta * t))
            Qs = unpair((amp * np.sqrt(d) / np.maximum(g, 1e-9) + noise(S, sqc)) * np.exp(1j * theta * p))
            Ks[0] = h["Kr"][0]
            cls.append(scores(Qs, Ks, C, d))
        fmt = lambda v: " / ".join(f"{x:.3f}" for x in np.mean(v, 0))  # noqa: E731
        print(f"{c:<10} {len(hs):>5}  {fmt(real):>20}  {fmt(own):>20}  {fmt(cls):>20}")


if __name__ == "__main__":
    main()
