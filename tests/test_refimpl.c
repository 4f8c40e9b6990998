/* test_refimpl.c — the reference's stages on hand-worked examples (the
 * arithmetic is in the comments), dense attention against an independent
 * GSL BLAS formulation, and the properties every method must keep. */
#include <criterion/criterion.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "method_internal.h"

#define TOL_F32 2e-6 /* relative, fp32 attention of a few hundred keys */

/* ---------------------------------------------------------- building blocks */
Test(refimpl, topk_ties_go_to_lower_index)
{
    /* scores 3 1 3 2 3: top-2 among three 3s -> indices 0 and 2 */
    const double s[] = {3, 1, 3, 2, 3};
    int32_t idx[3];
    rkv_topk(s, 5, 2, idx);
    cr_assert_eq(idx[0], 0);
    cr_assert_eq(idx[1], 2);
    rkv_topk(s, 5, 3, idx);
    cr_assert_eq(idx[2], 4);
    const float f[] = {NAN, 0.5f, 0.5f, -1.0f};
    rkv_topk_f(f, 4, 2, idx); /* NaN counts as -inf */
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 2);
}

Test(refimpl, pooling_with_padding)
{
    const double in[] = {1, 5, 2, 0, 3};
    double out[5];
    /* max, kernel 3: windows [0,1] [0..2] [1..3] [2..4] [3,4]; padding never wins */
    rkv_pool1d(in, 5, 3, RKV_POOL_MAX, out);
    const double mx[] = {5, 5, 5, 3, 3};
    for (int i = 0; i < 5; i++) cr_assert_float_eq(out[i], mx[i], 0);
    /* avg, kernel 3, padded zeros counted: (0+1+5)/3, (1+5+2)/3, (5+2+0)/3, (2+0+3)/3, (0+3+0)/3 */
    rkv_pool1d(in, 5, 3, RKV_POOL_AVG, out);
    const double av[] = {2, 8.0 / 3, 7.0 / 3, 5.0 / 3, 1};
    for (int i = 0; i < 5; i++) cr_assert_float_eq(out[i], av[i], 1e-15);
    /* all-negative votes: padding (as -inf for max) still never wins */
    const double neg[] = {-4, -7, -1};
    rkv_pool1d(neg, 3, 5, RKV_POOL_MAX, out);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(out[i], -1, 0);
}

/* A tiny fp32 head: d = 4, G = 2, keys/values given. */
static rkv_head tiny_head(float *K, float *V, int64_t n, int G)
{
    rkv_head h = {.layer = 0, .kv_head = 0, .d = 4, .G = G, .dtype = RKV_DTYPE_FP32, .n = n, .cap = n, .K = K, .V = V};
    return h;
}

