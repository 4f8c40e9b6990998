/* attend.c — the building blocks every method shares: exact attention over
 * an index list, deterministic top-k, 1-D pooling, and stage 1 (the SnapKV
 * window vote with GQA-group scores).
 *
 * Numerical conventions (the CUDA path must follow them to select the same
 * tokens):
 *  - a dot product q·k is accumulated in fp32 over 8 partial sums, lane
 *    l = i mod 8, combined as ((a0+a4)+(a1+a5))+((a2+a6)+(a3+a7)); products
 *    and sums are rounded separately (the build uses ISO C, so no FMA
 *    contraction); the score is that sum times 1/sqrt(d) in fp32;
 *  - a softmax subtracts the fp32 maximum, takes the reference's own fp32
 *    exp (exp8_nonpos: ~1 ulp, the same bits on every build), and sums the
 *    normaliser in double over 8 lanes (index mod 8) combined pairwise;
 *  - every top-k breaks ties toward the lower index.
 * Nothing here allocates: callers pass workspaces. */
#include "rkv.h"

#include <gsl/gsl_blas.h>

/* the 8-lane helpers are static and inlined: no ABI crosses a call */
#pragma GCC diagnostic ignored "-Wpsabi"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 8-lane vectors (GCC/clang vector extensions): lane l holds dims i ≡ l
 * (mod 8); products and sums round separately (ISO C: no FMA contraction),
 * so the AVX2 and the portable builds give the same bits. */
/* target_clones: an AVX2 build of the hot loop beside the portable one,
 * picked at load time. Both round identically (ISO C: no FMA contraction;
 * the 8 partial sums are the same lanes either way). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RKV_HOT __attribute__((target_clones("avx2", "default")))
#else
#define RKV_HOT
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint16_t v8h __attribute__((vector_size(16)));

static inline v8f load8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline v8f load8_bf16(const uint16_t *p)
{
    v8h h;
    memcpy(&h, p, sizeof h);
    v8u u = __builtin_convertvector(h, v8u) << 16;
    v8f f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float hsum8(v8f acc)
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static inline float dot8(const float *restrict a, const float *restrict b, int d)
{
    v8f acc = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= d; i += 8)
        acc += load8(a + i) * load8(b + i);
    for (int l = 0; i < d; i++, l++)
        acc[l] += a[i] * b[i];
    return hsum8(acc);
}

/* Decode one row of a (cap, d) K or V array into f32 (bf16 and fp32 inline,
 * the hot cases; others through rkv_decode). */
static inline void row_f32(const rkv_head *h, const void *base, int64_t pos, float *restrict dst)
{
    const int d = h->d;
    if (h->dtype == RKV_DTYPE_BF16) {
        const uint16_t *restrict s = (const uint16_t *)base + (size_t)pos * (size_t)d;
        uint32_t *restrict o = (uint32_t *)dst;
        for (int i = 0; i < d; i++)
            o[i] = (uint32_t)s[i] << 16;
    } else if (h->dtype == RKV_DTYPE_FP32) {
        memcpy(dst, (const float *)base + (size_t)pos * (size_t)d, (size_t)d * sizeof *dst);
    } else {
        size_t b = rkv_dtype_bytes(h->dtype);
        rkv_decode(h->dtype, (const char *)base + (size_t)pos * (size_t)d * b, (size_t)d, dst);
    }
}

static inline float bf16f(uint16_t u)
{
    union { uint32_t u; float f; } c = {.u = (uint32_t)u << 16};
    return c.f;
}

/* Up to four heads' dot products with one bf16 key row: per head the same
 * lanes and combine order as dot8, four independent chains (latency hidden). */
