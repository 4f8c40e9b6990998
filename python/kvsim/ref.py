"""The exact reference, bit-identical to `kvsim golden` and to refimpl.

Inputs are NumPy arrays (or anything np.asarray takes: lists, a CPU torch
tensor's .numpy()). q, k, v are float32; a C-contiguous float32 array is
handed to the C library as it is, without a copy; another layout, or another
real dtype (float64, float16, ints), is converted to a C-contiguous float32
copy; a complex or object array, or the wrong number of dimensions, raises
TypeError/ValueError naming the argument. K/V values that are not bf16 are
rounded to bf16 inside the library, as the reference stores its cache
(golden files already hold bf16 values). Errors the C library reports raise
kvsim.KvsimError carrying its message. Outputs are fresh C-contiguous arrays
the library wrote into (no copy on the way out)."""
import ctypes
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _lib
from ._arrays import as_c, ptr, want


class SnapKVResult(NamedTuple):
    """kept: int32 (P,) or (G, P) ascending absolute positions; votes, pooled:
    float64 (S − w,) or (G, S − w) (empty when nothing was voted on)."""
    kept: np.ndarray
    votes: np.ndarray
    pooled: np.ndarray


class HSAResult(NamedTuple):
    """selected: int32 (n,) ascending cache slots; dims: int32 (r,) ascending;
    page_scores: float64 (G, ceil(C / page_size)); token_scores: float64 (C,)."""
    selected: np.ndarray
    dims: np.ndarray
    page_scores: np.ndarray
    token_scores: np.ndarray


def snapkv_select(q_window: ArrayLike, k: ArrayLike, prompt_budget: int, window: Optional[int] = None, kernel: int = 63,
                  pool: str = "max", per_head: bool = False) -> SnapKVResult:
    """Stage 1 (SnapKV vote) at the end of a prefill of S tokens.

    q_window: float32 (G, w, d), queries of positions S−w .. S−1; k: float32 (S, d).
    prompt_budget: P tokens kept; kernel: pooling kernel; pool: "max" or "avg";
    per_head: each query head selects alone (snapkv) instead of the group voting
    together (rocketkv, snapkv-gqa). Returns SnapKVResult.
    """
    qw = as_c("q_window", q_window, np.float32, 3)
    kk = as_c("k", k, np.float32, 2)
    G, w, d = qw.shape
    S = kk.shape[0]
    want("k", kk, 1, d, "head dimension d of q_window")
    if window is not None and window != w:
        raise ValueError("window %d does not match q_window's %d queries" % (window, w))
    if pool not in ("max", "avg"):
        raise ValueError("pool: expected 'max' or 'avg', got %r" % pool)
    rows = G if per_head else 1
    npre = max(S - w, 0)
    votes = np.zeros((rows, npre))
    pooled = np.zeros((rows, npre))
    kept = np.full((rows, max(prompt_budget, 1)), -1, dtype=np.int32)
    nk = ctypes.c_int64()
    err = _lib.err_buf()
    voted = S > prompt_budget and w < prompt_budget
    _lib.check(_lib.lib.kva_stage1_select(ptr(kk, ctypes.c_float), S, d, G, ptr(qw, ctypes.c_float), w,
                                          prompt_budget, kernel, pool == "avg", per_head,
                                          ptr(votes, ctypes.c_double) if voted else None,
                                          ptr(pooled, ctypes.c_double) if voted else None,
                                          ptr(kept, ctypes.c_int32), ctypes.byref(nk), err), err)
    kept = kept[:, :nk.value]
    if not voted:
        votes, pooled = votes[:, :0], pooled[:, :0]
    if per_head:
        return SnapKVResult(kept, votes, pooled)
    return SnapKVResult(kept[0], votes[0], pooled[0])


def hsa_select(q: ArrayLike, k: ArrayLike, page_size: int, topr: int, topk: int, granularity: str = "token",
               local_window: int = 0) -> HSAResult:
    """Hybrid sparse attention's selection (stage 2) of one decode step.

    q: float32 (G, d) the group's queries; k: float32 (C, d) the cache
    (slot j = row j; page j = slots j·page_size .. (j+1)·page_size − 1).
    Returns HSAResult: selected int32 (n,) the top-k cache slots (n = min(topk, C);
    ties to the lower slot), or ceil(topk/page_size) whole pages with
    granularity="page", plus the newest local_window slots; dims int32 (r,)
    the top-r dims; page_scores float64 (G, ceil(C/page_size)); token_scores
    float64 (C,).
    """
    qq = as_c("q", q, np.float32, 2)
    kk = as_c("k", k, np.float32, 2)
    G, d = qq.shape
    C = kk.shape[0]
    want("k", kk, 1, d, "head dimension d of q")
    if granularity not in ("token", "page"):
        raise ValueError("granularity: expected 'token' or 'page', got %r" % granularity)
    npg = -(-C // page_size) if page_size > 0 else 0
    sel = np.empty(max(C, 1), dtype=np.int32)
    dims = np.empty(d, dtype=np.int32)
    ps = np.empty((G, max(npg, 1)))
    ts = np.empty(max(C, 1))
    n, r = ctypes.c_int64(), ctypes.c_int()
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_hsa_select(ptr(qq, ctypes.c_float), G, d, ptr(kk, ctypes.c_float), C, page_size, topr,
                                       topk, granularity == "page", local_window, ptr(sel, ctypes.c_int32),
                                       ctypes.byref(n), ptr(dims, ctypes.c_int32), ctypes.byref(r),
                                       ptr(ps, ctypes.c_double), ptr(ts, ctypes.c_double), err), err)
    return HSAResult(sel[:n.value], dims[:r.value], ps[:, :npg], ts[:C])