Test(refimpl, sign_chosen_bound_tau_group_mean)
{
    /* d = 4, p = 2, C = 5 cache slots (pages {0,1} {2,3} {4}), G = 2, r = 2. */
    float K[5 * 4] = {
        1, 0, 2, -1,   /* slot 0 */
        3, -2, 0, 1,   /* slot 1 */
        0, 1, -1, 4,   /* slot 2 */
        -2, 2, 1, 0,   /* slot 3 */
        5, 0, 0, -3,   /* slot 4 */
    };
    float V[5 * 4];
    for (int i = 0; i < 20; i++) V[i] = (float)(i % 7) - 3.0f;
    rkv_head h = tiny_head(K, V, 5, 2);
    /* q_1 = (2, 0.5, -1, 0), q_2 = (1, -0.25, -3, 0.1)
     * a = Σ|q| = (3, 0.75, 4, 0.1) → I = {0, 2} (dims 2 and 0, ascending);
     * Σq = (3, 0.25, -4, 0.1) → dim 0 takes the page max, dim 2 the page min.
     * page min/max: page0: min (1,-2,0,-1) max (3,0,2,1); page1: min (-2,1,-1,0) max (0,2,1,4);
     *               page2: (5,0,0,-3) both.
     * K̂: page0 (max0=3, min2=0); page1 (max0=0, min2=-1); page2 (5, 0).
     * s_1 = 2·K̂0 - 1·K̂2: page0 6, page1 1, page2 10.
     * s_2 = 1·K̂0 - 3·K̂2: page0 3, page1 3, page2 5.
     * τ_1 = √(4·(2+1)/(3.5)) = √(12/3.5) = 1.85164; τ_2 = √(4·4/4.35) = 1.91785. */
    const float q[8] = {2, 0.5f, -1, 0, 1, -0.25f, -3, 0.1f};
    rkv_params p;
    memset(&p, 0, sizeof p);
    p.d = 4;
    p.G = 2;
    p.page_size = 2;
    p.topr = 2;
    p.topk = 2;
    p.kv_dtype = p.aux_dtype = RKV_DTYPE_FP32;
    p.method = rkv_method_find("hsa");
    size_t sb = rkv_stage2_bytes(&p, 8);
    char *mem = calloc(1, sb), *cur = mem;
    rkv_stage2 s2;
    memset(&s2, 0, sizeof s2);
    rkv_stage2_init(&s2, &cur, &p, 8);
    h.n = 5;
    rkv_stage2_append(&s2, &p, &h);
    cr_assert_eq(s2.npages, 3);
    cr_assert_float_eq(s2.pmax[0 * 4 + 0], 3, 0);
    cr_assert_float_eq(s2.pmin[1 * 4 + 2], -1, 0);
    int32_t pos[2 * 8], dims[2 * 4];
    int64_t count[2];
    float out[8];
    rkv_step_out o = {.cap = 8, .pos = pos, .count = count, .out = out, .dims = dims};
    void *ws = malloc(rkv_stage2_ws_bytes(&p, 8));
    cr_assert_eq(rkv_stage2_step(&s2, &p, &h, q, &o, ws), 0);
    cr_assert_eq(o.ndims, 2);
    cr_assert_eq(dims[0], 0);
    cr_assert_eq(dims[1], 2);
    /* z_1 = (6, 1, 10)/1.85164 = (3.2404, 0.5401, 5.4006); page weights (2, 2, 1):
     *   e = exp(z - 5.4006) = (0.11535, 0.0077520, 1); Z_1 = 2·0.11535 + 2·0.0077520 + 1 = 1.24621
     *   per-token p_1 = (0.092561, 0.0062205, 0.80243)
     * z_2 = (3, 3, 5)/1.91785 = (1.56425, 1.56425, 2.60708); e = (0.35255, 0.35255, 1); Z_2 = 2.41020
     *   per-token p_2 = (0.14627, 0.14627, 0.41490)
     * mean = (0.11942, 0.07624, 0.60867): top-2 tokens = slot 4, then the first slot of page 0. */
    cr_assert_eq(count[0], 2);
    cr_assert_eq(pos[0], 0);
    cr_assert_eq(pos[1], 4);
    /* the output is exact attention over slots {0, 4}, checked against rkv_attend */
    float ref[8], aws[64];
    int32_t sel[2] = {0, 4};
    rkv_attend(&h, q, sel, 2, ref, NULL, aws);
    cr_assert_eq(memcmp(ref, out, sizeof ref), 0);
    /* a tie between pages: with k = 3 the boundary takes page 0's first slot then its second
     * (slots of one page are equal; lower slot first) */
    p.topk = 3;
    cr_assert_eq(rkv_stage2_step(&s2, &p, &h, q, &o, ws), 0);
    cr_assert_eq(count[0], 3);
    cr_assert_eq(pos[0], 0);
    cr_assert_eq(pos[1], 1);
    cr_assert_eq(pos[2], 4);
    free(ws);
    free(mem);
}

