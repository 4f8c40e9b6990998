/* cmd_serve.c — `kvsim serve`: one serving instance under a request stream
 * (serve/srv.h does the work; this file parses and prints). */
#include "serve_setup.h"

#include <math.h>
#include <string.h>

#define MAX_RATES 256

static void help(void)
{
    printf("usage: kvsim serve --rate R[,R...] [instance and traffic options] [--json | --csv] [--out FILE]\n"
           "                   [--timeline FILE.csv] [--shard i/N]\n"
           "       kvsim serve --requests LOG.csv [instance options] [--json]\n\n"
           "A discrete-event simulation of one serving instance (one TP group): continuous batching with\n"
           "chunked prefill under a token budget, FCFS, preemption by recompute (or swap) when the KV pool is full,\n"
           "every engine step priced with kvsim predict's step model (serve/srv.h). Prints TTFT, TPOT,\n"
           "inter-token and end-to-end latency percentiles, throughput, KV-pool occupancy, preemptions.\n\n%s"
           "output:\n"
           "  --json                  one object (a list of rates: an array)\n"
           "  --csv                   one row per rate (a sweep over rates; shards concatenate in order)\n"
           "  --out FILE              write there (atomically) instead of stdout\n"
           "  --timeline FILE.csv     per engine step: time, step, running, waiting, decode seqs, tokens, KV blocks\n"
           "  --shard i/N             only the rates i, i+N, ... (1-based) of the list\n",
           cli_serve_help);
}

static const char csv_header[] =
    "model,hw,method,budget,tp,rate,requests,completed,ttft_mean_s,ttft_p50_s,ttft_p90_s,ttft_p95_s,ttft_p99_s,"
    "tpot_mean_s,tpot_p50_s,tpot_p90_s,tpot_p95_s,tpot_p99_s,itl_p50_s,itl_p95_s,itl_p99_s,e2e_mean_s,e2e_p50_s,"
    "e2e_p90_s,e2e_p95_s,e2e_p99_s,requests_per_s,output_tokens_per_s,kv_occupancy_mean,kv_occupancy_max,"
    "running_mean,preemptions,steps\n";

static void csv_row(FILE *fp, const cli_serve_setup *s, double rate, const srv_result *r, const srv_summary *m)
{
    fprintf(fp, "%s,%s,%s,%lld,%d,%.17g,%lld,%lld", s->model.name, s->hw.name, s->cfg.method,
            (long long)s->cfg.rq.budget, s->cfg.tp, rate, (long long)r->n, (long long)r->completed);
    const srv_dist *d[2] = {&m->ttft, &m->tpot};
    for (int i = 0; i < 2; i++)
        fprintf(fp, ",%.9g,%.9g,%.9g,%.9g,%.9g", d[i]->mean, d[i]->p50, d[i]->p90, d[i]->p95, d[i]->p99);
    fprintf(fp, ",%.9g,%.9g,%.9g", m->itl.p50, m->itl.p95, m->itl.p99);
    fprintf(fp, ",%.9g,%.9g,%.9g,%.9g,%.9g", m->e2e.mean, m->e2e.p50, m->e2e.p90, m->e2e.p95, m->e2e.p99);
    fprintf(fp, ",%.9g,%.9g,%.6f,%.6f,%.4f,%lld,%lld\n", m->requests_per_s, m->output_tokens_per_s,
            m->kv_occupancy_mean, m->kv_occupancy_max, m->running_mean, (long long)r->preemptions,
            (long long)r->steps);
}