static inline void dot8x4_bf16(const float *restrict q, int nh, int d, const uint16_t *restrict k, float scale,
                               float *restrict out, size_t out_stride)
{
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        const v8f kv = load8_bf16(k + i);
        a0 += load8(q + i) * kv;
        if (nh > 1) a1 += load8(q + (size_t)d + (size_t)i) * kv;
        if (nh > 2) a2 += load8(q + 2 * (size_t)d + (size_t)i) * kv;
        if (nh > 3) a3 += load8(q + 3 * (size_t)d + (size_t)i) * kv;
    }
    for (int l = 0; i < d; i++, l++) {
        const float kf = bf16f(k[i]);
        a0[l] += q[i] * kf;
        if (nh > 1) a1[l] += q[(size_t)d + (size_t)i] * kf;
        if (nh > 2) a2[l] += q[2 * (size_t)d + (size_t)i] * kf;
        if (nh > 3) a3[l] += q[3 * (size_t)d + (size_t)i] * kf;
    }
    out[0] = hsum8(a0) * scale;
    if (nh > 1) out[out_stride] = hsum8(a1) * scale;
    if (nh > 2) out[2 * out_stride] = hsum8(a2) * scale;
    if (nh > 3) out[3 * out_stride] = hsum8(a3) * scale;
}

/* Two key rows × up to four heads: eight independent chains. Results are
 * those of dot8x4_bf16 on each row. */
static inline void dot8x4x2_bf16(const float *restrict q, int nh, int d, const uint16_t *restrict k0,
                                 const uint16_t *restrict k1, float scale, float *restrict out, size_t out_stride)
{
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        const v8f x = load8_bf16(k0 + i), y = load8_bf16(k1 + i);
        const v8f q0 = load8(q + i);
        a0 += q0 * x;
        b0 += q0 * y;
        if (nh > 1) { const v8f q1 = load8(q + (size_t)d + (size_t)i); a1 += q1 * x; b1 += q1 * y; }
        if (nh > 2) { const v8f q2 = load8(q + 2 * (size_t)d + (size_t)i); a2 += q2 * x; b2 += q2 * y; }
        if (nh > 3) { const v8f q3 = load8(q + 3 * (size_t)d + (size_t)i); a3 += q3 * x; b3 += q3 * y; }
    }
    if (i < d) { /* odd head_dim: finish each row on its own */
        dot8x4_bf16(q, nh, d, k0, scale, out, out_stride);
        dot8x4_bf16(q, nh, d, k1, scale, out + 1, out_stride);
        return;
    }
    out[0] = hsum8(a0) * scale;
    out[1] = hsum8(b0) * scale;
    if (nh > 1) { out[out_stride] = hsum8(a1) * scale; out[out_stride + 1] = hsum8(b1) * scale; }
    if (nh > 2) { out[2 * out_stride] = hsum8(a2) * scale; out[2 * out_stride + 1] = hsum8(b2) * scale; }
    if (nh > 3) { out[3 * out_stride] = hsum8(a3) * scale; out[3 * out_stride + 1] = hsum8(b3) * scale; }
}

/* o += p0·v0 then o += p1·v1, element by element: the same order as two
 * axpy_bf16 calls, with o loaded and stored once. */
static inline void axpy2_bf16(float *restrict o, float p0, const uint16_t *restrict v0, float p1,
                              const uint16_t *restrict v1, int d)
{
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        v8f x = load8(o + i) + p0 * load8_bf16(v0 + i);
        x = x + p1 * load8_bf16(v1 + i);
        memcpy(o + i, &x, sizeof x);
    }
    for (; i < d; i++) {
        o[i] += p0 * bf16f(v0[i]);
        o[i] += p1 * bf16f(v1[i]);
    }
}

static inline void axpy_bf16(float *restrict o, float p, const uint16_t *restrict v, int d)
{
    int i = 0;
    for (; i + 8 <= d; i += 8) {
        v8f x = load8(o + i) + p * load8_bf16(v + i);
        memcpy(o + i, &x, sizeof x);
    }
    for (; i < d; i++)
        o[i] += p * bf16f(v[i]);
}

/* o += p·v over d elements */
static inline void axpy(float *restrict o, float p, const float *restrict v, int d)
{
    for (int i = 0; i < d; i++)
        o[i] += p * v[i];
}

