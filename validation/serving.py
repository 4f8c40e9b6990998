#!/usr/bin/env python3
"""validation/serving.py — kvsim serve against published serving measurements.

Reads validation/serving.csv (one published figure per row, with its source
and table, and `use`: fit when an engine constant was fitted to it, check
otherwise), runs `kvsim serve --json` once per configuration (same seed, the
row's engine, model, GPU, TP, rate and request count; rate `inf` = every
request at once, run as 1e5 req/s), and prints each figure, the simulation's,
and the relative error (sim - published) / published. Then the summary the
goal is stated in: median |error| of the latency percentiles below saturation
and the error of each saturation throughput.

    python3 validation/serving.py [--kvsim build/kvsim] [--seed 0]
"""
import argparse
import csv
import json
import statistics
import subprocess
import sys

KEYS = {"e2e_p50_ms": ("e2e_s", "p50", 1e3), "ttft_p50_ms": ("ttft_s", "p50", 1e3),
        "tpot_p50_ms": ("tpot_s", "p50", 1e3), "itl_p50_ms": ("itl_s", "p50", 1e3),
        "e2e_p95_ms": ("e2e_s", "p95", 1e3), "ttft_p95_ms": ("ttft_s", "p95", 1e3)}


def simulate(kvsim, row, seed, cache, engines=None):
    key = tuple(row[k] for k in ("engine", "model", "hw", "tp", "rate", "num_prompts", "prompt", "output"))
    if key not in cache:
        rate = "100000" if row["rate"] == "inf" else row["rate"]
        engine = f"{engines or 'validation/engines'}/{row['engine']}.yaml"
        cmd = [kvsim, "serve", "--engine", engine, "--model", row["model"], "--hw", row["hw"],
               "--tp", row["tp"], "--rate", rate, "--num-requests", row["num_prompts"], "--prompt", row["prompt"],
               "--output", row["output"], "--seed", str(seed), "--json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        cache[key] = json.loads(out)
    return cache[key]


def figure(sim, metric):
    if metric == "requests_per_s":
        return sim["requests_per_s"]
    k, p, scale = KEYS[metric]
    return sim[k][p] * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvsim", default="build/kvsim")
    ap.add_argument("--csv", default="validation/serving.csv")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", help="the folder of the rows' engine files (default validation/engines)")
    a = ap.parse_args()
    cache, lat, sat, held = {}, [], [], []
    print(f"{'id':28} {'metric':14} {'published':>10} {'kvsim':>10} {'error':>8}  use")
    with open(a.csv, newline="") as f:
        for row in csv.DictReader(f):
            pub = float(row["published"])
            got = figure(simulate(a.kvsim, row, a.seed, cache, a.engines), row["metric"])
            err = (got - pub) / pub
            (sat if row["metric"] == "requests_per_s" else lat).append(err)
            if row["metric"] != "requests_per_s" and row["use"] == "check":
                held.append(err)
            print(f"{row['id']:28} {row['metric']:14} {pub:10.2f} {got:10.2f} {100 * err:+7.1f}%  {row['use']}")
    med = statistics.median(abs(e) for e in lat)
    p95 = statistics.quantiles([abs(e) for e in lat], n=20, method="inclusive")[18]
    print(f"latency percentiles below saturation: median |error| {100 * med:.1f}% over {len(lat)} figures "
          f"(goal <= 15%: {'met' if med <= 0.15 else 'NOT met'}); 95th percentile of |error| {100 * p95:.1f}%")
    print(f"  of which the {len(held)} not used to fit any engine constant (use = check): median |error| "
          f"{100 * statistics.median(abs(e) for e in held):.1f}%")
    print("saturation throughput errors: " + ", ".join(f"{100 * e:+.1f}%" for e in sat) +
          f" (goal within 15%: {'met' if all(abs(e) <= 0.15 for e in sat) else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
