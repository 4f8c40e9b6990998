/* serve.c — the event loop and the scheduler of srv.h: arrivals, one engine
 * step at a time (schedule, price, apply), preemption by recompute, and the
 * per-request latencies. */
#include "srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { Q_FUTURE, Q_WAITING, Q_RUNNING, Q_DONE };

/* A request's life. */
typedef struct {
    int phase;
    int64_t target;       /* tokens to prefill at this admission: prompt + tokens generated before */
    int64_t filled;       /* of target, prefilled */
    int64_t g;            /* tokens generated (a lockstep member's is gb + D, written here when it leaves) */
    int64_t blocks;       /* KV blocks held */
    int64_t blk_b;        /* the block count blk_next was found for (-1: none yet) */
    int64_t blk_next;     /* decode steps before this one need at most blk_b blocks (decode_need) */
    double y_next;        /* a compressed cache's bytes after decode step blk_next (NaN: not known) */
    int64_t prev, next;   /* running list neighbours, admission order (-1: none) */
    int64_t adm;          /* admission number: the running list's order */
    int64_t gb;           /* lockstep member: g = gb + D at the lockstep's step D */
    int32_t slot;
    int decoding;         /* prefill done at this admission */
    int coh;              /* 1: a lockstep member */
    int fresh;            /* member that joined after the lockstep last decoded: its last token at last_token_s */
    double last_token_s;  /* a member's only when fresh (else the lockstep's t_last) */
} rq_state;

/* A lockstep member's next event: at the lockstep's step key; adm tells a
 * stale entry (the member left) from a live one. */
typedef struct { int64_t key, adm, req; } ev_item;
typedef struct { ev_item *v; int64_t n, cap; } ev_heap; /* a binary min-heap by (key, adm) */

/* A timing wheel of a member's events: bucket key mod LOCK_WHEEL holds the
 * events at step key (req, or slot for price events; adm), for keys less
 * than LOCK_WHEEL steps ahead (later ones wait in a heap); price events go
 * in any order, block and last-token events are sorted by adm when due. */
#define LOCK_WHEEL 256
typedef struct { ev_item *v; int64_t n, cap; } ev_bucket;

/* A member's price as its price events read it, by slot. A saturated
 * member whose pages the memo holds (tb set) moves one page every pg steps:
 * its price at step d0 is the memo's page np0 and its next m page
 * crossings, at d0 + pg, ..., d0 + m pg, are already in the lockstep's
 * difference ring (srv_state.diff), so its page at step D >= d0 is
 * np0 + min(m, (D - d0) / pg); srv_slot's np, until and cost are brought up
 * to it by lock_sync when read. */
typedef struct {
    int64_t adm;                  /* the member's admission number; -1: no member */
    int64_t np0, d0, m, pg;       /* saturated, from the memo: as above */
    const srv_s2_table *tb;       /* its memo (NULL: its price is srv_slot.cost) */
} lk_hot;

typedef struct { int64_t req, n; } sched_item; /* n tokens for req this step */

typedef struct {
    const srv_config *c;
    const srv_workload *w;
    srv_result *r;
    srv_pricer pr;
    rq_state *q;
    srv_slot *slots;
    int64_t *free_slots, nfree_slots;
    int64_t head, tail, nrun;     /* running: a list in admission order (rq_state prev/next) */
    int64_t nadm;                 /* admissions so far */
    int64_t *wq, whead, wcount;   /* waiting: a ring of n, wq[whead] first */
    sched_item *sched;
    int64_t nsched;
    int64_t sched_dec, sched_tokens, sched_seqs; /* of this step's schedule: decoding sequences, tokens, sequences */
    int64_t *cs, *cn;             /* (max_num_seqs) this step's prefill chunks: start, tokens */
    const srv_seq_cost **cv;      /* (max_num_seqs) this step's decoding sequences' prices */
    int64_t pool_blocks, used_blocks;
    double block_bytes, token_bytes;
    double layers;                /* the model's layers */
    int64_t next_arrival, in_system;
    int64_t ms_left;              /* decode steps left in the current multi-step run */
    double t, t_area;
    int64_t samples_cap;
    /* The lockstep path (serve.c's "lockstep" below): the decoding sequences
     * are its members and decode together, one token each per step it runs;
     * what a step's price needs of them is kept as sums; a member is touched
     * only at its events. */
    int lockstep;                 /* this run takes it (no reference, max_batched_tokens >= max_num_seqs) */
    int64_t D;                    /* the lockstep's decode steps so far */
    double t_last;                /* the end of the last of them */
    int64_t ncoh;                 /* members */
    int64_t sum_base;             /* Σ members' S + gb, tokens: their Σ context at step D is sum_base + ncoh D */
    int64_t out_base;             /* Σ members' output - gb, tokens: output to come at step D is out_base - ncoh D */
    srv_cost_acc acc;             /* Σ members' method-layer prices */
    srv_seq_cost acc_sum;         /* acc's sums as doubles (srv_cost_acc_sum's) as of the last step priced */
    int acc_all, acc_s2;          /* since then: any sum may have moved; the aux-score and top-k ones (acc_move) */
    int uni;                      /* layers priced dense (sim_access_source.uniform_from) */
    int coh_step;                 /* the scheduled step decodes the members */
    ev_bucket *evw;               /* (LOCK_WHEEL) members' next block or last-token events, as wheel does prices */
    ev_heap evfar;                /* those LOCK_WHEEL or more steps ahead */
    ev_item *evnow;               /* (max_num_seqs) this step's, in admission order */
    ev_bucket *wheel;             /* (LOCK_WHEEL) members' next price events */
    ev_heap far;                  /* price events LOCK_WHEEL or more steps ahead */
    lk_hot *hot;                  /* (max_num_seqs) by slot: what a price event reads */
    __int128 (*diff)[5];          /* (LOCK_WHEEL) by step mod LOCK_WHEEL: the page crossings' moves of the sums of
                                     aux-score be, by, fl and top-k be, by due at that step (srv_fx units) */
    ev_item *fresh;               /* (nfresh <= max_num_seqs) fresh members in joining order: req, adm */
    int64_t nfresh;
    int64_t *fin, nfin;           /* (max_num_seqs) members whose last token this step is */
} srv_state;

double srv_token_bytes(const srv_config *c)
{
    sim_config x;
    sim_rank_shape s;
    kv_err err;
    rkv_params p;
    rkv_request rq = c->rq;
    rq.context = 1;
    rq.max_new = 1;
    if (rkv_params_resolve(rkv_method_baseline()->name, &rq, &p, &err) != 0)
        return NAN;
    sim_config_defaults(&x, c->model, c->hw, &p);
    x.tp = c->tp;
    if (sim_rank_shape_compute(&x, &s, &err) != 0)
        return NAN;
    return (double)c->model->num_hidden_layers * s.hkv * 2.0 * p.d * (double)rkv_dtype_bytes(p.kv_dtype);
}

int srv_pool_bytes(const srv_config *c, double *pool, kv_err *err)
{
    if (!c->engine)
        return kv_errf(err, "serve: no engine to size the KV pool by");
    rkv_request rq = c->rq;
    rq.context = 1;
    rq.max_new = 1;
    rkv_params p;
    if (rkv_params_resolve(rkv_method_baseline()->name, &rq, &p, err) != 0)
        return -1;
    sim_config x;
    sim_config_defaults(&x, c->model, c->hw, &p);
    x.tp = c->tp;
    x.weight_bytes_per_param = c->weight_bytes_per_param;
    x.weight_compute = c->weight_compute;
    x.weight_dequant_ops = c->weight_dequant_ops;
    sim_config_set_engine(&x, c->engine, c->mem_fraction);
    sim_memory m;
    if (sim_memory_compute(&x, &m, err) != 0)
        return -1;
    *pool = m.kv_pool_bytes;
    if (*pool <= 0.0)
        return kv_errf(err, "no room for a KV pool on %s at TP %d under %s's memory policy (weights %.2f GB per rank)",
                       c->hw->name, c->tp, c->engine->name, m.weights_bytes / 1e9);
    return 0;
}

static int64_t blocks_of_bytes(const srv_state *st, double bytes)
{
    return (int64_t)ceil(bytes / st->block_bytes - 1e-9);
}

static int64_t blocks_full(const srv_state *st, int64_t tokens)
{
    return (tokens + st->c->block_tokens - 1) / st->c->block_tokens;
}

