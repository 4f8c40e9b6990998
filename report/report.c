/* report.c — rpt_write (rpt.h): reads a sweep CSV, picks the slices each plot
 * shows (first model, first GPU, smallest TP and batch, the engine harness
 * when present, rocketkv as the reference method, budget 1024 when swept),
 * writes NAME.dat + NAME.gp per plot, runs gnuplot on each, and writes
 * README.md with the plots, the slices, tables of the numbers behind them
 * and how to regenerate everything.
 *
 * Numbers in .dat files are SI (bytes, seconds, FLOP/s); the scripts scale
 * for the axes (GB, ms). */
#define _POSIX_C_SOURCE 200809L
#include "rpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv_jsonr.h"
#include "sim.h"
#include "swp.h"

typedef struct {
    const char *model, *hw, *harness, *method;
    int64_t tp, budget, context, batch, max_batch, fid_context;
    double step, tps, speedup, peak, kv, aux, weights, cap, full_peak;
    int fits;
    double fid[4];   /* mass recall, output error, top-k recall, survival; NaN when absent */
    int ps, pm;      /* Pareto marks; -1 when absent */
} rrow;

typedef struct {
    const rpt_opts *o;
    char gnuplot[1024], term[16];
    FILE *md;              /* README.md being written (a kv_afile) */
    rrow *rows;
    size_t n;
    swp_table t;
    /* the reference slice */
    const char *model, *hw, *harness, *method;
    int64_t tp, batch, budget, max_context;
    int has_fid;
    rpt_summary *sum;
} rpt;

/* ---- small helpers ----------------------------------------------------------- */
int rpt_find_gnuplot(char *path, size_t cap, char *png_terminal, size_t tcap, kv_err *err)
{
    const char *pe = getenv("PATH");
    path[0] = '\0';
    if (pe) {
        const char *s = pe;
        while (*s) {
            const char *c = strchr(s, ':');
            size_t len = c ? (size_t)(c - s) : strlen(s);
            if (len > 0 && len + 9 < cap) {
                snprintf(path, cap, "%.*s/gnuplot", (int)len, s);
                if (access(path, X_OK) == 0) break;
            }
            path[0] = '\0';
            s += len;
            if (*s == ':') s++;
        }
    }
    if (!path[0])
        return kv_errf(err, "gnuplot not found on PATH; install it (Debian: apt-get install gnuplot-nox) and rerun");
    /* pngcairo where gnuplot has cairo, else libgd's png (stdin closed: gnuplot never waits on a pager) */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' -e 'set terminal pngcairo' </dev/null 2>&1", path);
    FILE *p = popen(cmd, "r");
    int cairo = 0;
    if (p) {
        char line[512];
        int said = 0;
        while (fgets(line, sizeof line, p)) said = 1;
        cairo = pclose(p) == 0 && !said;
    }
    snprintf(png_terminal, tcap, "%s", cairo ? "pngcairo" : "png");
    return 0;
}

static double num(const char *s)
{
    char *end;
    if (!*s) return NAN;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

static int64_t inum(const char *s)
{
    double v = num(s);
    return isnan(v) ? 0 : (int64_t)v;
}

static int load_rows(rpt *r, kv_err *err)
{
    if (swp_table_load(r->o->sweep_csv, 0, &r->t, err) != 0)
        return -1;
    for (int i = 0; swp_columns[i]; i++)
        if (swp_table_col(&r->t, swp_columns[i]) < 0)
            return kv_errf(err, "%s: no column '%s'; expected a CSV written by kvsim sweep", r->o->sweep_csv,
                           swp_columns[i]);
    if (r->t.nrows == 0)
        return kv_errf(err, "%s: no rows", r->o->sweep_csv);
    r->n = r->t.nrows;
    r->rows = calloc(r->n, sizeof *r->rows);
    if (!r->rows) return kv_errf(err, "out of memory");
#define C(name) r->t.rows[i][swp_table_col(&r->t, name)]
    for (size_t i = 0; i < r->n; i++) {
        rrow *w = &r->rows[i];
        w->model = C("model"); w->hw = C("hw"); w->harness = C("harness"); w->method = C("method");
        const rkv_method_type *mt = rkv_method_get(w->method, err);
        if (!mt) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            free(r->rows);
            r->rows = NULL;
            return kv_errf(err, "%s: row %zu: %s", r->o->sweep_csv, i + 1, msg);
        }
        w->tp = inum(C("tp")); w->budget = inum(C("budget")); w->context = inum(C("context"));
        w->batch = inum(C("batch")); w->max_batch = inum(C("max_batch")); w->fid_context = inum(C("fid_context"));
        w->step = num(C("step_time_s")); w->tps = num(C("tokens_per_s")); w->speedup = num(C("speedup_vs_full"));
        w->peak = num(C("peak_bytes")); w->kv = num(C("kv_bytes")); w->aux = num(C("aux_bytes"));
        w->weights = num(C("weights_bytes")); w->cap = num(C("capacity_bytes")); w->full_peak = num(C("full_peak_bytes"));
        w->fits = !strcmp(C("fits"), "1");
        w->fid[0] = num(C("fid_mass_recall")); w->fid[1] = num(C("fid_output_rel_err"));
        w->fid[2] = num(C("fid_topk_recall")); w->fid[3] = num(C("fid_stage1_survival"));
        const char *ps = C("pareto_speed_fidelity"), *pm = C("pareto_memory_fidelity");
        w->ps = *ps ? atoi(ps) : -1;
        w->pm = *pm ? atoi(pm) : -1;
        if (!isnan(w->fid[0])) r->has_fid = 1;
    }
#undef C
    return 0;
}

/* 1 when the (known: load_rows checked) method attends the whole cache. */
static int is_dense(const char *method)
{
    const rkv_method_type *mt = rkv_method_find(method);
    return mt && mt->traits.dense;
}

