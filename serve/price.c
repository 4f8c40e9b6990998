/* price.c — one engine step priced with sim/'s kernels (srv.h's "Pricing").
 * The decode-only part that does not depend on the context is cached per
 * batch size (exact: a pure function of the batch); a sequence's method-layer
 * attention is re-priced only when its access record changes, directly from
 * its traffic (the record's arithmetic written out, the same bits) or, for a
 * saturated stage-2 method, from its page count. */
#include "srv_internal.h"

#include <math.h>
#include <string.h>

int srv_pricer_init(srv_pricer *pr, const srv_config *c, kv_err *err)
{
    memset(pr, 0, sizeof *pr);
    rkv_request rq = c->rq;
    rq.context = 1;
    rq.max_new = 1;
    if (rkv_params_resolve(rkv_method_baseline()->name, &rq, &pr->full, err) != 0)
        return -1;
    sim_config_defaults(&pr->c, c->model, c->hw, &pr->full);
    pr->c.tp = c->tp;
    pr->c.cuda_graphs = c->cuda_graphs && (!c->engine || c->engine->cuda_graphs);
    pr->c.weight_bytes_per_param = c->weight_bytes_per_param;
    pr->c.weight_compute = c->weight_compute;
    pr->c.weight_dequant_ops = c->weight_dequant_ops;
    if (sim_rank_shape_compute(&pr->c, &pr->s, err) != 0)
        return -1;
    pr->launch = sim_launch_s(&pr->c);
    pr->eff_stream = sim_kernel_eff(&pr->c, 0.0);
    pr->nfixed = c->max_num_seqs + 1;
    pr->fixed = malloc((size_t)pr->nfixed * sizeof *pr->fixed);
    for (int64_t i = 0; i < pr->nfixed; i++) pr->fixed[i] = NAN;
    pr->L = c->model->num_hidden_layers;
    for (int i = 0; i < SRV_EFF_CACHE; i++) pr->effc[i].run = -1.0;
    const rkv_method_type *mt = rkv_method_get(c->method, err);
    if (!mt)
        return -1;
    pr->is_full = mt->traits.dense;
    return 0;
}

void srv_pricer_free(srv_pricer *pr)
{
    free(pr->fixed);
    pr->fixed = NULL;
    if (pr->s2tab)
        for (int i = 0; i < SRV_S2_AUX; i++) {
            free(pr->s2tab[i].v);
            free(pr->s2tab[i].fx);
            free(pr->s2tab[i].dfx);
        }
    free(pr->s2tab);
    pr->s2tab = NULL;
}

double srv_price_fixed(srv_pricer *pr, int64_t batch)
{
    if (isnan(pr->fixed[batch])) {
        sim_config x = pr->c;
        x.batch = batch;
        pr->fixed[batch] = sim_decode_fixed_s(&x, &pr->s);
    }
    return pr->fixed[batch];
}

/* One layer's kernels from uses, each priced as step.c's kern() prices it. */
static double layer_time(const srv_pricer *pr, const sim_kernel_use *u, int n)
{
    double t = 0.0;
    for (int i = 0; i < n; i++)
        t += sim_kernel_batch_s(&pr->c, u[i].kernel, u[i].bytes / sim_kernel_eff(&pr->c, u[i].run), u[i].bytes,
                                u[i].flops, u[i].launches);
    return t;
}

/* One dense layer for n sequences whose caches hold sum_ctx tokens in all
 * (after this step's append): full attention's traffic is affine in the
 * context and streams, so the batch reads what one sequence of sum_ctx tokens
 * would, with n appends. */
double srv_price_dense_layer(const srv_pricer *pr, int64_t n, int64_t sum_ctx)
{
    const int64_t row = 2 * (int64_t)pr->full.d * (int64_t)rkv_dtype_bytes(pr->full.kv_dtype);
    rkv_traffic t = {0};
    t.kv_full = sum_ctx * row;
    t.kv_write = n * row;
    sim_layer_access a;
    memset(&a, 0, sizeof a);
    sim_access_add(&pr->full, &t, 1, -1.0, (double)pr->c.model->num_key_value_heads, &a);
    sim_kernel_use u[SIM_LAYER_USES];
    const int nu = sim_layer_uses(&pr->c, &pr->s, &a, u);
    return layer_time(pr, u, nu);
}

