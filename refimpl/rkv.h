/* rkv.h — the kvsim CPU reference: KV storage dtypes, dense attention, stage 1
 * (SnapKV with GQA-group scores), stage 2 (hybrid sparse attention), the
 * RocketKV budget split, the baselines, the synthetic workload and the
 * fidelity metrics of docs/algorithm.md.
 *
 * The reference is plain and deterministic: arithmetic in fp32 on values
 * stored in the KV dtype, every reduction that decides a selection in a fixed
 * order (double accumulation), ties in every top-k to the lower index, threads
 * only over independent (layer, KV head) pairs. Speed comes from OpenBLAS
 * (stage-1 scores) and from those threads, not from cleverness.
 *
 * A method is a value of one type, rkv_method_type (GSL's "type object"):
 * name, parameter resolution, per-head state, stage-1 prefill, per-step
 * selection, analytic traffic and storage. Adding a method touches one file
 * (refimpl/method_<name>.c) and one table (rkv_methods[] in method.c). */
#ifndef RKV_H
#define RKV_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"
#include "mdl.h"

/* ------------------------------------------------------------------ limits */
/* The reference keeps per-dimension and per-query-head rows in fixed arrays
 * (stage-2 dimension scores, workload queries, rkv_step_out.cache_n); these
 * bounds are checked in one place, rkv_check_shape, which parameter
 * resolution, the workload and the runner all call. */
#define RKV_MAX_HEAD_DIM 512  /* d */
#define RKV_MAX_GROUP 64      /* G: query heads per KV head */
#define RKV_MAX_WINDOW 256    /* stage-1 observation window w (queries the runner keeps per turn) */
#define RKV_MAX_THREADS 64    /* runner worker threads */

/* 0 when d (even, 2 .. RKV_MAX_HEAD_DIM) and G (1 .. RKV_MAX_GROUP) are
 * within the reference's limits; else -1 with err naming `who`. */
int rkv_check_shape(const char *who, int d, int G, kv_err *err);

/* ------------------------------------------------------------------ dtypes */
typedef enum {
    RKV_DTYPE_BF16 = 0,
    RKV_DTYPE_FP16 = 1,
    RKV_DTYPE_FP32 = 2,
    RKV_DTYPE_FP8_E4M3 = 3,
    RKV_DTYPE_FP8_E5M2 = 4
} rkv_dtype;

size_t rkv_dtype_bytes(rkv_dtype t);
const char *rkv_dtype_name(rkv_dtype t);          /* "bf16", "fp16", "fp32", "fp8-e4m3", "fp8-e5m2" */
int rkv_dtype_parse(const char *s, rkv_dtype *t); /* 0 ok, -1 unknown */

/* Round-to-nearest-even conversions. fp8-e4m3 saturates to ±448 (it has no
 * infinity; NaN stays NaN); fp8-e5m2 and fp16 overflow to ±inf as IEEE does. */
uint16_t rkv_f32_to_bf16(float x);
float rkv_bf16_to_f32(uint16_t h);
uint16_t rkv_f32_to_fp16(float x);
float rkv_fp16_to_f32(uint16_t h);
uint8_t rkv_f32_to_e4m3(float x);
float rkv_e4m3_to_f32(uint8_t b);
uint8_t rkv_f32_to_e5m2(float x);
float rkv_e5m2_to_f32(uint8_t b);
/* Array forms; dst/src are n elements of the dtype. */
void rkv_encode(rkv_dtype t, const float *src, size_t n, void *dst);
void rkv_decode(rkv_dtype t, const void *src, size_t n, float *dst);
/* x rounded to the dtype and back. */
float rkv_quantize(rkv_dtype t, float x);

/* ------------------------------------------------------- traffic / storage */
/* Bytes per decode step per (layer, KV head, sequence), by access category
 * (docs/design.md). `weights` is per layer, not per head: refimpl leaves it 0 and
 * sim/ fills it. */
typedef struct {
    int64_t weights;
    int64_t kv_exact;   /* K and V rows attended */
    int64_t kv_full;    /* dense scan of the cache */
    int64_t aux;        /* page min/max or transposed-K reads */
    int64_t kv_write;   /* K/V append + metadata update writes */
    int64_t scores;     /* materialised intermediate scores (fp32), written + read */
} rkv_traffic;

