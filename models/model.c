/* model.c — LLM architectures (mdl.h): the strict YAML loader, the derived
 * counts, the Hugging Face config.json importer and the YAML writer.
 *
 * Counts assume a Llama-family decoder: RMSNorm (one weight vector, no bias),
 * q/k/v/o projections without biases unless attention_bias, a SwiGLU MLP
 * (gate, up, down), untied or tied LM head. It deliberately does not model
 * MoE, MLA, sliding windows or RoPE scaling: those keys are not read. */
#include "mdl.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv_jsonr.h"
#include "kv_yaml.h"

#ifndef KVSIM_DATADIR
#define KVSIM_DATADIR "."
#endif

static const char *const model_names[] = {
    "llama3.1-8b", "llama3.1-70b", "mistral-7b-v0.2", "longchat-7b-32k", "qwen2.5-7b", "smollm2-135m", NULL,
};

const char *const *mdl_model_names(void) { return model_names; }

static const char *const yaml_keys[] = {
    "source", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "hidden_size", "intermediate_size", "vocab_size", "max_position_embeddings", "rope_theta",
    "tie_word_embeddings", "torch_dtype", "attention_bias", "weight_dtype", NULL,
};

static const char *const dtypes[] = {"bfloat16", "float16", "float32", NULL};

static int dtype_ok(const char *s)
{
    for (int i = 0; dtypes[i]; i++)
        if (!strcmp(s, dtypes[i]))
            return 1;
    return 0;
}

int mdl_model_check(const mdl_model *m, const char *where, kv_err *err)
{
    const struct { const char *key; int v; } sizes[] = {
        {"num_hidden_layers", m->num_hidden_layers}, {"num_attention_heads", m->num_attention_heads},
        {"num_key_value_heads", m->num_key_value_heads}, {"head_dim", m->head_dim},
        {"hidden_size", m->hidden_size}, {"intermediate_size", m->intermediate_size},
        {"vocab_size", m->vocab_size}, {"max_position_embeddings", m->max_position_embeddings},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].v <= 0)
            return kv_errf(err, "%s: %s must be a positive integer, got %d", where, sizes[i].key, sizes[i].v);
    if (m->num_attention_heads % m->num_key_value_heads != 0)
        return kv_errf(err, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       where, m->num_attention_heads, m->num_key_value_heads);
    if (!(m->rope_theta > 0) || !isfinite(m->rope_theta))
        return kv_errf(err, "%s: rope_theta must be a positive number, got %g", where, m->rope_theta);
    if (!dtype_ok(m->torch_dtype))
        return kv_errf(err, "%s: torch_dtype must be bfloat16, float16 or float32, got '%s'", where,
                       m->torch_dtype);
    return 0;
}

/* ---- YAML loader ---- */
/* Sizes are at most 2^24 (the GGUF loader's bound, and the longest context
 * any flag takes): products of two of them stay far inside int64. */
