/* test_methods.c — every method's traits (refimpl/rkv.h, rkv_traits):
 * printed, checked against a table written here by hand from each method's
 * definition (docs/algorithm.md and the method's paper), and cross-checked
 * against what the method's resolve and traffic actually do, so a wrong row
 * in either table fails. An unknown method is an error. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rkv.h"

/* By hand: the read layout a well-built kernel has (dense and SnapKV read
 * their compacted cache whole; the token selectors read rows; Quest and
 * stage 2 read pages; SparQ reads transposed K by chosen dimension, stage 2
 * page min/max by chosen dimension), who selects (Quest, SparQ, SnapKV and
 * the exact-top-k oracle per query head), and which stages each has. */
static const struct {
    const char *name;
    rkv_read_layout exact, aux;
    int per_query_head, dense, stage1, stage1_per_turn, stage2, cache_capped;
} want[] = {
    /* name          exact            aux                    perq dense s1 s1t s2 cap */
    {"full",        RKV_READ_REGION, RKV_READ_STREAM,      0, 1, 0, 0, 0, 0},
    {"exact-topk",  RKV_READ_ROW,    RKV_READ_STREAM,      1, 0, 0, 0, 0, 0},
    {"streaming",   RKV_READ_REGION, RKV_READ_STREAM,      0, 0, 0, 0, 0, 1},
    {"snapkv",      RKV_READ_REGION, RKV_READ_STREAM,      1, 0, 1, 0, 0, 0},
    {"snapkv-gqa",  RKV_READ_REGION, RKV_READ_STREAM,      0, 0, 1, 0, 0, 0},
    {"quest",       RKV_READ_PAGE,   RKV_READ_STREAM,      1, 0, 0, 0, 0, 0},
    {"sparq",       RKV_READ_ROW,    RKV_READ_DIMS_TOKENS, 1, 0, 0, 0, 0, 0},
    {"hsa",         RKV_READ_PAGE,   RKV_READ_DIMS_PAGES,  0, 0, 0, 0, 1, 0},
    {"rocketkv",    RKV_READ_PAGE,   RKV_READ_DIMS_PAGES,  0, 0, 1, 0, 1, 0},
    {"rocketkv-mt", RKV_READ_PAGE,   RKV_READ_DIMS_PAGES,  0, 0, 1, 1, 1, 0},
};
#define NWANT ((int)(sizeof want / sizeof want[0]))

Test(methods, traits_match_the_table)
{
    int n = 0;
    for (int i = 0; rkv_methods[i]; i++, n++) {
        const rkv_method_type *m = rkv_methods[i];
        const rkv_traits *t = &m->traits;
        char line[256];
        rkv_traits_format(t, line, sizeof line);
        printf("%-12s %s\n", m->name, line);
        int k = 0;
        while (k < NWANT && strcmp(want[k].name, m->name)) k++;
        cr_assert_lt(k, NWANT, "method %s has no row in the test's table", m->name);
        cr_expect_eq(t->exact_read, want[k].exact, "%s exact_read", m->name);
        cr_expect_eq(t->aux_read, want[k].aux, "%s aux_read", m->name);
        cr_expect_eq(t->per_query_head, want[k].per_query_head, "%s per_query_head", m->name);
        cr_expect_eq(t->dense, want[k].dense, "%s dense", m->name);
        cr_expect_eq(t->stage1, want[k].stage1, "%s stage1", m->name);
        cr_expect_eq(t->stage1_per_turn, want[k].stage1_per_turn, "%s stage1_per_turn", m->name);
        cr_expect_eq(t->stage2, want[k].stage2, "%s stage2", m->name);
        cr_expect_eq(t->cache_capped, want[k].cache_capped, "%s cache_capped", m->name);
    }
    cr_assert_eq(n, NWANT, "%d methods, %d rows in the test's table", n, NWANT);
}

Test(methods, traits_format)
{
    char line[256];
    rkv_traits_format(&rkv_method_find("rocketkv")->traits, line, sizeof line);
    cr_assert_str_eq(line, "exact=page aux=dims-pages per-kv-head stage1 stage2");
    rkv_traits_format(&rkv_method_find("sparq")->traits, line, sizeof line);
    cr_assert_str_eq(line, "exact=row aux=dims-tokens per-query-head");
}

static rkv_params resolve(const char *method, int64_t S, int64_t t)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = S;
    rq.budget = t;
    rq.max_new = 50;
    rq.d = 128;
    rq.G = 4;
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve(method, &rq, &p, &err), 0, "%s: %s", method, err.msg);
    return p;
}

/* What the traits claim, against what resolve/traffic/cache_tokens do at a
 * context (16384) far above the budget (256). */
Test(methods, traits_agree_with_resolve_and_traffic)
{
    for (int i = 0; rkv_methods[i]; i++) {
        const rkv_method_type *m = rkv_methods[i];
        const rkv_traits *t = &m->traits;
        rkv_params p = resolve(m->name, 16384, 256), q = resolve(m->name, 16384, 1024);
        rkv_traffic a, b;
        m->traffic(&p, 10, &a);
        m->traffic(&q, 10, &b);
        /* dense: the budget changes nothing */
        cr_expect_eq(t->dense, rkv_traffic_total(&a) == rkv_traffic_total(&b), "%s dense", m->name);
        /* stage 2: pages and chosen dimensions resolved */
        cr_expect_eq(t->stage2, p.page_size > 0 && p.topr > 0, "%s stage2", m->name);
        /* stage 1: an observation window and a pooling kernel resolved */
        cr_expect_eq(t->stage1, p.window_size > 0 && p.kernel_size > 0, "%s stage1", m->name);
        /* stage 1 per turn: the whole history stays stored (as dense stores it) */
        rkv_storage st, sf;
        m->storage(&p, &st);
        rkv_params pf = resolve(rkv_method_baseline()->name, 16384, 256);
        pf.method->storage(&pf, &sf);
        cr_expect_eq(t->stage1_per_turn, t->stage1 && st.kv_bytes == sf.kv_bytes, "%s stage1_per_turn", m->name);
        /* capped cache: never above the budget, late in a long generation */
        cr_expect_eq(t->cache_capped, rkv_cache_tokens(&p, 49) <= p.budget, "%s cache_capped", m->name);
        /* a dims-major aux layout has aux reads to lay out; dense has none */
        if (t->aux_read != RKV_READ_STREAM) cr_expect_gt(a.aux, 0, "%s aux_read", m->name);
        if (t->dense) cr_expect_eq(a.aux, 0, "%s aux", m->name);
    }
}

Test(methods, one_dense_baseline)
{
    int dense = 0;
    for (int i = 0; rkv_methods[i]; i++) dense += rkv_methods[i]->traits.dense;
    cr_assert_eq(dense, 1);
    cr_assert(rkv_method_baseline()->traits.dense);
    cr_assert_eq(rkv_method_find(rkv_method_baseline()->name), rkv_method_baseline());
}

Test(methods, unknown_method_is_an_error)
{
    kv_err err = {""};
    cr_assert_null(rkv_method_get("rocket", &err));
    cr_assert(strstr(err.msg, "unknown method 'rocket'") && strstr(err.msg, "rocketkv-mt"), "%s", err.msg);
    cr_assert_null(rkv_method_find(""));
}