/* Distinct values in order of first appearance (point order = spec order). */
static int distinct_str(const rpt *r, size_t off, const char **out, int max)
{
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *v = *(const char *const *)((const char *)&r->rows[i] + off);
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = !strcmp(out[k], v);
        if (!seen && n < max) out[n++] = v;
    }
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int distinct_i64(const rpt *r, size_t off, int64_t *out, int max, int skip_zero)
{
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        int64_t v = *(const int64_t *)((const char *)&r->rows[i] + off);
        int seen = skip_zero && v == 0;
        for (int k = 0; k < n && !seen; k++) seen = out[k] == v;
        if (!seen && n < max) out[n++] = v;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_i64);
    return n;
}

#define STR_AXIS(field, out, max) distinct_str(r, offsetof(rrow, field), out, max)
#define I64_AXIS(field, out, max, skip0) distinct_i64(r, offsetof(rrow, field), out, max, skip0)

static int in_slice(const rpt *r, const rrow *w)
{
    return !strcmp(w->model, r->model) && !strcmp(w->harness, r->harness) && w->tp == r->tp && w->batch == r->batch;
}

static const rrow *find(const rpt *r, const char *hw, const char *harness, const char *method, int64_t budget,
                        int64_t context, int64_t batch, int64_t tp)
{
    for (size_t i = 0; i < r->n; i++) {
        const rrow *w = &r->rows[i];
        if (!strcmp(w->model, r->model) && !strcmp(w->hw, hw) && !strcmp(w->harness, harness) &&
            !strcmp(w->method, method) && (budget < 0 || w->budget == budget) && w->context == context &&
            w->batch == batch && w->tp == tp)
            return w;
    }
    return NULL;
}

static void human_tokens(int64_t v, char *buf, size_t cap)
{
    if (v % 1024 == 0) snprintf(buf, cap, "%lldK", (long long)(v / 1024));
    else snprintf(buf, cap, "%lld", (long long)v);
}

/* ---- one plot: NAME.dat (gnuplot index blocks), NAME.gp, NAME.png/.svg ----- */
typedef struct {
    char name[64];
    FILE *dat;
    int nblocks;
    char cmd[16384];       /* the plot command's series */
    size_t ncmd;
    char settings[4096];
} plot;

static int plot_open(rpt *r, plot *p, const char *name, kv_err *err)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.dat", r->o->out_dir, name);
    p->dat = fopen(path, "w");
    if (!p->dat) return kv_errf(err, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

static void plot_set(plot *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void plot_set(plot *p, const char *fmt, ...)
{
    size_t n = strlen(p->settings);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->settings + n, sizeof p->settings - n, fmt, ap);
    va_end(ap);
}

/* Starts a data block; the caller writes rows to p->dat; spec is what follows
 * "using" (e.g. "1:($2/1e9) with linespoints title 'x'"). */
static void plot_block(plot *p, const char *header, const char *spec)
{
    if (p->nblocks > 0) fputs("\n\n", p->dat);
    fprintf(p->dat, "# %s\n", header);
    int k = snprintf(p->cmd + p->ncmd, sizeof p->cmd - p->ncmd, "%s'%s.dat' index %d using %s", p->ncmd ? ", \\\n     " : "",
                     p->name, p->nblocks, spec);
    if (k > 0 && p->ncmd + (size_t)k < sizeof p->cmd) p->ncmd += (size_t)k;
    p->nblocks++;
}

static int run_gnuplot(rpt *r, const char *script, kv_err *err)
{
    pid_t pid = fork();
    if (pid < 0) return kv_errf(err, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(r->o->out_dir) != 0) _exit(126);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        FILE *lg = fopen("gnuplot.log", "a");
        if (lg) {
            dup2(fileno(lg), 1);
            dup2(fileno(lg), 2);
        }
        execl(r->gnuplot, "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return kv_errf(err, "gnuplot failed on %s/%s (see %s/gnuplot.log)", r->o->out_dir, script, r->o->out_dir);
    return 0;
}

/* Writes NAME.gp (PNG then SVG from the same commands), runs it, links it in README. */
static int plot_close(rpt *r, plot *p, const char *caption, kv_err *err)
{
    fclose(p->dat);
    p->dat = NULL;
    if (p->nblocks == 0) {
        fprintf(r->md, "*%s*: not drawn — the sweep has no points for it.\n\n", p->name);
        r->sum->skipped++;
        return 0;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gp", r->o->out_dir, p->name);
    FILE *f = fopen(path, "w");
    if (!f) return kv_errf(err, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "# %s.gp — written by kvsim report; run `gnuplot %s.gp` in this directory to redraw\n", p->name, p->name);
    fprintf(f, "# %s.png and %s.svg from %s.dat (SI units; scaled here for the axes).\n", p->name, p->name, p->name);
    const char *terms[2][2] = {{r->term, "png"}, {"svg", "svg"}};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "reset\nset terminal %s size 960,600 noenhanced%s\nset output '%s.%s'\n", terms[t][0],
                t == 0 ? "" : " dynamic", p->name, terms[t][1]);
        fprintf(f, "set grid\nset key outside right top\n%s", p->settings);
        fprintf(f, "plot %s\nunset output\n", p->cmd);
    }
    fclose(f);
    char script[128];
    snprintf(script, sizeof script, "%s.gp", p->name);
    if (run_gnuplot(r, script, err) != 0) return -1;
    fprintf(r->md, "![%s](%s.png)\n\n%s ([SVG](%s.svg), data [%s.dat](%s.dat), script [%s.gp](%s.gp))\n\n", p->name,
            p->name, caption, p->name, p->name, p->name, p->name, p->name);
    r->sum->plots++;
    return 0;
}

/* ---- the plots ------------------------------------------------------------------ */
static int plot_speedup_budget(rpt *r, kv_err *err)
{
    plot p;
    if (plot_open(r, &p, "speedup_vs_budget", err) != 0) return -1;
    const char *harn[4];
    int64_t ctx[64];
    int nh = STR_AXIS(harness, harn, 4), nc = I64_AXIS(context, ctx, 64, 0);
    plot_set(&p, "set title 'speedup vs full: %s, %s on %s, TP %lld, batch %lld'\n", r->method, r->model, r->hw,
             (long long)r->tp, (long long)r->batch);
    plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'decode speedup vs full (x)'\nset logscale x 2\n");
    fprintf(r->md, "## Speedup vs budget, per context\n\n| harness | context |");
    int64_t bud[64];
    int nb = I64_AXIS(budget, bud, 64, 1);
    for (int b = 0; b < nb; b++) fprintf(r->md, " t=%lld |", (long long)bud[b]);
    fprintf(r->md, "\n|---|---|");
    for (int b = 0; b < nb; b++) fprintf(r->md, "---|");
    fprintf(r->md, "\n");
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) {
            char hb[256], ct[32];
            human_tokens(ctx[c], ct, sizeof ct);
            int any = 0;
            fprintf(r->md, "| %s | %s |", harn[h], ct);
            for (int b = 0; b < nb; b++) {
                const rrow *w = find(r, r->hw, harn[h], r->method, bud[b], ctx[c], r->batch, r->tp);
                if (w && !any) {
                    snprintf(hb, sizeof hb, "%s context %lld", harn[h], (long long)ctx[c]);
                    char spec[256];
                    snprintf(spec, sizeof spec, "1:2 with linespoints lc %d pt %d dt %d title '%s %s'", c + 1, h ? 6 : 7,
                             h + 1, harn[h], ct);
                    plot_block(&p, hb, spec);
                    fprintf(p.dat, "# budget speedup_vs_full step_time_s full_step_time_s\n");
                    any = 1;
                }
                if (w) fprintf(p.dat, "%lld %.10g %.10g %.10g\n", (long long)bud[b], w->speedup, w->step, w->step * w->speedup);
                if (w) fprintf(r->md, " %.2fx |", w->speedup);
                else fprintf(r->md, " – |");
            }
            fprintf(r->md, "\n");
        }
    fprintf(r->md, "\n");
    char cap[512];
    snprintf(cap, sizeof cap, "Decode speedup of %s over full attention (mean step time over the decode steps, "
             "kvsim predict's roofline), %s on %s, TP %lld, batch %lld; solid: engine harness, dashed: gpt-fast "
             "(the paper's).", r->method, r->model, r->hw, (long long)r->tp, (long long)r->batch);
    return plot_close(r, &p, cap, err);
}

