/* step.c — the decode-step timeline and prefill (TTFT) of sim.h.
 *
 * Per layer, per rank: elementwise (norms, SiLU·mul, adds), QKV GEMV, KV
 * append (RoPE + append + page metadata), the method's attention kernels
 * (dense scan; or aux scoring, top-k, sparse gather attention), O GEMV,
 * all-reduce, MLP GEMVs, all-reduce; once per step the LM head. Each kernel:
 *   launches × launch cost + max(bytes / (bandwidth × eff(run) × eff(bytes)),
 *                                FLOPs / (peak(type) × eff(shape)))
 * with eff(run) = hw_bandwidth_efficiency(run bytes) for gathers and the
 * streaming efficiency for long reads, eff(bytes) = hw_transfer_efficiency
 * (a kernel moving few bytes cannot fill the memory pipe), peak(type) the
 * weight type's peak for the weight products (hw_peak_flops) and bf16 for
 * attention, eff(shape) = hw_gemm_efficiency (tile and wave quantization).
 * A weight-only quantised product (int8, int4-gN, AWQ/GPTQ, GGUF) adds its
 * dequantisation, weights × dequant_ops / (fp32_flops / 2) — CUDA-core
 * instructions at one per lane per clock — after the max, not inside it: the
 * kernels that run these types at batch 1 (gpt-fast's Triton int8 GEMV,
 * tinygemm) convert each loaded tile before its products without a software
 * pipeline, so conversion and loads do not overlap (Frantar et al., "MARLIN:
 * Mixed-Precision Auto-Regressive Parallel Inference on Large Language
 * Models", arXiv:2408.11743, Section 3: overlapping them needs explicit
 * multi-stage pipelining, which is what lets Marlin approach the ideal 4x).
 * Checked against gpt-fast's own int8 / int4 rows (validation/published.csv):
 * the measured step exceeds the bf16-calibrated stream time by 0.10-0.18 ps
 * per weight on an A100, i.e. 1.0-1.7 lane instructions per weight.
 * All-reduce: the cheapest of ring — fixed + 2(N−1)·α + 2(N−1)/N · bytes / link
 * — tree — fixed + 2·⌈log2 N⌉·α + 2 · bytes / link (NCCL picks per size) — and,
 * over NVLink, one-shot — fixed + α + (N−1) · bytes / link (custom all-reduce);
 * the link is NVLink, or PCIe where the part has none, at the share of its raw
 * rate NCCL's topology model gives it (hw_collective_link_bytes_per_s); under gpt-fast, PyTorch's
 * IntraNodeComm instead (allreduce_intra_node). Decode time is summed
 * step by step as the cache grows; nothing is averaged before it is summed.
 *
 * An engine whose decode attention runs one thread block per query head
 * (sim_config.kv_reads_per_query_head: TensorRT-LLM's masked MHA kernel,
 * for a model whose G its XQA kernel does not take: eng_reads_kv_per_query_head)
 * reads each KV head's K/V G times.
 *
 * gpt-fast (the paper's harness) differs in four places: dense decode is
 * SDPA's math path over the whole max_seq_length cache under a mask (scores
 * materialised in bf16, GQA by repeat_interleave fused into the products so
 * that each query head reads its K/V: G-fold reads), the sparse path is unfused PyTorch ops (the
 * selected K/V gathered into a compact copy, then attended), and it launches
 * more, smaller kernels; under TP it shards only the attention and MLP linears
 * (whole LM head per rank, no logits gather: sim_rank_shape.vocab_ranks) and
 * all-reduces through IntraNodeComm. Prefill (both harnesses) is chunked and compute bound
 * with an efficient attention kernel. */
#include "sim.h"

#include <math.h>
#include <string.h>

const char *const sim_kernel_names[SIM_K_N] = {"elementwise", "qkv_gemv", "kv_append", "attn_dense",
                                               "aux_score",   "topk",     "attn_sparse", "o_gemv",
                                               "mlp_gemv",    "allreduce", "lm_head"};

int sim_harness_parse(const char *s, sim_harness *h)
{
    if (!strcmp(s, "engine")) *h = SIM_HARNESS_ENGINE;
    else if (!strcmp(s, "gpt-fast")) *h = SIM_HARNESS_GPT_FAST;
    else return -1;
    return 0;
}

const char *sim_harness_name(sim_harness h) { return h == SIM_HARNESS_GPT_FAST ? "gpt-fast" : "engine"; }

void sim_config_set_engine(sim_config *c, const eng_engine *e, double mem_fraction)
{
    c->engine = e;
    c->mem_fraction = mem_fraction;
    if (!e)
        return;
    c->harness = e->harness == ENG_HARNESS_GPT_FAST ? SIM_HARNESS_GPT_FAST : SIM_HARNESS_ENGINE;
    c->kv_reads_per_query_head = eng_reads_kv_per_query_head(e, c->params.G);
    c->prefill_chunk = (int64_t)e->prefill_chunk_tokens;
    if (!e->cuda_graphs) /* an engine that launches plainly: launch_s per kernel, whatever the default */
        c->cuda_graphs = 0;
}

