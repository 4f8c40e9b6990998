/* gld.h — golden files: the reference's inputs and expected outputs of
 * several decode steps of one layer, stage by stage, for one or every KV
 * head, as NumPy .npy tensors plus DIR/manifest.json; and the comparison of
 * another implementation's tensors (a kernel, a Triton port, a NumPy
 * harness) against them. docs/golden.md is the user's description of the
 * format; this header is the C API (`kvsim golden`, `kvsim compare` and the
 * Python package call it).
 *
 * Directory layout (every path relative to DIR):
 *   manifest.json                  what follows, with shapes, dtypes, rules
 *   kvh<H>/prefill/<name>.npy      stage 1 of KV head H (methods that evict)
 *   kvh<H>/step<s>/<name>.npy      decode step s (position S + s) of head H
 *
 * Tolerances account for cancellation: every compared float tensor X has a
 * companion X_bound.npy of the same shape, bound = GLD_KAPPA · u · M, where
 * u = 2^-24 (float32 unit roundoff) and M is the element's magnitude: the
 * sum of the absolute values of the terms that produced it, propagated
 * through softmax to first order (gld_bound.c writes each rule above its
 * code). An implementation in any precision from float32 up, with the same
 * index sets, lies within the bound; a wrong formula does not. */
#ifndef GLD_H
#define GLD_H

#include <stdint.h>
#include <stdio.h>
#include "kv_common.h"
#include "mdl.h"
#include "rkv.h"

/* Float32 unit roundoff and the multiple of it (per unit of magnitude) the
 * bounds allow. 32 covers sums of a few hundred float32 terms in any order
 * (random-walk error ~ sqrt(n)·u, measured by tests/golden_f64.py). */
#define GLD_U32 (1.0 / 16777216.0)
#define GLD_KAPPA 32.0
#define GLD_FORMAT_VERSION 2
/* Tensors per (KV head, step) directory, and stages in a comparison. */
#define GLD_MAX_TENSORS 4096
#define GLD_MAX_STAGES 16

typedef struct {
    int layer;         /* layer to write */
    int kv_head;       /* KV head, or -1 for every KV head of the model */
    int64_t steps;     /* decode steps >= 1: positions S .. S + steps - 1 (multi-turn: over the turns) */
} gld_opts;

/* Writes DIR (created if absent), for any KV and aux dtype (the manifest
 * names both; arrays are float32 holding their values exactly). Refuses
 * decode positions at or past the model's maximum length (S + steps >
 * max_position_embeddings). A multi-turn workload's steps run over its
 * turns as rkv_run walks them (steps: at most every turn's outputs). */
int gld_write(const mdl_model *m, const rkv_workload *wl, const rkv_params *p, const gld_opts *o, const char *dir,
              kv_err *err);

/* One stage of a comparison (tensors of every head and step together). */
typedef struct {
    char name[24];        /* "stage1", "pages", "dims", "page_scores", "selection", "attention" */
    int64_t tensors;      /* expected tensors of this stage */
    int64_t checked;      /* of them supplied by the candidate and compared */
    int64_t failed;       /* of the checked ones, outside the rule */
    int64_t missing;      /* not supplied */
    double worst_ratio;   /* max |actual − expected| / bound over 'bound' tensors (0 when none) */
    char detail[512];     /* first failures, one clause each */
} gld_stage;

typedef struct {
    int nstages;
    gld_stage st[GLD_MAX_STAGES];
    int64_t checked;      /* tensors compared in all */
    int pass;             /* 1: every checked tensor within its rule (and, with all_stages, none missing) */
} gld_result;

typedef struct {
    int all_stages;       /* a missing tensor fails its stage */
    double atol;          /* >= 0, added to every bound (0) */
} gld_cmp_opts;

/* Compares ACTUAL's tensors (same relative paths) with EXPECTED's manifest.
 * Detail lines (index differences with their score gaps, near-ties marked)
 * go to details when it is non-NULL. Returns 0 when the comparison ran (res
 * says whether it passed), -1 with err filled when EXPECTED is unusable or
 * ACTUAL supplies no tensor at all. */
int gld_compare(const char *expected, const char *actual, const gld_cmp_opts *co, FILE *details, gld_result *res,
                kv_err *err);
/* Prints res as one line per stage and a verdict line. */
void gld_result_print(const gld_result *res, FILE *out);

#endif
