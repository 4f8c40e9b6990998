/* dense_decode.cu — GQA decode attention (one new query per sequence), dense
 * over rows 0..len-1 or sparse over a list of selected positions, split-KV
 * with a log-sum-exp merge. The same kernel serves `full` and stage 2's
 * sparse gather, as rkv_attend does on the CPU.
 *
 * Versions (all in this file; no GPU has run any; their logic passes
 * gpu_check's checks under the CPU emulation, `make cuda-emu`, at small
 * shapes):
 *   v1  split kernel + separate combine kernel. Block = 4 warps; a row of K
 *       (and of V) is read once, 16 bytes per lane (d/8 lanes per row), and
 *       applied to all G query heads of the group (q pre-scaled by 1/√d in
 *       registers); partial dots reduced with xor shuffles inside the row's
 *       lane group; online softmax per row group with expf; row groups
 *       merged in shared memory in a fixed order; the combine kernel merges
 *       the splits in split order. Two rows in flight per lane group;
 *       splits chosen for about 4 blocks per SM, none under 256 rows.
 *   v1b (rows_in_flight = 4) the same with four rows per lane group per
 *       iteration (more loads in flight, more registers); gpu_check checks
 *       and times both. 2 stays the default until a GPU says otherwise.
 *       CUDA cores only (no mma): FlashInfer's note is that with G = 4
 *       this path should still be bandwidth-bound on H100; unmeasured.
 *   v2  (a.version == 2; G ∈ {1, 2, 4, 8}, other G run v1)
 *       attend_split_v2_kernel<D, G>: G a template constant, 4 rows per
 *       lane group per tile, one online-softmax rescale per tile and head
 *       (v1: one per row, two expf and eight multiplies each). gpu_check
 *       checks it on every attention case and times it (`step_v2`); the
 *       audit's instructions per 2 KB compare the two.
 *   v3  (a.version == 3; G ∈ {1, 2, 4, 8}) attend_split_v3_kernel<D, G>:
 *       a transposing butterfly for the row scores, one exp per lane, and
 *       the sparse form's position list staged in shared memory per
 *       256-row segment (comment at the kernel). For the sparse gather,
 *       kcu_gather_splits: a 32-row minimum split (one tile of 4 warps),
 *       so a 512-row gather at batch 1 gets 16 splits (128 blocks), v2's
 *       64-row minimum 8.
 *   v4  (a.version == 4; G ∈ {1, 2, 4, 8}) attend_split_v4_kernel<D, G>:
 *       v3 with no branch around the tile's loads (rows past the end load
 *       the segment's first row, whose p is 0: 341 SASS instructions per
 *       2 KB at d = 64, G = 4, v3 351) and the split merge in the kernel —
 *       the last split block of each (sequence, KV head), found by a ticket
 *       in ws (zeroed once by the caller, left zero by each call), merges
 *       the partials — so one launch per call, not two. Checked as
 *       `<case>/v4` (called twice: the tickets must come back to zero);
 *       gpu_check times `step_v4`.
 *   v5  (a.version == 5; dense_decode_v5.cu) tensor cores (mma.sync
 *       m16n8k16 bf16 → f32) at G = 8, where v4's CUDA-core loop is
 *       issue-bound: 89.8 / 142.5 SASS instructions per 2 KB at d = 128 /
 *       64 (v4 558 / 672); other G run v4 (v5 at G = 4 is compiled for the
 *       audit: bandwidth-bound like v4, no faster in its model). Checked as
 *       `<case>/v5` at G = 8; stage 2 v5 and the replayer gather with
 *       version 5.
 * Split count v2 (kcu_attend_split_count, kcu.h): at most one wave of 4
 * blocks per SM and a 64-row minimum (v1: rounded up, 256 rows — a second
 * wave at batch 8, 4 splits for a 1K-row gather at batch 1);
 * __launch_bounds__ states the 4 (G ≤ 4) / 2 (G ≤ 8) resident blocks the
 * split count assumes.
 * Known limits: d ∈ {64, 128}, G ≤ 8, bf16 K/V.
 *
 * Bytes moved (the figure gpu_check divides by time): rows·2·d·2 for K and
 * V, plus idx reads for the sparse form; q, out and the split workspace are
 * counted separately and are small. */
#include "kcu_cuda.h"

#include "kcu.h"
#include "kcu_dev.cuh"
#include "kcu_kernels.h"

#include "dense_dev.cuh"