static void text_report(FILE *fp, const cli_serve_setup *s, double rate, const srv_result *r, const srv_summary *m)
{
    const srv_config *c = &s->cfg;
    fprintf(fp, "%s on %s, TP %d, %s, %s", s->model.name, s->hw.name, c->tp, s->engine.name, c->method);
    const rkv_method_type *mt = rkv_method_find(c->method);
    if (mt && !mt->traits.dense) fprintf(fp, " t=%lld", (long long)c->rq.budget);
    fprintf(fp, "; max_num_seqs %lld, max_batched_tokens %lld; KV pool %.2f GB per rank (%lld blocks of %lld tokens)\n",
            (long long)c->max_num_seqs, (long long)c->max_batched_tokens, c->pool_bytes / 1e9,
            (long long)r->pool_blocks, (long long)c->block_tokens);
    if (s->requests)
        fprintf(fp, "traffic: %lld requests from %s\n", (long long)r->n, s->requests);
    else
        fprintf(fp, "traffic: %lld requests, %s at %g req/s, prompt %s, output %s, seed %llu\n", (long long)r->n,
                s->tr.arrival == SRV_ARRIVAL_POISSON ? "Poisson" : "gamma", rate, s->prompt_spec, s->output_spec,
                (unsigned long long)s->tr.seed);
    fprintf(fp, "%-10s %10s %10s %10s %10s %10s\n", "latency", "mean", "p50", "p90", "p95", "p99");
    const struct { const char *n; const srv_dist *d; } rows[] = {
        {"TTFT s", &m->ttft}, {"TPOT s", &m->tpot}, {"ITL s", &m->itl}, {"E2E s", &m->e2e}};
    for (int i = 0; i < 4; i++)
        fprintf(fp, "%-10s %10.4f %10.4f %10.4f %10.4f %10.4f\n", rows[i].n, rows[i].d->mean, rows[i].d->p50,
                rows[i].d->p90, rows[i].d->p95, rows[i].d->p99);
    fprintf(fp, "throughput: %.3f req/s, %.1f output tok/s, %.1f prompt tok/s over %.2f s (%lld of %lld completed)\n",
            m->requests_per_s, m->output_tokens_per_s, m->input_tokens_per_s, m->duration_s,
            (long long)r->completed, (long long)r->n);
    fprintf(fp, "engine: %lld steps, busy %.1f%%; running mean %.2f, max %lld; KV pool occupancy mean %.1f%%, max "
            "%.1f%%; preemptions %lld\n", (long long)r->steps, 100.0 * r->busy_s / r->end_s, m->running_mean,
            (long long)r->max_running, 100.0 * m->kv_occupancy_mean, 100.0 * m->kv_occupancy_max,
            (long long)r->preemptions);
    if (s->cfg.preempt_swap)
        fprintf(fp, "swap: %lld out, %lld in, %lld recomputed (swap space full), %.4f s copying; swap space %lld "
                "blocks, max used %lld\n", (long long)r->swap_outs, (long long)r->swap_ins, (long long)r->swap_fallbacks,
                r->swap_s, (long long)r->swap_blocks, (long long)r->max_swap_blocks);
    if (!s->requests)
        fprintf(fp, "Little's law: mean in system %.4f; rate x mean E2E %.4f (measured rate: %.4f)\n",
                m->mean_in_system, m->rate_times_e2e, m->measured_rate_times_e2e);
}

