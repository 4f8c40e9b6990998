/* llm_kvsynth.c — a synthetic workload written as a KV dump (`kvsim workload
 * dump`): the keys, values and queries the generator makes for a model's
 * shape, in the layout and format of a real model's dump, so that every tool
 * that reads dumps (kvsim workload profile / compare, the Python scripts under
 * scripts/ that read .kvd files) reads the synthetic side the same way.
 *
 * Keys and values of positions 0 .. n-1 come from rkv_workload_kv, the queries
 * of every position from rkv_workload_query (turn 0), as decode queries from
 * position `prompt` on: a profile of the dump at context C = prompt then reads
 * exactly what `kvsim workload profile --workload` measures. The fitted
 * generator's queries come from its query cache (rkv_fitted_qcache, equal to
 * rkv_workload_query bit for bit and not rebuilt per position). f32 only: the
 * values are the generator's, unrounded. */
#include "llm_kvdump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The G queries of every position of (layer, kv_head) into Q (G, n, d). */
static int synth_queries(const rkv_workload *wl, const mdl_model *m, int layer, int kvh, int64_t n, int64_t prompt,
                         float *Q, float *q, kv_err *err)
{
    const int d = m->head_dim, G = mdl_group_size(m);
    rkv_fitted_qcache *c = NULL;
    if (!strcmp(wl->generator, "fitted") &&
        rkv_fitted_qcache_new(wl, m, layer, kvh, 0, n, prompt, &c, err) != 0)
        return -1;
    for (int64_t p = 0; p < n; p++) {
        if (c) rkv_fitted_qcache_query(c, wl, p, q);
        else rkv_workload_query(wl, m, layer, kvh, p, 0, p >= prompt, q);
        for (int g = 0; g < G; g++)
            memcpy(Q + ((size_t)g * (size_t)n + (size_t)p) * (size_t)d, q + (size_t)g * (size_t)d,
                   (size_t)d * sizeof *Q);
    }
    rkv_fitted_qcache_free(c);
    return 0;
}

/* The header fields of a synthetic dump of n positions at m's shape. */
static void synth_info(const mdl_model *m, int64_t n, llm_kvd_info *in)
{
    memset(in, 0, sizeof *in);
    in->n_layer = m->num_hidden_layers;
    in->n_head = m->num_attention_heads;
    in->n_kv_head = m->num_key_value_heads;
    in->head_dim = m->head_dim;
    in->n_tokens = n;
    in->dtype = RKV_DTYPE_FP32;
    in->rope_theta = m->rope_theta;
}

size_t llm_kvd_synth_bytes(const mdl_model *m, int64_t n)
{
    llm_kvd_info in;
    synth_info(m, n, &in);
    return llm_kvd_data_bytes(&in);
}

static int synthesize(const rkv_workload *wl, const mdl_model *m, int64_t n, int64_t prompt, const char *name,
                      llm_kvd_file **out, kv_err *err);

/* A measured-heads workload learns the positions it is generated for (n), as in rkv_run. */
int llm_kvd_synthesize(const rkv_workload *wl, const mdl_model *m, int64_t n, int64_t prompt, const char *name,
                       llm_kvd_file **out, kv_err *err)
{
    *out = NULL;
    if (wl->rec_ladder != RKV_REC_HEADS) return synthesize(wl, m, n, prompt, name, out, err);
    rkv_workload *c = malloc(sizeof *c);
    if (!c) return kv_errf(err, "workload dump: out of memory");
    *c = *wl;
    c->run_context = n;
    const int rc = synthesize(c, m, n, prompt, name, out, err);
    free(c);
    return rc;
}

static int synthesize(const rkv_workload *wl, const mdl_model *m, int64_t n, int64_t prompt, const char *name,
                      llm_kvd_file **out, kv_err *err)
{
    *out = NULL;
    if (n < 1 || prompt < 0 || prompt > n)
        return kv_errf(err, "workload dump: %lld tokens with decoding from %lld: expected 0 <= prompt <= tokens, "
                            "tokens >= 1", (long long)n, (long long)prompt);
    const int d = m->head_dim, G = mdl_group_size(m), Hkv = m->num_key_value_heads;
    llm_kvd_info in;
    synth_info(m, n, &in);
    snprintf(in.model, sizeof in.model, "synthetic shape of %.100s", m->name);
    snprintf(in.source, sizeof in.source, "workload %.200s (generator %.32s, seed %llu), tokens 0..%lld, decode from %lld",
             name, wl->generator, (unsigned long long)wl->seed, (long long)n - 1, (long long)prompt);
    llm_kvd_file *f = NULL;
    if (llm_kvd_alloc(&in, &f, err) != 0) return -1;
    float *K = malloc((size_t)n * (size_t)d * sizeof *K), *V = malloc((size_t)n * (size_t)d * sizeof *V);
    float *Q = malloc((size_t)G * (size_t)n * (size_t)d * sizeof *Q), *q = malloc((size_t)G * (size_t)d * sizeof *q);
    int rc = 0;
    if (!K || !V || !Q || !q)
        rc = kv_errf(err, "workload dump: out of memory for %lld tokens", (long long)n);
    for (int l = 0; rc == 0 && l < in.n_layer; l++)
        for (int h = 0; rc == 0 && h < Hkv; h++) {
            if (rkv_workload_kv(wl, m, l, h, n, K, V, err) != 0 ||
                synth_queries(wl, m, l, h, n, prompt, Q, q, err) != 0) {
                rc = -1;
                break;
            }
            llm_kvd_put(f, l, 0, h, 0, n, K, (size_t)d);
            llm_kvd_put(f, l, 1, h, 0, n, V, (size_t)d);
            for (int g = 0; g < G; g++)
                llm_kvd_put(f, l, 2, h * G + g, 0, n, Q + (size_t)g * (size_t)n * (size_t)d, (size_t)d);
        }
    free(K);
    free(V);
    free(Q);
    free(q);
    if (rc != 0) {
        llm_kvd_free(f);
        return -1;
    }
    *out = f;
    return 0;
}
