"""kvsim.ref is bit-identical to `kvsim golden` (the CLI and the C library
write the golden; the reference here recomputes each stage from its inputs)."""
import ctypes

import numpy as np
import pytest

import kvsim

STEP_METHODS = ["rocketkv", "hsa", "snapkv", "snapkv-gqa", "full", "streaming"]


def _params(g):
    return g.manifest["params"]


@pytest.mark.parametrize("method", STEP_METHODS)
def test_attention_output_is_bit_identical(goldens, method):
    g = goldens[method]
    for h in g.kv_heads:
        for s in range(g.steps):
            t = g.tensors(h, s)
            if t["k_cache"].ndim == 3:  # per-head caches: each head over its own rows
                out = np.stack([kvsim.ref.attend(t["q"][i:i + 1], t["k_cache"][i], t["v_cache"][i],
                                                 t["selected"][i][t["selected"][i] >= 0])[0]
                                for i in range(t["q"].shape[0])])
            else:
                out = kvsim.ref.attend(t["q"], t["k_cache"], t["v_cache"], t["selected"])
            assert out.dtype == np.float32 and out.shape == t["out"].shape
            assert np.array_equal(out.view(np.uint32), t["out"].view(np.uint32)), (method, h, s)


@pytest.mark.parametrize("method", ["rocketkv", "hsa"])
def test_hsa_selection_is_bit_identical(goldens, method):
    g = goldens[method]
    p = _params(g)
    for h in g.kv_heads:
        for s in range(g.steps):
            t = g.tensors(h, s)
            r = kvsim.ref.hsa_select(t["q"], t["k_cache"], p["page_size"], p["topr"], p["topk"], p["granularity"],
                                     p["local_window"])
            assert np.array_equal(r.selected, t["selected"])
            assert np.array_equal(r.dims, t["dims"])
            assert np.array_equal(r.page_scores, t["page_scores"])
            assert np.array_equal(r.token_scores, t["token_scores"])


def test_rocketkv_step_matches_the_golden(goldens):
    g = goldens["rocketkv"]
    t = g.tensors(0, 1)
    sel, out = kvsim.ref.rocketkv_step(t["q"], t["k_cache"], t["v_cache"], _params(g))
    assert np.array_equal(sel.selected, t["selected"]) and np.array_equal(out, t["out"])


@pytest.mark.parametrize("method,per_head", [("rocketkv", False), ("snapkv-gqa", False), ("snapkv", True)])
def test_stage1_is_bit_identical(goldens, method, per_head):
    g = goldens[method]
    p = _params(g)
    t = g.tensors(g.kv_heads[0], -1)
    r = kvsim.ref.snapkv_select(t["q_window"], t["k_prompt"], p["prompt_budget"], kernel=p["kernel_size"],
                                pool=p["pool"], per_head=per_head)
    assert np.array_equal(r.kept, t["kept"])
    assert np.array_equal(r.votes, t["votes"]) and np.array_equal(r.pooled, t["pooled"])


def test_dense_step_matches_per_head_caches(goldens):
    t = goldens["snapkv"].tensors(0, 0)
    assert np.array_equal(kvsim.ref.dense_step(t["q"], t["k_cache"], t["v_cache"]), t["out"])


def test_bad_shapes_and_dtypes_are_clear_errors():
    q = np.zeros((4, 64), np.float32)
    with pytest.raises(ValueError, match="k: axis 1 is 32, expected 64"):
        kvsim.ref.attend(q, np.zeros((10, 32), np.float32), np.zeros((10, 32), np.float32))
    with pytest.raises(ValueError, match="expected 2 dimensions"):
        kvsim.ref.hsa_select(np.zeros(64, np.float32), np.zeros((10, 64), np.float32), 4, 8, 4)
    with pytest.raises(TypeError, match="complex128 cannot be used as float32"):
        kvsim.ref.attend(q.astype(complex), np.zeros((3, 64)), np.zeros((3, 64)))


def test_c_errors_carry_the_library_message():
    q = np.zeros((1, 8), np.float32)
    k = np.zeros((3, 8), np.float32)
    with pytest.raises(kvsim.KvsimError, match="outside the rows"):
        kvsim.ref.attend(q, k, k, np.array([0, 5], np.int32))
    with pytest.raises(kvsim.KvsimError, match="page_size"):
        kvsim.ref.hsa_select(q, k, 0, 4, 4)


def test_attend_by_hand():
    """d = 4, q = (2, 0, 0, 0), keys (0, ...) and (1, ...): logits 0 and 2·1/√4 = 1,
    weights 1/(1+e) and e/(1+e) on values (1, 2) and (5, 6) (all exact in bf16)."""
    q = np.array([[2, 0, 0, 0]], np.float32)
    k = np.array([[0, 0, 0, 0], [1, 0, 0, 0]], np.float32)
    v = np.array([[1, 2, 0, 0], [5, 6, 0, 0]], np.float32)
    p1 = np.e / (1 + np.e)
    out = kvsim.ref.attend(q, k, v)
    assert np.allclose(out[0], [1 + 4 * p1, 2 + 4 * p1, 0, 0], rtol=1e-6, atol=0)


