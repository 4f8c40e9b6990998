#!/usr/bin/env python3
"""Derives the L40S's mamf_fp8_flops (hwmodels/l40s.yaml) from a published
table, independent of validation/: vLLM pull request #6677 ("[Kernel] Tuned
FP8 Kernels for Ada Lovelace", github.com/vllm-project/vllm/pull/6677, merged
2024-07), its table "float8_e4m3fn meta-llama/Llama-2-7b-hf-TP1" measured on
one L40S: per product M x K x N (its "MKN" column), the best time of
torch._scaled_mm (cuBLASLt, with and without fast accumulation) and of the PR's
CUTLASS kernel, in microseconds. The PR's text shows the rows M = 1 ... 512
(the 4 Llama-2-7B products each); the rows used here are transcribed below.

Which rows measure the tensor cores: an FP8 product of M rows does 2*M FLOP
per weight byte it reads, so it is compute bound only when 2*M is above the
part's ridge point, 733e12 / 864e9 = 848 FLOP/byte: M >= 424. Only the
M = 512 rows qualify; below that a product reading its weights from DRAM is
memory bound (the benchmark repeats one product, so its weights may sit in
the 96 MB L2 and its time says little either way).

Model (hwmodels/hw.c hw_gemm_efficiency_dt, a part with mamf_fp8_flops and no
FP8 curve): the best kernel reaches mamf / peak * tile_q(M, N) * wave_q(M, N),
128 x 128 output tiles, one per SM per wave, 142 SMs. Least squares on the
relative error of those rows gives mamf / peak in closed form.
Usage: python3 hwmodels/fit_l40s_fp8.py"""
import os
import sys

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit_fp8_gemm  # noqa: E402  (the same tile and wave rule)

PEAK_TFLOPS = 733.0   # l40s.yaml fp8_dense_flops (datasheet, dense)
SMS = 142             # l40s.yaml sm_count
BW = 864e9            # l40s.yaml hbm_bandwidth_bytes_per_s
# (M, K, N, best of the table's two times in us)
ROWS = [(1, 4096, 12288, 15.40), (1, 4096, 4096, 8.60), (1, 4096, 22016, 44.90), (1, 11008, 4096, 15.70),
        (16, 4096, 12288, 16.60), (16, 4096, 4096, 8.80), (16, 4096, 22016, 49.50), (16, 11008, 4096, 16.70),
        (32, 4096, 12288, 18.10), (32, 4096, 4096, 9.70), (32, 4096, 22016, 44.00), (32, 11008, 4096, 19.40),
        (64, 4096, 12288, 22.30), (64, 4096, 4096, 12.70), (64, 4096, 22016, 56.10), (64, 11008, 4096, 26.50),
        (128, 4096, 12288, 37.90), (128, 4096, 4096, 18.40), (128, 4096, 22016, 94.80), (128, 11008, 4096, 43.90),
        (256, 4096, 12288, 85.20), (256, 4096, 4096, 26.50), (256, 4096, 22016, 169.40), (256, 11008, 4096, 70.10),
        (512, 4096, 12288, 139.60), (512, 4096, 4096, 45.50)]
# The last row's CUTLASS time was not transcribed (only the torch._scaled_mm column, 45.50 us, was
# read); the best of the two is at most that, so that row's TFLOPS is a lower bound.


def quant(m, n):
    return fit_fp8_gemm.quant(m, n, SMS)


def tflops(m, k, n, us):
    return 2 * m * n * k / (us * 1e-6) / 1e12


def compute_bound(m):
    return 2 * m > PEAK_TFLOPS * 1e12 / BW


def fit():
    r = [quant(m, n) / (tflops(m, k, n, us) / PEAK_TFLOPS) for m, k, n, us in ROWS if compute_bound(m)]
    return sum(r) / sum(x * x for x in r)


if __name__ == "__main__":
    e = fit()
    print(f"mamf_fp8_flops {e * PEAK_TFLOPS:.1f}e12 ({e:.3f} of the {PEAK_TFLOPS:.0f} TFLOPS dense peak)")
    for m, k, n, us in ROWS:
        t = tflops(m, k, n, us)
        tag = "fit" if compute_bound(m) else "memory bound, not fit"
        print(f"M={m} K={k} N={n}: {us} us = {t:.1f} TFLOPS; model best {e * quant(m, n) * PEAK_TFLOPS:.1f} ({tag})")
