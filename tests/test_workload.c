/* test_workload.c — the synthetic workload: the YAML loader's error paths
 * (file:line:col), the committed default file equals the built-in defaults,
 * determinism of keys and queries, and multi-turn runs (rocketkv-mt selects
 * again from the whole history; rocketkv only from what it kept). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"

static void expect_error(const char *path, const char *msg)
{
    rkv_workload wl;
    memset(&wl, 0x5a, sizeof wl);
    kv_err err = {""};
    cr_assert_eq(rkv_workload_load(path, &wl, &err), -1, "%s accepted", path);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(wl.num_topics, 0x5a5a5a5a, "partial result written");
}

Test(workload, loader_errors_name_file_line_col)
{
    expect_error("tests/data/bad/workload_generator.yaml",
                 "tests/data/bad/workload_generator.yaml:1:12: key 'generator': expected 'fitted' or 'handtuned' ('synthetic'), got 'recorded'");
    expect_error("tests/data/bad/workload_out_of_range.yaml",
                 "tests/data/bad/workload_out_of_range.yaml:1:15: key 'decode_drift': expected a number in [0, 1], got '1.5'");
    expect_error("tests/data/bad/workload_turn_zero.yaml",
                 "tests/data/bad/workload_turn_zero.yaml:3:13: key 'input': expected an integer in [1, 1073741823], got '0'");
    expect_error("tests/data/bad/workload_wrong_type.yaml",
                 "tests/data/bad/workload_wrong_type.yaml:2:13: key 'num_topics': expected an integer in [1, 4096], got 'many'");
    rkv_workload wl;
    kv_err err = {""};
    cr_assert_eq(rkv_workload_load("tests/data/bad/workload_unknown_key.yaml", &wl, &err), -1);
    cr_assert(!strncmp(err.msg, "tests/data/bad/workload_unknown_key.yaml:3:1: unknown key 'qeury_focus'", 67), "%s", err.msg);
    cr_assert_eq(rkv_workload_load("tests/data/bad/workload_turn_key.yaml", &wl, &err), -1);
    cr_assert(strstr(err.msg, ":2:18: unknown key 'outptu'"), "%s", err.msg);
    cr_assert_eq(rkv_workload_load("tests/data/bad/workload_syntax.yaml", &wl, &err), -1);
    cr_assert(strstr(err.msg, "workload_syntax.yaml:2:1: YAML syntax error"), "%s", err.msg);
    cr_assert_eq(rkv_workload_load("tests/data/bad/no_such_file.yaml", &wl, &err), -1);
}

Test(workload, default_file_is_the_builtin_default)
{
    rkv_workload a, b;
    kv_err err = {""};
    cr_assert_eq(rkv_workload_load("refimpl/workloads/handtuned.yaml", &a, &err), 0, "%s", err.msg);
    rkv_workload_defaults(&b);
    memset(a.path, 0, sizeof a.path);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "refimpl/workloads/handtuned.yaml drifted from rkv_workload_defaults()");
}

static mdl_model tiny(void)
{
    mdl_model m;
    memset(&m, 0, sizeof m);
    m.num_hidden_layers = 2;
    m.num_attention_heads = 4;
    m.num_key_value_heads = 2;
    m.head_dim = 64;
    m.rope_theta = 500000;
    m.max_position_embeddings = 1 << 20;
    return m;
}

Test(workload, deterministic_and_seed_dependent)
{
    mdl_model m = tiny();
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    const int64_t n = 777;
    float *K1 = malloc(sizeof(float) * n * 64), *V1 = malloc(sizeof(float) * n * 64);
    float *K2 = malloc(sizeof(float) * n * 64), *V2 = malloc(sizeof(float) * n * 64);
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 1, n, K1, V1, NULL), 0);
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 1, n, K2, V2, NULL), 0);
    cr_assert_eq(memcmp(K1, K2, sizeof(float) * n * 64), 0);
    cr_assert_eq(memcmp(V1, V2, sizeof(float) * n * 64), 0);
    float q1[2 * 64], q2[2 * 64];
    rkv_workload_query(&wl, &m, 1, 1, 500, 0, 1, q1);
    rkv_workload_query(&wl, &m, 1, 1, 500, 0, 1, q2);
    cr_assert_eq(memcmp(q1, q2, sizeof q1), 0);
    wl.seed = 2;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 1, n, K2, V2, NULL), 0);
    cr_assert_neq(memcmp(K1, K2, sizeof(float) * n * 64), 0);
    /* sinks: the first keys carry the sink direction every query holds, so a decode
     * query scores key 0 far above the median key */
    wl.seed = 1;
    double s0 = 0, sm = 0;
    for (int i = 0; i < 64; i++) {
        s0 += q1[i] * K1[i];
        sm += q1[i] * K1[400 * 64 + i];
    }
    cr_assert_gt(s0 / 8.0, sm / 8.0 + 3.0, "sink logit %g vs %g", s0 / 8, sm / 8);
    free(K1); free(V1); free(K2); free(V2);
}

