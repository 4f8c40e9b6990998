/* llm.h — a llama-family model from a GGUF file, run on the CPU: the
 * tokenizer (GPT-2 byte-level BPE from the file's vocabulary and merges, its
 * pre-tokenizer, special tokens, the chat template), and the forward pass
 * (RMSNorm, RoPE with the file's theta and scaling (llm_rope.h), GQA attention, SwiGLU MLP, tied or
 * separate output head).
 *
 * Weights are dequantised to f32 once at load; every matrix product goes
 * through GSL BLAS (OpenBLAS underneath, threaded). The KV cache is one
 * rkv_head per (layer, KV head) in the chosen KV dtype, so any refimpl
 * method can attend over it during decode: prompt processing is dense causal
 * attention (what every method of docs/algorithm.md assumes), then the method's
 * prefill (stage 1) runs with the last w prompt queries, then each decode
 * step attends through the method's step().
 *
 * Layout of Q and K: GGUF stores llama's q/k projections permuted for
 * llama.cpp's interleaved ("NORM") RoPE, rotating pairs (2i, 2i+1). This
 * code applies that interleaved rotation to the GGUF weights (which gives
 * the model's exact attention scores) and then stores K and Q in Hugging
 * Face's rotate-half order (dims i and i + d/2 paired), so the vectors the
 * methods see, and any KV dump, match what a PyTorch hook on the HF model
 * captures. Dot products are unchanged by that (shared) permutation.
 *
 * It deliberately implements no sampling beyond greedy and no batching. */
#ifndef LLM_H
#define LLM_H

#include <stddef.h>
#include <stdint.h>
#include "llm_gguf.h"
#include "llm_rope.h"
#include "kv_common.h"
#include "rkv.h"

/* ---------------------------------------------------------------- tokenizer */
typedef struct llm_tokenizer llm_tokenizer;

/* From tokenizer.ggml.* keys (model "gpt2"; pre-tokenizer "smollm",
 * "gpt2", "llama-bpe" families approximated for English text). */
int llm_tokenizer_load(const llm_gguf_file *g, llm_tokenizer **out, kv_err *err);
void llm_tokenizer_free(llm_tokenizer *t);
/* Tokenizes text (control tokens such as <|im_start|> written in the text
 * are recognised, as llama.cpp does with parse_special). Returns the count,
 * writing at most cap ids; -1 on error. */
int64_t llm_tokenize(const llm_tokenizer *t, const char *text, size_t len, int32_t *ids, int64_t cap);
/* The bytes of one token (byte-level decoded); *n receives the length. */
const char *llm_token_bytes(const llm_tokenizer *t, int32_t id, size_t *n);
/* Token text as stored in the vocabulary (for debugging). */
int32_t llm_token_eos(const llm_tokenizer *t);
int32_t llm_token_eot(const llm_tokenizer *t); /* <|im_end|> where present, else eos */
int32_t llm_vocab_size(const llm_tokenizer *t);
/* The chat template, filled for one user message (and optional system
 * message) with the generation prompt appended. ChatML templates are
 * recognised; the default system message is read from the template. Writes
 * a NUL-terminated string; returns its length or -1 (too small / unknown). */
int64_t llm_chat_format(const llm_tokenizer *t, const char *system, const char *user, char *out, size_t cap);

/* ---------------------------------------------------------------- model */
typedef struct {
    int n_layer;       /* L */
    int dim;           /* hidden size */
    int n_head;        /* Hq */
    int n_kv_head;     /* Hkv */
    int head_dim;      /* d */
    int ff;            /* intermediate size */
    int vocab;
    int ctx_train;     /* llama.context_length */
    float rope_theta;
    llm_rope rope;     /* RoPE scaling: the file's rope.scaling.* keys, then any override */
    float rms_eps;
    int tied;          /* output head = token embeddings */
} llm_config;

typedef struct {
    float *attn_norm;  /* (dim) */
    float *wq;         /* (Hq·d, dim) */
    float *wk, *wv;    /* (Hkv·d, dim) */
    float *wo;         /* (dim, Hq·d) */
    float *ffn_norm;   /* (dim) */
    float *w_gate;     /* (ff, dim) */
    float *w_up;       /* (ff, dim) */
    float *w_down;     /* (dim, ff) */
} llm_layer;

