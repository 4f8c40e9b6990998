#!/usr/bin/env python3
"""positions_table.py — one markdown table from several `kvsim eval
--positions --json` files: a row per position bucket, a column per file
(its RoPE scaling), perplexity with its bootstrap interval.

usage: python3 scripts/positions_table.py A.json B.json ...
"""
import json
import sys


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    heads = []
    for r in runs:
        rs = r["rope_scaling"]
        heads.append("none" if rs["type"] == "none" else "%s x%g" % (rs["type"], rs["factor"]))
    print("| positions | tokens | " + " | ".join(heads) + " |")
    print("|---|---:|" + "---:|" * len(runs))
    rows = max(len(r["buckets"]) for r in runs)
    for i in range(rows):
        b0 = next(r["buckets"][i] for r in runs if i < len(r["buckets"]))
        cells = []
        for r in runs:
            if i < len(r["buckets"]):
                b = r["buckets"][i]
                cells.append("%.2f (%.2f–%.2f)" % (b["perplexity"], b["perplexity_ci"][0], b["perplexity_ci"][1]))
            else:
                cells.append("not run")
        print("| %d–%d | %d | %s |" % (b0["from"], b0["to"], b0["tokens"], " | ".join(cells)))


if __name__ == "__main__":
    main(sys.argv[1:])