typedef struct {
    int64_t first_turn2_step;
    int32_t *mt_cache, *rk_cache;
    int64_t mt_n, rk_n;
    int64_t turn1_end;
} mt_capture;

static int on_step(void *ctx, const rkv_record *r)
{
    mt_capture *c = ctx;
    if (r->step != c->first_turn2_step || r->layer != 0 || r->kv_head != 0)
        return 0;
    int32_t **dst = r->set == 0 ? &c->mt_cache : &c->rk_cache;
    int64_t *n = r->set == 0 ? &c->mt_n : &c->rk_n;
    *n = r->so->cache_n[0];
    *dst = malloc(sizeof(int32_t) * (size_t)*n);
    memcpy(*dst, r->so->cache, sizeof(int32_t) * (size_t)*n);
    return 0;
}

Test(workload, multiturn_mt_reselects_from_full_history, .timeout = 60)
{
    mdl_model m = tiny();
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    wl.nturns = 2;
    wl.turn_input[0] = 900;
    wl.turn_output[0] = 4;
    wl.turn_input[1] = 64;
    wl.turn_output[1] = 4;
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 900;
    rq.max_new = 4;
    rq.budget = 96;
    rq.d = 64;
    rq.G = 2;
    rq.window = 32;
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = &m;
    cfg.wl = &wl;
    cfg.threads = 1;
    cr_assert_eq(rkv_params_resolve("rocketkv-mt", &rq, &cfg.sets[0], NULL), 0);
    cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &cfg.sets[1], NULL), 0);
    cfg.nsets = 2;
    mt_capture c = {.first_turn2_step = 4, .turn1_end = 904};
    cfg.on_step = on_step;
    cfg.ctx = &c;
    cfg.fidelity = 1;
    rkv_fidelity fid[2];
    cr_assert_eq(rkv_run(&cfg, fid, NULL), 0);
    /* both caches hold P (+ the decode token) after the turn-2 prefill */
    const int64_t P = cfg.sets[0].prompt_budget;
    cr_assert_eq(c.mt_n, P + 1);
    cr_assert_eq(c.rk_n, P + 1);
    /* rocketkv-mt may bring back turn-1 tokens that rocketkv evicted at turn 1;
     * rocketkv can only keep what it had. Find one token MT kept that rocketkv
     * does not have and that precedes turn 2. */
    int found = 0;
    for (int64_t i = 0; i < c.mt_n && !found; i++) {
        int32_t p = c.mt_cache[i];
        if (p >= 900)
            continue;
        int in_rk = 0;
        for (int64_t j = 0; j < c.rk_n; j++)
            if (c.rk_cache[j] == p) in_rk = 1;
        if (!in_rk) found = 1;
    }
    cr_assert(found, "rocketkv-mt's turn-2 cache is a subset of rocketkv's: no re-selection happened");
    cr_assert_eq(fid[0].samples, 2 * 2 * 8 * 2);
    free(c.mt_cache);
    free(c.rk_cache);
    rkv_fidelity_free(&fid[0]);
    rkv_fidelity_free(&fid[1]);
}
