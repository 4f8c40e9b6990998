#!/bin/sh
# reports/workload-fit/heads-context.txt: how the fitted profiles carry past
# their measured 2K context — each profile's mean statistics on SmolLM2's shape
# at 2K, 8K, 16K and 32K, and on Llama-3.1-8B's (layers 15 and 31) at 32K
# (header and mean row of `kvsim workload profile`).
# Usage: sh scripts/workload-context.sh [KVSIM [OUT]]
#   defaults: build/kvsim reports/workload-fit/heads-context.txt
set -eu
KVSIM=${1:-build/kvsim}
OUT=${2:-reports/workload-fit/heads-context.txt}
tmp=$OUT.tmp
: > "$tmp"
row() { # args of kvsim workload profile
    echo "\$ build/kvsim workload profile $*   # header and mean row" >> "$tmp"
    "$KVSIM" workload profile "$@" | grep -E '^layer|^ mean' >> "$tmp"
}
for w in smollm2-heads smollm2-fitted; do
    for c in 2048 8192 16384 32768; do row --workload $w --model smollm2-135m --context $c; done
done
for w in smollm2-heads smollm2-fitted; do row --workload $w --model llama3.1-8b --context 32768 --layers 15,31; done
mv "$tmp" "$OUT"
