/* main.c — `kvsim <subcommand>`: the table of subcommands and dispatch. */
#include "cli.h"

#include <string.h>

static const cli_command commands[] = {
    {"params", "resolved method parameters for a model, budget and context", cmd_params},
    {"fidelity", "run the reference against full attention and print fidelity metrics", cmd_fidelity},
    {"model", "list / show / import model architectures", cmd_model},
    {"hw", "list / show hardware models", cmd_hw},
    {"trace", "record every decode step's exact accesses to a trace file", cmd_trace},
    {"inspect", "print a trace's header, totals, or one record", cmd_inspect},
    {"predict", "roofline prediction of decode speed, TTFT and memory, vs full", cmd_predict},
    {"serve", "serving simulation: request traffic, continuous batching, latency percentiles", cmd_serve},
    {"plan", "capacity planner: max batch, max context, GPUs for a target throughput", cmd_plan},
    {"sweep", "models x GPUs x methods x budgets x contexts x batches to CSV (shards, resume, merge)", cmd_sweep},
    {"report", "plots (gnuplot) and a README from a sweep CSV", cmd_report},
    {"golden", "write the reference's tensors of several decode steps (.npy + manifest) for checking a kernel", cmd_golden},
    {"compare", "compare a kernel's .npy outputs with a golden directory, stage by stage", cmd_compare},
    {"generate", "generate text with a GGUF llama model, any method's attention in the loop", cmd_generate},
    {"replay", "replay a trace on the GPU with the CUDA kernels (runs build/kvsim-cuda; make replay-build)", cmd_replay},
    {"check-published", "the simulator against published measurements (validation/published.csv)", cmd_check_published},
    {"validate", "predicted (sim, with and without calibration) vs measured, from a gpu_check report", cmd_validate},
    {"kvdump", "capture a GGUF model's real Q/K/V over a text into a KV dump, or describe one", cmd_kvdump},
    {"workload", "profile real attention from KV dumps, fit the synthetic generator to it, compare", cmd_workload},
    {"eval", "accuracy under compression: continuation perplexity, greedy agreement, passkey", cmd_eval},
};

static void usage(FILE *fp)
{
    fprintf(fp, "kvsim %s — what two-stage KV-cache compression buys, before you spend GPU time\n\n"
                "usage: kvsim <subcommand> [options]   (kvsim <subcommand> --help)\n\n",
            KV_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kvsim %s\n", KV_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kvsim: unknown subcommand '%s' (kvsim --help lists them)\n", argv[1]);
    return CLI_USAGE;
}
