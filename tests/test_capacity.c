/* test_capacity.c — weight data types (bits with scales, which peak), the
 * weight footprint by hand, an engine's KV pool through sim_memory_compute
 * against the engine's own rule written out here, the fits verdict at the
 * pool's boundary, tensor-parallel all-reduce (ring vs tree) by hand, and the
 * CLI flags (--engine, --mem-fraction, --weight-dtype) with their errors.
 * Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include "cli_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

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

static rkv_params resolve(const mdl_model *m, const char *method, int64_t S, int64_t new_tokens)
{
    rkv_request rq;
    rkv_params p;
    kv_err err = {""};
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = S;
    rq.budget = 256;
    rq.max_new = new_tokens;
    cr_assert_eq(rkv_params_resolve(method, &rq, &p, &err), 0, "%s", err.msg);
    return p;
}

static double bits_of(const char *name, double k)
{
    sim_weight_dtype w;
    kv_err err = {""};
    cr_assert_eq(sim_weight_dtype_parse(name, k, &w, &err), 0, "%s: %s", name, err.msg);
    return w.bits;
}

Test(capacity, weight_dtype_bits_include_scales)
{
    cr_assert_eq(bits_of("bf16", 4096), 16.0);
    cr_assert_eq(bits_of("int4-g32", 4096), 4.0 + 32.0 / 32.0, "bf16 scale + bf16 zero per 32");
    cr_assert_eq(bits_of("awq-g128", 4096), 4.0 + 20.0 / 128.0, "fp16 scale + 4-bit zero per 128");
    cr_assert_eq(bits_of("int8", 4096), 8.0 + 16.0 / 4096.0, "bf16 scale per output channel");
    cr_assert_eq(bits_of("fp8", 8192), 8.0 + 32.0 / 8192.0);
    cr_assert_eq(bits_of("q8_0", 4096), 34.0 * 8.0 / 32.0, "ggml block_q8_0: 32 weights in 34 bytes");
    cr_assert_eq(bits_of("q4_k", 4096), 144.0 * 8.0 / 256.0, "block_q4_K: 256 weights in 144 bytes");
    cr_assert_eq(bits_of("q6_k", 4096), 210.0 * 8.0 / 256.0);
    cr_assert_eq(bits_of("nvfp4", 4096), 4.5);
    sim_weight_dtype w;
    kv_err err = {""};
    cr_assert_eq(sim_weight_dtype_parse("fp8", 4096, &w, &err), 0);
    cr_assert_eq(w.compute, HW_DT_FP8, "W8A8 FP8 runs at the FP8 peak");
    cr_assert_eq(sim_weight_dtype_parse("int4-g128", 4096, &w, &err), 0);
    cr_assert_eq(w.compute, HW_DT_BF16, "weight-only: dequantised to bf16");
    cr_assert_eq(sim_weight_dtype_parse("int4-g33", 4096, &w, &err), -1);
    cr_assert_str_eq(err.msg, "--weight-dtype: 'int4-g33': the group size must be a power of two in 8..8192");
    cr_assert_eq(sim_weight_dtype_parse("int3", 4096, &w, &err), -1);
    cr_assert(strstr(err.msg, "--weight-dtype: unknown 'int3' (expected one of: bf16,"), "%s", err.msg);
}

/* Linear layers in the weight type; embedding and norms bf16; the untied LM head in the weight type
 * under gpt-fast (its quantize.py replaces every nn.Linear), bf16 under an engine's recipe. */
Test(capacity, weight_footprint_by_hand)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 1024, 2);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.weight_bytes_per_param = 5.0 / 8.0; /* int4-g32 */
    sim_memory mem;
    kv_err err = {""};
    cr_assert_eq(sim_memory_compute(&c, &mem, &err), 0, "%s", err.msg);
    const double H = 4096, q = 4096, kv = 1024, I = 14336, V = 128256, L = 32;
    const double linear = L * (H * q + 2 * H * kv + q * H + 3 * H * I);
    const double bf16 = V * H + L * 2 * H + H; /* embedding, norms */
    cr_assert_float_eq(mem.weights_bytes, linear * 5.0 / 8.0 + (bf16 + V * H) * 2.0, 1.0, "engine: bf16 head");
    c.harness = SIM_HARNESS_GPT_FAST; /* one rank: the vocabulary is not split either way */
    cr_assert_eq(sim_memory_compute(&c, &mem, &err), 0, "%s", err.msg);
    cr_assert_float_eq(mem.weights_bytes, (linear + V * H) * 5.0 / 8.0 + bf16 * 2.0, 1.0, "gpt-fast: int4 head");
}

/* The LM head under FP8 weights: an engine holds V·h bf16 bytes and its kernel is exactly the bf16
 * model's LM-head kernel; gpt-fast holds V·h·(1 + 4/h) FP8 bytes (per-channel fp32 scales); the
 * engine file's lm_head_quantized decides over the harness. */
