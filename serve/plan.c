/* plan.c — the largest request rate one instance sustains within latency
 * SLOs: the simulator run at a rate (the same seed, so the requests are the
 * same and only their spacing scales), the SLOs checked, the rate bracketed
 * by doubling or halving and then bisected to a relative tolerance. */
#include "srv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[SRV_SLO_METRICS] = {"ttft", "tpot", "itl", "e2e"};

const char *srv_slo_metric_name(int m) { return metric_names[m]; }

/* "ttft_p95=2,tpot_p95=0.05,e2e_mean=30": metric_(pNN|mean)=seconds. */
int srv_slo_parse(const char *spec, srv_slo *slo, int max, int *n, kv_err *err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    *n = 0;
    char *save = NULL;
    for (char *x = strtok_r(buf, ",", &save); x; x = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(x, '='), *us = strchr(x, '_');
        if (!eq || !us || us > eq || *n >= max)
            return kv_errf(err, "--slo: expected METRIC_pNN=SECONDS or METRIC_mean=SECONDS (metric ttft, tpot, itl, "
                           "e2e), at most %d, got '%s'", max, x);
        *eq = *us = 0;
        srv_slo *s = &slo[*n];
        s->metric = -1;
        for (int m = 0; m < SRV_SLO_METRICS; m++)
            if (!strcmp(x, metric_names[m])) s->metric = m;
        if (s->metric < 0)
            return kv_errf(err, "--slo: unknown metric '%s' (expected ttft, tpot, itl or e2e)", x);
        if (!strcmp(us + 1, "mean")) s->pct = -1.0;
        else if (us[1] != 'p' || kv_parse_f64_in("--slo percentile", us + 2, 1.0, 100.0, &s->pct, err) != 0)
            return kv_errf(err, "--slo: %s_%s: expected _pNN (1..100) or _mean", x, us + 1);
        char what[96];
        snprintf(what, sizeof what, "--slo %s", x);
        if (kv_parse_f64_in(what, eq + 1, 1e-9, 1e9, &s->limit_s, err) != 0)
            return -1;
        (*n)++;
    }
    if (*n == 0) return kv_errf(err, "--slo: empty");
    return 0;
}

static double slo_value(const srv_result *r, const srv_slo *s)
{
    const double *x[SRV_SLO_METRICS] = {r->ttft_s, r->tpot_s, r->itl_s, r->e2e_s};
    const int64_t n = s->metric == SRV_SLO_ITL ? r->n_itl : r->n;
    if (s->pct < 0.0) {
        srv_dist d;
        srv_dist_of(x[s->metric], n, &d);
        return d.mean;
    }
    double *sc = malloc((size_t)(n > 0 ? n : 1) * sizeof *sc);
    const double v = srv_percentile(x[s->metric], n, s->pct, sc);
    free(sc);
    return v;
}

/* One run at rate; *met: every SLO holds (a NaN value, e.g. no TPOT when every
 * output is one token, does not hold). */
static int try_rate(const srv_config *c, const srv_traffic *t, const srv_slo *slo, int nslo, double rate, int *met,
                    double *values, kv_err *err)
{
    srv_traffic x = *t;
    x.rate = rate;
    srv_workload w;
    srv_result r;
    if (srv_workload_generate(&x, &w, err) != 0)
        return -1;
    int rc = srv_run(c, &w, &r, err);
    srv_workload_free(&w);
    if (rc != 0)
        return -1;
    *met = 1;
    for (int i = 0; i < nslo; i++) {
        values[i] = slo_value(&r, &slo[i]);
        if (!(values[i] <= slo[i].limit_s)) *met = 0;
    }
    srv_result_free(&r);
    return 0;
}

int srv_max_rate(const srv_config *c, const srv_traffic *t, const srv_slo *slo, int nslo, double rel_tol,
                 srv_rate_search *out, kv_err *err)
{
    memset(out, 0, sizeof *out);
    double v[SRV_MAX_SLO];
    double lo = 0.0, hi = 0.0, r = 1.0;
    int met;
    if (try_rate(c, t, slo, nslo, r, &met, v, err) != 0) return -1;
    out->runs++;
    if (met) { /* double until one fails */
        lo = r;
        memcpy(out->values, v, sizeof v);
        for (r = 2.0; r <= 1e6; r *= 2.0) {
            if (try_rate(c, t, slo, nslo, r, &met, v, err) != 0) return -1;
            out->runs++;
            if (!met) { hi = r; break; }
            lo = r;
            memcpy(out->values, v, sizeof v);
        }
        if (hi == 0.0) { out->rate = lo; return 0; } /* met at 1e6 req/s: report the bracket's top */
    } else { /* halve until one holds */
        hi = r;
        for (r = 0.5; r >= 1e-4; r *= 0.5) {
            if (try_rate(c, t, slo, nslo, r, &met, v, err) != 0) return -1;
            out->runs++;
            if (met) { lo = r; memcpy(out->values, v, sizeof v); break; }
            hi = r;
        }
        if (lo == 0.0) { out->rate = 0.0; memcpy(out->values, v, sizeof v); return 0; } /* not even one alone */
    }
    while ((hi - lo) > rel_tol * lo) { /* lo holds, hi does not */
        const double mid = 0.5 * (lo + hi);
        if (try_rate(c, t, slo, nslo, mid, &met, v, err) != 0) return -1;
        out->runs++;
        if (met) { lo = mid; memcpy(out->values, v, sizeof v); }
        else hi = mid;
    }
    out->rate = lo;
    return 0;
}
