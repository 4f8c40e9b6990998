/* test_sim.c — sim/: datasheet arithmetic by hand (bytes per token, weights,
 * step time at 100% efficiency), the paper harness's decode-peak table (all
 * eight points within 1%), the capacity solver at its boundary, the
 * tensor-parallel split, a source other than the analytic one giving the same
 * answer, "does not fit" as a result, and `kvsim predict` / `kvsim plan` exit
 * codes. Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include "cli_util.h"
#include <criterion/parameterized.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim.h"

#define REL_EXACT 1e-12 /* same arithmetic in another order */
#define PAPER_TOL 0.01  /* docs/algorithm.md: within 1% */

static mdl_model load_model(const char *name)
{
    mdl_model m;
    kv_err err = {""};
    cr_assert_eq(mdl_model_load(name, &m, &err), 0, "%s", err.msg);
    return m;
}

static hw_model load_hw(const char *name)
{
    hw_model h;
    kv_err err = {""};
    cr_assert_eq(hw_model_load(name, &h, &err), 0, "%s", err.msg);
    return h;
}

static rkv_params resolve(const mdl_model *m, const char *method, int64_t S, int64_t t, int64_t new_tokens)
{
    rkv_request rq;
    rkv_params p;
    kv_err err = {""};
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = S;
    rq.budget = t;
    rq.max_new = new_tokens;
    cr_assert_eq(rkv_params_resolve(method, &rq, &p, &err), 0, "%s", err.msg);
    return p;
}

/* An ideal H100: every efficiency 1, no launch or all-reduce latency. */
static hw_model ideal_h100(void)
{
    hw_model h = load_hw("h100-sxm");
    h.stream_read_efficiency = 1.0;
    h.n_runs = 0;
    h.compute_efficiency = 1.0;
    h.launch_s = h.launch_graph_s = h.allreduce_latency_s = h.link_latency_s = h.dram_latency_s = 0.0;
    return h;
}

static int rel_eq(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

Test(sim, datasheet_arithmetic_by_hand)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = ideal_h100();
    /* 2 (K,V) · 32 layers · 8 KV heads · 128 dims · 2 bytes */
    cr_assert_eq(mdl_kv_bytes_per_token(&m, 2.0), 131072);
    const int64_t S = 16383, steps = 49; /* odd context; --new 50 gives 49 decode steps */
    rkv_params p = resolve(&m, "full", S, 1024, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    sim_result r;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.steps, steps);
    /* 8,030,261,248 parameters in bf16; a step reads all but the embedding table */
    cr_assert_eq(r.mem.weights_bytes, 2.0 * 8030261248.0);
    cr_assert_eq(r.cat_bytes[SIM_CAT_WEIGHTS], 2.0 * (8030261248.0 - 128256.0 * 4096.0));
    /* step s attends S + s + 1 tokens: the mean over 49 steps is S + 25 */
    cr_assert(rel_eq(r.cat_bytes[SIM_CAT_KV_FULL], 131072.0 * (double)(S + 25), REL_EXACT));
    cr_assert(rel_eq(r.cat_bytes[SIM_CAT_KV_WRITE], 131072.0, REL_EXACT));
    /* at 100% efficiency every kernel is bandwidth bound at batch 1: time = bytes / 3.35e12 */
    double bytes = 0.0;
    for (int i = 0; i < SIM_CAT_N; i++) bytes += r.cat_bytes[i];
    cr_assert(rel_eq(r.decode_s, steps * bytes / 3.35e12, 1e-9), "%g vs %g", r.decode_s, steps * bytes / 3.35e12);
    /* and by hand, ignoring the activations (< 0.1% of the bytes) */
    double hand = 0.0;
    for (int64_t s = 0; s < steps; s++)
        hand += (15009849344.0 + 131072.0 * (double)(S + s + 1) + 131072.0) / 3.35e12;
    cr_assert(rel_eq(r.decode_s, hand, 1e-3), "%g vs %g", r.decode_s, hand);
    cr_assert(r.last_step_s > r.first_step_s, "the cache grows step by step");
    cr_assert(rel_eq(r.tokens_per_s, steps / r.decode_s, REL_EXACT));
}

