/* finish.c — the end of a sweep: rows put back in point order, the Pareto
 * columns, the atomic write of the CSV, and swp_merge of shard outputs. */
#define _POSIX_C_SOURCE 200809L
#include "swp.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "swp_finish.h"

int swp_write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ---- finishing: rows in point order, Pareto columns, atomic write ------------ */

int swp_col(const char *name)
{
    for (int i = 0; swp_columns[i]; i++)
        if (!strcmp(swp_columns[i], name)) return i;
    return -1;
}

static int cmp_index(const void *a, const void *b)
{
    const swp_row_ref *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* Pareto groups: points that differ only in (method, budget). */
static const char *const group_cols[] = {"model", "hw", "tp", "harness", "context", "batch"};
#define NGROUP 6
static const swp_row_ref *g_rows;
static int g_col[NGROUP];
static int cmp_group(const void *a, const void *b)
{
    const swp_row_ref *x = &g_rows[*(const size_t *)a], *y = &g_rows[*(const size_t *)b];
    for (int i = 0; i < NGROUP; i++) {
        int c = strcmp(x->f[g_col[i]], y->f[g_col[i]]);
        if (c) return c;
    }
    return (x->index > y->index) - (x->index < y->index);
}

double swp_num(const char *s)
{
    char *end;
    if (!*s) return NAN;
    double v = strtod(s, &end);
    return *end ? NAN : v;
}

int swp_check_columns(const swp_table *t, const char *path, kv_err *err)
{
    int n = swp_ncolumns();
    if (t->ncols != n)
        return kv_errf(err, "%s: %d columns; expected the %d of a kvsim %s sweep CSV", path, t->ncols, n, KV_VERSION);
    for (int i = 0; i < n; i++)
        if (strcmp(t->cols[i], swp_columns[i]))
            return kv_errf(err, "%s: column %d is '%s'; expected '%s'", path, i + 1, t->cols[i], swp_columns[i]);
    return 0;
}

int swp_row_index(const swp_table *t, size_t r, const char *path, int64_t npoints, int64_t *out, kv_err *err)
{
    if (kv_parse_int64(t->rows[r][0], out) != 0 || *out < 0 || *out >= npoints)
        return kv_errf(err, "%s: row %zu: point '%s' is not in 0..%lld", path, r + 1, t->rows[r][0],
                       (long long)npoints - 1);
    return 0;
}

/* Sorts rows by point, rejects duplicates, marks the Pareto columns and
 * writes comments + header + rows to out through a temporary name. */
int swp_finish(swp_row_ref *rows, size_t n, char *const *comments, size_t ncomments, const char *out, kv_err *err)
{
    qsort(rows, n, sizeof *rows, cmp_index);
    for (size_t i = 1; i < n; i++)
        if (rows[i].index == rows[i - 1].index)
            return kv_errf(err, "point %lld appears twice (%s and %s); expected each point once", (long long)rows[i].index,
                           rows[i - 1].src, rows[i].src);
    const int ncol = swp_ncolumns();
    const int c_fit = swp_col("fits"), c_sp = swp_col("speedup_vs_full"), c_peak = swp_col("peak_bytes"),
              c_fid = swp_col("fid_mass_recall");
    char (*mark)[2][2] = calloc(n ? n : 1, sizeof *mark);
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    double *x = malloc((n ? n : 1) * sizeof *x), *y = malloc((n ? n : 1) * sizeof *y), *mx = malloc((n ? n : 1) * sizeof *mx);
    int *el = malloc((n ? n : 1) * sizeof *el), *fs = malloc((n ? n : 1) * sizeof *fs), *fm = malloc((n ? n : 1) * sizeof *fm);
    int rc = -1;
    if (!mark || !perm || !x || !y || !mx || !el || !fs || !fm) {
        kv_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < NGROUP; i++) g_col[i] = swp_col(group_cols[i]);
    g_rows = rows;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    qsort(perm, n, sizeof *perm, cmp_group);
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n) {
            int same = 1;
            for (int g = 0; g < NGROUP && same; g++)
                same = !strcmp(rows[perm[a]].f[g_col[g]], rows[perm[b]].f[g_col[g]]);
            if (!same) break;
            b++;
        }
        const size_t m = b - a;
        for (size_t k = 0; k < m; k++) {
            char **f = rows[perm[a + k]].f;
            x[k] = swp_num(f[c_sp]);
            y[k] = swp_num(f[c_fid]);
            mx[k] = -swp_num(f[c_peak]);
            el[k] = !strcmp(f[c_fit], "1");
        }
        swp_pareto_front(x, y, el, m, fs);
        swp_pareto_front(mx, y, el, m, fm);
        for (size_t k = 0; k < m; k++) {
            char (*mk)[2] = mark[perm[a + k]];
            if (isnan(y[k])) continue; /* no fidelity: columns stay empty */
            mk[0][0] = fs[k] ? '1' : '0';
            mk[1][0] = fm[k] ? '1' : '0';
        }
        a = b;
    }
    kv_afile af;
    if (kv_afile_open(&af, out, err) != 0)
        goto done;
    for (size_t i = 0; i < ncomments; i++) fprintf(af.fp, "%s\n", comments[i]);
    for (int i = 0; i < ncol; i++) fprintf(af.fp, "%s%s", i ? "," : "", swp_columns[i]);
    fputc('\n', af.fp);
    for (size_t r = 0; r < n; r++) {
        for (int i = 0; i < ncol - 2; i++) {
            fputs(rows[r].f[i], af.fp);
            fputc(',', af.fp);
        }
        fprintf(af.fp, "%s,%s\n", mark[r][0], mark[r][1]);
    }
    if (kv_afile_commit(&af, err) != 0)
        goto done;
    rc = 0;
