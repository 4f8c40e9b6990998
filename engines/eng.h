/* eng.h — serving engines as data: one YAML file per engine under engines/
 * (vllm, trtllm, sglang, gpt-fast), each with its memory policy — the
 * fraction of device memory it lets itself use and what that fraction is a
 * fraction of, the KV page size, the activation reserve it profiles, its
 * runtime (non-torch) memory and CUDA-graph pool — and a `source:` for every
 * figure. Strict loader: file:line:col on any unknown, missing or ill-typed
 * key.
 *
 * eng_kv_pool() sizes the KV pool the way the engine does at start-up, from
 * the device's memory as CUDA reports it and the model's per-rank weights and
 * KV bytes per token, and gives the two numbers vLLM prints:
 * "GPU KV cache size: N tokens" and "Maximum concurrency for L tokens per
 * request: X". It knows nothing about models, methods or GPUs beyond the
 * numbers passed in (sim/ combines them); the public API of the part is this
 * header (prefix eng_). */
#ifndef ENG_H
#define ENG_H

#include <stdint.h>
#include "kv_common.h"

/* What the engine's memory fraction is a fraction of. */
typedef enum {
    ENG_BUDGET_TOTAL = 0, /* vLLM gpu_memory_utilization: fraction × device total covers weights,
                             activation peak, non-torch memory and KV */
    ENG_BUDGET_FREE = 1,  /* TensorRT-LLM free_gpu_memory_fraction: fraction × memory still free
                             after the context, weights, activations and runtime buffers */
    ENG_BUDGET_STATIC = 2,/* SGLang mem_fraction_static: fraction × device total covers weights + KV;
                             the rest (1 − f) is left for activations and CUDA graphs */
    ENG_BUDGET_NONE = 3   /* gpt-fast: no pool; a static max_seq cache per sequence */
} eng_budget;

typedef enum {
    ENG_HARNESS_FUSED = 0,   /* fused kernels, dense decode reads K/V once */
    ENG_HARNESS_GPT_FAST = 1,/* the RocketKV paper's harness: S×S mask, SDPA-math decode */
    ENG_HARNESS_PER_HEAD = 2 /* fused kernels, but decode attention runs one thread block per QUERY head, each
                                reading its KV head's K/V: G-fold K/V reads under GQA (TensorRT-LLM's masked
                                MHA: thread block hi reads KV head hi / qhead_per_kv), except for the group
                                sizes in gqa_kernel_groups */
} eng_harness;

/* How the engine steps under load (`kvsim serve`), the optional `serving:`
 * block of an engine file; absent: all zero (the step is the GPU's time,
 * prefill chunks ride with decodes, scheduling every step). */
typedef struct {
    double host_step_s;           /* CPU time per scheduler pass the GPU waits for (not overlapped), s */
    double host_seq_s;            /* the same per sequence in the step (output processing, detokenisation), s */
    int prefill_alone;            /* 1: a step that prefills carries no decodes; prefills go first */
    int64_t scheduler_steps;      /* decode steps per scheduler pass (vLLM --num-scheduler-steps); >= 1 */
    int64_t max_running;          /* running requests at most; 0: sampler_seqs (vLLM max_num_seqs), else 256 */
    double admit_reserve;         /* > 0: admission also reserves the new request's whole output and this
                                     fraction of every running request's remaining output (SGLang's
                                     new_token_ratio); 0: the prompt's blocks only (vLLM) */
} eng_serving;

#define ENG_MAX_GQA_GROUPS 8 /* entries gqa_kernel_groups may list */

