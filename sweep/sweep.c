/* sweep.c — running a sweep (swp.h): inputs loaded and hashed, points
 * enumerated in a fixed order, each priced by sim/ and scored by refimpl/,
 * rows streamed to OUT.partial, --resume; the finished CSV (Pareto columns,
 * atomic write) and --merge are in finish.c.
 *
 * Point order (slowest axis first): model, harness, hw, tp, context, batch,
 * (method, budget) — `full` appears once, without a budget. */
#define _POSIX_C_SOURCE 200809L
#include "swp.h"
#include "swp_finish.h"
#include "llm_kvdump.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_COMBO (SWP_MAX_AXIS * SWP_MAX_AXIS)
#define NFID 4                 /* mass recall, output error, top-k recall, stage-1 survival */
#define MAX_BATCH_LIMIT 4096   /* the planner's search cap */

struct swp_sweep {
    swp_spec spec;
    mdl_model models[SWP_MAX_AXIS];
    char model_hash[SWP_MAX_AXIS][65];
    hw_model hws[SWP_MAX_AXIS];
    char hw_hash[SWP_MAX_AXIS][65];
    char spec_hash[65];
    rkv_workload wl;
    llm_kvd_file *dump;                        /* real Q/K/V (workload kvdump: or gguf:) */
    char wl_hash[65];
    int layers[1024], nlayers;             /* fidelity layers (0: all) */
    int ncombo;
    int combo_method[MAX_COMBO];
    int64_t combo_budget[MAX_COMBO];       /* 0 for full */
    int64_t npoints, nfidctx, nfidkeys;
    int *fid_have;                         /* (nfidkeys) */
    double *fid_val;                       /* (nfidkeys, NFID) */
    char id[65];
    eng_engine engine;                     /* spec.engine loaded (when set) */
    char engine_hash[65];
};

int64_t swp_sweep_points(const swp_sweep *w) { return w->npoints; }

void swp_sweep_free(swp_sweep *w)
{
    if (!w) return;
    free(w->fid_have);
    free(w->fid_val);
    llm_kvd_free(w->dump);
    free(w);
}

/* workload: kvdump:FILE (a saved dump) or gguf:MODEL.gguf,text:FILE[,offset:N][,dtype:D]
 * (llm_kvd_spec; captured now, as many tokens as the longest fidelity context needs): the
 * model's real Q/K/V. Every model of the sweep must have the dump's shape. */
static int real_workload(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    int64_t need = 0;
    for (int c = 0; c < s->ncontexts; c++) {
        int64_t ctx = s->fid_context > 0 ? s->fid_context : s->contexts[c];
        if (ctx + s->fid_steps > need) need = ctx + s->fid_steps;
    }
    llm_kvd_spec sp;
    if (llm_kvd_spec_parse("workload", s->workload, &sp, err) != 0 ||
        swp_sha256_file(sp.is_dump ? sp.path : sp.text, w->wl_hash, err) != 0 ||
        llm_kvd_spec_load(&sp, need, &w->dump, err) != 0)
        return -1;
    const llm_kvd_info *in = &w->dump->info;
    if (in->n_tokens < need)
        return kv_errf(err, "workload '%s': %lld tokens, but fidelity needs %lld (context + steps)", s->workload,
                       (long long)in->n_tokens, (long long)need);
    for (int m = 0; m < s->nmodels; m++) {
        const mdl_model *md = &w->models[m];
        if (md->num_hidden_layers != in->n_layer || md->num_attention_heads != in->n_head ||
            md->num_key_value_heads != in->n_kv_head || md->head_dim != in->head_dim)
            return kv_errf(err, "workload '%s' has the shape of %s (%d layers, %d/%d heads, d=%d); model %s differs",
                           s->workload, in->model, in->n_layer, in->n_head, in->n_kv_head, in->head_dim, md->name);
    }
    snprintf(w->wl.generator, sizeof w->wl.generator, "kvdump");
    snprintf(w->wl.path, sizeof w->wl.path, "%s", in->source);
    llm_kvd_source(w->dump, &w->wl.real);
    return 0;
}

static rkv_request base_request(const swp_sweep *w, const mdl_model *m, int64_t context, int64_t budget)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = context;
    rq.max_new = w->spec.max_new;
    rq.budget = budget > 0 ? budget : 1024; /* full ignores it */
    return rq;
}