int sim_lm_head_quantized(const sim_config *c)
{
    if (c->model->tie_word_embeddings)
        return 0;
    return c->engine ? c->engine->lm_head_quantized : c->harness == SIM_HARNESS_GPT_FAST;
}

void sim_config_set_weight_dtype(sim_config *c, const sim_weight_dtype *w)
{
    c->weight_bytes_per_param = w->bits / 8.0;
    c->weight_compute = w->compute;
    c->weight_dequant_ops = w->dequant_ops;
}

void sim_config_defaults(sim_config *c, const mdl_model *m, const hw_model *h, const rkv_params *p)
{
    memset(c, 0, sizeof *c);
    c->model = m;
    c->hw = h;
    c->params = *p;
    c->batch = 1;
    c->tp = 1;
    c->pp = 1;
    c->harness = SIM_HARNESS_ENGINE;
    c->cuda_graphs = 1;
    c->weight_bytes_per_param = 2.0;
    c->weight_compute = HW_DT_BF16;
    c->weight_dequant_ops = 0.0;
    c->act_bytes = 2.0;
    c->reserve_bytes = -1.0;
}

/* The device as the kernels see it; memoises the last efficiency lookup per kernel. */
typedef struct {
    const hw_model *h;
    double bw, flops, launch, link;
    int intra_node;  /* all-reduce by PyTorch IntraNodeComm (gpt-fast) instead of NCCL */
    double peak_w;   /* dense peak of the weight products' type (FLOP/s) */
    hw_dtype wdt;    /* the weight products' compute type (which efficiency curve) */
    double dq_s;     /* seconds of dequantisation per weight (0: the tensor cores take the stored type) */
    int head_q;      /* 1: the LM head is in the weight type (sim_lm_head_quantized); 0: bf16 */
    double dec_attn_rate; /* FLOP/s the decode step's dense attention reaches (sim_kernel_flops_rate) */
    double memo_run[SIM_K_N], memo_eff[SIM_K_N];
    sim_result *r;   /* where times, launches and bytes accumulate (per step × weight) */
    double weight;   /* multiplier applied when accumulating (layers, 1/steps) */
} dev;

static double eff_of(dev *v, int k, double run)
{
    if (run <= 0.0)
        return v->h->stream_read_efficiency;
    if (run != v->memo_run[k]) {
        v->memo_run[k] = run;
        v->memo_eff[k] = hw_bandwidth_efficiency(v->h, run);
    }
    return v->memo_eff[k];
}

/* One kernel: bytes read or written at `meff` of the bandwidth (before the
 * transfer-size efficiency); its FLOPs at `peak` × `ceff`; `serial` seconds
 * that overlap neither (weight dequantisation). Returns seconds. */
static double kern_at(dev *v, int k, double bytes, double meff, double flops, double launches, double peak,
                      double ceff, double serial)
{
    if (bytes <= 0.0 && flops <= 0.0)
        return 0.0;
    double tm = bytes / (v->bw * meff * hw_transfer_efficiency(v->h, bytes));
    double tc = flops / (peak * ceff);
    double t = (tm > tc ? tm : tc) + serial + launches * v->launch;
    if (v->r) {
        v->r->kernel_s[k] += v->weight * t;
        v->r->kernel_launches[k] += v->weight * launches;
        v->r->flops_per_step += v->weight * flops;
        v->r->kernel_bytes[k] += v->weight * bytes;
        v->r->kernel_flops[k] += v->weight * flops;
    }
    return t;
}

/* Attention and elementwise work: bf16 at the flat compute efficiency. */
static double kern(dev *v, int k, double bytes, double run, double flops, double launches)
{
    return kern_at(v, k, bytes, eff_of(v, k, run), flops, launches, v->h->bf16_dense_flops, v->h->compute_efficiency,
                   0.0);
}

/* A product with the weights: m rows (tokens) × n output columns, reduction
 * depth kd, at the weight type's peak and its efficiency by shape, its
 * operands read at the type's GEMM read efficiency; its flops / (2m) weights
 * are dequantised once per pass. */
static double kern_gemm(dev *v, int k, double bytes, double flops, double launches, double m, double n, double kd)
{
    const double dq = m > 0.0 ? flops / (2.0 * m) * v->dq_s : 0.0;
    return kern_at(v, k, bytes, hw_gemm_read_efficiency(v->h, v->wdt), flops, launches, v->peak_w,
                   hw_gemm_efficiency_dt(v->h, v->wdt, m, n, kd), dq);
}

