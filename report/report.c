/* report.c — rpt_write (rpt.h): reads a sweep CSV, picks the slices each plot
 * shows (first model, first GPU, smallest TP and batch, the engine harness
 * when present, rocketkv as the reference method, budget 1024 when swept),
 * writes NAME.dat + NAME.gp per plot, runs gnuplot on each, and writes
 * README.md with the plots, the slices, tables of the numbers behind them
 * and how to regenerate everything.
 *
 * Numbers in .dat files are SI (bytes, seconds, FLOP/s); the scripts scale
 * for the axes (GB, ms). This file holds the driver, the CSV rows and the
 * slice; rpt_plot.c draws one plot; each plot family has its own file
 * (rpt_internal.h lists them). */
#define _POSIX_C_SOURCE 200809L
#include "rpt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv_jsonr.h"

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

double rpt_num(const char *s)
{
    char *end;
    if (!*s) return NAN;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

int64_t rpt_inum(const char *s)
{
    double v = rpt_num(s);
    return isnan(v) ? 0 : (int64_t)v;
}

/* The workload of the sweep's fidelity columns: the word after "# workload " in
 * its header ("none" when it ran without one, "?" when the header has no such line). */
static void workload_of(const swp_table *t, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    for (size_t i = 0; i < t->ncomments; i++)
        if (!strncmp(t->comments[i], "# workload ", 11)) {
            const char *w = t->comments[i] + 11;
            size_t n = strcspn(w, " ");
            snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), w);
        }
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
        rpt_row *w = &r->rows[i];
        w->model = C("model"); w->hw = C("hw"); w->harness = C("harness"); w->method = C("method");
        const rkv_method_type *mt = rkv_method_get(w->method, err);
        if (!mt) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            free(r->rows);
            r->rows = NULL;
            return kv_errf(err, "%s: row %zu: %s", r->o->sweep_csv, i + 1, msg);
        }
        w->tp = rpt_inum(C("tp")); w->budget = rpt_inum(C("budget")); w->context = rpt_inum(C("context"));
        w->batch = rpt_inum(C("batch")); w->max_batch = rpt_inum(C("max_batch")); w->fid_context = rpt_inum(C("fid_context"));
        w->step = rpt_num(C("step_time_s")); w->tps = rpt_num(C("tokens_per_s")); w->speedup = rpt_num(C("speedup_vs_full"));
        w->peak = rpt_num(C("peak_bytes")); w->kv = rpt_num(C("kv_bytes")); w->aux = rpt_num(C("aux_bytes"));
        w->weights = rpt_num(C("weights_bytes")); w->cap = rpt_num(C("capacity_bytes")); w->full_peak = rpt_num(C("full_peak_bytes"));
        w->fits = !strcmp(C("fits"), "1");
        w->fid[0] = rpt_num(C("fid_mass_recall")); w->fid[1] = rpt_num(C("fid_output_rel_err"));
        w->fid[2] = rpt_num(C("fid_topk_recall")); w->fid[3] = rpt_num(C("fid_stage1_survival"));
        const char *ps = C("pareto_speed_fidelity"), *pm = C("pareto_memory_fidelity");
        w->ps = *ps ? atoi(ps) : -1;
        w->pm = *pm ? atoi(pm) : -1;
        if (!isnan(w->fid[0])) r->has_fid = 1;
    }
#undef C
    return 0;
}

/* 1 when the (known: load_rows checked) method attends the whole cache. */
int rpt_is_dense(const char *method)
{
    const rkv_method_type *mt = rkv_method_find(method);
    return mt && mt->traits.dense;
}

/* Distinct values in order of first appearance (point order = spec order). */
int rpt_distinct_str(const rpt *r, size_t off, const char **out, int max)
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

int rpt_distinct_i64(const rpt *r, size_t off, int64_t *out, int max, int skip_zero)
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


int rpt_in_slice(const rpt *r, const rpt_row *w)
{
    return !strcmp(w->model, r->model) && !strcmp(w->harness, r->harness) && w->tp == r->tp && w->batch == r->batch;
}