static inline int64_t rkv_traffic_total(const rkv_traffic *t)
{
    return t->weights + t->kv_exact + t->kv_full + t->aux + t->kv_write + t->scores;
}

/* Bytes stored per (layer, KV head, sequence) at the end of generation. */
typedef struct {
    int64_t kv_bytes;    /* K+V kept */
    int64_t aux_bytes;   /* page min/max, transposed K */
} rkv_storage;

/* ---------------------------------------------------------------- params */
typedef enum { RKV_SPLIT_DEFAULT = 0, RKV_SPLIT_EVEN = 1 } rkv_split;
typedef enum { RKV_GRAN_TOKEN = 0, RKV_GRAN_PAGE = 1 } rkv_granularity;
typedef enum { RKV_POOL_MAX = 0, RKV_POOL_AVG = 1 } rkv_pool;

/* What the user asked for. Integer knobs < 0 mean "method default". */
typedef struct {
    int64_t context;        /* S: prompt tokens */
    int64_t max_new;        /* new tokens generated (default 50) */
    int64_t budget;         /* t: tokens of K+V traffic per step */
    int64_t model_max_len;  /* cap on S' (max_position_embeddings) */
    int d, G;               /* head dim, query heads per KV head */
    rkv_dtype kv_dtype;     /* storage of K and V (default bf16) */
    rkv_dtype aux_dtype;    /* storage of page min/max (default = kv_dtype) */
    int aux_dtype_set;      /* 0: aux follows kv_dtype */
    int64_t window;         /* stage-1 observation window w (32; 128 for rocketkv-mt) */
    int64_t kernel;         /* pooling kernel (63 snapkv-gqa/rocketkv; 7 snapkv) */
    int pool;               /* rkv_pool, or -1 */
    int64_t page_size;      /* p override */
    int64_t topr;           /* r override */
    int64_t topk;           /* k override */
    double rho;             /* fixed stage-1 share; < 0: formula */
    rkv_split split;
    rkv_granularity granularity;
    int64_t local_window;   /* stage 2: newest W tokens always attended, extra budget (0) */
    int64_t skip_layers;    /* layers below stay dense (0) */
    int64_t sink_tokens;    /* streaming: 4 */
    int mean_v;             /* sparq: mean-V reallocation (1), or -1 */
} rkv_request;

void rkv_request_defaults(rkv_request *rq);

struct rkv_method_type;

/* Everything resolved, with TensorRT-LLM's names where they exist. */
typedef struct {
    const struct rkv_method_type *method;
    int64_t S;               /* prompt tokens */
    int64_t max_new;
    int64_t S_total;         /* S' = min(S + max_new, model_max_len) */
    int64_t budget;          /* t */
    int d, G;
    rkv_dtype kv_dtype, aux_dtype;
    int64_t prompt_budget;   /* P: prompt tokens kept by stage 1 (S if nothing evicted) */
    int64_t window_size;     /* w */
    int64_t kernel_size;
    rkv_pool pool;
    int64_t page_size;       /* p (0 when the method has no pages) */
    int64_t topr;            /* r (0 when unused) */
    int64_t topk;            /* k: tokens attended exactly (0 when unused) */
    double rho;              /* stage-1 share of log c (0 when unused) */
    double c;                /* max(1, S'/t) */
    double c2;               /* stage-2 compression max(1, capacity/t) */
    int64_t capacity;        /* tokens stored per (layer, KV head) incl. generated */
    double compression_ratio;/* full-KV traffic / method traffic at the last step, analytic */
    int evicts;              /* stage 1 permanently drops prompt tokens */
    rkv_granularity granularity;
    rkv_split split;
    int64_t local_window;
    int64_t skip_layers;
    int64_t sink_tokens;
    int mean_v;
} rkv_params;

/* ------------------------------------------------------------- per head */
/* One (layer, KV head) of one sequence: the whole token history in the KV
 * dtype. Methods read from it through their own index lists, which is the
 * same as reading a compacted cache. */
typedef struct {
    int layer, kv_head;
    int d, G;
    rkv_dtype dtype;
    int64_t n;          /* tokens present: positions 0 .. n-1 */
    int64_t cap;        /* rows allocated */
    void *K;            /* (cap, d) in dtype, keys after RoPE */
    void *V;            /* (cap, d) in dtype */
} rkv_head;

