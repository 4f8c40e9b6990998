/* eng.c — engines as data (eng.h): the strict YAML loader and the KV-pool
 * sizing each engine does at start-up. File format and the meaning of every
 * key: engines/README.md. */
#include "eng.h"

#include <math.h>
#include <string.h>

#include "kv_yaml.h"

#ifndef KVSIM_DATADIR
#define KVSIM_DATADIR "."
#endif

static const char *const eng_name_list[] = {"vllm", "trtllm", "sglang", "gpt-fast", NULL};

const char *const *eng_names(void) { return eng_name_list; }

static const char *const budget_names[] = {"total", "free", "static", "none", NULL};
static const char *const harness_names[] = {"fused", "gpt-fast", "per-head", NULL};

const char *eng_budget_name(eng_budget b) { return budget_names[b]; }

static const char *const yaml_keys[] = {
    "display_name", "budget", "harness", "mem_fraction", "block_tokens", "activation_tokens", "sampler_seqs",
    "sampler_copies", "runtime_bytes", "runtime_tp_bytes", "cuda_graph_bytes", "prefill_chunk_tokens",
    "cuda_graphs", "gqa_kernel_groups", "lm_head_quantized", "sources", "serving", NULL,
};

/* Every figure carries a source; the optional keys (the tail from OPTIONAL_FROM) only when given. */
static const char *const sourced_keys[] = {
    "budget", "mem_fraction", "block_tokens", "activation_tokens", "sampler_seqs", "sampler_copies",
    "runtime_bytes", "runtime_tp_bytes", "cuda_graph_bytes", "prefill_chunk_tokens", "cuda_graphs",
    "gqa_kernel_groups", "lm_head_quantized", NULL,
};
#define OPTIONAL_FROM 10

/* A scalar that must be one of names; its index in *out. */
static int get_enum(const kv_yaml_doc *d, const char *key, const char *const *names, int *out, kv_err *err)
{
    char v[32];
    if (kv_yaml_str(d, d->root, key, 1, v, sizeof v, err) != 0)
        return -1;
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    char list[200] = "";
    kv_yaml_key_list(list, sizeof list, names);
    const kv_yaml_node *n = kv_yaml_get(d->root, key);
    return kv_yaml_errf(d, n->line, n->col, err, "key '%s': '%s' is not allowed; %s", key, v, list);
}

static int load_sources(const kv_yaml_doc *d, kv_err *err)
{
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    if (!src)
        return kv_yaml_errf(d, 1, 1, err, "missing key 'sources' (every figure needs a source)");
    if (src->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, src->line, src->col, err, "key 'sources': expected a mapping of key: source");
    if (kv_yaml_check_keys(d, src, sourced_keys, err) != 0)
        return -1;
    for (int i = 0; sourced_keys[i]; i++) {
        const kv_yaml_node *v = kv_yaml_get(src, sourced_keys[i]);
        if (!v && i >= OPTIONAL_FROM && !kv_yaml_get(d->root, sourced_keys[i]))
            continue;
        if (!v)
            return kv_yaml_errf(d, src->line, src->col, err,
                                "missing key '%s' in 'sources' (every figure needs a source)", sourced_keys[i]);
        if (v->kind != KV_YAML_SCALAR || !v->text[0])
            return kv_yaml_errf(d, v->line, v->col, err, "sources: key '%s': expected a non-empty string",
                                sourced_keys[i]);
    }
    return 0;
}

/* The optional list of group sizes G (query heads per KV head) the engine's GQA kernel takes:
 * 1 to ENG_MAX_GQA_GROUPS integers in 1..1024, each through the strict parser. */
static int load_gqa_groups(const kv_yaml_doc *d, eng_engine *e, kv_err *err)
{
    const kv_yaml_node *seq = kv_yaml_get(d->root, "gqa_kernel_groups");
    if (!seq)
        return 0;
    if (seq->kind != KV_YAML_SEQ || seq->n == 0 || seq->n > ENG_MAX_GQA_GROUPS)
        return kv_yaml_errf(d, seq->line, seq->col, err,
                            "key 'gqa_kernel_groups': expected a list of 1 to %d group sizes", ENG_MAX_GQA_GROUPS);
    for (size_t i = 0; i < seq->n; i++) {
        const kv_yaml_node *v = seq->items[i];
        char what[640];
        snprintf(what, sizeof what, "%s:%d:%d: key 'gqa_kernel_groups' entry %zu", d->path, v->line, v->col, i + 1);
        if (v->kind != KV_YAML_SCALAR || v->quoted)
            return kv_errf(err, "%s: expected an integer", what);
        if (kv_parse_i64_in(what, v->text, 1, 1024, &e->gqa_kernel_groups[i], err) != 0)
            return -1;
    }
    e->n_gqa_kernel_groups = (int)seq->n;
    return 0;
}