/* The LM head: in the linear layers' weight type when sim_lm_head_quantized, else a bf16 product
 * (tied to the bf16 embedding, or left out of the quantisation recipe). */
static double kern_lm_head(dev *v, const mdl_model *m, double bytes, double flops, double launches, double rows,
                           double n)
{
    const double dq = v->dq_s, peak = v->peak_w;
    const hw_dtype wdt = v->wdt;
    if (!v->head_q) {
        v->dq_s = 0.0;
        v->wdt = HW_DT_BF16;
        v->peak_w = hw_peak_flops(v->h, HW_DT_BF16);
    }
    const double t = kern_gemm(v, SIM_K_LM_HEAD, bytes, flops, launches, rows, n, m->hidden_size);
    v->dq_s = dq;
    v->wdt = wdt;
    v->peak_w = peak;
    return t;
}

/* The cheapest of ring, tree and — over NVLink — one-shot (every rank reads
 * its N − 1 peers' buffers directly: α + (N − 1) · bytes / link; vLLM's
 * csrc/custom_all_reduce.cuh uses it for small messages), each after NCCL's
 * fixed cost. See the file header comment for ring and tree. */
static double allreduce_time(const hw_model *h, double link, int tp, double bytes)
{
    const double a = h->link_latency_s, n = (double)tp;
    const double ring = 2.0 * (n - 1.0) * a + 2.0 * (n - 1.0) / n * bytes / link;
    const double tree = 2.0 * ceil(log2(n)) * a + 2.0 * bytes / link;
    double best = ring < tree ? ring : tree;
    if (h->nvlink_bytes_per_s > 0.0) {
        const double oneshot = a + (n - 1.0) * bytes / link;
        best = oneshot < best ? oneshot : best;
    }
    return h->allreduce_latency_s + best;
}

/* gpt-fast's tensor parallelism runs with ENABLE_INTRA_NODE_COMM=1 (its
 * README's torchrun command): PyTorch's IntraNodeComm replaces NCCL for
 * messages up to kOneShotThreshBytes = 256 KiB (one-shot) and
 * kTwoShotThreshBytes = 10 MiB (two-shot: reduce-scatter then all-gather by
 * direct reads), torch/csrc/distributed/c10d/intra_node_comm.cu. Each is two
 * graph nodes — the input's copy into the peer-visible buffer, then the
 * kernel — with a barrier per pass (α) and no NCCL fixed cost; larger
 * messages fall back to NCCL. At 8 ranks on a hybrid-cube-mesh board
 * (nvlink_topology; gpt-fast's A100s) the HCM variant replaces both up to
 * kHcmThreshBytes = 256 KiB: sum the 3 non-relay neighbours' buffers, barrier
 * with the relay neighbour, add its partial sum — 2α, 4 · bytes over NVLink. */
#define SIM_INC_ONESHOT_BYTES (256.0 * 1024.0)
#define SIM_INC_TWOSHOT_BYTES (10.0 * 1024.0 * 1024.0)
static double allreduce_intra_node(const dev *v, int tp, double bytes)
{
    const double a = v->h->link_latency_s, n = (double)tp;
    if (v->h->nvlink_hcm && tp == 8)
        return bytes <= SIM_INC_ONESHOT_BYTES ? 2.0 * v->launch + 2.0 * a + 4.0 * bytes / v->link
                                              : allreduce_time(v->h, v->link, tp, bytes);
    if (v->h->nvlink_bytes_per_s <= 0.0 || bytes > SIM_INC_TWOSHOT_BYTES)
        return allreduce_time(v->h, v->link, tp, bytes);
    if (bytes <= SIM_INC_ONESHOT_BYTES)
        return 2.0 * v->launch + a + (n - 1.0) * bytes / v->link;
    return 2.0 * v->launch + 2.0 * a + 2.0 * (n - 1.0) / n * bytes / v->link;
}

static double allreduce(dev *v, int tp, double bytes)
{
    if (tp <= 1)
        return 0.0;
    double t = v->intra_node ? allreduce_intra_node(v, tp, bytes) : allreduce_time(v->h, v->link, tp, bytes);
    if (v->r) {
        v->r->kernel_s[SIM_K_ALLREDUCE] += v->weight * t;
        v->r->kernel_launches[SIM_K_ALLREDUCE] += v->weight;
        v->r->cat_bytes[SIM_CAT_OTHER] += v->weight * bytes;
        v->r->kernel_bytes[SIM_K_ALLREDUCE] += v->weight * bytes;
    }
    return t;
}

static void add_bytes(dev *v, int cat, double bytes)
{
    if (v->r) v->r->cat_bytes[cat] += v->weight * bytes;
}

/* The per-step part that does not depend on the context: weight GEMVs,
 * elementwise kernels, all-reduces for all layers, and the LM head. */