static int plot_speedup_methods(rpt *r, kv_err *err)
{
    plot p;
    if (plot_open(r, &p, "speedup_vs_budget_methods", err) != 0) return -1;
    const char *meth[64];
    int64_t bud[64];
    int nm = STR_AXIS(method, meth, 64), nb = I64_AXIS(budget, bud, 64, 1);
    plot_set(&p, "set title 'speedup vs full by method: %s on %s, context %lld, %s, batch %lld'\n", r->model, r->hw,
             (long long)r->max_context, r->harness, (long long)r->batch);
    plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'decode speedup vs full (x)'\nset logscale x 2\n");
    for (int m = 0; m < nm; m++) {
        if (is_dense(meth[m])) continue;
        int any = 0;
        for (int b = 0; b < nb; b++) {
            const rrow *w = find(r, r->hw, r->harness, meth[m], bud[b], r->max_context, r->batch, r->tp);
            if (!w) continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "1:2 with linespoints title '%s'", meth[m]);
                plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# budget speedup_vs_full\n");
                any = 1;
            }
            fprintf(p.dat, "%lld %.10g\n", (long long)bud[b], w->speedup);
        }
    }
    char cap[256];
    snprintf(cap, sizeof cap, "Every method's speedup over full at the largest context (%lld), same slice.",
             (long long)r->max_context);
    return plot_close(r, &p, cap, err);
}

