/* cmd_predict.c — `kvsim predict`: per-step time, tokens/s, TTFT, the
 * breakdown by kernel and by access category, and the memory breakdown of one
 * configuration, side by side with `full` on the same hardware (sim.h does
 * the work; this file parses and prints). */
#include "run_setup.h"
#include "sim_setup.h"

#include <string.h>

static void help(void)
{
    printf("usage: kvsim predict --model M --hw H --method X --budget T --context S [--new N] [--batch B]\n"
           "                     [--tp N] [--pp P] [--trace FILE] [--harness engine|gpt-fast] [--calibration FILE]\n"
           "                     [--cuda-graphs on|off] [--json]\n\n"
           "Roofline prediction of decode speed, time to first token and memory (sim/README.md), with the\n"
           "same for full attention and the ratios speedup_vs_full and peak_memory_ratio_vs_full.\n\n"
           "  --hw H             GPU name or YAML path (h100-sxm)\n"
           "  --batch B          sequences decoded together (1)\n"
           "  --tp N             tensor-parallel ranks; figures are per rank (1)\n"
           "  --pp P             pipeline stages (1): each holds 1/P of the layers; decode rounds of\n"
           "                     min(P, B) micro-batches plus P - 1 activation hops (sim/README.md)\n"
           "  --harness H        engine (a well-built engine, default) | gpt-fast (the paper's harness:\n"
           "                     S x S mask, SDPA-math dense decode, peak measured after prefill)\n"
           "  --calibration F    measured efficiencies (reports/gpu/*.json) replace the defaults; one measured\n"
           "                     on another device than --hw is refused unless --calibration-any\n"
           "  --cuda-graphs X    on (default) | off: launch cost per kernel (an engine whose file says\n"
           "                     cuda_graphs: false launches plainly either way)\n"
           "  --engine NAME      serving engine's memory policy (engines/: vllm, trtllm, sglang, gpt-fast);\n"
           "                     sets the harness; memory then includes its KV pool\n"
           "  --mem-fraction F   the engine's memory fraction in [0.01, 1] (its default)\n"
           "  --weight-dtype T   weight type of the linear layers (bf16): %s\n"
           "  --trace FILE       byte counts from a trace (kvsim trace) instead of the analytic counts;\n"
           "                     the model, method parameters and steps are the trace's\n"
           "  --json             one JSON object\n%s",
           sim_weight_dtype_help, cli_run_setup_help);
}

static void result_json(kv_json *j, const sim_result *r)
{
    kv_json_key(j, "steps"); kv_json_int(j, r->steps);
    kv_json_key(j, "step_time_s"); kv_json_num(j, r->step_time_s);
    kv_json_key(j, "first_step_s"); kv_json_num(j, r->first_step_s);
    kv_json_key(j, "last_step_s"); kv_json_num(j, r->last_step_s);
    kv_json_key(j, "decode_s"); kv_json_num(j, r->decode_s);
    kv_json_key(j, "tokens_per_s"); kv_json_num(j, r->tokens_per_s);
    kv_json_key(j, "ttft_s"); kv_json_num(j, r->ttft_s);
    kv_json_key(j, "stage1_s"); kv_json_num(j, r->stage1_s);
    kv_json_key(j, "flops_per_step"); kv_json_num(j, r->flops_per_step);
    kv_json_key(j, "bytes_per_step");
    kv_json_obj_begin(j);
    double tot = 0.0;
    for (int i = 0; i < SIM_CAT_N; i++) {
        kv_json_key(j, sim_cat_names[i]);
        kv_json_num(j, r->cat_bytes[i]);
        tot += r->cat_bytes[i];
    }
    kv_json_key(j, "total"); kv_json_num(j, tot);
    kv_json_obj_end(j);
    kv_json_key(j, "kernels");
    kv_json_obj_begin(j);
    for (int k = 0; k < SIM_K_N; k++) {
        kv_json_key(j, sim_kernel_names[k]);
        kv_json_obj_begin(j);
        kv_json_key(j, "time_s"); kv_json_num(j, r->kernel_s[k]);
        kv_json_key(j, "launches"); kv_json_num(j, r->kernel_launches[k]);
        kv_json_obj_end(j);
    }
    kv_json_obj_end(j);
    kv_json_key(j, "memory");
    sim_memory_json(j, &r->mem);
}

