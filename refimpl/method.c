/* method.c — the method table, parameter resolution shared by all methods,
 * and the helpers every method's step uses. Each method lives in its own
 * file (method_<name>.c) and is listed once in rkv_methods[] below. */
#include "method_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const rkv_method_type *const rkv_methods[] = {
    &rkv_method_full,   &rkv_method_exact_topk, &rkv_method_streaming, &rkv_method_snapkv,
    &rkv_method_snapkv_gqa, &rkv_method_quest,  &rkv_method_sparq,     &rkv_method_hsa,
    &rkv_method_rocketkv, &rkv_method_rocketkv_mt, NULL,
};

const rkv_method_type *rkv_method_find(const char *name)
{
    for (int i = 0; rkv_methods[i]; i++)
        if (!strcmp(rkv_methods[i]->name, name))
            return rkv_methods[i];
    return NULL;
}

const rkv_method_type *rkv_method_get(const char *name, kv_err *err)
{
    const rkv_method_type *m = rkv_method_find(name);
    if (m)
        return m;
    char list[512] = "";
    for (int i = 0; rkv_methods[i]; i++) {
        strncat(list, rkv_methods[i]->name, sizeof list - strlen(list) - 1);
        if (rkv_methods[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    kv_errf(err, "unknown method '%s' (expected one of: %s)", name, list);
    return NULL;
}

const rkv_method_type *rkv_method_baseline(void)
{
    return &rkv_method_full;
}

const char *rkv_read_layout_name(rkv_read_layout l)
{
    static const char *const names[] = {"stream", "region", "row", "page", "dims-pages", "dims-tokens"};
    return (unsigned)l < sizeof names / sizeof names[0] ? names[l] : "?";
}

void rkv_traits_format(const rkv_traits *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "exact=%s aux=%s %s%s%s%s%s%s", rkv_read_layout_name(t->exact_read),
             rkv_read_layout_name(t->aux_read), t->per_query_head ? "per-query-head" : "per-kv-head",
             t->dense ? " dense" : "", t->stage1 ? " stage1" : "", t->stage1_per_turn ? " stage1-per-turn" : "",
             t->stage2 ? " stage2" : "", t->cache_capped ? " cache-capped" : "");
}

void rkv_request_defaults(rkv_request *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->context = 32768;
    rq->max_new = 50;
    rq->budget = 1024;
    rq->model_max_len = 0; /* 0: no cap */
    rq->d = 128;
    rq->G = 4;
    rq->kv_dtype = RKV_DTYPE_BF16;
    rq->aux_dtype = RKV_DTYPE_BF16;
    rq->window = -1;
    rq->kernel = -1;
    rq->pool = -1;
    rq->page_size = -1;
    rq->topr = -1;
    rq->topk = -1;
    rq->rho = -1.0;
    rq->split = RKV_SPLIT_DEFAULT;
    rq->granularity = RKV_GRAN_TOKEN;
    rq->local_window = 0;
    rq->skip_layers = 0;
    rq->sink_tokens = -1;
    rq->mean_v = -1;
}

int64_t rkv_total_tokens(const rkv_request *rq)
{
    int64_t s = rq->context + rq->max_new;
    if (rq->model_max_len > 0 && s > rq->model_max_len)
        s = rq->model_max_len;
    return s;
}

int rkv_check_shape(const char *who, int d, int G, kv_err *err)
{
    if (d < 2 || d > RKV_MAX_HEAD_DIM || d % 2 != 0)
        return kv_errf(err, "%s: head_dim %d must be even and in 2..%d", who, d, RKV_MAX_HEAD_DIM);
    if (G < 1 || G > RKV_MAX_GROUP)
        return kv_errf(err, "%s: group size %d must be in 1..%d", who, G, RKV_MAX_GROUP);
    return 0;
}

int rkv_check_request(const rkv_request *rq, const char *method, kv_err *err)
{
    if (rq->context < 1)
        return kv_errf(err, "%s: context must be at least 1 token, got %lld", method, (long long)rq->context);
    if (rq->max_new < 0)
        return kv_errf(err, "%s: --new must be >= 0, got %lld", method, (long long)rq->max_new);
    if (rkv_check_shape(method, rq->d, rq->G, err) != 0)
        return -1;
    if (rq->window > RKV_MAX_WINDOW)
        return kv_errf(err, "%s: --window %lld exceeds %d", method, (long long)rq->window, RKV_MAX_WINDOW);
    if (rq->model_max_len > 0 && rq->context > rq->model_max_len)
        return kv_errf(err, "%s: context %lld exceeds the model's max_position_embeddings %lld", method,
                       (long long)rq->context, (long long)rq->model_max_len);
    /* S' = S + new is capped at the model's range, so more new tokens than
     * that range can never be generated: refused up front, not simulated */
    if (rq->model_max_len > 0 && rq->max_new > rq->model_max_len)
        return kv_errf(err, "%s: --new %lld exceeds the model's max_position_embeddings %lld", method,
                       (long long)rq->max_new, (long long)rq->model_max_len);
    if (rq->budget < 1)
        return kv_errf(err, "%s: budget must be at least 1 token, got %lld", method, (long long)rq->budget);
    if (rq->topr > rq->d)
        return kv_errf(err, "%s: --topr %lld exceeds head_dim %d", method, (long long)rq->topr, rq->d);
    if (rq->page_size == 0 || rq->topr == 0 || rq->topk == 0 || rq->window == 0 || rq->kernel == 0)
        return kv_errf(err, "%s: page size, topr, topk, window and kernel must be positive", method);
    if (rq->rho >= 0.0 && !(rq->rho <= 1.0))
        return kv_errf(err, "%s: --rho must be in [0, 1], got %g", method, rq->rho);
    return 0;
}

void rkv_params_base(const rkv_request *rq, const rkv_method_type *m, rkv_params *p)
{
    memset(p, 0, sizeof *p);
    p->method = m;
    p->S = rq->context;
    p->max_new = rq->max_new;
    p->S_total = rkv_total_tokens(rq);
    p->budget = rq->budget;
    p->d = rq->d;
    p->G = rq->G;
    p->kv_dtype = rq->kv_dtype;
    p->aux_dtype = rq->aux_dtype_set ? rq->aux_dtype : rq->kv_dtype;
    p->prompt_budget = rq->context;
    p->capacity = p->S_total;
    p->c = fmax(1.0, (double)p->S_total / (double)rq->budget);
    p->c2 = 1.0;
    p->granularity = rq->granularity;
    p->split = rq->split;
    p->local_window = rq->local_window;
    p->skip_layers = rq->skip_layers;
    p->pool = RKV_POOL_MAX;
}

/* docs/algorithm.md, RocketKV step 3, for a cache of `capacity` tokens:
 * k = ⌊t/2⌋; c₂ = max(1, capacity/t); p = ⌈√c₂⌉ but 1 if ⌈√c₂⌉ > c₂;
 * r = clamp(⌊d·p/c₂⌋, 1, d). Overrides from the request win. */
void rkv_stage2_shape(const rkv_request *rq, int64_t capacity, rkv_params *p)
{
    const int64_t t = rq->budget;
    p->c2 = fmax(1.0, (double)capacity / (double)t);
    int64_t pg = (int64_t)ceil(sqrt(p->c2));
    if ((double)pg > p->c2)
        pg = 1;
    int64_t r = (int64_t)floor((double)rq->d * (double)pg / p->c2);
    if (r < 1) r = 1;
    if (r > rq->d) r = rq->d;
    p->topk = t / 2;
    p->page_size = pg;
    p->topr = r;
    if (rq->page_size > 0) p->page_size = rq->page_size;
    if (rq->topr > 0) p->topr = rq->topr;
    if (rq->topk > 0) p->topk = rq->topk;
}

void rkv_params_finish(rkv_params *p)
{
    rkv_traffic tf, tm;
    rkv_params pf = *p;
    pf.method = rkv_method_baseline();
    pf.prompt_budget = p->S;
    int64_t last = p->S_total - p->S - 1;
    if (last < 0) last = 0;
    pf.method->traffic(&pf, last, &tf);
    p->method->traffic(p, last, &tm);
    int64_t a = rkv_traffic_total(&tf), b = rkv_traffic_total(&tm);
    p->compression_ratio = b > 0 ? (double)a / (double)b : 0.0;
}

int rkv_params_resolve(const char *method, const rkv_request *rq, rkv_params *p, kv_err *err)
{
    const rkv_method_type *m = rkv_method_get(method, err);
    if (!m)
        return -1;
    if (rkv_check_request(rq, method, err) != 0)
        return -1;
    if (m->resolve(rq, p, err) != 0)
        return -1;
    rkv_params_finish(p);
    return 0;
}

int64_t rkv_cache_tokens(const rkv_params *p, int64_t step)
{
    int64_t kept = p->prompt_budget < p->S ? p->prompt_budget : p->S;
    int64_t c = kept + step + 1;
    if (p->method->traits.cache_capped && c > p->budget)
        c = p->budget;
    return c;
}

int64_t rkv_step_until_cache_tokens(const rkv_params *p, int64_t step, int64_t c_end)
{
    /* C(j) = kept + j + 1 until the cap, then the cap: C(j) <= c_end while
     * j - step <= c_end - C(step), and forever once the cap is <= c_end */
    if (p->method->traits.cache_capped && c_end >= p->budget)
        return INT64_MAX;
    const int64_t more = c_end - rkv_cache_tokens(p, step);
    return more > INT64_MAX - step ? INT64_MAX : step + more;
}

int64_t rkv_params_decode_steps(const rkv_params *p)
{
    return p->S_total - p->S;
}

size_t rkv_scratch_bytes(const rkv_params *p, int64_t max_tokens)
{
    /* the largest of: attention over everything (+ probabilities, + a top-k
     * heap), stage 1 over everything, a stage-2 step */
    const size_t n = (size_t)max_tokens, G = (size_t)p->G, d = (size_t)p->d;
    size_t att = 2 * rkv_round64((n * G + 4 * d) * sizeof(float)) + rkv_round64(G * d * 4) + rkv_round64(n * 8)
               + 3 * rkv_round64(n * 8 + d * 8) + 4096;
    size_t s1 = rkv_stage1_ws_bytes(max_tokens, p->window_size > 0 ? p->window_size : 1, p->G, p->d);
    size_t s2 = rkv_stage2_ws_bytes(p, max_tokens);
    size_t m = att > s1 ? att : s1;
    return (m > s2 ? m : s2) + 65536;
}

void rkv_attend_shared(const rkv_head *h, const float *q, const int32_t *pos, int64_t n,
                       rkv_step_out *o, float *ws)
{
    o->shared = 1;
    o->count[0] = n;
    if (pos != o->pos)
        memcpy(o->pos, pos, (size_t)n * sizeof *pos);
    rkv_attend(h, q, o->pos, n, o->out, NULL, ws);
}
