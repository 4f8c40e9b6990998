/* validate.c — predicted vs measured over a gpu_check report (sim_validate.h).
 *
 * Reading is strict (common/kv_jsonr.h): every key validate uses is checked
 * for presence, kind and range, and an error names the file, line:col and the
 * JSON path ("timings[3].median_s"). Pricing is sim_predict with the analytic
 * access source pinned to the decode step whose cache size equals the
 * report's cache_tokens, so the sim prices the same C the GPU ran.
 *
 * It deliberately does not load hardware or model files (the caller does) and
 * does not print. */
#include "sim_validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kv_jsonr.h"

const int64_t sim_validate_contexts[SIM_VALIDATE_NCTX] = {32768, 65536, 131072};
const int64_t sim_validate_budgets[SIM_VALIDATE_NBUDGET] = {256, 1024, 4096};
const int64_t sim_validate_batches[SIM_VALIDATE_NBATCH] = {1, 8};

/* gpu_check's fixed generation length (cuda/NOTES.md: max_new = 50). */
#define VALIDATE_MAX_NEW 50

double sim_validate_err_pct(double pred, double meas)
{
    if (!(meas > 0.0))
        return NAN;
    return 100.0 * (pred - meas) / meas;
}

/* ------------------------------------------------------------ reading */
static int jerr(kv_err *err, const kv_jsonr_doc *d, const kv_jsonr_node *at, const char *jpath, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int jerr(kv_err *err, const kv_jsonr_doc *d, const kv_jsonr_node *at, const char *jpath, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kv_errf(err, "%s:%d:%d: %s: %s", d->path, at->line, at->col, jpath, msg);
}

static const char *got_of(const kv_jsonr_node *v)
{
    return v->kind == KV_JSONR_NUM || v->kind == KV_JSONR_STR ? v->str : kv_jsonr_kind_name(v->kind);
}

/* Member `key` of obj (JSON path prefix `at`), required. */
static const kv_jsonr_node *member(const kv_jsonr_doc *d, const kv_jsonr_node *obj, const char *at, const char *key,
                                   char *jpath, size_t cap, kv_err *err)
{
    snprintf(jpath, cap, "%s%s%s", at, *at ? "." : "", key);
    const kv_jsonr_node *v = kv_jsonr_get(obj, key);
    if (!v)
        jerr(err, d, obj, jpath, "missing key '%s'", key);
    return v;
}

static int get_str(const kv_jsonr_doc *d, const kv_jsonr_node *obj, const char *at, const char *key, char *out,
                   size_t outcap, kv_err *err)
{
    char jp[128];
    const kv_jsonr_node *v = member(d, obj, at, key, jp, sizeof jp, err);
    if (!v)
        return -1;
    if (v->kind != KV_JSONR_STR)
        return jerr(err, d, v, jp, "expected a string, got %s", got_of(v));
    snprintf(out, outcap, "%s", v->str);
    return 0;
}

/* A number in [lo, hi]; integer: no fraction. */
static int get_num(const kv_jsonr_doc *d, const kv_jsonr_node *obj, const char *at, const char *key, double lo,
                   double hi, int integer, double *out, kv_err *err)
{
    char jp[128];
    const kv_jsonr_node *v = member(d, obj, at, key, jp, sizeof jp, err);
    if (!v)
        return -1;
    if (v->kind != KV_JSONR_NUM || !(v->num >= lo && v->num <= hi) || (integer && v->num != floor(v->num)))
        return jerr(err, d, v, jp, "expected %s in [%g, %g], got %s", integer ? "an integer" : "a number", lo, hi,
                    got_of(v));
    *out = v->num;
    return 0;
}

static int get_i64(const kv_jsonr_doc *d, const kv_jsonr_node *obj, const char *at, const char *key, double lo,
                   double hi, int64_t *out, kv_err *err)
{
    double x;
    if (get_num(d, obj, at, key, lo, hi, 1, &x, err))
        return -1;
    *out = (int64_t)x;
    return 0;
}

/* ------------------------------------------------------------ pricing */
typedef struct {
    sim_access_source src;
    const sim_access_source *inner;
    int64_t at;
} pinned_src;

static int pinned_layer_step(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err)
{
    (void)step;
    pinned_src *p = ctx;
    return p->inner->layer_step(p->inner->ctx, p->at, layer, out, err);
}

/* Kernels each measured graph ran (sim_validate.h). Returns 0 when unknown. */
static unsigned kernel_mask(const rkv_method_type *mt, const char *what, int *stage1)
{
    *stage1 = 0;
    if (mt->traits.dense)
        return !strcmp(what, "step") || !strcmp(what, "step_rif4") || !strcmp(what, "step_v2") || !strcmp(what, "step_v3") ||
                       !strcmp(what, "step_v4") || !strcmp(what, "step_v5")
                   ? 1u << SIM_K_ATTN_DENSE
                   : 0u;
    if (!mt->traits.stage2)
        return 0u;
    if (!strcmp(what, "step") || !strcmp(what, "step_v1") || !strcmp(what, "step_v3") || !strcmp(what, "step_v4") ||
        !strcmp(what, "step_v5"))
        return 1u << SIM_K_KV_APPEND | 1u << SIM_K_AUX_SCORE | 1u << SIM_K_TOPK | 1u << SIM_K_ATTN_SPARSE;
    if (!strcmp(what, "pages_update"))
        return 1u << SIM_K_KV_APPEND;
    if (!strcmp(what, "score") || !strcmp(what, "score_v2"))
        return 1u << SIM_K_AUX_SCORE;
    if (!strcmp(what, "score_v3")) /* folds the token too: stage 2 v5's page update */
        return 1u << SIM_K_KV_APPEND | 1u << SIM_K_AUX_SCORE;
    if (!strcmp(what, "select") || !strcmp(what, "select_v1") || !strcmp(what, "select_v3") ||
        !strcmp(what, "select_v4"))
        return 1u << SIM_K_TOPK;
    if (!strcmp(what, "sparse_attend") || !strcmp(what, "sparse_attend_v3") || !strcmp(what, "sparse_attend_v4"))
        return 1u << SIM_K_ATTN_SPARSE;
    if ((!strcmp(what, "stage1") || !strcmp(what, "stage1_v2")) && mt->traits.stage1) {
        *stage1 = 1;
        return ~0u;
    }
    return 0u;
}

/* Seconds of one layer for the kernels in mask, on hw. */
static int price(const mdl_model *m, const hw_model *hw, const rkv_params *p, int64_t batch, int64_t at,
                 unsigned mask, int stage1, double *out, kv_err *err)
{
    sim_analytic_ctx actx;
    sim_access_source an;
    sim_access_analytic(&an, &actx, m, p);
    pinned_src ps = {{"pinned", 1, an.uniform_from, pinned_layer_step, NULL}, &an, at};
    ps.src.ctx = &ps;
    sim_config c;
    sim_config_defaults(&c, m, hw, p);
    c.batch = batch;
    c.access = &ps.src;
    c.steps = 1;
    sim_result r;
    if (sim_predict(&c, &r, err) != 0)
        return -1;
    const double L = m->num_hidden_layers;
    double t = 0.0;
    if (stage1)
        t = r.stage1_s / L;
    else
        for (int k = 0; k < SIM_K_N; k++)
            if (mask & (1u << k))
                t += r.kernel_s[k] / L;
    *out = t;
    return 0;
}

/* Resolves the report point's parameters and checks them against what the
 * report says the GPU ran; *at receives the decode step of that cache size. */
static int resolve_point(const kv_jsonr_doc *d, const kv_jsonr_node *t, const char *jp, const mdl_model *m,
                         const sim_validate_row *row, int64_t page_size, int64_t topr, int64_t topk, int stage1,
                         rkv_params *p, int64_t *at, kv_err *err)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = row->context;
    rq.max_new = VALIDATE_MAX_NEW;
    rq.budget = row->budget > 0 ? row->budget : row->context;
    rq.model_max_len = m->max_position_embeddings;
    rq.d = m->head_dim;
    rq.G = m->num_attention_heads / m->num_key_value_heads;
    kv_err e2;
    if (rkv_params_resolve(row->method, &rq, p, &e2) != 0)
        return jerr(err, d, t, jp, "the sim cannot resolve %s at context %lld, budget %lld: %s", row->method,
                    (long long)row->context, (long long)row->budget, e2.msg);
    if (p->method->traits.stage2) {
        const struct { const char *key; int64_t got, want; } f[] = {
            {"page_size", page_size, p->page_size}, {"topr", topr, p->topr}, {"topk", topk, p->topk}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (f[i].got != f[i].want)
                return jerr(err, d, t, jp, "%s %lld, but rkv_params_resolve(\"%s\") gives %lld: the GPU ran "
                            "another configuration than the sim would price", f[i].key, (long long)f[i].got,
                            row->method, (long long)f[i].want);
    }
    *at = 0;
    if (stage1) /* the prefill: cache_tokens is the prompt, no decode step */
        return 0;
    int64_t best = 0, bestdiff = INT64_MAX;
    for (int64_t s = 0; s < p->max_new; s++) {
        int64_t diff = llabs(rkv_cache_tokens(p, s) - row->cache_tokens);
        if (diff < bestdiff) {
            bestdiff = diff;
            best = s;
        }
    }
    if (bestdiff > 1)
        return jerr(err, d, t, jp, "cache_tokens %lld is not a cache size of %s at this context and budget (the "
                    "sim's nearest is %lld)", (long long)row->cache_tokens, row->method,
                    (long long)rkv_cache_tokens(p, best));
    *at = best;
    return 0;
}

/* The model a timing is one layer of: its optional "model" key, a bundled
 * model's name (letters, digits, '.', '-', '_'; loaded once per report and
 * kept in v->models), else the caller's (v->models[0]). */
static int row_model(const kv_jsonr_doc *d, const kv_jsonr_node *t, const char *jp, sim_validate *v,
                     const mdl_model **out, kv_err *err)
{
    char k[80];
    snprintf(k, sizeof k, "%s.model", jp);
    const kv_jsonr_node *x = kv_jsonr_get(t, "model");
    *out = &v->models[0];
    if (!x)
        return 0;
    if (x->kind != KV_JSONR_STR || !x->str[0] || strlen(x->str) >= sizeof v->models[0].name ||
        x->str[strspn(x->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")] || x->str[0] == '.')
        return jerr(err, d, x, k, "expected the name of a bundled model (models/NAME.yaml), got %s", got_of(x));
    for (int i = 0; i < v->nmodels; i++)
        if (!strcmp(v->models[i].name, x->str)) {
            *out = &v->models[i];
            return 0;
        }
    if (v->nmodels >= SIM_VALIDATE_MAX_MODELS)
        return jerr(err, d, x, k, "more than %d distinct models in one report", SIM_VALIDATE_MAX_MODELS);
    kv_err e2;
    if (mdl_model_load(x->str, &v->models[v->nmodels], &e2) != 0)
        return jerr(err, d, x, k, "model \"%s\" cannot be loaded: %s", x->str, e2.msg);
    *out = &v->models[v->nmodels++];
    return 0;
}

static int read_timing(const kv_jsonr_doc *d, const kv_jsonr_node *t, size_t i, const hw_model *hw,
                       const hw_model *hwc, sim_validate *v, kv_err *err)
{
    char jp[64];
    snprintf(jp, sizeof jp, "timings[%zu]", i);
    if (t->kind != KV_JSONR_OBJ)
        return jerr(err, d, t, jp, "expected an object, got %s", got_of(t));
    sim_validate_row row;
    memset(&row, 0, sizeof row);
    int64_t kvh = 0, grp = 0, hd = 0, page_size = 0, topr = 0, topk = 0;
    const double big = 1e12;
    if (get_str(d, t, jp, "what", row.what, sizeof row.what, err) ||
        get_str(d, t, jp, "method", row.method, sizeof row.method, err) ||
        get_i64(d, t, jp, "context", 1, big, &row.context, err) ||
        get_i64(d, t, jp, "budget", 0, big, &row.budget, err) ||
        get_i64(d, t, jp, "batch", 1, 65536, &row.batch, err) ||
        get_i64(d, t, jp, "cache_tokens", 1, big, &row.cache_tokens, err) ||
        get_i64(d, t, jp, "page_size", 0, big, &page_size, err) ||
        get_i64(d, t, jp, "topr", 0, big, &topr, err) ||
        get_i64(d, t, jp, "topk", 0, big, &topk, err) ||
        get_i64(d, t, jp, "kv_heads", 1, 65536, &kvh, err) ||
        get_i64(d, t, jp, "group", 1, 65536, &grp, err) ||
        get_i64(d, t, jp, "head_dim", 1, 65536, &hd, err) ||
        get_num(d, t, jp, "median_s", 1e-9, 1e3, 0, &row.measured_s, err))
        return -1;
    const mdl_model *m;
    if (row_model(d, t, jp, v, &m, err))
        return -1;
    snprintf(row.model, sizeof row.model, "%s", m->name);
    row.kv_heads = kvh;
    row.group = grp;
    row.head_dim = hd;
    const rkv_method_type *mt = rkv_method_find(row.method);
    if (!mt || !(mt->traits.dense || mt->traits.stage2)) {
        char k[80];
        snprintf(k, sizeof k, "%s.method", jp);
        return jerr(err, d, kv_jsonr_get(t, "method"), k, "expected a dense or stage-2 method (the ones the GPU "
                    "check times), got \"%s\"", row.method);
    }
    if (kvh != m->num_key_value_heads || grp != m->num_attention_heads / m->num_key_value_heads ||
        hd != m->head_dim)
        return jerr(err, d, t, jp, "shape kv_heads %lld, group %lld, head_dim %lld differs from %s's (%d, %d, %d); "
                    "give the row the \"model\" it is one layer of, or pass --model", (long long)kvh, (long long)grp, (long long)hd,
                    m->name, m->num_key_value_heads, m->num_attention_heads / m->num_key_value_heads, m->head_dim);
    int stage1 = 0;
    unsigned mask = kernel_mask(mt, row.what, &stage1);
    if (!mask) {
        v->nskipped++;
        return 0;
    }
    rkv_params p;
    int64_t at = 0;
    if (resolve_point(d, t, jp, m, &row, page_size, topr, topk, stage1, &p, &at, err))
        return -1;
    if (price(m, hw, &p, row.batch, at, mask, stage1, &row.pred_s, err) ||
        price(m, hwc, &p, row.batch, at, mask, stage1, &row.pred_cal_s, err))
        return -1;
    row.err_pct = sim_validate_err_pct(row.pred_s, row.measured_s);
    row.err_cal_pct = sim_validate_err_pct(row.pred_cal_s, row.measured_s);
    v->rows[v->nrows++] = row;
    return 0;
}

static const sim_validate_row *find_row(const sim_validate *v, const char *model, const char *method,
                                        const char *what, int64_t ctx, int64_t budget, int64_t batch)
{
    for (int i = 0; i < v->nrows; i++) {
        const sim_validate_row *r = &v->rows[i];
        if (!strcmp(r->model, model) && !strcmp(r->method, method) && !strcmp(r->what, what) && r->context == ctx &&
            r->batch == batch && (budget < 0 || r->budget == budget))
            return r;
    }
    return NULL;
}

/* One speedup: the full row's time / the rocketkv row's, measured and predicted. */
static void add_speedup(sim_validate *v, const sim_validate_row *f, const sim_validate_row *r)
{
    sim_validate_speedup *s = &v->speedup[v->nspeedup++];
    snprintf(s->what, sizeof s->what, "%s", r->what);
    snprintf(s->base, sizeof s->base, "%s", f->what);
    snprintf(s->model, sizeof s->model, "%s", r->model);
    s->context = r->context;
    s->budget = r->budget;
    s->batch = r->batch;
    s->measured = f->measured_s / r->measured_s;
    s->pred = f->pred_s / r->pred_s;
    s->pred_cal = f->pred_cal_s / r->pred_cal_s;
    s->err_pct = sim_validate_err_pct(s->pred, s->measured);
    s->err_cal_pct = sim_validate_err_pct(s->pred_cal, s->measured);
}

/* Speedups: every rocketkv step variant against the full `step` of the same
 * (model, context, batch); step_v5 also against the full step_v4 (the
 * newest dense kernel at G <= 4, the goal). Then the matrix of the
 * caller's model. */
static void derive(sim_validate *v)
{
    for (int i = 0; i < v->nrows; i++) {
        const sim_validate_row *r = &v->rows[i];
        const rkv_method_type *mt = rkv_method_find(r->method);
        if (!mt || mt->traits.dense || (strcmp(r->what, "step") && strcmp(r->what, "step_v1") && strcmp(r->what, "step_v3") &&
                                              strcmp(r->what, "step_v4") && strcmp(r->what, "step_v5")))
            continue;
        const char *base = rkv_method_baseline()->name;
        const sim_validate_row *f = find_row(v, r->model, base, "step", r->context, -1, r->batch);
        if (f)
            add_speedup(v, f, r);
        if (!strcmp(r->what, "step_v5") && (f = find_row(v, r->model, base, "step_v4", r->context, -1, r->batch)))
            add_speedup(v, f, r);
    }
    v->matrix_total = 0;
    for (int c = 0; c < SIM_VALIDATE_NCTX; c++)
        for (int b = 0; b < SIM_VALIDATE_NBATCH; b++)
            for (int t = -1; t < SIM_VALIDATE_NBUDGET; t++) {
                int64_t ctx = sim_validate_contexts[c], B = sim_validate_batches[b];
                int64_t budget = t < 0 ? -1 : sim_validate_budgets[t];
                v->matrix_total++;
                if (find_row(v, v->models[0].name, t < 0 ? rkv_method_baseline()->name : SIM_VALIDATE_METHOD, "step",
                             ctx, budget, B)) {
                    v->matrix_present++;
                } else if (v->nmissing < (int)(sizeof v->missing / sizeof v->missing[0])) {
                    if (t < 0)
                        snprintf(v->missing[v->nmissing++], sizeof v->missing[0], "%s %lld/b%lld",
                                 rkv_method_baseline()->name, (long long)ctx, (long long)B);
                    else
                        snprintf(v->missing[v->nmissing++], sizeof v->missing[0], "%s %lld/%lld/b%lld",
                                 SIM_VALIDATE_METHOD, (long long)ctx, (long long)budget, (long long)B);
                }
            }
}

/* The report's header: kind, device, date, comment, not aborted, and the
 * kernel checks' pass flags (counted). */
static int read_header(const kv_jsonr_doc *d, const kv_jsonr_node *root, sim_validate *v, kv_err *err)
{
    const kv_jsonr_node *x;
    char kind[64], jp[64];
    if (root->kind != KV_JSONR_OBJ) {
        jerr(err, d, root, "$", "expected a JSON object (a gpu_check report), got %s", got_of(root));
        return -1;
    }
    if (get_str(d, root, "", "kind", kind, sizeof kind, err))
        return -1;
    if (strcmp(kind, "kvsim-gpu-check")) {
        jerr(err, d, kv_jsonr_get(root, "kind"), "kind", "expected \"kvsim-gpu-check\", got \"%s\"", kind);
        return -1;
    }
    if (get_str(d, root, "", "device", v->device, sizeof v->device, err) ||
        get_str(d, root, "", "date", v->date, sizeof v->date, err))
        return -1;
    if ((x = kv_jsonr_get(root, "comment")) && x->kind == KV_JSONR_STR)
        snprintf(v->comment, sizeof v->comment, "%s", x->str);
    if (!(x = member(d, root, "", "aborted", jp, sizeof jp, err)))
        return -1;
    if (x->kind == KV_JSONR_STR) {
        jerr(err, d, x, jp, "the GPU run aborted (\"%s\"): its timings are incomplete and its probes null; "
             "nothing to validate", x->str);
        return -1;
    }
    if (x->kind != KV_JSONR_NULL) {
        jerr(err, d, x, jp, "expected null or a string, got %s", got_of(x));
        return -1;
    }
    if (!(x = member(d, root, "", "all_checks_pass", jp, sizeof jp, err)))
        return -1;
    if (x->kind != KV_JSONR_BOOL) {
        jerr(err, d, x, jp, "expected true or false, got %s", got_of(x));
        return -1;
    }
    v->all_checks_pass = x->boolean;
    if (!(x = member(d, root, "", "checks", jp, sizeof jp, err)))
        return -1;
    if (x->kind != KV_JSONR_ARR) {
        jerr(err, d, x, jp, "expected an array, got %s", got_of(x));
        return -1;
    }
    for (size_t i = 0; i < x->n; i++) {
        const kv_jsonr_node *c = x->items[i], *pass = kv_jsonr_get(c, "pass");
        snprintf(jp, sizeof jp, "checks[%zu].pass", i);
        if (!pass || pass->kind != KV_JSONR_BOOL) {
            jerr(err, d, pass ? pass : c, jp, "expected true or false%s", pass ? "" : " (missing)");
            return -1;
        }
        v->nchecks++;
        v->nchecks_failed += !pass->boolean;
    }
    return 0;
}

int sim_validate_report(const char *path, const hw_model *hw, const mdl_model *m, sim_validate *v, kv_err *err)
{
    memset(v, 0, sizeof *v);
    snprintf(v->path, sizeof v->path, "%s", path);
    kv_jsonr_doc d;
    if (kv_jsonr_load_file(&d, path, err) != 0)
        return -1;
    const kv_jsonr_node *root = d.root, *x;
    char jp[64];
    int rc = -1;
    if (read_header(&d, root, v, err) != 0)
        goto free_doc;
    /* calibration from the same file (its own strict checks, file:line:col) */
    v->hw = *hw;
    v->hw_cal = *hw;
    if (hw_model_apply_calibration(&v->hw_cal, path, err) != 0)
        goto free_doc;
    if (!(x = member(&d, root, "", "timings", jp, sizeof jp, err)))
        goto free_doc;
    if (x->kind != KV_JSONR_ARR || x->n == 0) {
        jerr(err, &d, x, jp, "expected a non-empty array of timings, got %s",
             x->kind == KV_JSONR_ARR ? "an empty array" : got_of(x));
        goto free_doc;
    }
    v->rows = calloc(x->n, sizeof *v->rows);
    v->speedup = calloc(2 * x->n, sizeof *v->speedup); /* step_v5: two bases */
    v->models = calloc(SIM_VALIDATE_MAX_MODELS, sizeof *v->models);
    if (!v->rows || !v->speedup || !v->models) {
        kv_errf(err, "%s: out of memory for %zu timings", path, x->n);
        goto free_doc;
    }
    v->models[0] = *m;
    v->nmodels = 1;
    for (size_t i = 0; i < x->n; i++)
        if (read_timing(&d, x->items[i], i, &v->hw, &v->hw_cal, v, err))
            goto free_doc;
    if (v->nrows == 0) {
        jerr(err, &d, x, "timings", "none of the %zu timings is one the sim prices (what: step, step_rif4, step_v2, step_v3, step_v4, step_v5 "
             "(dense), step, step_v1, step_v3, step_v4, step_v5, pages_update, score, score_v2, score_v3, select, select_v1, select_v3, select_v4, sparse_attend, "
             "sparse_attend_v3, sparse_attend_v4, stage1, stage1_v2)", x->n);
        goto free_doc;
    }
    derive(v);
    rc = 0;
free_doc:
    kv_jsonr_free(&d);
    if (rc)
        sim_validate_free(v);
    return rc;
}

void sim_validate_free(sim_validate *v)
{
    if (!v)
        return;
    free(v->rows);
    free(v->speedup);
    free(v->models);
    v->rows = NULL;
    v->speedup = NULL;
    v->models = NULL;
    v->nrows = v->nspeedup = v->nmodels = 0;
}
