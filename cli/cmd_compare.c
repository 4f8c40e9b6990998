/* cmd_compare.c — `kvsim compare DIR_EXPECTED DIR_ACTUAL`: checks another
 * implementation's tensors (same file names, .npy) against a `kvsim golden`
 * directory, stage by stage, with the rule the manifest gives per tensor:
 *   set  — index sets must be equal; every difference is listed with its
 *          score and the gap to the expected set's threshold score (the
 *          smallest score it took), so near-tie flips are visible as such;
 *   tol  — |actual − expected| <= atol + rtol·|expected| elementwise, NaN
 *          fails; the normalised error ‖a − e‖₂/‖e‖₂ is reported too;
 *   none — an input, not compared.
 * A missing or malformed actual file fails its stage. Exit 0 when every
 * stage passes, 1 otherwise, 2 on bad usage. */
#include "cli.h"
#include "golden.h"
#include "kv_jsonr.h"
#include "npy.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 16
#define NEAR_TIE_REL 1e-6

typedef struct {
    char name[32];
    int fail;
    char summary[600];
} stage_result;

static stage_result *stage_of(stage_result *st, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(st[i].name, name))
            return &st[i];
    if (*n >= MAX_STAGES)
        return &st[MAX_STAGES - 1];
    stage_result *s = &st[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static void appendf(stage_result *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(stage_result *s, const char *fmt, ...)
{
    size_t l = strlen(s->summary);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->summary + l, sizeof s->summary - l, fmt, ap);
    va_end(ap);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t *sorted_ints(const cli_npy *a)
{
    int64_t *v = malloc(sizeof *v * (size_t)(a->n ? a->n : 1));
    if (!v)
        return NULL;
    for (int64_t i = 0; i < a->n; i++)
        v[i] = (int64_t)cli_npy_get(a, i);
    qsort(v, (size_t)a->n, sizeof *v, cmp_i64);
    return v;
}

static int bsearch_i64(const int64_t *v, int64_t n, int64_t x)
{
    return bsearch(&x, v, (size_t)n, sizeof *v, cmp_i64) != NULL;
}

/* Index sets, exact; differences listed with score gaps. Returns 1 on a
 * difference. */
static int compare_set(const char *name, const cli_npy *e, const cli_npy *a, const cli_npy *scores, FILE *out,
                       stage_result *s)
{
    if (e->dtype == CLI_NPY_F32 || e->dtype == CLI_NPY_F64 || a->dtype == CLI_NPY_F32 || a->dtype == CLI_NPY_F64) {
        appendf(s, " %s: not an integer array;", name);
        return 1;
    }
    int64_t *ve = sorted_ints(e), *va = sorted_ints(a);
    if (!ve || !va) {
        free(ve);
        free(va);
        appendf(s, " %s: out of memory;", name);
        return 1;
    }
    double T = INFINITY;
    if (scores)
        for (int64_t i = 0; i < e->n; i++)
            if (ve[i] >= 0 && ve[i] < scores->n && cli_npy_get(scores, ve[i]) < T)
                T = cli_npy_get(scores, ve[i]);
    int64_t ndiff = 0, nnear = 0, shown = 0;
    double worst_gap = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int64_t *from = pass ? va : ve, *other = pass ? ve : va;
        int64_t nf = pass ? a->n : e->n, no = pass ? e->n : a->n;
        for (int64_t i = 0; i < nf; i++) {
            if (bsearch_i64(other, no, from[i]))
                continue;
            ndiff++;
            int has = scores && from[i] >= 0 && from[i] < scores->n && isfinite(T);
            double sc = has ? cli_npy_get(scores, from[i]) : NAN, gap = sc - T;
            if (has && fabs(gap) <= NEAR_TIE_REL * fabs(T)) {
                nnear++;
                worst_gap = fmax(worst_gap, fabs(gap));
            }
            if (shown++ < 8) {
                if (has)
                    fprintf(out, "    %s: %s %lld (score %.17g, gap to threshold %.3g%s)\n", name,
                            pass ? "unexpected" : "missing", (long long)from[i], sc, gap,
                            fabs(gap) <= NEAR_TIE_REL * fabs(T) ? ", near-tie" : "");
                else
                    fprintf(out, "    %s: %s %lld\n", name, pass ? "unexpected" : "missing", (long long)from[i]);
            }
        }
    }
    if (ndiff == 0)
        appendf(s, " %s: exact (%lld);", name, (long long)e->n);
    else
        appendf(s, " %s: %lld differ (%lld near-ties, max gap %.3g) of %lld;", name, (long long)ndiff,
                (long long)nnear, worst_gap, (long long)e->n);
    free(ve);
    free(va);
    return ndiff != 0;
}

static int compare_tol(const char *name, const cli_npy *e, const cli_npy *a, double atol, double rtol,
                       stage_result *s)
{
    double se = 0, sd = 0, mabs = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < e->n; i++) {
        double x = cli_npy_get(e, i), y = cli_npy_get(a, i), dlt = fabs(y - x);
        if (!(dlt <= atol + rtol * fabs(x)) && !(x != x && y != y))
            bad++;
        if (dlt > mabs || dlt != dlt)
            mabs = dlt;
        se += x * x;
        sd += (y - x) * (y - x);
    }
    double nerr = se > 0 ? sqrt(sd / se) : sqrt(sd);
    appendf(s, " %s: %s max abs %.3g, norm err %.3g", name, bad ? "FAIL" : "ok", mabs, nerr);
    if (bad)
        appendf(s, ", %lld outside %.3g+%.3g|ref|", (long long)bad, atol, rtol);
    appendf(s, ";");
    return bad != 0;
}

