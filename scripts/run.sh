#!/bin/sh
# The main job (make run), on a Llama-3.1-8B-shaped synthetic workload at 32K
# context: RocketKV's resolved parameters at budgets 256 / 1024 / 4096, their
# fidelity against dense attention over all 32 layers, an exact access trace
# of the 1024 budget, and the H100 prediction priced from that trace.
set -e
BIN=${1:-build/kvsim}
OUT=${2:-build/run}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }
say "kvsim params --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K"
"$BIN" params --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K
say "kvsim fidelity --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K --steps 8"
"$BIN" fidelity --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K --steps 8
say "kvsim trace --model llama3.1-8b --method rocketkv --budget 1024 --context 32K --steps 8 --out $OUT/rocketkv-32k-1024.kvtrace"
"$BIN" trace --model llama3.1-8b --method rocketkv --budget 1024 --context 32K --steps 8 --out "$OUT/rocketkv-32k-1024.kvtrace"
say "kvsim inspect $OUT/rocketkv-32k-1024.kvtrace (totals)"
"$BIN" inspect "$OUT/rocketkv-32k-1024.kvtrace" | sed -n '/^per decode step/,$p'
say "kvsim predict --trace $OUT/rocketkv-32k-1024.kvtrace --hw h100-sxm"
"$BIN" predict --trace "$OUT/rocketkv-32k-1024.kvtrace" --hw h100-sxm
