/* run.c — the runner: for every (layer, KV head) pair, generate the
 * workload's keys, values and queries, run each parameter set's method
 * through prefill (stage 1) and the decode steps, compare each step with
 * dense attention, and hand records to the caller (trace writers).
 *
 * Threads work on whole pairs, taken from a shared counter; every result has
 * a fixed slot, and statistics are computed after the join in index order,
 * so the output does not depend on the thread count. Memory is O(S·d) per
 * worker: one pair at a time. */
#include "method_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const rkv_fid_names[RKV_FID_N] = {"output_rel_err", "mass_recall", "topk_recall", "stage1_survival"};

int rkv_params_data_independent(const rkv_params *p)
{
    return p->method->data_independent && p->granularity == RKV_GRAN_TOKEN && p->local_window == 0;
}

static int nturns_of(const rkv_run_cfg *c) { return c->wl->nturns > 0 ? c->wl->nturns : 1; }

static int64_t turn_in(const rkv_run_cfg *c, int t) { return c->wl->nturns > 0 ? c->wl->turn_input[t] : c->sets[0].S; }
static int64_t turn_out(const rkv_run_cfg *c, int t) { return c->wl->nturns > 0 ? c->wl->turn_output[t] : c->steps; }

int64_t rkv_run_tokens(const rkv_run_cfg *c)
{
    int64_t n = 0;
    for (int t = 0; t < nturns_of(c); t++)
        n += turn_in(c, t) + turn_out(c, t);
    return n;
}

static int64_t total_steps(const rkv_run_cfg *c)
{
    int64_t n = 0;
    for (int t = 0; t < nturns_of(c); t++)
        n += turn_out(c, t);
    return n;
}

typedef struct {
    const rkv_run_cfg *cfg;
    const int *layers;
    int nl, Hkv, G, d;
    int64_t ntok, nsteps;
    double *samples;          /* (nsets, nl, Hkv, nsteps, G, RKV_FID_N) */
    atomic_long next, done;
    atomic_int failed;
    pthread_mutex_t mu;
    kv_err err;
} run_shared;

static double *sample_at(run_shared *rs, int set, int li, int kvh, int64_t step, int g)
{
    size_t i = (((((size_t)set * (size_t)rs->nl + (size_t)li) * (size_t)rs->Hkv + (size_t)kvh) * (size_t)rs->nsteps
                 + (size_t)step) * (size_t)rs->G + (size_t)g) * RKV_FID_N;
    return rs->samples + i;
}

typedef struct {
    rkv_head h;
    float *Kf, *Vf, *Qw, *q, *ofull, *probs, *aws;
    int32_t *order, *rank, *rtmp; /* fidelity: dense ranking per head */
    void *state[RKV_MAX_SETS];
    rkv_step_out so[RKV_MAX_SETS];
    void *ws;
    rkv_s1_memo memo;
    double fid[RKV_MAX_GROUP * RKV_FID_N];
} worker_mem;

static void worker_free(worker_mem *w, int nsets)
{
    free(w->h.K); free(w->h.V); free(w->Kf); free(w->Vf); free(w->Qw); free(w->q);
    free(w->ofull); free(w->probs); free(w->aws); free(w->ws);
    free(w->order); free(w->rank); free(w->rtmp);
    free(w->memo.votes);
    for (int s = 0; s < nsets; s++) {
        free(w->state[s]);
        free(w->so[s].pos); free(w->so[s].count); free(w->so[s].out); free(w->so[s].dims);
    }
}

