/* hsa_dev.cuh — what the stage-2 kernel files (hsa.cu, hsa_score_v2.cu,
 * hsa_score_v3.cu, hsa_select_v4.cu) share: the token fold of the page update, stage 2
 * v4's tile sizes and workspace layout, and the launchers each file gives
 * the public entry points in hsa.cu. Internal to cuda/. */
#ifndef HSA_DEV_CUH
#define HSA_DEV_CUH

#include "kcu_cuda.h"

#include "kcu.h"
#include "kcu_dev.cuh"
#include "kcu_kernels.h"

/* The token at position len−1 was just appended: fold it into its page (a
 * new page starts from the token itself). */
static __device__ __forceinline__ void hsa_fold_token(const kcu_hsa_args &a, int bh, int i)
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


/* hsa_score_v2.cu: pages_update v2 (the dims/sign/τ table) and score v2. */
cudaError_t hsa_pages_update_v2(const kcu_hsa_args *a, cudaStream_t st);
cudaError_t hsa_score_v2(const kcu_hsa_args *a, cudaStream_t st);
/* hsa_score_v3.cu: score v3 (the fold, the table and the scores in one launch). */
cudaError_t hsa_score_v3(const kcu_hsa_args *a, cudaStream_t st);
/* hsa_select_v4.cu: select v4 (npages_cap <= SEL4_KPT·SEL4_THREADS). */
cudaError_t hsa_select_v4(const kcu_hsa_args *a, cudaStream_t st);

#endif
