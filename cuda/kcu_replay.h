/* kcu_replay.h — the host side of `kvsim-cuda replay` (cuda/replay.cu, see
 * cuda/REPLAY.md), in plain C so that it is unit-tested on the CPU
 * (tests/test_replay.c) and compiled into libkvsim.a (as every cuda/..._host.c is):
 *
 *   - the launch plan: a trace header -> which kernels run, at what shape,
 *     with what cache size C at every decode step, and where every cache
 *     slot comes from (stage-1 kept prompt positions, then the generated
 *     positions: traces/FORMAT.md "slots are compacted");
 *   - the position-set comparison: GPU selection vs the trace's, exact, with
 *     differing candidates split into near-ties (score within rel_eps of the
 *     reference's threshold score: a last-bit flip) and real mismatches, with
 *     the score gap of each;
 *   - the output tolerance check |gpu − ref| <= atol + rtol·|ref| (NaN fails),
 *     with the tolerance stated per KV dtype;
 *   - medians, and the JSON report.
 *
 * It deliberately launches nothing and holds no CUDA type: replay.cu owns the
 * device, this file owns every decision that can be checked without one. */
#ifndef KCU_REPLAY_H
#define KCU_REPLAY_H

#include <stdint.h>
#include "kv_common.h"
#include "rkv.h"
#include "trc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KCU_REPLAY_FULL = 0,     /* dense decode (kcu_attend, idx = NULL) */
    KCU_REPLAY_HSA = 1,      /* stage 2 over the whole cache (pages, score, select, sparse attend) */
    KCU_REPLAY_ROCKETKV = 2  /* stage 1 at the prefill (kcu_stage1), then stage 2 over the kept cache */
} kcu_replay_kind;

/* Everything the device side needs, resolved once from the trace header. */
typedef struct {
    kcu_replay_kind kind;
    char method[32];
    int B, Hkv, G, d;            /* sequences, KV heads, query heads per KV head, head dim */
    int nlayers;                 /* layers recorded (header `layers`) */
    int64_t S;                   /* prompt tokens */
    int64_t steps;               /* decode steps recorded */
    int64_t tokens;              /* S + steps: K/V rows the workload generates per (layer, KV head) */
    int64_t P;                   /* prompt positions kept by stage 1 (S when nothing is evicted) */
    int64_t w, kernel;           /* stage-1 window and pooling kernel (rocketkv) */
    int64_t C0;                  /* cache slots before decode step 0 (P, or S) */
    int64_t cap;                 /* slots allocated per (sequence, KV head): C0 + steps */
    int64_t p;                   /* page size (stage 2), 1 for full */
    int r;                       /* dims of the estimate */
    int64_t k;                   /* tokens attended exactly */
    int page_granularity;
    int64_t npages_cap;          /* aux row stride: ⌈cap/p⌉ + 1 (one NaN-poisoned page past the end)
                                    rounded up to a multiple of 8 (stage 2 v5's 16-byte rows) */
    int64_t pos_cap;             /* selected-position slots per (sequence, KV head): k + p */
    double atol, rtol;           /* output tolerance for the KV dtype */
} kcu_replay_plan;

/* Resolves the plan; rejects what the kernels do not implement (methods other
 * than full / hsa / rocketkv, a local window, skip_layers, multi-turn
 * workloads, KV or aux dtypes other than bf16, d not in {64, 128}, G > 8,
 * avg pooling) with one line saying what and why. */
int kcu_replay_plan_make(const trc_header *h, kcu_replay_plan *pl, kv_err *err);
/* C at decode step s (after its token is appended) and the position decoded. */
int64_t kcu_replay_cache_tokens(const kcu_replay_plan *pl, int64_t step);
int64_t kcu_replay_position(const kcu_replay_plan *pl, int64_t step);

/* Output tolerance for outputs computed in f32 from K/V stored in dtype,
 * against a double reference on the same stored values. Returns -1 for a
 * dtype the kernels do not read. */
int kcu_replay_tolerance(rkv_dtype kv, double *atol, double *rtol);

/* Slot -> position of one (sequence, layer, KV head): kept[0..nkept) (the
 * stage-1 list, ascending, < S; NULL: all of 0..S-1), then S, S+1, ...
 * slot2pos has pl->cap entries. Returns -1 if kept is not ascending or out
 * of range. */
int kcu_replay_slot_map(const kcu_replay_plan *pl, const int32_t *kept, int64_t nkept, int32_t *slot2pos);
/* Position -> slot by binary search in an ascending slot2pos[0..n); -1 when absent. */
int64_t kcu_replay_slot_of(const int32_t *slot2pos, int64_t n, int32_t pos);

/* ------------------------------------------------ the workload, regenerated */
/* K and V rows 0..pl->tokens-1 of (sequence seq, layer, KV head) from the
 * trace's provenance (rkv_workload_kv with seed = workload.seed + seq, as
 * rkv_run does), stored as bf16 exactly as refimpl stores them (rkv_encode).
 * K, V: (tokens, d) bf16 bits; Kf, Vf: (tokens, d) f32 scratch. */
