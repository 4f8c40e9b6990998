#!/usr/bin/env python3
"""Per head class: mean attention statistics of real dumps against the fitted
workload over every (layer, query head) it generates.

`kvsim workload fit` fits each class on one synthetic (layer 0, KV head 0);
the workload generates every (layer, KV head) with its own keys, topics and
channel spectrum. This prints, per class of the workload's class_map, the mean
of each statistic over the heads of that class in the real profiles (the
dumps the fit read, or others) and in the synthetic profile, so the fit can be
judged on the population it generates, not only on the head it measured.

Usage:
  kvsim workload profile DUMP.kvd --context 2048 --json > real1.json      (one per dump)
  kvsim workload profile --workload smollm2-fitted --model smollm2-135m --context 2048 --json > syn.json
  python3 scripts/workload_class_stats.py refimpl/workloads/smollm2-fitted.yaml syn.json real1.json [real2.json ...]
"""
import json
import re
import sys

STATS = ["sink_mass", "local4_mass", "local_mass", "mid_mass", "early_mass", "far_topk", "topk16", "topk64",
         "sparq_share", "sparq_mass", "q_outlier", "hh_persist", "vote_recall"]


def class_map(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s+- \[(.*)\]\s+# layer", line)
        if m:
            rows.append([x.strip() for x in m.group(1).split(",")])
    if not rows:
        sys.exit(f"workload_class_stats: {path}: no class_map rows")
    return rows


def by_class(profiles, cmap):
    acc = {}
    for prof in profiles:
        for h in prof["heads"]:
            c = cmap[h["layer"]][h["head"]]
            a = acc.setdefault(c, {k: [] for k in STATS})
            for k in STATS:
                a[k].append(h[k])
    return {c: {k: sum(v) / len(v) for k, v in a.items()} for c, a in acc.items()}, \
        {c: len(a[STATS[0]]) for c, a in acc.items()}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    cmap = class_map(sys.argv[1])
    syn, nsyn = by_class([json.load(open(sys.argv[2], encoding="utf-8"))], cmap)
    real, nreal = by_class([json.load(open(p, encoding="utf-8")) for p in sys.argv[3:]], cmap)
    print("class       heads  " + "  ".join(f"{k:>17}" for k in STATS))
    print("(real / synthetic, mean over the class's heads)")
    for c in sorted(real):
        cells = "  ".join(f"{real[c][k]:8.3f}/{syn.get(c, {}).get(k, float('nan')):<8.3f}" for k in STATS)
        print(f"{c:<10} {nreal[c]:3d}/{nsyn.get(c, 0):<3d} {cells}")


if __name__ == "__main__":
    main()