/* Appends to a growing text (the canonical spec). */
typedef struct {
    char buf[65536];
    size_t n;
} text;
static void tadd(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tadd(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->n, sizeof t->buf - t->n, fmt, ap);
    va_end(ap);
    if (k > 0) t->n = t->n + (size_t)k < sizeof t->buf ? t->n + (size_t)k : sizeof t->buf - 1;
}

static void make_id(swp_sweep *w)
{
    const swp_spec *s = &w->spec;
    static text t;
    t.n = 0;
    tadd(&t, "kvsim-sweep-v1\n");
    for (int i = 0; i < s->nmodels; i++) tadd(&t, "model %s %s\n", w->models[i].name, w->model_hash[i]);
    for (int i = 0; i < s->nharness; i++) tadd(&t, "harness %s\n", sim_harness_name(s->harness[i]));
    if (s->engine[0]) tadd(&t, "engine %s %s %.17g\n", w->engine.name, w->engine_hash, s->mem_fraction);
    if (s->weight_dtype[0]) tadd(&t, "weight_dtype %s\n", s->weight_dtype);
    for (int i = 0; i < s->nhw; i++) tadd(&t, "hw %s %s %s\n", w->hws[i].name, w->hw_hash[i], w->hws[i].calibration);
    for (int i = 0; i < s->ntp; i++) tadd(&t, "tp %lld\n", (long long)s->tps[i]);
    for (int i = 0; i < s->ncontexts; i++) tadd(&t, "context %lld\n", (long long)s->contexts[i]);
    for (int i = 0; i < s->nbatches; i++) tadd(&t, "batch %lld\n", (long long)s->batches[i]);
    for (int i = 0; i < w->ncombo; i++)
        tadd(&t, "point %s %lld\n", s->methods[w->combo_method[i]], (long long)w->combo_budget[i]);
    tadd(&t, "new %lld\n", (long long)s->max_new);
    if (s->pp > 1) tadd(&t, "pp %lld\n", (long long)s->pp);
    if (s->fidelity)
        tadd(&t, "fidelity %s %s seed %llu steps %lld context %lld layers %s\n", w->wl.path[0] ? w->wl.path : "builtin",
             w->wl_hash, (unsigned long long)w->wl.seed, (long long)s->fid_steps, (long long)s->fid_context,
             s->fid_layers[0] ? s->fid_layers : "all");
    swp_sha256 h;
    swp_sha256_init(&h);
    swp_sha256_update(&h, t.buf, t.n);
    swp_sha256_hex(&h, w->id);
}

/* Models, hardware and engine loaded, each with the SHA-256 of its file. */
static int load_inputs(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    if (s->path[0] && swp_sha256_file(s->path, w->spec_hash, err) != 0)
        return -1;
    for (int i = 0; i < s->nmodels; i++)
        if (mdl_model_load(s->models[i], &w->models[i], err) != 0 ||
            swp_sha256_file(w->models[i].path, w->model_hash[i], err) != 0)
            return -1;
    for (int i = 0; i < s->nhw; i++)
        if (hw_model_load(s->hw[i], &w->hws[i], err) != 0 || swp_sha256_file(w->hws[i].path, w->hw_hash[i], err) != 0)
            return -1;
    if (s->engine[0] && (eng_load(s->engine, &w->engine, err) != 0 ||
                         swp_sha256_file(w->engine.path, w->engine_hash, err) != 0))
        return -1;
    return 0;
}

/* (method, budget) combinations; a dense method once (the budget does not apply). */
static int make_combos(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    for (int i = 0; i < s->nmethods; i++) {
        const rkv_method_type *mt = rkv_method_get(s->methods[i], err);
        if (!mt)
            return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(s->methods[i], s->methods[j]))
                return kv_errf(err, "method '%s' listed twice", s->methods[i]);
        const int dense = mt->traits.dense;
        for (int b = 0; b < (dense ? 1 : s->nbudgets); b++) {
            w->combo_method[w->ncombo] = i;
            w->combo_budget[w->ncombo] = dense ? 0 : s->budgets[b];
            w->ncombo++;
        }
    }
    return 0;
}

