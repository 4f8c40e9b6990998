#!/bin/sh
# make bench: every benchmark binary under $BUILD/bench (built from
# tests/bench_*.c), then end-to-end timings of the kvsim binary itself. Each
# line prints a figure, its ceiling (measured in the same run) or goal, and
# the ratio. Medians of repetitions.
BUILD=${1:-build}
status=0
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=1
done
# kvsim fidelity wall time: Llama-3.1-8B, 32K, all 32 layers, 8 decode steps, both cores
echo "== kvsim fidelity"
times=""
for i in 1 2 3; do
    t0=$(date +%s.%N)
    "$BUILD"/kvsim fidelity --model llama3.1-8b --method rocketkv --budget 1024 --context 32K --steps 8 \
        --threads 2 >/dev/null 2>&1 || status=1
    t1=$(date +%s.%N)
    times="$times $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
done
med=$(echo $times | tr ' ' '\n' | sort -n | sed -n 2p)
echo "refimpl  kvsim fidelity (llama3.1-8b, 32K, rocketkv t=1024, 32 layers x 8 KV heads, 8 steps, 2 threads): median ${med} s of 3 runs (${times# })"
exit $status
