/* llm_eval.h — a method's accuracy in the model's own output, its attention
 * inside the decode loop (`kvsim eval` parses flags and prints what this
 * computes):
 *
 *  - continuation: the prompt (S tokens of a real text) is processed once,
 *    densely; for every method × budget a session starts from a copy of
 *    that cache, runs the method's stage 1, then teacher-forces the next N
 *    tokens of the text through the method's decode steps: perplexity of
 *    those N tokens and the share of steps whose greedy (argmax) token
 *    equals dense attention's.
 *  - passkey: a 5-digit key hidden at depths 0–100 % of filler text at
 *    several contexts; each method must generate the key greedily after
 *    "The pass key is".
 *
 * It does not sample, batch or cache results between runs. */
#ifndef LLM_EVAL_H
#define LLM_EVAL_H

#include <stdint.h>
#include "kv_boot.h"
#include "llm.h"

#define LLM_EVAL_MAX_PK 16 /* passkey contexts, and depths */
#define LLM_EVAL_MAX_TEXTS 16 /* continuation texts */

/* One method × budget (or the dense reference). */
typedef struct {
    char method[32];
    int64_t budget;              /* t; 0 for the dense reference */
    rkv_params p;                /* resolved for the current prompt */
    double nll;                  /* continuation: summed negative log-likelihood (nats) */
    int64_t agree;               /* greedy tokens equal to the reference's */
    int64_t n;                   /* tokens scored */
    int pk_ok[LLM_EVAL_MAX_PK][LLM_EVAL_MAX_PK]; /* passkey successes per (context, depth) */
    /* (nc · nd · trials) each passkey trial's outcome, 1 when the key was
     * found, at [(c · nd + di) · trials + tr]; NULL: not kept */
    uint8_t *pk_out;
    /* per scored token, for the bootstrap (kv_boot.h); NULL: not kept */
    double *tok_nll;             /* (cap) -log p of each scored token, nats */
    double *tok_agree;           /* (cap) 1 when its greedy token equals the reference's, else 0 */
    int64_t cap;                 /* capacity of tok_nll and tok_agree */
    int ntext;                   /* texts scored so far */
    int64_t goff[LLM_EVAL_MAX_TEXTS + 1]; /* token index where each text's scores start; goff[ntext] = n */
} llm_eval_set;

/* ---- arithmetic (unit-tested by hand) ---- */
/* One teacher-forced step: adds -log softmax(logits)[target] to e->nll and
 * counts it (and records both per token while n < cap); the greedy token
 * (ties to the lower id) is written to *ref when e is the reference
 * (is_ref), else compared with it. */
void llm_eval_score(llm_eval_set *e, const float *logits, int V, int32_t target, int32_t *ref, int is_ref);
double llm_eval_perplexity(const llm_eval_set *e); /* exp(nll / n) */
double llm_eval_agreement(const llm_eval_set *e);  /* agree / n */

/* The key of one passkey trial, 10000 .. 99999, deterministic in its cell. */
int llm_eval_passkey_key(int64_t context, int64_t depth, int trial);
/* 1 when the generated text holds the key as five digits ("%05d"). */
int llm_eval_passkey_found(const char *generated, int key);
/* One (method, context) row over nd depths: the mean accuracy, and the
 * successes the method kept of the reference's, Σ min(method, full) / Σ full
 * (full_fails when the reference never succeeded: vs_full is then 0). */
typedef struct {
    double mean;
    double vs_full;
    int full_fails;
} llm_eval_pk_row;
void llm_eval_passkey_row(const llm_eval_set *e, const llm_eval_set *full, int c, int nd, int trials,
                          llm_eval_pk_row *row);

/* ---- runs over a model ---- */
/* Resolves e->p for a prompt of S tokens and N new ones. */
int llm_eval_resolve(llm_eval_set *e, const llm_model *m, int64_t S, int64_t N, rkv_dtype dt, kv_err *err);
/* Continuation over tok[0 .. S+N): the reference first, then every set
 * (resolved). Scores add to what the sets hold (zero them before the first
 * text); each call is one text (goff, ntext), up to LLM_EVAL_MAX_TEXTS. */
int llm_eval_continuation(const llm_model *m, const int32_t *tok, int64_t S, int64_t N, llm_eval_set *sets, int ns,
                          llm_eval_set *full, rkv_dtype dt, int threads, kv_err *err);
/* Perplexity by position: one dense pass over tok[0 .. n), nll[i] =
 * -log p(tok[i+1] | tok[0..i]) for i in [0, n-1) (nats). */
int llm_eval_positions(const llm_model *m, const int32_t *tok, int64_t n, double *nll, int threads, kv_err *err);

/* Interval of the perplexity ratio exp(mean(nll_e − nll_full)) (paired by
 * token) and of the agreement, by the grouped bootstrap over texts and
 * tokens (kv_boot.h); needs tok_nll kept. -1 when not. */
int llm_eval_ratio_ci(const llm_eval_set *e, const llm_eval_set *full, const kv_boot_cfg *b, double *lo, double *hi);
int llm_eval_agreement_ci(const llm_eval_set *e, const kv_boot_cfg *b, double *lo, double *hi);
/* Interval of one passkey row's success rate, the row's nd × trials
 * outcomes bootstrapped (one group). */
int llm_eval_passkey_ci(const llm_eval_set *e, int c, int nd, int trials, const kv_boot_cfg *b, double *lo, double *hi);

/* Interval of rate_a − rate_b in context c, paired prompt by prompt: both
 * methods saw the same nd × trials prompts, so the bootstrap draws prompts
 * (one group) and takes the mean of outcome_a − outcome_b over them. Needs
 * pk_out kept in both; -1 when not. */
int llm_eval_passkey_pair_ci(const llm_eval_set *a, const llm_eval_set *b, int c, int nd, int trials,
                             const kv_boot_cfg *bc, double *lo, double *hi);

/* Passkey over contexts × depths (percent) × trials; fills pk_ok, and
 * pk_out where it is kept. */
int llm_eval_passkey(const llm_model *m, const int64_t *ctxs, int nc, const int64_t *depths, int nd, int trials,
                     llm_eval_set *sets, int ns, llm_eval_set *full, rkv_dtype dt, int threads, kv_err *err);

#endif
