#!/usr/bin/env python3
"""Fits hwmodels' FP8 GEMM curve (fp8_gemm_efficiency, fp8_gemm_k_half) to a
published table, independent of validation/: DeepGEMM's README
(github.com/deepseek-ai/DeepGEMM, commit a6d97a1, 2025-02-25, "Normal GEMMs
for dense models"), its six M = 4096 rows measured on an H800 (FP8 dense peak
1978.9 TFLOPS, 132 SMs; the M = 64 / 128 rows are memory bound and say nothing
about the tensor-core share). Model (hwmodels/hw.c hw_gemm_efficiency_dt):
    achieved / peak = e * K / (K + k_half) * tile_q(M, N) * wave_q(M, N)
with 128 x 128 output tiles, one per SM per wave. Grid search over k_half,
closed-form e minimising the squared relative error.
Then the read efficiency r (fp8_gemm_read_efficiency) from the same table's
twelve M = 64 / 128 rows, which are memory bound: kvsim's kernel time
(sim/step.c kern_at) is max(bytes / (BW * r * te), flops / (peak * curve)),
te = bytes / (bytes + BW * dram_latency) the transfer-size efficiency, bytes
= M*K + N*K (FP8 operands) + 2*M*N (BF16 output) as DeepGEMM counts them
(its GB/s column); r on a 0.001 grid minimising the squared relative error
of the time. Prints the three figures, then every row's error.
Usage: python3 hwmodels/fit_fp8_gemm.py"""
import math

PEAK_TFLOPS = 1978.9
SMS = 132
# (M, N, K, achieved TFLOPS)
ROWS = [(4096, 2112, 7168, 1058), (4096, 24576, 1536, 990), (4096, 32768, 512, 590),
        (4096, 7168, 16384, 1358), (4096, 4096, 7168, 1304), (4096, 7168, 2048, 1025)]

# (M, N, K, achieved TFLOPS): the memory-bound rows
SMALL = [(64, 2112, 7168, 206), (64, 24576, 1536, 289), (64, 32768, 512, 219), (64, 7168, 16384, 336),
         (64, 4096, 7168, 287), (64, 7168, 2048, 295), (128, 2112, 7168, 352), (128, 24576, 1536, 535),
         (128, 32768, 512, 358), (128, 7168, 16384, 645), (128, 4096, 7168, 533), (128, 7168, 2048, 510)]
BW = 3.35e12          # H800 HBM3, bytes/s (as h100-sxm's hbm_bandwidth_bytes_per_s)
DRAM_LATENCY = 6e-7   # h100-sxm's dram_latency_s


def quant(m, n, sms=SMS):
    """Tile and wave quantization of an M x N output on `sms` SMs."""
    if m < 128:  # skinny products: no quantization (hwmodels/hw.c tile_wave_q)
        return 1.0
    tm, tn = math.ceil(m / 128), math.ceil(n / 128)
    tiles = tm * tn
    waves = math.ceil(tiles / sms)
    return (m * n) / (tm * 128 * tn * 128) * tiles / (waves * sms)


def fit():
    best = None
    for k_half in range(0, 4001):
        r = [k / (k + k_half) * quant(m, n) / (t / PEAK_TFLOPS) for m, n, k, t in ROWS]
        e = sum(r) / sum(x * x for x in r)
        err = sum((e * x - 1.0) ** 2 for x in r)
        if best is None or err < best[0]:
            best = (err, k_half, e)
    return best[2], best[1]


def small_time(m, n, k, e, k_half, r):
    """kvsim's time for one product (seconds)."""
    b = m * k + n * k + 2 * m * n
    tm = b / (BW * r * (b / (b + BW * DRAM_LATENCY)))
    tc = 2 * m * n * k / (PEAK_TFLOPS * 1e12 * e * k / (k + k_half) * quant(m, n))
    return max(tm, tc)


def fit_read(e, k_half):
    best = None
    for ri in range(100, 1001):
        r = ri / 1000
        err = sum((small_time(m, n, k, e, k_half, r) / (2 * m * n * k / (t * 1e12)) - 1.0) ** 2
                  for m, n, k, t in SMALL)
        if best is None or err < best[0]:
            best = (err, r)
    return best[1]


if __name__ == "__main__":
    e, k_half = fit()
    e = round(e, 3)
    r = fit_read(e, k_half)
    print(f"fp8_gemm_efficiency {e:.3f} fp8_gemm_k_half {k_half} fp8_gemm_read_efficiency {r:.3f}")
    for m, n, k, t in ROWS:
        p = e * k / (k + k_half) * quant(m, n) * PEAK_TFLOPS
        print(f"M={m} N={n} K={k}: published {t} TFLOPS, curve {p:.0f} ({p / t - 1:+.1%})")
    for m, n, k, t in SMALL:
        p = 2 * m * n * k / small_time(m, n, k, e, k_half, r) / 1e12
        print(f"M={m} N={n} K={k}: published {t} TFLOPS, model {p:.0f} ({p / t - 1:+.1%})")