static int plot_memory_context(rpt *r, int batch_plot, kv_err *err)
{
    plot p;
    if (plot_open(r, &p, batch_plot ? "max_batch_vs_context" : "memory_vs_context", err) != 0) return -1;
    const char *hws[64];
    int64_t ctx[64];
    int nh = STR_AXIS(hw, hws, 64), nc = I64_AXIS(context, ctx, 64, 0);
    if (batch_plot) {
        plot_set(&p, "set title 'largest batch that fits: %s, TP %lld, %s harness'\n", r->model, (long long)r->tp, r->harness);
        plot_set(&p, "set xlabel 'context (prompt tokens)'\nset ylabel 'largest batch'\nset logscale x 2\nset logscale y 2\n");
        fprintf(r->md, "## Largest batch vs context, per GPU\n\n| GPU | context | full | %s t=%lld |\n|---|---|---|---|\n",
                r->method, (long long)r->budget);
    } else {
        plot_set(&p, "set title 'peak memory per GPU: %s, TP %lld, batch %lld, %s harness'\n", r->model, (long long)r->tp,
                 (long long)r->batch, r->harness);
        plot_set(&p, "set xlabel 'context (prompt tokens)'\nset ylabel 'peak memory per rank (GB)'\nset logscale x 2\n");
        fprintf(r->md, "## Memory vs context, dense vs %s, per GPU\n\n| GPU | context | full peak GB | %s t=%lld peak GB | "
                "saving | capacity GB |\n|---|---|---|---|---|---|\n", r->method, r->method, (long long)r->budget);
    }
    for (int h = 0; h < nh; h++) {
        for (int s = 0; s < 2; s++) {
            const char *m = s == 0 ? rkv_method_baseline()->name : r->method;
            int64_t b = s == 0 ? -1 : r->budget;
            int any = 0;
            for (int c = 0; c < nc; c++) {
                const rrow *w = find(r, hws[h], r->harness, m, b, ctx[c], r->batch, r->tp);
                if (!w || (batch_plot && w->max_batch < 1)) continue; /* nothing fits: no point on a log axis */
                if (!any) {
                    char spec[256], hd[128];
                    snprintf(hd, sizeof hd, "%s %s", hws[h], m);
                    if (batch_plot) snprintf(spec, sizeof spec, "1:2 with linespoints lc %d dt %d title '%s %s'", h + 1, s + 1, hws[h], m);
                    else snprintf(spec, sizeof spec, "1:($2/1e9) with linespoints lc %d dt %d title '%s %s'", h + 1, s + 1, hws[h], m);
                    plot_block(&p, hd, spec);
                    fprintf(p.dat, batch_plot ? "# context max_batch\n" : "# context peak_bytes kv_bytes aux_bytes weights_bytes capacity_bytes\n");
                    any = 1;
                }
                if (batch_plot) fprintf(p.dat, "%lld %lld\n", (long long)ctx[c], (long long)w->max_batch);
                else fprintf(p.dat, "%lld %.10g %.10g %.10g %.10g %.10g\n", (long long)ctx[c], w->peak, w->kv, w->aux, w->weights, w->cap);
            }
        }
        if (!batch_plot) { /* capacity line */
            const rrow *w0 = NULL;
            for (size_t i = 0; i < r->n && !w0; i++) if (!strcmp(r->rows[i].hw, hws[h])) w0 = &r->rows[i];
            char spec[256], hd[128];
            snprintf(hd, sizeof hd, "%s capacity", hws[h]);
            snprintf(spec, sizeof spec, "1:($2/1e9) with lines lc %d dt 3 title '%s capacity'", h + 1, hws[h]);
            plot_block(&p, hd, spec);
            fprintf(p.dat, "%lld %.10g\n%lld %.10g\n", (long long)ctx[0], w0->cap, (long long)ctx[nc - 1], w0->cap);
        }
        for (int c = 0; c < nc; c++) {
            const rrow *f = find(r, hws[h], r->harness, rkv_method_baseline()->name, -1, ctx[c], r->batch, r->tp);
            const rrow *k = find(r, hws[h], r->harness, r->method, r->budget, ctx[c], r->batch, r->tp);
            if (!f || !k) continue;
            if (batch_plot)
                fprintf(r->md, "| %s | %lld | %lld | %lld |\n", hws[h], (long long)ctx[c], (long long)f->max_batch,
                        (long long)k->max_batch);
            else
                fprintf(r->md, "| %s | %lld | %.2f | %.2f | %.1f%% | %.2f |\n", hws[h], (long long)ctx[c], f->peak / 1e9,
                        k->peak / 1e9, 100.0 * (1.0 - k->peak / f->peak), f->cap / 1e9);
        }
    }
    fprintf(r->md, "\n");
    char cap[512];
    if (batch_plot)
        snprintf(cap, sizeof cap, "Largest batch whose peak memory fits one rank (kvsim plan's solver; capped at "
                 "4096; 0 = batch 1 does not fit, not drawn). Solid: full; dashed: %s t=%lld.", r->method, (long long)r->budget);
    else
        snprintf(cap, sizeof cap, "Peak memory per rank at batch %lld (weights + KV + aux + workspace + reserve; "
                 "gpt-fast: its decode peak incl. the S x S mask). Solid: full; dashed: %s t=%lld; dotted: capacity.",
                 (long long)r->batch, r->method, (long long)r->budget);
    return plot_close(r, &p, cap, err);
}

static int plot_fidelity(rpt *r, kv_err *err)
{
    plot p;
    if (plot_open(r, &p, "fidelity_vs_budget", err) != 0) return -1;
    const char *meth[64];
    int64_t bud[64];
    int nm = STR_AXIS(method, meth, 64), nb = I64_AXIS(budget, bud, 64, 1);
    const rrow *any_row = find(r, r->hw, r->harness, rkv_method_baseline()->name, -1, r->max_context, r->batch, r->tp);
    int64_t fc = any_row ? any_row->fid_context : r->max_context;
    plot_set(&p, "set title 'attention fidelity vs budget: %s, scored at context %lld'\n", r->model, (long long)fc);
    plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'mean attention-mass recall'\nset logscale x 2\nset yrange [0:1.02]\n");
    fprintf(r->md, "## Fidelity vs budget, per method\n\nScored by the CPU reference at context %lld (mean over "
            "decode steps, layers and query heads; see the workload line in the CSV header).\n\n| method | t | mass recall | "
            "output rel. error | top-k recall | stage-1 survival |\n|---|---|---|---|---|---|\n", (long long)fc);
    for (int m = 0; m < nm; m++) {
        if (is_dense(meth[m])) continue;
        int any = 0;
        for (int b = 0; b < nb; b++) {
            const rrow *w = find(r, r->hw, r->harness, meth[m], bud[b], r->max_context, r->batch, r->tp);
            if (!w || isnan(w->fid[0])) continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "1:2 with linespoints title '%s'", meth[m]);
                plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# budget mass_recall output_rel_err topk_recall stage1_survival\n");
                any = 1;
            }
            fprintf(p.dat, "%lld %.10g %.10g %.10g %.10g\n", (long long)bud[b], w->fid[0], w->fid[1], w->fid[2], w->fid[3]);
            fprintf(r->md, "| %s | %lld | %.4f | %.4f | %.4f | %.4f |\n", meth[m], (long long)bud[b], w->fid[0], w->fid[1],
                    w->fid[2], w->fid[3]);
        }
    }
    fprintf(r->md, "\n");
    return plot_close(r, &p, "Attention-mass recall (share of dense attention probability on the tokens each method "
                      "attends) against the budget. The other metrics are in the .dat file and the table.", err);
}

