/* hsa.cu — stage 2 of RocketKV (hybrid sparse attention, docs/algorithm.md):
 * page min/max build and per-token update, the top-r dims and sign-chosen
 * bound page scores, the τ-scaled per-head softmax with the group mean, and
 * the token top-k. The exact attention over the selected rows is
 * dense_decode.cu's kernel given the position list.
 *
 * Aux is dimension-major, [B][Hkv][rows][npages_cap] bf16 (rows = 2d:
 * minima then maxima; d for p = 1, the transposed K), so the score kernel
 * reads each chosen dim as one contiguous run across pages: ⌈C/p⌉·r·2 bytes.
 *
 * What is bit-identical to refimpl (method_hsa.c) and to kcu_ref_host.c:
 * the chosen dims, the signs, τ (same double sums in the same order), the
 * page scores z = s/τ (f32 products and sums rounded separately, in dims
 * order, then a double division) and, given the same avg array, the
 * selection (same rule; the radix algorithm is kcu_select_host's). The avg
 * array itself may differ in the last bits (the normaliser is a tree sum,
 * exp is the device's), so end-to-end index sets are compared tie-aware in
 * gpu_check.
 *
 * Versions (no GPU has run them yet; their logic passes
 *     gpu_check's checks under the CPU emulation, `make cuda-emu`, at small shapes):
 *   v1  pages_build: one block per 32 pages, min/max in shared memory,
 *       written transposed (64-byte runs). pages_update: one thread per dim.
 *       score: each block recomputes dims/signs/τ in its prologue (d² rank
 *       compares, cheaper than a launch), then one thread per page, G
 *       accumulators. select: one block of 1024 threads per (sequence, KV
 *       head): block max, tree-sum normalisers in double, group mean into a
 *       global avg array, 8-pass weighted radix select re-reading avg from
 *       L2 each pass, then an index-ordered block scan to emit positions
 *       ascending. Limits: d ≤ 128, G ≤ 8.
 *   v2  (a.part != NULL) the score kernel also writes each 256-page tile's
 *       softmax partial per head (max z, Σ cnt·exp(z − max)); select merges
 *       those in tile order instead of its own pass over every page, which
 *       halves the serial double exp work of the one-block select. The
 *       normaliser then differs from v1's (and refimpl's) by rounding only.
 *       gpu_check checks and times both.
 *   v3  (a.select_v3, with a.part; npages_cap <= 8192, else v2 runs) the v2
 *       merge, then each thread keeps its 8 page keys in registers and
 *       kcu_block_select3 (kcu_dev.cuh) finds the threshold: the passes
 *       start at the first digit where the block's smallest and largest
 *       keys differ, lanes with one digit add their weight once
 *       (__match_any_sync + __reduce_add_sync) to 32-bit shared bins — no
 *       64-bit compare-and-swap loop — and the bin is found by a parallel
 *       prefix over the 256 bins instead of one thread walking them. Same
 *       T and need as v1/v2 by construction; checked on every stage-2 case
 *       (`<case>/v3-select`). The replayer runs v3. Still one block per
 *       (sequence, KV head): 8 blocks at batch 1.
 *   v4  (a.v4, workspace a.ws4; npages_cap a multiple of 8) pages_update v2
 *       also builds the step's dims/sign/τ table once per (sequence, KV
 *       head); score v2 reads 8 pages per 16-byte load, 16 dim rows in
 *       flight; select v4 runs ⌈npages_cap/256⌉ blocks per row (phase 1:
 *       avg and a 32-bit coarse histogram; the last block: threshold and
 *       emit) — see the comments at each kernel. npages_cap > 8192: select
 *       v1 on score v2's z. Checked as `<case>/v2-score`, `<case>/v4-select`. */
#include "kcu_cuda.h"

#include "kcu.h"
#include "kcu_dev.cuh"
#include "kcu_kernels.h"

#define PB_PAGES 32
#define PB_THREADS 128
#define SC_THREADS 256
#define SEL_THREADS 1024

/* -------------------------------------------------------- pages build */
/* Aux data per page of p slots: element-wise min and max of the page's keys
 * (a partial page is padded with +inf/−inf: only its tokens count). */
__global__ void __launch_bounds__(PB_THREADS) hsa_pages_build_kernel(kcu_hsa_args a)
{
    KCU_SHARED(float, smn, [PB_PAGES][129]);
    KCU_SHARED(float, smx, [PB_PAGES][129]);
    const int d = a.d, bh = blockIdx.y, b = bh / a.Hkv;
    const int64_t C = a.len[b], p = a.p, np = kcu_npages(C, p);
    const int64_t j0 = (int64_t)blockIdx.x * PB_PAGES;
    if (j0 >= np)
        return;
    const uint16_t *Kb = a.K + (size_t)bh * a.cap * d;
    for (int it = threadIdx.x; it < PB_PAGES * d; it += PB_THREADS) {
        int jj = it / d, i = it % d;
        int64_t j = j0 + jj;
        float mn = INFINITY, mx = -INFINITY;
        if (j < np)
            for (int64_t t = j * p; t < j * p + kcu_page_count(j, C, p); t++) {
                float x = kcu_bf16_to_f32(Kb[(size_t)t * d + i]);
                mn = fminf(mn, x);
                mx = fmaxf(mx, x);
            }
        smn[jj][i] = mn;
        smx[jj][i] = mx;
    }
    __syncthreads();
    uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(d, p) * a.npages_cap;
    for (int it = threadIdx.x; it < PB_PAGES * d; it += PB_THREADS) {
        int i = it / PB_PAGES, jj = it % PB_PAGES;
        int64_t j = j0 + jj;
        if (j >= np)
            continue;
        ab[kcu_aux_min_off(i, j, a.npages_cap)] = kcu_f32_to_bf16(smn[jj][i]);
        if (p > 1)
            ab[kcu_aux_max_off(i, j, a.npages_cap, d, p)] = kcu_f32_to_bf16(smx[jj][i]);
    }
}

/* The token at position len−1 was just appended: fold it into its page (a
 * new page starts from the token itself). */
