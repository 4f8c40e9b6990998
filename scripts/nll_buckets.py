#!/usr/bin/env python3
"""nll_buckets.py — perplexity by position bucket from a raw array of
per-token negative log-likelihoods (little-endian float64, nll[i] predicts
token i+1), for a `kvsim eval --positions` pass that had to be stopped
before its end: its `nll` buffer read out of the running process with gdb
(reports/rope-context/README.md shows the commands). Same buckets and the
same two-stage bootstrap as kvsim (128-token blocks, then tokens; 95 %,
2000 resamples), with NumPy's generator (seed 1), so the intervals are
close to, not identical with, kvsim's.

Each run after the first also gets the paired ratio of its perplexity to
the first's (the interval of exp(mean(nll_run − nll_first)) over the same
resampled tokens).

usage: python3 scripts/nll_buckets.py LABEL=FILE.f64 ... [--ends=1024,2048,...]
"""
import sys

import numpy as np


def boot(x, rng, resamples=2000, block=128):
    starts = list(range(0, len(x), block))
    groups = [x[s:s + block] for s in starts]
    stats = np.empty(resamples)
    for b in range(resamples):
        pick = rng.integers(0, len(groups), len(groups))
        tot, cnt = 0.0, 0
        for g in pick:
            v = groups[g]
            tot += v[rng.integers(0, len(v), len(v))].sum()
            cnt += len(v)
        stats[b] = tot / cnt
    return np.quantile(stats, 0.025), np.quantile(stats, 0.975)


def main(argv):
    ends = [1024, 2048, 4096, 8192, 10240, 12288, 14336, 16384]
    runs = []
    for a in argv:
        if a.startswith("--ends="):
            ends = [int(v) for v in a[7:].split(",")]
        else:
            label, path = a.split("=", 1)
            runs.append((label, np.fromfile(path, dtype="<f8")))
    rest = runs[1:]
    print("| positions | tokens | " + " | ".join(l for l, _ in runs) + "".join(
        " | %s / %s" % (l, runs[0][0]) for l, _ in rest) + " |")
    print("|---|---:|" + "---:|" * (len(runs) + len(rest)))
    lo = 0
    reach = min(len(nll) for _, nll in runs)  # a bucket is cut where the shortest pass stopped
    for e in ends:
        hi = min(e - 1, reach)
        if hi - lo < 128:
            break
        cells, cnt = [], 0
        for _, nll in runs:
            x = nll[lo:hi]
            cnt = len(x)
            a, b = boot(x, np.random.default_rng(1))
            cells.append("%.2f (%.2f–%.2f)" % (np.exp(x.mean()), np.exp(a), np.exp(b)))
        base = runs[0][1][lo:hi]
        for _, nll in rest:  # paired: the same resampled tokens in both passes
            d = nll[lo:hi] - base
            a, b = boot(d, np.random.default_rng(1))
            cells.append("%.3f (%.3f–%.3f)" % (np.exp(d.mean()), np.exp(a), np.exp(b)))
        if cnt == 0:
            break
        print("| %d–%d | %d | %s |" % (lo + 1, hi, cnt, " | ".join(cells)))
        lo = hi


if __name__ == "__main__":
    main(sys.argv[1:])