Test(capacity, lm_head_stays_bf16_under_engine_quantisation)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 1024, 2);
    sim_config c, cb;
    sim_config_defaults(&c, &m, &h, &p);
    cb = c;
    c.weight_bytes_per_param = 1.0 + 4.0 / 4096.0;
    c.weight_compute = HW_DT_FP8;
    sim_result r, rb;
    sim_rank_shape s;
    kv_err err = {""};
    cr_assert_eq(sim_rank_shape_compute(&c, &s, &err), 0, "%s", err.msg);
    const double V = 128256, H = 4096;
    cr_assert_float_eq(s.lm_head_bytes, V * H * 2.0, 1e-3);
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(sim_predict(&cb, &rb, &err), 0, "%s", err.msg);
    cr_assert_float_eq(r.kernel_s[SIM_K_LM_HEAD], rb.kernel_s[SIM_K_LM_HEAD], 1e-15, "%g vs bf16 model %g",
                       r.kernel_s[SIM_K_LM_HEAD], rb.kernel_s[SIM_K_LM_HEAD]);
    cr_assert(r.kernel_s[SIM_K_MLP] < 0.7 * rb.kernel_s[SIM_K_MLP], "the linears are FP8: %g vs %g",
              r.kernel_s[SIM_K_MLP], rb.kernel_s[SIM_K_MLP]);
    eng_engine e;
    cr_assert_eq(eng_load("gpt-fast", &e, &err), 0, "%s", err.msg);
    cr_assert_eq(e.lm_head_quantized, 1);
    sim_config_set_engine(&c, &e, 0.0);
    cr_assert_eq(sim_rank_shape_compute(&c, &s, &err), 0, "%s", err.msg);
    cr_assert_float_eq(s.lm_head_bytes, V * H * (1.0 + 4.0 / 4096.0), 1e-3);
    e.lm_head_quantized = 0; /* the file's key decides, whatever the harness */
    cr_assert_eq(sim_rank_shape_compute(&c, &s, &err), 0, "%s", err.msg);
    cr_assert_float_eq(s.lm_head_bytes, V * H * 2.0, 1e-3);
    eng_engine v;
    cr_assert_eq(eng_load("vllm", &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v.lm_head_quantized, 0);
}

/* Weight-only types add weights x dequant_ops / (fp32_flops / 2) per step,
 * serialised after the stream: the step difference against the same bytes
 * without dequantisation, by hand from the shape. */
Test(capacity, dequant_adds_lane_instructions_per_weight)
{
    sim_weight_dtype w;
    kv_err err = {""};
    cr_assert_eq(sim_weight_dtype_parse("int8", 4096, &w, &err), 0);
    cr_assert_eq(w.dequant_ops, 1.0, "one int8 -> bf16 conversion per weight");
    cr_assert_eq(sim_weight_dtype_parse("int4-g32", 4096, &w, &err), 0);
    cr_assert_eq(w.dequant_ops, 1.5, "tinygemm: 12 instructions per 8 nibbles");
    cr_assert_eq(sim_weight_dtype_parse("fp8", 4096, &w, &err), 0);
    cr_assert_eq(w.dequant_ops, 0.0, "FP8 tensor cores take the stored type");
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("a100-80g");
    rkv_params p = resolve(&m, "full", 1024, 8);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    cr_assert_eq(sim_weight_dtype_parse("int4-g32", (double)m.hidden_size, &w, &err), 0);
    sim_config_set_weight_dtype(&c, &w);
    cr_assert_float_eq(c.weight_bytes_per_param, 5.0 / 8.0, 1e-12);
    sim_result q, z;
    cr_assert_eq(sim_predict(&c, &q, &err), 0, "%s", err.msg);
    c.weight_dequant_ops = 0.0;
    cr_assert_eq(sim_predict(&c, &z, &err), 0, "%s", err.msg);
    const double H = 4096, qd = 4096, kv = 1024, I = 14336, L = 32;
    const double weights = L * (H * qd + 2 * H * kv + qd * H + 3 * H * I); /* the engine's LM head stays bf16 */
    const double want = weights * 1.5 / (19.5e12 / 2.0);                          /* A100: 19.5 TFLOPS fp32 */
    cr_assert_float_eq(q.step_time_s - z.step_time_s, want, want * 1e-9, "%g vs %g", q.step_time_s - z.step_time_s, want);
    cr_assert(want > 1e-3 && want < 2e-3, "about 1 ms for 7e9 weights: %g", want);
}

/* An engine with harness per-head (TensorRT-LLM's masked MHA before its GQA
 * optimisation) on a part whose file gives no CUDA-core figures (b200: no
 * sm_clock_hz, cvt_per_sm_clk) reads each KV head's K/V from DRAM once per
 * query head: G = 4 times the dense scan's bytes of the same step under a
 * fused engine (Llama-3.1-8B, 32 query / 8 KV heads), every other kernel
 * unchanged. */