/* exp(x) for x <= 0 in fp32, the reference's own definition (every softmax here):
 * k = round(x·log2 e), r = x − k·ln2 (Cody–Waite, two constants), e^r by a
 * degree-6 Taylor polynomial in Horner form, times 2^k; x < −87.3 gives 0.
 * Products and sums round separately, so every build (and the 8-lane loop
 * below) gives the same bits. Error about 1 ulp. */
typedef int32_t v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));

/* lanes of a where mask is all ones, else of b (C has no vector ?:) */
static inline v8f select8(v8i mask, v8f a, v8f b)
{
    v8i ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    const v8i r = (mask & ia) | (~mask & ib);
    v8f f;
    memcpy(&f, &r, sizeof f);
    return f;
}

static inline v8f exp8_nonpos(v8f x0)
{
    const v8f lo = {-100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f, -100.0f};
    const v8f x = select8(x0 >= lo, x0, lo); /* keeps k in range (-inf and NaN become -100: exp 0) */
    const v8f kf = x * 1.44269504f;
    const v8i k = -__builtin_convertvector(0.5f - kf, v8i); /* round to nearest for kf <= 0.5 */
    const v8f kk = __builtin_convertvector(k, v8f);
    v8f r = x - kk * 0.693145751953125f;
    r = r - kk * 1.428606765330187e-06f;
    v8f p = 0.0013888889f * r + 0.008333334f;
    p = p * r + 0.041666668f;
    p = p * r + 0.16666667f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const v8i bits = (k + 127) << 23;
    v8f sc;
    memcpy(&sc, &bits, sizeof sc);
    const v8f e = p * sc;
    const v8f zero = {0};
    return select8(x < -87.3f, zero, e);
}

float rkv_stage1_exp(float x)
{
    v8f v = {x, x, x, x, x, x, x, x};
    return exp8_nonpos(v)[0];
}

/* Softmax of x[0..n) in place, the reference's one definition: m = the fp32
 * maximum; e = exp(x − m) with the reference exp; the normaliser summed in
 * 8 double lanes (lane = index mod 8) combined pairwise; returns it. */
RKV_HOT
static double softmax_unnorm(float *x, int64_t n)
{
    const int64_t n8 = n & ~(int64_t)7;
    v8f mv = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    for (int64_t j = 0; j < n8; j += 8)
        mv = select8(load8(x + j) > mv, load8(x + j), mv);
    float m = -INFINITY;
    for (int t = 0; t < 8; t++)
        if (mv[t] > m) m = mv[t];
    for (int64_t j = n8; j < n; j++)
        if (x[j] > m) m = x[j];
    v4d z0 = {0}, z1 = {0};
    for (int64_t j = 0; j < n8; j += 8) {
        const v8f e = exp8_nonpos(load8(x + j) - m);
        memcpy(x + j, &e, sizeof e);
        const v4d lo = {e[0], e[1], e[2], e[3]}, hi = {e[4], e[5], e[6], e[7]};
        z0 += lo;
        z1 += hi;
    }
    if (n8 < n) { /* the tail through the same 8-lane code, padded with -inf (exp = 0) */
        v8f t = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (int64_t j = n8; j < n; j++) t[j - n8] = x[j] - m;
        const v8f e = exp8_nonpos(t);
        for (int64_t j = n8; j < n; j++) x[j] = e[j - n8];
        const v4d lo = {e[0], e[1], e[2], e[3]}, hi = {e[4], e[5], e[6], e[7]};
        z0 += lo;
        z1 += hi;
    }
    return ((z0[0] + z1[0]) + (z0[1] + z1[1])) + ((z0[2] + z1[2]) + (z0[3] + z1[3]));
}