/* Bytes a compressed sequence holds with C tokens cached on its method
 * layers and `tokens` tokens of full K/V on the layers below skip_layers. */
static double comp_bytes(const srv_state *st, const srv_slot *sl, int64_t C, int64_t tokens)
{
    const double L = st->layers, skip = sl->skip;
    double bytes = sl->comp_bytes_per_token * (double)C * (L - skip) / L;
    if (skip > 0.0) /* else the dense layers' term is +0, which adds nothing */
        bytes += st->token_bytes * (double)tokens * skip / L;
    return bytes;
}

/* rkv_cache_tokens(&sl->p, k), written out: kept + k + 1, capped at the
 * budget when the method caps its cache. */
static int64_t cache_tokens(const srv_slot *sl, int64_t k)
{
    const int64_t c = sl->form.kept + k + 1;
    return sl->p.method->traits.cache_capped && c > sl->p.budget ? sl->p.budget : c;
}

/* Bytes a compressed sequence holds after decode step `k` (its cache then
 * has prompt + k + 1 tokens of history). */
static double comp_bytes_after(const srv_state *st, int64_t req, const srv_slot *sl, int64_t k)
{
    return comp_bytes(st, sl, cache_tokens(sl, k), st->w->req[req].prompt + k + 1);
}

/* Blocks the sequence holds after decode step `k`. */
static int64_t blocks_after_decode(const srv_state *st, int64_t req, int64_t k)
{
    const srv_slot *sl = &st->slots[st->q[req].slot];
    return sl->compresses ? blocks_of_bytes(st, comp_bytes_after(st, req, sl, k))
                          : blocks_full(st, st->w->req[req].prompt + k + 1);
}

/* The first decode step after k0 at which the sequence needs more than b
 * blocks (B(k0) <= b), INT64_MAX when none of its decode steps does; y0:
 * its bytes after k0 when it compresses. B(k) = blocks_after_decode is
 * non-decreasing in k: C(k) (rkv_cache_tokens) and the token count are, and
 * comp_bytes/blocks_of_bytes/blocks_full apply only operations monotone in
 * them (products with non-negative factors, a sum, a division by a positive
 * size, ceil), each correctly rounded, so monotone in floating point too.
 * Full K/V: k >= b × block - prompt, exactly. Compressed: B itself, searched
 * from a guess (the bytes grow by about bytes_step a step), widened by
 * doubling until B(lo) <= b < B(hi), then bisected: two evaluations per
 * block when the guess is right. */
static int64_t first_step_over(const srv_state *st, int64_t req, int64_t k0, int64_t b, double y0, double *y_hi)
{
    const srv_request *rq = &st->w->req[req];
    const srv_slot *sl = &st->slots[st->q[req].slot];
    const int64_t kmax = rq->output - 2; /* the last decode step: the token before the last */
    *y_hi = NAN;
    if (!sl->compresses)
        return b * st->c->block_tokens - rq->prompt;
    if (kmax <= k0)
        return INT64_MAX;
    const double x = sl->bytes_step > 0.0 ? ceil(((double)b * st->block_bytes - y0) / sl->bytes_step) : INFINITY;
    const int64_t g = x < 1.0 ? k0 + 1 : x >= (double)(kmax - k0) ? kmax : k0 + (int64_t)x;
    int64_t lo = k0, hi = g;
    double y = comp_bytes_after(st, req, sl, g), yh = y; /* yh: the bytes at hi once B(hi) > b is known */
    if (blocks_of_bytes(st, y) <= b) { /* at or after the guess: double upwards */
        for (int64_t d = 1;; d *= 2) {
            if (hi == kmax)
                return INT64_MAX;
            lo = hi;
            hi = kmax - lo > d ? lo + d : kmax;
            if (blocks_of_bytes(st, yh = comp_bytes_after(st, req, sl, hi)) > b)
                break;
        }
    } else { /* before it: double downwards */
        for (int64_t d = 1; hi - k0 > 1; d *= 2) {
            const int64_t t = hi - k0 > d ? hi - d : k0 + 1;
            if (blocks_of_bytes(st, y = comp_bytes_after(st, req, sl, t)) <= b) {
                lo = t;
                break;
            }
            hi = t;
            yh = y;
        }
    }
    while (hi - lo > 1) { /* B(lo) <= b < B(hi) */
        const int64_t mid = lo + (hi - lo) / 2;
        if (blocks_of_bytes(st, y = comp_bytes_after(st, req, sl, mid)) > b) hi = mid, yh = y;
        else lo = mid;
    }
    *y_hi = yh;
    return hi;
}

/* Blocks decode step k needs beyond those the sequence holds, B(k) - held
 * (or 0), and the first step that will need more than it then holds. The
 * caller skips this while k is before that step and the count is the one
 * it was found for (a fact about the request, so it survives preemption). */
static int64_t decode_need(srv_state *st, int64_t req, int64_t k)
{
    rq_state *s = &st->q[req];
    const srv_slot *sl = &st->slots[s->slot];
    const double y = !sl->compresses ? 0.0 : k == s->blk_next && !isnan(s->y_next) ? s->y_next /* found with blk_next */
                                                                                  : comp_bytes_after(st, req, sl, k);
    int64_t need = (sl->compresses ? blocks_of_bytes(st, y) : blocks_full(st, st->w->req[req].prompt + k + 1)) - s->blocks;
    if (need < 0) need = 0;
    s->blk_b = s->blocks + need;
    s->blk_next = first_step_over(st, req, k, s->blk_b, y, &s->y_next);
    return need;
}

static int slot_acquire(srv_state *st, int64_t req, kv_err *err)
{
    const int64_t i = st->free_slots[--st->nfree_slots];
    srv_slot *sl = &st->slots[i];
    const srv_request *rq = &st->w->req[req];
    memset(sl, 0, sizeof *sl);
    sl->req = req;
    rkv_request x = st->c->rq;
    x.context = rq->prompt;
    x.max_new = rq->output;
    if (rkv_params_resolve(st->c->method, &x, &sl->p, err) != 0)
        return kv_errf(err, "request %lld (prompt %lld, output %lld): %s", (long long)req, (long long)rq->prompt,
                       (long long)rq->output, err->msg);
    sim_access_analytic(&sl->src, &sl->actx, st->c->model, &sl->p);
    srv_seq_form_init(&st->pr, &sl->p, sl->actx.num_kv_heads, &sl->form);
    rkv_storage sto;
    sl->p.method->storage(&sl->p, &sto);
    sl->comp_bytes_per_token = st->token_bytes * (double)(sto.kv_bytes + sto.aux_bytes) /
                               ((double)sl->p.capacity * 2.0 * sl->p.d * (double)rkv_dtype_bytes(sl->p.kv_dtype));
    sl->compresses = !st->pr.is_full;
    sl->skip = sl->p.skip_layers < st->layers ? (double)sl->p.skip_layers : st->layers;
    sl->bytes_step = comp_bytes(st, sl, 1, 1) - comp_bytes(st, sl, 0, 0);
    sim_config x1 = st->pr.c;
    x1.params = sl->p;
    sl->stage1_s = sim_stage1_s(&x1, &st->pr.s);
    st->q[req].slot = (int32_t)i;
    return 0;
}

static void slot_release(srv_state *st, int64_t req)
{
    st->slots[st->q[req].slot].req = -1;
    st->free_slots[st->nfree_slots++] = st->q[req].slot;
    st->q[req].slot = -1;
}

/* Moves time to t1: arrivals on the way join the queue; ∫ in-system dt. */
static void advance(srv_state *st, double t1)
{
    const srv_workload *w = st->w;
    while (st->next_arrival < w->n && w->req[st->next_arrival].arrival_s <= t1) {
        const double a = w->req[st->next_arrival].arrival_s;
        st->r->area_in_system += (double)st->in_system * (a - st->t_area);
        st->t_area = a;
        st->in_system++;
        st->q[st->next_arrival].phase = Q_WAITING;
        st->wq[(st->whead + st->wcount++) % w->n] = st->next_arrival++;
    }
    st->r->area_in_system += (double)st->in_system * (t1 - st->t_area);
    st->t_area = t1;
}

static void run_append(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    s->prev = st->tail;
    s->next = -1;
    if (st->tail >= 0) st->q[st->tail].next = req;
    else st->head = req;
    st->tail = req;
    s->adm = st->nadm++;
    st->nrun++;
}

