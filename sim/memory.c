/* memory.c — what one tensor-parallel rank holds: weights, the K/V each
 * method retains (refimpl's storage(), the one home of those sizes), its
 * auxiliary metadata, activations and workspace, a runtime reserve; the peak
 * over prefill and decode. "Does not fit" is sim_memory.fits = 0.
 *
 * Engine (default): K/V for prompt + new tokens preallocated at the method's
 * retained size; sequences are prefilled one chunk of one sequence at a time
 * and stage 1 evicts layer by layer, so the peak holds every sequence's
 * compressed cache plus ONE layer of ONE sequence's full prompt K/V, that
 * layer's stage-1 window scores and one chunk's activations. Reserve: 1e9 (allocator, cuBLAS
 * workspace, CUDA graphs) + 0.5e9 for NCCL when N > 1 — assumptions, on top
 * of usable_capacity_bytes (which already excludes the CUDA context).
 *
 * gpt-fast (the paper's harness: github.com/NVlabs/RocketKV gpt-fast/): max_seq_length =
 * S + new rounded up to 8; a (max_seq, max_seq) bool causal mask; the dense
 * K/V cache sized max_seq; the prefill K/V buffer of a compressing method
 * freed after prefill; peak_bytes is torch.cuda.max_memory_allocated after
 * the stats reset post-prefill, i.e. the decode peak. No reserve (the
 * allocator's counter does not see it). */
#include "sim.h"

#include <math.h>
#include <string.h>

/* Per-rank weights: TP splits query heads (q and o), KV heads (k and v,
 * replicated once N > Hkv), MLP columns and — except under gpt-fast — the
 * vocabulary (embedding and LM head); norms are replicated. N = 1 gives mdl_param_count exactly. The
 * linear layers are stored in the weight type (weight_bytes_per_param, scales included), and an untied
 * LM head too when sim_lm_head_quantized; embeddings and norms stay bf16. */
int sim_rank_shape_compute(const sim_config *c, sim_rank_shape *s, kv_err *err)
{
    const mdl_model *m = c->model;
    const int N = c->tp, Hq = m->num_attention_heads, Hkv = m->num_key_value_heads;
    memset(s, 0, sizeof *s);
    if (N < 1 || Hq % N != 0)
        return kv_errf(err, "--tp %d: must divide the %d query heads of %s", N, Hq, m->name);
    if (N <= Hkv ? Hkv % N != 0 : N % Hkv != 0)
        return kv_errf(err, "--tp %d: must divide, or be a multiple of, the %d KV heads of %s", N, Hkv, m->name);
    s->hq = Hq / N;
    s->hkv = N <= Hkv ? Hkv / N : 1;
    const double h = m->hidden_size, d = m->head_dim, wb = c->weight_bytes_per_param;
    const double q = (double)Hq * d, kv = (double)Hkv * d, I = m->intermediate_size, V = m->vocab_size;
    const double bias = (double)mdl_layer_params(m) - (h * q + 2 * h * kv + q * h + 3 * h * I + 2 * h);
    const double q_r = s->hq * d, kv_r = s->hkv * d;
    s->qkv_bytes = (h * q_r + 2 * h * kv_r + bias * (q_r + 2 * kv_r) / (q + 2 * kv)) * wb;
    s->o_bytes = q_r * h * wb;
    s->mlp_bytes = 3 * h * I / N * wb;
    s->norm_bytes = 2 * h * 2.0;
    s->layer_weight_bytes = s->qkv_bytes + s->o_bytes + s->mlp_bytes + s->norm_bytes;
    /* gpt-fast's tp.py (apply_tp) shards only the attention and feed-forward
     * linears: every rank holds the whole embedding and LM head, computes all
     * logits and gathers nothing (its README's per-rank model size, memory
     * bandwidth / tokens/s, is exactly that: 18.16 GB for Llama-2-70B at TP 8) */
    s->vocab_ranks = c->harness == SIM_HARNESS_GPT_FAST ? 1 : N;
    s->lm_head_bytes = V * h / s->vocab_ranks * (sim_lm_head_quantized(c) ? wb : 2.0);
    s->embed_bytes = V * h / s->vocab_ranks * 2.0;
    const int P = c->pp > 1 ? c->pp : 1, L = m->num_hidden_layers;
    if (P > L)
        return kv_errf(err, "--pp %d: more pipeline stages than the %d layers of %s", P, L, m->name);
    s->stage_layers = (L + P - 1) / P;
    /* the ends: embedding (first stage), final norm + LM head (last); a tied
     * head shares the embedding's table only when both sit on one stage */
    const double head = h * 2.0 + (m->tie_word_embeddings ? (P > 1 ? s->embed_bytes : 0.0) : s->lm_head_bytes);
    const double ends = P > 1 ? fmax(s->embed_bytes, head) : s->embed_bytes + head;
    s->weights_bytes = s->stage_layers * s->layer_weight_bytes + ends;
    return 0;
}

