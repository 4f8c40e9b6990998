/* published.c — the validation set's loader, its rows priced by the
 * simulator, per-category statistics and the regression thresholds
 * (published.h). Columns: validation/README.md. */
#include "published.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const char *const sim_pub_field_names[SIM_PUB_F_N] = {
    "id", "category", "metric", "model", "hw", "engine", "weight_dtype", "kv_dtype", "method", "budget", "context",
    "new", "batch", "tp", "harness", "ref", "measured", "source"};
const char *const sim_pub_cat_names[SIM_PUB_NCAT] = {"decode", "ttft", "kv_capacity", "speedup", "fit"};

/* One CSV record: comma separated, fields optionally in double quotes ("" inside). */
static int csv_split(char *line, sim_pub_row *r)
{
    int n = 0;
    char *p = line;
    while (n < SIM_PUB_F_N) {
        char *o = r->f[n];
        size_t k = 0;
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"') p++;
                if (k + 1 < sizeof r->f[0]) o[k++] = *p;
            }
            if (*p == '"') p++;
        } else
            for (; *p && *p != ',' && *p != '\n' && *p != '\r'; p++)
                if (k + 1 < sizeof r->f[0]) o[k++] = *p;
        o[k] = '\0';
        n++;
        if (*p != ',') break;
        p++;
    }
    return n;
}

/* A path in the set is relative to the repository (the set's folder's parent) when not found as given. */
static const char *resolve_path(const char *v, const char *base, char *buf, size_t cap)
{
    FILE *f;
    if (!strchr(v, '/') || (f = fopen(v, "r")) != NULL) {
        if (strchr(v, '/')) fclose(f);
        return v;
    }
    snprintf(buf, cap, "%s/%s", base, v);
    return buf;
}

int sim_pub_load_rows(const char *path, sim_pub_row *rows, int *n, kv_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return kv_errf(err, "%s: cannot open", path);
    char line[8192];
    int ln = 0;
    *n = 0;
    while (fgets(line, sizeof line, fp)) {
        ln++;
        if (ln == 1 || line[0] == '\n' || line[0] == '#')
            continue;
        if (*n >= SIM_PUB_MAX_ROWS) {
            fclose(fp);
            return kv_errf(err, "%s:%d: more than %d rows", path, ln, SIM_PUB_MAX_ROWS);
        }
        int nf = csv_split(line, &rows[*n]);
        if (nf != SIM_PUB_F_N) {
            fclose(fp);
            return kv_errf(err, "%s:%d: %d fields, expected %d (%s, ..., source)", path, ln, nf, SIM_PUB_F_N,
                           sim_pub_field_names[0]);
        }
        rows[*n].line = ln;
        (*n)++;
    }
    fclose(fp);
    return 0;
}

static int field_i64(const char *path, const sim_pub_row *r, int f, int64_t lo, int64_t hi, int64_t *out, kv_err *err)
{
    char what[600];
    snprintf(what, sizeof what, "%s:%d: column '%s'", path, r->line, sim_pub_field_names[f]);
    return kv_parse_i64_in(what, r->f[f], lo, hi, out, err);
}

/* The configuration a row describes, with `ref` overrides (key=value) applied when ref != NULL. */
typedef struct {
    mdl_model model;
    hw_model hw;
    eng_engine eng;
    int has_eng;
    sim_weight_dtype wd;
    rkv_request rq;
    char method[32];
    int64_t batch, tp;
    sim_harness harness;
} setup_t;

static int apply_ref(const char *path, const sim_pub_row *r, setup_t *s, kv_err *err)
{
    const char *ref = r->f[SIM_PUB_F_REF], *eq = strchr(ref, '=');
    if (!eq)
        return kv_errf(err, "%s:%d: column 'ref': expected key=value (method, weight_dtype or tp), got '%s'", path,
                       r->line, ref);
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)(eq - ref) < 31 ? (int)(eq - ref) : 31, ref);
    if (!strcmp(key, "method"))
        snprintf(s->method, sizeof s->method, "%s", eq + 1);
    else if (!strcmp(key, "weight_dtype"))
        return sim_weight_dtype_parse(eq + 1, (double)s->model.hidden_size, &s->wd, err);
    else if (!strcmp(key, "tp")) {
        char what[600];
        snprintf(what, sizeof what, "%s:%d: column 'ref' tp", path, r->line);
        return kv_parse_i64_in(what, eq + 1, 1, 1024, &s->tp, err);
    } else
        return kv_errf(err, "%s:%d: column 'ref': unknown key '%s' (method, weight_dtype or tp)", path, r->line, key);
    return 0;
}

