/* kcu.h — the per-thread and per-block arithmetic of kvsim's CUDA kernels,
 * written once in plain C11 so that the same functions run in the kernels
 * (nvcc, KCU_HD = __host__ __device__) and in the CPU tests (cc, KCU_HD
 * empty): bf16 <-> f32, the sign-chosen page bound, τ_h, the online-softmax
 * (log-sum-exp) merge, the radix-select key transform and its digit helpers,
 * the max-pool window, the split-KV partition, page-index math and the
 * RocketKV budget split of docs/algorithm.md.
 *
 * Selection semantics are refimpl's (refimpl/rkv.h, docs/algorithm.md): a top-k is
 * "largest score first, ties to the lower index", its result listed in
 * ascending position order. Here that order is one unsigned 64-bit order:
 * kcu_desc_key(score) is small for large scores, and a candidate's rank is
 * the pair (key, index) compared lexicographically. −0 and +0 map to the same
 * key, because refimpl's `>` treats them as equal (a tie).
 *
 * Everything whose result must be bit-identical to refimpl (the stage-2 page
 * score, which decides a selection) follows refimpl/attend.c's conventions:
 * products and sums rounded separately (no FMA: __fmul_rn/__fadd_rn on the
 * device, which nvcc never contracts; ISO C on the host, where -std=c11
 * turns contraction off), sums in the stated order.
 *
 * It deliberately holds no memory management, no CUDA API calls and no
 * kernel: the cuda/ .cu files own those, cuda/kcu_ref_host.c holds the CPU reference
 * of the GPU pipeline built from these functions. */
#ifndef KCU_H
#define KCU_H

#ifdef __CUDACC__
#define KCU_HD __host__ __device__
#else
#define KCU_HD
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ bit casts */
static inline KCU_HD uint32_t kcu_f32_bits(float x)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

static inline KCU_HD float kcu_bits_f32(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
#endif
}

static inline KCU_HD uint64_t kcu_f64_bits(double x)
{
#ifdef __CUDA_ARCH__
    return (uint64_t)__double_as_longlong(x);
#else
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

/* ------------------------------------------------------------- bf16 */
/* bf16 -> f32 is exact: the bf16 bits are the high half of the f32. */
static inline KCU_HD float kcu_bf16_to_f32(uint16_t h)
{
    return kcu_bits_f32((uint32_t)h << 16);
}

/* f32 -> bf16, round to nearest, ties to even. NaN stays a (quiet) NaN;
 * overflow rounds to ±inf as IEEE does. */
static inline KCU_HD uint16_t kcu_f32_to_bf16(float x)
{
    uint32_t u = kcu_f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)               /* NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return (uint16_t)(u >> 16);
}

/* ---------------------------------------------------- page bound / τ */
/* Stage 2 step 2: K̂_j[i] = max_j[i] if g_i > 0 else min_j[i], with
 * g_i = sign(Σ_h q_h[i]) (so g_i = 0 takes the min). */
static inline KCU_HD float kcu_page_bound(double gsum, float mn, float mx)
{
    return gsum > 0.0 ? mx : mn;
}

/* Stage 2 step 3, one head, one page: s = Σ_{i∈I} q[i]·K̂[i] in f32,
 * accumulated in ascending dim order, product and sum rounded separately
 * (refimpl/method_hsa.c: `acc += q[i] * bound`). One term: */
static inline KCU_HD float kcu_page_score_acc(float acc, float q_i, float khat_i)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(acc, __fmul_rn(q_i, khat_i));
#else
    return acc + q_i * khat_i;
#endif
}

/* τ_h = √(d·(‖q_h[I]‖₁/‖q_h‖₁)), the ratio taken as 1 when q_h is zero —
 * refimpl's expression and rounding order. */
static inline KCU_HD double kcu_tau(int d, double l1_dims, double l1_all)
{
    return sqrt((double)d * (l1_all > 0 ? l1_dims / l1_all : 1.0));
}

