/* workload_yaml.c — reads a synthetic workload file: every knob of
 * rkv_workload, each optional (the built-in default otherwise), strictly
 * typed and range-checked, with file:line:col on any error. Multi-turn
 * workloads list their turns:
 *
 *   generator: synthetic
 *   seed: 7
 *   num_topics: 64
 *   turns:
 *     - {input: 16384, output: 32}
 *     - {input: 512, output: 32}
 */
#include "rkv.h"
#include "kv_yaml.h"

#include <stdio.h>
#include <string.h>

static const char *const keys[] = {
    "generator", "seed", "key_rank", "topic_run_mean", "num_topics", "topic_strength", "key_noise",
    "outlier_channels", "outlier_scale", "sink_tokens", "sink_strength", "recency_strength", "needles",
    "needle_strength", "focus_topics", "query_focus", "query_noise", "query_content", "query_persistence", "decode_drift", "head_diversity",
    "value_noise", "rope_theta", "turns", NULL,
};

static int read_turns(const kv_yaml_doc *d, const kv_yaml_node *seq, rkv_workload *wl, kv_err *err)
{
    static const char *const tkeys[] = {"input", "output", NULL};
    if (seq->kind != KV_YAML_SEQ)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'turns': expected a list of {input, output}");
    if (seq->n < 1 || seq->n > RKV_MAX_TURNS)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'turns': expected 1 to %d turns, got %zu",
                            RKV_MAX_TURNS, seq->n);
    for (size_t i = 0; i < seq->n; i++) {
        const kv_yaml_node *t = seq->items[i];
        if (t->kind != KV_YAML_MAP)
            return kv_yaml_errf(d, t->line, t->col, err, "turn %zu: expected a mapping {input: N, output: N}", i + 1);
        if (kv_yaml_check_keys(d, t, tkeys, err) != 0 ||
            kv_yaml_int(d, t, "input", 1, 1, INT32_MAX / 2, &wl->turn_input[i], err) != 0 ||
            kv_yaml_int(d, t, "output", 1, 1, 1 << 20, &wl->turn_output[i], err) != 0)
            return -1;
    }
    wl->nturns = (int)seq->n;
    return 0;
}

int rkv_workload_load(const char *path, rkv_workload *out, kv_err *err)
{
    kv_yaml_doc d;
    memset(&d, 0, sizeof d);
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    snprintf(wl.path, sizeof wl.path, "%s", path);
    const kv_yaml_node *r = d.root;
    int64_t i64;
    int rc = kv_yaml_check_keys(&d, r, keys, err);
    if (rc == 0 && kv_yaml_str(&d, r, "generator", 0, wl.generator, sizeof wl.generator, err) != 0) rc = -1;
    if (rc == 0 && strcmp(wl.generator, "synthetic") != 0) {
        const kv_yaml_node *g = kv_yaml_get(r, "generator");
        rc = kv_yaml_errf(&d, g->line, g->col, err, "key 'generator': expected 'synthetic', got '%s'", wl.generator);
    }
    if (rc == 0) {
        i64 = (int64_t)wl.seed;
        if (kv_yaml_int(&d, r, "seed", 0, 0, INT64_MAX, &i64, err) != 0) rc = -1;
        wl.seed = (uint64_t)i64;
    }
    struct { const char *k; int *dst; int64_t lo, hi; } ints[] = {
        {"key_rank", &wl.key_rank, 0, 256}, {"num_topics", &wl.num_topics, 1, 4096},
        {"outlier_channels", &wl.outlier_channels, 0, 64}, {"sink_tokens", &wl.sink_tokens, 0, 1024},
        {"needles", &wl.needles, 0, 64}, {"focus_topics", &wl.focus_topics, 1, 16},
    };
    for (size_t i = 0; rc == 0 && i < sizeof ints / sizeof ints[0]; i++) {
        i64 = *ints[i].dst;
        if (kv_yaml_int(&d, r, ints[i].k, 0, ints[i].lo, ints[i].hi, &i64, err) != 0) rc = -1;
        *ints[i].dst = (int)i64;
    }
    struct { const char *k; double *dst; double lo; int lo_open; double hi; } nums[] = {
        {"topic_run_mean", &wl.topic_run_mean, 1.0, 0, 1e9}, {"topic_strength", &wl.topic_strength, 0.0, 0, 100.0},
        {"key_noise", &wl.key_noise, 0.0, 0, 100.0}, {"outlier_scale", &wl.outlier_scale, 0.0, 0, 1000.0},
        {"sink_strength", &wl.sink_strength, 0.0, 0, 100.0}, {"recency_strength", &wl.recency_strength, 0.0, 0, 100.0},
        {"needle_strength", &wl.needle_strength, 0.0, 0, 100.0}, {"query_focus", &wl.query_focus, 0.0, 0, 100.0},
        {"query_noise", &wl.query_noise, 0.0, 0, 100.0}, {"query_content", &wl.query_content, 0.0, 0, 100.0},
        {"query_persistence", &wl.query_persistence, 0.0, 0, 1.0}, {"decode_drift", &wl.decode_drift, 0.0, 0, 1.0},
        {"head_diversity", &wl.head_diversity, 0.0, 0, 10.0}, {"value_noise", &wl.value_noise, 0.0, 0, 100.0},
        {"rope_theta", &wl.rope_theta, 0.0, 0, 1e12},
    };
    for (size_t i = 0; rc == 0 && i < sizeof nums / sizeof nums[0]; i++)
        if (kv_yaml_num(&d, r, nums[i].k, 0, nums[i].lo, nums[i].lo_open, nums[i].hi, nums[i].dst, err) != 0)
            rc = -1;
    const kv_yaml_node *turns = kv_yaml_get(r, "turns");
    if (rc == 0 && turns && read_turns(&d, turns, &wl, err) != 0)
        rc = -1;
    kv_yaml_free(&d);
    if (rc == 0)
        *out = wl;
    return rc;
}
