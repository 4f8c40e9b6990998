/* llm.c — the llama forward pass over a GGUF model (see llm.h).
 *
 * Per layer, for a batch of B tokens at positions pos0 .. pos0+B-1:
 *   xb = RMSNorm(x) · attn_norm
 *   Q = xb Wqᵀ, K = xb Wkᵀ, V = xb Wvᵀ          (sgemm)
 *   RoPE(Q, K) with the file's theta and scaling (llm_rope.h), interleaved pairs (GGUF layout), then
 *   Q and K reordered to HF rotate-half order; K, V appended to the cache
 *   prompt: causal softmax(Q Kᵀ/√d) V per head over the whole cache (sgemm)
 *   decode: the method's step() over the rkv_head of each KV head
 *   x += attn Woᵀ
 *   xb = RMSNorm(x) · ffn_norm;  x += (silu(xb Wgᵀ) ⊙ xb Wuᵀ) Wdᵀ
 * then logits = RMSNorm(x) · out_norm · Woutᵀ.
 *
 * Plain and deterministic for a fixed BLAS thread count; nothing allocates
 * after llm_session_new. */
#include "llm.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void openblas_set_num_threads(int n);

#define LLM_CHUNK 128 /* prompt tokens per batch */

struct llm_session {
    const llm_model *m;
    llm_session_cfg cfg;
    int64_t pos;                 /* tokens in the cache */
    int G;
    rkv_head *heads;             /* (L, Hkv) */
    void **state;                /* (L, Hkv) method states, or NULL */
    const rkv_method_type **mt;  /* (L) the method, or full below skip_layers */
    int prefilled;               /* method prefill done */
    rkv_step_out so;
    void *mws;                   /* method scratch */
    int64_t wmax;                /* window queries kept */
    float *qring;                /* (L, wmax, Hq·d) last wmax queries by position mod wmax */
    float *Qw;                   /* (G, wmax, d) */
    float *rope_cos, *rope_sin;  /* (max_tokens, d/2) */
    /* batch scratch */
    float *x, *xb;               /* (B, dim) */
    float *q;                    /* (B, Hq·d) */
    float *k, *v;                /* (B, Hkv·d) */
    float *att;                  /* (B, Hq·d) */
    float *hb, *hb2;             /* (B, ff) */
    float *kf, *vf;              /* (max_tokens, d) one head's K, V in f32 */
    float *sc;                   /* (B, max_tokens) scores */
    float *qh;                   /* (B, d) */
    float *oh;                   /* (B, d) */
    float *aws;                  /* rkv_attend scratch */
};

