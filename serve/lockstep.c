/* lockstep.c — serve.c's lockstep path (srv.h's "Speed"): the decoding
 * sequences as one lockstep, kept as running sums, touched only at their
 * events (timing wheels by step, a ring of page differences). */
#include "srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
void srv_lock_leave(srv_state *st, int64_t req)
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
    if (!st->pr.is_full && sl->have_price) { /* swapped back in: its price this step goes into the sums */
        srv_cost_acc_add(&st->acc, &sl->cost, 1);
        st->acc_all = 1;
    }
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
        const int64_t need = srv_decode_need(st, req, k);
        st->r->lock_events[SRV_EV_BLOCKS]++;
        while (need > st->pool_blocks - st->used_blocks) {
            const int64_t victim = st->tail;
            srv_preempt(st, victim);
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
int srv_lock_schedule(srv_state *st, int64_t *budget, int mode, kv_err *err)
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
        int64_t need = srv_blocks_full(st, s->filled + n) - s->blocks;
        if (need < 0) need = 0;
        if (srv_make_room(st, req, need, &preempted))
            break;
        srv_schedule(st, req, n, need);
        left -= n;
    }
    *budget = left;
    return preempted;
}

/* A sequence swapped back in that decodes in this step (not a member
 * yet): priced at its decode step and added to the step's sums (a, exact)
 * and counts. */
static void swapped_in_decode(srv_state *st, const rq_state *s, srv_cost_acc *a, int64_t *n_dec, int64_t *sum_ctx)
{
    srv_slot *sl = &st->slots[s->slot];
    (*n_dec)++;
    *sum_ctx += sl->p.S + s->g; /* its context after decode step g - 1 */
    if (st->pr.is_full)
        return;
    srv_seq_price_at(&st->pr, sl, s->g - 1);
    srv_cost_acc_add(a, &sl->cost, 1);
    st->uni = sl->src.uniform_from;
}

/* The max launches per kernel over the step's decoding sequences (the
 * members when they decode, the ones swapped back in), by a walk: what the
 * sums cannot say when two differ (srv_cost_acc.la_mixed). */
static void lock_max_launches(const srv_state *st, srv_seq_cost *sum)
{
    for (int k = 0; k < SRV_ATT_K; k++) {
        double m = 0.0;
        for (int64_t req = st->head; req >= 0; req = st->q[req].next) {
            const rq_state *s = &st->q[req];
            if (s->coh ? st->coh_step : s->decoding) { /* a decoding non-member is one swapped back in this step */
                const double la = st->slots[s->slot].cost.la[k];
                m = m > la ? m : la;
            }
        }
        sum->la[k] = m;
    }
}

/* price_step on the lockstep: the members from the sums, the prefills as
 * the walk prices them, a sequence swapped back in that decodes added to
 * the sums. */
double srv_lock_price(srv_state *st)
{
    int64_t n_dec = st->coh_step ? st->ncoh : 0, sum_ctx = st->coh_step ? st->sum_base + st->ncoh * st->D : 0;
    int64_t nch = 0, nsample = 0, nswap = 0;
    double s1 = 0.0;
    srv_cost_acc swp; /* once one is swapped in: the members' sums (when they decode) with the swapped-in ones */
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &st->sched[i];
        const rq_state *s = &st->q[it->req];
        if (s->decoding) {
            if (nswap++ == 0) {
                if (st->coh_step) swp = st->acc;
                else memset(&swp, 0, sizeof swp);
            }
            swapped_in_decode(st, s, &swp, &n_dec, &sum_ctx);
            continue;
        }
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
    if (nswap > 0 && !st->pr.is_full) { /* rounded once, as the walk's exact sums */
        srv_cost_acc_sum(&swp, &sum);
        a = &swp;
    }
    if (a->la_mixed)
        lock_max_launches(st, &sum);
    return srv_step_price(st, n_dec, sum_ctx, st->sched_tokens, (int)nch, nsample + n_dec, s1, &sum, st->uni);
}

/* apply_step on the lockstep: the members' tokens (gaps in admission order:
 * the others, all t - t_last, then the fresh ones), their last tokens, then
 * the prefills as the walk applies them, a prompt that ends joining. */
void srv_lock_apply(srv_state *st, double t)
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
            srv_lock_leave(st, req);
            srv_finish(st, req, t);
            r->lock_events[SRV_EV_DONE]++;
        }
        st->nfin = 0;
    }
    for (int64_t i = 0; i < st->nsched; i++) {
        const sched_item *it = &st->sched[i];
        rq_state *s = &st->q[it->req];
        if (s->decoding) { /* swapped back in: its next token, as the walk's apply_step gives it */
            r->itl_s[r->n_itl++] = t - s->last_token_s;
            s->g++;
            s->last_token_s = t;
            r->tokens_out[it->req]++;
            r->output_tokens++;
            r->decode_steps_seq++;
            if (s->g == st->w->req[it->req].output)
                srv_finish(st, it->req, t);
            else
                lock_join(st, it->req, t, !st->coh_step);
            continue;
        }
        s->filled += it->n;
        r->prefill_tokens += it->n;
        if (s->filled < s->target)
            continue;
        srv_prefill_ends(st, it->req, t);
        if (s->phase == Q_RUNNING)
            lock_join(st, it->req, t, !st->coh_step);
    }
}

