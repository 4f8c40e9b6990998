"""Checking an HSA selection kernel against kvsim.ref, the way a kernel
engineer checks a Triton kernel: random inputs of several shapes, the
kernel's top-r dims and top-k cache slots must equal the reference's exactly
(docs/golden.md's "set" rule), its scores must agree to rounding.

The candidate, hsa_kernel, is a small PyTorch (CPU) implementation of
hybrid sparse attention's selection (docs/algorithm.md, stage 2, steps 1–5),
batched tensor ops with no Python loop over tokens, on a bf16 key cache.

Ties: kvsim's rule is "the lower index wins" in every top-k. torch.topk does
not promise which of equal values it returns, and step 5's scores tie by
construction — every token of a page carries its page's score, so the page
on the threshold is usually split. topk_lower_index therefore asks
torch.topk only for the k-th largest value, takes every entry above it and
fills the remaining places with the entries equal to it in index order — the
threshold-then-fill a GPU radix select does.

Rounding: step 3's page score is an f32 sum over the selected dims in
ascending dim order, each product and sum rounded separately (refimpl,
cuda/kcu.h kcu_page_score_acc). The kernel accumulates the same way, one dim
at a time across all heads and pages; a `q @ khat.T` matmul would reorder the
sum and may flip pages whose scores are within an ulp.

Two deliberately wrong variants must be caught:
  "dims": dims ranked by |Σ_h q_h| instead of Σ_h |q_h| (a plausible slip);
  "ties": ties at the threshold filled from the higher index down."""
import numpy as np
import pytest
import torch

import kvsim


def topk_lower_index(x: torch.Tensor, k: int, wrong_ties: bool = False) -> torch.Tensor:
    """Indices (int64, ascending) of the k largest entries of the 1-D x, ties
    to the lower index."""
    n = x.numel()
    if k >= n:
        return torch.arange(n)
    kth = torch.topk(x, k).values[-1]
    above = torch.nonzero(x > kth).flatten()
    tied = torch.nonzero(x == kth).flatten()               # ascending
    if wrong_ties:
        tied = tied.flip(0)
    return torch.sort(torch.cat([above, tied[:k - above.numel()]])).values


def hsa_kernel(q: torch.Tensor, k: torch.Tensor, page_size: int, topr: int, topk: int, wrong: str = ""):
    """q: float32 (G, d) the group's queries; k: bfloat16 (C, d) the cache.
    Returns (selected int64 (min(topk, C),) ascending slots, dims int64 (r,)
    ascending, token_scores float64 (C,))."""
    G, d = q.shape
    C = k.shape[0]
    npg = -(-C // page_size)
    kf = k.float()                                                       # exact: bf16 ⊂ f32
    pad = npg * page_size - C
    kmin = torch.cat([kf, kf.new_full((pad, d), float("inf"))]).view(npg, page_size, d).amin(1)
    kmax = torch.cat([kf, kf.new_full((pad, d), float("-inf"))]).view(npg, page_size, d).amax(1)
    q64 = q.double()
    # 1. dims: a_i = Σ_h |q_h[i]| in double, top-r
    a = q64.sum(0).abs() if wrong == "dims" else q64.abs().sum(0)
    dims = topk_lower_index(a, min(topr, d))
    # 2. K̂_j[i] = max_j[i] where Σ_h q_h[i] > 0, else min_j[i]
    khat = torch.where(q64.sum(0) > 0, kmax, kmin)[:, dims]                # (npg, r) f32
    # 3. s_h(j) = Σ_{i∈I} q_h[i]·K̂_j[i], f32, ascending dims; z = s / τ_h in double
    qI = q[:, dims]                                                      # (G, r) f32
    s = torch.zeros(G, npg, dtype=torch.float32)
    for t in range(dims.numel()):
        s = s + qI[:, t:t + 1] * khat[:, t]
    l1, l1I = q64.abs().sum(1), q64[:, dims].abs().sum(1)
    tau = torch.sqrt(d * torch.where(l1 > 0, l1I / l1, torch.ones_like(l1)))
    z = s.double() / tau[:, None]                                        # (G, npg)
    # 4. per-head softmax over the C tokens (page j weighs its token count), mean over heads
    cnt = torch.clamp(C - torch.arange(npg) * page_size, max=page_size).double()
    e = torch.exp(z - z.amax(1, keepdim=True))
    avg = (e / (e * cnt).sum(1, keepdim=True)).mean(0)                   # (npg,)
    # 5. top-k tokens by the page-constant score
    tok = avg[torch.arange(C) // page_size]
    return topk_lower_index(tok, min(topk, C), wrong_ties=wrong == "ties"), dims, tok


# (G, d, C, page_size, topr, topk): topk off the page grid splits the threshold page
CASES = [(4, 128, 1000, 16, 64, 100), (3, 64, 517, 8, 24, 97), (7, 128, 2049, 32, 100, 250),
         (1, 64, 64, 4, 64, 64), (2, 64, 300, 1, 16, 45)]


def inputs(G, d, C):
    """Queries f32, keys bf16 with a drift along the cache (pages differ)."""
    g = torch.Generator().manual_seed(C)
    q = torch.randn(G, d, generator=g)
    k = (torch.randn(C, d, generator=g) + torch.linspace(0, 1, C)[:, None]).to(torch.bfloat16)
    return q, k


def reference(q, k, p, r, kk):
    """kvsim.ref on the same tensors; .numpy() shares the tensors' memory, so
    the f32 arrays reach the C library without a copy."""
    return kvsim.ref.hsa_select(q.numpy(), k.float().numpy(), p, r, kk)


@pytest.mark.parametrize("G,d,C,p,r,k", CASES)
def test_kernel_matches_the_reference(G, d, C, p, r, k):
    q, kc = inputs(G, d, C)
    ref = reference(q, kc, p, r, k)
    sel, dims, tok = hsa_kernel(q, kc, p, r, k)
    assert np.array_equal(dims.numpy(), ref.dims)
    assert np.array_equal(sel.numpy(), ref.selected)
    assert np.allclose(tok.numpy(), ref.token_scores, rtol=1e-12, atol=0)


def test_ties_go_to_the_lower_index():
    """The helper, by hand: 5 stands at indices 1, 2 and 4; k = 3 takes 7 (index 3)
    and the two lowest indices holding 5, 1 and 2; the wrong fill takes 4 and 2."""
    x = torch.tensor([1.0, 5.0, 5.0, 7.0, 5.0, 0.0])
    assert topk_lower_index(x, 3).tolist() == [1, 2, 3]
    assert topk_lower_index(x, 3, wrong_ties=True).tolist() == [2, 3, 4]
    assert topk_lower_index(x, 6).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("wrong", ["dims", "ties"])
def test_the_wrong_variants_are_caught(wrong):
    caught = 0
    for G, d, C, p, r, k in CASES[:3]:
        q, kc = inputs(G, d, C)
        ref = reference(q, kc, p, r, k)
        caught += not np.array_equal(hsa_kernel(q, kc, p, r, k, wrong=wrong)[0].numpy(), ref.selected)
    assert caught == 3
