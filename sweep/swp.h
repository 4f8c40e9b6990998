/* swp.h — budget sweeps: the Cartesian product models × hardware × harness ×
 * TP × contexts × batches × (method, budget), each point priced by sim/
 * (step time, tokens/s, speedup vs full, memory, fits, largest batch) and,
 * when a workload is given, scored by refimpl/ (fidelity against dense
 * attention). Rows stream to a CSV as they finish; the Pareto front
 * (speedup vs fidelity, memory vs fidelity) is marked when the sweep is
 * complete.
 *
 * Files (docs/sweep.md has the whole story):
 *   OUT.partial   rows as they finish, one write(2) per whole row, fsync at
 *                 most once a second and at the end: a killed sweep loses no
 *                 finished row, and --resume continues from it.
 *   OUT           written once every point of the shard is in OUT.partial:
 *                 rows in point order with the Pareto columns, through a
 *                 temporary name and a rename; then OUT.partial is removed.
 * Point order is fixed by the spec (swp_point_at); shard i of N holds the
 * points whose fidelity key (model, method, budget, fidelity context) falls
 * to it, so fidelity is computed once per key even across shards. Merging
 * shards re-reads their rows as text, so the merged file equals the
 * unsharded one byte for byte below the header comments.
 *
 * Fidelity is hardware-independent: computed once per (model, method,
 * budget, fidelity context, workload) and kept in memory; on --resume it is
 * read back from the rows already written.
 *
 * It deliberately does not: run points in parallel inside one process (run
 * shards; fidelity itself uses threads), or price anything sim/ does not. */
#ifndef SWP_H
#define SWP_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"
#include "sim.h"

#define SWP_MAX_AXIS 32

/* ---- the spec: what to sweep -------------------------------------------- */
typedef struct {
    char path[512];                         /* spec file, "" when built from flags */
    int nmodels, nhw, nmethods, nbudgets, ncontexts, nbatches, ntp, nharness;
    char models[SWP_MAX_AXIS][512];         /* names or YAML paths */
    char hw[SWP_MAX_AXIS][512];
    char methods[SWP_MAX_AXIS][32];
    int64_t budgets[SWP_MAX_AXIS];
    int64_t contexts[SWP_MAX_AXIS];
    int64_t batches[SWP_MAX_AXIS];
    int64_t tps[SWP_MAX_AXIS];
    sim_harness harness[2];
    int64_t max_new;                        /* new tokens per sequence (50) */
    int64_t pp;                             /* pipeline stages at every point (1: none), 1..1024 */
    char engine[512];                       /* "" none, or an engines/ name or YAML path (every point) */
    double mem_fraction;                    /* engine memory fraction; 0: the engine's default */
    char weight_dtype[24];                  /* "" = bf16; sim_weight_dtype_parse names */
    /* fidelity (optional) */
    int fidelity;                           /* 1: score every (model, method, budget, context) */
    char workload[512];                     /* "" or "builtin": the built-in synthetic workload */
    int64_t fid_steps;                      /* decode steps scored (8) */
    int64_t fid_context;                    /* 0: the point's context; else this prompt length */
    char fid_layers[256];                   /* "" all, or "0,8,16" / "0-3" */
    uint64_t seed;                          /* workload seed (the workload file's, else 1) */
    int seed_set;
    int threads;                            /* fidelity worker threads (0: CPUs) */
} swp_spec;

/* One axis of each kind, llama3.1-8b on h100-sxm, rocketkv and full at 1024,
 * 32K, batch 1, TP 1, engine, 50 new tokens, no fidelity. */
void swp_spec_defaults(swp_spec *s);
/* Strict YAML (kv_yaml): keys models, hw, methods, budgets, contexts,
 * batches, tp, harness (each a scalar or a list), new, pp (1..1024), engine, mem_fraction
 * (0.01..1, only with engine), weight_dtype, and a `fidelity:`
 * mapping {workload, steps, context, layers, seed, threads}. Errors carry
 * file:line:col. */
