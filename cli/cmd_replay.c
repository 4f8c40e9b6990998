/* cmd_replay.c — `kvsim replay`: the trace replayer runs on the GPU and links
 * CUDA, so it lives in its own binary, kvsim-cuda (cuda/replay.cu, built by
 * `make replay-build` where nvcc is found). This subcommand finds that binary
 * beside kvsim and hands it the arguments; without it, it says how to build
 * it. The CPU build never links CUDA. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_replay(int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        cli_error("kvsim replay", "cannot locate the kvsim binary: %s", strerror(errno));
        return CLI_FAIL;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(path, sizeof path, "%s/kvsim-cuda", self);
    if (access(path, X_OK) != 0) {
        if (argc > 1 && !strcmp(argv[1], "--help")) {
            printf("usage: kvsim replay --trace FILE [--check] [--time] [--json] [--reps N]\n\n"
                   "Replays a trace's decode steps with the CUDA kernels, checks the selections and outputs\n"
                   "against the trace and the reference, and times dense vs the trace's method (cuda/REPLAY.md).\n"
                   "It runs as %s, built where nvcc is found: make replay-build.\n", path);
            return CLI_OK;
        }
        cli_error("kvsim replay", "%s not found: the replayer links CUDA; build it with `make replay-build` (needs nvcc)",
                  path);
        return CLI_FAIL;
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return CLI_FAIL;
    args[0] = path;
    for (int i = 0; i < argc; i++) /* argv[0] is "replay", the subcommand kvsim-cuda expects */
        args[i + 1] = argv[i];
    execv(path, args);
    cli_error("kvsim replay", "cannot run %s: %s", path, strerror(errno));
    free(args);
    return CLI_FAIL;
}
