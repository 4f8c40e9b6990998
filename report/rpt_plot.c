/* rpt_plot.c — one plot: NAME.dat, NAME.gp, gnuplot run, the README link. */
#define _POSIX_C_SOURCE 200809L
#include "rpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

int rpt_plot_open(rpt *r, rpt_plot *p, const char *name, kv_err *err)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.dat", r->o->out_dir, name);
    p->dat = fopen(path, "w");
    if (!p->dat) return kv_errf(err, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

void rpt_plot_set(rpt_plot *p, const char *fmt, ...)
{
    size_t n = strlen(p->settings);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->settings + n, sizeof p->settings - n, fmt, ap);
    va_end(ap);
}

/* Starts a data block; the caller writes rows to p->dat; spec is what follows
 * "using" (e.g. "1:($2/1e9) with linespoints title 'x'"). */
void rpt_plot_block(rpt_plot *p, const char *header, const char *spec)
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
int rpt_plot_close(rpt *r, rpt_plot *p, const char *caption, kv_err *err)
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