static int setup_row(const char *path, const char *base, const sim_pub_row *r, setup_t *s, kv_err *err)
{
    char b1[1100], b2[1100], b3[1100];
    int64_t budget, ctx, nw;
    memset(s, 0, sizeof *s);
    if (mdl_model_load(resolve_path(r->f[SIM_PUB_F_MODEL], base, b1, sizeof b1), &s->model, err) != 0 ||
        hw_model_load(resolve_path(r->f[SIM_PUB_F_HW], base, b2, sizeof b2), &s->hw, err) != 0)
        return -1;
    if (strcmp(r->f[SIM_PUB_F_ENGINE], "-")) {
        if (eng_load(resolve_path(r->f[SIM_PUB_F_ENGINE], base, b3, sizeof b3), &s->eng, err) != 0)
            return -1;
        s->has_eng = 1;
    }
    if (sim_weight_dtype_parse(r->f[SIM_PUB_F_WDT], (double)s->model.hidden_size, &s->wd, err) != 0 ||
        field_i64(path, r, SIM_PUB_F_BUDGET, 0, 1 << 24, &budget, err) ||
        field_i64(path, r, SIM_PUB_F_CTX, 1, 1 << 24, &ctx, err) ||
        field_i64(path, r, SIM_PUB_F_NEW, 1, 1 << 20, &nw, err) ||
        field_i64(path, r, SIM_PUB_F_BATCH, 1, 1 << 20, &s->batch, err) ||
        field_i64(path, r, SIM_PUB_F_TP, 1, 1024, &s->tp, err))
        return -1;
    rkv_request_defaults(&s->rq);
    if (rkv_dtype_parse(r->f[SIM_PUB_F_KVD], &s->rq.kv_dtype) != 0)
        return kv_errf(err, "%s:%d: column 'kv_dtype': unknown '%s'", path, r->line, r->f[SIM_PUB_F_KVD]);
    s->rq.d = s->model.head_dim;
    s->rq.G = mdl_group_size(&s->model);
    s->rq.model_max_len = 1 << 24;
    s->rq.context = ctx;
    s->rq.max_new = nw;
    if (budget > 0) s->rq.budget = budget;
    snprintf(s->method, sizeof s->method, "%.*s", (int)sizeof s->method - 1, r->f[SIM_PUB_F_METHOD]);
    s->harness = SIM_HARNESS_ENGINE;
    if (strcmp(r->f[SIM_PUB_F_HARNESS], "-") && sim_harness_parse(r->f[SIM_PUB_F_HARNESS], &s->harness) != 0)
        return kv_errf(err, "%s:%d: column 'harness': expected engine, gpt-fast or -", path, r->line);
    return 0;
}

static int run_setup(const setup_t *s, sim_result *res, kv_err *err)
{
    rkv_params p;
    if (rkv_params_resolve(s->method, &s->rq, &p, err) != 0)
        return -1;
    sim_config c;
    sim_config_defaults(&c, &s->model, &s->hw, &p);
    c.batch = s->batch;
    c.tp = (int)s->tp;
    c.harness = s->harness;
    sim_config_set_weight_dtype(&c, &s->wd);
    sim_config_set_engine(&c, s->has_eng ? &s->eng : NULL, 0.0);
    return sim_predict(&c, res, err);
}

/* The row's metric from one prediction (and its reference for ratios). */
static int metric_of(const char *path, const sim_pub_row *r, const setup_t *s, const sim_result *x,
                     const sim_result *ref, double *out, kv_err *err)
{
    const char *m = r->f[SIM_PUB_F_METRIC];
    const double B = (double)s->batch, nw = (double)s->rq.max_new;
    if (!strcmp(m, "tokens_per_s")) *out = x->tokens_per_s;
    else if (!strcmp(m, "out_tokens_per_s_per_gpu")) *out = B * nw / (x->ttft_s + x->decode_s) / (double)s->tp;
    else if (!strcmp(m, "ttft_s")) *out = x->ttft_s;
    else if (!strcmp(m, "kv_pool_bytes")) *out = x->mem.kv_pool_bytes;
    else if (!strcmp(m, "kv_cache_tokens")) *out = (double)x->mem.kv_cache_tokens;
    else if (!strcmp(m, "fits")) *out = x->mem.fits ? 1.0 : 0.0;
    else if (!strcmp(m, "tokens_per_s_ratio") && ref) *out = x->tokens_per_s / ref->tokens_per_s;
    else
        return kv_errf(err, "%s:%d: column 'metric': unknown '%s'%s", path, r->line, m,
                       !strcmp(m, "tokens_per_s_ratio") ? " without a ref" : "");
    return 0;
}

