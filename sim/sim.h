/* sim.h — the cost model: a decode step as a sequence of kernels per layer,
 * each priced as max(bytes / (bandwidth × efficiency(run length)),
 * FLOPs / (peak × compute efficiency)) + launch cost, summed step by step as
 * the context grows; prefill (TTFT) with stage-1 scoring; the memory
 * footprint per tensor-parallel rank with its peak over prefill and decode;
 * and the capacity planner (largest batch, longest context, GPUs needed).
 *
 * Byte counts come from an access source (sim_access_source): the method's
 * analytic counts (refimpl's traffic(), sim_access_analytic) or a trace
 * (per-step, per-layer bytes and contiguous runs by access category). The
 * sim never looks inside either.
 *
 * Pipeline parallelism (sim_config.pp = P): each stage holds ⌈L/P⌉ layers
 * (the first also the embedding, the last the LM head: a rank's memory is the
 * heavier end stage's); a decode round of the batch is the whole model's step
 * at the micro-batch size b = ⌈B/m⌉ plus (P − 1) activation hops (link latency
 * + b·h·2 bytes over the link), with m = min(P, B) micro-batches in flight
 * (an engine) or m = 1 (gpt-fast): tokens/s = B / round; with m < P the
 * pipeline idles (the bubble) — a round costs what a full one does.
 *
 * It deliberately does not model: queueing or continuous batching (every
 * sequence of a batch is at the same step), L2 hits, or kernel overlap. "Does not fit" is a result (sim_memory.fits), never
 * an error. */
#ifndef SIM_H
#define SIM_H

#include <stdint.h>
#include "eng.h"
#include "hw.h"
#include "kv_common.h"
#include "mdl.h"
#include "rkv.h"

/* ---- access categories (docs/design.md), plus `other` (activations, mask rows) */
enum {
    SIM_CAT_WEIGHTS, SIM_CAT_KV_EXACT, SIM_CAT_KV_FULL, SIM_CAT_AUX, SIM_CAT_KV_WRITE, SIM_CAT_SCORES,
    SIM_CAT_OTHER, SIM_CAT_N
};
extern const char *const sim_cat_names[SIM_CAT_N];

/* ---- kernels of a decode step */
enum {
    SIM_K_ELEMENTWISE, /* RMSNorms, SiLU·mul, residual adds, embedding row */
    SIM_K_QKV,         /* QKV projection GEMV */
    SIM_K_KV_APPEND,   /* RoPE, K/V append, page metadata update */
    SIM_K_ATTN_DENSE,  /* dense scan of the cache (full; exact-topk's key scan) */
    SIM_K_AUX_SCORE,   /* estimate from page min/max or transposed K, scores written */
    SIM_K_TOPK,        /* top-k over the scores */
    SIM_K_ATTN_SPARSE, /* attention over selected / retained rows (a gather) */
    SIM_K_O_PROJ,      /* output projection GEMV */
    SIM_K_MLP,         /* gate+up and down GEMVs */
    SIM_K_ALLREDUCE,   /* tensor-parallel all-reduce over the interconnect */
    SIM_K_LM_HEAD,     /* final norm, LM head GEMV, sampling: once per step */
    SIM_K_N
};
extern const char *const sim_kernel_names[SIM_K_N];

/* ---- access sources: where byte counts come from ----------------------- */
/* One layer of one decode step of ONE sequence, summed over all its KV heads
 * (the whole model, before any tensor-parallel split). */
typedef struct {
    double bytes[SIM_CAT_N];  /* kv_exact, kv_full, aux, kv_write, scores (weights/other: sim's own) */
    double runs[SIM_CAT_N];   /* contiguous runs those bytes were read in; 0: one long stream */
    double flops[SIM_CAT_N];  /* arithmetic on what was read (2 per multiply-add, all query heads) */
} sim_layer_access;

/* A source answers per (step, layer). Layers >= uniform_from all give the
 * same answer, so the sim asks once for them and multiplies (analytic
 * counts: skip_layers; a trace: num_hidden_layers, i.e. none). */
