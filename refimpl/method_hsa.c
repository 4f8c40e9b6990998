/* method_hsa.c — stage 2 of RocketKV, hybrid sparse attention, as an engine
 * over a cache list (used by hsa, rocketkv and rocketkv-mt), and the `hsa`
 * method itself (stage 2 over the whole, uncompressed cache).
 *
 * Per decode step, for the G queries of a group (docs/algorithm.md):
 *   1. a_i = Σ_h |q_h[i]|; I = top-r dims (ties to the lower dim), ascending;
 *   2. g_i = sign(Σ_h q_h[i]); K̂_j[i] = max_j[i] if g_i > 0 else min_j[i];
 *   3. s_h(j) = Σ_{i∈I} q_h[i]·K̂_j[i] — fp32, accumulated sequentially in
 *      ascending dim order (products and sums rounded separately);
 *   4. z_h(j) = s_h(j)/τ_h with τ_h = √(d·‖q_h[I]‖₁/‖q_h‖₁) (double); softmax
 *      per head over the C tokens (page-constant: page weight = tokens in the
 *      page), exp and sums in double in page order; average over the G heads;
 *   5. top-k tokens by that average (ties to the lower slot) — whole pages in
 *      score order plus the first tokens of a boundary page — or, with page
 *      granularity, ⌈k/p⌉ whole pages; plus an optional local window of the
 *      newest W slots;
 *   6. exact attention of all G heads over the selected K/V rows.
 * Aux data: element-wise min and max of each page's keys, rounded to the aux
 * dtype, built once over the cache and updated per appended token. */
#include "method_internal.h"

#include <math.h>
#include <string.h>

size_t rkv_stage2_bytes(const rkv_params *p, int64_t max_tokens)
{
    int64_t np = max_tokens / (p->page_size > 0 ? p->page_size : 1) + 2;
    return 2 * rkv_round64((size_t)max_tokens * 4) + 2 * rkv_round64((size_t)np * (size_t)p->d * 4);
}

void rkv_stage2_init(rkv_stage2 *s, char **cursor, const rkv_params *p, int64_t max_tokens)
{
    s->npages_cap = max_tokens / (p->page_size > 0 ? p->page_size : 1) + 2;
    s->cache.pos = rkv_carve(cursor, (size_t)max_tokens * 4);
    s->cache.cap = max_tokens;
    s->kept = rkv_carve(cursor, (size_t)max_tokens * 4);
    s->pmin = rkv_carve(cursor, (size_t)s->npages_cap * (size_t)p->d * 4);
    s->pmax = rkv_carve(cursor, (size_t)s->npages_cap * (size_t)p->d * 4);
}

/* Folds the key at cache slot `slot` (history position pos) into its page. */
static void page_fold(rkv_stage2 *s, const rkv_params *p, const rkv_head *h, int64_t slot, int32_t pos, float *row)
{
    const size_t b = rkv_dtype_bytes(h->dtype);
    rkv_decode(h->dtype, (const char *)h->K + (size_t)pos * (size_t)p->d * b, (size_t)p->d, row);
    const int64_t pg = slot / p->page_size;
    const int first = slot % p->page_size == 0;
    float *mn = s->pmin + (size_t)pg * (size_t)p->d, *mx = s->pmax + (size_t)pg * (size_t)p->d;
    for (int i = 0; i < p->d; i++) {
        float v = rkv_quantize(p->aux_dtype, row[i]);
        if (first || v < mn[i]) mn[i] = v;
        if (first || v > mx[i]) mx[i] = v;
    }
    s->npages = pg + 1;
}

void rkv_stage2_build(rkv_stage2 *s, const rkv_params *p, const rkv_head *h)
{
    float row[RKV_MAX_HEAD_DIM];
    s->npages = 0;
    for (int64_t j = 0; j < s->cache.n; j++)
        page_fold(s, p, h, j, s->cache.pos[j], row);
}