/* ------------------------------------------- online softmax / LSE merge */
/* A partial softmax state over some keys: m = max score, l = Σ exp(s − m),
 * acc[] = Σ exp(s − m)·v (unnormalised). The empty state is m = −inf, l = 0.
 * kcu_lse_merge returns the merged m and the factors by which each side's l
 * and acc must be multiplied: l = l1·f1 + l2·f2, acc = acc1·f1 + acc2·f2.
 * Two empty states merge to an empty state (factors 0, no NaN). */
static inline KCU_HD float kcu_lse_merge(float m1, float m2, float *f1, float *f2)
{
    float m = m1 > m2 ? m1 : m2;
    if (m == -INFINITY) {
        *f1 = 0.0f;
        *f2 = 0.0f;
        return m;
    }
    *f1 = m1 == -INFINITY ? 0.0f : expf(m1 - m);
    *f2 = m2 == -INFINITY ? 0.0f : expf(m2 - m);
    return m;
}

/* Adds one score s to a state (m, l) and returns the factor acc must be
 * multiplied by before adding p·v, with p returned in *p. */
static inline KCU_HD float kcu_online_add(float *m, float *l, float s, float *p)
{
    float mnew = *m > s ? *m : s;
    float scale = *m == -INFINITY ? 0.0f : expf(*m - mnew);
    *p = expf(s - mnew);
    *l = *l * scale + *p;
    *m = mnew;
    return scale;
}

/* ----------------------------------------------- radix-select key order */
/* Order-preserving maps to unsigned integers: a < b (as numbers) iff
 * ord(a) < ord(b); −0 and +0 both map like +0. NaN is not a valid score. */
