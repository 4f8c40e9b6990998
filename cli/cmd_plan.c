/* cmd_plan.c — `kvsim plan`: for every (GPU, TP, method, budget, context) the
 * largest batch that fits, tokens/s and time per output token there and at
 * the largest batch meeting a TPOT SLO, the longest context that fits at
 * batch 1, and GPUs needed for a target throughput. sim_plan() does the
 * work; this file parses lists and prints a table, CSV or JSON. */
#include "sim_setup.h"

#include <string.h>

#define MAXL 16

static void help(void)
{
    printf("usage: kvsim plan --model M --hw LIST --context LIST --method LIST --budget LIST [--tp LIST]\n"
           "                  [--pp P] [--new N] [--dtype D] [--tpot-slo S] [--target-tokens-per-s X]\n"
           "                  [--harness engine|gpt-fast] [--cuda-graphs on|off] [--max-batch N] [--json|--csv]\n"
           "                  [--engine NAME [--mem-fraction F]] [--weight-dtype T]\n\n"
           "Capacity planning over every combination of the lists (comma separated):\n"
           "  max_batch       largest batch whose peak memory (prefill and decode, per rank) fits\n"
           "  tokens_per_s    decode throughput of one TP group at max_batch; tpot_s its time per token\n"
           "  slo_batch       largest batch with tpot <= --tpot-slo (seconds), with its tokens/s and tpot\n"
           "  max_context     longest prompt (plus --new tokens) that fits at batch 1\n"
           "  gpus            GPUs for --target-tokens-per-s (at slo_batch when an SLO is given)\n"
           "  kv_cache_tokens, max_concurrency  with --engine: the engine's KV pool in tokens and how many\n"
           "                  requests of context + new tokens it holds, as vLLM prints them at start-up\n"
           "--engine NAME (engines/: vllm, trtllm, sglang, gpt-fast) applies that engine's memory policy and\n"
           "harness; --mem-fraction F its memory fraction; --weight-dtype T the weights' type (bf16).\n"
           "--pp P (1..1024, 1): P pipeline stages of TP ranks each; memory is a stage rank's, tokens/s the\n"
           "pipeline's (decode rounds of min(P, batch) micro-batches), gpus counts TP x PP per instance.\n"
           "Method `full` ignores the budget and is listed once. Figures come from kvsim predict's model\n"
           "(sim/README.md). Defaults: --hw h100-sxm --context 32K --method rocketkv,full --budget 1024\n"
           "--tp 1 --new 50.\n"
           "With --slo (kvsim plan --slo ttft_p95=2,tpot_p95=0.05 --rate R --help): the largest request rate\n"
           "per instance within latency SLOs from the serving simulator, and GPUs for R.\n");
}

typedef struct {
    const char *hw, *method;
    int dense;  /* the method's traits.dense: the budget does not apply */
    int tp, pp;
    int64_t budget, context, new_tokens;
    sim_plan_row r;
} row_t;

static void print_json(const row_t *rows, int n)
{
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_arr_begin(&j);
    for (int i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "hw"); kv_json_str(&j, w->hw);
        kv_json_key(&j, "tp"); kv_json_int(&j, w->tp);
        if (w->pp > 1) { kv_json_key(&j, "pp"); kv_json_int(&j, w->pp); }
        kv_json_key(&j, "method"); kv_json_str(&j, w->method);
        kv_json_key(&j, "budget");
        if (!w->dense) kv_json_int(&j, w->budget);
        else kv_json_null(&j);
        kv_json_key(&j, "context"); kv_json_int(&j, w->context);
        kv_json_key(&j, "fits"); kv_json_bool(&j, w->r.fits);
        kv_json_key(&j, "max_batch"); kv_json_int(&j, w->r.max_batch);
        kv_json_key(&j, "tokens_per_s"); kv_json_num(&j, w->r.tokens_per_s);
        kv_json_key(&j, "tpot_s"); kv_json_num(&j, w->r.tpot_s);
        kv_json_key(&j, "slo_batch"); kv_json_int(&j, w->r.slo_batch);
        kv_json_key(&j, "slo_tokens_per_s"); kv_json_num(&j, w->r.slo_tokens_per_s);
        kv_json_key(&j, "slo_tpot_s"); kv_json_num(&j, w->r.slo_tpot_s);
        kv_json_key(&j, "max_context_at_batch1"); kv_json_int(&j, w->r.max_context_at_batch1);
        kv_json_key(&j, "gpus_for_target"); kv_json_int(&j, w->r.gpus_for_target);
        kv_json_key(&j, "kv_cache_tokens"); kv_json_int(&j, w->r.mem.kv_cache_tokens);
        kv_json_key(&j, "max_concurrency"); kv_json_num(&j, w->r.mem.max_concurrency);
        kv_json_key(&j, "memory"); sim_memory_json(&j, &w->r.mem);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    fputc('\n', stdout);
}