RKV_HOT
void rkv_attend(const rkv_head *h, const float *q, const int32_t *idx, int64_t n,
                float *out, float *probs, float *ws)
{
    const int d = h->d, G = h->G;
    const float scale = 1.0f / sqrtf((float)d);
    float *s = ws;                       /* (G, n) scores, then probabilities */
    float *row = ws + (size_t)n * (size_t)G; /* (d) */
    if (h->dtype == RKV_DTYPE_BF16) { /* the hot case, decoded in registers */
        int64_t j = 0;
        for (; j + 2 <= n; j += 2) {
            const uint16_t *k0 = (const uint16_t *)h->K + (size_t)(idx ? idx[j] : j) * (size_t)d;
            const uint16_t *k1 = (const uint16_t *)h->K + (size_t)(idx ? idx[j + 1] : j + 1) * (size_t)d;
            for (int g = 0; g < G; g += 4)
                dot8x4x2_bf16(q + (size_t)g * (size_t)d, G - g < 4 ? G - g : 4, d, k0, k1, scale,
                              s + (size_t)g * (size_t)n + (size_t)j, (size_t)n);
        }
        for (; j < n; j++) {
            const uint16_t *k = (const uint16_t *)h->K + (size_t)(idx ? idx[j] : j) * (size_t)d;
            for (int g = 0; g < G; g += 4)
                dot8x4_bf16(q + (size_t)g * (size_t)d, G - g < 4 ? G - g : 4, d, k, scale,
                            s + (size_t)g * (size_t)n + (size_t)j, (size_t)n);
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            row_f32(h, h->K, idx ? idx[j] : j, row);
            for (int g = 0; g < G; g++)
                s[(size_t)g * (size_t)n + (size_t)j] = dot8(q + (size_t)g * (size_t)d, row, d) * scale;
        }
    }
    for (int g = 0; g < G; g++) {
        float *sg = s + (size_t)g * (size_t)n;
        const double z = softmax_unnorm(sg, n);
        float inv = (float)(1.0 / z);
        for (int64_t j = 0; j < n; j++)
            sg[j] *= inv;
        if (probs)
            memcpy(probs + (size_t)g * (size_t)n, sg, (size_t)n * sizeof *sg);
    }
    memset(out, 0, (size_t)G * (size_t)d * sizeof *out);
    if (h->dtype == RKV_DTYPE_BF16) {
        int64_t j = 0;
        if (d % 8 == 0) {
            for (; j + 2 <= n; j += 2) { /* each V chunk decoded once, used by every head */
                const uint16_t *v0 = (const uint16_t *)h->V + (size_t)(idx ? idx[j] : j) * (size_t)d;
                const uint16_t *v1 = (const uint16_t *)h->V + (size_t)(idx ? idx[j + 1] : j + 1) * (size_t)d;
                for (int i = 0; i < d; i += 8) {
                    const v8f x0 = load8_bf16(v0 + i), x1 = load8_bf16(v1 + i);
                    for (int g = 0; g < G; g++) {
                        float *o = out + (size_t)g * (size_t)d + (size_t)i;
                        v8f acc = load8(o) + s[(size_t)g * (size_t)n + (size_t)j] * x0;
                        acc = acc + s[(size_t)g * (size_t)n + (size_t)j + 1] * x1;
                        memcpy(o, &acc, sizeof acc);
                    }
                }
            }
        }
        for (; j + 2 <= n; j += 2) {
            const uint16_t *v0 = (const uint16_t *)h->V + (size_t)(idx ? idx[j] : j) * (size_t)d;
            const uint16_t *v1 = (const uint16_t *)h->V + (size_t)(idx ? idx[j + 1] : j + 1) * (size_t)d;
            for (int g = 0; g < G; g++)
                axpy2_bf16(out + (size_t)g * (size_t)d, s[(size_t)g * (size_t)n + (size_t)j], v0,
                           s[(size_t)g * (size_t)n + (size_t)j + 1], v1, d);
        }
        for (; j < n; j++) {
            const uint16_t *v = (const uint16_t *)h->V + (size_t)(idx ? idx[j] : j) * (size_t)d;
            for (int g = 0; g < G; g++)
                axpy_bf16(out + (size_t)g * (size_t)d, s[(size_t)g * (size_t)n + (size_t)j], v, d);
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            row_f32(h, h->V, idx ? idx[j] : j, row);
            for (int g = 0; g < G; g++)
                axpy(out + (size_t)g * (size_t)d, s[(size_t)g * (size_t)n + (size_t)j], row, d);
        }
    }
}