int kcu_attend_splits(int64_t max_rows, int B, int Hkv, int num_sms)
{
    /* up to 4 blocks of 4 warps per SM (124 registers per thread at G <= 4
     * allow 4 resident), one wave: kcu_attend_split_count (kcu.h) */
    return kcu_attend_split_count(max_rows, (int64_t)B * Hkv, num_sms);
}

int kcu_gather_splits(int64_t max_rows, int B, int Hkv, int num_sms)
{
    return kcu_gather_split_count(max_rows, (int64_t)B * Hkv, num_sms);
}

size_t kcu_attend_ws_bytes(int B, int Hkv, int G, int d, int nsplit)
{
    size_t parts = (size_t)B * Hkv * nsplit * G;
    /* + v4's ticket per (sequence, KV head) */
    return parts * 2 * sizeof(float) + parts * d * sizeof(float) + (size_t)B * Hkv * sizeof(unsigned);
}

/* v1 (the file comment's steps: load, score, online softmax per row group,
 * row-group merge in shared memory). Over 80 lines on purpose: q, m, l and
 * acc live in registers across every phase, which helper functions would
 * not change but would hide. */
template <int D, int GMAX, int U>
/* min blocks per SM: 4 at G <= 4 (the split count assumes 4), 2 at G <= 8 */
__global__ void __launch_bounds__(ATT_THREADS, GMAX <= 4 ? 4 : 2) attend_split_kernel(kcu_attend_args a)
{
    constexpr int LANES = D / 8;          /* lanes per row */
    constexpr int RGW = 32 / LANES;       /* row groups per warp */
    constexpr int NRG = ATT_WARPS * RGW;  /* row groups per block */
    KCU_SHARED(float, sm_m, [NRG][GMAX]);
    KCU_SHARED(float, sm_l, [NRG][GMAX]);
    KCU_SHARED(float, sm_acc, [NRG][GMAX][D]);

    const int G = a.G;
    const int bh = blockIdx.y, split = blockIdx.x;
    const int b = bh / a.Hkv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rg = warp * RGW + lane / LANES, sl = lane % LANES;

    int64_t n = a.idx ? (int64_t)a.count[bh] : (int64_t)a.len[b];
    int64_t lo, hi;
    kcu_split_range(n, a.nsplit, split, ATT_GRANULE, &lo, &hi);

    const float scale = rsqrtf((float)D);
    float qf[GMAX][8];
#pragma unroll
    for (int h = 0; h < GMAX; h++)
#pragma unroll
        for (int e = 0; e < 8; e++)
            qf[h][e] = h < G ? a.q[((size_t)bh * G + h) * D + sl * 8 + e] * scale : 0.0f;

    float m[GMAX], l[GMAX], acc[GMAX][8];
#pragma unroll
    for (int h = 0; h < GMAX; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++)
            acc[h][e] = 0.0f;
    }

    const uint16_t *Kb = a.K + (size_t)bh * a.cap * D + sl * 8;
    const uint16_t *Vb = a.V + (size_t)bh * a.cap * D + sl * 8;
    const int32_t *ib = a.idx ? a.idx + (size_t)bh * a.idx_cap : nullptr;

    /* The trip count is uniform over the block (t0 is shared), so the
     * shuffles below always run with every lane present. */
    for (int64_t t0 = lo; t0 < hi; t0 += U * NRG) {
        int64_t t[U];
        bool valid[U];
        uint4 ku[U], vu[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            t[u] = t0 + u * NRG + rg;
            valid[u] = t[u] < hi;
            ku[u] = make_uint4(0, 0, 0, 0);
            vu[u] = ku[u];
            if (valid[u]) {
                int64_t row = ib ? (int64_t)ib[t[u]] : t[u];
                ku[u] = __ldg(reinterpret_cast<const uint4 *>(Kb + row * D));
                vu[u] = __ldg(reinterpret_cast<const uint4 *>(Vb + row * D));
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            float kf[8], vf[8];
            kcu_unpack8(ku[u], kf);
            kcu_unpack8(vu[u], vf);
#pragma unroll
            for (int h = 0; h < GMAX; h++) {
                if (h >= G)
                    break;
                float s = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++)
                    s = fmaf(qf[h][e], kf[e], s);
#pragma unroll
                for (int o = LANES / 2; o > 0; o >>= 1)
                    s += __shfl_xor_sync(KCU_FULL_MASK, s, o);
                if (valid[u]) {
                    float p;
                    float f = kcu_online_add(&m[h], &l[h], s, &p);
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        acc[h][e] = fmaf(acc[h][e], f, p * vf[e]);
                }
            }
        }
    }

