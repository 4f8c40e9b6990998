/* gld_compare.c — another implementation's tensors against a golden
 * directory, with the rule its manifest gives per tensor:
 *   set    — per row, entries unique, in [0, index_range), −1 only as
 *            trailing padding, and the set equal to the expected one; every
 *            difference is listed with its score and the gap to the
 *            expected set's threshold (its smallest score), near-ties marked;
 *   bound  — |actual − expected| <= bound + atol elementwise (bound from
 *            the manifest's bound_file), NaN fails; the worst ratio
 *            |actual − expected| / bound is reported;
 *   exact  — equal values (page min/max are copies of KV values);
 *   none   — inputs and bounds, not compared.
 * Only the tensors the candidate supplies are checked; the others are
 * listed as missing and fail only with all_stages. */
#include "gld_internal.h"
#include "kv_jsonr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NEAR_TIE_REL 1e-6
#define SHOWN_DIFFS 8

static gld_stage *stage_of(gld_result *r, const char *name)
{
    for (int i = 0; i < r->nstages; i++)
        if (!strcmp(r->st[i].name, name))
            return &r->st[i];
    if (r->nstages >= GLD_MAX_STAGES)
        return &r->st[GLD_MAX_STAGES - 1];
    gld_stage *s = &r->st[r->nstages++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static void appendf(gld_stage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(gld_stage *s, const char *fmt, ...)
{
    size_t l = strlen(s->detail);
    if (l + 1 >= sizeof s->detail)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail + l, sizeof s->detail - l, fmt, ap);
    va_end(ap);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int is_int(gld_npy_dtype t)
{
    return t == GLD_NPY_I32 || t == GLD_NPY_I64;
}

/* One row of a set: the entries before the −1 padding, checked and sorted
 * into v (n). Returns the count, or −1 with why filled. */
static int64_t row_entries(const gld_npy *a, int64_t row, int64_t n, int64_t range, int64_t *v, char *why,
                           size_t wn)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = (int64_t)gld_npy_get(a, row * n + i);
        if (x == -1) {
            for (int64_t k = i + 1; k < n; k++)
                if ((int64_t)gld_npy_get(a, row * n + k) != -1) {
                    snprintf(why, wn, "row %lld: -1 before the end of the row", (long long)row);
                    return -1;
                }
            break;
        }
        if (x < 0 || x >= range) {
            snprintf(why, wn, "row %lld: entry %lld outside [0, %lld)", (long long)row, (long long)x,
                     (long long)range);
            return -1;
        }
        v[m++] = x;
    }
    qsort(v, (size_t)m, sizeof *v, cmp_i64);
    for (int64_t i = 1; i < m; i++)
        if (v[i] == v[i - 1]) {
            snprintf(why, wn, "row %lld: duplicate entry %lld", (long long)row, (long long)v[i]);
            return -1;
        }
    return m;
}

/* Differences between two sorted rows, with score gaps; returns their count. */
static int64_t row_diff(const char *file, int64_t row, const int64_t *ve, int64_t ne, const int64_t *va,
                        int64_t na, const double *sc, int64_t nsc, FILE *out, int64_t *nnear)
{
    double T = INFINITY;
    for (int64_t i = 0; sc && i < ne; i++)
        if (ve[i] < nsc && sc[ve[i]] < T)
            T = sc[ve[i]];
    int64_t ndiff = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int64_t *from = pass ? va : ve, *other = pass ? ve : va;
        const int64_t nf = pass ? na : ne, no = pass ? ne : na;
        for (int64_t i = 0; i < nf; i++) {
            if (bsearch(&from[i], other, (size_t)no, sizeof *other, cmp_i64))
                continue;
            int has = sc && from[i] < nsc && isfinite(T);
            double s = has ? sc[from[i]] : NAN, gap = s - T;
            int near = has && fabs(gap) <= NEAR_TIE_REL * fabs(T);
            *nnear += near;
            if (out && ndiff < SHOWN_DIFFS) {
                fprintf(out, "    %s row %lld: %s %lld", file, (long long)row, pass ? "unexpected" : "missing",
                        (long long)from[i]);
                if (has)
                    fprintf(out, " (score %.17g, gap to threshold %.3g%s)", s, gap, near ? ", near-tie" : "");
                fputc('\n', out);
            }
            ndiff++;
        }
    }
    return ndiff;
}

/* Scores of row `row` (1-D scores serve every row). */
static double *score_row(const gld_npy *sc, int64_t row, int64_t *n)
{
    const int64_t w = sc->ndim == 2 ? sc->shape[1] : sc->n, off = sc->ndim == 2 ? row * w : 0;
    double *v = malloc(sizeof(double) * (size_t)(w > 0 ? w : 1));
    for (int64_t i = 0; v && i < w; i++)
        v[i] = gld_npy_get(sc, off + i);
    *n = w;
    return v;
}