Test(sim, rocketkv_bytes_follow_refimpl_traffic)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = ideal_h100();
    rkv_params p = resolve(&m, "rocketkv", 96256, 256, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.batch = 3;
    sim_result r;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    /* By hand (docs/algorithm.md's traffic row): P = 1351, p = 3, r = 70, k = 128, d = 128,
     * b = 2. Decode step s (0..48) holds C = P + s + 1 = 1352 + s tokens; per (layer, KV
     * head) it reads k·2·d·b = 65,536 B of K/V rows and ⌈C/p⌉·r·b aux bytes. The mean of
     * ⌈C/3⌉ over C = 1352..1400 is 22,491 / 49 = 459. Times batch 3 × 32 layers × 8 KV
     * heads: kv_exact 50,331,648 B and aux 3·32·8·459·140 = 49,351,680 B per step. */
    cr_assert_eq(p.prompt_budget, 1351);
    cr_assert_eq(r.steps, 49);
    cr_assert(rel_eq(r.cat_bytes[SIM_CAT_KV_EXACT], 50331648.0, REL_EXACT), "%.17g", r.cat_bytes[SIM_CAT_KV_EXACT]);
    cr_assert(rel_eq(r.cat_bytes[SIM_CAT_AUX], 49351680.0, REL_EXACT), "%.17g", r.cat_bytes[SIM_CAT_AUX]);
    cr_assert_eq(r.cat_bytes[SIM_CAT_KV_FULL], 0.0);
    /* gathers: page runs p·d·b = 3·128·2 bytes; aux: dims-major, ⌈C/p⌉·2 bytes per chosen dim */
    cr_assert_eq(sim_exact_run_bytes(&p, 1000), 768.0);
    cr_assert_eq(sim_aux_run_bytes(&p, 1000), 334.0 * 2.0);
}

/* The decode peak of the paper's gpt-fast harness, GB: bf16 weights + the
 * K/V cache sized max_seq + the max_seq² bool causal mask, worked out
 * independently of sim/memory.c (docs/algorithm.md "Published figures"); its
 * 96256 pair reproduces the paper's published −32.6% exactly. */
typedef struct {
    char method[16]; /* by value: Criterion runs parameters in other processes */
    int64_t S;
    double gb;
} peak_point;

ParameterizedTestParameters(sim, gptfast_decode_peak_table)
{
    static peak_point pts[] = {
        {"full", 16384, 18.49},     {"full", 31744, 21.24},     {"full", 65536, 28.96},     {"full", 96256, 37.96},
        {"rocketkv", 16384, 16.61}, {"rocketkv", 31744, 17.35}, {"rocketkv", 65536, 20.63}, {"rocketkv", 96256, 25.58},
    };
    return cr_make_param_array(peak_point, pts, sizeof pts / sizeof pts[0]);
}

ParameterizedTest(peak_point *pt, sim, gptfast_decode_peak_table)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, pt->method, pt->S, 256, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.harness = SIM_HARNESS_GPT_FAST;
    sim_memory mem;
    kv_err err = {""};
    cr_assert_eq(sim_memory_compute(&c, &mem, &err), 0, "%s", err.msg);
    cr_assert(rel_eq(mem.peak_bytes / 1e9, pt->gb, PAPER_TOL), "%s S=%lld: %.3f GB, paper model %.2f GB", pt->method,
              (long long)pt->S, mem.peak_bytes / 1e9, pt->gb);
    cr_assert_eq(mem.peak_bytes, mem.weights_bytes + mem.kv_bytes + mem.aux_bytes + mem.mask_bytes + mem.workspace_bytes);
    cr_assert(mem.fits);
}

Test(sim, gptfast_headline_ratio_is_the_harness)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    sim_config c, cf;
    rkv_params p = resolve(&m, "rocketkv", 96256, 256, 50), pf = resolve(&m, "full", 96256, 256, 50);
    sim_config_defaults(&c, &m, &h, &p);
    c.harness = SIM_HARNESS_GPT_FAST;
    cf = c;
    cf.params = pf;
    sim_memory a, b;
    kv_err err = {""};
    cr_assert_eq(sim_memory_compute(&c, &a, &err), 0);
    cr_assert_eq(sim_memory_compute(&cf, &b, &err), 0);
    cr_assert(fabs((1.0 - a.peak_bytes / b.peak_bytes) - 0.326) < 0.005, "saving %.4f", 1.0 - a.peak_bytes / b.peak_bytes);
    /* the mask is (S + new rounded up to 8)² bytes: 96312² */
    cr_assert_eq(a.mask_bytes, 96312.0 * 96312.0);
}

