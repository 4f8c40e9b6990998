/* wl.h — measuring attention and fitting the synthetic generator to it.
 *
 *  - profile: per (layer, query head), the statistics that decide every
 *    compression method's fidelity (attention entropy, top-k mass, sink mass,
 *    locality, heavy-hitter persistence over decode steps, key/query channel
 *    outliers, page min/max bound tightness, and how well stage-1 votes of
 *    the prompt's last window predict decode attention), measured in one pass
 *    over any rkv_workload: a real KV dump (models/kvdump.h) or the generator.
 *  - fit: the query-side knobs of refimpl's "fitted" generator per head
 *    class (k-means over the heads' statistics), so that the generator's
 *    statistics match the real dumps'; written as a workload YAML.
 *  - compare: fidelity (mass recall, top-k recall, stage-1 survival) of every
 *    method x budget on real dumps vs a synthetic workload of the same shape.
 *
 * Geometry of one measurement (the same as `kvsim fidelity` on a dump): the
 * prompt is positions 0 .. C-1, its last `window` queries vote (stage 1),
 * and `steps` decode queries at positions C .. C+steps-1 each attend keys
 * 0 .. p (causal, the new keys included). */
#ifndef WL_H
#define WL_H

#include <stdint.h>
#include "kv_common.h"
#include "mdl.h"
#include "rkv.h"

#define WL_NK 7                      /* top-k mass curve points */
extern const int wl_topk_k[WL_NK];   /* 1, 4, 16, 64, 256, 1024, 4096 */
#define WL_SINK 4                    /* sink mass: the first 4 positions */
#define WL_LOCAL 64                  /* locality: mass on the newest 64 positions */
#define WL_HH 64                     /* heavy hitters: the top 64 positions */
#define WL_PAGE 16                   /* page size of the bound-tightness statistic */
#define WL_PAGES 16                  /* pages selected by the bound */
#define WL_POOL 7                    /* stage-1 vote pooling kernel (max) */
#define WL_RECENT 128                /* recent_topk: the ranking's top 128 */
#define WL_FAR 1024                  /* far_topk: positions at least this far from the query */
#define WL_NEWEST 4                  /* local4_mass: the newest 4 positions */
#define WL_SPARQ_K 64                /* sparq_mass: keys SparQ keeps at t = 128 */
#define WL_MID 512                   /* mid_mass: positions p-WL_MID+1 .. p-WL_LOCAL */
#define WL_EARLY 256                 /* early_mass: positions WL_SINK .. WL_EARLY-1 */

/* Statistics of one (layer, query head), means over the decode steps. */
typedef struct {
    double entropy;          /* attention entropy / ln(p + 1), in [0, 1] */
    double topk_mass[WL_NK]; /* mass of the k largest weights (k clipped to p + 1) */
    double sink_mass;        /* mass on positions 0 .. WL_SINK-1 */
    double local_mass;       /* mass on positions p-WL_LOCAL+1 .. p */
    double hh_persist;       /* |top-WL_HH(step i) ∩ top-WL_HH(step 0)| / WL_HH, mean over i >= 1 */
    double vote_mass;        /* decode mass on the stage-1 kept set (top C/8 pooled window votes + window) */
    double vote_recall;      /* share of the decode top-WL_HH inside that kept set */
    double page_recall;      /* decode mass in the WL_PAGES pages of highest min/max bound over that of the true best pages */
    double page_gap;         /* mean over pages of (bound - true max score), score units (q.k/sqrt(d)) */
    double k_outlier;        /* largest key channel RMS / median channel RMS (the KV head's keys) */
    double q_outlier;        /* the same for this head's queries */
    double recent_topk;      /* share of the top-WL_RECENT positions among the first 4 and the newest
                                WL_RECENT - 4: how local the ranking is (streaming's top-k recall at t = WL_RECENT) */
    double k_page_spread;    /* keys' page coherence: mean over channels of (mean min..max range over the prompt's
                                pages of WL_PAGE keys) / (the channel's std over the prompt); 3.53 for iid
                                Gaussian keys, lower when neighbouring keys are alike (Quest's bounds tighten) */
    double sparq_share;      /* share of the score variance Σ_i q_i²·var(k_i) (var over the prompt's keys) in
                                the d/16 channels of largest |q_i|: what SparQ's r = d/16 channels see */
    double far_topk;         /* share of the top-WL_RECENT positions at distance >= WL_FAR from the query (the
                                first WL_SINK excluded): the far tail of the ranking's distance profile */
    double local4_mass;      /* mass on the newest WL_NEWEST positions p-3 .. p: the near end of that profile */
    double mid_mass;         /* mass on positions p-WL_MID+1 .. p-WL_LOCAL: the middle distances, which decide
                                what streaming gains from t = 128 to t = 512 */
    double sparq_mass;       /* mass on the WL_SPARQ_K keys of highest approximate score q_I·k_I over the d/16
                                channels I of largest |q_i| (ties to the lower index): SparQ's selection at
                                t = 2·WL_SPARQ_K on a 2K prompt (r = d·t/S' = d/16), which sparq_share only hints at */
    double early_mass;       /* mass on the document's early positions WL_SINK .. WL_EARLY-1 (past the sink): the
                                title and first lines some heads keep returning to (0.14–0.33 in SmolLM2's sparse
                                middle-layer heads), which streaming drops and which the middle distances are not */
} wl_head_stats;

