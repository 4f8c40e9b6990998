/* gld_internal.h — what gld_write.c, gld_bound.c and gld_compare.c share. */
#ifndef GLD_INTERNAL_H
#define GLD_INTERNAL_H

#include "gld.h"
#include "gld_npy.h"

/* ---- error bounds (gld_bound.c): each writes GLD_KAPPA·u·M per element. */

/* Attention of one query q (d) over rows idx[0..n) of K, V ((·, d) f32).
 * bound: (d). */
void gld_bound_attend(const float *K, const float *V, const int32_t *idx, int64_t n, int d, const float *q,
                      double *bound);
/* Stage-1 votes of positions 0 .. S-w-1: window queries Qw (G, w, d) at
 * positions S-w .. S-1 over keys K (S, d), causal inside the window; rows:
 * 1 (group: summed over the G heads) or G. bound: (rows, S - w). */
int gld_bound_votes(const float *K, int64_t S, int d, int G, const float *Qw, int64_t w, int group, double *bound);
/* Pooled votes (n) from vote bounds b (n): the largest bound in the pooling
 * window, plus the rounding of pooled itself. */
void gld_bound_pool(const double *b, const double *pooled, int64_t n, int64_t kernel, double *out);
/* HSA page scores z (G, np): q (G, d), dims (r), page min/max (np, d),
 * gsum (d), tau (G). bound: (G, np). */
void gld_bound_page_scores(const float *q, int G, int d, const int32_t *dims, int r, const float *pmin,
                           const float *pmax, int64_t np, const double *gsum, const double *tau, const double *z,
                           double *bound);
/* Group-mean page probability avg (np) from z (G, np) and its bound zb,
 * pages of kcu_page_count(j, C, pg) tokens. bound: (np). */
void gld_bound_average(const double *z, const double *zb, int G, int64_t np, int64_t C, int64_t pg,
                       const double *avg, double *bound);

#endif
