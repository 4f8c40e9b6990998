/* test_params.c — parameter resolution: the worked RocketKV split values of
 * docs/algorithm.md, the even split, S' <= t, tiny and impossible budgets, and the
 * baselines' parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "rkv.h"

static rkv_params resolve(const char *method, int64_t S, int64_t t, int64_t new_tokens)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = S;
    rq.budget = t;
    rq.max_new = new_tokens;
    rq.d = 128;
    rq.G = 4;
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve(method, &rq, &p, &err), 0, "%s", err.msg);
    return p;
}

/* docs/algorithm.md's worked values (d = 128, max_new = 50, r with the floor). */
Test(params, rocketkv_worked_16384_256)
{
    rkv_params p = resolve("rocketkv", 16384, 256, 50);
    /* S' = 16434, c = 64.195, ρ = 0.2 + 0.06·log2(64.195) = 0.5603,
     * c^ρ = 10.297 → capacity = ⌊16434/10.297⌋ = 1596; P = 1546;
     * c2 = 1596/256 = 6.234 → p = ⌈2.497⌉ = 3; r = ⌊128·3/6.234⌋ = 61; k = 128 */
    cr_assert_eq(p.capacity, 1596);
    cr_assert_eq(p.prompt_budget, 1546);
    cr_assert_eq(p.page_size, 3);
    cr_assert_eq(p.topr, 61);
    cr_assert_eq(p.topk, 128);
    cr_assert_float_eq(p.rho, 0.56027, 1e-4);
}

Test(params, rocketkv_worked_96256_256)
{
    rkv_params p = resolve("rocketkv", 96256, 256, 50);
    cr_assert_eq(p.capacity, 1401);
    cr_assert_eq(p.prompt_budget, 1351);
    cr_assert_eq(p.page_size, 3);
    cr_assert_eq(p.topr, 70);
    cr_assert_eq(p.topk, 128);
}

Test(params, rocketkv_worked_65536_4096)
{
    rkv_params p = resolve("rocketkv", 65536, 4096, 50);
    cr_assert_eq(p.capacity, 19354);
    cr_assert_eq(p.prompt_budget, 19304);
    cr_assert_eq(p.page_size, 3);
    cr_assert_eq(p.topr, 81);
    cr_assert_eq(p.topk, 2048);
}

Test(params, even_split_is_rho_half)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 16384;
    rq.budget = 256;
    rq.split = RKV_SPLIT_EVEN;
    rkv_params p;
    cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &p, NULL), 0);
    /* c = 64.195, c^0.5 = 8.012 → capacity = ⌊16434/8.012⌋ = 2051 */
    cr_assert_float_eq(p.rho, 0.5, 1e-12);
    cr_assert_eq(p.capacity, 2051);
}

Test(params, budget_covers_everything_is_dense)
{
    /* S' = 1000 + 50 <= t = 2000: nothing evicted, p = 1, r = d, k = S' */
    rkv_params p = resolve("rocketkv", 1000, 2000, 50);
    cr_assert_eq(p.evicts, 0);
    cr_assert_eq(p.prompt_budget, 1000);
    cr_assert_eq(p.page_size, 1);
    cr_assert_eq(p.topr, 128);
    cr_assert_eq(p.topk, 1050);
    cr_assert_float_eq(p.c, 1.0, 0);
    rkv_params s = resolve("sparq", 1000, 2000, 50);
    cr_assert_eq(s.topk, 1050);
    cr_assert_eq(s.topr, 128);
}

Test(params, tiny_budgets)
{
    /* t = 2 at 32K: ρ capped at 0.8; capacity raised to min(2·50, S') = 100; P = 50 */
    rkv_params p = resolve("rocketkv", 32768, 2, 50);
    cr_assert_float_eq(p.rho, 0.8, 1e-12);
    cr_assert_eq(p.capacity, 100);
    cr_assert_eq(p.prompt_budget, 50);
    cr_assert_eq(p.topk, 1);
    cr_assert(p.window_size <= p.prompt_budget);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.budget = 1;
    rkv_params q;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &q, &err), -1);
    cr_assert(strstr(err.msg, "budget 1 too small"), "%s", err.msg);
    rq.budget = 4;
    cr_assert_eq(rkv_params_resolve("streaming", &rq, &q, &err), -1);
    cr_assert(strstr(err.msg, "sink"), "%s", err.msg);
    rq.budget = 0;
    cr_assert_eq(rkv_params_resolve("full", &rq, &q, &err), -1);
}

Test(params, unknown_method_lists_the_known_ones)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve("rocket", &rq, &p, &err), -1);
    cr_assert(strstr(err.msg, "unknown method 'rocket'") && strstr(err.msg, "rocketkv-mt"), "%s", err.msg);
}

