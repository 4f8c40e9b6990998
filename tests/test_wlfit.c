/* test_wlfit.c — attention statistics (workload/wl_profile.c) on inputs whose
 * attention is known by hand, the fitted generator's logit contract (a class
 * weight a on a feature adds exactly a to q.k/sqrt(d)), and the fitted YAML's
 * reader and writer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"
#include "wl.h"
#include "wlfit_util.h"

/* All keys zero: every score is 0, attention is uniform over the p + 1 keys. */
Test(wlfit, uniform_attention_statistics_by_hand)
{
    const int d = 16;
    const int64_t C = 512, w = 32, steps = 4, n = C + steps, nq = w + steps;
    float *K = calloc((size_t)n * d, sizeof *K), *Q = malloc((size_t)nq * d * sizeof *Q);
    float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws);
    for (int64_t i = 0; i < nq * d; i++) Q[i] = (float)((i % 7) - 3);
    wl_head_stats s;
    wl_head_measure(K, Q, d, C, w, steps, &s, ws);
    double topk[WL_NK] = {0}, sink = 0, loc = 0, vm = 0;
    for (int64_t st = 0; st < steps; st++) {
        double np = (double)(C + st + 1);
        for (int k = 0; k < WL_NK; k++) topk[k] += fmin(wl_topk_k[k], np) / np / steps;
        sink += 4.0 / np / steps;
        loc += 64.0 / np / steps;
        /* kept: the first C/8 prefix positions (equal votes: lower index wins), the window, the new tokens */
        vm += ((double)C / 8 + w + (double)st + 1) / np / steps;
    }
    cr_assert_float_eq(s.entropy, 1.0, 1e-6);
    for (int k = 0; k < WL_NK; k++) cr_assert_float_eq(s.topk_mass[k], topk[k], 1e-5, "k=%d", wl_topk_k[k]);
    cr_assert_float_eq(s.sink_mass, sink, 1e-6);
    cr_assert_float_eq(s.local_mass, loc, 1e-6);
    cr_assert_float_eq(s.vote_mass, vm, 1e-6);
    cr_assert_float_eq(s.hh_persist, 1.0, 1e-12);  /* the same lowest 64 every step */
    cr_assert_float_eq(s.vote_recall, 1.0, 1e-12); /* positions 0..63 are kept */
    cr_assert_float_eq(s.page_recall, 1.0, 1e-6);
    cr_assert_float_eq(s.page_gap, 0.0, 1e-12);
    cr_assert_float_eq(s.recent_topk, 4.0 / 128.0, 1e-12); /* the top 128 are positions 0..127: only 0..3 count */
    free(K);
    free(Q);
    free(ws);
}

/* One key aligned with every query: mass e^a / (e^a + p) on it, by hand. */
Test(wlfit, single_spike_mass)
{
    const int d = 16;
    const int64_t C = 256, w = 32, steps = 2, n = C + steps, nq = w + steps;
    float *K = calloc((size_t)n * d, sizeof *K), *Q = calloc((size_t)nq * d, sizeof *Q);
    float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws);
    K[0] = 1.0f;                                        /* key 0 = e_0 */
    for (int64_t i = 0; i < nq; i++) Q[i * d] = 12.0f;  /* q.k0/sqrt(16) = 3 */
    wl_head_stats s;
    wl_head_measure(K, Q, d, C, w, steps, &s, ws);
    double top1 = 0, sink = 0; /* positions 1..3 score 0 like the rest */
    for (int64_t st = 0; st < steps; st++) {
        top1 += exp(3.0) / (exp(3.0) + (double)(C + st)) / steps;
        sink += (exp(3.0) + 3.0) / (exp(3.0) + (double)(C + st)) / steps;
    }
    cr_assert_float_eq(s.sink_mass, sink, 1e-6);
    cr_assert_float_eq(s.topk_mass[0], top1, 1e-6);
    free(K);
    free(Q);
    free(ws);
}

/* sparq_share by hand: d = 16, so r = 1 channel. Keys alternate ±1 on channel
 * 0 and ±2 on channel 1 (variances 1 and 4), 0 elsewhere; every query is
 * (3, 1, 0, …) or (1, -3, 0, …) by step: Σ q_i²·var_i = 9 + 4 = 13 and 1 + 36 = 37;
 * the largest |q_i| is channel 0 (share 9/13), then channel 1 (share 36/37). */
