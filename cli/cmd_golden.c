/* cmd_golden.c — `kvsim golden`: arguments in, gld_write (golden/gld.h),
 * one summary line out. */
#include "cli.h"
#include "gld.h"
#include "run_setup.h"

#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("usage: kvsim golden --model M --method X --budget T --context S --out DIR [--layer L]\n"
           "                    [--kv-head H|all] [--steps N] [--workload W] [--seed N]\n\n"
           "Writes the reference's inputs and expected outputs of N decode steps (positions S .. S+N-1),\n"
           "stage by stage, as NumPy .npy files plus DIR/manifest.json (shapes, dtypes, G, d, the\n"
           "model's maximum length, position conventions, per-element error bounds). Every method.\n"
           "Check another implementation with `kvsim compare DIR DIR_ACTUAL`; format: docs/golden.md.\n\n%s"
           "  --out DIR          output directory (created)\n"
           "  --layer L          layer (0)\n"
           "  --kv-head H|all    one KV head (0) or every KV head\n"
           "  --steps N          decode steps, 1 .. --new (a multi-turn workload: its outputs of every turn);\n"
           "                     decode positions must stay below the model's maximum length (1)\n"
           "  --workload W       synthetic workload YAML, or real Q/K/V (gguf:..., kvdump:...)\n"
           "  --seed N           workload seed (1)\n",
           cli_run_setup_help);
}

/* --kv-head: a number in [0, KV heads) or "all" (−1). */
static int parse_kv_head(cli_opts *o, const mdl_model *m, int *kvh)
{
    const char *s = cli_opt_str(o, "kv-head", "0");
    if (!strcmp(s, "all")) {
        *kvh = -1;
        return 0;
    }
    int64_t v;
    kv_err err;
    if (kv_parse_i64_in("--kv-head", s, 0, m->num_key_value_heads - 1, &v, &err) != 0) {
        cli_error(o->prog, "%s (or all)", err.msg);
        return -1;
    }
    *kvh = (int)v;
    return 0;
}

int cmd_golden(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim golden", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *out = cli_opt_str(&o, "out", NULL);
    if (cli_out_check(&o, "out", out, 1) != 0)
        return CLI_USAGE;
    const int steps_given = cli_opt_str(&o, "steps", NULL) != NULL;
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 1);
    if (rc != CLI_OK) {
        cli_run_setup_free(&s);
        return rc;
    }
    gld_opts go = {.steps = steps_given ? s.cfg.steps : 1};
    int64_t layer;
    rc = CLI_USAGE;
    if (cli_opt_i64_in(&o, "layer", 0, 0, s.model.num_hidden_layers - 1, &layer) ||
        parse_kv_head(&o, &s.model, &go.kv_head))
        goto done;
    go.layer = (int)layer;
    if (!out) {
        cli_error(o.prog, "--out DIR is required");
        goto done;
    }
    if (s.cfg.layers) {
        cli_error(o.prog, "--layers: golden writes one layer; use --layer L");
        goto done;
    }
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        goto done;
    }
    if (cli_opts_unused(&o) != 0)
        goto done;
    if (s.cfg.nsets != 1) {
        cli_error(o.prog, "one method and one budget at a time (got %d combinations)", s.cfg.nsets);
        goto done;
    }
    kv_err err = {{0}};
    if (gld_write(&s.model, &s.wl, &s.cfg.sets[0], &go, out, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        rc = CLI_FAIL;
        goto done;
    }
    printf("kvsim golden: %s, %s t=%lld S=%lld, %lld step(s), layer %d, kv head %s -> %s/manifest.json\n",
           s.model.name, s.cfg.sets[0].method->name, (long long)s.cfg.sets[0].budget, (long long)s.cfg.sets[0].S,
           (long long)go.steps, go.layer, go.kv_head < 0 ? "all" : cli_opt_str(&o, "kv-head", "0"), out);
    rc = CLI_OK;
done:
    cli_run_setup_free(&s);
    return rc;
}
