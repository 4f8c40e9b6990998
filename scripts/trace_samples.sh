#!/bin/sh
# trace_samples.sh — regenerates the committed sample traces (traces/samples/),
# their expected `kvsim inspect --json` output, and the corrupt samples made
# from them (tests/data/traces/, except crash-* fuzzer finds). Run it after a
# deliberate format or KV_VERSION change, then review the diff.
#   sh scripts/trace_samples.sh [build/kvsim]
set -e
k=${1:-build/kvsim}
d=traces/samples
common="--model smollm2-135m --threads 2"
$k trace $common --method rocketkv --context 300 --budget 64 --steps 3 --layers 0,1 --batch 2 --with-fidelity --out $d/rocketkv.trc
$k trace $common --method quest --context 257 --budget 64 --steps 2 --layers 5 --dtype fp8-e4m3 --out $d/quest.trc
$k trace $common --method snapkv --context 300 --budget 96 --steps 2 --layers 0 --out $d/snapkv.trc
for s in rocketkv quest snapkv; do
    $k inspect $d/$s.trc --json > $d/$s.inspect.json
done
python3 scripts/trace_corrupt.py $d/rocketkv.trc tests/data/traces