/* ---------------------------------------------------------------- load */
static int tensor_load(const llm_gguf_file *g, const char *name, int64_t ne0, int64_t ne1, float *dst, kv_err *err)
{
    const llm_gguf_tensor *t = llm_gguf_tensor_find(g, name);
    if (!t)
        return kv_errf(err, "%s: tensor '%s' is missing", g->path, name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return kv_errf(err, "%s: tensor '%s' is %lldx%lldx%lldx%lld; expected %lldx%lld", g->path, name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                       (long long)ne0, (long long)ne1);
    return llm_gguf_tensor_f32(t, dst, err);
}

/* The metadata reals the forward pass divides by or raises to a power:
 * RoPE's base θ (inverse frequencies θ^(-2i/d): θ must be finite and > 1,
 * and fit a float) and RMSNorm's ε (1/sqrt(mean + ε): finite, > 0, and
 * small next to the activations' mean square). NaN, inf, 0 and negatives
 * load but then generate garbage (NaN logits: token 0 forever). */
int llm_check_float_meta(const char *path, double rope_theta, double rms_eps, kv_err *err)
{
    if (!(rope_theta > 1.0 && rope_theta <= 1e30))
        return kv_errf(err, "%s: llama.rope.freq_base = %g: expected a finite number in (1, 1e30]", path, rope_theta);
    if (!(rms_eps > 0.0 && rms_eps <= 1.0))
        return kv_errf(err, "%s: llama.attention.layer_norm_rms_epsilon = %g: expected a finite number in (0, 1]",
                       path, rms_eps);
    return 0;
}

static int get_int(const llm_gguf_file *g, const char *arch, const char *key, int *v, kv_err *err)
{
    char k[128];
    int64_t x;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (llm_gguf_get_i64(g, k, &x, err) != 0)
        return -1;
    if (x < 1 || x > (1 << 24))
        return kv_errf(err, "%s: %s = %lld is out of range", g->path, k, (long long)x);
    *v = (int)x;
    return 0;
}

/* Long by design: the llama keys are read and checked one by one (each
 * check beside the key it guards), then every weight tensor is loaded into
 * one arena. */
int llm_model_load(const char *path, llm_model **out, kv_err *err)
{
    *out = NULL;
    llm_model *m = calloc(1, sizeof *m);
    if (!m)
        return kv_errf(err, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    if (llm_gguf_open(path, &m->g, err) != 0)
        goto fail;
    const llm_gguf_file *g = m->g;
    llm_gguf_str arch;
    if (llm_gguf_get_str(g, "general.architecture", &arch, err) != 0)
        goto fail;
    if (arch.n != 5 || memcmp(arch.p, "llama", 5)) {
        kv_errf(err, "%s: general.architecture is '%.*s'; expected 'llama'", path, (int)arch.n, arch.p);
        goto fail;
    }
    llm_config *c = &m->c;
    if (get_int(g, "llama", "block_count", &c->n_layer, err) || get_int(g, "llama", "embedding_length", &c->dim, err) ||
        get_int(g, "llama", "attention.head_count", &c->n_head, err) ||
        get_int(g, "llama", "attention.head_count_kv", &c->n_kv_head, err) ||
        get_int(g, "llama", "feed_forward_length", &c->ff, err) || get_int(g, "llama", "context_length", &c->ctx_train, err))
        goto fail;
    double th = 10000.0, eps;
    if (llm_gguf_opt_f64(g, "llama.rope.freq_base", &th, err) < 0 ||
        llm_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps, err) != 0)
        goto fail;
    if (llm_rope_from_gguf(g, "llama", c->ctx_train, &c->rope, err) != 0)
        goto fail;
    if (llm_check_float_meta(path, th, eps, err) != 0)
        goto fail;
    c->rope_theta = (float)th;
    c->rms_eps = (float)eps;
    if (c->dim % c->n_head != 0 || c->n_head % c->n_kv_head != 0) {
        kv_errf(err, "%s: %d heads do not divide embedding %d or are not a multiple of %d KV heads", path, c->n_head,
                c->dim, c->n_kv_head);
        goto fail;
    }
    c->head_dim = c->dim / c->n_head;
    int rd = c->head_dim;
    if (get_int(g, "llama", "rope.dimension_count", &rd, NULL) == 0 && rd != c->head_dim) {
        kv_errf(err, "%s: partial RoPE (%d of %d dims) is not implemented", path, rd, c->head_dim);
        goto fail;
    }
    if (c->head_dim % 2 != 0 || c->head_dim > 256) {
        kv_errf(err, "%s: head_dim %d: expected an even number <= 256", path, c->head_dim);
        goto fail;
    }
    if (llm_tokenizer_load(g, &m->tok, err) != 0)
        goto fail;
    const llm_gguf_tensor *emb = llm_gguf_tensor_find(g, "token_embd.weight");
    if (!emb) {
        kv_errf(err, "%s: tensor 'token_embd.weight' is missing", path);
        goto fail;
    }
    if (emb->ne[1] < llm_vocab_size(m->tok) || emb->ne[1] > (1 << 24)) {
        kv_errf(err, "%s: token_embd.weight has %lld rows; expected between the tokenizer's %d tokens and 2^24",
                path, (long long)emb->ne[1], llm_vocab_size(m->tok));
        goto fail;
    }
    c->vocab = (int)emb->ne[1];
    c->tied = llm_gguf_tensor_find(g, "output.weight") == NULL;
    const size_t D = (size_t)c->dim, hd = (size_t)c->head_dim, Hq = (size_t)c->n_head, Hk = (size_t)c->n_kv_head,
                 F = (size_t)c->ff, V = (size_t)c->vocab;
    const size_t per_layer = 2 * D + Hq * hd * D + 2 * Hk * hd * D + D * Hq * hd + 3 * F * D;
    const size_t total = V * D * (c->tied ? 1 : 2) + D + (size_t)c->n_layer * per_layer;
    m->arena = malloc(total * sizeof(float));
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->arena || !m->layers) {
        kv_errf(err, "out of memory for %zu MB of f32 weights", total * 4 >> 20);
        goto fail;
    }
    float *p = m->arena;
    m->tok_embd = p; p += V * D;
    m->out_norm = p; p += D;
    if (tensor_load(g, "token_embd.weight", c->dim, c->vocab, m->tok_embd, err) ||
        tensor_load(g, "output_norm.weight", c->dim, 1, m->out_norm, err))
        goto fail;
    if (c->tied) {
        m->output = m->tok_embd;
    } else {
        m->output = p; p += V * D;
        if (tensor_load(g, "output.weight", c->dim, c->vocab, m->output, err))
            goto fail;
    }
    for (int l = 0; l < c->n_layer; l++) {
        llm_layer *L = &m->layers[l];
        char nm[96];
#define LOAD(field, name, n0, n1, count)                                      \
    do {                                                                      \
        L->field = p;                                                         \
        p += (count);                                                         \
        snprintf(nm, sizeof nm, "blk.%d." name ".weight", l);                 \
        if (tensor_load(g, nm, (n0), (n1), L->field, err)) goto fail;        \
    } while (0)
        LOAD(attn_norm, "attn_norm", c->dim, 1, D);
        LOAD(wq, "attn_q", c->dim, (int64_t)(Hq * hd), Hq * hd * D);
        LOAD(wk, "attn_k", c->dim, (int64_t)(Hk * hd), Hk * hd * D);
        LOAD(wv, "attn_v", c->dim, (int64_t)(Hk * hd), Hk * hd * D);
        LOAD(wo, "attn_output", (int64_t)(Hq * hd), c->dim, D * Hq * hd);
        LOAD(ffn_norm, "ffn_norm", c->dim, 1, D);
        LOAD(w_gate, "ffn_gate", c->dim, c->ff, F * D);
        LOAD(w_up, "ffn_up", c->dim, c->ff, F * D);
        LOAD(w_down, "ffn_down", c->ff, c->dim, D * F);
#undef LOAD
    }
    if (llm_vocab_size(m->tok) != c->vocab) {
        kv_errf(err, "%s: %d vocabulary tokens but token_embd has %d rows", path, llm_vocab_size(m->tok), c->vocab);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    llm_model_free(m);
    return -1;
}

int llm_model_set_rope(llm_model *m, const llm_rope_override *ov, kv_err *err)
{
    llm_rope r = m->c.rope;
    if (llm_rope_apply_override(&r, ov, err) != 0)
        return -1;
    m->c.rope = r;
    return 0;
}

int64_t llm_model_max_context(const llm_model *m)
{
    return llm_rope_max_context(&m->c.rope, m->c.ctx_train);
}

void llm_model_free(llm_model *m)
{
    if (!m)
        return;
    llm_tokenizer_free(m->tok);
    llm_gguf_free(m->g);
    free(m->arena);
    free(m->layers);
    free(m);
}

/* ---------------------------------------------------------------- session */

void llm_session_free(llm_session *s)
{
    if (!s)
        return;
    const int nh = s->m->c.n_layer * s->m->c.n_kv_head;
    if (s->heads)
        for (int i = 0; i < nh; i++) {
            free(s->heads[i].K);
            free(s->heads[i].V);
        }
    if (s->state)
        for (int i = 0; i < nh; i++) free(s->state[i]);
    free(s->heads); free(s->state); free(s->mt);
    free(s->so.pos); free(s->so.count); free(s->so.out); free(s->so.dims);
    free(s->mws); free(s->qring); free(s->Qw); free(s->rope_cos); free(s->rope_sin);
    free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v); free(s->att); free(s->hb); free(s->hb2);
    free(s->kf); free(s->vf); free(s->sc); free(s->qh); free(s->oh); free(s->aws);
    free(s);
}