Test(wlfit, sparq_share_by_hand)
{
    const int d = 16;
    const int64_t C = 256, w = 32, steps = 2, n = C + steps, nq = w + steps;
    float *K = calloc((size_t)n * d, sizeof *K), *Q = calloc((size_t)nq * d, sizeof *Q);
    float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws);
    for (int64_t t = 0; t < n; t++) {
        K[t * d] = t % 2 ? 1.0f : -1.0f;
        K[t * d + 1] = t % 2 ? -2.0f : 2.0f;
    }
    for (int64_t i = 0; i < nq; i++) {
        int second = i >= w && (i - w) % 2 == 1;
        Q[i * d] = second ? 1.0f : 3.0f;
        Q[i * d + 1] = second ? -3.0f : 1.0f;
    }
    wl_head_stats s;
    wl_head_measure(K, Q, d, C, w, steps, &s, ws);
    cr_assert_float_eq(s.sparq_share, 0.5 * (9.0 / 13.0 + 36.0 / 37.0), 1e-9, "%g", s.sparq_share);
    free(K);
    free(Q);
    free(ws);
}

/* Page spread by hand, 256 rows of d = 3: channel 0 alternates ±1 (every page
 * of 16 spans 2, std 1: ratio 2), channel 1 is the ramp 0, 1, …, 255 (each
 * page spans 15, std √((256² − 1)/12)), channel 2 is constant (skipped). */
Test(wlfit, page_spread_by_hand)
{
    float X[256 * 3];
    for (int j = 0; j < 256; j++) {
        X[j * 3] = j % 2 ? 1.0f : -1.0f;
        X[j * 3 + 1] = (float)j;
        X[j * 3 + 2] = 7.0f;
    }
    const double ramp = 15.0 / sqrt((256.0 * 256.0 - 1.0) / 12.0);
    cr_assert_float_eq(wl_page_spread(X, 256, 3), 0.5 * (2.0 + ramp), 1e-6);
}

Test(wlfit, channel_outlier_ratio)
{
    float X[4 * 5];
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 5; i++) X[j * 5 + i] = i == 2 ? (j % 2 ? -10.0f : 10.0f) : (j % 2 ? 1.0f : -1.0f);
    cr_assert_float_eq(wl_channel_outlier(X, 4, 5), 10.0, 1e-9); /* RMS 10 over a median of 1 */
}

/* A class weight a on the sink alone: the sink key scores a·cos(p·θ_{d/2-1}) (the
 * lowest RoPE frequency turns it), every other key exactly 0 (disjoint dims). */
Test(wlfit, fitted_sink_weight_is_its_logit)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "s", .sink = 5.0});
    const int d = m.head_dim;
    const int64_t n = 300, p = 299;
    double sc[2 * 300];
    head_logits(&wl, &m, n, p, sc);
    const double theta = pow(10000.0, -2.0 * (d / 2 - 1) / d);
    for (int g = 0; g < 2; g++)
        for (int64_t t = 0; t < n; t++) {
            const double want = t == 0 ? 5.0 * cos((double)p * theta) : 0.0;
            cr_assert_float_eq(sc[g * n + t], want, 1e-4, "head %d key %lld: %g, want %g", g, (long long)t,
                               sc[g * n + t], want);
        }
}

/* The sink key carries no recency features: with recency weights on every band
 * and the ladder on, the sink key still scores exactly a·cos(p·θ_{d/2-1}) at
 * every query position (before the fix it also took the ladder's kernel at
 * distance p, a ripple of the sink's logit with the context length). */
Test(wlfit, fitted_sink_logit_has_no_recency)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "s", .sink = 5.0, .rec = {2.0, 3.0, 4.0}});
    wl.rec_ladder = 1;
    wl.rec_span[0] = 1;
    wl.rec_span[1] = 32;
    wl.rec_span[2] = 2048;
    wl.sink_key_scale = 2.0;
    const int d = m.head_dim;
    const double theta = pow(10000.0, -2.0 * (d / 2 - 1) / d);
    const int64_t ps[] = {40, 299, 1500, 2047};
    for (int i = 0; i < 4; i++) {
        const int64_t p = ps[i], n = p + 1;
        double *sc = malloc(2 * (size_t)n * sizeof *sc);
        head_logits(&wl, &m, n, p, sc);
        for (int g = 0; g < 2; g++)
            cr_assert_float_eq(sc[g * n], 5.0 * cos((double)p * theta), 1e-4, "p %lld head %d: sink key %g, want %g",
                               (long long)p, g, sc[g * n], 5.0 * cos((double)p * theta));
        cr_assert(fabs(sc[p] - 9.0) < 0.5, "p %lld: the newest key scores %g, want about the summed band weights 9",
                  (long long)p, sc[p]);
        free(sc);
    }
}

/* The channel spectrum (chan_spread > 0) moves content and noise onto every
 * pair but the sink and heavy-hitter pairs: the sink's logit contract holds
 * as before (the sink query has weight on the sink pair only). */