/* Every (model, context, method, budget) resolves and every (model, TP) splits. */
static int check_points(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    char msg[sizeof err->msg];
    for (int m = 0; m < s->nmodels; m++) {
        for (int c = 0; c < s->ncontexts; c++)
            for (int k = 0; k < w->ncombo; k++) {
                rkv_request rq = base_request(w, &w->models[m], s->contexts[c], w->combo_budget[k]);
                rkv_params p;
                if (rkv_params_resolve(s->methods[w->combo_method[k]], &rq, &p, err) != 0) {
                    snprintf(msg, sizeof msg, "%s", err->msg);
                    return kv_errf(err, "%s, context %lld: %s", w->models[m].name, (long long)s->contexts[c], msg);
                }
            }
        for (int t = 0; t < s->ntp; t++) {
            rkv_request rq = base_request(w, &w->models[m], s->contexts[0], 0);
            rkv_params p;
            sim_config cfg;
            sim_rank_shape sh;
            if (rkv_params_resolve(rkv_method_baseline()->name, &rq, &p, err) != 0) return -1;
            sim_config_defaults(&cfg, &w->models[m], &w->hws[0], &p);
            cfg.tp = (int)s->tps[t];
            cfg.pp = (int)s->pp;
            if (sim_rank_shape_compute(&cfg, &sh, err) != 0) {
                snprintf(msg, sizeof msg, "%s", err->msg);
                return kv_errf(err, "%s at TP %lld: %s", w->models[m].name, (long long)s->tps[t], msg);
            }
        }
    }
    return 0;
}

/* The fidelity workload: real Q/K/V (kvdump:, gguf:), a single-turn YAML
 * (path or name under refimpl/workloads/), or the built-in generator. */
static int fid_workload(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    if (llm_kvd_spec_is(s->workload))
        return real_workload(w, err);
    if (!s->workload[0] || !strcmp(s->workload, "builtin"))
        return 0;
    char wpath[1024]; /* a path, or a name under refimpl/workloads/ (smollm2-heads, smollm2-fitted, handtuned) */
    if (rkv_workload_find(s->workload, wpath, sizeof wpath, err) != 0 ||
        rkv_workload_load(wpath, &w->wl, err) != 0 || swp_sha256_file(wpath, w->wl_hash, err) != 0)
        return -1;
    if (w->wl.nturns > 0)
        return kv_errf(err, "%s: a multi-turn workload; sweeps score single-turn generations (use kvsim fidelity)",
                       s->workload);
    return 0;
}

/* Fidelity layers: a list of layer ids every model has. */
static int fid_layers(swp_sweep *w, kv_err *err)
{
    const swp_spec *s = &w->spec;
    int64_t lay[1024];
    w->nlayers = kv_parse_i64_list("fidelity layers", s->fid_layers, 0, 1023, 1, lay, 1024, err);
    if (w->nlayers < 1)
        return -1;
    for (int i = 0; i < w->nlayers; i++) w->layers[i] = (int)lay[i];
    for (int m = 0; m < s->nmodels; m++)
        for (int i = 0; i < w->nlayers; i++)
            if (w->layers[i] >= w->models[m].num_hidden_layers)
                return kv_errf(err, "fidelity layers: layer %d does not exist (%s has %d layers)", w->layers[i],
                               w->models[m].name, w->models[m].num_hidden_layers);
    return 0;
}

/* The fidelity half of a sweep: workload, seed, steps, layers, context,
 * threads and the per-key result slots. */
