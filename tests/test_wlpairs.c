/* test_wlpairs.c — the fitted generator's measured recency (rec_kernel
 * pairs, `kvsim workload fit --recency pairs`): the logit it adds, its
 * mapping to another head_dim, the measurement that feeds it (wl_pairs.c),
 * and its YAML form. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"
#include "wl.h"
#include "wlfit_util.h"

/* A pairs-mode workload of one class on shape() (d = 32, base 10000) with
 * nothing but the measured pairs: amplitudes on pairs 2 and 5 (below the
 * content pairs 8 .. 11 and the topics 12 .. 13, so no other key feature
 * shares their dims), key norms 1.5 and 0.7. */
static rkv_workload pairs_class(void)
{
    rkv_workload wl = one_class((rkv_head_class){.name = "p", .persistence = 0.5});
    wl.rec_ladder = RKV_REC_PAIRS;
    wl.pair_n = 14;
    wl.pair_head_dim = 32;
    wl.pair_theta = 10000.0;
    for (int i = 0; i < 14; i++) wl.pair_key[i] = 1.0;
    wl.pair_key[2] = 1.5;
    wl.pair_key[5] = 0.7;
    wl.cls[0].pair_amp[4] = 2.0; /* pair 2: a = 2 - 1j */
    wl.cls[0].pair_amp[5] = -1.0;
    wl.cls[0].pair_amp[10] = 0.5; /* pair 5: a = 0.5 + 3j */
    wl.cls[0].pair_amp[11] = 3.0;
    wl.hh_fraction = 0.0;
    wl.key_noise = 0.0;
    wl.topic_strength = 0.0;
    return wl;
}

/* The recency rec_kernel pairs gives is the measured amplitude turned by RoPE:
 * a key at distance D scores sum_i Re(a_i·e^(j·theta_i·D)), theta_i =
 * 10000^(-2i/32), computed here; the sink key (position 0) carries no pair
 * direction and scores 0. */
Test(wlpairs, recency_is_the_measured_amplitude)
{
    rkv_workload wl = pairs_class();
    mdl_model m = shape();
    const int64_t n = 700, p = 699;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    const double th2 = pow(10000.0, -4.0 / 32), th5 = pow(10000.0, -10.0 / 32);
    for (int g = 0; g < 2; g++)
        for (int64_t t = 0; t < n; t++) {
            const double D = (double)(p - t);
            const double want = t == 0 ? 0.0 : 2.0 * cos(th2 * D) + 1.0 * sin(th2 * D) + 0.5 * cos(th5 * D) - 3.0 * sin(th5 * D);
            cr_assert_float_eq(sc[g * n + t], want, 2e-4, "head %d key %lld: %g, want %g", g, (long long)t, sc[g * n + t], want);
        }
    free(sc);
}

/* A target of head_dim 64 (same base) takes, for its pair j < 30, the
 * measured pair round(j/2) at half its amplitude (pairs per unit of log
 * frequency: 16/ln 10000 measured, 32/ln 10000 here); its pairs 30, 31 and
 * those past the last measured pair take none. Expected logits from that rule,
 * written here. */
Test(wlpairs, map_to_another_head_dim)
{
    rkv_workload wl = pairs_class();
    mdl_model m = shape();
    m.head_dim = 64;
    const int64_t n = 300, p = 299;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    const double a_re[14] = {[2] = 2.0, [5] = 0.5}, a_im[14] = {[2] = -1.0, [5] = 3.0};
    for (int64_t t = 1; t < n; t++) {
        double want = 0.0;
        for (int j = 0; j < 30; j++) {
            const int i = (int)floor(j * 0.5 + 0.5);
            if (i >= 14) continue;
            const double th = pow(10000.0, -2.0 * j / 64), D = (double)(p - t);
            want += 0.5 * (a_re[i] * cos(th * D) - a_im[i] * sin(th * D));
        }
        cr_assert_float_eq(sc[t], want, 2e-4, "key %lld: %g, want %g", (long long)t, sc[t], want);
    }
    free(sc);
}

