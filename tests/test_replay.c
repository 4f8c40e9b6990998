/* test_replay.c — cuda/replay_host.c, the host side of the trace replayer:
 * the launch plan from the sample traces (and the methods it refuses), slot
 * maps, the position-set comparison with near-tie classification, the
 * tolerance check, medians, the JSON report; and a CPU twin of the replay's
 * data path: regenerate the sample rocketkv trace's workload, run the GPU
 * pipeline's CPU reference (kcu_ref_*, what gpu_check compares the kernels
 * with) over the compacted cache, and require the trace's stage-1 and
 * stage-2 selections exactly. So on a GPU, a replay mismatch is the
 * kernel's, not the replayer's. Runs from the repository root. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcu_ref.h"
#include "kcu_replay.h"
#include "kv_jsonr.h"

#define SAMPLE "traces/samples/rocketkv.trc"

static trc_reader *open_sample(const char *path)
{
    trc_reader *r;
    kv_err err;
    cr_assert_eq(trc_open(path, &r, &err), 0, "%s", err.msg);
    return r;
}

/* The sample (scripts/trace_samples.sh): smollm2-135m (d 64, G 3), S = 300,
 * t = 64, max_new 50, 3 steps, batch 2. By hand (docs/algorithm.md "RocketKV —
 * the budget split"): S' = 350, c = 5.46875, ρ = 0.2 + 0.06·log₂c = 0.34707,
 * c^ρ = 1.80344, capacity = ⌊350/1.80344⌋ = 194, P = 194 − 50 = 144;
 * c₂ = 194/64 = 3.03125, p = ⌈1.741⌉ = 2, r = ⌊64·2/3.03125⌋ = 42, k = 32.
 * The replay's cache starts at C0 = P = 144 and grows to 144 + 3 = 147 slots;
 * 300 + 3 = 303 tokens exist. */