/* Votes of one stage-1 call, kept so that several parameter sets run side by
 * side over the same (layer, KV head) and window compute them once: valid
 * when the candidates are all positions 0 .. nc-1 and (nc, w, group) match. */
typedef struct {
    int valid;
    int layer, kv_head, group, G;
    int64_t nc, w;
    double *votes;   /* (group ? 1 : G, nc - w) */
    int64_t cap;     /* doubles allocated */
} rkv_s1_memo;

/* The stage-1 call: prompt (or turn input) ends at position n_end-1; the
 * window queries are those of positions n_end-w .. n_end-1. */
typedef struct {
    int64_t n_end;       /* history length at this prefill */
    int64_t w;           /* window actually used (min(w, turn input)) */
    const float *Qw;     /* (G, w, d) window queries, after RoPE */
    int turn;            /* 0 for the first prefill */
    rkv_s1_memo *memo;   /* may be NULL */
} rkv_prefill_in;

/* What one decode step attended, per query head. When `shared` is set all G
 * heads attend pos[0 .. count[0]) and the other rows are unused. */
typedef struct {
    int64_t cap;         /* capacity of each row of pos */
    int32_t *pos;        /* (G, cap) attended positions, ascending */
    int64_t *count;      /* (G) */
    int shared;
    float *out;          /* (G, d) attention output */
    int32_t *dims;       /* (G, d) chosen dims (hsa/rocketkv: row 0 shared; sparq: per head) */
    int64_t ndims;       /* dims per row (0: none) */
    int dims_shared;
    int64_t pages_scored;/* pages (or tokens for p = 1) whose estimate was computed */
    int64_t cache_tokens;/* C: tokens in this method's cache at this step (per head for snapkv: max) */
    rkv_traffic bytes;   /* this step's bytes, counted from what was actually read */
    /* The method's cache after this step (for stage-1 survival): rows of
     * ascending positions; cache == NULL means nothing was ever evicted. */
    const int32_t *cache;
    int64_t cache_stride;      /* row stride (entries) when per head */
    int64_t cache_n[RKV_MAX_GROUP]; /* entries per row; row 0 only when cache_shared */
    int cache_shared;
} rkv_step_out;

/* How a method's reads are laid out in memory: what sim/access.c prices
 * (run length, hence DRAM efficiency) when no trace gives the real reads.
 * C is the method's cache length, p its page size, b the element bytes. */
typedef enum {
    RKV_READ_STREAM = 0,  /* one long contiguous read (or no read at all) */
    RKV_READ_REGION,      /* the whole compacted cache of one head: C·d·b per K or V region */
    RKV_READ_ROW,         /* single token rows of one head: d·b */
    RKV_READ_PAGE,        /* whole pages: p·d·b (top-k picks whole pages in score order) */
    RKV_READ_DIMS_PAGES,  /* dims-major page min/max: ceil(C/p)·b per chosen dimension */
    RKV_READ_DIMS_TOKENS  /* transposed K: C·b per chosen dimension */
} rkv_read_layout;

/* What the rest of kvsim needs to know about a method besides its
 * functions; the one place these facts live (no code outside
 * refimpl/method_*.c compares method names). */
typedef struct {
    rkv_read_layout exact_read; /* layout of the exact K/V reads */
    rkv_read_layout aux_read;   /* layout of the aux reads (STREAM when the method has none) */
    int per_query_head;         /* 1: each of the G query heads selects its own rows; 0: the group shares them */
    int dense;                  /* 1: attends the whole cache, the budget has no effect (the baseline) */
    int stage1;                 /* 1: SnapKV-style prefill selection that can evict prompt tokens */
    int stage1_per_turn;        /* 1: stage 1 reruns over the full history at every turn (nothing evicted) */
    int stage2;                 /* 1: hybrid sparse attention per step (page min/max, top-r dims, top-k) */
    int cache_capped;           /* 1: the cache never exceeds the budget (older tokens evicted each step) */
} rkv_traits;

