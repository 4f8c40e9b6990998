"""kvsim.params / predict / plan / sweep return plain dicts and rows."""
import subprocess
import sys

import pytest

import kvsim


def test_params_have_trtllm_names_and_traits():
    p = kvsim.params("llama3.1-8b", "rocketkv", 1024, 32768)
    assert (p["G"], p["d"]) == (4, 128)
    q = p["params"]
    # docs/algorithm.md: k = t/2 exact tokens for stage 2
    assert q["topk"] == 512 and q["budget"] == 1024 and q["context"] == 32768
    assert p["traits"]["stage1"] and p["traits"]["stage2"] and not p["traits"]["dense"]
    assert kvsim.params("llama3.1-8b", "full", 1024, 32768)["traits"]["dense"]


def test_params_agree_with_the_cli():
    import json
    out = subprocess.check_output([sys.executable, "-m", "kvsim", "params", "--model", "llama3.1-8b", "--method",
                                   "rocketkv", "--budget", "1024", "--context", "32768", "--json"])
    cli = json.loads(out)
    lib = kvsim.params("llama3.1-8b", "rocketkv", 1024, 32768)["params"]
    cli = cli.get("params", cli)
    for k in ("prompt_budget", "window_size", "page_size", "topr", "topk", "capacity"):
        assert cli[k] == lib[k], k


def test_unknown_names_are_library_errors():
    with pytest.raises(kvsim.KvsimError, match="unknown method 'rocketkvv'"):
        kvsim.params("llama3.1-8b", "rocketkvv", 1024, 32768)
    with pytest.raises(kvsim.KvsimError, match="unknown hardware model"):
        kvsim.plan("llama3.1-8b", "h999", "rocketkv", 1024, 32768)


def test_predict_has_both_sides_in_si_units():
    r = kvsim.predict("llama3.1-8b", "h100-sxm", "rocketkv", 1024, 32768)
    m, f = r["method"], r["full"]
    assert m["step_time_s"] > 0 and f["step_time_s"] > m["step_time_s"]
    assert r["speedup_vs_full"] == pytest.approx(f["step_time_s"] / m["step_time_s"])
    assert m["memory"]["kv_bytes"] < f["memory"]["kv_bytes"]


def test_plan_batch_shrinks_with_context():
    a = kvsim.plan("llama3.1-8b", "h100-sxm", "full", 1024, 8192)
    b = kvsim.plan("llama3.1-8b", "h100-sxm", "full", 1024, 65536)
    assert a["max_batch"] > b["max_batch"] >= 1
    assert kvsim.plan("llama3.1-8b", "h100-sxm", "rocketkv", 1024, 65536)["max_batch"] > b["max_batch"]


def test_sweep_returns_one_row_per_point(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("models: [llama3.1-8b]\nhw: [h100-sxm]\nmethods: [full, rocketkv]\nbudgets: [512, 1024]\n"
                    "contexts: [8192, 16384]\nbatches: [1]\ntp: [1]\nharness: [engine]\nnew: 50\n")
    rows = kvsim.sweep(str(spec))
    # the dense baseline ignores the budget, so its budget axis collapses (docs/sweep.md):
    # full 1 budget x 2 contexts + rocketkv 2 budgets x 2 contexts
    assert len(rows) == 1 * 2 + 2 * 2
    assert {r["method"] for r in rows} == {"full", "rocketkv"}
    assert all(isinstance(r["context"], int) for r in rows)