Test(replay, plan_of_the_rocketkv_sample)
{
    trc_reader *r = open_sample(SAMPLE);
    const trc_header *h = trc_get_header(r);
    kcu_replay_plan pl;
    kv_err err;
    cr_assert_eq(kcu_replay_plan_make(h, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(pl.kind, KCU_REPLAY_ROCKETKV);
    cr_assert_eq(pl.B, 2);
    cr_assert_eq(pl.Hkv, 3);
    cr_assert_eq(pl.G, 3);
    cr_assert_eq(pl.d, 64);
    cr_assert_eq(pl.nlayers, 2);
    cr_assert_eq(pl.S, 300);
    cr_assert_eq(pl.steps, 3);
    cr_assert_eq(pl.tokens, 303);
    cr_assert_eq(pl.P, 144);
    cr_assert_eq(pl.C0, 144);
    cr_assert_eq(pl.cap, 147);
    cr_assert_eq(pl.p, 2);
    cr_assert_eq(pl.r, 42);
    cr_assert_eq(pl.k, 32);
    cr_assert_eq(pl.page_granularity, 0);
    cr_assert_eq(pl.npages_cap, 80); /* ⌈147/2⌉ + 1 = 75, rounded up to a multiple of 8 */
    cr_assert_eq(pl.pos_cap, 34);
    cr_assert_float_eq(pl.atol, 1e-4, 0);
    cr_assert_float_eq(pl.rtol, 1e-3, 0);
    /* every recorded step's cache size and position are the plan's */
    trc_step st;
    memset(&st, 0, sizeof st);
    for (int b = 0; b < h->batch; b++)
        for (int64_t s = 0; s < h->steps; s++) {
            cr_assert_eq(trc_read_step(r, b, s, &st, &err), 0, "%s", err.msg);
            cr_assert_eq(st.position, kcu_replay_position(&pl, s));
            for (int i = 0; i < st.nrec; i++)
                cr_assert_eq(st.rec[i].cache_tokens, kcu_replay_cache_tokens(&pl, s));
        }
    trc_step_free(&st);
    trc_close(r);
}

Test(replay, methods_without_kernels_are_refused)
{
    const char *bad[] = {"traces/samples/quest.trc", "traces/samples/snapkv.trc"};
    for (int i = 0; i < 2; i++) {
        trc_reader *r = open_sample(bad[i]);
        kcu_replay_plan pl;
        kv_err err;
        cr_assert_eq(kcu_replay_plan_make(trc_get_header(r), &pl, &err), -1);
        cr_assert(strstr(err.msg, "no CUDA kernels implement it") != NULL, "%s", err.msg);
        trc_close(r);
    }
    /* shapes and options the kernels lack, on a copy of the rocketkv header */
    trc_reader *r = open_sample(SAMPLE);
    trc_header h = *trc_get_header(r);
    kcu_replay_plan pl;
    kv_err err;
    trc_header x = h;
    x.params.local_window = 16;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "local_window 16") != NULL, "%s", err.msg);
    x = h;
    x.d = 96;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "head dim 96") != NULL, "%s", err.msg);
    x = h;
    x.G = 9;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "G = 9") != NULL, "%s", err.msg);
    x = h;
    x.params.kv_dtype = RKV_DTYPE_FP8_E4M3;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "kv_dtype fp8-e4m3") != NULL, "%s", err.msg);
    x = h;
    x.wl.nturns = 2;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "multi-turn") != NULL, "%s", err.msg);
    x = h;
    x.params.pool = RKV_POOL_AVG;
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), -1);
    cr_assert(strstr(err.msg, "avg pooling") != NULL, "%s", err.msg);
    /* hsa: no stage 1, the cache is the whole prompt */
    x = h;
    x.params.method = rkv_method_find("hsa");
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(pl.kind, KCU_REPLAY_HSA);
    cr_assert_eq(pl.C0, 300);
    cr_assert_eq(pl.cap, 303);
    x.params.method = rkv_method_find("full");
    cr_assert_eq(kcu_replay_plan_make(&x, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(pl.kind, KCU_REPLAY_FULL);
    cr_assert_eq(pl.p, 1);
    cr_assert_eq(kcu_replay_cache_tokens(&pl, 2), 303);
    trc_close(r);
}

Test(replay, slot_map_and_lookup)
{
    kcu_replay_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.S = 10;
    pl.C0 = 4;
    pl.steps = 3;
    pl.cap = 7;
    int32_t kept[4] = {0, 3, 7, 9}, map[7];
    cr_assert_eq(kcu_replay_slot_map(&pl, kept, 4, map), 0);
    int32_t want[7] = {0, 3, 7, 9, 10, 11, 12};
    cr_assert_arr_eq(map, want, sizeof want);
    cr_assert_eq(kcu_replay_slot_of(map, 7, 9), 3);
    cr_assert_eq(kcu_replay_slot_of(map, 7, 12), 6);
    cr_assert_eq(kcu_replay_slot_of(map, 7, 5), -1);
    cr_assert_eq(kcu_replay_slot_of(map, 7, 13), -1);
    int32_t unsorted[4] = {0, 7, 3, 9}, outside[4] = {0, 3, 7, 10};
    cr_assert_eq(kcu_replay_slot_map(&pl, unsorted, 4, map), -1);
    cr_assert_eq(kcu_replay_slot_map(&pl, outside, 4, map), -1);
    cr_assert_eq(kcu_replay_slot_map(&pl, kept, 3, map), -1); /* count must be C0 */
    pl.C0 = 10; /* nothing evicted: kept == NULL is 0 .. S-1 */
    pl.cap = 13;
    int32_t full[13];
    cr_assert_eq(kcu_replay_slot_map(&pl, NULL, 0, full), 0);
    for (int i = 0; i < 13; i++)
        cr_assert_eq(full[i], i);
}

Test(replay, set_comparison_exact_near_tie_and_mismatch)
{
    /* 7 pages of p = 3 over 20 slots; scores per page */
    const double score[7] = {0.30, 0.10, 0.25, 0.05, 0.2500000000001, 0.01, 0.12};
    int64_t scr[14];
    kcu_replay_setcmp o;
    /* ref takes pages 0 and 2 (+ first slot of page 6 as the boundary): identical got */
    const int32_t ref[7] = {0, 1, 2, 6, 7, 8, 18};
    kcu_replay_compare_sets(ref, 7, ref, 7, 7, 3, score, 1e-9, scr, &o);
    cr_assert_eq(o.ndiff, 0);
    cr_assert_eq(o.nbad, 0);
    cr_assert_eq(o.nnear, 0);
    cr_assert_eq(o.first_bad, -1);
    /* got swaps page 2 (0.25) for page 4 (0.25 + 1e-13): two near-tie flips; T = 0.12 (page 6) */
    const int32_t ref2[6] = {0, 1, 2, 6, 7, 8};
    const int32_t near[6] = {0, 1, 2, 12, 13, 14};
    kcu_replay_compare_sets(ref2, 6, near, 6, 7, 3, score, 1e-9, scr, &o);
    cr_assert_eq(o.ndiff, 2);
    cr_assert_eq(o.nnear, 2); /* T is page 2's 0.25 itself: both within 1e-9 */
    cr_assert_eq(o.nbad, 0);
    cr_assert(o.max_near_gap > 0 && o.max_near_gap < 1e-9, "%g", o.max_near_gap);
    /* got swaps page 2 for page 1 (0.10): page 1 is a real mismatch, with its
     * gap; page 2 (the threshold itself) counts as a near-tie, per candidate as
     * kcu_compare_takes does: a real swap always leaves one far candidate */
    const int32_t far[6] = {0, 1, 2, 3, 4, 5};
    kcu_replay_compare_sets(ref2, 6, far, 6, 7, 3, score, 1e-9, scr, &o);
    cr_assert_eq(o.ndiff, 2);
    cr_assert_eq(o.nbad, 1);
    cr_assert_eq(o.nnear, 1);
    cr_assert_eq(o.first_bad, 1);
    cr_assert_float_eq(o.first_bad_gap, (0.25 - 0.10) / 0.25, 1e-12);
    /* no scores: every difference is a mismatch */
    kcu_replay_compare_sets(ref2, 6, near, 6, 7, 3, NULL, 1e-9, scr, &o);
    cr_assert_eq(o.nbad, 2);
    /* invalid got lists: out of range, unsorted, repeated */
    const int32_t bad[4] = {0, 25, 2, 2};
    kcu_replay_compare_sets(ref2, 6, bad, 4, 7, 3, score, 1e-9, scr, &o);
    cr_assert_eq(o.ninvalid, 3);
    cr_assert(o.nbad >= 3);
    /* partial page: ref takes 2 slots of page 6, got 1 -> that page differs */
    const int32_t r3[2] = {18, 19}, g3[1] = {18};
    kcu_replay_compare_sets(r3, 2, g3, 1, 7, 3, score, 1e-9, scr, &o);
    cr_assert_eq(o.ndiff, 1);
    cr_assert_eq(o.nnear, 1); /* its own score is the threshold */
    kcu_replay_setcmp a;
    memset(&a, 0, sizeof a);
    a.first_bad = -1;
    kcu_replay_compare_sets(ref2, 6, far, 6, 7, 3, score, 1e-9, scr, &o);
    kcu_replay_setcmp_add(&a, &o);
    kcu_replay_setcmp_add(&a, &o);
    cr_assert_eq(a.nbad, 2);
    cr_assert_eq(a.first_bad, 1);
}

Test(replay, tolerance_and_median)
{
    const double ref[5] = {1.0, -2.0, 0.5, 1e-5, 100.0};
    const float got[5] = {1.0005f, -2.0f, 0.5f + 2e-3f, 1e-5f + 5e-5f, NAN};
    kcu_replay_tol t;
    memset(&t, 0, sizeof t);
    kcu_replay_tol_check(got, ref, 5, 1e-4, 1e-3, &t);
    cr_assert_eq(t.n, 5);
    cr_assert_eq(t.nnan, 1);
    cr_assert_eq(t.nbad, 2); /* 0.5 + 2e-3 is outside 1e-4 + 5e-4; and the NaN */
    cr_assert(isinf(t.max_abs));
    double x[6] = {5, 1, 4, 2, 3, 9};
    cr_assert_float_eq(kcu_replay_median(x, 6), 3.5, 0);
    double y[3] = {7, -1, 2};
    cr_assert_float_eq(kcu_replay_median(y, 3), 2, 0);
    cr_assert(isnan(kcu_replay_median(y, 0)));
}

Test(replay, report_json_is_strict_json)
{
    static kcu_replay_report r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace, sizeof r.trace, "t.trc");
    snprintf(r.device, sizeof r.device, "none (test)");
    r.checked = 1;
    kcu_replay_check *c = kcu_replay_add_check(&r, "stage1");
    c->pass = 1;
    c->sets.nnear = 2;
    c->sets.max_near_gap = 3e-12;
    c = kcu_replay_add_check(&r, "layer0/outputs");
    c->pass = 0;
    c->tol.max_abs = INFINITY; /* a NaN output: written as null */
    kcu_replay_time *t = kcu_replay_add_time(&r, "step", "rocketkv", 2, 147);
    t->median_s = 1.5e-5;
    t->reps = 20;
    cr_assert_eq(kcu_replay_all_pass(&r), 0);
    char *buf = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&buf, &n);
    kcu_replay_report_json(&r, fp);
    fclose(fp);
    kv_jsonr_doc d;
    kv_err err;
    cr_assert_eq(kv_jsonr_load_mem(&d, "report", buf, n, &err), 0, "%s\n%s", err.msg, buf);
    const kv_jsonr_node *checks = kv_jsonr_get(d.root, "checks");
    cr_assert(checks && checks->n == 2);
    cr_assert_eq(kv_jsonr_get(checks->items[0], "near_tie_flips")->num, 2);
    cr_assert_eq(kv_jsonr_get(checks->items[1], "max_abs_err")->kind, KV_JSONR_NULL);
    cr_assert_eq(kv_jsonr_get(d.root, "all_checks_pass")->boolean, 0);
    cr_assert_eq(kv_jsonr_get(kv_jsonr_get(d.root, "timings")->items[0], "cache_tokens")->num, 147);
    kv_jsonr_free(&d);
    free(buf);
    for (int i = 2; i < KCU_REPLAY_MAX_CHECKS; i++)
        cr_assert_not_null(kcu_replay_add_check(&r, "x"));
    cr_assert_null(kcu_replay_add_check(&r, "one too many"));
}

