/* rpt_internal.h — what the report's files share (report.c: the driver, the
 * CSV rows and the slice; rpt_plot.c: one gnuplot plot; one file per plot
 * family: rpt_speedup.c, rpt_memory.c, rpt_fidelity.c, rpt_roofline.c,
 * rpt_measured.c). Nothing outside report/ includes it. */
#ifndef RPT_INTERNAL_H
#define RPT_INTERNAL_H

#include "rpt.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "swp.h"

/* One row of the sweep CSV (sweep/swp.h's columns), SI units. */
typedef struct {
    const char *model, *hw, *harness, *method;
    int64_t tp, budget, context, batch, max_batch, fid_context;
    double step, tps, speedup, peak, kv, aux, weights, cap, full_peak;
    int fits;
    double fid[4];   /* mass recall, output error, top-k recall, survival; NaN when absent */
    int ps, pm;      /* Pareto marks; -1 when absent */
} rpt_row;

typedef struct {
    const rpt_opts *o;
    char gnuplot[1024], term[16];
    FILE *md;              /* README.md being written (a kv_afile) */
    rpt_row *rows;
    size_t n;
    swp_table t;
    /* the reference slice */
    const char *model, *hw, *harness, *method;
    int64_t tp, batch, budget, max_context;
    int has_fid;
    rpt_summary *sum;
} rpt;

/* The CSV cell as a number (NaN when empty or not a number); as an integer (0 then). */
double rpt_num(const char *s);
int64_t rpt_inum(const char *s);
/* 1 when the (known: rpt_write checked every row) method attends the whole cache. */
int rpt_is_dense(const char *method);
/* Distinct values of a row field in order of first appearance; integers sorted. */
int rpt_distinct_str(const rpt *r, size_t off, const char **out, int max);
int rpt_distinct_i64(const rpt *r, size_t off, int64_t *out, int max, int skip_zero);
#define STR_AXIS(field, out, max) rpt_distinct_str(r, offsetof(rpt_row, field), out, max)
#define I64_AXIS(field, out, max, skip0) rpt_distinct_i64(r, offsetof(rpt_row, field), out, max, skip0)
/* The row in the reference slice (model, harness, TP, batch); the row of a point (budget < 0: any). */
int rpt_in_slice(const rpt *r, const rpt_row *w);
const rpt_row *rpt_find(const rpt *r, const char *hw, const char *harness, const char *method, int64_t budget,
                        int64_t context, int64_t batch, int64_t tp);
/* 32768 -> "32K"; 1000 -> "1000". */
void rpt_human_tokens(int64_t v, char *buf, size_t cap);

/* ---- one plot: NAME.dat (gnuplot index blocks), NAME.gp, NAME.png/.svg (rpt_plot.c) ---- */
typedef struct {
    char name[64];
    FILE *dat;
    int nblocks;
    char cmd[16384];       /* the plot command's series */
    size_t ncmd;
    char settings[4096];
} rpt_plot;
int rpt_plot_open(rpt *r, rpt_plot *p, const char *name, kv_err *err);
/* Appends gnuplot settings (title, axes) to the script. */
void rpt_plot_set(rpt_plot *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts a data block; the caller writes rows to p->dat; spec is what follows
 * "using" (e.g. "1:($2/1e9) with linespoints title 'x'"). */
void rpt_plot_block(rpt_plot *p, const char *header, const char *spec);
/* Writes NAME.gp, runs gnuplot, links the plot in README (or says it has no points). */
int rpt_plot_close(rpt *r, rpt_plot *p, const char *caption, kv_err *err);

/* ---- the plot families: each writes its README section ---- */
int rpt_plot_speedup_budget(rpt *r, kv_err *err);      /* rpt_speedup.c */
int rpt_plot_speedup_methods(rpt *r, kv_err *err);
int rpt_plot_memory_context(rpt *r, int batch_plot, kv_err *err); /* rpt_memory.c */
void rpt_capacity_table(rpt *r);
int rpt_plot_fidelity(rpt *r, kv_err *err);            /* rpt_fidelity.c */
int rpt_plot_pareto(rpt *r, int memory, kv_err *err);
int rpt_plot_roofline(rpt *r, kv_err *err);            /* rpt_roofline.c */
/* The sim's prediction of one point (max_new new tokens) with the slice's harness and TP. */
int rpt_predict_point(const rpt *r, const mdl_model *m, const hw_model *h, const char *method, int64_t budget,
                      int64_t context, int64_t batch, int64_t max_new, sim_result *res, kv_err *err);
int rpt_plot_measured(rpt *r, kv_err *err);            /* rpt_measured.c */

#endif