typedef struct {
    llm_config c;
    char path[512];
    float *tok_embd;   /* (vocab, dim) */
    float *out_norm;   /* (dim) */
    float *output;     /* (vocab, dim); == tok_embd when tied */
    llm_layer *layers; /* (L) */
    float *arena;      /* all weights, one allocation */
    llm_tokenizer *tok;
    llm_gguf_file *g;
} llm_model;

int llm_model_load(const char *path, llm_model **out, kv_err *err);
/* The checks llm_model_load applies to llama.rope.freq_base (finite, in
 * (1, 1e30]) and llama.attention.layer_norm_rms_epsilon (finite, in (0, 1]);
 * -1 with one line naming the file, key, value and range. */
int llm_check_float_meta(const char *path, double rope_theta, double rms_eps, kv_err *err);
/* Applies command-line RoPE scaling overrides on top of the file's (checked
 * by llm_rope_check); sessions made afterwards use them. */
int llm_model_set_rope(llm_model *m, const llm_rope_override *ov, kv_err *err);
/* The longest context the model is meant for: context_length, or
 * original_context_length × factor under RoPE scaling, whichever is larger. */
int64_t llm_model_max_context(const llm_model *m);
void llm_model_free(llm_model *m);

/* ---------------------------------------------------------------- session */
/* One sequence: the KV cache as rkv_heads, a method's per-head state, and
 * the scratch of the forward pass, all sized once for max_tokens. */
typedef struct llm_session llm_session;

typedef struct {
    int64_t max_tokens;     /* cache capacity (prompt + generated) */
    rkv_dtype kv_dtype;     /* storage of K and V (bf16) */
    const rkv_params *method; /* NULL: dense attention throughout */
    int threads;            /* BLAS threads (0: number of CPUs) */
    int64_t keep_queries;   /* keep at least this many last queries (a dense session that seeds methods) */
    /* Called after each layer's K/V/Q of a batch are computed (positions
     * pos0 .. pos0+n-1): K, V (n, Hkv·d) and Q (n, Hq·d), post-RoPE in HF
     * rotate-half order. For KV dumps; NULL when unused. */
    int (*on_qkv)(void *ctx, int layer, int64_t pos0, int64_t n, const float *Q, const float *K, const float *V);
    void *ctx;
} llm_session_cfg;

int llm_session_new(const llm_model *m, const llm_session_cfg *cfg, llm_session **out, kv_err *err);
void llm_session_free(llm_session *s);
/* Copies src's KV cache and prompt window queries into dst (same model and
 * KV dtype, dst at least as large), so one dense prompt pass can seed
 * several methods; dst's method prefill (stage 1) runs at its first decode. */
int llm_session_copy(llm_session *dst, const llm_session *src, kv_err *err);

/* Processes n prompt tokens with dense causal attention (appending to the
 * cache). logits: (n, vocab) when all != 0, else (vocab) of the last token;
 * NULL: none. When the session has a method and `finish` is set, the
 * method's prefill (stage 1) runs at the end with the last w queries. */
int llm_prefill(llm_session *s, const int32_t *ids, int64_t n, float *logits, int all, int finish, kv_err *err);
/* One decode step for token id at the next position, attention through the
 * method's step() (or dense). logits: (vocab). */
int llm_decode(llm_session *s, int32_t id, float *logits, kv_err *err);

/* Teacher forcing: n decode steps for the known tokens ids[0..n), each
 * attending through the method over the cache up to its own position,
 * exactly as n llm_decode calls would (same method calls in the same order
 * per (layer, KV head)); the projections and MLP run as one batch of up to
 * 128 rows, so it is several times faster. logits: (n, vocab) or NULL. */
int llm_decode_forced(llm_session *s, const int32_t *ids, int64_t n, float *logits, kv_err *err);

/* Index of the largest logit (lowest index on ties). */
int32_t llm_argmax(const float *logits, int n);
/* log softmax(logits)[id] in double. */
double llm_logprob(const float *logits, int n, int32_t id);

#endif
