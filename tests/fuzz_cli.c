/* fuzz_cli.c — libFuzzer harness for the command line itself: the option
 * layer of every subcommand (cli_opts_parse, the ranged number and list
 * parsers, the path checks, every check a command makes before its
 * cli_opts_unused call), under ASan and UBSan. No input may crash, read out
 * of bounds, overflow a signed integer or leak.
 *
 * Built with -DKVSIM_FUZZ_CLI: cli_opts_unused, the call every subcommand
 * makes once its options are read, then jumps back here instead of letting
 * the command compute, so each input takes microseconds and nothing is
 * written. The harness also runs in a fresh temporary directory (a relative
 * path can only name something there) with stdout closed.
 *
 *   make fuzz                      (mk/fuzz.mk: builds and runs every tests/fuzz_*.c)
 *   build/fuzz/fuzz_cli -max_total_time=300 -close_fd_mask=3 $PWD/build/fuzz/corpus-fuzz_cli $PWD/tests/data/fuzz_cli
 *   (absolute paths: it moves into a temporary directory on its first input)
 * Crash inputs are committed under tests/data/fuzz_cli/ (crash-*), and
 * test_inputs.c replays every file there through the sanitized kvsim. The
 * bytes-to-argv rule is tests/fuzz_cli_argv.h. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz_cli_argv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

extern jmp_buf *cli_fuzz_stop;

static int (*const runs[])(int, char **) = {
    cmd_params, cmd_fidelity, cmd_model, cmd_hw, cmd_trace, cmd_inspect, cmd_predict, cmd_plan,
    cmd_sweep, cmd_report, cmd_golden, cmd_compare, cmd_generate, cmd_validate, cmd_kvdump, cmd_eval, cmd_serve,
    cmd_workload,
}; /* in fz_commands order */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!freopen("/dev/null", "w", stdout))
        abort();
    return 0;
}

/* On the first input, once libFuzzer has read its corpus directories (they
 * are relative to where it started). */
static void enter_tmp_dir(void)
{
    static int done;
    char dir[] = "/tmp/kvsim-fuzz-cli-XXXXXX";
    if (done++)
        return;
    if (!mkdtemp(dir) || chdir(dir) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    _Static_assert(sizeof runs / sizeof runs[0] == FZ_NCOMMANDS, "one run per fz_commands entry");
    static fz_cmdline c;
    enter_tmp_dir();
    fz_argv(data, size, &c);
    jmp_buf stop;
    cli_fuzz_stop = &stop;
    if (setjmp(stop) == 0)
        runs[size ? data[0] % FZ_NCOMMANDS : 0](c.argc, c.argv);
    cli_fuzz_stop = NULL;
    return 0;
}
