/* bench_workload.c — `kvsim workload` speed at the size the goals name: a
 * 4K-token input of SmolLM2-135M's shape (30 layers, 9 query / 3 KV heads,
 * d = 64; 4096 context + 32 decode steps), 2 threads.
 *  - profile: one pass over every (layer, KV head); its ceiling is the pass
 *    alone (reading every key and query once), so the ratio says what the
 *    statistics cost on top of reading the input;
 *  - fit: profile + k-means + the per-class search, goal < 60 s.
 * The input is the hand-tuned generator (no model file needed): the work per
 * head is the same as for a KV dump of that shape. Medians of 3 runs. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wl.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    mdl_model m;
    kv_err err;
    if (mdl_model_load("smollm2-135m", &m, &err) != 0) {
        fprintf(stderr, "bench_workload: %s\n", err.msg);
        return 1;
    }
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    const int64_t C = 4096, w = 32, steps = 32, n = C + steps;
    double tread[3], tprof[3], tfit[3];
    for (int rep = 0; rep < 3; rep++) {
        /* the pass alone: every key and query generated once */
        double t0 = kv_now_s();
        float *K = malloc((size_t)n * 64 * sizeof *K), *V = malloc((size_t)n * 64 * sizeof *V), q[3 * 64];
        for (int l = 0; l < m.num_hidden_layers; l++)
            for (int h = 0; h < m.num_key_value_heads; h++) {
                if (rkv_workload_kv(&wl, &m, l, h, n, K, V, &err) != 0) return 1;
                for (int64_t p = C - w; p < n; p++) rkv_workload_query(&wl, &m, l, h, p, 0, p >= C, q);
            }
        free(K);
        free(V);
        tread[rep] = (kv_now_s() - t0) / 2.0; /* two threads share it in the profile */
        wl_profile prof;
        t0 = kv_now_s();
        if (wl_profile_run(&wl, &m, C, w, steps, NULL, 0, 2, &prof, &err) != 0) return 1;
        tprof[rep] = kv_now_s() - t0;
        wl_fit_cfg cfg = {.classes = 6, .context = C, .window = w, .steps = steps, .threads = 2, .seed = 1};
        rkv_workload fitted;
        t0 = kv_now_s();
        if (wl_fit(&prof, 1, &m, &cfg, &fitted, NULL, &err) != 0) return 1;
        tfit[rep] = kv_now_s() - t0 + tprof[rep];
        wl_profile_free(&prof);
    }
    qsort(tread, 3, sizeof(double), cmp_d);
    qsort(tprof, 3, sizeof(double), cmp_d);
    qsort(tfit, 3, sizeof(double), cmp_d);
    printf("workload profile, SmolLM2 shape, 4096 + 32 tokens, 2 threads: %.2f s; the pass alone: %.2f s; ratio %.2f\n",
           tprof[1], tread[1], tread[1] / tprof[1]);
    printf("workload fit (profile + 6 classes), same input, 2 threads: %.2f s; goal 60 s; ratio %.2f\n", tfit[1],
           tfit[1] / 60.0);
    return 0;
}
