/* fuzz_cli_argv.h — how tests/fuzz_cli.c turns fuzzer bytes into a kvsim
 * command line; shared with test_inputs.c, which replays the committed
 * samples (tests/data/fuzz_cli/) through the real binary.
 *
 * Byte 0 picks the subcommand; the rest is split into words at '\0' or '\n'
 * (at most FZ_MAX_WORDS of at most FZ_MAX_WORD bytes). A word whose first
 * byte is 0xA0 or more starts with a known option name ("--context") and
 * keeps the rest of its bytes ("\xA3=5" is "--context=5"); one whose first
 * byte is 0x80..0x9F is a value known to be hostile or useful (a wrapping
 * integer, NaN, a device, a sample file). Everything else is used as is. */
#ifndef FUZZ_CLI_ARGV_H
#define FUZZ_CLI_ARGV_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define FZ_MAX_WORDS 24
#define FZ_MAX_WORD 256

static const char *const fz_commands[] = {
    "params", "fidelity", "model", "hw", "trace", "inspect", "predict", "plan", "sweep",
    "report", "golden", "compare", "generate", "validate", "kvdump", "eval", "serve", "workload",
}; /* every subcommand but replay, which execs kvsim-cuda */
#define FZ_NCOMMANDS (sizeof fz_commands / sizeof fz_commands[0])

static const char *const fz_options[] = {
    "model", "method", "budget", "context", "new", "dtype", "aux-dtype", "split", "rho", "granularity",
    "local-window", "page-size", "topr", "topk", "window", "kernel", "pool", "skip-layers", "steps",
    "workload", "layers", "seed", "threads", "json", "help", "out", "batch", "with-fidelity", "layer",
    "head", "step", "seq", "hw", "tp", "calibration", "calibration-any", "trace", "harness", "cuda-graphs",
    "tpot-slo", "target-tokens-per-s", "max-batch", "csv", "spec", "shard", "resume", "merge",
    "no-fidelity", "fidelity-context", "sweep", "gpu-dir", "notes", "kv-head", "gguf", "prompt",
    "max-new", "chat", "ids", "ignore-eos", "greedy", "text", "tokens", "offset", "info", "seal",
    "contexts", "depths", "passkey", "trials", "name", "per-layer", "all-stages", "atol", "arrival",
    "block-tokens", "burstiness", "kv-pool-bytes", "max-batched-tokens", "max-num-seqs", "mem-fraction",
    "num-requests", "output", "rate", "requests", "timeline",
}; /* 85 names: bytes 0xA0..0xF4 (0xF5..0xFF wrap around) */
#define FZ_NOPTIONS (sizeof fz_options / sizeof fz_options[0])

static const char *const fz_values[] = {
    "4294967296", "9223372036854775807", "-9223372036854775808", "2147483648", "-1", "0", "nan", "inf",
    "1e300", "-0", "32K", "8M", "0-3", "1,,2", "0,", "99999999999999999999", "/dev/full", "/dev/zero",
    "/dev/null", "/tmp", "", "smollm2-135m", "llama3.1-8b", "rocketkv", "h100-sxm", "h200", "full,rocketkv",
    KVSIM_DATADIR "/traces/samples/rocketkv.trc", KVSIM_DATADIR "/tests/data/calib_h100.json",
    KVSIM_DATADIR "/tests/data/traces/stage1_trailing_bytes.trc", "list", "show",
}; /* 32 values: bytes 0x80..0x9F */
#define FZ_NVALUES (sizeof fz_values / sizeof fz_values[0])

typedef struct {
    int argc;
    char *argv[FZ_MAX_WORDS + 2];
    char buf[FZ_MAX_WORDS + 1][FZ_MAX_WORD + 80];
} fz_cmdline;

/* Fills c from data; argv[0] is the subcommand name, argv[argc] NULL. */
static inline void fz_argv(const unsigned char *data, size_t size, fz_cmdline *c)
{
    c->argc = 0;
    snprintf(c->buf[0], sizeof c->buf[0], "%s", fz_commands[size ? data[0] % FZ_NCOMMANDS : 0]);
    c->argv[c->argc++] = c->buf[0];
    size_t i = size ? 1 : 0;
    while (i < size && c->argc <= FZ_MAX_WORDS) {
        size_t j = i;
        while (j < size && data[j] != '\0' && data[j] != '\n' && j - i < FZ_MAX_WORD) j++;
        char *w = c->buf[c->argc];
        size_t n = 0, k = i;
        if (j > i && data[i] >= 0xA0) {
            n = (size_t)snprintf(w, FZ_MAX_WORD + 80, "--%s", fz_options[(data[i] - 0xA0) % FZ_NOPTIONS]);
            k++;
        } else if (j > i && data[i] >= 0x80) {
            n = (size_t)snprintf(w, FZ_MAX_WORD + 80, "%s", fz_values[(data[i] - 0x80) % FZ_NVALUES]);
            k++;
        }
        if (n >= sizeof c->buf[0]) n = sizeof c->buf[0] - 1; /* snprintf's count, not what it wrote */
        for (; k < j && n + 1 < sizeof c->buf[0]; k++) w[n++] = (char)data[k];
        w[n] = '\0';
        c->argv[c->argc++] = w;
        i = j + 1;
    }
    c->argv[c->argc] = NULL;
}

#endif