static int fid_setup(swp_sweep *w, kv_err *err)
{
    swp_spec *s = &w->spec;
    if (fid_workload(w, err) != 0)
        return -1;
    if (s->seed_set) w->wl.seed = s->seed;
    if (s->fid_steps < 1 || s->fid_steps > s->max_new)
        return kv_errf(err, "fidelity steps must be between 1 and new (%lld), got %lld", (long long)s->max_new,
                       (long long)s->fid_steps);
    if (s->fid_layers[0] && fid_layers(w, err) != 0)
        return -1;
    if (s->fid_context > 0)
        for (int m = 0; m < s->nmodels; m++)
            for (int k = 0; k < w->ncombo; k++) {
                rkv_request rq = base_request(w, &w->models[m], s->fid_context, w->combo_budget[k]);
                rkv_params p;
                if (rkv_params_resolve(s->methods[w->combo_method[k]], &rq, &p, err) != 0) return -1;
            }
    if (s->threads <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        s->threads = ncpu > 0 ? (ncpu > 64 ? 64 : (int)ncpu) : 1;
    }
    w->nfidctx = s->fid_context > 0 ? 1 : s->ncontexts;
    w->nfidkeys = (int64_t)s->nmodels * w->nfidctx * w->ncombo;
    w->fid_have = calloc((size_t)w->nfidkeys, sizeof *w->fid_have);
    w->fid_val = calloc((size_t)w->nfidkeys * NFID, sizeof *w->fid_val);
    if (!w->fid_have || !w->fid_val)
        return kv_errf(err, "out of memory");
    return 0;
}

swp_sweep *swp_sweep_alloc(const swp_spec *spec, kv_err *err)
{
    swp_sweep *w = calloc(1, sizeof *w);
    if (!w) {
        kv_errf(err, "out of memory");
        return NULL;
    }
    w->spec = *spec;
    const swp_spec *s = &w->spec;
    if (s->nmodels < 1 || s->nhw < 1 || s->nmethods < 1 || s->nbudgets < 1 || s->ncontexts < 1 || s->nbatches < 1 ||
        s->ntp < 1 || s->nharness < 1) {
        kv_errf(err, "every axis needs at least one value (models, hw, methods, budgets, contexts, batches, tp, harness)");
        goto fail;
    }
    if (load_inputs(w, err) != 0 || make_combos(w, err) != 0 || check_points(w, err) != 0)
        goto fail;
    w->npoints = (int64_t)s->nmodels * s->nharness * s->nhw * s->ntp * s->ncontexts * s->nbatches * w->ncombo;
    rkv_workload_defaults(&w->wl);
    snprintf(w->wl_hash, sizeof w->wl_hash, "builtin");
    if (s->fidelity && fid_setup(w, err) != 0)
        goto fail;
    make_id(w);
    return w;
fail:
    swp_sweep_free(w);
    return NULL;
}

void swp_point_at(const swp_sweep *w, int64_t index, swp_point *p)
{
    const swp_spec *s = &w->spec;
    int64_t i = index;
    memset(p, 0, sizeof *p);
    p->index = index;
    int combo = (int)(i % w->ncombo); i /= w->ncombo;
    int b = (int)(i % s->nbatches); i /= s->nbatches;
    int c = (int)(i % s->ncontexts); i /= s->ncontexts;
    int t = (int)(i % s->ntp); i /= s->ntp;
    p->hw = (int)(i % s->nhw); i /= s->nhw;
    p->harness = (int)(i % s->nharness); i /= s->nharness;
    p->model = (int)i;
    p->method = w->combo_method[combo];
    p->budget = w->combo_budget[combo];
    p->context = s->contexts[c];
    p->batch = s->batches[b];
    p->tp = s->tps[t];
    p->fid_key = s->fidelity ? ((int64_t)p->model * w->nfidctx + (s->fid_context > 0 ? 0 : c)) * w->ncombo + combo : -1;
}

int swp_point_shard(const swp_sweep *w, const swp_point *p, int nshards)
{
    if (nshards <= 1) return 0;
    return (int)((p->fid_key >= 0 ? p->fid_key : p->index) % nshards);
}

/* ---- fidelity --------------------------------------------------------------- */
static int64_t fid_context_of(const swp_sweep *w, const swp_point *p)
{
    return w->spec.fid_context > 0 ? w->spec.fid_context : p->context;
}

/* Computes the fidelity of p's key and, in the same rkv_run (the workload
 * and the dense reference shared), of up to 15 more uncached keys of the same
 * (model, fidelity context) block that this shard holds. */
