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
    /* attention splits, 132 SMs = 528 slots: batch 8 × 8 KV heads = 64
     * items -> floor(528 / 64) = 8 splits (512 blocks, one wave; rounding up
     * gave 9 = 576 blocks, two waves); batch 1: 528 / 8 = 66; a 1027-row
     * sparse gather: 1027 / 64 = 16 splits of at least 64 rows. */
    cr_assert_eq(kcu_attend_split_count(32818, 64, 132), 8);
    cr_assert_eq(kcu_attend_split_count(32818, 8, 132), 66);
    cr_assert_eq(kcu_attend_split_count(1027, 8, 132), 16);
    cr_assert_eq(kcu_attend_split_count(1000, 1000, 132), 1); /* more items than slots */
    for (int64_t items = 1; items <= 600; items++) /* never a second wave unless one split already overfills */
        cr_assert(items > 528 || kcu_attend_split_count(1 << 20, items, 132) * items <= 528, "items %ld",
                  (long)items);
}

/* dense_decode.cu v3's gather split count: the one-wave rule with a 32-row
 * minimum. Worked by hand at 132 SMs (528 slots), 8 KV heads at batch 1
 * (66 splits wanted): k + p = 2050 rows -> 2050 / 32 = 64 splits; 514 ->
 * 16 (v2's 64-row minimum: 8); 131 -> 4; 10 rows -> 1; batch 8 (64 items):
 * floor(528 / 64) = 8 whatever the length. */
Test(kcu, gather_split_count)
{
    cr_assert_eq(kcu_gather_split_count(2050, 8, 132), 64);
    cr_assert_eq(kcu_gather_split_count(514, 8, 132), 16);
    cr_assert_eq(kcu_attend_split_count(514, 8, 132), 8);
    cr_assert_eq(kcu_gather_split_count(131, 8, 132), 4);
    cr_assert_eq(kcu_gather_split_count(10, 8, 132), 1);
    cr_assert_eq(kcu_gather_split_count(1 << 20, 64, 132), 8);
    for (int64_t items = 1; items <= 528; items++) /* one wave at most */
        cr_assert(kcu_gather_split_count(1 << 20, items, 132) * items <= 528, "items %ld", (long)items);
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

/* docs/algorithm.md's worked values (d = 128, max_new = 50). */
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

/* ------------------------------------------------ against refimpl */
/* These close the chain GPU -> kcu_ref -> refimpl: gpu_check compares the
 * kernels with kcu_ref (which needs only libc), and these compare kcu_ref
 * with refimpl's own functions. */
#include "rkv.h"

static rkv_head make_head(int d, int G, int64_t n, uint16_t *K, uint16_t *V)
{
    rkv_head h = {0, 0, d, G, RKV_DTYPE_BF16, n, n, K, V};
    return h;
}

Test(kcu_refimpl, bf16_conversion_matches)
{
    uint64_t s = 1234;
    for (int t = 0; t < 200000; t++) {
        float x = (float)(kcu_rng_normal(&s) * (t % 2 ? 1e-3 : 300.0));
        cr_assert_eq(kcu_f32_to_bf16(x), rkv_f32_to_bf16(x), "x=%a", (double)x);
        uint16_t h = (uint16_t)kcu_rng_next(&s);
        float a = kcu_bf16_to_f32(h), b = rkv_bf16_to_f32(h);
        cr_assert(memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b));
    }
}

