/* test_cli.c — kvsim params / fidelity end to end: exit codes (0 ok, 2 bad
 * usage, 1 failed work), one clear stderr line naming what is wrong, JSON
 * keys of the documented shape. */
#include "cli_util.h"

Test(cli, params_json_has_trtllm_names)
{
    cli_result r;
    cli_run(&r, "params --model llama3.1-8b --method rocketkv --budget 256 --context 16384 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *keys[] = {"\"prompt_budget\":1546", "\"window_size\":32", "\"kernel_size\":63", "\"page_size\":3",
                          "\"topr\":61", "\"topk\":128", "\"capacity\":1596", "\"rho\":", "\"compression_ratio\":"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(r.out, keys[i]), "missing %s in %s", keys[i], r.out);
}

Test(cli, bad_usage_is_exit_2_with_one_line)
{
    cli_result r;
    cli_run(&r, "params --budget abc");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "--budget"), "%s", r.err);
    cli_run(&r, "params --method rocketkv --budget 1");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "too small"), "%s", r.err);
    cli_run(&r, "fidelity --bugdet 64");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "unknown option --bugdet"), "%s", r.err);
    cli_run(&r, "fidelity --model smollm2-135m --context 512 --steps 60");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "--steps"), "%s", r.err);
    cli_run(&r, "fidelity --model smollm2-135m --context 512 --layers 30");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "--layers: 30 is out of range; allowed [0, 29]"), "%s", r.err);
    /* smollm2-135m's 8192 positions leave 2 decode steps after 8190 prompt tokens */
    cli_run(&r, "fidelity --model smollm2-135m --context 8190 --new 50 --steps 3 --layers 0");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "--steps 3: the model's max length 8192 leaves 2 decode positions"),
              "%s", r.err);
    cli_run(&r, "frobnicate");
    cr_assert_eq(r.rc, 2);
    cli_run(&r, "params --context 200000");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "max_position_embeddings"), "%s", r.err);
}

Test(cli, bad_files_are_exit_1_with_position)
{
    cli_result r;
    cli_run(&r, "fidelity --model smollm2-135m --context 512 --layers 0 --workload tests/data/bad/workload_wrong_type.yaml");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "workload_wrong_type.yaml:2:13:"), "%s", r.err);
    cli_run(&r, "params --model tests/data/bad/no-such.yaml");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err), "%s", r.err);
}

Test(cli, fidelity_json, .timeout = 120)
{
    cli_result r;
    cli_run(&r, "fidelity --model smollm2-135m --method rocketkv --budget 128 --context 700 --steps 2 --layers 0,29 "
                "--json --threads 2");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *keys[] = {"\"params\":{", "\"fidelity\":{", "\"output_rel_err\":{\"mean\":", "\"mass_recall\"",
                          "\"topk_recall\"", "\"stage1_survival\"", "\"per_layer\":[{\"layer\":0", "{\"layer\":29",
                          "\"p95\":", "\"samples\":36"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(r.out, keys[i]), "missing %s", keys[i]);
}

/* The subcommands, by hand (one cli/cmd_<name>.c each): the top-level help
 * lists each on its own line and no other; each one's --help exits 0 and
 * starts with its usage line; params --help names the flags a user needs. */
Test(cli, help_everywhere)
{
    static const char *const cmds[] = {"params", "fidelity", "model",  "hw",       "trace",  "inspect",
                                       "predict", "plan",   "sweep",  "report",   "golden", "compare",
                                       "generate", "replay", "validate", "kvdump", "eval",   "serve",
                                       "check-published", "workload"};
    const size_t n = sizeof cmds / sizeof cmds[0];
    cli_result r;
    cli_run(&r, "--help");
    cr_assert_eq(r.rc, 0);
    cr_assert(!strncmp(r.out, "kvsim ", 6) && strstr(r.out, "usage: kvsim <subcommand> [options]"), "%s", r.out);
    size_t listed = 0;
    for (const char *line = r.out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (line[0] == ' ' && line[1] == ' ' && line[2] >= 'a' && line[2] <= 'z') listed++;
    cr_assert_eq(listed, n, "--help lists %zu subcommands, expected %zu:\n%s", listed, n, r.out);
    char want[64], args[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof want, "\n  %-10s ", cmds[i]);
        cr_assert(strstr(r.out, want), "--help does not list '%s'", cmds[i]);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cli_run(&r, args);
        cr_assert_eq(r.rc, 0, "%s: exit %d", args, r.rc);
        snprintf(want, sizeof want, "usage: kvsim %s ", cmds[i]);
        cr_assert(!strncmp(r.out, want, strlen(want)), "%s: stdout starts '%.60s'", args, r.out);
    }
    cli_run(&r, "params --help");
    const char *flags[] = {"--model M", "--method X", "--budget T", "--context S", "--new N", "--dtype D", "--json"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(r.out, flags[i]), "params --help lacks %s", flags[i]);
}

/* kvsim replay hands over to kvsim-cuda beside it; the sanitized build has
 * none, so it must say how to build it, in one line, and fail. */
Test(cli, replay_without_the_cuda_binary)
{
    cli_result r;
    cli_run(&r, "replay --trace traces/samples/rocketkv.trc --check");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "make replay-build"), "%s", r.err);
    cli_run(&r, "replay --help");
    cr_assert_eq(r.rc, 0);
    cr_assert(strstr(r.out, "kvsim replay --trace FILE"), "%s", r.out);
}