static double step_fixed(dev *v, const sim_config *c, const sim_rank_shape *s)
{
    const mdl_model *m = c->model;
    const double B = (double)c->batch, L = m->num_hidden_layers, h = m->hidden_size, ab = c->act_bytes;
    const double wb = c->weight_bytes_per_param;
    const int gf = c->harness == SIM_HARNESS_GPT_FAST;
    const double w0 = v->weight;
    double t = 0.0;
    v->weight = w0 * L;
    /* activations in and out of each GEMV, per sequence */
    const double qkv_io = (h + (s->hq + 2.0 * s->hkv) * m->head_dim) * ab;
    const double o_io = (s->hq * (double)m->head_dim + h) * ab;
    const double mlp_io = (2.0 * h + 3.0 * m->intermediate_size / c->tp) * ab;
    const double ew_io = (4.0 * h + 2.0 * h + 3.0 * m->intermediate_size / c->tp) * ab;
    t += L * kern(v, SIM_K_ELEMENTWISE, s->norm_bytes + B * ew_io, 0, 0, gf ? 5 : 3);
    const double dq = (s->hq + 2.0 * s->hkv) * m->head_dim, im = (double)m->intermediate_size / c->tp;
    /* one MLP kernel time for gate+up (2/3 of the FLOPs, depth h) and down (1/3, depth im):
     * at e·k / (k + k_half) per product their sum is the depth 1 / ((2/3)/h + (1/3)/im) */
    const double mlp_k = 1.0 / (2.0 / 3.0 / h + 1.0 / 3.0 / im);
    t += L * kern_gemm(v, SIM_K_QKV, s->qkv_bytes + B * qkv_io, 2.0 * B * s->qkv_bytes / wb, 1, B, dq, h);
    t += L * kern_gemm(v, SIM_K_O_PROJ, s->o_bytes + B * o_io, 2.0 * B * s->o_bytes / wb, 1, B, h,
                       s->hq * (double)m->head_dim);
    t += L * kern_gemm(v, SIM_K_MLP, s->mlp_bytes + B * mlp_io, 2.0 * B * s->mlp_bytes / wb, gf ? 3 : 2, B, im,
                       mlp_k);
    v->weight = w0 * L * 2.0; /* two per layer */
    t += L * 2.0 * allreduce(v, c->tp, B * h * ab);
    v->weight = w0 * L;
    add_bytes(v, SIM_CAT_WEIGHTS, s->layer_weight_bytes);
    add_bytes(v, SIM_CAT_OTHER, B * (ew_io + qkv_io + o_io + mlp_io));
    v->weight = w0;
    /* embedding row, final norm, LM head, logits (fp32), sampling */
    const double vocab_r = (double)m->vocab_size / s->vocab_ranks;
    const double io = B * (h * 2.0 + 2.0 * h * ab + vocab_r * 4.0 * 2.0);
    const double lm_params = vocab_r * h; /* the LM head's products, whatever it is stored in */
    t += kern_lm_head(v, m, s->lm_head_bytes + h * 2.0 + io, 2.0 * B * lm_params, 4, B, vocab_r);
    if (s->vocab_ranks > 1) /* gather of the logits (none where every rank computes them all) */
        t += allreduce(v, s->vocab_ranks, B * vocab_r * 4.0);
    add_bytes(v, SIM_CAT_WEIGHTS, s->lm_head_bytes + h * 2.0);
    add_bytes(v, SIM_CAT_OTHER, io);
    return t;
}

/* The attention side of one layer for one step as kernel uses: c->batch
 * sequences each reading a (whole model), scaled to this rank. by: the
 * f-scaled bytes per category; dense: the dense scan's K/V bytes and extra
 * (gpt-fast's scores and mask row), as the result accounts them. */