Test(wlfit, fitted_sink_contract_with_channel_spectrum)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "s", .sink = 3.0});
    wl.chan_spread = 1.5;
    wl.key_noise = 0.5;
    const int d = m.head_dim;
    const int64_t n = 200, p = 199;
    float *K = malloc((size_t)n * d * sizeof *K), *V = malloc((size_t)n * d * sizeof *V), q[2 * 32];
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    rkv_workload_query(&wl, &m, 0, 0, p, 0, 1, q);
    const double theta = pow(10000.0, -2.0 * (d / 2 - 1) / d);
    double var0 = 0.0; /* the keys do vary on the highest-frequency pair now (content + noise) */
    for (int64_t t = 0; t < n; t++) {
        double sc = 0;
        for (int i = 0; i < d; i++) sc += (double)q[i] * K[t * d + i];
        sc /= sqrt((double)d);
        cr_assert_float_eq(sc, t == 0 ? 3.0 * cos((double)p * theta) : 0.0, 1e-4, "key %lld: %g", (long long)t, sc);
        var0 += (double)K[t * d] * K[t * d] / (double)n;
    }
    cr_assert(var0 > 0.05, "channel 0 key power %g: the spectrum puts content there", var0);
    free(K);
    free(V);
}

/* Recency weight a: a key at the query's own position scores a exactly (every
 * Fourier feature's cosine is 1 at distance 0); far keys average to ~0. */
Test(wlfit, fitted_recency_decays)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "r", .rec = {4.0, 0, 0}});
    const int d = m.head_dim;
    const int64_t n = 2048;
    float *K = malloc((size_t)n * d * sizeof *K), *V = malloc((size_t)n * d * sizeof *V), q[2 * 32];
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    double far = 0;
    for (int64_t p = 1024; p < 2048; p += 64) {
        rkv_workload_query(&wl, &m, 0, 0, p, 0, 1, q);
        double self = 0, f = 0;
        for (int i = 0; i < d; i++) self += (double)q[i] * K[p * d + i];
        cr_assert_float_eq(self / sqrt((double)d), 4.0, 1e-3);
        for (int64_t t = 0; t < 512; t++) {
            double s = 0;
            for (int i = 0; i < d; i++) s += (double)q[i] * K[t * d + i];
            f += s / sqrt((double)d) / 512;
        }
        far += f / 16;
    }
    cr_assert(fabs(far) < 0.4, "mean far score %g (the weight is 4)", far);
    free(K);
    free(V);
}

/* The recency ladder (rec_kernel: ladder): with weights on the recency bands
 * only, a query at p and a key at t score Σ_b (w_b/n_b)·Σ_{j in b} cos(ω_j·(p − t)),
 * the rungs ω_j = (1/s0)·(s0/s2)^(j/(m−1)), j < m = d/4, and rung j in the band
 * whose span is nearest 1/ω_j in log scale — all recomputed here from that rule. */
Test(wlfit, ladder_recency_is_its_cosine_sum)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "r", .rec = {3.0, 2.0, 1.5}});
    wl.rec_ladder = 1;
    wl.rec_span[0] = 1;
    wl.rec_span[1] = 32;
    wl.rec_span[2] = 2048;
    const int d = m.head_dim, nr = d / 4;
    double om[64];
    int band[64], nb[3] = {0, 0, 0};
    for (int j = 0; j < nr; j++) {
        double span = pow(2048.0, (double)j / (nr - 1));
        om[j] = 1.0 / span;
        band[j] = span < sqrt(32.0) ? 0 : span < sqrt(32.0 * 2048.0) ? 1 : 2;
        nb[band[j]]++;
    }
    int got[3];
    rkv_fitted_rec_bands(&wl, d, got);
    for (int b = 0; b < 3; b++) cr_assert_eq(got[b], nb[b], "band %d: %d rungs, want %d", b, got[b], nb[b]);
    const int64_t n = 3000;
    float *K = malloc((size_t)n * d * sizeof *K), *V = malloc((size_t)n * d * sizeof *V), q[2 * 32];
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    for (int64_t p = 2000; p < n; p += 397) {
        rkv_workload_query(&wl, &m, 0, 0, p, 0, 1, q);
        for (int64_t t = 0; t <= p; t += 7) {
            double sc = 0, want = 0;
            for (int i = 0; i < d; i++) sc += (double)q[i] * K[t * d + i];
            for (int j = 0; j < nr && t >= wl.sink_tokens; j++) /* the sink key has none (fitted_sink_logit_has_no_recency) */
                want += wl.cls[0].rec[band[j]] / nb[band[j]] * cos(om[j] * (double)(p - t));
            /* the key's other features (content, topics, heavy hitters) sit on other pairs: they add nothing */
            cr_assert_float_eq(sc / sqrt((double)d), want, 2e-3, "p %lld t %lld: %g, want %g", (long long)p,
                               (long long)t, sc / sqrt((double)d), want);
        }
    }
    free(K);
    free(V);
}

