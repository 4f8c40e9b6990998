#!/bin/sh
# The main job (make run): a Llama-3.1-8B-shaped synthetic workload at 32K
# context, RocketKV at budgets 256 / 1024 / 4096: the resolved parameters,
# then fidelity against dense attention over all 32 layers.
set -e
BIN=${1:-build/kvsim}
echo "== kvsim params --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K"
"$BIN" params --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K
echo
echo "== kvsim fidelity --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K --steps 8"
"$BIN" fidelity --model llama3.1-8b --method rocketkv --budget 256,1024,4096 --context 32K --steps 8