/* Every buffer of a session sized once for max_tokens (one line each, one
 * out-of-memory exit), then the RoPE table: an allocation list kept whole so
 * llm_session_free's list can be read against it. */
int llm_session_new(const llm_model *m, const llm_session_cfg *cfg, llm_session **out, kv_err *err)
{
    *out = NULL;
    const llm_config *c = &m->c;
    const int64_t T = cfg->max_tokens;
    if (T < 1 || T > INT32_MAX / 2)
        return kv_errf(err, "session: max_tokens %lld out of range", (long long)T);
    llm_session *s = calloc(1, sizeof *s);
    if (!s)
        return kv_errf(err, "out of memory");
    s->m = m;
    s->cfg = *cfg;
    s->G = c->n_head / c->n_kv_head;
    const int L = c->n_layer, Hk = c->n_kv_head, d = c->head_dim, G = s->G;
    const size_t D = (size_t)c->dim, qd = (size_t)c->n_head * (size_t)d, kd = (size_t)Hk * (size_t)d, B = LLM_CHUNK;
    const rkv_params *p = cfg->method;
    if (p && (p->d != d || p->G != G)) {
        llm_session_free(s);
        return kv_errf(err, "session: method parameters resolved for d=%d G=%d, the model has d=%d G=%d", p->d, p->G,
                       d, G);
    }
    const size_t b = rkv_dtype_bytes(cfg->kv_dtype);
    s->heads = calloc((size_t)(L * Hk), sizeof *s->heads);
    s->mt = calloc((size_t)L, sizeof *s->mt);
    if (!s->heads || !s->mt) goto oom;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < Hk; h++) {
            rkv_head *hh = &s->heads[l * Hk + h];
            hh->layer = l; hh->kv_head = h; hh->d = d; hh->G = G; hh->dtype = cfg->kv_dtype; hh->cap = T;
            hh->K = malloc((size_t)T * (size_t)d * b);
            hh->V = malloc((size_t)T * (size_t)d * b);
            if (!hh->K || !hh->V) goto oom;
        }
    s->wmax = cfg->keep_queries > 1 ? cfg->keep_queries : 1;
    if (p) {
        s->state = calloc((size_t)(L * Hk), sizeof *s->state);
        if (!s->state) goto oom;
        const size_t sb = p->method->state_bytes(p, T);
        for (int i = 0; i < L * Hk; i++)
            if (!(s->state[i] = calloc(1, sb))) goto oom;
        for (int l = 0; l < L; l++)
            s->mt[l] = l < p->skip_layers ? rkv_method_baseline() : p->method;
        if (p->window_size > s->wmax) s->wmax = p->window_size;
        s->mws = malloc(rkv_scratch_bytes(p, T));
        if (!s->mws) goto oom;
    }
    s->so.cap = T;
    s->so.pos = malloc((size_t)G * (size_t)T * 4);
    s->so.count = calloc((size_t)G, sizeof *s->so.count);
    s->so.out = malloc((size_t)G * (size_t)d * 4);
    s->so.dims = malloc((size_t)G * (size_t)d * 4);
    s->qring = malloc((size_t)L * (size_t)s->wmax * qd * 4);
    s->Qw = malloc((size_t)G * (size_t)s->wmax * (size_t)d * 4);
    s->rope_cos = malloc((size_t)T * (size_t)(d / 2) * 4);
    s->rope_sin = malloc((size_t)T * (size_t)(d / 2) * 4);
    s->x = malloc(B * D * 4); s->xb = malloc(B * D * 4);
    s->q = malloc(B * qd * 4); s->att = malloc(B * qd * 4);
    s->k = malloc(B * kd * 4); s->v = malloc(B * kd * 4);
    s->hb = malloc(B * (size_t)c->ff * 4); s->hb2 = malloc(B * (size_t)c->ff * 4);
    s->kf = malloc((size_t)T * (size_t)d * 4); s->vf = malloc((size_t)T * (size_t)d * 4);
    s->sc = malloc(B * (size_t)T * 4);
    s->qh = malloc(B * (size_t)d * 4); s->oh = malloc(B * (size_t)d * 4);
    s->aws = malloc(((size_t)T * (size_t)G + 4 * (size_t)d) * 4);
    if (!s->so.pos || !s->so.count || !s->so.out || !s->so.dims || !s->qring || !s->Qw || !s->rope_cos ||
        !s->rope_sin || !s->x || !s->xb || !s->q || !s->att || !s->k || !s->v || !s->hb || !s->hb2 || !s->kf ||
        !s->vf || !s->sc || !s->qh || !s->oh || !s->aws)
        goto oom;
    /* RoPE table (llm_rope.h): angle = pos · θ^(-2i/d), scaled as the model's rope says */
    llm_rope_table(&c->rope, (double)c->rope_theta, d, 0, T, s->rope_cos, s->rope_sin);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(cfg->threads > 0 ? cfg->threads : (ncpu > 0 ? (int)ncpu : 1));
    *out = s;
    return 0;
