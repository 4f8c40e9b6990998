/* hsa_score_v3.cu — stage 2 v5's score v3: the page update (the new token
 * folded into its page), the step's dims/sign/τ table and the page scores
 * in ONE launch, where stage 2 v4 ran two (pages_update v2, score v2).
 * hsa.cu's header comment lists every version.
 *
 * Why: at batch 1 the RocketKV step is launch-bound (each kernel of a CUDA
 * graph costs a launch; the step's own work is a few µs). Folding the token
 * needs no other block: only the tile holding the token's page reads that
 * page, so that block folds it before its loads (after a barrier; plain
 * loads, not __ldg, since this kernel writes aux). The table (d ≤ 128 dims,
 * G ≤ 8 heads) is rebuilt by every block from q (a few KB, L2-resident);
 * at batch 1 all blocks run in one wave, so it costs one block's prologue.
 *
 * Layout of the work: one warp per query head (GMAX warps; a warp whose head
 * is ≥ G only helps with the table), lane l scores pages 8l .. 8l+7 of the
 * 256-page tile from one 16-byte load per chosen dim, 16 dims in flight. v2
 * split the heads over two warps (head halves); one head per warp doubles
 * the warps an SM issues from at G = 4 (each warp reads the same rows; the
 * repeats hit L1). The tile's softmax partial per head is then one warp
 * reduction, not G block reductions.
 *
 * Bit-exact with score v2 (and v1, refimpl): the same dims (same rank rule),
 * the same τ (the same double sums in the same order), z = s/τ with the f32
 * products and sums rounded separately in dims order. The partials' Σ is a
 * warp tree (v2: a block tree whose other warp adds zeros), so avg may
 * differ from v4's in the last bits. Checked as `<case>/v3-score`,
 * `<case>/v5-select`, `<case>/v5-gather` (gpu_check). */
#include "hsa_dev.cuh"

#define SC3_UNROLL 32 /* dimension rows in flight per thread */

template <int GMAX>
struct hsa_sc3_smem {
    KCU_SH(float) qa[GMAX * 128];  /* q of the KV head's query heads, [h][i] */
    KCU_SH(float) qs[GMAX][128];   /* q_h at the chosen dims, [h][t] */
    KCU_SH(double) as[128];        /* Σ_h |q_h[i]| */
    KCU_SH(double) gs[128];        /* Σ_h q_h[i] (its sign picks max or min) */
    KCU_SH(double) tau[GMAX];
    KCU_SH(int64_t) ro[128];       /* aux offset of page 0 of chosen dim t's row */
    KCU_SH(int) dims[128];         /* the chosen dims, ascending */
    KCU_SH(unsigned) fm[4];        /* chosen-dim bits, 32 dims per word */
};

/* Steps 1–2 (and τ) into shared memory, every thread of the block: the
 * fold's loads are issued after q's and consumed after the rank count, so
 * its latency hides behind the table. Thread i (< d) ranks dim i; the
 * rank loop also carries ‖q_h‖₁ (thread h < G), a dependent double chain
 * in dims order as refimpl's. Returns r. */
