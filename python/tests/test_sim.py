"""kvsim.params / predict / plan / sweep return plain dicts and rows."""
import subprocess
import sys

import numpy as np
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


@pytest.mark.parametrize("method", ["rocketkv", "hsa", "snapkv-gqa", "quest", "full"])
def test_params_agree_with_the_cli(method):
    """Every resolved parameter equals `kvsim params --json`'s, value and type."""
    import json
    out = subprocess.check_output([sys.executable, "-m", "kvsim", "params", "--model", "llama3.1-8b", "--method",
                                   method, "--budget", "1024", "--context", "32768", "--json"])
    cli = json.loads(out)
    lib = kvsim.params("llama3.1-8b", method, 1024, 32768)["params"]
    assert lib == cli and [type(v) for v in lib.values()] == [type(v) for v in cli.values()]


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


SPEC = ("models: [llama3.1-8b]\nhw: [h100-sxm]\nmethods: [full, rocketkv]\nbudgets: [512, 1024]\n"
        "contexts: [8192, 16384]\nbatches: [1]\ntp: [1]\nharness: [engine]\nnew: 50\n")


@pytest.fixture
def spec(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    return str(f)


def test_sweep_returns_one_row_per_point(spec, monkeypatch):
    # the rows need no pandas: with it hidden, frame=False still works
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = kvsim.sweep(spec)
    # the dense baseline ignores the budget, so its budget axis collapses (docs/sweep.md):
    # full 1 budget x 2 contexts + rocketkv 2 budgets x 2 contexts
    assert len(rows) == 1 * 2 + 2 * 2
    assert {r["method"] for r in rows} == {"full", "rocketkv"}
    assert all(isinstance(r["context"], int) for r in rows)
    assert [r["point"] for r in rows] == list(range(6))
    # docs/sweep.md: budget is empty for full; fidelity columns are empty without a workload
    assert all((r["budget"] is None) == (r["method"] == "full") for r in rows)
    assert all(r["fid_mass_recall"] is None for r in rows)
    with pytest.raises(ImportError, match=r"needs pandas \(pip install pandas\)"):
        kvsim.sweep(spec, frame=True)


def test_sweep_keeps_the_csv_it_was_asked_to(spec, tmp_path):
    out = str(tmp_path / "kept.csv")
    rows = kvsim.sweep(spec, out=out)
    with open(out) as f:
        text = f.read()
    assert text.startswith("#") and kvsim.read_csv(out) == rows
    header = next(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert header.split(",") == list(rows[0])


def test_sweep_frame_is_a_dataframe_of_the_same_rows(spec):
    import pandas as pd
    rows = kvsim.sweep(spec)
    df = kvsim.sweep(spec, frame=True)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(rows[0]) and len(df) == len(rows)
    assert df["context"].dtype == np.int64 and df["step_time_s"].dtype == np.float64
    assert df["model"].tolist() == [r["model"] for r in rows]
    for col in df.columns:
        got, want = df[col].tolist(), [r[col] for r in rows]
        # empty fields are None in the rows and NaN in the frame (a column holding one is float64)
        assert [pd.isna(g) for g in got] == [w is None for w in want], col
        if None in want:
            got, want = [g for g, w in zip(got, want) if w is not None], [w for w in want if w is not None]
        else:
            assert [type(g) for g in got] == [type(w) for w in want], col
        assert got == want, col
    # a planner's question in pandas: rocketkv's speed-up at each context, best budget
    best = df[df.method == "rocketkv"].groupby("context")["speedup_vs_full"].max()
    assert list(best.index) == [8192, 16384]
    assert best.tolist() == [max(r["speedup_vs_full"] for r in rows if r["method"] == "rocketkv" and
                                 r["context"] == c) for c in (8192, 16384)]
