/* wlfit_util.h — what the fitted-generator test files share: a tiny model
 * shape (2 layers, 2 query heads on 1 KV head, d = 32, base 10000), a
 * fitted workload of one class with every optional feature off, and the
 * scaled logits of layer 1's two query heads. */
#ifndef KVSIM_TESTS_WLFIT_UTIL_H
#define KVSIM_TESTS_WLFIT_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"

static inline mdl_model shape(void)
{
    mdl_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "t");
    m.num_hidden_layers = 2;
    m.num_attention_heads = 2;
    m.num_key_value_heads = 1;
    m.head_dim = 32;
    m.rope_theta = 10000.0;
    return m;
}

static inline rkv_workload one_class(rkv_head_class c)
{
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    snprintf(wl.generator, sizeof wl.generator, "fitted");
    wl.sink_tokens = 1;
    wl.outlier_scale = 0.0;
    wl.hh_fraction = 0.05;
    wl.hh_sigma = 0.5;
    wl.rec_span[0] = 4;
    wl.rec_span[1] = 48;
    wl.rec_span[2] = 512;
    wl.key_rank = 8;
    wl.nclasses = 1;
    wl.cls[0] = c;
    wl.map_layers = wl.map_heads = 1;
    return wl;
}

/* The scaled logits q·k/√d of layer 1, KV head 0's two query heads at position p over keys
 * 0 .. n-1 (out[g·n + t]), from the workload's own keys and query. */
static inline void head_logits(const rkv_workload *wl, const mdl_model *m, int64_t n, int64_t p, double *out)
{
    const int d = m->head_dim;
    float *K = malloc((size_t)n * d * sizeof *K), *V = malloc((size_t)n * d * sizeof *V), *q = malloc(2 * (size_t)d * sizeof *q);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(wl, m, 1, 0, n, K, V, &err), 0, "%s", err.msg);
    rkv_workload_query(wl, m, 1, 0, p, 0, 1, q);
    for (int g = 0; g < 2; g++)
        for (int64_t t = 0; t < n; t++) {
            double sc = 0;
            for (int i = 0; i < d; i++) sc += (double)q[g * d + i] * K[t * d + i];
            out[g * n + t] = sc / sqrt((double)d);
        }
    free(K);
    free(V);
    free(q);
}

#endif
