/* wl_pairs.c — the measurement behind rec_kernel pairs: per (layer, query
 * head) of a real model, the mean key and the mean decode query on every RoPE
 * pair with RoPE's rotation taken out, and the product that is the recency the
 * pair adds.
 *
 * A pair i of dims (i, i + d/2) is the complex number z = x_i + j·x_(i+d/2);
 * RoPE multiplies it by e^(j·θ_i·t), θ_i = base^(−2i/d) (Hugging Face's
 * rotate-half order, the dumps' and the generator's). With
 *   μ_k = mean over keys t = 1 .. C−1 of z_k(t)·e^(−j·θ_i·t)   (the sink, t = 0, left out)
 *   μ_q = mean over decode queries p = C .. C+steps−1 of z_q(p)·e^(−j·θ_i·p)
 * a key at distance Δ = p − t adds on average Re(a·e^(j·θ_i·Δ)) to q·k/√d,
 * a = μ_q·conj(μ_k)/√d, when the rest of q and k does not correlate with
 * them. On SmolLM2 that predicts the measured per-pair distance profile within
 * 0.06 logit on average (scripts/workload_pair_anatomy.py,
 * reports/workload-fit/pair-anatomy.txt). The sink and heavy-hitter pairs
 * (d/2 − 2, d/2 − 1) are not measured: the generator keeps its own features
 * there. */
#include "wl.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

int wl_pairs_measure(const rkv_workload *src, const mdl_model *m, int64_t C, int64_t steps, double *amp, double *kmag,
                     kv_err *err)
{
    const int d = m->head_dim, h2 = d / 2, np = h2 - 2, G = mdl_group_size(m), L = m->num_hidden_layers;
    const int Hq = m->num_attention_heads, Hkv = m->num_key_value_heads;
    if (np < 1 || np > RKV_MAX_PAIRS)
        return kv_errf(err, "workload fit: rec_kernel pairs needs head_dim 6 .. %d, got %d", 2 * RKV_MAX_PAIRS + 4, d);
    if (C < 2 || steps < 1)
        return kv_errf(err, "workload fit: rec_kernel pairs needs a context of 2 or more and a decode step");
    const double theta = src->rope_theta > 0 ? src->rope_theta : m->rope_theta; /* rkv_wl_theta's rule */
    float *K = malloc((size_t)C * (size_t)d * sizeof *K), *V = malloc((size_t)C * (size_t)d * sizeof *V);
    float *q = malloc((size_t)G * (size_t)d * sizeof *q);
    double complex *mq = malloc((size_t)G * (size_t)np * sizeof *mq), *mk = malloc((size_t)np * sizeof *mk);
    double *om = malloc((size_t)np * sizeof *om);
    int rc = 0;
    if (!K || !V || !q || !mq || !mk || !om) {
        rc = kv_errf(err, "workload fit: out of memory");
        goto out;
    }
    for (int i = 0; i < np; i++) om[i] = pow(theta, -2.0 * i / d);
    for (int l = 0; l < L && rc == 0; l++)
        for (int h = 0; h < Hkv && rc == 0; h++) {
            if ((rc = rkv_workload_kv(src, m, l, h, C, K, V, err)) != 0) break;
            for (int i = 0; i < np; i++) {
                double complex s = 0;
                for (int64_t t = 1; t < C; t++) {
                    const float *k = K + (size_t)t * (size_t)d;
                    s += (k[i] + I * k[i + h2]) * cexp(-I * om[i] * (double)t);
                }
                mk[i] = s / (double)(C - 1);
                kmag[i] += cabs(mk[i]) / (double)(L * Hkv);
            }
            for (int i = 0; i < G * np; i++) mq[i] = 0;
            for (int64_t p = C; p < C + steps; p++) {
                rkv_workload_query(src, m, l, h, p, 0, 1, q);
                for (int g = 0; g < G; g++)
                    for (int i = 0; i < np; i++) {
                        const float *x = q + (size_t)g * (size_t)d;
                        mq[g * np + i] += (x[i] + I * x[i + h2]) * cexp(-I * om[i] * (double)p) / (double)steps;
                    }
            }
            for (int g = 0; g < G; g++) {
                double *a = amp + ((size_t)l * (size_t)Hq + (size_t)(h * G + g)) * 2 * (size_t)np;
                for (int i = 0; i < np; i++) {
                    const double complex v = mq[g * np + i] * conj(mk[i]) / sqrt((double)d);
                    a[2 * i] += creal(v);
                    a[2 * i + 1] += cimag(v);
                }
            }
        }
out:
    free(K);
    free(V);
    free(q);
    free(mq);
    free(mk);
    free(om);
    return rc;
}

/* The mean of z[0], z[stride], … (n of them) and the covariance of its real and
 * imaginary parts, into row[i], row[h2 + i] (mean re, im) and row[2·h2 + i],
 * row[3·h2 + i], row[4·h2 + i] (var re, cov, var im), times w. */
