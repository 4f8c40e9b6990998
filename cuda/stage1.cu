/* stage1.cu — stage 1 of RocketKV at the end of a prefill (snapkv-gqa,
 * docs/algorithm.md): window scores of the last w queries of the G heads against
 * all S keys (causal inside the window), softmax per query row in fp32 over
 * all keys it sees, votes = Σ_h Σ_i p over the prefix columns, max pooling
 * (kernel 63 by default, same padding, padding never wins), then the top
 * (P − w) prefix positions (ties to the lower index) + the window, ascending.
 *
 * Single-turn form: candidates are positions 0..S−1 of a contiguous cache
 * (refimpl's rkv_stage1_select also takes a candidate list, for multi-turn;
 * not done here).
 *
 * Versions (no GPU has run them yet; their logic passes
 *     gpu_check's checks under the CPU emulation, `make cuda-emu`, at small shapes):
 *   v1  four kernels + select. stats: blocks of 64 query rows × 1024 keys,
 *       64×64 score tiles from fp32 copies of Q and K in shared memory
 *       (CUDA-core 4×4 register tiles, no tensor cores), per-row online
 *       (max, sum) by 64 threads; merge: chunks in order; votes: recompute
 *       the tiles (K read twice in all), p = exp(s − M)/L in fp32 summed per
 *       column in double, rows in (head, window query) order; pool: one
 *       thread per column; select: one 1024-thread block per KV head, 8-pass
 *       radix over the pooled doubles, ascending emit. Twice the minimal
 *       FLOPs (two score passes) and about G·w·S·d·4 FLOP each: this runs
 *       once per prefill and is not tuned.
 *   v2  (a.select_v2) the select through kcu_block_select32: 32-bit
 *       warp-aggregated bins and a parallel bin prefix, no compare-and-swap
 *       loop (v1's 64-bit bins compile to one). The rest as v1. */
#include "kcu_cuda.h"

#include "kcu.h"
#include "kcu_dev.cuh"
#include "kcu_kernels.h"

#define S1_ROWS 64
#define S1_KEYS 64
#define S1_CHUNK 1024
#define S1_THREADS 256
#define S1_SEL_THREADS 1024

static int64_t s1_nchunks(int64_t S) { return (S + S1_CHUNK - 1) / S1_CHUNK; }

size_t kcu_stage1_ws_bytes(int64_t S, int B, int Hkv, int G, int64_t w)
{
    size_t rows = (size_t)G * w;
    return ((size_t)B * Hkv * rows * s1_nchunks(S) * 2 + (size_t)B * Hkv * rows * 2) * sizeof(float);
}

template <int D>
static size_t s1_smem_bytes(void)
{
    return (size_t)(2 * S1_ROWS * (D + 1) + S1_ROWS * (S1_KEYS + 1)) * sizeof(float);
}

/* Loads query rows [r0, r0 + 64) of this head (zero past the end), K rows
 * [j0, j0 + 64) (zero past S), and fills St with scaled, causally masked
 * scores: window row i (position S − w + i) sees keys j <= S − w + i. */
