"""kvsim.golden: load, write, compare — per-stage results a test can assert on."""
import hashlib
import os
import shutil

import numpy as np
import pytest

import kvsim


def _candidate_from_ref(g, dst):
    """A kernel's outputs: selection and attention recomputed with kvsim.ref."""
    p = g.manifest["params"]
    for h in g.kv_heads:
        for s in range(g.steps):
            t = g.tensors(h, s)
            sel, out = kvsim.ref.hsa_step(t["q"], t["k_cache"], t["v_cache"], p["page_size"], p["topr"], p["topk"],
                                          p["granularity"], p["local_window"])
            d = os.path.join(dst, "kvh%d" % h, "step%d" % s)
            os.makedirs(d, exist_ok=True)
            np.save(os.path.join(d, "selected.npy"), sel.selected)
            np.save(os.path.join(d, "out.npy"), out)


def test_load_reads_the_manifest(goldens):
    g = goldens["rocketkv"]
    m = g.manifest
    assert (m["G"], m["d"], m["max_position_embeddings"]) == (3, 64, 8192)
    assert g.kv_heads == [0, 1, 2] and g.steps == 2
    t = g.tensors(2, 1)
    assert t["q"].shape == (3, 64) and t["k_cache"].dtype == np.float32
    assert {e["index"] for e in g.entries("selected")} == {"slot"}
    assert {e["index"] for e in g.entries("kept")} == {"absolute"}


def test_a_partial_candidate_passes_and_lists_what_is_missing(goldens, tmp_path):
    g = goldens["hsa"]
    _candidate_from_ref(g, str(tmp_path))
    r = kvsim.golden.compare(g, str(tmp_path))
    assert r.passed and r.checked == 2 * 2
    assert r.stage("attention").passed and r.stage("attention").worst_ratio == 0.0
    assert r.stage("page_scores").missing == 2 and r.stage("page_scores").checked == 0
    assert not kvsim.golden.compare(g, str(tmp_path), all_stages=True).passed


def test_a_golden_passes_against_itself_with_every_stage(goldens):
    for method, g in goldens.items():
        r = kvsim.golden.compare(g, g.path, all_stages=True)
        assert r.passed, (method, str(r))


@pytest.mark.parametrize("damage,stage,why", [("dup", "selection", "duplicate entry"),
                                               ("oob", "selection", "outside [0, "),
                                               ("swap", "selection", "entries differ"),
                                               ("value", "attention", "outside the bound")])
def test_damaged_candidates_fail(goldens, tmp_path, damage, stage, why):
    g = goldens["hsa"]
    _candidate_from_ref(g, str(tmp_path))
    d = os.path.join(str(tmp_path), "kvh1", "step0")
    sel = np.load(os.path.join(d, "selected.npy"))
    out = np.load(os.path.join(d, "out.npy"))
    if damage == "dup":
        sel[-1] = sel[0]
    elif damage == "oob":
        sel[-1] = 10 ** 6
    elif damage == "swap":
        sel[-1] = np.setdiff1d(np.arange(sel.max() + 2), sel)[0]
        sel.sort()
    else:
        out[0, 0] += np.float32(1e-3)
    np.save(os.path.join(d, "selected.npy"), sel)
    np.save(os.path.join(d, "out.npy"), out)
    r = kvsim.golden.compare(g, str(tmp_path))
    assert not r.passed and r.stage(stage).failed == 1 and why in r.stage(stage).detail, str(r)


def test_negative_atol_and_empty_candidates_are_errors(goldens, tmp_path):
    with pytest.raises(kvsim.KvsimError, match="atol must be >= 0"):
        kvsim.golden.compare(goldens["full"], goldens["full"].path, atol=-1)
    with pytest.raises(kvsim.KvsimError, match="no tensor"):
        kvsim.golden.compare(goldens["full"], str(tmp_path))


def test_golden_refuses_positions_past_the_model_length(tmp_path):
    with pytest.raises(kvsim.KvsimError, match="past smollm2-135m's maximum length 8192"):
        kvsim.golden.write(str(tmp_path / "g"), "smollm2-135m", "full", 64, 8192, max_new=0)


@pytest.mark.parametrize("method,budget,context,kv_head", [("snapkv", 128, 600, "0"), ("hsa", 128, 700, "1"),
                                                           ("rocketkv", 96, 900, "all")])
def test_the_cli_writes_the_same_bytes(goldens, tmp_path, method, budget, context, kv_head):
    """`python -m kvsim golden` (the CLI) and kvsim.golden.write (the library, the
    goldens fixture) agree byte for byte, so kvsim.ref's bit-identity with the
    goldens (test_ref.py) is bit-identity with the CLI."""
    import subprocess
    import sys
    g = goldens[method]
    d = str(tmp_path / "cli")
    subprocess.check_call([sys.executable, "-m", "kvsim", "golden", "--model", "smollm2-135m", "--method", method,
                           "--budget", str(budget), "--context", str(context), "--layer", "1", "--kv-head", kv_head,
                           "--steps", "2", "--seed", "5", "--out", d], stdout=subprocess.DEVNULL)
    # digests, not the bytes: pytest would spend minutes diffing two large byte strings
    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    def files(root):
        return sorted(os.path.relpath(os.path.join(a, f), root) for a, _, fs in os.walk(root) for f in fs)
    assert files(d) == files(g.path)
    for e in g.entries():
        assert digest(os.path.join(g.path, e["file"])) == digest(os.path.join(d, e["file"])), e["file"]
    assert digest(os.path.join(g.path, "manifest.json")) == digest(os.path.join(d, "manifest.json"))
    shutil.rmtree(d)
