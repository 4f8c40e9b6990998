"""Checking an HSA selection kernel against kvsim.ref, the way a kernel
engineer checks a Triton kernel: random inputs of several shapes, the
kernel's index sets must equal the reference's exactly.

The candidate is written in NumPy with the structure a PyTorch/Triton port
has (batched tensor ops, no Python loops over tokens). PyTorch itself is not
installed here: PyPI's default torch wheel for Linux is the CUDA build
(about 900 MB plus 2–3 GB of nvidia-* wheels), too large for this machine; the
code maps line for line onto torch (np.abs -> torch.abs, np.argsort ->
torch.sort(stable=True), ...).

A deliberately wrong variant (dims ranked by |Σ_h q_h| instead of Σ_h |q_h|,
a plausible slip) must be caught."""
import numpy as np
import pytest

import kvsim


def bf16(x):
    """Round to bf16 (nearest even), as the reference stores K."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).view(np.float32)


def hsa_kernel(q, k, page_size, topr, topk, wrong_dims=False):
    """Candidate kernel: q (G, d), k (C, d) -> selected slots (ascending)."""
    G, d = q.shape
    C = k.shape[0]
    npg = -(-C // page_size)
    pad = np.full((npg * page_size - C, d), np.nan, np.float32)
    kp = np.concatenate([k, pad]).reshape(npg, page_size, d)
    kmin, kmax = np.nanmin(kp, axis=1), np.nanmax(kp, axis=1)          # page summaries (npg, d)
    score = np.abs(q.sum(0)) if wrong_dims else np.abs(q).sum(0)       # (d,)
    dims = np.sort(np.argsort(-score, kind="stable")[:topr])           # top-r, ties to the lower dim
    gsum = q.sum(0)
    khat = np.where(gsum > 0, kmax, kmin)[:, dims]                     # (npg, r)
    l1, l1i = np.abs(q).sum(1), np.abs(q[:, dims]).sum(1)
    tau = np.sqrt(d * l1i / l1)
    z = (q[:, dims].astype(np.float64) @ khat.T.astype(np.float64)) / tau[:, None]   # (G, npg)
    cnt = np.minimum(page_size, C - np.arange(npg) * page_size)
    e = np.exp(z - z.max(1, keepdims=True))
    avg = (e / (e * cnt).sum(1, keepdims=True)).mean(0)              # group-mean token probability per page
    tok = avg[np.arange(C) // page_size]
    return np.sort(np.argsort(-tok, kind="stable")[:min(topk, C)]).astype(np.int32)


CASES = [(4, 128, 1000, 16, 64, 128), (3, 64, 517, 8, 24, 96), (7, 128, 2049, 32, 100, 256), (1, 64, 64, 4, 64, 64)]


@pytest.mark.parametrize("G,d,C,p,r,k", CASES)
def test_kernel_matches_the_reference(G, d, C, p, r, k):
    rng = np.random.default_rng(C)
    q = rng.standard_normal((G, d)).astype(np.float32)
    kc = bf16(rng.standard_normal((C, d)) + np.linspace(0, 1, C)[:, None])
    ref = kvsim.ref.hsa_select(q, kc, p, r, k)
    assert np.array_equal(hsa_kernel(q, kc, p, r, k), ref.selected)


def test_the_wrong_variant_is_caught():
    caught = 0
    for G, d, C, p, r, k in CASES[:3]:
        rng = np.random.default_rng(C)
        q = rng.standard_normal((G, d)).astype(np.float32)
        kc = bf16(rng.standard_normal((C, d)) + np.linspace(0, 1, C)[:, None])
        ref = kvsim.ref.hsa_select(q, kc, p, r, k)
        caught += not np.array_equal(hsa_kernel(q, kc, p, r, k, wrong_dims=True), ref.selected)
    assert caught == 3