template <int GMAX>
static __device__ int hsa_sc3_table(const kcu_hsa_args &a, int bh, int64_t C, bool folds, hsa_sc3_smem<GMAX> *sm)
{
    constexpr int NT = GMAX * 32, QPT = GMAX * 128 / NT;
    const int d = a.d, G = a.G, tid = threadIdx.x;
    const int r = a.r < 1 ? 1 : (a.r > d ? d : a.r);
    float qv[QPT];
#pragma unroll
    for (int u = 0; u < QPT; u++)
        qv[u] = u * NT + tid < G * d ? a.q[(size_t)bh * G * d + u * NT + tid] : 0.0f;
    const bool fi = folds && tid < d;
    const int64_t pos = C - 1, jn = kcu_page_of(pos > 0 ? pos : 0, a.p);
    uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(d, a.p) * a.npages_cap;
    uint16_t *pmn = ab + kcu_aux_min_off(fi ? tid : 0, jn, a.npages_cap);
    uint16_t *pmx = a.p > 1 ? ab + kcu_aux_max_off(fi ? tid : 0, jn, a.npages_cap, d, a.p) : pmn;
    uint16_t x = 0, omn = 0, omx = 0;
    if (fi) {
        x = a.K[((size_t)bh * a.cap + pos) * d + tid];
        omn = *pmn;
        omx = *pmx;
    }
#pragma unroll
    for (int u = 0; u < QPT; u++)
        sm->qa[u * NT + tid] = qv[u];
    __syncthreads();
    if (tid < d) {
        double s = 0, g = 0;
        for (int h = 0; h < G; h++) {
            s += fabs((double)sm->qa[h * d + tid]);
            g += (double)sm->qa[h * d + tid];
        }
        sm->as[tid] = s;
        sm->gs[tid] = g;
    }
    __syncthreads();
    int rank = 0;
    double l1 = 0;
    const double ai = tid < d ? sm->as[tid] : 0.0;
    const KCU_SH(float) *qh = sm->qa + (tid < G ? tid : 0) * d;
    for (int j = 0; j < d; j++) {
        const double aj = sm->as[j];
        rank += (int)((aj > ai) | ((aj == ai) & (j < tid))); /* no branch: fewer instructions */
        l1 += fabs((double)qh[j]);
    }
    if (fi) { /* the fold (hsa_fold_token's rule) */
        const float xf = kcu_bf16_to_f32(x);
        const bool first = kcu_page_slot(pos, a.p) == 0 || a.p == 1;
        if (first || xf < kcu_bf16_to_f32(omn))
            *pmn = x;
        if (a.p > 1 && (first || xf > kcu_bf16_to_f32(omx)))
            *pmx = x;
    }
    const bool chosen = tid < d && rank < r;
    const unsigned bal = __ballot_sync(KCU_FULL_MASK, chosen);
    if ((tid & 31) == 0 && tid < 128)
        sm->fm[tid >> 5] = bal;
    __syncthreads();
    if (chosen) {
        int at = __popc(sm->fm[tid >> 5] & ((1u << (tid & 31)) - 1u));
        for (int w = 0; w < (tid >> 5); w++)
            at += __popc(sm->fm[w]);
        sm->dims[at] = tid;
    }
    __syncthreads();
    if (tid < G) {
        double l1I = 0;
        for (int t = 0; t < r; t++)
            l1I += fabs((double)qh[sm->dims[t]]);
        sm->tau[tid] = kcu_tau(d, l1I, l1);
    }
    for (int it = tid; it < r; it += NT) {
        const int i = sm->dims[it];
        sm->ro[it] = sm->gs[i] > 0.0 ? kcu_aux_max_off(i, 0, a.npages_cap, d, a.p) : kcu_aux_min_off(i, 0, a.npages_cap);
    }
    for (int it = tid; it < GMAX * r; it += NT)
        sm->qs[it / r][it % r] = it / r < G ? sm->qa[(it / r) * d + sm->dims[it % r]] : 0.0f;
    if (blockIdx.x == 0)
        for (int t = tid; t < d; t += NT)
            a.dims[(size_t)bh * d + t] = t < r ? sm->dims[t] : -1;
    __syncthreads(); /* the fold, the table: visible to the whole block */
    return r;
}

/* SC3_UNROLL dimension rows t0 .. of head h into s (8 pages), all loads
 * first; TAIL: rows past r are skipped (the last, partial chunk). */
template <int GMAX, bool TAIL>
static __device__ __forceinline__ void hsa_sc3_rows(const uint16_t *ab, const hsa_sc3_smem<GMAX> &sm, int h, int t0,
                                                    int r, float (&s)[SC2_PPT])
{
    uint4 u[SC3_UNROLL];
#pragma unroll
    for (int uu = 0; uu < SC3_UNROLL; uu++)
        u[uu] = !TAIL || t0 + uu < r ? *reinterpret_cast<const uint4 *>(ab + sm.ro[t0 + uu]) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int uu = 0; uu < SC3_UNROLL; uu++) {
        if (TAIL && t0 + uu >= r)
            break;
        float kf[SC2_PPT];
        kcu_unpack8(u[uu], kf);
        const float qv = sm.qs[h][t0 + uu];
#pragma unroll
        for (int e = 0; e < SC2_PPT; e++)
            s[e] = kcu_page_score_acc(s[e], qv, kf[e]);
    }
}

/* Step 3, v3: warp h scores head h for a tile's 256 pages (8 per lane),
 * then writes z and the tile's partial (max z, Σ cnt·exp(z − max)). */