def attend(q: ArrayLike, k: ArrayLike, v: ArrayLike, positions: Optional[ArrayLike] = None) -> np.ndarray:
    """Attention of q: float32 (G, d) over rows `positions` (int32 (n,), or every
    row when None) of k, v: float32 (N, d); softmax(q·k/√d)·v as refimpl computes
    it. Returns float32 (G, d)."""
    qq = as_c("q", q, np.float32, 2)
    kk = as_c("k", k, np.float32, 2)
    vv = as_c("v", v, np.float32, 2)
    G, d = qq.shape
    want("k", kk, 1, d, "head dimension d of q")
    if vv.shape != kk.shape:
        raise ValueError("v: shape %s differs from k's %s" % (vv.shape, kk.shape))
    idx = None if positions is None else as_c("positions", positions, np.int32, 1)
    out = np.empty((G, d), dtype=np.float32)
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_attend(ptr(qq, ctypes.c_float), G, d, ptr(kk, ctypes.c_float), ptr(vv, ctypes.c_float),
                                   kk.shape[0], None if idx is None else ptr(idx, ctypes.c_int32),
                                   0 if idx is None else idx.shape[0], ptr(out, ctypes.c_float), err), err)
    return out


def hsa_step(q: ArrayLike, k_cache: ArrayLike, v_cache: ArrayLike, page_size: int, topr: int, topk: int,
             granularity: str = "token", local_window: int = 0) -> Tuple[HSAResult, np.ndarray]:
    """One decode step of hsa (and of rocketkv's stage 2 over its compressed
    cache): q float32 (G, d), k_cache and v_cache float32 (C, d) →
    (HSAResult, out float32 (G, d))."""
    sel = hsa_select(q, k_cache, page_size, topr, topk, granularity, local_window)
    return sel, attend(q, k_cache, v_cache, sel.selected)


def rocketkv_step(q: ArrayLike, k_cache: ArrayLike, v_cache: ArrayLike, params: Dict[str, Any]) -> Tuple[HSAResult, np.ndarray]:
    """rocketkv's decode step over its cache (after stage 1), with the resolved
    parameters of kvsim.params(...)["params"] (or a golden manifest's "params"):
    q float32 (G, d), k_cache and v_cache float32 (C, d) → (HSAResult, out
    float32 (G, d))."""
    return hsa_step(q, k_cache, v_cache, params["page_size"], params["topr"], params["topk"],
                    params["granularity"], params["local_window"])


def dense_step(q: ArrayLike, k_cache: ArrayLike, v_cache: ArrayLike) -> np.ndarray:
    """full / streaming / snapkv(-gqa) decode step: q float32 (G, d) attends
    the whole cache, k_cache and v_cache float32 (C, d), or per head for a
    (G, C, d) cache (snapkv). Returns float32 (G, d)."""
    kc = np.asarray(k_cache)
    if kc.ndim == 3:
        return np.stack([attend(np.asarray(q)[h:h + 1], kc[h], np.asarray(v_cache)[h])[0] for h in range(kc.shape[0])])
    return attend(q, k_cache, v_cache)


class DecodeResult(NamedTuple):
    """out: float32 (steps, G, d); positions[s][h]: int32 ascending absolute
    positions query head h attended at step s."""
    out: np.ndarray
    positions: List[List[np.ndarray]]


def decode(method: str, k: ArrayLike, v: ArrayLike, q: ArrayLike, budget: int, q_window: Optional[ArrayLike] = None,
           max_new: Optional[int] = None) -> DecodeResult:
    """Any method of kvsim (full, exact-topk, streaming, snapkv, snapkv-gqa,
    quest, sparq, hsa, rocketkv, rocketkv-mt) as refimpl runs it: a prefill of
    the first S = N − steps positions, then one decode step per row of q.

    k, v: float32 (N, d) the whole history; q: float32 (steps, G, d) the
    decode queries (positions S .. N−1); q_window: float32 (G, w, d) the
    queries of positions S−w .. S−1 for methods with a stage-1 vote
    (w = min(window_size, S) of kvsim.params); max_new: the request's new
    tokens (default: steps), on which the budget split depends. Returns DecodeResult.
    """
    kk = as_c("k", k, np.float32, 2)
    vv = as_c("v", v, np.float32, 2)
    qq = as_c("q", q, np.float32, 3)
    steps, G, d = qq.shape
    N = kk.shape[0]
    want("k", kk, 1, d, "head dimension d of q")
    if vv.shape != kk.shape:
        raise ValueError("v: shape %s differs from k's %s" % (vv.shape, kk.shape))
    if N <= steps:
        raise ValueError("k: %d rows leave no prompt before %d decode steps" % (N, steps))
    qw = None if q_window is None else as_c("q_window", q_window, np.float32, 3)
    if qw is not None:
        want("q_window", qw, 0, G, "G of q")
        want("q_window", qw, 2, d, "d of q")
    out = np.empty((steps, G, d), np.float32)
    pos = np.empty((steps, G, N), np.int32)
    cnt = np.empty((steps, G), np.int64)
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_decode(_lib.enc(method), budget, steps if max_new is None else max_new, ptr(kk, ctypes.c_float), ptr(vv, ctypes.c_float),
                                   N - steps, steps, d, G, None if qw is None else ptr(qw, ctypes.c_float),
                                   0 if qw is None else qw.shape[1], ptr(qq, ctypes.c_float),
                                   ptr(out, ctypes.c_float), ptr(pos, ctypes.c_int32),
                                   cnt.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), err), err)
    return DecodeResult(out, [[pos[s, h, :cnt[s, h]].copy() for h in range(G)] for s in range(steps)])