static void print_csv(const row_t *rows, int n)
{
    printf("hw,tp,method,budget,context,fits,max_batch,tokens_per_s,tpot_s,slo_batch,slo_tokens_per_s,slo_tpot_s,"
           "max_context_at_batch1,gpus_for_target,weights_bytes,kv_bytes,aux_bytes,workspace_bytes,reserve_bytes,"
           "peak_bytes,capacity_bytes,kv_cache_tokens,max_concurrency,pp\n");
    for (int i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        const sim_memory *m = &w->r.mem;
        char budget[32] = "";
        if (!w->dense) snprintf(budget, sizeof budget, "%lld", (long long)w->budget);
        printf("%s,%d,%s,%s,%lld,%d,%lld,%.6g,%.6g,%lld,%.6g,%.6g,%lld,%lld,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%lld,%.6g,%d\n",
               w->hw,
               w->tp, w->method, budget, (long long)w->context, w->r.fits, (long long)w->r.max_batch,
               w->r.tokens_per_s, w->r.tpot_s, (long long)w->r.slo_batch, w->r.slo_tokens_per_s, w->r.slo_tpot_s,
               (long long)w->r.max_context_at_batch1, (long long)w->r.gpus_for_target, m->weights_bytes, m->kv_bytes,
               m->aux_bytes, m->workspace_bytes, m->reserve_bytes, m->peak_bytes, m->capacity_bytes,
               (long long)m->kv_cache_tokens, m->max_concurrency, w->pp);
    }
}

static void print_table(const row_t *rows, int n, int slo, int target)
{
    printf("%-9s %3s %-11s %6s %7s %4s %6s %9s %8s", "hw", "tp", "method", "budget", "context", "fits", "batch",
           "tok/s", "tpot_ms");
    if (slo) printf(" %6s %9s", "slo_b", "slo_tok/s");
    printf(" %9s", "max_ctx@1");
    if (target) printf(" %5s", "gpus");
    printf(" %8s %8s %8s\n", "peak_GB", "kv_GB", "cap_GB");
    for (int i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        char budget[32] = "-";
        if (!w->dense) snprintf(budget, sizeof budget, "%lld", (long long)w->budget);
        printf("%-9s %3d %-11s %6s %7lld %4s %6lld %9.1f %8.3f", w->hw, w->tp, w->method, budget,
               (long long)w->context, w->r.fits ? "yes" : "NO", (long long)w->r.max_batch, w->r.tokens_per_s,
               w->r.tpot_s * 1e3);
        if (slo) printf(" %6lld %9.1f", (long long)w->r.slo_batch, w->r.slo_tokens_per_s);
        printf(" %9lld", (long long)w->r.max_context_at_batch1);
        if (target) printf(" %5lld", (long long)w->r.gpus_for_target);
        printf(" %8.2f %8.2f %8.2f\n", w->r.mem.peak_bytes / 1e9, (w->r.mem.kv_bytes + w->r.mem.aux_bytes) / 1e9,
               w->r.mem.capacity_bytes / 1e9);
    }
    if (n > 0 && rows[0].pp > 1)
        printf("(per rank of one of %d pipeline stages; batch = largest that fits, tok/s of the TP x PP pipeline at that "
               "batch; memory at that batch)\n", rows[0].pp);
    else
        printf("(per rank; batch = largest that fits, tok/s of one TP group at that batch; memory at that batch)\n");
    for (int i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        if (w->r.mem.kv_pool_bytes <= 0.0)
            continue;
        char pps[32] = "";
        if (w->pp > 1) snprintf(pps, sizeof pps, " PP %d", w->pp);
        printf("%s TP %d%s %s S=%lld: ", w->hw, w->tp, pps, w->method, (long long)w->context);
        printf("GPU KV cache size: %lld tokens; Maximum concurrency for %lld tokens per request: %.2fx\n",
               (long long)w->r.mem.kv_cache_tokens, (long long)(w->context + w->new_tokens), w->r.mem.max_concurrency);
    }
}

/* A command: flags in the order --help lists them, the library calls, the
 * output; its length is the flags'. */