static void expect_boundary(const char *model, const char *method, int64_t S, int64_t t, int tp)
{
    mdl_model m = load_model(model);
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, method, S, t, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.tp = tp;
    int64_t b;
    kv_err err = {""};
    cr_assert_eq(sim_max_batch(&c, 100000, &b, &err), 0, "%s", err.msg);
    cr_assert(b >= 1, "%s %s S=%lld: nothing fits", model, method, (long long)S);
    sim_memory mb, mb1;
    c.batch = b;
    cr_assert_eq(sim_memory_compute(&c, &mb, &err), 0);
    c.batch = b + 1;
    cr_assert_eq(sim_memory_compute(&c, &mb1, &err), 0);
    cr_assert(mb.fits && !mb1.fits, "%s %s S=%lld: batch %lld fits=%d, %lld fits=%d", model, method, (long long)S,
              (long long)b, mb.fits, (long long)(b + 1), mb1.fits);
}

Test(sim, capacity_solver_boundary)
{
    expect_boundary("llama3.1-8b", "full", 131071, 1024, 1);
    expect_boundary("llama3.1-8b", "rocketkv", 32767, 256, 1);
    expect_boundary("llama3.1-8b", "quest", 65537, 2048, 2);
    expect_boundary("llama3.1-70b", "rocketkv", 100003, 4096, 4);
    expect_boundary("qwen2.5-7b", "snapkv", 4099, 1023, 1);
}

Test(sim, does_not_fit_is_an_answer)
{
    mdl_model m = load_model("llama3.1-70b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 32768, 1024, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    sim_result r;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    cr_assert_not(r.mem.fits, "141 GB of bf16 weights on one 80 GB GPU");
    cr_assert(r.step_time_s > 0.0);
    int64_t b = -1;
    cr_assert_eq(sim_max_batch(&c, 4096, &b, &err), 0);
    cr_assert_eq(b, 0);
}

Test(sim, tensor_parallel_splits_heads_and_weights)
{
    mdl_model m = load_model("llama3.1-70b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 8191, 1024, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    sim_rank_shape s1, s2, s16;
    kv_err err = {""};
    cr_assert_eq(sim_rank_shape_compute(&c, &s1, &err), 0);
    cr_assert_eq(s1.weights_bytes, (double)mdl_weight_bytes(&m, 2.0), "TP 1 is the whole model");
    c.tp = 2;
    cr_assert_eq(sim_rank_shape_compute(&c, &s2, &err), 0);
    cr_assert_eq(s2.hq, 32);
    cr_assert_eq(s2.hkv, 4);
    cr_assert(rel_eq(s2.qkv_bytes, s1.qkv_bytes / 2, REL_EXACT));
    cr_assert(rel_eq(s2.mlp_bytes, s1.mlp_bytes / 2, REL_EXACT));
    cr_assert(rel_eq(s2.lm_head_bytes, s1.lm_head_bytes / 2, REL_EXACT));
    cr_assert_eq(s2.norm_bytes, s1.norm_bytes, "norms are replicated");
    const double repl = 80 * s1.norm_bytes + 8192 * 2.0; /* layer norms + final norm */
    cr_assert(rel_eq(2 * s2.weights_bytes - s1.weights_bytes, repl, 1e-9));
    c.tp = 16; /* more ranks than the 8 KV heads: one KV head per rank, replicated */
    cr_assert_eq(sim_rank_shape_compute(&c, &s16, &err), 0);
    cr_assert_eq(s16.hq, 4);
    cr_assert_eq(s16.hkv, 1);
    /* KV bytes per rank halve with TP 2 */
    sim_memory m1, m2;
    c.tp = 1;
    cr_assert_eq(sim_memory_compute(&c, &m1, &err), 0);
    c.tp = 2;
    cr_assert_eq(sim_memory_compute(&c, &m2, &err), 0);
    cr_assert(rel_eq(m2.kv_bytes, m1.kv_bytes / 2, REL_EXACT));
    c.tp = 3;
    cr_assert_eq(sim_rank_shape_compute(&c, &s2, &err), -1);
    cr_assert_str_eq(err.msg, "--tp 3: must divide the 64 query heads of llama3.1-70b");
    /* all-reduce appears with TP > 1 only, twice per layer */
    sim_result r;
    c.tp = 2;
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert_eq(r.kernel_launches[SIM_K_ALLREDUCE], 2.0 * 80 + 1.0);
    c.tp = 1;
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert_eq(r.kernel_launches[SIM_K_ALLREDUCE], 0.0);
}

/* A source that answers layer by layer (as a trace does) must give what the
 * analytic source gives, since here it answers with the same counts. */
static int per_layer(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err)
{
    const sim_access_source *inner = ctx;
    return inner->layer_step(inner->ctx, step, layer, out, err);
}

Test(sim, a_per_layer_source_equals_the_analytic_one)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "rocketkv", 65537, 1024, 50);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.batch = 7;
    sim_access_source an, wrap;
    sim_analytic_ctx actx;
    sim_access_analytic(&an, &actx, &m, &p);
    wrap = an;
    wrap.name = "per-layer";
    wrap.uniform_from = m.num_hidden_layers;
    wrap.layer_step = per_layer;
    wrap.ctx = &an;
    sim_result a, b;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &a, &err), 0);
    c.access = &wrap;
    cr_assert_eq(sim_predict(&c, &b, &err), 0);
    cr_assert(rel_eq(b.decode_s, a.decode_s, 1e-9));
    for (int i = 0; i < SIM_CAT_N; i++)
        cr_assert(rel_eq(b.cat_bytes[i], a.cat_bytes[i], 1e-9), "%s", sim_cat_names[i]);
    wrap.steps = 10; /* a source too short for --new 50 is an error, not a guess */
    cr_assert_eq(sim_predict(&c, &b, &err), -1);
    cr_assert_str_eq(err.msg, "per-layer source holds 10 decode steps; 49 needed (--new 50)");
}