done:
    free(mark); free(perm); free(x); free(y); free(mx); free(el); free(fs); free(fm);
    return rc;
}

/* ---- merge ------------------------------------------------------------------------ */
int swp_merge(const char *const *paths, int n, const char *out, kv_err *err)
{
    if (n < 1)
        return kv_errf(err, "--merge needs at least one shard CSV");
    swp_table *t = calloc((size_t)n, sizeof *t);
    swp_row_ref *rows = NULL;
    char **comments = NULL;
    int rc = -1;
    if (!t) return kv_errf(err, "out of memory");
    size_t total = 0;
    int64_t npoints = 0;
    const char *id0 = NULL;
    for (int i = 0; i < n; i++) {
        if (swp_table_load(paths[i], 0, &t[i], err) != 0 || swp_check_columns(&t[i], paths[i], err) != 0)
            goto done;
        const char *id = swp_table_meta(&t[i], "id"), *np = swp_table_meta(&t[i], "points");
        int64_t v;
        if (!id || !np || kv_parse_int64(np, &v) != 0) {
            kv_errf(err, "%s: no '# id' and '# points' header lines; expected a CSV written by kvsim sweep", paths[i]);
            goto done;
        }
        if (i == 0) {
            id0 = id;
            npoints = v;
        } else if (strcmp(id, id0) || v != npoints) {
            kv_errf(err, "%s: from a different sweep than %s (id %s vs %s); shards must come from one spec and the "
                    "same input files", paths[i], paths[0], id, id0);
            goto done;
        }
        total += t[i].nrows;
    }
    rows = calloc(total ? total : 1, sizeof *rows);
    comments = calloc(t[0].ncomments + 1, sizeof *comments);
    if (!rows || !comments) { kv_errf(err, "out of memory"); goto done; }
    size_t k = 0;
    for (int i = 0; i < n; i++)
        for (size_t r = 0; r < t[i].nrows; r++, k++) {
            rows[k].f = t[i].rows[r];
            rows[k].src = paths[i];
            if (swp_row_index(&t[i], r, paths[i], npoints, &rows[k].index, err) != 0) goto done;
        }
    static char shard_line[128];
    snprintf(shard_line, sizeof shard_line, "# shard merged from %d file(s)", n);
    for (size_t i = 0; i < t[0].ncomments; i++)
        comments[i] = strncmp(t[0].comments[i], "# shard ", 8) ? t[0].comments[i] : shard_line;
    if ((int64_t)total < npoints) {
        /* name the first missing point */
        qsort(rows, total, sizeof *rows, cmp_index);
        int64_t miss = 0;
        for (size_t r = 0; r < total && rows[r].index == miss; r++) miss++;
        kv_errf(err, "%lld of %lld points missing (first: point %lld); merge every shard of the sweep",
                (long long)(npoints - (int64_t)total), (long long)npoints, (long long)miss);
        goto done;
    }
    if (swp_finish(rows, total, comments, t[0].ncomments, out, err) != 0)
        goto done;
    rc = 0;
done:
    for (int i = 0; i < n; i++) swp_table_free(&t[i]);
    free(t);
    free(rows);
    free(comments);
    return rc;
}