oom:
    llm_session_free(s);
    return kv_errf(err, "out of memory for a session of %lld tokens", (long long)T);
}

int llm_session_copy(llm_session *dst, const llm_session *src, kv_err *err)
{
    const llm_config *c = &src->m->c;
    if (dst->m != src->m || dst->cfg.kv_dtype != src->cfg.kv_dtype || dst->cfg.max_tokens < src->pos)
        return kv_errf(err, "session copy: different model or KV dtype, or %lld tokens do not fit in %lld",
                       (long long)src->pos, (long long)dst->cfg.max_tokens);
    if (src->prefilled || dst->prefilled)
        return kv_errf(err, "session copy: only before decoding starts");
    const size_t row = (size_t)c->head_dim * rkv_dtype_bytes(src->cfg.kv_dtype);
    for (int i = 0; i < c->n_layer * c->n_kv_head; i++) {
        memcpy(dst->heads[i].K, src->heads[i].K, (size_t)src->pos * row);
        memcpy(dst->heads[i].V, src->heads[i].V, (size_t)src->pos * row);
        dst->heads[i].n = src->heads[i].n;
    }
    /* window queries: dst's ring may be longer; refill it by position */
    const size_t qd = (size_t)c->n_head * (size_t)c->head_dim;
    const int64_t w = src->wmax < dst->wmax ? src->wmax : dst->wmax;
    for (int l = 0; l < c->n_layer; l++)
        for (int64_t p = src->pos - w; p < src->pos; p++)
            if (p >= 0)
                memcpy(dst->qring + ((size_t)l * (size_t)dst->wmax + (size_t)(p % dst->wmax)) * qd,
                       src->qring + ((size_t)l * (size_t)src->wmax + (size_t)(p % src->wmax)) * qd, qd * 4);
    if (dst->wmax > src->wmax && src->pos > src->wmax)
        return kv_errf(err, "session copy: the source kept %lld window queries, the method needs %lld; give the "
                            "source session the largest window", (long long)src->wmax, (long long)dst->wmax);
    dst->pos = src->pos;
    return 0;
}

