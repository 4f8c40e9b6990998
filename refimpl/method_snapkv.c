/* method_snapkv.c — stage 1 alone: `snapkv-gqa` (RocketKV's stage 1: one
 * score vector per KV head, summed over the G query heads, max pool kernel
 * 63) and the original `snapkv` (selection per query head, max pool kernel 7
 * by default, so a GQA model stores G copies). The budget t is the prompt
 * budget P (SnapKV's max_capacity_prompt); generated tokens are appended and
 * never evicted, so decode attends P + generated tokens densely.
 *
 * Multi-turn: each later prefill appends the turn's tokens and runs stage 1
 * again over what is cached (evictions compound, as in the paper). */
#include "method_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int rows;      /* 1 (gqa) or G */
    int64_t cap;
    int64_t seen;
    rkv_list row[64];
    int32_t *kept; /* (cap) */
} snap_state;

static int snap_resolve_common(const rkv_request *rq, rkv_params *p, const rkv_method_type *m, int gqa,
                               kv_err *err)
{
    rkv_params_base(rq, m, p);
    p->window_size = rq->window > 0 ? rq->window : 32;
    p->kernel_size = rq->kernel > 0 ? rq->kernel : (gqa ? 63 : 7);
    p->pool = rq->pool >= 0 ? (rkv_pool)rq->pool : RKV_POOL_MAX;
    p->prompt_budget = rq->budget < p->S ? rq->budget : p->S;
    p->evicts = p->prompt_budget < p->S;
    if (p->evicts && p->window_size > p->prompt_budget)
        p->window_size = p->prompt_budget;
    p->capacity = p->prompt_budget + (p->S_total - p->S);
    return 0;
}

static int gqa_resolve(const rkv_request *rq, rkv_params *p, kv_err *err);
static int snap_resolve(const rkv_request *rq, rkv_params *p, kv_err *err);

static int rows_of(const rkv_params *p) { return strcmp(p->method->name, "snapkv") ? 1 : p->G; }

static size_t snap_state_bytes(const rkv_params *p, int64_t max_tokens)
{
    return rkv_round64(sizeof(snap_state)) + (size_t)(rows_of(p) + 1) * rkv_round64((size_t)max_tokens * 4);
}

static void snap_state_init(void *st, const rkv_params *p, int64_t max_tokens)
{
    snap_state *s = st;
    char *cur = (char *)st + rkv_round64(sizeof *s);
    s->rows = rows_of(p);
    s->cap = max_tokens;
    for (int r = 0; r < s->rows; r++) {
        s->row[r].pos = rkv_carve(&cur, (size_t)max_tokens * 4);
        s->row[r].cap = max_tokens;
    }
    s->kept = rkv_carve(&cur, (size_t)max_tokens * 4);
}

static int snap_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    snap_state *s = st;
    for (int r = 0; r < s->rows; r++)
        rkv_list_push_range(&s->row[r], s->seen, in->n_end);
    s->seen = in->n_end;
    for (int r = 0; r < s->rows; r++) {
        rkv_list *l = &s->row[r];
        if (l->n <= p->prompt_budget)
            continue;
        rkv_head hv = *h;
        const float *Qw = in->Qw;
        if (s->rows > 1) { /* per query head: a one-head view of the group */
            hv.G = 1;
            Qw = in->Qw + (size_t)r * (size_t)in->w * (size_t)p->d;
        }
        int64_t k = rkv_stage1_select_memo(&hv, l->pos, l->n, Qw, in->w, p->prompt_budget, p->kernel_size, p->pool, 1,
                                           s->kept, ws, s->rows > 1 ? NULL : in->memo);
        if (k < 0)
            return -1;
        memcpy(l->pos, s->kept, (size_t)k * 4);
        l->n = k;
    }
    return 0;
}

static int snap_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    snap_state *s = st;
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    for (int r = 0; r < s->rows; r++)
        rkv_list_push_range(&s->row[r], s->seen, h->n);
    s->seen = h->n;
    o->bytes = (rkv_traffic){0};
    if (s->rows == 1) {
        rkv_attend_shared(h, q, s->row[0].pos, s->row[0].n, o, ws);
        o->cache = s->row[0].pos;
        o->cache_shared = 1;
        o->cache_n[0] = s->row[0].n;
        o->cache_tokens = s->row[0].n;
        o->bytes.kv_exact = s->row[0].n * 2 * p->d * b;
    } else {
        o->shared = 0;
        o->cache_tokens = 0;
        for (int g = 0; g < p->G; g++) {
            rkv_head hg = *h;
            hg.G = 1;
            int32_t *row = o->pos + (size_t)g * (size_t)o->cap;
            memcpy(row, s->row[g].pos, (size_t)s->row[g].n * 4);
            o->count[g] = s->row[g].n;
            rkv_attend(&hg, q + (size_t)g * (size_t)p->d, row, s->row[g].n, o->out + (size_t)g * (size_t)p->d, NULL,
                       ws);
            o->cache_n[g] = s->row[g].n;
            if (s->row[g].n > o->cache_tokens) o->cache_tokens = s->row[g].n;
            o->bytes.kv_exact += s->row[g].n * 2 * p->d * b;
        }
        o->cache = o->pos;
        o->cache_stride = o->cap;
        o->cache_shared = 0;
    }
    o->bytes.kv_write = s->rows * 2 * p->d * b;
    return 0;
}

static void snap_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), C = p->prompt_budget + step + 1;
    const int rows = rows_of(p);
    *t = (rkv_traffic){0};
    t->kv_exact = rows * C * 2 * p->d * b;
    t->kv_write = rows * 2 * p->d * b;
}

static void snap_storage(const rkv_params *p, rkv_storage *s)
{
    s->kv_bytes = rows_of(p) * p->capacity * 2 * p->d * (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->aux_bytes = 0;
}

const rkv_method_type rkv_method_snapkv_gqa = {
    .name = "snapkv-gqa",
    .summary = "stage 1 alone: SnapKV with GQA-group scores, max pool 63, budget = prompt budget",
    .traits = {.exact_read = RKV_READ_REGION, .aux_read = RKV_READ_STREAM, .per_query_head = 0, .stage1 = 1},
    .resolve = gqa_resolve,
    .state_bytes = snap_state_bytes,
    .state_init = snap_state_init,
    .prefill = snap_prefill,
    .step = snap_step,
    .traffic = snap_traffic,
    .storage = snap_storage,
    .data_independent = 1,
};

const rkv_method_type rkv_method_snapkv = {
    .name = "snapkv",
    .summary = "original SnapKV: selection per query head (G copies for GQA), max pool 7",
    .traits = {.exact_read = RKV_READ_REGION, .aux_read = RKV_READ_STREAM, .per_query_head = 1, .stage1 = 1},
    .resolve = snap_resolve,
    .state_bytes = snap_state_bytes,
    .state_init = snap_state_init,
    .prefill = snap_prefill,
    .step = snap_step,
    .traffic = snap_traffic,
    .storage = snap_storage,
    .data_independent = 1,
};

static int gqa_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    return snap_resolve_common(rq, p, &rkv_method_snapkv_gqa, 1, err);
}

static int snap_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    return snap_resolve_common(rq, p, &rkv_method_snapkv, 0, err);
}