static void run_unlink(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    if (s->prev >= 0) st->q[s->prev].next = s->next;
    else st->head = s->next;
    if (s->next >= 0) st->q[s->next].prev = s->prev;
    else st->tail = s->prev;
    s->prev = s->next = -1;
    st->nrun--;
}

/* ---- the lockstep's events: a binary min-heap by (key, adm) ------------- */
static int ev_less(const ev_item *a, const ev_item *b)
{
    return a->key < b->key || (a->key == b->key && a->adm < b->adm);
}

static void heap_push(ev_heap *hp, int64_t key, int64_t adm, int64_t req)
{
    if (hp->n == hp->cap) {
        hp->cap = hp->cap ? 2 * hp->cap : 256;
        hp->v = realloc(hp->v, (size_t)hp->cap * sizeof *hp->v);
    }
    ev_item *h = hp->v, e = {key, adm, req};
    int64_t i = hp->n++;
    while (i > 0 && ev_less(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static ev_item heap_pop(ev_heap *hp)
{
    ev_item *h = hp->v, top = h[0], e = h[--hp->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= hp->n) break;
        if (c + 1 < hp->n && ev_less(&h[c + 1], &h[c])) c++;
        if (!ev_less(&h[c], &e)) break;
        h[i] = h[c];
        i = c;
    }
    if (hp->n > 0) h[i] = e;
    return top;
}

static void bucket_push(ev_bucket *b, ev_item e)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        b->v = realloc(b->v, (size_t)b->cap * sizeof *b->v);
    }
    b->v[b->n++] = e;
}

/* A member's next price event at the lockstep's step key (> D); its slot and admission. */
static void price_push(srv_state *st, int64_t key, int64_t slot, int64_t adm)
{
    if (key - st->D >= LOCK_WHEEL)
        heap_push(&st->far, key, adm, slot);
    else
        bucket_push(&st->wheel[key & (LOCK_WHEEL - 1)], (ev_item){key, adm, slot});
}

/* A member's next block or last-token event at step key (>= D). */
static void event_push(srv_state *st, int64_t key, int64_t req)
{
    const int64_t adm = st->q[req].adm;
    if (key - st->D >= LOCK_WHEEL)
        heap_push(&st->evfar, key, adm, req);
    else
        bucket_push(&st->evw[key & (LOCK_WHEEL - 1)], (ev_item){key, adm, req});
}

/* The page a memo-backed member's price in the sums is for, at the step
 * just priced (st->D - 1: its crossings at st->D are not in the sums yet). */
static int64_t hot_np(const srv_state *st, const lk_hot *h)
{
    const int64_t j = (st->D - 1 - h->d0) / h->pg;
    return h->np0 + (j < h->m ? j : h->m);
}

/* srv_slot's price brought up to the member's in the sums. */
static void lock_sync(srv_state *st, int64_t slot)
{
    const lk_hot *h = &st->hot[slot];
    srv_slot *sl = &st->slots[slot];
    if (!h->tb)
        return;
    const int64_t np = hot_np(st, h);
    if (np == sl->np)
        return;
    const double *e = h->tb->v[np];
    const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
    sl->cost.be[a] = e[0], sl->cost.by[a] = e[1], sl->cost.fl[a] = e[2], sl->cost.be[t] = e[3], sl->cost.by[t] = e[4];
    sl->np = np;
    sl->until = np * sl->form.pg - sl->form.kept - 1; /* the step whose cache fills page np */
}

/* Adds (sign 1) or takes away (-1) memo page np + 1 − page np to/from five sums (srv_fx units). */
static void page_move(__int128 *x, const srv_s2_table *tb, int64_t np, int sign)
{
    const __int128 *o = tb->fx[np], *n = tb->fx[np + 1];
    if (sign > 0)
        for (int i = 0; i < 5; i++) x[i] += n[i] - o[i];
    else
        for (int i = 0; i < 5; i++) x[i] -= n[i] - o[i];
}

/* The sums of aux-score be, by, fl and top-k be, by moved by x (srv_fx units). */
static void acc_move(srv_state *st, const __int128 *x)
{
    srv_cost_acc *acc = &st->acc;
    st->acc_s2 = 1;
    const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
    acc->be[a] += x[0];
    acc->by[a] += x[1];
    acc->fl[a] += x[2];
    acc->be[t] += x[3];
    acc->by[t] += x[4];
}

/* A leaving member's crossings still in the ring (at st->D or later) taken out. */
static void lock_unschedule(srv_state *st, lk_hot *h)
{
    if (!h->tb)
        return;
    const int64_t j0 = st->D > h->d0 ? (st->D - h->d0 + h->pg - 1) / h->pg : 1; /* first crossing at st->D or later */
    for (int64_t j = j0 > 1 ? j0 : 1; j <= h->m; j++)
        page_move(st->diff[(h->d0 + j * h->pg) & (LOCK_WHEEL - 1)], h->tb, h->np0 + j - 1, -1);
    h->tb = NULL;
}

/* A member leaves the lockstep (preempted or finished): its tokens and last
 * token time written back, its terms taken out of the sums. */
static void lock_leave(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    const srv_slot *sl = &st->slots[s->slot];
    const srv_request *rq = &st->w->req[req];
    s->g = s->gb + st->D;
    st->r->tokens_out[req] = s->g;
    if (!s->fresh)
        s->last_token_s = st->t_last;
    st->ncoh--;
    st->sum_base -= sl->p.S + s->gb;
    st->out_base -= rq->output - s->gb;
    if (!st->pr.is_full) {
        lock_sync(st, s->slot);
        lock_unschedule(st, &st->hot[s->slot]);
        srv_cost_acc_add(&st->acc, &sl->cost, -1);
        st->acc_all = 1;
    }
    st->hot[s->slot].adm = -1;
    s->coh = 0;
    s->fresh = 0;
}

static void preempt(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    if (s->coh) {
        lock_leave(st, req);
        st->r->lock_events[SRV_EV_LEAVE]++;
    }
    st->used_blocks -= s->blocks;
    s->blocks = 0;
    s->phase = Q_WAITING;
    s->filled = 0;
    s->decoding = 0;
    slot_release(st, req);
    st->whead = (st->whead + st->w->n - 1) % st->w->n;
    st->wq[st->whead] = req;
    st->wcount++;
    run_unlink(st, req);
    st->r->preemptions++;
    st->r->preempted[req]++;
}


static void schedule(srv_state *st, int64_t req, int64_t n, int64_t need)
{
    st->sched[st->nsched++] = (sched_item){req, n};
    st->sched_dec += st->q[req].decoding;
    st->sched_tokens += n;
    st->q[req].blocks += need;
    st->used_blocks += need;
}

enum { SCHED_ALL, SCHED_PREFILL, SCHED_DECODE }; /* which running sequences a step takes */

/* Running sequences first, in admission order; a sequence that needs blocks
 * the pool has not got preempts from the tail (possibly itself). Returns 1
 * when something was preempted. A decoding sequence before its next block
 * (decode_need's 0) takes the short way: one token, no blocks, nothing to
 * preempt; the schedule's counters are kept locally meanwhile. */
static int schedule_running(srv_state *st, int64_t *budget, int mode)
{
    int preempted = 0;
    int64_t left = *budget, ns = st->nsched, fast = 0;
    sched_item *const sched = st->sched;
    const int ref = st->c->reference;
    for (int64_t req = st->head, nx; req >= 0 && left > 0; req = nx) {
        rq_state *s = &st->q[req];
        nx = s->next;
        if (mode != SCHED_ALL && s->decoding != (mode == SCHED_DECODE))
            continue;
        if (s->decoding && s->blk_b == s->blocks && s->g - 1 < s->blk_next) { /* never under reference: blk_b stays -1 */
            sched[ns].req = req;
            sched[ns++].n = 1;
            fast++;
            left--;
            continue;
        }
        st->nsched = ns;
        int64_t n = 1, need;
        if (!s->decoding) {
            n = s->target - s->filled < left ? s->target - s->filled : left;
            need = blocks_full(st, s->filled + n) - s->blocks;
            if (need < 0) need = 0;
        } else if (!ref) {
            need = decode_need(st, req, s->g - 1);
        } else { /* the definition */
            need = blocks_after_decode(st, req, s->g - 1) - s->blocks;
            if (need < 0) need = 0;
        }
        int self = 0;
        while (need > st->pool_blocks - st->used_blocks) {
            const int64_t victim = st->tail;
            self = victim == req;
            preempt(st, victim);
            preempted = 1;
            if (self) break;
        }
        if (self) break;
        nx = s->next; /* victims were after it */
        schedule(st, req, n, need);
        ns = st->nsched;
        left -= n;
    }
    st->nsched = ns;
    st->sched_dec += fast;
    st->sched_tokens += fast;
    *budget = left;
    return preempted;
}