typedef struct rkv_method_type {
    const char *name;
    const char *summary;
    rkv_traits traits;
    /* Resolve all parameters from a request. */
    int (*resolve)(const rkv_request *rq, rkv_params *p, kv_err *err);
    /* Bytes of per-(layer, KV head) state for histories up to max_tokens. */
    size_t (*state_bytes)(const rkv_params *p, int64_t max_tokens);
    /* Initialise the state in place (the memory is zeroed, state_bytes long). */
    void (*state_init)(void *state, const rkv_params *p, int64_t max_tokens);
    /* End of a prefill (stage 1 where the method has one). Tokens up to
     * in->n_end-1 are in h. ws is scratch of rkv_prefill_scratch_bytes(). */
    int (*prefill)(void *state, const rkv_params *p, const rkv_head *h, const rkv_prefill_in *in, void *ws);
    /* One decode step: token h->n-1 was just appended; q is (G, d). */
    int (*step)(void *state, const rkv_params *p, const rkv_head *h, const float *q, rkv_step_out *out, void *ws);
    /* Analytic bytes of decode step `step` (0-based) of a single-turn
     * generation, and what is stored at the end. */
    void (*traffic)(const rkv_params *p, int64_t step, rkv_traffic *t);
    /* The last step u >= step with traffic(p, j) == traffic(p, step) for
     * every j in [step, u] (INT64_MAX: from step on). Optional: NULL means
     * "may change at step + 1". Lets a caller skip re-pricing a sequence
     * (serve/); checked against traffic() step by step in tests/test_serve.c. */
    int64_t (*traffic_until)(const rkv_params *p, int64_t step);
    void (*storage)(const rkv_params *p, rkv_storage *s);
    /* 1 when traffic() equals what step() counts for every input. */
    int data_independent;
} rkv_method_type;

extern const rkv_method_type *const rkv_methods[]; /* NULL-terminated */
const rkv_method_type *rkv_method_find(const char *name);
/* The same, with "unknown method 'x' (expected one of: ...)" in err when absent. */
const rkv_method_type *rkv_method_get(const char *name, kv_err *err);
/* The dense reference every method's traffic, speed-up and fidelity are
 * measured against (traits.dense). */
const rkv_method_type *rkv_method_baseline(void);
/* The traits as one line: "exact=page aux=dims-pages group stage1 stage2 ...". */
void rkv_traits_format(const rkv_traits *t, char *buf, size_t cap);
const char *rkv_read_layout_name(rkv_read_layout l);

/* Resolve: finds the method by name and calls its resolve. */
int rkv_params_resolve(const char *method, const rkv_request *rq, rkv_params *p, kv_err *err);
/* Writes p as one JSON object (TensorRT-LLM's names). */
void rkv_params_json(kv_json *j, const rkv_params *p);
/* Tokens in the method's cache (per KV head) at decode step `step`, single turn. */
int64_t rkv_cache_tokens(const rkv_params *p, int64_t step);
/* The last step u >= step whose cache holds at most c_end tokens
 * (rkv_cache_tokens is non-decreasing in the step; INT64_MAX when a capped
 * cache never exceeds c_end). c_end >= rkv_cache_tokens(p, step). */
int64_t rkv_step_until_cache_tokens(const rkv_params *p, int64_t step, int64_t c_end);
/* Decode steps the model's range leaves after the prompt: S' − S, where S' =
 * min(S + max_new, max length). Step k decodes position S + k, so steps at or
 * past S' − S would be past the model's range: rkv_run refuses them. */
int64_t rkv_params_decode_steps(const rkv_params *p);

/* Scratch sizes (bytes) for prefill/step of one (layer, KV head). */
size_t rkv_scratch_bytes(const rkv_params *p, int64_t max_tokens);

/* ----------------------------------------------------- building blocks */
/* Dense attention of G query heads over positions idx[0..n) of h (idx NULL
 * means 0..n-1), each K/V row read once for the group. scale = 1/sqrt(d).
 * out (G, d). probs, if non-NULL, receives (G, n) softmax probabilities.
 * ws: n*G floats. The same code serves full and sparse attention, so a
 * sparse selection of every position gives bit-identical output. */
void rkv_attend(const rkv_head *h, const float *q, const int32_t *idx, int64_t n,
                float *out, float *probs, float *ws);

/* Top-k of scores[0..n) (ties to the lower index), result ascending by
 * position in idx. Deterministic; O(n log k). */