typedef struct {
    const char *name;                 /* "analytic", "trace" */
    int64_t steps;                    /* decode steps it can answer */
    int uniform_from;
    int (*layer_step)(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err);
    void *ctx;
} sim_access_source;

/* The analytic source: refimpl's traffic() of p (× Hkv), dense for layers
 * below p->skip_layers, with contiguous runs from the method's layout
 * (sim_exact_run_bytes / sim_aux_run_bytes). ctx must outlive src. */
typedef struct {
    rkv_params p, full;
    int num_kv_heads;
} sim_analytic_ctx;
void sim_access_analytic(sim_access_source *src, sim_analytic_ctx *ctx, const mdl_model *m, const rkv_params *p);

/* Adds scale × one (layer, KV head) record of traffic t to o: bytes, runs
 * (exact_runs >= 0: counted K and V runs of the exact reads, e.g. from a
 * trace; < 0: the method's layout) and FLOPs. C: tokens cached. */
void sim_access_add(const rkv_params *p, const rkv_traffic *t, int64_t C, double exact_runs, double scale,
                    sim_layer_access *o);

/* A trace (traces/FORMAT.md) as an access source: per (step, layer) the
 * recorded bytes summed over KV heads, averaged over the trace's sequences,
 * with the exact reads' contiguous runs counted in slot space (stage-1
 * compaction included); layers the trace did not record get the mean of
 * the recorded ones. */
typedef struct sim_trace sim_trace;
int sim_trace_open(const char *path, sim_trace **t, kv_err *err);
void sim_trace_close(sim_trace *t);                       /* accepts NULL */
const sim_access_source *sim_trace_source(sim_trace *t);
const rkv_params *sim_trace_params(const sim_trace *t);   /* as recorded */
const mdl_model *sim_trace_model(const sim_trace *t);
double sim_trace_file_bytes(const sim_trace *t);

/* Contiguous bytes per run when the method reads its selected K/V rows (head-
 * major layout: a token row of one head is d·b bytes, a whole page p·d·b) and
 * its auxiliary data (dims-major min/max or transposed K: one run per chosen
 * dimension). 0 means "one long stream". */
double sim_exact_run_bytes(const rkv_params *p, int64_t cache_tokens);
double sim_aux_run_bytes(const rkv_params *p, int64_t cache_tokens);
/* The last decode step u >= step over which the analytic access record of a
 * method layer (sim_access_analytic, layers >= skip_layers) is the same as at
 * `step`: traffic() (the method's traffic_until; without one, step) and both
 * run lengths above unchanged. */
int64_t sim_access_until(const rkv_params *p, int64_t step);

/* ---- weight data types ------------------------------------------------- */
/* How the linear layers' weights are stored (embeddings and norms stay
 * bf16): bits per weight including quantisation scales and zeros, and the
 * type their products run in (which peak applies). */
typedef struct {
    char name[24];          /* "bf16", "fp8", "int8", "int4-g128", "awq-g128", "q4_k", ... */
    double bits;            /* per weight, scales and zeros included */
    hw_dtype compute;       /* HW_DT_BF16 for weight-only types (dequantised in the kernel) */
    double dequant_ops;     /* CUDA-core instructions per weight to turn it into the compute type before
                               its product (unpack, convert, scale/zero); 0 when the tensor cores take it as
                               stored (bf16, fp8, int8-w8a8, fp4). Priced at fp32_flops / 2 lane-ops/s,
                               serialised with the weight stream (step.c) */
} sim_weight_dtype;
/* bf16 | fp16 | fp8 (W8A8, per-channel fp32 scale) | int8 (weight-only, per-channel bf16 scale) |
 * int8-w8a8 | int4-gN (16-bit scale + 16-bit zero per N weights: gpt-fast) | awq-gN / gptq-gN
 * (fp16 scale + 4-bit zero per N) | nvfp4 (fp8 scale per 16) | mxfp4 (8-bit scale per 32) |
 * GGUF q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k (ggml block sizes). k: the
 * reduction length of a per-channel scale (hidden size). 0 ok, -1 unknown (err says what is). */
