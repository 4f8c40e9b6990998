/* serve.c — the event loop and the scheduler of srv.h: arrivals, one engine
 * step at a time (schedule, price, apply), preemption by recompute, and the
 * per-request latencies; the walk (every sequence every step, and
 * srv_config.reference). The lockstep path is lockstep.c. */
#include "srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


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
                          : srv_blocks_full(st, st->w->req[req].prompt + k + 1);
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
int64_t srv_decode_need(srv_state *st, int64_t req, int64_t k)
{
    rq_state *s = &st->q[req];
    const srv_slot *sl = &st->slots[s->slot];
    const double y = !sl->compresses ? 0.0 : k == s->blk_next && !isnan(s->y_next) ? s->y_next /* found with blk_next */
                                                                                  : comp_bytes_after(st, req, sl, k);
    int64_t need = (sl->compresses ? blocks_of_bytes(st, y) : srv_blocks_full(st, st->w->req[req].prompt + k + 1)) - s->blocks;
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

void srv_preempt(srv_state *st, int64_t req)
{
    rq_state *s = &st->q[req];
    if (s->coh) {
        srv_lock_leave(st, req);
        st->r->lock_events[SRV_EV_LEAVE]++;
    }
    st->used_blocks -= s->blocks;
    if (st->c->preempt_swap && s->blocks <= st->swap_blocks - st->swap_used) { /* its blocks to the host, progress kept */
        s->swapped = s->blocks;
        st->swap_used += s->blocks;
        if (st->swap_used > st->r->max_swap_blocks) st->r->max_swap_blocks = st->swap_used;
        st->step_swap_s += (double)s->blocks * st->swap_block_s;
        st->r->swap_outs++;
    } else { /* recompute: the prompt and the tokens so far prefilled again */
        st->r->swap_fallbacks += st->c->preempt_swap;
        s->filled = 0;
        s->decoding = 0;
    }
    s->blocks = 0;
    s->phase = Q_WAITING;
    slot_release(st, req);
    st->whead = (st->whead + st->w->n - 1) % st->w->n;
    st->wq[st->whead] = req;
    st->wcount++;
    run_unlink(st, req);
    st->r->preemptions++;
    st->r->preempted[req]++;
}


/* Frees blocks for `need` more of req's by preempting the latest admitted
 * running sequences (vLLM's rule: the tail of the running queue goes first),
 * until the pool has room or req itself was the victim. Returns 1 when req
 * was preempted (the caller stops scheduling this step), else 0; *preempted
 * is set when anything was. */
int srv_make_room(srv_state *st, int64_t req, int64_t need, int *preempted)
{
    while (need > st->pool_blocks - st->used_blocks) {
        const int64_t victim = st->tail;
        srv_preempt(st, victim);
        *preempted = 1;
        if (victim == req)
            return 1;
    }
    return 0;
}

void srv_schedule(srv_state *st, int64_t req, int64_t n, int64_t need)
{
    st->sched[st->nsched++] = (sched_item){req, n};
    st->sched_dec += st->q[req].decoding;
    st->sched_tokens += n;
    st->q[req].blocks += need;
    st->used_blocks += need;
}


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
            need = srv_blocks_full(st, s->filled + n) - s->blocks;
            if (need < 0) need = 0;
        } else if (!ref) {
            need = srv_decode_need(st, req, s->g - 1);
        } else { /* the definition */
            need = blocks_after_decode(st, req, s->g - 1) - s->blocks;
            if (need < 0) need = 0;
        }
        if (srv_make_room(st, req, need, &preempted))
            break;
        nx = s->next; /* victims were after it */
        srv_schedule(st, req, n, need);
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
    return (int64_t)ceil(st->c->admit_reserve * (double)srv_blocks_full(st, left));
}

/* A request preempted by swap, first in the queue, back in when a seat,
 * the budget and its blocks allow: its blocks and those the step's tokens
 * need (a decoding sequence's next token, else the next chunk of its
 * prefill), the swapped ones copied back. Returns 1 when it was admitted,
 * 0 when it does not fit, -1 on error. */
static int swap_in(srv_state *st, int64_t req, int64_t *budget, kv_err *err)
{
    rq_state *s = &st->q[req];
    if (slot_acquire(st, req, err) != 0)
        return -1;
    const int64_t n = s->decoding ? 1 : s->target - s->filled < *budget ? s->target - s->filled : *budget;
    int64_t need = s->decoding ? blocks_after_decode(st, req, s->g - 1) : srv_blocks_full(st, s->filled + n);
    if (need < s->swapped) need = s->swapped;
    if (need > st->pool_blocks - st->used_blocks) {
        slot_release(st, req);
        return 0;
    }
    st->whead = (st->whead + 1) % st->w->n;
    st->wcount--;
    st->swap_used -= s->swapped;
    st->step_swap_s += (double)s->swapped * st->swap_block_s;
    st->r->swap_ins++;
    s->swapped = 0;
    s->phase = Q_RUNNING;
    run_append(st, req);
    srv_schedule(st, req, n, need);
    *budget -= n;
    return 1;
}

