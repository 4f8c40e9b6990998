#!/usr/bin/env python3
"""How much real keys vary along the mean query, per RoPE pair, in a KV dump.

For every (layer, KV head) of a dump and each of its query heads, with RoPE's
rotation taken out of every pair (z = x_i + j*x_(i+d/2), z*e^(-j*theta_i*t)):
the keys' residual r = z_k - mean over keys 1 .. C-1, and the unit direction u
of the head's mean query over the SnapKV window and the decode queries (32 each
side of C). Printed per pair, averaged over the heads: the residual's variance
per component over all directions, |r|^2/2 ("iso"), and along u, Re(u*conj(r))^2
("along"), and their ratio. Then the logit noise a decode query at C meets from
its mean alone over the keys' residuals, sum over pairs of Re(mu_q*conj(r)*
e^(j*theta*(C - t)))/sqrt(d): its s.d. measured, and as predicted from one
variance per pair (isotropic) and from the variance along u per pair. numpy only.

Usage: python3 scripts/workload_residual_anisotropy.py DUMP.kvd [--context 2048] [--window 32]
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
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    D = load(a.dump)
    C, W = a.context, a.window
    L, Hq, Hkv, d, n = D["L"], D["Hq"], D["Hkv"], D["d"], D["n"]
    if C + W > n:
        sys.exit(f"{a.dump}: {n} tokens, need context + window = {C + W}")
    h2, G = d // 2, Hq // Hkv
    theta = D["theta"] ** (-2.0 * np.arange(h2) / d)
    t = np.arange(n)[:, None]
    iso, along, cnt = np.zeros(h2), np.zeros(h2), 0
    noise_meas, noise_iso, noise_al = [], [], []
    for layer in range(L):
        K, Q = D["layer"](layer)
        for h in range(Hkv):
            zk = (K[h, :, :h2] + 1j * K[h, :, h2:]) * np.exp(-1j * theta * t)
            r = zk[1:C] - zk[1:C].mean(0)
            rot = np.exp(1j * theta[None, :] * (C - np.arange(1, C))[:, None])
            for g in range(G):
                zq = (Q[h * G + g, :, :h2] + 1j * Q[h * G + g, :, h2:]) * np.exp(-1j * theta * t)
                mq = zq[C - W:C + W].mean(0)
                u = mq / np.maximum(np.abs(mq), 1e-12)
                al = (np.real(u * np.conj(r)) ** 2).mean(0)
                isv = (np.abs(r) ** 2).mean(0) / 2
                iso += isv
                along += al
                cnt += 1
                noise_meas.append((np.real(np.conj(r) * mq[None, :] * rot).sum(1) / np.sqrt(d)).std())
                noise_iso.append(np.sqrt((np.abs(mq) ** 2 * isv).sum()) / np.sqrt(d))
                noise_al.append(np.sqrt((np.abs(mq) ** 2 * al).sum()) / np.sqrt(d))
    print(f"# {a.dump}: context {C}, mean query over positions {C - W} .. {C + W - 1}, {cnt} query heads")
    print("pair  iso var  along var  along/iso")
    for i in range(h2):
        print(f"{i:4d}  {iso[i] / cnt:7.3f}  {along[i] / cnt:9.3f}  {along[i] / iso[i]:9.3f}")
    print(f"logit noise from the mean query over the keys' residuals (s.d., mean over heads): measured "
          f"{np.mean(noise_meas):.3f}; one variance per pair {np.mean(noise_iso):.3f}; the variance along the "
          f"mean query per pair {np.mean(noise_al):.3f}")


if __name__ == "__main__":
    main()
