/* published.h — the validation set (validation/published.csv, columns in
 * validation/README.md): its CSV loader, each row's configuration priced by
 * the simulator, the per-category error statistics and the regression
 * thresholds (validation/thresholds.csv). `kvsim check-published` prints them. */
#ifndef SIM_PUBLISHED_H
#define SIM_PUBLISHED_H

#include "kv_common.h"

/* The set's columns, in file order. */
enum {
    SIM_PUB_F_ID, SIM_PUB_F_CAT, SIM_PUB_F_METRIC, SIM_PUB_F_MODEL, SIM_PUB_F_HW, SIM_PUB_F_ENGINE, SIM_PUB_F_WDT,
    SIM_PUB_F_KVD, SIM_PUB_F_METHOD, SIM_PUB_F_BUDGET, SIM_PUB_F_CTX, SIM_PUB_F_NEW, SIM_PUB_F_BATCH, SIM_PUB_F_TP,
    SIM_PUB_F_HARNESS, SIM_PUB_F_REF, SIM_PUB_F_MEAS, SIM_PUB_F_SOURCE, SIM_PUB_F_N
};
extern const char *const sim_pub_field_names[SIM_PUB_F_N]; /* "id", "category", ..., "source" */

#define SIM_PUB_MAX_ROWS 512 /* rows a set may hold */
#define SIM_PUB_NCAT 5       /* categories; the last (fit) is a yes/no verdict */
extern const char *const sim_pub_cat_names[SIM_PUB_NCAT]; /* decode, ttft, kv_capacity, speedup, fit */

typedef struct {
    char f[SIM_PUB_F_N][512]; /* the row's fields as text, quotes removed */
    int line;                 /* 1-based line in the set's file */
} sim_pub_row;

typedef struct {
    int cat;            /* index into sim_pub_cat_names */
    double measured;    /* the published figure, in the metric's unit (SI) */
    double predicted;   /* the simulator's figure, same unit */
    double err;         /* (predicted - measured) / measured; fit: 0 right, 1 wrong */
} sim_pub_result;

/* Reads the set: header line, then one row per line ('#' and blank lines skipped). A row with
 * other than SIM_PUB_F_N fields is refused as "path:line: N fields, expected ..."; 0 or -1. */
int sim_pub_load_rows(const char *path, sim_pub_row *rows, int *n, kv_err *err);
/* The folder a set's relative paths resolve against: the set's folder's parent ("dir/.."). */
void sim_pub_base(const char *set, char *base, size_t cap);
/* Prices one row (and its `ref` row for ratios); path names the set in messages; 0 or -1. */
int sim_pub_eval_row(const char *path, const char *base, const sim_pub_row *r, sim_pub_result *o, kv_err *err);
/* Median and nearest-rank p90 of |err| over category c; *worst: the row index of the largest |err|
 * (lower index on ties). Returns the category's row count (0: *med, *p90 untouched, *worst -1). */
int sim_pub_cat_stats(const sim_pub_result *res, int n, int c, double *med, double *p90, int *worst);
/* Reads category,median_max,p90_max rows; a category not listed gets INFINITY; 0 or -1. */
int sim_pub_load_thresholds(const char *path, double *tmed, double *tp90, kv_err *err);

#endif
