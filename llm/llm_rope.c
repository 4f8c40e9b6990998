/* llm_rope.c — RoPE tables with linear, NTK-aware and YaRN scaling
 * (llm_rope.h gives the formulas and their sources). */
#include "llm_rope.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {"none", "linear", "ntk", "yarn"};

const char *llm_rope_type_name(llm_rope_type t)
{
    return (unsigned)t < 4 ? type_names[t] : "?";
}

int llm_rope_type_parse(const char *s, llm_rope_type *t)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, type_names[i])) {
            *t = (llm_rope_type)i;
            return 0;
        }
    return -1;
}

/* llama.cpp's default YaRN ramp weight: 1 for yarn, 0 for every other type
 * (src/llama-context.cpp: yarn_ext_factor < 0 → rope_scaling_type == YARN). */
static double default_ext(llm_rope_type t) { return t == LLM_ROPE_YARN ? 1.0 : 0.0; }

int llm_rope_check(const llm_rope *r, kv_err *err)
{
    if ((unsigned)r->type > LLM_ROPE_YARN) return kv_errf(err, "rope scaling: unknown type %d", (int)r->type);
    if (r->type == LLM_ROPE_NONE ? r->factor != 1.0 : !(r->factor >= 1.0 && r->factor <= 1024.0))
        return kv_errf(err, "rope scaling %s: factor %g: expected %s", llm_rope_type_name(r->type), r->factor,
                       r->type == LLM_ROPE_NONE ? "1 (no scaling)" : "a number in [1, 1024]");
    if (r->orig_ctx < 1 || r->orig_ctx > ((int64_t)1 << 24))
        return kv_errf(err, "rope scaling: original context %lld: expected [1, 16777216] tokens", (long long)r->orig_ctx);
    if (!(r->ext_factor >= 0.0 && r->ext_factor <= 1.0))
        return kv_errf(err, "rope scaling: YaRN ext_factor %g: expected [0, 1]", r->ext_factor);
    if (!(r->attn_factor > 0.0 && r->attn_factor <= 16.0))
        return kv_errf(err, "rope scaling: attn_factor %g: expected (0, 16]", r->attn_factor);
    if (!(r->beta_slow > 0.0 && r->beta_slow < r->beta_fast && r->beta_fast <= 1e4))
        return kv_errf(err, "rope scaling: YaRN beta_fast %g, beta_slow %g: expected 0 < beta_slow < beta_fast <= 10000",
                       r->beta_fast, r->beta_slow);
    return 0;
}

/* An optional real key {arch}.rope.<key>: 1 read, 0 absent, -1 wrong type. */
static int opt_real(const llm_gguf_file *g, const char *arch, const char *key, double *v, kv_err *err)
{
    char k[128];
    snprintf(k, sizeof k, "%s.rope.%s", arch, key);
    return llm_gguf_opt_f64(g, k, v, err);
}

int llm_rope_from_gguf(const llm_gguf_file *g, const char *arch, int64_t ctx_train, llm_rope *r, kv_err *err)
{
    *r = (llm_rope){.type = LLM_ROPE_NONE, .factor = 1.0, .orig_ctx = ctx_train, .attn_factor = 1.0,
                    .beta_fast = 32.0, .beta_slow = 1.0};
    char k[128];
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (llm_gguf_find(g, k)) {
        llm_gguf_str st;
        char name[32];
        if (llm_gguf_get_str(g, k, &st, err) != 0) return -1;
        snprintf(name, sizeof name, "%.*s", st.n < 31 ? (int)st.n : 31, st.p);
        /* llama.cpp's names (LLAMA_ROPE_SCALING_TYPES); "ntk" is not one of them */
        if (st.n >= 31 || !strcmp(name, "ntk") || llm_rope_type_parse(name, &r->type) != 0)
            return kv_errf(err, "%s: %s '%.*s' is not implemented (none, linear or yarn)", g->path, k, (int)st.n, st.p);
    }
    double f = 0.0, v;
    int64_t oc;
    /* .scaling.factor wins over the older .scale_linear; 0 means none (llama-model.cpp) */
    if (opt_real(g, arch, "scale_linear", &f, err) < 0 || opt_real(g, arch, "scaling.factor", &f, err) < 0) return -1;
    if (r->type != LLM_ROPE_NONE) r->factor = f == 0.0 ? 1.0 : f;
    snprintf(k, sizeof k, "%s.rope.scaling.original_context_length", arch);
    int got = llm_gguf_opt_i64(g, k, &oc, err);
    if (got < 0) return -1;
    if (got) r->orig_ctx = oc;
    r->ext_factor = default_ext(r->type);
    if ((got = opt_real(g, arch, "scaling.yarn_ext_factor", &v, err)) < 0) return -1;
    if (got && v >= 0.0) r->ext_factor = v; /* negative: llama.cpp's "default" */
    if ((got = opt_real(g, arch, "scaling.attn_factor", &v, err)) < 0) return -1;
    if (got) r->attn_factor *= v;
    if ((got = opt_real(g, arch, "scaling.yarn_attn_factor", &v, err)) < 0) return -1;
    if (got) r->attn_factor *= v;
    if (opt_real(g, arch, "scaling.yarn_beta_fast", &r->beta_fast, err) < 0 ||
        opt_real(g, arch, "scaling.yarn_beta_slow", &r->beta_slow, err) < 0)
        return -1;
    if (llm_rope_check(r, err) != 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return kv_errf(err, "%s: %s.rope.scaling.*: %s", g->path, arch, msg);
    }
    return 0;
}

