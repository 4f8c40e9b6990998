/* serve_setup.c — option parsing and summaries shared by cmd_serve.c and
 * cmd_plan_slo.c (serve/srv.h does the work). */
#include "serve_setup.h"
#include "sim_setup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char cli_serve_help[] =
    "instance:\n"
    "  --model M               model name or YAML (llama3.1-8b)\n"
    "  --hw H                  GPU name or YAML (h100-sxm)\n"
    "  --method X              full, rocketkv, ... (full)\n"
    "  --budget T              token budget of a compressing method (1024)\n"
    "  --dtype D               KV dtype (bf16)\n"
    "  --weight-dtype T        linear layers' weights: bf16, fp8, int8, int4-g128, ... (the model's, else bf16)\n"
    "  --skip-layers N         layers below stay dense (0)\n"
    "  --tp N                  tensor-parallel ranks of the instance (1)\n"
    "  --cuda-graphs on|off    launch cost per kernel (on; an engine file with cuda_graphs: false launches plainly)\n"
    "  --engine E              vllm | sglang | trtllm or a YAML (engines/): memory policy, block size, step\n"
    "                          loop (its serving: block) and the defaults of the next three (vllm)\n"
    "  --max-num-seqs N        running sequences at most (the engine's, vllm 1024)\n"
    "  --max-batched-tokens N  tokens per engine step, decode + prefill chunks (the engine's, vllm 8192)\n"
    "  --block-tokens N        KV block size (the engine's, vllm 16)\n"
    "  --mem-fraction F        the engine's memory fraction (its default, vllm 0.9)\n"
    "  --kv-pool-bytes B       the KV pool per rank, overriding the memory policy\n"
    "  --preemption recompute|swap  when the pool is full (recompute, vLLM's default): swap copies the victim's\n"
    "                          KV blocks to host memory over the GPU's host link (the hw model's pcie_bytes_per_s)\n"
    "                          and back before it resumes; a victim that does not fit the swap space is recomputed\n"
    "  --swap-space-bytes B    host swap space per rank (4294967296: vLLM's --swap-space 4 GiB per GPU)\n"
    "traffic:\n"
    "  --rate R[,R...]         requests/s (a list runs each rate: a sweep)\n"
    "  --arrival poisson|gamma (poisson); --burstiness K  gamma shape, CV = 1/sqrt(K) (1)\n"
    "  --num-requests N        requests (1000)\n"
    "  --prompt SPEC           fixed:N | uniform:A:B | lognormal:MEDIAN:SIGMA | csv:FILE (fixed:1024)\n"
    "  --output SPEC           the same for output tokens (fixed:128)\n"
    "  --seed S                (0)\n"
    "  --requests FILE         replay a log instead: CSV arrival_s,prompt_tokens,output_tokens\n";

/* --weight-dtype (the model's own type by default): bytes per weight with
 * scales, the peak the products run at, dequantisation instructions. */
static int set_weight_dtype(cli_opts *o, cli_serve_setup *s)
{
    sim_weight_dtype wd;
    kv_err err;
    const char *wt = cli_opt_str(o, "weight-dtype", s->model.weight_dtype[0] ? s->model.weight_dtype : "bf16");
    if (sim_weight_dtype_parse(wt, (double)s->model.hidden_size, &wd, &err) != 0) {
        cli_error(o->prog, "--weight-dtype: %s", err.msg);
        return CLI_USAGE;
    }
    s->cfg.weight_bytes_per_param = wd.bits / 8.0;
    s->cfg.weight_compute = wd.compute;
    s->cfg.weight_dequant_ops = wd.dequant_ops;
    return CLI_OK;
}

