/* dense_decode_v5.cu — dense decode v5 (a.version == 5): GQA decode
 * attention on the tensor cores, for the large groups where v4's CUDA-core
 * loop is issue-bound (G = 8: 558 / 672 SASS instructions per 2 KB at d =
 * 128 / 64, the FMAs alone ~256). The approach of FlashInfer's decode
 * kernels for large GQA groups (the query heads of a group as the rows of an
 * mma): QKᵀ and PV are mma.sync.aligned.m16n8k16 bf16 → f32
 * (kcu_mma_bf16_16816, kcu_dev.cuh), with
 *   - M (16 rows): the G ≤ 8 query heads twice — rows 0–7 the bf16 part
 *     ("hi") of q (and of p), rows 8–15 the bf16 remainder ("lo" = x − hi),
 *     so the padding rows carry the low bits and q and p keep ~16
 *     significant bits (one bf16 alone: 8) at no extra mma; a head's score
 *     is row g + row g + 8, as is its output;
 *   - N: tokens (QKᵀ, 8 per mma) or head dimensions (PV, 8 per mma);
 *   - K: head dimensions (QKᵀ, 16 per mma) or tokens (PV, 16 per mma).
 * The order of the head dimensions inside QKᵀ's K is permuted (any order
 * gives the same dot product) so that a lane's 128-bit load of 8 K values
 * is two k-steps' B fragments as loaded; the PV output dimension n of
 * chunk c is g·D/8 + c (g = the lane's groupID), so a lane loads D/8
 * consecutive dimensions of each of its 4 V rows (128-bit loads) and builds
 * the B fragments (two tokens per register) with __byte_perm. The QKᵀ
 * output fragment (lane: head g, tokens 2t and 2t + 1 of each 8) is the PV
 * A fragment as it stands (FlashAttention-2's register reuse): no shuffles,
 * no shared memory in the loop, no ldmatrix.
 *
 * A warp's tile is 16 tokens: 2·(D/16) mma for QKᵀ, D/8 for PV; the online
 * softmax once per tile (the max over the lane's 4 scores and its group's 4
 * lanes, two shuffles; scores in log2 units, exp2f: 5 per lane per tile).
 * Tiles go to the 4 warps in turn; rows past the split's end load the
 * segment's first row (finite; its p is 0 — a NaN row would poison the
 * tensor core's sum). The sparse form stages each 256-row segment of the
 * position list in shared memory, as v3. The block's 4 warps merge in
 * shared memory, then v4's split merge (dense_dev.cuh) in the last block.
 *
 * Launched by kcu_attend for version 5 when G = 8 (G ≤ 8 works; the audit,
 * reports/cuda-audit/, shows whether it beats v4 at G = 4, where v4 meets
 * the instruction goal); otherwise version 5 runs v4. */
#include "dense_dev.cuh"

#define V5_SEG 256 /* staged positions per segment (sparse form) */
#define V5_TILE 16 /* tokens per warp tile */

/* Word i of a 16-byte load (i a constant after unrolling: a register). */
static __device__ __forceinline__ unsigned v5_word(const uint4 &u, int i)
{
    return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;
}

/* The Q fragments of the QKᵀ mma: k-step kk (16 dims, chunk c = kk/2 of 32
 * dims, half h = kk%2) maps the mma's k = 2t + e (e ∈ {0, 1}) to dim 32c + 8t
 * + 4h + e and k = 2t + 8 + e to 32c + 8t + 4h + 2 + e; registers 0/2: hi of
 * q's rows 0–7 (head g, zero past G), 1/3: lo. q pre-scaled by log2(e)/√D. */
template <int D, int G>
static __device__ __forceinline__ void v5_q_frags(const kcu_attend_args &a, int bh, uint32_t (*qa)[4])
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const float scale = 1.4426950408889634f * rsqrtf((float)D);
    const float *qh = a.q + ((size_t)bh * G + (g < G ? g : 0)) * D;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
        for (int r = 0; r < 2; r++) { /* r = 0: k = 2t + e; r = 1: k = 2t + 8 + e */
            const int dim = 32 * (kk >> 1) + 8 * t + 4 * (kk & 1) + 2 * r;
            const float x0 = g < G ? qh[dim] * scale : 0.0f, x1 = g < G ? qh[dim + 1] * scale : 0.0f;
            const uint32_t hi = kcu_pack_bf16x2(x0, x1);
            qa[kk][2 * r] = hi;
            qa[kk][2 * r + 1] = kcu_pack_bf16x2(x0 - __uint_as_float(hi << 16), x1 - __uint_as_float(hi & 0xffff0000u));
        }
}

/* One warp tile's online-softmax step: x[j][e] the lane's scores (head g,
 * tokens 8j + 2t + e; −∞ past the end), m and l its head's running max and
 * (lane-partial) sum; returns the rescale factor and the P fragment (hi in
 * registers 0/2, lo in 1/3: tokens 2t + e and 8 + 2t + e). */
