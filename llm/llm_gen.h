/* llm_gen.h — greedy generation with any method in the decode loop (what
 * `kvsim generate` runs): the prompt, optionally wrapped in the model's chat
 * template, is tokenized and processed densely; the method's stage 1 runs at
 * its end; then each step takes the argmax token and, unless it was the last
 * one wanted or an end token, runs one decode forward that attends through
 * the method (llm.h's session). The CLI parses flags and prints; everything
 * between is here.
 *
 * Stopping rule: generation stops after max_new tokens, or right after the
 * model's end-of-sequence or end-of-turn token (kept as the last generated
 * id, not streamed as text) unless ignore_eos. A run that stops at token k
 * has made k − 1 decode forwards (the first token comes from the prefill). */
#ifndef LLM_GEN_H
#define LLM_GEN_H

#include <stddef.h>
#include <stdint.h>
#include "llm.h"

/* llm_gen_run's status for a request out of range for this model and prompt
 * (max_new over the context length, an empty prompt, a window longer than
 * the prompt, a method that does not resolve): the caller's usage error. */
#define LLM_GEN_EREQUEST (-2)

typedef struct {
    const char *prompt;      /* text; control tokens such as <|im_start|> are recognised */
    int chat;                /* 1: wrap prompt in the chat template (one user turn) */
    int64_t max_new;         /* tokens to generate, ≥ 0 */
    int ignore_eos;          /* 1: do not stop at end-of-sequence / end-of-turn */
    const char *method;      /* method name; NULL: dense attention */
    int64_t budget;          /* method token budget, ≥ 1 (ignored when dense) */
    int64_t window;          /* observation window override, ≥ 1; ≤ 0: the method's default */
    rkv_dtype kv_dtype;      /* KV cache storage: bf16, fp16 or fp32 */
    int threads;             /* BLAS threads; 0: number of CPUs */
    const llm_rope_override *rope; /* llm_generate: RoPE scaling over the file's; NULL: the file's */
    /* Streamed text, may be NULL: called once with the (formatted) prompt
     * after the prefill, then once with each generated token's bytes. */
    void (*on_text)(void *ctx, const char *bytes, size_t n);
    void *ctx;
} llm_gen_cfg;

typedef struct {
    char *text;              /* the prompt as tokenized (chat template applied), NUL-terminated */
    int32_t *prompt_ids;     /* (n_prompt) */
    int64_t n_prompt;
    int32_t *ids;            /* (n) generated, the stopping end token included */
    int64_t n;
    char *gen_text;          /* bytes of ids, each token cut at 64 bytes, NUL-terminated */
    int64_t n_decode;        /* decode forwards run: max(n − 1, 0) */
    double load_s;           /* model load, seconds (llm_generate only; 0 from llm_gen_run) */
    double prefill_s;        /* prompt forward, seconds */
    double decode_s;         /* decode loop, seconds */
} llm_gen_result;

/* Runs cfg on a loaded model. Returns 0, -1 (a failure, err filled) or
 * LLM_GEN_EREQUEST (err filled). r is filled on success; free it with
 * llm_gen_result_free (also after a failure). */
int llm_gen_run(const llm_model *m, const llm_gen_cfg *cfg, llm_gen_result *r, kv_err *err);
/* llm_model_load(path) then llm_gen_run; r->load_s is the load time. */
int llm_generate(const char *path, const llm_gen_cfg *cfg, llm_gen_result *r, kv_err *err);
void llm_gen_result_free(llm_gen_result *r);

#endif
