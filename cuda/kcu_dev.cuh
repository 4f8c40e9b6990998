/* kcu_dev.cuh — device-side building blocks shared by the kernels: bf16x8
 * unpacking, warp/block reductions and scans, and the one-block weighted
 * radix select with its index-ordered emit (the GPU twin of
 * kcu_select_host in kcu_ref_host.c, using the same kcu.h helpers).
 *
 * Included by .cu files only; every function is static (internal linkage),
 * so each translation unit has its own copy. */
#ifndef KCU_DEV_CUH
#define KCU_DEV_CUH

#include "kcu_cuda.h"
#include <stdint.h>

#include "kcu.h"

#define KCU_FULL_MASK 0xffffffffu

/* 8 bf16 in a 16-byte word -> 8 floats (exact). */
static __device__ __forceinline__ void kcu_unpack8(uint4 u, float *f)
{
    f[0] = __uint_as_float(u.x << 16);
    f[1] = __uint_as_float(u.x & 0xffff0000u);
    f[2] = __uint_as_float(u.y << 16);
    f[3] = __uint_as_float(u.y & 0xffff0000u);
    f[4] = __uint_as_float(u.z << 16);
    f[5] = __uint_as_float(u.z & 0xffff0000u);
    f[6] = __uint_as_float(u.w << 16);
    f[7] = __uint_as_float(u.w & 0xffff0000u);
}

/* Two floats -> two bf16 in one .b32 (lo in bits 0–15), each rounded to
 * nearest even (cvt.rn.bf16x2.f32; the emulation rounds the same way on
 * finite values, and NaN -> the canonical bf16 NaN). */
static __device__ __forceinline__ uint32_t kcu_pack_bf16x2(float lo, float hi)
{
#ifdef KCU_EMU
    uint32_t r = 0;
    const float v[2] = {lo, hi};
    for (int i = 0; i < 2; i++) {
        uint32_t u = __float_as_uint(v[i]);
        u = v[i] != v[i] ? 0x7fc00000u : u + 0x7fffu + ((u >> 16) & 1u);
        r |= (u >> 16) << (16 * i);
    }
    return r;
#else
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#endif
}

/* d = A·B + c, one mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 of
 * the whole warp (every lane, converged). Fragments per lane as the PTX ISA
 * lays them out ("Matrix Fragments for mma.m16n8k16 with floating point
 * type"; written out in kcu_emu_warp.h above kcu_emu_mma_complete): a[4] and
 * b[2] two bf16 per register, c and d four f32. d may alias c. */
static __device__ __forceinline__ void kcu_mma_bf16_16816(float *d, const uint32_t *a, const uint32_t *b,
                                                           const float *c)
{
#ifdef KCU_EMU
    kcu_emu_mma_bf16_16816(d, a, b, c);
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%10, %11, %12, %13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
                   "f"(c[2]), "f"(c[3]));
#endif
}

/* A global load that bypasses L1 (data another block wrote in this launch,
 * after its __threadfence). */
template <class T>
static __device__ __forceinline__ T kcu_ld_cg(const T *p)
{
#ifdef KCU_EMU
    return *(const volatile T *)p;
#else
    return __ldcg(p);
#endif
}

/* kcu_ld_cg of 16 bytes (one 128-bit load on the device). */
static __device__ __forceinline__ uint4 kcu_ld_cg_u4(const uint4 *p)
{
#ifdef KCU_EMU
    const volatile unsigned *u = (const volatile unsigned *)p;
    return make_uint4(u[0], u[1], u[2], u[3]);
#else
    return __ldcg(p);
#endif
}

static __device__ __forceinline__ int64_t kcu_warp_incl_scan(int64_t v)
{
    int lane = threadIdx.x & 31;
    for (int o = 1; o < 32; o <<= 1) {
        long long t = __shfl_up_sync(KCU_FULL_MASK, (long long)v, o);
        if (lane >= o)
            v += t;
    }
    return v;
}

/* Exclusive prefix sum over the block in thread order; *total = block sum.
 * smem: 33 int64. All threads must call it. */