/* Blocks admit_reserve keeps back for the running requests' remaining output. */
static int64_t reserved_blocks(const srv_state *st)
{
    if (st->c->admit_reserve <= 0.0)
        return 0;
    int64_t left = st->out_base - st->ncoh * st->D, non = st->nrun - st->ncoh; /* members, then the others */
    for (int64_t req = st->tail; req >= 0 && non > 0; req = st->q[req].prev)
        if (!st->q[req].coh) {
            left += st->w->req[req].output - st->q[req].g;
            non--;
        }
    return (int64_t)ceil(st->c->admit_reserve * (double)blocks_full(st, left));
}

/* Waiting requests, first come first served, while budget, seats and blocks
 * last (with admit_reserve: blocks for the whole request and the reserve). */
static int schedule_waiting(srv_state *st, int64_t *budget, kv_err *err)
{
    int64_t reserve = st->wcount > 0 ? reserved_blocks(st) : 0;
    while (st->wcount > 0 && *budget > 0 && st->nrun < st->c->max_num_seqs) {
        const int64_t req = st->wq[st->whead];
        rq_state *s = &st->q[req];
        const int64_t target = st->w->req[req].prompt + s->g;
        const int64_t n = target < *budget ? target : *budget;
        const int64_t need = blocks_full(st, n);
        if (need > st->pool_blocks - st->used_blocks)
            break;
        if (st->c->admit_reserve > 0.0) { /* the whole request beside the reserve */
            const int64_t whole = blocks_full(st, st->w->req[req].prompt + st->w->req[req].output);
            if (whole + reserve > st->pool_blocks - st->used_blocks)
                break;
            reserve += whole - need; /* its output joins what stays reserved */
        }
        st->whead = (st->whead + 1) % st->w->n;
        st->wcount--;
        if (slot_acquire(st, req, err) != 0)
            return -1;
        s->phase = Q_RUNNING;
        s->target = target;
        s->filled = 0;
        s->decoding = 0;
        run_append(st, req);
        schedule(st, req, n, need);
        *budget -= n;
    }
    return 0;
}

/* The batch's method-layer sums of n sequences' prices, sequence by
 * sequence in the given order: Σ be, by, fl and max la per kernel. Two
 * passes of ten running sums each, so that each pass's sums stay in
 * registers (the order of each sum's additions is the same). The walk's
 * sums where the lockstep cannot run (a token budget below max_num_seqs). */
static void cost_sums_ordered(const srv_seq_cost *const *cv, int64_t n, srv_seq_cost *sum)
{
    double a[SRV_ATT_K] = {0}, b[SRV_ATT_K] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < SRV_ATT_K; q++) {
            a[q] += cv[i]->be[q];
            b[q] += cv[i]->by[q];
        }
    memcpy(sum->be, a, sizeof a);
    memcpy(sum->by, b, sizeof b);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < SRV_ATT_K; q++) {
            a[q] += cv[i]->fl[q];
            b[q] = b[q] > cv[i]->la[q] ? b[q] : cv[i]->la[q]; /* max; launches are never NaN or -0 */
        }
    memcpy(sum->fl, a, sizeof a);
    memcpy(sum->la, b, sizeof b);
}

/* The same sums afresh in srv_cost_acc (exact, so the same bits as the
 * lockstep's sums kept from step to step): the walk's where the lockstep
 * runs, i.e. as the reference it is checked against. */
static void cost_sums(const srv_seq_cost *const *cv, int64_t n, srv_seq_cost *sum)
{
    srv_cost_acc a;
    memset(&a, 0, sizeof a);
    for (int64_t i = 0; i < n; i++) srv_cost_acc_add(&a, cv[i], 1);
    srv_cost_acc_sum(&a, sum);
    if (a.la_mixed)
        for (int q = 0; q < SRV_ATT_K; q++) {
            double m = 0.0;
            for (int64_t i = 0; i < n; i++) m = m > cv[i]->la[q] ? m : cv[i]->la[q];
            sum->la[q] = m;
        }
}

/* srv_config.reference: every decoding sequence's method-layer price from
 * its access record at this step, kept for this step only (srv_seq_price_at
 * then leaves it). */
static void price_reference(srv_state *st)
{
    for (int64_t i = 0; i < st->nsched; i++) {
        const rq_state *s = &st->q[st->sched[i].req];
        srv_slot *sl = &st->slots[s->slot];
        if (!s->decoding)
            continue;
        srv_seq_cost_record(&st->pr, &sl->p, sl->actx.num_kv_heads, s->g - 1, &sl->cost);
        sl->have_price = 1;
        sl->until = s->g - 1;
    }
}

static double step_price(srv_state *st, int64_t n_dec, int64_t sum_ctx, int64_t tokens, int nch, int64_t nsample,
                         double s1, const srv_seq_cost *sum, int uni);

/* The price of the scheduled step (srv.h's "Pricing"). */
static double price_step(srv_state *st)
{
    srv_pricer *pr = &st->pr;
    int64_t n_dec = 0, sum_ctx = 0, tokens = 0, nch = 0, nsample = 0;
    const srv_seq_cost **cv = st->cv; /* the decoding sequences' prices, in schedule order */
    int64_t ncv = 0;
    double s1 = 0.0;
    int64_t *cs = st->cs, *cn = st->cn;
    int uni = 0;
    const sched_item *const sched = st->sched;
    const rq_state *const q = st->q;
    srv_slot *const slots = st->slots;
    const int is_full = pr->is_full;
    if (st->c->reference && !is_full)
        price_reference(st);
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &sched[i];
        const rq_state *s = &q[it->req];
        srv_slot *sl = &slots[s->slot];
        tokens += it->n;
        if (s->decoding) {
            const int64_t k = s->g - 1;
            n_dec++;
            sum_ctx += sl->p.S + k + 1;
            nsample++;
            if (!is_full) {
                srv_seq_price_at(pr, sl, k);
                uni = sl->src.uniform_from;
                cv[ncv++] = &sl->cost;
            }
        } else {
            cs[nch] = s->filled;
            cn[nch++] = it->n;
            if (s->filled + it->n == s->target) {
                nsample++;
                s1 += sl->stage1_s;
            }
        }
    }
    srv_seq_cost sum;
    if (st->c->max_batched_tokens >= st->c->max_num_seqs) /* where the lockstep runs: its exact sums */
        cost_sums(cv, ncv, &sum);
    else
        cost_sums_ordered(cv, ncv, &sum);
    return step_price(st, n_dec, sum_ctx, tokens, (int)nch, nsample, s1, &sum, uni);
}

/* A step's price from what it needs of its sequences: n_dec decoding ones
 * with sum_ctx tokens of context after the step and method-layer sums sum;
 * tokens in all; nch prefill chunks (st->cs, st->cn); nsample sequences that
 * sample; s1 their stage 1; uni dense layers. */
static double step_price(srv_state *st, int64_t n_dec, int64_t sum_ctx, int64_t tokens, int nch, int64_t nsample,
                         double s1, const srv_seq_cost *sum, int uni)
{
    srv_pricer *pr = &st->pr;
    const int64_t *cs = st->cs, *cn = st->cn;
    const double L = pr->L;
    const double Ld = pr->is_full ? L : (double)uni, Lm = L - Ld;
    double t = nch == 0 ? srv_price_fixed(pr, n_dec) : sim_prefill_pass_s(&pr->c, &pr->s, tokens, cs, cn, (int)nch);
    if (n_dec > 0 && Ld > 0.0)
        t += Ld * srv_price_dense_layer(pr, n_dec, sum_ctx);
    if (n_dec > 0 && Lm > 0.0)
        t += Lm * srv_price_method_layer(pr, sum);
    if (nch > 0 && nsample > 0) { /* the sequences that sample a token this step */
        t += sim_lm_head_s(&pr->c, &pr->s, nsample);
        t += s1;
    }
    return t;
}