/* The top-k masses come from a selection, not a sort: equal to the sums of
 * the k largest weights of a softmax sorted here (qsort), on random scores. */
static int desc_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

Test(wlfit, topk_mass_equals_sorted_sums)
{
    const int d = 16;
    const int64_t C = 1500, w = 32, steps = 3, n = C + steps, nq = w + steps;
    float *K = malloc((size_t)n * d * sizeof *K), *Q = malloc((size_t)nq * d * sizeof *Q);
    float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws), *pr = malloc((size_t)n * sizeof *pr);
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    for (int64_t i = 0; i < n * d; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        K[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        if (i % 97 == 0) K[i] = K[i - (i > 0)]; /* some equal scores */
    }
    for (int64_t i = 0; i < nq * d; i++) Q[i] = K[(i * 31) % (n * d)];
    wl_head_stats s;
    wl_head_measure(K, Q, d, C, w, steps, &s, ws);
    double want[WL_NK] = {0};
    for (int64_t st = 0; st < steps; st++) {
        const int64_t p = C + st;
        const float *q = Q + (w + st) * d;
        double mx = -INFINITY, z = 0;
        for (int64_t j = 0; j <= p; j++) {
            float a = 0; /* the same float dot product order as sgemm need not give: compare at 1e-5 */
            for (int i = 0; i < d; i++) a += q[i] * K[j * d + i];
            pr[j] = a / 4.0f;
            mx = pr[j] > mx ? pr[j] : mx;
        }
        for (int64_t j = 0; j <= p; j++) z += exp(pr[j] - mx);
        for (int64_t j = 0; j <= p; j++) pr[j] = (float)(exp(pr[j] - mx) / z);
        qsort(pr, (size_t)(p + 1), sizeof *pr, desc_f);
        for (int k = 0; k < WL_NK; k++) {
            double a = 0;
            for (int64_t r = 0; r < wl_topk_k[k] && r <= p; r++) a += pr[r];
            want[k] += a / steps;
        }
    }
    for (int k = 0; k < WL_NK; k++) cr_assert_float_eq(s.topk_mass[k], want[k], 1e-5, "k=%d: %g vs %g", wl_topk_k[k], s.topk_mass[k], want[k]);
    free(K);
    free(Q);
    free(ws);
    free(pr);
}

/* far_topk, local4_mass and mid_mass by hand: all keys zero, C = 2048: the
 * top 128 are positions 0..127 (ties to the lower index), of which 4..127 are
 * at least 1024 from every query (p >= 2048): 124/128; the newest 4 hold
 * 4/(p+1), the 448 positions 64 .. 511 back 448/(p+1). */
Test(wlfit, far_topk_local4_and_mid_mass_by_hand)
{
    const int d = 16;
    const int64_t C = 2048, w = 32, steps = 3, n = C + steps, nq = w + steps;
    float *K = calloc((size_t)n * d, sizeof *K), *Q = malloc((size_t)nq * d * sizeof *Q);
    float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws);
    for (int64_t i = 0; i < nq * d; i++) Q[i] = (float)((i % 5) - 2);
    wl_head_stats s;
    wl_head_measure(K, Q, d, C, w, steps, &s, ws);
    double loc4 = 0;
    for (int64_t st = 0; st < steps; st++) loc4 += 4.0 / (double)(C + st + 1) / steps;
    cr_assert_float_eq(s.far_topk, 124.0 / 128.0, 1e-12);
    cr_assert_float_eq(s.mid_mass, (512.0 - 64.0) / (double)(C + 1) / 3 + (512.0 - 64.0) / (double)(C + 2) / 3 +
                                       (512.0 - 64.0) / (double)(C + 3) / 3, 1e-7);
    cr_assert_float_eq(s.local4_mass, loc4, 1e-7);
    free(K);
    free(Q);
    free(ws);
}

Test(wlfit, ladder_yaml_round_trip_and_errors)
{
    rkv_workload a = one_class((rkv_head_class){.name = "l", .rec = {1, 2, 3}, .persistence = 0.5});
    a.rec_ladder = 1;
    a.rec_span[0] = 1;
    a.rec_span[1] = 32;
    a.rec_span[2] = 2048;
    kv_err err;
    const char *path = "build/test_wlfit_ladder.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.rec_ladder, 1);
    cr_assert_float_eq(b.rec_span[2], 2048.0, 1e-12);
    const char *cls = "classes:\n  - {name: a, sink: 1, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, "
                      "persistence: 0.5}\nclass_map:\n  - [a]\n";
    FILE *fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\n%s", cls); /* no rec_kernel: the first profiles' rff */
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.rec_ladder, 0);
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\nrec_kernel: cauchy\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg,
                     "build/test_wlfit_ladder.yaml:3:13: key 'rec_kernel': expected 'rff', 'ladder', 'pairs' or 'heads', got 'cauchy'");
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 512, 48]\nrec_kernel: ladder\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_ladder.yaml:2:11: key 'rec_span': rec_kernel 'ladder' needs increasing "
                              "spans, got [4, 512, 48]");
    remove(path);
}