static int layer_uses(const sim_config *c, const sim_rank_shape *s, const sim_layer_access *a, sim_kernel_use *u,
                      double by[SIM_CAT_N], double dense[2])
{
    const mdl_model *m = c->model;
    const rkv_params *p = &c->params;
    const double f = (double)c->batch * s->hkv / m->num_key_value_heads; /* sequences × share of KV heads */
    const int gf = c->harness == SIM_HARNESS_GPT_FAST;
    const double b = (double)rkv_dtype_bytes(p->kv_dtype);
    double run[SIM_CAT_N];
    int n = 0;
    for (int i = 0; i < SIM_CAT_N; i++) {
        by[i] = f * a->bytes[i];
        run[i] = a->runs[i] > 0.0 ? a->bytes[i] / a->runs[i] : 0.0;
    }
    dense[0] = dense[1] = 0.0;
    u[n++] = (sim_kernel_use){SIM_K_KV_APPEND, by[SIM_CAT_KV_WRITE], run[SIM_CAT_KV_WRITE], 0, 1};
    if (by[SIM_CAT_KV_FULL] > 0.0) {
        double bytes = by[SIM_CAT_KV_FULL], extra = 0.0, launches = 1;
        if (gf && p->method->traits.dense) {
            /* SDPA math over max_seq under the mask, GQA by repeat_interleave
             * that Inductor fuses into the M = 1 products: every query head
             * reads its K/V over max_seq (G-fold reads, no copies: the paper's
             * decode peak leaves no room for copies); bf16 scores written,
             * softmaxed (read + write) and read; one mask row */
            const double ms = (double)((p->S + p->max_new + 7) / 8 * 8), G = p->G;
            const double kvr = (double)c->batch * s->hkv * ms * 2.0 * p->d * b;
            bytes = kvr * G;
            extra = (double)c->batch * s->hq * ms * 2.0 * 4.0 + ms;
            launches = 5;
        } else if (c->kv_reads_per_query_head && !sim_per_head_cuda_core(c))
            bytes *= (double)p->G; /* one thread block per query head, each reading its KV head from DRAM */
        u[n++] = (sim_kernel_use){SIM_K_ATTN_DENSE, bytes + extra, 0, f * a->flops[SIM_CAT_KV_FULL], launches};
        dense[0] = bytes;
        dense[1] = extra;
    }
    if (by[SIM_CAT_AUX] > 0.0 || by[SIM_CAT_SCORES] > 0.0) {
        u[n++] = (sim_kernel_use){SIM_K_AUX_SCORE, by[SIM_CAT_AUX] + by[SIM_CAT_SCORES] / 2.0, run[SIM_CAT_AUX],
                                  f * a->flops[SIM_CAT_AUX], gf ? 4 : 1};
        u[n++] = (sim_kernel_use){SIM_K_TOPK, by[SIM_CAT_SCORES] / 2.0, 0, 0, gf ? 2 : 1};
    }
    if (by[SIM_CAT_KV_EXACT] > 0.0) {
        /* gpt-fast gathers the rows into a compact copy (read at the run length,
         * written and read back as streams); an engine attends in place */
        double ex = by[SIM_CAT_KV_EXACT];
        u[n++] = (sim_kernel_use){SIM_K_ATTN_SPARSE, ex, run[SIM_CAT_KV_EXACT], f * a->flops[SIM_CAT_KV_EXACT], gf ? 3 : 1};
        if (gf)
            u[n++] = (sim_kernel_use){SIM_K_ATTN_SPARSE, 2.0 * ex, 0, 0, 2};
    }
    return n;
}

int sim_layer_uses(const sim_config *c, const sim_rank_shape *s, const sim_layer_access *a, sim_kernel_use *u)
{
    double by[SIM_CAT_N], dense[2];
    return layer_uses(c, s, a, u, by, dense);
}

/* The attention side of one layer for one step, given what one sequence
 * reads (a, whole model) scaled to this rank and batch. */
static double step_layer(dev *v, const sim_config *c, const sim_rank_shape *s, const sim_layer_access *a)
{
    sim_kernel_use u[SIM_LAYER_USES];
    double by[SIM_CAT_N], dense[2];
    const int n = layer_uses(c, s, a, u, by, dense);
    const int gf = c->harness == SIM_HARNESS_GPT_FAST;
    double t = 0.0;
    for (int i = 0; i < n; i++) {
        double tk = u[i].kernel == SIM_K_ATTN_DENSE
                        ? kern_at(v, u[i].kernel, u[i].bytes, eff_of(v, u[i].kernel, u[i].run), u[i].flops,
                                  u[i].launches, v->dec_attn_rate, 1.0, 0.0)
                        : kern(v, u[i].kernel, u[i].bytes, u[i].run, u[i].flops, u[i].launches);
        if (i + 1 < n && u[i + 1].kernel == u[i].kernel) { /* gpt-fast's gather + copy: one term */
            tk += kern(v, u[i + 1].kernel, u[i + 1].bytes, u[i + 1].run, u[i + 1].flops, u[i + 1].launches);
            i++;
        }
        t += tk;
    }
    if (by[SIM_CAT_KV_FULL] > 0.0) {
        add_bytes(v, SIM_CAT_KV_FULL, dense[0]);
        add_bytes(v, SIM_CAT_SCORES, dense[1]);
    }
    add_bytes(v, SIM_CAT_KV_EXACT, by[SIM_CAT_KV_EXACT] * (gf ? 3.0 : 1.0));
    add_bytes(v, SIM_CAT_AUX, by[SIM_CAT_AUX]);
    add_bytes(v, SIM_CAT_KV_WRITE, by[SIM_CAT_KV_WRITE]);
    add_bytes(v, SIM_CAT_SCORES, by[SIM_CAT_SCORES]);
    return t;
}