void rkv_topk(const double *scores, int64_t n, int64_t k, int32_t *idx);
/* Same for float scores. */
void rkv_topk_f(const float *scores, int64_t n, int64_t k, int32_t *idx);
/* The same without allocating: heap is scratch of k doubles (decode steps use these). */
void rkv_topk_ws(const double *scores, int64_t n, int64_t k, int32_t *idx, double *heap);
void rkv_topk_f_ws(const float *scores, int64_t n, int64_t k, int32_t *idx, double *heap);
/* Full ranking of non-negative float scores, descending, ties to the lower
 * index (so the top k of any k is order[0..k)). order, rank: n entries;
 * tmp: 2n entries. */
void rkv_rank_desc(const float *scores, int64_t n, int32_t *order, int32_t *rank, int32_t *tmp);

/* 1-D pooling with stride 1 and same padding (kernel/2 each side; padding
 * never wins for max; avg counts padded zeros, PyTorch's default). */
void rkv_pool1d(const double *in, int64_t n, int64_t kernel, rkv_pool pool, double *out);

/* Stage-1 vote: window probabilities summed over window queries, prefix
 * columns only, summed over the G heads when group != 0 (else per head).
 * cand[0..nc) are the candidate positions (ascending) of which the last w are
 * the window. votes: (G or 1, nc - w). ws: rkv_stage1_ws_bytes(). */
size_t rkv_stage1_ws_bytes(int64_t nc, int64_t w, int G, int d);
int rkv_stage1_votes(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                     int group, double *votes, void *ws);
/* The exp stage 1 uses for x <= 0 (fp32, deterministic on every build,
 * about 1 ulp; 0 below -87.3). */
float rkv_stage1_exp(float x);
/* Full stage 1: votes, pooling, top-(P - w) prefix positions + the window.
 * kept: (group ? 1 : G, P) rows, ascending. Returns kept count per row. */
int64_t rkv_stage1_select(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                          int64_t P, int64_t kernel, rkv_pool pool, int group, int32_t *kept, void *ws);
/* The same, reusing (or filling) memo's votes when it applies. */
int64_t rkv_stage1_select_memo(const rkv_head *h, const int32_t *cand, int64_t nc, const float *Qw, int64_t w,
                               int64_t P, int64_t kernel, rkv_pool pool, int group, int32_t *kept, void *ws,
                               rkv_s1_memo *memo);

/* ------------------------------------------------------------- workload */
/* The synthetic generator (see refimpl/workload.c for what each knob does
 * and why its default is realistic). All knobs are read from a YAML workload
 * file; defaults below. */
#define RKV_MAX_TURNS 16
#define RKV_MAX_CLASSES 8      /* head classes of a fitted workload */
#define RKV_MAX_MAP_LAYERS 128 /* layers of the model a fitted workload was measured on */
#define RKV_MAX_MAP_HEADS 64   /* its query heads per layer */
#define RKV_REC_BANDS 3        /* recency bands of the fitted generator */
#define RKV_MAX_PAIRS 128      /* measured RoPE pairs of a fitted workload (rec_kernel: pairs): head_dim <= 260 */
#define RKV_REC_PAIRS 2        /* rkv_workload.rec_ladder for rec_kernel pairs (0: rff, 1: ladder) */
#define RKV_REC_HEADS 3        /* rkv_workload.rec_ladder for rec_kernel heads (measured per head) */
/* rec_kernel heads: the floats of one measured (layer, KV head) row and one (layer, query head) row at the
 * measured head_dim d (h2 = d/2 pairs), RoPE's rotation taken out of each pair: key row μ_k re[h2], μ_k im[h2],
 * then the residual's covariance per pair var re[h2], cov re·im[h2], var im[h2], then the sink key[d]; query
 * row the same without the sink key (refimpl/workload_fitted.c) */
#define RKV_HV_KROW(d) (5 * ((d) / 2) + (d))
#define RKV_HV_QROW(d) (5 * ((d) / 2))
/* The query side of one head class of the fitted generator (refimpl/workload_fitted.c):
 * weights in logit units (a weight a adds a to q.k/sqrt(d) on a key carrying the feature). */