Test(capacity, per_head_engine_reads_kv_once_per_query_head)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("b200");
    cr_assert_eq(hw_cvt_rate(&h), 0.0);
    eng_engine e;
    kv_err err = {""};
    cr_assert_eq(eng_load("validation/engines/trtllm-v0.6.yaml", &e, &err), 0, "%s", err.msg);
    cr_assert_eq(e.harness, ENG_HARNESS_PER_HEAD);
    rkv_params p = resolve(&m, "full", 4096, 4);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.batch = 8;
    sim_config_set_engine(&c, &e, 0.0);
    cr_assert_eq(c.kv_reads_per_query_head, 1);
    cr_assert_eq(c.harness, SIM_HARNESS_ENGINE);
    cr_assert_eq(sim_per_head_cuda_core(&c), 0);
    sim_result a, b;
    cr_assert_eq(sim_predict(&c, &a, &err), 0, "%s", err.msg);
    c.kv_reads_per_query_head = 0;
    cr_assert_eq(sim_predict(&c, &b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(a.kernel_bytes[SIM_K_ATTN_DENSE], 4.0 * b.kernel_bytes[SIM_K_ATTN_DENSE],
                       1e-9 * a.kernel_bytes[SIM_K_ATTN_DENSE]);
    cr_assert_eq(a.kernel_s[SIM_K_MLP], b.kernel_s[SIM_K_MLP]);
    cr_assert(a.step_time_s > b.step_time_s);
}

/* TensorRT-LLM v0.9's generation kernel per model (validation/engines/trtllm-v0.9.yaml: harness
 * per-head, gqa_kernel_groups [1, 8]): XQA's dispatcher takes only G = 8 or 1 (decoderXQARunner.h
 * shouldUse), so Mistral 7B (32 query / 8 KV heads: G = 4) runs masked MHA, one thread block per
 * query head: 4 times the dense scan's bytes of the fused pricing; Llama-2-70B (64 / 8: G = 8) runs
 * XQA, one read per KV head; Llama-2-7B (G = 1) reads once either way. The v0.6 file (no XQA)
 * reads per query head at every G. Priced on a part without the CUDA-core figures (h200's file
 * with sm_clock_hz cleared), so the G-fold DRAM reads show; with them (h200 as shipped) masked
 * MHA is the conversion-priced kernel (sim_per_head_cuda_core) exactly where it runs. */
Test(capacity, xqa_group_sizes_pick_the_generation_kernel)
{
    eng_engine e9, e6;
    kv_err err = {""};
    cr_assert_eq(eng_load("validation/engines/trtllm-v0.9.yaml", &e9, &err), 0, "%s", err.msg);
    cr_assert_eq(eng_load("validation/engines/trtllm-v0.6.yaml", &e6, &err), 0, "%s", err.msg);
    cr_assert_eq(e9.n_gqa_kernel_groups, 2);
    cr_assert_eq(e6.n_gqa_kernel_groups, 0);
    static const struct { const char *model; int G, per_head9; } v[3] = {
        {"mistral-7b-v0.2", 4, 1}, {"validation/models/llama2-70b.yaml", 8, 0}, {"validation/models/llama2-7b.yaml", 1, 0}};
    hw_model h = load_hw("h200"), h_cc = h;
    h.sm_clock_hz = 0.0;
    for (int i = 0; i < 3; i++) {
        mdl_model m = load_model(v[i].model);
        cr_assert_eq(mdl_group_size(&m), v[i].G, "%s", v[i].model);
        rkv_params p = resolve(&m, "full", 2048, 4);
        sim_config c;
        sim_config_defaults(&c, &m, &h, &p);
        c.batch = 16;
        sim_config_set_engine(&c, &e9, 0.0);
        cr_assert_eq(c.kv_reads_per_query_head, v[i].per_head9, "%s", v[i].model);
        sim_result a, b;
        cr_assert_eq(sim_predict(&c, &a, &err), 0, "%s", err.msg);
        c.kv_reads_per_query_head = 0;
        cr_assert_eq(sim_predict(&c, &b, &err), 0, "%s", err.msg);
        const double want = v[i].per_head9 ? (double)v[i].G : 1.0;
        cr_assert_float_eq(a.kernel_bytes[SIM_K_ATTN_DENSE], want * b.kernel_bytes[SIM_K_ATTN_DENSE],
                           1e-9 * a.kernel_bytes[SIM_K_ATTN_DENSE], "%s", v[i].model);
        c.hw = &h_cc;
        sim_config_set_engine(&c, &e9, 0.0);
        cr_assert_eq(sim_per_head_cuda_core(&c), v[i].per_head9, "%s", v[i].model);
        c.hw = &h;
        sim_config_set_engine(&c, &e6, 0.0);
        cr_assert_eq(c.kv_reads_per_query_head, 1, "%s: v0.6 has no XQA", v[i].model);
    }
}

/* TensorRT-LLM's masked MHA (one thread block per query head, FP32 accumulation: each K and V
 * element converted once per query head, decoderMaskedMultiheadAttentionTemplate.h) priced as
 * max(one DRAM read of the K/V, its conversions at the CUDA guide's 16 per SM per clock), by hand
 * from the datasheet figures written here: Mistral 7B (G = 4, d = 128, 8 KV heads), 64 sequences
 * at 2048 tokens, one decode step. H100 (FP8 K/V): 4 conversions per byte at 16 x 132 x 1.98 GHz
 * take longer than the byte at 3.35 TB/s x 0.89 (conversion bound); A100 (FP16): 2 per byte at
 * 16 x 108 x 1.41 GHz against 2.039 TB/s x 0.87 (conversion bound); L40S (FP8): 16 x 142 x 2.52
 * GHz against 864 GB/s x 0.85 (memory bound). The same price through sim_kernel_batch_s (serve). */
Test(capacity, per_head_kernel_priced_by_its_conversions)
{
    static const struct {
        const char *hw;
        rkv_dtype kv;
        double b, bw, eff, sms, clk, fp32;
        int conv_bound;
    } v[3] = {
        {"h100-sxm", RKV_DTYPE_FP8_E4M3, 1, 3.35e12, 0.89, 132, 1.98e9, 66.9e12, 1},
        {"a100-80g", RKV_DTYPE_BF16, 2, 2.039e12, 0.87, 108, 1.41e9, 19.5e12, 1},
        {"l40s", RKV_DTYPE_FP8_E4M3, 1, 864e9, 0.85, 142, 2.52e9, 91.6e12, 0},
    };
    mdl_model m = load_model("mistral-7b-v0.2");
    eng_engine e;
    kv_err err = {""};
    cr_assert_eq(eng_load("validation/engines/trtllm-v0.9.yaml", &e, &err), 0, "%s", err.msg);
    const double B = 64, Hkv = 8, G = 4, d = 128, L = 32, lat = 6e-7, launch = 5e-6; /* cuda_graphs: false */
    for (int i = 0; i < 3; i++) {
        hw_model h = load_hw(v[i].hw);
        rkv_request rq;
        rkv_params p;
        rkv_request_defaults(&rq);
        rq.d = (int64_t)d, rq.G = (int64_t)G, rq.model_max_len = 32768, rq.context = 2048, rq.max_new = 2;
        rq.kv_dtype = v[i].kv;
        cr_assert_eq(rkv_params_resolve("full", &rq, &p, &err), 0, "%s", err.msg);
        sim_config c;
        sim_config_defaults(&c, &m, &h, &p);
        c.batch = (int64_t)B;
        sim_config_set_engine(&c, &e, 0.0);
        cr_assert_eq(sim_per_head_cuda_core(&c), 1, "%s", v[i].hw);
        sim_result r;
        cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
        const double bytes = r.kernel_bytes[SIM_K_ATTN_DENSE] / L, flops = r.kernel_flops[SIM_K_ATTN_DENSE] / L;
        const double tokens = bytes / (B * Hkv * 2 * d * v[i].b); /* one read: the step's cache length */
        cr_assert(tokens == 2048 || tokens == 2049, "%s: %g tokens read once", v[i].hw, tokens);
        cr_assert_float_eq(flops, 2 * G * bytes / v[i].b, 1e-9 * flops, "%s: one FMA per element per query head",
                           v[i].hw);
        const double mem = (bytes + v[i].bw * lat) / (v[i].bw * v[i].eff);
        const double rate = fmin(2 * 16 * v[i].sms * v[i].clk, v[i].fp32); /* 2 FLOPs per conversion */
        const double conv = flops / rate;
        cr_assert_eq(conv > mem, v[i].conv_bound, "%s: conversions %g s, memory %g s", v[i].hw, conv, mem);
        const double want = launch + fmax(mem, conv);
        cr_assert_float_eq(r.kernel_s[SIM_K_ATTN_DENSE], L * want, 1e-6 * L * want, "%s: %g vs %g", v[i].hw,
                           r.kernel_s[SIM_K_ATTN_DENSE], L * want);
        const double t = sim_kernel_batch_s(&c, SIM_K_ATTN_DENSE, bytes / v[i].eff, bytes, flops, 1);
        cr_assert_float_eq(t, want, 1e-6 * want, "%s: serve's price %g vs %g", v[i].hw, t, want);
    }
}

/* Pipeline parallelism: a stage's memory (half the layers and the heavier
 * end: the untied LM head + final norm) and a decode round (the whole model's
 * step at the micro-batch size + P - 1 activation hops), by hand. */
Test(capacity, pipeline_stage_memory_and_round_by_hand)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 4096, 16);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    cr_assert_eq(c.pp, 1);
    c.batch = 8;
    c.pp = 2;
    sim_result r, q;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    const double H = 4096, qd = 4096, kv = 1024, I = 14336, V = 128256;
    const double layer = (H * qd + 2 * H * kv + qd * H + 3 * H * I + 2 * H) * 2.0;
    const double head = (V * H + H) * 2.0; /* untied LM head + final norm > embedding V·H·2 */
    cr_assert_float_eq(r.mem.weights_bytes, 16 * layer + head, 1.0);
    const double kv_tok = 16 * 8 * 128 * 2 * 2.0; /* 16 layers x 8 KV heads x d x K,V x bf16 */
    cr_assert_float_eq(r.mem.kv_bytes, 8.0 * (4096 + 16) * kv_tok, 1.0, "%g", r.mem.kv_bytes);
    /* an engine keeps min(P, B) = 2 micro-batches of 4 in flight */
    sim_config one = c;
    one.pp = 1;
    one.batch = 4;
    cr_assert_eq(sim_predict(&one, &q, &err), 0, "%s", err.msg);
    const double hop = 2e-6 + 4.0 * H * 2.0 / 450e9; /* link latency + 4 tokens' hidden state over NVLink 4 */
    cr_assert_float_eq(r.decode_s, q.decode_s + (double)q.steps * hop, 1e-12);
    cr_assert_float_eq(r.tokens_per_s, 8.0 * (double)q.steps / (q.decode_s + (double)q.steps * hop), 1e-6);
    /* gpt-fast: one batch through the stages in turn (m = 1) */
    c.harness = SIM_HARNESS_GPT_FAST;
    one = c;
    one.pp = 1;
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(sim_predict(&one, &q, &err), 0, "%s", err.msg);
    const double hop8 = 2e-6 + 8.0 * H * 2.0 / 450e9;
    cr_assert_float_eq(r.step_time_s, q.step_time_s + hop8, 1e-12);
    c.pp = 33;
    cr_assert_eq(sim_predict(&c, &r, &err), -1);
    cr_assert_str_eq(err.msg, "--pp 33: more pipeline stages than the 32 layers of llama3.1-8b");
}

