#!/bin/sh
# reports/workload-fit/: the held-out comparison of the fitted workload (and,
# for reference, the hand-tuned one) against real KV dumps of the held-out
# texts of refimpl/workloads/texts.tsv, with plots.
# Since session 10 also the measured-heads profile smollm2-heads (its plots in
# OUT/heads/, and with --seeds 3), and both fitted profiles on the check texts
# (role check: texts no choice has seen) when their dumps are in CHECKDIR, and
# since session 11 on the check2, check3 and check4 texts in build/dumpscheck2,
# build/dumpscheck3 and build/dumpscheck4 (session 12: check5, build/dumpscheck5).
# Usage: sh scripts/workload-fit-report.sh [KVSIM [DUMPDIR [OUT [CHECKDIR]]]]
#   defaults: build/kvsim build/dumps2k reports/workload-fit build/dumpscheck
# The dumps: sh scripts/workload-dumps.sh build/kvsim build/dumps2k 2080 heldout
#            sh scripts/workload-dumps.sh build/kvsim build/dumpscheck 2080 check
#            sh scripts/workload-dumps.sh build/kvsim build/dumpscheck2 2080 check2
#            sh scripts/workload-dumps.sh build/kvsim build/dumpscheck3 2080 check3
#            sh scripts/workload-dumps.sh build/kvsim build/dumpscheck4 2080 check4
#            sh scripts/workload-dumps.sh build/kvsim build/dumpscheck5 2080 check5
set -u
KVSIM=${1:-build/kvsim}
DUMPS=${2:-build/dumps2k}
OUT=${3:-reports/workload-fit}
CHECK=${4:-build/dumpscheck}
mkdir -p "$OUT" "$OUT/heads"
dumps_of() { # role dir: the dumps of the texts of that role present in dir
    for n in $(grep -v '^#' "$(dirname "$0")/../refimpl/workloads/texts.tsv" | awk -F'\t' -v r="$1" '$3 == r {print $1}'); do
        [ -f "$2/$n.kvd" ] && printf ' %s' "$2/$n.kvd"
    done
}
held=$(dumps_of heldout "$DUMPS")
[ -n "$held" ] || { echo "workload-fit-report: no held-out dumps in $DUMPS" >&2; exit 1; }
run() { # file command...: the command and its output into file
    f=$1
    shift
    { echo "\$ $*"; "$@"; echo "(exit $?)"; } > "$f" 2>&1
}
for w in smollm2-fitted smollm2-heads handtuned; do
    run "$OUT/compare-$w.txt" $KVSIM workload compare --workload $w$held --context 2048 --steps 32 --threads 2 --csv "$OUT/compare-$w.csv"
done
run "$OUT/compare-smollm2-heads-seeds3.txt" $KVSIM workload compare --workload smollm2-heads$held --context 2048 --steps 32 --threads 2 --seeds 3
sh "$(dirname "$0")/workload-fit-plots.sh" "$OUT/compare-smollm2-fitted.csv" "$OUT"
sh "$(dirname "$0")/workload-fit-plots.sh" "$OUT/compare-smollm2-heads.csv" "$OUT/heads"
for round in check check2 check3 check4 check5; do
    [ $round = check ] && dir=$CHECK || dir=build/dumps$round
    dumps=$(dumps_of $round "$dir")
    if [ -z "$dumps" ]; then
        echo "workload-fit-report: no $round dumps in $dir: compare-$round-*.txt not made" >&2
        continue
    fi
    for w in smollm2-heads smollm2-fitted; do
        run "$OUT/compare-$round-$w.txt" $KVSIM workload compare --workload $w$dumps --context 2048 --steps 32 --threads 2
    done
done