static __device__ void hsa_fold_token(const kcu_hsa_args &a, int bh, int i)
{
    const int d = a.d, b = bh / a.Hkv;
    const int64_t C = a.len[b], p = a.p;
    if (C <= 0 || i >= d)
        return;
    const int64_t pos = C - 1, j = kcu_page_of(pos, p);
    uint16_t x = a.K[((size_t)bh * a.cap + pos) * d + i];
    uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(d, p) * a.npages_cap;
    uint16_t *pmn = ab + kcu_aux_min_off(i, j, a.npages_cap);
    if (p == 1) {
        *pmn = x;
        return;
    }
    uint16_t *pmx = ab + kcu_aux_max_off(i, j, a.npages_cap, d, p);
    if (kcu_page_slot(pos, p) == 0) {
        *pmn = x;
        *pmx = x;
        return;
    }
    float xf = kcu_bf16_to_f32(x);
    if (xf < kcu_bf16_to_f32(*pmn))
        *pmn = x;
    if (xf > kcu_bf16_to_f32(*pmx))
        *pmx = x;
}

__global__ void hsa_pages_update_kernel(kcu_hsa_args a)
{
    hsa_fold_token(a, blockIdx.x, threadIdx.x);
}

/* ------------------------------------------------------------- score */
/* Step 1: a_i = Σ_h |q_h[i]|, I = the r largest (ties to the lower index).
 * Step 2: g_i = sign(Σ_h q_h[i]); K̂_j[i] = max_j[i] if g_i > 0 else min_j[i].
 * Step 3: s_h(j) = Σ_{i∈I} q_h[i]·K̂_j[i]; stored divided by
 *         τ_h = √(d·‖q_h[I]‖₁/‖q_h‖₁). */
template <int GMAX>
__global__ void __launch_bounds__(SC_THREADS) hsa_score_kernel(kcu_hsa_args a)
{
    KCU_SHARED(float, qs, [GMAX * 128]);
    KCU_SHARED(double, as, [128]);
    KCU_SHARED(double, gs, [128]);
    KCU_SHARED(double, tau, [GMAX]);
    KCU_SHARED(int, flag, [128]);
    KCU_SHARED(int, dims, [128]);
    KCU_SHARED(double, red, [32]);
    const int d = a.d, G = a.G, bh = blockIdx.y, b = bh / a.Hkv, tid = threadIdx.x;
    const int64_t C = a.len[b], p = a.p, np = kcu_npages(C, p);
    if (C <= 0 || (int64_t)blockIdx.x * SC_THREADS >= np)
        return;
    const int r = a.r < 1 ? 1 : (a.r > d ? d : a.r);

    for (int it = tid; it < G * d; it += SC_THREADS)
        qs[it] = a.q[(size_t)bh * G * d + it];
    __syncthreads();
    if (tid < d) {
        double s = 0, g = 0;
        for (int h = 0; h < G; h++) {
            s += fabs((double)qs[h * d + tid]);
            g += (double)qs[h * d + tid];
        }
        as[tid] = s;
        gs[tid] = g;
    }
    __syncthreads();
    if (tid < d) {
        int rank = 0;
        double ai = as[tid];
        for (int j = 0; j < d; j++)
            rank += (as[j] > ai) || (as[j] == ai && j < tid);
        flag[tid] = rank < r;
    }
    __syncthreads();
    if (tid < d && flag[tid]) {
        int at = 0;
        for (int j = 0; j < tid; j++)
            at += flag[j];
        dims[at] = tid;
    }
    __syncthreads();
    if (tid < G) {
        double l1 = 0, l1I = 0;
        for (int i = 0; i < d; i++)
            l1 += fabs((double)qs[tid * d + i]);
        for (int t = 0; t < r; t++)
            l1I += fabs((double)qs[tid * d + dims[t]]);
        tau[tid] = kcu_tau(d, l1I, l1);
    }
    if (blockIdx.x == 0)
        for (int t = tid; t < d; t += SC_THREADS)
            a.dims[(size_t)bh * d + t] = t < r ? dims[t] : -1;
    __syncthreads();

    const int64_t j = (int64_t)blockIdx.x * SC_THREADS + tid;
    const bool valid = j < np;
    if (!valid && !a.part)
        return;
    const uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(d, p) * a.npages_cap;
    float s[GMAX];
#pragma unroll
    for (int h = 0; h < GMAX; h++)
        s[h] = 0.0f;
    for (int t = 0; valid && t < r; t++) {
        int i = dims[t];
        int64_t off = gs[i] > 0.0 ? kcu_aux_max_off(i, j, a.npages_cap, d, p)
                                  : kcu_aux_min_off(i, j, a.npages_cap);
        float kh = kcu_bf16_to_f32(ab[off]);
#pragma unroll
        for (int h = 0; h < GMAX; h++)
            if (h < G)
                s[h] = kcu_page_score_acc(s[h], qs[h * d + i], kh);
    }
    double zv[GMAX];
#pragma unroll
    for (int h = 0; h < GMAX; h++) {
        zv[h] = (double)s[h] / tau[h < G ? h : 0];
        if (valid && h < G)
            a.z[((size_t)bh * G + h) * a.npages_cap + j] = zv[h];
    }
    if (!a.part)
        return;
    /* v2: this tile's softmax partial per head, (max z, Σ cnt·exp(z − max)) */
    const int64_t cnt = valid ? kcu_page_count(j, C, p) : 0;
    const int64_t ntiles_cap = (a.npages_cap + SC_THREADS - 1) / SC_THREADS;
    for (int h = 0; h < G; h++) {
        double zh = 0.0;
#pragma unroll
        for (int u = 0; u < GMAX; u++)
            if (u == h)
                zh = zv[u];
        double m = kcu_block_max_d(valid ? zh : -INFINITY, red);
        double e = kcu_block_sum_d(valid ? (double)cnt * exp(zh - m) : 0.0, red);
        if (tid == 0) {
            double *o = a.part + (((size_t)bh * G + h) * ntiles_cap + blockIdx.x) * 2;
            o[0] = m;
            o[1] = e;
        }
    }
}

/* ------------------------------------------------------------ select */
/* Step 4: softmax per head over the C tokens (page score broadcast, so page
 * j weighs kcu_page_count tokens): max, exp(z − max), Σ cnt·exp in double
 * (a fixed tree, not refimpl's page order), mean over the G heads in head
 * order.
 * Step 5: top-k tokens by that mean, ties to the lower index: a weighted
 * top-k over pages; the threshold page gives its first tokens. Page
 * granularity: the top ⌈k/p⌉ pages, whole. Positions come out ascending. */
