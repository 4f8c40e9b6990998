/* test_eval.c — llm_eval's arithmetic on numbers worked by hand: the
 * perplexity of a hand-computed logit set, greedy agreement counts (ties to
 * the lower id), the passkey key, its detection, and the per-context row. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "llm_eval.h"

/* V = 3. Step 1: logits (0, ln 2, 0) -> softmax (1/4, 1/2, 1/4); the target
 * 1 costs ln 2. Step 2: logits (0, 0, 0) -> 1/3 each; the target 2 costs
 * ln 3. Perplexity = exp((ln 2 + ln 3) / 2) = sqrt(6). */
Test(eval, perplexity_of_hand_computed_logits)
{
    const float s1[3] = {0.0f, (float)M_LN2, 0.0f}, s2[3] = {0.0f, 0.0f, 0.0f};
    llm_eval_set ref;
    memset(&ref, 0, sizeof ref);
    int32_t g[2];
    llm_eval_score(&ref, s1, 3, 1, &g[0], 1);
    llm_eval_score(&ref, s2, 3, 2, &g[1], 1);
    cr_assert_eq(ref.n, 2);
    cr_assert_float_eq(ref.nll, log(6.0), 1e-6);
    cr_assert_float_eq(llm_eval_perplexity(&ref), sqrt(6.0), 1e-6);
    /* the reference's greedy tokens: 1, then 0 (three-way tie, lower id) */
    cr_assert_eq(g[0], 1);
    cr_assert_eq(g[1], 0);
    cr_assert_float_eq(llm_eval_agreement(&ref), 1.0, 0.0);
}

/* A method whose greedy tokens are 2 (logits 0,0,5) then 0 (1,0,0): it
 * agrees with the reference's (1, 0) on one step of two. */
Test(eval, greedy_agreement_counts)
{
    int32_t g[2] = {1, 0};
    const float m1[3] = {0.0f, 0.0f, 5.0f}, m2[3] = {1.0f, 0.0f, 0.0f};
    llm_eval_set e;
    memset(&e, 0, sizeof e);
    llm_eval_score(&e, m1, 3, 1, &g[0], 0);
    llm_eval_score(&e, m2, 3, 2, &g[1], 0);
    cr_assert_eq(e.agree, 1);
    cr_assert_float_eq(llm_eval_agreement(&e), 0.5, 0.0);
    cr_assert(g[0] == 1 && g[1] == 0, "a method never overwrites the reference's tokens");
    /* step 1: -log(1 / (2 + e^5)); step 2: -log(1 / (2 + e)) */
    cr_assert_float_eq(e.nll, log(2.0 + exp(5.0)) + log(2.0 + exp(1.0)), 1e-5);
}

Test(eval, passkey_key_and_detection)
{
    /* 512·7919 = 4054528 = 45·90000 + 4528 */
    cr_assert_eq(llm_eval_passkey_key(512, 0, 0), 14528);
    /* 512·7919 + 50·104729 + 1·1299709 = 10590687 = 117·90000 + 60687 */
    cr_assert_eq(llm_eval_passkey_key(512, 50, 1), 70687);
    cr_assert(llm_eval_passkey_found(" 12345. Remember", 12345));
    cr_assert(!llm_eval_passkey_found(" 1234 5", 12345));
    cr_assert(llm_eval_passkey_found("is 00007.", 7), "five digits, zero-padded");
    cr_assert(!llm_eval_passkey_found("is 7.", 7));
}

/* Depths 3, one trial: method (1, 0, 1), reference (1, 1, 0): mean 2/3;
 * kept Σ min = 1 + 0 + 0 = 1 of the reference's 2 -> 0.5. */
Test(eval, passkey_row)
{
    llm_eval_set e, f;
    memset(&e, 0, sizeof e);
    memset(&f, 0, sizeof f);
    e.pk_ok[1][0] = 1; e.pk_ok[1][2] = 1;
    f.pk_ok[1][0] = 1; f.pk_ok[1][1] = 1;
    llm_eval_pk_row row;
    llm_eval_passkey_row(&e, &f, 1, 3, 1, &row);
    cr_assert_float_eq(row.mean, 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(row.vs_full, 0.5, 1e-12);
    cr_assert_eq(row.full_fails, 0);
    /* two trials per cell, a reference that never succeeds */
    memset(&f, 0, sizeof f);
    llm_eval_passkey_row(&e, &f, 1, 3, 2, &row);
    cr_assert_float_eq(row.mean, 2.0 / 6.0, 1e-12);
    cr_assert_eq(row.full_fails, 1);
}

/* Two contexts, nd = 2 depths × 2 trials = 4 prompts each. Context 1:
 * a = (1, 1, 0, 1), b = (0, 1, 0, 1): the per-prompt differences are
 * (1, 0, 0, 0), so the paired interval is the bootstrap of the mean of that
 * vector, computed here directly (kv_boot_mean with y NULL), and holds the
 * point value 1/4. Context 0, placed first in the arrays, must not leak in:
 * a and b agree there, giving exactly [0, 0]. a all found against b none
 * found gives exactly [1, 1]; without kept outcomes, -1. */
Test(eval, passkey_pair_interval_by_hand)
{
    uint8_t oa[8] = {1, 0, 1, 1, 1, 1, 0, 1}, ob[8] = {1, 0, 1, 1, 0, 1, 0, 1};
    llm_eval_set a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.pk_out = oa;
    b.pk_out = ob;
    const kv_boot_cfg bc = {500, 0.95, KV_BOOT_SEED};
    double lo, hi, wlo, whi;
    cr_assert_eq(llm_eval_passkey_pair_ci(&a, &b, 0, 2, 2, &bc, &lo, &hi), 0);
    cr_assert(lo == 0.0 && hi == 0.0, "same outcomes: %g-%g", lo, hi);
    cr_assert_eq(llm_eval_passkey_pair_ci(&a, &b, 1, 2, 2, &bc, &lo, &hi), 0);
    const double d[4] = {1, 0, 0, 0};
    const int64_t goff[2] = {0, 4};
    cr_assert_eq(kv_boot_mean(d, NULL, goff, 1, &bc, &wlo, &whi), 0);
    cr_assert(lo == wlo && hi == whi, "%g-%g against %g-%g", lo, hi, wlo, whi);
    cr_assert(lo <= 0.25 && 0.25 <= hi && hi < 1.0, "%g-%g", lo, hi);
    uint8_t all[8] = {1, 1, 1, 1, 1, 1, 1, 1}, none[8] = {0};
    a.pk_out = all;
    b.pk_out = none;
    cr_assert_eq(llm_eval_passkey_pair_ci(&a, &b, 1, 2, 2, &bc, &lo, &hi), 0);
    cr_assert(lo == 1.0 && hi == 1.0, "%g-%g", lo, hi);
    b.pk_out = NULL;
    cr_assert_eq(llm_eval_passkey_pair_ci(&a, &b, 1, 2, 2, &bc, &lo, &hi), -1);
}