static int fid_ensure(swp_sweep *w, const swp_point *p, const swp_run_opts *o, swp_run_stats *st, kv_err *err)
{
    if (p->fid_key < 0 || w->fid_have[p->fid_key])
        return 0;
    const swp_spec *s = &w->spec;
    const mdl_model *m = &w->models[p->model];
    const int64_t block0 = p->fid_key - p->fid_key % w->ncombo;
    static rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    int64_t keys[RKV_MAX_SETS];
    for (int64_t k = p->fid_key; k < block0 + w->ncombo && cfg.nsets < RKV_MAX_SETS; k++) {
        if (w->fid_have[k] || (o->count > 1 && k % o->count != o->index))
            continue;
        const int combo = (int)(k - block0);
        rkv_request rq = base_request(w, m, fid_context_of(w, p), w->combo_budget[combo]);
        if (rkv_params_resolve(s->methods[w->combo_method[combo]], &rq, &cfg.sets[cfg.nsets], err) != 0)
            return -1;
        keys[cfg.nsets++] = k;
    }
    cfg.model = m;
    cfg.wl = &w->wl;
    cfg.steps = s->fid_steps;
    cfg.layers = w->nlayers > 0 ? w->layers : NULL;
    cfg.nlayers = w->nlayers;
    cfg.threads = s->threads;
    cfg.fidelity = 1;
    rkv_fidelity fid[RKV_MAX_SETS];
    if (rkv_run(&cfg, fid, err) != 0)
        return -1;
    for (int i = 0; i < cfg.nsets; i++) {
        double *v = &w->fid_val[keys[i] * NFID];
        v[0] = fid[i].overall[RKV_FID_MASS_RECALL].mean;
        v[1] = fid[i].overall[RKV_FID_OUTPUT_REL_ERR].mean;
        v[2] = fid[i].overall[RKV_FID_TOPK_RECALL].mean;
        v[3] = fid[i].overall[RKV_FID_STAGE1_SURVIVAL].mean;
        w->fid_have[keys[i]] = 1;
        rkv_fidelity_free(&fid[i]);
    }
    st->fid_runs++;
    st->fid_computed += cfg.nsets;
    return 0;
}

/* ---- one row ------------------------------------------------------------------ */
static int row_text(swp_sweep *w, const swp_point *pt, char *line, size_t cap, kv_err *err)
{
    const swp_spec *s = &w->spec;
    const mdl_model *m = &w->models[pt->model];
    const hw_model *h = &w->hws[pt->hw];
    const char *method = s->methods[pt->method];
    rkv_request rq = base_request(w, m, pt->context, pt->budget);
    rkv_params p, pf;
    if (rkv_params_resolve(method, &rq, &p, err) != 0 ||
        rkv_params_resolve(rkv_method_baseline()->name, &rq, &pf, err) != 0)
        return -1;
    sim_config c, cf;
    sim_config_defaults(&c, m, h, &p);
    c.batch = pt->batch;
    c.tp = (int)pt->tp;
    c.pp = (int)s->pp;
    c.harness = s->harness[pt->harness];
    if (s->weight_dtype[0]) {
        sim_weight_dtype wd;
        if (sim_weight_dtype_parse(s->weight_dtype, (double)m->hidden_size, &wd, err) != 0)
            return -1;
        sim_config_set_weight_dtype(&c, &wd);
    }
    if (s->engine[0])
        sim_config_set_engine(&c, &w->engine, s->mem_fraction);
    cf = c;
    cf.params = pf;
    static sim_result r, f;
    int64_t max_batch;
    if (sim_predict(&c, &r, err) != 0)
        return -1;
    if (!p.method->traits.dense) {
        if (sim_predict(&cf, &f, err) != 0) return -1;
    } else {
        f = r;
    }
    if (sim_max_batch(&c, MAX_BATCH_LIMIT, &max_batch, err) != 0)
        return -1;
    char budget[32] = "", fid[256] = ",,,,";
    if (pt->budget > 0) snprintf(budget, sizeof budget, "%lld", (long long)pt->budget);
    if (pt->fid_key >= 0) {
        const double *v = &w->fid_val[pt->fid_key * NFID];
        snprintf(fid, sizeof fid, "%lld,%.10g,%.10g,%.10g,%.10g", (long long)fid_context_of(w, pt), v[0], v[1], v[2],
                 v[3]);
    }
    int n = snprintf(line, cap,
                     "%lld,%s,%s,%lld,%s,%s,%s,%lld,%lld,%lld,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,"
                     "%.10g,%.10g,%d,%lld,%s,,\n",
                     (long long)pt->index, m->name, h->name, (long long)pt->tp, sim_harness_name(c.harness), method,
                     budget, (long long)pt->context, (long long)s->max_new, (long long)pt->batch, r.step_time_s,
                     r.tokens_per_s, r.ttft_s, f.step_time_s, f.step_time_s / r.step_time_s, r.mem.peak_bytes,
                     r.mem.kv_bytes, r.mem.aux_bytes, r.mem.weights_bytes, r.mem.capacity_bytes, f.mem.peak_bytes,
                     r.mem.fits, (long long)max_batch, fid);
    if (n < 0 || (size_t)n >= cap)
        return kv_errf(err, "point %lld: row longer than %zu bytes", (long long)pt->index, cap);
    return 0;
}