int kcu_replay_gen_kv(const trc_header *h, const kcu_replay_plan *pl, int seq, int layer, int kv_head, uint16_t *K,
                      uint16_t *V, float *Kf, float *Vf, kv_err *err);
/* Queries of the G heads at position pos ((G, d) f32): decode = 1 for a
 * generated position, 0 for the stage-1 window. */
void kcu_replay_gen_query(const trc_header *h, int seq, int layer, int kv_head, int64_t pos, int decode, float *q);
/* Rows of the compacted cache: dst[slot] = src[slot2pos[slot]] for slots 0..n-1. */
void kcu_replay_compact(const uint16_t *src, const int32_t *slot2pos, int64_t n, int d, uint16_t *dst);

/* ------------------------------------------------ position-set comparison */
/* Candidates are units 0..ncand-1 (pages of p slots for stage 2, positions
 * for stage 1, p = 1); ref and got are ascending slot lists. A candidate
 * "differs" when ref and got take a different number of its slots. A
 * differing candidate is a near-tie when its score lies within rel_eps·|T| of
 * T, the smallest score among the candidates ref took from (the threshold);
 * otherwise it is a mismatch. Out-of-range, unsorted or duplicate got slots
 * count as mismatches (invalid). */
typedef struct {
    int64_t nref, ngot;
    int64_t ndiff;               /* differing candidates */
    int64_t nnear;               /* of which near-ties */
    int64_t nbad;                /* of which real mismatches */
    int64_t ninvalid;            /* got slots out of range, unsorted or repeated */
    double max_near_gap;         /* largest |score − T| / |T| among the near-ties */
    int64_t first_bad;           /* candidate of the first mismatch, -1 if none */
    double first_bad_gap;        /* its |score − T| / |T| */
} kcu_replay_setcmp;

/* scratch: 2·ncand int64. score may be NULL (then every difference is a mismatch). */
void kcu_replay_compare_sets(const int32_t *ref, int64_t nref, const int32_t *got, int64_t ngot, int64_t ncand,
                             int64_t p, const double *score, double rel_eps, int64_t *scratch,
                             kcu_replay_setcmp *out);
/* Merges b into a (counts add, gaps take the max, first_bad the first). */
void kcu_replay_setcmp_add(kcu_replay_setcmp *a, const kcu_replay_setcmp *b);

/* ------------------------------------------------------------ tolerances */
typedef struct {
    int64_t n, nbad, nnan;
    double max_abs, max_rel;     /* max_rel over |ref| > 1e-3 */
} kcu_replay_tol;

void kcu_replay_tol_check(const float *got, const double *ref, int64_t n, double atol, double rtol,
                          kcu_replay_tol *acc); /* accumulates into acc (zero it first) */

/* Median of x[0..n) (sorts x in place); NaN for n = 0. */
double kcu_replay_median(double *x, int64_t n);

/* ------------------------------------------------------------- report */
#define KCU_REPLAY_MAX_CHECKS (4 * TRC_MAX_LAYERS + 8) /* stage1, positions, dims, outputs per layer */
#define KCU_REPLAY_MAX_TIMES 256
typedef struct {
    char name[64];               /* "stage1", "layer3/positions", ... */
    int pass;
    kcu_replay_setcmp sets;      /* for selection checks (nref = 0 otherwise) */
    kcu_replay_tol tol;          /* for output checks (n = 0 otherwise) */
    int64_t dims_bad;            /* chosen dims that differ from the trace's */
    char detail[192];
} kcu_replay_check;

typedef struct {
    char what[32];               /* "step", "pages_update", "score", "select", "sparse_attend", "stage1" */
    char method[32];             /* "full" or the trace's method */
    int64_t step;                /* decode step (-1: prefill) */
    int64_t cache_tokens;
    double median_s, min_s;
    int reps;
} kcu_replay_time;

typedef struct {
    char trace[512];
    char device[128];
    kcu_replay_plan plan;
    int ncheck;
    kcu_replay_check check[KCU_REPLAY_MAX_CHECKS];
    int ntime;
    kcu_replay_time time[KCU_REPLAY_MAX_TIMES];
    int checked, timed;
} kcu_replay_report;

/* Appends a check (returns it, or NULL when full). */
kcu_replay_check *kcu_replay_add_check(kcu_replay_report *r, const char *name);
kcu_replay_time *kcu_replay_add_time(kcu_replay_report *r, const char *what, const char *method, int64_t step,
                                     int64_t cache_tokens);
/* 1 when every check passed. */
int kcu_replay_all_pass(const kcu_replay_report *r);
void kcu_replay_report_json(const kcu_replay_report *r, FILE *fp);
void kcu_replay_report_print(const kcu_replay_report *r, FILE *fp);

#ifdef __cplusplus
}
#endif

#endif
