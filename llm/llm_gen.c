/* llm_gen.c — greedy generation through a method (llm_gen.h): prompt →
 * tokens → dense prefill → argmax/decode loop, in four named steps. */
#include "llm_gen.h"

#include <stdlib.h>
#include <string.h>

/* Room the chat template adds around the user's text (ChatML with its
 * default system message is under 200 bytes). */
#define GEN_TEMPLATE_BYTES 4096
/* Most bytes of one token copied into gen_text (a token's bytes are short;
 * the cap bounds the buffer at 64 · n). */
#define GEN_TOKEN_TEXT_MAX 64

void llm_gen_result_free(llm_gen_result *r)
{
    if (!r) return;
    free(r->text);
    free(r->prompt_ids);
    free(r->ids);
    free(r->gen_text);
    memset(r, 0, sizeof *r);
}

/* Step 1: the prompt text (chat template applied) and its ids, checked
 * against the model's context length with max_new. */
static int gen_tokens(const llm_model *m, const llm_gen_cfg *cfg, llm_gen_result *r, kv_err *err)
{
    const size_t tl = strlen(cfg->prompt) + GEN_TEMPLATE_BYTES;
    if (!(r->text = malloc(tl))) return kv_errf(err, "out of memory");
    if (cfg->chat) {
        if (llm_chat_format(m->tok, NULL, cfg->prompt, r->text, tl) < 0)
            return kv_errf(err, "%s: the chat template is not one this runner knows (ChatML)", m->path);
    } else {
        snprintf(r->text, tl, "%s", cfg->prompt);
    }
    const int64_t cap = (int64_t)strlen(r->text) + 16;
    const int64_t mctx = llm_model_max_context(m); /* context_length, or RoPE scaling's */
    if (cfg->max_new > mctx) { /* before the allocation it sizes */
        kv_errf(err, "--max-new: %lld is out of range; allowed [0, %lld] (the model's context: context_length, or RoPE scaling's)",
                (long long)cfg->max_new, (long long)mctx);
        return LLM_GEN_EREQUEST;
    }
    r->prompt_ids = malloc((size_t)cap * sizeof *r->prompt_ids);
    r->ids = malloc((size_t)(cfg->max_new + 1) * sizeof *r->ids);
    if (!r->prompt_ids || !r->ids) return kv_errf(err, "out of memory");
    const int64_t n = llm_tokenize(m->tok, r->text, strlen(r->text), r->prompt_ids, cap);
    if (n < 1) {
        kv_errf(err, "the prompt tokenizes to nothing");
        return LLM_GEN_EREQUEST;
    }
    r->n_prompt = n;
    if (n + cfg->max_new > mctx) {
        kv_errf(err, "--prompt (%lld tokens) + --max-new %lld = %lld tokens; the model's context (context_length, or RoPE scaling's) is %lld",
                (long long)n, (long long)cfg->max_new, (long long)(n + cfg->max_new), (long long)mctx);
        return LLM_GEN_EREQUEST;
    }
    if (cfg->window > n) { /* the observation window is the prompt's last W queries */
        kv_errf(err, "--window: %lld is out of range; allowed [1, %lld] (the prompt's tokens)", (long long)cfg->window,
                (long long)n);
        return LLM_GEN_EREQUEST;
    }
    return 0;
}

/* Step 2: the session sized for prompt + max_new + 1 tokens, with the
 * method resolved for this model's G and d and this prompt's length. */
static int gen_session(const llm_model *m, const llm_gen_cfg *cfg, int64_t n, rkv_params *params, llm_session **s,
                       kv_err *err)
{
    llm_session_cfg sc = {.max_tokens = n + cfg->max_new + 1, .kv_dtype = cfg->kv_dtype, .threads = cfg->threads};
    if (cfg->method) {
        rkv_request rq;
        rkv_request_defaults(&rq);
        rq.d = m->c.head_dim;
        rq.G = m->c.n_head / m->c.n_kv_head;
        rq.context = n;
        rq.max_new = cfg->max_new;
        rq.budget = cfg->budget;
        rq.kv_dtype = cfg->kv_dtype;
        rq.model_max_len = 0;
        if (cfg->window > 0) rq.window = cfg->window;
        if (rkv_params_resolve(cfg->method, &rq, params, err) != 0) return LLM_GEN_EREQUEST;
        sc.method = params;
    }
    return llm_session_new(m, &sc, s, err);
}