/* vLLM's pool for Llama-3.1-8B on one H100, worked from the engine's rule. */
Test(capacity, engine_pool_through_the_simulator)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    eng_engine e;
    kv_err err = {""};
    cr_assert_eq(eng_load("vllm", &e, &err), 0, "%s", err.msg);
    rkv_params p = resolve(&m, "full", 8191, 1); /* 8192 tokens per request */
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    sim_config_set_engine(&c, &e, 0.0);
    sim_memory mem;
    cr_assert_eq(sim_memory_compute(&c, &mem, &err), 0, "%s", err.msg);
    const double W = 2.0 * 8030261248.0, tok = 131072.0;
    /* the larger of the forward (per token: 4h + (hq + 2hkv)d + 3I elements in bf16) and the
     * sampler's dummy run (1024 rows x vocab x 4 B x 9.6 buffers) */
    const double fwd = 8192.0 * (4.0 * 4096 + 6144 + 3 * 14336) * 2.0, smp = 1024.0 * 128256.0 * 4.0 * 9.6;
    const double act = fwd > smp ? fwd : smp;
    cr_assert(smp > fwd, "the sampler's peak dominates on a 128K vocabulary");
    const double avail = 0.9 * 85045477376.0 - W - act - 128849019.0;
    const int64_t blocks = (int64_t)floor(avail / (16.0 * tok));
    cr_assert_eq(mem.kv_cache_tokens, 16 * blocks);
    cr_assert_float_eq(mem.max_concurrency, (double)blocks / 512.0, 1e-12);
    /* the largest batch is the pool's whole requests */
    int64_t b;
    cr_assert_eq(sim_max_batch(&c, 100000, &b, &err), 0);
    cr_assert_eq(b, blocks / 512);
    /* --mem-fraction shrinks it; a fraction below the weights leaves nothing to fit */
    sim_config_set_engine(&c, &e, 0.15);
    cr_assert_eq(sim_memory_compute(&c, &mem, &err), 0);
    cr_assert_eq(mem.kv_cache_tokens, 0);
    cr_assert(!mem.fits);
}

