/* spec.c — a sweep spec: defaults and the strict YAML reader (kv_yaml).
 *
 *   models: [llama3.1-8b]            # names or YAML paths; a scalar is a one-item list
 *   hw: [h100-sxm, h200]
 *   methods: [full, rocketkv, quest]
 *   budgets: [256, 1024, 4096]       # integers, 4K style suffixes allowed
 *   contexts: [16384, 32K]
 *   batches: [1, 8]
 *   tp: [1]
 *   harness: [engine, gpt-fast]
 *   new: 50
 *   pp: 2                            # optional: pipeline stages at every point, 1..1024 (1)
 *   engine: vllm                     # optional, every point: an engines/ name or YAML path
 *   mem_fraction: 0.85               # optional (needs engine): its memory fraction, 0.01..1
 *   weight_dtype: int4-g128          # optional: the linear layers' type (bf16)
 *   fidelity:                        # optional: score each (model, method, budget, context)
 *     workload: smollm2-heads        # the default; a name under refimpl/workloads/, a YAML path,
 *                                    # builtin (the hand-tuned generator's defaults), kvdump:/gguf:
 *     steps: 4
 *     context: 4096                  # optional: score at this prompt length instead
 *     layers: "0,8,16,24"            # optional
 *     seed: 1
 *     threads: 2
 *
 * It does not resolve anything: swp_sweep_alloc loads the models, GPUs and
 * workload and reports what does not exist. */
#include "swp.h"

#include <string.h>
#include "kv_yaml.h"

void swp_spec_defaults(swp_spec *s)
{
    memset(s, 0, sizeof *s);
    s->nmodels = 1;
    snprintf(s->models[0], sizeof s->models[0], "llama3.1-8b");
    s->nhw = 1;
    snprintf(s->hw[0], sizeof s->hw[0], "h100-sxm");
    s->nmethods = 2;
    snprintf(s->methods[0], sizeof s->methods[0], "full");
    snprintf(s->methods[1], sizeof s->methods[1], "rocketkv");
    s->nbudgets = 1;
    s->budgets[0] = 1024;
    s->ncontexts = 1;
    s->contexts[0] = 32768;
    s->nbatches = 1;
    s->batches[0] = 1;
    s->ntp = 1;
    s->tps[0] = 1;
    s->nharness = 1;
    s->harness[0] = SIM_HARNESS_ENGINE;
    s->max_new = 50;
    s->pp = 1;
    s->fid_steps = 8;
    s->seed = 1;
}

/* The items of key: a sequence of scalars, or one scalar. NULL when absent. */
static int items(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key,
                 const kv_yaml_node *out[SWP_MAX_AXIS], size_t *n, kv_err *err)
{
    const kv_yaml_node *v = kv_yaml_get(map, key);
    *n = 0;
    if (!v)
        return 0;
    if (v->kind == KV_YAML_SCALAR) {
        out[0] = v;
        *n = 1;
        return 0;
    }
    if (v->kind != KV_YAML_SEQ || v->n == 0)
        return kv_yaml_errf(d, v->line, v->col, err, "key '%s': expected a value or a non-empty list", key);
    if (v->n > SWP_MAX_AXIS)
        return kv_yaml_errf(d, v->line, v->col, err, "key '%s': at most %d items, got %zu", key, SWP_MAX_AXIS, v->n);
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->kind != KV_YAML_SCALAR)
            return kv_yaml_errf(d, v->items[i]->line, v->items[i]->col, err, "key '%s': expected a list of scalars",
                                key);
    for (size_t i = 0; i < v->n; i++)
        out[i] = v->items[i];
    *n = v->n;
    return 0;
}

static int str_list(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, char *dst, size_t cap,
                    int *count, kv_err *err)
{
    const kv_yaml_node *it[SWP_MAX_AXIS];
    size_t n;
    if (items(d, map, key, it, &n, err) != 0)
        return -1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(it[i]->text) == 0 || strlen(it[i]->text) >= cap)
            return kv_yaml_errf(d, it[i]->line, it[i]->col, err, "key '%s': expected a name of 1..%zu bytes, got '%s'",
                                key, cap - 1, it[i]->text);
        snprintf(dst + i * cap, cap, "%s", it[i]->text);
    }
    *count = (int)n;
    return 0;
}

static int int_list(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int64_t *dst, int64_t min,
                    int64_t max, int *count, kv_err *err)
{
    const kv_yaml_node *it[SWP_MAX_AXIS];
    size_t n;
    if (items(d, map, key, it, &n, err) != 0)
        return -1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        kv_err e;
        char what[64];
        snprintf(what, sizeof what, "key '%s'", key);
        if (it[i]->quoted || kv_parse_i64_in(what, it[i]->text, min, max, &v, &e) != 0)
            return kv_yaml_errf(d, it[i]->line, it[i]->col, err, "%s",
                                it[i]->quoted ? "a quoted string where an integer (e.g. 1024 or 32K) is expected"
                                              : e.msg);
        dst[i] = v;
    }
    *count = (int)n;
    return 0;
}