static int get_size(const kv_yaml_doc *d, const char *key, int *out, kv_err *err)
{
    int64_t v = 0;
    if (kv_yaml_int(d, d->root, key, 1, 1, 1 << 24, &v, err) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

int mdl_model_load(const char *name_or_path, mdl_model *m, kv_err *err)
{
    char path[512];
    if (kv_data_find("models", KVSIM_DATADIR, name_or_path, "model", model_names, path, sizeof path, err))
        return -1;
    kv_yaml_doc d;
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    mdl_model t;
    memset(&t, 0, sizeof t);
    kv_path_stem(path, t.name, sizeof t.name);
    snprintf(t.path, sizeof t.path, "%s", path);
    int rc = kv_yaml_check_keys(&d, d.root, yaml_keys, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "source", 1, t.source, sizeof t.source, err);
    rc = rc ? rc : get_size(&d, "num_hidden_layers", &t.num_hidden_layers, err);
    rc = rc ? rc : get_size(&d, "num_attention_heads", &t.num_attention_heads, err);
    rc = rc ? rc : get_size(&d, "num_key_value_heads", &t.num_key_value_heads, err);
    rc = rc ? rc : get_size(&d, "head_dim", &t.head_dim, err);
    rc = rc ? rc : get_size(&d, "hidden_size", &t.hidden_size, err);
    rc = rc ? rc : get_size(&d, "intermediate_size", &t.intermediate_size, err);
    rc = rc ? rc : get_size(&d, "vocab_size", &t.vocab_size, err);
    rc = rc ? rc : get_size(&d, "max_position_embeddings", &t.max_position_embeddings, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "rope_theta", 1, 1, 1, 1e30, &t.rope_theta, err); /* θ in (1, 1e30] */
    rc = rc ? rc : kv_yaml_bool(&d, d.root, "tie_word_embeddings", 1, &t.tie_word_embeddings, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "torch_dtype", 1, t.torch_dtype, sizeof t.torch_dtype, err);
    rc = rc ? rc : kv_yaml_bool(&d, d.root, "attention_bias", 0, &t.attention_bias, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "weight_dtype", 0, t.weight_dtype, sizeof t.weight_dtype, err);
    if (!rc && !dtype_ok(t.torch_dtype)) {
        const kv_yaml_node *v = kv_yaml_get(d.root, "torch_dtype");
        rc = kv_yaml_errf(&d, v->line, v->col, err,
                          "key 'torch_dtype': expected bfloat16, float16 or float32, got '%s'", t.torch_dtype);
    }
    if (!rc && (t.num_key_value_heads > t.num_attention_heads ||
                t.num_attention_heads % t.num_key_value_heads != 0)) {
        const kv_yaml_node *v = kv_yaml_get(d.root, "num_key_value_heads");
        rc = kv_yaml_errf(&d, v->line, v->col, err,
                          "key 'num_key_value_heads': %d does not divide num_attention_heads (%d) evenly",
                          t.num_key_value_heads, t.num_attention_heads);
    }
    rc = rc ? rc : mdl_model_check(&t, path, err);
    kv_yaml_free(&d);
    if (rc == 0)
        *m = t;
    return rc;
}

/* ---- derived counts ---- */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int has_qkv_bias(const mdl_model *m)
{
    return m->attention_bias || contains_ci(m->name, "qwen2") || contains_ci(m->source, "qwen2");
}

/* Per layer: q (H x Hq·d), k and v (H x Hkv·d each), o (Hq·d x H), q/k/v
 * biases when present, SwiGLU MLP (3 · H x I), two RMSNorm weights (2 · H). */
int64_t mdl_layer_params(const mdl_model *m)
{
    int64_t h = m->hidden_size, q = (int64_t)m->num_attention_heads * m->head_dim;
    int64_t kv = (int64_t)m->num_key_value_heads * m->head_dim;
    int64_t attn = h * q + 2 * h * kv + q * h + (has_qkv_bias(m) ? q + 2 * kv : 0);
    int64_t mlp = 3 * h * (int64_t)m->intermediate_size;
    return attn + mlp + 2 * h;
}

/* The LM head is read once per decoded token whether or not it is tied. */
int64_t mdl_lm_head_params(const mdl_model *m) { return (int64_t)m->vocab_size * m->hidden_size; }

/* embeddings (V x H) + L layers + final norm (H) + LM head unless tied. */
int64_t mdl_param_count(const mdl_model *m)
{
    int64_t emb = (int64_t)m->vocab_size * m->hidden_size;
    return emb + (int64_t)m->num_hidden_layers * mdl_layer_params(m) + m->hidden_size +
           (m->tie_word_embeddings ? 0 : mdl_lm_head_params(m));
}

int64_t mdl_weight_bytes(const mdl_model *m, double bytes_per_param)
{
    return (int64_t)llround((double)mdl_param_count(m) * bytes_per_param);
}

/* 2 (K and V) · L · Hkv · d · b */
int64_t mdl_kv_bytes_per_token(const mdl_model *m, double bytes_per_elem)
{
    return (int64_t)llround(2.0 * m->num_hidden_layers * m->num_key_value_heads * m->head_dim * bytes_per_elem);
}

/* ---- config.json importer ---- */
static int jerr(const kv_jsonr_doc *d, const kv_jsonr_node *at, kv_err *err, const char *key,
                const char *what, const kv_jsonr_node *v)
{
    if (v->kind == KV_JSONR_NUM || v->kind == KV_JSONR_STR)
        return kv_errf(err, "%s:%d:%d: key '%s': expected %s, got %s'%.64s'", d->path, at->line, at->col,
                       key, what, v->kind == KV_JSONR_STR ? "the string " : "", v->str);
    return kv_errf(err, "%s:%d:%d: key '%s': expected %s, got %s", d->path, at->line, at->col, key, what,
                   kv_jsonr_kind_name(v->kind));
}

/* Returns 1 when absent (or null), 0 when read, -1 on error. */
static int json_size(const kv_jsonr_doc *d, const char *key, int required, int *out, kv_err *err)
{
    const kv_jsonr_node *v = kv_jsonr_get(d->root, key);
    if (!v || v->kind == KV_JSONR_NULL) {
        if (required)
            return kv_errf(err, "%s:1:1: missing key '%s'", d->path, key);
        return 1;
    }
    if (v->kind != KV_JSONR_NUM || v->num != floor(v->num) || v->num < 1 || v->num > INT_MAX)
        return jerr(d, v, err, key, "a positive integer", v);
    *out = (int)v->num;
    return 0;
}

/* "dir/llama3.1-8b.config.json" -> "llama3.1-8b"; ".../Llama-3.1-8B/config.json" -> "Llama-3.1-8B". */
static void import_name(const char *path, char *out, size_t cap)
{
    kv_path_stem(path, out, cap);
    size_t len = strlen(out);
    if (len > 7 && !strcmp(out + len - 7, ".config"))
        out[len - 7] = '\0';
    if (strcmp(out, "config") != 0)
        return;
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return;
    const char *start = slash;
    while (start > path && start[-1] != '/')
        start--;
    size_t n = (size_t)(slash - start);
    if (n == 0 || n >= cap)
        return;
    memcpy(out, start, n);
    out[n] = '\0';
}

/* An integer member of a JSON object, or def when absent. */
static int64_t jint(const kv_jsonr_node *obj, const char *key, int64_t def)
{
    const kv_jsonr_node *v = obj ? kv_jsonr_get(obj, key) : NULL;
    return v && v->kind == KV_JSONR_NUM && v->num == (double)(int64_t)v->num ? (int64_t)v->num : def;
}

static const char *jstr(const kv_jsonr_node *obj, const char *key)
{
    const kv_jsonr_node *v = obj ? kv_jsonr_get(obj, key) : NULL;
    return v && v->kind == KV_JSONR_STR ? v->str : "";
}

/* quantization_config (transformers' QuantizationConfigMixin): quant_method
 * awq / gptq (bits, group_size), fp8, compressed-tensors (the first config
 * group's weights: num_bits, type, group_size; input_activations present =
 * W8A8), modelopt (quant_algo FP8 / NVFP4), mxfp4. Anything else is an
 * error naming the method: a checkpoint kvsim cannot price. */
static int import_quant(const kv_jsonr_doc *d, mdl_model *t, kv_err *err)
{
    const kv_jsonr_node *q = kv_jsonr_get(d->root, "quantization_config");
    if (!q || q->kind == KV_JSONR_NULL)
        return 0;
    if (q->kind != KV_JSONR_OBJ)
        return jerr(d, q, err, "quantization_config", "an object", q);
    const char *m = jstr(q, "quant_method");
    const int64_t bits = jint(q, "bits", 4), g = jint(q, "group_size", 128);
    if ((!strcmp(m, "awq") || !strcmp(m, "gptq")) && bits == 4 && g >= 8 && g <= 8192)
        snprintf(t->weight_dtype, sizeof t->weight_dtype, "%s-g%d", m, (int)g);
    else if (!strcmp(m, "gptq") && bits == 8)
        snprintf(t->weight_dtype, sizeof t->weight_dtype, "int8");
    else if (!strcmp(m, "fp8") || (!strcmp(m, "modelopt") && !strcmp(jstr(q, "quant_algo"), "FP8")))
        snprintf(t->weight_dtype, sizeof t->weight_dtype, "fp8");
    else if (!strcmp(m, "modelopt") && !strcmp(jstr(q, "quant_algo"), "NVFP4"))
        snprintf(t->weight_dtype, sizeof t->weight_dtype, "nvfp4");
    else if (!strcmp(m, "mxfp4"))
        snprintf(t->weight_dtype, sizeof t->weight_dtype, "mxfp4");
    else if (!strcmp(m, "compressed-tensors")) {
        const kv_jsonr_node *cg = kv_jsonr_get(q, "config_groups");
        const kv_jsonr_node *g0 = cg && cg->kind == KV_JSONR_OBJ && cg->n > 0 ? cg->items[0] : NULL;
        const kv_jsonr_node *w = g0 && g0->kind == KV_JSONR_OBJ ? kv_jsonr_get(g0, "weights") : NULL;
        const kv_jsonr_node *a = g0 && g0->kind == KV_JSONR_OBJ ? kv_jsonr_get(g0, "input_activations") : NULL;
        const int64_t nb = jint(w, "num_bits", 0), gs = jint(w, "group_size", 0);
        const int w8a8 = a && a->kind == KV_JSONR_OBJ;
        if (nb == 8 && !strcmp(jstr(w, "type"), "float"))
            snprintf(t->weight_dtype, sizeof t->weight_dtype, "fp8");
        else if (nb == 8)
            snprintf(t->weight_dtype, sizeof t->weight_dtype, w8a8 ? "int8-w8a8" : "int8");
        else if (nb == 4 && gs >= 8 && gs <= 8192)
            snprintf(t->weight_dtype, sizeof t->weight_dtype, "gptq-g%d", (int)gs);
        else
            return kv_errf(err, "%s:%d:%d: quantization_config: compressed-tensors with %lld-bit weights "
                           "(group %lld) is not a weight type kvsim prices", d->path, q->line, q->col,
                           (long long)nb, (long long)gs);
    } else
        return kv_errf(err, "%s:%d:%d: quantization_config: quant_method '%s' (%lld bits) is not a weight "
                       "type kvsim prices (awq, gptq, fp8, compressed-tensors, modelopt, mxfp4)", d->path, q->line,
                       q->col, m, (long long)bits);
    return 0;
}

/* Long by design: the config.json keys read one after another, each with its
 * Hugging Face default or check beside it. */
int mdl_import_config_json(const char *json_path, const char *name, mdl_model *m, kv_err *err)
{
    kv_jsonr_doc d;
    if (kv_jsonr_load_file(&d, json_path, err) != 0)
        return -1;
    mdl_model t;
    memset(&t, 0, sizeof t);
    const kv_jsonr_node *v;
    int rc = 0;
    if (d.root->kind != KV_JSONR_OBJ)
        rc = kv_errf(err, "%s:%d:%d: expected a JSON object (a Hugging Face config.json), got %s", d.path,
                     d.root->line, d.root->col, kv_jsonr_kind_name(d.root->kind));
    if (name && *name)
        snprintf(t.name, sizeof t.name, "%s", name);
    else
        import_name(json_path, t.name, sizeof t.name);
    rc = rc ? rc : json_size(&d, "num_hidden_layers", 1, &t.num_hidden_layers, err);
    rc = rc ? rc : json_size(&d, "num_attention_heads", 1, &t.num_attention_heads, err);
    rc = rc ? rc : json_size(&d, "hidden_size", 1, &t.hidden_size, err);
    rc = rc ? rc : json_size(&d, "intermediate_size", 1, &t.intermediate_size, err);
    rc = rc ? rc : json_size(&d, "vocab_size", 1, &t.vocab_size, err);
    rc = rc ? rc : json_size(&d, "max_position_embeddings", 1, &t.max_position_embeddings, err);
    if (!rc) {
        int r = json_size(&d, "num_key_value_heads", 0, &t.num_key_value_heads, err);
        if (r < 0)
            rc = -1;
        else if (r == 1)
            t.num_key_value_heads = t.num_attention_heads; /* HF: absent means multi-head attention */
        else if (t.num_attention_heads % t.num_key_value_heads != 0) {
            v = kv_jsonr_get(d.root, "num_key_value_heads");
            rc = kv_errf(err, "%s:%d:%d: key 'num_key_value_heads': %d does not divide "
                         "num_attention_heads (%d) evenly", d.path, v->line, v->col,
                         t.num_key_value_heads, t.num_attention_heads);
        }
    }
    if (!rc) {
        int r = json_size(&d, "head_dim", 0, &t.head_dim, err);
        if (r < 0)
            rc = -1;
        else if (r == 1 && t.hidden_size % t.num_attention_heads != 0)
            rc = kv_errf(err, "%s: head_dim is absent and hidden_size (%d) is not a multiple of "
                         "num_attention_heads (%d)", d.path, t.hidden_size, t.num_attention_heads);
        else if (r == 1)
            t.head_dim = t.hidden_size / t.num_attention_heads;
    }
    t.rope_theta = 10000.0; /* HF default when absent */
    v = kv_jsonr_get(d.root, "rope_theta");
    if (!rc && v && v->kind != KV_JSONR_NULL) {
        if (v->kind != KV_JSONR_NUM || !(v->num > 0))
            rc = jerr(&d, v, err, "rope_theta", "a positive number", v);
        else
            t.rope_theta = v->num;
    }
    const char *bool_keys[2] = {"tie_word_embeddings", "attention_bias"};
    int *bool_out[2] = {&t.tie_word_embeddings, &t.attention_bias};
    for (int i = 0; i < 2 && !rc; i++) {
        v = kv_jsonr_get(d.root, bool_keys[i]);
        if (v && v->kind != KV_JSONR_NULL && v->kind != KV_JSONR_BOOL)
            rc = jerr(&d, v, err, bool_keys[i], "true or false", v);
        else if (v && v->kind == KV_JSONR_BOOL)
            *bool_out[i] = v->boolean;
    }
    v = kv_jsonr_get(d.root, "model_type");
    if (!rc && v && v->kind == KV_JSONR_STR && !strcmp(v->str, "qwen2") && !kv_jsonr_get(d.root, "attention_bias"))
        t.attention_bias = 1;
    snprintf(t.torch_dtype, sizeof t.torch_dtype, "bfloat16"); /* default when absent */
    v = kv_jsonr_get(d.root, "torch_dtype");
    const char *dkey = "torch_dtype";
    if (!v || v->kind == KV_JSONR_NULL) { /* newer transformers write "dtype" */
        v = kv_jsonr_get(d.root, "dtype");
        dkey = "dtype";
    }
    if (!rc && v && v->kind != KV_JSONR_NULL) {
        if (v->kind != KV_JSONR_STR || !dtype_ok(v->str))
            rc = jerr(&d, v, err, dkey, "\"bfloat16\", \"float16\" or \"float32\"", v);
        else
            snprintf(t.torch_dtype, sizeof t.torch_dtype, "%s", v->str);
    }
    rc = rc ? rc : import_quant(&d, &t, err);
    v = kv_jsonr_get(d.root, "_name_or_path");
    snprintf(t.source, sizeof t.source, "imported from %.180s%s%.60s%s", json_path,
             v && v->kind == KV_JSONR_STR && *v->str ? " (" : "",
             v && v->kind == KV_JSONR_STR ? v->str : "", v && v->kind == KV_JSONR_STR && *v->str ? ")" : "");
    rc = rc ? rc : mdl_model_check(&t, json_path, err);
    kv_jsonr_free(&d);
    if (rc == 0)
        *m = t;
    return rc;
}

/* ---- YAML writer ---- */
static void yaml_quoted(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', fp);
        if ((unsigned char)*s < 0x20)
            fprintf(fp, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, fp);
    }
    fputc('"', fp);
}

void mdl_model_fprint_yaml(const mdl_model *m, FILE *fp)
{
    fprintf(fp, "# %s — written by kvsim %s (model import). Hugging Face config.json key names.\n",
            m->name, KV_VERSION);
    fputs("source: ", fp);
    yaml_quoted(fp, m->source);
    fprintf(fp, "\nnum_hidden_layers: %d\nnum_attention_heads: %d\nnum_key_value_heads: %d\n"
                "head_dim: %d\nhidden_size: %d\nintermediate_size: %d\nvocab_size: %d\n"
                "max_position_embeddings: %d\nrope_theta: %.17g\ntie_word_embeddings: %s\n"
                "torch_dtype: %s\n",
            m->num_hidden_layers, m->num_attention_heads, m->num_key_value_heads, m->head_dim,
            m->hidden_size, m->intermediate_size, m->vocab_size, m->max_position_embeddings, m->rope_theta,
            m->tie_word_embeddings ? "true" : "false", m->torch_dtype);
    if (m->attention_bias)
        fputs("attention_bias: true\n", fp);
    if (m->weight_dtype[0])
        fprintf(fp, "weight_dtype: %s\n", m->weight_dtype);
}

int mdl_model_write_yaml(const mdl_model *m, const char *path, kv_err *err)
{
    if (mdl_model_check(m, path, err) != 0)
        return -1;
    kv_afile f;
    if (kv_afile_open(&f, path, err) != 0)
        return -1;
    mdl_model_fprint_yaml(m, f.fp);
    return kv_afile_commit(&f, err);
}