/* Two all-reduces per layer: the cheapest of ring, tree and one-shot, by hand. */
Test(capacity, allreduce_ring_or_tree)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("a100-80g");
    rkv_params p = resolve(&m, "full", 1024, 2);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.tp = 8;
    sim_result r;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    const double a = h.link_latency_s, bw = h.nvlink_bytes_per_s, n = 8;
    const double bytes = 4096 * 2.0; /* one token's hidden state in bf16 */
    const double ring = 2 * (n - 1) * a + 2 * (n - 1) / n * bytes / bw, tree = 2 * 3 * a + 2 * bytes / bw;
    const double one = a + (n - 1) * bytes / bw;
    cr_assert(one < tree && tree < ring, "a small message: one-shot, then tree, then ring");
    const double logits = 128256.0 / 8 * 4.0;
    const double ring_l = 2 * (n - 1) * a + 2 * (n - 1) / n * logits / bw, tree_l = 2 * 3 * a + 2 * logits / bw;
    const double one_l = a + (n - 1) * logits / bw;
    const double want = 64.0 * (h.allreduce_latency_s + one) + h.allreduce_latency_s + fmin(fmin(ring_l, tree_l), one_l);
    cr_assert_float_eq(r.kernel_s[SIM_K_ALLREDUCE], want, 1e-12);
}

/* gpt-fast under TP (its tp.py, README ENABLE_INTRA_NODE_COMM=1): every rank
 * holds the whole embedding and LM head and gathers no logits; a layer's two
 * all-reduces are IntraNodeComm's one-shot (two graph nodes + one link
 * latency + the N - 1 peers' bytes), by hand. */
Test(capacity, gptfast_tp_replicates_vocab_and_reduces_one_shot)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("a100-80g");
    rkv_params p = resolve(&m, "full", 1024, 2);
    sim_config c;
    sim_config_defaults(&c, &m, &h, &p);
    c.tp = 8;
    sim_rank_shape se, sg;
    kv_err err = {""};
    cr_assert_eq(sim_rank_shape_compute(&c, &se, &err), 0, "%s", err.msg);
    c.harness = SIM_HARNESS_GPT_FAST;
    cr_assert_eq(sim_rank_shape_compute(&c, &sg, &err), 0, "%s", err.msg);
    const double table = 128256.0 * 4096 * 2.0; /* vocab x hidden x bf16 */
    cr_assert_eq(se.lm_head_bytes, table / 8);
    cr_assert_eq(sg.lm_head_bytes, table, "gpt-fast: the whole LM head on every rank");
    cr_assert_eq(sg.embed_bytes, table);
    cr_assert(fabs(sg.weights_bytes - se.weights_bytes - 2.0 * (table - table / 8)) < 1.0);
    sim_result r;
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.kernel_launches[SIM_K_ALLREDUCE], 64.0, "two per layer, no logits gather");
    const double bytes = 4096 * 2.0, one = 2.0 * h.launch_graph_s + h.link_latency_s + 7.0 * bytes / h.nvlink_bytes_per_s;
    cr_assert_float_eq(r.kernel_s[SIM_K_ALLREDUCE], 64.0 * one, 1e-12);
    /* a hybrid-cube-mesh board at 8 ranks: the HCM variant, two barriers and 4 x bytes over NVLink;
     * at 4 ranks (a fully linked quad) one-shot still */
    h.nvlink_hcm = 1;
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    const double hcm = 2.0 * h.launch_graph_s + 2.0 * h.link_latency_s + 4.0 * bytes / h.nvlink_bytes_per_s;
    cr_assert_float_eq(r.kernel_s[SIM_K_ALLREDUCE], 64.0 * hcm, 1e-12);
    c.tp = 4;
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    const double one4 = 2.0 * h.launch_graph_s + h.link_latency_s + 3.0 * bytes / h.nvlink_bytes_per_s;
    cr_assert_float_eq(r.kernel_s[SIM_K_ALLREDUCE], 64.0 * one4, 1e-12);
    c.tp = 8;
    h.nvlink_hcm = 0;
    /* without NVLink IntraNodeComm does not apply: NCCL over PCIe */
    h.nvlink_bytes_per_s = 0.0;
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    /* the PCIe link at NCCL's model of it: 0.75 of the raw rate (hwmodels/pcie_collectives_at_nccl_link_model) */
    const double a = h.link_latency_s, pb = 0.75 * h.pcie_bytes_per_s;
    const double ring = 14 * a + 2 * 7.0 / 8 * bytes / pb, tree = 6 * a + 2 * bytes / pb;
    cr_assert_float_eq(r.kernel_s[SIM_K_ALLREDUCE], 64.0 * (h.allreduce_latency_s + fmin(ring, tree)), 1e-12);
}

