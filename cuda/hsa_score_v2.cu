/* hsa_score_v2.cu — stage 2 v4's page update v2 (the dims/sign/τ table built
 * once per step) and score v2 (8 pages per 16-byte load); hsa.cu's header
 * comment lists every version. Split from hsa.cu, unchanged. */
#include "hsa_dev.cuh"

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


/* ---------------------------------------------------------- launchers */
/* pages_update v2 (a.v4): the fold and the step's dims table, one block per row */
cudaError_t hsa_pages_update_v2(const kcu_hsa_args *a, cudaStream_t st)
{
    if (!a->ws4 || a->npages_cap % SC2_PPT || a->G < 1 || a->G > KCU_MAX_G)
        return cudaErrorInvalidValue;
    KCU_LAUNCH(hsa_pages_update_v2_kernel, (unsigned)(a->B * a->Hkv), (unsigned)a->d, 0, st, *a);
    return cudaGetLastError();
}

/* score v2 (the table comes from pages_update v2, earlier in the step) */
cudaError_t hsa_score_v2(const kcu_hsa_args *a, cudaStream_t st)
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
