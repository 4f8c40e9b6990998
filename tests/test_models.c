/* test_models.c — models/: the bundled architectures, derived counts against
 * published parameter counts, every loader error path with its file:line:col,
 * the config.json importer and the YAML writer, and `kvsim model` exit codes.
 * Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include "cli_util.h"
#include "text_file.h"
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mdl.h"

#define PARAM_TOL 0.01 /* published counts are rounded; 1% is the bar */

static mdl_model load_ok(const char *name)
{
    mdl_model m;
    kv_err err = {""};
    cr_assert_eq(mdl_model_load(name, &m, &err), 0, "%s: %s", name, err.msg);
    return m;
}

static void expect_error(const char *path, const char *msg)
{
    mdl_model m;
    memset(&m, 0x5a, sizeof m);
    kv_err err = {""};
    cr_assert_eq(mdl_model_load(path, &m, &err), -1, "%s was accepted", path);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(m.num_hidden_layers, 0x5a5a5a5a, "partial result written on error");
}

typedef struct {
    char name[32];
    double published; /* parameters */
} published_count;

ParameterizedTestParameters(models, param_count_matches_published)
{
    static published_count p[] = {
        {"llama3.1-8b", 8.03e9}, {"llama3.1-70b", 70.6e9}, {"mistral-7b-v0.2", 7.24e9},
        {"qwen2.5-7b", 7.62e9}, {"smollm2-135m", 134.5e6}, {"longchat-7b-32k", 6.74e9},
    };
    return cr_make_param_array(published_count, p, sizeof p / sizeof p[0]);
}

ParameterizedTest(published_count *p, models, param_count_matches_published)
{
    mdl_model m = load_ok(p->name);
    double n = (double)mdl_param_count(&m);
    cr_assert(fabs(n / p->published - 1.0) < PARAM_TOL, "%s: %.0f parameters, published %.4g (%.2f%% off)",
              p->name, n, p->published, 100.0 * (n / p->published - 1.0));
    cr_assert_eq(mdl_weight_bytes(&m, 2.0), 2 * mdl_param_count(&m));
}

Test(models, every_bundled_model_loads_and_names_match_files)
{
    int n = 0;
    for (const char *const *name = mdl_model_names(); *name; name++, n++) {
        mdl_model m = load_ok(*name);
        cr_assert_str_eq(m.name, *name);
        cr_assert(strstr(m.source, "huggingface.co/"), "%s: source '%s'", *name, m.source);
        cr_assert_eq(m.num_attention_heads % m.num_key_value_heads, 0);
    }
    cr_assert_eq(n, 6);
}

/* Llama-3.1-8B by hand: embeddings 128256·4096 = 525,336,576 (and again for
 * the untied head); per layer q 4096·4096 + k,v 2·4096·1024 + o 4096·4096 =
 * 41,943,040, MLP 3·4096·14336 = 176,160,768, norms 2·4096 = 8,192, total
 * 218,112,000 · 32 = 6,979,584,000; final norm 4,096. Sum 8,030,261,248. */
Test(models, llama3_1_8b_counts_by_hand)
{
    mdl_model m = load_ok("llama3.1-8b");
    cr_assert_eq(mdl_layer_params(&m), 218112000LL);
    cr_assert_eq(mdl_lm_head_params(&m), 525336576LL);
    cr_assert_eq(mdl_param_count(&m), 8030261248LL);
    cr_assert_eq(mdl_kv_bytes_per_token(&m, 2.0), 131072); /* 2 · 32 · 8 · 128 · 2 */
    cr_assert_eq(mdl_kv_bytes_per_token(&m, 1.0), 65536);
    cr_assert_eq(mdl_group_size(&m), 4);
}

Test(models, qwen2_biases_and_tied_embeddings_are_counted)
{
    mdl_model q = load_ok("qwen2.5-7b");
    cr_assert(q.attention_bias);
    int64_t with = mdl_layer_params(&q);
    q.attention_bias = 0;
    snprintf(q.name, sizeof q.name, "other");
    snprintf(q.source, sizeof q.source, "elsewhere");
    cr_assert_eq(with - mdl_layer_params(&q), 28 * 128 + 2 * 4 * 128); /* q, k, v biases */
    mdl_model s = load_ok("smollm2-135m");
    int64_t tied = mdl_param_count(&s);
    s.tie_word_embeddings = 0;
    cr_assert_eq(mdl_param_count(&s) - tied, 49152LL * 576);
}

