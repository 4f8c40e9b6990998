/* bench_workload.c — `kvsim workload` speed at the size the goals name: a
 * 4K-token KV dump of SmolLM2-135M's shape (30 layers, 9 query / 3 KV heads,
 * d = 64; 4096 context + 32 decode steps, bf16 as `kvsim kvdump` writes it),
 * 2 threads.
 *
 * The dump is made here from the hand-tuned generator (no model file
 * needed: the work per head is the same as for a real dump of that shape),
 * written to a temporary file and read back through the checked reader,
 * as `kvsim workload fit DUMP` does. Then, each timed:
 *  - read: open the dump (map + checksum of every byte) and decode every
 *    key and query row the profile reads once — the floor any fit from
 *    this file pays, so it is the ceiling the fit is measured against;
 *  - profile: the single pass over every (layer, KV head); ceiling: read;
 *  - fit: open + profile + k-means + the per-class search (what
 *    `kvsim workload fit` does), goal < 60 s; ratios to the goal and to read.
 *    Its CPU time too (all threads): on a shared machine the wall time
 *    depends on the load, the CPU time much less; CPU / 2 is the wall time of
 *    the 2 threads on 2 idle cores.
 * Medians of 3 runs. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm_kvdump.h"
#include "wl.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The hand-tuned generator's K, V and Q of every (layer, head) as a bf16 dump at path. */
static int make_dump(const mdl_model *m, int64_t n, const char *path, kv_err *err)
{
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    llm_kvd_info in;
    memset(&in, 0, sizeof in);
    in.n_layer = m->num_hidden_layers;
    in.n_head = m->num_attention_heads;
    in.n_kv_head = m->num_key_value_heads;
    in.head_dim = m->head_dim;
    in.n_tokens = n;
    in.dtype = RKV_DTYPE_BF16;
    in.rope_theta = m->rope_theta;
    snprintf(in.model, sizeof in.model, "bench_workload (hand-tuned generator, SmolLM2-135M shape)");
    snprintf(in.source, sizeof in.source, "synthetic tokens 0..%lld", (long long)(n - 1));
    llm_kvd_file *f;
    if (llm_kvd_alloc(&in, &f, err) != 0) return -1;
    const int d = m->head_dim, G = mdl_group_size(m);
    float *K = malloc((size_t)n * (size_t)d * sizeof *K), *V = malloc((size_t)n * (size_t)d * sizeof *V);
    float *Q = calloc((size_t)G * (size_t)n * (size_t)d, sizeof *Q), *q = malloc((size_t)G * (size_t)d * sizeof *q);
    int rc = K && V && Q && q ? 0 : kv_errf(err, "bench_workload: out of memory");
    for (int l = 0; rc == 0 && l < in.n_layer; l++)
        for (int h = 0; rc == 0 && h < in.n_kv_head; h++) {
            if ((rc = rkv_workload_kv(&wl, m, l, h, n, K, V, err)) != 0) break;
            llm_kvd_put(f, l, 0, h, 0, n, K, (size_t)d);
            llm_kvd_put(f, l, 1, h, 0, n, V, (size_t)d);
            for (int64_t p = 0; p < n; p++) {
                rkv_workload_query(&wl, m, l, h, p, 0, p >= 4096, q);
                for (int g = 0; g < G; g++)
                    memcpy(Q + ((size_t)g * (size_t)n + (size_t)p) * (size_t)d, q + (size_t)g * (size_t)d,
                           (size_t)d * sizeof *Q);
            }
            for (int g = 0; g < G; g++) llm_kvd_put(f, l, 2, h * G + g, 0, n, Q + (size_t)g * (size_t)n * (size_t)d, (size_t)d);
        }
    if (rc == 0) rc = llm_kvd_write(f, path, err);
    free(K);
    free(V);
    free(Q);
    free(q);
    llm_kvd_free(f);
    return rc;
}

/* The floor: open (checksum) and decode every key row and every query row the profile reads. */
static double time_read(const char *path, int64_t C, int64_t w, int64_t n, kv_err *err)
{
    double t0 = kv_now_s();
    llm_kvd_file *f;
    if (llm_kvd_open(path, &f, err) != 0) return -1.0;
    const llm_kvd_info *in = &f->info;
    float *buf = malloc((size_t)n * (size_t)in->head_dim * sizeof *buf);
    volatile float sink = 0.0f;
    for (int l = 0; buf && l < in->n_layer; l++) {
        for (int h = 0; h < in->n_kv_head; h++) {
            llm_kvd_get(f, l, 0, h, 0, n, buf);
            sink += buf[(size_t)n * (size_t)in->head_dim - 1];
        }
        for (int h = 0; h < in->n_head; h++) {
            llm_kvd_get(f, l, 2, h, C - w, n - (C - w), buf);
            sink += buf[0];
        }
    }
    free(buf);
    llm_kvd_free(f);
    (void)sink;
    return kv_now_s() - t0;
}

