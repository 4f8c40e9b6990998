/* cmd_compare.c — `kvsim compare DIR_EXPECTED DIR_ACTUAL`: arguments in,
 * gld_compare (golden/gld.h), one line per stage out. Exit 0 when every
 * supplied tensor passes (and, with --all-stages, none is missing), 1
 * otherwise, 2 on bad usage. */
#include "cli.h"
#include "gld.h"

#include <stdio.h>

int cmd_compare(int argc, char **argv)
{
    static const char *const flags[] = {"help", "all-stages", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim compare", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        printf("usage: kvsim compare DIR_EXPECTED DIR_ACTUAL [--all-stages] [--atol A]\n\n"
               "Compares the .npy tensors DIR_ACTUAL supplies with a `kvsim golden` directory, stage by\n"
               "stage: index sets exactly (no duplicates, no entry out of range; differences listed with\n"
               "their score gap to the threshold, near-ties marked), values within the per-element\n"
               "bound of the manifest (cancellation-aware, docs/golden.md). Tensors DIR_ACTUAL lacks are\n"
               "listed as missing.\n\n"
               "  --all-stages       a missing tensor fails its stage\n"
               "  --atol A           added to every bound, 0 .. 1e30 (0)\n");
        return CLI_OK;
    }
    gld_cmp_opts co = {.all_stages = cli_opt_flag(&o, "all-stages")};
    if (cli_opt_f64_in(&o, "atol", 0.0, 0.0, 1e30, &co.atol))
        return CLI_USAGE;
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (o.npos != 2) {
        cli_error(o.prog, "expected two directories, DIR_EXPECTED DIR_ACTUAL (got %d arguments)", o.npos);
        return CLI_USAGE;
    }
    kv_err err;
    gld_result res;
    if (gld_compare(o.pos[0], o.pos[1], &co, stdout, &res, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    gld_result_print(&res, stdout);
    return res.pass ? CLI_OK : CLI_FAIL;
}