static int plot_pareto(rpt *r, int memory, kv_err *err)
{
    plot p;
    if (plot_open(r, &p, memory ? "pareto_memory" : "pareto", err) != 0) return -1;
    plot_set(&p, "set title 'Pareto front, %s vs fidelity: %s on %s, context %lld, batch %lld, %s'\n",
             memory ? "peak memory" : "speedup", r->model, r->hw, (long long)r->max_context, (long long)r->batch, r->harness);
    if (memory)
        plot_set(&p, "set xlabel 'peak memory per rank (GB, lower is better)'\nset ylabel 'mean attention-mass recall'\n");
    else
        plot_set(&p, "set xlabel 'decode speedup vs full (x)'\nset ylabel 'mean attention-mass recall'\n");
    const char *meth[64];
    int nm = STR_AXIS(method, meth, 64);
    for (int m = 0; m < nm; m++) {
        int any = 0;
        for (size_t i = 0; i < r->n; i++) {
            const rrow *w = &r->rows[i];
            if (!in_slice(r, w) || strcmp(w->hw, r->hw) || w->context != r->max_context || strcmp(w->method, meth[m]) ||
                isnan(w->fid[0]))
                continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s with points pt %d ps 1.5 title '%s'", memory ? "($1/1e9):2" : "1:2",
                         m + 4, meth[m]);
                plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# %s mass_recall budget\n", memory ? "peak_bytes" : "speedup_vs_full");
                any = 1;
            }
            fprintf(p.dat, "%.10g %.10g %lld\n", memory ? w->peak : w->speedup, w->fid[0], (long long)w->budget);
        }
    }
    /* the front, ordered along x */
    rrow front[256];
    int nf = 0;
    for (size_t i = 0; i < r->n && nf < 256; i++) {
        const rrow *w = &r->rows[i];
        if (in_slice(r, w) && !strcmp(w->hw, r->hw) && w->context == r->max_context && (memory ? w->pm : w->ps) == 1)
            front[nf++] = *w;
    }
    for (int a = 1; a < nf; a++)
        for (int b = a; b > 0; b--) {
            double xa = memory ? front[b].peak : front[b].speedup, xb = memory ? front[b - 1].peak : front[b - 1].speedup;
            if (xa < xb) { rrow tmp = front[b]; front[b] = front[b - 1]; front[b - 1] = tmp; }
        }
    if (nf > 0) {
        plot_block(&p, "front", memory ? "($1/1e9):2 with lines lw 2 lc rgb 'black' title 'Pareto front'"
                                        : "1:2 with lines lw 2 lc rgb 'black' title 'Pareto front'");
        fprintf(p.dat, "# %s mass_recall (front)\n", memory ? "peak_bytes" : "speedup_vs_full");
        for (int i = 0; i < nf; i++)
            fprintf(p.dat, "%.10g %.10g\n", memory ? front[i].peak : front[i].speedup, front[i].fid[0]);
    }
    fprintf(r->md, "%s front (the CSV's `%s` column; points that fit):", memory ? "Memory–fidelity" : "Speed–fidelity",
            memory ? "pareto_memory_fidelity" : "pareto_speed_fidelity");
    for (int i = 0; i < nf; i++) {
        char t[32] = "";
        if (front[i].budget > 0) snprintf(t, sizeof t, " t=%lld", (long long)front[i].budget);
        fprintf(r->md, "%s %s%s (%.2f%s, recall %.4f)", i ? "," : "", front[i].method, t,
                memory ? front[i].peak / 1e9 : front[i].speedup, memory ? " GB" : "x", front[i].fid[0]);
    }
    fprintf(r->md, "\n\n");
    char cap[256];
    snprintf(cap, sizeof cap, "Every (method, budget) at context %lld; the line joins the points no other point beats "
             "on both axes.", (long long)r->max_context);
    return plot_close(r, &p, cap, err);
}

/* The model and GPU files a sweep used, from its header comments. */
static const char *input_path(const rpt *r, const char *kind, const char *name, char *buf, size_t cap)
{
    size_t kl = strlen(kind), nl = strlen(name);
    for (size_t i = 0; i < r->t.ncomments; i++) {
        const char *c = r->t.comments[i];
        if (!strncmp(c, "# ", 2) && !strncmp(c + 2, kind, kl) && c[2 + kl] == ' ' && !strncmp(c + 3 + kl, name, nl) &&
            c[3 + kl + nl] == ' ') {
            const char *p = c + 4 + kl + nl, *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len < cap) {
                memcpy(buf, p, len);
                buf[len] = '\0';
                return buf;
            }
        }
    }
    return name;
}

static int predict_point(const rpt *r, const mdl_model *m, const hw_model *h, const char *method, int64_t budget,
                         int64_t context, int64_t batch, int64_t max_new, sim_result *res, kv_err *err)
{
    rkv_request rq;
    rkv_params p;
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = context;
    rq.max_new = max_new;
    rq.budget = budget > 0 ? budget : 1024;
    if (rkv_params_resolve(method, &rq, &p, err) != 0) return -1;
    sim_config c;
    sim_config_defaults(&c, m, h, &p);
    c.batch = batch;
    c.tp = (int)r->tp;
    sim_harness_parse(r->harness, &c.harness);
    return sim_predict(&c, res, err);
}