/* ---- header ---------------------------------------------------------------------- */
static void header_text(const swp_sweep *w, const swp_run_opts *o, text *t)
{
    const swp_spec *s = &w->spec;
    t->n = 0;
    tadd(t, "# kvsim %s sweep (columns: docs/sweep.md)\n", KV_VERSION);
    tadd(t, "# id %s\n", w->id);
    tadd(t, "# points %lld\n", (long long)w->npoints);
    tadd(t, "# shard %d/%d\n", o->index + 1, o->count);
    if (s->path[0]) tadd(t, "# spec %s sha256 %s\n", s->path, w->spec_hash);
    else tadd(t, "# spec (command-line flags)\n");
    for (int i = 0; i < s->nmodels; i++)
        tadd(t, "# model %s %s sha256 %s\n", w->models[i].name, w->models[i].path, w->model_hash[i]);
    for (int i = 0; i < s->nhw; i++)
        tadd(t, "# hw %s %s sha256 %s%s%s\n", w->hws[i].name, w->hws[i].path, w->hw_hash[i],
             w->hws[i].calibration[0] ? " calibration " : "", w->hws[i].calibration);
    if (s->pp > 1) tadd(t, "# pp %lld (every point: a stage rank's memory, the pipeline's tokens/s)\n", (long long)s->pp);
    if (s->fidelity)
        tadd(t, "# workload %s sha256 %s seed %llu steps %lld context %s layers %s threads-independent\n",
             w->wl.path[0] ? w->wl.path : "builtin", w->wl_hash, (unsigned long long)w->wl.seed,
             (long long)s->fid_steps, s->fid_context > 0 ? "fixed" : "per-point", s->fid_layers[0] ? s->fid_layers : "all");
    else
        tadd(t, "# workload none (no fidelity columns)\n");
    for (int i = 0; swp_columns[i]; i++) tadd(t, "%s%s", i ? "," : "", swp_columns[i]);
    tadd(t, "\n");
}

/* ---- run ------------------------------------------------------------------------- */
static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Reads OUT.partial for --resume: same sweep and shard, rows of this shard
 * only; cuts an unterminated last line; marks done points and caches their
 * fidelity. */
static int resume_read(swp_sweep *w, const char *partial, const swp_run_opts *o, uint8_t *done, swp_table *t,
                       swp_run_stats *st, kv_err *err)
{
    if (swp_table_load(partial, 1, t, err) != 0 || swp_check_columns(t, partial, err) != 0)
        return -1;
    const char *id = swp_table_meta(t, "id"), *sh = swp_table_meta(t, "shard");
    char want[32];
    snprintf(want, sizeof want, "%d/%d", o->index + 1, o->count);
    if (!id || strcmp(id, w->id))
        return kv_errf(err, "%s: written by a different sweep (id %s, this one %s: other points or changed input "
                       "files); remove it to start over", partial, id ? id : "missing", w->id);
    if (!sh || strcmp(sh, want))
        return kv_errf(err, "%s: shard %s, but this run is shard %s", partial, sh ? sh : "missing", want);
    if (truncate(partial, (off_t)t->good_bytes) != 0)
        return kv_errf(err, "%s: cannot cut the unfinished last line: %s", partial, strerror(errno));
    const int cf = swp_col("fid_mass_recall");
    for (size_t r = 0; r < t->nrows; r++) {
        int64_t idx;
        swp_point p;
        if (swp_row_index(t, r, partial, w->npoints, &idx, err) != 0)
            return -1;
        swp_point_at(w, idx, &p);
        if (swp_point_shard(w, &p, o->count) != o->index)
            return kv_errf(err, "%s: row %zu: point %lld belongs to another shard", partial, r + 1, (long long)idx);
        if (done[idx])
            return kv_errf(err, "%s: row %zu: point %lld appears twice", partial, r + 1, (long long)idx);
        done[idx] = 1;
        st->resumed++;
        if (p.fid_key >= 0 && !w->fid_have[p.fid_key]) {
            double *v = &w->fid_val[p.fid_key * NFID];
            for (int k = 0; k < NFID; k++) v[k] = swp_num(t->rows[r][cf + k]);
            if (isnan(v[0]))
                return kv_errf(err, "%s: row %zu: fidelity columns empty in a sweep with a workload", partial, r + 1);
            w->fid_have[p.fid_key] = 1;
        }
    }
    return 0;
}

