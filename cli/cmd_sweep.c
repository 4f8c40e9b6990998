/* cmd_sweep.c — `kvsim sweep`: a spec file or comma-list flags into a CSV
 * (sweep/swp.h does the work), with --shard, --resume and --merge. Prints
 * progress on stderr only when stderr is a terminal, and one summary line on
 * stdout at the end. */
#include "cli.h"
#include "swp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: kvsim sweep [SPEC.yaml] --out FILE.csv [axis flags] [--workload W] [--shard i/N] [--resume]\n"
           "       kvsim sweep --merge SHARD.csv... --out FILE.csv\n\n"
           "Every combination of models x hw x harness x tp x contexts x batches x (method, budget) priced by the\n"
           "roofline model (kvsim predict) and, with a workload, scored for fidelity by the CPU reference\n"
           "(kvsim fidelity). Rows stream to FILE.csv.partial as they finish; FILE.csv is written when all\n"
           "points are done, in point order, with the Pareto columns. Columns and files: docs/sweep.md.\n\n"
           "  SPEC.yaml          sweep spec (strict YAML; docs/sweep.md); flags below override its axes\n"
           "  --model LIST       models (llama3.1-8b)        --hw LIST       GPUs (h100-sxm)\n"
           "  --method LIST      methods (full,rocketkv)     --budget LIST   token budgets (1024)\n"
           "  --context LIST     prompt lengths (32K)        --batch LIST    batch sizes (1)\n"
           "  --tp LIST          tensor-parallel ranks (1)   --harness LIST  engine,gpt-fast (engine)\n"
           "  --engine NAME      engines/ memory policy for every point (vllm, trtllm, sglang, gpt-fast)\n"
           "  --mem-fraction F   the engine's memory fraction in (0, 1] (its default)\n"
           "  --weight-dtype T   weight type of the linear layers (bf16): %s\n"
           "  --new N            new tokens per sequence (50)\n"
           "  --pp P             pipeline stages at every point, 1..1024 (1): a stage rank's memory,\n"
           "                     the pipeline's tokens/s (kvsim predict --pp)\n"
           "  --workload W       score fidelity on workload W (a name under refimpl/workloads/ such as\n"
           "                     smollm2-heads, the fitted default; a YAML file; 'builtin' = handtuned)\n"
           "  --no-fidelity      drop the spec's fidelity section (speed and memory columns only)\n"
           "  --steps N          fidelity: decode steps scored (8)\n"
           "  --layers LIST      fidelity: layers scored, e.g. 0,8,16,24 or 0-3 (all)\n"
           "  --fidelity-context S  fidelity: score at prompt length S instead of each point's context\n"
           "  --seed N           fidelity: workload seed (1)   --threads N  fidelity threads (CPUs)\n"
           "  --out FILE         the CSV (required)\n"
           "  --shard i/N        run only the i-th (1-based) of N disjoint parts; merge them with --merge\n"
           "  --resume           continue FILE.partial from an interrupted run (nothing recomputed)\n"
           "  --merge F...       merge complete shard CSVs into --out (same bytes as an unsharded run)\n",
           sim_weight_dtype_help);
}

typedef struct {
    double t0;
    int64_t start;
} progress;

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress *p = ctx;
    double now = kv_now_s(), dt = now - p->t0;
    if (p->start < 0)
        p->start = done - 1; /* rows resumed from FILE.partial are not part of the rate */
    double rate = dt > 0 ? (double)(done - p->start) / dt : 0.0;
    fprintf(stderr, "\r  sweep: %lld/%lld points, %.1f points/s, ETA %.0f s   ", (long long)done, (long long)total, rate,
            rate > 0 ? (double)(total - done) / rate : 0.0);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

