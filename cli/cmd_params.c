/* cmd_params.c — `kvsim params`: the resolved parameters of one or more
 * (method, budget) pairs, with TensorRT-LLM's names. */
#include "run_setup.h"

#include <string.h>

static void help(void)
{
    printf("usage: kvsim params --model M --method X --budget T --context S [--new N] [--json]\n\n"
           "Resolves a method's parameters for a budget (docs/algorithm.md), e.g. RocketKV's split.\n\n%s"
           "  --json             one JSON object (an array under \"runs\" for several)\n",
           cli_run_setup_help);
}

int cmd_params(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim params", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 0);
    if (rc != CLI_OK)
        return rc;
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (s.json) {
        kv_json j;
        kv_json_init(&j, stdout);
        if (s.cfg.nsets == 1) {
            rkv_params_json(&j, &s.cfg.sets[0]);
        } else {
            kv_json_obj_begin(&j);
            kv_json_key(&j, "runs");
            kv_json_arr_begin(&j);
            for (int i = 0; i < s.cfg.nsets; i++)
                rkv_params_json(&j, &s.cfg.sets[i]);
            kv_json_arr_end(&j);
            kv_json_obj_end(&j);
        }
        return CLI_OK;
    }
    printf("model %s: L=%d Hq=%d Hkv=%d d=%d G=%d\n", s.model.name, s.model.num_hidden_layers,
           s.model.num_attention_heads, s.model.num_key_value_heads, s.model.head_dim, mdl_group_size(&s.model));
    printf("%-12s %6s %8s %8s %6s %6s %5s %5s %6s %7s %9s %9s\n", "method", "budget", "prompt", "capacity",
           "window", "kernel", "page", "topr", "topk", "rho", "c", "traffic/x");
    for (int i = 0; i < s.cfg.nsets; i++) {
        const rkv_params *p = &s.cfg.sets[i];
        printf("%-12s %6lld %8lld %8lld %6lld %6lld %5lld %5lld %6lld %7.4f %9.2f %9.2f\n", p->method->name,
               (long long)p->budget, (long long)p->prompt_budget, (long long)p->capacity, (long long)p->window_size,
               (long long)p->kernel_size, (long long)p->page_size, (long long)p->topr, (long long)p->topk, p->rho,
               p->c, p->compression_ratio);
    }
    printf("(prompt = prompt_budget P, kept by stage 1; traffic/x = full-KV bytes / method bytes at the last step)\n");
    return CLI_OK;
}
