/* test_engines.c — engines/: every bundled engine loads with a source per
 * figure; each loader error names file:line:col; the KV pool of each budget
 * kind (vLLM total, TensorRT-LLM free, SGLang static, gpt-fast none) against
 * the engine's own rule written out here by hand; whole pages; the maximum
 * concurrency vLLM prints. Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "eng.h"
#include "sim.h"

static eng_engine load_ok(const char *name)
{
    eng_engine e;
    kv_err err = {""};
    cr_assert_eq(eng_load(name, &e, &err), 0, "%s: %s", name, err.msg);
    return e;
}

static void expect_error(const char *path, const char *msg)
{
    eng_engine e;
    memset(&e, 0x5a, sizeof e);
    kv_err err = {""};
    cr_assert_eq(eng_load(path, &e, &err), -1, "%s was accepted", path);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(e.block_tokens, 0x5a5a5a5a5a5a5a5aLL, "partial result written on error");
}

Test(engines, bundled_engines_load)
{
    int n = 0;
    for (const char *const *name = eng_names(); *name; name++, n++) {
        eng_engine e = load_ok(*name);
        cr_assert_str_eq(e.name, *name);
        cr_assert(e.display_name[0]);
    }
    cr_assert_eq(n, 4);
    eng_engine v = load_ok("vllm"), t = load_ok("trtllm"), s = load_ok("sglang"), g = load_ok("gpt-fast");
    cr_assert_eq(v.budget, ENG_BUDGET_TOTAL);
    cr_assert_eq(v.mem_fraction, 0.9);
    cr_assert_eq(v.block_tokens, 16);
    cr_assert_eq(t.budget, ENG_BUDGET_FREE);
    cr_assert_eq(t.block_tokens, 64);
    cr_assert_eq(s.budget, ENG_BUDGET_STATIC);
    cr_assert_eq(s.block_tokens, 1);
    cr_assert_eq(g.budget, ENG_BUDGET_NONE);
    cr_assert_eq(g.harness, ENG_HARNESS_GPT_FAST);
    cr_assert_eq(v.harness, ENG_HARNESS_FUSED);
}

Test(engines, loader_error_paths)
{
    expect_error("tests/data/bad/engine_unknown_key.yaml",
                 "tests/data/bad/engine_unknown_key.yaml:13:1: unknown key 'block_size' (expected one of: display_name, budget, harness, mem_fraction, block_tokens, "
                 "activation_tokens, sampler_seqs, sampler_copies, runtime_bytes, runtime_tp_bytes, "
                 "cuda_graph_bytes, prefill_chunk_tokens, cuda_graphs, gqa_kernel_groups, lm_head_quantized, sources, "
                 "serving)");
    expect_error("tests/data/bad/engine_budget.yaml", "tests/data/bad/engine_budget.yaml:4:9: key 'budget': "
                 "'everything' is not allowed; expected one of: total, free, static, none");
    expect_error("tests/data/bad/engine_fraction.yaml", "tests/data/bad/engine_fraction.yaml:6:15: key "
                 "'mem_fraction': expected a number in (0, 1], got '1.5'");
    expect_error("tests/data/bad/engine_block_type.yaml", "tests/data/bad/engine_block_type.yaml:7:15: key "
                 "'block_tokens': expected an integer in [1, 1048576], got '16x'");
    expect_error("tests/data/bad/engine_missing_source.yaml", "tests/data/bad/engine_missing_source.yaml:16:3: "
                 "missing key 'block_tokens' in 'sources' (every figure needs a source)");
    expect_error("tests/data/bad/engine_serving_source.yaml", "tests/data/bad/engine_serving_source.yaml:35:5: "
                 "missing key 'admit_reserve' in 'serving: sources' (every figure needs a source)");
    expect_error("tests/data/bad/engine_graphs_type.yaml", "tests/data/bad/engine_graphs_type.yaml:15:14: key "
                 "'cuda_graphs': expected true or false, got 'yes'");
    expect_error("tests/data/bad/engine_graphs_source.yaml", "tests/data/bad/engine_graphs_source.yaml:17:3: "
                 "missing key 'cuda_graphs' in 'sources' (every figure needs a source)");
    expect_error("tests/data/bad/engine_gqa_range.yaml", "tests/data/bad/engine_gqa_range.yaml:16:24: key "
                 "'gqa_kernel_groups' entry 2: 0 is out of range; allowed [1, 1024]");
    expect_error("tests/data/bad/engine_gqa_scalar.yaml", "tests/data/bad/engine_gqa_scalar.yaml:16:20: key "
                 "'gqa_kernel_groups': expected a list of 1 to 8 group sizes");
    expect_error("tests/data/bad/engine_gqa_quoted.yaml", "tests/data/bad/engine_gqa_quoted.yaml:16:24: key "
                 "'gqa_kernel_groups' entry 2: expected an integer");
}

/* cuda_graphs: optional, default true (every bundled engine); the gptSessionBenchmark
 * engines of the validation set say false. An engine that launches plainly pays
 * launch_s instead of launch_graph_s per kernel: at batch 1, TP 1, one prompt chunk,
 * prefill launches 10 kernels per layer (QKV, O, gate+up and down as two, the
 * attention's two, three elementwise) and 3 for the LM head — counted from
 * sim/step.c's prefill — so TTFT grows by (10 L + 3) x (launch_s - launch_graph_s). */