typedef struct {
    char name[24];
    double sink;               /* on the sink tokens */
    double hh;                 /* per unit of a heavy hitter's salience */
    double rec[RKV_REC_BANDS]; /* on the recency bands (decaying with distance over rec_span[b]) */
    double focus;              /* on keys of the query's focus topic */
    double content;            /* spread of the low-rank content logits */
    double noise;              /* iid query noise per dim (in key-noise units) */
    double persistence;        /* share of content variance a head's queries share */
    double agree;              /* rec_kernel heads: the correlation of the query's measured residual with the
                                  latent of its own position's key, which nearby keys share (agree_span) */
    double mean_gain[2];       /* rec_kernel heads: the measured mean query enters scaled by e^mean_gain[b] on the
                                  pairs that turn 64 times or more over the measured context (b = 0) and 4 to 64
                                  times (b = 1); slower pairs (the sink, long-range recency) as measured */
    double pair_amp[2 * RKV_MAX_PAIRS]; /* rec_kernel pairs: per measured RoPE pair i, the complex amplitude
                                  (re, im) of the class's mean query times its mean key, logit units: a key
                                  at distance D adds Re(a_i·e^(j·theta_i·D)) on pair i */
} rkv_head_class;

/* Real queries, keys and values (after RoPE) from elsewhere — a KV dump or a
 * model's run (llm/llm_kvdump.h implements it): refimpl only calls get. */
typedef struct {
    int n_layer, n_head, n_kv_head, head_dim; /* the shape of what get returns */
    int64_t n_tokens;                         /* positions 0 .. n_tokens-1 are available */
    /* n rows (n, head_dim) of f32 from position pos0 of tensor `which`
     * (0 K, 1 V: head is a KV head; 2 Q: head is a query head) into dst. */
    void (*get)(const void *ctx, int layer, int which, int head, int64_t pos0, int64_t n, float *dst);
    const void *ctx;
} rkv_qkv_source;