/* sim_kernel_eff memoised by run length (a pure function of it). */
static double eff_cached(srv_pricer *pr, double run)
{
    uint64_t bits;
    memcpy(&bits, &run, sizeof bits);
    const size_t i = (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 52) % SRV_EFF_CACHE;
    if (pr->effc[i].run != run) {
        pr->effc[i].run = run;
        pr->effc[i].eff = sim_kernel_eff(&pr->c, run);
    }
    return pr->effc[i].eff;
}

/* The price of one access record, as step.c's kern() prices each use. */
static void price_record(srv_pricer *pr, const sim_layer_access *a, srv_seq_cost *c)
{
    double be[SIM_K_N] = {0}, by[SIM_K_N] = {0}, fl[SIM_K_N] = {0}, la[SIM_K_N] = {0};
    sim_kernel_use u[SIM_LAYER_USES];
    const int nu = sim_layer_uses(&pr->c, &pr->s, a, u);
    for (int i = 0; i < nu; i++) {
        if (u[i].bytes <= 0.0 && u[i].flops <= 0.0)
            continue;
        const int k = u[i].kernel;
        be[k] += u[i].bytes / eff_cached(pr, u[i].run);
        by[k] += u[i].bytes;
        fl[k] += u[i].flops;
        la[k] = u[i].launches;
    }
    for (int k = SIM_K_KV_APPEND; k <= SIM_K_ATTN_SPARSE; k++) {
        const int j = k - SIM_K_KV_APPEND;
        c->be[j] = be[k];
        c->by[j] = by[k];
        c->fl[j] = fl[k];
        c->la[j] = la[k];
    }
}

/* The reference price: sim_access_add's record of a method layer
 * (sim_access_analytic's layer_step) from traffic(step), priced use by use. */
void srv_seq_cost_record(srv_pricer *pr, const rkv_params *p, int hkv, int64_t step, srv_seq_cost *c)
{
    rkv_traffic t;
    p->method->traffic(p, step, &t);
    sim_layer_access a;
    memset(&a, 0, sizeof a);
    sim_access_add(p, &t, rkv_cache_tokens(p, step), -1.0, (double)hkv, &a);
    price_record(pr, &a, c);
}

void srv_seq_form_init(const srv_pricer *pr, const rkv_params *p, int hkv, srv_seq_form *f)
{
    const mdl_model *m = pr->c.model;
    f->H = (double)hkv;
    f->f = (double)pr->c.batch * pr->s.hkv / m->num_key_value_heads;
    f->b = (double)rkv_dtype_bytes(p->kv_dtype);
    f->ba = (double)rkv_dtype_bytes(p->aux_dtype);
    f->g = p->method->traits.per_query_head ? 1.0 : (double)p->G;
    f->G = (double)p->G;
    f->row = (double)p->d * f->b;
    f->reads_G = pr->c.kv_reads_per_query_head && !sim_per_head_cuda_core(&pr->c) ? (double)pr->c.params.G : 1.0;
    f->direct = pr->c.harness != SIM_HARNESS_GPT_FAST && pr->c.batch == 1;
    const rkv_traits *tr = &p->method->traits;
    f->s2 = f->direct && tr->stage2 && !tr->cache_capped && p->page_size >= 1 && p->topk >= 0 &&
            (tr->exact_read == RKV_READ_ROW || tr->exact_read == RKV_READ_PAGE) && tr->aux_read == RKV_READ_DIMS_PAGES;
    f->pg = p->page_size;
    f->kept = p->prompt_budget < p->S ? p->prompt_budget : p->S;
    const int64_t K = p->granularity == RKV_GRAN_PAGE && f->pg > 1 ? (p->topk + f->pg - 1) / f->pg * f->pg : p->topk;
    const int64_t lw = p->local_window > 0 ? p->local_window : 0;
    f->c_sat = K + lw > p->topk + 1 ? K + lw : p->topk + 1;
    f->aux_np = (p->topr < p->d ? p->topr : p->d) * (int64_t)rkv_dtype_bytes(p->aux_dtype);
    f->scores_np = 2 * (int64_t)p->G * 4;
    f->aux_elem = f->ba;
}

/* bytes / run length, or 0 (stream): access.c's runs_of */
static double runs_of(double bytes, double run)
{
    return run > 0.0 && bytes > 0.0 ? bytes / run : 0.0;
}

/* the run length layer_uses reads back from (bytes, runs) */
static double run_back(double bytes, double runs)
{
    return runs > 0.0 ? bytes / runs : 0.0;
}

