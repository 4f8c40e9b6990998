/* method_rocketkv.c — `rocketkv` (stage 1 then stage 2, with the adaptive
 * budget split) and `rocketkv-mt` (multi-turn: the full history is kept;
 * every prefill reruns stage 1 over the whole history into a temporary cache
 * that stage 2 then serves for that turn).
 *
 * The split (docs/algorithm.md "RocketKV — the budget split"):
 * S' = min(S + max_new, max length); c = S'/t;
 * ρ = min(0.2 + 0.06·log₂c, 0.8) (or 0.5 with `--split even`, or --rho);
 * capacity = ⌊S'/c^ρ⌋ raised to at least min(2·max_new, S');
 * P = capacity − (S' − S): the prompt keeps what the cache holds once the
 * S' − S tokens that can still be generated are appended (= capacity −
 * max_new unless the model's max length caps S'); then stage 2's k, p, r for
 * that capacity. Decode positions at or past S' are refused (rkv_run).
 * If S' <= t nothing is evicted and stage 2 attends every token (p = 1, r = d,
 * k = S'): the budget covers the whole cache, so reading it all is within
 * budget and the result equals `full` exactly. */
#include "method_internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    rkv_stage2 s2;
} rk_state;

static int rk_resolve_common(const rkv_request *rq, rkv_params *p, const rkv_method_type *m, int mt, kv_err *err)
{
    rkv_params_base(rq, m, p);
    p->window_size = rq->window > 0 ? rq->window : (mt ? 128 : 32);
    p->kernel_size = rq->kernel > 0 ? rq->kernel : 63;
    p->pool = rq->pool >= 0 ? (rkv_pool)rq->pool : RKV_POOL_MAX;
    const int64_t Sp = p->S_total, t = rq->budget;
    if (Sp <= t) {
        p->c = 1.0;
        p->rho = 0.0;
        p->capacity = Sp;
        p->prompt_budget = p->S;
        p->page_size = 1;
        p->topr = rq->d;
        p->topk = Sp;
        return 0;
    }
    if (t < 2)
        return kv_errf(err, "%s: budget %lld too small: k = floor(t/2) must be at least 1", m->name, (long long)t);
    p->c = (double)Sp / (double)t;
    if (rq->rho >= 0.0)
        p->rho = rq->rho;
    else if (rq->split == RKV_SPLIT_EVEN)
        p->rho = 0.5;
    else
        p->rho = fmin(0.2 + 0.06 * log2(p->c), 0.8);
    int64_t cap = (int64_t)floor((double)Sp / pow(p->c, p->rho));
    int64_t floor_cap = 2 * p->max_new < Sp ? 2 * p->max_new : Sp;
    if (cap < floor_cap) cap = floor_cap;
    p->capacity = cap;
    p->prompt_budget = cap - (Sp - p->S);
    if (p->prompt_budget < 1)
        return kv_errf(err, "%s: budget %lld leaves no prompt tokens (capacity %lld, %lld new tokens)", m->name,
                       (long long)t, (long long)cap, (long long)(Sp - p->S));
    if (p->prompt_budget > p->S) p->prompt_budget = p->S;
    p->evicts = p->prompt_budget < p->S;
    if (p->window_size > p->prompt_budget) p->window_size = p->prompt_budget;
    rkv_stage2_shape(rq, cap, p);
    return 0;
}

static int rk_resolve(const rkv_request *rq, rkv_params *p, kv_err *err);
static int mt_resolve(const rkv_request *rq, rkv_params *p, kv_err *err);

static size_t rk_state_bytes(const rkv_params *p, int64_t max_tokens)
{
    return rkv_round64(sizeof(rk_state)) + rkv_stage2_bytes(p, max_tokens);
}

static void rk_state_init(void *st, const rkv_params *p, int64_t max_tokens)
{
    rk_state *s = st;
    char *cur = (char *)st + rkv_round64(sizeof *s);
    rkv_stage2_init(&s->s2, &cur, p, max_tokens);
}

/* Stage 1 over the cache list (candidates), in place, then rebuild pages. */
static int rk_stage1(rk_state *s, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    rkv_list *c = &s->s2.cache;
    if (c->n > p->prompt_budget) {
        int64_t k = rkv_stage1_select_memo(h, c->pos, c->n, in->Qw, in->w, p->prompt_budget, p->kernel_size, p->pool,
                                           1, s->s2.kept, ws, in->memo);
        if (k < 0)
            return -1;
        memcpy(c->pos, s->s2.kept, (size_t)k * 4);
        c->n = k;
    }
    rkv_stage2_build(&s->s2, p, h);
    return 0;
}

/* rocketkv: later turns recompress what is cached plus the new turn. */
static int rk_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    rk_state *s = st;
    rkv_list_push_range(&s->s2.cache, s->s2.seen, in->n_end);
    s->s2.seen = in->n_end;
    return rk_stage1(s, p, h, in, ws);
}

/* rocketkv-mt: every turn selects from the whole history. */
static int mt_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    rk_state *s = st;
    s->s2.cache.n = 0;
    rkv_list_push_range(&s->s2.cache, 0, in->n_end);
    s->s2.seen = in->n_end;
    return rk_stage1(s, p, h, in, ws);
}

static int rk_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    rk_state *s = st;
    rkv_stage2_append(&s->s2, p, h);
    return rkv_stage2_step(&s->s2, p, h, q, o, ws);
}

static void rk_storage(const rkv_params *p, rkv_storage *s)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    const int64_t pg = p->page_size;
    const int mt = !strcmp(p->method->name, "rocketkv-mt");
    s->kv_bytes = (mt ? p->S_total : p->capacity) * 2 * p->d * b;
    s->aux_bytes = pg == 1 ? p->capacity * p->d * ba : (p->capacity + pg - 1) / pg * 2 * p->d * ba;
}

const rkv_method_type rkv_method_rocketkv = {
    .name = "rocketkv",
    .summary = "RocketKV: SnapKV-GQA eviction at prefill + hybrid sparse attention, adaptive split",
    .traits = {.exact_read = RKV_READ_PAGE, .aux_read = RKV_READ_DIMS_PAGES,
               .per_query_head = 0, .stage1 = 1, .stage2 = 1},
    .resolve = rk_resolve,
    .state_bytes = rk_state_bytes,
    .state_init = rk_state_init,
    .prefill = rk_prefill,
    .step = rk_step,
    .traffic = rkv_stage2_traffic,
    .traffic_until = rkv_stage2_traffic_until,
    .storage = rk_storage,
    .data_independent = 1,
};

const rkv_method_type rkv_method_rocketkv_mt = {
    .name = "rocketkv-mt",
    .summary = "RocketKV-MT: full history kept, stage 1 rerun per turn into a temporary cache",
    .traits = {.exact_read = RKV_READ_PAGE, .aux_read = RKV_READ_DIMS_PAGES,
               .per_query_head = 0, .stage1 = 1, .stage1_per_turn = 1, .stage2 = 1},
    .resolve = mt_resolve,
    .state_bytes = rk_state_bytes,
    .state_init = rk_state_init,
    .prefill = mt_prefill,
    .step = rk_step,
    .traffic = rkv_stage2_traffic,
    .traffic_until = rkv_stage2_traffic_until,
    .storage = rk_storage,
    .data_independent = 1,
};

static int rk_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    return rk_resolve_common(rq, p, &rkv_method_rocketkv, 0, err);
}

static int mt_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    return rk_resolve_common(rq, p, &rkv_method_rocketkv_mt, 1, err);
}