static const char *jstr(const kv_jsonr_node *o, const char *k)
{
    const kv_jsonr_node *v = kv_jsonr_get(o, k);
    return v && v->kind == KV_JSONR_STR ? v->str : NULL;
}

static double jnum(const kv_jsonr_node *o, const char *k, double def)
{
    const kv_jsonr_node *v = kv_jsonr_get(o, k);
    return v && v->kind == KV_JSONR_NUM ? v->num : def;
}

int cli_compare_dirs(const char *expected, const char *actual, FILE *out, kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", expected);
    kv_jsonr_doc doc;
    if (kv_jsonr_load_file(&doc, path, err) != 0)
        return -1;
    const char *kind = jstr(doc.root, "kind");
    const kv_jsonr_node *ts = kv_jsonr_get(doc.root, "tensors");
    if (!kind || strcmp(kind, "kvsim-golden") != 0 || !ts || ts->kind != KV_JSONR_ARR) {
        kv_errf(err, "%s: expected a kvsim-golden manifest with a \"tensors\" array", path);
        kv_jsonr_free(&doc);
        return -1;
    }
    stage_result st[MAX_STAGES];
    int nst = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const kv_jsonr_node *t = ts->items[i];
        const char *name = jstr(t, "name"), *file = jstr(t, "file"), *stage = jstr(t, "stage");
        const char *role = jstr(t, "role"), *cmp = jstr(t, "compare"), *scn = jstr(t, "scores");
        if (!name || !file || !stage || !role || !cmp || strchr(file, '/')) {
            kv_errf(err, "%s:%d:%d: tensor entry needs name, file (no '/'), stage, role, compare", path, t->line,
                    t->col);
            kv_jsonr_free(&doc);
            return -1;
        }
        if (strcmp(role, "expected") != 0 || !strcmp(cmp, "none"))
            continue;
        stage_result *s = stage_of(st, &nst, stage);
        cli_npy e, a, sc;
        kv_err e1, e2;
        snprintf(path, sizeof path, "%s/%s", expected, file);
        if (cli_npy_read(path, &e, &e1) != 0) {
            kv_errf(err, "%s", e1.msg);
            kv_jsonr_free(&doc);
            return -1;
        }
        snprintf(path, sizeof path, "%s/%s", actual, file);
        if (cli_npy_read(path, &a, &e2) != 0) {
            s->fail = 1;
            appendf(s, " %s: %s;", name, e2.msg);
            cli_npy_free(&e);
            continue;
        }
        int shape_ok = !strcmp(cmp, "set") ? (a.ndim == 1 && e.ndim == 1) : (a.ndim == e.ndim && a.n == e.n);
        for (int d = 0; shape_ok && strcmp(cmp, "set") && d < e.ndim; d++)
            shape_ok = a.shape[d] == e.shape[d];
        if (!shape_ok) {
            s->fail = 1;
            appendf(s, " %s: shape differs from the expected one;", name);
        } else if (!strcmp(cmp, "set")) {
            int have_sc = 0;
            if (scn) {
                snprintf(path, sizeof path, "%s/%s.npy", expected, scn);
                have_sc = cli_npy_read(path, &sc, &e1) == 0;
            }
            s->fail |= compare_set(name, &e, &a, have_sc ? &sc : NULL, out, s);
            if (have_sc)
                cli_npy_free(&sc);
        } else if (!strcmp(cmp, "tol")) {
            s->fail |= compare_tol(name, &e, &a, jnum(t, "atol", 0), jnum(t, "rtol", 0), s);
        } else {
            s->fail = 1;
            appendf(s, " %s: unknown compare rule '%s';", name, cmp);
        }
        cli_npy_free(&e);
        cli_npy_free(&a);
    }
    int any = 0;
    for (int i = 0; i < nst; i++) {
        fprintf(out, "%-12s %s %s\n", st[i].name, st[i].fail ? "FAIL" : "PASS", st[i].summary);
        any |= st[i].fail;
    }
    fprintf(out, "%s: %d stage(s), %s\n", any ? "FAIL" : "PASS", nst, any ? "some differ" : "all match");
    kv_jsonr_free(&doc);
    return any ? 1 : 0;
}

int cmd_compare(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim compare", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        printf("usage: kvsim compare DIR_EXPECTED DIR_ACTUAL\n\n"
               "Compares the .npy tensors in DIR_ACTUAL with a `kvsim golden` directory, stage by stage:\n"
               "index sets exactly (differences listed with their score gap to the threshold, near-ties\n"
               "marked), tensors by atol + rtol·|expected| (from the manifest) with the normalised error.\n"
               "Exit 0 when every stage passes, 1 when any fails.\n");
        return CLI_OK;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (o.npos != 2) {
        cli_error(o.prog, "expected two directories, DIR_EXPECTED DIR_ACTUAL (got %d arguments)", o.npos);
        return CLI_USAGE;
    }
    kv_err err;
    int rc = cli_compare_dirs(o.pos[0], o.pos[1], stdout, &err);
    if (rc < 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    return rc ? CLI_FAIL : CLI_OK;
}