#define WL_NSTAT (WL_NK + 18)
/* The statistics as a flat vector (the order of wl_stat_names). */
void wl_stats_vec(const wl_head_stats *s, double *v);
extern const char *const wl_stat_names[WL_NSTAT];

typedef struct {
    int nlayers, nheads;     /* layers measured, query heads per layer */
    int *layer_ids;          /* (nlayers) */
    wl_head_stats *h;        /* (nlayers, nheads) */
    int64_t context, window, steps;
    int head_dim;
} wl_profile;

/* Measures wl (real or synthetic) on model m: all layers, or the nlayers of
 * layers. threads >= 1 workers over (layer, KV head) pairs. Deterministic. */
int wl_profile_run(const rkv_workload *wl, const mdl_model *m, int64_t context, int64_t window, int64_t steps,
                   const int *layers, int nlayers, int threads, wl_profile *out, kv_err *err);
void wl_profile_free(wl_profile *p);

/* Statistics of one head from its keys K (p_last + 1, d; rows 0 .. C+steps-1)
 * and its queries Q (window + steps, d; positions C-window .. C+steps-1).
 * ws: wl_head_ws_floats(C + steps, window + steps, d) floats. k_outlier and k_page_spread are computed by the caller. */
size_t wl_head_ws_floats(int64_t n, int64_t nq, int d);
void wl_head_measure(const float *K, const float *Q, int d, int64_t C, int64_t window, int64_t steps,
                     wl_head_stats *out, float *ws);

/* What the statistics read of the keys alone, prepared once per key set (a KV
 * head's keys serve its G query heads; a fit's every evaluation reads the same
 * synthetic keys): wl_head_measure_keys on them gives wl_head_measure's
 * figures bit for bit. */
typedef struct {
    const float *K;          /* (n, d) the keys, rows 0 .. C+steps-1 */
    int d;                   /* head dim, <= 512 */
    int64_t C, n;            /* prompt length, rows */
    float *Kt;               /* (d, n) the keys transposed: SparQ's channel reads are contiguous */
    float *pmin, *pmax;      /* (n / WL_PAGE, d) per-channel min / max of each complete page */
    double kvar[512];        /* (d) each channel's variance over the prompt's keys 0 .. C-1 */
} wl_keys;
/* mem: wl_keys_floats(n, d) floats, owned by the caller, alive while kk is used. */
size_t wl_keys_floats(int64_t n, int d);
void wl_keys_prepare(wl_keys *kk, const float *K, int d, int64_t C, int64_t n, float *mem);
#define WL_MEASURE_ALL 0     /* every statistic */
#define WL_MEASURE_MASSES 1  /* sink_mass and local_mass only (the others 0): what the fit's bisection reads */
/* ws: wl_measure_ws_floats(C + steps, window + steps) floats. */
size_t wl_measure_ws_floats(int64_t n, int64_t nq);
void wl_head_measure_keys(const wl_keys *kk, const float *Q, int64_t window, int64_t steps, int mode,
                          wl_head_stats *out, float *ws);
/* Largest / median channel RMS of rows (n, d). */
double wl_channel_outlier(const float *X, int64_t n, int d);
/* k_page_spread of rows (n, d): complete pages of WL_PAGE rows. */
double wl_page_spread(const float *X, int64_t n, int d);

/* ---- rec_kernel pairs (wl_pairs.c) ---- */
/* Adds, for every (layer l, query head j) of the real model src (a KV dump's
 * workload) at context C, the complex amplitude a_i = μ_q·conj(μ_k)/√d of each
 * RoPE pair i < head_dim/2 − 2 (the mean decode query over positions C ..
 * C+steps−1 and the mean key over 1 .. C−1, RoPE's rotation taken out) to
 * amp[((l·Hq + j)·npairs + i)·2 + {0, 1}], and |μ_k| averaged over the (layer,
 * KV head)s to kmag[i]: one dump's share; the caller divides by the dumps. */
