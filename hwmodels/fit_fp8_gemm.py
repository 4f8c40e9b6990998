#!/usr/bin/env python3
"""Fits hwmodels' FP8 GEMM curve (fp8_gemm_efficiency, fp8_gemm_k_half) to a
published table, independent of validation/: DeepGEMM's README
(github.com/deepseek-ai/DeepGEMM, commit a6d97a1, 2025-02-25, "Normal GEMMs
for dense models"), its six M = 4096 rows measured on an H800 (FP8 dense peak
1978.9 TFLOPS, 132 SMs; the M = 64 / 128 rows are memory bound and say nothing
about the tensor-core share). Model (hwmodels/hw.c hw_gemm_efficiency_dt):
    achieved / peak = e * K / (K + k_half) * tile_q(M, N) * wave_q(M, N)
with 128 x 128 output tiles, one per SM per wave. Grid search over k_half,
closed-form e minimising the squared relative error. Prints the two figures
and every row's error. Usage: python3 hwmodels/fit_fp8_gemm.py"""
import math

PEAK_TFLOPS = 1978.9
SMS = 132
# (M, N, K, achieved TFLOPS)
ROWS = [(4096, 2112, 7168, 1058), (4096, 24576, 1536, 990), (4096, 32768, 512, 590),
        (4096, 7168, 16384, 1358), (4096, 4096, 7168, 1304), (4096, 7168, 2048, 1025)]


def quant(m, n):
    tm, tn = math.ceil(m / 128), math.ceil(n / 128)
    tiles = tm * tn
    waves = math.ceil(tiles / SMS)
    return (m * n) / (tm * 128 * tn * 128) * tiles / (waves * SMS)


def fit():
    best = None
    for k_half in range(0, 4001):
        r = [k / (k + k_half) * quant(m, n) / (t / PEAK_TFLOPS) for m, n, k, t in ROWS]
        e = sum(r) / sum(x * x for x in r)
        err = sum((e * x - 1.0) ** 2 for x in r)
        if best is None or err < best[0]:
            best = (err, k_half, e)
    return best[2], best[1]


if __name__ == "__main__":
    e, k_half = fit()
    print(f"fp8_gemm_efficiency {e:.3f} fp8_gemm_k_half {k_half}")
    for m, n, k, t in ROWS:
        p = e * k / (k + k_half) * quant(m, n) * PEAK_TFLOPS
        print(f"M={m} N={n} K={k}: published {t} TFLOPS, curve {p:.0f} ({p / t - 1:+.1%})")
