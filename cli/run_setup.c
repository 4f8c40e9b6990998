/* run_setup.c — shared option handling of params / fidelity / trace. */
#define _POSIX_C_SOURCE 200809L
#include "run_setup.h"
#include "llm_kvdump.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_run_setup_help[] =
    "  --model M          model name or YAML path (llama3.1-8b)\n"
    "  --method X[,Y]     method(s): full, exact-topk, streaming, snapkv, snapkv-gqa,\n"
    "                     quest, sparq, hsa, rocketkv, rocketkv-mt (rocketkv)\n"
    "  --budget T[,T2]    token budget(s) t: K+V tokens read per step (1024)\n"
    "  --context S        prompt tokens (32K)\n"
    "  --new N            new tokens the budget split plans for (50)\n"
    "  --dtype D          KV storage: bf16, fp16, fp32, fp8-e4m3, fp8-e5m2 (bf16)\n"
    "  --aux-dtype D      page min/max storage (the KV dtype)\n"
    "  --split S          default | even (rho = 0.5, RocketKV v1)\n"
    "  --rho R            fixed stage-1 share of log c\n"
    "  --granularity G    token | page (stage-2 top-k unit; token)\n"
    "  --local-window W   stage 2 always attends the newest W tokens, as extra budget (0)\n"
    "  --page-size P --topr R --topk K --window W --kernel K --pool max|avg --skip-layers N\n"
    "                     override the resolved values\n";

const char cli_run_help[] =
    "  --steps N          decode steps simulated (8; at most --new)\n"
    "  --workload W       synthetic workload: a YAML file or a name under refimpl/workloads/ (default\n"
    "                     smollm2-heads, SmolLM2's measured heads with fitted classes; smollm2-fitted,\n"
    "                     the recency-ladder fit; handtuned: the hand-set generator), or real Q/K/V:\n"
    "                     gguf:MODEL.gguf,text:FILE[,offset:N][,dtype:bf16|fp16|fp32] runs the model over\n"
    "                     tokens N .. N+context+steps-1 of the text; kvdump:FILE reads a saved KV dump\n"
    "                     (kvsim kvdump). The model's shape then comes from the file (no --model).\n"
    "  --layers LIST      layers to run, e.g. 0,5,31 or 0-3 (all)\n"
    "  --seed N           workload seed (1)\n"
    "  --threads N        worker threads (number of CPUs)\n";

void cli_run_setup_free(cli_run_setup *s)
{
    llm_kvd_free(s->dump);
    s->dump = NULL;
}

/* --workload gguf:M,text:F[,offset:N][,dtype:D] or kvdump:F: load or capture the real Q/K/V and
 * describe the model from it. */