static inline __device__ int64_t kcu_block_excl_scan(int64_t v, int64_t *total, KCU_SH(int64_t) *smem)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    int64_t inc = kcu_warp_incl_scan(v);
    if (lane == 31)
        smem[warp] = inc;
    __syncthreads();
    if (warp == 0) {
        int64_t x = lane < nw ? smem[lane] : 0;
        int64_t xi = kcu_warp_incl_scan(x);
        if (lane < nw)
            smem[lane] = xi - x;
        if (lane == 31)
            smem[32] = xi;
    }
    __syncthreads();
    int64_t r = smem[warp] + inc - v;
    *total = smem[32];
    /* Until every thread has read smem, the next call's lane 31 must not
     * overwrite its warp's slot. (The emulation's self-test deletes this
     * barrier, KCU_FAULT_SCAN_NO_TAIL_BARRIER, and must see the race.) */
#ifndef KCU_FAULT_SCAN_NO_TAIL_BARRIER
    __syncthreads();
#endif
    return r;
}

static __device__ __forceinline__ float kcu_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(KCU_FULL_MASK, v, o));
    return v;
}

static __device__ __forceinline__ double kcu_warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(KCU_FULL_MASK, v, o);
    return v;
}

/* Block max / sum; smem: 32 elements. All threads get the result. */
static inline __device__ float kcu_block_max(float v, KCU_SH(float) *smem)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = kcu_warp_max(v);
    if (lane == 0)
        smem[warp] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; i++)
        r = fmaxf(r, smem[i]);
    __syncthreads();
    return r;
}

static inline __device__ double kcu_block_max_d(double v, KCU_SH(double) *smem)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1)
        v = fmax(v, __shfl_xor_sync(KCU_FULL_MASK, v, o));
    if (lane == 0)
        smem[warp] = v;
    __syncthreads();
    double r = -INFINITY;
    for (int i = 0; i < nw; i++)
        r = fmax(r, smem[i]);
    __syncthreads();
    return r;
}

/* Fixed-shape tree: the result depends on blockDim only, not on timing. */
static inline __device__ double kcu_block_sum_d(double v, KCU_SH(double) *smem)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = kcu_warp_sum_d(v);
    if (lane == 0)
        smem[warp] = v;
    __syncthreads();
    double r = 0;
    for (int i = 0; i < nw; i++)
        r += smem[i];
    __syncthreads();
    return r;
}

/* Shared state of one block select. */
typedef struct {
    KCU_SH(unsigned long long) hist[KCU_RADIX_BINS];
    KCU_SH(uint64_t) prefix;
    KCU_SH(int64_t) need;
    KCU_SH(int64_t) scan[33];
    KCU_SH(double) dsum[32];
    KCU_SH(float) fmax[32];
} kcu_select_smem;

/* Weighted top-k over n candidates, one block: key(j) from kcu_desc_key,
 * wt(j) >= 0 integer weights. Leaves the threshold key T in *T and the
 * weight to take from key == T candidates (lowest index first) in *need.
 * k >= total weight selects everything (T = ~0). Histograms use integer
 * atomics, so the result is independent of timing. */
template <class KeyFn, class WtFn>
static inline __device__ void kcu_block_select(int64_t n, int64_t k, KeyFn key, WtFn wt, kcu_select_smem *sm,
                                        uint64_t *T, int64_t *need)
{
    int64_t tot = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        tot += wt(j);
    int64_t total;
    (void)kcu_block_excl_scan(tot, &total, sm->scan);
    if (k >= total) {
        *T = ~0ull;
        *need = 0;
        return;
    }
    if (threadIdx.x == 0) {
        sm->prefix = 0;
        sm->need = k;
    }
    __syncthreads();
    for (int pass = 0; pass < KCU_RADIX_PASSES; pass++) {
        for (int b = threadIdx.x; b < KCU_RADIX_BINS; b += blockDim.x)
            sm->hist[b] = 0;
        __syncthreads();
        uint64_t prefix = sm->prefix;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            uint64_t kj = key(j);
            if (kcu_radix_match(kj, prefix, pass))
                atomicAdd(&sm->hist[kcu_radix_digit(kj, pass)], (unsigned long long)wt(j));
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            /* kcu_radix_pick's rule (kcu.h), over the shared bins */
            uint64_t below = 0, need = (uint64_t)(int64_t)sm->need;
            unsigned dg = 0;
            for (; dg < KCU_RADIX_BINS - 1; dg++) {
                uint64_t h = sm->hist[dg];
                if (below + h >= need)
                    break;
                below += h;
            }
            sm->need -= (int64_t)below;
            sm->prefix |= (uint64_t)dg << (56 - 8 * pass);
        }
        __syncthreads();
    }
    *T = sm->prefix;
    *need = sm->need;
    __syncthreads();
}