#pragma unroll
    for (int h = 0; h < GMAX; h++) {
        if (sl == 0) {
            sm_m[rg][h] = m[h];
            sm_l[rg][h] = l[h];
        }
#pragma unroll
        for (int e = 0; e < 8; e++)
            sm_acc[rg][h][sl * 8 + e] = acc[h][e];
    }
    __syncthreads();

    /* Merge the row groups in row-group order. */
    size_t part = (size_t)bh * a.nsplit + split;
    float *ml = a.ws + part * G * 2;
    float *pacc = a.ws + (size_t)a.B * a.Hkv * a.nsplit * G * 2 + part * G * D;
    for (int it = threadIdx.x; it < G * D; it += ATT_THREADS) {
        int h = it / D, i = it % D;
        float M = -INFINITY;
        for (int r = 0; r < NRG; r++)
            M = fmaxf(M, sm_m[r][h]);
        float L = 0.0f, A = 0.0f;
        if (M != -INFINITY)
            for (int r = 0; r < NRG; r++) {
                float f = sm_m[r][h] == -INFINITY ? 0.0f : expf(sm_m[r][h] - M);
                L = fmaf(sm_l[r][h], f, L);
                A = fmaf(sm_acc[r][h][i], f, A);
            }
        pacc[(size_t)h * D + i] = A;
        if (i == 0) {
            ml[h * 2] = M;
            ml[h * 2 + 1] = L;
        }
    }
}

/* v2: G a compile-time constant (no per-head `h >= G` branch), four rows
 * per lane group per tile, and one online-softmax update per tile and head
 * instead of one per row: the tile's scores first, then its max, one
 * rescale of l and acc (one expf), then the tile's exp and weighted V rows.
 * Same block, row-group merge and workspace layout as v1 (the combine
 * kernel is shared). Launched for G ∈ {1, 2, 4, 8} (a.version == 2); other
 * G run v1. Over 80 lines on purpose, as v1: q, m, l and acc live in
 * registers across the load, score, rescale and accumulate phases, which
 * helper functions would not change but would hide. */
template <int D, int G>
__global__ void __launch_bounds__(ATT_THREADS, G <= 4 ? 4 : 2) attend_split_v2_kernel(kcu_attend_args a)
{
    constexpr int LANES = D / 8, RGW = 32 / LANES, NRG = ATT_WARPS * RGW, U = 4;
    KCU_SHARED(float, sm_m, [NRG][G]);
    KCU_SHARED(float, sm_l, [NRG][G]);
    KCU_SHARED(float, sm_acc, [NRG][G][D]);
    const int bh = blockIdx.y, split = blockIdx.x, b = bh / a.Hkv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rg = warp * RGW + lane / LANES, sl = lane % LANES;
    int64_t n = a.idx ? (int64_t)a.count[bh] : (int64_t)a.len[b], lo, hi;
    kcu_split_range(n, a.nsplit, split, ATT_GRANULE, &lo, &hi);
    const float scale = rsqrtf((float)D);
    float qf[G][8], m[G], l[G], acc[G][8];
#pragma unroll
    for (int h = 0; h < G; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            qf[h][e] = a.q[((size_t)bh * G + h) * D + sl * 8 + e] * scale;
            acc[h][e] = 0.0f;
        }
    }
    const uint16_t *Kb = a.K + (size_t)bh * a.cap * D + sl * 8;
    const uint16_t *Vb = a.V + (size_t)bh * a.cap * D + sl * 8;
    const int32_t *ib = a.idx ? a.idx + (size_t)bh * a.idx_cap : nullptr;
    for (int64_t t0 = lo; t0 < hi; t0 += U * NRG) { /* uniform trip count: shuffles see every lane */
        uint4 ku[U], vu[U];
        bool valid[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int64_t t = t0 + u * NRG + rg;
            valid[u] = t < hi;
            ku[u] = vu[u] = make_uint4(0, 0, 0, 0);
            if (valid[u]) {
                int64_t row = ib ? (int64_t)ib[t] : t;
                ku[u] = __ldg(reinterpret_cast<const uint4 *>(Kb + row * D));
                vu[u] = __ldg(reinterpret_cast<const uint4 *>(Vb + row * D));
            }
        }
        float s[U][G];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float kf[8];
            kcu_unpack8(ku[u], kf);
#pragma unroll
            for (int h = 0; h < G; h++) {
                float x = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++)
                    x = fmaf(qf[h][e], kf[e], x);
#pragma unroll
                for (int o = LANES / 2; o > 0; o >>= 1)
                    x += __shfl_xor_sync(KCU_FULL_MASK, x, o);
                s[u][h] = valid[u] ? x : -INFINITY;
            }
        }
