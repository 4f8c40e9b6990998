/* test_capi.c — capi/ (kva_), the flat C API the Python package calls:
 * results checked against hand-worked values and the library's own calls. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv_jsonr.h"
#include "kva.h"

Test(capi, params_json_states_the_resolved_parameters_and_traits)
{
    char *json = NULL, err[KVA_ERR_LEN];
    cr_assert_eq(kva_params("llama3.1-8b", "rocketkv", 1024, 32768, 50, &json, err), 0, "%s", err);
    kv_jsonr_doc doc;
    kv_err e;
    cr_assert_eq(kv_jsonr_load_mem(&doc, "kva_params", json, strlen(json), &e), 0, "%s", e.msg);
    const kv_jsonr_node *p = kv_jsonr_get(doc.root, "params"), *t = kv_jsonr_get(doc.root, "traits");
    /* k = t/2 = 512 exact tokens; G = 32/8 query heads per KV head, d = 128 */
    cr_assert_eq(kv_jsonr_get(p, "topk")->num, 512);
    cr_assert_eq(kv_jsonr_get(doc.root, "G")->num, 4);
    cr_assert_eq(kv_jsonr_get(doc.root, "d")->num, 128);
    cr_assert(kv_jsonr_get(t, "stage1")->boolean && kv_jsonr_get(t, "stage2")->boolean);
    kv_jsonr_free(&doc);
    kva_free(json);
    cr_assert_eq(kva_params("llama3.1-8b", "nope", 1024, 32768, 50, &json, err), -1);
    cr_assert(strstr(err, "unknown method 'nope'"), "%s", err);
}

/* d = 4, q = (2, 0, 0, 0), keys (0, ...) and (1, ...): logits 0 and 1,
 * weights 1/(1+e), e/(1+e) on values (1, 2) and (5, 6). */
Test(capi, attend_by_hand_and_its_errors)
{
    const float q[4] = {2, 0, 0, 0}, k[8] = {0, 0, 0, 0, 1, 0, 0, 0}, v[8] = {1, 2, 0, 0, 5, 6, 0, 0};
    float out[4];
    char err[KVA_ERR_LEN];
    cr_assert_eq(kva_attend(q, 1, 4, k, v, 2, NULL, 0, out, err), 0, "%s", err);
    const double p1 = M_E / (1 + M_E);
    cr_assert_float_eq(out[0], 1 + 4 * p1, 1e-6);
    cr_assert_float_eq(out[1], 2 + 4 * p1, 1e-6);
    const int32_t bad[1] = {2};
    cr_assert_eq(kva_attend(q, 1, 4, k, v, 2, bad, 1, out, err), -1);
    cr_assert(strstr(err, "outside the rows"), "%s", err);
}

/* A page per token (p = 1), r = d, k = 1: the selected slot is the key with
 * the largest q·k (one head, so the group mean is that head's softmax). */
Test(capi, hsa_select_picks_the_best_key_when_everything_is_exact)
{
    const float q[2] = {1, -1};
    const float k[8] = {0.5f, 0.5f, 2, -1, -1, 2, 1, 0}; /* q·k = 0, 3, -3, 1 */
    int32_t sel[4], dims[2];
    int64_t n;
    int r;
    double ps[4], ts[4];
    char err[KVA_ERR_LEN];
    cr_assert_eq(kva_hsa_select(q, 1, 2, k, 4, 1, 2, 1, 0, 0, sel, &n, dims, &r, ps, ts, err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(sel[0], 1);
    cr_assert_eq(r, 2);
    cr_assert(ts[1] > ts[3] && ts[3] > ts[0] && ts[0] > ts[2]);
    /* local window 2 adds the newest two slots */
    cr_assert_eq(kva_hsa_select(q, 1, 2, k, 4, 1, 2, 1, 0, 2, sel, &n, dims, &r, NULL, NULL, err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert(sel[0] == 1 && sel[1] == 2 && sel[2] == 3);
}
