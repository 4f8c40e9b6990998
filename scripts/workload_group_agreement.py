#!/usr/bin/env python3
"""How the query heads of a GQA group agree, in a KV dump: their means and their residuals.

For every (layer, KV head) of a dump and decode step p = C .. C+steps-1 (every `--stride`-th), each
query head g's query is split into its mean m_g over positions C - window .. C + window - 1 (RoPE's
rotation taken out of every pair, z = x_i + j*x_(i+d/2), then put back at p) and the residual
r_g = q_g(p) - m_g. Both parts score the prompt's keys t = 4 .. C-1 (x = part . k_t / sqrt(d)).
Printed, averaged over steps and (layer, KV head)s:
  mean corr / resid corr   Pearson correlation over t between two heads' scores, mean over head pairs
  mean var / resid var     the scores' variance over t, mean over heads
  all corr                 the same correlation of the whole logits
  top64 mean/resid/all     |top-64 of head a ∩ top-64 of head b| / 64, mean over head pairs
  resid corr sd, pct       the residual correlation's s.d. over steps and its 10/25/50/75/90th percentiles
  corr(resid corr, |r|)    correlation over steps of the residual correlation with the residual scores' s.d.
kvsim's group_share / group_tail (docs/workload.md, "The group's agreement") model the residual part;
wl_group_measure (workload/wl_group.c) measures its mean and s.d. over every step with the mean over
the window and decode queries, which this script approximates. numpy only.

Usage: python3 scripts/workload_group_agreement.py DUMP.kvd... [--context 2048] [--window 32] [--stride 2]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload_pair_anatomy import load  # noqa: E402


def pair_mean(x, G, f):
    c = f(x)
    return np.mean([c[a, b] for a in range(G) for b in range(a + 1, G)])


def top_overlap(x, G, k=64):
    t = [set(np.argsort(-x[g], kind="stable")[:k]) for g in range(G)]
    return np.mean([len(t[a] & t[b]) / k for a in range(G) for b in range(a + 1, G)])


def measure(path, C, W, stride):
    D = load(path)
    L, Hq, Hkv, d, n = D["L"], D["Hq"], D["Hkv"], D["d"], D["n"]
    if C + W > n:
        sys.exit(f"{path}: {n} tokens, need context + window = {C + W}")
    G, h2 = Hq // Hkv, d // 2
    theta = D["theta"] ** (-2.0 * np.arange(h2) / d)
    rot_all = np.exp(-1j * theta * np.arange(n)[:, None])
    acc = {k: [] for k in ["cm", "cr", "vm", "vr", "ca", "om", "or", "oa", "rs"]}
    for layer in range(L):
        K, Q = D["layer"](layer)
        for h in range(Hkv):
            zk = K[h, :C, :h2] + 1j * K[h, :C, h2:]
            zq = [(Q[h * G + g, :, :h2] + 1j * Q[h * G + g, :, h2:]) * rot_all for g in range(G)]
            mu = [z[C - W:C + W].mean(0) for z in zq]
            for s in range(C, min(n, C + W), stride):
                back = np.exp(1j * theta * s)
                mp = np.array([np.real(zk[4:] * np.conj(mu[g] * back)).sum(1) for g in range(G)]) / np.sqrt(d)
                rp = np.array([np.real(zk[4:] * np.conj((zq[g][s] - mu[g]) * back)).sum(1) for g in range(G)]) / np.sqrt(d)
                ap = mp + rp
                acc["cm"].append(pair_mean(mp, G, np.corrcoef))
                acc["cr"].append(pair_mean(rp, G, np.corrcoef))
                acc["ca"].append(pair_mean(ap, G, np.corrcoef))
                acc["vm"].append(mp.var(1).mean())
                acc["vr"].append(rp.var(1).mean())
                acc["om"].append(top_overlap(mp, G))
                acc["or"].append(top_overlap(rp, G))
                acc["oa"].append(top_overlap(ap, G))
                acc["rs"].append(rp.std(1).mean())
    return {k: np.array(v) for k, v in acc.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--stride", type=int, default=2)
    a = ap.parse_args()
    print(f"# context {a.context}, means over positions {a.context - a.window} .. {a.context + a.window - 1}, "
          f"every {a.stride}th decode step")
    print("dump                   mean corr  resid corr  mean var  resid var  all corr  top64 mean/resid/all  "
          "resid corr sd  pct 10/25/50/75/90         corr(resid corr, |r|)")
    for p in a.dumps:
        r = measure(p, a.context, a.window, a.stride)
        q = np.percentile(r["cr"], [10, 25, 50, 75, 90])
        print(f"{os.path.basename(p):22s} {r['cm'].mean():9.3f}  {r['cr'].mean():10.3f}  {r['vm'].mean():8.3f}  "
              f"{r['vr'].mean():9.3f}  {r['ca'].mean():8.3f}  {r['om'].mean():.3f}/{r['or'].mean():.3f}/{r['oa'].mean():.3f}"
              f"       {r['cr'].std():13.3f}  " + " ".join(f"{x:5.2f}" for x in q) +
              f"   {np.corrcoef(r['cr'], r['rs'])[0, 1]:21.2f}")


if __name__ == "__main__":
    main()