Test(wlfit, fitted_yaml_round_trip_and_errors)
{
    rkv_workload a = one_class((rkv_head_class){.name = "sink-0", .sink = 3.25, .hh = -1.5, .rec = {1, 2, 3},
                                                .focus = 0.5, .content = 1.25, .noise = 0.1, .persistence = 0.4});
    a.nclasses = 2;
    a.cls[1] = (rkv_head_class){.name = "local-1", .rec = {6, 0, 0}, .persistence = 1};
    a.chan_spread = 0.75;
    a.map_layers = 2;
    a.map_heads = 3;
    const uint8_t map[2][3] = {{0, 1, 0}, {1, 1, 0}};
    for (int l = 0; l < 2; l++) memcpy(a.class_map[l], map[l], 3);
    kv_err err;
    const char *path = "build/test_wlfit.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_str_eq(b.generator, "fitted");
    cr_assert_eq(b.nclasses, 2);
    cr_assert_eq(b.map_layers, 2);
    cr_assert_eq(b.map_heads, 3);
    for (int l = 0; l < 2; l++) cr_assert_eq(memcmp(b.class_map[l], map[l], 3), 0);
    cr_assert_str_eq(b.cls[1].name, "local-1");
    cr_assert_float_eq(b.cls[0].sink, 3.25, 1e-12);
    cr_assert_float_eq(b.cls[0].rec[2], 3.0, 1e-12);
    cr_assert_float_eq(b.cls[0].persistence, 0.4, 1e-12);
    cr_assert_float_eq(b.rec_span[1], 48.0, 1e-12);
    cr_assert_float_eq(b.chan_spread, 0.75, 1e-12);
    FILE *fp = fopen(path, "w");
    fputs("generator: fitted\nrec_span: [4, 48, 512]\nclasses:\n"
          "  - {name: a, sink: 1, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, persistence: 0.5}\n"
          "class_map:\n  - [a, b]\n", fp);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit.yaml:6:9: class_map layer 0 head 1: 'b' is not a class name");
    fp = fopen(path, "w");
    fputs("generator: fitted\nrec_span: [4, 48]\nclasses: []\nclass_map: []\n", fp);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit.yaml:2:11: key 'rec_span': expected a list of 3 token counts");
    fp = fopen(path, "w");
    fputs("generator: handtuned\nhh_sigma: 1\n", fp);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit.yaml:2:11: key 'hh_sigma' belongs to generator 'fitted'");
    fp = fopen(path, "w");
    fputs("generator: fitted\nchan_spread: 5\nrec_span: [4, 48, 512]\nclasses:\n"
          "  - {name: a, sink: 1, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, persistence: 0.5}\n"
          "class_map:\n  - [a]\n", fp);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit.yaml:2:14: key 'chan_spread': expected a number in [0, 4], got '5'");
    remove(path);
}

#include "cli_util.h"

/* The command line: a synthetic profile runs; bad numbers are refused with the flag and range. */
Test(wlfit, cli_profile_and_bad_flags)
{
    cli_result r;
    cli_run(&r, "workload profile --workload smollm2-fitted --model smollm2-135m --layers 29 --context 128 "
                "--window 16 --steps 2 --threads 1");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "context 128, window 16, 2 decode steps"), "%s", r.out);
    cr_assert(strstr(r.out, " mean "), "%s", r.out);
    cli_run(&r, "workload profile --workload smollm2-fitted --context 10");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--context") && strstr(r.err, "10"), "%s", r.err);
    cli_run(&r, "workload fit x.kvd --classes 9 --out /tmp/never.yaml");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--classes"), "%s", r.err);
    cr_assert_eq(access("/tmp/never.yaml", F_OK), -1, "partial output written");
    cli_run(&r, "workload fit x.kvd --key-sets 9 --out /tmp/never.yaml");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--key-sets") && strstr(r.err, "9"), "%s", r.err);
    cli_run(&r, "workload fit x.kvd");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--out"), "%s", r.err);
    cli_run(&r, "workload fit x.kvd --recency banana --out /tmp/never.yaml");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "fit: --recency: expected 'ladder', 'pairs' or 'heads', got 'banana'"), "%s", r.err);
    cr_assert_eq(access("/tmp/never.yaml", F_OK), -1, "partial output written");
    cli_run(&r, "workload compare --workload smollm2-fitted x.kvd --tolerance 2");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--tolerance"), "%s", r.err);
}

