/* wl_group.c — how much the query heads of a GQA group agree beyond their
 * means, measured the same way on a real dump and on the generator, and the
 * generator's group_share / group_tail fitted to it (rec_kernel heads).
 *
 * Per (layer, KV head) and decode step p = C .. C+steps−1: each query head g's
 * residual r_g = q_g(p) − R_p·μ_g, μ_g its mean over the window and decode
 * queries with RoPE's rotation taken out of every pair (as wl_heads_measure
 * takes it) and R_p turning it back to p, scores the prompt's keys t =
 * WL_SINK .. C−1: x_g(t) = r_g·k_t/√d. The step's value is the Pearson
 * correlation of x_g and x_h over t, averaged over the G(G−1)/2 pairs of
 * heads. The statistic is the mean and the standard deviation of that value
 * over every step and (layer, KV head) measured.
 *
 * Why: RocketKV's stage 2 and SnapKV-GQA pick one set for the whole group, so
 * a head's top-k recall is how far its own top-k agrees with the group's. On
 * SmolLM2 the measured means alone give the group's agreement about right
 * (their logits correlate 0.77–0.82 between heads, the generator's 0.77), but
 * the residuals' logits correlate 0.33–0.36 between heads, spread over steps
 * with s.d. 0.23–0.26 and larger where the residual is large, against 0.01 for
 * independent draws: RocketKV's top-k recall at t = 128 came out 0.06 low
 * (reports/workload-fit/, "Session 12"). */
#include "wl.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int wl_group_keys_load(wl_group_keys *gk, const rkv_workload *wl, const mdl_model *m, int64_t C, int layer_step,
                       kv_err *err)
{
    const int d = m->head_dim, L = m->num_hidden_layers, Hkv = m->num_key_value_heads;
    memset(gk, 0, sizeof *gk);
    if (mdl_group_size(m) < 2)
        return kv_errf(err, "workload fit: the group statistic needs GQA groups of 2 or more query heads, got %d",
                       mdl_group_size(m));
    if (C <= WL_SINK + 2 || d < 2 || d > 512 || d % 2 != 0 || layer_step < 1)
        return kv_errf(err, "workload fit: the group statistic needs a context over %d and an even head_dim <= 512",
                       WL_SINK + 2);
    gk->nl = (L + layer_step - 1) / layer_step;
    gk->layer_step = layer_step;
    gk->Hkv = Hkv;
    gk->d = d;
    gk->C = C;
    gk->K = malloc((size_t)gk->nl * (size_t)Hkv * (size_t)C * (size_t)d * sizeof *gk->K);
    float *V = malloc((size_t)C * (size_t)d * sizeof *V);
    int rc = gk->K && V ? 0 : kv_errf(err, "workload fit: out of memory");
    for (int li = 0; rc == 0 && li < gk->nl; li++)
        for (int h = 0; rc == 0 && h < Hkv; h++)
            rc = rkv_workload_kv(wl, m, li * layer_step, h, C,
                                 gk->K + ((size_t)li * (size_t)Hkv + (size_t)h) * (size_t)C * (size_t)d, V, err);
    free(V);
    if (rc != 0) wl_group_keys_free(gk);
    return rc;
}

void wl_group_keys_free(wl_group_keys *gk)
{
    free(gk->K);
    gk->K = NULL;
}

