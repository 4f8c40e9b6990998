/* cmd_check_published.c — `kvsim check-published`: every published
 * measurement in validation/published.csv priced by the simulator with the
 * row's exact configuration; per point measured, predicted and error; per
 * category the median, p90 and worst |error| (fit verdicts: right / total);
 * the goals; and the regression thresholds of
 * validation/thresholds.csv, which set the exit code (0 within, 1 past one).
 * Columns: validation/README.md. */
#include "sim_setup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { F_ID, F_CAT, F_METRIC, F_MODEL, F_HW, F_ENGINE, F_WDT, F_KVD, F_METHOD, F_BUDGET, F_CTX, F_NEW, F_BATCH,
       F_TP, F_HARNESS, F_REF, F_MEAS, F_SOURCE, F_N };
static const char *const field_names[F_N] = {
    "id", "category", "metric", "model", "hw", "engine", "weight_dtype", "kv_dtype", "method", "budget", "context",
    "new", "batch", "tp", "harness", "ref", "measured", "source"};

#define MAX_ROWS 512
#define NCAT 5
static const char *const cat_names[NCAT] = {"decode", "ttft", "kv_capacity", "speedup", "fit"};
/* The goals: median and p90 of |error| (0: none); fit: all right. */
static const double goal_median[NCAT] = {0.05, 0.10, 0.02, 0.04, 0.0};
static const double goal_p90[NCAT] = {0.12, 0.0, 0.0, 0.0, 0.0};

typedef struct {
    char f[F_N][512];
    int line;
} row_t;

typedef struct {
    int cat;
    double measured, predicted, err; /* err: (predicted - measured) / measured; fit: 0 right, 1 wrong */
} result_t;

static void help(void)
{
    printf("usage: kvsim check-published [--set FILE.csv] [--thresholds FILE.csv] [--quiet]\n\n"
           "Prices every published measurement of the set (validation/published.csv) with its exact\n"
           "configuration and prints measured, predicted and error per point, then median, p90 and worst\n"
           "|error| per category (decode, ttft, kv_capacity, speedup; fit: verdicts right / total) against\n"
           "the goals, and checks the regression thresholds (validation/thresholds.csv): exit 1 when a\n"
           "category's median or p90 is past its threshold or a fit verdict is wrong beyond it.\n");
}

/* One CSV record: comma separated, fields optionally in double quotes ("" inside). */
static int csv_split(char *line, row_t *r)
{
    int n = 0;
    char *p = line;
    while (n < F_N) {
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

static int load_rows(const char *path, row_t *rows, int *n, kv_err *err)
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
        if (*n >= MAX_ROWS) {
            fclose(fp);
            return kv_errf(err, "%s:%d: more than %d rows", path, ln, MAX_ROWS);
        }
        int nf = csv_split(line, &rows[*n]);
        if (nf != F_N) {
            fclose(fp);
            return kv_errf(err, "%s:%d: %d fields, expected %d (%s, ..., source)", path, ln, nf, F_N, field_names[0]);
        }
        rows[*n].line = ln;
        (*n)++;
    }
    fclose(fp);
    return 0;
}

