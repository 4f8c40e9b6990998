/* sim_setup.h — the options `kvsim predict` and `kvsim plan` share beyond
 * run_setup's: harness, CUDA graphs, calibration. */
#ifndef CLI_SIM_SETUP_H
#define CLI_SIM_SETUP_H

#include "cli.h"
#include "sim.h"

/* --harness engine|gpt-fast, --cuda-graphs on|off; CLI_OK or CLI_USAGE. */
int cli_sim_options(cli_opts *o, sim_harness *harness, int *cuda_graphs);
/* --engine NAME (an engines/ name or YAML path), --mem-fraction F (0.01..1, needs --engine) and
 * --weight-dtype T (sim_weight_dtype_parse, scales per hidden_size of m; default: the model's
 * weight_dtype, from its quantization_config, else bf16). *ep is NULL without
 * --engine, else points at e. CLI_OK, CLI_USAGE (bad value) or CLI_FAIL (engine file). */
int cli_sim_policy(cli_opts *o, const mdl_model *m, eng_engine *e, const eng_engine **ep, double *fraction,
                   sim_weight_dtype *wd);
/* Applies cli_sim_policy's result to a configuration. */
void cli_sim_apply_policy(sim_config *c, const eng_engine *ep, double fraction, const sim_weight_dtype *wd);
/* Loads --hw NAME (and applies --calibration FILE when given). */
int cli_sim_load_hw(cli_opts *o, const char *name, const char *calibration, hw_model *h);
/* The two lines vLLM prints at start-up, for an engine's pool (nothing without one). */
void cli_sim_print_pool(const sim_memory *m, int64_t request_tokens);

#endif
