/* kcu_ref.h — the CPU reference of the GPU pipeline, built from kcu.h.
 *
 * cuda/gpu_check.cu compares every kernel against these functions on a GPU
 * machine that may lack GSL, libyaml and OpenBLAS: they need only libc and
 * libm. tests/test_kcu.c checks them against refimpl (rkv_attend, rkv_topk,
 * rkv_pool1d, rkv_stage1_select) on the CPU, so the chain GPU -> kcu_ref ->
 * refimpl is closed without the GPU machine building refimpl.
 *
 * Data layout is the kernels': K, V are (C, d) bf16 rows of one (sequence, KV
 * head); queries are f32; aux is dimension-major (kcu_aux_rows(d, p),
 * npages_cap) bf16. Arithmetic that decides a selection accumulates in
 * double in a fixed order; the stage-2 page score follows refimpl's rounding
 * (kcu_page_score_acc), so GPU, this file and refimpl agree bit for bit on it.
 *
 * It deliberately does not time anything and does not allocate (callers
 * pass scratch where a function needs it). */
#ifndef KCU_REF_H
#define KCU_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kcu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Top-k by the GPU's algorithm (8 radix passes over 64-bit keys, weighted,
 * then index-ordered fill of the threshold key). keys[n] from kcu_desc_key,
 * w[n] weights (NULL: all 1), k units wanted. take[n] receives the units each
 * candidate contributes. Returns the total taken (min(k, Σw)). */
int64_t kcu_select_host(const uint64_t *keys, const int64_t *w, int64_t n, int64_t k, int64_t *take);

/* Top-k of scores (ties to the lower index), ascending positions in idx;
 * returns min(k, n). take is scratch of n int64, keys of n uint64. */
int64_t kcu_topk_host(const double *scores, int64_t n, int64_t k, int32_t *idx, uint64_t *keys,
                      int64_t *take);

/* Attention of G query heads (q: (G, d) f32) over rows idx[0..n) of K, V
 * ((·, d) bf16; idx NULL: rows 0..n-1), scores q·k/√d, softmax and output in
 * double. out: (G, d). */
void kcu_ref_attend(const uint16_t *K, const uint16_t *V, int d, int G, const float *q,
                    const int32_t *idx, int64_t n, double *out);

/* Page min/max of keys 0..C-1 into aux (kcu_aux_rows(d, p), npages_cap);
 * for p = 1 the transposed K. */
void kcu_ref_pages_build(const uint16_t *K, int64_t C, int d, int64_t p, int64_t npages_cap, uint16_t *aux);

/* Stage 2, steps 1–2 and τ: dims (r, ascending), gsum[d] = Σ_h q_h[i],
 * tau[G]. Returns r (clamped to [1, d]). scratch: 2·d doubles + d uint64 + d int64. */
int kcu_ref_hsa_dims(const float *q, int G, int d, int r, int32_t *dims, double *gsum, double *tau,
                     void *scratch);

/* Step 3 and the τ division: z[h·npages + j] = (double)s_h(j) / τ_h, s in
 * f32 summed over dims[] in order (kcu_page_score_acc). */
void kcu_ref_hsa_page_scores(const uint16_t *aux, int64_t npages_cap, int d, int64_t p, int G,
                             const float *q, const int32_t *dims, int r, const double *gsum,
                             const double *tau, int64_t npages, double *z);

/* Step 4: per-head softmax over the C tokens (page scores broadcast, page j
 * weighing kcu_page_count(j, C, p) tokens), averaged over the G heads:
 * avg[npages], in double, in refimpl's order (max, exp, Σ cnt·e in page
 * order, Σ over heads in head order, then / G). */
void kcu_ref_hsa_average(const double *z, int G, int64_t npages, int64_t C, int64_t p, double *avg);

/* Step 5: the selected token positions, ascending; returns their count.
 * page_granularity: ⌈k/p⌉ whole pages instead of k tokens. keys/take:
 * scratch of npages each. */
int64_t kcu_ref_hsa_select(const double *avg, int64_t npages, int64_t C, int64_t p, int64_t k,
                           int page_granularity, int32_t *pos, uint64_t *keys, int64_t *take,
                           int64_t *w);

/* Stage 1 (snapkv-gqa) of one KV head at the end of a single-turn prefill of
 * S tokens: window queries Qw (G, w, d) are positions S-w .. S-1; votes in
 * double (S - w prefix columns) into votes; max-pooled into pooled; kept
 * positions (ascending) into kept. Returns the kept count (S if S <= P).
 * scratch: S doubles + (S) uint64 + (S) int64. */
int64_t kcu_ref_stage1(const uint16_t *K, int64_t S, int d, int G, const float *Qw, int64_t w,
                       int64_t P, int64_t kernel, double *votes, double *pooled, int32_t *kept,
                       void *scratch);

/* Index sets decided on slightly different arithmetic may differ only at
 * near-ties: every candidate whose take differs between ref and got must
 * have a score within rel_eps·|T| of the ref's threshold score T (the
 * smallest score ref took from). Returns the number of differing candidates
 * that are not near-ties (0 = pass); *ndiff receives all differing ones. */
int64_t kcu_compare_takes(const double *score, const int64_t *take_ref, const int64_t *take_got, int64_t n,
                          double rel_eps, int64_t *ndiff);

#ifdef __cplusplus
}
#endif

#endif