static int real_workload(cli_opts *o, cli_run_setup *s, const char *spec)
{
    kv_err err;
    if (cli_opt_str(o, "model", NULL)) {
        cli_error(o->prog, "--model conflicts with --workload %.6s...: the model comes from the workload", spec);
        return CLI_USAGE;
    }
    llm_kvd_spec sp;
    int64_t context = 0, steps = 0;
    if (llm_kvd_spec_parse("--workload", spec, &sp, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    if (!sp.is_dump && (cli_opt_i64_in(o, "context", 32768, 1, INT64_C(1) << 31, &context) ||
                        cli_opt_i64_in(o, "steps", 8, 1, INT64_C(1) << 31, &steps)))
        return CLI_USAGE;
    if (llm_kvd_spec_load(&sp, context + steps, &s->dump, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    llm_kvd_model(&s->dump->info, &s->model);
    return CLI_OK;
}

/* The request's shape from the model, then every params flag (context, new,
 * dtypes, split, granularity, pool, rho, the integer overrides). */
static int parse_request(cli_opts *o, cli_run_setup *s)
{
    rkv_request *rq = &s->rq;
    rkv_request_defaults(rq);
    rq->d = s->model.head_dim;
    rq->G = mdl_group_size(&s->model);
    rq->model_max_len = s->model.max_position_embeddings;
    int64_t v;
    double dv;
    /* both also checked against the model's max_position_embeddings (rkv_check_request) */
    if (cli_opt_i64_in(o, "context", 32768, 1, INT32_MAX, &rq->context) ||
        cli_opt_i64_in(o, "new", 50, 0, INT32_MAX, &rq->max_new))
        return CLI_USAGE;
    const char *dt = cli_opt_str(o, "dtype", "bf16");
    if (rkv_dtype_parse(dt, &rq->kv_dtype) != 0) {
        cli_error(o->prog, "--dtype: unknown '%s' (expected bf16, fp16, fp32, fp8-e4m3, fp8-e5m2)", dt);
        return CLI_USAGE;
    }
    const char *adt = cli_opt_str(o, "aux-dtype", NULL);
    if (adt) {
        if (rkv_dtype_parse(adt, &rq->aux_dtype) != 0) {
            cli_error(o->prog, "--aux-dtype: unknown '%s'", adt);
            return CLI_USAGE;
        }
        rq->aux_dtype_set = 1;
    }
    const char *split = cli_opt_str(o, "split", "default");
    if (!strcmp(split, "even")) rq->split = RKV_SPLIT_EVEN;
    else if (strcmp(split, "default")) {
        cli_error(o->prog, "--split: expected default or even, got '%s'", split);
        return CLI_USAGE;
    }
    const char *gran = cli_opt_str(o, "granularity", "token");
    if (!strcmp(gran, "page")) rq->granularity = RKV_GRAN_PAGE;
    else if (strcmp(gran, "token")) {
        cli_error(o->prog, "--granularity: expected token or page, got '%s'", gran);
        return CLI_USAGE;
    }
    const char *pool = cli_opt_str(o, "pool", NULL);
    if (pool) {
        if (!strcmp(pool, "max")) rq->pool = RKV_POOL_MAX;
        else if (!strcmp(pool, "avg")) rq->pool = RKV_POOL_AVG;
        else {
            cli_error(o->prog, "--pool: expected max or avg, got '%s'", pool);
            return CLI_USAGE;
        }
    }
    if (cli_opt_f64_in(o, "rho", -1.0, 0.0, 1.0, &dv)) return CLI_USAGE;
    rq->rho = dv;
    /* token counts up to the longest context any model here has (2^24),
     * dims up to head_dim, layers up to the model's layer count */
    const int64_t tok = (int64_t)1 << 24;
    struct { const char *name; int64_t *dst; int64_t lo, hi; } ints[] = {
        {"page-size", &rq->page_size, 1, tok}, {"topr", &rq->topr, 1, rq->d}, {"topk", &rq->topk, 1, tok},
        {"window", &rq->window, 1, tok}, {"kernel", &rq->kernel, 1, tok}, {"local-window", &rq->local_window, 0, tok},
        {"skip-layers", &rq->skip_layers, 0, s->model.num_hidden_layers},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (cli_opt_i64_in(o, ints[i].name, *ints[i].dst, ints[i].lo, ints[i].hi, &v)) return CLI_USAGE;
        *ints[i].dst = v;
    }
    return CLI_OK;
}

/* --workload (real Q/K/V, or a YAML path or name) and --seed; a multi-turn
 * workload sets the first turn's shape. */
static int parse_workload(cli_opts *o, cli_run_setup *s, int real)
{
    kv_err err;
    rkv_request *rq = &s->rq;
    const char *wf = cli_opt_str(o, "workload", NULL);
    if (real) {
        snprintf(s->wl.generator, sizeof s->wl.generator, "kvdump");
        snprintf(s->wl.path, sizeof s->wl.path, "%s", s->dump->info.source);
        llm_kvd_source(s->dump, &s->wl.real);
    } else {
        char wpath[1024]; /* a path or a name (refimpl/workloads/NAME.yaml); the fitted one by default */
        if (rkv_workload_find(wf ? wf : RKV_DEFAULT_WORKLOAD, wpath, sizeof wpath, &err) != 0 ||
            rkv_workload_load(wpath, &s->wl, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
    }
    int64_t seed;
    if (cli_opt_i64_in(o, "seed", (int64_t)s->wl.seed, 0, INT64_MAX, &seed)) return CLI_USAGE;
    s->wl.seed = (uint64_t)seed;
    if (s->wl.nturns > 0) { /* a multi-turn workload sets the first turn's shape */
        rq->context = s->wl.turn_input[0];
        rq->max_new = s->wl.turn_output[0];
    }
    return CLI_OK;
}

/* --method × --budget: every combination resolved into cfg.sets. */
static int resolve_sets(cli_opts *o, cli_run_setup *s)
{
    kv_err err;
    rkv_request *rq = &s->rq;
    const char *ml = cli_opt_str(o, "method", "rocketkv");
    int nm = cli_split_names(ml, s->methods[0], sizeof s->methods[0], RKV_MAX_SETS);
    if (nm < 1) {
        cli_error(o->prog, "--method: expected a comma list of method names, got '%s'", ml);
        return CLI_USAGE;
    }
    int nb = cli_opt_i64_list(o, "budget", "1024", 1, INT32_MAX, 0, s->budgets, RKV_MAX_SETS);
    if (nb < 1) return CLI_USAGE;
    if (nm * nb > RKV_MAX_SETS) {
        cli_error(o->prog, "%d methods x %d budgets = %d runs; at most %d at once", nm, nb, nm * nb, RKV_MAX_SETS);
        return CLI_USAGE;
    }
    s->cfg.nsets = 0;
    for (int i = 0; i < nm; i++)
        for (int b = 0; b < nb; b++) {
            rq->budget = s->budgets[b];
            if (rkv_params_resolve(s->methods[i], rq, &s->cfg.sets[s->cfg.nsets], &err) != 0) {
                cli_error(o->prog, "%s", err.msg);
                return CLI_USAGE;
            }
            s->cfg.nsets++;
        }
    return CLI_OK;
}

/* The run's flags: --steps (within --new and the model's length), --layers, --threads. */
static int parse_run(cli_opts *o, cli_run_setup *s)
{
    const rkv_request *rq = &s->rq;
    if (cli_opt_i64_in(o, "steps", 8, 1, INT32_MAX, &s->cfg.steps)) return CLI_USAGE;
    if (s->wl.nturns == 0 && (s->cfg.steps < 1 || s->cfg.steps > rq->max_new)) {
        cli_error(o->prog, "--steps must be between 1 and --new (%lld), got %lld", (long long)rq->max_new,
                  (long long)s->cfg.steps);
        return CLI_USAGE;
    }
    if (s->wl.nturns == 0 && s->cfg.steps > rkv_params_decode_steps(&s->cfg.sets[0])) {
        cli_error(o->prog, "--steps %lld: the model's max length %lld leaves %lld decode positions after a "
                  "%lld-token prompt", (long long)s->cfg.steps, (long long)s->cfg.sets[0].S_total,
                  (long long)rkv_params_decode_steps(&s->cfg.sets[0]), (long long)rq->context);
        return CLI_USAGE;
    }
    int64_t lay[1024];
    /* the model's layers: the refusal names its range (tests/test_cli.c) */
    const int n = cli_opt_i64_list(o, "layers", NULL, 0, s->model.num_hidden_layers - 1, 1, lay, 1024);
    if (n < 0) return CLI_USAGE;
    if (n > 0) {
        for (int i = 0; i < n; i++) s->layers[i] = (int)lay[i];
        s->cfg.layers = s->layers;
        s->cfg.nlayers = n;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t th;
    if (cli_opt_i64_in(o, "threads", ncpu < 1 ? 1 : ncpu > 64 ? 64 : ncpu, 1, 64, &th)) return CLI_USAGE;
    s->cfg.threads = (int)th;
    return CLI_OK;
}

int cli_run_setup_parse(cli_opts *o, cli_run_setup *s, int need_run)
{
    kv_err err;
    memset(s, 0, sizeof *s);
    const char *wspec = need_run ? cli_opt_str(o, "workload", NULL) : NULL;
    const int real = llm_kvd_spec_is(wspec);
    int rc;
    if (real) {
        if ((rc = real_workload(o, s, wspec)) != CLI_OK) return rc;
    } else {
        const char *model = cli_opt_str(o, "model", "llama3.1-8b");
        if (mdl_model_load(model, &s->model, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
    }
    if ((rc = parse_request(o, s)) != CLI_OK) return rc;
    rkv_workload_defaults(&s->wl);
    if (need_run && (rc = parse_workload(o, s, real)) != CLI_OK) return rc;
    if ((rc = resolve_sets(o, s)) != CLI_OK) return rc;
    s->cfg.model = &s->model;
    s->cfg.wl = &s->wl;
    if (need_run && (rc = parse_run(o, s)) != CLI_OK) return rc;
    s->json = cli_opt_flag(o, "json");
    return CLI_OK;
}

void cli_params_print(FILE *fp, const rkv_params *p)
{
    fprintf(fp, "%s t=%lld S=%lld new=%lld: prompt_budget=%lld window_size=%lld kernel_size=%lld page_size=%lld "
                "topr=%lld topk=%lld rho=%.4f capacity=%lld compression_ratio=%.2f\n",
            p->method->name, (long long)p->budget, (long long)p->S, (long long)p->max_new, (long long)p->prompt_budget,
            (long long)p->window_size, (long long)p->kernel_size, (long long)p->page_size, (long long)p->topr,
            (long long)p->topk, p->rho, (long long)p->capacity, p->compression_ratio);
}

void cli_progress(void *ctx, int64_t done, int64_t total)
{
    static double t0 = 0.0;
    if (!isatty(2))
        return;
    double now = kv_now_s();
    if (t0 == 0.0 || done == 0) {
        if (t0 == 0.0) t0 = now;
    }
    if (now - t0 < 1.0)
        return;
    fprintf(stderr, "\r  %lld/%lld (layer, KV head) pairs, %.0f s", (long long)done, (long long)total, now - t0);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}