static __device__ __forceinline__ float v5_softmax(float (*x)[2], float &m, float &l, uint32_t *pa)
{
    float mt = fmaxf(fmaxf(x[0][0], x[0][1]), fmaxf(x[1][0], x[1][1]));
    mt = fmaxf(mt, __shfl_xor_sync(KCU_FULL_MASK, mt, 1));
    mt = fmaxf(mt, __shfl_xor_sync(KCU_FULL_MASK, mt, 2));
    const float mn = fmaxf(m, mt);
    const float f = m == -INFINITY ? 0.0f : exp2f(m - mn);
    float p[2][2];
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 2; e++)
            p[j][e] = x[j][e] == -INFINITY ? 0.0f : exp2f(x[j][e] - mn);
    l = l * f + ((p[0][0] + p[0][1]) + (p[1][0] + p[1][1]));
    m = mn;
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t hi = kcu_pack_bf16x2(p[j][0], p[j][1]);
        pa[2 * j] = hi;
        pa[2 * j + 1] = kcu_pack_bf16x2(p[j][0] - __uint_as_float(hi << 16), p[j][1] - __uint_as_float(hi & 0xffff0000u));
    }
    return f;
}

/* The block's 4 warps merged (in warp order, as v3 merges its row groups)
 * into this split's partial in ws; m in log2 units here, natural in ws. */
template <int D, int G>
static __device__ void v5_block_partial(const kcu_attend_args &a, KCU_SH(float) (*sm_m)[G],
                                        KCU_SH(float) (*sm_l)[G], KCU_SH(float) (*sm_acc)[G][D])
{
    const int bh = blockIdx.y, split = blockIdx.x;
    size_t part = (size_t)bh * a.nsplit + split;
    float *ml = a.ws + part * G * 2;
    float *pacc = a.ws + (size_t)a.B * a.Hkv * a.nsplit * G * 2 + part * G * D;
    for (int it = threadIdx.x; it < G * D; it += ATT_THREADS) {
        int h = it / D, i = it % D;
        float M = -INFINITY, L = 0.0f, A = 0.0f;
        for (int r = 0; r < ATT_WARPS; r++)
            M = fmaxf(M, sm_m[r][h]);
        if (M != -INFINITY)
            for (int r = 0; r < ATT_WARPS; r++) {
                float f = sm_m[r][h] == -INFINITY ? 0.0f : exp2f(sm_m[r][h] - M);
                L = fmaf(sm_l[r][h], f, L);
                A = fmaf(sm_acc[r][h][i], f, A);
            }
        pacc[(size_t)h * D + i] = A;
        if (i == 0) {
            ml[h * 2] = M == -INFINITY ? M : M * 0.6931471805599453f;
            ml[h * 2 + 1] = L;
        }
    }
}

/* v5 (file comment). 2 blocks per SM at d = 128 (~180 live registers: the
 * Q fragments, the D/2 accumulators, a tile's K and V), 4 at d = 64. Over
 * 80 lines on purpose, as v1–v4: the fragments live in registers across the
 * load, QKᵀ, softmax and PV phases. */