Test(params, context_beyond_model_length_is_an_error)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 40000;
    rq.model_max_len = 32768;
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &p, &err), -1);
    cr_assert(strstr(err.msg, "max_position_embeddings"), "%s", err.msg);
}

/* The prompt-budget rule when the model's max length caps S' (docs/algorithm.md):
 * S = 32700, max_new = 100, max length 32768 → S' = 32768 and only S' − S = 68
 * tokens can be generated. t = 1024: c = 32, ρ = 0.2 + 0.06·5 = 0.5,
 * capacity = ⌊32768/√32⌋ = ⌊5792.62⌋ = 5792 (above min(2·100, S') = 200);
 * P = 5792 − 68 = 5724 (capacity − max_new would waste 32 slots: 5692).
 * c₂ = 5792/1024 = 5.65625 → p = ⌈2.378⌉ = 3, r = ⌊128·3/5.65625⌋ = 67, k = 512.
 * A run may decode 68 steps (positions 32700 .. 32767); a 69th is refused. */
Test(params, prompt_budget_when_max_length_caps_s_prime)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 32700;
    rq.max_new = 100;
    rq.model_max_len = 32768;
    rq.budget = 1024;
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.S_total, 32768);
    cr_assert_float_eq(p.rho, 0.5, 1e-12);
    cr_assert_eq(p.capacity, 5792);
    cr_assert_eq(p.prompt_budget, 5724);
    cr_assert_eq(p.page_size, 3);
    cr_assert_eq(p.topr, 67);
    cr_assert_eq(p.topk, 512);
    cr_assert_eq(rkv_params_decode_steps(&p), 68);
    /* the run refuses a decode position past the model's range, before any work */
    mdl_model m;
    memset(&m, 0, sizeof m);
    m.num_hidden_layers = 1;
    m.num_attention_heads = 4;
    m.num_key_value_heads = 1;
    m.head_dim = 128;
    m.max_position_embeddings = 32768;
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = &m;
    cfg.wl = &wl;
    cfg.nsets = 1;
    cfg.sets[0] = p;
    cfg.steps = 69;
    cfg.threads = 1;
    cr_assert_eq(rkv_run(&cfg, NULL, &err), -1);
    cr_assert(strstr(err.msg, "decode step 68 would be at position 32768, past S' = 32768"), "%s", err.msg);
}

Test(params, baselines)
{
    rkv_params q = resolve("quest", 32768, 1024, 50);
    cr_assert_eq(q.page_size, 16);
    cr_assert_eq(q.topk, 1024); /* 64 pages of 16 */
    rkv_params q2 = resolve("quest", 32768, 20, 50);
    cr_assert_eq(q2.topk, 48);  /* max(3, ⌊20/16⌋) = 3 pages */
    rkv_params s = resolve("sparq", 32768, 1024, 50);
    cr_assert_eq(s.topr, 4);    /* round(128·1024/32818) = round(3.99) */
    cr_assert_eq(s.topk, 512);
    rkv_params sn = resolve("snapkv", 32768, 1024, 50);
    cr_assert_eq(sn.kernel_size, 7);
    cr_assert_eq(sn.prompt_budget, 1024);
    rkv_params sg = resolve("snapkv-gqa", 32768, 1024, 50);
    cr_assert_eq(sg.kernel_size, 63);
    rkv_params st = resolve("streaming", 32768, 1024, 50);
    cr_assert_eq(st.sink_tokens, 4);
    cr_assert_eq(st.capacity, 1024);
}

/* The analytic counts of docs/algorithm.md's table, by hand, bf16 (b = 2). */
Test(params, analytic_traffic_by_hand)
{
    rkv_params p = resolve("rocketkv", 16384, 256, 50);
    rkv_traffic t;
    p.method->traffic(&p, 0, &t);
    /* C = P + 1 = 1547; pages = ⌈1547/3⌉ = 516; aux = 516·61·2 = 62952 B;
     * exact = 128·2·128·2 = 65536 B; scores = 2·4·516·4 = 16512 B;
     * write = 2·128·2 + 2·128·2 = 1024 B */
    cr_assert_eq(t.aux, 62952);
    cr_assert_eq(t.kv_exact, 65536);
    cr_assert_eq(t.scores, 16512);
    cr_assert_eq(t.kv_write, 1024);
    rkv_params f = resolve("full", 16384, 256, 50);
    f.method->traffic(&f, 9, &t);
    cr_assert_eq(t.kv_full, (16384 + 10) * 2 * 128 * 2);
    rkv_storage s;
    p.method->storage(&p, &s);
    cr_assert_eq(s.kv_bytes, 1596 * 2 * 128 * 2);
    cr_assert_eq(s.aux_bytes, 532 * 2 * 128 * 2);
}