int sim_weight_dtype_parse(const char *s, double k, sim_weight_dtype *w, kv_err *err);
/* The list above, for help text. */
extern const char sim_weight_dtype_help[];

/* ---- configuration ----------------------------------------------------- */
typedef enum {
    SIM_HARNESS_ENGINE = 0,   /* a well-built engine: fused kernels, no mask, peak over prefill+decode */
    SIM_HARNESS_GPT_FAST = 1  /* the paper's gpt-fast: S×S bool mask, SDPA-math dense decode, unfused
                                 sparse path, bf16 weights, peak measured after prefill */
} sim_harness;
int sim_harness_parse(const char *s, sim_harness *h); /* "engine" | "gpt-fast"; 0 ok, -1 unknown */
const char *sim_harness_name(sim_harness h);

typedef struct {
    const mdl_model *model;
    const hw_model *hw;
    rkv_params params;                 /* resolved method (context, new tokens, budget) */
    int64_t batch;                     /* B sequences, all at the same step */
    int tp;                            /* tensor-parallel ranks N */
    int pp;                            /* pipeline stages P (0 or 1: none); P × N GPUs in all */
    sim_harness harness;
    int cuda_graphs;                   /* 1: launch_graph_s per kernel; 0: launch_s */
    double weight_bytes_per_param;     /* linear layers, scales included: weight_dtype.bits / 8 (2: bf16) */
    hw_dtype weight_compute;           /* the peak the weight products run at (bf16 unless W8A8/FP8/FP4) */
    double weight_dequant_ops;         /* sim_weight_dtype.dequant_ops of the linear layers (0: bf16) */
    int kv_reads_per_query_head;       /* 1: decode attention reads a KV head's K/V once per query head
                                          (G-fold under GQA: eng ENG_HARNESS_PER_HEAD); 0: once per KV head */
    const eng_engine *engine;          /* serving engine's memory policy; NULL: the generic reserve */
    double mem_fraction;               /* engine memory fraction; <= 0: the engine's default */
    double act_bytes;                  /* activation element bytes: 2 */
    int64_t prefill_chunk;             /* tokens per prefill chunk; 0: harness default */
    double reserve_bytes;              /* runtime reserve; < 0: default (sim_config_defaults) */
    const sim_access_source *access;   /* NULL: the analytic counts of params */
    int64_t steps;                     /* decode steps timed; 0: max(1, new - 1) */
} sim_config;

/* B = 1, N = 1, engine harness, no engine policy, CUDA graphs on, bf16 weights and activations. */
void sim_config_defaults(sim_config *c, const mdl_model *m, const hw_model *h, const rkv_params *p);
/* The linear layers' weight type: bytes per weight, compute type, dequantisation work. */
void sim_config_set_weight_dtype(sim_config *c, const sim_weight_dtype *w);
/* Applies an engine (NULL: none): its memory policy, harness and prefill chunk. */
void sim_config_set_engine(sim_config *c, const eng_engine *e, double mem_fraction);
/* 1 when an untied LM head is stored and multiplied in the linear layers' weight type: the engine's
 * lm_head_quantized, or without an engine the harness's (gpt-fast quantises it; well-built engines'
 * quantisation recipes leave it bf16); 0: bf16, read and multiplied as bf16. */
int sim_lm_head_quantized(const sim_config *c);

/* ---- results ----------------------------------------------------------- */
typedef struct {
    double weights_bytes;       /* per rank */
    double kv_bytes;            /* K+V retained at the end of generation, all sequences */
    double aux_bytes;           /* page min/max, transposed K */
    double workspace_bytes;     /* activations and workspace at the peak */
    double reserve_bytes;       /* runtime reserve (allocator, NCCL); 0 for gpt-fast */
    double mask_bytes;          /* gpt-fast's bool causal mask (0 otherwise) */
    double prefill_peak_bytes;  /* weights + KV while prefilling (one layer full) + workspace */
    double decode_peak_bytes;
    double peak_bytes;          /* engine: max of both + reserve; gpt-fast: decode peak, as it measures */
    double capacity_bytes;      /* usable_capacity_bytes; with an engine: weights + reserve + its KV pool */
    int fits;                   /* max(prefill, decode) peak + reserve <= capacity */
    /* with an engine (sim_config.engine, budget other than none): its pool, as it sizes it */
    double kv_pool_bytes;       /* whole pages the engine allocates for KV */
    int64_t kv_cache_tokens;    /* "GPU KV cache size: N tokens" */
    double max_concurrency;     /* "Maximum concurrency for S+new tokens per request: X" */
} sim_memory;

