"""The simulator: parameters, predictions, capacity plans and sweeps."""
import csv
import json
import os
import tempfile
from typing import Any, Dict, List, Optional

from . import _lib


def params(model: str, method: str, budget: int, context: int, max_new: int = 50) -> Dict[str, Any]:
    """Resolved parameters (TensorRT-LLM's names) of `method` for `model`:
    {"model", "G", "d", "params": {...}, "traits": {...}} — what `kvsim params --json` resolves."""
    return json.loads(_lib.call_json(_lib.lib.kva_params, _lib.enc(model), _lib.enc(method), budget, context,
                                     max_new))


def predict(model: str, hw: str, method: str, budget: int, context: int, max_new: int = 50, batch: int = 1,
            tp: int = 1, harness: str = "engine") -> Dict[str, Any]:
    """Step time, tokens/s, TTFT and memory of `method` and of dense attention
    ("method", "full"; seconds and bytes), and speedup_vs_full."""
    return json.loads(_lib.call_json(_lib.lib.kva_predict, _lib.enc(model), _lib.enc(hw), _lib.enc(method), budget,
                                     context, max_new, batch, tp, _lib.enc(harness)))


def plan(model: str, hw: str, method: str, budget: int, context: int, max_new: int = 50, tp: int = 1,
         harness: str = "engine", tpot_slo_s: float = 0.0, target_tokens_per_s: float = 0.0) -> Dict[str, Any]:
    """Capacity: the largest batch that fits (max_batch), its tokens_per_s and
    tpot_s, the batch meeting a TPOT SLO, max_context_at_batch1, gpus_for_target."""
    return json.loads(_lib.call_json(_lib.lib.kva_plan, _lib.enc(model), _lib.enc(hw), _lib.enc(method), budget,
                                     context, max_new, tp, _lib.enc(harness), tpot_slo_s, target_tokens_per_s))


def _num(x: str):
    for t in (int, float):
        try:
            return t(x)
        except ValueError:
            pass
    return x


def read_csv(path: str) -> List[Dict[str, Any]]:
    """Rows of a kvsim CSV (sweep output), '#' comment lines skipped, numbers converted."""
    with open(path) as f:
        lines = [ln for ln in f if not ln.startswith("#")]
    return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(lines)]


def sweep(spec: str, out: Optional[str] = None, fidelity: bool = False, frame: bool = False):
    """Runs a sweep spec (YAML, docs/sweep.md) and returns its rows as dicts,
    or a pandas DataFrame with frame=True (pandas needed). out: keep the CSV there."""
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="kvsim-sweep-")
        out = os.path.join(tmp, "sweep.csv")
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_sweep(_lib.enc(spec), _lib.enc(out), int(fidelity), err), err)
    rows = read_csv(out)
    if tmp:
        os.remove(out)
        os.rmdir(tmp)
    if frame:
        import pandas as pd
        return pd.DataFrame(rows)
    return rows
