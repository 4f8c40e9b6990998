/* price.c — one engine step priced with sim/'s kernels (srv.h's "Pricing").
 * The decode-only part that does not depend on the context is cached per
 * batch size (exact: a pure function of the batch); a sequence's method-layer
 * attention is re-priced only when its access record changes. */
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
    pr->c.cuda_graphs = c->cuda_graphs;
    pr->c.weight_bytes_per_param = c->weight_bytes_per_param;
    pr->c.weight_compute = c->weight_compute;
    if (sim_rank_shape_compute(&pr->c, &pr->s, err) != 0)
        return -1;
    pr->launch = sim_launch_s(&pr->c);
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
        t += sim_kernel_batch_s(&pr->c, u[i].bytes / sim_kernel_eff(&pr->c, u[i].run), u[i].bytes, u[i].flops,
                                u[i].launches);
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

static void price_key(const rkv_params *p, int64_t step, srv_price_key *k)
{
    memset(k, 0, sizeof *k);
    p->method->traffic(p, step, &k->t);
    const int64_t C = rkv_cache_tokens(p, step);
    k->exact_run = sim_exact_run_bytes(p, C);
    k->aux_run = sim_aux_run_bytes(p, C);
    k->method = p->method;
    k->d = p->d;
    k->G = p->G;
    k->kv_dtype = p->kv_dtype;
    k->aux_dtype = p->aux_dtype;
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
    c->n = 0;
    for (int k = 0; k < SIM_K_N; k++)
        if (la[k] > 0.0) {
            c->u[c->n].be = be[k];
            c->u[c->n].by = by[k];
            c->u[c->n].fl = fl[k];
            c->u[c->n].la = la[k];
            c->u[c->n++].k = k;
        }
}

/* The method-layer price of one sequence at decode step `step`. It is a
 * function of the access record, and the record of the key (traffic(step),
 * the run lengths at the step's cache size, and the params sim_access_add
 * reads): it stands through sim_access_until(step); after that the key is
 * recomputed, and the record priced again only when the key changed. Exact:
 * the same bytes as pricing the record at every step. */
void srv_seq_price(srv_pricer *pr, srv_slot *sl, int64_t step)
{
    if (sl->have_price && step <= sl->until)
        return;
    const rkv_params *p = &sl->p;
    srv_price_key k;
    price_key(p, step, &k);
    sl->until = sim_access_until(p, step);
    if (sl->have_price && !memcmp(&k, &sl->key, sizeof k))
        return;
    sl->key = k;
    sl->have_price = 1;
    /* the analytic record of a method layer (sim_access_analytic's layer_step), from the key's traffic */
    sim_layer_access a;
    memset(&a, 0, sizeof a);
    sim_access_add(p, &k.t, rkv_cache_tokens(p, step), -1.0, (double)sl->actx.num_kv_heads, &a);
    price_record(pr, &a, &sl->cost);
}

/* A method layer for the batch: each kernel over the batch's sums (one batched kernel per layer). */
double srv_price_method_layer(const srv_pricer *pr, const double *be, const double *by, const double *fl,
                              const double *la)
{
    double t = 0.0;
    for (int k = 0; k < SIM_K_N; k++)
        if (la[k] > 0.0)
            t += sim_kernel_batch_s(&pr->c, be[k], by[k], fl[k], la[k]);
    return t;
}