/* gpt-fast's max_seq_length: S + new rounded up to a multiple of 8. */
static double gptfast_max_seq(const rkv_params *p)
{
    return (double)((p->S + p->max_new + 7) / 8 * 8);
}

/* Per-sequence activations of one token through one layer, elements:
 * residual + normed input, q/k/v, attention output, gate/up/act. */
static double token_act_elems(const mdl_model *m, const sim_rank_shape *s, int tp)
{
    return 4.0 * m->hidden_size + (s->hq + 2.0 * s->hkv) * m->head_dim + 3.0 * m->intermediate_size / tp;
}

/* K + V of one token over every layer of this rank, dense (what a paged pool is sized in). */
static double pool_token_bytes(const sim_config *c, const sim_rank_shape *s)
{
    return (double)s->stage_layers * s->hkv * 2.0 * c->params.d * (double)rkv_dtype_bytes(c->params.kv_dtype);
}

/* An engine's policy (engines/): its KV pool sized as it does at start-up
 * (eng_kv_pool); every sequence takes whole pages for what the method keeps
 * (K/V and aux together); a compressing method's prefill briefly holds one
 * layer of one sequence's full prompt K/V in the pool as well. Context,
 * activation peak, non-torch memory and CUDA graphs are the reserve. */
static void engine_pool(const sim_config *c, const sim_rank_shape *s, double kv_now, double one_full_layer,
                        int compresses, sim_memory *mem)
{
    const mdl_model *m = c->model;
    const eng_engine *e = c->engine;
    eng_pool_in in = {
        .device_total_bytes = (double)c->hw->device_total_bytes, .context_bytes = (double)c->hw->context_bytes,
        .weights_bytes = s->weights_bytes, .kv_bytes_per_token = pool_token_bytes(c, s),
        .act_bytes_per_token = token_act_elems(m, s, c->tp) * c->act_bytes, .vocab = (double)m->vocab_size,
        .tp = c->tp,
    };
    eng_pool pool;
    kv_err err;
    if (eng_kv_pool(e, c->mem_fraction, &in, c->params.S_total, &pool, &err) != 0)
        memset(&pool, 0, sizeof pool); /* arguments are validated by the callers; nothing fits */
    const double B = (double)c->batch, page = (double)e->block_tokens * in.kv_bytes_per_token;
    const double per_seq = kv_now / B, seq_pages = per_seq > 0.0 ? ceil(per_seq / page - 1e-12) : 0.0;
    mem->kv_pool_bytes = pool.kv_pool_bytes;
    mem->kv_cache_tokens = pool.kv_tokens;
    mem->max_concurrency = pool.max_concurrency;
    mem->workspace_bytes = pool.activation_bytes;
    mem->reserve_bytes = (double)c->hw->context_bytes + pool.activation_bytes + pool.runtime_bytes + e->cuda_graph_bytes;
    mem->decode_peak_bytes = mem->weights_bytes + B * seq_pages * page;
    mem->prefill_peak_bytes = mem->decode_peak_bytes + (compresses ? ceil(one_full_layer / page) * page : 0.0);
    mem->peak_bytes = fmax(mem->prefill_peak_bytes, mem->decode_peak_bytes) + mem->reserve_bytes;
    mem->capacity_bytes = mem->weights_bytes + mem->reserve_bytes + pool.kv_pool_bytes;
    mem->fits = pool.kv_pool_bytes > 0.0 && mem->peak_bytes <= mem->capacity_bytes;
}

int sim_memory_compute(const sim_config *c, sim_memory *mem, kv_err *err)
{
    sim_rank_shape s;
    if (sim_rank_shape_compute(c, &s, err) != 0)
        return -1;
    sim_memory_of_shape(c, &s, mem);
    return 0;
}

