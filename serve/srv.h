/* srv.h — `kvsim serve`: a discrete-event simulation of one serving instance
 * (one tensor-parallel group) under a stream of requests, every engine step
 * priced with sim/'s step model (sim.h: the same kernels, hardware models and
 * methods `kvsim predict` uses).
 *
 * Traffic (traffic.c): Poisson or gamma arrivals at a rate, or a replayed
 * request log; prompt and output lengths fixed, uniform, lognormal or drawn
 * from an empirical CSV; GSL's MT19937 seeded, so the same seed gives the same
 * requests.
 *
 * Scheduler (serve.c), as vLLM's V1 scheduler and SGLang do it: continuous
 * batching; each step first gives every running sequence its tokens (one per
 * decoding sequence, a chunk of the rest of its prompt otherwise) in admission
 * order, then admits waiting requests first come first served while the
 * step's token budget (max_batched_tokens), max_num_seqs and the KV pool
 * allow, chunking the last prompt to the budget. When a running sequence
 * needs a KV block and the pool is empty, the most recently admitted running
 * sequence is preempted by recompute: its blocks are freed and it goes back
 * to the front of the queue, to prefill its prompt and the tokens it had
 * generated again (vLLM's default). No admission in a step that preempted.
 *
 * KV pool (one rank's): blocks of block_tokens tokens of full K/V across all
 * layers. A sequence holds full K/V for every token it has until its prefill
 * ends (stage 1 needs the whole prompt); then the method's compressed cache:
 * on the method's layers C(step) tokens (rkv_cache_tokens) at the method's
 * stored bytes per token (K/V plus aux, refimpl's storage() / capacity), on
 * layers below skip_layers the full K/V; rounded up to whole blocks.
 *
 * Pricing (price.c), per engine step, per rank:
 *  - decode only: sim_decode_fixed_s(batch = decoding sequences) + the
 *    attention side of every layer, each kernel max(Σ memory time, Σ compute
 *    time) over the batch + its launches (one batched kernel per layer);
 *  - with prefill tokens: one prefill pass (sim_prefill_pass_s) over all
 *    tokens of the step (decode tokens ride in the GEMMs) with each chunk's
 *    causal attention, the decode attention as above, the LM head for the
 *    sequences that sample, and stage 1 for each prompt that ends;
 *  so one request alone reproduces `kvsim predict`'s TTFT (prefill chunked at
 *  the token budget) and its per-step decode times exactly.
 * The dense attention (full, and the layers below skip_layers) is affine in
 * the context: it is priced from Σ context over the batch; other methods'
 * layers are priced per sequence: a price stands through sim_access_until
 * (the method's traffic_until and the run lengths, checked step by step in
 * tests/test_serve.c), then is recomputed only if its key changed — exact:
 * the same bytes as pricing every sequence at every step.
 *
 * The engine's step loop (engines/ `serving:`, copied here by the CLI): each
 * scheduler pass adds host_step_s + host_seq_s × (sequences in its step) of
 * CPU time the GPU waits for (scheduling, input preparation, output
 * processing and detokenisation not overlapped with the GPU); with
 * prefill_alone a pass that can prefill (a running prompt's next chunk, or an
 * admission) runs a prefill-only step and the decodes wait (SGLang without
 * mixed chunks, vLLM V0 without chunked prefill); with scheduler_steps n a
 * decode pass runs n decode steps before the scheduler looks at the queue
 * again (vLLM multi-step), its host time paid once; with admit_reserve r > 0 a
 * request is admitted only when the free blocks also hold its whole output
 * and r × every running request's remaining output (SGLang's new_token_ratio:
 * admission that rarely has to preempt).
 *
 * Speed (lockstep.c): with max_batched_tokens >= max_num_seqs every
 * decoding sequence decodes in every step that decodes, so what a step's
 * price needs of them is kept as running sums (their number, Σ context, Σ
 * method-layer prices in exact fixed point: the same bits in any order) and
 * a sequence is touched only at its events (first decode, a KV block
 * boundary, a price that stops standing, its last token, preemption), kept
 * in timing wheels keyed by step; a saturated stage-2 cache's page
 * crossings are written ahead into a ring of per-step differences. The
 * walk (every sequence every step) remains for smaller token budgets and
 * as srv_config.reference. Where the lockstep runs, the batch's
 * method-layer sums are exact sums rounded once (srv_cost_acc: the walk sums
 * the same way there, so the reference agrees bit for bit), which may
 * differ in the last bit from adding the doubles in schedule order; the
 * walk alone (a token budget below max_num_seqs) still adds them in
 * schedule order.
 *
 * Preemption by swap (srv_config.preempt_swap; vLLM V0's --preemption-mode
 * swap): the victim's KV blocks are copied to a host swap space of
 * swap_bytes per rank (floor(swap_bytes / block bytes) blocks, as vLLM's
 * CacheConfig.num_cpu_blocks) and it goes to the front of the queue keeping
 * its progress; when it is next admitted its blocks are copied back (with
 * the blocks its next token needs) and it resumes where it stopped: a
 * decoding sequence decodes its next token in that step, a prefill goes on
 * from the tokens it had. Each copy takes blocks × block bytes / the GPU's
 * host link (hw_model.pcie_bytes_per_s, one direction) and is added to the
 * step it happens in (vLLM V0's worker swaps before the step's model
 * runs). Swap-outs and swap-ins never share a step: a swap-in is an
 * admission, and no step that preempted admits. When the victim's blocks
 * do not fit in what is left of the swap space it is preempted by
 * recompute instead (counted as swap_fallbacks; vLLM V0 raises
 * "Aborted due to the lack of CPU swap space" there: Scheduler._swap_out
 * in vllm/core/scheduler.py, vllm-project/vllm
 * 0dce2b29aaaa36d3b7e5d80302b1018c1c296eee). admit_reserve does not hold
 * back a swap-in (vLLM's can_swap_in counts free blocks only); a step loop
 * that prefills alone (prefill_alone) does not take swap.
 *
 * Deliberately not modelled: prefix caching, speculative decoding, the
 * network. */