Test(kcu_refimpl, radix_topk_equals_rkv_topk_with_ties)
{
    int64_t ns[] = {1, 7, 63, 127, 1000, 4099};
    uint64_t s = 55;
    for (int a = 0; a < 6; a++) {
        int64_t n = ns[a];
        double *sc = malloc((size_t)n * sizeof *sc);
        int32_t *i1 = malloc((size_t)n * sizeof *i1), *i2 = malloc((size_t)n * sizeof *i2);
        uint64_t *keys = malloc((size_t)n * sizeof *keys);
        int64_t *take = malloc((size_t)n * sizeof *take);
        for (int64_t j = 0; j < n; j++)
            sc[j] = (j % 5 == 0) ? -0.0 : (j % 7 == 0 ? 0.0 : floor(kcu_rng_normal(&s) * 3.0));
        int64_t kk[] = {1, 2, n / 2 + 1, n - 1, n};
        for (int b = 0; b < 5; b++) {
            int64_t k = kk[b];
            if (k < 1 || k > n)
                continue;
            rkv_topk(sc, n, k, i1);
            int64_t m = kcu_topk_host(sc, n, k, i2, keys, take);
            cr_assert_eq(m, k);
            for (int64_t j = 0; j < k; j++)
                cr_assert_eq(i1[j], i2[j], "n=%ld k=%ld j=%ld", (long)n, (long)k, (long)j);
        }
        free(sc);
        free(i1);
        free(i2);
        free(keys);
        free(take);
    }
}

Test(kcu_refimpl, pool_window_equals_rkv_pool1d)
{
    enum { N = 1001 };
    double in[N], ref[N];
    uint64_t s = 9;
    for (int j = 0; j < N; j++)
        in[j] = floor(kcu_rng_uniform(&s) * 50.0);
    int64_t kernels[] = {1, 4, 7, 63, 2001};
    for (int a = 0; a < 5; a++) {
        rkv_pool1d(in, N, kernels[a], RKV_POOL_MAX, ref);
        for (int64_t j = 0; j < N; j++) {
            int64_t lo, hi;
            kcu_pool_window(j, N, kernels[a], &lo, &hi);
            double m = in[lo];
            for (int64_t t = lo + 1; t <= hi; t++)
                m = in[t] > m ? in[t] : m;
            cr_assert_eq(m, ref[j], "kernel %ld j %ld", (long)kernels[a], (long)j);
        }
    }
}

/* The GPU kernel's arithmetic (q pre-scaled, online softmax per split, LSE
 * merge of the splits, all f32) against rkv_attend (one-pass softmax) and
 * against kcu_ref_attend (double). */
Test(kcu_refimpl, split_lse_attention_equals_rkv_attend)
{
    enum { C = 4099, D = 128, G = 4 };
    uint64_t s = 77;
    uint16_t *K = rand_bf16(C * D, &s, 1.0), *V = rand_bf16(C * D, &s, 1.0);
    float q[G * D], ref[G * D];
    double dref[G * D];
    for (int i = 0; i < G * D; i++)
        q[i] = (float)(kcu_rng_normal(&s) * 1.5);
    rkv_head h = make_head(D, G, C, K, V);
    float *ws = malloc(((size_t)C * G + 2 * D) * sizeof(float));
    rkv_attend(&h, q, NULL, C, ref, NULL, ws);
    kcu_ref_attend(K, V, D, G, q, NULL, C, dref);
    int splits[] = {1, 3, 33, 128};
    const float scale = 1.0f / sqrtf((float)D);
    for (int a = 0; a < 4; a++) {
        for (int g = 0; g < G; g++) {
            float M = -INFINITY, L = 0, A[D] = {0};
            for (int sp = 0; sp < splits[a]; sp++) {
                int64_t lo, hi;
                kcu_split_range(C, splits[a], sp, 16, &lo, &hi);
                float m = -INFINITY, l = 0, acc[D] = {0};
                for (int64_t t = lo; t < hi; t++) {
                    float sc = 0, p;
                    for (int i = 0; i < D; i++)
                        sc += q[g * D + i] * scale * kcu_bf16_to_f32(K[t * D + i]);
                    float f = kcu_online_add(&m, &l, sc, &p);
                    for (int i = 0; i < D; i++)
                        acc[i] = acc[i] * f + p * kcu_bf16_to_f32(V[t * D + i]);
                }
                float f1, f2;
                float mm = kcu_lse_merge(M, m, &f1, &f2);
                L = L * f1 + l * f2;
                for (int i = 0; i < D; i++)
                    A[i] = A[i] * f1 + acc[i] * f2;
                M = mm;
            }
            for (int i = 0; i < D; i++) {
                double o = A[i] / L;
                cr_assert_float_eq(o, ref[g * D + i], 1e-6 + 1e-5 * fabs(ref[g * D + i]), "splits %d", splits[a]);
                cr_assert_float_eq(o, dref[g * D + i], 1e-6 + 1e-5 * fabs(dref[g * D + i]));
            }
        }
    }
    /* sparse: an index list gives the same as rkv_attend over it */
    int32_t idx[300];
    for (int i = 0; i < 300; i++)
        idx[i] = i * 13 + 2;
    rkv_attend(&h, q, idx, 300, ref, NULL, ws);
    kcu_ref_attend(K, V, D, G, q, idx, 300, dref);
    for (int i = 0; i < G * D; i++)
        cr_assert_float_eq(dref[i], ref[i], 1e-6 + 1e-5 * fabs(dref[i]));
    free(ws);
    free(K);
    free(V);
}