/* The fit's query cache (rkv_fitted_qcache): made once for 40 positions with
 * one set of class weights, then asked for other weights, it gives the very
 * floats the generator gives position by position for those weights — the
 * draws of position i are read from i's own slots (decode drift on from
 * position 120, so some topics are redrawn), and only the weights change. */
Test(wlfit, query_cache_equals_per_position_queries)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "a", .sink = 2, .hh = 1, .rec = {1, 2, 3}, .focus = 1,
                                                 .content = 1, .noise = 0.5, .persistence = 0.4});
    wl.chan_spread = 0.75;
    wl.decode_drift = 0.5;
    wl.focus_topics = 2;
    rkv_fitted_qcache *c;
    kv_err err;
    cr_assert_eq(rkv_fitted_qcache_new(&wl, &m, 1, 0, 100, 40, 120, &c, &err), 0, "%s", err.msg);
    const rkv_head_class other[2] = {
        {.name = "b", .sink = -1, .hh = 3, .rec = {0.5, -2, 4}, .focus = -2, .content = 2, .noise = 1.5, .persistence = 0.9},
        {.name = "c", .sink = 7, .hh = 0, .rec = {0, 0, 1}, .focus = 0.25, .content = 0, .noise = 0, .persistence = 0}};
    float q1[2 * 32], q2[2 * 32];
    for (int k = 0; k < 2; k++) {
        rkv_workload w2 = wl;
        w2.cls[0] = other[k];
        for (int64_t i = 0; i < 40; i++) {
            rkv_fitted_qcache_query(c, &w2, i, q1);
            rkv_workload_query(&w2, &m, 1, 0, 100 + i, 0, 100 + i >= 120, q2);
            cr_assert(!memcmp(q1, q2, sizeof q1), "weights %d position %lld differ", k, (long long)(100 + i));
        }
    }
    rkv_fitted_qcache_free(c);
}

/* WL_MEASURE_MASSES (the fit's bisection) on all-zero keys: uniform
 * attention, so the sink and local masses are 4/(p+1) and 64/(p+1) by hand,
 * equal to the full measurement's, and nothing else is measured. */
Test(wlfit, masses_mode_by_hand)
{
    const int d = 16;
    const int64_t C = 512, w = 32, steps = 4, n = C + steps, nq = w + steps;
    float *K = calloc((size_t)n * d, sizeof *K), *Q = malloc((size_t)nq * d * sizeof *Q);
    float *ws = malloc(wl_measure_ws_floats(n, nq) * sizeof *ws), *km = malloc(wl_keys_floats(n, d) * sizeof *km);
    for (int64_t i = 0; i < nq * d; i++) Q[i] = (float)((i % 5) - 2);
    wl_keys kk;
    wl_keys_prepare(&kk, K, d, C, n, km);
    wl_head_stats a, b;
    wl_head_measure_keys(&kk, Q, w, steps, WL_MEASURE_MASSES, &a, ws);
    wl_head_measure_keys(&kk, Q, w, steps, WL_MEASURE_ALL, &b, ws);
    double sink = 0, loc = 0;
    for (int64_t st = 0; st < steps; st++) {
        sink += 4.0 / (double)(C + st + 1) / steps;
        loc += 64.0 / (double)(C + st + 1) / steps;
    }
    cr_assert_float_eq(a.sink_mass, sink, 1e-6);
    cr_assert_float_eq(a.local_mass, loc, 1e-6);
    cr_assert_eq(a.sink_mass, b.sink_mass);
    cr_assert_eq(a.local_mass, b.local_mass);
    cr_assert_eq(a.entropy, 0.0);
    cr_assert_eq(a.topk_mass[3], 0.0);
    cr_assert_eq(a.vote_mass, 0.0);
    cr_assert_float_eq(b.entropy, 1.0, 1e-6);
    free(K);
    free(Q);
    free(ws);
    free(km);
}

/* The ranking check's pairs, worked by hand: three texts order method 1 and 2
 * differently (text 0: 0.5 < 0.6, text 1: 0.6 > 0.5), so that pair is not
 * checked; the other five are ordered alike by all three; the synthetic
 * reverses (0, 2) and (1, 3) and keeps the other three. An exact tie in one
 * text leaves a pair unordered; a synthetic tie on an ordered pair is not
 * agreement. One text orders every pair whose values differ. */