Test(sim, cuda_graphs_and_sparse_speedup)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "rocketkv", 131071, 256, 50), pf = resolve(&m, "full", 131071, 256, 50);
    sim_config c, cf;
    sim_config_defaults(&c, &m, &h, &p);
    cf = c;
    cf.params = pf;
    sim_result r, f, r_nog;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert_eq(sim_predict(&cf, &f, &err), 0);
    cr_assert(f.step_time_s > r.step_time_s, "fewer bytes, less time");
    cr_assert(r.stage1_s > 0.0 && f.stage1_s == 0.0, "stage 1 is in rocketkv's TTFT only");
    c.cuda_graphs = 0;
    cr_assert_eq(sim_predict(&c, &r_nog, &err), 0);
    double launches = 0.0;
    for (int k = 0; k < SIM_K_N; k++) launches += r.kernel_launches[k];
    cr_assert(rel_eq(r_nog.step_time_s - r.step_time_s, launches * (h.launch_s - h.launch_graph_s), 1e-9));
}


Test(sim, cli_exit_codes)
{
    cr_assert_eq(cli_rc("predict --method rocketkv --budget 256 --context 4K --json"), 0);
    cr_assert_eq(cli_rc("predict --model llama3.1-70b --tp 4 --batch 3 --hw h200 --harness gpt-fast --cuda-graphs off"), 0);
    cr_assert_eq(cli_rc("predict --hw h100-sxm --calibration tests/data/calib_h100.json"), 0);
    cr_assert_eq(cli_rc("predict --help"), 0);
    cr_assert_eq(cli_rc("predict --harness vllm"), 2);
    cr_assert_eq(cli_rc("predict --cuda-graphs maybe"), 2);
    cr_assert_eq(cli_rc("predict --tp 3"), 2);
    cr_assert_eq(cli_rc("predict --batch 0"), 2);
    cr_assert_eq(cli_rc("predict --budget 256,1024"), 2);
    cr_assert_eq(cli_rc("predict --hw h300"), 1);
    cr_assert_eq(cli_rc("predict --trace missing.trc"), 1);
    cr_assert_eq(cli_rc("predict --trace tests/data/traces/bad_magic.trc"), 1);
    cr_assert_eq(cli_rc("predict --trace traces/samples/rocketkv.trc --json"), 0);
    cr_assert_eq(cli_rc("predict --trace traces/samples/quest.trc --batch 4 --tp 3"), 0);
    cr_assert_eq(cli_rc("plan --hw h100-sxm,h200 --context 8K,32K --method rocketkv,full --budget 256 --tp 1,2 "
                         "--tpot-slo 0.02 --target-tokens-per-s 5000"), 0);
    cr_assert_eq(cli_rc("plan --json"), 0);
    cr_assert_eq(cli_rc("plan --csv --model llama3.1-70b --tp 8"), 0);
    cr_assert_eq(cli_rc("plan --json --csv"), 2);
    cr_assert_eq(cli_rc("plan --tp 3"), 2);
    cr_assert_eq(cli_rc("plan --context 32K,,64K"), 2);
    cr_assert_eq(cli_rc("plan --hw nope"), 1);
    cr_assert_eq(cli_rc("plan --help"), 0);
}

