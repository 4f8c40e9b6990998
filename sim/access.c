/* access.c — where the sim's byte counts come from when no trace is given:
 * each method's analytic traffic() (refimpl, the one home of those counts)
 * times the model's KV heads, plus the layout facts the roofline needs and
 * traffic() does not carry: how long the contiguous runs are, and how many
 * query heads share each byte read (for FLOPs).
 *
 * Layout assumed (what a well-built kernel does; a trace replaces all of it):
 * K and V head-major in compacted slots (a method that evicts keeps its
 * cache contiguous), one token row of one head = d·b contiguous bytes, a
 * page = p consecutive rows, a whole cache one run per K or V region; page min/max and transposed K stored dims-major
 * so that reading r chosen dimensions is r runs of (pages × aux bytes). */
#include "sim.h"

#include <string.h>

/* The run kinds each method's reads take are its traits' exact_read and
 * aux_read (refimpl/rkv.h, rkv_read_layout). */

const char *const sim_cat_names[SIM_CAT_N] = {"weights", "kv_exact", "kv_full", "aux", "kv_write", "scores", "other"};

static double run_bytes(rkv_read_layout k, const rkv_params *p, int64_t C, double elem_bytes)
{
    const int64_t pg = p->page_size > 0 ? p->page_size : 1;
    switch (k) {
    case RKV_READ_REGION: return (double)C * (double)p->d * elem_bytes;
    case RKV_READ_ROW: return (double)p->d * elem_bytes;
    case RKV_READ_PAGE: return (double)(pg * p->d) * elem_bytes;
    case RKV_READ_DIMS_PAGES: return (double)((C + pg - 1) / pg) * elem_bytes;
    case RKV_READ_DIMS_TOKENS: return (double)C * elem_bytes;
    case RKV_READ_STREAM: break;
    }
    return 0.0;
}

static double exact_run(const rkv_params *p, int64_t cache_tokens)
{
    /* everything cached is attended: one run per compacted K or V region */
    const rkv_read_layout k = p->topk >= cache_tokens ? RKV_READ_REGION : p->method->traits.exact_read;
    return run_bytes(k, p, cache_tokens, (double)rkv_dtype_bytes(p->kv_dtype));
}

static double aux_run(const rkv_params *p, int64_t cache_tokens)
{
    const rkv_read_layout k = p->method->traits.aux_read;
    const double b = (double)rkv_dtype_bytes(k == RKV_READ_DIMS_TOKENS ? p->kv_dtype : p->aux_dtype);
    return run_bytes(k, p, cache_tokens, b);
}

double sim_exact_run_bytes(const rkv_params *p, int64_t cache_tokens)
{
    return exact_run(p, cache_tokens);
}

double sim_aux_run_bytes(const rkv_params *p, int64_t cache_tokens)
{
    return aux_run(p, cache_tokens);
}

/* The largest C' >= C with run_bytes(k, p, C'') == run_bytes(k, p, C) for C'' in [C, C']. */
static int64_t run_until(rkv_read_layout k, const rkv_params *p, int64_t C)
{
    const int64_t pg = p->page_size > 0 ? p->page_size : 1;
    switch (k) {
    case RKV_READ_REGION:
    case RKV_READ_DIMS_TOKENS: return C;
    case RKV_READ_DIMS_PAGES: return (C + pg - 1) / pg * pg;
    case RKV_READ_ROW:
    case RKV_READ_PAGE:
    case RKV_READ_STREAM: break;
    }
    return INT64_MAX;
}

int64_t sim_access_until(const rkv_params *p, int64_t step)
{
    if (!p->method->traffic_until)
        return step;
    const int64_t u = p->method->traffic_until(p, step), C = rkv_cache_tokens(p, step);
    /* exact_run: the whole region while topk >= C (grows with C), the layout's run after */
    int64_t c_end = p->topk >= C ? C : run_until(p->method->traits.exact_read, p, C);
    const int64_t ca = run_until(p->method->traits.aux_read, p, C);
    if (ca < c_end) c_end = ca;
    const int64_t ur = rkv_step_until_cache_tokens(p, step, c_end);
    return ur < u ? ur : u;
}

/* bytes / run length, or 0 (stream) */
static double runs_of(double bytes, double run)
{
    return run > 0.0 && bytes > 0.0 ? bytes / run : 0.0;
}

static void add_traffic(const rkv_params *p, const rkv_traffic *t, int64_t C, double exact_runs,
                        double H, sim_layer_access *o)
{
    const double b = (double)rkv_dtype_bytes(p->kv_dtype), ba = (double)rkv_dtype_bytes(p->aux_dtype);
    const double g = p->method->traits.per_query_head ? 1.0 : (double)p->G;
    const double ex = H * (double)t->kv_exact, full = H * (double)t->kv_full, aux = H * (double)t->aux;
    const double wr = H * (double)t->kv_write;
    o->bytes[SIM_CAT_KV_EXACT] += ex;
    o->bytes[SIM_CAT_KV_FULL] += full;
    o->bytes[SIM_CAT_AUX] += aux;
    o->bytes[SIM_CAT_KV_WRITE] += wr;
    o->bytes[SIM_CAT_SCORES] += H * (double)t->scores;
    o->runs[SIM_CAT_KV_EXACT] += exact_runs >= 0.0 ? H * exact_runs : runs_of(ex, exact_run(p, C));
    o->runs[SIM_CAT_AUX] += runs_of(aux, aux_run(p, C));
    o->runs[SIM_CAT_KV_WRITE] += runs_of(wr, (double)p->d * b);
    /* 2 FLOPs per element read per query head using it */
    o->flops[SIM_CAT_KV_FULL] += 2.0 * (double)p->G * full / b;
    o->flops[SIM_CAT_KV_EXACT] += 2.0 * g * ex / b;
    o->flops[SIM_CAT_AUX] += 2.0 * g * aux / ba;
}

void sim_access_add(const rkv_params *p, const rkv_traffic *t, int64_t C, double exact_runs, double scale,
                    sim_layer_access *o)
{
    add_traffic(p, t, C, exact_runs, scale, o);
}

static void layer_from_traffic(const rkv_params *p, int64_t step, int hkv, sim_layer_access *o)
{
    rkv_traffic t;
    p->method->traffic(p, step, &t);
    memset(o, 0, sizeof *o);
    add_traffic(p, &t, rkv_cache_tokens(p, step), -1.0, (double)hkv, o);
}

static int analytic_layer_step(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err)
{
    const sim_analytic_ctx *a = ctx;
    if (layer < a->p.skip_layers)
        layer_from_traffic(&a->full, step, a->num_kv_heads, out);
    else
        layer_from_traffic(&a->p, step, a->num_kv_heads, out);
    return 0;
}

void sim_access_analytic(sim_access_source *src, sim_analytic_ctx *ctx, const mdl_model *m, const rkv_params *p)
{
    ctx->p = *p;
    ctx->full = *p;
    ctx->full.method = rkv_method_baseline();
    ctx->full.prompt_budget = p->S;
    ctx->full.capacity = p->S_total;
    ctx->full.topk = 0;
    ctx->num_kv_heads = m->num_key_value_heads;
    memset(src, 0, sizeof *src);
    src->name = "analytic";
    src->steps = INT64_MAX;
    src->uniform_from = p->skip_layers < m->num_hidden_layers ? (int)p->skip_layers : m->num_hidden_layers;
    src->layer_step = analytic_layer_step;
    src->ctx = ctx;
}
