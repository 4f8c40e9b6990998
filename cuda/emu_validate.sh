#!/bin/sh
# emu_validate.sh — the last step of the gpu-check rehearsal (make gpu-check-emu):
# `kvsim validate` reads the report the emulated gpu_check wrote, so a report
# from a real GPU is known to be one validate accepts before a GPU is lent.
#
#   sh cuda/emu_validate.sh KVSIM REPORT_DIR OUT.json
#
# The emulation runs no probes (their keys are null), so this fills them with
# REHEARSAL PLACEHOLDERS (4.0e12 B/s stream read, 4 µs launch, 2.5 µs graph
# launch: round numbers, not a calibration) in a copy beside OUT, and the rows
# priced are the time smoke's tiny shapes with emulation wall times. What it
# shows is not a figure: every timing row gpu_check writes — each `what`, both
# shapes (llama3.1-8b G = 4, llama3.1-70b G = 8), the rocketkv rows' page size,
# top-r, top-k and cache size, stage 1's configuration — is one validate
# accepts and prices (none skipped, none refused), and the step_v5 speedups pair.
set -eu
KVSIM=${1:?usage: emu_validate.sh KVSIM REPORT_DIR OUT.json}
DIR=${2:?usage: emu_validate.sh KVSIM REPORT_DIR OUT.json}
OUT=${3:?usage: emu_validate.sh KVSIM REPORT_DIR OUT.json}
rep=$(ls -t "$DIR"/*.json | head -n 1)
sed -e 's/"stream_read_bytes_per_s":null/"stream_read_bytes_per_s":4.0e12/' \
    -e 's/"gather":\[\]/"gather":null/' \
    -e 's/"launch_s":null/"launch_s":4e-6/' \
    -e 's/"launch_graph_s":null/"launch_graph_s":2.5e-6/' "$rep" >"$OUT.in.json"
"$KVSIM" validate "$OUT.in.json" --hw h200 --json >"$OUT"
for want in '"skipped_timings":0' '"model":"llama3.1-8b","method":"full","what":"step_v4"' \
    '"model":"llama3.1-70b","method":"full","what":"step_v5","kv_heads":8,"group":8' \
    '"model":"llama3.1-70b","method":"full","what":"step_v4","kv_heads":8,"group":8' \
    '"what":"stage1_v2"' '"what":"step_v5","base":"step_v4"'; do
    grep -q "$want" "$OUT" || { echo "emu_validate.sh: $OUT lacks $want" >&2; exit 1; }
done
rows=$(grep -o '"predicted_s"' "$OUT" | wc -l)
echo "emu_validate.sh: kvsim validate priced all $rows timing rows of $rep (placeholder probes; no figures)"
