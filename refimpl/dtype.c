/* dtype.c — KV storage formats: bf16, fp16, fp32, fp8 e4m3 and e5m2, with
 * round-to-nearest-even conversion from fp32.
 *
 * Narrow formats are converted by one generic rule (round_to_format): scale
 * the value to the format's quantum with frexp/ldexp (exact in double) and
 * round with nearbyint under the default round-to-nearest-even mode. Bit
 * patterns are then assembled from the exact rounded value. bf16 uses the
 * usual bias trick, which is the same rounding. No tables, no fast paths that
 * could disagree with the rule. */
#include "rkv.h"

#include <fenv.h>
#include <math.h>
#include <string.h>

static const char *const dtype_names[] = {"bf16", "fp16", "fp32", "fp8-e4m3", "fp8-e5m2"};

size_t rkv_dtype_bytes(rkv_dtype t)
{
    switch (t) {
    case RKV_DTYPE_BF16:
    case RKV_DTYPE_FP16: return 2;
    case RKV_DTYPE_FP32: return 4;
    case RKV_DTYPE_FP8_E4M3:
    case RKV_DTYPE_FP8_E5M2: return 1;
    }
    return 0;
}

const char *rkv_dtype_name(rkv_dtype t)
{
    return (unsigned)t < 5 ? dtype_names[t] : "?";
}

int rkv_dtype_parse(const char *s, rkv_dtype *t)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, dtype_names[i])) {
            *t = (rkv_dtype)i;
            return 0;
        }
    if (!strcmp(s, "e4m3")) { *t = RKV_DTYPE_FP8_E4M3; return 0; }
    if (!strcmp(s, "e5m2")) { *t = RKV_DTYPE_FP8_E5M2; return 0; }
    return -1;
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t rkv_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign, force a quiet mantissa bit */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float rkv_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* Rounds |x| (finite, >= 0) to a binary format with `mant` explicit mantissa
 * bits and minimum normal exponent emin (value = 1.m · 2^e, e >= emin;
 * subnormals below). Returns the exact rounded value in double. */
static double round_to_format(double ax, int mant, int emin)
{
    if (ax == 0.0)
        return 0.0;
    int e;
    frexp(ax, &e); /* ax = f · 2^e, f in [0.5, 1) => unbiased exponent e-1 */
    int ue = e - 1;
    if (ue < emin)
        ue = emin;
    double q = ldexp(1.0, ue - mant); /* the quantum at this exponent */
    return nearbyint(ax / q) * q;
}

/* Encodes a rounded non-negative value into (exp field, mantissa field). */
static uint32_t encode_small(double r, int mant, int emin, int bias)
{
    if (r == 0.0)
        return 0;
    const int ue = ilogb(r); /* r = 1.m × 2^ue */
    if (ue < emin) /* subnormal: exponent field 0 */
        return (uint32_t)(r / ldexp(1.0, emin - mant));
    uint32_t m = (uint32_t)((r / ldexp(1.0, ue) - 1.0) * (double)(1u << mant));
    return ((uint32_t)(ue + bias) << mant) | m;
}

uint16_t rkv_f32_to_fp16(float x)
{
    uint16_t sign = (f32_bits(x) >> 16) & 0x8000u;
    if (isnan(x))
        return sign | 0x7e00u;
    double ax = fabs((double)x);
    double r = round_to_format(ax, 10, -14);
    if (r > 65504.0)
        return sign | 0x7c00u; /* overflow to infinity (IEEE) */
    return sign | (uint16_t)encode_small(r, 10, -14, 15);
}

float rkv_fp16_to_f32(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 1024.0, e - 15);
    return (float)(s ? -v : v);
}

/* e4m3 (OCP "FN" variant): bias 7, no infinities, 0x7f/0xff are NaN, max 448.
 * Out-of-range finite values and infinities saturate to ±448. */
uint8_t rkv_f32_to_e4m3(float x)
{
    uint8_t sign = (f32_bits(x) >> 24) & 0x80u;
    if (isnan(x))
        return sign | 0x7fu;
    double ax = fabs((double)x);
    double r = isinf(x) ? 448.0 : round_to_format(ax, 3, -6);
    if (r > 448.0)
        r = 448.0;
    return sign | (uint8_t)encode_small(r, 3, -6, 7);
}

float rkv_e4m3_to_f32(uint8_t b)
{
    int s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
    double v;
    if (e == 15 && m == 7)
        v = NAN;
    else if (e == 0)
        v = ldexp((double)m, -9);
    else
        v = ldexp(1.0 + m / 8.0, e - 7);
    return (float)(s ? -v : v);
}

/* e5m2: bias 15, IEEE-like with infinities; max finite 57344. */
uint8_t rkv_f32_to_e5m2(float x)
{
    uint8_t sign = (f32_bits(x) >> 24) & 0x80u;
    if (isnan(x))
        return sign | 0x7eu;
    if (isinf(x))
        return sign | 0x7cu;
    double r = round_to_format(fabs((double)x), 2, -14);
    if (r > 57344.0)
        return sign | 0x7cu;
    return sign | (uint8_t)encode_small(r, 2, -14, 15);
}

float rkv_e5m2_to_f32(uint8_t b)
{
    int s = b >> 7, e = (b >> 2) & 0x1f, m = b & 3;
    double v;
    if (e == 0)
        v = ldexp((double)m, -16);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1.0 + m / 4.0, e - 15);
    return (float)(s ? -v : v);
}

void rkv_encode(rkv_dtype t, const float *src, size_t n, void *dst)
{
    switch (t) {
    case RKV_DTYPE_BF16: {
        uint16_t *o = dst;
        for (size_t i = 0; i < n; i++) o[i] = rkv_f32_to_bf16(src[i]);
        break;
    }
    case RKV_DTYPE_FP16: {
        uint16_t *o = dst;
        for (size_t i = 0; i < n; i++) o[i] = rkv_f32_to_fp16(src[i]);
        break;
    }
    case RKV_DTYPE_FP32: memcpy(dst, src, n * 4); break;
    case RKV_DTYPE_FP8_E4M3: {
        uint8_t *o = dst;
        for (size_t i = 0; i < n; i++) o[i] = rkv_f32_to_e4m3(src[i]);
        break;
    }
    case RKV_DTYPE_FP8_E5M2: {
        uint8_t *o = dst;
        for (size_t i = 0; i < n; i++) o[i] = rkv_f32_to_e5m2(src[i]);
        break;
    }
    }
}

void rkv_decode(rkv_dtype t, const void *src, size_t n, float *dst)
{
    switch (t) {
    case RKV_DTYPE_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bits_f32((uint32_t)s[i] << 16);
        break;
    }
    case RKV_DTYPE_FP16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = rkv_fp16_to_f32(s[i]);
        break;
    }
    case RKV_DTYPE_FP32: memcpy(dst, src, n * 4); break;
    case RKV_DTYPE_FP8_E4M3: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = rkv_e4m3_to_f32(s[i]);
        break;
    }
    case RKV_DTYPE_FP8_E5M2: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = rkv_e5m2_to_f32(s[i]);
        break;
    }
    }
}

float rkv_quantize(rkv_dtype t, float x)
{
    unsigned char buf[4];
    float y;
    rkv_encode(t, &x, 1, buf);
    rkv_decode(t, buf, 1, &y);
    return y;
}