static int read_fidelity(const kv_yaml_doc *d, const kv_yaml_node *f, swp_spec *s, kv_err *err)
{
    static const char *const keys[] = {"workload", "steps", "context", "layers", "seed", "threads", NULL};
    if (f->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, f->line, f->col, err, "key 'fidelity': expected a mapping (workload, steps, ...)");
    if (kv_yaml_check_keys(d, f, keys, err) != 0)
        return -1;
    s->fidelity = 1;
    snprintf(s->workload, sizeof s->workload, "%s", RKV_DEFAULT_WORKLOAD);
    int64_t v;
    if (kv_yaml_str(d, f, "workload", 0, s->workload, sizeof s->workload, err) != 0 ||
        kv_yaml_int(d, f, "steps", 0, 1, 1000000, &s->fid_steps, err) != 0 ||
        kv_yaml_str(d, f, "layers", 0, s->fid_layers, sizeof s->fid_layers, err) != 0)
        return -1;
    const kv_yaml_node *c = kv_yaml_get(f, "context");
    if (c) {
        kv_err e;
        if (c->kind != KV_YAML_SCALAR || c->quoted)
            return kv_yaml_errf(d, c->line, c->col, err, "key 'context': expected an integer (e.g. 4096 or 4K), got %s",
                                c->kind == KV_YAML_SCALAR ? "a quoted string" : "a collection");
        if (kv_parse_i64_in("key 'context'", c->text, 1, INT32_MAX, &v, &e) != 0)
            return kv_yaml_errf(d, c->line, c->col, err, "%s", e.msg);
        s->fid_context = v;
    }
    if (kv_yaml_get(f, "seed")) {
        if (kv_yaml_int(d, f, "seed", 1, 0, INT64_MAX, &v, err) != 0)
            return -1;
        s->seed = (uint64_t)v;
        s->seed_set = 1;
    }
    v = 0;
    if (kv_yaml_int(d, f, "threads", 0, 1, 64, &v, err) != 0)
        return -1;
    s->threads = (int)v;
    return 0;
}

/* engine, mem_fraction (only with an engine) and weight_dtype (a name sim_weight_dtype_parse knows). */
static int read_policy(const kv_yaml_doc *d, const kv_yaml_node *r, swp_spec *s, kv_err *err)
{
    if (kv_yaml_str(d, r, "engine", 0, s->engine, sizeof s->engine, err) != 0 ||
        kv_yaml_num(d, r, "mem_fraction", 0, 0.01, 0, 1.0, &s->mem_fraction, err) != 0 ||
        kv_yaml_str(d, r, "weight_dtype", 0, s->weight_dtype, sizeof s->weight_dtype, err) != 0)
        return -1;
    const kv_yaml_node *f = kv_yaml_get(r, "mem_fraction"), *w = kv_yaml_get(r, "weight_dtype");
    if (f && !s->engine[0])
        return kv_yaml_errf(d, f->line, f->col, err, "key 'mem_fraction': needs key 'engine' (vllm, trtllm, sglang, "
                            "gpt-fast)");
    sim_weight_dtype wd;
    kv_err e;
    if (w && sim_weight_dtype_parse(s->weight_dtype, 4096.0, &wd, &e) != 0)
        return kv_yaml_errf(d, w->line, w->col, err, "key 'weight_dtype': %s", e.msg);
    return 0;
}

int swp_spec_load(const char *path, swp_spec *s, kv_err *err)
{
    static const char *const keys[] = {"models", "hw", "methods", "budgets", "contexts", "batches", "tp",
                                       "harness", "new", "pp", "engine", "mem_fraction", "weight_dtype",
                                       "fidelity", NULL};
    kv_yaml_doc d;
    memset(&d, 0, sizeof d);
    swp_spec_defaults(s);
    if (strlen(path) >= sizeof s->path)
        return kv_errf(err, "%s: path too long", path);
    snprintf(s->path, sizeof s->path, "%s", path);
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    const kv_yaml_node *r = d.root;
    int nh = 0;
    int rc = -1;
    if (kv_yaml_check_keys(&d, r, keys, err) != 0 ||
        str_list(&d, r, "models", s->models[0], sizeof s->models[0], &s->nmodels, err) != 0 ||
        str_list(&d, r, "hw", s->hw[0], sizeof s->hw[0], &s->nhw, err) != 0 ||
        str_list(&d, r, "methods", s->methods[0], sizeof s->methods[0], &s->nmethods, err) != 0 ||
        int_list(&d, r, "budgets", s->budgets, 1, INT32_MAX, &s->nbudgets, err) != 0 ||
        int_list(&d, r, "contexts", s->contexts, 1, INT32_MAX, &s->ncontexts, err) != 0 ||
        int_list(&d, r, "batches", s->batches, 1, 1 << 20, &s->nbatches, err) != 0 ||
        int_list(&d, r, "tp", s->tps, 1, 1024, &s->ntp, err) != 0 ||
        kv_yaml_int(&d, r, "new", 0, 1, 1 << 20, &s->max_new, err) != 0 ||
        kv_yaml_int(&d, r, "pp", 0, 1, 1024, &s->pp, err) != 0 || read_policy(&d, r, s, err) != 0)
        goto done;
    {
        const kv_yaml_node *it[SWP_MAX_AXIS];
        size_t n;
        if (items(&d, r, "harness", it, &n, err) != 0)
            goto done;
        if (n > 2) {
            kv_yaml_errf(&d, it[2]->line, it[2]->col, err, "key 'harness': at most 2 items (engine, gpt-fast)");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (sim_harness_parse(it[i]->text, &s->harness[i]) != 0) {
                kv_yaml_errf(&d, it[i]->line, it[i]->col, err, "key 'harness': expected engine or gpt-fast, got '%s'",
                             it[i]->text);
                goto done;
            }
            nh++;
        }
        if (n > 0)
            s->nharness = nh;
    }
    const kv_yaml_node *f = kv_yaml_get(r, "fidelity");
    if (f && read_fidelity(&d, f, s, err) != 0)
        goto done;
    rc = 0;
done:
    kv_yaml_free(&d);
    return rc;
}
