/* srv_internal.h — what serve/'s files share and nobody else needs. */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <stdlib.h>
#include <string.h>
#include "srv.h"

#define SRV_EFF_CACHE 4096
#define SRV_S2_AUX 1024           /* aux bytes per page per KV head the stage-2 memo covers */
#define SRV_S2_PAGES (1 << 22)    /* pages it covers */

/* Stage-2 prices by page count np: be, by, fl of the aux score, be, by of
 * the top-k (the uses price_stage2 writes); be < 0: not priced yet. */
typedef struct {
    double (*v)[5];               /* (n) */
    __int128 (*fx)[5];            /* (n) the same in srv_cost_acc's fixed point (srv_fx), for its sums */
    __int128 (*dfx)[5];           /* (n) fx[np + 1] - fx[np], set once both pages are priced */
    int64_t n;
} srv_s2_table;

/* What srv_seq_cost_direct needs of a sequence besides its params, fixed
 * at admission: the factors add_traffic and layer_uses apply. */
typedef struct {
    double H;        /* KV heads the traffic is scaled by (the model's) */
    double f;        /* layer_uses' scale: batch × this rank's share of the KV heads */
    double b, ba;    /* bytes per K/V element, per aux element */
    double g, G;     /* query heads sharing an exact/aux read (1 per query head); query heads per KV head */
    double row;      /* bytes of one token row of one head (the K/V append's run) */
    double reads_G;  /* dense DRAM reads per query head: G when kv_reads_per_query_head without sim_per_head_cuda_core, else 1 */
    int direct;      /* 1: the engine harness at batch 1, where the direct price applies */
    /* Stage 2 once saturated (traits stage2, exact reads of rows or pages,
     * aux reads dims-major over pages; C >= c_sat): the attended rows and
     * the append are constant and only the page count np = ceil(C / pg)
     * moves the aux and score traffic (np·aux_np and np·scores_np bytes per
     * KV head) and the aux run (np·aux_elem bytes). */
    int s2;          /* 1: the saturated stage-2 form applies from c_sat on */
    int64_t c_sat;   /* tokens: max(K' + local window, topk + 1), K' = topk rounded up to pages when page-grained */
    int64_t pg;      /* tokens per page */
    int64_t kept;    /* prompt tokens kept: C = kept + step + 1 (rkv_cache_tokens; stage 2 is never capped) */
    int64_t aux_np, scores_np; /* bytes per page per KV head: min(r, d)·aux bytes; 2·G·4 */
    double aux_elem; /* bytes of one aux element */
} srv_seq_form;

/* One layer's method attention of one sequence, per attention kernel
 * (index kernel - SIM_K_KV_APPEND: append, dense, aux score, top-k,
 * sparse, the only kernels layer_uses names): Σ bytes / efficiency, bytes,
 * FLOPs and launches; all 0 for a kernel it does not launch. Adding a 0 to
 * the batch's sums leaves them as they were (they are never -0). */
#define SRV_ATT_K (SIM_K_ATTN_SPARSE - SIM_K_KV_APPEND + 1)
typedef struct {
    double be[SRV_ATT_K], by[SRV_ATT_K], fl[SRV_ATT_K], la[SRV_ATT_K];
} srv_seq_cost;

/* Σ of method-layer prices over a set of sequences, exact and so free of
 * the order they are added or taken away in: be, by and fl in fixed point
 * (value × 2^64, the double's bits shifted: exact for values >= 2^-11, which
 * bytes and FLOPs of a layer are, or 0), launches as the number of
 * sequences launching each kernel and their launches per layer (one value
 * per kernel: la_mixed when two differ). srv_cost_acc_sum rounds each sum to
 * the nearest double once. */
typedef struct {
    __int128 be[SRV_ATT_K], by[SRV_ATT_K], fl[SRV_ATT_K]; /* Σ × 2^64 */
    int64_t nla[SRV_ATT_K];       /* sequences with la > 0 */
    double la[SRV_ATT_K];         /* their la (the max of equal values) */
    int la_mixed;                 /* two sequences' la of a kernel differed: the max needs a walk */
} srv_cost_acc;

/* v × 2^64 truncated, v >= 0 and < 2^62 (a price: bytes, bytes/efficiency,
 * FLOPs): the mantissa shifted, exact when v's last bit is >= 2^-64. */
static inline __int128 srv_fx(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    const int ex = (int)(b >> 52 & 0x7ff);
    if (ex == 0)
        return 0; /* ±0 (and subnormals, far below 2^-64) */
    const uint64_t m = (b & ((1ull << 52) - 1)) | (1ull << 52);
    const int sh = ex - 1075 + 64; /* v = m × 2^(ex - 1075) */
    return sh >= 0 ? (__int128)m << sh : sh > -53 ? (__int128)(m >> -sh) : 0;
}

