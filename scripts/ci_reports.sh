#!/bin/sh
# CI: the committed sweep reports are what the code makes today. For each
# reports/NAME/ with a sweep.yaml: rerun the sweep (KVSIM_DATA=. as the
# report's README says) and compare it with the committed sweep.csv byte for
# byte, then rerun the report with the command its README records (its line
# "kvsim report --sweep ..."), into a temporary directory, and compare every
# text file it writes (README.md, *.dat, *.gp; the PNG/SVG renderings are
# gnuplot's) with the committed one, the temporary path read as the report's.
# A model change that moves a committed figure fails here until the report is
# regenerated. Usage: sh scripts/ci_reports.sh [build/kvsim]
set -eu
BIN=${1:-build/kvsim}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
D=$(mktemp -d /tmp/kvsim-ci-reports.XXXXXX)
trap 'rm -rf "$D"' EXIT
n=0
for Y in reports/*/sweep.yaml; do
    R=$(dirname "$Y")
    name=$(basename "$R")
    KVSIM_DATA=. "$BIN" sweep "$Y" --out "$D/$name.csv" >/dev/null
    cmp -s "$D/$name.csv" "$R/sweep.csv" || {
        echo "ci_reports.sh: $R/sweep.csv is not what '$Y' gives today; regenerate it (the commands in $R/README.md)" >&2
        diff "$R/sweep.csv" "$D/$name.csv" | head -5 >&2
        exit 1
    }
    cmd=$(grep -m 1 '^kvsim report --sweep ' "$R/README.md") || {
        echo "ci_reports.sh: $R/README.md records no 'kvsim report --sweep' command" >&2
        exit 1
    }
    # the recorded options, with --out pointed at the temporary directory
    # shellcheck disable=SC2086
    set -- ${cmd#kvsim report }
    args=""
    while [ $# -gt 0 ]; do
        if [ "$1" = "--out" ]; then args="$args --out $D/$name"; shift 2; continue; fi
        args="$args $1"; shift
    done
    # shellcheck disable=SC2086
    "$BIN" report $args >/dev/null
    for f in "$D/$name"/*; do
        b=$(basename "$f")
        case "$b" in *.png | *.svg) continue ;; esac
        sed "s#$D/$name#$R#g" "$f" >"$D/cmp"
        cmp -s "$D/cmp" "$R/$b" || {
            echo "ci_reports.sh: $R/$b is not what the report command in $R/README.md writes today; regenerate it" >&2
            diff "$R/$b" "$D/cmp" | head -5 >&2
            exit 1
        }
    done
    n=$((n + 1))
done
echo "ci_reports.sh: $n committed sweep reports regenerated, sweep.csv and every text file identical"