typedef struct {
    char path[512];            /* "" for the built-in default; the source's description for a KV dump */
    char generator[32];        /* "handtuned" (the hand-set generator; "synthetic" is read as it), "fitted"
                                  (refimpl/workload_fitted.c), or "kvdump": real Q/K/V from `real` */
    rkv_qkv_source real;       /* generator "kvdump" (real.get != NULL): a real model's run */
    uint64_t seed;
    int key_rank;              /* rank of the key subspace */
    double topic_run_mean;     /* mean length of a same-topic run (tokens) */
    int num_topics;
    double topic_strength;     /* |centroid| */
    double key_noise;          /* iid noise per dim */
    int outlier_channels;
    double outlier_scale;
    int sink_tokens;
    double sink_strength;
    double recency_strength;   /* shared RoPE-decaying component */
    int needles;
    double needle_strength;
    int focus_topics;          /* topics the queries of a turn attend to */
    double query_focus;        /* strength of the query's topic component */
    double query_noise;
    double query_content;      /* weight of the query's low-rank content part (logit spread) */
    double query_persistence;  /* share of content variance kept across a turn's queries */
    double decode_drift;       /* probability a decode query switches to a new topic */
    double head_diversity;     /* spread of per-head query perturbations */
    double value_noise;
    double rope_theta;         /* 0: take the model's */
    /* generator "fitted" only: the key side is shared by all heads, the query side is per class */
    double hh_fraction;        /* share of tokens that are heavy hitters */
    double hh_sigma;           /* their salience: exp(N(0, hh_sigma)) */
    double rec_span[RKV_REC_BANDS]; /* tokens over which each recency band decays */
    double sink_key_scale;     /* the sink key's norm in units of d^(1/4) (1: the first profiles): the query's sink
                                  weight is divided by it, so logits stay, and the sink is a massive key, not a
                                  massive query channel (massive activations: Sun et al. 2024, arXiv:2402.17762) */
    int early_tokens;          /* the document's early positions sink_tokens .. early_tokens-1 are heavy hitters
                                  with probability early_hh_fraction instead of hh_fraction (0: none, the
                                  profiles before it): the title and first lines that some real heads keep
                                  returning to (reports/workload-fit/, "Session 6") */
    double early_hh_fraction;  /* that probability */
    double rec_key_tilt;       /* ladder only: the keys' two dims of rung j's pair times g_j = (span_j/√(s0·s2))^tilt,
                                  the queries' divided by g_j (0: g = 1, the profiles before it). Every logit is
                                  unchanged, so is attention; what changes is which channels carry large |q_i| —
                                  SparQ's channel choice — and the keys' channel magnitudes */
    int rec_ladder;            /* recency features: 0 = random Fourier features of exp(-|d|/rec_span[b]) (YAML
                                  rec_kernel: rff, the first fitted profiles); 1 = a deterministic geometric
                                  ladder of frequencies from 1/rec_span[0] to 1/rec_span[2] (rec_kernel: ladder);
                                  2 = measured per RoPE pair (rec_kernel: pairs): a constant key direction of
                                  norm pair_key[i] on pair i and a class query whose product with it is
                                  pair_amp[i], both turned by RoPE itself (the class's rec weights unused) */
    int pair_n;                /* rec_kernel pairs: the measured pairs 0 .. pair_n-1 of the source model */
    int pair_head_dim;         /* the source model's head_dim and RoPE base: a target pair takes the measured */
    double pair_theta;         /* pair of nearest frequency, its amplitude scaled by the ratio of pair densities */
    double pair_key[RKV_MAX_PAIRS]; /* |mean key| per measured pair (the keys' constant direction's norm) */
    int hv_layers, hv_q_heads, hv_kv_heads, hv_head_dim; /* rec_kernel heads: the measured model's shape */
    int64_t hv_context;        /* rec_kernel heads: the context the rows were measured at (0: unknown, no stretch) */
    int64_t run_context;       /* set by whoever generates for a run (not read from YAML): its positions. Past
                                  hv_context the measured part of pairs slower than the measured context turns at
                                  YaRN-interpolated frequencies (refimpl/workload_fitted.c, hv_stretch) */
    double agree_span;         /* rec_kernel heads: the keys' residual latent is an exponential moving average of
                                  per-position innovations over about this many tokens (0: independent per key) */
    double resid_tail;         /* rec_kernel heads: each key's residual is scaled by e^(σ·ε − σ²), ε ~ N(0, 1) per
                                  position (σ = resid_tail; 0: Gaussian residuals): the same variance, heavier tails */
    double group_share;        /* rec_kernel heads: the share γ of a query's measured residual draw that the G query
                                  heads of its GQA group draw together at that position (0: each its own) */
    double group_tail;         /* and that shared draw's scale e^(σ·ε − σ²) per position (σ = group_tail): the heads
                                  agree most when their residual is large, as real heads do */
    const float *hv;           /* rec_kernel heads: its hv_layers·hv_kv_heads key rows, then hv_layers·hv_q_heads
                                  query rows (RKV_HV_KROW, RKV_HV_QROW); interned by rkv_wl_hv_intern, never
                                  freed, so copies of the struct share it */
    double chan_spread;        /* channel spectrum of the content: 0 = content on a quarter of the dims, equal
                                  scales (the first fitted profiles); > 0 = on every dim but the sink and
                                  heavy-hitter pairs, pair scales exp(N(0, chan_spread)) shared by queries and keys */
    int nclasses;
    rkv_head_class cls[RKV_MAX_CLASSES];
    int map_layers, map_heads; /* class_map: the class of each (layer, query head) of the measured model */
    uint8_t class_map[RKV_MAX_MAP_LAYERS][RKV_MAX_MAP_HEADS];
    int nturns;                /* multi-turn: (input, output) tokens per turn */
    int64_t turn_input[RKV_MAX_TURNS];
    int64_t turn_output[RKV_MAX_TURNS];
} rkv_workload;

void rkv_workload_defaults(rkv_workload *wl);
/* rec_kernel heads: a process-lifetime copy of n floats (the same bytes give the same pointer); NULL when out of memory. */
const float *rkv_wl_hv_intern(const float *x, size_t n);
/* Generator "fitted": how many recency pairs each band has at head_dim (the rff split or the ladder's). */
void rkv_fitted_rec_bands(const rkv_workload *wl, int head_dim, int n[RKV_REC_BANDS]);
/* Generator "fitted": the query draws of (layer, kv_head) at positions pos0 ..
 * pos0 + n - 1 (decode from position decode_from on), made once, so that
 * rkv_fitted_qcache_query assembles position pos0 + i's G queries for the
 * classes of any wl with the key side the cache was made with (seed, topics,
 * channel spectrum, recency, decode_drift), without drawing again — what a fit
 * does for every trial of class weights. Equal to rkv_workload_query bit for bit
 * (the generator itself is built on it). */
typedef struct rkv_fitted_qcache rkv_fitted_qcache;
int rkv_fitted_qcache_new(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t pos0, int64_t n,
                          int64_t decode_from, rkv_fitted_qcache **out, kv_err *err);