Test(refimpl, stage1_window_sum_group_sum_pool_topk)
{
    /* S = 6 keys, w = 2 window queries, G = 2, d = 4, P = 4: keep top-2 of the 4 prefix
     * positions by max-pooled (kernel 1: no pooling) group-summed votes, plus the window. */
    float K[6 * 4] = {0}, V[6 * 4] = {0};
    /* keys: position j has a single 1 in dim j%4, scaled so that query dim 1 favours key 1 */
    for (int j = 0; j < 6; j++) K[j * 4 + (j % 4)] = 2.0f;
    rkv_head h = tiny_head(K, V, 6, 2);
    /* window queries (G, w, d): head 0 looks at dim 1, head 1 at dim 3 */
    float Qw[2 * 2 * 4] = {0};
    Qw[(0 * 2 + 0) * 4 + 1] = 4; Qw[(0 * 2 + 1) * 4 + 1] = 4;
    Qw[(1 * 2 + 0) * 4 + 3] = 3; Qw[(1 * 2 + 1) * 4 + 3] = 3;
    int32_t cand[6] = {0, 1, 2, 3, 4, 5}, kept[4];
    /* head 0: logits /√4: key1 = 4 (others 0) → key 1 gets the most mass; head 1: key 3 = 3.
     * Group sum ranks prefix keys 1 and 3 first: kept = {1, 3} + window {4, 5}. */
    void *ws = malloc(rkv_stage1_ws_bytes(6, 2, 2, 4));
    int64_t n = rkv_stage1_select(&h, cand, 6, Qw, 2, 4, 1, RKV_POOL_MAX, 1, kept, ws);
    cr_assert_eq(n, 4);
    cr_assert_eq(kept[0], 1);
    cr_assert_eq(kept[1], 3);
    cr_assert_eq(kept[2], 4);
    cr_assert_eq(kept[3], 5);
    /* the votes themselves: head 0, window query 0 sees keys 0..4 (causal), logits (0,4,0,0,0)/... */
    double votes[4];
    cr_assert_eq(rkv_stage1_votes(&h, cand, 6, Qw, 2, 1, votes, ws), 0);
    /* logits q·k/√4: head 0 gives 4·2/2 = 4 to keys 1 and 5 (dim 1), head 1 gives 3·2/2 = 3 to key 3.
     * head 0, window query 0 (position 4, sees keys 0..4): p(key1) = e^4/(e^4+4), p(key3) = 1/(e^4+4);
     *         window query 1 (position 5, sees 0..5, key 5 also scores 4): p(key1) = e^4/(2e^4+4), p(key3) = 1/(2e^4+4);
     * head 1: p(key1) = 1/(e^3+4) + 1/(e^3+5), p(key3) = e^3/(e^3+4) + e^3/(e^3+5). Summed over the group: */
    const double e3 = exp(3), e4 = exp(4);
    cr_assert_float_eq(votes[1], e4 / (e4 + 4) + e4 / (2 * e4 + 4) + 1 / (e3 + 4) + 1 / (e3 + 5), 1e-6);
    cr_assert_float_eq(votes[3], 1 / (e4 + 4) + 1 / (2 * e4 + 4) + e3 / (e3 + 4) + e3 / (e3 + 5), 1e-6);
    cr_assert_float_eq(votes[0], 1 / (e4 + 4) + 1 / (2 * e4 + 4) + 1 / (e3 + 4) + 1 / (e3 + 5), 1e-6);
    free(ws);
}

/* Dense attention vs an independent formulation: scores with gsl_blas_dgemv in
 * double, softmax in double, output with gsl_blas_dgemv. */
Test(refimpl, dense_attention_matches_blas)
{
    const int d = 64, G = 3;
    const int64_t n = 4099;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242);
    float *K = malloc(sizeof(float) * n * d), *V = malloc(sizeof(float) * n * d), q[3 * 64];
    double *Kd = malloc(sizeof(double) * n * d), *Vd = malloc(sizeof(double) * n * d);
    for (int64_t i = 0; i < n * d; i++) {
        K[i] = (float)gsl_ran_gaussian(r, 1.3);
        V[i] = (float)gsl_ran_gaussian(r, 0.7);
        Kd[i] = K[i];
        Vd[i] = V[i];
    }
    for (int i = 0; i < G * d; i++) q[i] = (float)gsl_ran_gaussian(r, 0.9);
    rkv_head h = {.d = d, .G = G, .dtype = RKV_DTYPE_FP32, .n = n, .cap = n, .K = K, .V = V};
    float out[3 * 64], *ws = malloc(sizeof(float) * (n * G + 4 * d));
    rkv_attend(&h, q, NULL, n, out, NULL, ws);
    gsl_matrix_const_view Km = gsl_matrix_const_view_array(Kd, (size_t)n, (size_t)d);
    gsl_matrix_const_view Vm = gsl_matrix_const_view_array(Vd, (size_t)n, (size_t)d);
    gsl_vector *s = gsl_vector_alloc((size_t)n), *qv = gsl_vector_alloc((size_t)d), *o = gsl_vector_alloc((size_t)d);
    for (int g = 0; g < G; g++) {
        for (int i = 0; i < d; i++) gsl_vector_set(qv, (size_t)i, q[g * d + i]);
        gsl_blas_dgemv(CblasNoTrans, 1.0 / sqrt(d), &Km.matrix, qv, 0.0, s);
        double mx = gsl_vector_max(s), z = 0;
        for (int64_t j = 0; j < n; j++) {
            double e = exp(gsl_vector_get(s, (size_t)j) - mx);
            gsl_vector_set(s, (size_t)j, e);
            z += e;
        }
        gsl_vector_scale(s, 1.0 / z);
        gsl_blas_dgemv(CblasTrans, 1.0, &Vm.matrix, s, 0.0, o);
        for (int i = 0; i < d; i++) {
            double ref = gsl_vector_get(o, (size_t)i);
            cr_assert(fabs(out[g * d + i] - ref) <= 1e-5 + TOL_F32 * 50 * fabs(ref),
                      "head %d dim %d: %g vs %g", g, i, (double)out[g * d + i], ref);
        }
    }
    gsl_vector_free(s); gsl_vector_free(qv); gsl_vector_free(o);
    free(K); free(V); free(Kd); free(Vd); free(ws);
    gsl_rng_free(r);
}

