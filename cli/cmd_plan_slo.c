/* cmd_plan_slo.c — `kvsim plan --slo ...`: per GPU × TP × method the
 * largest request rate one serving instance sustains within latency SLOs
 * (serve/plan.c's srv_max_rate over the serving simulator), and the
 * instances and GPUs a target rate needs. cmd_plan.c hands over here when
 * --slo is given. */
#include "serve_setup.h"
#include "sim_setup.h"

#include <math.h>
#include <string.h>

#define MAXL 16

static void help(void)
{
    printf("usage: kvsim plan --slo ttft_p95=2,tpot_p95=0.05 --rate R [--hw LIST] [--tp LIST] [--method LIST]\n"
           "                  [--budget T] [traffic and instance options] [--tolerance F] [--json]\n\n"
           "For every GPU x TP x method, the largest request rate one instance (one TP group) sustains with\n"
           "every SLO met, found by running kvsim serve's simulator (same requests at each rate, bracketed\n"
           "and bisected to --tolerance, default 0.01 relative); then instances = ceil(R / that rate) and\n"
           "GPUs = instances x TP for the target rate R. SLO terms: METRIC_pNN=SECONDS or METRIC_mean=SECONDS\n"
           "with METRIC ttft, tpot, itl or e2e. Defaults: --hw h100-sxm --tp 1 --method full,rocketkv\n"
           "--num-requests 1000.\n\n%s",
           cli_serve_help);
}

typedef struct {
    char hw[64], method[64];
    int tp, fits;
    srv_rate_search s;
    int64_t instances, gpus;
} slo_row;

static void print_rows(const slo_row *rows, int n, const srv_slo *slo, int nslo, double target, int json,
                       const cli_serve_setup *st)
{
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        kv_json_arr_begin(&j);
        for (int i = 0; i < n; i++) {
            const slo_row *r = &rows[i];
            kv_json_obj_begin(&j);
            kv_json_key(&j, "hw"); kv_json_str(&j, r->hw);
            kv_json_key(&j, "tp"); kv_json_int(&j, r->tp);
            kv_json_key(&j, "method"); kv_json_str(&j, r->method);
            kv_json_key(&j, "fits"); kv_json_bool(&j, r->fits);
            kv_json_key(&j, "max_rate_per_instance"); kv_json_num(&j, r->s.rate);
            for (int k = 0; k < nslo && r->fits; k++) {
                char key[64];
                if (slo[k].pct < 0) snprintf(key, sizeof key, "%s_mean_s", srv_slo_metric_name(slo[k].metric));
                else snprintf(key, sizeof key, "%s_p%g_s", srv_slo_metric_name(slo[k].metric), slo[k].pct);
                kv_json_key(&j, key); kv_json_num(&j, r->s.values[k]);
            }
            kv_json_key(&j, "target_rate"); kv_json_num(&j, target);
            kv_json_key(&j, "instances"); kv_json_int(&j, r->instances);
            kv_json_key(&j, "gpus"); kv_json_int(&j, r->gpus);
            kv_json_key(&j, "simulations"); kv_json_int(&j, r->s.runs);
            kv_json_obj_end(&j);
        }
        kv_json_arr_end(&j);
        fputc('\n', stdout);
        return;
    }
    printf("%s, engine %s; traffic %s, prompt %s, output %s, %lld requests per simulation, seed %llu\nSLO:",
           st->model.name, st->engine.name, st->tr.arrival == SRV_ARRIVAL_POISSON ? "Poisson" : "gamma",
           st->prompt_spec, st->output_spec, (long long)st->tr.n, (unsigned long long)st->tr.seed);
    for (int k = 0; k < nslo; k++)
        if (slo[k].pct < 0) printf(" %s_mean <= %g s", srv_slo_metric_name(slo[k].metric), slo[k].limit_s);
        else printf(" %s_p%g <= %g s", srv_slo_metric_name(slo[k].metric), slo[k].pct, slo[k].limit_s);
    printf("; target %g req/s\n%-10s %3s %-10s %14s", target, "gpu", "tp", "method", "req/s/instance");
    for (int k = 0; k < nslo; k++) {
        char lab[32];
        if (slo[k].pct < 0) snprintf(lab, sizeof lab, "%s_mean", srv_slo_metric_name(slo[k].metric));
        else snprintf(lab, sizeof lab, "%s_p%g", srv_slo_metric_name(slo[k].metric), slo[k].pct);
        printf(" %12s", lab);
    }
    printf(" %10s %6s\n", "instances", "GPUs");
    int best = -1;
    for (int i = 0; i < n; i++) {
        const slo_row *r = &rows[i];
        printf("%-10s %3d %-10s ", r->hw, r->tp, r->method);
        if (!r->fits) { printf("%14s\n", "does not fit"); continue; }
        printf("%14.3f", r->s.rate);
        for (int k = 0; k < nslo; k++) printf(" %12.4f", r->s.values[k]);
        if (r->gpus > 0) printf(" %10lld %6lld\n", (long long)r->instances, (long long)r->gpus);
        else printf(" %10s %6s\n", "-", "-");
        if (r->gpus > 0 && (best < 0 || r->gpus < rows[best].gpus)) best = i;
    }
    if (best >= 0)
        printf("fewest GPUs: %s x %lld (%lld instances of TP %d, %s)\n", rows[best].hw, (long long)rows[best].gpus,
               (long long)rows[best].instances, rows[best].tp, rows[best].method);
}