template <int D>
static __device__ void s1_tile(const kcu_stage1_args &a, int bh, int64_t r0, int64_t j0, KCU_SH(float) *Qs,
                               KCU_SH(float) *Ks, KCU_SH(float) *St, bool load_q)
{
    const int64_t rows = (int64_t)a.G * a.w;
    const float scale = rsqrtf((float)D);
    if (load_q) {
        for (int it = threadIdx.x; it < S1_ROWS * D; it += S1_THREADS) {
            int r = it / D, e = it % D;
            int64_t rr = r0 + r;
            Qs[r * (D + 1) + e] = rr < rows ? a.Qw[((size_t)bh * rows + rr) * D + e] : 0.0f;
        }
    }
    for (int it = threadIdx.x; it < S1_KEYS * D; it += S1_THREADS) {
        int c = it / D, e = it % D;
        int64_t j = j0 + c;
        Ks[c * (D + 1) + e] = j < a.S ? kcu_bf16_to_f32(a.K[((size_t)bh * a.cap + j) * D + e]) : 0.0f;
    }
    __syncthreads();
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    float acc[4][4];
#pragma unroll
    for (int u = 0; u < 4; u++)
#pragma unroll
        for (int c = 0; c < 4; c++)
            acc[u][c] = 0.0f;
    for (int e = 0; e < D; e++) {
        float qv[4], kv[4];
#pragma unroll
        for (int u = 0; u < 4; u++)
            qv[u] = Qs[(ty * 4 + u) * (D + 1) + e];
#pragma unroll
        for (int c = 0; c < 4; c++)
            kv[c] = Ks[(tx + 16 * c) * (D + 1) + e];
#pragma unroll
        for (int u = 0; u < 4; u++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                acc[u][c] = fmaf(qv[u], kv[c], acc[u][c]);
    }
#pragma unroll
    for (int u = 0; u < 4; u++) {
        int r = ty * 4 + u;
        int64_t i = (r0 + r) % a.w;
#pragma unroll
        for (int c = 0; c < 4; c++) {
            int kc = tx + 16 * c;
            int64_t j = j0 + kc;
            bool ok = j < a.S && j <= a.S - a.w + i;
            St[r * (S1_KEYS + 1) + kc] = ok ? acc[u][c] * scale : -INFINITY;
        }
    }
    __syncthreads();
}

/* Per query row, the online (max, Σexp) over one chunk of keys. */
template <int D>
__global__ void __launch_bounds__(S1_THREADS) s1_stats_kernel(kcu_stage1_args a, int64_t nchunks)
{
    KCU_DYN_SMEM(float, smem);
    KCU_SH(float) *Qs = smem, *Ks = Qs + S1_ROWS * (D + 1), *St = Ks + S1_ROWS * (D + 1);
    const int chunk = blockIdx.x, bh = blockIdx.z;
    const int64_t r0 = (int64_t)blockIdx.y * S1_ROWS, rows = (int64_t)a.G * a.w;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = (int64_t)chunk * S1_CHUNK; j0 < a.S && j0 < (int64_t)(chunk + 1) * S1_CHUNK; j0 += S1_KEYS) {
        s1_tile<D>(a, bh, r0, j0, Qs, Ks, St, j0 == (int64_t)chunk * S1_CHUNK);
        if (threadIdx.x < S1_ROWS)
            for (int c = 0; c < S1_KEYS; c++) {
                float s = St[threadIdx.x * (S1_KEYS + 1) + c], pr;
                if (s != -INFINITY)
                    (void)kcu_online_add(&m, &l, s, &pr);
            }
        __syncthreads();
    }
    int64_t rr = r0 + threadIdx.x;
    if (threadIdx.x < S1_ROWS && rr < rows) {
        float *o = a.ws + (((size_t)bh * rows + rr) * nchunks + chunk) * 2;
        o[0] = m;
        o[1] = l;
    }
}

__global__ void s1_merge_kernel(kcu_stage1_args a, int64_t nchunks)
{
    const int64_t rows = (int64_t)a.G * a.w;
    const int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (it >= (int64_t)a.B * a.Hkv * rows)
        return;
    const float *in = a.ws + (size_t)it * nchunks * 2;
    float M = -INFINITY, L = 0.0f;
    for (int64_t c = 0; c < nchunks; c++) {
        float f1, f2;
        float mm = kcu_lse_merge(M, in[c * 2], &f1, &f2);
        L = L * f1 + in[c * 2 + 1] * f2;
        M = mm;
    }
    float *o = a.ws + (size_t)a.B * a.Hkv * rows * nchunks * 2 + (size_t)it * 2;
    o[0] = M;
    o[1] = L;
}

