/* sim_setup.h — the options `kvsim predict` and `kvsim plan` share beyond
 * run_setup's: harness, CUDA graphs, calibration. */
#ifndef CLI_SIM_SETUP_H
#define CLI_SIM_SETUP_H

#include "cli.h"
#include "sim.h"

/* --harness engine|gpt-fast, --cuda-graphs on|off; CLI_OK or CLI_USAGE. */
int cli_sim_options(cli_opts *o, sim_harness *harness, int *cuda_graphs);
/* Loads --hw NAME (and applies --calibration FILE when given). */
int cli_sim_load_hw(cli_opts *o, const char *name, const char *calibration, hw_model *h);

#endif