int sim_pub_eval_row(const char *path, const char *base, const sim_pub_row *r, sim_pub_result *o, kv_err *err)
{
    setup_t s, sr;
    sim_result x, y;
    o->cat = -1;
    for (int i = 0; i < SIM_PUB_NCAT; i++)
        if (!strcmp(r->f[SIM_PUB_F_CAT], sim_pub_cat_names[i])) o->cat = i;
    if (o->cat < 0)
        return kv_errf(err, "%s:%d: column 'category': unknown '%s' (decode, ttft, kv_capacity, speedup, fit)", path,
                       r->line, r->f[SIM_PUB_F_CAT]);
    char what[600];
    snprintf(what, sizeof what, "%s:%d: column 'measured'", path, r->line);
    if (kv_parse_f64_in(what, r->f[SIM_PUB_F_MEAS], 0.0, 1e18, &o->measured, err) != 0 ||
        setup_row(path, base, r, &s, err) != 0 || run_setup(&s, &x, err) != 0)
        return -1;
    const int has_ref = strcmp(r->f[SIM_PUB_F_REF], "-") != 0;
    if (has_ref) {
        sr = s;
        if (apply_ref(path, r, &sr, err) != 0 || run_setup(&sr, &y, err) != 0)
            return -1;
    }
    if (metric_of(path, r, &s, &x, has_ref ? &y : NULL, &o->predicted, err) != 0)
        return -1;
    if (o->cat == SIM_PUB_NCAT - 1)
        o->err = (o->predicted != 0.0) == (o->measured != 0.0) ? 0.0 : 1.0;
    else
        o->err = (o->predicted - o->measured) / o->measured;
    return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sim_pub_cat_stats(const sim_pub_result *res, int n, int c, double *med, double *p90, int *worst)
{
    double v[SIM_PUB_MAX_ROWS];
    int k = 0;
    *worst = -1;
    for (int i = 0; i < n; i++)
        if (res[i].cat == c) {
            v[k++] = fabs(res[i].err);
            if (*worst < 0 || fabs(res[i].err) > fabs(res[*worst].err)) *worst = i;
        }
    if (k == 0) return 0;
    qsort(v, (size_t)k, sizeof v[0], cmp_dbl);
    *med = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    *p90 = v[(int)ceil(0.9 * k) - 1];
    return k;
}

int sim_pub_load_thresholds(const char *path, double *tmed, double *tp90, kv_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return kv_errf(err, "%s: cannot open", path);
    char line[512], cat[64], a[64], b[64];
    int ln = 0, rc = 0;
    for (int i = 0; i < SIM_PUB_NCAT; i++) tmed[i] = tp90[i] = INFINITY;
    while (!rc && fgets(line, sizeof line, fp)) {
        ln++;
        if (ln == 1 || line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%63[^,],%63[^,],%63[^,\n]", cat, a, b) != 3) {
            rc = kv_errf(err, "%s:%d: expected category,median_max,p90_max", path, ln);
            break;
        }
        int c = -1;
        for (int i = 0; i < SIM_PUB_NCAT; i++)
            if (!strcmp(cat, sim_pub_cat_names[i])) c = i;
        char w1[600], w2[600];
        snprintf(w1, sizeof w1, "%s:%d: median_max", path, ln);
        snprintf(w2, sizeof w2, "%s:%d: p90_max", path, ln);
        if (c < 0)
            rc = kv_errf(err, "%s:%d: unknown category '%s'", path, ln, cat);
        else if (kv_parse_f64_in(w1, a, 0.0, 100.0, &tmed[c], err) || kv_parse_f64_in(w2, b, 0.0, 100.0, &tp90[c], err))
            rc = -1;
    }
    fclose(fp);
    return rc;
}

void sim_pub_base(const char *set, char *base, size_t cap)
{
    snprintf(base, cap, "%s", set);
    char *slash = strrchr(base, '/');
    if (slash) *slash = '\0'; else snprintf(base, cap, ".");
    strncat(base, "/..", cap - strlen(base) - 1);
}
