#!/usr/bin/env python3
"""gguf_reference.py — an independent NumPy forward pass of a GGUF llama model (weights
dequantised by the gguf-py package, float64 arithmetic), to separate this runner's error
from llama.cpp's own quantisation of activations (it multiplies Q4_1 weights by activations
rounded to Q8_1, so it is not an exact reference).

    pip install gguf numpy
    python3 scripts/gguf_reference.py MODEL.gguf 504,3575,282,4649,314 > logits.f32

Writes the float32 logits of the last position to stdout. RoPE is applied to the GGUF
(llama.cpp-permuted) q/k weights in llama.cpp's interleaved NORM layout: pairs (2i, 2i+1)."""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def forward_logits(path, ids):
    """float64 logits (vocab,) of the last of `ids`."""
    r = GGUFReader(path)
    f = {k: v for k, v in r.fields.items()}
    val = lambda k: f[k].contents()
    L, D = val("llama.block_count"), val("llama.embedding_length")
    Hq, Hk = val("llama.attention.head_count"), val("llama.attention.head_count_kv")
    eps, theta = val("llama.attention.layer_norm_rms_epsilon"), val("llama.rope.freq_base")
    d = D // Hq
    T = {t.name: t for t in r.tensors}

    def W(name):
        t = T[name]
        return dequantize(t.data, t.tensor_type).reshape(list(reversed(t.shape.tolist()))).astype(np.float64)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    n = len(ids)
    emb = W("token_embd.weight")
    x = emb[ids]
    pos = np.arange(n)[:, None]
    inv = theta ** (-2.0 * np.arange(d // 2) / d)
    ang = pos * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):  # (n, H, d) interleaved pairs
        a, b = v[..., 0::2], v[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        out = np.empty_like(v)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, W(p + "attn_norm.weight"))
        q = rope((h @ W(p + "attn_q.weight").T).reshape(n, Hq, d))
        k = rope((h @ W(p + "attn_k.weight").T).reshape(n, Hk, d))
        v = (h @ W(p + "attn_v.weight").T).reshape(n, Hk, d)
        o = np.empty((n, Hq, d))
        for hh in range(Hq):
            kv = hh // (Hq // Hk)
            s = q[:, hh] @ k[:, kv].T / np.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o[:, hh] = s @ v[:, kv]
        x = x + o.reshape(n, D) @ W(p + "attn_output.weight").T
        h = rms(x, W(p + "ffn_norm.weight"))
        g = h @ W(p + "ffn_gate.weight").T
        u = h @ W(p + "ffn_up.weight").T
        x = x + (g / (1 + np.exp(-g)) * u) @ W(p + "ffn_down.weight").T
    out = W("output.weight") if "output.weight" in T else emb
    return (rms(x[-1:], W("output_norm.weight")) @ out.T)[0]


def main():
    logits = forward_logits(sys.argv[1], [int(x) for x in sys.argv[2].split(",")])
    sys.stdout.buffer.write(logits.astype(np.float32).tobytes())


if __name__ == "__main__":
    main()