static void put(srv_pricer *pr, srv_seq_cost *c, int k, double bytes, double run, double flops)
{
    if (bytes <= 0.0 && flops <= 0.0)
        return;
    const int j = k - SIM_K_KV_APPEND;
    c->be[j] = bytes / eff_cached(pr, run);
    c->by[j] = bytes;
    c->fl[j] = flops;
    c->la[j] = 1.0;
}

/* The same price without the record: add_traffic (sim/access.c) into an
 * empty record, then layer_uses (sim/step.c) at batch 1 under the engine
 * harness, then price_record, written out for one sequence with the same
 * floating-point operations in the same order (so the same bits: checked
 * against srv_seq_cost_record for every method in tests/test_serve.c). With
 * the engine harness each kernel takes at most one use, in ascending kernel
 * order, so price_record's per-kernel sums are the uses themselves. */
void srv_seq_cost_direct(srv_pricer *pr, const srv_seq_form *f, const rkv_params *p, int64_t step, srv_seq_cost *c)
{
    rkv_traffic t;
    p->method->traffic(p, step, &t);
    const int64_t C = rkv_cache_tokens(p, step);
    const double H = f->H;
    const double ex = H * (double)t.kv_exact, full = H * (double)t.kv_full, aux = H * (double)t.aux;
    const double wr = H * (double)t.kv_write, sc = H * (double)t.scores;
    /* the record: bytes as above, runs and FLOPs as add_traffic counts them */
    const double r_ex = runs_of(ex, sim_exact_run_bytes(p, C)), r_aux = runs_of(aux, sim_aux_run_bytes(p, C));
    const double r_wr = runs_of(wr, f->row);
    const double fl_full = 2.0 * f->G * full / f->b, fl_ex = 2.0 * f->g * ex / f->b, fl_aux = 2.0 * f->g * aux / f->ba;
    /* layer_uses: bytes scaled by f, run lengths read back */
    const double F = f->f;
    const double by_ex = F * ex, by_full = F * full, by_aux = F * aux, by_wr = F * wr, by_sc = F * sc;
    memset(c, 0, sizeof *c);
    put(pr, c, SIM_K_KV_APPEND, by_wr, run_back(wr, r_wr), 0.0);
    if (by_full > 0.0)
        put(pr, c, SIM_K_ATTN_DENSE, f->reads_G != 1.0 ? by_full * f->reads_G : by_full, 0.0, F * fl_full);
    if (by_aux > 0.0 || by_sc > 0.0) {
        put(pr, c, SIM_K_AUX_SCORE, by_aux + by_sc / 2.0, run_back(aux, r_aux), F * fl_aux);
        put(pr, c, SIM_K_TOPK, by_sc / 2.0, 0.0, 0.0);
    }
    if (by_ex > 0.0)
        put(pr, c, SIM_K_ATTN_SPARSE, by_ex, run_back(ex, r_ex), F * fl_ex);
}

/* The saturated stage-2 form (srv_seq_form): the aux-score and top-k uses
 * at np pages, the append and sparse uses kept from the last price. The
 * same operations as srv_seq_cost_direct on traffic() of that step. */
static void price_stage2(srv_pricer *pr, const srv_seq_form *f, int64_t np, srv_seq_cost *c)
{
    const double aux = f->H * (double)(np * f->aux_np), sc = f->H * (double)(np * f->scores_np);
    const double r_aux = runs_of(aux, (double)np * f->aux_elem);
    const double fl_aux = 2.0 * f->g * aux / f->ba;
    const double F = f->f, by_aux = F * aux, by_sc = F * sc;
    const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
    double run = run_back(aux, r_aux), bytes = by_aux + by_sc / 2.0;
    c->be[a] = bytes / eff_cached(pr, run);
    c->by[a] = bytes;
    c->fl[a] = F * fl_aux;
    bytes = by_sc / 2.0;
    c->be[t] = bytes / pr->eff_stream;
    c->by[t] = bytes;
}

/* The memo a saturated form's prices go to (srv_pricer.s2tab), NULL when
 * its factors are not the pricer's key or its aux bytes per page are past
 * the memo's reach. */
static srv_s2_table *stage2_table(srv_pricer *pr, const srv_seq_form *f)
{
    const double key[6] = {f->H, f->f, f->g, f->ba, (double)f->scores_np, f->aux_elem};
    if (!pr->s2tab) {
        pr->s2tab = calloc(SRV_S2_AUX, sizeof *pr->s2tab);
        memcpy(pr->s2key, key, sizeof key);
    }
    return memcmp(pr->s2key, key, sizeof key) == 0 && f->aux_np < SRV_S2_AUX ? &pr->s2tab[f->aux_np] : NULL;
}