__global__ void __launch_bounds__(SEL_THREADS) hsa_select_kernel(kcu_hsa_args a)
{
    KCU_SHARED(kcu_select_smem, sm, );
    KCU_SHARED(double, mh, [KCU_MAX_G]);
    KCU_SHARED(double, zh, [KCU_MAX_G]);
    const int G = a.G, bh = blockIdx.x, b = bh / a.Hkv;
    const int64_t C = a.len[b], p = a.p, np = kcu_npages(C, p);
    const double *sc = a.z + (size_t)bh * G * a.npages_cap;
    double *avg = a.avg + (size_t)bh * a.npages_cap;

    if (a.part) {
        /* v2: merge the score kernel's per-tile partials, tiles in order */
        const int64_t ntiles = (np + SC_THREADS - 1) / SC_THREADS;
        const int64_t ntiles_cap = (a.npages_cap + SC_THREADS - 1) / SC_THREADS;
        if (threadIdx.x < (unsigned)G) {
            const double *pt = a.part + ((size_t)bh * G + threadIdx.x) * ntiles_cap * 2;
            double m = -INFINITY, z = 0;
            for (int64_t t = 0; t < ntiles; t++)
                m = fmax(m, pt[t * 2]);
            for (int64_t t = 0; t < ntiles; t++)
                z += pt[t * 2 + 1] * exp(pt[t * 2] - m);
            mh[threadIdx.x] = m;
            zh[threadIdx.x] = z;
        }
    } else {
        /* v1: max and normaliser over all pages in this block */
        for (int h = 0; h < G; h++) {
            double m = -INFINITY;
            for (int64_t j = threadIdx.x; j < np; j += SEL_THREADS)
                m = fmax(m, sc[(size_t)h * a.npages_cap + j]);
            m = kcu_block_max_d(m, sm.dsum);
            double z = 0;
            for (int64_t j = threadIdx.x; j < np; j += SEL_THREADS)
                z += (double)kcu_page_count(j, C, p) * exp(sc[(size_t)h * a.npages_cap + j] - m);
            z = kcu_block_sum_d(z, sm.dsum);
            if (threadIdx.x == 0) {
                mh[h] = m;
                zh[h] = z;
            }
        }
    }
    __syncthreads();
    for (int64_t j = threadIdx.x; j < np; j += SEL_THREADS) {
        double v = 0;
        for (int h = 0; h < G; h++)
            v += exp(sc[(size_t)h * a.npages_cap + j] - mh[h]) / zh[h];
        avg[j] = v / (double)G;
    }
    __syncthreads();

    const int pg = a.page_granularity;
    auto key = [&](int64_t j) { return kcu_desc_key(avg[j]); };
    auto wt = [&](int64_t j) { return pg ? (int64_t)1 : kcu_page_count(j, C, p); };
    auto whole = [&](int64_t j) { return kcu_page_count(j, C, p); };
    int32_t *pos = a.pos + (size_t)bh * a.pos_cap;
    const int64_t pos_cap = a.pos_cap;
    auto emit = [&](int64_t j, int64_t off, int64_t nj) {
        for (int64_t t = 0; t < nj && off + t < pos_cap; t++)
            pos[off + t] = (int32_t)(j * p + t);
    };
    uint64_t T;
    int64_t need;
    int64_t kk = pg ? (a.k + p - 1) / p : a.k;
    kcu_block_select(np, kk, key, wt, &sm, &T, &need);
    int64_t total = kcu_block_emit(np, key, wt, T, need, pg, whole, emit, &sm);
    if (threadIdx.x == 0)
        a.count[bh] = (int32_t)(total < pos_cap ? total : pos_cap);
}

/* v3: the v2 softmax merge, then the page keys kept in registers (KPT per
 * thread) for kcu_block_select3 — common-prefix skip, warp-aggregated
 * 32-bit histograms, parallel bin prefix (kcu_dev.cuh) — and the same
 * index-ordered emit. One block per (sequence, KV head), as v1/v2. */
template <int KPT>
__global__ void __launch_bounds__(SEL_THREADS, 1) hsa_select_v3_kernel(kcu_hsa_args a)
{
    KCU_SHARED(kcu_select3_smem, sm, );
    KCU_SHARED(double, mh, [KCU_MAX_G]);
    KCU_SHARED(double, zh, [KCU_MAX_G]);
    const int G = a.G, bh = blockIdx.x, b = bh / a.Hkv;
    const int64_t C = a.len[b], p = a.p, np = kcu_npages(C, p);
    const double *sc = a.z + (size_t)bh * G * a.npages_cap;
    double *avg = a.avg + (size_t)bh * a.npages_cap;
    const int64_t ntiles = (np + SC_THREADS - 1) / SC_THREADS;
    const int64_t ntiles_cap = (a.npages_cap + SC_THREADS - 1) / SC_THREADS;
    if (threadIdx.x < (unsigned)G) {
        const double *pt = a.part + ((size_t)bh * G + threadIdx.x) * ntiles_cap * 2;
        double m = -INFINITY, z = 0;
        for (int64_t t = 0; t < ntiles; t++)
            m = fmax(m, pt[t * 2]);
        for (int64_t t = 0; t < ntiles; t++)
            z += pt[t * 2 + 1] * exp(pt[t * 2] - m);
        mh[threadIdx.x] = m;
        zh[threadIdx.x] = z;
    }
    __syncthreads();
    const int pg = a.page_granularity;
    uint64_t key[KPT];
    int32_t wt[KPT];
#pragma unroll
    for (int i = 0; i < KPT; i++) {
        int64_t j = (int64_t)i * SEL_THREADS + threadIdx.x;
        key[i] = ~0ull;
        wt[i] = 0;
        if (j < np) {
            double v = 0;
            for (int h = 0; h < G; h++)
                v += exp(sc[(size_t)h * a.npages_cap + j] - mh[h]) / zh[h];
            v /= (double)G;
            avg[j] = v;
            key[i] = kcu_desc_key(v);
            wt[i] = pg ? 1 : (int32_t)kcu_page_count(j, C, p);
        }
    }
    int32_t *pos = a.pos + (size_t)bh * a.pos_cap;
    const int64_t pos_cap = a.pos_cap;
    auto keyf = [&](int64_t j) { return kcu_desc_key(avg[j]); };
    auto wtf = [&](int64_t j) { return pg ? (int64_t)1 : kcu_page_count(j, C, p); };
    auto whole = [&](int64_t j) { return kcu_page_count(j, C, p); };
    auto emit = [&](int64_t j, int64_t off, int64_t nj) {
        for (int64_t t = 0; t < nj && off + t < pos_cap; t++)
            pos[off + t] = (int32_t)(j * p + t);
    };
    uint64_t T;
    int64_t need;
    int64_t kk = pg ? (a.k + p - 1) / p : a.k;
    kcu_block_select3<KPT>(key, wt, kk, &sm, &T, &need);
    int64_t total = kcu_block_emit(np, keyf, wtf, T, need, pg, whole, emit, &sm);
    if (threadIdx.x == 0)
        a.count[bh] = (int32_t)(total < pos_cap ? total : pos_cap);
}