typedef struct {
    char hws[MAXL][64], methods[MAXL][64];
    int64_t tps[MAXL];
    int nh, nm, nt, json;
    srv_slo slo[SRV_MAX_SLO];
    int nslo;
    double target, tol;
} plan_args;

static int parse(cli_opts *o, cli_serve_setup *st, plan_args *a)
{
    kv_err err;
    int rc;
    if ((rc = cli_serve_instance(o, st, 0)) != CLI_OK || (rc = cli_serve_traffic(o, st)) != CLI_OK)
        return rc;
    a->nh = cli_split_names(cli_opt_str(o, "hw", "h100-sxm"), a->hws[0], sizeof a->hws[0], MAXL);
    a->nm = cli_split_names(cli_opt_str(o, "method", "full,rocketkv"), a->methods[0], sizeof a->methods[0], MAXL);
    a->nt = cli_opt_i64_list(o, "tp", "1", 1, 1024, 0, a->tps, MAXL);
    if (a->nt < 0) return CLI_USAGE;
    a->json = cli_opt_flag(o, "json");
    if (a->nh < 1 || a->nm < 1 || a->nt < 1) {
        cli_error(o->prog, "--hw, --method and --tp take comma lists of at most %d items", MAXL);
        return CLI_USAGE;
    }
    for (int i = 0; i < a->nt; i++)
        if (a->tps[i] < 1 || a->tps[i] > 1024) {
            cli_error(o->prog, "--tp must be in 1..1024, got %lld", (long long)a->tps[i]);
            return CLI_USAGE;
        }
    for (int i = 0; i < a->nm; i++)
        if (!rkv_method_get(a->methods[i], &err)) {
            cli_error(o->prog, "--method: %s", err.msg);
            return CLI_USAGE;
        }
    if (srv_slo_parse(cli_opt_str(o, "slo", ""), a->slo, SRV_MAX_SLO, &a->nslo, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_USAGE;
    }
    if (cli_opt_f64_in(o, "rate", 0.0, 0.0, 1e9, &a->target) || cli_opt_f64_in(o, "tolerance", 0.01, 1e-4, 0.5, &a->tol))
        return CLI_USAGE;
    if (st->requests) {
        cli_error(o->prog, "--requests: plan --slo generates its traffic at each rate it tries; give --prompt/--output");
        return CLI_USAGE;
    }
    if (o->npos > 0) {
        cli_error(o->prog, "unexpected argument '%s'", o->pos[0]);
        return CLI_USAGE;
    }
    return cli_opts_unused(o) != 0 ? CLI_USAGE : CLI_OK;
}

/* One (GPU, TP, method): the pool, then the search. */
static int plan_row(cli_opts *o, cli_serve_setup *st, const plan_args *a, slo_row *w)
{
    kv_err err;
    st->cfg.method = w->method;
    st->cfg.tp = w->tp;
    w->fits = 1;
    if (st->pool_bytes_flag > 0.0) st->cfg.pool_bytes = st->pool_bytes_flag;
    else if (srv_pool_bytes(&st->cfg, &st->cfg.pool_bytes, &err) != 0) {
        w->fits = 0; /* the weights leave no pool: a result, not an error */
        return CLI_OK;
    }
    if (srv_max_rate(&st->cfg, &st->tr, a->slo, a->nslo, a->tol, &w->s, &err) != 0) {
        if (strstr(err.msg, "does not fit the KV pool")) { w->fits = 0; return CLI_OK; }
        cli_error(o->prog, "%s on %s, TP %d: %s", w->method, w->hw, w->tp, err.msg);
        return CLI_FAIL;
    }
    if (a->target > 0.0 && w->s.rate > 0.0) {
        w->instances = (int64_t)ceil(a->target / w->s.rate);
        w->gpus = w->instances * w->tp;
    }
    return CLI_OK;
}

int cmd_plan_slo(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim plan", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    static cli_serve_setup st;
    static plan_args a;
    static slo_row rows[MAXL * MAXL * MAXL];
    memset(&st, 0, sizeof st);
    memset(&a, 0, sizeof a);
    int rc = parse(&o, &st, &a), n = 0;
    static hw_model hw[MAXL];
    for (int ih = 0; ih < a.nh && rc == CLI_OK; ih++)
        rc = cli_sim_load_hw(&o, a.hws[ih], NULL, &hw[ih]);
    for (int ih = 0; ih < a.nh && rc == CLI_OK; ih++)
        for (int it = 0; it < a.nt && rc == CLI_OK; it++)
            for (int im = 0; im < a.nm && rc == CLI_OK; im++) {
                slo_row *w = &rows[n++];
                memset(w, 0, sizeof *w);
                snprintf(w->hw, sizeof w->hw, "%.63s", a.hws[ih]);
                snprintf(w->method, sizeof w->method, "%s", a.methods[im]);
                w->tp = (int)a.tps[it];
                st.cfg.hw = &hw[ih];
                rc = plan_row(&o, &st, &a, w);
            }
    if (rc == CLI_OK)
        print_rows(rows, n, a.slo, a.nslo, a.target, a.json, &st);
    cli_serve_setup_free(&st);
    return rc;
}
