/* test_kcu.c — CPU tests of cuda/kcu.h (the arithmetic the kernels share
 * with the host) and cuda/kcu_ref_host.c (the CPU reference the GPU check
 * compares against). Fixed seeds, odd sizes, many ties. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kcu.h"
#include "kcu_ref.h"

#define LSE_TOL 1e-6

/* ------------------------------------------------------------- bf16 */
Test(kcu, bf16_round_to_nearest_even)
{
    cr_assert_eq(kcu_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(kcu_f32_to_bf16(-2.5f), 0xc020);
    /* exactly halfway, even low bit: stays */
    cr_assert_eq(kcu_f32_to_bf16(kcu_bits_f32(0x3f808000u)), 0x3f80);
    /* exactly halfway, odd low bit: rounds up to even */
    cr_assert_eq(kcu_f32_to_bf16(kcu_bits_f32(0x3f818000u)), 0x3f82);
    /* just above halfway rounds up */
    cr_assert_eq(kcu_f32_to_bf16(kcu_bits_f32(0x3f808001u)), 0x3f81);
    cr_assert_eq(kcu_f32_to_bf16(INFINITY), 0x7f80);
    cr_assert_eq(kcu_f32_to_bf16(kcu_bits_f32(0x7f7fffffu)), 0x7f80, "FLT_MAX overflows to inf");
    uint16_t n = kcu_f32_to_bf16(NAN);
    cr_assert((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0, "NaN stays NaN");
    /* a NaN whose payload lives only in the low half must not become inf */
    uint16_t n2 = kcu_f32_to_bf16(kcu_bits_f32(0x7f800001u));
    cr_assert((n2 & 0x7f) != 0);
}

Test(kcu, bf16_roundtrip_exact_and_error_bound)
{
    uint64_t s = 11;
    for (int t = 0; t < 100000; t++) {
        float x = (float)(kcu_rng_normal(&s) * 37.0);
        uint16_t h = kcu_f32_to_bf16(x);
        float y = kcu_bf16_to_f32(h);
        cr_assert_eq(kcu_f32_to_bf16(y), h);
        cr_assert_leq(fabsf(x - y), fabsf(x) * (1.0f / 256.0f));
    }
}

/* ---------------------------------------------------- keys and order */
Test(kcu, ord_keys_preserve_order_and_merge_signed_zero)
{
    uint64_t s = 5;
    for (int t = 0; t < 100000; t++) {
        float a = (float)kcu_rng_normal(&s), b = (float)kcu_rng_normal(&s);
        if (t % 7 == 0)
            b = a;
        cr_assert_eq(a < b, kcu_ord_f32(a) < kcu_ord_f32(b));
        cr_assert_eq(a == b, kcu_ord_f32(a) == kcu_ord_f32(b));
        cr_assert_eq((double)a < (double)b, kcu_desc_key(a) > kcu_desc_key(b));
    }
    cr_assert_eq(kcu_ord_f32(-0.0f), kcu_ord_f32(0.0f));
    cr_assert_eq(kcu_desc_key(-0.0), kcu_desc_key(0.0));
    cr_assert_lt(kcu_desc_key(INFINITY), kcu_desc_key(1e300));
    cr_assert_gt(kcu_desc_key(-INFINITY), kcu_desc_key(-1e300));
}

/* Naive top-k: j is in iff fewer than k candidates beat it (larger score, or
 * equal score and lower index). */
static void naive_topk(const double *sc, int64_t n, int64_t k, int64_t *take)
{
    for (int64_t j = 0; j < n; j++) {
        int64_t rank = 0;
        for (int64_t i = 0; i < n; i++)
            if (sc[i] > sc[j] || (sc[i] == sc[j] && i < j))
                rank++;
        take[j] = rank < k;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

Test(kcu, rank_key_sort_is_topk_order_with_ties)
{
    enum { N = 4099 };
    static float sc[N];
    static double scd[N];
    static uint64_t key[N];
    static int64_t take[N];
    uint64_t s = 99;
    for (int j = 0; j < N; j++) {
        sc[j] = (float)(floor(kcu_rng_normal(&s) * 8.0) / 8.0); /* many exact ties */
        if (j % 13 == 0)
            sc[j] = -0.0f;
        if (j % 17 == 0)
            sc[j] = 0.0f;
        scd[j] = sc[j];
        key[j] = kcu_rank_key_f32(sc[j], (uint32_t)j);
    }
    qsort(key, N, sizeof key[0], cmp_u64);
    int64_t ks[] = {1, 63, 127, 1000, N};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        naive_topk(scd, N, ks[t], take);
        for (int64_t r = 0; r < ks[t]; r++)
            cr_assert(take[key[r] & 0xffffffffu], "k=%ld rank %ld", (long)ks[t], (long)r);
    }
}

/* kcu_select_host (the GPU's radix algorithm) against the naive rule,
 * unweighted, on several sizes and k, with ties. */
Test(kcu, radix_select_matches_naive_unweighted)
{
    int64_t ns[] = {1, 2, 63, 127, 1001, 4099};
    uint64_t s = 3;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        int64_t n = ns[a];
        double *sc = malloc((size_t)n * sizeof *sc);
        uint64_t *keys = malloc((size_t)n * sizeof *keys);
        int64_t *t1 = malloc((size_t)n * sizeof *t1), *t2 = malloc((size_t)n * sizeof *t2);
        for (int64_t j = 0; j < n; j++)
            sc[j] = (j % 3 == 0) ? 0.25 : floor(kcu_rng_normal(&s) * 4.0) * 0.37;
        int64_t kk[] = {1, n / 3 + 1, n - 1, n, n + 5};
        for (size_t b = 0; b < 5; b++) {
            if (kk[b] < 1)
                continue;
            for (int64_t j = 0; j < n; j++)
                keys[j] = kcu_desc_key(sc[j]);
            int64_t got = kcu_select_host(keys, NULL, n, kk[b], t1);
            naive_topk(sc, n, kk[b], t2);
            cr_assert_eq(got, kk[b] < n ? kk[b] : n);
            for (int64_t j = 0; j < n; j++)
                cr_assert_eq(t1[j], t2[j], "n=%ld k=%ld j=%ld", (long)n, (long)kk[b], (long)j);
        }
        free(sc);
        free(keys);
        free(t1);
        free(t2);
    }
}

/* Weighted select over pages equals the token-level top-k of the broadcast
 * scores (tokens of a page are contiguous, so ties fill pages in order). */
Test(kcu, radix_select_weighted_equals_token_topk)
{
    uint64_t s = 7;
    int64_t Cs[] = {1, 5, 64, 127, 1000, 3001};
    int64_t ps[] = {1, 2, 3, 7, 16};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 5; b++) {
            int64_t C = Cs[a], p = ps[b], np = kcu_npages(C, p);
            double *avg = malloc((size_t)np * sizeof *avg);
            double *tok = malloc((size_t)C * sizeof *tok);
            int64_t *tt = malloc((size_t)C * sizeof *tt);
            int32_t *pos = malloc((size_t)C * sizeof *pos);
            uint64_t *keys = malloc((size_t)np * sizeof *keys);
            int64_t *take = malloc((size_t)np * sizeof *take), *w = malloc((size_t)np * sizeof *w);
            for (int64_t j = 0; j < np; j++)
                avg[j] = floor(kcu_rng_uniform(&s) * 6.0) / 7.0;
            for (int64_t t = 0; t < C; t++)
                tok[t] = avg[t / p];
            int64_t kk[] = {1, C / 2 + 1, C - 1, C, 2 * C};
            for (int c = 0; c < 5; c++) {
                int64_t k = kk[c];
                if (k < 1)
                    continue;
                int64_t m = kcu_ref_hsa_select(avg, np, C, p, k, 0, pos, keys, take, w);
                naive_topk(tok, C, k, tt);
                int64_t m2 = 0;
                for (int64_t t = 0; t < C; t++)
                    if (tt[t]) {
                        cr_assert_lt(m2, m);
                        cr_assert_eq(pos[m2], t, "C=%ld p=%ld k=%ld", (long)C, (long)p, (long)k);
                        m2++;
                    }
                cr_assert_eq(m, m2);
                /* page granularity: whole pages, ⌈k/p⌉ of them (or all) */
                int64_t mp = kcu_ref_hsa_select(avg, np, C, p, k, 1, pos, keys, take, w);
                int64_t want_pages = (k + p - 1) / p < np ? (k + p - 1) / p : np;
                int64_t npg = 0;
                for (int64_t j = 0; j < np; j++)
                    npg += take[j] != 0;
                cr_assert_eq(npg, want_pages);
                for (int64_t t = 1; t < mp; t++)
                    cr_assert_lt(pos[t - 1], pos[t]);
            }
            free(avg);
            free(tok);
            free(tt);
            free(pos);
            free(keys);
            free(take);
            free(w);
        }
}

/* ------------------------------------------------------ LSE merge */
/* Softmax-weighted mean of v over n scores, computed in one pass of
 * kcu_online_add, against the same over nsplit parts merged with
 * kcu_lse_merge, against double. */
Test(kcu, lse_merge_of_splits_equals_one_pass)
{
    enum { N = 4099, D = 3 };
    static float sc[N], v[N][D];
    uint64_t s = 21;
    for (int j = 0; j < N; j++) {
        sc[j] = (float)(kcu_rng_normal(&s) * 3.0);
        for (int e = 0; e < D; e++)
            v[j][e] = (float)kcu_rng_normal(&s);
    }
    double mref = -INFINITY, lref = 0, oref[D] = {0};
    for (int j = 0; j < N; j++)
        mref = sc[j] > mref ? sc[j] : mref;
    for (int j = 0; j < N; j++) {
        double e = exp(sc[j] - mref);
        lref += e;
        for (int c = 0; c < D; c++)
            oref[c] += e * v[j][c];
    }
    int splits[] = {1, 2, 7, 64, 131};
    for (int a = 0; a < 5; a++) {
        int ns = splits[a];
        float M = -INFINITY, L = 0, A[D] = {0};
        for (int sp = 0; sp < ns; sp++) {
            int64_t lo, hi;
            kcu_split_range(N, ns, sp, 16, &lo, &hi);
            float m = -INFINITY, l = 0, acc[D] = {0};
            for (int64_t j = lo; j < hi; j++) {
                float p;
                float f = kcu_online_add(&m, &l, sc[j], &p);
                for (int c = 0; c < D; c++)
                    acc[c] = acc[c] * f + p * v[j][c];
            }
            float f1, f2;
            float mm = kcu_lse_merge(M, m, &f1, &f2);
            L = L * f1 + l * f2;
            for (int c = 0; c < D; c++)
                A[c] = A[c] * f1 + acc[c] * f2;
            M = mm;
        }
        cr_assert_float_eq(M, mref, 0.0);
        for (int c = 0; c < D; c++)
            cr_assert_float_eq(A[c] / L, oref[c] / lref, LSE_TOL, "splits=%d", ns);
    }
}

Test(kcu, lse_merge_of_two_empty_states_is_empty)
{
    float f1 = 1, f2 = 1;
    float m = kcu_lse_merge(-INFINITY, -INFINITY, &f1, &f2);
    cr_assert(m == -INFINITY && f1 == 0.0f && f2 == 0.0f);
    m = kcu_lse_merge(-INFINITY, 2.0f, &f1, &f2);
    cr_assert(m == 2.0f && f1 == 0.0f && f2 == 1.0f);
}

/* ------------------------------------------------ pooling, splits, pages */
Test(kcu, pool_window_same_padding_clipped)
{
    int64_t lo, hi;
    kcu_pool_window(0, 1000, 63, &lo, &hi);
    cr_assert(lo == 0 && hi == 31);
    kcu_pool_window(500, 1000, 63, &lo, &hi);
    cr_assert(lo == 469 && hi == 531);
    kcu_pool_window(999, 1000, 63, &lo, &hi);
    cr_assert(lo == 968 && hi == 999);
    kcu_pool_window(2, 5, 7, &lo, &hi);
    cr_assert(lo == 0 && hi == 4);
    kcu_pool_window(3, 10, 1, &lo, &hi);
    cr_assert(lo == 3 && hi == 3);
}

Test(kcu, split_ranges_cover_exactly_in_order)
{
    int64_t Cs[] = {1, 15, 16, 17, 1000, 32768, 131073};
    for (int a = 0; a < 7; a++)
        for (int ns = 1; ns <= 70; ns += 3) {
            int64_t next = 0;
            for (int s = 0; s < ns; s++) {
                int64_t lo, hi;
                kcu_split_range(Cs[a], ns, s, 16, &lo, &hi);
                cr_assert_eq(lo, next);
                cr_assert_geq(hi, lo);
                if (hi < Cs[a] && hi > lo)
                    cr_assert_eq(hi % 16, 0);
                next = hi;
            }
            cr_assert_eq(next, Cs[a]);
        }
    cr_assert_eq(kcu_split_count(32768, 8, 264, 256, 64), 33);
    cr_assert_eq(kcu_split_count(1000, 8, 264, 256, 64), 3);
    cr_assert_eq(kcu_split_count(100, 8, 264, 256, 64), 1);
    cr_assert_eq(kcu_split_count(1 << 20, 1, 264, 256, 64), 64);
}

Test(kcu, page_math)
{
    cr_assert_eq(kcu_npages(10, 3), 4);
    cr_assert_eq(kcu_page_count(3, 10, 3), 1);
    cr_assert_eq(kcu_page_count(2, 10, 3), 3);
    cr_assert_eq(kcu_page_count(4, 10, 3), 0);
    cr_assert_eq(kcu_page_of(9, 3), 3);
    cr_assert_eq(kcu_page_slot(9, 3), 0);
    cr_assert_eq(kcu_aux_rows(128, 1), 128);
    cr_assert_eq(kcu_aux_rows(128, 3), 256);
    cr_assert_eq(kcu_aux_max_off(5, 7, 100, 128, 3), (128 + 5) * 100 + 7);
    cr_assert_eq(kcu_aux_max_off(5, 7, 100, 128, 1), kcu_aux_min_off(5, 7, 100));
    cr_assert_float_eq(kcu_tau(128, 3.0, 6.0), 8.0, 1e-12);
    cr_assert_float_eq(kcu_tau(128, 0.0, 0.0), sqrt(128.0), 0.0);
    cr_assert_eq(kcu_page_bound(0.5, -1.0f, 2.0f), 2.0f);
    cr_assert_eq(kcu_page_bound(0.0, -1.0f, 2.0f), -1.0f);
    cr_assert_eq(kcu_page_bound(-0.5, -1.0f, 2.0f), -1.0f);
}

/* ALGORITHM.md's worked values (d = 128, max_new = 50). */
Test(kcu, rocketkv_split_worked_values)
{
    kcu_rkv_split o;
    kcu_rkv_split_compute(16384, 50, 256, 0, 128, -1.0, &o);
    cr_assert(o.capacity == 1596 && o.P == 1546 && o.p == 3 && o.r == 61 && o.k == 128,
              "cap %ld P %ld p %ld r %ld", (long)o.capacity, (long)o.P, (long)o.p, (long)o.r);
    kcu_rkv_split_compute(96256, 50, 256, 0, 128, -1.0, &o);
    cr_assert(o.capacity == 1401 && o.P == 1351 && o.p == 3 && o.r == 70 && o.k == 128,
              "cap %ld P %ld p %ld r %ld", (long)o.capacity, (long)o.P, (long)o.p, (long)o.r);
    kcu_rkv_split_compute(65536, 50, 4096, 0, 128, -1.0, &o);
    cr_assert(o.capacity == 19354 && o.P == 19304 && o.p == 3 && o.r == 81 && o.k == 2048,
              "cap %ld P %ld p %ld r %ld", (long)o.capacity, (long)o.P, (long)o.p, (long)o.r);
    kcu_rkv_split_compute(200, 50, 256, 0, 128, -1.0, &o);
    cr_assert(!o.evicts && o.p == 1 && o.r == 128 && o.capacity == 250 && o.k == 250 && o.P == 200);
}

/* --------------------------------------------------- CPU reference */
static uint16_t *rand_bf16(int64_t n, uint64_t *s, double scale)
{
    uint16_t *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = kcu_f32_to_bf16((float)(kcu_rng_normal(s) * scale));
    return x;
}

Test(kcu_ref, sparse_over_all_rows_equals_dense)
{
    enum { C = 127, D = 64, G = 4 };
    uint64_t s = 17;
    uint16_t *K = rand_bf16(C * D, &s, 1.0), *V = rand_bf16(C * D, &s, 1.0);
    float q[G * D];
    int32_t idx[C];
    double o1[G * D], o2[G * D];
    for (int i = 0; i < G * D; i++)
        q[i] = (float)(kcu_rng_normal(&s) * 0.3);
    for (int i = 0; i < C; i++)
        idx[i] = i;
    kcu_ref_attend(K, V, D, G, q, NULL, C, o1);
    kcu_ref_attend(K, V, D, G, q, idx, C, o2);
    for (int i = 0; i < G * D; i++)
        cr_assert_eq(o1[i], o2[i]);
    /* one row only: output is that V row */
    idx[0] = 42;
    kcu_ref_attend(K, V, D, G, q, idx, 1, o2);
    for (int i = 0; i < D; i++)
        cr_assert_float_eq(o2[i], kcu_bf16_to_f32(V[42 * D + i]), 1e-12);
    free(K);
    free(V);
}

Test(kcu_ref, pages_bound_every_key)
{
    enum { C = 100, D = 64 };
    uint64_t s = 23;
    uint16_t *K = rand_bf16(C * D, &s, 1.0);
    int64_t ps[] = {1, 3, 7};
    for (int a = 0; a < 3; a++) {
        int64_t p = ps[a], np = kcu_npages(C, p), cap = np + 5;
        uint16_t *aux = malloc((size_t)kcu_aux_rows(D, p) * cap * sizeof *aux);
        kcu_ref_pages_build(K, C, D, p, cap, aux);
        for (int64_t t = 0; t < C; t++)
            for (int i = 0; i < D; i++) {
                float x = kcu_bf16_to_f32(K[t * D + i]);
                int64_t j = kcu_page_of(t, p);
                cr_assert_leq(kcu_bf16_to_f32(aux[kcu_aux_min_off(i, j, cap)]), x);
                cr_assert_geq(kcu_bf16_to_f32(aux[kcu_aux_max_off(i, j, cap, D, p)]), x);
            }
        free(aux);
    }
    free(K);
}

/* With p = 1, r = d and G = 1 the page score is q·k/τ with τ = √d: the
 * stage-2 pipeline's selection is the exact top-k of the scores. */
Test(kcu_ref, hsa_full_dims_p1_is_exact_topk)
{
    enum { C = 211, D = 64, G = 1 };
    uint64_t s = 31;
    uint16_t *K = rand_bf16(C * D, &s, 1.0);
    uint16_t *aux = malloc((size_t)D * C * sizeof *aux);
    float q[G * D];
    double sc[C];
    int32_t dims[D], pos[C], pos2[C];
    double gsum[D], tau[G], avg[C], exact[C];
    uint64_t keys[C];
    int64_t take[C], w[C];
    unsigned char scratch[D * 24];
    for (int i = 0; i < D; i++)
        q[i] = (float)kcu_rng_normal(&s);
    kcu_ref_pages_build(K, C, D, 1, C, aux);
    int r = kcu_ref_hsa_dims(q, G, D, D, dims, gsum, tau, scratch);
    cr_assert_eq(r, D);
    cr_assert_float_eq(tau[0], 8.0, 1e-12);
    for (int i = 0; i < D; i++)
        cr_assert_eq(dims[i], i);
    kcu_ref_hsa_page_scores(aux, C, D, 1, G, q, dims, r, gsum, tau, C, sc);
    kcu_ref_hsa_average(sc, G, C, C, 1, avg);
    int64_t m = kcu_ref_hsa_select(avg, C, C, 1, 50, 0, pos, keys, take, w);
    for (int64_t t = 0; t < C; t++)
        exact[t] = sc[t];
    int64_t m2 = kcu_topk_host(exact, C, 50, pos2, keys, take);
    cr_assert_eq(m, 50);
    cr_assert_eq(m2, 50);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(pos[i], pos2[i]);
    free(K);
    free(aux);
}

Test(kcu_ref, hsa_dims_ties_to_lower_index)
{
    enum { D = 8, G = 2 };
    float q[G * D] = {1, -1, 2, 0.5f, 2, 0, 0, 1, /* head 1 */ 1, 1, 0, 0.5f, 0, 0, 0, 1};
    /* a = 2, 2, 2, 1, 2, 0, 0, 2 ; top-3 -> 0, 1, 2 */
    int32_t dims[D];
    double gsum[D], tau[G];
    unsigned char scratch[D * 24];
    kcu_ref_hsa_dims(q, G, D, 3, dims, gsum, tau, scratch);
    cr_assert(dims[0] == 0 && dims[1] == 1 && dims[2] == 2);
    cr_assert_eq(gsum[1], 0.0);
    cr_assert_float_eq(tau[0], sqrt(8.0 * 4.0 / 7.5), 1e-12);
}

Test(kcu_ref, stage1_keeps_window_and_budget)
{
    enum { S = 300, D = 64, G = 2, W = 8, P = 64 };
    uint64_t s = 41;
    uint16_t *K = rand_bf16(S * D, &s, 1.0);
    float *Qw = malloc(sizeof(float) * G * W * D);
    for (int i = 0; i < G * W * D; i++)
        Qw[i] = (float)kcu_rng_normal(&s);
    double votes[S], pooled[S];
    int32_t kept[S];
    unsigned char *scratch = malloc(S * 24);
    int64_t n = kcu_ref_stage1(K, S, D, G, Qw, W, P, 7, votes, pooled, kept, scratch);
    cr_assert_eq(n, P);
    for (int i = 1; i < n; i++)
        cr_assert_lt(kept[i - 1], kept[i]);
    for (int i = 0; i < W; i++)
        cr_assert_eq(kept[P - W + i], S - W + i);
    double tot = 0;
    for (int j = 0; j < S - W; j++) {
        cr_assert_geq(pooled[j], votes[j]);
        tot += votes[j];
    }
    /* each of the G·W rows has mass 1, part of it on the window */
    cr_assert_leq(tot, G * W + 1e-9);
    cr_assert_gt(tot, 0.0);
    /* the selection is the naive top-(P − w) of the pooled scores */
    int64_t take[S];
    naive_topk(pooled, S - W, P - W, take);
    int m = 0;
    for (int j = 0; j < S - W; j++)
        if (take[j])
            cr_assert_eq(kept[m++], j);
    cr_assert_eq(kcu_ref_stage1(K, 50, D, G, Qw, W, P, 7, votes, pooled, kept, scratch), 50);
    free(K);
    free(Qw);
    free(scratch);
}

Test(kcu_ref, compare_takes_allows_only_near_ties)
{
    double sc[5] = {0.5, 0.3, 0.3 + 1e-13, 0.1, 0.29};
    int64_t ref[5] = {1, 1, 0, 0, 0};
    int64_t got_tie[5] = {1, 0, 1, 0, 0};
    int64_t got_bad[5] = {1, 0, 0, 0, 1};
    int64_t nd;
    cr_assert_eq(kcu_compare_takes(sc, ref, got_tie, 5, 1e-9, &nd), 0);
    cr_assert_eq(nd, 2);
    cr_assert_eq(kcu_compare_takes(sc, ref, got_bad, 5, 1e-9, &nd), 1);
}
