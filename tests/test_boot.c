/* test_boot.c — the grouped percentile bootstrap (common/kv_boot.h)
 * against closed forms: the normal-theory interval of a mean (x̄ ± z s/√n),
 * the exact Clopper–Pearson interval of a binomial rate (GSL's beta
 * quantiles), a paired difference that is constant; and its determinism. */
#include <criterion/criterion.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>

#include "kv_boot.h"

/* Standard normal draws from the test's own generator (a 64-bit LCG,
 * Knuth MMIX constants, and Box–Muller), independent of kv_boot's stream. */
static double normal(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u1 = ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u2 = ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

Test(boot, mean_of_normal_data_matches_normal_theory)
{
    enum { n = 4000 };
    static double x[n];
    uint64_t s = 12345;
    double m = 0.0, v = 0.0;
    for (int i = 0; i < n; i++) { x[i] = 3.0 + 2.0 * normal(&s); m += x[i]; }
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    const double se = sqrt(v / (n - 1) / n), z = gsl_cdf_ugaussian_Pinv(0.975), half = z * se;
    const int64_t goff[2] = {0, n};
    const kv_boot_cfg c = {.resamples = 4000, .level = 0.95, .seed = 7};
    double lo, hi;
    cr_assert_eq(kv_boot_mean(x, NULL, goff, 1, &c, &lo, &hi), 0);
    cr_log_info("bootstrap [%.4f, %.4f], normal theory [%.4f, %.4f]", lo, hi, m - half, m + half);
    /* Monte-Carlo error of a 2.5 % quantile of 4000 resamples is ~4 % of
     * the half-width; 10 % is the tolerance */
    cr_assert(fabs(lo - (m - half)) <= 0.10 * half, "lo %.5f vs %.5f", lo, m - half);
    cr_assert(fabs(hi - (m + half)) <= 0.10 * half, "hi %.5f vs %.5f", hi, m + half);
}

Test(boot, rate_matches_clopper_pearson)
{
    /* k = 150 successes of n = 500: Clopper–Pearson 95 % is
     * [B⁻¹(0.025; k, n−k+1), B⁻¹(0.975; k+1, n−k)] */
    enum { n = 500, k = 150 };
    static double x[n];
    for (int i = 0; i < n; i++) x[i] = (i * 7) % n < k; /* k ones, spread out */
    const double cl = gsl_cdf_beta_Pinv(0.025, k, n - k + 1), ch = gsl_cdf_beta_Pinv(0.975, k + 1, n - k);
    const int64_t goff[2] = {0, n};
    const kv_boot_cfg c = {.resamples = 4000, .level = 0.95, .seed = 99};
    double lo, hi;
    cr_assert_eq(kv_boot_mean(x, NULL, goff, 1, &c, &lo, &hi), 0);
    cr_log_info("bootstrap [%.4f, %.4f], Clopper-Pearson [%.4f, %.4f]", lo, hi, cl, ch);
    /* the exact interval is a little wider than the percentile one (it is
     * conservative); within 0.01 of a rate at n = 500 */
    cr_assert(fabs(lo - cl) <= 0.01 && fabs(hi - ch) <= 0.01, "[%.4f, %.4f] vs [%.4f, %.4f]", lo, hi, cl, ch);
}

Test(boot, paired_constant_difference_and_groups)
{
    /* x − y = 0.25 for every item: every resample's mean is 0.25 */
    double x[60], y[60];
    for (int i = 0; i < 60; i++) { x[i] = sin(i) + 0.25; y[i] = sin(i); }
    const int64_t goff[4] = {0, 10, 35, 60};
    const kv_boot_cfg c = {.resamples = 200, .level = 0.9, .seed = 1};
    double lo, hi, lo2, hi2;
    cr_assert_eq(kv_boot_mean(x, y, goff, 3, &c, &lo, &hi), 0);
    cr_assert_float_eq(lo, 0.25, 1e-12);
    cr_assert_float_eq(hi, 0.25, 1e-12);
    /* groups that differ: drawing whole groups widens the interval past
     * the spread of items within one group, and the same seed repeats */
    double g[60];
    for (int i = 0; i < 60; i++) g[i] = i < 10 ? 0.0 : i < 35 ? 1.0 : 2.0;
    cr_assert_eq(kv_boot_mean(g, NULL, goff, 3, &c, &lo, &hi), 0);
    cr_assert(lo < 1.0 && hi > 1.5, "[%f, %f]", lo, hi);
    cr_assert_eq(kv_boot_mean(g, NULL, goff, 3, &c, &lo2, &hi2), 0);
    cr_assert(lo == lo2 && hi == hi2);
    /* bad arguments */
    const int64_t bad[3] = {0, 10, 10};
    cr_assert_eq(kv_boot_mean(g, NULL, bad, 2, &c, &lo, &hi), -1);
    cr_assert(isnan(lo));
}