static void finish(srv_state *st, int64_t req, double t)
{
    rq_state *s = &st->q[req];
    srv_result *r = st->r;
    const srv_request *rq = &st->w->req[req];
    st->used_blocks -= s->blocks;
    s->blocks = 0;
    s->phase = Q_DONE;
    slot_release(st, req);
    r->e2e_s[req] = t - rq->arrival_s;
    r->tpot_s[req] = rq->output > 1 ? (r->e2e_s[req] - r->ttft_s[req]) / (double)(rq->output - 1) : NAN;
    r->completed++;
    st->in_system--;
    run_unlink(st, req);
}

static void emit_token(srv_state *st, int64_t req, double t)
{
    rq_state *s = &st->q[req];
    srv_result *r = st->r;
    if (s->g == 0)
        r->ttft_s[req] = t - st->w->req[req].arrival_s;
    else
        r->itl_s[r->n_itl++] = t - s->last_token_s;
    s->g++;
    s->last_token_s = t;
    r->tokens_out[req]++;
    r->output_tokens++;
}

/* A prompt's prefill ended at t: stage 1 compresses its cache, its first
 * token (or the next, after a recompute) comes out; it may be its last. */
static void prefill_ends(srv_state *st, int64_t req, double t)
{
    rq_state *s = &st->q[req];
    const srv_request *rq = &st->w->req[req];
    s->decoding = 1;
    const srv_slot *sl = &st->slots[s->slot];
    if (sl->compresses) { /* stage 1 ends: the compressed cache replaces the full one */
        int64_t nb = blocks_of_bytes(st, comp_bytes(st, sl, rkv_cache_tokens(&sl->p, s->g - 1), rq->prompt + s->g));
        if (nb < s->blocks) {
            st->used_blocks -= s->blocks - nb;
            s->blocks = nb;
        }
    }
    emit_token(st, req, t);
    if (s->g == rq->output)
        finish(st, req, t);
}

/* The step ends at t: tokens come out, prompts that ended compress, finished
 * requests leave (their blocks and seats freed). A decoding sequence's token
 * (never its first: that comes from the prefill) is emit_token's second
 * case, written out with the counters kept locally. */
static void apply_step(srv_state *st, double t)
{
    srv_result *r = st->r;
    const sched_item *const sched = st->sched;
    rq_state *const q = st->q;
    const srv_request *const wr = st->w->req;
    double *const itl = r->itl_s;
    int64_t *const tokens_out = r->tokens_out;
    int64_t dec = 0, n_itl = r->n_itl;
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &sched[i];
        rq_state *s = &q[it->req];
        const srv_request *rq = &wr[it->req];
        if (s->decoding) {
            dec++;
            itl[n_itl++] = t - s->last_token_s;
            s->g++;
            s->last_token_s = t;
            tokens_out[it->req]++;
            if (s->g == rq->output)
                finish(st, it->req, t);
            continue;
        }
        s->filled += it->n;
        r->prefill_tokens += it->n;
        if (s->filled < s->target)
            continue;
        r->n_itl = n_itl; /* emit_token counts a gap when the prefill was a recompute */
        prefill_ends(st, it->req, t);
        n_itl = r->n_itl;
    }
    r->n_itl = n_itl;
    r->decode_steps_seq += dec;
    r->output_tokens += dec;
}

/* ---- the lockstep path ------------------------------------------------
 * The same scheduler and prices as the walk above (schedule_running,
 * price_step, apply_step), without visiting every decoding sequence at every
 * step. When max_batched_tokens >= max_num_seqs every decoding sequence gets
 * its token in every step that decodes (they come first in admission order;
 * a prefill in progress is always the last running sequence: a request is
 * admitted only while the budget lasts, and a prompt cut by the budget ends
 * the step's admissions), so the decoding sequences move as one: the
 * lockstep's members, a member's tokens g = gb + D after the lockstep's D
 * steps. A step's price needs of them only their number, Σ context (an
 * integer, sum_base + ncoh D) and Σ method-layer prices (srv_cost_acc,
 * exact); their tokens' gaps are t - t_last for all but the fresh ones. A
 * member is touched only at its events, kept in a heap by the lockstep step
 * they fall on, the earliest of: the first step after joining; a decode step
 * that needs more KV blocks than it holds (decode_need's blk_next: a block
 * boundary, or the compressed cache's growth); the first step its price no
 * longer stands (srv_slot.until: the access record changes, a page of a
 * saturated cache fills); its last token. Events of one step go in admission
 * order, as the walk meets them, so preemption chooses the same victims. */

/* A sequence whose prefill ended at t joins (fresh: the lockstep did not
 * decode in this step, so its last token is not at t_last); its first event
 * is the lockstep's next step. */
static void lock_join(srv_state *st, int64_t req, double t, int fresh)
{
    rq_state *s = &st->q[req];
    const srv_slot *sl = &st->slots[s->slot];
    s->coh = 1;
    s->gb = s->g - st->D;
    s->fresh = fresh;
    s->last_token_s = t;
    st->ncoh++;
    st->sum_base += sl->p.S + s->gb;
    st->out_base += st->w->req[req].output - s->gb;
    st->uni = sl->src.uniform_from;
    if (fresh) {
        if (st->nfresh == st->c->max_num_seqs) { /* full of members that left since: keep the others (< max_num_seqs) */
            int64_t m = 0;
            for (int64_t i = 0; i < st->nfresh; i++)
                if (st->q[st->fresh[i].req].coh && st->q[st->fresh[i].req].adm == st->fresh[i].adm)
                    st->fresh[m++] = st->fresh[i];
            st->nfresh = m;
        }
        st->fresh[st->nfresh++] = (ev_item){0, s->adm, req};
    }
    event_push(st, st->D, req);
    st->hot[s->slot] = (lk_hot){s->adm, 0, 0, 0, 1, NULL};
    if (!st->pr.is_full)
        price_push(st, st->D, s->slot, s->adm);
    st->r->lock_events[SRV_EV_JOIN]++;
}

/* A member's block or last-token event at the lockstep's step D (its
 * decode step k = gb + D - 1): the blocks it needs, preempting from the
 * tail as the walk does; its last token; then its next such event.
 * Returns 0, 1 when it preempted others, 2 when it preempted itself. */
static int lock_event(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    const int64_t D = st->D, k = s->gb + D - 1;
    int ret = 0;
    if (!(s->blk_b == s->blocks && k < s->blk_next)) {
        const int64_t need = decode_need(st, req, k);
        st->r->lock_events[SRV_EV_BLOCKS]++;
        while (need > st->pool_blocks - st->used_blocks) {
            const int64_t victim = st->tail;
            preempt(st, victim);
            ret = 1;
            if (victim == req)
                return 2;
        }
        s->blocks += need;
        st->used_blocks += need;
    }
    const int64_t last = st->w->req[req].output - s->gb - 1; /* the step of its last token */
    if (last == D) {
        st->fin[st->nfin++] = req;
        return ret;
    }
    const int64_t kb = s->blk_next != INT64_MAX ? s->blk_next - s->gb + 1 : INT64_MAX;
    event_push(st, kb < last ? kb : last, req);
    return ret;
}

/* A memo-backed member's price at step D is page np (in the sums): its
 * next crossings written into the ring, as far as the memo holds pages,
 * the ring reaches and its last token; then a price event at the crossing
 * after them (the memo lacks its page, or it lies beyond the ring). */
static void lock_horizon(srv_state *st, int64_t slot, const srv_s2_table *tb, int64_t np)
{
    lk_hot *h = &st->hot[slot];
    const srv_slot *sl = &st->slots[slot];
    const rq_state *s = &st->q[sl->req];
    const int64_t D = st->D, pg = sl->form.pg, last = st->w->req[sl->req].output - s->gb - 1;
    int64_t m = 0, d = D + pg;
    const int64_t dmax = last < D + LOCK_WHEEL - 1 ? last : D + LOCK_WHEEL - 1;
    const int64_t mt = tb->n - 1 - np, mw = dmax >= d ? (dmax - d) / pg + 1 : 0; /* the memo's and the ring's reach */
    const int64_t mmax = mt < mw ? mt : mw;
    const __int128(*dfx)[5] = tb->dfx;
    const double(*v)[5] = tb->v;
    for (; m < mmax && v[np + m + 1][0] >= 0.0; d += pg, m++) {
        const __int128 *dd = dfx[np + m];
        __int128 *x = st->diff[d & (LOCK_WHEEL - 1)];
        x[0] += dd[0];
        x[1] += dd[1];
        x[2] += dd[2];
        x[3] += dd[3];
        x[4] += dd[4];
    }
    *h = (lk_hot){h->adm, np, D, m, pg, tb};
    st->r->lock_events[SRV_EV_PAGES] += m;
    if (d <= last)
        price_push(st, d, slot, h->adm);
}

