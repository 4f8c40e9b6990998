/* cmd_report.c — `kvsim report --sweep FILE.csv --out DIR`: plots and a README
 * from a sweep CSV (report/rpt.h does the work). */
#include "cli.h"
#include "rpt.h"

#include <string.h>

static void help(void)
{
    printf("usage: kvsim report --sweep FILE.csv --out DIR [--gpu-dir DIR] [--notes FILE.md] [--tp N]\n"
           "       kvsim report [--serve RATES.csv] [--timeline STEPS.csv] --out DIR\n\n"
           "Serving (kvsim serve): --serve draws TTFT and TPOT (p50, p95) against the request rate from a\n"
           "kvsim serve --csv sweep over rates; --timeline the KV-pool occupancy and the batch per engine step\n"
           "from kvsim serve --timeline.\n\n"
           "Writes DIR/README.md and, drawn by gnuplot (PNG and SVG, with the NAME.gp script and NAME.dat data\n"
           "beside each so it can be redrawn): speedup vs budget per context and per method, peak memory and\n"
           "largest batch vs context per GPU, fidelity vs budget and the Pareto fronts (when the sweep has\n"
           "fidelity), a roofline with each kernel of one decode step, and predicted vs measured when\n"
           "--gpu-dir (reports/gpu) holds make gpu-check JSON files.\n\n"
           "  --sweep FILE    a CSV written by kvsim sweep\n"
           "  --out DIR       output directory (created)\n"
           "  --gpu-dir DIR   measurements (reports/gpu when it exists)\n"
           "  --notes FILE    markdown appended to README.md (e.g. the comparison with published figures)\n"
           "  --tp N          TP of the slices the plots hold fixed (the smallest swept)\n"
           "Needs gnuplot on PATH (Debian: gnuplot-nox).\n");
}

/* --serve RATES.csv and/or --timeline STEPS.csv: the serving plots. */
static int serve_report(const cli_opts *o, int argc, char **argv, const char *serve_csv, const char *timeline,
                        const char *out)
{
    static char cmd[4096];
    size_t n = 0;
    for (int i = 0; i < argc && n < sizeof cmd - 2; i++) {
        int k = snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "kvsim ", argv[i]);
        if (k > 0) n += (size_t)k;
    }
    rpt_serve_opts so = {serve_csv, timeline, out, cmd};
    rpt_summary s;
    kv_err err;
    if (rpt_serve_write(&so, &s, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    printf("kvsim report: %s/README.md, %d plots (%s and svg)\n", out, s.plots, s.png_terminal);
    return CLI_OK;
}

int cmd_report(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim report", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    rpt_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.sweep_csv = cli_opt_str(&o, "sweep", NULL);
    const char *serve_csv = cli_opt_str(&o, "serve", NULL), *timeline = cli_opt_str(&o, "timeline", NULL);
    ro.out_dir = cli_opt_str(&o, "out", NULL);
    ro.gpu_dir = cli_opt_str(&o, "gpu-dir", "reports/gpu");
    ro.notes = cli_opt_str(&o, "notes", NULL);
    int64_t tp;
    if (cli_opt_i64_in(&o, "tp", 0, 1, 1024, &tp)) return CLI_USAGE;
    ro.tp = tp;
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if ((serve_csv || timeline) && !ro.sweep_csv && ro.out_dir)
        return serve_report(&o, argc, argv, serve_csv, timeline, ro.out_dir);
    if (!ro.sweep_csv || !ro.out_dir) {
        cli_error(o.prog, "--sweep FILE.csv and --out DIR are required");
        return CLI_USAGE;
    }
    if (cli_in_check(&o, "sweep", ro.sweep_csv, 0) != 0 || cli_out_check(&o, "out", ro.out_dir, 1) != 0)
        return CLI_USAGE;
    static char cmd[4096];
    size_t n = 0;
    for (int i = 0; i < argc && n < sizeof cmd - 2; i++) {
        int k = snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "kvsim ", argv[i]);
        if (k > 0) n += (size_t)k;
    }
    ro.command = cmd;
    rpt_summary s;
    kv_err err;
    if (rpt_write(&ro, &s, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    printf("kvsim report: %s/README.md, %d plots (%s and svg)%s\n", ro.out_dir, s.plots, s.png_terminal,
           s.skipped ? ", some skipped (see README)" : "");
    return CLI_OK;
}