/* FP8 weights read half the bytes and run at the FP8 peak once compute bound. */
Test(capacity, fp8_weights_halve_bytes_and_double_peak)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 128, 2);
    sim_config c, c8;
    sim_config_defaults(&c, &m, &h, &p);
    c.batch = 2048; /* compute bound GEMMs */
    c8 = c;
    c8.weight_bytes_per_param = 1.0 + 4.0 / 4096.0;
    c8.weight_compute = HW_DT_FP8;
    sim_result r, r8;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert_eq(sim_predict(&c8, &r8, &err), 0);
    /* twice the peak, at H100's FP8 curve 0.741 · k / (k + 742) in place of bf16's MAMF share
     * 794.5 / 989.4, both times the same matmul_share (hwmodels/README.md); the MLP kernel's depth:
     * gate+up (2/3 of the FLOPs, k = 4096) and down (1/3, k = 14336) */
    const double k = 1.0 / (2.0 / 3.0 / 4096.0 + 1.0 / 3.0 / 14336.0);
    const double want = 0.5 * (794.5 / 989.4) / (0.741 * k / (k + 742.0));
    cr_assert_float_eq(r8.kernel_s[SIM_K_MLP] / r.kernel_s[SIM_K_MLP], want, 0.01, "%g vs %g",
                       r8.kernel_s[SIM_K_MLP] / r.kernel_s[SIM_K_MLP], want);
}

/* A memory-bound FP8 product (decode, one sequence) reads its operands at the
 * part's FP8 GEMM read efficiency (h100-sxm: 0.741, fit to DeepGEMM's M = 64 / 128
 * rows), a bf16 one at the streaming efficiency (0.89); both after the
 * transfer-size efficiency bytes / (bytes + bw · 0.6 us), plus one graph launch. */
Test(capacity, fp8_gemm_reads_at_the_gemm_read_efficiency)
{
    mdl_model m = load_model("llama3.1-8b");
    hw_model h = load_hw("h100-sxm");
    rkv_params p = resolve(&m, "full", 128, 2);
    sim_config c, c8;
    sim_config_defaults(&c, &m, &h, &p);
    c8 = c;
    c8.weight_bytes_per_param = 1.0 + 4.0 / 4096.0;
    c8.weight_compute = HW_DT_FP8;
    sim_result r, r8;
    kv_err err = {""};
    cr_assert_eq(sim_predict(&c, &r, &err), 0);
    cr_assert_eq(sim_predict(&c8, &r8, &err), 0);
    const double L = m.num_hidden_layers, bw = 3.35e12;
    const double eff[2] = {0.89, 0.741};
    const sim_result *res[2] = {&r, &r8};
    for (int i = 0; i < 2; i++) {
        const double b = res[i]->kernel_bytes[SIM_K_QKV] / L;
        const double want = b / (bw * eff[i] * (b / (b + bw * 6e-7))) + 3e-6;
        cr_assert_float_eq(res[i]->kernel_s[SIM_K_QKV] / L, want, 1e-12, "%s: %g s vs %g s", i ? "fp8" : "bf16",
                           res[i]->kernel_s[SIM_K_QKV] / L, want);
    }
    hw_model l = load_hw("l40s"); /* no FP8 curve: FP8 products stream like any read */
    cr_assert_float_eq(hw_gemm_read_efficiency(&l, HW_DT_FP8), l.stream_read_efficiency, 1e-15);
    cr_assert_float_eq(hw_gemm_read_efficiency(&h, HW_DT_BF16), 0.89, 1e-15);
}