#ifndef SRV_H
#define SRV_H

#include <stdint.h>
#include "eng.h"
#include "hw.h"
#include "kv_common.h"
#include "mdl.h"
#include "rkv.h"
#include "sim.h"

/* ---- traffic ----------------------------------------------------------- */
typedef enum { SRV_LEN_FIXED, SRV_LEN_UNIFORM, SRV_LEN_LOGNORMAL, SRV_LEN_EMPIRICAL } srv_len_kind;

/* A length distribution, parsed from "fixed:N", "uniform:A:B" (inclusive),
 * "lognormal:MEDIAN:SIGMA" (exp(N(ln MEDIAN, SIGMA²)), rounded, clamped to
 * [1, max]) or "csv:FILE" (one length per line, a header line allowed; drawn
 * uniformly). */
typedef struct {
    srv_len_kind kind;
    double a, b;          /* fixed: a; uniform: a..b; lognormal: median, sigma */
    int64_t *values;      /* empirical: lengths (owned) */
    int64_t nvalues;
} srv_len;
int srv_len_parse(const char *what, const char *spec, srv_len *d, kv_err *err);
void srv_len_free(srv_len *d);

typedef struct {
    double arrival_s;     /* seconds from the start */
    int64_t prompt;       /* prompt tokens */
    int64_t output;       /* output tokens (>= 1; the first comes from the prefill) */
} srv_request;

typedef struct {
    srv_request *req;     /* (n), arrival times non-decreasing; owned */
    int64_t n;
} srv_workload;

typedef enum { SRV_ARRIVAL_POISSON, SRV_ARRIVAL_GAMMA } srv_arrival;

typedef struct {
    double rate;          /* requests/s */
    srv_arrival arrival;
    double burstiness;    /* gamma shape k (CV = 1/sqrt(k)); 1 = Poisson */
    const srv_len *prompt, *output;
    int64_t n;            /* requests */
    uint64_t seed;
    int64_t max_len;      /* prompt + output capped here (the model's context) */
} srv_traffic;

int srv_workload_generate(const srv_traffic *t, srv_workload *w, kv_err *err);
/* CSV with header arrival_s,prompt_tokens,output_tokens; errors name file:line. */
int srv_workload_load(const char *path, int64_t max_len, srv_workload *w, kv_err *err);
void srv_workload_free(srv_workload *w);