#pragma unroll
        for (int h = 0; h < G; h++) {
            float mt = m[h];
#pragma unroll
            for (int u = 0; u < U; u++)
                mt = fmaxf(mt, s[u][h]);
            if (mt == -INFINITY)
                continue; /* no valid row yet for this lane group */
            float f = m[h] == -INFINITY ? 0.0f : expf(m[h] - mt);
            l[h] *= f;
#pragma unroll
            for (int e = 0; e < 8; e++)
                acc[h][e] *= f;
            m[h] = mt;
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            float vf[8];
            kcu_unpack8(vu[u], vf);
#pragma unroll
            for (int h = 0; h < G; h++) {
                float p = s[u][h] == -INFINITY ? 0.0f : expf(s[u][h] - m[h]);
                l[h] += p;
#pragma unroll
                for (int e = 0; e < 8; e++)
                    acc[h][e] = fmaf(p, vf[e], acc[h][e]);
            }
        }
    }
#pragma unroll
    for (int h = 0; h < G; h++) {
        if (sl == 0) {
            sm_m[rg][h] = m[h];
            sm_l[rg][h] = l[h];
        }
#pragma unroll
        for (int e = 0; e < 8; e++)
            sm_acc[rg][h][sl * 8 + e] = acc[h][e];
    }
    __syncthreads();
    size_t part = (size_t)bh * a.nsplit + split; /* row groups merged in order, as v1 */
    float *ml = a.ws + part * G * 2;
    float *pacc = a.ws + (size_t)a.B * a.Hkv * a.nsplit * G * 2 + part * G * D;
    for (int it = threadIdx.x; it < G * D; it += ATT_THREADS) {
        int h = it / D, i = it % D;
        float M = -INFINITY, L = 0.0f, A = 0.0f;
        for (int r = 0; r < NRG; r++)
            M = fmaxf(M, sm_m[r][h]);
        if (M != -INFINITY)
            for (int r = 0; r < NRG; r++) {
                float f = sm_m[r][h] == -INFINITY ? 0.0f : expf(sm_m[r][h] - M);
                L = fmaf(sm_l[r][h], f, L);
                A = fmaf(sm_acc[r][h][i], f, A);
            }
        pacc[(size_t)h * D + i] = A;
        if (i == 0) {
            ml[h * 2] = M;
            ml[h * 2 + 1] = L;
        }
    }
}

/* v3 (a.version == 3; G ∈ {1, 2, 4, 8}, other G run v1): v2's tile, with
 *   - a transposing butterfly for the row scores: a lane's U·G partial dots
 *     (U = min(4, lanes per row / G) rows per tile) are halved at each xor
 *     step — a lane keeps one half and sends the other — so U·G − 1
 *     shuffles leave each lane one whole score, (head, row) = its lane
 *     number's top bits, where v2 spent U·G·log2(lanes) shuffles and adds;
 *   - the online softmax on that one score per lane: the tile max over the
 *     U lanes of a head, one exp for p and one for the rescale factor per
 *     lane (v2: U·G + G exps per lane), then U·G + G broadcasts of p and f
 *     for the P·V update that every lane does for its 8 dims of all heads;
 *   - sparse form: each 256-row segment of the split's position list staged
 *     in shared memory first (no index load in front of every K/V load).
 * Same block, merge and workspace as v1/v2 (the combine kernel is shared).
 * Over 80 lines on purpose, as v2: the registers live across the phases. */