/* ------------------------------------------------------------- properties */
static mdl_model small_model(void)
{
    mdl_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "test-small");
    m.num_hidden_layers = 2;
    m.num_attention_heads = 4;
    m.num_key_value_heads = 2;
    m.head_dim = 32;
    m.hidden_size = 128;
    m.intermediate_size = 256;
    m.vocab_size = 1000;
    m.max_position_embeddings = 8192;
    m.rope_theta = 10000;
    return m;
}

#define MAXS 64
typedef struct {
    int nsets;
    int64_t steps;
    float *out;     /* (set, layer, head, step, G, d) */
    double *fid;    /* (set, layer, head, step, G, RKV_FID_N) */
    int64_t *cnt;   /* (set, layer, head, step, G) attended counts */
    int window_ok, kept_ok;
    int64_t expect_kept[RKV_MAX_SETS];
    int64_t window_from[RKV_MAX_SETS];
} capture;

static size_t cap_idx(const capture *c, int set, int layer, int head, int64_t step)
{
    return (((size_t)set * 2 + (size_t)layer) * 2 + (size_t)head) * (size_t)c->steps + (size_t)step;
}

static int on_step(void *ctx, const rkv_record *r)
{
    capture *c = ctx;
    size_t i = cap_idx(c, r->set, r->layer, r->kv_head, r->step);
    memcpy(c->out + i * 2 * 32, r->so->out, sizeof(float) * 2 * 32);
    if (r->fid)
        memcpy(c->fid + i * 2 * RKV_FID_N, r->fid, sizeof(double) * 2 * RKV_FID_N);
    for (int g = 0; g < 2; g++)
        c->cnt[i * 2 + (size_t)g] = r->so->shared ? r->so->count[0] : r->so->count[g];
    return 0;
}

static int on_stage1(void *ctx, int set, int layer, int kvh, int nrows, const int32_t *kept, int64_t stride,
                     const int64_t *nkept)
{
    capture *c = ctx;
    for (int r = 0; r < nrows; r++) {
        if (c->expect_kept[set] >= 0 && nkept[r] != c->expect_kept[set])
            c->kept_ok = 0;
        if (kept && c->window_from[set] >= 0) { /* the last w prompt positions are all kept */
            const int32_t *row = kept + (size_t)r * (size_t)stride;
            int64_t w = 0;
            for (int64_t j = 0; j < nkept[r]; j++)
                if (row[j] >= c->window_from[set]) w++;
            if (w != 600 - c->window_from[set])
                c->window_ok = 0;
        }
    }
    return 0;
}