/* ---- the instance ------------------------------------------------------ */
typedef struct {
    const mdl_model *model;
    const hw_model *hw;
    const char *method;        /* rkv method name */
    rkv_request rq;            /* budget, dtype and overrides; context/max_new come per request */
    int tp;
    int cuda_graphs;
    double weight_bytes_per_param; /* linear layers, scales included (sim_weight_dtype bits / 8) */
    hw_dtype weight_compute;       /* the peak weight products run at (sim_weight_dtype.compute) */
    double weight_dequant_ops;     /* CUDA-core instructions per weight of weight-only types
                                      (sim_weight_dtype.dequant_ops; 0: none) */
    const eng_engine *engine;      /* memory policy the pool is sized by (srv_pool_bytes) */
    double mem_fraction;           /* the engine's fraction; <= 0: its default */
    int64_t max_num_seqs;      /* running sequences at most */
    int64_t max_batched_tokens;/* tokens per engine step (decode + prefill chunks) */
    int64_t block_tokens;      /* KV block size, tokens */
    double pool_bytes;         /* KV pool per rank (srv_pool_bytes) */
    /* the engine's step loop (eng_serving; all zero: the GPU's time only, mixed steps) */
    double host_step_s;        /* CPU time per scheduler pass the GPU waits for, s */
    double host_seq_s;         /* the same per sequence in the pass's step, s */
    int prefill_alone;         /* a step that prefills carries no decodes; prefills go first */
    int64_t scheduler_steps;   /* decode steps per scheduler pass (<= 1: one) */
    double admit_reserve;      /* > 0: admission reserves the new output and this share of running outputs */
    /* Preemption (srv.h's "Preemption by swap"): 0 recompute (vLLM's default), 1 swap. */
    int preempt_swap;
    double swap_bytes;         /* host swap space per rank, bytes (swap only; vLLM's --swap-space, 4 GiB) */
    int timeline;              /* record one srv_sample per step */
    int reference;             /* 1: the walk, every decoding sequence's blocks and method-layer
                                  price worked afresh at every step (blocks_after_decode; the
                                  access record priced use by use) and summed afresh: the
                                  definition the fast paths (the lockstep's sums and events, a
                                  block count's next step, a price standing through
                                  sim_access_until, the stage-2 memo) are tested against */
} srv_config;

/* The KV pool per rank under c->engine's memory policy, as sim/ sizes it
 * (sim_memory.kv_pool_bytes: eng_kv_pool, whole pages) for this model, GPU,
 * TP and weight type. */
int srv_pool_bytes(const srv_config *c, double *pool, kv_err *err);

/* Full K/V bytes of one token on one rank, all layers (one block = block_tokens of these). */
double srv_token_bytes(const srv_config *c);

typedef struct {
    double t_s;                /* end of the step */
    double step_s;             /* its price */
    int32_t running, waiting;  /* after the step */
    int32_t decode_seqs;       /* sequences decoded in the step */
    int32_t tokens;            /* tokens processed in the step */
    int64_t kv_blocks;         /* blocks in use after the step */
} srv_sample;

/* The lockstep path's events (lockstep.c), counted: a sequence joining at
 * the end of its prefill; a decode step's KV blocks worked out (the first
 * decode step, a block boundary); a price event (a price no longer stands);
 * a saturated cache's page crossing written ahead into the ring; a last
 * token; a member preempted. */
enum { SRV_EV_JOIN, SRV_EV_BLOCKS, SRV_EV_PRICE, SRV_EV_PAGES, SRV_EV_DONE, SRV_EV_LEAVE, SRV_EV_N };