/* ---- top-k: a min-heap of the k best (score, index) seen so far. "Worse"
 * means lower score, or equal score and higher index; NaN counts as -inf. */
static int worse(double sa, int32_t ia, double sb, int32_t ib)
{
    if (sa != sb)
        return sa < sb;
    return ia > ib;
}

static void sift_down(double *hs, int32_t *hi, int64_t k, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && worse(hs[l], hi[l], hs[w], hi[w])) w = l;
        if (r < k && worse(hs[r], hi[r], hs[w], hi[w])) w = r;
        if (w == i)
            return;
        double ts = hs[i]; hs[i] = hs[w]; hs[w] = ts;
        int32_t ti = hi[i]; hi[i] = hi[w]; hi[w] = ti;
        i = w;
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* idx must hold k entries; hs (scratch) k doubles. */
static void topk_core(const double *sd, const float *sf, int64_t n, int64_t k, int32_t *idx, double *hs)
{
    if (k >= n) {
        for (int64_t j = 0; j < n; j++) idx[j] = (int32_t)j;
        return;
    }
    if (k <= 0)
        return;
    for (int64_t j = 0; j < k; j++) {
        double v = sd ? sd[j] : (double)sf[j];
        hs[j] = isnan(v) ? -INFINITY : v;
        idx[j] = (int32_t)j;
    }
    for (int64_t i = k / 2 - 1; i >= 0; i--)
        sift_down(hs, idx, k, i);
    for (int64_t j = k; j < n; j++) {
        double v = sd ? sd[j] : (double)sf[j];
        if (isnan(v)) v = -INFINITY;
        if (worse(hs[0], idx[0], v, (int32_t)j)) {
            hs[0] = v;
            idx[0] = (int32_t)j;
            sift_down(hs, idx, k, 0);
        }
    }
    qsort(idx, (size_t)k, sizeof *idx, cmp_i32);
}

/* Ranks of every position when scores (>= 0, not NaN) are sorted by value
 * descending, ties to the lower index: order[r] = position of rank r,
 * rank[j] = rank of position j. A stable LSD radix sort on the negated float
 * bits, 4 passes of 8 bits. tmp: 2n int32. */