int eng_reads_kv_per_query_head(const eng_engine *e, int64_t G)
{
    if (e->harness != ENG_HARNESS_PER_HEAD)
        return 0;
    for (int i = 0; i < e->n_gqa_kernel_groups; i++)
        if (e->gqa_kernel_groups[i] == G)
            return 0;
    return 1;
}

/* ---- the optional `serving:` block (its own keys and sources) ---------- */
static const char *const serving_keys[] = {"host_step_s", "host_seq_s", "prefill_alone", "scheduler_steps",
                                           "max_running", "admit_reserve", "sources", NULL};
static const char *const serving_sourced[] = {"host_step_s", "host_seq_s", "prefill_alone", "scheduler_steps",
                                              "max_running", "admit_reserve", NULL};

static int load_serving(const kv_yaml_doc *d, eng_serving *sv, kv_err *err)
{
    sv->scheduler_steps = 1;
    const kv_yaml_node *b = kv_yaml_get(d->root, "serving");
    if (!b)
        return 0;
    if (b->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, b->line, b->col, err, "key 'serving': expected a mapping");
    int rc = kv_yaml_check_keys(d, b, serving_keys, err);
    rc = rc ? rc : kv_yaml_num(d, b, "host_step_s", 1, 0, 0, 1, &sv->host_step_s, err);
    rc = rc ? rc : kv_yaml_num(d, b, "host_seq_s", 1, 0, 0, 1, &sv->host_seq_s, err);
    rc = rc ? rc : kv_yaml_bool(d, b, "prefill_alone", 1, &sv->prefill_alone, err);
    rc = rc ? rc : kv_yaml_int(d, b, "scheduler_steps", 1, 1, 1024, &sv->scheduler_steps, err);
    rc = rc ? rc : kv_yaml_int(d, b, "max_running", 1, 0, 1 << 16, &sv->max_running, err);
    rc = rc ? rc : kv_yaml_num(d, b, "admit_reserve", 1, 0, 0, 1, &sv->admit_reserve, err);
    if (rc)
        return rc;
    const kv_yaml_node *src = kv_yaml_get(b, "sources");
    if (!src || src->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, src ? src->line : b->line, src ? src->col : b->col, err,
                            "serving: missing mapping 'sources' (every figure needs a source)");
    if (kv_yaml_check_keys(d, src, serving_sourced, err) != 0)
        return -1;
    for (int i = 0; serving_sourced[i]; i++) {
        const kv_yaml_node *v = kv_yaml_get(src, serving_sourced[i]);
        if (!v)
            return kv_yaml_errf(d, src->line, src->col, err,
                                "missing key '%s' in 'serving: sources' (every figure needs a source)", serving_sourced[i]);
        if (v->kind != KV_YAML_SCALAR || !v->text[0])
            return kv_yaml_errf(d, v->line, v->col, err, "serving: sources: key '%s': expected a non-empty string",
                                serving_sourced[i]);
    }
    return 0;
}

int eng_load(const char *name_or_path, eng_engine *e, kv_err *err)
{
    char path[512];
    if (kv_data_find("engines", KVSIM_DATADIR, name_or_path, "engine", eng_name_list, path, sizeof path, err))
        return -1;
    kv_yaml_doc d;
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    eng_engine t;
    memset(&t, 0, sizeof t);
    kv_path_stem(path, t.name, sizeof t.name);
    snprintf(t.path, sizeof t.path, "%s", path);
    int budget = 0, harness = 0;
    const kv_yaml_node *r = d.root;
    int rc = kv_yaml_check_keys(&d, r, yaml_keys, err);
    rc = rc ? rc : kv_yaml_str(&d, r, "display_name", 1, t.display_name, sizeof t.display_name, err);
    rc = rc ? rc : get_enum(&d, "budget", budget_names, &budget, err);
    rc = rc ? rc : get_enum(&d, "harness", harness_names, &harness, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "mem_fraction", 1, 0, budget != ENG_BUDGET_NONE, 1, &t.mem_fraction, err);
    rc = rc ? rc : kv_yaml_int(&d, r, "block_tokens", 1, 1, 1 << 20, &t.block_tokens, err);
    rc = rc ? rc : kv_yaml_int(&d, r, "activation_tokens", 1, 0, 1 << 24, &t.activation_tokens, err);
    rc = rc ? rc : kv_yaml_int(&d, r, "sampler_seqs", 1, 0, 1 << 20, &t.sampler_seqs, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "sampler_copies", 1, 0, 0, 64, &t.sampler_copies, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "runtime_bytes", 1, 0, 0, 1e12, &t.runtime_bytes, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "runtime_tp_bytes", 1, 0, 0, 1e12, &t.runtime_tp_bytes, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "cuda_graph_bytes", 1, 0, 0, 1e12, &t.cuda_graph_bytes, err);
    rc = rc ? rc : kv_yaml_num(&d, r, "prefill_chunk_tokens", 1, 0, 0, 1e9, &t.prefill_chunk_tokens, err);
    t.cuda_graphs = 1;
    rc = rc ? rc : kv_yaml_bool(&d, r, "cuda_graphs", 0, &t.cuda_graphs, err);
    rc = rc ? rc : load_gqa_groups(&d, &t, err);
    t.lm_head_quantized = harness == ENG_HARNESS_GPT_FAST; /* absent: gpt-fast quantises every nn.Linear */
    rc = rc ? rc : kv_yaml_bool(&d, r, "lm_head_quantized", 0, &t.lm_head_quantized, err);
    if (!rc && budget == ENG_BUDGET_NONE && t.mem_fraction != 0.0) {
        const kv_yaml_node *n = kv_yaml_get(r, "mem_fraction");
        rc = kv_yaml_errf(&d, n->line, n->col, err, "key 'mem_fraction': must be 0 when budget is 'none'");
    }
    rc = rc ? rc : load_sources(&d, err);
    rc = rc ? rc : load_serving(&d, &t.serving, err);
    kv_yaml_free(&d);
    if (rc == 0) {
        t.budget = (eng_budget)budget;
        t.harness = (eng_harness)harness;
        *e = t;
    }
    return rc;
}