typedef struct {
    int64_t n;                 /* requests */
    double *ttft_s, *tpot_s, *e2e_s; /* (n); tpot NaN when output == 1 */
    double *itl_s;             /* (n_itl) every gap between consecutive tokens */
    int64_t n_itl;
    int64_t *preempted;        /* (n) times each request was preempted */
    int64_t *tokens_out;       /* (n) tokens each request received (must equal its output) */
    int64_t completed, output_tokens, prompt_tokens;
    int64_t steps, decode_steps_seq, prefill_tokens; /* engine steps; Σ decode tokens; Σ prefill tokens incl. recompute */
    int64_t preemptions;
    double first_arrival_s, end_s; /* the run spans [0, end_s] */
    double busy_s;             /* time the engine was stepping */
    double area_in_system;     /* ∫ requests in the system dt, integrated event by event */
    double area_running, area_kv_blocks; /* ∫ running dt, ∫ blocks in use dt (over busy and idle time) */
    int64_t pool_blocks;
    int64_t max_running, max_kv_blocks;
    srv_sample *samples;       /* (nsamples) when timeline */
    int64_t nsamples;
    int64_t lock_events[SRV_EV_N]; /* events the lockstep path handled, by kind (all 0: the walk ran) */
    int64_t swap_outs, swap_ins;   /* preemptions by swap; their swaps back in */
    int64_t swap_fallbacks;    /* preemptions by recompute in swap mode: the swap space was full */
    int64_t swap_blocks;       /* the swap space, blocks (floor(swap_bytes / block bytes)) */
    int64_t max_swap_blocks;   /* most blocks in it at once */
    double swap_s;             /* Σ time of the swaps (both ways), s: part of busy_s */
} srv_result;

int srv_run(const srv_config *c, const srv_workload *w, srv_result *r, kv_err *err);
void srv_result_free(srv_result *r);

/* summary.c: numpy's default percentile (linear between closest ranks) of n values,
 * NaNs skipped; scratch holds n doubles. NaN when none. */
double srv_percentile(const double *x, int64_t n, double p, double *scratch);

typedef struct {
    double mean, p50, p90, p95, p99;
    int64_t n;
} srv_dist;
void srv_dist_of(const double *x, int64_t n, srv_dist *d); /* NaNs skipped */

/* Summary of one run, the figures every output form prints: latency
 * distributions; rates over [first arrival, end]; pool occupancy and running
 * requests as time averages over [0, end]; Little's law both ways (time-average
 * requests in the system against offered rate × mean e2e and completed/end ×
 * mean e2e); Σ |tokens received − output asked| over the workload w. */
typedef struct {
    srv_dist ttft, tpot, itl, e2e;
    double duration_s;         /* end_s − first_arrival_s */
    double requests_per_s, output_tokens_per_s, input_tokens_per_s; /* over duration_s */
    double kv_occupancy_mean;  /* ∫ blocks dt / (end_s × pool_blocks) */
    double kv_occupancy_max;   /* max blocks / pool_blocks */
    double running_mean;       /* ∫ running dt / end_s */
    double mean_in_system;     /* ∫ in system dt / end_s */
    double rate_times_e2e;     /* offered rate × mean e2e */
    double measured_rate_times_e2e; /* completed / end_s × mean e2e */
    int64_t lost_tokens;       /* Σ |tokens received − output asked| */
} srv_summary;
void srv_summarize(const srv_workload *w, const srv_result *r, double rate, srv_summary *m);

/* ---- planning under SLOs (plan.c) ------------------------------------- */
enum { SRV_SLO_TTFT, SRV_SLO_TPOT, SRV_SLO_ITL, SRV_SLO_E2E, SRV_SLO_METRICS };
#define SRV_MAX_SLO 8
typedef struct {
    int metric;        /* SRV_SLO_* */
    double pct;        /* percentile 1..100; < 0: the mean */
    double limit_s;    /* must be <= this */
} srv_slo;
int srv_slo_parse(const char *spec, srv_slo *slo, int max, int *n, kv_err *err);
const char *srv_slo_metric_name(int m);

typedef struct {
    double rate;                   /* largest rate found meeting every SLO (0: not even at 1e-4 req/s) */
    double values[SRV_MAX_SLO];    /* each SLO's figure at that rate (at the lowest tried when rate is 0) */
    int runs;                      /* simulations run */
} srv_rate_search;

/* The largest rate (requests/s) meeting every SLO, within rel_tol: t's
 * requests (its seed) at each rate tried; bracketed by doubling from 1 req/s
 * (or halving), then bisected. Latency grows with the rate for the same
 * requests, so the search assumes the SLOs hold below the answer. */
int srv_max_rate(const srv_config *c, const srv_traffic *t, const srv_slo *slo, int nslo, double rel_tol,
                 srv_rate_search *out, kv_err *err);

#endif