template <int D, int G>
__global__ void __launch_bounds__(ATT_THREADS, D == 64 ? 4 : 2) attend_split_v5_kernel(kcu_attend_args a)
{
    constexpr int KC = D / 32, VW = D / 64, NC = D / 8;
    KCU_SHARED(float, sm_m, [ATT_WARPS][G]);
    KCU_SHARED(float, sm_l, [ATT_WARPS][G]);
    KCU_SHARED(float, sm_acc, [ATT_WARPS][G][D]);
    KCU_SHARED(int32_t, sidx, [V5_SEG]);
    const int bh = blockIdx.y, split = blockIdx.x, b = bh / a.Hkv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    int64_t n = a.idx ? (int64_t)a.count[bh] : (int64_t)a.len[b], lo, hi;
    kcu_split_range(n, a.nsplit, split, ATT_GRANULE, &lo, &hi);
    uint32_t qa[D / 16][4];
    v5_q_frags<D, G>(a, bh, qa);
    float o[NC][4], m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int c = 0; c < NC; c++)
        o[c][0] = o[c][1] = o[c][2] = o[c][3] = 0.0f;
    const uint16_t *Kb = a.K + (size_t)bh * a.cap * D + 8 * t;  /* + row·D + 32c */
    const uint16_t *Vb = a.V + (size_t)bh * a.cap * D + g * NC; /* + row·D + 8w */
    const int32_t *ib = a.idx ? a.idx + (size_t)bh * a.idx_cap : nullptr;
    for (int64_t s0 = lo; s0 < hi; s0 += V5_SEG) { /* uniform over the block: the barriers see every thread */
        const int64_t s1 = s0 + V5_SEG < hi ? s0 + V5_SEG : hi;
        if (ib) {
            for (int64_t i = s0 + threadIdx.x; i < s1; i += ATT_THREADS)
                sidx[i - s0] = ib[i];
            __syncthreads();
        }
        for (int64_t t0 = s0 + warp * V5_TILE; t0 < s1; t0 += ATT_WARPS * V5_TILE) { /* uniform over the warp */
            uint4 kv[2][KC], vv[4][VW];
#pragma unroll
            for (int j = 0; j < 2; j++) { /* K rows t0 + 8j + g */
                const int64_t tk = t0 + 8 * j + g < s1 ? t0 + 8 * j + g : s0;
                const int64_t row = ib ? (int64_t)sidx[tk - s0] : tk;
#pragma unroll
                for (int c = 0; c < KC; c++)
                    kv[j][c] = __ldg(reinterpret_cast<const uint4 *>(Kb + row * D + 32 * c));
            }
#pragma unroll
            for (int r = 0; r < 4; r++) { /* V rows t0 + 2t + (r & 1) + 8·(r >> 1) */
                const int64_t tr = t0 + 2 * t + (r & 1) + 8 * (r >> 1);
                const int64_t tv = tr < s1 ? tr : s0;
                const int64_t row = ib ? (int64_t)sidx[tv - s0] : tv;
#pragma unroll
                for (int w = 0; w < VW; w++)
                    vv[r][w] = __ldg(reinterpret_cast<const uint4 *>(Vb + row * D + 8 * w));
            }
            float s[2][4], x[2][2];
#pragma unroll
            for (int j = 0; j < 2; j++) {
                s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) {
                    const uint4 &k4 = kv[j][kk >> 1];
                    const uint32_t bk[2] = {kk & 1 ? k4.z : k4.x, kk & 1 ? k4.w : k4.y};
                    kcu_mma_bf16_16816(s[j], qa[kk], bk, s[j]);
                }
#pragma unroll
                for (int e = 0; e < 2; e++) /* head g, token t0 + 8j + 2t + e: hi row + lo row */
                    x[j][e] = t0 + 8 * j + 2 * t + e < s1 ? s[j][e] + s[j][e + 2] : -INFINITY;
            }
            uint32_t pa[4];
            const float f = v5_softmax(x, m, l, pa);
#pragma unroll
            for (int c = 0; c < NC; c++) {
                const int w = c >> 1; /* the 32-bit word of dims g·D/8 + 2w, + 1 */
                const unsigned sel = c & 1 ? 0x7632u : 0x5410u;
                const uint32_t bv[2] = {__byte_perm(v5_word(vv[0][w >> 2], w & 3), v5_word(vv[1][w >> 2], w & 3), sel),
                                        __byte_perm(v5_word(vv[2][w >> 2], w & 3), v5_word(vv[3][w >> 2], w & 3), sel)};
#pragma unroll
                for (int e = 0; e < 4; e++)
                    o[c][e] *= f;
                kcu_mma_bf16_16816(o[c], pa, bv, o[c]);
            }
        }
        if (ib)
            __syncthreads(); /* every lane has read sidx before the next segment's writes */
    }
    l += __shfl_xor_sync(KCU_FULL_MASK, l, 1);
    l += __shfl_xor_sync(KCU_FULL_MASK, l, 2);
    if (g < G) {
        if (t == 0) {
            sm_m[warp][g] = m;
            sm_l[warp][g] = l;
        }
#pragma unroll
        for (int c = 0; c < NC; c++) { /* head g, dims 2t·D/8 + c and (2t + 1)·D/8 + c */
            sm_acc[warp][g][2 * t * NC + c] = o[c][0] + o[c][2];
            sm_acc[warp][g][(2 * t + 1) * NC + c] = o[c][1] + o[c][3];
        }
    }
    __syncthreads();
    v5_block_partial<D, G>(a, sm_m, sm_l, sm_acc);
    attend_v4_merge<D, G>(a, &sm_acc[0][0][0]);
}

/* The v5 kernel for G ∈ {4, 8}, else NULL (G = 4 compiled for the audit's
 * comparison with v4). */
template <int D>
static void (*split_v5(int G))(kcu_attend_args)
{
    return G == 4 ? attend_split_v5_kernel<D, 4> : G == 8 ? attend_split_v5_kernel<D, 8> : nullptr;
}

/* kcu_attend's version-5 path: launched where v5 is the faster kernel (G =
 * 8: the audit's instructions per 2 KB and static times, README); returns
 * cudaErrorNotSupported where it is not (the caller runs v4). The merge's
 * weights (nsplit·G floats) reuse sm_acc (4·G·D floats). */
cudaError_t kcu_attend_v5(const kcu_attend_args *a, cudaStream_t st)
{
    if (a->G != 8 || (a->d != 64 && a->d != 128) || (int64_t)a->nsplit > (int64_t)ATT_WARPS * a->d)
        return cudaErrorNotSupported;
    dim3 grid((unsigned)a->nsplit, (unsigned)(a->B * a->Hkv));
    auto attend_v5 = a->d == 128 ? split_v5<128>(a->G) : split_v5<64>(a->G);
    KCU_LAUNCH(attend_v5, grid, ATT_THREADS, 0, st, *a);
    return cudaGetLastError();
}
