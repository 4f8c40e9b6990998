#!/bin/sh
# scripts/golden_f64_sweep.sh [KVSIM] — the float64 implementation
# (tests/golden_f64.py) against `kvsim golden` on 54 configurations: 3 models
# (G, d = 4, 128; 3, 64; 7, 128) x 6 methods x 3 seeds, contexts, budgets and
# the KV dtype (bf16, fp16, fp32, fp8-e4m3, fp8-e5m2 in turn) spread by a
# fixed rule, every KV head, 2 steps. Prints one line per
# configuration (verdict, worst |a-e|/bound) and exits 1 if any fails.
# docs/golden.md quotes its worst ratio. About 3 minutes on 2 cores.
set -u
K=${1:-build/kvsim}
dir=$(mktemp -d /tmp/kvsim-golden-sweep.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
i=0; bad=0
for model in llama3.1-8b smollm2-135m qwen2.5-7b; do
for method in rocketkv hsa snapkv snapkv-gqa streaming full; do
for seed in 1 2 3; do
    i=$((i + 1))
    ctx=$((300 + (seed * 337 + i * 53) % 1500)); bud=$((32 + (seed * 97 + i * 31) % 400))
    dt=$(echo bf16 fp16 fp32 fp8-e4m3 fp8-e5m2 | cut -d' ' -f$((i % 5 + 1)))
    rm -rf "$dir/g" "$dir/c"
    if ! "$K" golden --model $model --method $method --budget $bud --context $ctx --steps 2 --kv-head all \
            --seed $seed --dtype $dt --out "$dir/g" >/dev/null || ! python3 tests/golden_f64.py "$dir/g" "$dir/c"; then
        echo "$model $method seed $seed: golden or the float64 implementation failed"; bad=1; continue
    fi
    r=$("$K" compare "$dir/g" "$dir/c" --all-stages) || bad=1
    worst=$(echo "$r" | sed -n 's/.*worst |a-e|\/bound \([0-9.e+-]*\).*/\1/p' | sort -g | tail -1)
    echo "$model $method seed $seed S=$ctx t=$bud $dt: $(echo "$r" | tail -1), worst $worst"
done; done; done
exit $bad