Test(engines, plain_launches_cost_launch_s)
{
    static const char *const graphs[] = {"vllm", "trtllm", "sglang", "gpt-fast", "validation/engines/vllm-v0.6.yaml"};
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++)
        cr_assert_eq(load_ok(graphs[i]).cuda_graphs, 1, "%s", graphs[i]);
    static const char *const eager[] = {"validation/engines/trtllm-v0.6.yaml", "validation/engines/trtllm-v0.9.yaml",
                                        "validation/engines/vllm-v0.2.yaml"};
    for (size_t i = 0; i < sizeof eager / sizeof eager[0]; i++)
        cr_assert_eq(load_ok(eager[i]).cuda_graphs, 0, "%s", eager[i]);
    mdl_model m;
    hw_model h;
    kv_err err = {""};
    cr_assert_eq(mdl_model_load("llama3.1-8b", &m, &err), 0, "%s", err.msg);
    cr_assert_eq(hw_model_load("h100-sxm", &h, &err), 0, "%s", err.msg);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 2048;
    rq.max_new = 2;
    rq.d = m.head_dim;
    rq.G = m.num_attention_heads / m.num_key_value_heads;
    rq.model_max_len = m.max_position_embeddings;
    rkv_params p;
    cr_assert_eq(rkv_params_resolve("full", &rq, &p, &err), 0, "%s", err.msg);
    eng_engine e = load_ok("validation/engines/trtllm-v0.9.yaml");
    sim_config c, g;
    sim_config_defaults(&c, &m, &h, &p);
    sim_config_set_engine(&c, &e, 0.0);
    cr_assert_eq(c.cuda_graphs, 0);
    g = c;
    g.cuda_graphs = 1;
    sim_result rc, rg;
    cr_assert_eq(sim_predict(&c, &rc, &err), 0, "%s", err.msg);
    cr_assert_eq(sim_predict(&g, &rg, &err), 0, "%s", err.msg);
    const double want = (10.0 * m.num_hidden_layers + 3.0) * (h.launch_s - h.launch_graph_s);
    cr_assert_float_eq(rc.ttft_s - rg.ttft_s, want, 1e-12, "%g s vs %g s", rc.ttft_s - rg.ttft_s, want);
}

/* The `serving:` block of the two engine versions the serving validation
 * models (validation/engines/, values as written there); an engine without one steps
 * with no host time, mixed steps, one scheduler pass per step. */
Test(engines, serving_block_loads)
{
    eng_engine s = load_ok("validation/engines/sglang-v0.3.yaml"), v = load_ok("validation/engines/vllm-v0.6-multistep.yaml"),
               n = load_ok("vllm");
    cr_assert_eq(s.serving.host_step_s, 0.0025);
    cr_assert_eq(s.serving.prefill_alone, 1);
    cr_assert_eq(s.serving.scheduler_steps, 1);
    cr_assert_eq(s.serving.max_running, 2047);
    cr_assert_eq(s.serving.admit_reserve, 0.1);
    cr_assert_eq(v.serving.host_step_s, 0.020);
    cr_assert_eq(v.serving.scheduler_steps, 10);
    cr_assert_eq(v.serving.max_running, 256);
    cr_assert_eq(v.serving.admit_reserve, 0.0);
    cr_assert_eq(n.serving.host_step_s, 0.0);
    cr_assert_eq(n.serving.prefill_alone, 0);
    cr_assert_eq(n.serving.scheduler_steps, 1);
}

/* A made-up device and model, round numbers, so every rule can be worked by hand. */
static eng_pool_in toy(void)
{
    eng_pool_in in;
    memset(&in, 0, sizeof in);
    in.device_total_bytes = 100e9;
    in.context_bytes = 0.5e9;
    in.weights_bytes = 20e9;
    in.kv_bytes_per_token = 131072.0;
    in.act_bytes_per_token = 1000.0;
    in.vocab = 1000.0;
    in.tp = 1;
    return in;
}

