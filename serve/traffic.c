/* traffic.c — the requests of a serving run: arrivals (Poisson, gamma, or a
 * replayed log) and prompt/output lengths (fixed, uniform, lognormal,
 * empirical). One GSL MT19937 stream seeded once, drawn in a fixed order per
 * request (gap, prompt, output), so a seed fixes the workload. */
#include "srv.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SRV_MAX_TOKENS 10000000

static int parse_len_field(const char *what, const char *s, int64_t *v, kv_err *err)
{
    return kv_parse_i64_in(what, s, 1, SRV_MAX_TOKENS, v, err);
}

/* The whole file as a NUL-terminated string (kv_read_file does not terminate). */
static int read_text(const char *path, size_t max, char **text, kv_err *err)
{
    char *buf;
    size_t len;
    if (kv_read_file(path, max, &buf, &len, err) != 0)
        return -1;
    *text = malloc(len + 1);
    memcpy(*text, buf, len);
    (*text)[len] = 0;
    free(buf);
    return 0;
}

/* "csv:FILE": one length per line; a first line that is not a number is a header. */
static int load_empirical(const char *what, const char *path, srv_len *d, kv_err *err)
{
    char *buf;
    if (read_text(path, (size_t)1 << 28, &buf, err) != 0)
        return -1;
    int64_t cap = 1024, n = 0, line = 0;
    d->values = malloc((size_t)cap * sizeof *d->values);
    char *save = NULL;
    for (char *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t k = strlen(ln);
        while (k > 0 && (ln[k - 1] == '\r' || ln[k - 1] == ' ')) ln[--k] = 0;
        if (k == 0) continue;
        int64_t v;
        kv_err e2;
        if (parse_len_field(what, ln, &v, &e2) != 0) {
            if (line == 1 && n == 0) continue; /* header */
            free(buf);
            srv_len_free(d);
            return kv_errf(err, "%s:%lld:1: %s", path, (long long)line, e2.msg);
        }
        if (n == cap) {
            cap *= 2;
            d->values = realloc(d->values, (size_t)cap * sizeof *d->values);
        }
        d->values[n++] = v;
    }
    free(buf);
    if (n == 0) {
        srv_len_free(d);
        return kv_errf(err, "%s: %s: no lengths", what, path);
    }
    d->nvalues = n;
    return 0;
}

int srv_len_parse(const char *what, const char *spec, srv_len *d, kv_err *err)
{
    memset(d, 0, sizeof *d);
    char f[3][64] = {{0}};
    int nf = 0;
    if (!strncmp(spec, "csv:", 4)) {
        d->kind = SRV_LEN_EMPIRICAL;
        return load_empirical(what, spec + 4, d, err);
    }
    const char *p = spec;
    while (nf < 3) { /* split on ':' */
        const char *q = strchr(p, ':');
        size_t k = q ? (size_t)(q - p) : strlen(p);
        if (k >= sizeof f[0]) return kv_errf(err, "%s: '%s' is too long", what, spec);
        memcpy(f[nf++], p, k);
        if (!q) break;
        p = q + 1;
    }
    int64_t a, b;
    double m, s;
    if (!strcmp(f[0], "fixed") && nf == 2) {
        if (parse_len_field(what, f[1], &a, err) != 0) return -1;
        d->kind = SRV_LEN_FIXED;
        d->a = (double)a;
    } else if (!strcmp(f[0], "uniform") && nf == 3) {
        if (parse_len_field(what, f[1], &a, err) != 0 || parse_len_field(what, f[2], &b, err) != 0) return -1;
        if (b < a) return kv_errf(err, "%s: uniform:%lld:%lld: the upper bound is below the lower", what,
                                  (long long)a, (long long)b);
        d->kind = SRV_LEN_UNIFORM;
        d->a = (double)a;
        d->b = (double)b;
    } else if (!strcmp(f[0], "lognormal") && nf == 3) {
        if (kv_parse_f64_in(what, f[1], 1.0, SRV_MAX_TOKENS, &m, err) != 0 ||
            kv_parse_f64_in(what, f[2], 0.0, 5.0, &s, err) != 0)
            return -1;
        d->kind = SRV_LEN_LOGNORMAL;
        d->a = m;
        d->b = s;
    } else {
        return kv_errf(err, "%s: expected fixed:N, uniform:A:B, lognormal:MEDIAN:SIGMA or csv:FILE, got '%s'", what,
                       spec);
    }
    return 0;
}

void srv_len_free(srv_len *d)
{
    free(d->values);
    d->values = NULL;
    d->nvalues = 0;
}

static int64_t draw_len(const srv_len *d, gsl_rng *r, int64_t max)
{
    double v;
    switch (d->kind) {
    case SRV_LEN_FIXED: v = d->a; break;
    case SRV_LEN_UNIFORM: v = d->a + (double)gsl_rng_uniform_int(r, (unsigned long)(d->b - d->a + 1.0)); break;
    case SRV_LEN_LOGNORMAL: v = nearbyint(gsl_ran_lognormal(r, log(d->a), d->b)); break;
    default: v = (double)d->values[gsl_rng_uniform_int(r, (unsigned long)d->nvalues)]; break;
    }
    if (v < 1.0) v = 1.0;
    if (v > (double)max) v = (double)max;
    return (int64_t)v;
}