def _history(g, h):
    """The whole K/V history of KV head h from a golden: the prompt (k_prompt, or
    the first step's cache when nothing was evicted) and each step's new token."""
    t0 = g.tensors(h, 0)
    pre = g.tensors(h, -1)
    if "k_prompt" in pre:
        S = pre["k_prompt"].shape[0]
        kp = pre["k_prompt"]
        vp = None
    else:
        S = t0["k_cache"].shape[0] - 1
        kp, vp = t0["k_cache"][:S], t0["v_cache"][:S]
    steps = [g.tensors(h, s) for s in range(g.steps)]
    k = np.concatenate([kp] + [t["k_new"][None] for t in steps])
    v = None if vp is None else np.concatenate([vp] + [t["v_new"][None] for t in steps])
    return k, v, np.stack([t["q"] for t in steps]), pre.get("q_window")


@pytest.mark.parametrize("method,budget", [("quest", 96), ("sparq", 96), ("exact-topk", 96), ("hsa", 128),
                                           ("full", 64)])
def test_decode_of_every_method_matches_its_golden(tmp_path, method, budget):
    """kvsim.ref.decode runs any method; its output is the golden's, bit for bit."""
    g = kvsim.golden.write(str(tmp_path / method), "smollm2-135m", method, budget, 500, layer=2, kv_head=1,
                           steps=3, seed=9)
    k, v, q, _ = _history(g, 1)
    r = kvsim.ref.decode(method, k, v, q, budget, max_new=g.manifest["params"]["max_new"])
    for s in range(g.steps):
        t = g.tensors(1, s)
        assert np.array_equal(r.out[s], t["out"]), (method, s)
        sel = t["selected"] if t["selected"].ndim == 2 else np.tile(t["selected"], (q.shape[1], 1))
        for h in range(q.shape[1]):
            slots = sel[h][sel[h] >= 0]
            assert np.array_equal(r.positions[s][h], t["cache_positions"][slots])


def test_decode_runs_rocketkv_stage1_from_the_window_queries(goldens):
    g = goldens["rocketkv"]
    k, _, q, qw = _history(g, 0)
    # V of the prompt is not in a rocketkv golden (evicted rows are never read): zeros there, the
    # cache's rows where they are kept
    v = np.zeros_like(k)
    for s in range(g.steps):
        t = g.tensors(0, s)
        v[t["cache_positions"]] = t["v_cache"]
    r = kvsim.ref.decode("rocketkv", k, v, q, g.manifest["budget"], q_window=qw, max_new=50)
    for s in range(g.steps):
        assert np.array_equal(r.out[s], g.tensors(0, s)["out"])
    with pytest.raises(kvsim.KvsimError, match="q_window"):
        kvsim.ref.decode("rocketkv", k, v, q, g.manifest["budget"], max_new=50)


def _addr(p):
    return ctypes.cast(p, ctypes.c_void_p).value


def test_arrays_reach_the_library_without_a_copy(monkeypatch):
    """C-contiguous float32 inputs are handed to the C library at their own
    address; other layouts or dtypes are converted (a copy, same values)."""
    seen = []
    real = kvsim._lib.lib.kva_attend

    def spy(q, G, d, k, v, n, idx, nidx, out, err):
        seen.append((_addr(q), _addr(k), _addr(v), _addr(idx)))
        return real(q, G, d, k, v, n, idx, nidx, out, err)

    monkeypatch.setattr(kvsim._lib.lib, "kva_attend", spy)
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 16)).astype(np.float32)
    k = rng.standard_normal((9, 16)).astype(np.float32)
    v = rng.standard_normal((9, 16)).astype(np.float32)
    idx = np.array([1, 4, 8], np.int32)
    out = kvsim.ref.attend(q, k, v, idx)
    assert seen[-1] == (q.ctypes.data, k.ctypes.data, v.ctypes.data, idx.ctypes.data)
    kf = np.asfortranarray(k)
    out2 = kvsim.ref.attend(q, kf, v.astype(np.float64), idx.astype(np.int64))
    assert seen[-1][0] == q.ctypes.data and seen[-1][1] != kf.ctypes.data
    assert np.array_equal(out, out2)


def test_outputs_are_fresh_arrays_of_the_documented_dtypes():
    rng = np.random.default_rng(4)
    q = rng.standard_normal((3, 32)).astype(np.float32)
    k = rng.standard_normal((50, 32)).astype(np.float32)
    r = kvsim.ref.hsa_select(q, k, 4, 8, 10)
    assert (r.selected.dtype, r.dims.dtype, r.page_scores.dtype, r.token_scores.dtype) == \
        (np.int32, np.int32, np.float64, np.float64)
    assert r.selected.shape == (10,) and r.dims.shape == (8,)
    assert r.page_scores.shape == (3, 13) and r.token_scores.shape == (50,)
    assert r.selected.flags.c_contiguous and r.page_scores.flags.c_contiguous
