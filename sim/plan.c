/* plan.c — the capacity planner: the largest batch that fits, time per
 * output token and throughput there and at the largest batch meeting a TPOT
 * SLO, the longest context that fits at batch 1, and GPUs for a target
 * throughput. Memory is affine in the batch, so the largest batch is solved
 * directly and then checked at its boundary (b fits, b + 1 does not) with
 * the same sim_memory_compute a prediction uses; the other searches bisect
 * monotone quantities. */
#include "sim.h"

#include <math.h>
#include <string.h>

static int fits_at(const sim_config *c, int64_t B, int *fits, kv_err *err)
{
    sim_config x = *c;
    sim_memory m;
    x.batch = B;
    if (sim_memory_compute(&x, &m, err) != 0)
        return -1;
    *fits = m.fits;
    return 0;
}

int sim_max_batch(const sim_config *c, int64_t limit, int64_t *out, kv_err *err)
{
    sim_config x = *c;
    sim_memory m1, m2;
    int f;
    *out = 0;
    x.batch = 1;
    if (sim_memory_compute(&x, &m1, err) != 0)
        return -1;
    if (!m1.fits)
        return 0;
    x.batch = 2;
    if (sim_memory_compute(&x, &m2, err) != 0)
        return -1;
    const double need1 = fmax(m1.prefill_peak_bytes, m1.decode_peak_bytes) + m1.reserve_bytes;
    const double need2 = fmax(m2.prefill_peak_bytes, m2.decode_peak_bytes) + m2.reserve_bytes;
    const double per = need2 - need1;
    int64_t b = per > 0.0 ? (int64_t)floor((m1.capacity_bytes - need1) / per) + 1 : limit;
    if (b > limit) b = limit;
    if (b < 1) b = 1;
    /* settle on the exact boundary */
    for (;;) {
        if (fits_at(c, b, &f, err) != 0) return -1;
        if (f || b == 1) break;
        b--;
    }
    while (b < limit) {
        if (fits_at(c, b + 1, &f, err) != 0) return -1;
        if (!f) break;
        b++;
    }
    *out = b;
    return 0;
}

static int config_for(const sim_plan_in *in, const rkv_request *rq, sim_config *c, kv_err *err)
{
    rkv_params p;
    if (rkv_params_resolve(in->method, rq, &p, err) != 0)
        return -1;
    sim_config_defaults(c, in->model, in->hw, &p);
    c->tp = in->tp;
    c->pp = in->pp > 1 ? in->pp : 1;
    c->harness = in->harness;
    c->cuda_graphs = in->cuda_graphs;
    if (in->weight_bytes_per_param > 0.0) {
        c->weight_bytes_per_param = in->weight_bytes_per_param;
        c->weight_compute = in->weight_compute;
        c->weight_dequant_ops = in->weight_dequant_ops;
    }
    sim_config_set_engine(c, in->engine, in->mem_fraction);
    return 0;
}

static int predict_at(const sim_config *c, int64_t B, sim_result *r, kv_err *err)
{
    sim_config x = *c;
    x.batch = B;
    return sim_predict(&x, r, err);
}

/* Longest prompt (with max_new new tokens) that fits at batch 1. */
static int max_context(const sim_plan_in *in, int64_t *out, kv_err *err)
{
    rkv_request rq = in->rq;
    int64_t lo = 0, hi = in->model->max_position_embeddings;
    sim_config c;
    int f;
    rq.context = hi;
    if (config_for(in, &rq, &c, err) != 0 || fits_at(&c, 1, &f, err) != 0)
        return -1;
    if (f) {
        *out = hi;
        return 0;
    }
    while (hi - lo > 1) { /* lo fits (or is 0), hi does not */
        int64_t mid = lo + (hi - lo) / 2;
        rq.context = mid;
        if (config_for(in, &rq, &c, err) != 0 || fits_at(&c, 1, &f, err) != 0)
            return -1;
        if (f) lo = mid;
        else hi = mid;
    }
    *out = lo;
    return 0;
}

int sim_plan(const sim_plan_in *in, sim_plan_row *row, kv_err *err)
{
    sim_config c;
    sim_result r;
    memset(row, 0, sizeof *row);
    if (config_for(in, &in->rq, &c, err) != 0)
        return -1;
    const int64_t limit = in->max_batch_limit > 0 ? in->max_batch_limit : 4096;
    if (sim_max_batch(&c, limit, &row->max_batch, err) != 0)
        return -1;
    row->fits = row->max_batch > 0;
    if (max_context(in, &row->max_context_at_batch1, err) != 0)
        return -1;
    if (predict_at(&c, row->fits ? row->max_batch : 1, &r, err) != 0)
        return -1;
    row->mem = r.mem;
    if (!row->fits)
        return 0;
    row->tokens_per_s = r.tokens_per_s;
    row->tpot_s = r.step_time_s;
    double tps_for_target = row->tokens_per_s;
    if (in->tpot_slo_s > 0.0) { /* TPOT grows with the batch: bisect */
        int64_t lo = 0, hi = row->max_batch + 1;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (predict_at(&c, mid, &r, err) != 0)
                return -1;
            if (r.step_time_s <= in->tpot_slo_s) lo = mid;
            else hi = mid;
        }
        row->slo_batch = lo;
        if (lo > 0) {
            if (predict_at(&c, lo, &r, err) != 0)
                return -1;
            row->slo_tokens_per_s = r.tokens_per_s;
            row->slo_tpot_s = r.step_time_s;
        }
        tps_for_target = row->slo_tokens_per_s;
    }
    if (in->target_tokens_per_s > 0.0 && tps_for_target > 0.0) {
        /* a count, so exact in a double and an int64: at most 2^53 */
        const double g = ceil(in->target_tokens_per_s / tps_for_target) * (double)in->tp * (in->pp > 1 ? in->pp : 1);
        if (!(g <= 9007199254740992.0))
            return kv_errf(err, "target %g tokens/s needs %g GPUs at %g tokens/s each; more than 2^53 cannot be "
                           "counted", in->target_tokens_per_s, g, tps_for_target);
        row->gpus_for_target = (int64_t)g;
    }
    return 0;
}