static int plot_roofline(rpt *r, kv_err *err)
{
    char mp[600], hp[600];
    static mdl_model m;
    static hw_model h;
    if (mdl_model_load(input_path(r, "model", r->model, mp, sizeof mp), &m, err) != 0 ||
        hw_model_load(input_path(r, "hw", r->hw, hp, sizeof hp), &h, err) != 0)
        return -1;
    const int64_t max_new = inum(r->t.rows[0][swp_table_col(&r->t, "new")]);
    static sim_result res[2];
    const char *meth[2] = {rkv_method_baseline()->name, r->method};
    for (int i = 0; i < 2; i++)
        if (predict_point(r, &m, &h, meth[i], i ? r->budget : 0, r->max_context, r->batch, max_new, &res[i], err) != 0)
            return -1;
    plot p;
    if (plot_open(r, &p, "roofline", err) != 0) return -1;
    const double bw = h.hbm_bandwidth_bytes_per_s, peak = h.bf16_dense_flops;
    plot_set(&p, "set title 'roofline %s (%.0f TFLOP/s bf16, %.2f TB/s): decode step, %s, S=%lld, B=%lld'\n"
             "set key inside left top\n", h.name, peak / 1e12, bw / 1e12, r->model, (long long)r->max_context,
             (long long)r->batch);
    plot_set(&p, "set xlabel 'arithmetic intensity (FLOP/byte)'\nset ylabel 'attained FLOP/s'\nset logscale xy\n"
             "set format y '%%.0e'\nset xrange [0.05:2000]\nbw = %.10g\npeak = %.10g\nbweff = %.10g\ncpeak = %.10g\n"
             "roof(x) = x*bw < peak ? x*bw : peak\nroofeff(x) = x*bweff < cpeak ? x*bweff : cpeak\n", bw, peak,
             bw * h.stream_read_efficiency, peak * h.compute_efficiency);
    fprintf(r->md, "## Roofline: each kernel of one decode step\n\n%s on %s, context %lld, batch %lld, TP %lld, %s "
            "harness; %s at t=%lld vs full. Bytes and FLOPs per step per rank from `sim_predict` (mean over the decode "
            "steps); attained = FLOPs / predicted kernel time (incl. launch cost). Kernels without FLOPs (append, "
            "top-k, all-reduce) are listed but cannot sit on a log axis.\n\n| method | kernel | bytes/step | FLOPs/step | "
            "time/step (ms) | FLOP/byte | attained TFLOP/s |\n|---|---|---|---|---|---|---|\n", r->model, h.name,
            (long long)r->max_context, (long long)r->batch, (long long)r->tp, r->harness, r->method, (long long)r->budget);
    for (int i = 0; i < 2; i++) {
        char hd[64], spec[256];
        snprintf(hd, sizeof hd, "%s kernels: intensity attained_flops name", meth[i]);
        snprintf(spec, sizeof spec, "1:2 with points pt %d ps 2 title '%s kernels', '' index %d using 1:2:3 with labels "
                 "offset char 1,%d font ',8' notitle", i ? 7 : 5, meth[i], p.nblocks, i ? -1 : 1);
        plot_block(&p, hd, spec);
        for (int k = 0; k < SIM_K_N; k++) {
            const double by = res[i].kernel_bytes[k], fl = res[i].kernel_flops[k], ts = res[i].kernel_s[k];
            if (by <= 0.0 && fl <= 0.0) continue;
            char ai[32] = "–", at[32] = "–";
            if (by > 0 && fl > 0 && ts > 0) {
                snprintf(ai, sizeof ai, "%.3g", fl / by);
                snprintf(at, sizeof at, "%.3g", fl / ts / 1e12);
                fprintf(p.dat, "%.10g %.10g %s\n", fl / by, fl / ts, sim_kernel_names[k]);
            }
            fprintf(r->md, "| %s | %s | %.4g | %.4g | %.4f | %s | %s |\n", meth[i], sim_kernel_names[k], by, fl, ts * 1e3,
                    ai, at);
        }
    }
    fprintf(r->md, "\n");
    /* the roofs are functions; one dummy block keeps plot_close's bookkeeping simple */
    size_t n = strlen(p.cmd);
    snprintf(p.cmd + n, sizeof p.cmd - n, ", \\\n     roof(x) with lines lw 2 lc rgb 'black' title 'datasheet roof', "
             "\\\n     roofeff(x) with lines dt 2 lc rgb 'gray40' title 'roof x efficiencies (hwmodels)'");
    char cap[256];
    snprintf(cap, sizeof cap, "Every kernel with FLOPs of one decode step of full and %s t=%lld, placed by its "
             "arithmetic intensity and attained throughput under the %s roofline.", r->method, (long long)r->budget, h.name);
    return plot_close(r, &p, cap, err);
}

/* Which GPUs, how many: per (GPU, context), the largest batch at each TP for
 * full and the reference method, and the fewest ranks on which batch 1 fits. */
static void capacity_table(rpt *r)
{
    const char *hws[64];
    int64_t ctx[64], tps[64];
    int nh = STR_AXIS(hw, hws, 64), nc = I64_AXIS(context, ctx, 64, 0), nt = I64_AXIS(tp, tps, 64, 0);
    fprintf(r->md, "## Capacity: largest batch per GPU and TP\n\n%s, %s harness; each cell: largest batch that fits per "
            "TP group, full / %s t=%lld (0: batch 1 does not fit). Tokens/s at that batch are in the CSV.\n\n| GPU | "
            "context |", r->model, r->harness, r->method, (long long)r->budget);
    for (int t = 0; t < nt; t++) fprintf(r->md, " TP %lld |", (long long)tps[t]);
    fprintf(r->md, " fewest GPUs for batch 1: full / %s |\n|---|---|", r->method);
    for (int t = 0; t <= nt; t++) fprintf(r->md, "---|");
    fprintf(r->md, "\n");
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) {
            int64_t need[2] = {0, 0};
            fprintf(r->md, "| %s | %lld |", hws[h], (long long)ctx[c]);
            for (int t = 0; t < nt; t++) {
                const rrow *f = find(r, hws[h], r->harness, rkv_method_baseline()->name, -1, ctx[c], r->batch, tps[t]);
                const rrow *k = find(r, hws[h], r->harness, r->method, r->budget, ctx[c], r->batch, tps[t]);
                if (f && f->max_batch > 0 && !need[0]) need[0] = tps[t];
                if (k && k->max_batch > 0 && !need[1]) need[1] = tps[t];
                if (f && k) fprintf(r->md, " %lld / %lld |", (long long)f->max_batch, (long long)k->max_batch);
                else fprintf(r->md, " – |");
            }
            char a[32] = "none swept", b[32] = "none swept";
            if (need[0]) snprintf(a, sizeof a, "%lld", (long long)need[0]);
            if (need[1]) snprintf(b, sizeof b, "%lld", (long long)need[1]);
            fprintf(r->md, " %s / %s |\n", a, b);
        }
    fprintf(r->md, "\n");
}

