/* workload_internal.h — helpers the two synthetic generators share
 * (refimpl/workload.c: the hand-tuned one; refimpl/workload_fitted.c). */
#ifndef RKV_WORKLOAD_INTERNAL_H
#define RKV_WORKLOAD_INTERNAL_H

#include "rkv.h"
#include <gsl/gsl_rng.h>

/* RNG stream seed of (seed, a, b, c, tag): independent streams per use. */
unsigned long rkv_wl_stream_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t tag);
/* Random unit vector supported on dims [lo, hi) of each RoPE half. */
void rkv_wl_unit_in_band(gsl_rng *r, int d, int lo, int hi, float *v);
/* The RoPE base: the workload's rope_theta, else the model's, else 10000. */
double rkv_wl_theta(const rkv_workload *wl, const mdl_model *m);
/* cos/sin table (n, d/2, 2) of pos·θ_i, shared and grown; NULL when out of memory. */
const float *rkv_wl_rope_get(double theta, int d, int64_t n);
/* In-place RoPE at position pos (HF rotate-half layout). */
void rkv_wl_rope(float *x, int d, int64_t pos, const float *tab);

/* The fitted generator (generator "fitted"), same contracts as rkv_workload_kv / _query. */
int rkv_fitted_kv(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t n, float *K, float *V,
                  kv_err *err);
void rkv_fitted_query(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t pos, int decode,
                      float *q);

#endif
