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

/* Walks the candidates in index order, tile by tile, and calls
 * emit(j, offset, n_j) for every candidate that contributes n_j > 0 units,
 * offset being the sum of n over lower indices (so outputs come out in
 * ascending index order). wt must be the select's weights. whole: a
 * candidate that is taken at all contributes whole_wt(j) units instead
 * (page granularity). Returns the total. */
template <class KeyFn, class WtFn, class WholeFn, class EmitFn>
static inline __device__ int64_t kcu_block_emit(int64_t n, KeyFn key, WtFn wt, uint64_t T, int64_t need, int whole,
                                         WholeFn whole_wt, EmitFn emit, kcu_select_smem *sm)
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