static void run_sets(const char *const *methods, int nm, int64_t S, int64_t t, int64_t steps, int threads,
                     capture *c, rkv_fidelity *fid)
{
    static mdl_model m;
    static rkv_workload wl;
    m = small_model();
    rkv_workload_defaults(&wl);
    wl.seed = 11;
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = &m;
    cfg.wl = &wl;
    cfg.steps = steps;
    cfg.threads = threads;
    cfg.fidelity = 1;
    cfg.on_step = on_step;
    cfg.on_stage1 = on_stage1;
    cfg.ctx = c;
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = S;
    rq.budget = t;
    rq.max_new = steps;
    rq.d = 32;
    rq.G = 2;
    kv_err err = {""};
    for (int i = 0; i < nm; i++) {
        cr_assert_eq(rkv_params_resolve(methods[i], &rq, &cfg.sets[i], &err), 0, "%s", err.msg);
        c->expect_kept[i] = -1;
        c->window_from[i] = -1;
        if (cfg.sets[i].evicts && !cfg.sets[i].method->traits.cache_capped) {
            c->expect_kept[i] = cfg.sets[i].prompt_budget;
            c->window_from[i] = S - cfg.sets[i].window_size;
        }
    }
    cfg.nsets = nm;
    c->nsets = nm;
    c->steps = steps;
    c->window_ok = c->kept_ok = 1;
    size_t n = (size_t)nm * 2 * 2 * (size_t)steps;
    c->out = calloc(n * 2 * 32, sizeof(float));
    c->fid = calloc(n * 2 * RKV_FID_N, sizeof(double));
    c->cnt = calloc(n * 2, sizeof(int64_t));
    cr_assert_eq(rkv_run(&cfg, fid, &err), 0, "%s", err.msg);
}

static void capture_free(capture *c, rkv_fidelity *fid, int n)
{
    free(c->out);
    free(c->fid);
    free(c->cnt);
    for (int i = 0; i < n; i++) rkv_fidelity_free(&fid[i]);
}

static const char *const all_methods[] = {"full", "exact-topk", "streaming", "snapkv", "snapkv-gqa",
                                          "quest", "sparq", "hsa", "rocketkv", "rocketkv-mt"};

Test(refimpl, budget_covering_everything_equals_full_exactly, .timeout = 120)
{
    capture c;
    rkv_fidelity fid[10];
    /* S' = 300 + 4 <= t = 304 */
    run_sets(all_methods, 10, 300, 304, 4, 2, &c, fid);
    for (int s = 1; s < 10; s++)
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < 2; h++)
                for (int64_t st = 0; st < 4; st++) {
                    const float *a = c.out + cap_idx(&c, 0, l, h, st) * 64, *b = c.out + cap_idx(&c, s, l, h, st) * 64;
                    cr_assert_eq(memcmp(a, b, 64 * sizeof(float)), 0, "%s differs from full at layer %d head %d step %lld",
                                 all_methods[s], l, h, (long long)st);
                }
    capture_free(&c, fid, 10);
}

Test(refimpl, stage1_keeps_exactly_P_and_the_window, .timeout = 120)
{
    const char *const m[] = {"rocketkv", "snapkv-gqa", "snapkv"};
    capture c;
    rkv_fidelity fid[3];
    run_sets(m, 3, 600, 64, 3, 2, &c, fid);
    cr_assert(c.kept_ok, "a stage-1 row did not keep exactly P prompt tokens");
    cr_assert(c.window_ok, "a stage-1 row lost an observation-window token");
    capture_free(&c, fid, 3);
}

Test(refimpl, exact_topk_has_the_highest_mass_recall, .timeout = 120)
{
    capture c;
    rkv_fidelity fid[10];
    const int64_t t = 96;
    run_sets(all_methods, 10, 700, t, 4, 2, &c, fid);
    size_t n = 2 * 2 * 4;
    int compared = 0;
    for (int s = 2; s < 10; s++)
        for (size_t i = 0; i < n; i++)
            for (int g = 0; g < 2; g++) {
                size_t base = (size_t)s * n + i;
                if (c.cnt[base * 2 + (size_t)g] > t)
                    continue; /* attends more than t tokens (snapkv: P + generated) */
                double other = c.fid[(base * 2 + (size_t)g) * RKV_FID_N + RKV_FID_MASS_RECALL];
                double oracle = c.fid[((size_t)1 * n + i) * 2 * RKV_FID_N + (size_t)g * RKV_FID_N + RKV_FID_MASS_RECALL];
                cr_assert(oracle >= other - 1e-6, "%s beats exact-topk: %g > %g", all_methods[s], other, oracle);
                compared++;
            }
    cr_assert_gt(compared, 100);
    /* and the oracle's top-k recall is 1 by definition */
    cr_assert_float_eq(fid[1].overall[RKV_FID_TOPK_RECALL].min, 1.0, 0);
    capture_free(&c, fid, 10);
}