int cmd_plan(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* planning under latency SLOs: the serving simulator (cmd_plan_slo.c) */
        if (!strcmp(argv[i], "--slo") || !strncmp(argv[i], "--slo=", 6))
            return cmd_plan_slo(argc, argv);
    static const char *const flags[] = {"json", "csv", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim plan", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static char hws[MAXL][64], methods[MAXL][64];
    int64_t ctx[MAXL], budgets[MAXL], tps[MAXL];
    const char *hl = cli_opt_str(&o, "hw", "h100-sxm"), *ml = cli_opt_str(&o, "method", "rocketkv,full");
    int nh = cli_split_names(hl, hws[0], sizeof hws[0], MAXL);
    int nm = cli_split_names(ml, methods[0], sizeof methods[0], MAXL);
    if (nh < 1 || nm < 1) {
        cli_error(o.prog, "--hw and --method take comma lists of at most %d names", MAXL);
        return CLI_USAGE;
    }
    /* contexts are checked against the model by sim_plan (rkv_check_request) */
    int nc = cli_opt_i64_list(&o, "context", "32K", 1, INT32_MAX, 0, ctx, MAXL);
    int nb = nc < 1 ? -1 : cli_opt_i64_list(&o, "budget", "1024", 1, INT32_MAX, 0, budgets, MAXL);
    int nt = nb < 1 ? -1 : cli_opt_i64_list(&o, "tp", "1", 1, 1024, 0, tps, MAXL);
    if (nt < 1)
        return CLI_USAGE;
    sim_plan_in in;
    memset(&in, 0, sizeof in);
    int64_t newt, maxb, pp;
    /* 0 turns the SLO and the target off; --new is checked against the model by sim_plan */
    if (cli_sim_options(&o, &in.harness, &in.cuda_graphs) != CLI_OK ||
        cli_opt_f64_in(&o, "tpot-slo", 0, 0, 3600, &in.tpot_slo_s) ||
        cli_opt_f64_in(&o, "target-tokens-per-s", 0, 0, 1e12, &in.target_tokens_per_s) ||
        cli_opt_i64_in(&o, "new", 50, 0, INT32_MAX, &newt) || cli_opt_i64_in(&o, "max-batch", 4096, 1, 1 << 20, &maxb) ||
        cli_opt_i64_in(&o, "pp", 1, 1, 1024, &pp))
        return CLI_USAGE;
    const char *dt = cli_opt_str(&o, "dtype", "bf16");
    static mdl_model model;
    kv_err err;
    if (mdl_model_load(cli_opt_str(&o, "model", "llama3.1-8b"), &model, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    static eng_engine eng;
    sim_weight_dtype wd;
    int prc = cli_sim_policy(&o, &model, &eng, &in.engine, &in.mem_fraction, &wd);
    if (prc != CLI_OK)
        return prc;
    in.weight_bytes_per_param = wd.bits / 8.0;
    in.weight_compute = wd.compute;
    in.weight_dequant_ops = wd.dequant_ops;
    const int json = cli_opt_flag(&o, "json"), csv = cli_opt_flag(&o, "csv");
    if (json && csv) {
        cli_error(o.prog, "--json and --csv: choose one");
        return CLI_USAGE;
    }
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    rkv_request_defaults(&in.rq);
    if (rkv_dtype_parse(dt, &in.rq.kv_dtype) != 0) {
        cli_error(o.prog, "--dtype: unknown '%s' (expected bf16, fp16, fp32, fp8-e4m3, fp8-e5m2)", dt);
        return CLI_USAGE;
    }
    in.rq.d = model.head_dim;
    in.rq.G = mdl_group_size(&model);
    in.rq.model_max_len = model.max_position_embeddings;
    in.rq.max_new = newt;
    in.model = &model;
    in.max_batch_limit = maxb;
    in.pp = (int)pp;
    const rkv_method_type *mts[MAXL];
    for (int i = 0; i < nm; i++)
        if (!(mts[i] = rkv_method_get(methods[i], &err))) {
            cli_error(o.prog, "--method: %s", err.msg);
            return CLI_USAGE;
        }
    static hw_model hw[MAXL];
    static row_t rows[MAXL * MAXL * 64];
    int n = 0;
    for (int ih = 0; ih < nh; ih++) {
        int rc = cli_sim_load_hw(&o, hws[ih], NULL, &hw[ih]);
        if (rc != CLI_OK)
            return rc;
    }
    for (int ih = 0; ih < nh; ih++)
        for (int it = 0; it < nt; it++)
            for (int im = 0; im < nm; im++)
                for (int ib = 0; ib < nb; ib++) {
                    if (ib > 0 && mts[im]->traits.dense)
                        continue;
                    for (int ic = 0; ic < nc; ic++) {
                        if (n >= (int)(sizeof rows / sizeof rows[0])) {
                            cli_error(o.prog, "too many combinations");
                            return CLI_USAGE;
                        }
                        row_t *w = &rows[n];
                        in.hw = &hw[ih];
                        in.tp = (int)tps[it];
                        in.method = methods[im];
                        in.rq.budget = budgets[ib];
                        in.rq.context = ctx[ic];
                        if (sim_plan(&in, &w->r, &err) != 0) {
                            cli_error(o.prog, "%s on %s, TP %d, t=%lld, S=%lld: %s", methods[im], hws[ih],
                                      in.tp, (long long)budgets[ib], (long long)ctx[ic], err.msg);
                            return CLI_USAGE;
                        }
                        w->hw = hw[ih].name;
                        w->method = methods[im];
                        w->dense = mts[im]->traits.dense;
                        w->tp = in.tp;
                        w->pp = in.pp;
                        w->budget = budgets[ib];
                        w->context = ctx[ic];
                        w->new_tokens = newt;
                        n++;
                    }
                }
    if (json) print_json(rows, n);
    else if (csv) print_csv(rows, n);
    else print_table(rows, n, in.tpot_slo_s > 0, in.target_tokens_per_s > 0);
    return CLI_OK;
}