/* prompt + output within max_len: the prompt keeps at least one slot for output. */
static void fit_len(srv_request *q, int64_t max_len)
{
    if (q->prompt > max_len - 1) q->prompt = max_len - 1;
    if (q->output > max_len - q->prompt) q->output = max_len - q->prompt;
}

int srv_workload_generate(const srv_traffic *t, srv_workload *w, kv_err *err)
{
    memset(w, 0, sizeof *w);
    if (!(t->rate > 0.0) || t->n < 1 || t->max_len < 2)
        return kv_errf(err, "traffic: rate > 0, at least one request and max_len >= 2 needed");
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, (unsigned long)t->seed);
    w->req = calloc((size_t)t->n, sizeof *w->req);
    w->n = t->n;
    double at = 0.0;
    for (int64_t i = 0; i < t->n; i++) {
        /* gamma(k, 1/(rate·k)) has mean 1/rate and CV 1/sqrt(k); k = 1 is exponential */
        double gap = t->arrival == SRV_ARRIVAL_POISSON ? gsl_ran_exponential(r, 1.0 / t->rate)
                                                       : gsl_ran_gamma(r, t->burstiness, 1.0 / (t->rate * t->burstiness));
        at += gap;
        srv_request *q = &w->req[i];
        q->arrival_s = at;
        q->prompt = draw_len(t->prompt, r, t->max_len);
        q->output = draw_len(t->output, r, t->max_len);
        fit_len(q, t->max_len);
    }
    gsl_rng_free(r);
    return 0;
}

/* One data line: three comma-separated fields. */
static int parse_row(const char *path, int64_t line, char *ln, srv_request *q, kv_err *err)
{
    char *f[3], *save = NULL;
    int nf = 0;
    for (char *x = strtok_r(ln, ",", &save); x; x = strtok_r(NULL, ",", &save)) {
        if (nf == 3) return kv_errf(err, "%s:%lld: more than 3 fields", path, (long long)line);
        f[nf++] = x;
    }
    if (nf != 3) return kv_errf(err, "%s:%lld: expected arrival_s,prompt_tokens,output_tokens", path, (long long)line);
    char what[600];
    snprintf(what, sizeof what, "%s:%lld: arrival_s", path, (long long)line);
    if (kv_parse_f64_in(what, f[0], 0.0, 1e9, &q->arrival_s, err) != 0) return -1;
    snprintf(what, sizeof what, "%s:%lld: prompt_tokens", path, (long long)line);
    if (kv_parse_i64_in(what, f[1], 1, SRV_MAX_TOKENS, &q->prompt, err) != 0) return -1;
    snprintf(what, sizeof what, "%s:%lld: output_tokens", path, (long long)line);
    return kv_parse_i64_in(what, f[2], 1, SRV_MAX_TOKENS, &q->output, err);
}

int srv_workload_load(const char *path, int64_t max_len, srv_workload *w, kv_err *err)
{
    memset(w, 0, sizeof *w);
    char *buf;
    if (read_text(path, (size_t)1 << 30, &buf, err) != 0)
        return -1;
    int64_t cap = 1024, line = 0;
    w->req = malloc((size_t)cap * sizeof *w->req);
    char *save = NULL;
    int rc = 0;
    for (char *ln = strtok_r(buf, "\n", &save); ln && rc == 0; ln = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t k = strlen(ln);
        while (k > 0 && (ln[k - 1] == '\r' || ln[k - 1] == ' ')) ln[--k] = 0;
        if (line == 1) {
            if (strcmp(ln, "arrival_s,prompt_tokens,output_tokens"))
                rc = kv_errf(err, "%s:1: expected the header arrival_s,prompt_tokens,output_tokens", path);
            continue;
        }
        if (k == 0) continue;
        if (w->n == cap) {
            cap *= 2;
            w->req = realloc(w->req, (size_t)cap * sizeof *w->req);
        }
        srv_request *q = &w->req[w->n];
        if ((rc = parse_row(path, line, ln, q, err)) != 0) break;
        if (w->n > 0 && q->arrival_s < w->req[w->n - 1].arrival_s)
            rc = kv_errf(err, "%s:%lld: arrival_s %g is before the previous line's", path, (long long)line, q->arrival_s);
        else if (q->prompt + q->output > max_len)
            rc = kv_errf(err, "%s:%lld: prompt + output = %lld tokens, more than the model's %lld", path,
                         (long long)line, (long long)(q->prompt + q->output), (long long)max_len);
        w->n++;
    }
    free(buf);
    if (rc == 0 && w->n == 0)
        rc = kv_errf(err, "%s: no requests", path);
    if (rc != 0)
        srv_workload_free(w);
    return rc;
}

void srv_workload_free(srv_workload *w)
{
    free(w->req);
    w->req = NULL;
    w->n = 0;
}