/* The pieces of one prefill forward pass, per layer: the GEMMs of T tokens
 * (QKV, O, MLP as one compute-bound pass over the weights), the causal
 * attention of one chunk of n tokens after s0 cached ones for B sequences,
 * the elementwise kernels and the all-reduce of T tokens. */
static double pf_gemm(dev *v, const sim_config *c, const sim_rank_shape *s, double T)
{
    const mdl_model *m = c->model;
    const double h = m->hidden_size, ab = c->act_bytes, wb = c->weight_bytes_per_param, d = c->params.d;
    const double dq = (s->hq + 2.0 * s->hkv) * d, im = (double)m->intermediate_size / c->tp;
    /* each product at its own shape (T rows × its output columns): QKV, O, gate+up, down */
    double t = kern_gemm(v, SIM_K_QKV, s->qkv_bytes + T * (h + dq) * ab, 2.0 * T * s->qkv_bytes / wb, 1, T, dq, h);
    t += kern_gemm(v, SIM_K_O_PROJ, s->o_bytes + T * (s->hq * d + h) * ab, 2.0 * T * s->o_bytes / wb, 1, T, h,
                   s->hq * d);
    t += kern_gemm(v, SIM_K_MLP, s->mlp_bytes * 2.0 / 3.0 + T * (h + 2.0 * im) * ab,
                   2.0 * T * s->mlp_bytes * 2.0 / 3.0 / wb, 1, T, 2.0 * im, h);
    t += kern_gemm(v, SIM_K_MLP, s->mlp_bytes / 3.0 + T * (im + h) * ab, 2.0 * T * s->mlp_bytes / 3.0 / wb, 2, T, h,
                   im);
    return t;
}

static double pf_attn(dev *v, const sim_config *c, const sim_rank_shape *s, double B, int64_t s0, double n)
{
    const rkv_params *p = &c->params;
    const double ab = c->act_bytes, d = p->d, b = (double)rkv_dtype_bytes(p->kv_dtype);
    double pairs = n * (double)s0 + n * (n + 1.0) / 2.0; /* causal (query, key) pairs */
    double kvb = B * s->hkv * ((double)s0 + n) * 2.0 * d * b;
    return kern(v, SIM_K_ATTN_DENSE, kvb + B * n * s->hq * d * ab * 2.0, 0, 4.0 * B * s->hq * d * pairs, 2);
}

static double pf_elementwise(dev *v, const sim_config *c, const sim_rank_shape *s, double T)
{
    return kern(v, SIM_K_ELEMENTWISE, s->norm_bytes + T * 6.0 * c->model->hidden_size * c->act_bytes, 0, 0, 3);
}

static double pf_lm_head(dev *v, const sim_config *c, const sim_rank_shape *s, double B)
{
    const double h = c->model->hidden_size, vocab_r = (double)c->model->vocab_size / s->vocab_ranks;
    return kern_lm_head(v, c->model, s->lm_head_bytes + B * h * c->act_bytes, 2.0 * B * vocab_r * h, 3, B, vocab_r);
}

/* Stage 1 of c->batch sequences, all layers (window scores, pooling, top-k,
 * compaction, page build). */
static double stage1(dev *v, const sim_config *c, const sim_rank_shape *s)
{
    const rkv_params *p = &c->params;
    const double B = (double)c->batch, L = c->model->num_hidden_layers, d = p->d;
    const double b = (double)rkv_dtype_bytes(p->kv_dtype);
    double t1 = 0.0;
    rkv_storage st;
    p->method->storage(p, &st);
    if (p->window_size > 0 && p->kernel_size > 0 && p->prompt_budget < p->S) {
        const double S = (double)p->S, w = (double)p->window_size, P = (double)p->prompt_budget;
        double bytes = B * s->hkv * S * d * b            /* keys */
                       + 2.0 * B * s->hq * w * S * 4.0   /* window probabilities written, read */
                       + 2.0 * B * s->hkv * S * 8.0      /* votes pooled, top-k */
                       + 2.0 * B * s->hkv * P * 2.0 * d * b; /* compaction */
        t1 = L * kern(v, SIM_K_TOPK, bytes, 0, 2.0 * B * s->hq * w * S * d, 5);
    }
    if (st.aux_bytes > 0) /* build page min/max (or transposed K) over what is kept */
        t1 += L * kern(v, SIM_K_AUX_SCORE, B * s->hkv * ((double)p->prompt_budget * d * b + (double)st.aux_bytes), 0, 0, 1);
    return t1;
}

/* Prefill of the prompt in chunks (compute bound GEMMs and causal attention)
 * plus stage 1. */
