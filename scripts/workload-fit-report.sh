#!/bin/sh
# reports/workload-fit/: the held-out comparison of the fitted workload (and,
# for reference, the hand-tuned one) against real KV dumps of the held-out
# texts of refimpl/workloads/texts.tsv, with plots.
# Usage: sh scripts/workload-fit-report.sh [KVSIM [DUMPDIR [OUT]]]
#   defaults: build/kvsim build/dumps2k reports/workload-fit
# The dumps: sh scripts/workload-dumps.sh build/kvsim build/dumps2k 2080 heldout
set -u
KVSIM=${1:-build/kvsim}
DUMPS=${2:-build/dumps2k}
OUT=${3:-reports/workload-fit}
mkdir -p "$OUT"
held=""
for n in $(grep -v '^#' "$(dirname "$0")/../refimpl/workloads/texts.tsv" | awk -F'\t' '$3 == "heldout" {print $1}'); do
    [ -f "$DUMPS/$n.kvd" ] && held="$held $DUMPS/$n.kvd"
done
[ -n "$held" ] || { echo "workload-fit-report: no held-out dumps in $DUMPS" >&2; exit 1; }
for w in smollm2-fitted handtuned; do
    cmd="$KVSIM workload compare --workload $w$held --context 2048 --steps 32 --threads 2 --csv $OUT/compare-$w.csv"
    { echo "\$ $cmd"; $cmd; echo "(exit $?)"; } > "$OUT/compare-$w.txt" 2>&1
done
sh "$(dirname "$0")/workload-fit-plots.sh" "$OUT/compare-smollm2-fitted.csv" "$OUT"