int swp_spec_load(const char *path, swp_spec *s, kv_err *err);

/* ---- a sweep: the spec with its inputs loaded ----------------------------- */
typedef struct swp_sweep swp_sweep;

swp_sweep *swp_sweep_alloc(const swp_spec *s, kv_err *err);
void swp_sweep_free(swp_sweep *w); /* accepts NULL */
int64_t swp_sweep_points(const swp_sweep *w);

typedef struct {
    int64_t index;
    int model, hw, harness, method;          /* axis indices */
    int64_t tp, context, batch, budget;      /* budget 0 for `full` */
    int64_t fid_key;                         /* fidelity key index (-1 without fidelity) */
} swp_point;
void swp_point_at(const swp_sweep *w, int64_t index, swp_point *p);
/* Shard (0-based) that holds a point. */
int swp_point_shard(const swp_sweep *w, const swp_point *p, int nshards);

typedef struct {
    int index, count;                        /* 0-based shard of count; {0, 1}: everything */
    int resume;                              /* continue OUT.partial */
    int64_t stop_after;                      /* tests: return 1 after this many new rows (0: never) */
    void (*on_progress)(void *ctx, int64_t done, int64_t total);
    void *ctx;
} swp_run_opts;

typedef struct {
    int64_t total;          /* points in this shard */
    int64_t resumed;        /* rows already in OUT.partial */
    int64_t computed;       /* rows computed by this call */
    int64_t fid_runs;       /* rkv_run calls */
    int64_t fid_computed;   /* fidelity keys computed */
    int64_t fid_reused;     /* points that took fidelity from the cache (memory or resumed rows) */
    double wall_s;
} swp_run_stats;

/* Runs the shard into out (see the file comment). 0: complete, out written;
 * 1: stopped by stop_after (OUT.partial left for --resume); -1: error. */
int swp_run(swp_sweep *w, const char *out, const swp_run_opts *o, swp_run_stats *st, kv_err *err);

/* Merges complete shard CSVs of one sweep (same id; every point exactly
 * once) into out, as the unsharded run writes it. */
int swp_merge(const char *const *paths, int n, const char *out, kv_err *err);

/* ---- the CSV --------------------------------------------------------------- */
/* Column names in order (NULL-terminated) — the contract of the CSV. */
extern const char *const swp_columns[];
int swp_ncolumns(void);

typedef struct {
    int ncols;
    char **cols;            /* (ncols) header names */
    size_t nrows;
    char ***rows;           /* (nrows, ncols) field texts */
    size_t ncomments;
    char **comments;        /* "# ..." header lines, without the newline */
    size_t good_bytes;      /* offset just past the last complete line */
} swp_table;

/* Reads a sweep CSV. tolerate_tail: an unterminated last line (a kill in
 * the middle of a write) is ignored instead of rejected. Errors name
 * file:line and what was expected. */
int swp_table_load(const char *path, int tolerate_tail, swp_table *t, kv_err *err);
void swp_table_free(swp_table *t); /* accepts a zeroed table */
int swp_table_col(const swp_table *t, const char *name); /* -1 when absent */
/* The value of a "# key value" header comment, or NULL. */
const char *swp_table_meta(const swp_table *t, const char *key);

/* Pareto front, both coordinates maximised: front[i] = 1 when eligible[i]
 * (NULL: all) and no eligible j has x_j >= x_i and y_j >= y_i with one of
 * them strict. NaN coordinates are never on the front. */
void swp_pareto_front(const double *x, const double *y, const int *eligible, size_t n, int *front);

/* ---- SHA-256 ---------------------------------------------------------------- */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} swp_sha256;
void swp_sha256_init(swp_sha256 *s);
void swp_sha256_update(swp_sha256 *s, const void *data, size_t n);
void swp_sha256_hex(swp_sha256 *s, char hex[65]); /* finishes s */
int swp_sha256_file(const char *path, char hex[65], kv_err *err);

#endif
