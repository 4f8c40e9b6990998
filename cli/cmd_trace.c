/* cmd_trace.c — `kvsim trace`: run the reference with fidelity's flags and
 * record every decode step's accesses to a trace file (traces/FORMAT.md). */
#include "run_setup.h"
#include "trc.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: kvsim trace --out FILE [--batch B] [--with-fidelity] --model M --method X --budget T\n"
           "                   --context S [--steps N] [--workload FILE] [--layers LIST] [--seed N]\n\n"
           "Runs the CPU reference (all KV heads, --steps decode steps, the layers asked\n"
           "for) and writes what each step read: attended positions, chosen dims, pages\n"
           "scored, bytes per access category, sectors and KV pages touched. The file is\n"
           "written under a temporary name and renamed when complete. One method and one\n"
           "budget per file.\n\n%s%s"
           "  --out FILE         the trace to write (required)\n"
           "  --batch B          B independent sequences, seeds seed .. seed+B-1 (1)\n"
           "  --with-fidelity    also store the fidelity figures of every record\n",
           cli_run_setup_help, cli_run_help);
}

int cmd_trace(int argc, char **argv)
{
    static const char *const flags[] = {"help", "with-fidelity", "json", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim trace", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    /* the output path first: a gguf: workload is captured while the options are read */
    const char *out = cli_opt_str(&o, "out", NULL);
    if (cli_out_check(&o, "out", out, 0) != 0)
        return CLI_USAGE;
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 1);
    if (rc != CLI_OK)
        return rc;
    int64_t batch;
    if (cli_opt_i64_in(&o, "batch", 1, 1, 4096, &batch))
        return CLI_USAGE;
    const int with_fid = cli_opt_flag(&o, "with-fidelity");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (s.cfg.nsets != 1) {
        cli_error(o.prog, "one method and one budget per trace, got %d combinations", s.cfg.nsets);
        return CLI_USAGE;
    }
    s.cfg.on_progress = cli_progress;
    kv_err err;
    double t0 = kv_now_s();
    trc_write_stats ws;
    if (trc_record_run(out, &s.cfg, (int)batch, with_fid, &ws, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    fprintf(stderr, "kvsim trace: wrote %s: %lld steps x %lld sequences, %lld bytes, %lld attended positions "
                    "(%.3f bytes each), %.2f s wall on %d threads, writer %.3f s CPU\n", out, (long long)s.cfg.steps,
            (long long)batch, (long long)ws.file_bytes, (long long)ws.positions,
            ws.positions ? (double)ws.file_bytes / (double)ws.positions : 0.0, kv_now_s() - t0, s.cfg.threads,
            ws.writer_cpu_s);
    return CLI_OK;
}