/* --resume on a finished OUT (no OUT.partial): 1 when OUT is this sweep's
 * complete shard (nothing to compute), else 0. t is scratch. */
static int already_complete(const swp_sweep *w, const char *out, const char *partial, const swp_run_opts *o,
                            swp_table *t, swp_run_stats *st, kv_err *err)
{
    if (!o->resume || exists(partial) || !exists(out))
        return 0;
    if (swp_table_load(out, 0, t, err) == 0 && swp_check_columns(t, out, err) == 0) {
        const char *id = swp_table_meta(t, "id");
        if (id && !strcmp(id, w->id) && (int64_t)t->nrows == st->total) {
            st->resumed = st->total;
            return 1;
        }
    }
    swp_table_free(t);
    return 0;
}

/* OUT.partial opened for appending: resumed (its rows marked in done) with
 * --resume, or created with the header text; the file descriptor or -1. */
static int open_partial(swp_sweep *w, const char *partial, const swp_run_opts *o, const text *hdr, uint8_t *done,
                        swp_table *t, swp_run_stats *st, kv_err *err)
{
    if (o->resume && exists(partial)) {
        /* killed before its header was whole: nothing to resume, start it again */
        FILE *pf = fopen(partial, "rb");
        char head[sizeof hdr->buf];
        size_t got = pf ? fread(head, 1, hdr->n, pf) : 0;
        if (pf) fclose(pf);
        if (pf && got < hdr->n && memcmp(head, hdr->buf, got) == 0) remove(partial);
    }
    int fd;
    if (exists(partial)) {
        if (!o->resume)
            return kv_errf(err, "%s exists (an interrupted sweep): add --resume to continue it, or remove it", partial);
        if (resume_read(w, partial, o, done, t, st, err) != 0)
            return -1;
        fd = open(partial, O_WRONLY | O_APPEND);
    } else {
        fd = open(partial, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0 && (swp_write_all(fd, hdr->buf, hdr->n) != 0 || fsync(fd) != 0)) {
            close(fd);
            return kv_errf(err, "%s: write failed: %s", partial, strerror(errno));
        }
    }
    if (fd < 0)
        return kv_errf(err, "%s: cannot open for writing: %s", partial, strerror(errno));
    return fd;
}

/* Computes this shard's points not yet done, one row each appended to fd
 * (synced every second, progress every 0.25 s). 0 when all are done, 1 when
 * stopped early (stop_after), -1 on error. */
