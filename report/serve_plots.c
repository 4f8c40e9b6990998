/* serve_plots.c — `kvsim report --serve RATES.csv [--timeline STEPS.csv]`:
 * latency vs request rate (TTFT and TPOT, p50 and p95, one line per GPU ×
 * TP × method × budget) from a `kvsim serve --csv` sweep over rates, and the
 * KV-pool occupancy and running sequences over time from a `kvsim serve
 * --timeline` file; README.md, NAME.dat, NAME.gp, PNG and SVG as the sweep
 * report writes them. */
#include "rkv.h"
#include "rpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXCOL 64
#define MAXROWS 4096

typedef struct {
    char *text;                    /* the file, split in place */
    int ncol, nrows;
    char *head[MAXCOL];
    char **cell;                   /* (nrows, ncol) */
} csv_t;

static int csv_load(const char *path, csv_t *c, kv_err *err)
{
    memset(c, 0, sizeof *c);
    char *buf;
    size_t len;
    if (kv_read_file(path, (size_t)1 << 30, &buf, &len, err) != 0) return -1;
    c->text = malloc(len + 1);
    memcpy(c->text, buf, len);
    c->text[len] = 0;
    free(buf);
    c->cell = calloc((size_t)MAXROWS * MAXCOL, sizeof *c->cell);
    char *save = NULL;
    int line = 0;
    for (char *ln = strtok_r(c->text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), line++) {
        char **dst = line == 0 ? c->head : c->cell + (size_t)c->nrows * MAXCOL;
        int n = 0;
        for (char *f = ln, *e; f && n < MAXCOL; f = e ? e + 1 : NULL) {
            e = strchr(f, ',');
            if (e) *e = 0;
            dst[n++] = f;
        }
        if (line == 0) c->ncol = n;
        else if (n != c->ncol) return kv_errf(err, "%s:%d: %d fields, the header has %d", path, line + 1, n, c->ncol);
        else if (++c->nrows == MAXROWS) return kv_errf(err, "%s: more than %d rows", path, MAXROWS - 1);
    }
    if (c->ncol == 0) return kv_errf(err, "%s: empty", path);
    return 0;
}

static void csv_free(csv_t *c)
{
    free(c->text);
    free(c->cell);
}

static int col(const csv_t *c, const char *name, const char *path, kv_err *err)
{
    for (int i = 0; i < c->ncol; i++)
        if (!strcmp(c->head[i], name)) return i;
    return kv_errf(err, "%s: no column '%s' (a kvsim serve --csv / --timeline file?)", path, name) - 1;
}