/* Pearson correlation of rows a and b (n each). */
static double pearson(const float *a, const float *b, int64_t n)
{
    double ma = 0, mb = 0;
    for (int64_t t = 0; t < n; t++) {
        ma += a[t];
        mb += b[t];
    }
    ma /= (double)n;
    mb /= (double)n;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t t = 0; t < n; t++) {
        const double x = a[t] - ma, y = b[t] - mb;
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

/* The queries of (layer, KV head) at positions C − window .. C+steps−1 into Q
 * (nq, G, d), and into R (steps·G, d) the decode queries' residuals. */
static void residuals(const rkv_workload *wl, const mdl_model *m, int layer, int kvh, int64_t C, int64_t window,
                      int64_t steps, const double *om, float *Q, float *R)
{
    const int d = m->head_dim, h2 = d / 2, G = mdl_group_size(m);
    const int64_t nq = window + steps;
    rkv_fitted_qcache *qc = NULL; /* the fitted generator's draws made once for the nq positions: the same queries */
    kv_err e;
    if (!strcmp(wl->generator, "fitted") && rkv_fitted_qcache_new(wl, m, layer, kvh, C - window, nq, C, &qc, &e) != 0)
        qc = NULL;
    for (int64_t s = 0; s < nq; s++) {
        const int64_t p = C - window + s;
        if (qc) rkv_fitted_qcache_query(qc, wl, s, Q + (size_t)s * (size_t)G * (size_t)d);
        else rkv_workload_query(wl, m, layer, kvh, p, 0, p >= C, Q + (size_t)s * (size_t)G * (size_t)d);
    }
    rkv_fitted_qcache_free(qc);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < h2; i++) {
            double mre = 0, mim = 0; /* the mean of z·e^(−jωp) */
            for (int64_t s = 0; s < nq; s++) {
                const float *x = Q + ((size_t)s * (size_t)G + (size_t)g) * (size_t)d;
                const double a = -om[i] * (double)(C - window + s), c = cos(a), sn = sin(a);
                mre += (x[i] * c - x[i + h2] * sn) / (double)nq;
                mim += (x[i] * sn + x[i + h2] * c) / (double)nq;
            }
            for (int64_t st = 0; st < steps; st++) {
                const int64_t s = window + st;
                const float *x = Q + ((size_t)s * (size_t)G + (size_t)g) * (size_t)d;
                float *r = R + ((size_t)st * (size_t)G + (size_t)g) * (size_t)d;
                const double a = om[i] * (double)(C + st), c = cos(a), sn = sin(a);
                r[i] = (float)(x[i] - (mre * c - mim * sn));
                r[i + h2] = (float)(x[i + h2] - (mre * sn + mim * c));
            }
        }
}

int wl_group_measure(const rkv_workload *wl, const mdl_model *m, const wl_group_keys *gk, int64_t window,
                     int64_t steps, double out[2], kv_err *err)
{
    const int d = gk->d, h2 = d / 2, G = mdl_group_size(m), Hkv = gk->Hkv;
    const int64_t C = gk->C, nk = C - WL_SINK, nq = window + steps;
    if (steps < 1 || window < 0 || window > C)
        return kv_errf(err, "workload fit: the group statistic needs a decode step and a window <= context");
    const double theta = wl->rope_theta > 0 ? wl->rope_theta : m->rope_theta; /* wl_heads_measure's rule */
    float *Q = malloc((size_t)nq * (size_t)G * (size_t)d * sizeof *Q);
    float *R = malloc((size_t)steps * (size_t)G * (size_t)d * sizeof *R);
    float *X = malloc((size_t)steps * (size_t)G * (size_t)nk * sizeof *X);
    double *om = malloc((size_t)h2 * sizeof *om);
    if (!Q || !R || !X || !om) {
        free(Q);
        free(R);
        free(X);
        free(om);
        return kv_errf(err, "workload fit: out of memory");
    }
    for (int i = 0; i < h2; i++) om[i] = pow(theta, -2.0 * i / d);
    double s1 = 0, s2 = 0;
    int64_t cnt = 0;
    for (int li = 0; li < gk->nl; li++)
        for (int h = 0; h < Hkv; h++) {
            residuals(wl, m, li * gk->layer_step, h, C, window, steps, om, Q, R);
            const float *K = gk->K + ((size_t)li * (size_t)Hkv + (size_t)h) * (size_t)C * (size_t)d;
            gsl_matrix_float_const_view Rv = gsl_matrix_float_const_view_array(R, (size_t)(steps * G), (size_t)d);
            gsl_matrix_float_const_view Kv = gsl_matrix_float_const_view_array(K + (size_t)WL_SINK * (size_t)d, (size_t)nk, (size_t)d);
            gsl_matrix_float_view Xv = gsl_matrix_float_view_array(X, (size_t)(steps * G), (size_t)nk);
            gsl_blas_sgemm(CblasNoTrans, CblasTrans, 1.0f / sqrtf((float)d), &Rv.matrix, &Kv.matrix, 0.0f, &Xv.matrix);
            for (int64_t st = 0; st < steps; st++) {
                double c = 0;
                for (int a = 0; a < G; a++)
                    for (int b = a + 1; b < G; b++)
                        c += pearson(X + ((size_t)st * (size_t)G + (size_t)a) * (size_t)nk,
                                     X + ((size_t)st * (size_t)G + (size_t)b) * (size_t)nk, nk);
                c /= (double)(G * (G - 1) / 2);
                s1 += c;
                s2 += c * c;
                cnt++;
            }
        }
    out[0] = s1 / (double)cnt;
    out[1] = sqrt(fmax(s2 / (double)cnt - out[0] * out[0], 0.0));
    free(Q);
    free(R);
    free(X);
    free(om);
    return 0;
}