Test(wlfit, rank_pairs_by_hand)
{
    const double real[3 * 4] = {0.9, 0.5, 0.6, 0.3, 0.9, 0.6, 0.5, 0.3, 0.9, 0.7, 0.4, 0.3};
    const double syn[4] = {0.9, 0.2, 0.95, 0.3};
    unsigned char st[16];
    int agree;
    cr_assert_eq(wl_rank_pairs(real, 3, 4, syn, st, &agree), 5);
    cr_assert_eq(agree, 3);
    const unsigned char want[4][4] = {{0, WL_PAIR_AGREE, WL_PAIR_DIFFER, WL_PAIR_AGREE},
                                      {0, 0, WL_PAIR_UNORDERED, WL_PAIR_DIFFER},
                                      {0, 0, 0, WL_PAIR_AGREE}};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) cr_assert_eq(st[i * 4 + j], want[i][j], "pair %d %d", i, j);
    const double tie[2 * 3] = {0.8, 0.8, 0.1, 0.9, 0.7, 0.1};
    const double syn_tie[3] = {0.5, 0.4, 0.4};
    cr_assert_eq(wl_rank_pairs(tie, 2, 3, syn_tie, st, &agree), 2); /* (0, 1) tied in text 0 */
    cr_assert_eq(st[0 * 3 + 1], WL_PAIR_UNORDERED);
    cr_assert_eq(st[0 * 3 + 2], WL_PAIR_AGREE);
    cr_assert_eq(st[1 * 3 + 2], WL_PAIR_DIFFER); /* 0.8 > 0.1 and 0.7 > 0.1, synthetic 0.4 = 0.4 */
    cr_assert_eq(agree, 1);
    cr_assert_eq(wl_rank_pairs(real, 1, 4, syn, st, &agree), 6);
    cr_assert_eq(agree, 4); /* text 0 has 1 < 2 as the synthetic does: (0,1), (0,3), (1,2), (2,3) agree */
}

/* Early heavy hitters (early_tokens, early_hh_fraction): with fraction 1 there,
 * 0 elsewhere and salience exp(N(0, 0)) = 1, a class weight a on the heavy
 * hitters alone scores the keys at 1 .. early_tokens-1 a·cos((p − t)·θ_{d/2-2})
 * (the heavy-hitter pair, turned by RoPE between key and query) and every
 * other key, the sink token included, exactly 0. */
Test(wlfit, early_heavy_hitters_score_their_weight)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "e", .hh = 2.0});
    wl.hh_fraction = 0.0;
    wl.hh_sigma = 0.0;
    wl.early_tokens = 40;
    wl.early_hh_fraction = 1.0;
    const int d = m.head_dim;
    const int64_t n = 300, p = 299;
    double sc[2 * 300];
    head_logits(&wl, &m, n, p, sc);
    const double theta = pow(10000.0, -2.0 * (d / 2 - 2) / d);
    for (int g = 0; g < 2; g++)
        for (int64_t t = 0; t < n; t++) {
            const double want = t >= 1 && t < 40 ? 2.0 * cos((double)(p - t) * theta) : 0.0;
            cr_assert_float_eq(sc[g * n + t], want, 1e-4, "head %d key %lld: %g, want %g", g, (long long)t,
                               sc[g * n + t], want);
        }
}

/* early_mass by hand: all keys zero, so every weight is 1/(p+1). At C = 2048
 * the early positions are 4 .. 255: 252/(p+1); at C = 600 they stop where the
 * middle distances start (p − 511): positions 4 .. p − 512, p − 515 of them. */
Test(wlfit, early_mass_by_hand)
{
    const int d = 16;
    const int64_t w = 32, steps = 3;
    for (int k = 0; k < 2; k++) {
        const int64_t C = k == 0 ? 2048 : 600, n = C + steps, nq = w + steps;
        float *K = calloc((size_t)n * d, sizeof *K), *Q = malloc((size_t)nq * d * sizeof *Q);
        float *ws = malloc(wl_head_ws_floats(n, nq, d) * sizeof *ws);
        for (int64_t i = 0; i < nq * d; i++) Q[i] = (float)((i % 5) - 2);
        wl_head_stats s;
        wl_head_measure(K, Q, d, C, w, steps, &s, ws);
        double want = 0;
        for (int64_t st = 0; st < steps; st++) {
            const int64_t p = C + st;
            want += (k == 0 ? 252.0 : (double)(p - 515)) / (double)(p + 1) / steps;
        }
        cr_assert_float_eq(s.early_mass, want, 1e-7, "C %lld: %g, want %g", (long long)C, s.early_mass, want);
        free(K);
        free(Q);
        free(ws);
    }
}

/* early_tokens / early_hh_fraction / rec_key_tilt: written and read back;
 * absent in a profile written without them (and read as 0); out-of-range
 * values refused. */