static int gnuplot(const char *gp, const char *dir, const char *script, kv_err *err)
{
    pid_t pid = fork();
    if (pid < 0) return kv_errf(err, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(126);
        FILE *lg = fopen("gnuplot.log", "a");
        if (lg) { dup2(fileno(lg), 1); dup2(fileno(lg), 2); }
        execl(gp, "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return kv_errf(err, "gnuplot failed on %s/%s (see %s/gnuplot.log)", dir, script, dir);
    return 0;
}

/* NAME.gp drawing `plot` (PNG then SVG) over NAME.dat, run, linked in md. */
static int draw(const rpt_serve_opts *o, const char *gp, const char *term, FILE *md, const char *name,
                const char *settings, const char *plot, const char *caption, kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gp", o->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return kv_errf(err, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "# %s.gp — written by kvsim report; run `gnuplot %s.gp` here to redraw from %s.dat\n", name, name, name);
    const char *terms[2][2] = {{term, "png"}, {"svg", "svg"}};
    for (int t = 0; t < 2; t++)
        fprintf(f, "reset\nset terminal %s size 960,600 noenhanced\nset output '%s.%s'\nset grid\nset key outside "
                "right top\n%s\nplot %s\nunset output\n", terms[t][0], name, terms[t][1], settings, plot);
    fclose(f);
    snprintf(path, sizeof path, "%s.gp", name);
    if (gnuplot(gp, o->out_dir, path, err) != 0) return -1;
    fprintf(md, "![%s](%s.png)\n\n%s ([SVG](%s.svg), data [%s.dat](%s.dat), script [%s.gp](%s.gp))\n\n", name, name,
            caption, name, name, name, name, name);
    return 0;
}

/* One data block per GPU × TP × method × budget, rows in file order (rates ascending as swept). */
static int latency_plots(const rpt_serve_opts *o, const char *gp, const char *term, FILE *md, rpt_summary *s,
                         kv_err *err)
{
    csv_t c;
    if (csv_load(o->serve_csv, &c, err) != 0) { csv_free(&c); return -1; }
    const char *names[] = {"hw", "tp", "method", "budget", "rate", "ttft_p50_s", "ttft_p95_s", "tpot_p50_s",
                           "tpot_p95_s"};
    int k[9];
    for (int i = 0; i < 9; i++)
        if ((k[i] = col(&c, names[i], o->serve_csv, err)) < 0) { csv_free(&c); return -1; }
    char path[1200];
    snprintf(path, sizeof path, "%s/latency_vs_rate.dat", o->out_dir);
    FILE *dat = fopen(path, "w");
    if (!dat) { csv_free(&c); return kv_errf(err, "%s: cannot create: %s", path, strerror(errno)); }
    static char done[MAXROWS], plot_t[16384], plot_p[16384];
    memset(done, 0, sizeof done);
    size_t nt = 0, np = 0;
    int blocks = 0;
    for (int i = 0; i < c.nrows; i++) {
        if (done[i]) continue;
        char **a = c.cell + (size_t)i * MAXCOL, label[256];
        const rkv_method_type *mt = rkv_method_find(a[k[2]]);
        const int dense = mt && mt->traits.dense; /* the budget means nothing to a dense method */
        snprintf(label, sizeof label, "%s TP%s %s%s%s", a[k[0]], a[k[1]], a[k[2]], dense ? "" : " t=",
                 dense ? "" : a[k[3]]);
        fprintf(dat, "%s# %s\n# rate_per_s ttft_p50_s ttft_p95_s tpot_p50_s tpot_p95_s\n", blocks ? "\n\n" : "", label);
        for (int j = i; j < c.nrows; j++) {
            char **b = c.cell + (size_t)j * MAXCOL;
            int same = 1;
            for (int q = 0; q < 4; q++) same &= !strcmp(a[k[q]], b[k[q]]);
            if (!same) continue;
            done[j] = 1;
            fprintf(dat, "%s %s %s %s %s\n", b[k[4]], b[k[5]], b[k[6]], b[k[7]], b[k[8]]);
        }
        nt += (size_t)snprintf(plot_t + nt, sizeof plot_t - nt, "%s'latency_vs_rate.dat' index %d using 1:2 with "
                               "linespoints title '%s p50', '' index %d using 1:3 with linespoints dt 2 title '%s p95'",
                               blocks ? ", \\\n     " : "", blocks, label, blocks, label);
        np += (size_t)snprintf(plot_p + np, sizeof plot_p - np, "%s'latency_vs_rate.dat' index %d using 1:($4*1e3) with "
                               "linespoints title '%s p50', '' index %d using 1:($5*1e3) with linespoints dt 2 title "
                               "'%s p95'", blocks ? ", \\\n     " : "", blocks, label, blocks, label);
        blocks++;
        if (nt >= sizeof plot_t - 512 || np >= sizeof plot_p - 512) break;
    }
    fclose(dat);
    csv_free(&c);
    fprintf(md, "## Latency vs request rate\n\nFrom `%s`.\n\n", o->serve_csv);
    if (draw(o, gp, term, md, "ttft_vs_rate", "set xlabel 'requests/s'\nset ylabel 'TTFT (s)'\nset logscale y\n",
             plot_t, "Time to first token, p50 (solid) and p95 (dashed), against the request rate.", err) != 0 ||
        draw(o, gp, term, md, "tpot_vs_rate", "set xlabel 'requests/s'\nset ylabel 'TPOT (ms)'\n", plot_p,
             "Time per output token, p50 (solid) and p95 (dashed), against the request rate.", err) != 0)
        return -1;
    s->plots += 2;
    return 0;
}

static int occupancy_plot(const rpt_serve_opts *o, const char *gp, const char *term, FILE *md, rpt_summary *s,
                          kv_err *err)
{
    csv_t c;
    if (csv_load(o->timeline_csv, &c, err) != 0) { csv_free(&c); return -1; }
    int kt = col(&c, "t_s", o->timeline_csv, err), ko = col(&c, "kv_occupancy", o->timeline_csv, err),
        kr = col(&c, "running", o->timeline_csv, err), kd = col(&c, "decode_seqs", o->timeline_csv, err);
    if (kt < 0 || ko < 0 || kr < 0 || kd < 0) { csv_free(&c); return -1; }
    char path[1200];
    snprintf(path, sizeof path, "%s/occupancy.dat", o->out_dir);
    FILE *dat = fopen(path, "w");
    if (!dat) { csv_free(&c); return kv_errf(err, "%s: cannot create: %s", path, strerror(errno)); }
    fprintf(dat, "# t_s kv_occupancy running decode_seqs (every engine step of %s)\n", o->timeline_csv);
    for (int i = 0; i < c.nrows; i++) {
        char **a = c.cell + (size_t)i * MAXCOL;
        fprintf(dat, "%s %s %s %s\n", a[kt], a[ko], a[kr], a[kd]);
    }
    fclose(dat);
    csv_free(&c);
    fprintf(md, "## KV pool and batch over time\n\nFrom `%s` (the first %d engine steps).\n\n", o->timeline_csv,
            MAXROWS - 1);
    if (draw(o, gp, term, md, "occupancy", "set xlabel 'time (s)'\nset ylabel 'KV pool occupancy (%)'\nset y2label "
             "'sequences'\nset ytics nomirror\nset y2tics\n",
             "'occupancy.dat' using 1:($2*100) with lines title 'KV pool occupancy', '' using 1:3 axes x1y2 with lines "
             "title 'running', '' using 1:4 axes x1y2 with lines title 'decoded in the step'",
             "KV-pool occupancy (left) and running / decoding sequences (right) per engine step.", err) != 0)
        return -1;
    s->plots++;
    return 0;
}

int rpt_serve_write(const rpt_serve_opts *o, rpt_summary *s, kv_err *err)
{
    memset(s, 0, sizeof *s);
    char gp[1024];
    if (rpt_find_gnuplot(gp, sizeof gp, s->png_terminal, sizeof s->png_terminal, err) != 0) return -1;
    if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return kv_errf(err, "%s: cannot create: %s", o->out_dir, strerror(errno));
    char path[1200];
    snprintf(path, sizeof path, "%s/README.md", o->out_dir);
    kv_afile md;
    if (kv_afile_open(&md, path, err) != 0) return -1;
    fprintf(md.fp, "# Serving report\n\n");
    if (o->command) fprintf(md.fp, "Made by `%s`.\n\n", o->command);
    int rc = 0;
    if (o->serve_csv) rc = latency_plots(o, gp, s->png_terminal, md.fp, s, err);
    if (rc == 0 && o->timeline_csv) rc = occupancy_plot(o, gp, s->png_terminal, md.fp, s, err);
    if (rc != 0) {
        kv_afile_abort(&md);
        return -1;
    }
    return kv_afile_commit(&md, err);
}
