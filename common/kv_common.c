/* kv_common.c — error record, atomic files, JSON emitter, statistics.
 * See kv_common.h. Nothing here allocates except kv_stats_compute's caller.
 * The atomic files and the output-path checks are in kv_afile.c. */
#define _POSIX_C_SOURCE 200809L
#include "kv_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int kv_errf(kv_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- JSON ---- */
void kv_json_init(kv_json *j, FILE *fp)
{
    memset(j, 0, sizeof *j);
    j->fp = fp;
}

static void json_pre(kv_json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0 && j->need_comma[j->depth])
        fputc(',', j->fp);
    if (j->depth > 0)
        j->need_comma[j->depth] = 1;
}

static void json_open(kv_json *j, char c)
{
    json_pre(j);
    fputc(c, j->fp);
    if (j->depth < 31)
        j->depth++;
    j->need_comma[j->depth] = 0;
}

static void json_close(kv_json *j, char c)
{
    fputc(c, j->fp);
    if (j->depth > 0)
        j->depth--;
    if (j->depth == 0)
        fputc('\n', j->fp);
}

void kv_json_obj_begin(kv_json *j) { json_open(j, '{'); }
void kv_json_obj_end(kv_json *j) { json_close(j, '}'); }
void kv_json_arr_begin(kv_json *j) { json_open(j, '['); }
void kv_json_arr_end(kv_json *j) { json_close(j, ']'); }

static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", fp); break;
        case '\\': fputs("\\\\", fp); break;
        case '\n': fputs("\\n", fp); break;
        case '\t': fputs("\\t", fp); break;
        case '\r': fputs("\\r", fp); break;
        default:
            if (*p < 0x20)
                fprintf(fp, "\\u%04x", *p);
            else
                fputc(*p, fp);
        }
    }
    fputc('"', fp);
}

void kv_json_key(kv_json *j, const char *key)
{
    json_pre(j);
    json_string(j->fp, key);
    fputc(':', j->fp);
    j->after_key = 1;
}

void kv_json_str(kv_json *j, const char *s)
{
    json_pre(j);
    json_string(j->fp, s);
}

void kv_json_num(kv_json *j, double v)
{
    json_pre(j);
    if (!isfinite(v))
        fputs("null", j->fp);
    else
        fprintf(j->fp, "%.17g", v);
}

void kv_json_int(kv_json *j, long long v)
{
    json_pre(j);
    fprintf(j->fp, "%lld", v);
}

void kv_json_bool(kv_json *j, int v)
{
    json_pre(j);
    fputs(v ? "true" : "false", j->fp);
}

void kv_json_null(kv_json *j)
{
    json_pre(j);
    fputs("null", j->fp);
}

/* ---- statistics ---- */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void kv_stats_compute(const double *data, size_t n, double *scratch, kv_stats *out)
{
    out->n = (long long)n;
    if (n == 0) {
        out->mean = out->p50 = out->p95 = out->max = out->min = NAN;
        return;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += data[i];
        scratch[i] = data[i];
    }
    qsort(scratch, n, sizeof *scratch, cmp_double);
    out->mean = sum / (double)n;
    size_t r50 = (size_t)ceil(0.50 * (double)n), r95 = (size_t)ceil(0.95 * (double)n);
    if (r50 < 1) r50 = 1;
    if (r95 < 1) r95 = 1;
    out->p50 = scratch[r50 - 1];
    out->p95 = scratch[r95 - 1];
    out->min = scratch[0];
    out->max = scratch[n - 1];
}

int kv_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, kv_err *err)
{
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    char *b = malloc(max_bytes ? max_bytes : 1);
    if (!b) {
        fclose(fp);
        return kv_errf(err, "%s: out of memory", path);
    }
    size_t n = fread(b, 1, max_bytes, fp);
    int bad = ferror(fp), big = !bad && n == max_bytes && fgetc(fp) != EOF;
    fclose(fp);
    if (bad || big) {
        free(b);
        return bad ? kv_errf(err, "%s: read error", path) : kv_errf(err, "%s: larger than %zu bytes", path, max_bytes);
    }
    *buf = b;
    *len = n;
    return 0;
}

