/* dense_dev.cuh — device parts shared by the dense decode kernels of
 * dense_decode.cu (v1–v4) and dense_decode_v5.cu (v5): the block shape and
 * v4's split merge in the kernel. Included by those .cu files only; the
 * function is a template (its own copy per translation unit). */
#ifndef DENSE_DEV_CUH
#define DENSE_DEV_CUH

#include "kcu_cuda.h"

#include "kcu.h"
#include "kcu_dev.cuh"
#include "kcu_kernels.h"

#define ATT_THREADS 128
#define ATT_WARPS (ATT_THREADS / 32)
#define ATT_GRANULE 16

/* v4's split merge, in the last split block of its (sequence, KV head) to
 * finish (ticket after __threadfence, so the others' partials are
 * visible). Warp w owns heads w and w + 4: its lanes read the splits' (m,
 * l), the largest m is M, each split's weight exp(m_s − M) goes to shared
 * memory (w, reusing the tile accumulators: nsplit·G floats fit, as the
 * launcher checks) and L = Σ_s l_s·w_s is a warp sum. Then each thread
 * merges its ⌈G·D/4/128⌉ 16-byte runs of the accumulators together (since
 * session 5; before, one run after the other: two chains at G = 8, d =
 * 128), splits in order, 8 splits' loads per run in flight; the ticket is
 * zeroed for the next call. Over 80 lines: the ticket, the weights and the
 * two forms of the final loop (one run per thread, several) read the same
 * shared state, which splitting would pass around without making clearer. */
template <int D, int G>
static __device__ void attend_v4_merge(const kcu_attend_args &a, KCU_SH(float) *w)
{
    KCU_SHARED(int, sm_last, [1]);
    KCU_SHARED(float, sm_L, [G]);
    const int bh = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, ns = a.nsplit;
    const size_t nparts = (size_t)a.B * a.Hkv * ns;
    unsigned *ticket = reinterpret_cast<unsigned *>(a.ws + nparts * G * (2 + D));
    __threadfence();
    __syncthreads(); /* every thread's partials written (and w free: sm_acc was read) */
    if (tid == 0)
        sm_last[0] = atomicAdd(&ticket[bh], 1u) == (unsigned)ns - 1u;
    __syncthreads();
    if (!sm_last[0])
        return;
    __threadfence();
    const float *ml = a.ws + (size_t)bh * ns * G * 2;
    const float *pacc = a.ws + nparts * G * 2 + (size_t)bh * ns * G * D;
    for (int h = warp; h < G; h += ATT_WARPS) {
        float M = -INFINITY;
        for (int s = lane; s < ns; s += 32)
            M = fmaxf(M, kcu_ld_cg(ml + ((size_t)s * G + h) * 2));
        for (int o = 16; o > 0; o >>= 1)
            M = fmaxf(M, __shfl_xor_sync(KCU_FULL_MASK, M, o));
        float L = 0.0f;
        for (int s = lane; s < ns; s += 32) {
            const float m = kcu_ld_cg(ml + ((size_t)s * G + h) * 2);
            const float ws = m == -INFINITY ? 0.0f : expf(m - M);
            w[s * G + h] = ws;
            L = fmaf(kcu_ld_cg(ml + ((size_t)s * G + h) * 2 + 1), ws, L);
        }
        for (int o = 16; o > 0; o >>= 1)
            L += __shfl_xor_sync(KCU_FULL_MASK, L, o);
        if (lane == 0)
            sm_L[h] = L;
    }
    __syncthreads();
    constexpr int NQ = G * D / 4, QN = (NQ + ATT_THREADS - 1) / ATT_THREADS; /* a thread's 16-byte runs */
    if constexpr (QN == 1) {
        for (int q = tid; q < NQ; q += ATT_THREADS) { /* 4 outputs of head q·4 / D */
            const int h = q * 4 / D;
            float A[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 8
            for (int s = 0; s < ns; s++) {
                const uint4 v = kcu_ld_cg_u4(reinterpret_cast<const uint4 *>(pacc + (size_t)s * G * D) + q);
                const float ws = w[s * G + h];
                A[0] = fmaf(__uint_as_float(v.x), ws, A[0]);
                A[1] = fmaf(__uint_as_float(v.y), ws, A[1]);
                A[2] = fmaf(__uint_as_float(v.z), ws, A[2]);
                A[3] = fmaf(__uint_as_float(v.w), ws, A[3]);
            }
            const float L = sm_L[h];
            float *o = a.out + (size_t)bh * G * D + q * 4;
            for (int e = 0; e < 4; e++)
                o[e] = L > 0.0f ? A[e] / L : 0.0f;
        }
    } else { /* G = 8, D = 128: a thread's runs q = tid + 128j together, not one after the other */
        static_assert(NQ % ATT_THREADS == 0, "whole runs per thread");
        float A[QN][4] = {};
#pragma unroll 8
        for (int s = 0; s < ns; s++)
#pragma unroll
            for (int j = 0; j < QN; j++) {
                const int q = tid + j * ATT_THREADS;
                const uint4 v = kcu_ld_cg_u4(reinterpret_cast<const uint4 *>(pacc + (size_t)s * G * D) + q);
                const float ws = w[s * G + q * 4 / D];
                A[j][0] = fmaf(__uint_as_float(v.x), ws, A[j][0]);
                A[j][1] = fmaf(__uint_as_float(v.y), ws, A[j][1]);
                A[j][2] = fmaf(__uint_as_float(v.z), ws, A[j][2]);
                A[j][3] = fmaf(__uint_as_float(v.w), ws, A[j][3]);
            }
#pragma unroll
        for (int j = 0; j < QN; j++) {
            const int q = tid + j * ATT_THREADS;
            const float L = sm_L[q * 4 / D];
            float *o = a.out + (size_t)bh * G * D + q * 4;
            for (int e = 0; e < 4; e++)
                o[e] = L > 0.0f ? A[j][e] / L : 0.0f;
        }
    }
    if (tid == 0)
        ticket[bh] = 0u;
}

#endif