typedef struct {
    int64_t steps;              /* decode steps timed: max(1, new - 1) (prefill gives the first token) */
    double decode_s;            /* sum over the steps */
    double step_time_s;         /* decode_s / steps */
    double first_step_s, last_step_s;
    double tokens_per_s;        /* batch · steps / decode_s (all ranks together serve one batch) */
    double ttft_s;              /* prefill incl. stage 1 */
    double prefill_s, stage1_s;
    double kernel_s[SIM_K_N];   /* per step (mean), summed over layers */
    double kernel_launches[SIM_K_N];
    double cat_bytes[SIM_CAT_N];/* per step (mean), per rank, all layers, whole batch */
    double flops_per_step;      /* per rank */
    double kernel_bytes[SIM_K_N];/* per step (mean), per rank: bytes each kernel moved (the roofline's x) */
    double kernel_flops[SIM_K_N];/* per step (mean), per rank: FLOPs of each kernel */
    sim_memory mem;
} sim_result;

/* Memory only (cheap; what the planner iterates). */
int sim_memory_compute(const sim_config *c, sim_memory *m, kv_err *err);
/* The breakdown as one JSON object (the key already written): {weights_bytes,
 * kv_bytes, aux_bytes, workspace_bytes, reserve_bytes, mask_bytes,
 * prefill_peak_bytes, decode_peak_bytes, peak_bytes, capacity_bytes, fits,
 * kv_pool_bytes, kv_cache_tokens, max_concurrency}. */
void sim_memory_json(kv_json *j, const sim_memory *m);
/* Time and memory. */
int sim_predict(const sim_config *c, sim_result *r, kv_err *err);

/* Per-rank shapes (TP splits query heads, MLP columns and vocab; KV heads
 * are split, replicated once N exceeds Hkv). Errors when Hq % N != 0. */
typedef struct {
    int hq, hkv;                 /* heads on one rank */
    double layer_weight_bytes;   /* one layer's weights on one rank */
    double qkv_bytes, o_bytes, mlp_bytes, norm_bytes;
    double lm_head_bytes, embed_bytes;
    int vocab_ranks;             /* ranks the vocabulary (embedding, LM head) is split over: the TP degree, or 1
                                  * where the harness replicates it on every rank (gpt-fast) */
    double weights_bytes;        /* everything resident on one rank (the heaviest pipeline stage) */
    int stage_layers;            /* layers on one pipeline stage: ⌈L / P⌉ (L without pipeline) */
} sim_rank_shape;
int sim_rank_shape_compute(const sim_config *c, sim_rank_shape *s, kv_err *err);
/* sim_memory_compute for an already computed shape. */
void sim_memory_of_shape(const sim_config *c, const sim_rank_shape *s, sim_memory *m);

/* ---- pieces for a serving simulator (serve/) ---------------------------
 * The same kernels sim_predict sums, priced one engine step at a time.
 * A kernel use: one kernel's bytes (read at contiguous run `run`, 0: stream),
 * FLOPs and launches; its time: sim_kernel_batch_s. */
typedef struct {
    int kernel;        /* SIM_K_* */
    double bytes;      /* per rank */
    double run;        /* contiguous bytes per run; 0: one long stream */
    double flops;      /* per rank */
    double launches;
} sim_kernel_use;
#define SIM_LAYER_USES 8
/* The attention-side kernels of one decode layer (KV append, the method's
 * attention) for c->batch sequences each reading a; returns how many. */