void rkv_stage2_append(rkv_stage2 *s, const rkv_params *p, const rkv_head *h)
{
    float row[RKV_MAX_HEAD_DIM];
    for (int64_t pos = s->seen; pos < h->n; pos++) {
        rkv_list_push(&s->cache, (int32_t)pos);
        page_fold(s, p, h, s->cache.n - 1, (int32_t)pos, row);
    }
    s->seen = h->n;
}

/* The top-k heap serves both selections of a step: r of the d dimensions and
 * k of the C cached tokens, so it holds max(C, RKV_MAX_HEAD_DIM). */
static int64_t heap_len(int64_t C) { return C > RKV_MAX_HEAD_DIM ? C : RKV_MAX_HEAD_DIM; }

size_t rkv_stage2_ws_bytes(const rkv_params *p, int64_t max_tokens)
{
    int64_t np = max_tokens / (p->page_size > 0 ? p->page_size : 1) + 2;
    return rkv_round64((size_t)np * (size_t)p->G * 8)      /* z (G, np) */
         + rkv_round64((size_t)max_tokens * 8)              /* per-token average */
         + 2 * rkv_round64((size_t)max_tokens * 4)          /* selected slots, merge */
         + rkv_round64((size_t)np * 8)                      /* page average */
         + rkv_round64((size_t)heap_len(max_tokens) * 8)    /* top-k heap */
         + rkv_round64(((size_t)max_tokens * (size_t)p->G + 4 * (size_t)p->d) * 4) + 4096;
}

/* One stage-2 decode step, written as docs/algorithm.md's numbered steps
 * (1 dims, 2-4 bound scores and softmax, 5 top-k, 6 exact attention) in
 * order over one carved workspace; kept whole so it reads against the
 * document step by step. */