Test(models, loader_error_paths)
{
    expect_error("tests/data/bad/model_malformed.yaml", "tests/data/bad/model_malformed.yaml:4:20: YAML syntax "
                 "error: did not find expected ',' or ']' (while parsing a flow sequence)");
    expect_error("tests/data/bad/model_unknown_key.yaml",
                 "tests/data/bad/model_unknown_key.yaml:6:1: unknown key 'hiden_size' (did you mean 'hidden_size'? "
                 "expected one of: source, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, "
                 "hidden_size, intermediate_size, vocab_size, max_position_embeddings, rope_theta, "
                 "tie_word_embeddings, torch_dtype, attention_bias, weight_dtype)");
    expect_error("tests/data/bad/model_missing_key.yaml",
                 "tests/data/bad/model_missing_key.yaml:1:1: missing key 'vocab_size'");
    expect_error("tests/data/bad/model_wrong_type.yaml",
                 "tests/data/bad/model_wrong_type.yaml:5:11: key 'head_dim': expected an integer in [1, 16777216], got '12x'");
    expect_error("tests/data/bad/model_nonpositive.yaml", "tests/data/bad/model_nonpositive.yaml:7:20: key "
                 "'intermediate_size': expected an integer in [1, 16777216], got '0'");
    expect_error("tests/data/bad/model_heads.yaml", "tests/data/bad/model_heads.yaml:4:22: key "
                 "'num_key_value_heads': 5 does not divide num_attention_heads (32) evenly");
    expect_error("tests/data/bad/model_bool.yaml", "tests/data/bad/model_bool.yaml:11:22: key "
                 "'tie_word_embeddings': expected true or false, got 'no'");
    expect_error("tests/data/bad/model_dtype.yaml", "tests/data/bad/model_dtype.yaml:12:14: key 'torch_dtype': "
                 "expected bfloat16, float16 or float32, got 'bf16'");
    expect_error("tests/data/bad/model_duplicate.yaml",
                 "tests/data/bad/model_duplicate.yaml:13:1: duplicate key 'head_dim' (first at line 5)");
    expect_error("tests/data/bad/model_empty.yaml", "tests/data/bad/model_empty.yaml:1:1: the file is empty; "
                 "expected a mapping of 'key: value' lines");
}

Test(models, unknown_name_lists_bundled_models)
{
    mdl_model m;
    kv_err err = {""};
    unsetenv("KVSIM_DATA");
    cr_assert_eq(mdl_model_load("llama9", &m, &err), -1);
    cr_assert(strstr(err.msg, "unknown model 'llama9' (no "), "%s", err.msg);
    cr_assert(strstr(err.msg, "bundled: llama3.1-8b, llama3.1-70b,"), "%s", err.msg);
}

