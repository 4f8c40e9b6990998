#!/bin/sh
# Runs every benchmark binary under BUILD/bench (make bench builds them from
# tests/bench_*.c); each prints its figures and their ratio to a goal or ceiling.
build=${1:-build}
status=0
for b in "$build"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=1
done
exit $status