/* price_stage2, the price kept in the memo tb (NULL: none) for
 * srv_seq_s2_hit: a stored price is the same bits as pricing again. */
static void price_stage2_memo(srv_pricer *pr, const srv_seq_form *f, srv_s2_table *tb, int64_t np, srv_seq_cost *c)
{
    price_stage2(pr, f, np, c);
    if (!tb || np >= SRV_S2_PAGES)
        return;
    if (np >= tb->n) { /* grows by doubling: a few times per run */
        int64_t n = tb->n ? tb->n : 256;
        while (n <= np) n *= 2;
        tb->v = realloc(tb->v, (size_t)n * sizeof *tb->v);
        tb->fx = realloc(tb->fx, (size_t)n * sizeof *tb->fx);
        tb->dfx = realloc(tb->dfx, (size_t)n * sizeof *tb->dfx);
        for (int64_t i = tb->n; i < n; i++) tb->v[i][0] = -1.0;
        tb->n = n;
    }
    double *e = tb->v[np];
    const int a = SIM_K_AUX_SCORE - SIM_K_KV_APPEND, t = SIM_K_TOPK - SIM_K_KV_APPEND;
    e[0] = c->be[a], e[1] = c->by[a], e[2] = c->fl[a], e[3] = c->be[t], e[4] = c->by[t];
    for (int i = 0; i < 5; i++) tb->fx[np][i] = srv_fx(e[i]);
    if (np > 0 && tb->v[np - 1][0] >= 0.0) /* the differences to its priced neighbours */
        for (int i = 0; i < 5; i++) tb->dfx[np - 1][i] = tb->fx[np][i] - tb->fx[np - 1][i];
    if (np + 1 < tb->n && tb->v[np + 1][0] >= 0.0)
        for (int i = 0; i < 5; i++) tb->dfx[np][i] = tb->fx[np + 1][i] - tb->fx[np][i];
}

/* The method-layer price of one sequence at decode step `step`: a function
 * of its access record, which stands through sim_access_until(step); after
 * that it is priced again: in the saturated stage-2 form when it applies
 * (the record then stands to the end of the page), else directly, or
 * through the record under gpt-fast's harness. Exact: the same bytes as
 * pricing the record at every step (tests/test_serve.c). */
void srv_seq_price(srv_pricer *pr, srv_slot *sl, int64_t step)
{
    if (sl->have_price && step <= sl->until)
        return;
    const rkv_params *p = &sl->p;
    const srv_seq_form *f = &sl->form;
    if (sl->saturated) { /* C only grows: still saturated; the record stands to the page's end */
        if (srv_seq_s2_hit(sl, step))
            return;
        const int64_t C = f->kept + step + 1, np = (C + f->pg - 1) / f->pg;
        price_stage2_memo(pr, f, sl->s2, np, &sl->cost);
        sl->np = np;
        sl->until = step + (np * f->pg - C);
        return;
    }
    sl->until = sim_access_until(p, step);
    sl->have_price = 1;
    if (!f->direct) {
        srv_seq_cost_record(pr, p, sl->actx.num_kv_heads, step, &sl->cost);
        return;
    }
    srv_seq_cost_direct(pr, f, p, step, &sl->cost);
    const srv_seq_cost *c = &sl->cost;
    const double *la = c->la - SIM_K_KV_APPEND; /* by kernel id */
    sl->saturated = f->s2 && rkv_cache_tokens(p, step) >= f->c_sat && la[SIM_K_KV_APPEND] > 0.0 &&
                    la[SIM_K_ATTN_DENSE] == 0.0 && la[SIM_K_AUX_SCORE] > 0.0 && la[SIM_K_TOPK] > 0.0 &&
                    la[SIM_K_ATTN_SPARSE] > 0.0;
    sl->s2 = sl->saturated ? stage2_table(pr, f) : NULL;
}

/* A method layer for the batch: each kernel over the batch's sums (one
 * batched kernel per layer), in ascending kernel order; the sums are an
 * srv_seq_cost's layout (the attention kernels). */
double srv_price_method_layer(const srv_pricer *pr, const srv_seq_cost *sum)
{
    double t = 0.0;
    for (int k = 0; k < SRV_ATT_K; k++)
        if (sum->la[k] > 0.0)
            t += sim_kernel_batch_s(&pr->c, SIM_K_KV_APPEND + k, sum->be[k], sum->by[k], sum->fl[k], sum->la[k]);
    return t;
}