double eng_seq_pool_bytes(const eng_engine *e, double kv_bytes_per_token, int64_t tokens)
{
    const int64_t pages = (tokens + e->block_tokens - 1) / e->block_tokens;
    return (double)pages * (double)e->block_tokens * kv_bytes_per_token;
}

/* The rule per budget kind (eng.h); returns the bytes left for KV before page rounding. */
static double kv_avail(const eng_engine *e, double f, const eng_pool_in *in, eng_pool *o)
{
    const double T = in->device_total_bytes, W = in->weights_bytes, A = o->activation_bytes, R = o->runtime_bytes;
    switch (e->budget) {
    case ENG_BUDGET_TOTAL: /* vLLM: f·total − (weights + activation peak + non-torch); the context
                              was taken before the profiler's baseline, so it is not charged */
        o->budget_bytes = f * T;
        return o->budget_bytes - W - A - R;
    case ENG_BUDGET_FREE: /* TRT-LLM: f · (memory free once the engine and its buffers are resident) */
        o->budget_bytes = f * (T - in->context_bytes - W - A - R);
        return o->budget_bytes;
    case ENG_BUDGET_STATIC: /* SGLang: free after weights − total·(1 − f) */
        o->budget_bytes = f * T;
        return (T - in->context_bytes - W - R) - T * (1.0 - f);
    case ENG_BUDGET_NONE:
    default: /* gpt-fast: whatever the context and weights leave */
        o->budget_bytes = T - in->context_bytes;
        return T - in->context_bytes - W - A - R;
    }
}

int eng_kv_pool(const eng_engine *e, double fraction, const eng_pool_in *in, int64_t max_model_len, eng_pool *out,
                kv_err *err)
{
    memset(out, 0, sizeof *out);
    if (!(in->device_total_bytes > 0.0) || !(in->kv_bytes_per_token > 0.0) || in->tp < 1 || max_model_len < 1)
        return kv_errf(err, "engine %s: device total, KV bytes per token, TP and the request length must be positive",
                       e->name);
    if (fraction > 1.0)
        return kv_errf(err, "engine %s: memory fraction %g is above 1", e->name, fraction);
    const double f = fraction > 0.0 ? fraction : e->mem_fraction;
    out->fraction = f;
    /* the profiling pass: activation_tokens through the widest layer, then the
     * sampler's dummy run over sampler_seqs full-vocabulary rows of
     * sampler_copies fp32 buffers. The forward's activations are freed before
     * the sampler runs (vllm/v1/worker/gpu_model_runner.py profile_run:
     * _dummy_run, then _dummy_sampler_run on the last hidden states only), so
     * the peak is the larger of the two, not their sum. */
    const double fwd = (double)e->activation_tokens * in->act_bytes_per_token;
    const double smp = (double)e->sampler_seqs * in->vocab * 4.0 * e->sampler_copies;
    out->activation_bytes = fwd > smp ? fwd : smp;
    out->runtime_bytes = e->runtime_bytes + (in->tp > 1 ? e->runtime_tp_bytes : 0.0);
    const double avail = kv_avail(e, f, in, out);
    const double block_bytes = (double)e->block_tokens * in->kv_bytes_per_token;
    out->kv_blocks = avail > 0.0 ? (int64_t)floor(avail / block_bytes) : 0;
    out->kv_tokens = out->kv_blocks * e->block_tokens;
    out->kv_pool_bytes = (double)out->kv_blocks * block_bytes;
    const int64_t per_req = (max_model_len + e->block_tokens - 1) / e->block_tokens;
    out->max_concurrency = (double)out->kv_blocks / (double)per_req;
    out->used_bytes = in->context_bytes + in->weights_bytes + out->activation_bytes + out->runtime_bytes +
                      out->kv_pool_bytes + e->cuda_graph_bytes;
    return 0;
}
