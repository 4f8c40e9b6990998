/* method_exact_topk.c — `exact-topk`, the oracle: per query head, exact
 * scores over all C keys, attend the top t (ties to the lower index). An
 * upper bound on fidelity at a budget, not a deployable method: it reads all
 * of K to find the top t. Per step: K scanned once for the group (C·d), V
 * rows of each head's selection (G·min(t,C)·d), fp32 scores written and read
 * (2·G·C·4 bytes). */
#include "method_internal.h"

#include <math.h>
#include <string.h>

static int xt_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_exact_topk, p);
    p->topk = rq->topk > 0 ? rq->topk : rq->budget;
    return 0;
}

static size_t xt_state_bytes(const rkv_params *p, int64_t max_tokens) { return 64; }
static void xt_state_init(void *st, const rkv_params *p, int64_t max_tokens) {}
static int xt_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    return 0;
}

/* ws layout: probs (G, n) floats | attention ws. */
static int xt_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    const int64_t n = h->n, b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    const int64_t k = p->topk < n ? p->topk : n;
    float *probs = ws;
    float *aws = probs + rkv_round64((size_t)n * (size_t)p->G * sizeof(float)) / sizeof(float);
    float *tmp = aws + rkv_round64(((size_t)n * (size_t)p->G + 4 * (size_t)p->d) * sizeof(float)) / sizeof(float);
    double *heap = (double *)(tmp + rkv_round64((size_t)p->G * (size_t)p->d * sizeof(float)) / sizeof(float));
    /* exact scores: attention over everything gives the probabilities */
    rkv_attend(h, q, NULL, n, tmp, probs, aws);
    o->shared = 0;
    for (int g = 0; g < p->G; g++) {
        int32_t *row = o->pos + (size_t)g * (size_t)o->cap;
        rkv_topk_f_ws(probs + (size_t)g * (size_t)n, n, k, row, heap);
        o->count[g] = k;
        rkv_head hg = *h;
        hg.G = 1;
        rkv_attend(&hg, q + (size_t)g * (size_t)p->d, row, k, o->out + (size_t)g * (size_t)p->d, NULL, aws);
    }
    o->cache_tokens = n;
    o->cache = NULL;
    o->bytes.kv_full = n * p->d * b;
    o->bytes.kv_exact = (int64_t)p->G * k * p->d * b;
    o->bytes.scores = 2 * (int64_t)p->G * n * 4;
    o->bytes.kv_write = 2 * p->d * b;
    return 0;
}

static void xt_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), C = p->S + step + 1;
    const int64_t k = p->topk < C ? p->topk : C;
    *t = (rkv_traffic){0};
    t->kv_full = C * p->d * b;
    t->kv_exact = (int64_t)p->G * k * p->d * b;
    t->scores = 2 * (int64_t)p->G * C * 4;
    t->kv_write = 2 * p->d * b;
}

static void xt_storage(const rkv_params *p, rkv_storage *s)
{
    s->kv_bytes = p->S_total * 2 * p->d * (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->aux_bytes = 0;
}

const rkv_method_type rkv_method_exact_topk = {
    .name = "exact-topk",
    .summary = "oracle: per query head, attend the exact top-t tokens (fidelity upper bound)",
    .traits = {.exact_read = RKV_READ_ROW, .aux_read = RKV_READ_STREAM, .per_query_head = 1},
    .resolve = xt_resolve,
    .state_bytes = xt_state_bytes,
    .state_init = xt_state_init,
    .prefill = xt_prefill,
    .step = xt_step,
    .traffic = xt_traffic,
    .storage = xt_storage,
    .data_independent = 1,
};