template <int GMAX>
static __device__ __forceinline__ void hsa_sc3_tile(const kcu_hsa_args &a, const hsa_sc3_smem<GMAX> &sm, int bh,
                                                    int64_t C, int64_t np, int64_t tile, int r)
{
    const int G = a.G, h = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t p = a.p, npc = a.npages_cap;
    const int64_t j0 = tile * SC2_TILE + (int64_t)lane * SC2_PPT;
    const bool valid = j0 < np;
    const uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(a.d, p) * npc + j0;
    float s[SC2_PPT];
#pragma unroll
    for (int e = 0; e < SC2_PPT; e++)
        s[e] = 0.0f;
    int t0 = 0;
#pragma unroll 1
    for (; valid && t0 + SC3_UNROLL <= r; t0 += SC3_UNROLL) /* whole chunks: no bounds tests */
        hsa_sc3_rows<GMAX, false>(ab, sm, h, t0, r, s);
    if (valid && t0 < r)
        hsa_sc3_rows<GMAX, true>(ab, sm, h, t0, r, s);
    const double tau = sm.tau[h];
    double zv[SC2_PPT], m = -INFINITY;
#pragma unroll
    for (int e = 0; e < SC2_PPT; e++) {
        zv[e] = (double)s[e] / tau;
        if (j0 + e < np) {
            a.z[((size_t)bh * G + h) * npc + j0 + e] = zv[e];
            m = fmax(m, zv[e]);
        }
    }
    for (int o = 16; o > 0; o >>= 1)
        m = fmax(m, __shfl_xor_sync(KCU_FULL_MASK, m, o));
    double ex = 0.0;
#pragma unroll
    for (int e = 0; e < SC2_PPT; e++)
        if (j0 + e < np)
            ex += (double)kcu_page_count(j0 + e, C, p) * exp(zv[e] - m);
    ex = kcu_warp_sum_d(ex);
    if (lane == 0) {
        const hsa_ws4 w = hsa_ws4_layout(a.ws4, a.B, a.Hkv, npc);
        double *o = w.part + (((size_t)bh * KCU_MAX_G + h) * w.ntiles_cap + tile) * 2;
        o[0] = m;
        o[1] = ex;
    }
}

/* Score v3: the table once per block, then the block's tiles of its row:
 * blockIdx.x, + gridDim.x, … (one block per tile when the grid has a block
 * per tile; fewer blocks — one wave, hsa_score_v3 — loop, so a row's table
 * is built once per block, not once per tile). The block holding the new
 * token's tile folds it (only that block reads that page). */
template <int GMAX>
__global__ void __launch_bounds__(GMAX * 32, GMAX <= 4 ? 3 : 1) hsa_score_v3_kernel(kcu_hsa_args a)
{
    KCU_SHARED(hsa_sc3_smem<GMAX>, sm, );
    const int bh = blockIdx.y, b = bh / a.Hkv, h = threadIdx.x >> 5;
    const int64_t C = a.len[b], p = a.p, np = C > 0 ? kcu_npages(C, p) : 0;
    const int64_t ntiles = (np + SC2_TILE - 1) / SC2_TILE;
    const bool active = (int64_t)blockIdx.x < ntiles;
    if (!active && blockIdx.x != 0)
        return;
    const bool folds = C > 0 && (kcu_page_of(C - 1, p) / SC2_TILE) % gridDim.x == blockIdx.x;
    const int r = hsa_sc3_table<GMAX>(a, bh, C, folds, &sm);
    if (!active || h >= a.G)
        return;
    for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) /* uniform over the block */
        hsa_sc3_tile<GMAX>(a, sm, bh, C, np, tile, r);
}

/* ---------------------------------------------------------- launcher */
/* score v3 (a.v4 with a.score_v3): blocks of G warps, one per 256-page tile
 * (a.sms == 0), or at most one wave (a.sms > 0: 3 resident blocks per SM at
 * G ≤ 4, 1 at G ≤ 8, as __launch_bounds__ guarantees), ⌊wave / (B·Hkv)⌋ ≥ 1
 * blocks per row looping over its tiles: every wave of blocks pays the table
 * build, so at batch 8 (32K: 64 rows × 43 tiles, 7 waves of 396) one wave
 * builds it once per block instead of 7 times over. */
cudaError_t hsa_score_v3(const kcu_hsa_args *a, cudaStream_t st)
{
    if (!a->ws4 || a->npages_cap % SC2_PPT || a->sms < 0)
        return cudaErrorInvalidValue;
    int64_t tiles = (a->npages_cap + SC2_TILE - 1) / SC2_TILE, nbh = (int64_t)a->B * a->Hkv;
    if (a->sms > 0) {
        int64_t per = (int64_t)(a->G <= 4 ? 3 : 1) * a->sms / nbh;
        tiles = tiles < (per > 1 ? per : 1) ? tiles : (per > 1 ? per : 1);
    }
    dim3 grid((unsigned)tiles, (unsigned)nbh);
    auto k4 = hsa_score_v3_kernel<4>;
    auto k8 = hsa_score_v3_kernel<8>;
    if (a->G <= 4)
        KCU_LAUNCH(k4, grid, 4 * 32, 0, st, *a);
    else
        KCU_LAUNCH(k8, grid, 8 * 32, 0, st, *a);
    return cudaGetLastError();
}