static int compare_set(const char *file, const gld_npy *e, const gld_npy *a, int64_t range, const gld_npy *sc,
                       FILE *out, gld_stage *s)
{
    if (!is_int(a->dtype)) {
        appendf(s, " %s: %s, not an integer array;", file, gld_npy_dtype_name(a->dtype));
        return 1;
    }
    const int64_t rows = e->ndim == 2 ? e->shape[0] : 1;
    if (a->ndim != e->ndim || (e->ndim == 2 && a->shape[0] != rows)) {
        appendf(s, " %s: expected %d dimension(s) with %lld row(s);", file, e->ndim, (long long)rows);
        return 1;
    }
    const int64_t wa = rows ? a->n / rows : 0, we = rows ? e->n / rows : 0;
    int64_t *va = malloc(sizeof(int64_t) * (size_t)(wa + 1)), *ve = malloc(sizeof(int64_t) * (size_t)(we + 1));
    int64_t ndiff = 0, nnear = 0, bad = 0;
    char why[160];
    for (int64_t r = 0; va && ve && r < rows && !bad; r++) {
        int64_t na = row_entries(a, r, wa, range, va, why, sizeof why), ne;
        if (na < 0) {
            appendf(s, " %s: %s;", file, why);
            bad = 1;
            break;
        }
        ne = row_entries(e, r, we, INT64_MAX, ve, why, sizeof why);
        int64_t nsc = 0;
        double *scr = sc ? score_row(sc, r, &nsc) : NULL;
        ndiff += row_diff(file, r, ve, ne, va, na, scr, nsc, out, &nnear);
        free(scr);
    }
    if (!va || !ve) {
        appendf(s, " %s: out of memory;", file);
        bad = 1;
    }
    if (!bad && ndiff)
        appendf(s, " %s: %lld entries differ (%lld near-ties);", file, (long long)ndiff, (long long)nnear);
    free(va);
    free(ve);
    return bad || ndiff;
}

static int same_shape(const gld_npy *e, const gld_npy *a)
{
    if (e->ndim != a->ndim)
        return 0;
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != a->shape[d])
            return 0;
    return 1;
}

static int compare_values(const char *file, const gld_npy *e, const gld_npy *a, const gld_npy *b, double atol,
                          gld_stage *s)
{
    if (!same_shape(e, a) || is_int(a->dtype)) {
        appendf(s, " %s: expected a float array of the golden's shape;", file);
        return 1;
    }
    int64_t bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < e->n; i++) {
        double x = gld_npy_get(e, i), y = gld_npy_get(a, i), dl = fabs(y - x);
        double lim = (b ? gld_npy_get(b, i) : 0) + atol;
        if (!(dl <= lim)) {
            if (first < 0)
                first = i;
            bad++;
        }
        double ratio = lim > 0 ? dl / lim : (dl > 0 ? INFINITY : 0);
        if (!(ratio <= worst))
            worst = ratio;
    }
    if (b && !(worst <= s->worst_ratio))
        s->worst_ratio = worst;
    if (bad)
        appendf(s, " %s: %lld of %lld outside the bound (first at %lld: %.9g vs %.9g);", file, (long long)bad,
                (long long)e->n, (long long)first, gld_npy_get(a, first), gld_npy_get(e, first));
    return bad != 0;
}

static const char *jstr(const kv_jsonr_node *o, const char *k)
{
    const kv_jsonr_node *v = kv_jsonr_get(o, k);
    return v && v->kind == KV_JSONR_STR ? v->str : NULL;
}

/* A manifest path: relative, no "..". */
static int safe_rel(const char *f)
{
    return f && f[0] && f[0] != '/' && !strstr(f, "..");
}

/* Loads DIR/file; returns 0, 1 when absent (ENOENT), −1 when unreadable. */
static int load(const char *dir, const char *file, gld_npy *a, kv_err *err)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return errno == ENOENT ? 1 : kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    fclose(fp);
    return gld_npy_read(path, a, err);
}

/* One expected tensor t of the manifest. Returns 0, or −1 when the golden
 * itself is unusable (err filled). */