/* ===================================================== stage 2 v4 ====
 * score v2 + select v4 (a.v4). Workspace ws4 (kcu_hsa_ws4_bytes), per
 * (sequence, KV head) bh:
 *   rowoff [bh][128] int64   aux element offset of page 0 of chosen dim t's
 *                            row (the max row where the sign is +, else min)
 *   tau    [bh][8] double    τ per query head
 *   part   [bh][8][ntiles]   (max z, Σ cnt·exp(z − max)) per 256-page tile
 *   qsel   [bh][8][128] f32  q_h[dims[t]]
 *   hist   [bh][4096] u32    select v4's coarse histogram (zero between steps)
 *   ticket [bh] u32          blocks of select v4 done (zero between steps) */
#define SC2_THREADS 64
#define SC2_PPT 8   /* pages per thread: one 16-byte load of a dimension row */
#define SC2_TILE (SC2_THREADS / 2 * SC2_PPT) /* two warps: head halves */
/* dimension rows in flight per thread: SC2_UNROLL(GMAX) */
#define SC2_UNROLL(g) ((g) <= 4 ? 16 : 8)
#define SEL4_THREADS 1024
#define SEL4_TILE 256
#define SEL4_KPT 8
#define SEL4_BINS 4096

typedef struct {
    int64_t *rowoff;
    double *tau, *part;
    float *qsel;
    unsigned *hist, *ticket;
    int64_t ntiles_cap; /* score v2 tiles per row */
} hsa_ws4;

static inline __host__ __device__ hsa_ws4 hsa_ws4_layout(void *base, int B, int Hkv, int64_t npages_cap)
{
    hsa_ws4 w;
    size_t nbh = (size_t)B * Hkv;
    w.ntiles_cap = (npages_cap + SC2_TILE - 1) / SC2_TILE;
    char *c = (char *)base;
    w.rowoff = (int64_t *)c;
    c += nbh * 128 * sizeof(int64_t);
    w.tau = (double *)c;
    c += nbh * KCU_MAX_G * sizeof(double);
    w.part = (double *)c;
    c += nbh * KCU_MAX_G * (size_t)w.ntiles_cap * 2 * sizeof(double);
    w.qsel = (float *)c;
    c += nbh * KCU_MAX_G * 128 * sizeof(float);
    w.hist = (unsigned *)c;
    c += nbh * SEL4_BINS * sizeof(unsigned);
    w.ticket = (unsigned *)c;
    return w;
}

/* pages_update v2 (a.v4): the token folded into its page as v1, then
 * steps 1–2 once per (sequence, KV head) and step, not once per score
 * block: the top-r dims (a.dims), each one's aux row by its sign, q at the
 * chosen dims, τ — the table score v2 reads. It rides on the update's
 * launch (one block per row, d threads), which every decode step runs
 * before the score. */
__global__ void __launch_bounds__(128) hsa_pages_update_v2_kernel(kcu_hsa_args a)
{
    hsa_fold_token(a, blockIdx.x, threadIdx.x);
    KCU_SHARED(float, qs, [KCU_MAX_G * 128]);
    KCU_SHARED(double, as, [128]);
    KCU_SHARED(double, gs, [128]);
    KCU_SHARED(int, flag, [128]);
    KCU_SHARED(int, dims, [128]);
    const int d = a.d, G = a.G, bh = blockIdx.x, tid = threadIdx.x;
    const int r = a.r < 1 ? 1 : (a.r > d ? d : a.r);
    hsa_ws4 w = hsa_ws4_layout(a.ws4, a.B, a.Hkv, a.npages_cap);
    for (int it = tid; it < G * d; it += blockDim.x)
        qs[it] = a.q[(size_t)bh * G * d + it];
    __syncthreads();
    if (tid < d) {
        double s = 0, g = 0;
        for (int h = 0; h < G; h++) {
            s += fabs((double)qs[h * d + tid]);
            g += (double)qs[h * d + tid];
        }
        as[tid] = s;
        gs[tid] = g;
    }
    __syncthreads();
    if (tid < d) {
        int rank = 0;
        double ai = as[tid];
        for (int j = 0; j < d; j++)
            rank += (as[j] > ai) || (as[j] == ai && j < tid);
        flag[tid] = rank < r;
    }
    __syncthreads();
    if (tid < d && flag[tid]) {
        int at = 0;
        for (int j = 0; j < tid; j++)
            at += flag[j];
        dims[at] = tid;
    }
    __syncthreads();
    if (tid < G) {
        double l1 = 0, l1I = 0;
        for (int i = 0; i < d; i++)
            l1 += fabs((double)qs[tid * d + i]);
        for (int t = 0; t < r; t++)
            l1I += fabs((double)qs[tid * d + dims[t]]);
        w.tau[(size_t)bh * KCU_MAX_G + tid] = kcu_tau(d, l1I, l1);
    }
    if (tid < d) {
        a.dims[(size_t)bh * d + tid] = tid < r ? dims[tid] : -1;
        if (tid < r) {
            int i = dims[tid];
            w.rowoff[(size_t)bh * 128 + tid] = gs[i] > 0.0 ? kcu_aux_max_off(i, 0, a.npages_cap, d, a.p)
                                                           : kcu_aux_min_off(i, 0, a.npages_cap);
            for (int h = 0; h < G; h++)
                w.qsel[((size_t)bh * KCU_MAX_G + h) * 128 + tid] = qs[h * d + i];
        }
    }
}

/* Step 3, v2: a thread scores 8 consecutive pages for half the heads from
 * one 16-byte load per chosen dim (aux rows are 16-byte aligned:
 * npages_cap % 8 == 0), SC2_UNROLL(GMAX) rows in flight (16 at G <= 4);
 * the two head halves of a page group are two warps of the block reading
 * the same rows (the second read hits L1), which doubles the warps in
 * flight and halves each one's work. The table comes from
 * hsa_pages_update_v2_kernel. The sums are v1's (f32, product and sum
 * rounded separately, dims in order), so z is bit-identical. Then the
 * 256-page tile's softmax partial per head, for select v4. Over 80 lines:
 * the accumulators stay in registers from the loads to the partials. */
