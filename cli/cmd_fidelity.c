/* cmd_fidelity.c — `kvsim fidelity`: run the reference against `full` and
 * print the fidelity metrics of docs/algorithm.md, overall and per layer. */
#include "run_setup.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: kvsim fidelity --model M --method X --budget T --context S [--new N] [--steps N]\n"
           "                      [--workload FILE] [--layers LIST] [--seed N] [--json] [--per-layer]\n\n"
           "Runs the CPU reference of each method against dense attention on a workload (by\n"
           "default the synthetic one fitted to SmolLM2's real attention) and reports output\n"
           "error, attention-mass recall, top-k recall and\n"
           "stage-1 survival (mean, p50, p95, worst) over every (step, layer, query head).\n\n%s%s"
           "  --per-layer        also print the per-layer table (always in --json)\n"
           "  --json             one JSON object: params + fidelity (\"runs\" array for several)\n",
           cli_run_setup_help, cli_run_help);
}

static void stats_json(kv_json *j, const kv_stats *s)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "mean"); kv_json_num(j, s->mean);
    kv_json_key(j, "p50"); kv_json_num(j, s->p50);
    kv_json_key(j, "p95"); kv_json_num(j, s->p95);
    kv_json_key(j, "max"); kv_json_num(j, s->max);
    kv_json_key(j, "min"); kv_json_num(j, s->min);
    kv_json_obj_end(j);
}

static void run_json(kv_json *j, const rkv_params *p, const rkv_fidelity *f)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "params");
    rkv_params_json(j, p);
    kv_json_key(j, "fidelity");
    kv_json_obj_begin(j);
    kv_json_key(j, "samples"); kv_json_int(j, f->samples);
    for (int m = 0; m < RKV_FID_N; m++) {
        kv_json_key(j, rkv_fid_names[m]);
        stats_json(j, &f->overall[m]);
    }
    kv_json_key(j, "per_layer");
    kv_json_arr_begin(j);
    for (int l = 0; l < f->nlayers; l++) {
        kv_json_obj_begin(j);
        kv_json_key(j, "layer"); kv_json_int(j, f->layer_ids[l]);
        for (int m = 0; m < RKV_FID_N; m++) {
            kv_json_key(j, rkv_fid_names[m]);
            stats_json(j, &f->per_layer[(size_t)l * RKV_FID_N + (size_t)m]);
        }
        kv_json_obj_end(j);
    }
    kv_json_arr_end(j);
    kv_json_obj_end(j);
    kv_json_obj_end(j);
}

/* worst: the largest error, the smallest recall */
static double worst(int m, const kv_stats *s) { return m == RKV_FID_OUTPUT_REL_ERR ? s->max : s->min; }

/* A command: flags in the order --help lists them, the library calls, the
 * output; its length is the flags'. */
int cmd_fidelity(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", "per-layer", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim fidelity", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 1);
    if (rc != CLI_OK) {
        cli_run_setup_free(&s);
        return rc;
    }
    int per_layer = cli_opt_flag(&o, "per-layer");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        cli_run_setup_free(&s);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0) {
        cli_run_setup_free(&s);
        return CLI_USAGE;
    }
    s.cfg.fidelity = 1;
    s.cfg.on_progress = cli_progress;
    rkv_fidelity fid[RKV_MAX_SETS];
    kv_err err;
    double t0 = kv_now_s();
    if (rkv_run(&s.cfg, fid, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        cli_run_setup_free(&s);
        return CLI_FAIL;
    }
    double wall = kv_now_s() - t0;
    if (s.json) {
        kv_json j;
        kv_json_init(&j, stdout);
        if (s.cfg.nsets == 1) {
            run_json(&j, &s.cfg.sets[0], &fid[0]);
        } else {
            kv_json_obj_begin(&j);
            kv_json_key(&j, "runs");
            kv_json_arr_begin(&j);
            for (int i = 0; i < s.cfg.nsets; i++)
                run_json(&j, &s.cfg.sets[i], &fid[i]);
            kv_json_arr_end(&j);
            kv_json_obj_end(&j);
        }
    } else {
        printf("model %s, context %lld, %lld decode steps, %d layers x %d KV heads x G=%d, workload %s seed %llu, %s KV\n",
               s.model.name, (long long)s.rq.context, (long long)s.cfg.steps,
               fid[0].nlayers, s.model.num_key_value_heads, mdl_group_size(&s.model),
               s.wl.path[0] ? s.wl.path : "handtuned (built-in)", (unsigned long long)s.wl.seed,
               rkv_dtype_name(s.rq.kv_dtype));
        for (int i = 0; i < s.cfg.nsets; i++) {
            const rkv_params *p = &s.cfg.sets[i];
            printf("\n");
            cli_params_print(stdout, p);
            printf("  %-16s %10s %10s %10s %10s\n", "metric", "mean", "p50", "p95", "worst");
            for (int m = 0; m < RKV_FID_N; m++) {
                const kv_stats *st = &fid[i].overall[m];
                printf("  %-16s %10.4f %10.4f %10.4f %10.4f\n", rkv_fid_names[m], st->mean, st->p50, st->p95,
                       worst(m, st));
            }
            if (per_layer) {
                printf("  %-6s", "layer");
                for (int m = 0; m < RKV_FID_N; m++) printf(" %16s", rkv_fid_names[m]);
                printf("   (means)\n");
                for (int l = 0; l < fid[i].nlayers; l++) {
                    printf("  %-6d", fid[i].layer_ids[l]);
                    for (int m = 0; m < RKV_FID_N; m++)
                        printf(" %16.4f", fid[i].per_layer[(size_t)l * RKV_FID_N + (size_t)m].mean);
                    printf("\n");
                }
            }
        }
        fprintf(stderr, "kvsim fidelity: %.2f s wall, %d threads\n", wall, s.cfg.threads);
    }
    for (int i = 0; i < s.cfg.nsets; i++)
        rkv_fidelity_free(&fid[i]);
    cli_run_setup_free(&s);
    return CLI_OK;
}