int wl_pairs_measure(const rkv_workload *src, const mdl_model *m, int64_t C, int64_t steps, double *amp, double *kmag,
                     kv_err *err);

/* rec_kernel heads (wl_pairs.c): adds w times src's measured per-head rows
 * (RoPE's rotation taken out of every pair; RKV_HV_KROW per (layer, KV head),
 * the key rows of every layer first, then RKV_HV_QROW per (layer, query head))
 * to acc: the mean key, its residual s.d. and the sink key; the mean query and
 * its residual s.d. over positions C − window .. C + steps − 1. */
int wl_heads_measure(const rkv_workload *src, const mdl_model *m, int64_t C, int64_t window, int64_t steps, double w,
                     double *acc, kv_err *err);

/* ---- the group's agreement beyond the means (wl_group.c) ---- */
#define WL_GROUP_LAYER_STEP 2 /* the layers measured: 0, 2, 4, ... */
typedef struct {
    int nl, layer_step, Hkv, d;
    int64_t C;
    float *K;                /* (nl, Hkv, C, d) the keys of layers 0, layer_step, ... */
} wl_group_keys;
/* The keys wl_group_measure scores, of every layer_step-th layer: read once, since they do not
 * depend on group_share or group_tail. Needs G >= 2. */
int wl_group_keys_load(wl_group_keys *gk, const rkv_workload *wl, const mdl_model *m, int64_t C, int layer_step,
                       kv_err *err);
void wl_group_keys_free(wl_group_keys *gk);
/* out[0], out[1]: the mean and the s.d., over decode steps and (layer, KV head)s, of the correlation
 * between the G heads' residual logits (wl_group.c says which); wl supplies the queries, gk the keys. */
int wl_group_measure(const rkv_workload *wl, const mdl_model *m, const wl_group_keys *gk, int64_t window,
                     int64_t steps, double out[2], kv_err *err);

/* ---- fitting ---- */
#define WL_FIT_MAX_KEY_SETS 8
typedef struct {
    int classes;             /* head classes (k-means) */
    int64_t context, window, steps;
    int threads;
    uint64_t seed;
    int key_sets;            /* synthetic key sets each class is measured on (0 or 1: the G heads of one;
                                2 .. WL_FIT_MAX_KEY_SETS: one head on each; wl_fit.c says why) */
    const double *pair_amp;  /* rec_kernel pairs: wl_pairs_measure's amp, averaged over the dumps (NULL: the ladder) */
    const double *pair_key;  /* and its kmag */
    const float *head_vec;   /* rec_kernel heads: wl_heads_measure's rows averaged over the dumps, interned
                                (rkv_wl_hv_intern) (NULL: not heads) */
    int group;               /* rec_kernel heads: fit group_share and group_tail to group_real (wl_group_fit) */
    double group_real[2];    /* wl_group_measure's mean and s.d. averaged over the dumps */
} wl_fit_cfg;

/* Fits the fitted generator to the mean statistics of the dumps' profiles
 * (all of the same model shape) and fills wl (generator "fitted"). log, if
 * non-NULL, receives one line per class. */
int wl_fit(const wl_profile *profs, int nprof, const mdl_model *m, const wl_fit_cfg *cfg, rkv_workload *wl,
           FILE *log, kv_err *err);
/* rec_kernel heads: sets wl's group_share and group_tail to the point whose wl_group_measure is
 * nearest cfg->group_real (squared error over mean and s.d.; a grid of 0 .. 1 by 0.1 and 0 .. 1.2 by
 * 0.2, then the share ± 0.05 and the tail ± 0.1 about the best; ties to the earlier point), measured on every WL_GROUP_LAYER_STEP-th
 * layer on cfg->threads threads; got: that point's figures. */
int wl_group_fit(rkv_workload *wl, const mdl_model *m, const wl_fit_cfg *cfg, double got[2], kv_err *err);
/* Writes a fitted workload as YAML (atomically). header: comment lines. */
int wl_write_yaml(const rkv_workload *wl, const char *path, const char *header, kv_err *err);

/* ---- the ranking check of compare (wl_rank.c says why pairs) ---- */
#define WL_PAIR_UNORDERED 0  /* the real texts do not all order the pair the same way, strictly */
#define WL_PAIR_AGREE 1      /* ordered alike by every text, and the synthetic orders it so too */
#define WL_PAIR_DIFFER 2     /* ordered alike by every text; the synthetic does not */
/* real: (ntext, n) one value per text and method; syn: (n). state: (n, n),
 * state[i*n + j] set for i < j only. Returns the number of ordered pairs;
 * *agree: how many of them the synthetic orders the same way. */
int wl_rank_pairs(const double *real, int ntext, int n, const double *syn, unsigned char *state, int *agree);

#endif
