/* method_quest.c — `quest` (Tang et al. 2024): no eviction; page min/max over
 * all d dims for pages of p = 16 tokens; per query head the upper bound
 * Σ_i max(q_i·min_i, q_i·max_i) per page; attend the max(3, ⌊t/p⌋) best whole
 * pages (ties to the lower page) of each head. When S' <= t every page is
 * attended (dense).
 *
 * Traffic per step and (layer, KV head): the page table once for the group
 * (⌈C/p⌉·2d aux elements), each head's pages (G·tokens·2d; data-dependent
 * when a partial last page is chosen), page scores (2·G·⌈C/p⌉ fp32), and the
 * append plus one page update. docs/algorithm.md's traffic table: pages·p·2d
 * per query head; with GQA each query head reads its own pages, hence G×. */
#include "method_internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t seen, n, npages, cap_pages;
    float *pmin, *pmax; /* (cap_pages, d) */
} quest_state;

static int quest_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_quest, p);
    p->page_size = rq->page_size > 0 ? rq->page_size : 16;
    int64_t pages = rq->budget / p->page_size;
    if (pages < 3) pages = 3;
    p->topk = pages * p->page_size; /* tokens attended per head (whole pages) */
    return 0;
}

static size_t quest_state_bytes(const rkv_params *p, int64_t max_tokens)
{
    int64_t np = max_tokens / p->page_size + 2;
    return rkv_round64(sizeof(quest_state)) + 2 * rkv_round64((size_t)np * (size_t)p->d * 4);
}

static void quest_state_init(void *st, const rkv_params *p, int64_t max_tokens)
{
    quest_state *s = st;
    char *cur = (char *)st + rkv_round64(sizeof *s);
    s->cap_pages = max_tokens / p->page_size + 2;
    s->pmin = rkv_carve(&cur, (size_t)s->cap_pages * (size_t)p->d * 4);
    s->pmax = rkv_carve(&cur, (size_t)s->cap_pages * (size_t)p->d * 4);
}

static void quest_append(quest_state *s, const rkv_params *p, const rkv_head *h, float *row)
{
    const size_t b = rkv_dtype_bytes(h->dtype);
    for (int64_t pos = s->seen; pos < h->n; pos++) {
        rkv_decode(h->dtype, (const char *)h->K + (size_t)pos * (size_t)p->d * b, (size_t)p->d, row);
        int64_t pg = s->n / p->page_size;
        float *mn = s->pmin + (size_t)pg * (size_t)p->d, *mx = s->pmax + (size_t)pg * (size_t)p->d;
        for (int i = 0; i < p->d; i++) {
            float v = rkv_quantize(p->aux_dtype, row[i]);
            if (s->n % p->page_size == 0 || v < mn[i]) mn[i] = v;
            if (s->n % p->page_size == 0 || v > mx[i]) mx[i] = v;
        }
        s->n++;
        s->npages = (s->n + p->page_size - 1) / p->page_size;
    }
    s->seen = h->n;
}

static int quest_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    quest_append(st, p, h, ws);
    return 0;
}

static int quest_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    quest_state *s = st;
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    quest_append(s, p, h, ws);
    const int64_t C = s->n, np = s->npages, pg = p->page_size;
    int64_t nsel = p->topk / pg;
    if (p->S_total <= p->budget || nsel > np)
        nsel = np;
    char *cur = ws;
    double *score = rkv_carve(&cur, (size_t)np * 8);  /* (np) */
    int32_t *sel = rkv_carve(&cur, (size_t)np * 4);   /* (nsel) */
    double *heap = rkv_carve(&cur, (size_t)np * 8);   /* (nsel) */
    float *aws = (float *)cur;
    o->shared = 0;
    o->bytes = (rkv_traffic){0};
    for (int g = 0; g < p->G; g++) {
        const float *qg = q + (size_t)g * (size_t)p->d;
        for (int64_t j = 0; j < np; j++) {
            const float *mn = s->pmin + (size_t)j * (size_t)p->d, *mx = s->pmax + (size_t)j * (size_t)p->d;
            double acc = 0.0;
            for (int i = 0; i < p->d; i++) {
                float a = qg[i] * mn[i], c = qg[i] * mx[i];
                acc += a > c ? a : c;
            }
            score[j] = acc;
        }
        rkv_topk_ws(score, np, nsel, sel, heap);
        int32_t *row = o->pos + (size_t)g * (size_t)o->cap;
        int64_t m = 0;
        for (int64_t k = 0; k < nsel; k++)
            for (int64_t t = sel[k] * pg; t < (sel[k] + 1) * pg && t < C; t++)
                row[m++] = (int32_t)t;
        o->count[g] = m;
        rkv_head hg = *h;
        hg.G = 1;
        rkv_attend(&hg, qg, row, m, o->out + (size_t)g * (size_t)p->d, NULL, aws);
        o->bytes.kv_exact += m * 2 * p->d * b;
    }
    o->cache = NULL;
    o->cache_tokens = C;
    o->pages_scored = np;
    o->bytes.aux = np * 2 * p->d * ba;
    o->bytes.scores = 2 * (int64_t)p->G * np * 4;
    o->bytes.kv_write = 2 * p->d * b + 2 * p->d * ba;
    return 0;
}

static void quest_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    const int64_t C = p->S + step + 1, pg = p->page_size, np = (C + pg - 1) / pg;
    int64_t tok = p->topk;
    if (p->S_total <= p->budget || tok > C) tok = C;
    *t = (rkv_traffic){0};
    t->aux = np * 2 * p->d * ba;
    t->kv_exact = (int64_t)p->G * tok * 2 * p->d * b;
    t->scores = 2 * (int64_t)p->G * np * 4;
    t->kv_write = 2 * p->d * b + 2 * p->d * ba;
}

static void quest_storage(const rkv_params *p, rkv_storage *s)
{
    s->kv_bytes = p->S_total * 2 * p->d * (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->aux_bytes = (p->S_total + p->page_size - 1) / p->page_size * 2 * p->d * (int64_t)rkv_dtype_bytes(p->aux_dtype);
}

const rkv_method_type rkv_method_quest = {
    .name = "quest",
    .summary = "Quest: per-head page bounds (p=16, all dims), attend max(3, t/p) whole pages; no eviction",
    .traits = {.exact_read = RKV_READ_PAGE, .aux_read = RKV_READ_STREAM, .per_query_head = 1},
    .resolve = quest_resolve,
    .state_bytes = quest_state_bytes,
    .state_init = quest_state_init,
    .prefill = quest_prefill,
    .step = quest_step,
    .traffic = quest_traffic,
    .storage = quest_storage,
    .data_independent = 0,
};
