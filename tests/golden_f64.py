#!/usr/bin/env python3
"""golden_f64.py — a second, independent implementation of the stages of a
`kvsim golden` directory in NumPy float64, written from docs/golden.md and
docs/algorithm.md (not from the C code): it reads each step's inputs,
recomputes every stage and writes the candidate arrays under the same
relative paths, for `kvsim compare GOLDEN CANDIDATE`.

    python3 tests/golden_f64.py GOLDEN OUT [--break swap|dup|oob|value] [--only out,selected]

--break damages the candidate on purpose (kvh<first>/step0): swap replaces one
selected slot by one not selected, dup repeats one, oob writes an entry past
the cache, value adds 1e-3 to one output element. --only writes just the
named tensors (a partial candidate). Methods: full, streaming, snapkv,
snapkv-gqa, hsa, rocketkv; another method exits with status 3.
"""
import json
import os
import sys

import numpy as np

GROUPED_STAGE1 = {"rocketkv": True, "snapkv-gqa": True, "snapkv": False}
HSA = {"hsa", "rocketkv"}
ALL_CACHE = {"full", "streaming", "snapkv", "snapkv-gqa"}


def topk_asc(scores, k):
    """Indices of the k largest scores, ties to the lower index, ascending."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
    return np.sort(order[:k])


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def pool1d(v, kernel, kind):
    """Stride 1, same padding kernel//2 (PyTorch's max_pool1d / avg_pool1d)."""
    n, lo, hi = len(v), kernel // 2, kernel - 1 - kernel // 2
    out = np.empty(n)
    for j in range(n):
        a, b = max(0, j - lo), min(n - 1, j + hi)
        out[j] = v[a:b + 1].max() if kind == "max" else v[a:b + 1].sum() / kernel
    return out


def stage1(kp, qw, P, w, kernel, pool, grouped):
    """SnapKV vote: window queries' softmax over the prompt (causal inside the
    window), summed over the window (and the G heads when grouped), pooled,
    top-(P − w) prefix positions plus the window."""
    S, d = kp.shape
    G = qw.shape[0]
    npre = S - w
    rows = [list(range(G))] if grouped else [[h] for h in range(G)]
    votes = np.zeros((len(rows), npre))
    for r, heads in enumerate(rows):
        for h in heads:
            for i in range(w):
                p = softmax(kp[:npre + i + 1].astype(np.float64) @ qw[h, i].astype(np.float64) / np.sqrt(d))
                votes[r] += p[:npre]
    pooled = np.stack([pool1d(v, kernel, pool) for v in votes])
    kept = np.stack([np.concatenate([topk_asc(pv, P - w), np.arange(npre, S)]) for pv in pooled])
    sq = (lambda a: a[0]) if grouped else (lambda a: a)
    return sq(votes), sq(pooled), sq(kept.astype(np.int32))


