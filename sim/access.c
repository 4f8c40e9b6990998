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

const char *const sim_cat_names[SIM_CAT_N] = {"weights", "kv_exact", "kv_full", "aux", "kv_write", "scores", "other"};

typedef enum {
    RUN_STREAM,     /* one long contiguous read */
    RUN_REGION,     /* the whole compacted cache of one head: C·d·b per K or V region */
    RUN_ROW,        /* token rows of one head: d·b */
    RUN_PAGE,       /* whole pages: p·d·b (stage-2 top-k picks whole pages in score order) */
    RUN_DIMS_PAGES, /* dims-major page min/max: ⌈C/p⌉ · aux bytes per chosen dimension */
    RUN_DIMS_TOKENS /* transposed K: C · aux bytes per chosen dimension */
} run_kind;

/* One row per method: its read layout and whether exact reads are per query
 * head (each head its own rows) or shared by the group. */
static const struct {
    const char *name;
    run_kind exact, aux;
    int per_head;
} shapes[] = {
    {"full", RUN_REGION, RUN_STREAM, 0},        {"exact-topk", RUN_ROW, RUN_STREAM, 1},
    {"streaming", RUN_REGION, RUN_STREAM, 0},   {"snapkv", RUN_REGION, RUN_STREAM, 1},
    {"snapkv-gqa", RUN_REGION, RUN_STREAM, 0},  {"quest", RUN_PAGE, RUN_STREAM, 1},
    {"sparq", RUN_ROW, RUN_DIMS_TOKENS, 1},     {"hsa", RUN_PAGE, RUN_DIMS_PAGES, 0},
    {"rocketkv", RUN_PAGE, RUN_DIMS_PAGES, 0},  {"rocketkv-mt", RUN_PAGE, RUN_DIMS_PAGES, 0},
};

static int shape_of(const rkv_params *p)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, p->method->name))
            return (int)i;
    return 1; /* an unknown method: token rows, per head (the pessimistic layout) */
}

static double run_bytes(run_kind k, const rkv_params *p, int64_t C, double elem_bytes)
{
    const int64_t pg = p->page_size > 0 ? p->page_size : 1;
    switch (k) {
    case RUN_REGION: return (double)C * (double)p->d * elem_bytes;
    case RUN_ROW: return (double)p->d * elem_bytes;
    case RUN_PAGE: return (double)(pg * p->d) * elem_bytes;
    case RUN_DIMS_PAGES: return (double)((C + pg - 1) / pg) * elem_bytes;
    case RUN_DIMS_TOKENS: return (double)C * elem_bytes;
    case RUN_STREAM: break;
    }
    return 0.0;
}

static double exact_run(const rkv_params *p, int i, int64_t cache_tokens)
{
    /* everything cached is attended: one run per compacted K or V region */
    const run_kind k = p->topk >= cache_tokens ? RUN_REGION : shapes[i].exact;
    return run_bytes(k, p, cache_tokens, (double)rkv_dtype_bytes(p->kv_dtype));
}

static double aux_run(const rkv_params *p, int i, int64_t cache_tokens)
{
    const double b = (double)rkv_dtype_bytes(shapes[i].aux == RUN_DIMS_TOKENS ? p->kv_dtype : p->aux_dtype);
    return run_bytes(shapes[i].aux, p, cache_tokens, b);
}

double sim_exact_run_bytes(const rkv_params *p, int64_t cache_tokens)
{
    return exact_run(p, shape_of(p), cache_tokens);
}

double sim_aux_run_bytes(const rkv_params *p, int64_t cache_tokens)
{
    return aux_run(p, shape_of(p), cache_tokens);
}

/* bytes / run length, or 0 (stream) */
static double runs_of(double bytes, double run)
{
    return run > 0.0 && bytes > 0.0 ? bytes / run : 0.0;
}

static void add_traffic(const rkv_params *p, int shape, const rkv_traffic *t, int64_t C, double exact_runs,
                        double H, sim_layer_access *o)
{
    const double b = (double)rkv_dtype_bytes(p->kv_dtype), ba = (double)rkv_dtype_bytes(p->aux_dtype);
    const double g = shapes[shape].per_head ? 1.0 : (double)p->G;
    const double ex = H * (double)t->kv_exact, full = H * (double)t->kv_full, aux = H * (double)t->aux;
    const double wr = H * (double)t->kv_write;
    o->bytes[SIM_CAT_KV_EXACT] += ex;
    o->bytes[SIM_CAT_KV_FULL] += full;
    o->bytes[SIM_CAT_AUX] += aux;
    o->bytes[SIM_CAT_KV_WRITE] += wr;
    o->bytes[SIM_CAT_SCORES] += H * (double)t->scores;
    o->runs[SIM_CAT_KV_EXACT] += exact_runs >= 0.0 ? H * exact_runs : runs_of(ex, exact_run(p, shape, C));
    o->runs[SIM_CAT_AUX] += runs_of(aux, aux_run(p, shape, C));
    o->runs[SIM_CAT_KV_WRITE] += runs_of(wr, (double)p->d * b);
    /* 2 FLOPs per element read per query head using it */
    o->flops[SIM_CAT_KV_FULL] += 2.0 * (double)p->G * full / b;
    o->flops[SIM_CAT_KV_EXACT] += 2.0 * g * ex / b;
    o->flops[SIM_CAT_AUX] += 2.0 * g * aux / ba;
}

void sim_access_add(const rkv_params *p, const rkv_traffic *t, int64_t C, double exact_runs, double scale,
                    sim_layer_access *o)
{
    add_traffic(p, shape_of(p), t, C, exact_runs, scale, o);
}

static void layer_from_traffic(const rkv_params *p, int shape, int64_t step, int hkv, sim_layer_access *o)
{
    rkv_traffic t;
    p->method->traffic(p, step, &t);
    memset(o, 0, sizeof *o);
    add_traffic(p, shape, &t, rkv_cache_tokens(p, step), -1.0, (double)hkv, o);
}

static int analytic_layer_step(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err)
{
    const sim_analytic_ctx *a = ctx;
    if (layer < a->p.skip_layers)
        layer_from_traffic(&a->full, a->shape_full, step, a->num_kv_heads, out);
    else
        layer_from_traffic(&a->p, a->shape, step, a->num_kv_heads, out);
    return 0;
}

void sim_access_analytic(sim_access_source *src, sim_analytic_ctx *ctx, const mdl_model *m, const rkv_params *p)
{
    ctx->p = *p;
    ctx->full = *p;
    ctx->full.method = rkv_method_find("full");
    ctx->full.prompt_budget = p->S;
    ctx->full.capacity = p->S_total;
    ctx->full.topk = 0;
    ctx->num_kv_heads = m->num_key_value_heads;
    ctx->shape = shape_of(&ctx->p);
    ctx->shape_full = shape_of(&ctx->full);
    memset(src, 0, sizeof *src);
    src->name = "analytic";
    src->steps = INT64_MAX;
    src->uniform_from = p->skip_layers < m->num_hidden_layers ? (int)p->skip_layers : m->num_hidden_layers;
    src->layer_step = analytic_layer_step;
    src->ctx = ctx;
}
