"""The simulator: parameters, predictions, capacity plans and sweeps."""
import csv
import io
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional

from . import _lib


def _obj(text: str) -> Dict[str, Any]:
    d = json.loads(text)
    if not isinstance(d, dict):
        raise _lib.KvsimError("the library returned JSON that is not an object: %.80s" % text)
    return d


def params(model: str, method: str, budget: int, context: int, max_new: int = 50) -> Dict[str, Any]:
    """Resolved parameters (TensorRT-LLM's names) of `method` for `model`:
    {"model", "G", "d", "params": {...}, "traits": {...}} — what `kvsim params --json` resolves."""
    return _obj(_lib.call_json(_lib.lib.kva_params, _lib.enc(model), _lib.enc(method), budget, context,
                                max_new))


def predict(model: str, hw: str, method: str, budget: int, context: int, max_new: int = 50, batch: int = 1,
            tp: int = 1, harness: str = "engine") -> Dict[str, Any]:
    """Step time, tokens/s, TTFT and memory of `method` and of dense attention
    ("method", "full"; seconds and bytes), and speedup_vs_full."""
    return _obj(_lib.call_json(_lib.lib.kva_predict, _lib.enc(model), _lib.enc(hw), _lib.enc(method), budget,
                                context, max_new, batch, tp, _lib.enc(harness)))


def plan(model: str, hw: str, method: str, budget: int, context: int, max_new: int = 50, tp: int = 1,
         harness: str = "engine", tpot_slo_s: float = 0.0, target_tokens_per_s: float = 0.0) -> Dict[str, Any]:
    """Capacity: the largest batch that fits (max_batch), its tokens_per_s and
    tpot_s, the batch meeting a TPOT SLO, max_context_at_batch1, gpus_for_target."""
    return _obj(_lib.call_json(_lib.lib.kva_plan, _lib.enc(model), _lib.enc(hw), _lib.enc(method), budget,
                                context, max_new, tp, _lib.enc(harness), tpot_slo_s, target_tokens_per_s))


def _column_type(values: List[str]) -> Any:
    """int when every non-empty field of the column is an integer, else float
    when every one is a number, else str — one type per column, as pandas."""
    for t in (int, float):
        try:
            for v in values:
                if v != "":
                    t(v)
            return t
        except ValueError:
            pass
    return str


def _data_lines(path: str) -> List[str]:
    with open(path) as f:
        return [ln for ln in f if not ln.startswith("#")]


def read_csv(path: str) -> List[Dict[str, Any]]:
    """Rows of a kvsim CSV (sweep output) as dicts, the columns in the file's
    order: '#' comment lines skipped; each column int, float or str (one type
    per column); empty fields ("not applicable", docs/sweep.md) None."""
    table = list(csv.reader(_data_lines(path)))
    if not table:
        return []
    header, body = table[0], table[1:]
    types = [_column_type([r[i] for r in body]) for i in range(len(header))]
    return [{h: (None if v == "" else t(v)) for h, t, v in zip(header, types, r)} for r in body]


def sweep(spec: str, out: Optional[str] = None, fidelity: bool = False, frame: bool = False) -> Any:
    """Runs a sweep spec (YAML, docs/sweep.md); returns its rows as read_csv
    gives them (one dict per point), or with frame=True a pandas DataFrame of
    the same CSV (one row per point, the same columns in order; integer
    columns int64, real ones float64, empty fields NaN; pandas needed,
    ImportError naming it otherwise). out: keep the CSV there."""
    pd: Any = None
    if frame:
        try:
            import pandas
        except ImportError as e:
            raise ImportError("kvsim.sweep(frame=True) needs pandas (pip install pandas); "
                              "frame=False returns the rows as dicts") from e
        pd = pandas
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="kvsim-sweep-")
        out = os.path.join(tmp, "sweep.csv")
    try:
        err = _lib.err_buf()
        _lib.check(_lib.lib.kva_sweep(_lib.enc(spec), _lib.enc(out), int(fidelity), err), err)
        if pd is not None:
            return pd.read_csv(io.StringIO("".join(_data_lines(out))))
        return read_csv(out)
    finally:
        if tmp:
            shutil.rmtree(tmp)