/* Waiting requests, first come first served, while budget, seats and blocks
 * last (with admit_reserve: blocks for the whole request and the reserve);
 * one preempted by swap comes back through swap_in. */
static int schedule_waiting(srv_state *st, int64_t *budget, kv_err *err)
{
    int64_t reserve = st->wcount > 0 ? reserved_blocks(st) : 0;
    while (st->wcount > 0 && *budget > 0 && st->nrun < st->c->max_num_seqs) {
        const int64_t req = st->wq[st->whead];
        rq_state *s = &st->q[req];
        if (s->swapped > 0) { /* preempted by swap: it held blocks (every running sequence does) */
            const int rc = swap_in(st, req, budget, err);
            if (rc <= 0)
                return rc;
            continue;
        }
        const int64_t target = st->w->req[req].prompt + s->g;
        const int64_t n = target < *budget ? target : *budget;
        const int64_t need = srv_blocks_full(st, n);
        if (need > st->pool_blocks - st->used_blocks)
            break;
        if (st->c->admit_reserve > 0.0) { /* the whole request beside the reserve */
            const int64_t whole = srv_blocks_full(st, st->w->req[req].prompt + st->w->req[req].output);
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
        srv_schedule(st, req, n, need);
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
    return srv_step_price(st, n_dec, sum_ctx, tokens, (int)nch, nsample, s1, &sum, uni);
}

/* A step's price from what it needs of its sequences: n_dec decoding ones
 * with sum_ctx tokens of context after the step and method-layer sums sum;
 * tokens in all; nch prefill chunks (st->cs, st->cn); nsample sequences that
 * sample; s1 their stage 1; uni dense layers. */
double srv_step_price(srv_state *st, int64_t n_dec, int64_t sum_ctx, int64_t tokens, int nch, int64_t nsample,
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

void srv_finish(srv_state *st, int64_t req, double t)
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
void srv_prefill_ends(srv_state *st, int64_t req, double t)
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
        srv_finish(st, req, t);
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
                srv_finish(st, it->req, t);
            continue;
        }
        s->filled += it->n;
        r->prefill_tokens += it->n;
        if (s->filled < s->target)
            continue;
        r->n_itl = n_itl; /* emit_token counts a gap when the prefill was a recompute */
        srv_prefill_ends(st, it->req, t);
        n_itl = r->n_itl;
    }
    r->n_itl = n_itl;
    r->decode_steps_seq += dec;
    r->output_tokens += dec;
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
    if (c->preempt_swap) { /* vLLM's num_cpu_blocks: the swap space in whole blocks of this rank */
        if (c->prefill_alone)
            return kv_errf(err, "serve: preemption by swap with a step loop that prefills alone is not modelled");
        if (!(c->hw->pcie_bytes_per_s > 0.0) || !(c->swap_bytes >= 0.0))
            return kv_errf(err, "serve: preemption by swap needs the GPU's host link (%s: pcie_bytes_per_s) and a swap "
                           "space >= 0", c->hw->name);
        st->swap_blocks = (int64_t)floor(c->swap_bytes / st->block_bytes);
        st->swap_block_s = st->block_bytes / c->hw->pcie_bytes_per_s;
        r->swap_blocks = st->swap_blocks;
    }
    const size_t n = (size_t)w->n, S = (size_t)c->max_num_seqs;
    int64_t n_itl = 0;
    for (int64_t i = 0; i < w->n; i++) n_itl += w->req[i].output - 1;
    r->n = w->n;
    r->ttft_s = calloc(n, sizeof(double));
    r->tpot_s = calloc(n, sizeof(double));
    r->e2e_s = calloc(n, sizeof(double));
    r->itl_s = srv_gap_array((size_t)n_itl + 1);
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
    const int rc = st->lockstep ? srv_lock_schedule(st, budget, mode, err) : schedule_running(st, budget, mode);
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
    st->step_swap_s = 0.0;
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
    double dt = st->lockstep ? srv_lock_price(st) : price_step(st);
    dt += st->step_swap_s; /* the step's swaps over the host link, before its model runs */
    st->r->swap_s += st->step_swap_s;
    if (pass) /* the scheduler pass's CPU time the GPU waits for */
        dt += st->c->host_step_s + st->c->host_seq_s * (double)st->sched_seqs;
    st->r->area_running += (double)st->nrun * dt;
    st->r->area_kv_blocks += (double)st->used_blocks * dt;
    advance(st, st->t + dt);
    st->t += dt;
    st->r->busy_s += dt;
    st->r->steps++;
    if (st->lockstep) srv_lock_apply(st, st->t);
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