static int worker_alloc(worker_mem *w, const run_shared *rs)
{
    const rkv_run_cfg *c = rs->cfg;
    const int64_t n = rs->ntok;
    const int d = rs->d, G = rs->G;
    memset(w, 0, sizeof *w);
    const size_t b = rkv_dtype_bytes(c->sets[0].kv_dtype);
    w->h.K = malloc((size_t)n * (size_t)d * b);
    w->h.V = malloc((size_t)n * (size_t)d * b);
    w->Kf = malloc((size_t)n * (size_t)d * 4);
    w->Vf = malloc((size_t)n * (size_t)d * 4);
    w->Qw = malloc((size_t)G * RKV_MAX_WINDOW * (size_t)d * 4);
    w->q = malloc((size_t)G * (size_t)d * 4);
    w->ofull = malloc((size_t)G * (size_t)d * 4);
    w->probs = malloc((size_t)G * (size_t)n * 4);
    w->aws = malloc(((size_t)G * (size_t)n + 4 * (size_t)d) * 4);
    w->order = malloc((size_t)G * (size_t)n * 4);
    w->rank = malloc((size_t)G * (size_t)n * 4);
    w->rtmp = malloc(2 * (size_t)n * 4);
    size_t wsb = 0;
    for (int s = 0; s < c->nsets; s++) {
        size_t x = rkv_scratch_bytes(&c->sets[s], n);
        if (x > wsb) wsb = x;
    }
    w->ws = malloc(wsb);
    if (!w->h.K || !w->h.V || !w->Kf || !w->Vf || !w->Qw || !w->q || !w->ofull || !w->probs || !w->aws || !w->ws || !w->order || !w->rank || !w->rtmp)
        return -1;
    for (int s = 0; s < c->nsets; s++) {
        const rkv_params *p = &c->sets[s];
        size_t sb = p->method->state_bytes(p, n);
        w->state[s] = malloc(sb);
        rkv_step_out *o = &w->so[s];
        o->cap = n;
        o->pos = malloc((size_t)G * (size_t)n * 4);
        o->count = calloc((size_t)G, sizeof *o->count);
        o->out = malloc((size_t)G * (size_t)d * 4);
        o->dims = malloc((size_t)G * (size_t)d * 4);
        if (!w->state[s] || !o->pos || !o->count || !o->out || !o->dims)
            return -1;
    }
    w->h.d = d;
    w->h.G = G;
    w->h.dtype = c->sets[0].kv_dtype;
    w->h.cap = n;
    return 0;
}

/* Fidelity of one step of one set against the dense result. w->rank holds,
 * per head, each position's rank in the dense probabilities (descending,
 * ties to the lower index): the exact top-k is {j : rank[j] < k}. */
static void fidelity_step(const run_shared *rs, worker_mem *w, const rkv_step_out *o, int64_t n, double *out)
{
    const int G = rs->G, d = rs->d;
    for (int g = 0; g < G; g++) {
        const int32_t *A = o->shared ? o->pos : o->pos + (size_t)g * (size_t)o->cap;
        const int64_t na = o->shared ? o->count[0] : o->count[g];
        const float *pr = w->probs + (size_t)g * (size_t)n;
        const int32_t *rank = w->rank + (size_t)g * (size_t)n;
        const float *og = o->out + (size_t)g * (size_t)d, *of = w->ofull + (size_t)g * (size_t)d;
        double e2 = 0.0, f2 = 0.0, mass = 0.0;
        for (int i = 0; i < d; i++) {
            double df = (double)og[i] - (double)of[i];
            e2 += df * df;
            f2 += (double)of[i] * (double)of[i];
        }
        const int64_t k = na < n ? na : n;
        int64_t hit = 0;
        for (int64_t j = 0; j < na; j++) {
            mass += pr[A[j]];
            hit += rank[A[j]] < k;
        }
        double *f = out + (size_t)g * RKV_FID_N;
        f[RKV_FID_OUTPUT_REL_ERR] = f2 > 0 ? sqrt(e2 / f2) : sqrt(e2);
        f[RKV_FID_MASS_RECALL] = mass;
        f[RKV_FID_TOPK_RECALL] = k > 0 ? (double)hit / (double)k : 1.0;
        if (!o->cache) {
            f[RKV_FID_STAGE1_SURVIVAL] = 1.0;
        } else {
            const int32_t *cr = o->cache_shared ? o->cache : o->cache + (size_t)g * (size_t)o->cache_stride;
            const int64_t cn = o->cache_shared ? o->cache_n[0] : o->cache_n[g];
            int64_t in = 0;
            for (int64_t j = 0; j < cn; j++)
                in += rank[cr[j]] < k;
            f[RKV_FID_STAGE1_SURVIVAL] = k > 0 ? (double)in / (double)k : 1.0;
        }
    }
}

