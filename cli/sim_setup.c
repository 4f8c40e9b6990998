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