template <int GMAX>
__global__ void __launch_bounds__(SC2_THREADS) hsa_score_v2_kernel(kcu_hsa_args a)
{
    constexpr int HPT = GMAX / 2, UN = SC2_UNROLL(GMAX);
    KCU_SHARED(float, qs, [GMAX][128]);
    KCU_SHARED(int64_t, ro, [128]);
    KCU_SHARED(double, red, [32]);
    const int d = a.d, G = a.G, bh = blockIdx.y, b = bh / a.Hkv, tid = threadIdx.x, h0 = (tid / 32) * HPT;
    const int64_t C = a.len[b], p = a.p, np = kcu_npages(C, p), npc = a.npages_cap;
    if (C <= 0 || (int64_t)blockIdx.x * SC2_TILE >= np)
        return;
    const int r = a.r < 1 ? 1 : (a.r > d ? d : a.r);
    hsa_ws4 w = hsa_ws4_layout(a.ws4, a.B, a.Hkv, npc);
#pragma unroll 1
    for (int it = tid; it < r; it += SC2_THREADS)
        ro[it] = w.rowoff[(size_t)bh * 128 + it];
#pragma unroll 1
    for (int it = tid; it < GMAX * r; it += SC2_THREADS)
        qs[it / r][it % r] = it / r < G ? w.qsel[((size_t)bh * KCU_MAX_G + it / r) * 128 + it % r] : 0.0f;
    __syncthreads();
    const int64_t j0 = (int64_t)blockIdx.x * SC2_TILE + (int64_t)(tid % 32) * SC2_PPT;
    const bool valid = j0 < np;
    const uint16_t *ab = a.aux + (size_t)bh * kcu_aux_rows(d, p) * npc + j0;
    float s[HPT][SC2_PPT];
#pragma unroll
    for (int h = 0; h < HPT; h++)
#pragma unroll
        for (int e = 0; e < SC2_PPT; e++)
            s[h][e] = 0.0f;
#pragma unroll 1
    for (int t0 = 0; valid && t0 < r; t0 += UN) {
        uint4 u[UN];
#pragma unroll
        for (int uu = 0; uu < UN; uu++)
            u[uu] = t0 + uu < r ? __ldg(reinterpret_cast<const uint4 *>(ab + ro[t0 + uu])) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int uu = 0; uu < UN; uu++) {
            if (t0 + uu >= r)
                break;
            float kf[SC2_PPT];
            kcu_unpack8(u[uu], kf);
#pragma unroll
            for (int h = 0; h < HPT; h++) {
                float qv = qs[h0 + h][t0 + uu];
#pragma unroll
                for (int e = 0; e < SC2_PPT; e++)
                    s[h][e] = kcu_page_score_acc(s[h][e], qv, kf[e]);
            }
        }
    }
    for (int h = 0; h < G; h++) {
        const bool mine = h >= h0 && h < h0 + HPT;
        const double tau = w.tau[(size_t)bh * KCU_MAX_G + h];
        double zv[SC2_PPT], m = -INFINITY;
#pragma unroll
        for (int e = 0; e < SC2_PPT; e++) {
            double sh = 0.0;
#pragma unroll
            for (int u = 0; u < HPT; u++)
                if (h0 + u == h)
                    sh = (double)s[u][e];
            zv[e] = sh / tau;
            if (mine && j0 + e < np) {
                a.z[((size_t)bh * G + h) * npc + j0 + e] = zv[e];
                m = fmax(m, zv[e]);
            }
        }
        m = kcu_block_max_d(m, red);
        double ex = 0.0;
#pragma unroll
        for (int e = 0; e < SC2_PPT; e++)
            if (mine && j0 + e < np)
                ex += (double)kcu_page_count(j0 + e, C, p) * exp(zv[e] - m);
        ex = kcu_block_sum_d(ex, red);
        if (tid == 0) {
            double *o = w.part + (((size_t)bh * KCU_MAX_G + h) * w.ntiles_cap + blockIdx.x) * 2;
            o[0] = m;
            o[1] = ex;
        }
    }
}

/* Select v4's coarse bin of a group-mean probability: 64 bins per octave
 * over (2^-64, 1] (the f32 value's exponent and top 6 mantissa bits),
 * larger values first; everything ≤ 2^-64 in bin 4095. Non-decreasing in
 * kcu_desc_key(v) (rounding to f32 is monotone), so bins never reorder
 * keys. */
static __device__ __forceinline__ unsigned hsa_sel4_bin(double v)
{
    uint32_t u = kcu_f32_bits((float)v);
    if (u >> 31)
        return SEL4_BINS - 1;
    int b = 0x1FC0 - (int)(u >> 17);
    return b < 0 ? 0u : (b > SEL4_BINS - 1 ? (unsigned)(SEL4_BINS - 1) : (unsigned)b);
}

typedef struct {
    KCU_SH(unsigned) hist[SEL4_BINS];
    KCU_SH(uint64_t) ck[SEL4_THREADS];
    KCU_SH(int32_t) cw[SEL4_THREADS];
    KCU_SH(double) mh[KCU_MAX_G], zh[KCU_MAX_G];
    KCU_SH(int64_t) scan[33];
    KCU_SH(int) last;
    KCU_SH(unsigned) bin;
    KCU_SH(int64_t) below;
    KCU_SH(uint64_t) T;
    KCU_SH(int64_t) need;
    kcu_select3_smem s3;
} hsa_sel4_smem;

/* Phase 1 of select v4, every block: merge score v2's tile partials (one
 * warp per head), the group mean of this block's 256 pages into avg, and
 * their weights into the (sequence, KV head)'s global coarse histogram
 * (32-bit, warp-aggregated in shared memory first). Returns whether this
 * block is the last of its row to finish (then it finds the threshold and
 * emits; __threadfence before the ticket makes the others' avg and
 * histogram visible to it). */
