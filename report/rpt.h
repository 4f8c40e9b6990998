/* rpt.h — `kvsim report`: a sweep CSV (sweep/swp.h) into a directory a reader
 * can open and regenerate: README.md, one gnuplot script + data file per plot
 * (NAME.gp, NAME.dat), and the plots as PNG and SVG.
 *
 * Plots: speedup vs budget per context; speedup vs budget per method at the
 * largest context; peak memory vs context per GPU (full vs the reference
 * method); largest batch vs context per GPU; fidelity vs budget per method
 * (when the CSV has fidelity columns); the Pareto fronts (speedup vs
 * fidelity, memory vs fidelity); a roofline (arithmetic intensity vs
 * attainable FLOP/s) with each kernel of one decode step placed on it, from
 * sim_predict's per-kernel bytes and FLOPs; and, when GPU_DIR/ *.json exist
 * (make gpu-check writes them), predicted vs measured attention time.
 *
 * It deliberately does not link a plotting library: gnuplot (gnuplot-nox:
 * pngcairo, or png where cairo is missing, and svg) draws from the files it
 * writes, and a missing gnuplot is one clear error. */
#ifndef RPT_H
#define RPT_H

#include "kv_common.h"

/* The method the report features (the slice's reference method) when the
 * sweep has it: the paper's; otherwise the first non-dense method swept. */
#define RPT_FEATURED_METHOD "rocketkv"

typedef struct {
    const char *sweep_csv;   /* input */
    const char *out_dir;     /* created if missing */
    const char *gpu_dir;     /* measured JSON (reports/gpu); NULL: none */
    const char *notes;       /* markdown appended to README.md (the comparison with the paper); NULL: none */
    const char *command;     /* the command line that made the report, quoted in README.md; NULL: none */
    long long tp;            /* TP of the slices the plots hold fixed; 0: the smallest swept */
} rpt_opts;

typedef struct {
    int plots;               /* plots drawn (each as .png and .svg) */
    int skipped;             /* plots without data (said so in README.md) */
    char png_terminal[16];   /* "pngcairo" or "png" */
} rpt_summary;

/* The gnuplot on PATH and its PNG terminal; -1 with one-line err when missing. */
int rpt_find_gnuplot(char *path, size_t cap, char *png_terminal, size_t tcap, kv_err *err);
int rpt_write(const rpt_opts *o, rpt_summary *s, kv_err *err);

/* Serving plots (serve_plots.c): latency vs rate from a `kvsim serve --csv`
 * sweep over rates, KV-pool occupancy and batch over time from a
 * `kvsim serve --timeline` file; either may be NULL. */
typedef struct {
    const char *serve_csv;
    const char *timeline_csv;
    const char *out_dir;
    const char *command;
} rpt_serve_opts;
int rpt_serve_write(const rpt_serve_opts *o, rpt_summary *s, kv_err *err);

#endif
