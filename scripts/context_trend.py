#!/usr/bin/env python3
"""context_trend.py — how real attention statistics move with the context:
tables from `kvsim workload profile DUMP --context C --json` outputs taken
at several contexts C of one dump (reports/rope-context/ shows the commands).

For every statistic, the mean over all (layer, query head) rows of each
file, and, for the last file, two predictions made from the others only:
  trend   — the least-squares line in log2(C) through the earlier contexts,
            evaluated at the last context (does the last context continue
            the trend?);
  fixed   — sink and local mass under the fixed-logit assumption of
            docs/workload.md, per head from the first file: the mass neither
            on sinks nor on the newest 64 keys grows in proportion to C,
            renormalised, then averaged over heads.
A third table splits sink and local mass and top-64 mass by layer band.

usage: python3 scripts/context_trend.py PROFILE.json ... (increasing --context)
"""
import json
import math
import sys

TOPK = ["topk1", "topk4", "topk16", "topk64", "topk256", "topk1024", "topk4096"]
STATS = ["entropy", "sink_mass", "local_mass", "recent_topk", "hh_persist", "vote_mass", "vote_recall",
         "page_recall", "page_gap", "k_page_spread", "sparq_share", "k_outlier", "q_outlier"]
BANDS = [(0, 11), (12, 29)]


def mean(rows, key, pick=lambda r: True):
    v = [r[key] for r in rows if pick(r)]
    return sum(v) / len(v)


def fit_line(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    return my - b * mx, b


def fixed_logit(first, c0, c):
    """sink and local mass at context c from each head's figures at c0."""
    ps, pl = [], []
    for r in first:
        s, l = r["sink_mass"], r["local_mass"]
        rest = max(0.0, 1.0 - s - l) * c / c0
        z = s + l + rest
        ps.append(s / z)
        pl.append(l / z)
    return sum(ps) / len(ps), sum(pl) / len(pl)


def label(c):
    return "%dK" % (c // 1024) if c % 1024 == 0 else str(c)


def table(keys, docs, ctx, fmt="%.3f"):
    lines = ["| statistic | " + " | ".join(label(c) for c in ctx) + " | trend → %s | last − trend |" % label(ctx[-1]),
             "|---|" + "---:|" * (len(ctx) + 2)]
    xs = [math.log2(c) for c in ctx[:-1]]
    for k in keys:
        vals = [mean(d["heads"], k) for d in docs]
        if len(ctx) >= 3:
            a, b = fit_line(xs, vals[:-1])
            pred = a + b * math.log2(ctx[-1])
            tail = " | " + fmt % pred + " | %+.3f |" % (vals[-1] - pred)
        else:
            tail = " | - | - |"
        lines.append("| `%s` | " % k + " | ".join(fmt % v for v in vals) + tail)
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    docs = [json.load(open(p)) for p in argv]
    ctx = [d["context"] for d in docs]
    if any(b <= a for a, b in zip(ctx, ctx[1:])):
        sys.exit("contexts must increase: %s" % ctx)
    print("Means over %d (layer, query head) rows; window %d, %d decode steps.\n"
          % (len(docs[0]["heads"]), docs[0]["window"], docs[0]["steps"]))
    print("Top-k mass curve:\n")
    print(table(TOPK, docs, ctx))
    print("\nOther statistics:\n")
    print(table(STATS, docs, ctx))
    print("\nFixed-logit prediction from the %s heads (sink / local):\n" % label(ctx[0]))
    print("| context | measured sink | fixed-logit sink | measured local | fixed-logit local |")
    print("|---|---:|---:|---:|---:|")
    for d, c in zip(docs, ctx):
        s, l = fixed_logit(docs[0]["heads"], ctx[0], c)
        print("| %s | %.3f | %.3f | %.3f | %.3f |" % (label(c), mean(d["heads"], "sink_mass"), s,
                                                      mean(d["heads"], "local_mass"), l))
    print("\nBy layer band (sink / local / top-64 mass):\n")
    print("| context | " + " | ".join("layers %d–%d" % b for b in BANDS) + " |")
    print("|---|" + "---|" * len(BANDS))
    for d, c in zip(docs, ctx):
        cells = []
        for lo, hi in BANDS:
            pick = lambda r, lo=lo, hi=hi: lo <= r["layer"] <= hi
            cells.append("%.3f / %.3f / %.3f" % (mean(d["heads"], "sink_mass", pick), mean(d["heads"], "local_mass", pick),
                                                 mean(d["heads"], "topk64", pick)))
        print("| %s | %s |" % (label(c), " | ".join(cells)))


if __name__ == "__main__":
    main(sys.argv[1:])
