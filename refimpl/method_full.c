/* method_full.c — `full`: dense attention over every cached token.
 * Per step and (layer, KV head): reads C·2d elements, appends 2d. */
#include "method_internal.h"

static int full_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_full, p);
    return 0;
}

static size_t full_state_bytes(const rkv_params *p, int64_t max_tokens) { return 64; }
static void full_state_init(void *st, const rkv_params *p, int64_t max_tokens) {}
static int full_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    return 0;
}

static int full_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    const int64_t n = h->n, b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    for (int64_t j = 0; j < n; j++)
        o->pos[j] = (int32_t)j;
    o->shared = 1;
    o->count[0] = n;
    rkv_attend(h, q, NULL, n, o->out, NULL, ws);
    o->cache_tokens = n;
    o->bytes.kv_full = n * 2 * p->d * b;
    o->bytes.kv_write = 2 * p->d * b;
    o->cache = NULL;
    return 0;
}

static void full_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), C = p->S + step + 1;
    *t = (rkv_traffic){0};
    t->kv_full = C * 2 * p->d * b;
    t->kv_write = 2 * p->d * b;
}

static void full_storage(const rkv_params *p, rkv_storage *s)
{
    s->kv_bytes = p->S_total * 2 * p->d * (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->aux_bytes = 0;
}

const rkv_method_type rkv_method_full = {
    .name = "full",
    .summary = "dense attention over the whole cache (the reference)",
    .traits = {.exact_read = RKV_READ_REGION, .aux_read = RKV_READ_STREAM, .per_query_head = 0, .dense = 1},
    .resolve = full_resolve,
    .state_bytes = full_state_bytes,
    .state_init = full_state_init,
    .prefill = full_prefill,
    .step = full_step,
    .traffic = full_traffic,
    .storage = full_storage,
    .data_independent = 1,
};