static double prefill(dev *v, const sim_config *c, const sim_rank_shape *s, double *stage1_s)
{
    const rkv_params *p = &c->params;
    const double B = (double)c->batch, L = c->model->num_hidden_layers, h = c->model->hidden_size, ab = c->act_bytes;
    const int64_t chunk = c->prefill_chunk > 0 ? c->prefill_chunk : (c->harness == SIM_HARNESS_GPT_FAST ? 4096 : 8192);
    double t = 0.0;
    for (int64_t s0 = 0; s0 < p->S; s0 += chunk) {
        const double n = (double)(p->S - s0 < chunk ? p->S - s0 : chunk);
        double tl = pf_gemm(v, c, s, B * n);
        tl += pf_attn(v, c, s, B, s0, n);
        tl += pf_elementwise(v, c, s, B * n);
        tl += 2.0 * allreduce(v, c->tp, B * n * h * ab);
        t += L * tl;
    }
    t += pf_lm_head(v, c, s, B);
    const double t1 = stage1(v, c, s);
    *stage1_s = t1;
    return t + t1;
}

static void dev_init(dev *v, const sim_config *c)
{
    memset(v, 0, sizeof *v);
    v->h = c->hw;
    v->bw = c->hw->hbm_bandwidth_bytes_per_s;
    v->flops = c->hw->bf16_dense_flops * c->hw->compute_efficiency;
    v->dec_attn_rate = sim_kernel_flops_rate(c, SIM_K_ATTN_DENSE);
    v->peak_w = hw_peak_flops(c->hw, c->weight_compute);
    v->wdt = c->weight_compute;
    /* one lane instruction per clock: fp32_flops counts an FMA as 2 */
    v->dq_s = c->weight_dequant_ops > 0.0 && c->hw->fp32_flops > 0.0 ? c->weight_dequant_ops / (c->hw->fp32_flops / 2.0) : 0.0;
    v->head_q = sim_lm_head_quantized(c);
    v->launch = c->cuda_graphs ? c->hw->launch_graph_s : c->hw->launch_s;
    v->link = hw_collective_link_bytes_per_s(c->hw);
    v->intra_node = c->harness == SIM_HARNESS_GPT_FAST;
    for (int k = 0; k < SIM_K_N; k++) v->memo_run[k] = -1.0;
}

/* Pipeline parallelism (sim.h): the whole model's step at the micro-batch
 * size (same TP shape, no pipeline), plus the stage hops; memory is the
 * pipeline rank's; TTFT is the whole batch's prefill plus the hops of its
 * prompt activations. Kernel figures are the micro-batch's, all layers. */
static double pp_hop_s(const sim_config *c, double tokens)
{
    const hw_model *h = c->hw;
    const double link = hw_collective_link_bytes_per_s(h);
    return h->link_latency_s + tokens * c->model->hidden_size * c->act_bytes / link;
}

static int predict_pipeline(const sim_config *c, sim_result *r, kv_err *err)
{
    const int P = c->pp;
    const int64_t m = c->harness == SIM_HARNESS_GPT_FAST ? 1 : (c->batch < P ? c->batch : P);
    sim_rank_shape s;
    if (sim_rank_shape_compute(c, &s, err) != 0)
        return -1;
    sim_config one = *c, whole;
    one.pp = 1;
    whole = one;
    one.batch = (c->batch + m - 1) / m;
    sim_result w;
    if (sim_predict(&one, r, err) != 0 || sim_predict(&whole, &w, err) != 0)
        return -1;
    const double hops = (P - 1.0) * pp_hop_s(c, (double)one.batch);
    r->first_step_s += hops;
    r->last_step_s += hops;
    r->decode_s += (double)r->steps * hops;
    r->step_time_s = r->decode_s / (double)r->steps;
    r->tokens_per_s = (double)c->batch * (double)r->steps / r->decode_s;
    r->prefill_s = w.prefill_s + (P - 1.0) * pp_hop_s(c, (double)c->batch * (double)c->params.S);
    r->stage1_s = w.stage1_s;
    r->ttft_s = r->prefill_s;
    sim_memory_of_shape(c, &s, &r->mem);
    return 0;
}

