/* kv_boot.c — the grouped percentile bootstrap (kv_boot.h). */
#include "kv_boot.h"

#include <math.h>
#include <stdlib.h>

uint64_t kv_boot_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* An index in [0, n): the top 53 bits as a fraction of n (bias < 2^-40 for n < 2^13). */
static int64_t draw(uint64_t *st, int64_t n)
{
    const double u = (double)(kv_boot_next(st) >> 11) * 0x1.0p-53;
    const int64_t i = (int64_t)(u * (double)n);
    return i < n ? i : n - 1;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* NumPy's default quantile of sorted v (n): linear between order statistics. */
static double quantile(const double *v, int n, double q)
{
    const double h = q * (double)(n - 1);
    const int i = (int)floor(h);
    return i + 1 < n ? v[i] + (h - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

int kv_boot_mean(const double *x, const double *y, const int64_t *goff, int ng, const kv_boot_cfg *cfg, double *lo,
                 double *hi)
{
    *lo = *hi = NAN;
    if (!x || !goff || ng < 1 || !cfg || cfg->resamples < 10 || !(cfg->level > 0.0 && cfg->level < 1.0) || goff[0] != 0)
        return -1;
    for (int g = 0; g < ng; g++)
        if (goff[g + 1] <= goff[g]) return -1;
    double *stat = malloc((size_t)cfg->resamples * sizeof *stat);
    if (!stat) return -1;
    uint64_t st = cfg->seed;
    for (int b = 0; b < cfg->resamples; b++) {
        double sum = 0.0;
        int64_t cnt = 0;
        for (int k = 0; k < ng; k++) {
            /* stage 1: a group; stage 2: as many of its items as it has */
            const int g = (int)draw(&st, ng);
            const int64_t a = goff[g], n = goff[g + 1] - goff[g];
            for (int64_t j = 0; j < n; j++) {
                const int64_t i = a + draw(&st, n);
                sum += y ? x[i] - y[i] : x[i];
            }
            cnt += n;
        }
        stat[b] = sum / (double)cnt;
    }
    qsort(stat, (size_t)cfg->resamples, sizeof *stat, cmp_d);
    const double t = (1.0 - cfg->level) / 2.0;
    *lo = quantile(stat, cfg->resamples, t);
    *hi = quantile(stat, cfg->resamples, 1.0 - t);
    free(stat);
    return 0;
}