template <int D, int G, bool V4>
static __device__ __forceinline__ void attend_v3_body(const kcu_attend_args &a)
{
    constexpr int LANES = D / 8, RGW = 32 / LANES, NRG = ATT_WARPS * RGW;
    constexpr int U = LANES / G < 4 ? LANES / G : 4, V = U * G;
    constexpr int LB = LANES == 16 ? 4 : 3, VB = V == 16 ? 4 : V == 8 ? 3 : V == 4 ? 2 : V == 2 ? 1 : 0;
    constexpr int SH = LB - VB;                 /* lane bits below a value's index */
    constexpr int SEG = 256;                    /* staged positions per segment */
    KCU_SHARED(float, sm_m, [NRG][G]);
    KCU_SHARED(float, sm_l, [NRG][G]);
    KCU_SHARED(float, sm_acc, [NRG][G][D]);
    KCU_SHARED(int32_t, sidx, [SEG]);
    const int bh = blockIdx.y, split = blockIdx.x, b = bh / a.Hkv;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rg = warp * RGW + lane / LANES, sl = lane % LANES;
    const int vi = sl >> SH, vh = vi / U, vu = vi % U; /* this lane's (head, row) after the butterfly */
    int64_t n = a.idx ? (int64_t)a.count[bh] : (int64_t)a.len[b], lo, hi;
    kcu_split_range(n, a.nsplit, split, ATT_GRANULE, &lo, &hi);
    const float scale = rsqrtf((float)D);
    float qf[G][8], acc[G][8], m = -INFINITY, l = 0.0f; /* m, l: head vh's */
#pragma unroll
    for (int h = 0; h < G; h++)
#pragma unroll
        for (int e = 0; e < 8; e++) {
            qf[h][e] = a.q[((size_t)bh * G + h) * D + sl * 8 + e] * scale;
            acc[h][e] = 0.0f;
        }
    const uint16_t *Kb = a.K + (size_t)bh * a.cap * D + sl * 8;
    const uint16_t *Vb = a.V + (size_t)bh * a.cap * D + sl * 8;
    const int32_t *ib = a.idx ? a.idx + (size_t)bh * a.idx_cap : nullptr;
    for (int64_t s0 = lo; s0 < hi; s0 += SEG) { /* uniform trip counts: collectives see every lane */
        const int64_t s1 = s0 + SEG < hi ? s0 + SEG : hi;
        if (ib) {
            for (int64_t t = s0 + threadIdx.x; t < s1; t += ATT_THREADS)
                sidx[t - s0] = ib[t];
            __syncthreads();
        }
        for (int64_t t0 = s0; t0 < s1; t0 += U * NRG) {
            uint4 ku[U], vu4[U];
            bool valid[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                int64_t t = t0 + u * NRG + rg;
                valid[u] = t < s1;
                if (V4) { /* past the end: the segment's first row (finite K/V; its p is 0) — no branch */
                    const int64_t tc = valid[u] ? t : s0;
                    const int64_t row = ib ? (int64_t)sidx[tc - s0] : tc;
                    ku[u] = __ldg(reinterpret_cast<const uint4 *>(Kb + row * D));
                    vu4[u] = __ldg(reinterpret_cast<const uint4 *>(Vb + row * D));
                    continue;
                }
                ku[u] = vu4[u] = make_uint4(0, 0, 0, 0);
                if (valid[u]) {
                    int64_t row = ib ? (int64_t)sidx[t - s0] : t;
                    ku[u] = __ldg(reinterpret_cast<const uint4 *>(Kb + row * D));
                    vu4[u] = __ldg(reinterpret_cast<const uint4 *>(Vb + row * D));
                }
            }
            float x[V]; /* partial dots, index h·U + u */
#pragma unroll
            for (int u = 0; u < U; u++) {
                float kf[8];
                kcu_unpack8(ku[u], kf);
#pragma unroll
                for (int h = 0; h < G; h++) {
                    float y = 0.0f;
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        y = fmaf(qf[h][e], kf[e], y);
                    x[h * U + u] = y;
                }
            }
#pragma unroll
            for (int k = 0; k < 4; k++) { /* transposing butterfly (VB <= 4 steps) */
                if (k >= VB)
                    break;
                const int o = LANES >> (k + 1);
                const bool up = sl & o;
#pragma unroll
                for (int i = 0; i < V / 2; i++) {
                    if (i >= (V >> k) / 2)
                        break;
                    float send = up ? x[i] : x[i + (V >> k) / 2];
                    float keep = up ? x[i + (V >> k) / 2] : x[i];
                    x[i] = keep + __shfl_xor_sync(KCU_FULL_MASK, send, o);
                }
            }
#pragma unroll
            for (int o = (LANES >> (VB + 1)); o > 0; o >>= 1) /* lanes sharing one value */
                x[0] += __shfl_xor_sync(KCU_FULL_MASK, x[0], o);
            bool my_valid = false;
#pragma unroll
            for (int u = 0; u < U; u++)
                my_valid |= u == vu && valid[u];
            const float s = my_valid ? x[0] : -INFINITY;
            float mt = s;
#pragma unroll
            for (int o = 1 << SH; o < (U << SH); o <<= 1)
                mt = fmaxf(mt, __shfl_xor_sync(KCU_FULL_MASK, mt, o));
            const float mn = fmaxf(m, mt);
            const float f = m == -INFINITY ? 0.0f : expf(m - mn);
            const float pr = s == -INFINITY ? 0.0f : expf(s - mn);
            l = l * f + pr;
            m = mn;
            float vf[U][8];
#pragma unroll
            for (int u = 0; u < U; u++)
                kcu_unpack8(vu4[u], vf[u]);
#pragma unroll
            for (int h = 0; h < G; h++) {
                const float fh = __shfl_sync(KCU_FULL_MASK, f, ((h * U) << SH) + (lane & ~(LANES - 1)));
#pragma unroll
                for (int e = 0; e < 8; e++)
                    acc[h][e] *= fh;
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const float p = __shfl_sync(KCU_FULL_MASK, pr, ((h * U + u) << SH) + (lane & ~(LANES - 1)));
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        acc[h][e] = fmaf(p, vf[u][e], acc[h][e]);
                }
            }
        }
        if (ib)
            __syncthreads(); /* every lane has read sidx before the next segment's writes */
    }
