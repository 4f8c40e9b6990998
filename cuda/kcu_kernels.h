/* kcu_kernels.h — host entry points of kvsim's CUDA kernels (C++ / nvcc).
 *
 * Layouts (bf16 stored as uint16_t bits, "bh" = b·Hkv + kv_head):
 *   K, V     [B][Hkv][cap][d]            keys after RoPE, values (HND)
 *   q        [B][Hkv·G][d] f32           query head h of KV head g is g·G + h
 *   out      [B][Hkv·G][d] f32
 *   aux      [B][Hkv][rows][npages_cap]  bf16, rows = kcu_aux_rows(d, p):
 *                                        minima then maxima (dimension-major)
 *   pos      [B][Hkv][pos_cap] int32     selected positions, ascending
 *   count    [B][Hkv] int32
 * Every launcher returns cudaGetLastError() after its launches, takes a
 * stream, allocates nothing and is capturable in a CUDA graph (all sizes that
 * vary per step are read on the device).
 *
 * Supported shapes: d ∈ {64, 128}; G ≤ 8 (any G, templates for ≤ 4 and ≤ 8).
 * Which kernel version each launcher runs is listed in the header comment of
 * its .cu file. */
#ifndef KCU_KERNELS_H
#define KCU_KERNELS_H

#include "kcu_cuda.h"
#include <stdint.h>

#define KCU_MAX_G 8

/* ---------------------------------------------------------- attention */
/* Dense (idx == NULL: rows 0 .. len[b]-1) or sparse (rows idx[bh][0 ..
 * count[bh]) ) GQA decode attention, split-KV with a log-sum-exp merge. */
typedef struct {
    const uint16_t *K, *V;   /* [B][Hkv][cap][d] */
    int64_t cap;             /* rows per (b, kv head) */
    const float *q;          /* [B][Hkv·G][d] */
    const int32_t *len;      /* dense: [B] rows per sequence */
    const int32_t *idx;      /* sparse: [B][Hkv][idx_cap] positions, or NULL */
    const int32_t *count;    /* sparse: [B][Hkv] */
    int64_t idx_cap;
    int B, Hkv, G, d;
    int nsplit;              /* splits per (b, kv head), from kcu_attend_splits */
    float *ws;               /* kcu_attend_ws_bytes(); v4: zeroed once before first use
                                (its tickets; every v4 call leaves them zero) */
    float *out;              /* [B][Hkv·G][d] */
    int rows_in_flight;      /* v1: rows per lane group per iteration: 2 (0 = 2) or 4 */
    int version;             /* 1 (0 = 1), 2, 3, 4 or 5: dense_decode.cu's split kernel
                                v2 / v3 / v4 (G ∈ {1, 2, 4, 8}; other G run v1);
                                v4 merges the splits itself (no combine launch);
                                v5 (dense_decode_v5.cu, tensor cores) at G = 8,
                                v4 at other G; zero the ws once as for v4 */
} kcu_attend_args;

int kcu_attend_splits(int64_t max_rows, int B, int Hkv, int num_sms);
/* Splits for a sparse gather with v3 (32-row minimum, kcu_gather_split_count). */
int kcu_gather_splits(int64_t max_rows, int B, int Hkv, int num_sms);
size_t kcu_attend_ws_bytes(int B, int Hkv, int G, int d, int nsplit);
cudaError_t kcu_attend(const kcu_attend_args *a, cudaStream_t st);
/* kcu_attend's version-5 kernel alone: cudaErrorNotSupported where v5 is not
 * launched (kcu_attend then runs v4). */
cudaError_t kcu_attend_v5(const kcu_attend_args *a, cudaStream_t st);