Test(sim, planner_slo_boundary_and_gpus)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    sim_plan_in in;
    memset(&in, 0, sizeof in);
    in.model = &m;
    in.hw = &h;
    in.method = "rocketkv";
    rkv_request_defaults(&in.rq);
    in.rq.d = m.head_dim;
    in.rq.G = mdl_group_size(&m);
    in.rq.model_max_len = m.max_position_embeddings;
    in.rq.context = 32767;
    in.rq.budget = 1024;
    in.tp = 2;
    in.cuda_graphs = 1;
    in.tpot_slo_s = 0.0052;
    in.target_tokens_per_s = 12345.0;
    sim_plan_row row;
    kv_err err = {""};
    cr_assert_eq(sim_plan(&in, &row, &err), 0, "%s", err.msg);
    cr_assert(row.fits && row.max_batch > 1);
    cr_assert(row.slo_batch >= 1 && row.slo_batch < row.max_batch, "SLO binds: %lld of %lld", (long long)row.slo_batch,
              (long long)row.max_batch);
    /* the SLO batch meets it, one more does not */
    rkv_params p;
    cr_assert_eq(rkv_params_resolve("rocketkv", &in.rq, &p, &err), 0);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.tp = 2;
    sim_result r;
    c.batch = row.slo_batch;
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert(r.step_time_s <= in.tpot_slo_s);
    c.batch = row.slo_batch + 1;
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert(r.step_time_s > in.tpot_slo_s);
    cr_assert_eq(row.gpus_for_target, (int64_t)ceil(12345.0 / row.slo_tokens_per_s) * 2);
    cr_assert_eq(row.max_context_at_batch1, 131072, "8B fits its whole context window on 2 x 80 GB");
}

/* The memory breakdown's JSON, every key in order, written out by hand. */
Test(sim, memory_json_by_hand)
{
    sim_memory m = {.weights_bytes = 16e9, .kv_bytes = 4.5e9, .aux_bytes = 0.25e9, .workspace_bytes = 1e8,
                    .reserve_bytes = 1e9, .mask_bytes = 0, .prefill_peak_bytes = 2.1e10, .decode_peak_bytes = 2.085e10,
                    .peak_bytes = 2.2e10, .capacity_bytes = 8e10, .fits = 1, .kv_pool_bytes = 5e9,
                    .kv_cache_tokens = 40960, .max_concurrency = 1.25};
    char *buf = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&buf, &n);
    kv_json j;
    kv_json_init(&j, fp);
    sim_memory_json(&j, &m);
    fclose(fp);
    cr_assert_str_eq(buf, "{\"weights_bytes\":16000000000,\"kv_bytes\":4500000000,\"aux_bytes\":250000000,"
                          "\"workspace_bytes\":100000000,\"reserve_bytes\":1000000000,\"mask_bytes\":0,"
                          "\"prefill_peak_bytes\":21000000000,\"decode_peak_bytes\":20850000000,"
                          "\"peak_bytes\":22000000000,\"capacity_bytes\":80000000000,\"fits\":true,"
                          "\"kv_pool_bytes\":5000000000,\"kv_cache_tokens\":40960,\"max_concurrency\":1.25}\n");
    free(buf);
}