Test(refimpl, identical_across_runs_and_thread_counts, .timeout = 120)
{
    const char *const m[] = {"rocketkv", "quest", "sparq"};
    capture a, b;
    rkv_fidelity fa[3], fb[3];
    run_sets(m, 3, 500, 64, 3, 1, &a, fa);
    run_sets(m, 3, 500, 64, 3, 2, &b, fb);
    size_t n = 3 * 2 * 2 * 3;
    cr_assert_eq(memcmp(a.out, b.out, n * 64 * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.fid, b.fid, n * 2 * RKV_FID_N * sizeof(double)), 0);
    for (int s = 0; s < 3; s++)
        cr_assert_eq(memcmp(fa[s].overall, fb[s].overall, sizeof fa[s].overall), 0);
    capture_free(&a, fa, 3);
    capture_free(&b, fb, 3);
}

Test(refimpl, groups_share_one_selection)
{
    const char *const m[] = {"rocketkv", "hsa", "snapkv-gqa"};
    capture c;
    rkv_fidelity fid[3];
    run_sets(m, 3, 400, 64, 2, 1, &c, fid);
    /* shared selections report one count for both heads */
    for (size_t i = 0; i < 3 * 2 * 2 * 2; i++)
        cr_assert_eq(c.cnt[i * 2], c.cnt[i * 2 + 1]);
    capture_free(&c, fid, 3);
}

/* Sets run side by side share stage-1 votes (rkv_s1_memo); sharing must not
 * change any result: the same method alone gives the same outputs. */
Test(refimpl, shared_stage1_votes_change_nothing, .timeout = 120)
{
    const char *const three[] = {"snapkv-gqa", "rocketkv", "rocketkv"};
    const char *const one[] = {"rocketkv"};
    capture a, b;
    rkv_fidelity fa[3], fb[1];
    run_sets(three, 3, 800, 64, 3, 2, &a, fa);
    run_sets(one, 1, 800, 64, 3, 2, &b, fb);
    const size_t per_set = 2 * 2 * 3 * 64;
    cr_assert_eq(memcmp(a.out + per_set, b.out, per_set * sizeof(float)), 0);
    cr_assert_eq(memcmp(a.out + 2 * per_set, b.out, per_set * sizeof(float)), 0);
    capture_free(&a, fa, 3);
    capture_free(&b, fb, 1);
}

/* Regression (found in review by the CUDA engineer): a window at least as
 * wide as the prompt budget keeps the last P positions and votes on nothing
 * (it used to compute votes from window queries read with a wrong stride). */
Test(refimpl, stage1_window_wider_than_budget_keeps_the_window_tail)
{
    const int G = 2;
    const int64_t n = 40, w = 8, P = 5;
    float K[40 * 4], V[40 * 4], Qw[2 * 8 * 4];
    for (int i = 0; i < 160; i++) {
        K[i] = (float)((i * 37) % 11) - 5.0f;
        V[i] = 0;
    }
    for (int i = 0; i < 64; i++) Qw[i] = (float)((i * 13) % 7) - 3.0f;
    rkv_head h = tiny_head(K, V, n, G);
    int32_t cand[40], a[2 * 5];
    for (int j = 0; j < 40; j++) cand[j] = 2 * j; /* candidates need not be 0..n-1 */
    void *ws = malloc(rkv_stage1_ws_bytes(n, w, G, 4));
    cr_assert_eq(rkv_stage1_select(&h, cand, n, Qw, w, P, 3, RKV_POOL_MAX, 0, a, ws), P);
    for (int r = 0; r < G; r++)
        for (int j = 0; j < 5; j++)
            cr_assert_eq(a[r * 5 + j], 2 * (35 + j), "row %d slot %d: %d", r, j, a[r * 5 + j]);
    free(ws);
}

/* Stage 1's own exp: within 2 ulp of the correctly rounded value over the
 * whole range softmax uses, exact at 0, zero far below. */
Test(refimpl, stage1_exp_is_accurate)
{
    cr_assert_eq(rkv_stage1_exp(0.0f), 1.0f);
    cr_assert_eq(rkv_stage1_exp(-100.0f), 0.0f);
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f * (float)i / 200000.0f;
        double ref = exp((double)x), got = rkv_stage1_exp(x);
        double rel = fabs(got - ref) / ref;
        if (rel > worst) worst = rel;
    }
    cr_assert_lt(worst, 2.5e-7, "worst relative error %g", worst);
}