/* ------------------------------------------------------------ stage 2 */
typedef struct {
    const uint16_t *K;       /* [B][Hkv][cap][d] */
    int64_t cap;
    const int32_t *len;      /* [B] tokens cached (C) */
    int B, Hkv, G, d;
    int64_t p;               /* page size */
    int64_t npages_cap;      /* aux row stride, >= ⌈cap/p⌉ */
    uint16_t *aux;           /* [B][Hkv][rows][npages_cap] */
    /* per step */
    const float *q;          /* [B][Hkv·G][d] */
    int r;                   /* dims of the estimate */
    int64_t k;               /* tokens attended */
    int page_granularity;    /* ⌈k/p⌉ whole pages instead of k tokens */
    double *z;               /* ws: [B][Hkv][G][npages_cap] page score / τ */
    double *avg;             /* ws: [B][Hkv][npages_cap] group-mean probability */
    int32_t *dims;           /* out: [B][Hkv][d] chosen dims (first r), ascending */
    int32_t *pos;            /* out: [B][Hkv][pos_cap] */
    int64_t pos_cap;         /* >= k + p */
    int32_t *count;          /* out: [B][Hkv] */
    double *part;            /* ws, v2 and v3 (NULL: v1): kcu_hsa_part_bytes() */
    int select_v3;           /* 1: select v3 (keys in registers; needs part and
                                npages_cap <= 8192, else v2 runs) */
    /* stage 2 v4 (hsa.cu): score v2 and select v4 run as a pair */
    int v4;                  /* 1: score v2 + select v4 (needs ws4, npages_cap a
                                multiple of 8; select v4 needs npages_cap <= 8192,
                                else select v3 runs on score v2's z) */
    void *ws4;               /* kcu_hsa_ws4_bytes(), zeroed once before first use;
                                every select v4 leaves its counters zeroed again */
    /* stage 2 v5 (hsa_score_v3.cu): v4 with the page update inside the score */
    int score_v3;            /* 1 (with v4): kcu_hsa_pages_update launches nothing
                                and kcu_hsa_score runs score v3, which folds the
                                new token and builds the dims table itself: one
                                launch where v4 ran two. Call both, in that order. */
    int sms;                 /* score v3: the device's SMs; > 0: at most one wave of
                                score blocks, each looping over its row's tiles
                                (the table built once per block); 0: one block
                                per tile (hsa_score_v3.cu) */
} kcu_hsa_args;

/* Workspace of stage 2 v4 (dims table, per-tile partials, histograms). */
size_t kcu_hsa_ws4_bytes(int B, int Hkv, int64_t npages_cap);
/* A row stride (npages_cap) for C cached tokens in pages of p that v4 can
 * use: ⌈C/p⌉ rounded up to a multiple of 8 (16-byte aux rows). */
int64_t kcu_hsa_npages_cap(int64_t C, int64_t p);

/* Workspace of the v2 select (per-tile softmax partials). */
size_t kcu_hsa_part_bytes(int B, int Hkv, int G, int64_t npages_cap);

/* Page min/max of tokens 0 .. len[b]-1 (once, over the stage-1 cache). */
cudaError_t kcu_hsa_pages_build(const kcu_hsa_args *a, cudaStream_t st);
/* Fold token len[b]-1 (just appended) into its page. v4 (a.v4): also builds
 * this step's dims/sign/τ table from q for kcu_hsa_score (run it first). */
cudaError_t kcu_hsa_pages_update(const kcu_hsa_args *a, cudaStream_t st);
/* Steps 1–3: dims, signs, τ, page scores z = s/τ. */
cudaError_t kcu_hsa_score(const kcu_hsa_args *a, cudaStream_t st);
/* Steps 4–5: softmax per head, group mean into avg, top-k into pos/count. */
cudaError_t kcu_hsa_select(const kcu_hsa_args *a, cudaStream_t st);

/* ------------------------------------------------------------ stage 1 */
typedef struct {
    const uint16_t *K;       /* [B][Hkv][cap][d] */
    int64_t cap;
    int64_t S;               /* prompt length (the same for the batch) */
    const float *Qw;         /* [B][Hkv][G][w][d] window queries */
    int64_t w, P, kernel;
    int B, Hkv, G, d;
    float *ws;               /* kcu_stage1_ws_bytes() */
    double *votes;           /* [B][Hkv][S] (prefix columns used) */
    double *pooled;          /* [B][Hkv][S] */
    int32_t *kept;           /* [B][Hkv][P] ascending */
    int select_v2;           /* 1: select v2 (32-bit warp-aggregated bins, no CAS loop) */
} kcu_stage1_args;

size_t kcu_stage1_ws_bytes(int64_t S, int B, int Hkv, int G, int64_t w);
cudaError_t kcu_stage1(const kcu_stage1_args *a, cudaStream_t st);

/* ------------------------------------------------------------- probes */
/* Sum-free streaming read of n16 16-byte words (result to sink[0] only if
 * an impossible value appears, so the loads cannot be dropped). */
cudaError_t kcu_probe_read(const uint4 *src, int64_t n16, unsigned *sink, int num_sms, cudaStream_t st);
/* Reads nruns runs of run_bytes (multiple of 16) starting at src + offs[i]·run_bytes. */
cudaError_t kcu_probe_gather(const uint4 *src, const uint32_t *offs, int64_t nruns, int64_t run_bytes,
                             unsigned *sink, int num_sms, cudaStream_t st);
/* An empty kernel, for launch cost. */
cudaError_t kcu_probe_empty(cudaStream_t st);
/* Deterministic bf16 fill on the device: x = bf16(scale·N(0,1)-ish hash). */
cudaError_t kcu_fill_bf16(uint16_t *x, int64_t n, uint64_t seed, float scale, cudaStream_t st);
cudaError_t kcu_fill_f32(float *x, int64_t n, uint64_t seed, float scale, cudaStream_t st);

#endif