static int field_i64(const char *path, const row_t *r, int f, int64_t lo, int64_t hi, int64_t *out, kv_err *err)
{
    char what[600];
    snprintf(what, sizeof what, "%s:%d: column '%s'", path, r->line, field_names[f]);
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

static int apply_ref(const char *path, const row_t *r, setup_t *s, kv_err *err)
{
    const char *ref = r->f[F_REF], *eq = strchr(ref, '=');
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

static int setup_row(const char *path, const char *base, const row_t *r, setup_t *s, kv_err *err)
{
    char b1[1100], b2[1100], b3[1100];
    int64_t budget, ctx, nw;
    memset(s, 0, sizeof *s);
    if (mdl_model_load(resolve_path(r->f[F_MODEL], base, b1, sizeof b1), &s->model, err) != 0 ||
        hw_model_load(resolve_path(r->f[F_HW], base, b2, sizeof b2), &s->hw, err) != 0)
        return -1;
    if (strcmp(r->f[F_ENGINE], "-")) {
        if (eng_load(resolve_path(r->f[F_ENGINE], base, b3, sizeof b3), &s->eng, err) != 0)
            return -1;
        s->has_eng = 1;
    }
    if (sim_weight_dtype_parse(r->f[F_WDT], (double)s->model.hidden_size, &s->wd, err) != 0 ||
        field_i64(path, r, F_BUDGET, 0, 1 << 24, &budget, err) || field_i64(path, r, F_CTX, 1, 1 << 24, &ctx, err) ||
        field_i64(path, r, F_NEW, 1, 1 << 20, &nw, err) || field_i64(path, r, F_BATCH, 1, 1 << 20, &s->batch, err) ||
        field_i64(path, r, F_TP, 1, 1024, &s->tp, err))
        return -1;
    rkv_request_defaults(&s->rq);
    if (rkv_dtype_parse(r->f[F_KVD], &s->rq.kv_dtype) != 0)
        return kv_errf(err, "%s:%d: column 'kv_dtype': unknown '%s'", path, r->line, r->f[F_KVD]);
    s->rq.d = s->model.head_dim;
    s->rq.G = mdl_group_size(&s->model);
    s->rq.model_max_len = 1 << 24;
    s->rq.context = ctx;
    s->rq.max_new = nw;
    if (budget > 0) s->rq.budget = budget;
    snprintf(s->method, sizeof s->method, "%s", r->f[F_METHOD]);
    s->harness = SIM_HARNESS_ENGINE;
    if (strcmp(r->f[F_HARNESS], "-") && sim_harness_parse(r->f[F_HARNESS], &s->harness) != 0)
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
    cli_sim_apply_policy(&c, s->has_eng ? &s->eng : NULL, 0.0, &s->wd);
    return sim_predict(&c, res, err);
}

/* The row's metric from one prediction (and its reference for ratios). */
static int metric_of(const char *path, const row_t *r, const setup_t *s, const sim_result *x, const sim_result *ref,
                     double *out, kv_err *err)
{
    const char *m = r->f[F_METRIC];
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

static int eval_row(const char *path, const char *base, const row_t *r, result_t *o, kv_err *err)
{
    setup_t s, sr;
    sim_result x, y;
    o->cat = -1;
    for (int i = 0; i < NCAT; i++)
        if (!strcmp(r->f[F_CAT], cat_names[i])) o->cat = i;
    if (o->cat < 0)
        return kv_errf(err, "%s:%d: column 'category': unknown '%s' (decode, ttft, kv_capacity, speedup, fit)", path,
                       r->line, r->f[F_CAT]);
    char what[600];
    snprintf(what, sizeof what, "%s:%d: column 'measured'", path, r->line);
    if (kv_parse_f64_in(what, r->f[F_MEAS], 0.0, 1e18, &o->measured, err) != 0 ||
        setup_row(path, base, r, &s, err) != 0 || run_setup(&s, &x, err) != 0)
        return -1;
    const int has_ref = strcmp(r->f[F_REF], "-") != 0;
    if (has_ref) {
        sr = s;
        if (apply_ref(path, r, &sr, err) != 0 || run_setup(&sr, &y, err) != 0)
            return -1;
    }
    if (metric_of(path, r, &s, &x, has_ref ? &y : NULL, &o->predicted, err) != 0)
        return -1;
    if (o->cat == NCAT - 1)
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

/* Median and nearest-rank p90 of |err| over category c; worst's row index. */
static int cat_stats(const result_t *res, int n, int c, double *med, double *p90, int *worst)
{
    static double v[MAX_ROWS];
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

static int load_thresholds(const char *path, double *tmed, double *tp90, kv_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return kv_errf(err, "%s: cannot open", path);
    char line[512], cat[64], a[64], b[64];
    int ln = 0, rc = 0;
    for (int i = 0; i < NCAT; i++) tmed[i] = tp90[i] = INFINITY;
    while (!rc && fgets(line, sizeof line, fp)) {
        ln++;
        if (ln == 1 || line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%63[^,],%63[^,],%63[^,\n]", cat, a, b) != 3) {
            rc = kv_errf(err, "%s:%d: expected category,median_max,p90_max", path, ln);
            break;
        }
        int c = -1;
        for (int i = 0; i < NCAT; i++)
            if (!strcmp(cat, cat_names[i])) c = i;
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

static void print_point(const row_t *r, const result_t *o, int quiet)
{
    if (quiet) return;
    if (o->cat == NCAT - 1)
        printf("%-44s %-11s %12s %12s %8s\n", r->f[F_ID], cat_names[o->cat], o->measured != 0 ? "fits" : "no",
               o->predicted != 0 ? "fits" : "NO", o->err == 0 ? "right" : "WRONG");
    else
        printf("%-44s %-11s %12.6g %12.6g %+7.1f%%\n", r->f[F_ID], cat_names[o->cat], o->measured, o->predicted,
               100.0 * o->err);
}

/* The per-category table and the threshold verdict; returns the number of categories past a threshold. */
static int summarize(const row_t *rows, const result_t *res, int n, const double *tmed, const double *tp90)
{
    int bad = 0;
    printf("\n%-11s %4s %9s %9s %9s  %-44s %s\n", "category", "n", "median", "p90", "worst", "worst point",
           "goal");
    for (int c = 0; c < NCAT; c++) {
        double med = 0, p90 = 0;
        int w;
        int k = cat_stats(res, n, c, &med, &p90, &w);
        if (k == 0) continue;
        const int past = med > tmed[c] || p90 > tp90[c];
        bad += past;
        if (c == NCAT - 1) {
            int wrong = 0;
            for (int i = 0; i < n; i++) wrong += res[i].cat == c && res[i].err != 0.0;
            printf("%-11s %4d %9s %9s %9s  %-44s all right: %s%s\n", cat_names[c], k, "", "", "",
                   wrong ? rows[w].f[F_ID] : "-", wrong ? "NOT met" : "met", past ? "  [past threshold]" : "");
            printf("%-11s %4s %d of %d verdicts right\n", "", "", k - wrong, k);
            continue;
        }
        char goal[96];
        int met = med <= goal_median[c] && (goal_p90[c] == 0.0 || p90 <= goal_p90[c]);
        if (goal_p90[c] > 0.0)
            snprintf(goal, sizeof goal, "median <= %.0f%%, p90 <= %.0f%%: %s", 100 * goal_median[c], 100 * goal_p90[c],
                     met ? "met" : "NOT met");
        else
            snprintf(goal, sizeof goal, "median <= %.0f%%: %s", 100 * goal_median[c], met ? "met" : "NOT met");
        printf("%-11s %4d %8.1f%% %8.1f%% %8.1f%%  %-44s %s%s\n", cat_names[c], k, 100 * med, 100 * p90,
               100 * fabs(res[w].err), rows[w].f[F_ID], goal, past ? "  [past threshold]" : "");
    }
    return bad;
}

int cmd_check_published(int argc, char **argv)
{
    static const char *const flags[] = {"help", "quiet", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim check-published", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *set = cli_opt_str(&o, "set", KVSIM_DATADIR "/validation/published.csv");
    const char *thr = cli_opt_str(&o, "thresholds", KVSIM_DATADIR "/validation/thresholds.csv");
    const int quiet = cli_opt_flag(&o, "quiet");
    if (o.npos > 0 || cli_opts_unused(&o) != 0) {
        if (o.npos > 0) cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    static row_t rows[MAX_ROWS];
    static result_t res[MAX_ROWS];
    int n;
    kv_err err;
    double tmed[NCAT], tp90[NCAT];
    if (load_rows(set, rows, &n, &err) != 0 || load_thresholds(thr, tmed, tp90, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    char base[1024];
    snprintf(base, sizeof base, "%s", set);
    char *slash = strrchr(base, '/');
    if (slash) *slash = '\0'; else snprintf(base, sizeof base, ".");
    strncat(base, "/..", sizeof base - strlen(base) - 1);
    for (int i = 0; i < n; i++)
        if (eval_row(set, base, &rows[i], &res[i], &err) != 0) {
            cli_error(o.prog, "%s (row %s)", err.msg, rows[i].f[F_ID]);
            return CLI_FAIL;
        }
    if (!quiet)
        printf("%-44s %-11s %12s %12s %8s\n", "point", "category", "measured", "predicted", "error");
    for (int i = 0; i < n; i++) print_point(&rows[i], &res[i], quiet);
    const int bad = summarize(rows, res, n, tmed, tp90);
    printf("%d points from %s; thresholds %s: %s\n", n, set, thr,
           bad ? "a category is past its threshold" : "every category within");
    return bad ? CLI_FAIL : CLI_OK;
}