static int compute_points(swp_sweep *w, int fd, const char *partial, const swp_run_opts *o, const uint8_t *done,
                          swp_run_stats *st, kv_err *err)
{
    double last_sync = kv_now_s(), last_prog = 0.0;
    int64_t ndone = st->resumed;
    for (int64_t i = 0; i < w->npoints; i++) {
        swp_point p;
        swp_point_at(w, i, &p);
        if (swp_point_shard(w, &p, o->count) != o->index || done[i])
            continue;
        if (p.fid_key >= 0) {
            if (w->fid_have[p.fid_key]) st->fid_reused++;
            else if (fid_ensure(w, &p, o, st, err) != 0) return -1;
        }
        char line[2048];
        if (row_text(w, &p, line, sizeof line, err) != 0) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return kv_errf(err, "point %lld (%s, %s, %s t=%lld, context %lld, batch %lld, TP %lld): %s", (long long)i,
                           w->models[p.model].name, w->hws[p.hw].name, w->spec.methods[p.method], (long long)p.budget,
                           (long long)p.context, (long long)p.batch, (long long)p.tp, msg);
        }
        if (swp_write_all(fd, line, strlen(line)) != 0)
            return kv_errf(err, "%s: write failed: %s", partial, strerror(errno));
        st->computed++;
        ndone++;
        double now = kv_now_s();
        if (now - last_sync >= 1.0) {
            fsync(fd);
            last_sync = now;
        }
        if (o->on_progress && (now - last_prog >= 0.25 || ndone == st->total)) {
            o->on_progress(o->ctx, ndone, st->total);
            last_prog = now;
        }
        if (o->stop_after > 0 && st->computed >= o->stop_after && ndone < st->total) {
            fsync(fd);
            return 1;
        }
    }
    return 0;
}

/* OUT written from the text of OUT.partial, exactly as a merge does, then
 * OUT.partial removed. */
static int finish_from_partial(const swp_sweep *w, const char *partial, const char *out, const swp_run_stats *st,
                               kv_err *err)
{
    swp_table fin;
    memset(&fin, 0, sizeof fin);
    swp_row_ref *rows = NULL;
    int rc = -1;
    if (swp_table_load(partial, 0, &fin, err) != 0 || swp_check_columns(&fin, partial, err) != 0)
        goto done;
    if ((int64_t)fin.nrows != st->total) {
        kv_errf(err, "%s: %zu rows, expected %lld", partial, fin.nrows, (long long)st->total);
        goto done;
    }
    rows = calloc(fin.nrows ? fin.nrows : 1, sizeof *rows);
    if (!rows) { kv_errf(err, "out of memory"); goto done; }
    for (size_t r = 0; r < fin.nrows; r++) {
        rows[r].f = fin.rows[r];
        rows[r].src = partial;
        if (swp_row_index(&fin, r, partial, w->npoints, &rows[r].index, err) != 0) goto done;
    }
    if (swp_finish(rows, fin.nrows, fin.comments, fin.ncomments, out, err) != 0)
        goto done;
    if (remove(partial) != 0) {
        kv_errf(err, "%s written, but %s could not be removed: %s", out, partial, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(rows);
    swp_table_free(&fin);
    return rc;
}

int swp_run(swp_sweep *w, const char *out, const swp_run_opts *opts, swp_run_stats *st, kv_err *err)
{
    swp_run_opts o = *opts;
    if (o.count < 1) { o.count = 1; o.index = 0; }
    if (o.index < 0 || o.index >= o.count)
        return kv_errf(err, "shard %d of %d does not exist", o.index + 1, o.count);
    memset(st, 0, sizeof *st);
    const double t0 = kv_now_s();
    char partial[1100];
    if (strlen(out) + 9 > sizeof partial)
        return kv_errf(err, "%s: path too long", out);
    snprintf(partial, sizeof partial, "%s.partial", out);
    uint8_t *done = calloc((size_t)w->npoints, 1);
    static text hdr;
    swp_table t;
    memset(&t, 0, sizeof t);
    int fd = -1, rc = -1;
    if (!done) { kv_errf(err, "out of memory"); goto done; }
    for (int64_t i = 0; i < w->npoints; i++) {
        swp_point p;
        swp_point_at(w, i, &p);
        st->total += swp_point_shard(w, &p, o.count) == o.index;
    }
    if (already_complete(w, out, partial, &o, &t, st, err)) {
        rc = 0;
        goto done;
    }
    header_text(w, &o, &hdr);
    if ((fd = open_partial(w, partial, &o, &hdr, done, &t, st, err)) < 0)
        goto done;
    if ((rc = compute_points(w, fd, partial, &o, done, st, err)) != 0)
        goto done;
    rc = -1;
    if (fsync(fd) != 0 && errno != EINVAL) {
        kv_errf(err, "%s: fsync failed: %s", partial, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    rc = finish_from_partial(w, partial, out, st, err);
done:
    if (fd >= 0) close(fd);
    free(done);
    swp_table_free(&t);
    st->wall_s = kv_now_s() - t0;
    return rc;
}
