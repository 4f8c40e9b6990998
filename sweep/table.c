/* table.c — the sweep CSV: its column contract, a reader (header comments,
 * one header row, rows of exactly that many comma-separated fields; no
 * quoting, because no field ever holds a comma), and the Pareto front.
 *
 * The reader keeps fields as text: finishing and merging a sweep copies them
 * unchanged, which is what makes a merged file equal an unsharded one byte
 * for byte. */
#include "swp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const swp_columns[] = {
    "point", "model", "hw", "tp", "harness", "method", "budget", "context", "new", "batch",
    "step_time_s", "tokens_per_s", "ttft_s", "full_step_time_s", "speedup_vs_full",
    "peak_bytes", "kv_bytes", "aux_bytes", "weights_bytes", "capacity_bytes", "full_peak_bytes", "fits", "max_batch",
    "fid_context", "fid_mass_recall", "fid_output_rel_err", "fid_topk_recall", "fid_stage1_survival",
    "pareto_speed_fidelity", "pareto_memory_fidelity", NULL};

int swp_ncolumns(void)
{
    int n = 0;
    while (swp_columns[n]) n++;
    return n;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Splits line[0..n) at commas into a new array of strings. */
static char **split(const char *line, size_t n, int *count)
{
    int k = 1;
    for (size_t i = 0; i < n; i++) k += line[i] == ',';
    char **f = calloc((size_t)k, sizeof *f);
    if (!f) return NULL;
    size_t a = 0;
    int j = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || line[i] == ',') {
            if (!(f[j++] = dupn(line + a, i - a))) {
                for (int q = 0; q < j - 1; q++) free(f[q]);
                free(f);
                return NULL;
            }
            a = i + 1;
        }
    *count = k;
    return f;
}

static void free_fields(char **f, int n)
{
    if (!f) return;
    for (int i = 0; i < n; i++) free(f[i]);
    free(f);
}

void swp_table_free(swp_table *t)
{
    for (size_t r = 0; r < t->nrows; r++) free_fields(t->rows[r], t->ncols);
    free(t->rows);
    free_fields(t->cols, t->ncols);
    for (size_t i = 0; i < t->ncomments; i++) free(t->comments[i]);
    free(t->comments);
    memset(t, 0, sizeof *t);
}

static char *slurp(const char *path, size_t *len, kv_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        kv_errf(err, "%s: %s", path, bad ? "read error" : "out of memory");
        return NULL;
    }
    *len = n;
    return buf;
}

int swp_table_load(const char *path, int tolerate_tail, swp_table *t, kv_err *err)
{
    memset(t, 0, sizeof *t);
    size_t len;
    char *buf = slurp(path, &len, err);
    if (!buf)
        return -1;
    size_t pos = 0, rcap = 0, ccap = 0;
    int line = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        line++;
        if (!nl) {
            if (tolerate_tail)
                break;
            kv_errf(err, "%s:%d: last line has no newline (a truncated file? --resume continues an interrupted sweep)",
                    path, line);
            goto fail;
        }
        size_t n = (size_t)(nl - (buf + pos));
        const char *s = buf + pos;
        if (n > 0 && s[0] == '#') {
            if (t->cols) {
                kv_errf(err, "%s:%d: comment line after the column header; expected a row", path, line);
                goto fail;
            }
            if (t->ncomments == ccap) {
                ccap = ccap ? 2 * ccap : 16;
                char **nc = realloc(t->comments, ccap * sizeof *nc);
                if (!nc) goto oom;
                t->comments = nc;
            }
            if (!(t->comments[t->ncomments] = dupn(s, n))) goto oom;
            t->ncomments++;
        } else if (!t->cols) {
            if (!(t->cols = split(s, n, &t->ncols))) goto oom;
        } else {
            int k;
            char **f = split(s, n, &k);
            if (!f) goto oom;
            if (k != t->ncols) {
                free_fields(f, k);
                kv_errf(err, "%s:%d: %d fields; expected %d as in the header row", path, line, k, t->ncols);
                goto fail;
            }
            if (t->nrows == rcap) {
                rcap = rcap ? 2 * rcap : 256;
                char ***nr = realloc(t->rows, rcap * sizeof *nr);
                if (!nr) { free_fields(f, k); goto oom; }
                t->rows = nr;
            }
            t->rows[t->nrows++] = f;
        }
        pos += n + 1;
        t->good_bytes = pos;
    }
    if (!t->cols) {
        kv_errf(err, "%s: no column header row; expected a kvsim sweep CSV", path);
        goto fail;
    }
    free(buf);
    return 0;
oom:
    kv_errf(err, "%s: out of memory", path);
fail:
    free(buf);
    swp_table_free(t);
    return -1;
}

int swp_table_col(const swp_table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i], name)) return i;
    return -1;
}

const char *swp_table_meta(const swp_table *t, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < t->ncomments; i++) {
        const char *c = t->comments[i];
        if (c[0] == '#' && c[1] == ' ' && !strncmp(c + 2, key, kl) && c[2 + kl] == ' ')
            return c + 3 + kl;
    }
    return NULL;
}

void swp_pareto_front(const double *x, const double *y, const int *eligible, size_t n, int *front)
{
    for (size_t i = 0; i < n; i++) {
        front[i] = 0;
        if ((eligible && !eligible[i]) || isnan(x[i]) || isnan(y[i]))
            continue;
        int dominated = 0;
        for (size_t j = 0; j < n && !dominated; j++) {
            if (j == i || (eligible && !eligible[j]) || isnan(x[j]) || isnan(y[j]))
                continue;
            dominated = x[j] >= x[i] && y[j] >= y[i] && (x[j] > x[i] || y[j] > y[i]);
        }
        front[i] = !dominated;
    }
}
