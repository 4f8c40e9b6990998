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
 *       v1 on score v2's z. Checked as `<case>/v2-score`, `<case>/v4-select`.
 *   v5  (a.v4 and a.score_v3) v4 with score v3 (hsa_score_v3.cu): the token
 *       fold, the dims table and the scores in one launch (pages_update
 *       launches nothing), one warp per query head. Same select v4; the
 *       gather is dense version 5 (v5 at G = 8, else v4). With a.sms > 0
 *       score v3 runs one wave of blocks, each looping over its row's tiles
 *       (the table built once per block, not once per tile: at batch 8 the
 *       grid was 7 waves, each paying it). Checked as `<case>/v3-score`,
 *       `<case>/v5-select`, `<case>/v5-gather` (the checks use a.sms = 1:
 *       1–3 blocks per row, so every block loops).
 *
 * Files: this one holds pages build/update v1, score v1, select v1–v3 and
 * the public launchers; hsa_score_v2.cu pages_update v2 and score v2;
 * hsa_score_v3.cu score v3;
 * hsa_select_v4.cu select v4; hsa_dev.cuh what they share. */
#include "hsa_dev.cuh"

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
    if (a->v4 && a->score_v3) /* v5: score v3 folds the token itself */
        return a->ws4 && a->npages_cap % SC2_PPT == 0 ? cudaSuccess : cudaErrorInvalidValue;
    if (a->v4)
        return hsa_pages_update_v2(a, st);
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

cudaError_t kcu_hsa_score(const kcu_hsa_args *a, cudaStream_t st)
{
    if (a->d > 128 || a->G < 1 || a->G > KCU_MAX_G || a->p < 1)
        return cudaErrorInvalidValue;
    if (a->v4)
        return a->score_v3 ? hsa_score_v3(a, st) : hsa_score_v2(a, st);
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
        if (a->npages_cap <= SEL4_KPT * SEL4_THREADS)
            return hsa_select_v4(a, st);
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