#pragma unroll
    for (int o = 1 << SH; o < (U << SH); o <<= 1) /* head vh's l over its U lanes */
        l += __shfl_xor_sync(KCU_FULL_MASK, l, o);
    if ((sl & ((1 << SH) * U - 1)) == 0) { /* the (vh, u = 0) lane */
        sm_m[rg][vh] = m;
        sm_l[rg][vh] = l;
    }
#pragma unroll
    for (int h = 0; h < G; h++)
#pragma unroll
        for (int e = 0; e < 8; e++)
            sm_acc[rg][h][sl * 8 + e] = acc[h][e];
    __syncthreads();
    size_t part = (size_t)bh * a.nsplit + split; /* row groups merged in order, as v1 */
    float *ml = a.ws + part * G * 2;
    float *pacc = a.ws + (size_t)a.B * a.Hkv * a.nsplit * G * 2 + part * G * D;
    for (int it = threadIdx.x; it < G * D; it += ATT_THREADS) {
        int h = it / D, i = it % D;
        float M = -INFINITY, L = 0.0f, A = 0.0f;
        for (int r = 0; r < NRG; r++)
            M = fmaxf(M, sm_m[r][h]);
        if (M != -INFINITY)
            for (int r = 0; r < NRG; r++) {
                float f = sm_m[r][h] == -INFINITY ? 0.0f : expf(sm_m[r][h] - M);
                L = fmaf(sm_l[r][h], f, L);
                A = fmaf(sm_acc[r][h][i], f, A);
            }
        pacc[(size_t)h * D + i] = A;
        if (i == 0) {
            ml[h * 2] = M;
            ml[h * 2 + 1] = L;
        }
    }
    if (V4)
        attend_v4_merge<D, G>(a, &sm_acc[0][0][0]);
}

/* v3: the split kernel; attend_combine_kernel merges the splits. */
template <int D, int G>
__global__ void __launch_bounds__(ATT_THREADS, G <= 4 ? 4 : 2) attend_split_v3_kernel(kcu_attend_args a)
{
    attend_v3_body<D, G, false>(a);
}

/* v4 (a.version == 4): v3 with no branch around the tile's loads (rows
 * past the end load the segment's first row, whose p is 0) and the split
 * merge inside the kernel: the last split block of each (sequence, KV head)
 * (a ticket in the workspace) merges every split's partial into out — one
 * launch per call where v1–v3 run two (split, combine). */
template <int D, int G>
__global__ void __launch_bounds__(ATT_THREADS, G <= 4 ? 4 : 2) attend_split_v4_kernel(kcu_attend_args a)
{
    attend_v3_body<D, G, true>(a);
}