static int is_end(const llm_model *m, int32_t id)
{
    return id == llm_token_eos(m->tok) || id == llm_token_eot(m->tok);
}

/* Step 3: the greedy loop (the stopping rule of llm_gen.h); logits hold the
 * prefill's last-token logits on entry. */
static int gen_loop(const llm_model *m, const llm_gen_cfg *cfg, llm_session *s, float *logits, llm_gen_result *r,
                    kv_err *err)
{
    while (r->n < cfg->max_new) {
        const int32_t next = llm_argmax(logits, m->c.vocab);
        r->ids[r->n++] = next;
        if (!cfg->ignore_eos && is_end(m, next))
            break;
        if (cfg->on_text) {
            size_t bl;
            const char *b = llm_token_bytes(m->tok, next, &bl);
            cfg->on_text(cfg->ctx, b, bl);
        }
        if (r->n == cfg->max_new)
            break;
        if (llm_decode(s, next, logits, err) != 0)
            return -1;
    }
    r->n_decode = r->n > 1 ? r->n - 1 : 0;
    return 0;
}

/* Step 4: the generated ids as text (each token's bytes cut at GEN_TOKEN_TEXT_MAX). */
static int gen_text(const llm_model *m, llm_gen_result *r, kv_err *err)
{
    if (!(r->gen_text = malloc((size_t)r->n * GEN_TOKEN_TEXT_MAX + 1))) return kv_errf(err, "out of memory");
    size_t on = 0;
    for (int64_t i = 0; i < r->n; i++) {
        size_t bl;
        const char *b = llm_token_bytes(m->tok, r->ids[i], &bl);
        if (bl > GEN_TOKEN_TEXT_MAX) bl = GEN_TOKEN_TEXT_MAX;
        memcpy(r->gen_text + on, b, bl);
        on += bl;
    }
    r->gen_text[on] = '\0';
    return 0;
}

int llm_gen_run(const llm_model *m, const llm_gen_cfg *cfg, llm_gen_result *r, kv_err *err)
{
    memset(r, 0, sizeof *r);
    if (cfg->kv_dtype != RKV_DTYPE_BF16 && cfg->kv_dtype != RKV_DTYPE_FP16 && cfg->kv_dtype != RKV_DTYPE_FP32) {
        kv_errf(err, "KV dtype %s: the runner stores bf16, fp16 or fp32", rkv_dtype_name(cfg->kv_dtype));
        return LLM_GEN_EREQUEST;
    }
    int rc = gen_tokens(m, cfg, r, err);
    if (rc != 0) return rc;
    rkv_params params;
    llm_session *s = NULL;
    if ((rc = gen_session(m, cfg, r->n_prompt, &params, &s, err)) != 0) return rc;
    float *logits = malloc((size_t)m->c.vocab * sizeof *logits);
    if (!logits) {
        llm_session_free(s);
        return kv_errf(err, "out of memory");
    }
    double t = kv_now_s();
    rc = llm_prefill(s, r->prompt_ids, r->n_prompt, logits, 0, 1, err);
    r->prefill_s = kv_now_s() - t;
    t = kv_now_s();
    if (rc == 0 && cfg->on_text) cfg->on_text(cfg->ctx, r->text, strlen(r->text));
    if (rc == 0) rc = gen_loop(m, cfg, s, logits, r, err);
    r->decode_s = kv_now_s() - t;
    if (rc == 0) rc = gen_text(m, r, err);
    free(logits);
    llm_session_free(s);
    return rc;
}

int llm_generate(const char *path, const llm_gen_cfg *cfg, llm_gen_result *r, kv_err *err)
{
    llm_model *m;
    memset(r, 0, sizeof *r);
    const double t0 = kv_now_s();
    if (llm_model_load(path, &m, err) != 0)
        return -1;
    if (cfg->rope && llm_model_set_rope(m, cfg->rope, err) != 0) {
        llm_model_free(m);
        return LLM_GEN_EREQUEST;
    }
    const double load_s = kv_now_s() - t0;
    const int rc = llm_gen_run(m, cfg, r, err);
    r->load_s = load_s;
    llm_model_free(m);
    return rc;
}
