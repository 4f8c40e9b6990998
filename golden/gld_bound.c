/* gld_bound.c — per-element error bounds of the golden tensors, in double.
 *
 * The rule, for every element: bound = GLD_KAPPA · u · M with u = 2^-24 and
 * M the element's magnitude, the quantity a float32 rounding error is
 * proportional to:
 *   a sum or dot product        M = Σ |terms|   (cancellation does not shrink it)
 *   a logit l = q·k/√d          A = Σ_j |q_j·k_j| / √d
 *   a softmax p_t over logits   |δp_t| <= p_t·(δl_t + Σ_s p_s·δl_s)  (first order)
 *   a probability-weighted sum  M_i = Σ_t p_t·|v_ti|·(2 + A_t + Ā),  Ā = Σ_s p_s·A_s
 * (the 2 covers the rounding of the exponential, of the normaliser and of
 * the accumulation). The reference's own result lies within the bound of an
 * exact computation, and so does any other implementation that rounds no
 * worse than float32 — an independent float64 implementation differs from
 * the reference by at most the bound. */
#include "gld_internal.h"
#include "kcu.h"

#include <math.h>
#include <stdlib.h>

/* p (n) = softmax of logits l (n) in double; returns nothing, p sums to 1. */
static void softmax_d(const double *l, int64_t n, double *p)
{
    double m = -INFINITY, z = 0;
    for (int64_t t = 0; t < n; t++)
        m = l[t] > m ? l[t] : m;
    for (int64_t t = 0; t < n; t++)
        z += p[t] = exp(l[t] - m);
    for (int64_t t = 0; t < n; t++)
        p[t] /= z;
}

/* Logit and its magnitude of query q against row k: l = q·k/√d, A = Σ|q_j k_j|/√d. */
static void logit(const float *q, const float *k, int d, double *l, double *A)
{
    double s = 0, a = 0;
    for (int j = 0; j < d; j++) {
        double x = (double)q[j] * (double)k[j];
        s += x;
        a += fabs(x);
    }
    *l = s / sqrt((double)d);
    *A = a / sqrt((double)d);
}

void gld_bound_attend(const float *K, const float *V, const int32_t *idx, int64_t n, int d, const float *q,
                      double *bound)
{
    for (int i = 0; i < d; i++)
        bound[i] = 0;
    double *l = n > 0 ? calloc((size_t)(3 * n), sizeof(double)) : NULL;
    if (!l)
        return;
    double *A = l + n, *p = A + n;
    for (int64_t t = 0; t < n; t++)
        logit(q, K + (size_t)idx[t] * (size_t)d, d, &l[t], &A[t]);
    softmax_d(l, n, p);
    double Abar = 0;
    for (int64_t t = 0; t < n; t++)
        Abar += p[t] * A[t];
    for (int64_t t = 0; t < n; t++) {
        const float *v = V + (size_t)idx[t] * (size_t)d;
        const double f = p[t] * (2.0 + A[t] + Abar);
        for (int i = 0; i < d; i++)
            bound[i] += f * fabs((double)v[i]);
    }
    for (int i = 0; i < d; i++)
        bound[i] *= GLD_KAPPA * GLD_U32;
    free(l);
}

/* Votes: window query i of head h sees columns 0 .. np + i (np = S − w
 * prefix columns); its probability of prefix column t is perturbed by
 * p_t·(δl_t + Σ_s p_s δl_s); a vote sums those over window queries (and
 * heads when grouped), plus the rounding of each addend. */
int gld_bound_votes(const float *K, int64_t S, int d, int G, const float *Qw, int64_t w, int group, double *bound)
{
    const int64_t np = S - w;
    double *l = calloc((size_t)(3 * S + 1), sizeof(double));
    if (!l)
        return -1;
    double *A = l + S, *p = A + S;
    const int rows = group ? 1 : G;
    for (int64_t t = 0; t < (int64_t)rows * np; t++)
        bound[t] = 0;
    for (int h = 0; h < G; h++) {
        double *b = bound + (size_t)(group ? 0 : h) * (size_t)np;
        for (int64_t i = 0; i < w; i++) {
            const float *q = Qw + ((size_t)h * (size_t)w + (size_t)i) * (size_t)d;
            const int64_t vis = np + i + 1;
            for (int64_t t = 0; t < vis; t++)
                logit(q, K + (size_t)t * (size_t)d, d, &l[t], &A[t]);
            softmax_d(l, vis, p);
            double Abar = 0;
            for (int64_t t = 0; t < vis; t++)
                Abar += p[t] * A[t];
            for (int64_t t = 0; t < np; t++)
                b[t] += p[t] * (2.0 + A[t] + Abar);
        }
    }
    for (int64_t t = 0; t < (int64_t)rows * np; t++)
        bound[t] *= GLD_KAPPA * GLD_U32;
    free(l);
    return 0;
}