/* --preemption recompute|swap and --swap-space-bytes (srv.h's "Preemption by swap"). */
static int set_preemption(cli_opts *o, srv_config *c, const eng_engine *e)
{
    const char *pm = cli_opt_str(o, "preemption", "recompute");
    if (!strcmp(pm, "recompute")) c->preempt_swap = 0;
    else if (!strcmp(pm, "swap")) c->preempt_swap = 1;
    else {
        cli_error(o->prog, "--preemption: expected recompute or swap, got '%s'", pm);
        return CLI_USAGE;
    }
    /* vLLM's default swap space: EngineArgs.swap_space = 4 (GiB per GPU), vllm/engine/arg_utils.py */
    if (cli_opt_f64_in(o, "swap-space-bytes", 4294967296.0, 0.0, 1e15, &c->swap_bytes))
        return CLI_USAGE;
    if (c->preempt_swap && c->prefill_alone) {
        cli_error(o->prog, "--preemption swap: the engine %s prefills alone (its serving: block); swap is modelled "
                  "for mixed steps only", e->name);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_serve_instance(cli_opts *o, cli_serve_setup *s, int with_hw_method_tp)
{
    srv_config *c = &s->cfg;
    memset(c, 0, sizeof *c);
    kv_err err;
    if (mdl_model_load(cli_opt_str(o, "model", "llama3.1-8b"), &s->model, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    rkv_request_defaults(&c->rq);
    int64_t budget, skip, tp = 1;
    const char *dt = cli_opt_str(o, "dtype", "bf16");
    if (rkv_dtype_parse(dt, &c->rq.kv_dtype) != 0) {
        cli_error(o->prog, "--dtype: unknown '%s' (expected bf16, fp16, fp32, fp8-e4m3, fp8-e5m2)", dt);
        return CLI_USAGE;
    }
    sim_harness harness;
    if (cli_sim_options(o, &harness, &c->cuda_graphs) != CLI_OK)
        return CLI_USAGE;
    if (harness != SIM_HARNESS_ENGINE) {
        cli_error(o->prog, "--harness: a serving instance is an engine (--harness engine)");
        return CLI_USAGE;
    }
    if (eng_load(cli_opt_str(o, "engine", "vllm"), &s->engine, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    const eng_engine *e = &s->engine;
    if (e->budget == ENG_BUDGET_NONE || e->harness != ENG_HARNESS_FUSED) {
        cli_error(o->prog, "--engine %s: no KV pool or no continuous batching; a serving instance needs one", e->name);
        return CLI_USAGE;
    }
    const int64_t def_seqs = e->serving.max_running > 0 ? e->serving.max_running
                             : e->sampler_seqs > 0      ? e->sampler_seqs
                                                        : 256;
    const int64_t def_tokens = e->prefill_chunk_tokens > 0 ? (int64_t)e->prefill_chunk_tokens : e->activation_tokens;
    if (cli_opt_i64_in(o, "budget", 1024, 1, 1 << 24, &budget) || cli_opt_i64_in(o, "skip-layers", 0, 0, 4096, &skip) ||
        (with_hw_method_tp && cli_opt_i64_in(o, "tp", 1, 1, 1024, &tp)) ||
        cli_opt_i64_in(o, "max-num-seqs", def_seqs, 1, 1 << 16, &c->max_num_seqs) ||
        cli_opt_i64_in(o, "max-batched-tokens", def_tokens, 1, 1 << 24, &c->max_batched_tokens) ||
        cli_opt_i64_in(o, "block-tokens", e->block_tokens, 1, 4096, &c->block_tokens) ||
        cli_opt_f64_in(o, "mem-fraction", 0.0, 0.0, 1.0, &s->mem_fraction) ||
        cli_opt_f64_in(o, "kv-pool-bytes", 0.0, 0.0, 1e15, &s->pool_bytes_flag))
        return CLI_USAGE;
    c->rq.budget = budget;
    c->rq.skip_layers = skip;
    c->rq.d = s->model.head_dim;
    c->rq.G = mdl_group_size(&s->model);
    c->rq.model_max_len = s->model.max_position_embeddings;
    c->model = &s->model;
    c->hw = &s->hw;
    c->tp = (int)tp;
    if (set_weight_dtype(o, s) != CLI_OK)
        return CLI_USAGE;
    c->engine = &s->engine;
    c->mem_fraction = s->mem_fraction;
    c->host_step_s = e->serving.host_step_s; /* the engine's step loop (engines/ `serving:`) */
    c->host_seq_s = e->serving.host_seq_s;
    c->prefill_alone = e->serving.prefill_alone;
    c->scheduler_steps = e->serving.scheduler_steps;
    c->admit_reserve = e->serving.admit_reserve;
    if (set_preemption(o, c, e) != CLI_OK)
        return CLI_USAGE;
    if (with_hw_method_tp) {
        const char *m = cli_opt_str(o, "method", "full");
        if (!rkv_method_find(m)) {
            cli_error(o->prog, "--method: unknown '%s' (kvsim params --help lists them)", m);
            return CLI_USAGE;
        }
        snprintf(s->method, sizeof s->method, "%s", m);
        c->method = s->method;
        int rc = cli_sim_load_hw(o, cli_opt_str(o, "hw", "h100-sxm"), NULL, &s->hw);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

int cli_serve_pool(const char *prog, cli_serve_setup *s)
{
    kv_err err;
    if (s->pool_bytes_flag > 0.0) {
        s->cfg.pool_bytes = s->pool_bytes_flag;
        return CLI_OK;
    }
    if (srv_pool_bytes(&s->cfg, &s->cfg.pool_bytes, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_serve_traffic(cli_opts *o, cli_serve_setup *s)
{
    kv_err err;
    srv_traffic *t = &s->tr;
    memset(t, 0, sizeof *t);
    int64_t seed;
    const char *arr = cli_opt_str(o, "arrival", "poisson");
    if (!strcmp(arr, "poisson")) t->arrival = SRV_ARRIVAL_POISSON;
    else if (!strcmp(arr, "gamma")) t->arrival = SRV_ARRIVAL_GAMMA;
    else {
        cli_error(o->prog, "--arrival: expected poisson or gamma, got '%s'", arr);
        return CLI_USAGE;
    }
    if (cli_opt_f64_in(o, "burstiness", 1.0, 1e-3, 1e3, &t->burstiness) ||
        cli_opt_i64_in(o, "num-requests", 1000, 1, 100000000, &t->n) ||
        cli_opt_i64_in(o, "seed", 0, 0, INT64_MAX, &seed))
        return CLI_USAGE;
    t->seed = (uint64_t)seed;
    t->max_len = s->model.max_position_embeddings;
    s->requests = cli_opt_str(o, "requests", NULL);
    snprintf(s->prompt_spec, sizeof s->prompt_spec, "%s", cli_opt_str(o, "prompt", "fixed:1024"));
    snprintf(s->output_spec, sizeof s->output_spec, "%s", cli_opt_str(o, "output", "fixed:128"));
    if (srv_len_parse("--prompt", s->prompt_spec, &s->prompt, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    if (srv_len_parse("--output", s->output_spec, &s->output, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    t->prompt = &s->prompt;
    t->output = &s->output;
    return CLI_OK;
}

void cli_serve_setup_free(cli_serve_setup *s)
{
    srv_len_free(&s->prompt);
    srv_len_free(&s->output);
}

int cli_serve_workload(const char *prog, const cli_serve_setup *s, double rate, srv_workload *w)
{
    kv_err err;
    int rc;
    if (s->requests) {
        rc = srv_workload_load(s->requests, s->model.max_position_embeddings, w, &err);
    } else {
        srv_traffic t = s->tr;
        t.rate = rate;
        rc = srv_workload_generate(&t, w, &err);
    }
    if (rc != 0) {
        cli_error(prog, "%s", err.msg);
        return s->requests ? CLI_USAGE : CLI_FAIL;
    }
    return CLI_OK;
}

static void dist_json(kv_json *j, const char *key, const srv_dist *d)
{
    kv_json_key(j, key);
    kv_json_obj_begin(j);
    kv_json_key(j, "mean"); kv_json_num(j, d->mean);
    kv_json_key(j, "p50"); kv_json_num(j, d->p50);
    kv_json_key(j, "p90"); kv_json_num(j, d->p90);
    kv_json_key(j, "p95"); kv_json_num(j, d->p95);
    kv_json_key(j, "p99"); kv_json_num(j, d->p99);
    kv_json_obj_end(j);
}

void cli_serve_json_body(kv_json *j, const cli_serve_setup *s, double rate, const srv_result *r,
                         const srv_summary *m)
{
    kv_json_key(j, "model"); kv_json_str(j, s->model.name);
    kv_json_key(j, "hw"); kv_json_str(j, s->hw.name);
    kv_json_key(j, "method"); kv_json_str(j, s->cfg.method);
    kv_json_key(j, "budget"); kv_json_int(j, s->cfg.rq.budget);
    kv_json_key(j, "tp"); kv_json_int(j, s->cfg.tp);
    kv_json_key(j, "engine"); kv_json_str(j, s->engine.name);
    kv_json_key(j, "max_num_seqs"); kv_json_int(j, s->cfg.max_num_seqs);
    kv_json_key(j, "max_batched_tokens"); kv_json_int(j, s->cfg.max_batched_tokens);
    if (s->requests) { kv_json_key(j, "requests_file"); kv_json_str(j, s->requests); }
    else { kv_json_key(j, "rate"); kv_json_num(j, rate); }
    kv_json_key(j, "requests"); kv_json_int(j, r->n);
    kv_json_key(j, "requests_completed"); kv_json_int(j, r->completed);
    dist_json(j, "ttft_s", &m->ttft);
    dist_json(j, "tpot_s", &m->tpot);
    dist_json(j, "itl_s", &m->itl);
    dist_json(j, "e2e_s", &m->e2e);
    kv_json_key(j, "requests_per_s"); kv_json_num(j, m->requests_per_s);
    kv_json_key(j, "output_tokens_per_s"); kv_json_num(j, m->output_tokens_per_s);
    kv_json_key(j, "input_tokens_per_s"); kv_json_num(j, m->input_tokens_per_s);
    kv_json_key(j, "duration_s"); kv_json_num(j, m->duration_s);
    kv_json_key(j, "steps"); kv_json_int(j, r->steps);
    kv_json_key(j, "busy_s"); kv_json_num(j, r->busy_s);
    kv_json_key(j, "preemptions"); kv_json_int(j, r->preemptions);
    kv_json_key(j, "preemption"); kv_json_str(j, s->cfg.preempt_swap ? "swap" : "recompute");
    if (s->cfg.preempt_swap) {
        kv_json_key(j, "swap");
        kv_json_obj_begin(j);
        kv_json_key(j, "space_bytes"); kv_json_num(j, s->cfg.swap_bytes);
        kv_json_key(j, "space_blocks"); kv_json_int(j, r->swap_blocks);
        kv_json_key(j, "max_blocks"); kv_json_int(j, r->max_swap_blocks);
        kv_json_key(j, "swap_outs"); kv_json_int(j, r->swap_outs);
        kv_json_key(j, "swap_ins"); kv_json_int(j, r->swap_ins);
        kv_json_key(j, "recompute_fallbacks"); kv_json_int(j, r->swap_fallbacks);
        kv_json_key(j, "time_s"); kv_json_num(j, r->swap_s);
        kv_json_obj_end(j);
    }
    kv_json_key(j, "kv_pool_bytes"); kv_json_num(j, s->cfg.pool_bytes);
    kv_json_key(j, "kv_pool_blocks"); kv_json_int(j, r->pool_blocks);
    kv_json_key(j, "kv_occupancy_mean"); kv_json_num(j, m->kv_occupancy_mean);
    kv_json_key(j, "kv_occupancy_max"); kv_json_num(j, m->kv_occupancy_max);
    kv_json_key(j, "running_mean"); kv_json_num(j, m->running_mean);
    kv_json_key(j, "running_max"); kv_json_int(j, r->max_running);
    kv_json_key(j, "little");
    kv_json_obj_begin(j);
    kv_json_key(j, "mean_in_system"); kv_json_num(j, m->mean_in_system);
    kv_json_key(j, "rate_times_mean_e2e"); kv_json_num(j, m->rate_times_e2e);
    kv_json_key(j, "measured_rate_times_mean_e2e"); kv_json_num(j, m->measured_rate_times_e2e);
    kv_json_obj_end(j);
    kv_json_key(j, "lost_tokens"); kv_json_int(j, m->lost_tokens);
}