int kv_read_text(const char *path, size_t max_bytes, char **buf, size_t *len, kv_err *err)
{
    struct stat st;
    *buf = NULL;
    *len = 0;
    if (kv_in_check(path, max_bytes, err) != 0 || stat(path, &st) != 0)
        return -1;
    /* one byte more than the size: room for the NUL, and a file that grew is refused */
    if (kv_read_file(path, (size_t)st.st_size + 1, buf, len, err) != 0)
        return -1;
    if (*len > max_bytes) {
        free(*buf);
        *buf = NULL;
        return kv_errf(err, "%s: larger than %zu bytes", path, max_bytes);
    }
    (*buf)[*len] = '\0';
    return 0;
}

double kv_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kv_parse_int64(const char *s, int64_t *out)
{
    /* strtoll alone would also take leading blanks and a '+' */
    if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == 'K' || *end == 'k') {
        if (v > INT64_MAX / 1024 || v < INT64_MIN / 1024) return -1;
        v *= 1024;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        if (v > INT64_MAX / (1024 * 1024) || v < INT64_MIN / (1024 * 1024)) return -1;
        v *= 1024 * 1024;
        end++;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int kv_parse_double(const char *s, double *out)
{
    /* strtod alone would also take leading blanks, a '+' and hex floats */
    if (!s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == 'n' || *s == 'i' || *s == 'N' ||
                *s == 'I') || strpbrk(s, "xX"))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int kv_parse_i64_in(const char *what, const char *s, int64_t lo, int64_t hi, int64_t *out, kv_err *err)
{
    int64_t v;
    if (kv_parse_int64(s, &v) != 0)
        return kv_errf(err, "%s: expected an integer in [%lld, %lld] (K/M suffixes allowed), got '%s'",
                       what, (long long)lo, (long long)hi, s ? s : "");
    if (v < lo || v > hi)
        return kv_errf(err, "%s: %s is out of range; allowed [%lld, %lld]", what, s, (long long)lo,
                       (long long)hi);
    *out = v;
    return 0;
}

int kv_parse_f64_in(const char *what, const char *s, double lo, double hi, double *out, kv_err *err)
{
    double v;
    if (kv_parse_double(s, &v) != 0 || !isfinite(v))
        return kv_errf(err, "%s: expected a finite number in [%g, %g], got '%s'", what, lo, hi, s ? s : "");
    if (!(v >= lo && v <= hi))
        return kv_errf(err, "%s: %s is out of range; allowed [%g, %g]", what, s, lo, hi);
    *out = v;
    return 0;
}

int kv_parse_i64_list(const char *what, const char *s, int64_t lo, int64_t hi, int ranges, int64_t *out, int max,
                      kv_err *err)
{
    const char *p = s ? s : "";
    int n = 0;
    for (;;) {
        const char *c = strchr(p, ',');
        const size_t len = c ? (size_t)(c - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item)
            return kv_errf(err, "%s: expected a comma list of integers%s, got '%s'", what, ranges ? " or a-b ranges" : "",
                           s ? s : "");
        memcpy(item, p, len);
        item[len] = '\0';
        char *dash = ranges ? strchr(item + 1, '-') : NULL; /* item + 1: a leading '-' is a sign */
        if (dash) *dash = '\0';
        /* an item is [-]digits[K|M]: no sign '+', no blanks (strtoll would take them) */
        if (!(isdigit((unsigned char)item[0]) || item[0] == '-') || (dash && !isdigit((unsigned char)dash[1]))) {
            if (dash) *dash = '-';
            return kv_errf(err, "%s: '%s': expected digits", what, item);
        }
        int64_t a = 0, b = 0;
        if (kv_parse_i64_in(what, item, lo, hi, &a, err) != 0) return -1;
        b = a;
        if (dash && kv_parse_i64_in(what, dash + 1, lo, hi, &b, err) != 0) return -1;
        if (b < a)
            return kv_errf(err, "%s: range %s-%s runs backwards", what, item, dash + 1);
        if (b - a >= (int64_t)(max - n))
            return kv_errf(err, "%s: more than %d values in '%s'", what, max, s);
        for (int64_t v = a; v <= b; v++) out[n++] = v;
        if (!c) return n;
        p = c + 1;
    }
}