Test(capacity, cli_flags)
{
    cli_result r;
    cli_run(&r, "plan --engine vllm --method full --context 8191 --new 1 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"kv_cache_tokens\":"), "%s", r.out);
    cr_assert(strstr(r.out, "\"max_concurrency\":"), "%s", r.out);
    cli_run(&r, "plan --engine vllm --method full --context 8191 --new 1");
    cr_assert_eq(r.rc, 0);
    cr_assert(strstr(r.out, "GPU KV cache size: ") && strstr(r.out, "Maximum concurrency for 8192 tokens per request: "),
              "%s", r.out);
    cli_run(&r, "predict --engine sglang --mem-fraction 0.8 --weight-dtype fp8 --context 4K");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cli_run(&r, "predict --mem-fraction 0.8");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--mem-fraction needs --engine"), "%s", r.err);
    cli_run(&r, "predict --engine vllm --mem-fraction 1.5");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--mem-fraction"), "%s", r.err);
    cli_run(&r, "plan --engine nope");
    cr_assert_eq(r.rc, 1);
    cli_run(&r, "predict --weight-dtype int4-g7");
    cr_assert_eq(r.rc, 2);
    cli_run(&r, "sweep --engine trtllm --weight-dtype int8 --method full --context 1K --out /tmp/kvsim-cap-sweep.csv");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cli_run(&r, "predict --method full --context 1K --pp 2 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"pp\":2"), "%s", r.out);
    cli_run(&r, "predict --method full --context 1K --pp 0");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--pp: 0 is out of range; allowed [1, 1024]"), "%s", r.err);
    cli_run(&r, "predict --method full --context 1K --pp 33");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--pp 33: more pipeline stages than the 32 layers of llama3.1-8b"), "%s", r.err);
}

/* A two-point set made here: the predicted figure is the simulator's own (kvsim plan), so the
 * error is known exactly; a threshold below it fails the run, one above passes. */
Test(capacity, check_published_errors_and_thresholds)
{
    cli_result r;
    cli_run(&r, "plan --engine vllm --method full --context 8191 --new 1 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *k = strstr(r.out, "\"kv_cache_tokens\":");
    cr_assert(k);
    const long long tokens = atoll(k + strlen("\"kv_cache_tokens\":"));
    FILE *f = fopen("/tmp/kvsim-cap-set.csv", "w");
    cr_assert(f);
    fprintf(f, "id,category,metric,model,hw,engine,weight_dtype,kv_dtype,method,budget,context,new,batch,tp,harness,"
               "ref,measured,source\n");
    /* measured 10%% above the prediction: error -1/11 */
    fprintf(f, "a,kv_capacity,kv_cache_tokens,llama3.1-8b,h100-sxm,vllm,bf16,bf16,full,0,8191,1,1,1,-,-,%.17g,\"x\"\n",
            1.1 * (double)tokens);
    fprintf(f, "b,fit,fits,llama3.1-8b,h100-sxm,vllm,bf16,bf16,full,0,8191,1,1,1,-,-,1,\"y, with a comma\"\n");
    fclose(f);
    f = fopen("/tmp/kvsim-cap-thr.csv", "w");
    fprintf(f, "category,median_max,p90_max\nkv_capacity,0.05,0.05\nfit,0,0\n");
    fclose(f);
    cli_run(&r, "check-published --set /tmp/kvsim-cap-set.csv --thresholds /tmp/kvsim-cap-thr.csv");
    cr_assert_eq(r.rc, 1, "9.1%% is past a 5%% threshold: %s", r.out);
    cr_assert(strstr(r.out, "-9.1%"), "%s", r.out);
    cr_assert(strstr(r.out, "1 of 1 verdicts right"), "%s", r.out);
    f = fopen("/tmp/kvsim-cap-thr.csv", "w");
    fprintf(f, "category,median_max,p90_max\nkv_capacity,0.1,0.1\nfit,0,0\n");
    fclose(f);
    cli_run(&r, "check-published --set /tmp/kvsim-cap-set.csv --thresholds /tmp/kvsim-cap-thr.csv");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    f = fopen("/tmp/kvsim-cap-set.csv", "a");
    fprintf(f, "c,decode,tokens_per_s,llama3.1-8b,h100-sxm,-,bf16,bf16,full,0,8191,1,1x,1,-,-,5,\"z\"\n");
    fclose(f);
    cli_run(&r, "check-published --set /tmp/kvsim-cap-set.csv --thresholds /tmp/kvsim-cap-thr.csv");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "/tmp/kvsim-cap-set.csv:4: column 'batch'"), "%s", r.err);
    remove("/tmp/kvsim-cap-set.csv");
    remove("/tmp/kvsim-cap-thr.csv");
}

/* The committed set: at least 30 points, every category, three GPU generations, and within its thresholds. */
Test(capacity, committed_set_within_thresholds)
{
    cli_result r;
    cli_run(&r, "check-published");
    cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
    int n = 0;
    cr_assert_eq(sscanf(strstr(r.out, " points from ") - 3, "%d", &n), 1);
    cr_assert(n >= 30, "%d points", n);
    const char *need[] = {"-h100-", "-a100-", "-l40s-", "decode ", "ttft ", "kv_capacity ", "speedup ", "fit "};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        cr_assert(strstr(r.out, need[i]), "no %s point", need[i]);
    static char set[1 << 20];
    cli_slurp("validation/published.csv", set, sizeof set);
    cr_assert(strstr(set, ",fp8,fp8-e4m3,") && strstr(set, ",bf16,bf16,"), "bf16 and FP8 rows");
}

/* kvsim plan --pp and kvsim sweep --pp / `pp:`: a stage rank's weights by hand
 * (16 of Llama-3.1-8B's 32 layers plus the untied LM head and final norm),
 * GPUs for a target = ceil(target / tokens/s) × TP × PP from the printed
 * tokens/s, a spec's pp and the flag give the same rows, the strict ranges. */