int rkv_stage2_step(rkv_stage2 *s, const rkv_params *p, const rkv_head *h, const float *q,
                    rkv_step_out *o, void *ws)
{
    const int d = p->d, G = p->G;
    const int64_t C = s->cache.n, np = s->npages, pg = p->page_size;
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    const int64_t r = p->topr < d ? p->topr : d;
    char *cur = ws;
    double *z = rkv_carve(&cur, (size_t)np * (size_t)G * 8);
    double *tok = rkv_carve(&cur, (size_t)C * 8);
    int32_t *sel = rkv_carve(&cur, (size_t)C * 4);
    int32_t *merged = rkv_carve(&cur, (size_t)C * 4);
    double *pavg = rkv_carve(&cur, (size_t)np * 8);
    double *heap = rkv_carve(&cur, (size_t)heap_len(C) * 8);
    float *aws = (float *)cur;

    /* 1. dims */
    double a[RKV_MAX_HEAD_DIM], gs[RKV_MAX_HEAD_DIM];
    for (int i = 0; i < d; i++) {
        a[i] = 0.0;
        gs[i] = 0.0;
        for (int g = 0; g < G; g++) {
            a[i] += fabs((double)q[(size_t)g * (size_t)d + (size_t)i]);
            gs[i] += (double)q[(size_t)g * (size_t)d + (size_t)i];
        }
    }
    int32_t *I = o->dims;
    rkv_topk_ws(a, d, r, I, heap);
    o->ndims = r;
    o->dims_shared = 1;
    /* 2–4. bound scores, τ, per-head softmax over tokens, group mean */
    for (int64_t j = 0; j < np; j++)
        pavg[j] = 0.0;
    for (int g = 0; g < G; g++) {
        const float *qg = q + (size_t)g * (size_t)d;
        double l1 = 0.0, l1I = 0.0;
        for (int i = 0; i < d; i++) l1 += fabs((double)qg[i]);
        for (int64_t m = 0; m < r; m++) l1I += fabs((double)qg[I[m]]);
        const double tau = sqrt((double)d * (l1 > 0 ? l1I / l1 : 1.0));
        double *zg = z + (size_t)g * (size_t)np;
        double mx = -INFINITY;
        for (int64_t j = 0; j < np; j++) {
            const float *mn = s->pmin + (size_t)j * (size_t)d, *mxp = s->pmax + (size_t)j * (size_t)d;
            float acc = 0.0f;
            for (int64_t m = 0; m < r; m++) {
                const int i = I[m];
                acc += qg[i] * (gs[i] > 0.0 ? mxp[i] : mn[i]);
            }
            zg[j] = (double)acc / tau;
            if (zg[j] > mx) mx = zg[j];
        }
        double Z = 0.0;
        for (int64_t j = 0; j < np; j++) {
            const int64_t cnt = (j + 1) * pg <= C ? pg : C - j * pg;
            zg[j] = exp(zg[j] - mx);
            Z += (double)cnt * zg[j];
        }
        for (int64_t j = 0; j < np; j++)
            pavg[j] += zg[j] / Z;
    }
    for (int64_t j = 0; j < np; j++)
        pavg[j] /= (double)G;
    /* 5. top-k */
    int64_t nsel;
    if (p->granularity == RKV_GRAN_PAGE && pg > 1) {
        int64_t kp = (p->topk + pg - 1) / pg;
        if (kp > np) kp = np;
        int32_t *pages = merged;
        rkv_topk_ws(pavg, np, kp, pages, heap);
        nsel = 0;
        for (int64_t m = 0; m < kp; m++)
            for (int64_t t = (int64_t)pages[m] * pg; t < ((int64_t)pages[m] + 1) * pg && t < C; t++)
                sel[nsel++] = (int32_t)t;
    } else {
        for (int64_t t = 0; t < C; t++)
            tok[t] = pavg[t / pg];
        nsel = p->topk < C ? p->topk : C;
        rkv_topk_ws(tok, C, nsel, sel, heap);
    }
    if (p->local_window > 0) { /* union with the newest W slots, ascending */
        int64_t from = C - p->local_window < 0 ? 0 : C - p->local_window, m = 0, i = 0;
        for (int64_t t = from; t < C || i < nsel;) {
            if (i < nsel && (t >= C || sel[i] < t)) merged[m++] = sel[i++];
            else if (i < nsel && sel[i] == t) { merged[m++] = sel[i++]; t++; }
            else merged[m++] = (int32_t)t++;
        }
        memcpy(sel, merged, (size_t)m * 4);
        nsel = m;
    }
    for (int64_t m = 0; m < nsel; m++)
        o->pos[m] = s->cache.pos[sel[m]];
    /* 6. exact attention */
    rkv_attend_shared(h, q, o->pos, nsel, o, aws);
    o->cache = s->cache.pos;
    o->cache_shared = 1;
    o->cache_n[0] = C;
    o->cache_tokens = C;
    o->pages_scored = np;
    o->bytes = (rkv_traffic){0};
    o->bytes.aux = np * r * ba;
    o->bytes.kv_exact = nsel * 2 * d * b;
    o->bytes.scores = 2 * (int64_t)G * np * 4;
    o->bytes.kv_write = 2 * d * b + (pg == 1 ? d : 2 * d) * ba;
    return 0;
}

/* Analytic counts of one stage-2 step over a cache of C tokens. */
static void stage2_traffic(const rkv_params *p, int64_t C, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    const int64_t pg = p->page_size, np = (C + pg - 1) / pg;
    int64_t k = p->topk < C ? p->topk : C;
    if (p->granularity == RKV_GRAN_PAGE && pg > 1) {
        int64_t kp = (p->topk + pg - 1) / pg;
        k = kp * pg < C ? kp * pg : C; /* exact unless the partial last page is chosen */
    }
    if (p->local_window > 0) /* upper bound: window disjoint from the selection */
        k = k + p->local_window < C ? k + p->local_window : C;
    *t = (rkv_traffic){0};
    t->aux = np * (p->topr < p->d ? p->topr : p->d) * ba;
    t->kv_exact = k * 2 * p->d * b;
    t->scores = 2 * (int64_t)p->G * np * 4;
    t->kv_write = 2 * p->d * b + (pg == 1 ? p->d : 2 * p->d) * ba;
}