/* ---- select v3: keys in registers, 32-bit warp-aggregated histograms ----
 * The same result as kcu_block_select (T and need), found differently:
 *   - each thread keeps its KPT keys and weights in registers (candidate j
 *     is thread j % blockDim.x, slot j / blockDim.x), read once;
 *   - the passes start at the first digit where the smallest and largest
 *     key differ (digits above it are common to all: the v1 passes there
 *     find one bin holding everything) — probabilities in (0, 1] share
 *     their sign and top exponent bits, which v1 spends passes on;
 *   - per pass, lanes with the same digit are grouped by __match_any_sync
 *     and one of them adds the group's weight (__reduce_add_sync) to a
 *     32-bit shared bin: a native shared atomic, no compare-and-swap loop,
 *     one atomic per distinct digit per warp;
 *   - the bin is found by a parallel prefix over the 256 bins (8 warps),
 *     not by one thread walking them.
 * Requires n <= KPT · blockDim.x and a total weight below 2^31. */
typedef struct {
    KCU_SH(unsigned) hist[KCU_RADIX_BINS];
    KCU_SH(unsigned) wsum[KCU_RADIX_BINS / 32];
    KCU_SH(uint64_t) kmin[32], kmax[32];
    KCU_SH(uint64_t) prefix;
    KCU_SH(int64_t) need;
    KCU_SH(int64_t) scan[33];
    KCU_SH(double) dsum[32];
} kcu_select3_smem;

static __device__ __forceinline__ uint64_t kcu_warp_min_u64(uint64_t v)
{
    for (int o = 16; o > 0; o >>= 1) {
        uint64_t t = __shfl_xor_sync(KCU_FULL_MASK, v, o);
        v = t < v ? t : v;
    }
    return v;
}
static __device__ __forceinline__ uint64_t kcu_warp_max_u64(uint64_t v)
{
    for (int o = 16; o > 0; o >>= 1) {
        uint64_t t = __shfl_xor_sync(KCU_FULL_MASK, v, o);
        v = t > v ? t : v;
    }
    return v;
}

/* Smallest and largest key over the block (invalid slots hold ~0 / 0). */
template <int KPT>
static inline __device__ void kcu_block_key_range(const uint64_t (&key)[KPT], const int32_t (&wt)[KPT],
                                                  kcu_select3_smem *sm, uint64_t *lo, uint64_t *hi)
{
    uint64_t mn = ~0ull, mx = 0;
#pragma unroll
    for (int i = 0; i < KPT; i++)
        if (wt[i] > 0) {
            mn = key[i] < mn ? key[i] : mn;
            mx = key[i] > mx ? key[i] : mx;
        }
    mn = kcu_warp_min_u64(mn);
    mx = kcu_warp_max_u64(mx);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0) {
        sm->kmin[warp] = mn;
        sm->kmax[warp] = mx;
    }
    __syncthreads();
    mn = ~0ull;
    mx = 0;
    for (int w = 0; w < nw; w++) {
        uint64_t a = sm->kmin[w], b = sm->kmax[w];
        mn = a < mn ? a : mn;
        mx = b > mx ? b : mx;
    }
    *lo = mn;
    *hi = mx;
}

static inline __device__ void kcu_select3_pick(kcu_select3_smem *sm, uint64_t prefix, uint64_t need, int pass);