/* Stage 2 end to end: kcu_ref's pipeline (the GPU's arithmetic) selects
 * exactly refimpl's `hsa` positions and dims. */
struct hsa_case {
    int64_t C, p, r, k;
    int G, d, page_gran, dup;
};

static void run_hsa_case(struct hsa_case c, uint64_t seed)
{
    uint64_t s = seed;
    const int d = c.d, G = c.G;
    const int64_t C = c.C, p = c.p, np = kcu_npages(C, p);
    uint16_t *K = rand_bf16(C * d, &s, 1.0), *V = rand_bf16(C * d, &s, 1.0);
    if (c.dup) /* period 2p: pages repeat, page scores tie exactly */
        for (int64_t t = 2 * p; t < C; t++)
            memcpy(K + t * d, K + (t % (2 * p)) * d, (size_t)d * 2);
    float *q = malloc(sizeof(float) * G * d);
    for (int i = 0; i < G * d; i++)
        q[i] = (float)kcu_rng_normal(&s);

    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = C;
    rq.max_new = 0;
    rq.budget = 2;
    rq.d = d;
    rq.G = G;
    rq.page_size = p;
    rq.topr = c.r;
    rq.topk = c.k;
    rq.granularity = c.page_gran ? RKV_GRAN_PAGE : RKV_GRAN_TOKEN;
    rkv_params prm;
    kv_err err;
    cr_assert_eq(rkv_params_resolve("hsa", &rq, &prm, &err), 0, "%s", err.msg);
    cr_assert(prm.page_size == p && prm.topr == c.r && prm.topk == c.k);
    rkv_head h = make_head(d, G, C, K, V);
    void *st = calloc(1, prm.method->state_bytes(&prm, C));
    void *ws = calloc(1, rkv_scratch_bytes(&prm, C));
    prm.method->state_init(st, &prm, C);
    rkv_prefill_in in = {.n_end = C, .w = 0, .Qw = NULL, .turn = 0};
    cr_assert_eq(prm.method->prefill(st, &prm, &h, &in, ws), 0);
    rkv_step_out o;
    memset(&o, 0, sizeof o);
    o.cap = C;
    o.pos = malloc(sizeof(int32_t) * G * C);
    o.count = malloc(sizeof(int64_t) * G);
    o.out = malloc(sizeof(float) * G * d);
    o.dims = malloc(sizeof(int32_t) * G * d);
    cr_assert_eq(prm.method->step(st, &prm, &h, q, &o, ws), 0);

    int64_t npc = np + 2;
    uint16_t *aux = malloc(sizeof(uint16_t) * kcu_aux_rows(d, p) * npc);
    int32_t *dims = malloc(sizeof(int32_t) * d), *pos = malloc(sizeof(int32_t) * (C + p));
    double *gsum = malloc(sizeof(double) * d), *tau = malloc(sizeof(double) * G);
    double *z = malloc(sizeof(double) * G * np), *avg = malloc(sizeof(double) * np);
    void *scr = malloc((size_t)d * 32);
    uint64_t *keys = malloc(sizeof(uint64_t) * np);
    int64_t *take = malloc(sizeof(int64_t) * np), *w = malloc(sizeof(int64_t) * np);
    kcu_ref_pages_build(K, C, d, p, npc, aux);
    int r = kcu_ref_hsa_dims(q, G, d, (int)c.r, dims, gsum, tau, scr);
    kcu_ref_hsa_page_scores(aux, npc, d, p, G, q, dims, r, gsum, tau, np, z);
    kcu_ref_hsa_average(z, G, np, C, p, avg);
    int64_t n = kcu_ref_hsa_select(avg, np, C, p, c.k, c.page_gran, pos, keys, take, w);

    cr_assert_eq(o.ndims, r);
    for (int t = 0; t < r; t++)
        cr_assert_eq(o.dims[t], dims[t], "dim %d", t);
    cr_assert_eq(o.count[0], n, "C=%ld p=%ld k=%ld: refimpl %ld, kcu %ld", (long)C, (long)p, (long)c.k,
                 (long)o.count[0], (long)n);
    for (int64_t t = 0; t < n; t++)
        cr_assert_eq(o.pos[t], pos[t], "C=%ld p=%ld k=%ld t=%ld", (long)C, (long)p, (long)c.k, (long)t);
    double *ref = malloc(sizeof(double) * G * d);
    kcu_ref_attend(K, V, d, G, q, pos, n, ref);
    for (int i = 0; i < G * d; i++)
        cr_assert_float_eq(o.out[i], ref[i], 1e-5 + 1e-4 * fabs(ref[i]));
    free(ref);
    free(K);
    free(V);
    free(q);
    free(st);
    free(ws);
    free(o.pos);
    free(o.count);
    free(o.out);
    free(o.dims);
    free(aux);
    free(dims);
    free(pos);
    free(gsum);
    free(tau);
    free(z);
    free(avg);
    free(scr);
    free(keys);
    free(take);
    free(w);
}