/* The prefill of turn t (history ends at pos) for every set: the window
 * queries laid out (G, w, d), then the method's stage 1. */
static int prefill_sets(run_shared *rs, worker_mem *w, const rkv_method_type *const *mt, int layer, int kvh, int t,
                        int64_t pos, kv_err *err)
{
    const rkv_run_cfg *c = rs->cfg;
    const int d = rs->d, G = rs->G;
    for (int s = 0; s < c->nsets; s++) {
        const rkv_params *p = &c->sets[s];
        int64_t wv = p->window_size > 0 ? p->window_size : 1;
        if (wv > turn_in(c, t)) wv = turn_in(c, t);
        if (wv > RKV_MAX_WINDOW) wv = RKV_MAX_WINDOW; /* resolve refuses more; turn inputs may be shorter */
        for (int64_t i = 0; i < wv; i++) {
            rkv_workload_query(c->wl, c->model, layer, kvh, pos - wv + i, t, 0, w->q);
            for (int g = 0; g < G; g++)
                memcpy(w->Qw + ((size_t)g * (size_t)wv + (size_t)i) * (size_t)d, w->q + (size_t)g * (size_t)d,
                       (size_t)d * 4);
        }
        rkv_prefill_in in = {.n_end = pos, .w = wv, .Qw = w->Qw, .turn = t, .memo = &w->memo};
        if (mt[s]->prefill(w->state[s], p, &w->h, &in, w->ws) != 0)
            return kv_errf(err, "%s: stage 1 failed at layer %d, KV head %d", p->method->name, layer, kvh);
    }
    return 0;
}

/* After the first decode step: what stage 1 kept of the first turn's input,
 * per row (G rows when each query head keeps its own cache), to the writer. */
static int report_stage1(const rkv_run_cfg *c, const rkv_step_out *o, int s, int layer, int kvh, int G, kv_err *err)
{
    const int rows = o->cache && !o->cache_shared ? G : 1;
    int64_t nk[RKV_MAX_GROUP];
    for (int r = 0; r < rows; r++) {
        nk[r] = 0;
        if (!o->cache)
            nk[r] = turn_in(c, 0);
        else {
            const int32_t *cr = o->cache_shared ? o->cache : o->cache + (size_t)r * (size_t)o->cache_stride;
            int64_t cn = o->cache_shared ? o->cache_n[0] : o->cache_n[r];
            while (nk[r] < cn && cr[nk[r]] < turn_in(c, 0)) nk[r]++;
        }
    }
    if (c->on_stage1(c->ctx, s, layer, kvh, rows, o->cache, o->cache_stride, nk) != 0)
        return kv_errf(err, "stage-1 record rejected by the writer");
    return 0;
}

