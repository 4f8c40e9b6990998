#!/usr/bin/env python3
"""Which channels SparQ reads, and how much of the score they carry, in a KV dump.

For every (layer, query head) of a dump (a real model's, `kvsim kvdump`, or a
synthetic workload's, `kvsim workload dump`) and each of the first --steps
decode queries at context C: SparQ's r = d/16 channels (the largest |q_i|,
lower index first on ties), the share of the score variance over the keys
0 .. p that they carry (sum over them of q_i^2 var(k_i), over the same sum on
every channel), and the true attention mass on the 64 keys of highest score
over those channels (SparQ's selection at t = 128 before its local window).

Prints the means over heads and queries, then per RoPE pair (channels i and
i + d/2 are pair i; pair 0 turns fastest): how often it is among the r
channels (share of all picks), its share of the score variance (q_i^2 var(k_i)
summed over the pair, over the sum on every channel, mean over heads), the
decode queries' rms norm on it, the keys' s.d. on it and the norm of the
mean key on it (keys 1 .. C-1: the sink left out). numpy only.

Usage: python3 scripts/workload_sparq_channels.py DUMP.kvd [--context 2048] [--steps 32]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload_pair_anatomy import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=32)
    a = ap.parse_args()
    D = load(a.dump)
    C, S, d = a.context, a.steps, D["d"]
    if C + S > D["n"]:
        sys.exit(f"{a.dump}: {D['n']} tokens, need context + steps = {C + S}")
    h2, G, r = d // 2, D["Hq"] // D["Hkv"], max(1, d // 16)
    picks = np.zeros(h2, dtype=np.int64)
    share, mass = [], []
    wsh, qn, ksd, kmu = (np.zeros(h2) for _ in range(4))
    nh = 0
    for layer in range(D["L"]):
        K, Q = D["layer"](layer)
        for hq in range(D["Hq"]):
            Kb, Qd = K[hq // G, 1:C].astype(np.float64), Q[hq, C:C + S].astype(np.float64)
            v, mu, q2 = Kb.var(0), Kb.mean(0), (Qd * Qd).mean(0)
            w = q2 * v
            w /= w.sum()
            wsh += w[:h2] + w[h2:]
            qn += np.sqrt(q2[:h2] + q2[h2:])
            ksd += np.sqrt(v[:h2] + v[h2:])
            kmu += np.hypot(mu[:h2], mu[h2:])
            nh += 1
            for p in range(C, C + S):
                q, Kp = Q[hq, p].astype(np.float64), K[hq // G, :p + 1].astype(np.float64)
                s = Kp @ q / np.sqrt(d)
                pr = np.exp(s - s.max())
                pr /= pr.sum()
                idx = np.argsort(-np.abs(q), kind="stable")[:r]
                np.add.at(picks, idx % h2, 1)
                w = q * q * Kp.var(0)
                share.append(w[idx].sum() / w.sum())
                top = np.argsort(-(Kp[:, idx] @ q[idx]), kind="stable")[:64]
                mass.append(pr[top].sum())
    n = picks.sum()
    print(f"# {a.dump}: context {C}, {S} decode queries per head, r = {r} channels of d = {d}")
    print(f"score variance in SparQ's channels (share) {np.mean(share):.3f}; "
          f"true mass on its 64 keys {np.mean(mass):.3f}")
    print("pair  picks  score-var  |q| rms  k s.d.  |mean k|")
    for i in range(h2):
        print(f"{i:4d}  {picks[i] / n:.3f}      {wsh[i] / nh:.3f}   {qn[i] / nh:6.2f}  {ksd[i] / nh:6.2f}    {kmu[i] / nh:6.2f}")


if __name__ == "__main__":
    main()