void rkv_rank_desc(const float *scores, int64_t n, int32_t *order, int32_t *rank, int32_t *tmp)
{
    uint32_t *key = (uint32_t *)tmp;
    int32_t *src = order, *dst = tmp + n;
    for (int64_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &scores[j], 4);
        key[j] = ~u; /* non-negative floats order as their bits; ~ makes it descending */
        src[j] = (int32_t)j;
    }
    for (int pass = 0; pass < 4; pass++) {
        int64_t cnt[257] = {0};
        const int sh = pass * 8;
        for (int64_t j = 0; j < n; j++)
            cnt[((key[src[j]] >> sh) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            cnt[b + 1] += cnt[b];
        for (int64_t j = 0; j < n; j++)
            dst[cnt[(key[src[j]] >> sh) & 0xff]++] = src[j];
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    /* after 4 passes src == order */
    for (int64_t r = 0; r < n; r++)
        rank[order[r]] = (int32_t)r;
}

void rkv_topk_ws(const double *scores, int64_t n, int64_t k, int32_t *idx, double *heap)
{
    topk_core(scores, NULL, n, k, idx, heap);
}

void rkv_topk_f_ws(const float *scores, int64_t n, int64_t k, int32_t *idx, double *heap)
{
    topk_core(NULL, scores, n, k, idx, heap);
}

void rkv_topk(const double *scores, int64_t n, int64_t k, int32_t *idx)
{
    double *hs = k > 0 && k < n ? malloc((size_t)k * sizeof *hs) : NULL;
    topk_core(scores, NULL, n, k, idx, hs);
    free(hs);
}

void rkv_topk_f(const float *scores, int64_t n, int64_t k, int32_t *idx)
{
    double *hs = k > 0 && k < n ? malloc((size_t)k * sizeof *hs) : NULL;
    topk_core(NULL, scores, n, k, idx, hs);
    free(hs);
}

/* 1-D pooling, stride 1, padding kernel/2 each side (PyTorch's max_pool1d /
 * avg_pool1d as SnapKV calls them): max ignores padding; avg counts padded
 * zeros (count_include_pad, PyTorch's default). An even kernel uses the
 * window [j - kernel/2, j + kernel/2 - 1] like PyTorch's output length rule. */
void rkv_pool1d(const double *in, int64_t n, int64_t kernel, rkv_pool pool, double *out)
{
    if (kernel <= 1) {
        memcpy(out, in, (size_t)n * sizeof *in);
        return;
    }
    const int64_t lo = kernel / 2, hi = kernel - 1 - kernel / 2;
    if (pool == RKV_POOL_AVG) {
        double acc = 0.0;
        /* prefix sums in index order */
        for (int64_t j = 0; j < n; j++) {
            int64_t a = j - lo < 0 ? 0 : j - lo, b = j + hi >= n ? n - 1 : j + hi;
            acc = 0.0;
            for (int64_t i = a; i <= b; i++)
                acc += in[i];
            out[j] = acc / (double)kernel;
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        int64_t a = j - lo < 0 ? 0 : j - lo, b = j + hi >= n ? n - 1 : j + hi;
        double m = in[a];
        for (int64_t i = a + 1; i <= b; i++)
            if (in[i] > m)
                m = in[i];
        out[j] = m;
    }
}

/* ---- stage 1 ----------------------------------------------------------- */
size_t rkv_stage1_ws_bytes(int64_t nc, int64_t w, int G, int d)
{
    return (size_t)nc * (size_t)d * sizeof(float)              /* Kc (nc, d) */
         + (size_t)G * (size_t)w * (size_t)nc * sizeof(float)  /* logits (G·w, nc) */
         + (size_t)G * (size_t)w * (size_t)d * sizeof(float)   /* scaled Q */
         + (size_t)nc * sizeof(double)                          /* pooled votes */
         + (size_t)nc * sizeof(double) + 64;                    /* top-k heap */
}

/* Step 2–3 of docs/algorithm.md stage 1: the window queries' probabilities over
 * all candidate keys (causal inside the window, softmax in fp32, sums in
 * double), summed over the w window queries, prefix columns only, then summed
 * over the G heads of the group (group != 0) or kept per head. The logits
 * come from one sgemm: (G·w, d) × (d, nc). Fixed orders: the normaliser is
 * summed in 8 double lanes (lane = column mod 8) combined pairwise; votes
 * accumulate over window queries in order, then heads in order. */
RKV_HOT
int rkv_stage1_votes(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                     int group, double *votes, void *ws)
{
    const int d = h->d, G = h->G;
    const int64_t np = nc - w; /* prefix columns */
    if (np <= 0 || w <= 0)
        return -1;
    float *Kc = ws;
    float *Lg = Kc + (size_t)nc * (size_t)d;
    float *Qs = Lg + (size_t)G * (size_t)w * (size_t)nc;
    for (int64_t j = 0; j < nc; j++)
        row_f32(h, h->K, cand[j], Kc + (size_t)j * (size_t)d);
    memcpy(Qs, Qw, (size_t)G * (size_t)w * (size_t)d * sizeof *Qs);
    gsl_matrix_float_const_view Q = gsl_matrix_float_const_view_array(Qs, (size_t)G * (size_t)w, (size_t)d);
    gsl_matrix_float_const_view K = gsl_matrix_float_const_view_array(Kc, (size_t)nc, (size_t)d);
    gsl_matrix_float_view L = gsl_matrix_float_view_array(Lg, (size_t)G * (size_t)w, (size_t)nc);
    const float scale = 1.0f / sqrtf((float)d);
    gsl_blas_sgemm(CblasNoTrans, CblasTrans, scale, &Q.matrix, &K.matrix, 0.0f, &L.matrix);
    const int rows = group ? 1 : G;
    memset(votes, 0, (size_t)rows * (size_t)np * sizeof *votes);
    for (int g = 0; g < G; g++) {
        double *v = votes + (size_t)(group ? 0 : g) * (size_t)np;
        for (int64_t i = 0; i < w; i++) {
            float *l = Lg + ((size_t)g * (size_t)w + (size_t)i) * (size_t)nc;
            const int64_t visible = np + i + 1; /* causal inside the window */
            const double iz = 1.0 / softmax_unnorm(l, visible);
            for (int64_t j = 0; j < np; j++)
                v[j] += (double)l[j] * iz;
        }
    }
    return 0;
}

int64_t rkv_stage1_select(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                          int64_t P, int64_t kernel, rkv_pool pool, int group, int32_t *kept, void *ws)
{
    return rkv_stage1_select_memo(h, cand, nc, Qw, w, P, kernel, pool, group, kept, ws, NULL);
}

static int memo_applies(const rkv_s1_memo *m, const rkv_head *h, const int32_t *cand, int64_t nc, int64_t w,
                        int group)
{
    if (!m || m->layer != h->layer || m->kv_head != h->kv_head || m->nc != nc || m->w != w || m->group != group ||
        m->G != h->G)
        return 0;
    for (int64_t j = 0; j < nc; j++)
        if (cand[j] != j)
            return 0;
    return 1;
}

int64_t rkv_stage1_select_memo(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                               int64_t P, int64_t kernel, rkv_pool pool, int group, int32_t *kept, void *ws,
                               rkv_s1_memo *memo)
{
    const int rows = group ? 1 : h->G;
    if (nc <= P || w >= nc) {
        for (int r = 0; r < rows; r++)
            memcpy(kept + (size_t)r * (size_t)P, cand, (size_t)nc * sizeof *cand);
        return nc;
    }
    if (w >= P) { /* the budget holds only (the tail of) the window: nothing to vote on */
        for (int r = 0; r < rows; r++)
            memcpy(kept + (size_t)r * (size_t)P, cand + (nc - P), (size_t)P * sizeof *cand);
        return P;
    }
    const int64_t np = nc - w, keep = P - w;
    /* pooled votes and the top-k heap live after the sgemm area of ws */
    char *base = ws;
    double *pooled = (double *)(base + (size_t)nc * (size_t)h->d * sizeof(float)
                                + (size_t)h->G * (size_t)w * (size_t)nc * sizeof(float)
                                + (size_t)h->G * (size_t)w * (size_t)h->d * sizeof(float));
    double *heap = pooled + nc;
    double *allv;
    int owned = 0;
    if (memo && memo->valid && memo_applies(memo, h, cand, nc, w, group)) {
        allv = memo->votes;
    } else {
        const int64_t need = (int64_t)rows * np;
        if (memo && memo->cap < need) {
            free(memo->votes);
            memo->votes = malloc((size_t)need * sizeof *memo->votes);
            memo->cap = memo->votes ? need : 0;
            memo->valid = 0;
        }
        if (memo && memo->votes) {
            allv = memo->votes;
        } else {
            allv = malloc((size_t)need * sizeof *allv);
            owned = 1;
        }
        if (!allv)
            return -1;
        if (rkv_stage1_votes(h, cand, nc, Qw, w, group, allv, ws) != 0) {
            if (owned) free(allv);
            return -1;
        }
        if (memo && !owned) {
            int ident = 1;
            for (int64_t j = 0; j < nc && ident; j++)
                ident = cand[j] == j;
            memo->valid = ident;
            memo->layer = h->layer;
            memo->kv_head = h->kv_head;
            memo->group = group;
            memo->G = h->G;
            memo->nc = nc;
            memo->w = w;
        }
    }
    for (int r = 0; r < rows; r++) {
        int32_t *out = kept + (size_t)r * (size_t)P;
        rkv_pool1d(allv + (size_t)r * (size_t)np, np, kernel, pool, pooled);
        rkv_topk_ws(pooled, np, keep, out, heap); /* indices into the prefix, ascending */
        for (int64_t j = 0; j < keep; j++)
            out[j] = cand[out[j]];
        for (int64_t j = 0; j < w; j++)
            out[keep + j] = cand[np + j];
    }
    if (owned)
        free(allv);
    return P;
}