def round_to(x, dtype):
    """float32 values rounded to dtype (nearest, ties to even), as float64."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp32":
        return x.astype(np.float64)
    if dtype == "fp16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        u = x.view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return u.astype(np.uint32).view(np.float32).astype(np.float64)
    sys.exit(3)  # an fp8 aux dtype under a wider KV dtype: not implemented here


def hsa_stages(q, kc, prm, aux_round):
    """HSA: page min/max (rounded to the aux dtype: rounding is monotone, so
    min then round equals round then min), dims by Σ_h|q|, page scores over
    the sign-chosen bound, per-head softmax over tokens averaged over heads,
    top-k tokens."""
    G, d = q.shape
    C, pg = kc.shape[0], prm["page_size"]
    npg = (C + pg - 1) // pg
    kc64 = kc.astype(np.float64)
    pmin = aux_round(np.stack([kc64[j * pg:(j + 1) * pg].min(0) for j in range(npg)]))
    pmax = aux_round(np.stack([kc64[j * pg:(j + 1) * pg].max(0) for j in range(npg)]))
    q64 = q.astype(np.float64)
    dsc = np.abs(q64).sum(0)
    r = min(prm["topr"], d)
    dims = topk_asc(dsc, r)
    gsum = q64.sum(0)
    khat = np.where(gsum > 0, pmax, pmin)
    l1, l1i = np.abs(q64).sum(1), np.abs(q64[:, dims]).sum(1)
    tau = np.sqrt(d * np.where(l1 > 0, l1i / np.where(l1 > 0, l1, 1), 1.0))
    z = (q64[:, dims] @ khat[:, dims].T) / tau[:, None]
    cnt = np.array([min(pg, C - j * pg) for j in range(npg)], dtype=np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    avg = (e / (e * cnt).sum(1, keepdims=True)).mean(0)
    tok = avg[np.arange(C) // pg]
    k = min(prm["topk"], C)
    if prm["granularity"] == "page":
        pages = topk_asc(avg, -(-prm["topk"] // pg))
        sel = np.concatenate([np.arange(j * pg, min(C, (j + 1) * pg)) for j in pages])
    else:
        sel = topk_asc(tok, k)
    if prm["local_window"] > 0:
        sel = np.union1d(sel, np.arange(max(0, C - prm["local_window"]), C))
    return dict(page_min=pmin.astype(np.float32), page_max=pmax.astype(np.float32), dim_scores=dsc,
                dims=dims.astype(np.int32), page_scores=z, token_scores=tok, selected=sel.astype(np.int32))


def attend(q, k, v):
    d = q.shape[0]
    p = softmax(k.astype(np.float64) @ q.astype(np.float64) / np.sqrt(d))
    return p @ v.astype(np.float64)


def step(g, method, prm, aux_round):
    """One decode step: every stage's arrays from the step's inputs."""
    q, kc, vc = g["q"], g["k_cache"], g["v_cache"]
    G = q.shape[0]
    out = {}
    if method in HSA:
        out = hsa_stages(q, kc, prm, aux_round)
        rows = [out["selected"]] * G
    elif method in ALL_CACHE:
        C = kc.shape[-2]
        out["selected"] = np.tile(np.arange(C, dtype=np.int32), (G, 1)) if kc.ndim == 3 else \
            np.arange(C, dtype=np.int32)
        rows = list(out["selected"]) if kc.ndim == 3 else [out["selected"]] * G
    else:
        sys.exit(3)
    o = np.empty((G, q.shape[1]))
    for h in range(G):
        kh, vh = (kc[h], vc[h]) if kc.ndim == 3 else (kc, vc)
        o[h] = attend(q[h], kh[rows[h]], vh[rows[h]])
    out["out"] = o.astype(np.float32)
    return out


def save(root, rel, arr):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, arr)


def damage(cand, how):
    sel = cand["selected"]
    row = sel if sel.ndim == 1 else sel[0]
    if how == "swap":
        missing = np.setdiff1d(np.arange(row.max() + 2), row)
        row[-1] = missing[0]
        row.sort()
    elif how == "dup":
        row[-1] = row[0]
    elif how == "oob":
        row[-1] = 1 << 20
    elif how == "value":
        cand["out"][0, 0] += np.float32(1e-3)


def main(argv):
    args = argv[1:]
    brk = only = None
    if "--break" in args:
        i = args.index("--break")
        brk = args[i + 1]
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        only = set(args[i + 1].split(","))
        del args[i:i + 2]
    gold, dst = args
    man = json.load(open(os.path.join(gold, "manifest.json")))
    method, prm = man["method"], man["params"]
    if method not in HSA | ALL_CACHE:
        return 3
    # K/V inputs hold the kv_dtype's values exactly; page bounds are the
    # aux_dtype's: identity when the two are equal (min and max of values of
    # a dtype are values of it), rounded otherwise
    kvd, auxd = man.get("kv_dtype", "bf16"), man.get("aux_dtype", "bf16")
    aux_round = (lambda a: a) if auxd == kvd else (lambda a: round_to(a, auxd))
    load = lambda rel: np.load(os.path.join(gold, rel))
    first = True
    for h in man["kv_heads"]:
        pre = "kvh%d/prefill/" % h
        if os.path.exists(os.path.join(gold, pre + "k_prompt.npy")) and method in GROUPED_STAGE1:
            kp, qw = load(pre + "k_prompt.npy"), load(pre + "q_window.npy")
            S, w, P = kp.shape[0], qw.shape[1], prm["prompt_budget"]
            res = {}
            if S > P and w < P:
                res["votes"], res["pooled"], res["kept"] = stage1(kp, qw, P, w, prm["kernel_size"], prm["pool"],
                                                                  GROUPED_STAGE1[method])
            else:
                G = qw.shape[0]
                kept = np.arange(S, dtype=np.int32) if S <= P else np.arange(S - P, S, dtype=np.int32)
                res["kept"] = kept if GROUPED_STAGE1[method] else np.tile(kept, (G, 1))
            for k, a in res.items():
                if only is None or k in only:
                    save(dst, pre + k + ".npy", a)
        for s in range(man["steps"]):
            d = "kvh%d/step%d/" % (h, s)
            g = {k: load(d + k + ".npy") for k in ("q", "k_cache", "v_cache")}
            cand = step(g, method, prm, aux_round)
            if first and brk:
                damage(cand, brk)
            first = False
            for k, a in cand.items():
                if only is None or k in only:
                    save(dst, d + k + ".npy", a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
