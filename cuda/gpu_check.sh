#!/bin/sh
# gpu_check.sh — the one GPU check: builds the kernels and the check driver
# with nvcc and cc only (no GSL, libyaml or OpenBLAS needed: the CPU
# reference it links is cuda/kcu_ref_host.c + common/kv_common.c + kv_afile.c, libc,
# libm and pthreads), checks every kernel against that reference, runs the small checks
# under compute-sanitizer (memcheck, racecheck, synccheck, initcheck) when
# it is installed, runs the probes, times the fixed matrix, writes
# reports/gpu/<device>-<date>.json (what `kvsim validate` reads), the
# sanitizer logs beside it, and prints a short table last. Exits non-zero
# if the build, any check or any sanitizer run fails.
#
#   sh cuda/gpu_check.sh            (or: make gpu-check)
#   KCU_BUILD_ONLY=1 sh cuda/gpu_check.sh    build only
#   KCU_QUICK=1 sh cuda/gpu_check.sh         32K / batch 1 only, 1 GiB probe
#   KCU_EMU=1 sh cuda/gpu_check.sh           the same steps with the kernels
#       built by the host C++ compiler against kcu_emu.h (no GPU; checks and
#       every timed graph once at tiny shapes, into build/gpu-emu/): the
#       rehearsal CI runs (make gpu-check-emu)
#   KCU_ONLY=NAME sh cuda/gpu_check.sh       only the checks whose name holds NAME
#       (gpu_check --only; the timed part is unchanged). CI's rehearsal runs one
#       check this way: make cuda-emu-asan has run them all, stricter, just before
#   KCU_ARCH=sm_90 NVCC=... CC=... CXX=... KCU_OUT_DIR=...   overrides
#
# A bare machine: if cc, c++ or make is missing and apt-get or dnf exists,
# they are installed first (root, or sudo without a password).
#
# Warnings do not fail this build (a different host compiler must not cost a
# GPU session); `make cuda` is where warnings are errors.
#
# Budget: under 6 minutes on an H100/H200: build ~1 min (twelve nvcc jobs in
# parallel), sanitizers on the small checks ≤ 160 s (4 × 40 s, capped), the
# run itself capped at 300 s by `timeout` where it exists. Its timed part is
# 336 CUDA graphs — 6 (context, batch) × (5 dense at G = 4 + dense v4 and v5
# at G = 8 + 3 budgets × 16 stage-2 graphs) + 3 contexts × 2 stage-1 graphs
# (select v1, v2) — each launched 23 times (20 timed after 3 warm-ups; stage 1
# 13): ~7,700 launches, each after
# a 2×L2 memset; at most ~1.3 ms each (dense at 128K, batch 8, ~1.1 ms
# estimated, + flush + event sync) so ≤ 10 s, ~2–3 s expected. The rest of
# the run is the checks' CPU reference and the device fills.
set -eu
cd "$(dirname "$0")/.."