void rkv_fitted_qcache_query(const rkv_fitted_qcache *c, const rkv_workload *wl, int64_t i, float *q);
void rkv_fitted_qcache_free(rkv_fitted_qcache *c);
int rkv_workload_load(const char *path, rkv_workload *wl, kv_err *err);
/* The same from memory (name in messages): what the YAML fuzz harness reads. */
int rkv_workload_load_mem(const char *name, const void *buf, size_t len, rkv_workload *wl, kv_err *err);
/* A workload file by path, or by name: refimpl/workloads/NAME.yaml ($KVSIM_DATA first). */
int rkv_workload_find(const char *name_or_path, char *path, size_t cap, kv_err *err);
/* The workload kvsim uses when none is named (fidelity, sweep, make run). */
#define RKV_DEFAULT_WORKLOAD "smollm2-heads"

/* Generates K and V (after RoPE) of positions 0 .. n-1 for one (layer, KV
 * head), in f32, deterministic in (seed, layer, kv_head). K, V: (n, d). */
int rkv_workload_kv(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head,
                    int64_t n, float *K, float *V, kv_err *err);
/* Queries of the G heads of (layer, kv_head) at position pos (after RoPE),
 * deterministic in (seed, layer, kv_head, pos) alone. q: (G, d). turn: the
 * turn the position belongs to; decode: 1 for a generated position. */
void rkv_workload_query(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head,
                        int64_t pos, int turn, int decode, float *q);

/* --------------------------------------------------------------- runner */
/* A fidelity sample per (step, layer, query head). */
enum { RKV_FID_OUTPUT_REL_ERR, RKV_FID_MASS_RECALL, RKV_FID_TOPK_RECALL, RKV_FID_STAGE1_SURVIVAL, RKV_FID_N };
extern const char *const rkv_fid_names[RKV_FID_N];

/* One decode record as the runner reports it (to trace writers). */
typedef struct {
    int set;               /* index into rkv_run_cfg.sets */
    int64_t step;          /* 0-based decode step over all turns */
    int64_t position;      /* token position being decoded */
    int layer, kv_head;
    const rkv_step_out *so;
    const double *fid;     /* (G, RKV_FID_N) or NULL when fidelity is off */
} rkv_record;

#define RKV_MAX_SETS 16
typedef struct {
    const mdl_model *model;
    const rkv_workload *wl;
    /* Parameter sets run side by side over the same workload (a budget or
     * method list): keys, values, queries and the dense reference are
     * computed once per (layer, KV head) and shared. */
    int nsets;
    rkv_params sets[RKV_MAX_SETS];
    int64_t steps;         /* decode steps (single turn; multi-turn: the workload's outputs) */
    const int *layers;     /* NULL: all */
    int nlayers;
    int threads;           /* worker threads over (layer, KV head) pairs */
    int fidelity;          /* compute fidelity against full */
    /* Called from worker threads, concurrently for different pairs, in step
     * order for one pair. Return non-zero to abort. kept == NULL means every
     * position 0 .. nkept-1 was retained. */
    int (*on_stage1)(void *ctx, int set, int layer, int kv_head, int nrows, const int32_t *kept,
                     int64_t stride, const int64_t *nkept);
    int (*on_step)(void *ctx, const rkv_record *rec);
    void *ctx;
    /* Progress: called from the calling thread about every 0.25 s. */
    void (*on_progress)(void *ctx, int64_t done, int64_t total);
} rkv_run_cfg;

typedef struct {
    int nlayers;
    int *layer_ids;                  /* (nlayers) */
    kv_stats overall[RKV_FID_N];
    kv_stats *per_layer;             /* (nlayers, RKV_FID_N) */
    int64_t samples;                 /* per metric */
} rkv_fidelity;

/* Runs every set; fid (if non-NULL) receives cfg->nsets results. */
int rkv_run(const rkv_run_cfg *cfg, rkv_fidelity *fid, kv_err *err);
/* Total tokens the run needs per (layer, KV head): prompt + steps, or the workload's turns. */
int64_t rkv_run_tokens(const rkv_run_cfg *cfg);
/* 1 when p's analytic traffic equals the counted traffic for any input. */
int rkv_params_data_independent(const rkv_params *p);
void rkv_fidelity_free(rkv_fidelity *fid);

#endif