static int compare_tensor(const char *expected, const char *actual, const kv_jsonr_node *t, const char *mpath,
                          const gld_cmp_opts *co, FILE *out, gld_result *res, kv_err *err)
{
    const char *file = jstr(t, "file"), *stage = jstr(t, "stage"), *cmp = jstr(t, "compare");
    const char *bf = jstr(t, "bound_file"), *sf = jstr(t, "scores_file");
    const kv_jsonr_node *rg = kv_jsonr_get(t, "index_range");
    if (!safe_rel(file) || !stage || !cmp || (bf && !safe_rel(bf)) || (sf && !safe_rel(sf)))
        return kv_errf(err, "%s:%d:%d: tensor entry needs a relative file, a stage and a compare rule", mpath,
                       t->line, t->col);
    gld_stage *s = stage_of(res, stage);
    s->tensors++;
    gld_npy e, a, aux;
    memset(&aux, 0, sizeof aux);
    if (load(expected, file, &e, err) != 0)
        return -1;
    kv_err ea;
    int got = load(actual, file, &a, &ea);
    if (got == 1) {
        s->missing++;
        gld_npy_free(&e);
        return 0;
    }
    s->checked++;
    res->checked++;
    int fail = 1;
    if (got < 0) {
        appendf(s, " %s;", ea.msg);
    } else if (!strcmp(cmp, "set")) {
        if (!rg || rg->kind != KV_JSONR_NUM) {
            gld_npy_free(&e);
            gld_npy_free(&a);
            return kv_errf(err, "%s:%d:%d: a set needs index_range", mpath, t->line, t->col);
        }
        int have = sf && load(expected, sf, &aux, err) == 0;
        fail = compare_set(file, &e, &a, (int64_t)rg->num, have ? &aux : NULL, out, s);
    } else if (!strcmp(cmp, "bound") || !strcmp(cmp, "exact")) {
        int have = 0;
        if (!strcmp(cmp, "bound")) {
            if (!bf || load(expected, bf, &aux, err) != 0 || !same_shape(&aux, &e)) {
                gld_npy_free(&e);
                gld_npy_free(&a);
                gld_npy_free(&aux);
                return kv_errf(err, "%s:%d:%d: a bound tensor needs bound_file of its shape", mpath, t->line,
                               t->col);
            }
            have = 1;
        }
        fail = compare_values(file, &e, &a, have ? &aux : NULL, co->atol, s);
    } else {
        appendf(s, " %s: unknown compare rule '%s';", file, cmp);
    }
    s->failed += fail;
    gld_npy_free(&e);
    gld_npy_free(&a);
    gld_npy_free(&aux);
    return 0;
}

int gld_compare(const char *expected, const char *actual, const gld_cmp_opts *co, FILE *details, gld_result *res,
                kv_err *err)
{
    memset(res, 0, sizeof *res);
    if (!(co->atol >= 0))
        return kv_errf(err, "atol must be >= 0, got %g", co->atol);
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", expected);
    kv_jsonr_doc doc;
    if (kv_jsonr_load_file(&doc, path, err) != 0)
        return -1;
    const char *kind = jstr(doc.root, "kind");
    const kv_jsonr_node *ts = kv_jsonr_get(doc.root, "tensors"), *ver = kv_jsonr_get(doc.root, "version");
    int rc = 0;
    if (!kind || strcmp(kind, "kvsim-golden") != 0 || !ts || ts->kind != KV_JSONR_ARR || !ver ||
        ver->kind != KV_JSONR_NUM || ver->num != GLD_FORMAT_VERSION) {
        rc = kv_errf(err, "%s: expected a kvsim-golden manifest of version %d with a \"tensors\" array", path,
                     GLD_FORMAT_VERSION);
    }
    for (size_t i = 0; rc == 0 && i < ts->n; i++) {
        const char *role = jstr(ts->items[i], "role"), *cmp = jstr(ts->items[i], "compare");
        if (role && !strcmp(role, "expected") && cmp && strcmp(cmp, "none") != 0)
            rc = compare_tensor(expected, actual, ts->items[i], path, co, details, res, err);
    }
    kv_jsonr_free(&doc);
    if (rc != 0)
        return -1;
    if (res->checked == 0)
        return kv_errf(err, "%s: no tensor of the golden's manifest found (expected files such as "
                       "kvh0/step0/out.npy)", actual);
    res->pass = 1;
    for (int i = 0; i < res->nstages; i++) {
        gld_stage *s = &res->st[i];
        if (s->failed || (co->all_stages && s->missing))
            res->pass = 0;
    }
    return 0;
}

void gld_result_print(const gld_result *res, FILE *out)
{
    int64_t missing = 0;
    for (int i = 0; i < res->nstages; i++) {
        const gld_stage *s = &res->st[i];
        const char *v = s->failed ? "FAIL" : s->checked == 0 ? "MISSING" : "PASS";
        fprintf(out, "%-12s %-7s %lld/%lld tensors checked", s->name, v, (long long)s->checked,
                (long long)s->tensors);
        if (s->missing)
            fprintf(out, ", %lld missing", (long long)s->missing);
        if (s->worst_ratio > 0)
            fprintf(out, ", worst |a-e|/bound %.3g", s->worst_ratio);
        fprintf(out, "%s\n", s->detail);
        missing += s->missing;
    }
    fprintf(out, "%s: %lld tensor(s) checked, %lld missing\n", res->pass ? "PASS" : "FAIL",
            (long long)res->checked, (long long)missing);
}