/* One block per (sequence, KV head, query head); splits merged in order. */
__global__ void attend_combine_kernel(kcu_attend_args a)
{
    const int G = a.G, D = a.d;
    const int bh = blockIdx.x / G, h = blockIdx.x % G;
    const float *ml = a.ws;
    const float *pacc = a.ws + (size_t)a.B * a.Hkv * a.nsplit * G * 2;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float M = -INFINITY, L = 0.0f, A = 0.0f;
        for (int s = 0; s < a.nsplit; s++) {
            size_t part = ((size_t)bh * a.nsplit + s) * G + h;
            float f1, f2;
            float mm = kcu_lse_merge(M, ml[part * 2], &f1, &f2);
            L = L * f1 + ml[part * 2 + 1] * f2;
            A = A * f1 + pacc[part * D + i] * f2;
            M = mm;
        }
        a.out[((size_t)bh * G + h) * D + i] = L > 0.0f ? A / L : 0.0f;
    }
}

/* The v2 split kernel for G ∈ {1, 2, 4, 8}, else NULL. */
template <int D>
static void (*split_v2(int G))(kcu_attend_args)
{
    return G == 1 ? attend_split_v2_kernel<D, 1> : G == 2 ? attend_split_v2_kernel<D, 2>
         : G == 4 ? attend_split_v2_kernel<D, 4> : G == 8 ? attend_split_v2_kernel<D, 8> : nullptr;
}

/* The v4 split kernel (merge included) for G ∈ {1, 2, 4, 8}, else NULL. */
template <int D>
static void (*split_v4(int G))(kcu_attend_args)
{
    return G == 1 ? attend_split_v4_kernel<D, 1> : G == 2 ? attend_split_v4_kernel<D, 2>
         : G == 4 ? attend_split_v4_kernel<D, 4> : G == 8 ? attend_split_v4_kernel<D, 8> : nullptr;
}

/* The v3 split kernel for G ∈ {1, 2, 4, 8}, else NULL. */
template <int D>
static void (*split_v3(int G))(kcu_attend_args)
{
    return G == 1 ? attend_split_v3_kernel<D, 1> : G == 2 ? attend_split_v3_kernel<D, 2>
         : G == 4 ? attend_split_v3_kernel<D, 4> : G == 8 ? attend_split_v3_kernel<D, 8> : nullptr;
}

template <int D, int GMAX>
static cudaError_t launch(const kcu_attend_args *a, cudaStream_t st)
{
    dim3 grid((unsigned)a->nsplit, (unsigned)(a->B * a->Hkv));
    /* v4: no combine launch; its merge weights (nsplit·G floats) reuse the
     * tile accumulators' shared memory (NRG·G·D floats, NRG = 4·32/(D/8)) */
    if (a->version == 4 && split_v4<D>(a->G) && (int64_t)a->nsplit <= (int64_t)(ATT_WARPS * 32 / (D / 8)) * D) {
        KCU_LAUNCH(split_v4<D>(a->G), grid, ATT_THREADS, 0, st, *a);
        return cudaGetLastError();
    }
    auto split_k = a->rows_in_flight == 4 ? attend_split_kernel<D, GMAX, 4> : attend_split_kernel<D, GMAX, 2>;
    if (a->version == 2 && split_v2<D>(a->G))
        split_k = split_v2<D>(a->G);
    if (a->version >= 3 && split_v3<D>(a->G))
        split_k = split_v3<D>(a->G);
    KCU_LAUNCH(split_k, grid, ATT_THREADS, 0, st, *a);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    KCU_LAUNCH(attend_combine_kernel, (unsigned)(a->B * a->Hkv * a->G), D, 0, st, *a);
    return cudaGetLastError();
}

cudaError_t kcu_attend(const kcu_attend_args *a, cudaStream_t st)
{
    if (a->G < 1 || a->G > KCU_MAX_G || a->nsplit < 1 || a->B < 1 || a->Hkv < 1 || a->version < 0 || a->version > 5 ||
        (a->rows_in_flight != 0 && a->rows_in_flight != 2 && a->rows_in_flight != 4))
        return cudaErrorInvalidValue;
    if (a->version == 5) { /* v5 (dense_decode_v5.cu) where it is the faster kernel, else v4 */
        cudaError_t e = kcu_attend_v5(a, st);
        if (e != cudaErrorNotSupported)
            return e;
        kcu_attend_args a4 = *a;
        a4.version = 4;
        return kcu_attend(&a4, st);
    }
    if (a->d == 128)
        return a->G <= 4 ? launch<128, 4>(a, st) : launch<128, 8>(a, st);
    if (a->d == 64)
        return a->G <= 4 ? launch<64, 4>(a, st) : launch<64, 8>(a, st);
    return cudaErrorInvalidValue;
}