/* Adds (sign 1) or takes away (-1) one sequence's price. */
static inline void srv_cost_acc_add(srv_cost_acc *a, const srv_seq_cost *c, int sign)
{
    for (int k = 0; k < SRV_ATT_K; k++) {
        if (c->la[k] <= 0.0 && c->by[k] == 0.0 && c->be[k] == 0.0 && c->fl[k] == 0.0)
            continue;
        a->be[k] += sign * srv_fx(c->be[k]);
        a->by[k] += sign * srv_fx(c->by[k]);
        a->fl[k] += sign * srv_fx(c->fl[k]);
        if (c->la[k] > 0.0) {
            if (sign > 0 && a->nla[k] > 0 && a->la[k] != c->la[k])
                a->la_mixed = 1;
            a->la[k] = c->la[k];
            a->nla[k] += sign;
        }
    }
}

/* x × 2^-64 rounded to the nearest double (ties to even), x >= 0: its
 * top 64 bits with a sticky bit for the rest, converted (correctly rounded:
 * the sticky bit lies below the rounding bit), scaled by a power of two. */
static inline double srv_fx_value(__int128 x)
{
    const unsigned __int128 u = (unsigned __int128)x;
    const uint64_t hi = (uint64_t)(u >> 64);
    if (hi == 0)
        return (double)(uint64_t)u * 0x1p-64;
    const int z = __builtin_clzll(hi);
    const unsigned __int128 v = u << z;
    const uint64_t top = (uint64_t)(v >> 64) | ((uint64_t)v != 0);
    const uint64_t pb = (uint64_t)(1023 - z) << 52; /* 2^-z */
    double p;
    memcpy(&p, &pb, sizeof p);
    return (double)top * p;
}

/* The sums as doubles (launches: the max when la_mixed is clear). */
static inline void srv_cost_acc_sum(const srv_cost_acc *a, srv_seq_cost *sum)
{
    for (int k = 0; k < SRV_ATT_K; k++) {
        sum->be[k] = srv_fx_value(a->be[k]);
        sum->by[k] = srv_fx_value(a->by[k]);
        sum->fl[k] = srv_fx_value(a->fl[k]);
        sum->la[k] = a->nla[k] > 0 ? a->la[k] : 0.0;
    }
}

/* A running sequence's resolved method and its priced method-layer attention. */
typedef struct {
    int64_t req;                  /* request index; -1 when free */
    rkv_params p;                 /* resolved for (prompt, output) */
    sim_analytic_ctx actx;
    sim_access_source src;
    double comp_bytes_per_token;  /* method layers, one rank: stored K/V + aux per cached token */
    double stage1_s;              /* stage 1 of this sequence (0: none) */
    int compresses;               /* the footprint changes at the end of the prefill */
    double skip;                  /* layers below skip_layers (at most the model's): full K/V */
    double bytes_step;            /* about what a decode step adds to its bytes (a search's first guess) */
    srv_seq_form form;            /* the direct price's factors */
    int64_t until;                /* the price holds through this decode step (sim_access_until) */
    int have_price;
    int saturated;                /* cost was priced at C >= form.c_sat in the stage-2 form (kernels append, aux score, top-k, sparse) */
    srv_seq_cost cost;            /* the price: one layer, this sequence */
    srv_s2_table *s2;             /* once saturated: the pricer's memo for its form (NULL: none) */
    int64_t np;                   /* pages of the saturated price standing (until = np pg - kept - 1); 0: none */
} srv_slot;

typedef struct {
    sim_config c;                 /* batch 1, full's params: the template every price starts from */
    sim_rank_shape s;
    rkv_params full;
    double launch;
    double eff_stream;            /* sim_kernel_eff of a stream (run 0) */
    double *fixed;                /* (nfixed) sim_decode_fixed_s per batch; NaN until asked */
    struct { double run, eff; } effc[SRV_EFF_CACHE]; /* sim_kernel_eff by run length, direct mapped; run < 0: empty */
    int64_t nfixed;
    /* the saturated stage-2 price by aux bytes per page and page count (a
     * pure function of those and the form's other factors: s2key, the
     * first saturated form's; forms that differ are priced every time) */
    double s2key[6];              /* H, f, g, ba, scores_np, aux_elem (set with s2tab) */
    srv_s2_table *s2tab;          /* (SRV_S2_AUX) by aux_np; NULL until a form is saturated */
    int L;
    int is_full;
} srv_pricer;