static int axis_flags(cli_opts *o, swp_spec *s)
{
    const char *v;
    int n;
    if ((v = cli_opt_str(o, "model", NULL))) {
        if ((n = cli_split_names(v, s->models[0], sizeof s->models[0], SWP_MAX_AXIS)) < 1) goto bad;
        s->nmodels = n;
    }
    if ((v = cli_opt_str(o, "hw", NULL))) {
        if ((n = cli_split_names(v, s->hw[0], sizeof s->hw[0], SWP_MAX_AXIS)) < 1) goto bad;
        s->nhw = n;
    }
    if ((v = cli_opt_str(o, "method", NULL))) {
        if ((n = cli_split_names(v, s->methods[0], sizeof s->methods[0], SWP_MAX_AXIS)) < 1) goto bad;
        s->nmethods = n;
    }
    /* the ranges of the spec file's keys (sweep/spec.c) */
    struct { const char *name; int64_t *dst; int *count; int64_t hi; } ints[] = {
        {"budget", s->budgets, &s->nbudgets, INT32_MAX}, {"context", s->contexts, &s->ncontexts, INT32_MAX},
        {"batch", s->batches, &s->nbatches, 1 << 20}, {"tp", s->tps, &s->ntp, 1024}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((v = cli_opt_str(o, ints[i].name, NULL))) {
            if ((n = cli_opt_i64_list(o, ints[i].name, NULL, 1, ints[i].hi, 0, ints[i].dst, SWP_MAX_AXIS)) < 1)
                return CLI_USAGE;
            *ints[i].count = n;
        }
    if ((v = cli_opt_str(o, "harness", NULL))) {
        char h[2][32];
        if ((n = cli_split_names(v, h[0], sizeof h[0], 2)) < 1) goto bad;
        for (int k = 0; k < n; k++)
            if (sim_harness_parse(h[k], &s->harness[k]) != 0) {
                cli_error(o->prog, "--harness: expected engine or gpt-fast, got '%s'", h[k]);
                return CLI_USAGE;
            }
        s->nharness = n;
    }
    if (cli_opt_i64_in(o, "new", s->max_new, 1, 1 << 20, &s->max_new)) return CLI_USAGE;
    if (cli_opt_i64_in(o, "pp", s->pp, 1, 1024, &s->pp)) return CLI_USAGE;
    if ((v = cli_opt_str(o, "engine", NULL))) snprintf(s->engine, sizeof s->engine, "%s", v);
    if (cli_opt_f64_in(o, "mem-fraction", s->mem_fraction, 0.01, 1.0, &s->mem_fraction)) return CLI_USAGE;
    if ((v = cli_opt_str(o, "weight-dtype", NULL))) {
        sim_weight_dtype wd;
        kv_err e;
        if (sim_weight_dtype_parse(v, 4096.0, &wd, &e) != 0) {
            cli_error(o->prog, "%s", e.msg);
            return CLI_USAGE;
        }
        snprintf(s->weight_dtype, sizeof s->weight_dtype, "%s", v);
    }
    if ((v = cli_opt_str(o, "workload", NULL))) {
        s->fidelity = 1;
        snprintf(s->workload, sizeof s->workload, "%s", v);
    }
    int64_t x;
    if (cli_opt_i64_in(o, "steps", s->fid_steps, 1, 1000000, &s->fid_steps) ||
        cli_opt_i64_in(o, "fidelity-context", s->fid_context, 1, INT32_MAX, &s->fid_context))
        return CLI_USAGE;
    if ((v = cli_opt_str(o, "layers", NULL))) snprintf(s->fid_layers, sizeof s->fid_layers, "%s", v);
    if (cli_opt_i64_in(o, "seed", -1, 0, INT64_MAX, &x)) return CLI_USAGE;
    if (x >= 0) { s->seed = (uint64_t)x; s->seed_set = 1; }
    /* 0 (the spec's default) means one per CPU; a user asks for 1..64 */
    if (cli_opt_i64_in(o, "threads", s->threads, 1, 64, &x)) return CLI_USAGE;
    s->threads = (int)x;
    return CLI_OK;
bad:
    cli_error(o->prog, "axis flags take comma lists of at most %d items, e.g. --budget 256,1024,4K", SWP_MAX_AXIS);
    return CLI_USAGE;
}

/* A command: flags in the order --help lists them, the library calls, the
 * output; its length is the flags'. */
int cmd_sweep(int argc, char **argv)
{
    static const char *const flags[] = {"help", "resume", "merge", "no-fidelity", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim sweep", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *out = cli_opt_str(&o, "out", NULL);
    kv_err err;
    if (cli_opt_flag(&o, "merge")) {
        if (cli_opts_unused(&o) != 0) return CLI_USAGE;
        if (!out || o.npos < 1) {
            cli_error(o.prog, "--merge needs the shard CSVs as arguments and --out FILE");
            return CLI_USAGE;
        }
        if (cli_out_check(&o, "out", out, 0) != 0) return CLI_USAGE;
        for (int i = 0; i < o.npos; i++)
            if (cli_in_check(&o, NULL, o.pos[i], 0) != 0) return CLI_USAGE;
        if (swp_merge(o.pos, o.npos, out, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
        printf("kvsim sweep: merged %d file(s) into %s\n", o.npos, out);
        return CLI_OK;
    }
    static swp_spec spec;
    swp_spec_defaults(&spec);
    const char *sp = cli_opt_str(&o, "spec", NULL);
    if (!sp && o.npos == 1) sp = o.pos[0];
    else if (o.npos > (sp ? 0 : 1)) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[sp ? 0 : 1]);
        return CLI_USAGE;
    }
    if (sp && swp_spec_load(sp, &spec, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    int rc = axis_flags(&o, &spec);
    if (rc != CLI_OK) return rc;
    if (cli_opt_flag(&o, "no-fidelity")) spec.fidelity = 0;
    swp_run_opts ro = {0, 1, 0, 0, NULL, NULL};
    const char *shard = cli_opt_str(&o, "shard", NULL);
    if (shard) {
        int i, n;
        if (cli_parse_shard(&o, shard, &i, &n) != 0)
            return CLI_USAGE;
        ro.index = i - 1;
        ro.count = n;
    }
    ro.resume = cli_opt_flag(&o, "resume");
    const char *stop = getenv("KVSIM_SWEEP_STOP_AFTER"); /* tests: stop after k new rows, as a kill would */
    if (stop) ro.stop_after = atoll(stop);
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    /* the CSV and the FILE.partial the rows stream to, checked before any work */
    char partial[1100];
    if (cli_out_check(&o, "out", out, 0) != 0) return CLI_USAGE;
    snprintf(partial, sizeof partial, "%s.partial", out);
    if (cli_out_check(&o, "out", partial, 0) != 0) return CLI_USAGE;
    swp_sweep *w = swp_sweep_alloc(&spec, &err);
    if (!w) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    progress pr = {kv_now_s(), -1};
    if (isatty(2)) {
        ro.on_progress = on_progress;
        ro.ctx = &pr;
    }
    swp_run_stats st;
    rc = swp_run(w, out, &ro, &st, &err);
    swp_sweep_free(w);
    if (rc < 0) {
        if (ro.on_progress) fputc('\n', stderr);
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    printf("kvsim sweep: %s%s: %lld points (shard %d/%d), %lld computed, %lld resumed; fidelity %lld keys in %lld runs, "
           "%lld points reused; %.2f s, %.1f points/s\n",
           rc == 1 ? "stopped early, resume with --resume; " : "", rc == 1 ? "partial" : out, (long long)st.total,
           ro.index + 1, ro.count, (long long)st.computed, (long long)st.resumed, (long long)st.fid_computed,
           (long long)st.fid_runs, (long long)st.fid_reused, st.wall_s,
           st.wall_s > 0 ? (double)st.computed / st.wall_s : 0.0);
    return rc == 1 ? CLI_FAIL : CLI_OK;
}