/* ---- predicted vs measured (reports/gpu/ *.json from make gpu-check) ------------ */
static const char *hw_for_device(const char *dev)
{
    if (strstr(dev, "H200")) return "h200";
    if (strstr(dev, "B200")) return "b200";
    if (strstr(dev, "H100") && strstr(dev, "PCIe")) return "h100-pcie";
    if (strstr(dev, "H100") && strstr(dev, "NVL")) return "h100-nvl";
    if (strstr(dev, "H100")) return "h100-sxm";
    if (strstr(dev, "A100") && strstr(dev, "40")) return "a100-40g";
    if (strstr(dev, "A100")) return "a100-80g";
    if (strstr(dev, "L40S")) return "l40s";
    if (strstr(dev, "MI300X")) return "mi300x";
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int plot_measured(rpt *r, kv_err *err)
{
    DIR *d = r->o->gpu_dir ? opendir(r->o->gpu_dir) : NULL;
    char *files[256];
    int nfiles = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && nfiles < 256) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".json")) {
            files[nfiles] = malloc(strlen(r->o->gpu_dir) + n + 2);
            if (!files[nfiles]) break;
            sprintf(files[nfiles], "%s/%s", r->o->gpu_dir, e->d_name);
            nfiles++;
        }
    }
    if (d) closedir(d);
    fprintf(r->md, "## Predicted vs measured\n\n");
    if (nfiles == 0) {
        fprintf(r->md, "No measurements: %s/*.json does not exist yet (`make gpu-check` on a GPU writes them); "
                "this section then plots predicted vs measured attention time per layer.\n\n",
                r->o->gpu_dir ? r->o->gpu_dir : "reports/gpu");
        return 0;
    }
    qsort(files, (size_t)nfiles, sizeof *files, cmp_str);
    plot p;
    int rc = -1;
    if (plot_open(r, &p, "predicted_vs_measured", err) != 0) goto done;
    plot_set(&p, "set title 'attention time per layer: predicted (kvsim) vs measured (make gpu-check)'\n"
             "set xlabel 'measured (us)'\nset ylabel 'predicted (us)'\nset logscale xy\n");
    fprintf(r->md, "Each `step` timing of `make gpu-check` (one layer, all KV heads, Llama-3.1-8B shapes, CUDA graph, "
            "L2 flushed) against kvsim's predicted attention kernels for one layer (kv_append + attention kernels, "
            "mean over the decode steps, engine harness, the file's calibration applied when it has one).\n\n"
            "| file | GPU | method | context | t | batch | measured us | predicted us | error |\n"
            "|---|---|---|---|---|---|---|---|---|\n");
    static mdl_model m;
    if (mdl_model_load("llama3.1-8b", &m, err) != 0) goto done;
    double lo = INFINITY, hi = 0;
    for (int f = 0; f < nfiles; f++) {
        kv_jsonr_doc jd;
        memset(&jd, 0, sizeof jd);
        if (kv_jsonr_load_file(&jd, files[f], err) != 0) goto done;
        const kv_jsonr_node *dev = kv_jsonr_get(jd.root, "device"), *tm = kv_jsonr_get(jd.root, "timings");
        const char *hwn = dev && dev->kind == KV_JSONR_STR ? hw_for_device(dev->str) : NULL;
        static hw_model h;
        if (!hwn || !tm || tm->kind != KV_JSONR_ARR || hw_model_load(hwn, &h, err) != 0) {
            fprintf(r->md, "| %s | (skipped: no device or timings kvsim knows) |||||||| \n", files[f]);
            kv_jsonr_free(&jd);
            continue;
        }
        kv_err cerr;
        int calibrated = hw_model_apply_calibration(&h, files[f], &cerr) == 0;
        int any = 0;
        for (size_t i = 0; i < tm->n; i++) {
            const kv_jsonr_node *t = tm->items[i];
            const kv_jsonr_node *what = kv_jsonr_get(t, "what"), *meth = kv_jsonr_get(t, "method"),
                                *ctx = kv_jsonr_get(t, "context"), *bud = kv_jsonr_get(t, "budget"),
                                *bat = kv_jsonr_get(t, "batch"), *med = kv_jsonr_get(t, "median_s");
            if (!what || what->kind != KV_JSONR_STR || strcmp(what->str, "step") || !meth || meth->kind != KV_JSONR_STR ||
                !ctx || !bud || !bat || !med || med->kind != KV_JSONR_NUM || !rkv_method_find(meth->str))
                continue;
            sim_result res;
            rpt rr = *r;
            rr.tp = 1;
            rr.harness = "engine";
            if (predict_point(&rr, &m, &h, meth->str, (int64_t)bud->num, (int64_t)ctx->num, (int64_t)bat->num, 50, &res,
                              err) != 0)
                goto done;
            double pred = (res.kernel_s[SIM_K_KV_APPEND] + res.kernel_s[SIM_K_ATTN_DENSE] + res.kernel_s[SIM_K_AUX_SCORE] +
                           res.kernel_s[SIM_K_TOPK] + res.kernel_s[SIM_K_ATTN_SPARSE]) / m.num_hidden_layers;
            if (!any) {
                char hd[256], spec[300];
                snprintf(hd, sizeof hd, "%s (%s)", files[f], hwn);
                snprintf(spec, sizeof spec, "($1*1e6):($2*1e6) with points pt 7 title '%s%s'", hwn,
                         calibrated ? " (calibrated)" : "");
                plot_block(&p, hd, spec);
                fprintf(p.dat, "# measured_s predicted_s method context budget batch\n");
                any = 1;
            }
            fprintf(p.dat, "%.10g %.10g %s %lld %lld %lld\n", med->num, pred, meth->str, (long long)ctx->num,
                    (long long)bud->num, (long long)bat->num);
            fprintf(r->md, "| %s | %s | %s | %lld | %lld | %lld | %.1f | %.1f | %+.0f%% |\n", files[f], hwn, meth->str,
                    (long long)ctx->num, (long long)bud->num, (long long)bat->num, med->num * 1e6, pred * 1e6,
                    100.0 * (pred / med->num - 1.0));
            lo = fmin(lo, fmin(med->num, pred));
            hi = fmax(hi, fmax(med->num, pred));
        }
        kv_jsonr_free(&jd);
    }
    fprintf(r->md, "\n");
    if (p.nblocks > 0) {
        size_t n = strlen(p.cmd);
        snprintf(p.cmd + n, sizeof p.cmd - n, ", \\\n     x with lines dt 2 lc rgb 'gray40' title 'predicted = measured'");
        plot_set(&p, "set xrange [%.6g:%.6g]\nset yrange [%.6g:%.6g]\n", lo * 1e6 / 1.5, hi * 1e6 * 1.5, lo * 1e6 / 1.5,
                 hi * 1e6 * 1.5);
    }
    rc = plot_close(r, &p, "Predicted against measured attention time per layer; on the dashed line the prediction is exact.", err);
done:
    for (int f = 0; f < nfiles; f++) free(files[f]);
    return rc;
}