/* The replay's data path on the CPU: what replay.cu uploads, run through the
 * GPU pipeline's CPU reference, must reproduce the trace exactly. */
Test(replay, cpu_twin_reproduces_the_rocketkv_sample, .timeout = 60)
{
    trc_reader *r = open_sample(SAMPLE);
    const trc_header *h = trc_get_header(r);
    kcu_replay_plan pl;
    kv_err err;
    cr_assert_eq(kcu_replay_plan_make(h, &pl, &err), 0, "%s", err.msg);
    const int d = pl.d, G = pl.G;
    const int64_t T = pl.tokens, S = pl.S, w = pl.w;
    uint16_t *K = malloc((size_t)T * d * 2), *V = malloc((size_t)T * d * 2);
    uint16_t *Kc = malloc((size_t)pl.cap * d * 2), *Vc = malloc((size_t)pl.cap * d * 2);
    float *Kf = malloc((size_t)T * d * 4), *Vf = malloc((size_t)T * d * 4), *Qw = malloc((size_t)G * w * d * 4);
    float *q = malloc((size_t)G * d * 4);
    double *votes = malloc((size_t)S * 8), *pooled = malloc((size_t)S * 8), *z = malloc((size_t)G * pl.npages_cap * 8);
    double *avg = malloc((size_t)pl.npages_cap * 8), gsum[128], tau[8], dscr[4 * 128], out[8 * 128];
    int32_t *kept = malloc((size_t)pl.P * 4), *map = malloc((size_t)pl.cap * 4), *sel = malloc((size_t)(pl.pos_cap + pl.p) * 4);
    int32_t *refslots = malloc((size_t)pl.cap * 4), dims[128];
    uint16_t *aux = malloc((size_t)kcu_aux_rows(d, pl.p) * pl.npages_cap * 2);
    void *s1scr = malloc((size_t)S * 24);
    uint64_t *keys = malloc((size_t)S * 8);
    int64_t *take = malloc((size_t)S * 8), *wts = malloc((size_t)S * 8), *cscr = malloc((size_t)S * 16);
    trc_stage1 s1;
    trc_step st;
    memset(&s1, 0, sizeof s1);
    memset(&st, 0, sizeof st);
    kcu_replay_setcmp all1, all2;
    memset(&all1, 0, sizeof all1);
    memset(&all2, 0, sizeof all2);
    all1.first_bad = all2.first_bad = -1;
    int64_t dims_bad = 0, compared = 0;
    for (int b = 0; b < pl.B; b++) {
        cr_assert_eq(trc_read_stage1(r, b, &s1, &err), 0, "%s", err.msg);
        for (int li = 0; li < pl.nlayers; li++)
            for (int kvh = 0; kvh < pl.Hkv; kvh++) {
                const int layer = h->layers[li];
                cr_assert_eq(kcu_replay_gen_kv(h, &pl, b, layer, kvh, K, V, Kf, Vf, &err), 0, "%s", err.msg);
                /* stage 1: window queries (G, w, d) of positions S-w .. S-1 */
                for (int64_t i = 0; i < w; i++) {
                    kcu_replay_gen_query(h, b, layer, kvh, S - w + i, 0, q);
                    for (int g = 0; g < G; g++)
                        memcpy(Qw + ((size_t)g * w + i) * d, q + (size_t)g * d, (size_t)d * 4);
                }
                int64_t nk = kcu_ref_stage1(K, S, d, G, Qw, w, pl.P, pl.kernel, votes, pooled, kept, s1scr);
                cr_assert_eq(nk, pl.P);
                const trc_stage1_rec *tr = &s1.rec[li * pl.Hkv + kvh];
                kcu_replay_setcmp o;
                kcu_replay_compare_sets(tr->pos[0], tr->count[0], kept, nk, S, 1, pooled, 1e-4, cscr, &o);
                kcu_replay_setcmp_add(&all1, &o);
                /* the cache the GPU holds: the trace's kept list, then the generated tokens */
                cr_assert_eq(kcu_replay_slot_map(&pl, tr->pos[0], tr->count[0], map), 0);
                kcu_replay_compact(K, map, pl.cap, d, Kc);
                kcu_replay_compact(V, map, pl.cap, d, Vc);
                for (int64_t s = 0; s < pl.steps; s++) {
                    const int64_t C = kcu_replay_cache_tokens(&pl, s), np = kcu_npages(C, pl.p);
                    cr_assert_eq(trc_read_step(r, b, s, &st, &err), 0, "%s", err.msg);
                    const trc_record *rec = trc_step_find(r, &st, layer, kvh);
                    cr_assert_not_null(rec);
                    cr_assert(rec->shared);
                    kcu_replay_gen_query(h, b, layer, kvh, kcu_replay_position(&pl, s), 1, q);
                    kcu_ref_pages_build(Kc, C, d, pl.p, pl.npages_cap, aux);
                    int rr = kcu_ref_hsa_dims(q, G, d, pl.r, dims, gsum, tau, dscr);
                    cr_assert_eq(rr, rec->ndims);
                    for (int i = 0; i < rr; i++)
                        dims_bad += rec->dims[0][i] != dims[i];
                    kcu_ref_hsa_page_scores(aux, pl.npages_cap, d, pl.p, G, q, dims, rr, gsum, tau, np, z);
                    kcu_ref_hsa_average(z, G, np, C, pl.p, avg);
                    int64_t n = kcu_ref_hsa_select(avg, np, C, pl.p, pl.k, pl.page_granularity, sel, keys, take, wts);
                    for (int64_t i = 0; i < rec->count[0]; i++) {
                        refslots[i] = (int32_t)kcu_replay_slot_of(map, C, rec->pos[0][i]);
                        cr_assert_geq(refslots[i], 0, "trace position %d is not in the cache", rec->pos[0][i]);
                    }
                    kcu_replay_compare_sets(refslots, rec->count[0], sel, n, np, pl.p, avg, 1e-9, cscr, &o);
                    kcu_replay_setcmp_add(&all2, &o);
                    /* the attention over that selection is finite */
                    kcu_ref_attend(Kc, Vc, d, G, q, sel, n, out);
                    for (int i = 0; i < G * d; i++)
                        cr_assert(isfinite(out[i]));
                    compared++;
                }
            }
    }
    cr_assert_eq(compared, 2 * 2 * 3 * 3);
    cr_assert_eq(all1.nbad, 0, "stage 1: %lld mismatches (first candidate %lld, gap %g)", (long long)all1.nbad,
                 (long long)all1.first_bad, all1.first_bad_gap);
    cr_assert_eq(all2.nbad, 0, "stage 2: %lld mismatches (first page %lld, gap %g)", (long long)all2.nbad,
                 (long long)all2.first_bad, all2.first_bad_gap);
    cr_assert_eq(dims_bad, 0);
    cr_assert_eq(all2.nref, all2.ngot);
    trc_stage1_free(&s1);
    trc_step_free(&st);
    trc_close(r);
    free(K); free(V); free(Kc); free(Vc); free(Kf); free(Vf); free(Qw); free(q); free(votes); free(pooled);
    free(z); free(avg); free(kept); free(map); free(sel); free(refslots); free(aux); free(s1scr); free(keys);
    free(take); free(wts); free(cscr);
}

