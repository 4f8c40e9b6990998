/* run_setup.h — the options `kvsim params`, `kvsim fidelity` and `kvsim
 * trace` share: model, methods × budgets, context, steps, workload, layers,
 * seed, threads, dtypes and method overrides, resolved into an rkv_run_cfg. */
#ifndef CLI_RUN_SETUP_H
#define CLI_RUN_SETUP_H

#include "cli.h"
#include "rkv.h"

typedef struct {
    mdl_model model;
    rkv_workload wl;
    rkv_request rq;
    rkv_run_cfg cfg;
    int layers[1024];
    char methods[RKV_MAX_SETS][32];
    int64_t budgets[RKV_MAX_SETS];
    int json;
    struct llm_kvd_file *dump;   /* --workload gguf:... or kvdump:... (owned) */
} cli_run_setup;

/* Frees what cli_run_setup_parse allocated (the KV dump). */
void cli_run_setup_free(cli_run_setup *s);

/* Parses and resolves; prints one error line and returns CLI_USAGE or
 * CLI_FAIL on bad input, CLI_OK otherwise. need_run: also steps, workload,
 * layers, threads. */
int cli_run_setup_parse(cli_opts *o, cli_run_setup *s, int need_run);
/* The options it accepts, for --help texts. */
extern const char cli_run_setup_help[];
extern const char cli_run_help[];
/* Human one-liner of the resolved parameters. */
void cli_params_print(FILE *fp, const rkv_params *p);
/* Prints "\r[done/total pairs]" progress when stderr is a TTY and more than a second passed. */
void cli_progress(void *ctx, int64_t done, int64_t total);

#endif