/* ---------------------------------------------------------------- kernels */
/* Y (n, out) = X (n, in) · Wᵀ, W (out, in) row-major. */
static void matmul(float *Y, const float *X, const float *W, size_t n, size_t in, size_t outd)
{
    if (n == 1) {
        gsl_matrix_float_const_view Wm = gsl_matrix_float_const_view_array(W, outd, in);
        gsl_vector_float_const_view x = gsl_vector_float_const_view_array(X, in);
        gsl_vector_float_view y = gsl_vector_float_view_array(Y, outd);
        gsl_blas_sgemv(CblasNoTrans, 1.0f, &Wm.matrix, &x.vector, 0.0f, &y.vector);
        return;
    }
    gsl_matrix_float_const_view Xm = gsl_matrix_float_const_view_array(X, n, in);
    gsl_matrix_float_const_view Wm = gsl_matrix_float_const_view_array(W, outd, in);
    gsl_matrix_float_view Ym = gsl_matrix_float_view_array(Y, n, outd);
    gsl_blas_sgemm(CblasNoTrans, CblasTrans, 1.0f, &Xm.matrix, &Wm.matrix, 0.0f, &Ym.matrix);
}

/* y = x / sqrt(mean(x²) + eps) · w */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    const float r = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (int i = 0; i < n; i++)
        y[i] = x[i] * r * w[i];
}

static void decode_rows(const rkv_head *h, const void *base, int64_t n, float *dst)
{
    rkv_decode(h->dtype, base, (size_t)n * (size_t)h->d, dst);
}