static inline KCU_HD uint32_t kcu_ord_f32(float x)
{
    if (x == 0.0f)
        x = 0.0f;
    uint32_t u = kcu_f32_bits(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline KCU_HD uint64_t kcu_ord_f64(double x)
{
    if (x == 0.0)
        x = 0.0;
    uint64_t u = kcu_f64_bits(x);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/* Descending-score key: a larger score gives a smaller key. A float score
 * maps through double exactly, so float and double scores share one order. */
static inline KCU_HD uint64_t kcu_desc_key(double score)
{
    return ~kcu_ord_f64(score);
}

/* For float scores and indices below 2^32 the whole rank fits one word:
 * sorting these ascending is exactly rkv_topk_f's order (score descending,
 * ties to the lower index). */
static inline KCU_HD uint64_t kcu_rank_key_f32(float score, uint32_t index)
{
    return ((uint64_t)~kcu_ord_f32(score) << 32) | (uint64_t)index;
}

/* MSB-first radix select over 64-bit keys, 8 bits per pass, 8 passes. */
#define KCU_RADIX_BITS 8
#define KCU_RADIX_BINS 256
#define KCU_RADIX_PASSES 8

static inline KCU_HD unsigned kcu_radix_digit(uint64_t key, int pass)
{
    return (unsigned)((key >> (56 - 8 * pass)) & 0xffu);
}

/* Does key share the first `pass` digits of prefix? (pass 0: always.) */
static inline KCU_HD int kcu_radix_match(uint64_t key, uint64_t prefix, int pass)
{
    if (pass == 0)
        return 1;
    int sh = 64 - 8 * pass;
    return (key >> sh) == (prefix >> sh);
}

/* Given the weighted histogram of one pass and the weight still needed
 * (need >= 1, and need <= the histogram's total), returns the digit that
 * holds the need-th unit and the weight of the bins below it in *below. */
static inline KCU_HD unsigned kcu_radix_pick(const uint64_t *hist, uint64_t need, uint64_t *below)
{
    uint64_t cum = 0;
    unsigned b = 0;
    for (; b < KCU_RADIX_BINS - 1; b++) {
        if (cum + hist[b] >= need)
            break;
        cum += hist[b];
    }
    *below = cum;
    return b;
}

/* After the passes: threshold key T and the weight `need` still to take from
 * candidates whose key equals T (in ascending index order). A candidate of
 * weight w, key `key`, whose equal-key predecessors (lower index, key == T)
 * weigh `eq_before`, contributes this much: */
static inline KCU_HD int64_t kcu_select_take(uint64_t key, int64_t w, uint64_t T, int64_t need,
                                             int64_t eq_before)
{
    if (key < T)
        return w;
    if (key > T)
        return 0;
    int64_t left = need - eq_before;
    if (left <= 0)
        return 0;
    return left < w ? left : w;
}

/* ------------------------------------------------------ max pooling */
/* Stride-1 pooling with same padding of ⌊kernel/2⌋ on the left: output j
 * covers [j − ⌊kernel/2⌋, j − ⌊kernel/2⌋ + kernel − 1], clipped to [0, n)
 * because padding never wins. */
static inline KCU_HD void kcu_pool_window(int64_t j, int64_t n, int64_t kernel, int64_t *lo, int64_t *hi)
{
    int64_t a = j - kernel / 2;
    int64_t b = a + kernel - 1;
    *lo = a < 0 ? 0 : a;
    *hi = b > n - 1 ? n - 1 : b;
}

/* ------------------------------------------------- split-KV partition */
/* Number of splits of C keys for one (sequence, KV head) so that the grid of
 * `work_items` (sequences × KV heads) reaches about `target_blocks` blocks,
 * with no split shorter than min_chunk keys (except a single split) and at
 * most max_splits. */
static inline KCU_HD int kcu_split_count(int64_t C, int64_t work_items, int64_t target_blocks,
                                         int64_t min_chunk, int max_splits)
{
    if (C <= 0 || work_items <= 0)
        return 1;
    int64_t want = (target_blocks + work_items - 1) / work_items;
    int64_t cap = C / (min_chunk > 0 ? min_chunk : 1);
    if (want > cap)
        want = cap;
    if (want > max_splits)
        want = max_splits;
    return want < 1 ? 1 : (int)want;
}

/* Splits per (sequence, KV head) of split-KV decode attention
 * (dense_decode.cu's kcu_attend_splits). v2: the grid fills at most one wave
 * of 4 blocks per SM — floor(slots / work_items) splits, never more — and a
 * split is at least 64 rows. (v1 rounded up, 9 splits × 64 = 576 blocks for
 * 528 slots at batch 8: a second wave 9 % full; and its 256-row minimum gave
 * a 1K-row sparse gather only 4 splits at batch 1.) */
static inline KCU_HD int kcu_attend_split_count(int64_t rows, int64_t work_items, int num_sms)
{
    int64_t slots = 4 * (int64_t)num_sms;
    int64_t per = work_items > 0 ? slots / work_items : 1;
    return kcu_split_count(rows, work_items, per * work_items, 64, 128);
}

/* Splits of a sparse gather for dense_decode.cu v3 (kcu_gather_splits): the
 * same one-wave rule with a 32-row minimum (one 4-warp tile of v3 at d =
 * 128, G = 4), so short position lists still spread over the SMs. */
static inline KCU_HD int kcu_gather_split_count(int64_t rows, int64_t work_items, int num_sms)
{
    int64_t slots = 4 * (int64_t)num_sms;
    int64_t per = work_items > 0 ? slots / work_items : 1;
    return kcu_split_count(rows, work_items, per * work_items, 32, 128);
}

/* Keys [*lo, *hi) of split s out of nsplit; chunks are multiples of `granule`
 * keys (except the last), contiguous, in order, covering [0, C) exactly;
 * trailing splits may be empty. */
static inline KCU_HD void kcu_split_range(int64_t C, int nsplit, int s, int64_t granule,
                                          int64_t *lo, int64_t *hi)
{
    int64_t chunk = (C + nsplit - 1) / nsplit;
    if (granule > 1)
        chunk = (chunk + granule - 1) / granule * granule;
    int64_t a = (int64_t)s * chunk, b = a + chunk;
    *lo = a < C ? a : C;
    *hi = b < C ? b : C;
}

/* ------------------------------------------------------------ pages */
static inline KCU_HD int64_t kcu_npages(int64_t C, int64_t p) { return (C + p - 1) / p; }
static inline KCU_HD int64_t kcu_page_of(int64_t pos, int64_t p) { return pos / p; }
static inline KCU_HD int64_t kcu_page_slot(int64_t pos, int64_t p) { return pos % p; }
/* Tokens of page j among C (the last page may be partial). */
static inline KCU_HD int64_t kcu_page_count(int64_t j, int64_t C, int64_t p)
{
    int64_t n = C - j * p;
    return n < 0 ? 0 : (n < p ? n : p);
}
/* Offset of the aux element (row, page) in a dimension-major aux block of
 * one (sequence, KV head): rows 0..d-1 are the minima, d..2d-1 the maxima;
 * for p = 1 only d rows are stored (the transposed K) and the max row of
 * dim i is row i. npages_cap is the row stride. */
static inline KCU_HD int64_t kcu_aux_min_off(int i, int64_t j, int64_t npages_cap)
{
    return (int64_t)i * npages_cap + j;
}
static inline KCU_HD int64_t kcu_aux_max_off(int i, int64_t j, int64_t npages_cap, int d, int64_t p)
{
    return (int64_t)(p == 1 ? i : d + i) * npages_cap + j;
}
static inline KCU_HD int kcu_aux_rows(int d, int64_t p) { return p == 1 ? d : 2 * d; }

/* ------------------------------------------------ RocketKV budget split */
/* docs/algorithm.md "RocketKV — the budget split", default split (rho < 0) or a
 * fixed ρ (0.5 is `--split even`), as refimpl's rkv_params_resolve
 * ("rocketkv") resolves it (tests/test_kcu.c checks they agree). Host-side;
 * the GPU check uses it because it cannot link refimpl (GSL). P <= 0 means
 * the budget leaves no prompt tokens (refimpl reports an error). */
typedef struct {
    int64_t S_total;   /* S' */
    double c, rho, c2;
    int64_t capacity;  /* tokens kept per KV head incl. generated */
    int64_t P;         /* prompt budget */
    int64_t k;         /* tokens attended exactly */
    int64_t p;         /* page size */
    int64_t r;         /* dims of the estimate */
    int evicts;
} kcu_rkv_split;

static inline void kcu_rkv_split_compute(int64_t S, int64_t max_new, int64_t t, int64_t model_max_len,
                                         int d, double fixed_rho, kcu_rkv_split *o)
{
    int64_t St = S + max_new;
    if (model_max_len > 0 && St > model_max_len)
        St = model_max_len;
    o->S_total = St;
    o->k = t / 2;
    if (St <= t) { /* nothing evicted; stage 2 attends every token */
        o->c = 1.0;
        o->rho = 0.0;
        o->c2 = 1.0;
        o->capacity = St;
        o->P = S;
        o->p = 1;
        o->r = d;
        o->k = St;
        o->evicts = 0;
        return;
    }
    double c = (double)St / (double)t;
    double rho = fixed_rho >= 0.0 ? fixed_rho : fmin(0.2 + 0.06 * log2(c), 0.8);
    int64_t cap = (int64_t)floor((double)St / pow(c, rho));
    int64_t lo = 2 * max_new < St ? 2 * max_new : St;
    if (cap < lo)
        cap = lo;
    double c2 = fmax(1.0, (double)cap / (double)t);
    int64_t p = (int64_t)ceil(sqrt(c2));
    if ((double)p > c2)
        p = 1;
    int64_t r = (int64_t)floor((double)d * (double)p / c2);
    if (r < 1)
        r = 1;
    if (r > d)
        r = d;
    o->c = c;
    o->rho = rho;
    o->c2 = c2;
    o->capacity = cap;
    o->P = cap - (St - S); /* the tokens generated within S' keep their room */
    if (o->P > S)
        o->P = S;
    o->p = p;
    o->r = r;
    o->evicts = o->P < S;
}

/* ----------------------------------------------------------- test RNG */
/* splitmix64 and a Box–Muller normal: the same sequence on every machine,
 * used by the GPU check and the CPU tests to build inputs. */
static inline uint64_t kcu_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline double kcu_rng_uniform(uint64_t *s) /* (0, 1) */
{
    return ((double)(kcu_rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static inline double kcu_rng_normal(uint64_t *s)
{
    double u1 = kcu_rng_uniform(s), u2 = kcu_rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