/* ---- README and driver ------------------------------------------------------------- */
static void pick_slice(rpt *r)
{
    const rrow *w0 = &r->rows[0];
    r->model = w0->model;
    r->hw = w0->hw;
    r->harness = w0->harness;
    r->tp = w0->tp;
    r->batch = w0->batch;
    r->method = rkv_method_baseline()->name;
    int has_featured = 0, has_1024 = 0;
    int64_t bmin = 0;
    r->max_context = 0;
    for (size_t i = 0; i < r->n; i++) {
        const rrow *w = &r->rows[i];
        if (strcmp(w->model, r->model) || strcmp(w->hw, r->hw)) continue;
        if (!strcmp(w->harness, "engine")) r->harness = "engine";
        if (w->tp < r->tp) r->tp = w->tp;
        if (w->batch < r->batch) r->batch = w->batch;
        if (!strcmp(w->method, RPT_FEATURED_METHOD)) has_featured = 1;
        else if (!is_dense(w->method) && is_dense(r->method)) r->method = w->method;
        if (w->budget == 1024) has_1024 = 1;
        if (w->budget > 0 && (bmin == 0 || w->budget < bmin)) bmin = w->budget;
        if (w->context > r->max_context) r->max_context = w->context;
    }
    if (has_featured) r->method = RPT_FEATURED_METHOD;
    if (r->o->tp > 0) r->tp = r->o->tp;
    r->budget = has_1024 ? 1024 : bmin;
}

static int mkdir_p(const char *dir, kv_err *err)
{
    char buf[1024];
    if (strlen(dir) >= sizeof buf) return kv_errf(err, "%s: path too long", dir);
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return kv_errf(err, "%s: cannot create: %s", buf, strerror(errno));
            *s = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return kv_errf(err, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

static int append_file(FILE *out, const char *path, kv_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, out);
    fclose(f);
    return 0;
}

int rpt_write(const rpt_opts *o, rpt_summary *s, kv_err *err)
{
    static rpt r;
    memset(&r, 0, sizeof r);
    memset(s, 0, sizeof *s);
    r.o = o;
    r.sum = s;
    int rc = -1;
    kv_afile md;
    memset(&md, 0, sizeof md);
    if (rpt_find_gnuplot(r.gnuplot, sizeof r.gnuplot, r.term, sizeof r.term, err) != 0)
        return -1;
    snprintf(s->png_terminal, sizeof s->png_terminal, "%s", r.term);
    if (o->notes && access(o->notes, R_OK) != 0)
        return kv_errf(err, "%s: cannot read the notes file: %s", o->notes, strerror(errno));
    if (load_rows(&r, err) != 0 || mkdir_p(o->out_dir, err) != 0)
        goto done;
    pick_slice(&r);
    char path[1200];
    snprintf(path, sizeof path, "%s/gnuplot.log", o->out_dir);
    remove(path);
    snprintf(path, sizeof path, "%s/README.md", o->out_dir);
    if (kv_afile_open(&md, path, err) != 0)
        goto done;
    r.md = md.fp;
    const char *id = swp_table_meta(&r.t, "id"), *pts = swp_table_meta(&r.t, "points");
    fprintf(r.md, "# kvsim report: %s on %s\n\n", r.model, r.hw);
    fprintf(r.md, "Made by `kvsim report` (kvsim %s) from `%s` (%zu rows; sweep id `%.16s…`, %s points). Every figure "
            "is a prediction of kvsim's roofline model (sim/README.md) unless it says *measured*; fidelity figures come "
            "from the CPU reference on a synthetic workload.\n\n",
            KV_VERSION, o->sweep_csv, r.n, id ? id : "?", pts ? pts : "?");
    if (o->command) fprintf(r.md, "Command:\n\n```\n%s\n```\n\n", o->command);
    fprintf(r.md, "Slices shown (where a plot holds other axes fixed): model %s, GPU %s, TP %lld, batch %lld, %s harness, "
            "reference method %s at t=%lld, largest context %lld.\n\n",
            r.model, r.hw, (long long)r.tp, (long long)r.batch, r.harness, r.method, (long long)r.budget,
            (long long)r.max_context);
    fprintf(r.md, "Sweep header (inputs and their SHA-256):\n\n```\n");
    for (size_t i = 0; i < r.t.ncomments; i++) fprintf(r.md, "%s\n", r.t.comments[i]);
    fprintf(r.md, "```\n\n");
    if (plot_speedup_budget(&r, err) != 0 || plot_speedup_methods(&r, err) != 0 || plot_memory_context(&r, 0, err) != 0 ||
        plot_memory_context(&r, 1, err) != 0)
        goto done;
    capacity_table(&r);
    if (r.has_fid) {
        if (plot_fidelity(&r, err) != 0 || plot_pareto(&r, 0, err) != 0 || plot_pareto(&r, 1, err) != 0)
            goto done;
    } else {
        fprintf(r.md, "## Fidelity and Pareto front\n\nNot drawn: the sweep ran without a workload (no fidelity "
                "columns). Add `--workload builtin` (or a `fidelity:` section in the spec).\n\n");
    }
    if (plot_roofline(&r, err) != 0 || plot_measured(&r, err) != 0)
        goto done;
    fprintf(r.md, "## Regenerate\n\nEach plot is `NAME.gp` + `NAME.dat` in this directory: `gnuplot NAME.gp` redraws "
            "NAME.png (%s terminal) and NAME.svg. The whole directory: `kvsim report --sweep %s --out %s`.\n\n",
            r.term, o->sweep_csv, o->out_dir);
    if (o->notes) {
        fprintf(r.md, "---\n\n");
        if (append_file(r.md, o->notes, err) != 0) goto done;
    }
    r.md = NULL;
    if (kv_afile_commit(&md, err) != 0)
        goto done;
    struct stat sb; /* an empty gnuplot.log says nothing */
    snprintf(path, sizeof path, "%s/gnuplot.log", o->out_dir);
    if (stat(path, &sb) == 0 && sb.st_size == 0) remove(path);
    rc = 0;
done:
    if (r.md) kv_afile_abort(&md);
    free(r.rows);
    swp_table_free(&r.t);
    return rc;
}