int srv_pricer_init(srv_pricer *pr, const srv_config *c, kv_err *err);
void srv_pricer_free(srv_pricer *pr);
double srv_price_fixed(srv_pricer *pr, int64_t batch);
double srv_price_dense_layer(const srv_pricer *pr, int64_t n, int64_t sum_ctx);
void srv_seq_price(srv_pricer *pr, srv_slot *sl, int64_t step);
void srv_seq_form_init(const srv_pricer *pr, const rkv_params *p, int hkv, srv_seq_form *f);
void srv_seq_cost_record(srv_pricer *pr, const rkv_params *p, int hkv, int64_t step, srv_seq_cost *c);
void srv_seq_cost_direct(srv_pricer *pr, const srv_seq_form *f, const rkv_params *p, int64_t step, srv_seq_cost *c);
double srv_price_method_layer(const srv_pricer *pr, const srv_seq_cost *sum);

/* A saturated sequence's price at decode step `step` from its memo
 * (srv_slot.s2): 1 with the aux-score and top-k uses and `until` set (the
 * record then stands to the end of the page) when the memo holds the page
 * count's price, else 0 and nothing changed. */
static inline int srv_seq_s2_hit(srv_slot *sl, int64_t step)
{
    const srv_seq_form *f = &sl->form;
    const srv_s2_table *tb = sl->s2;
    int64_t np, until;
    if (sl->np > 0 && step == sl->until + 1) { /* the step after a page: C = np pg + 1, so the next page */
        np = sl->np + 1;
        until = sl->until + f->pg;
    } else {
        const int64_t C = f->kept + step + 1;
        np = (C + f->pg - 1) / f->pg;
        until = step + (np * f->pg - C);
    }
    if (!tb || np >= tb->n || tb->v[np][0] < 0.0)
        return 0;
    const double *e = tb->v[np];
    const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
    sl->cost.be[a] = e[0], sl->cost.by[a] = e[1], sl->cost.fl[a] = e[2], sl->cost.be[t] = e[3], sl->cost.by[t] = e[4];
    sl->np = np;
    sl->until = until;
    return 1;
}

/* srv_seq_price with its commonest cases inline: the price stands, or a
 * saturated sequence's next page is in the memo. */
static inline void srv_seq_price_at(srv_pricer *pr, srv_slot *sl, int64_t step)
{
    if (sl->have_price && step <= sl->until)
        return;
    if (sl->saturated && srv_seq_s2_hit(sl, step))
        return;
    srv_seq_price(pr, sl, step);
}

/* ---- the event loop's state (serve.c; the lockstep path in lockstep.c) ---- */
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
    int64_t swapped;      /* blocks it holds in the swap space (preempted by swap; 0: none) */
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
    int64_t swap_blocks, swap_used; /* the swap space and its blocks in use (srv.h's "Preemption by swap") */
    double swap_block_s;          /* one block's copy over the host link, s */
    double step_swap_s;           /* the scheduled step's swaps, s */
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
enum { SCHED_ALL, SCHED_PREFILL, SCHED_DECODE }; /* which running sequences a step takes */

static inline int64_t srv_blocks_full(const srv_state *st, int64_t tokens)
{
    return (tokens + st->c->block_tokens - 1) / st->c->block_tokens;
}

/* serve.c's scheduler and step, used by the lockstep path too. */
int64_t srv_decode_need(srv_state *st, int64_t req, int64_t k);
void srv_preempt(srv_state *st, int64_t req);
int srv_make_room(srv_state *st, int64_t req, int64_t need, int *preempted);
void srv_schedule(srv_state *st, int64_t req, int64_t n, int64_t need);
double srv_step_price(srv_state *st, int64_t n_dec, int64_t sum_ctx, int64_t tokens, int nch, int64_t nsample,
                      double s1, const srv_seq_cost *sum, int uni);
void srv_finish(srv_state *st, int64_t req, double t);
void srv_prefill_ends(srv_state *st, int64_t req, double t);

/* lockstep.c: the lockstep path (srv.h's "Speed"): schedule_running,
 * price_step and apply_step's counterparts, and a member leaving it. */
void srv_lock_leave(srv_state *st, int64_t req);
int srv_lock_schedule(srv_state *st, int64_t *budget, int mode, kv_err *err);
double srv_lock_price(srv_state *st);
void srv_lock_apply(srv_state *st, double t);

/* summary.c: n doubles for the result's inter-token gaps or a copy of them
 * (tens of MB in a long run: in transparent huge pages where the kernel gives them). */
double *srv_gap_array(size_t n);

#endif