/* One pass: histogram of digit `pass` over keys matching the prefix, then
 * the bin holding the need-th unit (kcu_radix_pick's rule); updates
 * sm->prefix and sm->need. */
template <int KPT>
static inline __device__ void kcu_select3_pass(const uint64_t (&key)[KPT], const int32_t (&wt)[KPT], int pass,
                                               kcu_select3_smem *sm)
{
    for (int b = threadIdx.x; b < KCU_RADIX_BINS; b += blockDim.x)
        sm->hist[b] = 0u;
    __syncthreads();
    /* read before the barrier that precedes this pass's writes of both */
    const uint64_t prefix = sm->prefix, need = (uint64_t)(int64_t)sm->need;
#pragma unroll
    for (int i = 0; i < KPT; i++) {
        bool in = wt[i] > 0 && kcu_radix_match(key[i], prefix, pass);
        unsigned act = __ballot_sync(KCU_FULL_MASK, in);
        if (in) {
            unsigned dg = kcu_radix_digit(key[i], pass);
            unsigned peers = __match_any_sync(act, dg);
            unsigned w = __reduce_add_sync(peers, (unsigned)wt[i]);
            if ((int)(threadIdx.x & 31) == __ffs(peers) - 1)
                atomicAdd(&sm->hist[dg], w);
        }
    }
    __syncthreads();
    kcu_select3_pick(sm, prefix, need, pass);
}

/* kcu_block_select's contract (*T, *need) over keys and weights given as
 * functions of the index, for any n: the passes of v3 (32-bit shared bins
 * filled warp-aggregated with __match_any_sync + __reduce_add_sync, no
 * compare-and-swap loop; the bin found by a parallel prefix), all 8 of
 * them. The total weight must stay below 2^32. */
template <class KeyFn, class WtFn>
static inline __device__ void kcu_block_select32(int64_t n, int64_t k, KeyFn key, WtFn wt, kcu_select3_smem *sm,
                                                 uint64_t *T, int64_t *need)
{
    int64_t tot = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        tot += wt(j);
    int64_t total;
    (void)kcu_block_excl_scan(tot, &total, sm->scan);
    if (k >= total) {
        *T = ~0ull;
        *need = 0;
        return;
    }
    if (threadIdx.x == 0) {
        sm->prefix = 0;
        sm->need = k;
    }
    __syncthreads();
    for (int pass = 0; pass < KCU_RADIX_PASSES; pass++) {
        for (int b = threadIdx.x; b < KCU_RADIX_BINS; b += blockDim.x)
            sm->hist[b] = 0u;
        __syncthreads();
        const uint64_t prefix = sm->prefix, nd = (uint64_t)(int64_t)sm->need;
        for (int64_t base = 0; base < n; base += blockDim.x) { /* uniform trip count for the collectives */
            const int64_t j = base + threadIdx.x;
            const uint64_t kj = j < n ? key(j) : 0ull;
            const bool in = j < n && kcu_radix_match(kj, prefix, pass);
            const unsigned act = __ballot_sync(KCU_FULL_MASK, in);
            if (in) {
                unsigned dg = kcu_radix_digit(kj, pass);
                unsigned peers = __match_any_sync(act, dg);
                unsigned w = __reduce_add_sync(peers, (unsigned)wt(j));
                if ((int)(threadIdx.x & 31) == __ffs(peers) - 1)
                    atomicAdd(&sm->hist[dg], w);
            }
        }
        __syncthreads();
        kcu_select3_pick(sm, prefix, nd, pass);
    }
    *T = sm->prefix;
    *need = sm->need;
    __syncthreads();
}

/* After a pass's histogram: the bin holding the need-th unit by a parallel
 * prefix over the 256 bins (warps 0..7 scan 32 each; kcu_radix_pick's rule),
 * into sm->prefix and sm->need. Every thread calls it. */