/* votes[j] = Σ_h Σ_i p_{h,i}(j) for prefix columns j < S − w. */
template <int D>
__global__ void __launch_bounds__(S1_THREADS) s1_votes_kernel(kcu_stage1_args a, int64_t nchunks)
{
    KCU_DYN_SMEM(float, smem);
    KCU_SH(float) *Qs = smem, *Ks = Qs + S1_ROWS * (D + 1), *St = Ks + S1_ROWS * (D + 1);
    const int bh = blockIdx.y;
    const int64_t j0 = (int64_t)blockIdx.x * S1_KEYS, rows = (int64_t)a.G * a.w, npre = a.S - a.w;
    const float *ML = a.ws + (size_t)a.B * a.Hkv * rows * nchunks * 2 + (size_t)bh * rows * 2;
    double v = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += S1_ROWS) {
        s1_tile<D>(a, bh, r0, j0, Qs, Ks, St, true);
        if (threadIdx.x < S1_KEYS)
            for (int r = 0; r < S1_ROWS && r0 + r < rows; r++) {
                float s = St[r * (S1_KEYS + 1) + threadIdx.x];
                float M = ML[(r0 + r) * 2], L = ML[(r0 + r) * 2 + 1];
                if (s != -INFINITY && L > 0.0f)
                    v += (double)(expf(s - M) / L);
            }
        __syncthreads();
    }
    int64_t j = j0 + threadIdx.x;
    if (threadIdx.x < S1_KEYS && j < npre)
        a.votes[(size_t)bh * a.S + j] = v;
}

/* Max pooling, stride 1, same padding; padding never wins. */
__global__ void s1_pool_kernel(kcu_stage1_args a)
{
    const int bh = blockIdx.y;
    const int64_t npre = a.S - a.w, j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= npre)
        return;
    int64_t lo, hi;
    kcu_pool_window(j, npre, a.kernel, &lo, &hi);
    const double *v = a.votes + (size_t)bh * a.S;
    double mx = v[lo];
    for (int64_t t = lo + 1; t <= hi; t++)
        mx = v[t] > mx ? v[t] : mx;
    a.pooled[(size_t)bh * a.S + j] = mx;
}

/* Top (P − w) prefix positions by pooled vote (ties to the lower index),
 * ascending, then the window. */
__global__ void __launch_bounds__(S1_SEL_THREADS) s1_select_kernel(kcu_stage1_args a)
{
    KCU_SHARED(kcu_select_smem, sm, );
    const int bh = blockIdx.x;
    const int64_t npre = a.S - a.w;
    const double *pooled = a.pooled + (size_t)bh * a.S;
    int32_t *kept = a.kept + (size_t)bh * a.P;
    auto key = [&](int64_t j) { return kcu_desc_key(pooled[j]); };
    auto one = [](int64_t) { return (int64_t)1; };
    /* kept holds P slots: at most P − w from the prefix (every write is
     * bounded, whatever the select returns), then the window. */
    const int64_t nsel = a.P - a.w;
    auto emit = [&](int64_t j, int64_t off, int64_t) {
        if (off < nsel)
            kept[off] = (int32_t)j;
    };
    uint64_t T;
    int64_t need;
    kcu_block_select(npre, nsel, key, one, &sm, &T, &need);
    int64_t n = kcu_block_emit(npre, key, one, T, need, 0, one, emit, &sm);
    n = n < nsel ? n : nsel;
    for (int64_t i = threadIdx.x; i < a.w && n + i < a.P; i += S1_SEL_THREADS)
        kept[n + i] = (int32_t)(npre + i);
}

/* v2 (a.select_v2): the same selection through kcu_block_select32 — 32-bit
 * warp-aggregated shared bins and a parallel prefix over them, no 64-bit
 * compare-and-swap loop (v1's kcu_block_select has one; the audit's
 * baseline records it). Same T and need by construction; checked as
 * `<case>/v2-select`. */
