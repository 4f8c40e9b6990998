#!/bin/sh
# gpu_check.sh — the one GPU check: builds the kernels and the check driver
# with nvcc and cc only (no GSL, libyaml or OpenBLAS needed: the CPU
# reference it links is cuda/kcu_ref_host.c + common/kv_common.c, libc and
# libm), checks every kernel against that reference, runs the probes, times
# the fixed matrix, writes reports/gpu/<device>-<date>.json and prints a
# short table last. Exits non-zero if the build or any check fails.
#
#   sh cuda/gpu_check.sh            (or: make gpu-check)
#   KCU_BUILD_ONLY=1 sh cuda/gpu_check.sh    build only
#   KCU_QUICK=1 sh cuda/gpu_check.sh         32K / batch 1 only, 1 GiB probe
#   KCU_ARCH=sm_90 NVCC=... CC=... KCU_OUT_DIR=...   overrides
#
# Warnings do not fail this build (a different host compiler must not cost a
# GPU session); `make cuda` is where warnings are errors.
#
# Budget: meant to finish in well under 6 minutes on an H100 (the run itself
# is capped at 330 s by `timeout` where it exists).
set -eu
cd "$(dirname "$0")/.."

NVCC=${NVCC:-$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)}
CC=${CC:-$(command -v cc 2>/dev/null || command -v gcc 2>/dev/null || echo cc)}
OUT_DIR=${KCU_OUT_DIR:-reports/gpu}
B=build/gpu
if [ -z "${KCU_ARCH:-}" ]; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
    KCU_ARCH=sm_${cap:-90}
    [ "$KCU_ARCH" = "sm_" ] && KCU_ARCH=sm_90
fi
mkdir -p "$B" "$OUT_DIR"

echo "gpu_check.sh: building with $NVCC -arch=$KCU_ARCH"
t0=$(date +%s)
CFL="-std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Icommon -Icuda"
$CC $CFL -c cuda/kcu_ref_host.c -o "$B/kcu_ref_host.o"
$CC $CFL -c common/kv_common.c -o "$B/kv_common.o"
$CC $CFL -c common/kv_afile.c -o "$B/kv_afile.o"
for f in dense_decode hsa stage1 probes gpu_check; do
    rm -f "$B/$f.o"
    "$NVCC" -arch="$KCU_ARCH" -std=c++17 -O3 -Icommon -Icuda \
        -c "cuda/$f.cu" -o "$B/$f.o" &
done
wait
for f in dense_decode hsa stage1 probes gpu_check; do
    [ -s "$B/$f.o" ] || { echo "gpu_check.sh: cuda/$f.cu failed to compile" >&2; exit 1; }
done
"$NVCC" -arch="$KCU_ARCH" -o "$B/gpu_check" "$B/gpu_check.o" "$B/dense_decode.o" "$B/hsa.o" \
    "$B/stage1.o" "$B/probes.o" "$B/kcu_ref_host.o" "$B/kv_common.o" "$B/kv_afile.o" -lpthread -lm
echo "gpu_check.sh: built $B/gpu_check in $(( $(date +%s) - t0 )) s"
[ -n "${KCU_BUILD_ONLY:-}" ] && exit 0

SMI=""
if command -v nvidia-smi >/dev/null 2>&1; then
    SMI=$(nvidia-smi --query-gpu=name,pstate,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,driver_version \
        --format=csv 2>/dev/null | tr '\n' ';' || true)
fi
ARGS="--out-dir $OUT_DIR"
[ -n "${KCU_QUICK:-}" ] && ARGS="$ARGS --quick"
TO=""
command -v timeout >/dev/null 2>&1 && TO="timeout 330"
# shellcheck disable=SC2086
$TO "$B/gpu_check" $ARGS --smi "$SMI"