static inline __device__ void kcu_select3_pick(kcu_select3_smem *sm, uint64_t prefix, uint64_t need, int pass)
{
    /* parallel prefix over the bins: warps 0..7 scan 32 bins each */
    const int t = threadIdx.x, lane = t & 31;
    unsigned v = 0, inc = 0;
    if (t < KCU_RADIX_BINS) {
        v = sm->hist[t];
        inc = v;
        for (int o = 1; o < 32; o <<= 1) {
            unsigned u = __shfl_up_sync(KCU_FULL_MASK, inc, o);
            if (lane >= o)
                inc += u;
        }
        if (lane == 31)
            sm->wsum[t >> 5] = inc;
    }
    __syncthreads();
    if (t < KCU_RADIX_BINS) {
        uint64_t before = 0;
        for (int w = 0; w < (t >> 5); w++)
            before += sm->wsum[w];
        uint64_t excl = before + inc - v;
        /* the first bin whose inclusive sum reaches need; bin 255 if none */
        if ((excl + v >= need && (excl < need || t == 0)) || (t == KCU_RADIX_BINS - 1 && excl + v < need)) {
            sm->need = (int64_t)need - (int64_t)excl;
            sm->prefix = prefix | (uint64_t)t << (56 - 8 * pass);
        }
    }
    __syncthreads();
}

/* kcu_block_select's contract over register-resident keys: *T, *need. */
template <int KPT>
static inline __device__ void kcu_block_select3(const uint64_t (&key)[KPT], const int32_t (&wt)[KPT], int64_t k,
                                                kcu_select3_smem *sm, uint64_t *T, int64_t *need)
{
    int64_t tot = 0;
#pragma unroll
    for (int i = 0; i < KPT; i++)
        tot += wt[i];
    int64_t total;
    (void)kcu_block_excl_scan(tot, &total, sm->scan);
    if (k >= total) {
        *T = ~0ull;
        *need = 0;
        return;
    }
    uint64_t lo, hi;
    kcu_block_key_range(key, wt, sm, &lo, &hi);
    /* digits above the first differing bit are common: start there */
    int first = lo == hi ? KCU_RADIX_PASSES : __clzll((long long)(lo ^ hi)) / KCU_RADIX_BITS;
    uint64_t common = first >= KCU_RADIX_PASSES ? lo : lo & ~(~0ull >> (KCU_RADIX_BITS * first));
    __syncthreads();
    if (threadIdx.x == 0) {
        sm->prefix = common;
        sm->need = k;
    }
    __syncthreads();
    for (int pass = first; pass < KCU_RADIX_PASSES; pass++)
        kcu_select3_pass(key, wt, pass, sm);
    *T = sm->prefix;
    *need = sm->need;
    __syncthreads();
}

/* Walks the candidates in index order, tile by tile, and calls
 * emit(j, offset, n_j) for every candidate that contributes n_j > 0 units,
 * offset being the sum of n over lower indices (so outputs come out in
 * ascending index order). wt must be the select's weights. whole: a
 * candidate that is taken at all contributes whole_wt(j) units instead
 * (page granularity). Returns the total. */
template <class KeyFn, class WtFn, class WholeFn, class EmitFn, class Smem>
static inline __device__ int64_t kcu_block_emit(int64_t n, KeyFn key, WtFn wt, uint64_t T, int64_t need, int whole,
                                         WholeFn whole_wt, EmitFn emit, Smem *sm)
{
    int64_t eq_carry = 0, off_carry = 0;
    for (int64_t base = 0; base < n; base += blockDim.x) {
        int64_t j = base + threadIdx.x;
        uint64_t kj = j < n ? key(j) : ~0ull;
        int64_t wj = j < n ? wt(j) : 0;
        int64_t eqw = (j < n && kj == T) ? wj : 0, eq_tot;
        int64_t eq_before = eq_carry + kcu_block_excl_scan(eqw, &eq_tot, sm->scan);
        int64_t take = j < n ? kcu_select_take(kj, wj, T, need, eq_before) : 0;
        int64_t nj = whole ? (take > 0 ? whole_wt(j) : 0) : take, n_tot;
        int64_t off = off_carry + kcu_block_excl_scan(nj, &n_tot, sm->scan);
        if (nj > 0)
            emit(j, off, nj);
        eq_carry += eq_tot;
        off_carry += n_tot;
    }
    return off_carry;
}

#endif