need_tools() {
    miss=""
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || miss="$miss gcc"
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || miss="$miss g++"
    command -v make >/dev/null 2>&1 || miss="$miss make"
    [ -z "$miss" ] && return 0
    SUDO=""
    [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
    echo "gpu_check.sh: installing$miss"
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$miss
    elif command -v dnf >/dev/null 2>&1; then
        $SUDO dnf install -y -q $(echo "$miss" | sed 's/g++/gcc-c++/')
    else
        echo "gpu_check.sh: missing$miss and no apt-get/dnf to install them" >&2
        exit 1
    fi
}
need_tools

CC=${CC:-$(command -v cc 2>/dev/null || command -v gcc 2>/dev/null || echo cc)}
CXX=${CXX:-$(command -v g++ 2>/dev/null || command -v c++ 2>/dev/null || echo g++)}
CFL="-std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Icommon -Icuda"
SRCS="dense_decode dense_decode_v5 hsa hsa_score_v2 hsa_score_v3 hsa_select_v4 stage1 probes gpu_check dense_decode_check hsa_check stage1_check"
t0=$(date +%s)

if [ -n "${KCU_EMU:-}" ]; then
    B=build/gpu-emu
    OUT_DIR=${KCU_OUT_DIR:-$B/reports}
    mkdir -p "$B" "$OUT_DIR"
    echo "gpu_check.sh: emulation build with $CXX (kcu_emu.h)"
    $CC $CFL -c cuda/kcu_ref_host.c -o "$B/kcu_ref_host.o"
    $CC $CFL -c common/kv_common.c -o "$B/kv_common.o"
    $CC $CFL -c common/kv_afile.c -o "$B/kv_afile.o"
    for f in $SRCS; do
        [ "$B/$f.o" -nt "cuda/$f.cu" ] && [ -z "$(find cuda -name '*.h' -newer "$B/$f.o")" ] && \
            [ -z "$(find cuda -name '*.cuh' -newer "$B/$f.o")" ] && continue
        rm -f "$B/$f.o"
        "$CXX" -std=c++20 -O2 -DKCU_EMU -Icommon -Icuda -x c++ -c "cuda/$f.cu" -o "$B/$f.o" &
    done
    wait
    for f in $SRCS; do
        [ -s "$B/$f.o" ] || { echo "gpu_check.sh: cuda/$f.cu failed to compile" >&2; exit 1; }
    done
    objs=""
    for f in $SRCS; do objs="$objs $B/$f.o"; done
    # shellcheck disable=SC2086
    "$CXX" -rdynamic -o "$B/gpu_check" $objs "$B/kcu_ref_host.o" "$B/kv_common.o" "$B/kv_afile.o" -lpthread -lm
    echo "gpu_check.sh: built $B/gpu_check in $(( $(date +%s) - t0 )) s"
    [ -n "${KCU_BUILD_ONLY:-}" ] && exit 0
    # launch limits with ptxas's register counts (make cuda-audit writes them)
    if [ -z "${KCU_EMU_REGS:-}" ] && [ -f reports/cuda-audit/registers.txt ]; then
        KCU_EMU_REGS=reports/cuda-audit/registers.txt
        export KCU_EMU_REGS
    fi
    # --time-smoke: every timed graph once at tiny shapes (timing code and report rows; no figures)
    "$B/gpu_check" --out-dir "$OUT_DIR" --time-smoke ${KCU_ONLY:+--only "$KCU_ONLY"} || exit $?
    rep=$(ls -t "$OUT_DIR"/*.json | head -n 1)
    # the report carries timing rows of both timed shapes, each naming its model (kvsim validate prices each)
    for shape in '"model":"llama3.1-8b","kv_heads":8,"group":4,"head_dim":128' \
                 '"model":"llama3.1-70b","kv_heads":8,"group":8,"head_dim":128'; do
        grep -q "$shape" "$rep" || { echo "gpu_check.sh: $rep has no timing row with $shape" >&2; exit 1; }
    done
    echo "gpu_check.sh: $rep has timing rows of both shapes (llama3.1-8b G = 4, llama3.1-70b G = 8)"
    exit 0
fi

NVCC=${NVCC:-$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)}
OUT_DIR=${KCU_OUT_DIR:-reports/gpu}
B=build/gpu
if [ -z "${KCU_ARCH:-}" ]; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
    KCU_ARCH=sm_${cap:-90}
    [ "$KCU_ARCH" = "sm_" ] && KCU_ARCH=sm_90
fi
mkdir -p "$B" "$OUT_DIR"

echo "gpu_check.sh: building with $NVCC -arch=$KCU_ARCH"
$CC $CFL -c cuda/kcu_ref_host.c -o "$B/kcu_ref_host.o"
$CC $CFL -c common/kv_common.c -o "$B/kv_common.o"
$CC $CFL -c common/kv_afile.c -o "$B/kv_afile.o"
for f in $SRCS; do
    rm -f "$B/$f.o"
    # -lineinfo: compute-sanitizer reports name source lines
    "$NVCC" -arch="$KCU_ARCH" -std=c++17 -O3 -lineinfo -Icommon -Icuda \
        -c "cuda/$f.cu" -o "$B/$f.o" &
done
wait
for f in $SRCS; do
    [ -s "$B/$f.o" ] || { echo "gpu_check.sh: cuda/$f.cu failed to compile" >&2; exit 1; }
done
objs=""
for f in $SRCS; do objs="$objs $B/$f.o"; done
# shellcheck disable=SC2086
"$NVCC" -arch="$KCU_ARCH" -o "$B/gpu_check" $objs "$B/kcu_ref_host.o" "$B/kv_common.o" "$B/kv_afile.o" -lpthread -lm
echo "gpu_check.sh: built $B/gpu_check in $(( $(date +%s) - t0 )) s"
[ -n "${KCU_BUILD_ONLY:-}" ] && exit 0

TO=""
command -v timeout >/dev/null 2>&1 && TO="timeout"

# compute-sanitizer on the small checks (the emulation's list: --small):
# the toolkit's, else PyPI's nvidia-cuda-sanitizer-api if already installed.
SAN=$(command -v compute-sanitizer 2>/dev/null || ls "$(dirname "$NVCC")/compute-sanitizer" 2>/dev/null || true)
san_rc=0
if [ -n "$SAN" ]; then
    for tool in memcheck racecheck synccheck initcheck; do
        log="$OUT_DIR/sanitizer-$tool.log"
        # shellcheck disable=SC2086
        if ${TO:+$TO 40} "$SAN" --tool "$tool" --error-exitcode 3 --print-limit 20 \
            "$B/gpu_check" --small --checks-only --out "$B/san-$tool.json" >"$log" 2>&1; then
            echo "gpu_check.sh: compute-sanitizer $tool: clean ($log)"
        else
            echo "gpu_check.sh: compute-sanitizer $tool: FAILED or timed out ($log)" >&2
            tail -n 20 "$log" >&2 || true
            san_rc=1
        fi
    done
else
    echo "gpu_check.sh: compute-sanitizer not found (toolkit bin/ or PATH); sanitizer runs skipped" >&2
    echo "compute-sanitizer not found" >"$OUT_DIR/sanitizer-missing.log"
fi

SMI=""
if command -v nvidia-smi >/dev/null 2>&1; then
    SMI=$(nvidia-smi --query-gpu=name,pstate,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,driver_version \
        --format=csv 2>/dev/null | tr '\n' ';' || true)
fi
ARGS="--out-dir $OUT_DIR"
[ -n "${KCU_QUICK:-}" ] && ARGS="$ARGS --quick"
rc=0
# shellcheck disable=SC2086
${TO:+$TO 300} "$B/gpu_check" $ARGS ${KCU_ONLY:+--only "$KCU_ONLY"} --smi "$SMI" || rc=$?
[ "$san_rc" != 0 ] && echo "gpu_check.sh: a sanitizer run failed (see $OUT_DIR/sanitizer-*.log)" >&2
[ "$rc" != 0 ] && exit "$rc"
exit "$san_rc"