int sim_layer_uses(const sim_config *c, const sim_rank_shape *s, const sim_layer_access *a, sim_kernel_use *u);
/* The bandwidth efficiency at a contiguous run length (0: a stream). */
double sim_kernel_eff(const sim_config *c, double run);
/* One attention-side kernel over a batch, as step.c's kern() prices it:
 * bytes_per_eff = Σ bytes / sim_kernel_eff(run) over the sequences' uses,
 * bytes and flops their sums (the transfer efficiency is the whole
 * kernel's): max(memory, compute) + launches. 0 when it moves nothing. */
double sim_kernel_batch_s(const sim_config *c, int k, double bytes_per_eff, double bytes, double flops,
                          double launches);
/* 1 when the decode attention is a per-query-head CUDA-core kernel priced by its conversions
 * (kv_reads_per_query_head under the engine harness on a part with hw_cvt_rate): one DRAM read
 * of each KV head, FLOPs at sim_kernel_flops_rate; else 0 (without the rate: G DRAM reads). */
int sim_per_head_cuda_core(const sim_config *c);
/* FLOP/s (efficiency included) a decode kernel k's FLOPs run at: bf16 peak × compute_efficiency,
 * except the per-head CUDA-core attention: min(fp32_flops, 2 × hw_cvt_rate). */
double sim_kernel_flops_rate(const sim_config *c, int k);
double sim_launch_s(const sim_config *c);                          /* seconds per launch */
/* A decode step's part that does not depend on the context (GEMVs,
 * elementwise, all-reduces, LM head) for c->batch sequences. */
double sim_decode_fixed_s(const sim_config *c, const sim_rank_shape *s);
/* One prefill-style forward pass, all layers: the GEMMs, elementwise kernels
 * and all-reduces of `tokens` tokens, and the causal attention of each chunk
 * (chunk_n[i] new tokens after chunk_start[i] cached ones, one sequence).
 * sim_predict's TTFT is the sum of these per chunk + sim_lm_head_s + sim_stage1_s. */
double sim_prefill_pass_s(const sim_config *c, const sim_rank_shape *s, int64_t tokens, const int64_t *chunk_start,
                          const int64_t *chunk_n, int nchunks);
double sim_lm_head_s(const sim_config *c, const sim_rank_shape *s, int64_t nseq); /* prefill's LM head for nseq */
double sim_stage1_s(const sim_config *c, const sim_rank_shape *s);                /* stage 1, c->batch sequences */

/* ---- planner ----------------------------------------------------------- */
typedef struct {
    const mdl_model *model;
    const hw_model *hw;
    const char *method;
    rkv_request rq;              /* context, max_new, budget and overrides */
    int tp;
    int pp;                      /* pipeline stages (0 or 1: none); gpus_for_target counts tp × pp */
    sim_harness harness;
    int cuda_graphs;
    double tpot_slo_s;           /* 0: none */
    double target_tokens_per_s;  /* 0: none */
    int64_t max_batch_limit;     /* search cap (default 4096) */
    double weight_bytes_per_param; /* 0: 2 (bf16) */
    hw_dtype weight_compute;
    double weight_dequant_ops;     /* sim_weight_dtype.dequant_ops (0: none) */
    const eng_engine *engine;    /* NULL: generic reserve */
    double mem_fraction;         /* <= 0: the engine's default */
} sim_plan_in;

typedef struct {
    int fits;                    /* batch 1 fits */
    int64_t max_batch;           /* largest batch that fits (0: none) */
    double tokens_per_s, tpot_s; /* at max_batch */
    int64_t slo_batch;           /* largest batch meeting the SLO (0: none / no SLO) */
    double slo_tokens_per_s, slo_tpot_s;
    int64_t max_context_at_batch1;
    int64_t gpus_for_target;     /* 0: no target or unreachable */
    sim_memory mem;              /* at max_batch (at batch 1 when nothing fits) */
} sim_plan_row;

/* Largest batch in [1, limit] whose memory fits (0 when batch 1 does not). */
int sim_max_batch(const sim_config *c, int64_t limit, int64_t *out, kv_err *err);
int sim_plan(const sim_plan_in *in, sim_plan_row *row, kv_err *err);

#endif