static int run_pair(run_shared *rs, worker_mem *w, int li, int kvh, kv_err *err)
{
    const rkv_run_cfg *c = rs->cfg;
    const int layer = rs->layers[li], d = rs->d, G = rs->G;
    const int64_t n = rs->ntok;
    if (rkv_workload_kv(c->wl, c->model, layer, kvh, n, w->Kf, w->Vf, err) != 0)
        return -1;
    rkv_encode(w->h.dtype, w->Kf, (size_t)n * (size_t)d, w->h.K);
    rkv_encode(w->h.dtype, w->Vf, (size_t)n * (size_t)d, w->h.V);
    w->h.layer = layer;
    w->h.kv_head = kvh;
    w->memo.valid = 0; /* new keys: votes of the last pair no longer apply */
    const rkv_method_type *mt[RKV_MAX_SETS];
    for (int s = 0; s < c->nsets; s++) {
        const rkv_params *p = &c->sets[s];
        mt[s] = layer < p->skip_layers ? &rkv_method_full : p->method;
        memset(w->state[s], 0, p->method->state_bytes(p, n));
        mt[s]->state_init(w->state[s], p, n);
    }
    int64_t pos = 0, step = 0;
    for (int t = 0; t < nturns_of(c); t++) {
        pos += turn_in(c, t);
        w->h.n = pos;
        if (prefill_sets(rs, w, mt, layer, kvh, t, pos, err) != 0)
            return -1;
        for (int64_t j = 0; j < turn_out(c, t); j++, step++) {
            w->h.n = pos + 1;
            rkv_workload_query(c->wl, c->model, layer, kvh, pos, t, 1, w->q);
            if (c->fidelity) {
                rkv_attend(&w->h, w->q, NULL, pos + 1, w->ofull, w->probs, w->aws);
                for (int g = 0; g < G; g++)
                    rkv_rank_desc(w->probs + (size_t)g * (size_t)(pos + 1), pos + 1, w->order + (size_t)g * (size_t)n,
                                  w->rank + (size_t)g * (size_t)(pos + 1), w->rtmp);
            }
            for (int s = 0; s < c->nsets; s++) {
                rkv_step_out *o = &w->so[s];
                o->bytes = (rkv_traffic){0};
                o->ndims = 0;
                o->pages_scored = 0;
                o->cache = NULL;
                const rkv_params *p = &c->sets[s];
                if (mt[s]->step(w->state[s], p, &w->h, w->q, o, w->ws) != 0)
                    return kv_errf(err, "%s: decode step failed", p->method->name);
                if (step == 0 && c->on_stage1 && report_stage1(c, o, s, layer, kvh, G, err) != 0)
                    return -1;
                double *fid = NULL;
                if (c->fidelity) {
                    fidelity_step(rs, w, o, pos + 1, w->fid);
                    for (int g = 0; g < G; g++)
                        memcpy(sample_at(rs, s, li, kvh, step, g), w->fid + (size_t)g * RKV_FID_N, sizeof(double) * RKV_FID_N);
                    fid = w->fid;
                }
                if (c->on_step) {
                    rkv_record rec = {.set = s, .step = step, .position = pos, .layer = layer, .kv_head = kvh,
                                      .so = o, .fid = fid};
                    if (c->on_step(c->ctx, &rec) != 0)
                        return kv_errf(err, "step record rejected by the writer");
                }
            }
            pos++;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    run_shared *rs = arg;
    worker_mem w;
    kv_err err = {{0}};
    const long npairs = (long)rs->nl * rs->Hkv;
    if (worker_alloc(&w, rs) != 0) {
        kv_errf(&err, "out of memory for %lld tokens per head", (long long)rs->ntok);
        goto fail;
    }
    for (;;) {
        if (atomic_load(&rs->failed))
            break;
        long i = atomic_fetch_add(&rs->next, 1);
        if (i >= npairs)
            break;
        if (run_pair(rs, &w, (int)(i / rs->Hkv), (int)(i % rs->Hkv), &err) != 0)
            goto fail;
        atomic_fetch_add(&rs->done, 1);
    }
    worker_free(&w, rs->cfg->nsets);
    return NULL;
fail:
    pthread_mutex_lock(&rs->mu);
    if (!atomic_load(&rs->failed))
        rs->err = err;
    atomic_store(&rs->failed, 1);
    pthread_mutex_unlock(&rs->mu);
    worker_free(&w, rs->cfg->nsets);
    return NULL;
}

/* Fixed-order statistics of the samples. */
static int summarise(run_shared *rs, int set, rkv_fidelity *f)
{
    const size_t per_layer = (size_t)rs->Hkv * (size_t)rs->nsteps * (size_t)rs->G;
    const size_t all = per_layer * (size_t)rs->nl;
    double *buf = malloc(all * sizeof *buf), *scratch = malloc(all * sizeof *scratch);
    f->nlayers = rs->nl;
    f->layer_ids = malloc((size_t)rs->nl * sizeof *f->layer_ids);
    f->per_layer = malloc((size_t)rs->nl * RKV_FID_N * sizeof *f->per_layer);
    if (!buf || !scratch || !f->layer_ids || !f->per_layer) {
        free(buf);
        free(scratch);
        return -1;
    }
    f->samples = (int64_t)all;
    for (int li = 0; li < rs->nl; li++)
        f->layer_ids[li] = rs->layers[li];
    for (int m = 0; m < RKV_FID_N; m++) {
        size_t k = 0;
        for (int li = 0; li < rs->nl; li++)
            for (int h = 0; h < rs->Hkv; h++)
                for (int64_t s = 0; s < rs->nsteps; s++)
                    for (int g = 0; g < rs->G; g++)
                        buf[k++] = sample_at(rs, set, li, h, s, g)[m];
        kv_stats_compute(buf, all, scratch, &f->overall[m]);
        for (int li = 0; li < rs->nl; li++)
            kv_stats_compute(buf + (size_t)li * per_layer, per_layer, scratch, &f->per_layer[(size_t)li * RKV_FID_N + (size_t)m]);
    }
    free(buf);
    free(scratch);
    return 0;
}

void rkv_fidelity_free(rkv_fidelity *fid)
{
    if (!fid)
        return;
    free(fid->layer_ids);
    free(fid->per_layer);
    fid->layer_ids = NULL;
    fid->per_layer = NULL;
}

/* OpenBLAS runs single-threaded inside our workers: threads belong to pairs. */
void openblas_set_num_threads(int n);

/* Worker threads over the (layer, KV head) pairs (the calling thread does
 * them when none starts), progress reported about every 0.25 s. */
static void run_workers(run_shared *rs, const rkv_run_cfg *cfg)
{
    openblas_set_num_threads(1);
    int nt = cfg->threads > 0 ? cfg->threads : 1;
    const long npairs = (long)rs->nl * rs->Hkv;
    if (nt > npairs) nt = (int)npairs;
    pthread_t th[RKV_MAX_THREADS];
    if (nt > RKV_MAX_THREADS) nt = RKV_MAX_THREADS;
    int started = 0;
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[i], NULL, worker_main, rs) == 0)
            started++;
    if (started == 0)
        worker_main(rs);
    while (cfg->on_progress && started > 0) {
        long done = atomic_load(&rs->done);
        cfg->on_progress(cfg->ctx, done, npairs);
        if (done >= npairs || atomic_load(&rs->failed))
            break;
        struct timespec ts = {0, 250000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* The sets against the model and each other (shape, one KV dtype, limits). */
static int check_sets(const rkv_run_cfg *cfg, kv_err *err)
{
    const mdl_model *m = cfg->model;
    if (cfg->nsets < 1 || cfg->nsets > RKV_MAX_SETS)
        return kv_errf(err, "run: between 1 and %d parameter sets, got %d", RKV_MAX_SETS, cfg->nsets);
    const int G = mdl_group_size(m);
    for (int s = 0; s < cfg->nsets; s++) {
        if (cfg->sets[s].d != m->head_dim || cfg->sets[s].G != G)
            return kv_errf(err, "run: parameters resolved for d=%d G=%d but the model has d=%d G=%d",
                           cfg->sets[s].d, cfg->sets[s].G, m->head_dim, G);
        if (cfg->sets[s].kv_dtype != cfg->sets[0].kv_dtype)
            return kv_errf(err, "run: all parameter sets must share one KV dtype");
    }
    return rkv_check_shape("run", m->head_dim, G, err);
}

static int run_impl(const rkv_run_cfg *cfg, rkv_fidelity *fid, kv_err *err);

/* A measured-heads workload (rec_kernel heads) learns the run's positions, so
 * that past its measured context it stretches its slow pairs
 * (refimpl/workload_fitted.c, hv_stretch): the run goes on a copy that says so. */
int rkv_run(const rkv_run_cfg *cfg, rkv_fidelity *fid, kv_err *err)
{
    if (cfg->wl->rec_ladder != RKV_REC_HEADS) return run_impl(cfg, fid, err);
    rkv_workload *wl = malloc(sizeof *wl);
    if (!wl) return kv_errf(err, "run: out of memory");
    *wl = *cfg->wl;
    wl->run_context = rkv_run_tokens(cfg);
    rkv_run_cfg c = *cfg;
    c.wl = wl;
    const int rc = run_impl(&c, fid, err);
    free(wl);
    return rc;
}

static int run_impl(const rkv_run_cfg *cfg, rkv_fidelity *fid, kv_err *err)
{
    const mdl_model *m = cfg->model;
    if (check_sets(cfg, err) != 0)
        return -1;
    const int G = mdl_group_size(m);
    run_shared rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = cfg;
    rs.Hkv = m->num_key_value_heads;
    rs.G = G;
    rs.d = m->head_dim;
    rs.ntok = rkv_run_tokens(cfg);
    rs.nsteps = total_steps(cfg);
    if (rs.nsteps < 1)
        return kv_errf(err, "run: at least one decode step is needed");
    /* A single turn decodes positions S .. S + steps − 1; each must lie below
     * S' = min(S + max_new, the model's max length) (docs/algorithm.md, the
     * prompt-budget rule). Multi-turn workloads are bounded by their turns. */
    for (int i = 0; i < cfg->nsets && cfg->wl->nturns == 0; i++)
        if (cfg->steps > rkv_params_decode_steps(&cfg->sets[i]))
            return kv_errf(err, "run: decode step %lld would be at position %lld, past S' = %lld (min(S + max_new, "
                           "the model's max length)); at most %lld steps after a %lld-token prompt",
                           (long long)(cfg->steps - 1), (long long)(cfg->sets[i].S + cfg->steps - 1),
                           (long long)cfg->sets[i].S_total, (long long)rkv_params_decode_steps(&cfg->sets[i]),
                           (long long)cfg->sets[i].S);
    if (rs.ntok > INT32_MAX)
        return kv_errf(err, "run: %lld tokens exceed the 2^31 positions the reference indexes", (long long)rs.ntok);
    int *all = NULL;
    if (cfg->layers) {
        rs.layers = cfg->layers;
        rs.nl = cfg->nlayers;
        for (int i = 0; i < rs.nl; i++)
            if (cfg->layers[i] < 0 || cfg->layers[i] >= m->num_hidden_layers)
                return kv_errf(err, "run: layer %d out of range 0..%d", cfg->layers[i], m->num_hidden_layers - 1);
    } else {
        all = malloc((size_t)m->num_hidden_layers * sizeof *all);
        if (!all)
            return kv_errf(err, "out of memory");
        for (int i = 0; i < m->num_hidden_layers; i++) all[i] = i;
        rs.layers = all;
        rs.nl = m->num_hidden_layers;
    }
    if (cfg->fidelity) {
        rs.samples = calloc((size_t)cfg->nsets * (size_t)rs.nl * (size_t)rs.Hkv * (size_t)rs.nsteps * (size_t)G * RKV_FID_N,
                            sizeof(double));
        if (!rs.samples) {
            free(all);
            return kv_errf(err, "out of memory for fidelity samples");
        }
    }
    atomic_init(&rs.next, 0);
    atomic_init(&rs.done, 0);
    atomic_init(&rs.failed, 0);
    pthread_mutex_init(&rs.mu, NULL);
    run_workers(&rs, cfg);
    pthread_mutex_destroy(&rs.mu);
    int rc = 0;
    if (atomic_load(&rs.failed)) {
        if (err) *err = rs.err;
        rc = -1;
    } else if (cfg->fidelity && fid) {
        for (int s = 0; s < cfg->nsets; s++) {
            memset(&fid[s], 0, sizeof fid[s]);
            if (summarise(&rs, s, &fid[s]) != 0) {
                rc = kv_errf(err, "out of memory for statistics");
                break;
            }
        }
    }
    free(rs.samples);
    free(all);
    return rc;
}