/* Dense causal attention of B query rows (positions pos0 ..) over the cache of one KV head. */
static void attend_causal(llm_session *s, const rkv_head *h, int64_t pos0, int64_t B, int qhead, float *out_rows,
                          size_t out_stride, const float *q_rows, size_t q_stride)
{
    const int d = h->d;
    const int64_t n = pos0 + B;
    const float scale = 1.0f / sqrtf((float)d);
    for (int64_t r = 0; r < B; r++)
        memcpy(s->qh + r * d, q_rows + (size_t)r * q_stride + (size_t)qhead * (size_t)d, (size_t)d * 4);
    gsl_matrix_float_const_view Q = gsl_matrix_float_const_view_array(s->qh, (size_t)B, (size_t)d);
    gsl_matrix_float_const_view K = gsl_matrix_float_const_view_array(s->kf, (size_t)n, (size_t)d);
    gsl_matrix_float_const_view V = gsl_matrix_float_const_view_array(s->vf, (size_t)n, (size_t)d);
    gsl_matrix_float_view S = gsl_matrix_float_view_array(s->sc, (size_t)B, (size_t)n);
    gsl_blas_sgemm(CblasNoTrans, CblasTrans, scale, &Q.matrix, &K.matrix, 0.0f, &S.matrix);
    for (int64_t r = 0; r < B; r++) {
        float *row = s->sc + r * n;
        const int64_t lim = pos0 + r + 1; /* causal: positions 0 .. pos0+r */
        float mx = -INFINITY;
        for (int64_t j = 0; j < lim; j++)
            if (row[j] > mx) mx = row[j];
        double z = 0.0;
        for (int64_t j = 0; j < lim; j++) {
            row[j] = expf(row[j] - mx);
            z += row[j];
        }
        const float inv = (float)(1.0 / z);
        for (int64_t j = 0; j < lim; j++) row[j] *= inv;
        for (int64_t j = lim; j < n; j++) row[j] = 0.0f;
    }
    gsl_matrix_float_view O = gsl_matrix_float_view_array(s->oh, (size_t)B, (size_t)d);
    gsl_blas_sgemm(CblasNoTrans, CblasNoTrans, 1.0f, &S.matrix, &V.matrix, 0.0f, &O.matrix);
    for (int64_t r = 0; r < B; r++)
        memcpy(out_rows + (size_t)r * out_stride + (size_t)qhead * (size_t)d, s->oh + r * d, (size_t)d * 4);
}

/* One decode step of KV head h at layer l through the method (dense when
 * none, or before its stage 1): q_row, o_row (Hq·d) of one token. */