void sim_memory_of_shape(const sim_config *c, const sim_rank_shape *sp, sim_memory *mem)
{
    const mdl_model *m = c->model;
    const rkv_params *p = &c->params;
    const sim_rank_shape s = *sp;
    memset(mem, 0, sizeof *mem);
    const double B = (double)c->batch, L = m->num_hidden_layers;
    const double b = (double)rkv_dtype_bytes(p->kv_dtype), d = p->d;
    const double skip = p->skip_layers < m->num_hidden_layers ? (double)p->skip_layers : L;
    const int gptfast = c->harness == SIM_HARNESS_GPT_FAST;

    rkv_storage st;
    p->method->storage(p, &st);
    const double full_layer_head = (double)p->S_total * 2.0 * d * b; /* a dense layer, per head */
    double kv_head = (double)st.kv_bytes, aux_head = (double)st.aux_bytes;
    if (gptfast && p->method->traits.dense)
        kv_head = gptfast_max_seq(p) * 2.0 * d * b;
    mem->weights_bytes = s.weights_bytes;
    const double stage = (double)s.stage_layers / L; /* a pipeline stage's share of the layers */
    mem->kv_bytes = stage * B * s.hkv * ((L - skip) * kv_head + skip * full_layer_head);
    mem->aux_bytes = stage * B * s.hkv * (L - skip) * aux_head;
    mem->capacity_bytes = (double)c->hw->usable_capacity_bytes;

    /* decode workspace: one token's activations (fp32, in and out), logits,
     * the method's score buffer, flash-decoding partials (64 splits) */
    rkv_traffic t;
    int64_t last = p->S_total - p->S - 1;
    p->method->traffic(p, last > 0 ? last : 0, &t);
    const double vocab_r = (double)m->vocab_size / s.vocab_ranks;
    double ws_decode = B * (2.0 * token_act_elems(m, &s, c->tp) * 4.0 + vocab_r * 4.0 + s.hkv * (double)t.scores / 2.0 +
                            s.hq * 64.0 * (d + 2.0) * 4.0);
    /* prefill workspace: one chunk's activations (in and out), last logits.
     * An engine prefills one sequence's chunk at a time (a token budget per
     * forward pass) while the others hold their compressed caches; gpt-fast
     * prefills the whole batch together. */
    const int64_t chunk = c->prefill_chunk > 0 ? c->prefill_chunk : (gptfast ? 4096 : 8192);
    const double tc = (double)(chunk < p->S ? chunk : p->S);
    const double Bp = gptfast ? B : 1.0; /* sequences in prefill at once */
    double ws_prefill = Bp * (2.0 * tc * token_act_elems(m, &s, c->tp) * c->act_bytes + vocab_r * 4.0);
    const int stage1 = p->window_size > 0 && p->kernel_size > 0 && p->prompt_budget < p->S;
    if (stage1) /* one layer's window probabilities (fp32) over the prompt */
        ws_prefill += Bp * s.hq * (double)p->window_size * (double)p->S * 4.0;

    const double kv_now = mem->kv_bytes + mem->aux_bytes;
    if (c->engine && c->engine->budget != ENG_BUDGET_NONE) {
        engine_pool(c, &s, kv_now, stage1 || p->prompt_budget < p->S ? s.hkv * (double)p->S * 2.0 * d * b : 0.0,
                    kv_head < full_layer_head, mem);
        return;
    }
    if (gptfast) {
        const double ms = gptfast_max_seq(p);
        mem->mask_bytes = ms * ms;
        mem->reserve_bytes = 0.0;
        mem->decode_peak_bytes = mem->weights_bytes + kv_now + mem->mask_bytes + ws_decode;
        /* prefill: a full max_seq K/V for every layer; a compressing method also
         * builds its compressed cache before the full one is freed */
        double full_all = B * s.hkv * s.stage_layers * ms * 2.0 * d * b;
        double kv_pre = p->method->traits.dense ? kv_now : full_all + kv_now;
        mem->prefill_peak_bytes = mem->weights_bytes + kv_pre + mem->mask_bytes + ws_prefill;
        mem->workspace_bytes = ws_decode;
        mem->peak_bytes = mem->decode_peak_bytes;
    } else {
        mem->reserve_bytes = c->reserve_bytes >= 0.0 ? c->reserve_bytes : 1e9 + (c->tp > 1 ? 0.5e9 : 0.0);
        mem->decode_peak_bytes = mem->weights_bytes + kv_now + ws_decode;
        /* layer-by-layer eviction: the compressed layers plus one layer's full prompt K/V */
        /* (a method that keeps the whole history, rocketkv-mt, already holds it) */
        double one_full = (stage1 || p->prompt_budget < p->S) && kv_head < full_layer_head
                              ? s.hkv * (double)p->S * 2.0 * d * b : 0.0;
        mem->prefill_peak_bytes = mem->weights_bytes + kv_now + one_full + ws_prefill;
        mem->workspace_bytes = mem->prefill_peak_bytes > mem->decode_peak_bytes ? ws_prefill + one_full : ws_decode;
        mem->peak_bytes = fmax(mem->prefill_peak_bytes, mem->decode_peak_bytes) + mem->reserve_bytes;
    }
    mem->fits = fmax(mem->prefill_peak_bytes, mem->decode_peak_bytes) + mem->reserve_bytes <= mem->capacity_bytes;
}
