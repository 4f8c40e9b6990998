/* method_streaming.c — `streaming` (StreamingLLM): the first sink_tokens
 * (4) tokens plus the most recent t − 4; everything else is evicted for good.
 * Per step: min(t, C)·2d read, 2d appended. */
#include "method_internal.h"

static int st_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_streaming, p);
    p->sink_tokens = rq->sink_tokens >= 0 ? rq->sink_tokens : 4;
    if (rq->budget <= p->sink_tokens)
        return kv_errf(err, "streaming: budget %lld must exceed the %lld sink tokens", (long long)rq->budget,
                       (long long)p->sink_tokens);
    p->topk = rq->budget;
    p->capacity = rq->budget < p->S_total ? rq->budget : p->S_total;
    p->prompt_budget = rq->budget < p->S ? rq->budget : p->S;
    p->evicts = rq->budget < p->S_total;
    return 0;
}

static size_t st_state_bytes(const rkv_params *p, int64_t max_tokens) { return 64; }
static void st_state_init(void *st, const rkv_params *p, int64_t max_tokens) {}
static int st_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    return 0;
}

static int st_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    const int64_t n = h->n, t = p->budget, b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    int64_t m = 0;
    if (n <= t) {
        for (int64_t j = 0; j < n; j++) o->pos[m++] = (int32_t)j;
    } else {
        for (int64_t j = 0; j < p->sink_tokens; j++) o->pos[m++] = (int32_t)j;
        for (int64_t j = n - (t - p->sink_tokens); j < n; j++) o->pos[m++] = (int32_t)j;
    }
    rkv_attend_shared(h, q, o->pos, m, o, ws);
    o->cache_tokens = m;
    o->cache = o->pos; /* the cache is exactly what is attended */
    o->cache_shared = 1;
    o->cache_n[0] = m;
    o->bytes.kv_exact = m * 2 * p->d * b;
    o->bytes.kv_write = 2 * p->d * b;
    return 0;
}

static void st_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    int64_t C = p->S + step + 1;
    if (C > p->budget) C = p->budget;
    *t = (rkv_traffic){0};
    t->kv_exact = C * 2 * p->d * b;
    t->kv_write = 2 * p->d * b;
}

static void st_storage(const rkv_params *p, rkv_storage *s)
{
    s->kv_bytes = p->capacity * 2 * p->d * (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->aux_bytes = 0;
}

const rkv_method_type rkv_method_streaming = {
    .name = "streaming",
    .summary = "StreamingLLM: 4 sink tokens + the most recent t-4",
    .traits = {.exact_read = RKV_READ_REGION, .aux_read = RKV_READ_STREAM,
               .per_query_head = 0, .cache_capped = 1},
    .resolve = st_resolve,
    .state_bytes = st_state_bytes,
    .state_init = st_state_init,
    .prefill = st_prefill,
    .step = st_step,
    .traffic = st_traffic,
    .storage = st_storage,
    .data_independent = 1,
};