Test(models, kvsim_data_overrides_the_build_directory)
{
    char dir[] = "/tmp/kvsim-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[64], path[96], cmd[128];
    snprintf(sub, sizeof sub, "%s/models", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/llama3.1-8b.yaml", sub);
    mdl_model m = load_ok("smollm2-135m");
    kv_err err = {""};
    cr_assert_eq(mdl_model_write_yaml(&m, path, &err), 0, "%s", err.msg);
    setenv("KVSIM_DATA", dir, 1);
    mdl_model got = load_ok("llama3.1-8b"); /* now resolves to the SmolLM2 copy */
    cr_assert_eq(got.hidden_size, 576);
    cr_assert_str_eq(got.path, path);
    unsetenv("KVSIM_DATA");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(models, import_reproduces_bundled_llama3_1_8b)
{
    mdl_model im, ref = load_ok("llama3.1-8b");
    kv_err err = {""};
    cr_assert_eq(mdl_import_config_json("tests/data/llama3.1-8b.config.json", NULL, &im, &err), 0, "%s", err.msg);
    cr_assert_str_eq(im.name, "llama3.1-8b");
    cr_assert_eq(im.num_hidden_layers, ref.num_hidden_layers);
    cr_assert_eq(im.num_attention_heads, ref.num_attention_heads);
    cr_assert_eq(im.num_key_value_heads, ref.num_key_value_heads);
    cr_assert_eq(im.head_dim, 128, "head_dim derived as hidden_size / num_attention_heads");
    cr_assert_eq(im.hidden_size, ref.hidden_size);
    cr_assert_eq(im.intermediate_size, ref.intermediate_size);
    cr_assert_eq(im.vocab_size, ref.vocab_size);
    cr_assert_eq(im.max_position_embeddings, ref.max_position_embeddings);
    cr_assert_float_eq(im.rope_theta, ref.rope_theta, 1e-9);
    cr_assert_eq(im.tie_word_embeddings, ref.tie_word_embeddings);
    cr_assert_str_eq(im.torch_dtype, ref.torch_dtype);
    cr_assert_eq(mdl_param_count(&im), mdl_param_count(&ref));

    /* written YAML loads back to the same numbers */
    char path[] = "/tmp/kvsim-import-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(mdl_model_write_yaml(&im, path, &err), 0, "%s", err.msg);
    mdl_model back = load_ok(path);
    remove(path);
    cr_assert_eq(mdl_param_count(&back), mdl_param_count(&ref));
    cr_assert_eq(mdl_kv_bytes_per_token(&back, 2.0), 131072);
    cr_assert_str_eq(back.source, "imported from tests/data/llama3.1-8b.config.json");
}

Test(models, import_defaults_for_absent_keys)
{
    char path[] = "/tmp/kvsim-config-XXXXXX.json";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    close(fd);
    /* no num_key_value_heads, head_dim, rope_theta, tie_word_embeddings, torch_dtype */
    write_text(path, "{\"model_type\": \"qwen2\", \"hidden_size\": 896, \"intermediate_size\": 4864,"
                     " \"max_position_embeddings\": 32768, \"num_attention_heads\": 14, \"num_hidden_layers\": 24,"
                     " \"vocab_size\": 151936, \"head_dim\": null, \"unknown_future_key\": {\"x\": [1, 2]}}");
    mdl_model m;
    kv_err err = {""};
    cr_assert_eq(mdl_import_config_json(path, "tiny", &m, &err), 0, "%s", err.msg);
    remove(path);
    cr_assert_str_eq(m.name, "tiny");
    cr_assert_eq(m.num_key_value_heads, 14);
    cr_assert_eq(m.head_dim, 64);
    cr_assert_float_eq(m.rope_theta, 10000.0, 1e-9);
    cr_assert_eq(m.tie_word_embeddings, 0);
    cr_assert_str_eq(m.torch_dtype, "bfloat16");
    cr_assert_eq(m.attention_bias, 1, "model_type qwen2 has q/k/v biases");
}

Test(models, import_error_paths)
{
    mdl_model m;
    kv_err err = {""};
    const struct { const char *path, *msg; } cases[] = {
        {"tests/data/bad/config_missing.json", "tests/data/bad/config_missing.json:1:1: missing key 'vocab_size'"},
        {"tests/data/bad/config_type.json", "tests/data/bad/config_type.json:3:24: key 'intermediate_size': "
                                            "expected a positive integer, got the string '14336'"},
        {"tests/data/bad/config_syntax.json",
         "tests/data/bad/config_syntax.json:4:1: trailing comma before '}' (not allowed in JSON)"},
        {"tests/data/bad/config_heads.json", "tests/data/bad/config_heads.json:4:26: key 'num_key_value_heads': "
                                             "6 does not divide num_attention_heads (32) evenly"},
        {"tests/data/nope.json", "tests/data/nope.json: cannot open: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(mdl_import_config_json(cases[i].path, NULL, &m, &err), -1, "%s accepted", cases[i].path);
        cr_assert_str_eq(err.msg, cases[i].msg);
    }
}

Test(models, check_rejects_what_the_loader_rejects)
{
    mdl_model m = load_ok("mistral-7b-v0.2");
    kv_err err = {""};
    cr_assert_eq(mdl_model_check(&m, "here", &err), 0);
    m.num_key_value_heads = 3;
    cr_assert_eq(mdl_model_check(&m, "here", &err), -1);
    cr_assert_str_eq(err.msg, "here: num_attention_heads (32) is not a multiple of num_key_value_heads (3)");
    m.num_key_value_heads = 8;
    m.head_dim = 0;
    cr_assert_eq(mdl_model_check(&m, "here", &err), -1);
    cr_assert_str_eq(err.msg, "here: head_dim must be a positive integer, got 0");
}

/* ---- the CLI, end to end (KVSIM_BIN is set by make test) ---- */

Test(models, cli_exit_codes)
{
    cr_assert_eq(cli_rc("model list"), 0);
    cr_assert_eq(cli_rc("model list --json"), 0);
    cr_assert_eq(cli_rc("model show qwen2.5-7b --json"), 0);
    cr_assert_eq(cli_rc("model import tests/data/llama3.1-8b.config.json"), 0);
    cr_assert_eq(cli_rc("model show no-such-model"), 1);
    cr_assert_eq(cli_rc("model show tests/data/bad/model_heads.yaml"), 1);
    cr_assert_eq(cli_rc("model import tests/data/bad/config_type.json"), 1);
    cr_assert_eq(cli_rc("model"), 2);
    cr_assert_eq(cli_rc("model frobnicate"), 2);
    cr_assert_eq(cli_rc("model show"), 2);
    cr_assert_eq(cli_rc("model show llama3.1-8b --jsn"), 2);
    cr_assert_eq(cli_rc("model --help"), 0);
}