void rkv_stage2_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    stage2_traffic(p, rkv_cache_tokens(p, step), t);
}

/* stage2_traffic is a function of C alone: the attended rows k(C) grow with
 * C until C reaches K + local_window (K = topk, or its whole pages), and are
 * constant after; the page count ceil(C / pg) steps at every page. So the
 * traffic stands while C stays in its page once k(C) is constant. */
int64_t rkv_stage2_traffic_until(const rkv_params *p, int64_t step)
{
    const int64_t C = rkv_cache_tokens(p, step), pg = p->page_size > 0 ? p->page_size : 1;
    int64_t K = p->topk;
    if (p->granularity == RKV_GRAN_PAGE && pg > 1)
        K = (p->topk + pg - 1) / pg * pg;
    const int64_t c_end = C < K + p->local_window ? C : (C + pg - 1) / pg * pg;
    return rkv_step_until_cache_tokens(p, step, c_end);
}

/* ---- the `hsa` method: stage 2 over the uncompressed cache ---- */
static int hsa_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_hsa, p);
    if (p->S_total <= rq->budget) {
        p->page_size = 1;
        p->topr = rq->d;
        p->topk = p->S_total;
    } else {
        if (rq->budget < 2)
            return kv_errf(err, "hsa: budget %lld too small: k = floor(t/2) must be at least 1", (long long)rq->budget);
        rkv_stage2_shape(rq, p->S_total, p);
    }
    return 0;
}

typedef struct {
    rkv_stage2 s2;
} hsa_state;

static size_t hsa_state_bytes(const rkv_params *p, int64_t max_tokens)
{
    return rkv_round64(sizeof(hsa_state)) + rkv_stage2_bytes(p, max_tokens);
}

static void hsa_state_init(void *st, const rkv_params *p, int64_t max_tokens)
{
    hsa_state *s = st;
    char *cur = (char *)st + rkv_round64(sizeof *s);
    rkv_stage2_init(&s->s2, &cur, p, max_tokens);
}

static int hsa_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    hsa_state *s = st;
    rkv_stage2_append(&s->s2, p, h);
    return 0;
}

static int hsa_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    hsa_state *s = st;
    rkv_stage2_append(&s->s2, p, h);
    int rc = rkv_stage2_step(&s->s2, p, h, q, o, ws);
    o->cache = NULL; /* nothing evicted */
    return rc;
}

static void hsa_storage(const rkv_params *p, rkv_storage *s)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), ba = (int64_t)rkv_dtype_bytes(p->aux_dtype);
    const int64_t pg = p->page_size;
    s->kv_bytes = p->S_total * 2 * p->d * b;
    s->aux_bytes = pg == 1 ? p->S_total * p->d * ba : (p->S_total + pg - 1) / pg * 2 * p->d * ba;
}

const rkv_method_type rkv_method_hsa = {
    .name = "hsa",
    .summary = "stage 2 alone: hybrid sparse attention (page min/max, top-r dims, top-k) over the full cache",
    .traits = {.exact_read = RKV_READ_PAGE, .aux_read = RKV_READ_DIMS_PAGES,
               .per_query_head = 0, .stage2 = 1},
    .resolve = hsa_resolve,
    .state_bytes = hsa_state_bytes,
    .state_init = hsa_state_init,
    .prefill = hsa_prefill,
    .step = hsa_step,
    .traffic = rkv_stage2_traffic,
    .traffic_until = rkv_stage2_traffic_until,
    .storage = hsa_storage,
    .data_independent = 1,
};
