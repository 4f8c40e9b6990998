/* kv_boot.h — a seeded, deterministic percentile bootstrap for the mean of
 * per-item values grouped into texts (two stages: draw the groups with
 * replacement, then within each drawn group draw its items with
 * replacement; Efron & Tibshirani, An Introduction to the Bootstrap, 1993,
 * §13.3 percentile interval; the two-stage scheme for clustered data as in
 * Davison & Hinkley, Bootstrap Methods and their Application, 1997, §3.8).
 *
 * The statistic is the pooled mean of x − y over the drawn items (y NULL:
 * of x), so a perplexity ratio is exp() of the interval of the mean
 * log-likelihood difference, paired item by item. The generator is
 * splitmix64 (Steele, Lea & Flood, OOPSLA 2014), the quantile NumPy's
 * default (linear between order statistics, "type 7" of Hyndman & Fan
 * 1996), so the same input and seed give the same interval everywhere. */
#ifndef KV_BOOT_H
#define KV_BOOT_H

#include <stdint.h>

#define KV_BOOT_RESAMPLES 2000     /* default resamples */
#define KV_BOOT_LEVEL 0.95         /* default two-sided level */
#define KV_BOOT_SEED 0x6b76736d626f6f74ULL /* default seed ("kvsmboot") */

typedef struct {
    int resamples;  /* B, >= 10 */
    double level;   /* two-sided coverage, (0, 1) */
    uint64_t seed;
} kv_boot_cfg;

/* x, y: (n) values (y may be NULL); goff: (ng + 1) group starts, goff[0] = 0,
 * goff[ng] = n, each group non-empty. Writes the interval of mean(x − y)
 * into *lo, *hi; returns -1 (and NaNs) on bad arguments or no memory. */
int kv_boot_mean(const double *x, const double *y, const int64_t *goff, int ng, const kv_boot_cfg *cfg, double *lo,
                 double *hi);
/* splitmix64: the next value of the stream *state. */
uint64_t kv_boot_next(uint64_t *state);

#endif