Test(kcu_refimpl, hsa_selection_equals_refimpl)
{
    struct hsa_case cases[] = {
        {1596, 3, 61, 128, 4, 128, 0, 0},  /* docs/algorithm.md's S=16384, t=256 shape */
        {4099, 7, 40, 301, 4, 128, 0, 1},  /* ties */
        {1111, 16, 20, 500, 8, 64, 0, 0},  /* G = 8, d = 64 */
        {2000, 4, 32, 129, 4, 128, 1, 0},  /* page granularity */
        {2000, 4, 32, 129, 4, 128, 1, 1},  /* page granularity with ties */
        {211, 1, 128, 50, 1, 128, 0, 0},   /* p = 1, all dims */
        {127, 3, 5, 200, 2, 64, 0, 0},     /* k > C */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_hsa_case(cases[i], 100 + i);
}

/* Stage 1: kcu_ref (double logits) against rkv_stage1_select (fp32 sgemm
 * logits): the kept sets may differ only at near-ties of the pooled votes. */
Test(kcu_refimpl, stage1_kept_equals_refimpl_up_to_near_ties)
{
    enum { S = 2003, D = 128, G = 4, W = 32, P = 400 };
    uint64_t s = 314;
    uint16_t *K = rand_bf16(S * D, &s, 1.0);
    for (int64_t t = 97; t < S; t++) /* repeated keys: exact ties in votes */
        if (t % 3 == 0)
            memcpy(K + t * D, K + (t % 97) * D, D * 2);
    float *Qw = malloc(sizeof(float) * G * W * D);
    for (int i = 0; i < G * W * D; i++)
        Qw[i] = (float)(kcu_rng_normal(&s) * 1.2);
    int32_t *cand = malloc(sizeof(int32_t) * S), *kept = malloc(sizeof(int32_t) * P), *rk = malloc(sizeof(int32_t) * P);
    for (int j = 0; j < S; j++)
        cand[j] = j;
    rkv_head h = make_head(D, G, S, K, K);
    void *ws = malloc(rkv_stage1_ws_bytes(S, W, G, D));
    int64_t n = rkv_stage1_select(&h, cand, S, Qw, W, P, 63, RKV_POOL_MAX, 1, kept, ws);
    double *votes = malloc(sizeof(double) * S), *pooled = malloc(sizeof(double) * S);
    void *scr = malloc((size_t)S * 24);
    int64_t m = kcu_ref_stage1(K, S, D, G, Qw, W, P, 63, votes, pooled, rk, scr);
    cr_assert_eq(n, P);
    cr_assert_eq(m, P);
    for (int i = 0; i < W; i++)
        cr_assert_eq(kept[P - W + i], rk[P - W + i]);
    int64_t npre = S - W;
    int64_t *ta = calloc((size_t)npre, sizeof *ta), *tb = calloc((size_t)npre, sizeof *tb), nd;
    for (int i = 0; i < P - W; i++) {
        ta[rk[i]] = 1;
        tb[kept[i]] = 1;
    }
    cr_assert_eq(kcu_compare_takes(pooled, ta, tb, npre, 1e-5, &nd), 0, "%ld differing, not near-ties", (long)nd);
    cr_log_info("stage 1 vs refimpl: %ld kept positions differ (near-ties)", (long)nd);
    free(K);
    free(Qw);
    free(cand);
    free(kept);
    free(rk);
    free(ws);
    free(votes);
    free(pooled);
    free(scr);
    free(ta);
    free(tb);
}

/* The GPU check's budget split equals rkv_params_resolve("rocketkv") on
 * every case of the 7 × 4 sweep. A case refimpl refuses is not skipped: it
 * is counted and fails the test with its reason (a silent skip would let a
 * resolver regression shrink the sweep to nothing). */
Test(kcu_refimpl, rocketkv_split_equals_params_resolve)
{
    int64_t Ss[] = {100, 4099, 16384, 32768, 65536, 96256, 131072};
    int64_t ts[] = {64, 256, 1024, 4096};
    int refused = 0, compared = 0;
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 4; b++) {
            rkv_request rq;
            rkv_request_defaults(&rq);
            rq.context = Ss[a];
            rq.budget = ts[b];
            rq.model_max_len = 131072;
            rkv_params p;
            kv_err err;
            if (rkv_params_resolve("rocketkv", &rq, &p, &err) != 0) {
                cr_log_error("S=%ld t=%ld: rkv_params_resolve refused: %s", (long)Ss[a], (long)ts[b], err.msg);
                refused++;
                continue;
            }
            compared++;
            kcu_rkv_split o;
            kcu_rkv_split_compute(Ss[a], 50, ts[b], 131072, 128, -1.0, &o);
            cr_assert(o.capacity == p.capacity && o.P == p.prompt_budget && o.p == p.page_size && o.r == p.topr &&
                          o.k == p.topk,
                      "S=%ld t=%ld: kcu cap %ld P %ld p %ld r %ld k %ld; refimpl %ld %ld %ld %ld %ld", (long)Ss[a],
                      (long)ts[b], (long)o.capacity, (long)o.P, (long)o.p, (long)o.r, (long)o.k, (long)p.capacity,
                      (long)p.prompt_budget, (long)p.page_size, (long)p.topr, (long)p.topk);
        }
    cr_assert(refused == 0 && compared == 7 * 4, "%d of 28 cases refused by rkv_params_resolve, %d compared", refused,
              compared);
}
