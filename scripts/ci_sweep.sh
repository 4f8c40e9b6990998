#!/bin/sh
# CI: a small sweep run as 3 shards through GNU parallel, merged, checked
# against the unsharded run (byte for byte below the header comments), then
# a report from it (every plot file present). docs/sweep.md documents the
# same commands. Usage: sh scripts/ci_sweep.sh [build/kvsim]
set -eu
BIN=${1:-build/kvsim}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
command -v parallel >/dev/null 2>&1 || { echo "ci_sweep.sh: GNU parallel not found (sh scripts/deps.sh installs it)" >&2; exit 1; }
D=$(mktemp -d /tmp/kvsim-ci-sweep.XXXXXX)
trap 'rm -rf "$D"' EXIT
ARGS="--model smollm2-135m --hw h100-sxm,h200 --method full,rocketkv,quest,streaming --budget 128,256
      --context 512,1024 --batch 1,4 --workload builtin --steps 2 --layers 0 --threads 1"
N=3
# shell word splitting of $ARGS is intended
# shellcheck disable=SC2086
parallel --will-cite --halt now,fail=1 -j "$N" "$BIN" sweep $ARGS --shard {}/$N --out "$D/shard-{}.csv" ::: $(seq $N) >/dev/null
"$BIN" sweep --merge "$D"/shard-*.csv --out "$D/merged.csv" >/dev/null
# shellcheck disable=SC2086
"$BIN" sweep $ARGS --out "$D/all.csv" >/dev/null
grep -v "^#" "$D/merged.csv" >"$D/a"; grep -v "^#" "$D/all.csv" >"$D/b"
cmp -s "$D/a" "$D/b" || { echo "ci_sweep.sh: merged shards differ from the unsharded sweep" >&2; exit 1; }
"$BIN" report --sweep "$D/merged.csv" --out "$D/report" >/dev/null
for p in speedup_vs_budget speedup_vs_budget_methods memory_vs_context max_batch_vs_context fidelity_vs_budget \
         pareto pareto_memory roofline; do
    for e in png svg gp dat; do
        [ -s "$D/report/$p.$e" ] || { echo "ci_sweep.sh: $p.$e missing from the report" >&2; exit 1; }
    done
done
echo "ci_sweep.sh: $N shards through GNU parallel, merged = unsharded ($(grep -vc '^#' "$D/all.csv") lines), report complete"