static __device__ bool hsa_sel4_phase1(const kcu_hsa_args &a, const hsa_ws4 &w, int64_t np, hsa_sel4_smem *sm)
{
    const int G = a.G, bh = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int64_t C = a.len[bh / a.Hkv], p = a.p, npc = a.npages_cap;
    const int64_t j = (int64_t)blockIdx.x * SEL4_TILE + tid;
    if ((int64_t)blockIdx.x * SEL4_TILE < np) {
        if (warp < G) {
            const double *pt = w.part + ((size_t)bh * KCU_MAX_G + warp) * w.ntiles_cap * 2;
            const int64_t nt = (np + SC2_TILE - 1) / SC2_TILE;
            double m = -INFINITY, z = 0.0;
            for (int64_t t = lane; t < nt; t += 32)
                m = fmax(m, pt[t * 2]);
            for (int o = 16; o > 0; o >>= 1)
                m = fmax(m, __shfl_xor_sync(KCU_FULL_MASK, m, o));
            for (int64_t t = lane; t < nt; t += 32)
                z += pt[t * 2 + 1] * exp(pt[t * 2] - m);
            z = kcu_warp_sum_d(z);
            if (lane == 0) {
                sm->mh[warp] = m;
                sm->zh[warp] = z;
            }
        }
        for (int i = tid; i < SEL4_BINS; i += SEL4_THREADS)
            sm->hist[i] = 0u;
        __syncthreads();
        if (tid < SEL4_TILE) { /* whole warps: the collectives see every lane */
            const bool in = j < np;
            unsigned bin = 0, wt = 0;
            if (in) {
                const double *sc = a.z + (size_t)bh * G * npc + j;
                double v = 0;
                for (int h = 0; h < G; h++)
                    v += exp(sc[(size_t)h * npc] - sm->mh[h]) / sm->zh[h];
                v /= (double)G;
                a.avg[(size_t)bh * npc + j] = v;
                bin = hsa_sel4_bin(v);
                wt = a.page_granularity ? 1u : (unsigned)kcu_page_count(j, C, p);
            }
            unsigned act = __ballot_sync(KCU_FULL_MASK, in);
            if (in) {
                unsigned peers = __match_any_sync(act, bin);
                unsigned ws = __reduce_add_sync(peers, wt);
                if (lane == __ffs(peers) - 1)
                    atomicAdd(&sm->hist[bin], ws);
            }
        }
        __syncthreads();
        for (int i = tid; i < SEL4_BINS; i += SEL4_THREADS) {
            unsigned h = sm->hist[i];
            if (h)
                atomicAdd(&w.hist[(size_t)bh * SEL4_BINS + i], h);
        }
    }
    __threadfence();
    __syncthreads();
    if (tid == 0)
        sm->last = atomicAdd(&w.ticket[bh], 1u) == gridDim.x - 1;
    __syncthreads();
    bool last = sm->last;
    if (last)
        __threadfence();
    return last;
}

/* The last block: the bin holding the k-th unit from the global histogram
 * (parallel prefix over the 4096 bins, 4 per thread), which is read and
 * zeroed for the next step. Leaves the bin and the weight below it in sm,
 * and returns 0, or 1 when k covers everything (T = ~0, need = 0). */
static __device__ int hsa_sel4_find_bin(const hsa_ws4 &w, int64_t kk, hsa_sel4_smem *sm)
{
    const int bh = blockIdx.y, tid = threadIdx.x;
    unsigned *gh = w.hist + (size_t)bh * SEL4_BINS + tid * 4;
    unsigned hv[4];
    int64_t hs = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        hv[i] = kcu_ld_cg(gh + i);
        gh[i] = 0u;
        hs += hv[i];
    }
    int64_t total;
    int64_t c = kcu_block_excl_scan(hs, &total, sm->scan);
    if (kk >= total)
        return 1;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if (c < kk && c + hv[i] >= kk) {
            sm->bin = (unsigned)(tid * 4 + i);
            sm->below = c;
        }
        c += hv[i];
    }
    __syncthreads();
    return 0;
}

/* One warp's weighted select over nc <= 1024 candidates in shared memory
 * (keys ck, weights cw): threshold T and the weight still to take from
 * key == T. need >= 1 and <= the candidates' total. Up to 64 candidates:
 * each one's rank by counting (weight of smaller keys and of equal keys),
 * no passes. More: radix passes that start
 * at the first digit where the candidates differ; bins are 32-bit, filled
 * warp-aggregated; the bin is found by a shuffle prefix over 8 bins per
 * lane. Only __syncwarp: no block barrier. */
static __device__ void hsa_warp_select(const KCU_SH(uint64_t) *ck, const KCU_SH(int32_t) *cw, int nc, int64_t need,
                                       KCU_SH(unsigned) *bins, uint64_t *T, int64_t *needo)
{
    const int lane = threadIdx.x & 31;
    if (nc <= 64) { /* few: rank each candidate by counting, one pass */
        int src = -1;
        uint64_t kt = 0;
        int64_t nt = 0;
        for (int c0 = 0; c0 < nc && src < 0; c0 += 32) {
            const int c = c0 + lane;
            const uint64_t k = c < nc ? (uint64_t)ck[c] : ~0ull;
            int64_t lt = 0, eq = 0;
            for (int u = 0; u < nc; u++) {
                const uint64_t ku = ck[u];
                const int64_t wu = cw[u];
                lt += ku < k ? wu : 0;
                eq += ku == k ? wu : 0;
            }
            const bool hit = c < nc && lt < need && lt + eq >= need;
            src = __ffs(__ballot_sync(KCU_FULL_MASK, hit)) - 1;
            kt = k;
            nt = need - lt;
        }
        *T = __shfl_sync(KCU_FULL_MASK, (unsigned long long)kt, src);
        *needo = __shfl_sync(KCU_FULL_MASK, (long long)nt, src);
        return;
    }
    uint64_t lo = ~0ull, hi = 0;
    for (int c = lane; c < nc; c += 32) {
        uint64_t k = ck[c];
        lo = k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
    lo = kcu_warp_min_u64(lo);
    hi = kcu_warp_max_u64(hi);
    int first = lo == hi ? KCU_RADIX_PASSES : __clzll((long long)(lo ^ hi)) / KCU_RADIX_BITS;
    uint64_t prefix = first >= KCU_RADIX_PASSES ? lo : lo & ~(~0ull >> (KCU_RADIX_BITS * first));
    for (int pass = first; pass < KCU_RADIX_PASSES; pass++) {
        for (int b = lane; b < KCU_RADIX_BINS; b += 32)
            bins[b] = 0u;
        __syncwarp();
        for (int c0 = 0; c0 < nc; c0 += 32) {
            const int c = c0 + lane;
            const uint64_t k = c < nc ? (uint64_t)ck[c] : 0ull;
            const bool in = c < nc && kcu_radix_match(k, prefix, pass);
            const unsigned act = __ballot_sync(KCU_FULL_MASK, in);
            if (in) {
                unsigned dg = kcu_radix_digit(k, pass);
                unsigned peers = __match_any_sync(act, dg);
                unsigned ws = __reduce_add_sync(peers, (unsigned)cw[c]);
                if (lane == __ffs(peers) - 1)
                    atomicAdd(&bins[dg], ws);
            }
        }
        __syncwarp();
        unsigned hb[8];
        int64_t s = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            hb[i] = bins[lane * 8 + i];
            s += hb[i];
        }
        const int64_t inc = kcu_warp_incl_scan(s), excl = inc - s;
        const bool found = excl < need && inc >= need;
        const int src = __ffs(__ballot_sync(KCU_FULL_MASK, found)) - 1;
        unsigned dg = 0;
        int64_t below = excl;
        if (found)
            for (int i = 0; i < 8; i++) {
                if (below + hb[i] >= need) {
                    dg = (unsigned)(lane * 8 + i);
                    break;
                }
                below += hb[i];
            }
        dg = __shfl_sync(KCU_FULL_MASK, dg, src);
        below = __shfl_sync(KCU_FULL_MASK, (long long)below, src);
        prefix |= (uint64_t)dg << (56 - KCU_RADIX_BITS * pass);
        need -= below;
        __syncwarp();
    }
    *T = prefix;
    *needo = need;
}