int sim_predict(const sim_config *c, sim_result *r, kv_err *err)
{
    if (c->pp > 1)
        return predict_pipeline(c, r, err);
    const mdl_model *m = c->model;
    const rkv_params *p = &c->params;
    memset(r, 0, sizeof *r);
    if (c->batch < 1)
        return kv_errf(err, "batch must be at least 1, got %lld", (long long)c->batch);
    sim_rank_shape s;
    if (sim_rank_shape_compute(c, &s, err) != 0)
        return -1;
    sim_memory_of_shape(c, &s, &r->mem);
    sim_access_source an;
    sim_analytic_ctx actx;
    const sim_access_source *src = c->access;
    if (!src) {
        sim_access_analytic(&an, &actx, m, p);
        src = &an;
    }
    r->steps = c->steps > 0 ? c->steps : (p->max_new > 1 ? p->max_new - 1 : 1);
    if (src->steps < r->steps)
        return kv_errf(err, "%s source holds %lld decode steps; %lld needed (--new %lld)", src->name,
                       (long long)src->steps, (long long)r->steps, (long long)p->max_new);
    dev v;
    dev_init(&v, c);
    v.r = r;
    const double inv = 1.0 / (double)r->steps;
    v.weight = 1.0; /* the fixed part is the same every step: accumulate it once */
    const double fixed = step_fixed(&v, c, &s);
    const int L = m->num_hidden_layers;
    const int uni = src->uniform_from < L ? src->uniform_from : L;
    sim_layer_access a;
    for (int64_t st = 0; st < r->steps; st++) {
        double t = fixed;
        for (int l = 0; l <= uni && l < L; l++) {
            if (src->layer_step(src->ctx, st, l, &a, err) != 0)
                return -1;
            v.weight = inv * (l == uni ? (double)(L - uni) : 1.0);
            t += (l == uni ? (double)(L - uni) : 1.0) * step_layer(&v, c, &s, &a);
        }
        if (st == 0) r->first_step_s = t;
        r->last_step_s = t;
        r->decode_s += t;
    }
    r->step_time_s = r->decode_s / (double)r->steps;
    r->tokens_per_s = (double)c->batch * (double)r->steps / r->decode_s;
    v.r = NULL;
    r->prefill_s = prefill(&v, c, &s, &r->stage1_s);
    r->ttft_s = r->prefill_s;
    return 0;
}

/* ---- pieces for a serving simulator (serve/): the same kernels, no accumulation */
static void dev_plain(dev *v, const sim_config *c)
{
    dev_init(v, c);
    v->weight = 1.0;
}

double sim_decode_fixed_s(const sim_config *c, const sim_rank_shape *s)
{
    dev v;
    dev_plain(&v, c);
    return step_fixed(&v, c, s);
}

double sim_prefill_pass_s(const sim_config *c, const sim_rank_shape *s, int64_t tokens, const int64_t *chunk_start,
                          const int64_t *chunk_n, int nchunks)
{
    dev v;
    dev_plain(&v, c);
    const double L = c->model->num_hidden_layers, T = (double)tokens;
    double tl = pf_gemm(&v, c, s, T);
    for (int i = 0; i < nchunks; i++)
        tl += pf_attn(&v, c, s, 1.0, chunk_start[i], (double)chunk_n[i]);
    tl += pf_elementwise(&v, c, s, T);
    tl += 2.0 * allreduce(&v, c->tp, T * c->model->hidden_size * c->act_bytes);
    return L * tl;
}

double sim_lm_head_s(const sim_config *c, const sim_rank_shape *s, int64_t nseq)
{
    dev v;
    dev_plain(&v, c);
    return pf_lm_head(&v, c, s, (double)nseq);
}

double sim_stage1_s(const sim_config *c, const sim_rank_shape *s)
{
    dev v;
    dev_plain(&v, c);
    return stage1(&v, c, s);
}

double sim_kernel_eff(const sim_config *c, double run)
{
    return run > 0.0 ? hw_bandwidth_efficiency(c->hw, run) : c->hw->stream_read_efficiency;
}

int sim_per_head_cuda_core(const sim_config *c)
{
    return c->kv_reads_per_query_head && c->harness == SIM_HARNESS_ENGINE && hw_cvt_rate(c->hw) > 0.0;
}

/* The per-head kernel's FLOPs are 2 per K/V element per query head (one FMA),
 * and each such element is converted to FP32 once: its rate is the FMA lanes'
 * (fp32_flops) or two FLOPs per conversion, whichever is lower. */
double sim_kernel_flops_rate(const sim_config *c, int k)
{
    const hw_model *h = c->hw;
    if (k == SIM_K_ATTN_DENSE && sim_per_head_cuda_core(c)) {
        const double cvt = 2.0 * hw_cvt_rate(h);
        return cvt < h->fp32_flops ? cvt : h->fp32_flops;
    }
    return h->bf16_dense_flops * h->compute_efficiency;
}

double sim_kernel_batch_s(const sim_config *c, int k, double bytes_per_eff, double bytes, double flops,
                          double launches)
{
    if (bytes <= 0.0 && flops <= 0.0)
        return 0.0;
    const hw_model *h = c->hw;
    const double tm = bytes_per_eff / (h->hbm_bandwidth_bytes_per_s * hw_transfer_efficiency(h, bytes));
    const double tc = flops / sim_kernel_flops_rate(c, k);
    return (tm > tc ? tm : tc) + launches * sim_launch_s(c);
}

double sim_launch_s(const sim_config *c)
{
    return c->cuda_graphs ? c->hw->launch_graph_s : c->hw->launch_s;
}