const rpt_row *rpt_find(const rpt *r, const char *hw, const char *harness, const char *method, int64_t budget,
                        int64_t context, int64_t batch, int64_t tp)
{
    for (size_t i = 0; i < r->n; i++) {
        const rpt_row *w = &r->rows[i];
        if (!strcmp(w->model, r->model) && !strcmp(w->hw, hw) && !strcmp(w->harness, harness) &&
            !strcmp(w->method, method) && (budget < 0 || w->budget == budget) && w->context == context &&
            w->batch == batch && w->tp == tp)
            return w;
    }
    return NULL;
}

void rpt_human_tokens(int64_t v, char *buf, size_t cap)
{
    if (v % 1024 == 0) snprintf(buf, cap, "%lldK", (long long)(v / 1024));
    else snprintf(buf, cap, "%lld", (long long)v);
}

/* ---- README and driver ------------------------------------------------------------- */
static void pick_slice(rpt *r)
{
    const rpt_row *w0 = &r->rows[0];
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
        const rpt_row *w = &r->rows[i];
        if (strcmp(w->model, r->model) || strcmp(w->hw, r->hw)) continue;
        if (!strcmp(w->harness, "engine")) r->harness = "engine";
        if (w->tp < r->tp) r->tp = w->tp;
        if (w->batch < r->batch) r->batch = w->batch;
        if (!strcmp(w->method, RPT_FEATURED_METHOD)) has_featured = 1;
        else if (!rpt_is_dense(w->method) && rpt_is_dense(r->method)) r->method = w->method;
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
    char wname[256];
    workload_of(&r.t, wname, sizeof wname);
    fprintf(r.md, "Made by `kvsim report` (kvsim %s) from `%s` (%zu rows; sweep id `%.16s…`, %s points). Every figure "
            "is a prediction of kvsim's roofline model (sim/README.md) unless it says *measured*. ",
            KV_VERSION, o->sweep_csv, r.n, id ? id : "?", pts ? pts : "?");
    if (!strcmp(wname, "none"))
        fprintf(r.md, "It has no accuracy figures: the sweep ran without a workload.\n\n");
    else
        fprintf(r.md, "**Accuracy (fidelity) figures come from the CPU reference on workload `%s`**%s (the `# workload` "
                "line of the sweep header below names its file, SHA-256 and scoring setting).\n\n", wname,
                !strcmp(wname, "builtin") ? " — the hand-tuned generator, refimpl/workload.c" : "");
    if (o->command) fprintf(r.md, "Command:\n\n```\n%s\n```\n\n", o->command);
    fprintf(r.md, "Slices shown (where a plot holds other axes fixed): model %s, GPU %s, TP %lld, batch %lld, %s harness, "
            "reference method %s at t=%lld, largest context %lld.\n\n",
            r.model, r.hw, (long long)r.tp, (long long)r.batch, r.harness, r.method, (long long)r.budget,
            (long long)r.max_context);
    fprintf(r.md, "Sweep header (inputs and their SHA-256):\n\n```\n");
    for (size_t i = 0; i < r.t.ncomments; i++) fprintf(r.md, "%s\n", r.t.comments[i]);
    fprintf(r.md, "```\n\n");
    if (rpt_plot_speedup_budget(&r, err) != 0 || rpt_plot_speedup_methods(&r, err) != 0 || rpt_plot_memory_context(&r, 0, err) != 0 ||
        rpt_plot_memory_context(&r, 1, err) != 0)
        goto done;
    rpt_capacity_table(&r);
    if (r.has_fid) {
        if (rpt_plot_fidelity(&r, err) != 0 || rpt_plot_pareto(&r, 0, err) != 0 || rpt_plot_pareto(&r, 1, err) != 0)
            goto done;
    } else {
        fprintf(r.md, "## Fidelity and Pareto front\n\nNot drawn: the sweep ran without a workload (no fidelity "
                "columns). Add `--workload smollm2-heads` (or a `fidelity:` section in the spec).\n\n");
    }
    if (rpt_plot_roofline(&r, err) != 0 || rpt_plot_measured(&r, err) != 0)
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