static void print_text(const cli_run_setup *s, const sim_config *c, const sim_result *r, const sim_result *f,
                       const char *source)
{
    const rkv_params *p = &c->params;
    char pps[16] = "";
    if (c->pp > 1) snprintf(pps, sizeof pps, ", PP %d", c->pp);
    printf("%s on %s (TP %d%s, batch %lld, %s%s%s harness, weights %.3g bits, CUDA graphs %s): %s t=%lld, S=%lld, "
           "new=%lld\n", s->model.name, c->hw->name, c->tp, pps, (long long)c->batch, c->engine ? c->engine->name : "",
           c->engine ? " engine, " : "", sim_harness_name(c->harness), c->weight_bytes_per_param * 8.0,
           c->cuda_graphs ? "on" : "off", p->method->name, (long long)p->budget, (long long)p->S,
           (long long)p->max_new);
    cli_params_print(stdout, p);
    printf("%-26s %14s %14s\n", "", p->method->name, "full");
    printf("%-26s %11.3f ms %11.3f ms\n", "step time (mean)", r->step_time_s * 1e3, f->step_time_s * 1e3);
    printf("%-26s %11.3f ms %11.3f ms\n", "  first step", r->first_step_s * 1e3, f->first_step_s * 1e3);
    printf("%-26s %11.3f ms %11.3f ms\n", "  last step", r->last_step_s * 1e3, f->last_step_s * 1e3);
    printf("%-26s %14.1f %14.1f\n", "tokens/s", r->tokens_per_s, f->tokens_per_s);
    printf("%-26s %12.3f s %12.3f s\n", "TTFT (stage 1 incl.)", r->ttft_s, f->ttft_s);
    printf("bytes per step, per rank (GB):\n");
    for (int i = 0; i < SIM_CAT_N; i++)
        if (r->cat_bytes[i] > 0 || f->cat_bytes[i] > 0)
            printf("  %-24s %14.4f %14.4f\n", sim_cat_names[i], r->cat_bytes[i] / 1e9, f->cat_bytes[i] / 1e9);
    printf("kernel time per step (ms):\n");
    for (int k = 0; k < SIM_K_N; k++)
        if (r->kernel_s[k] > 0 || f->kernel_s[k] > 0)
            printf("  %-24s %14.4f %14.4f\n", sim_kernel_names[k], r->kernel_s[k] * 1e3, f->kernel_s[k] * 1e3);
    printf("memory per rank (GB):\n");
    const sim_memory *a = &r->mem, *b = &f->mem;
    struct { const char *n; double x, y; } rows[] = {
        {"weights", a->weights_bytes, b->weights_bytes}, {"kv", a->kv_bytes, b->kv_bytes},
        {"aux", a->aux_bytes, b->aux_bytes}, {"workspace", a->workspace_bytes, b->workspace_bytes},
        {"reserve", a->reserve_bytes, b->reserve_bytes}, {"mask (gpt-fast)", a->mask_bytes, b->mask_bytes},
        {"prefill peak", a->prefill_peak_bytes, b->prefill_peak_bytes},
        {"decode peak", a->decode_peak_bytes, b->decode_peak_bytes}, {"peak", a->peak_bytes, b->peak_bytes},
        {"capacity", a->capacity_bytes, b->capacity_bytes},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("  %-24s %14.3f %14.3f\n", rows[i].n, rows[i].x / 1e9, rows[i].y / 1e9);
    printf("  %-24s %14s %14s\n", "fits", a->fits ? "yes" : "NO", b->fits ? "yes" : "NO");
    printf("speedup_vs_full %.3f, peak_memory_ratio_vs_full %.3f (%d decode steps summed, %s counts)\n",
           f->step_time_s / r->step_time_s, a->peak_bytes / b->peak_bytes, (int)r->steps, source);
}

/* A command: flags in the order --help lists them, the library calls, the
 * output; its length is the flags'. */
int cmd_predict(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", "calibration-any", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim predict", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 0);
    if (rc != CLI_OK)
        return rc;
    if (s.cfg.nsets != 1) {
        cli_error(o.prog, "one --method and one --budget at a time (kvsim plan takes lists)");
        return CLI_USAGE;
    }
    sim_harness harness;
    int graphs;
    int64_t batch, tp, pp;
    if (cli_sim_options(&o, &harness, &graphs) != CLI_OK || cli_opt_i64_in(&o, "batch", 1, 1, 1 << 20, &batch) ||
        cli_opt_i64_in(&o, "tp", 1, 1, 1024, &tp) || cli_opt_i64_in(&o, "pp", 1, 1, 1024, &pp))
        return CLI_USAGE;
    if (batch < 1 || tp < 1 || tp > 1024) {
        cli_error(o.prog, "--batch must be >= 1 and --tp in 1..1024, got %lld and %lld", (long long)batch,
                  (long long)tp);
        return CLI_USAGE;
    }
    static eng_engine eng;
    const eng_engine *ep;
    double frac;
    sim_weight_dtype wd;
    if ((rc = cli_sim_policy(&o, &s.model, &eng, &ep, &frac, &wd)) != CLI_OK)
        return rc;
    const char *hwname = cli_opt_str(&o, "hw", "h100-sxm");
    const char *cal = cli_opt_str(&o, "calibration", NULL);
    const int cal_any = cli_opt_flag(&o, "calibration-any");
    const char *trace = cli_opt_str(&o, "trace", NULL);
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    static hw_model hw;
    if ((rc = cli_sim_load_hw(&o, hwname, cal, &hw)) != CLI_OK)
        return rc;
    kv_err err;
    if (!cal_any && hw_calibration_check(&hw, &err) != 0) {
        cli_error(o.prog, "--calibration: %s", err.msg);
        return CLI_USAGE;
    }
    sim_trace *tr = NULL;
    sim_config c, cf;
    sim_config_defaults(&c, &s.model, &hw, &s.cfg.sets[0]);
    if (trace) { /* the model, the method's parameters and the steps come from the trace */
        if (sim_trace_open(trace, &tr, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
        s.model = *sim_trace_model(tr);
        c.params = *sim_trace_params(tr);
        c.access = sim_trace_source(tr);
        int64_t want = c.params.max_new > 1 ? c.params.max_new - 1 : 1;
        c.steps = c.access->steps < want ? c.access->steps : want;
        s.rq.context = c.params.S;
        s.rq.max_new = c.params.max_new;
        s.rq.d = c.params.d;
        s.rq.G = c.params.G;
        s.rq.kv_dtype = c.params.kv_dtype;
        s.rq.model_max_len = s.model.max_position_embeddings;
    }
    rkv_params pf;
    if (rkv_params_resolve(rkv_method_baseline()->name, &s.rq, &pf, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        sim_trace_close(tr);
        return CLI_USAGE;
    }
    c.batch = batch;
    c.tp = (int)tp;
    c.pp = (int)pp;
    c.harness = harness;
    c.cuda_graphs = graphs;
    cli_sim_apply_policy(&c, ep, frac, &wd);
    cf = c;
    cf.params = pf;
    cf.access = NULL;
    sim_result r, f;
    if (sim_predict(&c, &r, &err) != 0 || sim_predict(&cf, &f, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        sim_trace_close(tr);
        return tr ? CLI_FAIL : CLI_USAGE;
    }
    const char *source = tr ? "trace" : "analytic";
    sim_trace_close(tr);
    if (!s.json) {
        print_text(&s, &c, &r, &f, source);
        cli_sim_print_pool(&r.mem, c.params.S_total);
        return CLI_OK;
    }
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "model"); kv_json_str(&j, s.model.name);
    kv_json_key(&j, "hw"); kv_json_str(&j, hw.name);
    kv_json_key(&j, "calibration"); kv_json_str(&j, hw.calibration);
    kv_json_key(&j, "harness"); kv_json_str(&j, sim_harness_name(c.harness));
    kv_json_key(&j, "engine"); if (ep) kv_json_str(&j, ep->name); else kv_json_null(&j);
    kv_json_key(&j, "weight_dtype"); kv_json_str(&j, wd.name);
    kv_json_key(&j, "cuda_graphs"); kv_json_bool(&j, c.cuda_graphs);
    kv_json_key(&j, "batch"); kv_json_int(&j, batch);
    kv_json_key(&j, "tp"); kv_json_int(&j, tp);
    if (pp > 1) { kv_json_key(&j, "pp"); kv_json_int(&j, pp); }
    kv_json_key(&j, "source"); kv_json_str(&j, source);
    kv_json_key(&j, "params"); rkv_params_json(&j, &c.params);
    result_json(&j, &r);
    kv_json_key(&j, "speedup_vs_full"); kv_json_num(&j, f.step_time_s / r.step_time_s);
    kv_json_key(&j, "peak_memory_ratio_vs_full"); kv_json_num(&j, r.mem.peak_bytes / f.mem.peak_bytes);
    kv_json_key(&j, "full");
    kv_json_obj_begin(&j);
    result_json(&j, &f);
    kv_json_key(&j, "speedup_vs_full"); kv_json_num(&j, 1.0);
    kv_json_key(&j, "peak_memory_ratio_vs_full"); kv_json_num(&j, 1.0);
    kv_json_obj_end(&j);
    kv_json_obj_end(&j);
    fputc('\n', stdout);
    return CLI_OK;
}
