/* hsa_select_v4.cu — stage 2 v4's select: many blocks per (sequence, KV
 * head), a 32-bit coarse histogram, the last block finds the threshold and
 * emits; hsa.cu's header comment lists every version. Split from hsa.cu,
 * unchanged. */
#include "hsa_dev.cuh"

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

/* ---------------------------------------------------------- launcher */
/* select v4: ⌈npages_cap/256⌉ blocks per (sequence, KV head) */
cudaError_t hsa_select_v4(const kcu_hsa_args *a, cudaStream_t st)
{
    dim3 grid((unsigned)((a->npages_cap + SEL4_TILE - 1) / SEL4_TILE), (unsigned)(a->B * a->Hkv));
    KCU_LAUNCH(hsa_select_v4_kernel, grid, SEL4_THREADS, 0, st, *a);
    return cudaGetLastError();
}
