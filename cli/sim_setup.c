/* sim_setup.c — option helpers shared by cmd_predict.c and cmd_plan.c. */
#include "sim_setup.h"

#include <string.h>

int cli_sim_options(cli_opts *o, sim_harness *harness, int *cuda_graphs)
{
    const char *hn = cli_opt_str(o, "harness", "engine");
    if (sim_harness_parse(hn, harness) != 0) {
        cli_error(o->prog, "--harness: expected engine or gpt-fast, got '%s'", hn);
        return CLI_USAGE;
    }
    const char *g = cli_opt_str(o, "cuda-graphs", "on");
    if (!strcmp(g, "on")) *cuda_graphs = 1;
    else if (!strcmp(g, "off")) *cuda_graphs = 0;
    else {
        cli_error(o->prog, "--cuda-graphs: expected on or off, got '%s'", g);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_sim_load_hw(cli_opts *o, const char *name, const char *calibration, hw_model *h)
{
    kv_err err;
    if (hw_model_load(name, h, &err) != 0 || (calibration && hw_model_apply_calibration(h, calibration, &err) != 0)) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_sim_policy(cli_opts *o, const mdl_model *m, eng_engine *e, const eng_engine **ep, double *fraction,
                   sim_weight_dtype *wd)
{
    kv_err err;
    const char *en = cli_opt_str(o, "engine", NULL), *wt = cli_opt_str(o, "weight-dtype", m->weight_dtype[0] ? m->weight_dtype : "bf16");
    *ep = NULL;
    if (cli_opt_f64_in(o, "mem-fraction", 0.0, 0.01, 1.0, fraction) != 0)
        return CLI_USAGE;
    if (*fraction > 0.0 && !en) {
        cli_error(o->prog, "--mem-fraction needs --engine (vllm, trtllm, sglang, gpt-fast)");
        return CLI_USAGE;
    }
    if (sim_weight_dtype_parse(wt, (double)m->hidden_size, wd, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    if (en) {
        if (eng_load(en, e, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        *ep = e;
    }
    return CLI_OK;
}

void cli_sim_apply_policy(sim_config *c, const eng_engine *ep, double fraction, const sim_weight_dtype *wd)
{
    sim_config_set_weight_dtype(c, wd);
    sim_config_set_engine(c, ep, fraction);
}

void cli_sim_print_pool(const sim_memory *m, int64_t request_tokens)
{
    if (m->kv_pool_bytes <= 0.0 && m->kv_cache_tokens == 0)
        return;
    printf("GPU KV cache size: %lld tokens\n", (long long)m->kv_cache_tokens);
    printf("Maximum concurrency for %lld tokens per request: %.2fx\n", (long long)request_tokens, m->max_concurrency);
}