/* A member's price event at step D (its decode step k = gb + D - 1): its
 * price no longer stands. A memo-backed member crosses to its next page
 * (the sums move by the memo's difference: the same integers as taking the
 * old price out and putting the new one in); any other is priced again,
 * taken out of the sums and put back. Then its next crossings or event. */
static void lock_reprice(srv_state *st, int64_t slot)
{
    srv_slot *sl = &st->slots[slot];
    lk_hot *h = &st->hot[slot];
    const int64_t k = st->q[sl->req].gb + st->D - 1;
    st->r->lock_events[SRV_EV_PRICE]++;
    if (h->tb) {
        const srv_s2_table *tb = h->tb;
        const int64_t np = h->np0 + h->m; /* its page in the sums */
        if (np + 1 >= tb->n || tb->v[np + 1][0] < 0.0) { /* page np + 1 priced: the memo learns it within its reach */
            lock_sync(st, slot);
            srv_seq_price_at(&st->pr, sl, k);
        }
        __int128 x[5] = {0};
        if (np + 1 < tb->n && tb->v[np + 1][0] >= 0.0) {
            page_move(x, tb, np, 1);
            acc_move(st, x);
            lock_horizon(st, slot, tb, np + 1);
            return;
        }
        const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND; /* past the memo's reach */
        const double nw[5] = {sl->cost.be[a], sl->cost.by[a], sl->cost.fl[a], sl->cost.be[t], sl->cost.by[t]};
        for (int i = 0; i < 5; i++) x[i] = srv_fx(nw[i]) - tb->fx[np][i];
        acc_move(st, x);
        h->tb = NULL;
        price_push(st, sl->until + 2 - st->q[sl->req].gb, slot, h->adm);
        return;
    }
    srv_cost_acc_add(&st->acc, &sl->cost, -1);
    srv_seq_price_at(&st->pr, sl, k);
    srv_cost_acc_add(&st->acc, &sl->cost, 1);
    st->acc_all = 1;
    const srv_s2_table *tb = sl->s2;
    if (sl->saturated && tb && sl->np > 0 && sl->np < tb->n && tb->v[sl->np][0] >= 0.0)
        lock_horizon(st, slot, tb, sl->np);
    else
        price_push(st, sl->until + 2 - st->q[sl->req].gb, slot, h->adm);
}

/* The price events of step D: the ring's crossings due, then the members
 * whose price event it is (wheel, then the far heap; members that left are
 * skipped). */
static void lock_prices(srv_state *st)
{
    __int128 *df = st->diff[st->D & (LOCK_WHEEL - 1)];
    acc_move(st, df);
    memset(df, 0, sizeof st->diff[0]);
    ev_bucket *b = &st->wheel[st->D & (LOCK_WHEEL - 1)];
    for (int64_t i = 0; i < b->n; i++) {
        const ev_item *e = &b->v[i];
        if (st->hot[e->req].adm == e->adm)
            lock_reprice(st, e->req);
    }
    b->n = 0;
    while (st->far.n > 0 && st->far.v[0].key <= st->D) {
        const ev_item e = heap_pop(&st->far);
        if (st->hot[e.req].adm == e.adm)
            lock_reprice(st, e.req);
    }
}

/* The members' block and last-token events of step D, live ones only, in
 * admission order (insertion sort: a handful), into st->evnow; their
 * bucket emptied. Returns how many, -1 when a live one was missed. */
static int now_add(srv_state *st, int64_t *n, ev_item e, kv_err *err)
{
    const rq_state *s = &st->q[e.req];
    if (!s->coh || s->adm != e.adm)
        return 0; /* it left */
    if (e.key != st->D)
        return kv_errf(err, "serve: lockstep event of request %lld missed", (long long)e.req);
    ev_item *now = st->evnow;
    int64_t j = (*n)++;
    for (; j > 0 && now[j - 1].adm > e.adm; j--) now[j] = now[j - 1];
    now[j] = e;
    return 0;
}

static int64_t lock_events_now(srv_state *st, kv_err *err)
{
    ev_bucket *b = &st->evw[st->D & (LOCK_WHEEL - 1)];
    int64_t n = 0;
    for (int64_t i = 0; i < b->n; i++)
        if (now_add(st, &n, b->v[i], err) != 0)
            return -1;
    b->n = 0;
    while (st->evfar.n > 0 && st->evfar.v[0].key <= st->D)
        if (now_add(st, &n, heap_pop(&st->evfar), err) != 0)
            return -1;
    return n;
}

/* schedule_running on the lockstep: the members' events of this step (when
 * the step decodes), then the sequences still prefilling, last in admission
 * order, as the walk takes them. Returns 1 when something was preempted, -1
 * when the running list breaks the order the lockstep relies on. */
static int lock_schedule(srv_state *st, int64_t *budget, int mode, kv_err *err)
{
    int preempted = 0;
    int64_t left = *budget;
    if (mode != SCHED_PREFILL && st->ncoh > 0) {
        st->nfin = 0;
        const int64_t n = lock_events_now(st, err);
        if (n < 0)
            return -1;
        for (int64_t i = 0; i < n; i++) {
            const ev_item e = st->evnow[i];
            const rq_state *s = &st->q[e.req];
            if (!s->coh || s->adm != e.adm)
                continue; /* preempted by one before it */
            const int rc = lock_event(st, e.req);
            preempted |= rc != 0;
            if (rc == 2)
                break; /* it was the last running sequence */
        }
        if (!st->pr.is_full && st->ncoh > 0)
            lock_prices(st);
        st->coh_step = st->ncoh > 0;
        if (st->coh_step) {
            st->sched_dec += st->ncoh;
            st->sched_tokens += st->ncoh;
            left -= st->ncoh;
        }
    }
    int64_t pre[8], npre = 0, non = st->nrun - st->ncoh; /* the prefilling sequences, from the tail */
    for (int64_t req = st->tail; req >= 0 && non > 0; req = st->q[req].prev) {
        if (st->q[req].coh || npre == 8)
            return kv_errf(err, "serve: a prefill before a decoding sequence (request %lld): the lockstep does not "
                           "apply", (long long)req);
        pre[npre++] = req;
        non--;
    }
    for (int64_t i = npre - 1; i >= 0 && left > 0 && mode != SCHED_DECODE; i--) {
        const int64_t req = pre[i];
        rq_state *s = &st->q[req];
        if (s->phase != Q_RUNNING)
            continue;
        const int64_t n = s->target - s->filled < left ? s->target - s->filled : left;
        int64_t need = blocks_full(st, s->filled + n) - s->blocks;
        if (need < 0) need = 0;
        int self = 0;
        while (need > st->pool_blocks - st->used_blocks) {
            const int64_t victim = st->tail;
            self = victim == req;
            preempt(st, victim);
            preempted = 1;
            if (self) break;
        }
        if (self) break;
        schedule(st, req, n, need);
        left -= n;
    }
    *budget = left;
    return preempted;
}

/* price_step on the lockstep: the members from the sums, the prefills as the walk prices them. */
static double lock_price(srv_state *st)
{
    const int64_t n_dec = st->coh_step ? st->ncoh : 0;
    int64_t nch = 0, nsample = n_dec;
    double s1 = 0.0;
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &st->sched[i];
        const rq_state *s = &st->q[it->req];
        st->cs[nch] = s->filled;
        st->cn[nch++] = it->n;
        if (s->filled + it->n == s->target) {
            nsample++;
            s1 += st->slots[s->slot].stage1_s;
        }
    }
    srv_seq_cost sum;
    const srv_cost_acc *a = &st->acc;
    srv_seq_cost *dbl = &st->acc_sum; /* srv_cost_acc_sum, converting only the sums that may have moved */
    if (st->acc_all) {
        srv_cost_acc_sum(a, dbl);
    } else if (st->acc_s2) {
        const int x = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
        dbl->be[x] = srv_fx_value(a->be[x]);
        dbl->by[x] = srv_fx_value(a->by[x]);
        dbl->fl[x] = srv_fx_value(a->fl[x]);
        dbl->be[t] = srv_fx_value(a->be[t]);
        dbl->by[t] = srv_fx_value(a->by[t]);
    }
    st->acc_all = st->acc_s2 = 0;
    sum = *dbl;
    if (st->acc.la_mixed) /* the max launches by a walk over the members */
        for (int k = 0; k < SRV_ATT_K; k++) {
            double m = 0.0;
            for (int64_t req = st->head; req >= 0; req = st->q[req].next)
                if (st->q[req].coh) {
                    const double la = st->slots[st->q[req].slot].cost.la[k];
                    m = m > la ? m : la;
                }
            sum.la[k] = m;
        }
    return step_price(st, n_dec, st->sum_base + st->ncoh * st->D, st->sched_tokens, (int)nch, nsample, s1, &sum,
                      st->uni);
}