typedef struct {
    char name[64];                /* file stem: "vllm" */
    char path[512];
    char display_name[128];       /* "vLLM (V1 engine)" */
    eng_budget budget;
    eng_harness harness;
    double mem_fraction;          /* default fraction, (0, 1]; 0 for ENG_BUDGET_NONE */
    int64_t block_tokens;         /* KV page size, tokens (1: token granular) */
    int64_t activation_tokens;    /* tokens of the profiling forward pass (max_num_batched_tokens) */
    int64_t sampler_seqs;         /* sequences of the sampler's dummy run (max_num_seqs); 0: none */
    double sampler_copies;        /* fp32 vocab-wide buffers per sequence in that run (logits, probs, ...) */
    double runtime_bytes;         /* non-torch memory charged to the budget at TP 1, bytes */
    double runtime_tp_bytes;      /* added per rank when TP > 1 (NCCL buffers), bytes */
    double cuda_graph_bytes;      /* graph pool, bytes; taken outside the KV budget */
    double prefill_chunk_tokens;  /* tokens per prefill chunk the engine schedules (0: whole prompt) */
    int cuda_graphs;              /* 1: replays captured CUDA graphs (hw launch_graph_s per kernel); 0: plain
                                     launches (launch_s). Optional key, default 1 */
    int64_t gqa_kernel_groups[ENG_MAX_GQA_GROUPS]; /* query heads per KV head (G) that a per-head engine's
                                     GQA-aware decode kernel takes (one read per KV head); other G run the
                                     per-query-head kernel. Optional key, default none */
    int n_gqa_kernel_groups;      /* entries of gqa_kernel_groups, 0..ENG_MAX_GQA_GROUPS */
    int lm_head_quantized;        /* 1: under a quantised --weight-dtype the (untied) LM head is stored and
                                     multiplied in that type like the linear layers (gpt-fast's quantize.py
                                     replaces every nn.Linear, `output` included); 0: it stays bf16 (vLLM's
                                     quantisation configs give ParallelLMHead no quantised method, ModelOpt /
                                     TensorRT-LLM checkpoints list lm_head in exclude_modules). Optional key,
                                     default 1 for harness gpt-fast, else 0 */
    eng_serving serving;          /* step loop under load (serve/) */
} eng_engine;

/* Loads engines/NAME.yaml (or a path). 0, or -1 with err = "file:line:col: ...". */
int eng_load(const char *name_or_path, eng_engine *e, kv_err *err);
/* The bundled names, NULL-terminated. */
const char *const *eng_names(void);
const char *eng_budget_name(eng_budget b);
/* 1 when the engine's decode attention reads a KV head's K/V once per query head for a model
 * of G query heads per KV head: harness per-head and G not among gqa_kernel_groups; else 0. */
int eng_reads_kv_per_query_head(const eng_engine *e, int64_t G);

/* What the pool is sized from; every figure per tensor-parallel rank. */
typedef struct {
    double device_total_bytes;    /* cudaMemGetInfo total: what the device reports (binary, e.g. 79.15 GiB) */
    double context_bytes;         /* CUDA context + libraries, taken before the engine measures anything */
    double weights_bytes;         /* resident weights incl. quantisation scales */
    double kv_bytes_per_token;    /* K + V of one token, all layers on this rank */
    double act_bytes_per_token;   /* live activation bytes of one token at the widest point of a layer */
    double vocab;                 /* vocabulary entries (full, the sampler gathers logits) */
    int tp;                       /* tensor-parallel ranks */
} eng_pool_in;

typedef struct {
    double fraction;              /* the fraction applied */
    double budget_bytes;          /* what the fraction grants (its meaning: eng_budget) */
    double activation_bytes;      /* profiled activation peak */
    double runtime_bytes;         /* non-torch memory */
    double kv_pool_bytes;         /* blocks × block bytes actually allocated; 0 when nothing is left */
    int64_t kv_blocks;
    int64_t kv_tokens;            /* "GPU KV cache size: N tokens" */
    double max_concurrency;       /* "Maximum concurrency for L tokens per request: X" */
    double used_bytes;            /* context + weights + activations + runtime + pool + graphs: device use */
} eng_pool;

/* Sizes the KV pool. fraction <= 0: the engine's default. max_model_len: the
 * request length max_concurrency is quoted for (> 0). ENG_BUDGET_NONE gives
 * every byte the device has left after the context and weights as the pool
 * (gpt-fast allocates per sequence; max_concurrency is then that pool over
 * one max_model_len sequence). Errors only on arguments out of range. */
int eng_kv_pool(const eng_engine *e, double fraction, const eng_pool_in *in, int64_t max_model_len, eng_pool *out,
                kv_err *err);

/* Bytes one sequence of `tokens` tokens takes in the pool: whole pages. */
double eng_seq_pool_bytes(const eng_engine *e, double kv_bytes_per_token, int64_t tokens);

#endif