__global__ void __launch_bounds__(S1_SEL_THREADS) s1_select_v2_kernel(kcu_stage1_args a)
{
    KCU_SHARED(kcu_select3_smem, sm, );
    const int bh = blockIdx.x;
    const int64_t npre = a.S - a.w, nsel = a.P - a.w;
    const double *pooled = a.pooled + (size_t)bh * a.S;
    int32_t *kept = a.kept + (size_t)bh * a.P;
    auto key = [&](int64_t j) { return kcu_desc_key(pooled[j]); };
    auto one = [](int64_t) { return (int64_t)1; };
    auto emit = [&](int64_t j, int64_t off, int64_t) {
        if (off < nsel)
            kept[off] = (int32_t)j;
    };
    uint64_t T;
    int64_t need;
    kcu_block_select32(npre, nsel, key, one, &sm, &T, &need);
    int64_t n = kcu_block_emit(npre, key, one, T, need, 0, one, emit, &sm);
    n = n < nsel ? n : nsel;
    for (int64_t i = threadIdx.x; i < a.w && n + i < a.P; i += S1_SEL_THREADS)
        kept[n + i] = (int32_t)(npre + i);
}

/* Nothing to evict: keep 0..S−1. */
__global__ void s1_keep_all_kernel(kcu_stage1_args a)
{
    int32_t *kept = a.kept + (size_t)blockIdx.x * a.P;
    for (int64_t j = threadIdx.x; j < a.S; j += blockDim.x)
        kept[j] = (int32_t)j;
}

template <int D>
static cudaError_t s1_launch(const kcu_stage1_args *a, cudaStream_t st)
{
    static int attr_set = 0;
    size_t smem = s1_smem_bytes<D>();
    cudaError_t e;
    if (!attr_set) {
        if ((e = cudaFuncSetAttribute(s1_stats_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)))
            return e;
        if ((e = cudaFuncSetAttribute(s1_votes_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)))
            return e;
        attr_set = 1;
    }
    const int64_t nch = s1_nchunks(a->S), rows = (int64_t)a->G * a->w, nbh = (int64_t)a->B * a->Hkv;
    const int64_t npre = a->S - a->w;
    dim3 g1((unsigned)nch, (unsigned)((rows + S1_ROWS - 1) / S1_ROWS), (unsigned)nbh);
    auto stats_k = s1_stats_kernel<D>;
    KCU_LAUNCH(stats_k, g1, S1_THREADS, smem, st, *a, nch);
    if ((e = cudaGetLastError()))
        return e;
    KCU_LAUNCH(s1_merge_kernel, (unsigned)((nbh * rows + 255) / 256), 256, 0, st, *a, nch);
    if ((e = cudaGetLastError()))
        return e;
    dim3 g3((unsigned)((npre + S1_KEYS - 1) / S1_KEYS), (unsigned)nbh);
    auto votes_k = s1_votes_kernel<D>;
    KCU_LAUNCH(votes_k, g3, S1_THREADS, smem, st, *a, nch);
    if ((e = cudaGetLastError()))
        return e;
    dim3 g4((unsigned)((npre + 255) / 256), (unsigned)nbh);
    KCU_LAUNCH(s1_pool_kernel, g4, 256, 0, st, *a);
    if ((e = cudaGetLastError()))
        return e;
    if (a->select_v2)
        KCU_LAUNCH(s1_select_v2_kernel, (unsigned)nbh, S1_SEL_THREADS, 0, st, *a);
    else
        KCU_LAUNCH(s1_select_kernel, (unsigned)nbh, S1_SEL_THREADS, 0, st, *a);
    return cudaGetLastError();
}

cudaError_t kcu_stage1(const kcu_stage1_args *a, cudaStream_t st)
{
    if (a->w < 1 || a->G < 1 || a->B < 1 || a->Hkv < 1 || a->kernel < 1)
        return cudaErrorInvalidValue;
    if (a->S <= a->P) {
        KCU_LAUNCH(s1_keep_all_kernel, (unsigned)(a->B * a->Hkv), 256, 0, st, *a);
        return cudaGetLastError();
    }
    if (a->P < a->w)
        return cudaErrorInvalidValue;
    if (a->d == 128)
        return s1_launch<128>(a, st);
    if (a->d == 64)
        return s1_launch<64>(a, st);
    return cudaErrorInvalidValue;
}