/* The last block: the exact threshold inside the bin. Thread t holds pages
 * 8t .. 8t+7 (keys re-read from avg). The bin's candidates are compacted
 * into shared memory and one warp selects among them (no block barrier per
 * pass); more than 1024 candidates (a bin holding most pages) fall back to
 * the block-wide kcu_block_select3 over the masked register keys. */
static __device__ void hsa_sel4_threshold(const uint64_t (&key)[SEL4_KPT], unsigned inb, int64_t j0, int64_t C,
                                          int64_t p, int pg, int64_t kk, hsa_sel4_smem *sm)
{
    const int64_t need_in = kk - sm->below;
    int32_t win[SEL4_KPT];
    int64_t nin = 0;
#pragma unroll
    for (int i = 0; i < SEL4_KPT; i++) {
        win[i] = (inb >> i) & 1u ? (pg ? 1 : (int32_t)kcu_page_count(j0 + i, C, p)) : 0;
        nin += win[i] > 0;
    }
    int64_t nc;
    int64_t slot = kcu_block_excl_scan(nin, &nc, sm->scan);
    if (nc <= SEL4_THREADS) {
#pragma unroll
        for (int i = 0; i < SEL4_KPT; i++)
            if (win[i] > 0) {
                sm->ck[slot] = key[i];
                sm->cw[slot] = win[i];
                slot++;
            }
        __syncthreads();
        if (threadIdx.x < 32) {
            uint64_t T;
            int64_t need;
            hsa_warp_select(sm->ck, sm->cw, (int)nc, need_in, sm->hist, &T, &need);
            if (threadIdx.x == 0) {
                sm->T = T;
                sm->need = need;
            }
        }
        __syncthreads();
        return;
    }
    uint64_t T, lo, hi;
    int64_t need, lt = 0, lt_tot;
    kcu_block_select3<SEL4_KPT>(key, win, need_in, &sm->s3, &T, &need);
    if (T == ~0ull) { /* need_in is the whole bin: T is its largest key */
        kcu_block_key_range(key, win, &sm->s3, &lo, &hi);
#pragma unroll
        for (int i = 0; i < SEL4_KPT; i++)
            lt += key[i] < hi ? win[i] : 0;
        (void)kcu_block_excl_scan(lt, &lt_tot, sm->scan);
        T = hi;
        need = need_in - lt_tot;
    }
    if (threadIdx.x == 0) {
        sm->T = T;
        sm->need = need;
    }
    __syncthreads();
}

/* Select v4 (a.v4): steps 4–5 over many blocks per (sequence, KV head) —
 * ⌈npages_cap/256⌉ of them, 30 at 7.4K pages, so batch 1 fills 132 SMs —
 * where v1–v3 ran one. Every block: phase 1 (avg, coarse 32-bit histogram).
 * The last block to finish: the bin of the k-th unit, the exact threshold
 * among that bin's pages (hsa_sel4_threshold), then the index-ordered emit
 * with 8 consecutive pages per thread (two block scans in all). T and need
 * equal v1's by construction (bins are monotone in the key); the selection
 * is checked exactly on the GPU's own avg (`<case>/v4-select`). */
__global__ void __launch_bounds__(SEL4_THREADS, 1) hsa_select_v4_kernel(kcu_hsa_args a)
{
    KCU_SHARED(hsa_sel4_smem, sm, );
    const int bh = blockIdx.y, b = bh / a.Hkv, tid = threadIdx.x;
    const int64_t C = a.len[b], p = a.p, np = C > 0 ? kcu_npages(C, p) : 0;
    const hsa_ws4 w = hsa_ws4_layout(a.ws4, a.B, a.Hkv, a.npages_cap);
    if (!hsa_sel4_phase1(a, w, np, &sm))
        return;
    const int pg = a.page_granularity;
    const int64_t kk = pg ? (a.k + p - 1) / p : a.k;
    const int all = hsa_sel4_find_bin(w, kk, &sm);
    const int64_t j0 = (int64_t)tid * SEL4_KPT;
    const unsigned bin = all ? 0u : (unsigned)sm.bin;
    uint64_t key[SEL4_KPT];
    unsigned inb = 0; /* bit i: page j0 + i lies in the threshold's bin */
#pragma unroll
    for (int i = 0; i < SEL4_KPT; i++) {
        key[i] = ~0ull;
        if (j0 + i < np) {
            const double v = kcu_ld_cg(a.avg + (size_t)bh * a.npages_cap + j0 + i);
            key[i] = kcu_desc_key(v);
            inb |= (unsigned)(hsa_sel4_bin(v) == bin) << i;
        }
    }
    uint64_t T = ~0ull;
    int64_t need = 0;
    if (!all) {
        hsa_sel4_threshold(key, inb, j0, C, p, pg, kk, &sm);
        T = sm.T;
        need = sm.need;
    }
    /* emit in index order: equal-key weight before each page, then offsets */
    int64_t eqw = 0, eq_tot, n_tot, sum = 0;
    int32_t nj[SEL4_KPT];
#pragma unroll
    for (int i = 0; i < SEL4_KPT; i++)
        eqw += key[i] == T ? (pg ? 1 : kcu_page_count(j0 + i, C, p)) : 0;
    int64_t eqb = kcu_block_excl_scan(eqw, &eq_tot, sm.scan);
#pragma unroll
    for (int i = 0; i < SEL4_KPT; i++) {
        const int64_t cnt = kcu_page_count(j0 + i, C, p), wi = j0 + i < np ? (pg ? 1 : cnt) : 0;
        const int64_t take = kcu_select_take(key[i], wi, T, need, eqb);
        eqb += key[i] == T ? wi : 0;
        nj[i] = (int32_t)(pg ? (take > 0 ? cnt : 0) : take);
        sum += nj[i];
    }
    int64_t off = kcu_block_excl_scan(sum, &n_tot, sm.scan);
    int32_t *pos = a.pos + (size_t)bh * a.pos_cap;
#pragma unroll
    for (int i = 0; i < SEL4_KPT; i++) {
        for (int64_t t = 0; t < nj[i] && off + t < a.pos_cap; t++)
            pos[off + t] = (int32_t)((j0 + i) * p + t);
        off += nj[i];
    }
    if (tid == 0) {
        a.count[bh] = (int32_t)(n_tot < a.pos_cap ? n_tot : a.pos_cap);
        w.ticket[bh] = 0u;
    }
}