static int decode_step(llm_session *s, int l, int h, const float *q_row, float *o_row, kv_err *err)
{
    const int d = s->m->c.head_dim, G = s->G, Hk = s->m->c.n_kv_head;
    rkv_head *hh = &s->heads[l * Hk + h];
    const float *q = q_row + (size_t)h * (size_t)G * (size_t)d; /* heads h·G .. h·G+G-1 */
    float *o = o_row + (size_t)h * (size_t)G * (size_t)d;
    if (s->state && s->prefilled) {
        rkv_step_out *so = &s->so;
        so->bytes = (rkv_traffic){0};
        so->ndims = 0;
        so->pages_scored = 0;
        so->cache = NULL;
        if (s->mt[l]->step(s->state[l * Hk + h], s->cfg.method, hh, q, so, s->mws) != 0)
            return kv_errf(err, "%s: decode step failed at layer %d, KV head %d", s->cfg.method->method->name, l, h);
        memcpy(o, so->out, (size_t)G * (size_t)d * 4);
    } else {
        rkv_attend(hh, q, NULL, hh->n, o, NULL, s->aws);
    }
    return 0;
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* One batch of B tokens through every layer. decode: attention through the
 * method, row by row (B > 1: teacher forcing, the tokens known in advance). */
static int forward(llm_session *s, const int32_t *ids, int64_t B, int decode, kv_err *err)
{
    const llm_model *m = s->m;
    const llm_config *c = &m->c;
    const int D = c->dim, d = c->head_dim, Hq = c->n_head, Hk = c->n_kv_head, G = s->G, F = c->ff;
    const size_t qd = (size_t)Hq * (size_t)d, kd = (size_t)Hk * (size_t)d;
    const int64_t pos0 = s->pos;
    if (pos0 + B > s->cfg.max_tokens)
        return kv_errf(err, "context full: %lld + %lld tokens exceed the session's %lld", (long long)pos0, (long long)B,
                       (long long)s->cfg.max_tokens);
    for (int64_t r = 0; r < B; r++) {
        if (ids[r] < 0 || ids[r] >= c->vocab)
            return kv_errf(err, "token id %d out of range 0..%d", ids[r], c->vocab - 1);
        memcpy(s->x + r * D, m->tok_embd + (size_t)ids[r] * (size_t)D, (size_t)D * 4);
    }
    const size_t b = rkv_dtype_bytes(s->cfg.kv_dtype);
    for (int l = 0; l < c->n_layer; l++) {
        const llm_layer *W = &m->layers[l];
        for (int64_t r = 0; r < B; r++)
            rmsnorm(s->xb + r * D, s->x + r * D, W->attn_norm, D, c->rms_eps);
        matmul(s->q, s->xb, W->wq, (size_t)B, (size_t)D, qd);
        matmul(s->k, s->xb, W->wk, (size_t)B, (size_t)D, kd);
        matmul(s->v, s->xb, W->wv, (size_t)B, (size_t)D, kd);
        for (int64_t r = 0; r < B; r++) {
            const float *cs = s->rope_cos + (pos0 + r) * (d / 2), *sn = s->rope_sin + (pos0 + r) * (d / 2);
            for (int h = 0; h < Hq; h++) llm_rope_rotate(s->q + (size_t)r * qd + (size_t)h * (size_t)d, d, cs, sn);
            for (int h = 0; h < Hk; h++) llm_rope_rotate(s->k + (size_t)r * kd + (size_t)h * (size_t)d, d, cs, sn);
            /* keep the last wmax queries for the method's stage 1 */
            memcpy(s->qring + ((size_t)l * (size_t)s->wmax + (size_t)((pos0 + r) % s->wmax)) * qd,
                   s->q + (size_t)r * qd, qd * 4);
        }
        if (s->cfg.on_qkv && s->cfg.on_qkv(s->cfg.ctx, l, pos0, B, s->q, s->k, s->v) != 0)
            return kv_errf(err, "the KV capture callback failed at layer %d", l);
        for (int h = 0; h < Hk; h++) {
            rkv_head *hh = &s->heads[l * Hk + h];
            for (int64_t r = 0; r < B; r++) {
                rkv_encode(hh->dtype, s->k + (size_t)r * kd + (size_t)h * (size_t)d, (size_t)d,
                           (char *)hh->K + (size_t)(pos0 + r) * (size_t)d * b);
                rkv_encode(hh->dtype, s->v + (size_t)r * kd + (size_t)h * (size_t)d, (size_t)d,
                           (char *)hh->V + (size_t)(pos0 + r) * (size_t)d * b);
            }
            hh->n = pos0 + B;
            if (decode) {
                /* teacher-forced rows in order, each seeing the cache up to its own position */
                for (int64_t r = 0; r < B; r++) {
                    hh->n = pos0 + r + 1;
                    if (decode_step(s, l, h, s->q + (size_t)r * qd, s->att + (size_t)r * qd, err) != 0) return -1;
                }
            } else {
                decode_rows(hh, hh->K, hh->n, s->kf);
                decode_rows(hh, hh->V, hh->n, s->vf);
                for (int g = 0; g < G; g++)
                    attend_causal(s, hh, pos0, B, h * G + g, s->att, qd, s->q, qd);
            }
        }
        matmul(s->xb, s->att, W->wo, (size_t)B, qd, (size_t)D);
        for (int64_t i = 0; i < B * D; i++) s->x[i] += s->xb[i];
        for (int64_t r = 0; r < B; r++)
            rmsnorm(s->xb + r * D, s->x + r * D, W->ffn_norm, D, c->rms_eps);
        matmul(s->hb, s->xb, W->w_gate, (size_t)B, (size_t)D, (size_t)F);
        matmul(s->hb2, s->xb, W->w_up, (size_t)B, (size_t)D, (size_t)F);
        for (int64_t i = 0; i < B * F; i++) s->hb[i] = silu(s->hb[i]) * s->hb2[i];
        matmul(s->xb, s->hb, W->w_down, (size_t)B, (size_t)F, (size_t)D);
        for (int64_t i = 0; i < B * D; i++) s->x[i] += s->xb[i];
    }
    s->pos = pos0 + B;
    return 0;
}

static void logits_of(llm_session *s, int64_t B, int64_t r0, int64_t nr, float *logits)
{
    const llm_config *c = &s->m->c;
    for (int64_t r = r0; r < r0 + nr; r++)
        rmsnorm(s->xb + (r - r0) * c->dim, s->x + r * c->dim, s->m->out_norm, c->dim, c->rms_eps);
    matmul(logits, s->xb, s->m->output, (size_t)nr, (size_t)c->dim, (size_t)c->vocab);
    (void)B;
}

/* The method's stage 1 with the last w prompt queries of every (layer, KV head). */
static int method_prefill(llm_session *s, kv_err *err)
{
    const llm_config *c = &s->m->c;
    const int d = c->head_dim, Hk = c->n_kv_head, G = s->G;
    const size_t qd = (size_t)c->n_head * (size_t)d;
    const rkv_params *p = s->cfg.method;
    int64_t w = s->wmax < s->pos ? s->wmax : s->pos;
    for (int l = 0; l < c->n_layer; l++)
        for (int h = 0; h < Hk; h++) {
            for (int64_t i = 0; i < w; i++) {
                const int64_t pos = s->pos - w + i;
                const float *row = s->qring + ((size_t)l * (size_t)s->wmax + (size_t)(pos % s->wmax)) * qd;
                for (int g = 0; g < G; g++)
                    memcpy(s->Qw + ((size_t)g * (size_t)w + (size_t)i) * (size_t)d,
                           row + ((size_t)h * (size_t)G + (size_t)g) * (size_t)d, (size_t)d * 4);
            }
            void *st = s->state[l * Hk + h];
            memset(st, 0, p->method->state_bytes(p, s->cfg.max_tokens));
            s->mt[l]->state_init(st, p, s->cfg.max_tokens);
            rkv_head *hh = &s->heads[l * Hk + h];
            rkv_prefill_in in = {.n_end = s->pos, .w = w, .Qw = s->Qw, .turn = 0};
            if (s->mt[l]->prefill(st, p, hh, &in, s->mws) != 0)
                return kv_errf(err, "%s: stage 1 failed at layer %d, KV head %d", p->method->name, l, h);
        }
    s->prefilled = 1;
    return 0;
}

int llm_prefill(llm_session *s, const int32_t *ids, int64_t n, float *logits, int all, int finish, kv_err *err)
{
    if (s->prefilled)
        return kv_errf(err, "prefill after decoding started is not supported (single turn)");
    const int V = s->m->c.vocab;
    for (int64_t a = 0; a < n; a += LLM_CHUNK) {
        const int64_t B = n - a < LLM_CHUNK ? n - a : LLM_CHUNK;
        if (forward(s, ids + a, B, 0, err) != 0)
            return -1;
        if (logits && all)
            logits_of(s, B, 0, B, logits + (size_t)a * (size_t)V);
        else if (logits && a + B == n)
            logits_of(s, B, B - 1, 1, logits);
    }
    if (finish && s->state)
        return method_prefill(s, err);
    return 0;
}

int llm_decode(llm_session *s, int32_t id, float *logits, kv_err *err)
{
    if (s->state && !s->prefilled && method_prefill(s, err) != 0)
        return -1;
    if (forward(s, &id, 1, 1, err) != 0)
        return -1;
    if (logits)
        logits_of(s, 1, 0, 1, logits);
    return 0;
}

int llm_decode_forced(llm_session *s, const int32_t *ids, int64_t n, float *logits, kv_err *err)
{
    if (s->state && !s->prefilled && method_prefill(s, err) != 0)
        return -1;
    const int V = s->m->c.vocab;
    for (int64_t a = 0; a < n; a += LLM_CHUNK) {
        const int64_t B = n - a < LLM_CHUNK ? n - a : LLM_CHUNK;
        if (forward(s, ids + a, B, 1, err) != 0)
            return -1;
        if (logits)
            logits_of(s, B, 0, B, logits + (size_t)a * (size_t)V);
    }
    return 0;
}

int32_t llm_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

double llm_logprob(const float *logits, int n, int32_t id)
{
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double z = 0.0;
    for (int i = 0; i < n; i++)
        z += exp((double)logits[i] - (double)mx);
    return (double)logits[id] - (double)mx - log(z);
}
