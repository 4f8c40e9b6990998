#!/bin/sh
# bench.sh — runs every benchmark binary under $1/bench (make bench builds them).
# Each prints its own figures and the ceiling it is compared with.
dir=${1:-build}/bench
status=0
for b in "$dir"/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=1
done
exit $status
