"""Golden files (docs/golden.md): write, load, compare."""
import ctypes
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import numpy as np

from . import _lib


@dataclass
class StageResult:
    """One stage of a comparison, over every head and step."""
    name: str
    tensors: int
    checked: int
    failed: int
    missing: int
    worst_ratio: float   # max |actual − expected| / bound over bounded tensors
    detail: str

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.checked > 0


@dataclass
class CompareResult:
    passed: bool
    checked: int
    stages: List[StageResult] = field(default_factory=list)

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def __str__(self) -> str:
        lines = ["%-12s %-7s %d/%d checked, %d missing%s" % (s.name, "FAIL" if s.failed else
                 ("MISSING" if s.checked == 0 else "PASS"), s.checked, s.tensors, s.missing, s.detail)
                 for s in self.stages]
        return "\n".join(lines + ["PASS" if self.passed else "FAIL"])


class Golden:
    """A golden directory: .manifest (dict), .tensors(kv_head, step) -> {name: array}."""

    def __init__(self, path: str):
        self.path = path
        with open(os.path.join(path, "manifest.json")) as f:
            self.manifest = json.load(f)
        if self.manifest.get("kind") != "kvsim-golden":
            raise ValueError("%s: not a kvsim-golden manifest" % path)

    @property
    def kv_heads(self) -> List[int]:
        return list(self.manifest["kv_heads"])

    @property
    def steps(self) -> int:
        return int(self.manifest["steps"])

    def load(self, file: str) -> np.ndarray:
        """One .npy file of the golden (a manifest entry's "file"), as stored."""
        a: np.ndarray = np.load(os.path.join(self.path, file))
        return a

    def tensors(self, kv_head: int, step: int = 0) -> Dict[str, np.ndarray]:
        """Every tensor of (kv_head, step) by name; step −1 is the prefill
        (stage 1). Dtypes and shapes are docs/golden.md's table, e.g. q float32
        (G, d); k_cache, v_cache float32 (C, d), or (G, C, d) per head;
        cache_positions int32 (C,); page_min, page_max float32 (npages, d);
        dims int32 (r,); page_scores float64 (G, npages); token_scores
        float64 (C,); selected int32 (n,) or (G, n) padded with −1; out
        float32 (G, d); prefill: k_prompt float32 (S, d), q_window float32
        (G, w, d), votes and pooled float64 (S − w,), kept int32 (P,) — with
        a leading G axis where each head selects alone (snapkv). Each bounded
        tensor X has X_bound float64 of X's shape."""
        return {t["name"]: self.load(t["file"]) for t in self.manifest["tensors"]
                if t["kv_head"] == kv_head and t["step"] == step}

    def entries(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """The manifest's tensor entries (all, or those named `name`)."""
        return [t for t in self.manifest["tensors"] if name is None or t["name"] == name]


def load(path: str) -> Golden:
    """Opens a golden directory written by `kvsim golden` or kvsim.golden.write."""
    return Golden(path)


def write(path: str, model: str, method: str, budget: int, context: int, max_new: int = 50, layer: int = 0,
          kv_head: int = 0, steps: int = 1, seed: int = 1) -> Golden:
    """Writes a golden directory (kv_head=-1: every KV head) and opens it."""
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_golden_write(_lib.enc(model), _lib.enc(method), budget, context, max_new, layer, kv_head,
                                         steps, seed, _lib.enc(path), err), err)
    return Golden(path)


def compare(golden: Union[Golden, str], candidate: str, all_stages: bool = False, atol: float = 0.0) -> CompareResult:
    """Compares the candidate directory's tensors with the golden's (same
    relative paths, same dtypes and shapes as the golden's; docs/golden.md's
    rules: index sets exactly, floats within their bound plus atol). Tensors
    the candidate lacks are listed as missing (a failure with all_stages).
    Returns CompareResult, one StageResult per stage; KvsimError when the
    library cannot compare (no tensor at all, atol < 0, unreadable files)."""
    gpath = golden.path if isinstance(golden, Golden) else golden
    res = _lib.GldResult()
    err = _lib.err_buf()
    _lib.check(_lib.lib.kva_golden_compare(_lib.enc(gpath), _lib.enc(candidate), int(all_stages), float(atol),
                                           ctypes.byref(res), err), err)
    stages = [StageResult(s.name.decode(), s.tensors, s.checked, s.failed, s.missing, s.worst_ratio,
                          s.detail.decode(errors="replace")) for s in res.st[:res.nstages]]
    return CompareResult(bool(res.passed), res.checked, stages)