/* apply_step on the lockstep: the members' tokens (gaps in admission order:
 * the others, all t - t_last, then the fresh ones), their last tokens, then
 * the prefills as the walk applies them, a prompt that ends joining. */
static void lock_apply(srv_state *st, double t)
{
    srv_result *r = st->r;
    if (st->coh_step) {
        int64_t nf = 0;
        for (int64_t i = 0; i < st->nfresh; i++) {
            const rq_state *s = &st->q[st->fresh[i].req];
            if (s->coh && s->adm == st->fresh[i].adm)
                st->fresh[nf++] = st->fresh[i];
        }
        double *itl = r->itl_s + r->n_itl;
        const double gap = t - st->t_last;
        const int64_t nold = st->ncoh - nf;
        for (int64_t i = 0; i < nold; i++) itl[i] = gap;
        for (int64_t i = 0; i < nf; i++) {
            rq_state *s = &st->q[st->fresh[i].req];
            itl[nold + i] = t - s->last_token_s;
            s->fresh = 0;
        }
        st->nfresh = 0;
        r->n_itl += st->ncoh;
        r->decode_steps_seq += st->ncoh;
        r->output_tokens += st->ncoh;
        st->D++;
        st->t_last = t;
        for (int64_t i = 0; i < st->nfin; i++) {
            const int64_t req = st->fin[i];
            if (!st->q[req].coh)
                continue;
            lock_leave(st, req);
            finish(st, req, t);
            r->lock_events[SRV_EV_DONE]++;
        }
        st->nfin = 0;
    }
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &st->sched[i];
        rq_state *s = &st->q[it->req];
        s->filled += it->n;
        r->prefill_tokens += it->n;
        if (s->filled < s->target)
            continue;
        prefill_ends(st, it->req, t);
        if (s->phase == Q_RUNNING)
            lock_join(st, it->req, t, !st->coh_step);
    }
}

static void record(srv_state *st, double dt, int64_t n_dec, int64_t tokens)
{
    srv_result *r = st->r;
    if (st->nrun > r->max_running) r->max_running = st->nrun;
    if (st->used_blocks > r->max_kv_blocks) r->max_kv_blocks = st->used_blocks;
    if (!st->c->timeline)
        return;
    if (r->nsamples == st->samples_cap) {
        st->samples_cap = st->samples_cap ? 2 * st->samples_cap : 4096;
        r->samples = realloc(r->samples, (size_t)st->samples_cap * sizeof *r->samples);
    }
    r->samples[r->nsamples++] = (srv_sample){st->t, dt, (int32_t)st->nrun, (int32_t)st->wcount, (int32_t)n_dec,
                                             (int32_t)tokens, st->used_blocks};
}

/* n doubles for the result's inter-token gaps (every one written before it
 * is read: r->n_itl grows as they are) or a copy of them: tens of MB in a
 * long run, so on Linux in transparent huge pages where the kernel gives
 * them (2 MiB aligned, madvise): a page fault per 2 MiB, not per 4 KiB. */