/* The comparison is not vacuous: the same stage-2 step with another
 * sequence's query selects other pages, and the check says so. */
Test(replay, cpu_twin_flags_a_wrong_query)
{
    trc_reader *r = open_sample(SAMPLE);
    const trc_header *h = trc_get_header(r);
    kcu_replay_plan pl;
    kv_err err;
    cr_assert_eq(kcu_replay_plan_make(h, &pl, &err), 0, "%s", err.msg);
    const int d = pl.d, G = pl.G, layer = h->layers[0];
    const int64_t C = kcu_replay_cache_tokens(&pl, 0), np = kcu_npages(C, pl.p);
    uint16_t *K = malloc((size_t)pl.tokens * d * 2), *V = malloc((size_t)pl.tokens * d * 2);
    uint16_t *Kc = malloc((size_t)pl.cap * d * 2);
    float *Kf = malloc((size_t)pl.tokens * d * 4), *Vf = malloc((size_t)pl.tokens * d * 4), q[8 * 128];
    uint16_t *aux = malloc((size_t)kcu_aux_rows(d, pl.p) * pl.npages_cap * 2);
    double z[8 * 256], avg[256], gsum[128], tau[8], dscr[4 * 128];
    int32_t map[512], sel[512], refslots[512], dims[128];
    uint64_t keys[512];
    int64_t take[512], wts[512], scr[1024];
    cr_assert(pl.cap <= 512 && np <= 256);
    trc_stage1 s1;
    trc_step st;
    memset(&s1, 0, sizeof s1);
    memset(&st, 0, sizeof st);
    cr_assert_eq(trc_read_stage1(r, 0, &s1, &err), 0, "%s", err.msg);
    cr_assert_eq(trc_read_step(r, 0, 0, &st, &err), 0, "%s", err.msg);
    const trc_record *rec = trc_step_find(r, &st, layer, 0);
    cr_assert_eq(kcu_replay_gen_kv(h, &pl, 0, layer, 0, K, V, Kf, Vf, &err), 0, "%s", err.msg);
    cr_assert_eq(kcu_replay_slot_map(&pl, s1.rec[0].pos[0], s1.rec[0].count[0], map), 0);
    kcu_replay_compact(K, map, pl.cap, d, Kc);
    for (int64_t i = 0; i < rec->count[0]; i++)
        refslots[i] = (int32_t)kcu_replay_slot_of(map, C, rec->pos[0][i]);
    kcu_replay_setcmp o[2];
    for (int wrong = 0; wrong < 2; wrong++) {
        kcu_replay_gen_query(h, wrong, layer, 0, kcu_replay_position(&pl, 0), 1, q);
        kcu_ref_pages_build(Kc, C, d, pl.p, pl.npages_cap, aux);
        int rr = kcu_ref_hsa_dims(q, G, d, pl.r, dims, gsum, tau, dscr);
        kcu_ref_hsa_page_scores(aux, pl.npages_cap, d, pl.p, G, q, dims, rr, gsum, tau, np, z);
        kcu_ref_hsa_average(z, G, np, C, pl.p, avg);
        int64_t n = kcu_ref_hsa_select(avg, np, C, pl.p, pl.k, pl.page_granularity, sel, keys, take, wts);
        kcu_replay_compare_sets(refslots, rec->count[0], sel, n, np, pl.p, avg, 1e-9, scr, &o[wrong]);
    }
    cr_assert_eq(o[0].nbad, 0);
    cr_assert_eq(o[0].ndiff, 0);
    cr_assert_gt(o[1].nbad, 0, "sequence 1's query selected the same pages as sequence 0's");
    cr_assert_geq(o[1].first_bad, 0);
    cr_assert_gt(o[1].first_bad_gap, 1e-9);
    trc_stage1_free(&s1);
    trc_step_free(&st);
    trc_close(r);
    free(K); free(V); free(Kc); free(Kf); free(Vf); free(aux);
}