/* kvsim workload fit on the dump: open, profile, fit; *tprof receives the profile's share. */
static double time_fit(const char *path, int64_t C, int64_t w, int64_t steps, double *tprof, kv_err *err)
{
    double t0 = kv_now_s();
    llm_kvd_file *f;
    if (llm_kvd_open(path, &f, err) != 0) return -1.0;
    mdl_model dm;
    memset(&dm, 0, sizeof dm);
    dm.num_hidden_layers = f->info.n_layer;
    dm.num_attention_heads = f->info.n_head;
    dm.num_key_value_heads = f->info.n_kv_head;
    dm.head_dim = f->info.head_dim;
    dm.hidden_size = f->info.n_head * f->info.head_dim;
    dm.max_position_embeddings = (int)f->info.n_tokens;
    dm.rope_theta = f->info.rope_theta;
    rkv_workload real;
    rkv_workload_defaults(&real);
    snprintf(real.generator, sizeof real.generator, "kvdump");
    llm_kvd_source(f, &real.real);
    wl_profile prof;
    double tp = kv_now_s();
    int rc = wl_profile_run(&real, &dm, C, w, steps, NULL, 0, 2, &prof, err);
    *tprof = kv_now_s() - tp;
    if (rc == 0) {
        wl_fit_cfg cfg = {.classes = 6, .context = C, .window = w, .steps = steps, .threads = 2, .seed = 1};
        rkv_workload fitted;
        rc = wl_fit(&prof, 1, &dm, &cfg, &fitted, NULL, err);
        wl_profile_free(&prof);
    }
    llm_kvd_free(f);
    return rc == 0 ? kv_now_s() - t0 : -1.0;
}

int main(void)
{
    mdl_model m;
    kv_err err;
    if (mdl_model_load("smollm2-135m", &m, &err) != 0) {
        fprintf(stderr, "bench_workload: %s\n", err.msg);
        return 1;
    }
    const int64_t C = 4096, w = 32, steps = 32, n = C + steps;
    char dir[] = "/tmp/kvsim-bench-wl-XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        perror("bench_workload: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/4k.kvd", dir);
    int rc = make_dump(&m, n, path, &err);
    double tread[3], tprof[3], tfit[3], cfit[3];
    for (int rep = 0; rc == 0 && rep < 3; rep++) {
        tread[rep] = time_read(path, C, w, n, &err);
        const double c0 = cpu_s();
        tfit[rep] = time_fit(path, C, w, steps, &tprof[rep], &err);
        cfit[rep] = cpu_s() - c0;
        if (tread[rep] < 0 || tfit[rep] < 0) rc = -1;
    }
    unlink(path);
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench_workload: %s\n", err.msg);
        return 1;
    }
    qsort(tread, 3, sizeof(double), cmp_d);
    qsort(tprof, 3, sizeof(double), cmp_d);
    qsort(tfit, 3, sizeof(double), cmp_d);
    qsort(cfit, 3, sizeof(double), cmp_d);
    printf("workload dump read (open + checksum + decode every K and window/decode Q row once), 4096 + 32 tokens, "
           "SmolLM2 shape, bf16: %.2f s\n", tread[1]);
    printf("workload profile of that dump, 2 threads: %.2f s; ceiling (the read): %.2f s; ratio %.2f\n", tprof[1],
           tread[1], tprof[1] / tread[1]);
    printf("workload fit from that dump (open + profile + 6 classes), 2 threads: %.2f s; goal 60 s: ratio %.2f; "
           "ceiling (the read): ratio %.1f\n", tfit[1], tfit[1] / 60.0, tfit[1] / tread[1]);
    printf("workload fit CPU time (all threads): %.2f CPU-s; on 2 idle cores %.1f s wall, ratio %.2f to the goal\n",
           cfit[1], cfit[1] / 2.0, cfit[1] / 2.0 / 60.0);
    return 0;
}