/* wl_pairs_measure on the pairs workload itself gives back what made it: the
 * class amplitude on every measured pair (2 - 1j on pair 2, 0.5 + 3j on pair
 * 5, 0 elsewhere) and the key norms 1.5 and 0.7 there, for both query heads
 * of both layers (the keys' only other content sits on pairs 8 .. 13, where
 * the query has nothing: amplitude 0). */
Test(wlpairs, measure_gives_back_the_amplitudes)
{
    rkv_workload wl = pairs_class();
    mdl_model m = shape();
    const int np = 14;
    double *amp = calloc(2 * 2 * 2 * (size_t)np, sizeof *amp), kmag[14] = {0};
    kv_err err;
    cr_assert_eq(wl_pairs_measure(&wl, &m, 512, 4, amp, kmag, &err), 0, "%s", err.msg);
    for (int h = 0; h < 4; h++)
        for (int i = 0; i < np; i++) {
            const double re = i == 2 ? 2.0 : i == 5 ? 0.5 : 0.0, im = i == 2 ? -1.0 : i == 5 ? 3.0 : 0.0;
            cr_assert_float_eq(amp[(size_t)h * 2 * np + 2 * i], re, 1e-4, "head %d pair %d re %g", h, i,
                               amp[(size_t)h * 2 * np + 2 * i]);
            cr_assert_float_eq(amp[(size_t)h * 2 * np + 2 * i + 1], im, 1e-4, "head %d pair %d im %g", h, i,
                               amp[(size_t)h * 2 * np + 2 * i + 1]);
        }
    cr_assert_float_eq(kmag[2], 1.5, 1e-4);
    cr_assert_float_eq(kmag[5], 0.7, 1e-4);
    cr_assert_float_eq(kmag[0], 1.0, 1e-4);
    free(amp);
}

Test(wlpairs, yaml_round_trip_and_errors)
{
    rkv_workload a = pairs_class();
    kv_err err;
    const char *path = "build/test_wlfit_pairs.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.rec_ladder, RKV_REC_PAIRS);
    cr_assert_eq(b.pair_n, 14);
    cr_assert_eq(b.pair_head_dim, 32);
    cr_assert_float_eq(b.pair_theta, 10000.0, 1e-9);
    cr_assert_float_eq(b.pair_key[5], 0.7, 1e-9);
    cr_assert_float_eq(b.cls[0].pair_amp[11], 3.0, 1e-9);
    cr_assert_float_eq(b.cls[0].pair_amp[4], 2.0, 1e-9);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [1, 32, 2048]\nrec_kernel: pairs\npair_theta: 10000\npair_head_dim: 32\n"
                "pair_key: [1, 2]\nclasses:\n  - {name: a, sink: 1, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, "
                "persistence: 0.5, pairs: [1, 2, 3]}\nclass_map:\n  - [a]\n");
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_pairs.yaml:8:104: class 1: key 'pairs': expected a list of 4 numbers (re, im "
                              "per measured pair)");
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [1, 32, 2048]\nrec_kernel: ladder\nclasses:\n  - {name: a, sink: 1, hh: 0, "
                "rec: [0, 0, 0], focus: 0, content: 0, noise: 0, persistence: 0.5, pairs: [1, 2]}\nclass_map:\n  - [a]\n");
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_pairs.yaml:5:104: class 1: key 'pairs' needs rec_kernel 'pairs'");
    fp = fopen(path, "w");
    fprintf(fp, "generator: fitted\nrec_span: [1, 32, 2048]\nrec_kernel: pairs\npair_theta: 10000\npair_head_dim: 32\n"
                "pair_key: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\nclasses:\n  - {name: a, sink: 1, hh: 0, "
                "rec: [0, 0, 0], focus: 0, content: 0, noise: 0, persistence: 0.5}\nclass_map:\n  - [a]\n");
    fclose(fp);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlfit_pairs.yaml:6:11: key 'pair_key': rec_kernel 'pairs' needs a list of 1 to 14 "
                              "numbers (pair_head_dim/2 - 2)");
    remove(path);
}
