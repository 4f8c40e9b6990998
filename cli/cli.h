/* cli.h — the kvsim command line: a table of subcommands (cli/main.c), one
 * file per subcommand (cli/cmd_<name>.c), and the small option helpers they
 * share. No logic a library function should own lives here.
 *
 * Exit codes (docs/design.md): 0 success, 2 bad usage, 1 failed work. */
#ifndef CLI_H
#define CLI_H

#include <stdint.h>
#include <stdio.h>
#include "kv_common.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Option parsing: long options only, "--name value" or "--name=value".
 * cli_opts collects them once; subcommands then ask for what they accept;
 * cli_opts_unused reports the first option nobody asked for (a typo). */
#define CLI_MAX_OPTS 64
typedef struct {
    const char *prog;              /* "kvsim fidelity" */
    int n;
    const char *name[CLI_MAX_OPTS];
    const char *value[CLI_MAX_OPTS];
    int used[CLI_MAX_OPTS];
    int novalue[CLI_MAX_OPTS];     /* 1: the last word, no value followed */
    int value_given[CLI_MAX_OPTS]; /* 1: written --name=value */
    int bad;                       /* 1: an error was already reported */
    int npos;
    const char *pos[CLI_MAX_OPTS]; /* positional arguments */
} cli_opts;

/* flags: NULL-terminated names of options that take no value. */
int cli_opts_parse(cli_opts *o, const char *prog, int argc, char **argv, const char *const *flags);
const char *cli_opt_str(cli_opts *o, const char *name, const char *def);
int cli_opt_flag(cli_opts *o, const char *name);
/* The ranged forms (kv_parse_i64_in/kv_parse_f64_in): every flag a user types
 * goes through these, with the allowed range stated; an out-of-range, NaN,
 * inf or wrapped value is refused with the flag's name and the range. */
int cli_opt_i64_in(cli_opts *o, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out);
int cli_opt_f64_in(cli_opts *o, const char *name, double def, double lo, double hi, double *out);
/* A comma list of names ("h100-sxm,h200") into out, an array of max
 * strings of cap bytes each (out + i*cap); no empty item, none of cap bytes
 * or more. Returns the count or -1. */
int cli_split_names(const char *s, char *out, size_t cap, int max);
/* Reports an unknown option; returns -1 if there is one. */
int cli_opts_unused(cli_opts *o);
/* --name as a comma list of integers in [lo, hi] ("256,1024,4K"; with
 * ranges also "0-3,8"), def when absent (NULL: absent gives 0). Returns the
 * count, or -1 after printing one error line (kv_parse_i64_list). */
int cli_opt_i64_list(cli_opts *o, const char *name, const char *def, int64_t lo, int64_t hi, int ranges, int64_t *out,
                     int max);
/* "--shard i/N": 1 <= i <= N <= CLI_MAX_SHARDS, each part a strict integer;
 * -1 having printed the part that is wrong. */
#define CLI_MAX_SHARDS (1 << 20)
int cli_parse_shard(cli_opts *o, const char *s, int *index, int *count);
/* The output-path check every writing command runs before it computes:
 * kv_out_check (dir = 0: a file) or kv_out_dir_check (dir = 1); a NULL path
 * is "--name is required". Prints one line and returns -1 when refused. */
int cli_out_check(cli_opts *o, const char *name, const char *path, int dir);
/* kv_in_check for an input given to --name (NULL: a positional argument). */
int cli_in_check(cli_opts *o, const char *name, const char *path, uint64_t max_bytes);

/* Prints "kvsim <cmd>: <msg>" to stderr. */
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Subcommands. */
int cmd_params(int argc, char **argv);
int cmd_fidelity(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_hw(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_plan_slo(int argc, char **argv); /* kvsim plan --slo (cmd_plan.c hands over) */
int cmd_sweep(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_check_published(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_kvdump(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_workload(int argc, char **argv);

#endif