/* Max pooling moves by at most the largest input error in its window, and
 * so does average pooling (a mean of errors); the pooled value's own
 * rounding adds κ·u·|pooled|. Windows as rkv_pool1d: [j − k/2, j + k − 1 − k/2]. */
void gld_bound_pool(const double *b, const double *pooled, int64_t n, int64_t kernel, double *out)
{
    const int64_t lo = kernel > 1 ? kernel / 2 : 0, hi = kernel > 1 ? kernel - 1 - kernel / 2 : 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t a = j - lo < 0 ? 0 : j - lo, e = j + hi >= n ? n - 1 : j + hi;
        double m = 0;
        for (int64_t i = a; i <= e; i++)
            m = b[i] > m ? b[i] : m;
        out[j] = m + GLD_KAPPA * GLD_U32 * fabs(pooled[j]);
    }
}

/* s_h(j) = Σ_{i∈I} q_h[i]·K̂_j[i] with K̂ the page max where Σ_h q_h[i] > 0,
 * else the page min; z = s/τ_h. M = Σ_{i∈I} |q_h[i]·K̂_j[i]| / τ_h + |z|
 * (the second term: τ's own rounding and the division). */
void gld_bound_page_scores(const float *q, int G, int d, const int32_t *dims, int r, const float *pmin,
                           const float *pmax, int64_t np, const double *gsum, const double *tau, const double *z,
                           double *bound)
{
    for (int h = 0; h < G; h++)
        for (int64_t j = 0; j < np; j++) {
            double M = 0;
            for (int t = 0; t < r; t++) {
                const int i = dims[t];
                const float kh = gsum[i] > 0.0 ? pmax[(size_t)j * (size_t)d + (size_t)i]
                                                : pmin[(size_t)j * (size_t)d + (size_t)i];
                M += fabs((double)q[(size_t)h * (size_t)d + (size_t)i] * (double)kh);
            }
            const size_t e = (size_t)h * (size_t)np + (size_t)j;
            bound[e] = GLD_KAPPA * GLD_U32 * (M / tau[h] + fabs(z[e]));
        }
}

/* avg_j = (1/G) Σ_h P_hj, P_hj = e^{z_hj} / Σ_k cnt_k e^{z_hk}: to first
 * order |δP_hj| <= P_hj·(zb_hj + Σ_k cnt_k P_hk zb_hk), plus κ·u·avg_j for
 * the exponentials, the normaliser and the mean. */
void gld_bound_average(const double *z, const double *zb, int G, int64_t np, int64_t C, int64_t pg,
                       const double *avg, double *bound)
{
    for (int64_t j = 0; j < np; j++)
        bound[j] = 0;
    for (int h = 0; h < G; h++) {
        const double *s = z + (size_t)h * (size_t)np, *sb = zb + (size_t)h * (size_t)np;
        double m = -INFINITY, Z = 0, mix = 0;
        for (int64_t j = 0; j < np; j++)
            m = s[j] > m ? s[j] : m;
        for (int64_t j = 0; j < np; j++)
            Z += (double)kcu_page_count(j, C, pg) * exp(s[j] - m);
        for (int64_t j = 0; j < np; j++)
            mix += (double)kcu_page_count(j, C, pg) * exp(s[j] - m) / Z * sb[j];
        for (int64_t j = 0; j < np; j++)
            bound[j] += exp(s[j] - m) / Z * (sb[j] + mix);
    }
    for (int64_t j = 0; j < np; j++)
        bound[j] = bound[j] / (double)G + GLD_KAPPA * GLD_U32 * avg[j];
}
