/* wdtype.c — weight data types (sim.h sim_weight_dtype): bits per weight
 * with scales and zeros, and which peak the products run at.
 *
 * Sources of the layouts: gpt-fast quantize.py (int8 weight-only with a
 * bf16 scale per output channel; int4 with bf16 scales_and_zeros per group),
 * AutoAWQ / GPTQ (fp16 scale per group, zeros packed in 4 bits), llama.cpp
 * ggml-common.h block structs (q8_0: 32 weights in 34 bytes, q4_0: 18,
 * q4_1: 20, q5_0: 22, q5_1: 24; k-quants per 256: q2_k 84, q3_k 110,
 * q4_k 144, q5_k 176, q6_k 210 bytes), OCP MX spec (mxfp4: one 8-bit scale
 * per 32), NVIDIA NVFP4 (one fp8 scale per 16).
 *
 * Dequantisation work (dequant_ops, CUDA-core instructions per weight), read
 * off the kernels that run each type at batch 1:
 *   int8 weight-only: 1 — gpt-fast model.py WeightOnlyInt8Linear computes
 *     F.linear(x, weight.to(x.dtype)) * scales: one int8 -> bf16 conversion per
 *     weight, the scale once per output channel;
 *   int4-gN (gpt-fast's aten._weight_int4pack_mm, "tinygemm", pytorch
 *     aten/src/ATen/native/cuda/int4mm.cu): a 32-bit word holds 8 weights,
 *     turned into 4 bf16x2 pairs by 4 LOP3 (mask + magic exponent) and 4
 *     bf16x2 subtracts, then 4 bf16x2 FMAs apply scale and zero: 12 per 8 = 1.5;
 *   awq-gN / gptq-gN: the same unpack, convert, scale and zero: 1.5;
 *   GGUF q4_*, q5_*, k-quants: unpack nibbles (+ high bit), convert, scale: 1.5
 *     by the same count (ggml-cuda dequantize.cuh), q8_0: one conversion: 1
 *     (these two not checked against a measurement);
 *   bf16, fp16, fp8, int8-w8a8, nvfp4, mxfp4: 0 — the tensor cores take the
 *     stored type (W8A8 and FP8 quantise the activations instead: an
 *     elementwise pass over activations, not per weight). */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

const char sim_weight_dtype_help[] =
    "bf16, fp16, fp8, int8, int8-w8a8, int4-gN, awq-gN, gptq-gN, nvfp4, mxfp4, "
    "q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k";

typedef struct {
    const char *name;
    double bits;     /* fixed bits per weight (blocks included) */
    double scale_k;  /* extra bits per weight = scale_k / k (a per-channel scale over the reduction) */
    hw_dtype compute;
    double dequant;  /* CUDA-core instructions per weight (header comment) */
} fixed_type;

/* Dequantisation instructions per weight, from the header's kernel counts. */
#define DQ_INT8 1.0 /* one conversion */
#define DQ_INT4 1.5 /* 12 per 32-bit word of 8 nibbles */

static const fixed_type fixed[] = {
    {"bf16", 16.0, 0.0, HW_DT_BF16, 0.0},       {"fp16", 16.0, 0.0, HW_DT_BF16, 0.0},
    {"fp8", 8.0, 32.0, HW_DT_FP8, 0.0},         {"int8", 8.0, 16.0, HW_DT_BF16, DQ_INT8},
    {"int8-w8a8", 8.0, 32.0, HW_DT_INT8, 0.0},  {"nvfp4", 4.0 + 8.0 / 16.0, 0.0, HW_DT_FP4, 0.0},
    {"mxfp4", 4.0 + 8.0 / 32.0, 0.0, HW_DT_FP4, 0.0},
    {"q8_0", 34.0 * 8 / 32, 0.0, HW_DT_BF16, DQ_INT8},  {"q4_0", 18.0 * 8 / 32, 0.0, HW_DT_BF16, DQ_INT4},
    {"q4_1", 20.0 * 8 / 32, 0.0, HW_DT_BF16, DQ_INT4},  {"q5_0", 22.0 * 8 / 32, 0.0, HW_DT_BF16, DQ_INT4},
    {"q5_1", 24.0 * 8 / 32, 0.0, HW_DT_BF16, DQ_INT4},  {"q2_k", 84.0 * 8 / 256, 0.0, HW_DT_BF16, DQ_INT4},
    {"q3_k", 110.0 * 8 / 256, 0.0, HW_DT_BF16, DQ_INT4}, {"q4_k", 144.0 * 8 / 256, 0.0, HW_DT_BF16, DQ_INT4},
    {"q5_k", 176.0 * 8 / 256, 0.0, HW_DT_BF16, DQ_INT4}, {"q6_k", 210.0 * 8 / 256, 0.0, HW_DT_BF16, DQ_INT4},
};

/* "int4-g128" etc.: prefix, then a group size in [8, 8192] that is a power of two. */
static int grouped(const char *s, const char *prefix, int64_t *g)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return 0;
    kv_err e;
    if (kv_parse_i64_in("group size", s + n, 8, 8192, g, &e) != 0)
        return -1;
    return (*g & (*g - 1)) == 0 ? 1 : -1;
}

int sim_weight_dtype_parse(const char *s, double k, sim_weight_dtype *w, kv_err *err)
{
    memset(w, 0, sizeof *w);
    if (strlen(s) >= sizeof w->name)
        return kv_errf(err, "--weight-dtype: '%.40s' is not a weight type (%s)", s, sim_weight_dtype_help);
    snprintf(w->name, sizeof w->name, "%s", s);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(s, fixed[i].name)) {
            w->bits = fixed[i].bits + (k > 0.0 ? fixed[i].scale_k / k : 0.0);
            w->compute = fixed[i].compute;
            w->dequant_ops = fixed[i].dequant;
            return 0;
        }
    int64_t g = 0;
    int r;
    /* gpt-fast: bf16 scale and bf16 zero per group of g weights */
    if ((r = grouped(s, "int4-g", &g)) != 0) {
        if (r < 0) goto bad_group;
        w->bits = 4.0 + 32.0 / (double)g;
        w->compute = HW_DT_BF16;
        w->dequant_ops = DQ_INT4;
        return 0;
    }
    /* AWQ / GPTQ: fp16 scale and a 4-bit zero per group */
    if ((r = grouped(s, "awq-g", &g)) != 0 || (r = grouped(s, "gptq-g", &g)) != 0) {
        if (r < 0) goto bad_group;
        w->bits = 4.0 + 20.0 / (double)g;
        w->compute = HW_DT_BF16;
        w->dequant_ops = DQ_INT4;
        return 0;
    }
    return kv_errf(err, "--weight-dtype: unknown '%s' (expected one of: %s)", s, sim_weight_dtype_help);
bad_group:
    return kv_errf(err, "--weight-dtype: '%s': the group size must be a power of two in 8..8192", s);
}
