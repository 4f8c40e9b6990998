/* method_sparq.c — `sparq` (SparQ Attention, Ribar et al. 2024): per query
 * head, the r dims with the largest |q_i| (r = clamp(round(d·t/S'), 1, d)),
 * approximate scores from those columns of a transposed copy of K, softmax
 * with SparQ's temperature √(d·‖q_I‖₁/‖q‖₁), exact attention over the top
 * k = ⌊t/2⌋ tokens, and mean-V reallocation (default on): the output is
 * blended with the mean of V by the approximate probability mass captured.
 * When S' <= t every token is attended and nothing is blended.
 *
 * Traffic per step and (layer, KV head): G·C·r of Kᵀ, G·k·2d exact, fp32
 * scores 2·G·C·4 bytes, append 2d + d (Kᵀ). */
#include "method_internal.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t seen;
    double *vsum; /* (d) running Σ v over all tokens, in position order */
} sparq_state;

static int sparq_resolve(const rkv_request *rq, rkv_params *p, kv_err *err)
{
    rkv_params_base(rq, &rkv_method_sparq, p);
    if (p->S_total <= rq->budget) {
        p->topr = rq->d;
        p->topk = p->S_total;
    } else {
        if (rq->budget < 2)
            return kv_errf(err, "sparq: budget %lld too small: k = floor(t/2) must be at least 1",
                           (long long)rq->budget);
        int64_t r = (int64_t)llround((double)rq->d * (double)rq->budget / (double)p->S_total);
        p->topr = r < 1 ? 1 : r > rq->d ? rq->d : r;
        p->topk = rq->budget / 2;
    }
    if (rq->topr > 0) p->topr = rq->topr;
    if (rq->topk > 0) p->topk = rq->topk;
    p->mean_v = rq->mean_v >= 0 ? rq->mean_v : 1;
    return 0;
}

static size_t sparq_state_bytes(const rkv_params *p, int64_t max_tokens)
{
    return rkv_round64(sizeof(sparq_state)) + rkv_round64((size_t)p->d * 8);
}

static void sparq_state_init(void *st, const rkv_params *p, int64_t max_tokens)
{
    sparq_state *s = st;
    char *cur = (char *)st + rkv_round64(sizeof *s);
    s->vsum = rkv_carve(&cur, (size_t)p->d * 8);
}

static void sparq_append(sparq_state *s, const rkv_params *p, const rkv_head *h, float *row)
{
    const size_t b = rkv_dtype_bytes(h->dtype);
    for (int64_t pos = s->seen; pos < h->n; pos++) {
        rkv_decode(h->dtype, (const char *)h->V + (size_t)pos * (size_t)p->d * b, (size_t)p->d, row);
        for (int i = 0; i < p->d; i++)
            s->vsum[i] += row[i];
    }
    s->seen = h->n;
}

static int sparq_prefill(void *st, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws)
{
    sparq_append(st, p, h, ws);
    return 0;
}

static int sparq_step(void *st, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *o, void *ws)
{
    sparq_state *s = st;
    const int64_t n = h->n, d = p->d, b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    const size_t kb = rkv_dtype_bytes(h->dtype);
    sparq_append(s, p, h, ws);
    const int64_t r = p->topr, k = p->topk < n ? p->topk : n;
    char *cur = ws;
    double *absq = rkv_carve(&cur, (size_t)d * 8);                 /* (d) */
    double *sc = rkv_carve(&cur, (size_t)n * 8);                   /* (n) */
    double *heap = rkv_carve(&cur, (size_t)(n > d ? n : d) * 8);   /* top-k heap */
    float *row = rkv_carve(&cur, (size_t)d * 4);                   /* (d) */
    float *aws = (float *)cur;
    o->shared = 0;
    o->ndims = r;
    o->dims_shared = 0;
    for (int g = 0; g < p->G; g++) {
        const float *qg = q + (size_t)g * (size_t)d;
        double l1 = 0.0, l1I = 0.0;
        for (int i = 0; i < d; i++) {
            absq[i] = fabs((double)qg[i]);
            l1 += absq[i];
        }
        int32_t *I = o->dims + (size_t)g * (size_t)d;
        rkv_topk_ws(absq, d, r, I, heap);
        for (int64_t m = 0; m < r; m++)
            l1I += absq[I[m]];
        const double tau = sqrt((double)d * (l1 > 0 ? l1I / l1 : 1.0));
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            rkv_decode(h->dtype, (const char *)h->K + (size_t)j * (size_t)d * kb, (size_t)d, row);
            float acc = 0.0f;
            for (int64_t m = 0; m < r; m++)
                acc += qg[I[m]] * row[I[m]];
            sc[j] = (double)acc / tau;
            if (sc[j] > mx) mx = sc[j];
        }
        double z = 0.0;
        for (int64_t j = 0; j < n; j++) {
            sc[j] = exp(sc[j] - mx);
            z += sc[j];
        }
        int32_t *sel = o->pos + (size_t)g * (size_t)o->cap;
        rkv_topk_ws(sc, n, k, sel, heap);
        o->count[g] = k;
        float *og = o->out + (size_t)g * (size_t)d;
        rkv_head hg = *h;
        hg.G = 1;
        rkv_attend(&hg, qg, sel, k, og, NULL, aws);
        if (p->mean_v && k < n) {
            double alpha = 0.0;
            for (int64_t m = 0; m < k; m++)
                alpha += sc[sel[m]];
            alpha /= z;
            for (int i = 0; i < d; i++)
                og[i] = (float)(alpha * og[i] + (1.0 - alpha) * (s->vsum[i] / (double)n));
        }
    }
    o->cache = NULL;
    o->cache_tokens = n;
    o->pages_scored = n;
    o->bytes = (rkv_traffic){0};
    o->bytes.aux = (int64_t)p->G * n * r * b;
    o->bytes.kv_exact = (int64_t)p->G * k * 2 * d * b;
    o->bytes.scores = 2 * (int64_t)p->G * n * 4;
    o->bytes.kv_write = 3 * d * b;
    return 0;
}

static void sparq_traffic(const rkv_params *p, int64_t step, rkv_traffic *t)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype), C = p->S + step + 1;
    const int64_t k = p->topk < C ? p->topk : C;
    *t = (rkv_traffic){0};
    t->aux = (int64_t)p->G * C * p->topr * b;
    t->kv_exact = (int64_t)p->G * k * 2 * p->d * b;
    t->scores = 2 * (int64_t)p->G * C * 4;
    t->kv_write = 3 * p->d * b;
}

static void sparq_storage(const rkv_params *p, rkv_storage *s)
{
    const int64_t b = (int64_t)rkv_dtype_bytes(p->kv_dtype);
    s->kv_bytes = p->S_total * 2 * p->d * b;
    s->aux_bytes = p->S_total * p->d * b;
}

const rkv_method_type rkv_method_sparq = {
    .name = "sparq",
    .summary = "SparQ: per-head top-r |q| dims over K-transposed, exact top-k=t/2, mean-V reallocation",
    .traits = {.exact_read = RKV_READ_ROW, .aux_read = RKV_READ_DIMS_TOKENS, .per_query_head = 1},
    .resolve = sparq_resolve,
    .state_bytes = sparq_state_bytes,
    .state_init = sparq_state_init,
    .prefill = sparq_prefill,
    .step = sparq_step,
    .traffic = sparq_traffic,
    .storage = sparq_storage,
    .data_independent = 1,
};