static double *gap_array(size_t n)
{
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20, bytes = (n * sizeof(double) + huge - 1) / huge * huge;
    if (bytes >= 4 * huge) {
        double *p = aligned_alloc(huge, bytes);
        if (p)
            madvise(p, bytes, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(n * sizeof(double));
}

static int state_init(srv_state *st, const srv_config *c, const srv_workload *w, srv_result *r, kv_err *err)
{
    memset(st, 0, sizeof *st);
    memset(r, 0, sizeof *r);
    st->c = c;
    st->w = w;
    st->r = r;
    if (c->max_num_seqs < 1 || c->max_batched_tokens < 1 || c->block_tokens < 1 || w->n < 1)
        return kv_errf(err, "serve: max_num_seqs, max_batched_tokens, block_tokens and the requests must be >= 1");
    if (srv_pricer_init(&st->pr, c, err) != 0)
        return -1;
    st->token_bytes = srv_token_bytes(c);
    st->layers = c->model->num_hidden_layers;
    st->block_bytes = st->token_bytes * (double)c->block_tokens;
    st->pool_blocks = (int64_t)floor(c->pool_bytes / st->block_bytes);
    r->pool_blocks = st->pool_blocks;
    const size_t n = (size_t)w->n, S = (size_t)c->max_num_seqs;
    int64_t n_itl = 0;
    for (int64_t i = 0; i < w->n; i++) n_itl += w->req[i].output - 1;
    r->n = w->n;
    r->ttft_s = calloc(n, sizeof(double));
    r->tpot_s = calloc(n, sizeof(double));
    r->e2e_s = calloc(n, sizeof(double));
    r->itl_s = gap_array((size_t)n_itl + 1);
    r->preempted = calloc(n, sizeof(int64_t));
    r->tokens_out = calloc(n, sizeof(int64_t));
    st->q = calloc(n, sizeof *st->q);
    st->wq = calloc(n, sizeof *st->wq);
    st->fresh = calloc(S, sizeof *st->fresh);
    st->fin = calloc(S, sizeof *st->fin);
    st->head = st->tail = -1;
    st->wheel = calloc(LOCK_WHEEL, sizeof *st->wheel);
    st->hot = calloc(S, sizeof *st->hot);
    st->evw = calloc(LOCK_WHEEL, sizeof *st->evw);
    st->evnow = calloc(S, sizeof *st->evnow);
    st->diff = calloc(LOCK_WHEEL, sizeof *st->diff);
    for (size_t i = 0; i < S; i++) st->hot[i].adm = -1;
    st->lockstep = !c->reference && c->max_batched_tokens >= c->max_num_seqs;
    st->sched = calloc(S, sizeof *st->sched);
    st->cs = calloc(S, sizeof *st->cs);
    st->cn = calloc(S, sizeof *st->cn);
    st->cv = calloc(S, sizeof *st->cv);
    st->slots = calloc(S, sizeof *st->slots);
    st->free_slots = calloc(S, sizeof *st->free_slots);
    for (size_t i = 0; i < S; i++) st->free_slots[st->nfree_slots++] = (int64_t)(S - 1 - i);
    for (size_t i = 0; i < n; i++) {
        st->q[i].slot = -1;
        st->q[i].blk_b = -1;
        st->q[i].y_next = NAN;
        st->q[i].prev = st->q[i].next = -1;
    }
    r->first_arrival_s = w->req[0].arrival_s;
    return 0;
}

static void state_free(srv_state *st)
{
    srv_pricer_free(&st->pr);
    free(st->q);
    free(st->wq);
    free(st->fresh);
    free(st->fin);
    if (st->evw)
        for (int i = 0; i < LOCK_WHEEL; i++) free(st->evw[i].v);
    free(st->evw);
    free(st->evfar.v);
    free(st->evnow);
    free(st->far.v);
    if (st->wheel)
        for (int i = 0; i < LOCK_WHEEL; i++) free(st->wheel[i].v);
    free(st->wheel);
    free(st->hot);
    free(st->diff);
    free(st->sched);
    free(st->cs);
    free(st->cn);
    free(st->cv);
    free(st->slots);
    free(st->free_slots);
}

/* What the next step runs (srv.h's step loop). Returns 1 when the step is a
 * scheduler pass (host time charged), 0 inside a multi-step run, -1 on error. */
/* Running sequences into the step: the lockstep's or the walk's way. */
static int sched_running(srv_state *st, int64_t *budget, int mode, kv_err *err)
{
    const int rc = st->lockstep ? lock_schedule(st, budget, mode, err) : schedule_running(st, budget, mode);
    st->sched_seqs = st->nsched + (st->coh_step ? st->ncoh : 0);
    return rc;
}

static int sched_waiting(srv_state *st, int64_t *budget, kv_err *err)
{
    const int rc = schedule_waiting(st, budget, err);
    st->sched_seqs = st->nsched + (st->coh_step ? st->ncoh : 0);
    return rc;
}

static int schedule_step(srv_state *st, kv_err *err)
{
    const srv_config *c = st->c;
    int64_t budget = c->max_batched_tokens;
    st->nsched = st->sched_dec = st->sched_tokens = st->sched_seqs = 0;
    st->coh_step = 0;
    if (st->ms_left > 0) { /* inside a multi-step decode run: no scheduler pass */
        st->ms_left--;
        if (sched_running(st, &budget, SCHED_DECODE, err) < 0)
            return -1;
        if (st->sched_seqs > 0)
            return 0;
        st->ms_left = 0;
    }
    if (c->prefill_alone) { /* prefills first, alone */
        const int preempted = sched_running(st, &budget, SCHED_PREFILL, err);
        if (preempted < 0 || (!preempted && sched_waiting(st, &budget, err) != 0))
            return -1;
        if (st->sched_seqs > 0)
            return 1;
        budget = c->max_batched_tokens;
    }
    const int preempted = sched_running(st, &budget, SCHED_ALL, err);
    if (preempted < 0 || (!c->prefill_alone && !preempted && sched_waiting(st, &budget, err) != 0))
        return -1;
    const int decode_only = st->sched_seqs > 0 && st->sched_dec == st->sched_seqs;
    if (decode_only && c->scheduler_steps > 1)
        st->ms_left = c->scheduler_steps - 1;
    return 1;
}

/* One engine step at st->t; 1 when it ran, 0 when nothing could run. */
static int step_once(srv_state *st, kv_err *err)
{
    const int pass = schedule_step(st, err);
    if (pass < 0)
        return -1;
    if (st->sched_seqs == 0)
        return 0;
    const int64_t n_dec = st->sched_dec, tokens = st->sched_tokens;
    double dt = st->lockstep ? lock_price(st) : price_step(st);
    if (pass) /* the scheduler pass's CPU time the GPU waits for */
        dt += st->c->host_step_s + st->c->host_seq_s * (double)st->sched_seqs;
    st->r->area_running += (double)st->nrun * dt;
    st->r->area_kv_blocks += (double)st->used_blocks * dt;
    advance(st, st->t + dt);
    st->t += dt;
    st->r->busy_s += dt;
    st->r->steps++;
    if (st->lockstep) lock_apply(st, st->t);
    else apply_step(st, st->t);
    record(st, dt, n_dec, tokens);
    return 1;
}

int srv_run(const srv_config *c, const srv_workload *w, srv_result *r, kv_err *err)
{
    srv_state st;
    if (state_init(&st, c, w, r, err) != 0) {
        state_free(&st);
        srv_result_free(r);
        return -1;
    }
    int rc = 0;
    for (;;) {
        advance(&st, st.t);
        if (st.nrun == 0 && st.wcount == 0) {
            if (st.next_arrival == w->n) break;
            st.t = w->req[st.next_arrival].arrival_s; /* idle until the next arrival */
            continue;
        }
        int ran = step_once(&st, err);
        if (ran < 0) { rc = -1; break; }
        if (ran == 0) { /* nothing fits even alone */
            const int64_t req = st.wcount ? st.wq[st.whead] : st.head;
            const srv_request *q = &w->req[req];
            rc = kv_errf(err, "request %lld (prompt %lld + output %lld tokens) does not fit the KV pool of %lld "
                         "blocks of %lld tokens (%.3g GB per rank) even alone", (long long)req, (long long)q->prompt,
                         (long long)q->output, (long long)st.pool_blocks, (long long)c->block_tokens, c->pool_bytes / 1e9);
            break;
        }
    }
    r->end_s = st.t;
    for (int64_t i = 0; i < w->n; i++) r->prompt_tokens += w->req[i].prompt;
    state_free(&st);
    if (rc != 0) srv_result_free(r);
    return rc;
}

void srv_result_free(srv_result *r)
{
    free(r->ttft_s);
    free(r->tpot_s);
    free(r->e2e_s);
    free(r->itl_s);
    free(r->preempted);
    free(r->tokens_out);
    free(r->samples);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double srv_percentile(const double *x, int64_t n, double p, double *scratch)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) scratch[m++] = x[i];
    if (m == 0) return NAN;
    qsort(scratch, (size_t)m, sizeof *scratch, cmp_double);
    const double pos = p / 100.0 * (double)(m - 1);
    const int64_t lo = (int64_t)floor(pos);
    const int64_t hi = lo + 1 < m ? lo + 1 : lo;
    return scratch[lo] + (pos - (double)lo) * (scratch[hi] - scratch[lo]);
}

/* Puts the k-th smallest of a[lo..hi] at a[k], smaller-or-equal ones
 * before it and greater-or-equal ones after (Hoare's selection, median of
 * three pivots; equal keys stop both scans, so ties split evenly). The
 * value at a rank is the sorted array's, whatever order the rest is in. */
static void select_rank(double *a, int64_t lo, int64_t hi, int64_t k)
{
    while (hi > lo) {
        const int64_t mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        const double piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                const double t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* a[lo..j] <= piv <= a[i..hi], and a[j+1..i-1] == piv */
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return;
    }
}

/* Mean in the input's order; the percentiles from the order statistics
 * they need (numpy's linear rule), selected rank by rank in ascending order
 * over what is left above the last: the same values a full sort gives. */
void srv_dist_of(const double *x, int64_t n, srv_dist *d)
{
    double *sc = gap_array((size_t)(n > 0 ? n : 1)); /* as large as the gaps */
    int64_t m = 0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) { sum += x[i]; sc[m++] = x[i]; }
    d->n = m;
    d->mean = m ? sum / (double)m : NAN;
    const double ps[4] = {50, 90, 95, 99};
    double *out[4] = {&d->p50, &d->p90, &d->p95, &d->p99};
    int64_t done = 0; /* sc[0..done-1]: the smallest done values; every rank selected so far in place */
    for (int k = 0; k < 4; k++) {
        if (m == 0) { *out[k] = NAN; continue; }
        const double pos = ps[k] / 100.0 * (double)(m - 1);
        const int64_t lo = (int64_t)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
        for (int64_t r = lo; r <= hi; r++)
            if (r >= done) {
                select_rank(sc, done, m - 1, r);
                done = r + 1;
            }
        *out[k] = sc[lo] + (pos - (double)lo) * (sc[hi] - sc[lo]);
    }
    free(sc);
}

void srv_summarize(const srv_workload *w, const srv_result *r, double rate, srv_summary *m)
{
    memset(m, 0, sizeof *m);
    srv_dist_of(r->ttft_s, r->n, &m->ttft);
    srv_dist_of(r->tpot_s, r->n, &m->tpot);
    srv_dist_of(r->itl_s, r->n_itl, &m->itl);
    srv_dist_of(r->e2e_s, r->n, &m->e2e);
    m->duration_s = r->end_s - r->first_arrival_s;
    m->requests_per_s = (double)r->completed / m->duration_s;
    m->output_tokens_per_s = (double)r->output_tokens / m->duration_s;
    m->input_tokens_per_s = (double)r->prompt_tokens / m->duration_s;
    const double denom = r->end_s * (double)r->pool_blocks;
    m->kv_occupancy_mean = denom > 0.0 ? r->area_kv_blocks / denom : 0.0;
    m->kv_occupancy_max = r->pool_blocks > 0 ? (double)r->max_kv_blocks / (double)r->pool_blocks : 0.0;
    m->running_mean = r->end_s > 0.0 ? r->area_running / r->end_s : 0.0;
    /* Little: time-average requests in the system over [0, end] against
     * arrival rate × mean time in the system */
    m->mean_in_system = r->area_in_system / r->end_s;
    m->rate_times_e2e = rate * m->e2e.mean;
    m->measured_rate_times_e2e = (double)r->completed / r->end_s * m->e2e.mean;
    for (int64_t i = 0; i < w->n; i++)
        m->lost_tokens += llabs(r->tokens_out[i] - w->req[i].output);
}