Test(wlfit, early_and_tilt_yaml_round_trip_and_errors)
{
    rkv_workload a = one_class((rkv_head_class){.name = "l", .rec = {1, 2, 3}, .persistence = 0.5});
    kv_err err;
    const char *path = "build/test_wlfit_early.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    char buf[4096];
    FILE *fp = fopen(path, "r");
    size_t got = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[got] = 0;
    cr_assert(!strstr(buf, "early_") && !strstr(buf, "tilt"), "%s", buf);
    a.early_tokens = 256;
    a.early_hh_fraction = 0.25;
    a.rec_key_tilt = -0.75;
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.early_tokens, 256);
    cr_assert_float_eq(b.early_hh_fraction, 0.25, 1e-12);
    cr_assert_float_eq(b.rec_key_tilt, -0.75, 1e-12);
    const char *cls = "classes:\n  - {name: a, sink: 1, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, "
                      "persistence: 0.5}\nclass_map:\n  - [a]\n";
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.early_tokens, 0);
    cr_assert_float_eq(b.early_hh_fraction, 0.0, 0.0);
    cr_assert_float_eq(b.rec_key_tilt, 0.0, 0.0);
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\nearly_hh_fraction: 1.5\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert(strstr(err.msg, "test_wlfit_early.yaml:3:20") && strstr(err.msg, "early_hh_fraction") && strstr(err.msg, "1.5"),
              "%s", err.msg);
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\nearly_tokens: -3\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert(strstr(err.msg, "early_tokens") && strstr(err.msg, "-3"), "%s", err.msg);
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [4, 48, 512]\nrec_key_tilt: 5\n%s", cls);
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_early.yaml:3:15: key 'rec_key_tilt': expected a number in [-4, 4], got '5'");
    fp = fopen(path, "w");
    fprintf(fp, "generator: handtuned\nearly_tokens: 8\n");
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_early.yaml:2:15: key 'early_tokens' belongs to generator 'fitted'");
    remove(path);
}

/* rec_key_tilt moves magnitude between key and query and nothing else: with
 * every feature on (chan_spread puts content and noise on the recency pairs
 * too), tilt 0.8 scales dims j and j + d/2 of rung j's pair by
 * g_j = (span_j/√(s0·s2))^0.8 in the keys and by 1/g_j in the queries
 * (span_j = 2048^(j/(m−1)) recomputed here), other dims not at all, and every
 * score q·k equals the untilted one. */
Test(wlfit, ladder_key_tilt_keeps_logits)
{
    mdl_model m = shape();
    rkv_workload wl = one_class((rkv_head_class){.name = "r", .sink = 2, .hh = 1, .rec = {3.0, 2.0, 1.5}, .focus = 1,
                                                 .content = 1, .noise = 0.5, .persistence = 0.5});
    wl.rec_ladder = 1;
    wl.rec_span[0] = 1;
    wl.rec_span[1] = 32;
    wl.rec_span[2] = 2048;
    wl.chan_spread = 0.75;
    wl.outlier_scale = 5;
    const int d = m.head_dim, h2 = d / 2, nr = d / 4;
    const int64_t n = 2100, p = 2099;
    float *K0 = malloc((size_t)n * d * sizeof *K0), *K = malloc((size_t)n * d * sizeof *K);
    float *V = malloc((size_t)n * d * sizeof *V), q0[2 * 32], q[2 * 32];
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K0, V, &err), 0, "%s", err.msg);
    rkv_workload_query(&wl, &m, 0, 0, p, 0, 1, q0);
    wl.rec_key_tilt = 0.8;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    rkv_workload_query(&wl, &m, 0, 0, p, 0, 1, q);
    double g[64];
    for (int i = 0; i < d; i++) g[i] = 1.0;
    for (int j = 0; j < nr; j++) g[j] = g[j + h2] = pow(pow(2048.0, (double)j / (nr - 1)) / sqrt(2048.0), 0.8);
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < d; i++)
            cr_assert_float_eq(q[h * d + i] * g[i], q0[h * d + i], 1e-4 * (1 + fabs(q0[h * d + i])), "q dim %d", i);
    for (int64_t t = 0; t <= p; t += 3) {
        double s0 = 0, s1 = 0;
        for (int i = 0; i < d; i++) {
            cr_assert_float_eq(K[t * d + i], K0[t * d + i] * g[i], 1e-4 * (1 + fabs(K[t * d + i])), "t %lld dim %d",
                               (long long)t, i);
            s0 += (double)q0[i] * K0[t * d + i];
            s1 += (double)q[i] * K[t * d + i];
        }
        cr_assert_float_eq(s1, s0, 1e-3 * (1 + fabs(s0)), "t %lld: %g, untilted %g", (long long)t, s1, s0);
    }
    free(K0);
    free(K);
    free(V);
}