/* ---------------------------------------------------------- launchers */
size_t kcu_hsa_part_bytes(int B, int Hkv, int G, int64_t npages_cap)
{
    return (size_t)B * Hkv * G * ((npages_cap + SC_THREADS - 1) / SC_THREADS) * 2 * sizeof(double);
}

cudaError_t kcu_hsa_pages_build(const kcu_hsa_args *a, cudaStream_t st)
{
    if (a->d > 128 || a->p < 1)
        return cudaErrorInvalidValue;
    int64_t np = kcu_npages(a->cap, a->p);
    dim3 grid((unsigned)((np + PB_PAGES - 1) / PB_PAGES), (unsigned)(a->B * a->Hkv));
    KCU_LAUNCH(hsa_pages_build_kernel, grid, PB_THREADS, 0, st, *a);
    return cudaGetLastError();
}

cudaError_t kcu_hsa_pages_update(const kcu_hsa_args *a, cudaStream_t st)
{
    if (a->d > 128 || a->p < 1)
        return cudaErrorInvalidValue;
    if (a->v4) {
        if (!a->ws4 || a->npages_cap % SC2_PPT || a->G < 1 || a->G > KCU_MAX_G)
            return cudaErrorInvalidValue;
        KCU_LAUNCH(hsa_pages_update_v2_kernel, (unsigned)(a->B * a->Hkv), (unsigned)a->d, 0, st, *a);
        return cudaGetLastError();
    }
    KCU_LAUNCH(hsa_pages_update_kernel, (unsigned)(a->B * a->Hkv), (unsigned)a->d, 0, st, *a);
    return cudaGetLastError();
}

size_t kcu_hsa_ws4_bytes(int B, int Hkv, int64_t npages_cap)
{
    size_t nbh = (size_t)B * Hkv, nt = (size_t)((npages_cap + SC2_TILE - 1) / SC2_TILE);
    return nbh * (128 * sizeof(int64_t) + KCU_MAX_G * sizeof(double) + KCU_MAX_G * nt * 2 * sizeof(double) +
                  KCU_MAX_G * 128 * sizeof(float) + SEL4_BINS * sizeof(unsigned) + sizeof(unsigned));
}

int64_t kcu_hsa_npages_cap(int64_t C, int64_t p)
{
    return (kcu_npages(C, p) + 7) / 8 * 8;
}

/* score v2 (the table comes from pages_update v2, earlier in the step) */
static cudaError_t hsa_score_v2(const kcu_hsa_args *a, cudaStream_t st)
{
    if (!a->ws4 || a->npages_cap % SC2_PPT)
        return cudaErrorInvalidValue;
    dim3 grid((unsigned)((a->npages_cap + SC2_TILE - 1) / SC2_TILE), (unsigned)(a->B * a->Hkv));
    auto k4 = hsa_score_v2_kernel<4>;
    auto k8 = hsa_score_v2_kernel<8>;
    if (a->G <= 4)
        KCU_LAUNCH(k4, grid, SC2_THREADS, 0, st, *a);
    else
        KCU_LAUNCH(k8, grid, SC2_THREADS, 0, st, *a);
    return cudaGetLastError();
}

cudaError_t kcu_hsa_score(const kcu_hsa_args *a, cudaStream_t st)
{
    if (a->d > 128 || a->G < 1 || a->G > KCU_MAX_G || a->p < 1)
        return cudaErrorInvalidValue;
    if (a->v4)
        return hsa_score_v2(a, st);
    int64_t np = kcu_npages(a->cap, a->p);
    dim3 grid((unsigned)((np + SC_THREADS - 1) / SC_THREADS), (unsigned)(a->B * a->Hkv));
    auto k4 = hsa_score_kernel<4>;
    auto k8 = hsa_score_kernel<8>;
    if (a->G <= 4)
        KCU_LAUNCH(k4, grid, SC_THREADS, 0, st, *a);
    else
        KCU_LAUNCH(k8, grid, SC_THREADS, 0, st, *a);
    return cudaGetLastError();
}

cudaError_t kcu_hsa_select(const kcu_hsa_args *a, cudaStream_t st)
{
    if (a->G < 1 || a->G > KCU_MAX_G || a->p < 1)
        return cudaErrorInvalidValue;
    if (a->v4) {
        if (!a->ws4 || a->npages_cap % SC2_PPT)
            return cudaErrorInvalidValue;
        if (a->npages_cap <= SEL4_KPT * SEL4_THREADS) {
            dim3 grid((unsigned)((a->npages_cap + SEL4_TILE - 1) / SEL4_TILE), (unsigned)(a->B * a->Hkv));
            KCU_LAUNCH(hsa_select_v4_kernel, grid, SEL4_THREADS, 0, st, *a);
            return cudaGetLastError();
        }
        kcu_hsa_args a1 = *a; /* v1's own normaliser pass over score v2's z */
        a1.part = nullptr;
        KCU_LAUNCH(hsa_select_kernel, (unsigned)(a->B * a->Hkv), SEL_THREADS, 0, st, a1);
        return cudaGetLastError();
    }
    if (a->select_v3 && a->part && a->npages_cap <= 8 * SEL_THREADS) {
        auto k3 = hsa_select_v3_kernel<8>;
        KCU_LAUNCH(k3, (unsigned)(a->B * a->Hkv), SEL_THREADS, 0, st, *a);
        return cudaGetLastError();
    }
    KCU_LAUNCH(hsa_select_kernel, (unsigned)(a->B * a->Hkv), SEL_THREADS, 0, st, *a);
    return cudaGetLastError();
}