/* wl_group_fit's search: a grid of group_share 0 .. 1 by 0.1 and group_tail 0 .. 1.2 by 0.2 (no
 * tail without a share), then the share ± 0.05 and the tail ± 0.1 about the best point; the points of a round are
 * measured on `threads` threads and compared in grid order, so the result does not depend on them. */
#define GS_N 11
#define GT_N 7
#define GRID_MAX (GS_N * GT_N)

typedef struct {
    const rkv_workload *wl;
    const mdl_model *m;
    const wl_fit_cfg *cfg;
    const wl_group_keys *gk;
    int n, next, failed;
    double share[GRID_MAX], tail[GRID_MAX], v[GRID_MAX][2];
    kv_err err;
    pthread_mutex_t mu;
} group_pool;

static void *group_worker(void *arg)
{
    group_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        const int i = p->failed ? p->n : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n) return NULL;
        rkv_workload w = *p->wl;
        w.group_share = p->share[i];
        w.group_tail = p->tail[i];
        kv_err e;
        if (wl_group_measure(&w, p->m, p->gk, p->cfg->window, p->cfg->steps, p->v[i], &e) != 0) {
            pthread_mutex_lock(&p->mu);
            if (!p->failed) p->err = e;
            p->failed = 1;
            pthread_mutex_unlock(&p->mu);
        }
    }
}

void openblas_set_num_threads(int n); /* OpenBLAS's, as refimpl/run.c declares it */

/* Squared error of a point's (mean, s.d.) against the dumps'. */
static double group_err(const wl_fit_cfg *cfg, const double v[2])
{
    return pow(v[0] - cfg->group_real[0], 2) + pow(v[1] - cfg->group_real[1], 2);
}

/* Measures the pool's n points; the index of the one nearest cfg->group_real (the first of equals), or -1. */
static int group_round(group_pool *p, kv_err *err)
{
    openblas_set_num_threads(1); /* the workers own the CPUs */
    p->next = 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_t th[16];
    const int nt = p->cfg->threads < 1 ? 1 : p->cfg->threads > 16 ? 16 : p->cfg->threads;
    int started = 0;
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[started], NULL, group_worker, p) == 0) started++;
    if (!started) group_worker(p);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    if (p->failed) {
        *err = p->err;
        return -1;
    }
    int best = 0;
    double be = INFINITY;
    for (int i = 0; i < p->n; i++) {
        const double e = group_err(p->cfg, p->v[i]);
        if (e < be) {
            be = e;
            best = i;
        }
    }
    return best;
}

int wl_group_fit(rkv_workload *wl, const mdl_model *m, const wl_fit_cfg *cfg, double got[2], kv_err *err)
{
    wl_group_keys gk;
    if (wl_group_keys_load(&gk, wl, m, cfg->context, WL_GROUP_LAYER_STEP, err) != 0) return -1;
    group_pool *p = calloc(1, sizeof *p);
    int rc = -1;
    if (!p) {
        kv_errf(err, "workload fit: out of memory");
        goto out;
    }
    *p = (group_pool){.wl = wl, .m = m, .cfg = cfg, .gk = &gk};
    for (int i = 0; i < GS_N; i++)
        for (int j = 0; j < (i ? GT_N : 1); j++) {
            p->share[p->n] = 0.1 * i;
            p->tail[p->n++] = 0.2 * j;
        }
    int b = group_round(p, err);
    if (b < 0) goto out;
    double bs = p->share[b], bt = p->tail[b], bv[2] = {p->v[b][0], p->v[b][1]};
    const double be = group_err(cfg, bv);
    p->n = 0; /* refine: the share ± 0.05 and the tail ± 0.1 about the best point */
    for (int k = -1; bs > 0 && k <= 1; k++)
        for (int l = -1; l <= 1; l++) {
            const double sh = bs + 0.05 * k, tl = bt + 0.1 * l;
            if ((k == 0 && l == 0) || sh <= 0 || sh > 1 || tl < 0) continue;
            p->share[p->n] = sh;
            p->tail[p->n++] = tl;
        }
    if (p->n > 0) {
        const int r = group_round(p, err);
        if (r < 0) goto out;
        if (group_err(cfg, p->v[r]) < be) {
            bs = p->share[r];
            bt = p->tail[r];
            bv[0] = p->v[r][0];
            bv[1] = p->v[r][1];
        }
    }
    wl->group_share = bs;
    wl->group_tail = bs > 0 ? bt : 0.0;
    got[0] = bv[0];
    got[1] = bv[1];
    rc = 0;
out:
    free(p);
    wl_group_keys_free(&gk);
    return rc;
}