Test(engines, vllm_pool_is_fraction_of_total_minus_non_kv)
{
    eng_engine e = load_ok("vllm");
    eng_pool_in in = toy();
    eng_pool p;
    kv_err err = {""};
    cr_assert_eq(eng_kv_pool(&e, 0, &in, 8192, &p, &err), 0, "%s", err.msg);
    /* activation peak: the larger of 8192 tokens × 1000 B (the forward) and 1024 seqs × 1000
     * vocab × 4 B × 9.6 buffers (the sampler's dummy run, after the forward's are freed) */
    const double act = fmax(8192.0 * 1000.0, 1024.0 * 1000.0 * 4.0 * 9.6);
    cr_assert_eq(p.activation_bytes, act);
    cr_assert_eq(act, 1024.0 * 1000.0 * 4.0 * 9.6, "the sampler's 39.3 MB beats the forward's 8.2 MB");
    /* 0.9 × 100e9 − 20e9 − act − 0.12 GiB; the context is not charged */
    const double avail = 90e9 - 20e9 - act - 128849019.0;
    const int64_t blocks = (int64_t)(avail / (16.0 * 131072.0));
    cr_assert_eq(p.kv_blocks, blocks);
    cr_assert_eq(p.kv_tokens, 16 * blocks);
    cr_assert_eq(p.max_concurrency, (double)blocks / 512.0, "8192 tokens = 512 pages");
    cr_assert_eq(p.kv_pool_bytes, (double)blocks * 16.0 * 131072.0);
    /* --mem-fraction replaces the default; TP > 1 adds the NCCL figure */
    in.tp = 2;
    cr_assert_eq(eng_kv_pool(&e, 0.5, &in, 1000, &p, &err), 0);
    const double avail2 = 50e9 - 20e9 - act - 128849019.0 - 214748365.0;
    cr_assert_eq(p.kv_blocks, (int64_t)(avail2 / (16.0 * 131072.0)));
    cr_assert_eq(p.max_concurrency, (double)p.kv_blocks / 63.0, "1000 tokens = 63 pages (62.5 rounded up)");
}

Test(engines, trtllm_pool_is_fraction_of_free)
{
    eng_engine e = load_ok("trtllm");
    eng_pool_in in = toy();
    eng_pool p;
    kv_err err = {""};
    cr_assert_eq(eng_kv_pool(&e, 0, &in, 4096, &p, &err), 0, "%s", err.msg);
    const double act = 8192.0 * 1000.0; /* no separate sampler run */
    const double free_b = 100e9 - 0.5e9 - 20e9 - act - 536870912.0;
    const int64_t blocks = (int64_t)(0.9 * free_b / (64.0 * 131072.0));
    cr_assert_eq(p.kv_blocks, blocks);
    cr_assert_eq(p.kv_tokens, 64 * blocks);
    cr_assert_eq(p.max_concurrency, (double)blocks / 64.0);
}

Test(engines, sglang_pool_is_static_fraction_minus_weights)
{
    eng_engine e = load_ok("sglang");
    eng_pool_in in = toy();
    eng_pool p;
    kv_err err = {""};
    cr_assert_eq(eng_kv_pool(&e, 0, &in, 4096, &p, &err), 0, "%s", err.msg);
    /* (100e9 − 0.5e9 − 20e9) − 100e9 × 0.12, token granular */
    const int64_t tokens = (int64_t)((79.5e9 - 12e9) / 131072.0);
    cr_assert_eq(p.kv_tokens, tokens);
    cr_assert_eq(p.kv_blocks, tokens);
    cr_assert(fabs(p.max_concurrency - (double)tokens / 4096.0) < 1e-12);
    /* a fraction too small for the weights leaves nothing: a result, not an error */
    cr_assert_eq(eng_kv_pool(&e, 0.2, &in, 4096, &p, &err), 0);
    cr_assert_eq(p.kv_tokens, 0);
    cr_assert_eq(p.max_concurrency, 0.0);
}

Test(engines, gpt_fast_has_no_fraction)
{
    eng_engine e = load_ok("gpt-fast");
    eng_pool_in in = toy();
    eng_pool p;
    kv_err err = {""};
    cr_assert_eq(eng_kv_pool(&e, 0, &in, 4096, &p, &err), 0, "%s", err.msg);
    const double avail = 100e9 - 0.5e9 - 20e9 - 4096.0 * 1000.0;
    cr_assert_eq(p.kv_blocks, (int64_t)(avail / (8.0 * 131072.0)));
}

Test(engines, pages_round_up_and_bad_arguments_are_errors)
{
    eng_engine e = load_ok("vllm");
    cr_assert_eq(eng_seq_pool_bytes(&e, 100.0, 1), 1600.0);
    cr_assert_eq(eng_seq_pool_bytes(&e, 100.0, 16), 1600.0);
    cr_assert_eq(eng_seq_pool_bytes(&e, 100.0, 17), 3200.0);
    eng_pool_in in = toy();
    eng_pool p;
    kv_err err = {""};
    cr_assert_eq(eng_kv_pool(&e, 1.5, &in, 4096, &p, &err), -1);
    cr_assert_str_eq(err.msg, "engine vllm: memory fraction 1.5 is above 1");
    in.kv_bytes_per_token = 0;
    cr_assert_eq(eng_kv_pool(&e, 0, &in, 4096, &p, &err), -1);
}