Test(capacity, plan_and_sweep_pipeline_stages)
{
    cli_result r;
    cli_run(&r, "plan --method full --context 4K --new 16 --pp 2 --tp 2 --target-tokens-per-s 100000 --csv");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *row = strchr(r.out, '\n');
    cr_assert(row && strstr(r.out, ",max_concurrency,pp\n"), "%s", r.out);
    char hw[32], method[32];
    int tp, fits, pp;
    long long ctx, maxb, slob, maxctx, gpus, kvt;
    double tps, tpot, slotps, slotpot, wb, kvb, auxb, wsb, rb, pk, cap, conc;
    cr_assert_eq(sscanf(row + 1, "%31[^,],%d,%31[^,],,%lld,%d,%lld,%lf,%lf,%lld,%lf,%lf,%lld,%lld,%lf,%lf,%lf,%lf,%lf,%lf,"
                        "%lf,%lld,%lf,%d", hw, &tp, method, &ctx, &fits, &maxb, &tps, &tpot, &slob, &slotps, &slotpot,
                        &maxctx, &gpus, &wb, &kvb, &auxb, &wsb, &rb, &pk, &cap, &kvt, &conc, &pp), 23, "%s", row + 1);
    cr_assert_eq(tp, 2);
    cr_assert_eq(pp, 2);
    /* TP 2 splits each layer's products and the LM head; PP 2 keeps 16 layers and the heavier end */
    const double H = 4096, qd = 4096, kv = 1024, I = 14336, V = 128256;
    const double layer = (H * qd + 2 * H * kv + qd * H + 3 * H * I) * 2.0 / 2.0 + 2 * H * 2.0;
    const double head = (V * H / 2.0 + H) * 2.0;
    cr_assert_float_eq(wb, 16 * layer + head, 1.0, "%.0f", wb);
    cr_assert_eq(gpus, (long long)ceil(100000.0 / tps) * 2 * 2, "%lld GPUs at %g tokens/s", gpus, tps);
    cli_run(&r, "plan --method full --context 4K --new 16 --pp 2 --tp 2");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "pipeline stages"), "%s", r.out);
    cli_run(&r, "plan --method full --context 4K --pp 0");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--pp: 0 is out of range; allowed [1, 1024]"), "%s", r.err);
    cli_run(&r, "plan --method full --context 4K --pp 33");
    cr_assert_neq(r.rc, 0);
    cr_assert(strstr(r.err, "--pp 33: more pipeline stages than the 32 layers of llama3.1-8b"), "%s", r.err);
    /* sweep: the spec key and the flag give the same bytes below the comments; pp 1 differs */
    FILE *f = fopen("/tmp/kvsim-cap-pp.yaml", "w");
    cr_assert(f);
    fputs("models: llama3.1-8b\nmethods: full\ncontexts: 4K\nbatches: [1, 4]\npp: 2\n", f);
    fclose(f);
    cli_run(&r, "sweep /tmp/kvsim-cap-pp.yaml --out /tmp/kvsim-cap-pp-a.csv");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cli_run(&r, "sweep --model llama3.1-8b --method full --context 4K --batch 1,4 --pp 2 --out /tmp/kvsim-cap-pp-b.csv");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cli_run(&r, "sweep --model llama3.1-8b --method full --context 4K --batch 1,4 --out /tmp/kvsim-cap-pp-c.csv");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char *a = NULL, *b = NULL, *c = NULL;
    size_t na = 0, nb = 0, nc = 0;
    cr_assert_eq(kv_read_text("/tmp/kvsim-cap-pp-a.csv", 1 << 20, &a, &na, NULL), 0);
    cr_assert_eq(kv_read_text("/tmp/kvsim-cap-pp-b.csv", 1 << 20, &b, &nb, NULL), 0);
    cr_assert_eq(kv_read_text("/tmp/kvsim-cap-pp-c.csv", 1 << 20, &c, &nc, NULL), 0);
    cr_assert(strstr(a, "\n# pp 2 ") && strstr(b, "\n# pp 2 ") && !strstr(c, "# pp "), "%s", a);
    const char *ha = strstr(a, "\npoint,"), *hb = strstr(b, "\npoint,"), *hc = strstr(c, "\npoint,");
    cr_assert(ha && hb && hc, "%s", a);
    cr_assert_str_eq(ha, hb, "spec pp: 2 and --pp 2 give the same rows");
    cr_assert(strcmp(ha, hc) != 0, "pp 2 prices differently from pp 1");
    free(a);
    free(b);
    free(c);
    f = fopen("/tmp/kvsim-cap-pp.yaml", "w");
    cr_assert(f);
    fputs("models: llama3.1-8b\npp: 0\n", f);
    fclose(f);
    cli_run(&r, "sweep /tmp/kvsim-cap-pp.yaml --out /tmp/kvsim-cap-pp-a.csv");
    cr_assert_neq(r.rc, 0);
    cr_assert(strstr(r.err, "kvsim-cap-pp.yaml:2:5: key 'pp'"), "%s", r.err);
    cli_run(&r, "sweep --model llama3.1-8b --method full --context 4K --pp 1025 --out /tmp/kvsim-cap-pp-a.csv");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--pp: 1025 is out of range; allowed [1, 1024]"), "%s", r.err);
    remove("/tmp/kvsim-cap-pp.yaml");
    remove("/tmp/kvsim-cap-pp-a.csv");
    remove("/tmp/kvsim-cap-pp-b.csv");
    remove("/tmp/kvsim-cap-pp-c.csv");
}
