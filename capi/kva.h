/* kva.h — a flat C API over the library for bindings (the Python package
 * python/kvsim calls it through ctypes): plain numbers, strings and
 * caller-owned arrays in; JSON text or caller-owned arrays out. No struct
 * crosses the boundary except gld_result (golden/gld.h), whose layout is
 * fixed-size arrays of plain types.
 *
 * Every function returns 0 on success and −1 on error, with one line of
 * text in err (KVA_ERR_LEN bytes, caller-owned). JSON results are
 * malloc'ed; free them with kva_free. Arrays are C order; shapes below. */
#ifndef KVA_H
#define KVA_H

#include <stddef.h>
#include <stdint.h>
#include "gld.h"

#define KVA_ERR_LEN 768 /* sizeof(kv_err.msg) */

const char *kva_version(void);
void kva_free(void *p);

/* The resolved parameters of `method` for a request on `model` (a name or a
 * YAML path), as rkv_params_json writes them, plus "traits". */
int kva_params(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
               char **json, char *err);

/* sim_predict of the method and of the dense baseline on GPU `hw`:
 * {"method": {...}, "full": {...}} with step time, tokens/s, TTFT and the
 * memory breakdown in SI units (s, B). harness: "engine" or "gpt-fast". */
int kva_predict(const char *model, const char *hw, const char *method, int64_t budget, int64_t context,
                int64_t max_new, int64_t batch, int tp, const char *harness, char **json, char *err);

/* sim_plan: the largest batch that fits, its throughput and TPOT, the
 * batch meeting a TPOT SLO (tpot_slo_s > 0), the longest context at batch
 * 1, GPUs for a target throughput (target_tokens_per_s > 0). */
int kva_plan(const char *model, const char *hw, const char *method, int64_t budget, int64_t context,
             int64_t max_new, int tp, const char *harness, double tpot_slo_s, double target_tokens_per_s,
             char **json, char *err);

/* Runs the sweep spec (YAML) into out_csv (what `kvsim sweep SPEC --out CSV`
 * writes; fidelity 0: as --no-fidelity). */
int kva_sweep(const char *spec, const char *out_csv, int fidelity, char *err);

/* ---- the exact reference (bit-identical to refimpl and to kvsim golden).
 * K/V/q are float32 holding bf16 values (as golden files store them);
 * other values are rounded to bf16 first, as the reference stores them. */

/* Stage 1 at the end of a prefill of S tokens: window queries qw (G, w, d)
 * of positions S−w .. S−1 over keys k (S, d). rows = per_head ? G : 1.
 * votes, pooled: (rows, S − w) or NULL; kept (rows, P) ascending absolute
 * positions; *nkept the count per row (S when S <= P). pool_avg: 0 max, 1 avg. */
int kva_stage1_select(const float *k, int64_t S, int d, int G, const float *qw, int64_t w, int64_t P,
                      int64_t kernel, int pool_avg, int per_head, double *votes, double *pooled, int32_t *kept,
                      int64_t *nkept, char *err);

/* HSA selection of one step over the cache k (C, d) for q (G, d):
 * selected (C) ascending slots, *nsel their count; dims (d) the top-r dims
 * ascending, *r their count; page_scores (G, ceil(C/page_size)) and
 * token_scores (C) or NULL. */
int kva_hsa_select(const float *q, int G, int d, const float *k, int64_t C, int64_t page_size, int64_t topr,
                   int64_t topk, int page_granularity, int64_t local_window, int32_t *selected, int64_t *nsel,
                   int32_t *dims, int *r, double *page_scores, double *token_scores, char *err);

/* Attention of q (G, d) over rows idx[0..nidx) of k, v (n, d) (idx NULL:
 * every row). out (G, d). */
int kva_attend(const float *q, int G, int d, const float *k, const float *v, int64_t n, const int32_t *idx,
               int64_t nidx, float *out, char *err);

/* Any method (refimpl's table) over a bare head: K, V (S + steps, d), the
 * prefill of positions 0 .. S−1 (stage 1 with the window queries qw (G, w, d)
 * where the method has one; w = min(window_size, S), qw may be NULL
 * otherwise), then `steps` decode steps with queries q (steps, G, d). The
 * request: context S, max_new (>= steps) new tokens, no model length cap
 * (the budget split depends on S' = S + max_new). Per step:
 * out (steps, G, d); pos (steps, G, S + steps) attended positions,
 * ascending, count (steps, G) of them. */
int kva_decode(const char *method, int64_t budget, int64_t max_new, const float *k, const float *v, int64_t S,
               int64_t steps, int d, int G, const float *qw, int64_t w, const float *q, float *out, int32_t *pos,
               int64_t *count, char *err);

/* ---- golden files (golden/gld.h) */
/* kv_head −1: every KV head. kv_dtype: bf16, fp16, fp32, fp8-e4m3 or
 * fp8-e5m2 (NULL: bf16), the page bounds in the same dtype, as `kvsim golden
 * --dtype`; another name is an error. */
int kva_golden_write(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
                     int layer, int kv_head, int64_t steps, uint64_t seed, const char *kv_dtype, const char *dir,
                     char *err);
int kva_golden_compare(const char *expected, const char *actual, int all_stages, double atol, gld_result *res,
                       char *err);

#endif