int llm_rope_apply_override(llm_rope *out, const llm_rope_override *ov, kv_err *err)
{
    llm_rope rr = *out, *r = &rr; /* *out changes only when the result is valid */
    if (ov->has_type) {
        if (ov->r.type != r->type) r->ext_factor = default_ext(ov->r.type);
        r->type = ov->r.type;
        if (r->type == LLM_ROPE_NONE) r->factor = 1.0;
    }
    if (ov->has_factor) r->factor = ov->r.factor;
    if (ov->has_orig_ctx) r->orig_ctx = ov->r.orig_ctx;
    if (ov->has_ext) r->ext_factor = ov->r.ext_factor;
    if (ov->has_attn) r->attn_factor = ov->r.attn_factor;
    if (ov->has_beta_fast) r->beta_fast = ov->r.beta_fast;
    if (ov->has_beta_slow) r->beta_slow = ov->r.beta_slow;
    if (r->type != LLM_ROPE_NONE && r->factor == 1.0 && !ov->has_factor && ov->has_type)
        return kv_errf(err, "rope scaling %s needs a factor (the model file has none): give --rope-factor",
                       llm_rope_type_name(r->type));
    if (llm_rope_check(r, err) != 0) return -1;
    *out = rr;
    return 0;
}

int64_t llm_rope_max_context(const llm_rope *r, int64_t ctx_train)
{
    if (r->type == LLM_ROPE_NONE) return ctx_train;
    const double m = floor((double)r->orig_ctx * r->factor);
    return m > (double)ctx_train ? (int64_t)m : ctx_train;
}

/* YaRN's pair index whose wavelength fits `rot` times into the original
 * context: solve L / (2π b^(2i/d)) = rot for i (ggml_rope_yarn_corr_dim). */
static double corr_dim(int d, int64_t L, double rot, double base)
{
    return (double)d * log((double)L / (rot * 2.0 * M_PI)) / (2.0 * log(base));
}

void llm_rope_table(const llm_rope *r, double theta, int d, int64_t pos0, int64_t n, float *cs, float *sn)
{
    const int h = d / 2;
    double base = theta, scale = 1.0, mscale = r->attn_factor, lo = 0.0, hi = 0.0;
    const double ext = r->type == LLM_ROPE_YARN ? r->ext_factor : 0.0;
    if (r->type == LLM_ROPE_NTK) base = theta * pow(r->factor, (double)d / (double)(d - 2));
    if (r->type == LLM_ROPE_LINEAR || r->type == LLM_ROPE_YARN) scale = 1.0 / r->factor;
    if (ext != 0.0) {
        lo = fmax(0.0, floor(corr_dim(d, r->orig_ctx, r->beta_fast, theta)));
        hi = fmin((double)(d - 1), ceil(corr_dim(d, r->orig_ctx, r->beta_slow, theta)));
        mscale *= 1.0 + 0.1 * log(1.0 / scale);
    }
    for (int i = 0; i < h; i++) {
        /* per pair: the interpolated frequency, mixed back toward the
         * original one by YaRN's ramp (1 for fast pairs, 0 for slow ones) */
        const double f = pow(base, -2.0 * (double)i / (double)d);
        double fi = f * scale;
        if (ext != 0.0) {
            const double y = ((double)i - lo) / fmax(0.001, hi - lo);
            const double mix = (1.0 - fmin(1.0, fmax(0.0, y))) * ext;
            fi = fi * (1.0 - mix) + f * mix;
        }
        for (int64_t t = 0; t < n; t++) {
            const double a = (double)(pos0 + t) * fi;
            cs[t * h + i] = (float)(cos(a) * mscale);
            sn[t * h + i] = (float)(sin(a) * mscale);
        }
    }
}

void llm_rope_rotate(float *x, int d, const float *cs, const float *sn)
{
    float t[256];
    for (int i = 0; i < d / 2; i++) {
        const float a = x[2 * i], b = x[2 * i + 1];
        t[i] = a * cs[i] - b * sn[i];
        t[i + d / 2] = a * sn[i] + b * cs[i];
    }
    memcpy(x, t, (size_t)d * sizeof *x);
}