static void mean_cov(const double complex *z, int64_t n, size_t stride, int h2, int i, double w, double *row)
{
    double complex mu = 0;
    for (int64_t t = 0; t < n; t++) mu += z[(size_t)t * stride];
    mu /= (double)n;
    double xx = 0, xy = 0, yy = 0;
    for (int64_t t = 0; t < n; t++) {
        const double x = creal(z[(size_t)t * stride] - mu), y = cimag(z[(size_t)t * stride] - mu);
        xx += x * x;
        xy += x * y;
        yy += y * y;
    }
    row[i] += w * creal(mu);
    row[h2 + i] += w * cimag(mu);
    row[2 * h2 + i] += w * xx / (double)n;
    row[3 * h2 + i] += w * xy / (double)n;
    row[4 * h2 + i] += w * yy / (double)n;
}

/* rec_kernel heads: per (layer, KV head) of src, with RoPE's rotation taken
 * out of every pair (all d/2 of them): the mean key over t = 1 .. C−1 and the
 * covariance of its residual's two components (the residual is not isotropic:
 * on SmolLM2's slow pairs the keys vary less along the mean query than across
 * it, so one s.d. per pair would overstate the logit noise, by a fifth on
 * GPL-3), and the sink key (position 0) as it is; per (layer, query head), the
 * mean query and its residual's covariance over the SnapKV window and the
 * decode queries, positions C − window .. C + steps − 1. Adds them times w to
 * the rows of acc (RKV_HV_KROW, RKV_HV_QROW; the key rows of every layer
 * first): a dump's share of a mean over dumps. */
int wl_heads_measure(const rkv_workload *src, const mdl_model *m, int64_t C, int64_t window, int64_t steps, double w,
                     double *acc, kv_err *err)
{
    const int d = m->head_dim, h2 = d / 2, G = mdl_group_size(m), L = m->num_hidden_layers;
    const int Hq = m->num_attention_heads, Hkv = m->num_key_value_heads;
    if (d < 4 || d > 512 || d % 2 != 0)
        return kv_errf(err, "workload fit: rec_kernel heads needs an even head_dim 4 .. 512, got %d", d);
    if (C < 2 || steps < 1 || window < 0 || window > C)
        return kv_errf(err, "workload fit: rec_kernel heads needs a context of 2 or more, a decode step and a window <= context");
    const double theta = src->rope_theta > 0 ? src->rope_theta : m->rope_theta;
    const int64_t nq = window + steps;
    float *K = malloc((size_t)C * (size_t)d * sizeof *K), *V = malloc((size_t)C * (size_t)d * sizeof *V);
    float *q = malloc((size_t)G * (size_t)d * sizeof *q);
    double complex *z = malloc((size_t)(C > G * nq ? C : G * nq) * (size_t)h2 * sizeof *z);
    double *om = malloc((size_t)h2 * sizeof *om);
    int rc = 0;
    if (!K || !V || !q || !z || !om) {
        rc = kv_errf(err, "workload fit: out of memory");
        goto out;
    }
    for (int i = 0; i < h2; i++) om[i] = pow(theta, -2.0 * i / d);
    double *qrows = acc + (size_t)L * (size_t)Hkv * (size_t)RKV_HV_KROW(d);
    for (int l = 0; l < L && rc == 0; l++)
        for (int h = 0; h < Hkv && rc == 0; h++) {
            if ((rc = rkv_workload_kv(src, m, l, h, C, K, V, err)) != 0) break;
            double *kr = acc + ((size_t)l * (size_t)Hkv + (size_t)h) * (size_t)RKV_HV_KROW(d);
            for (int64_t t = 1; t < C; t++)
                for (int i = 0; i < h2; i++) {
                    const float *k = K + (size_t)t * (size_t)d;
                    z[(size_t)t * (size_t)h2 + (size_t)i] = (k[i] + I * k[i + h2]) * cexp(-I * om[i] * (double)t);
                }
            for (int i = 0; i < h2; i++) mean_cov(z + (size_t)h2 + (size_t)i, C - 1, (size_t)h2, h2, i, w, kr);
            for (int i = 0; i < d; i++) kr[5 * h2 + i] += w * K[i];
            for (int64_t s = 0; s < nq; s++) {
                const int64_t p = C - window + s;
                rkv_workload_query(src, m, l, h, p, 0, p >= C, q);
                for (int g = 0; g < G; g++)
                    for (int i = 0; i < h2; i++) {
                        const float *x = q + (size_t)g * (size_t)d;
                        z[((size_t)g * (size_t)nq + (size_t)s) * (size_t)h2 + (size_t)i] =
                            (x[i] + I * x[i + h2]) * cexp(-I * om[i] * (double)p);
                    }
            }
            for (int g = 0; g < G; g++) {
                double *qr = qrows + ((size_t)l * (size_t)Hq + (size_t)(h * G + g)) * (size_t)RKV_HV_QROW(d);
                const double complex *zg = z + (size_t)g * (size_t)nq * (size_t)h2;
                for (int i = 0; i < h2; i++) mean_cov(zg + i, nq, (size_t)h2, h2, i, w, qr);
            }
        }
out:
    free(K);
    free(V);
    free(q);
    free(z);
    free(om);
    return rc;
}
