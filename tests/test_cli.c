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
    cr_assert(cli_one_line(r.err) && strstr(r.err, "layer 30 does not exist"), "%s", r.err);
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

Test(cli, help_everywhere)
{
    cli_result r;
    const char *cmds[] = {"--help", "params --help", "fidelity --help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_run(&r, cmds[i]);
        cr_assert_eq(r.rc, 0, "%s", cmds[i]);
        cr_assert(strstr(r.out, "usage") || strstr(r.out, "kvsim"), "%s", cmds[i]);
    }
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