static int write_timeline(const char *prog, const char *path, const srv_result *r)
{
    kv_afile f;
    kv_err err;
    if (kv_afile_open(&f, path, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        return CLI_FAIL;
    }
    fprintf(f.fp, "t_s,step_s,running,waiting,decode_seqs,tokens,kv_blocks,kv_occupancy\n");
    for (int64_t i = 0; i < r->nsamples; i++) {
        const srv_sample *x = &r->samples[i];
        fprintf(f.fp, "%.9g,%.9g,%d,%d,%d,%d,%lld,%.6f\n", x->t_s, x->step_s, x->running, x->waiting,
                x->decode_seqs, x->tokens, (long long)x->kv_blocks, (double)x->kv_blocks / (double)r->pool_blocks);
    }
    if (kv_afile_commit(&f, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* --rate list and --shard: the rates this process runs. */
static int rates_of(cli_opts *o, double *rates, int *n)
{
    const char *rl = cli_opt_str(o, "rate", NULL), *sh = cli_opt_str(o, "shard", NULL);
    *n = 0;
    if (!rl) return CLI_OK;
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", rl);
    char *save = NULL;
    int idx = 0, si = 1, sn = 1;
    if (sh && cli_parse_shard(o, sh, &si, &sn) != 0)
        return CLI_USAGE;
    for (char *x = strtok_r(buf, ",", &save); x; x = strtok_r(NULL, ",", &save), idx++) {
        double r;
        kv_err err;
        if (idx >= MAX_RATES) {
            cli_error(o->prog, "--rate: at most %d rates", MAX_RATES);
            return CLI_USAGE;
        }
        if (kv_parse_f64_in("--rate", x, 1e-9, 1e6, &r, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_USAGE;
        }
        if (idx % sn == si - 1) rates[(*n)++] = r;
    }
    return CLI_OK;
}

typedef struct {
    int json, csv, many;
    const char *timeline;
} out_mode;

/* One run at `rate`, printed as the mode says. */
static int run_one(cli_opts *o, cli_serve_setup *s, double rate, const out_mode *om, kv_json *j, FILE *fp)
{
    srv_workload w;
    int rc = cli_serve_workload(o->prog, s, rate, &w);
    if (rc != CLI_OK) return rc;
    srv_result r;
    kv_err err;
    s->cfg.timeline = om->timeline != NULL;
    if (srv_run(&s->cfg, &w, &r, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        srv_workload_free(&w);
        return CLI_FAIL;
    }
    srv_summary m;
    srv_summarize(&w, &r, rate, &m);
    if (om->json) {
        kv_json_obj_begin(j);
        cli_serve_json_body(j, s, rate, &r, &m);
        kv_json_obj_end(j);
    } else if (om->csv) {
        csv_row(fp, s, rate, &r, &m);
    } else {
        if (om->many) fputc('\n', fp);
        text_report(fp, s, rate, &r, &m);
    }
    if (om->timeline) rc = write_timeline(o->prog, om->timeline, &r);
    srv_result_free(&r);
    srv_workload_free(&w);
    return rc;
}

static int parse_all(cli_opts *o, cli_serve_setup *s, double *rates, int *nr, out_mode *om)
{
    int rc;
    if ((rc = cli_serve_instance(o, s, 1)) != CLI_OK || (rc = cli_serve_traffic(o, s)) != CLI_OK ||
        (rc = rates_of(o, rates, nr)) != CLI_OK)
        return rc;
    om->json = cli_opt_flag(o, "json");
    om->csv = cli_opt_flag(o, "csv");
    om->timeline = cli_opt_str(o, "timeline", NULL);
    if (o->npos > 0) {
        cli_error(o->prog, "unexpected argument '%s'", o->pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(o) != 0)
        return CLI_USAGE;
    if (om->json && om->csv) {
        cli_error(o->prog, "--json and --csv: choose one");
        return CLI_USAGE;
    }
    if (!s->requests && !cli_opt_str(o, "rate", NULL)) {
        cli_error(o->prog, "--rate R (requests/s) or --requests LOG.csv is required");
        return CLI_USAGE;
    }
    if (s->requests && cli_opt_str(o, "rate", NULL)) {
        cli_error(o->prog, "--rate and --requests: the log's arrival times are the traffic; choose one");
        return CLI_USAGE;
    }
    if (s->requests) { rates[0] = 0.0; *nr = 1; }
    om->many = *nr > 1 || cli_opt_str(o, "shard", NULL);
    if (om->timeline && om->many) {
        cli_error(o->prog, "--timeline takes one run (one rate)");
        return CLI_USAGE;
    }
    return cli_serve_pool(o->prog, s);
}

int cmd_serve(int argc, char **argv)
{
    static const char *const flags[] = {"json", "csv", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim serve", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static cli_serve_setup s;
    memset(&s, 0, sizeof s);
    double rates[MAX_RATES];
    int nr = 0;
    out_mode om;
    memset(&om, 0, sizeof om);
    const char *out = cli_opt_str(&o, "out", NULL); /* before parse_all's cli_opts_unused */
    int rc = parse_all(&o, &s, rates, &nr, &om);
    if (rc == CLI_OK && ((out && cli_out_check(&o, "out", out, 0) != 0) ||
                         (om.timeline && cli_out_check(&o, "timeline", om.timeline, 0) != 0)))
        rc = CLI_USAGE; /* before any run */
    if (rc != CLI_OK) {
        cli_serve_setup_free(&s);
        return rc;
    }
    kv_afile f;
    kv_err err;
    FILE *fp = stdout;
    if (out) {
        if (kv_afile_open(&f, out, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            cli_serve_setup_free(&s);
            return CLI_FAIL;
        }
        fp = f.fp;
    }
    kv_json j;
    kv_json_init(&j, fp);
    if (om.json && om.many) kv_json_arr_begin(&j);
    if (om.csv) fputs(csv_header, fp);
    for (int i = 0; i < nr && rc == CLI_OK; i++)
        rc = run_one(&o, &s, rates[i], &om, &j, fp);
    if (om.json && om.many) kv_json_arr_end(&j);
    if (om.json) fputc('\n', fp);
    cli_serve_setup_free(&s);
    if (out) {
        if (rc != CLI_OK) kv_afile_abort(&f);
        else if (kv_afile_commit(&f, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
    }
    return rc;
}
