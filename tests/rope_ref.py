#!/usr/bin/env python3
"""rope_ref.py — an independent NumPy (float64) reference for RoPE and its
context-extension scalings, written from the papers, for tests/test_rope.c.

  RoPE (Su et al., RoFormer, arXiv:2104.09864 §3.2.2, eq. 15 in complex form):
    pair i of a d-dim head is the complex number z_i = x[2i] + j x[2i+1]
    (GGUF's interleaved layout), rotated to z_i · exp(j m θ_i), θ_i = b^(-2i/d).
  Position Interpolation (Chen et al., arXiv:2306.15595 §2.3): position m is
    replaced by m L / L' = m / s.
  NTK-aware scaling (Peng et al., YaRN, arXiv:2309.00071 §3.1): the base
    b' = b s^(d / (d - 2)), positions unchanged.
  YaRN (arXiv:2309.00071 §3.2 "NTK-by-parts" and §3.4): wavelength
    λ_i = 2π / θ_i; r(i) = L / λ_i rotations over the original context L;
    pairs with r above β (beta_fast) keep θ_i, pairs with r below α
    (beta_slow) use θ_i / s, in between a linear ramp. The ramp runs, as in
    the paper's reference code (github.com/jquesnelle/yarn,
    LlamaYaRNScaledRotaryEmbedding.py) and llama.cpp, over the pair index
    between the index where r = β, rounded down, and where r = α, rounded up
    (solved below from λ's definition), weighted by ext. Both q and k are
    scaled by sqrt(1/t) = 0.1 ln s + 1 (§3.4), times attn.

Input vector (interleaved layout): x_k = cos(1.3 k + 0.2), k = 0..d-1.
Output: one line per position, the rotated vector in Hugging Face
rotate-half order (real parts of z_0..z_{d/2-1}, then imaginary parts).

usage: rope_ref.py TYPE FACTOR L THETA D BETA_FAST BETA_SLOW ATTN EXT POS...
"""
import sys

import numpy as np


def pair_freqs(kind, s, L, b, d, beta_fast, beta_slow, ext):
    i = np.arange(d // 2, dtype=np.float64)
    if kind == "ntk":
        b = b * s ** (d / (d - 2.0))
    theta = b ** (-2.0 * i / d)
    if kind == "none" or kind == "ntk":
        return theta, 1.0
    if kind == "linear":
        return theta / s, 1.0
    # yarn: the pair index where L / λ_i equals a rotation count r:
    # L / (2π b^(2i/d)) = r  <=>  i = d ln(L / (2π r)) / (2 ln b)
    def index_of(r):
        return d * np.log(L / (2.0 * np.pi * r)) / (2.0 * np.log(b))
    lo = max(0.0, np.floor(index_of(beta_fast)))
    hi = min(d - 1.0, np.ceil(index_of(beta_slow)))
    gamma = 1.0 - np.clip((i - lo) / max(0.001, hi - lo), 0.0, 1.0)  # 1: keep θ, 0: θ / s
    gamma = gamma * ext
    freqs = (1.0 - gamma) * theta / s + gamma * theta
    mscale = 0.1 * np.log(s) + 1.0 if ext != 0.0 else 1.0
    return freqs, mscale


def main(argv):
    kind, s, L, b, d = argv[0], float(argv[1]), float(argv[2]), float(argv[3]), int(argv[4])
    beta_fast, beta_slow, attn, ext = map(float, argv[5:9])
    positions = [int(p) for p in argv[9:]]
    freqs, mscale = pair_freqs(kind, s, L, b, d, beta_fast, beta_slow, ext if kind == "yarn" else 0.0)
    x = np.cos(1.3 * np.arange(d) + 0.2)
    z = x[0::2] + 1j * x[1::2]
    for m in positions:
        w = z * np.exp(1j * m * freqs) * mscale * attn
        print(" ".join("%.9e" % v for v in np.concatenate([w.real, w.imag])))


if __name__ == "__main__":
    main(sys.argv[1:])
