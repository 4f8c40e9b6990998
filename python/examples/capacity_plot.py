#!/usr/bin/env python3
"""Capacity plot: the largest batch that fits on one GPU against context, per
method, from kvsim.plan.   python3 examples/capacity_plot.py [OUT.png]"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import kvsim  # noqa: E402

MODEL, HW, BUDGET = "llama3.1-8b", "h100-sxm", 1024
CONTEXTS = [4096, 8192, 16384, 32768, 65536, 131072 - 64]


def main(out="capacity.png"):
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = {}
    for method in ("full", "snapkv-gqa", "rocketkv"):
        rows[method] = [kvsim.plan(MODEL, HW, method, BUDGET, c)["max_batch"] for c in CONTEXTS]
        ax.plot(CONTEXTS, rows[method], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel("largest batch that fits")
    ax.set_title("%s on %s, budget %d" % (MODEL, HW, BUDGET))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return rows


if __name__ == "__main__":
    for m, r in main(*sys.argv[1:]).items():
        print(m, r)
