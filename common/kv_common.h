/* kv_common.h — the few things every kvsim module shares: the error record
 * that library functions fill instead of printing, the atomic-file writer
 * (temporary name, rename on success), a tiny JSON emitter and a fixed-order
 * statistics summary.
 *
 * It deliberately holds no algorithm: refimpl/, models/, hwmodels/, traces/
 * and sim/ own theirs. Library code returns a status (0 ok, -1 error with the
 * record filled) and never exits. */
#ifndef KV_COMMON_H
#define KV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KV_VERSION "0.1.0"

/* One error, one line: "file:line:col: what was found; what was expected". */
typedef struct {
    char msg[768];
} kv_err;

/* Formats into err (if non-NULL) and returns -1, so `return kv_errf(...)` reads well. */
int kv_errf(kv_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- atomic output files ------------------------------------------------
 * kv_afile_open writes to "<path>.tmp.<pid>"; kv_afile_commit flushes, fsyncs
 * and renames over <path>; kv_afile_abort removes the temporary. A crash
 * leaves only a *.tmp.* file, never a truncated file under the final name. */
typedef struct {
    FILE *fp;
    char path[1024];
    char tmp[1100];
} kv_afile;

/* kv_afile_open checks the path first (kv_out_check) and registers the
 * temporary so that SIGINT, SIGTERM and SIGHUP remove it (an async-signal-safe
 * unlink from a handler installed on first use, which then re-raises the
 * signal). kv_afile_commit re-checks the target just before the rename: it
 * never replaces anything but a regular file or a missing path. */
int kv_afile_open(kv_afile *f, const char *path, kv_err *err);
int kv_afile_commit(kv_afile *f, kv_err *err);
void kv_afile_abort(kv_afile *f);

/* The output-path checks every writing command calls before it computes:
 * kv_out_check(path): not empty, not too long, the target missing or a
 * regular file (never a directory, device, fifo or socket), its directory
 * existing and writable. kv_out_dir_check(dir): for commands that write a
 * directory of files: not empty, an existing directory that is writable, or
 * a missing one whose nearest existing ancestor is a writable directory.
 * Both return 0 or -1 with one line in err naming the path and the rule. */
int kv_out_check(const char *path, kv_err *err);
int kv_out_dir_check(const char *dir, kv_err *err);
/* Inputs whose size is needed (read whole, mapped or seeked): a regular file
 * of at most max_bytes (0: no limit). "path: not a regular file" otherwise. */
int kv_in_check(const char *path, uint64_t max_bytes, kv_err *err);

/* ---- JSON emitter -------------------------------------------------------
 * Streams compact, valid JSON; tracks whether a comma is needed. Numbers are
 * printed with %.17g (round-trip exact) or as integers. Non-finite doubles
 * become null. */
typedef struct {
    FILE *fp;
    int depth;
    int need_comma[32];
    int after_key;
} kv_json;

void kv_json_init(kv_json *j, FILE *fp);
void kv_json_obj_begin(kv_json *j);
void kv_json_obj_end(kv_json *j);
void kv_json_arr_begin(kv_json *j);
void kv_json_arr_end(kv_json *j);
void kv_json_key(kv_json *j, const char *key);
void kv_json_str(kv_json *j, const char *s);
void kv_json_num(kv_json *j, double v);
void kv_json_int(kv_json *j, long long v);
void kv_json_bool(kv_json *j, int v);
void kv_json_null(kv_json *j);

/* ---- summary statistics -------------------------------------------------
 * mean, p50, p95, max, min of n samples. Percentiles use the nearest-rank
 * rule on a sorted copy (p-th percentile = value at rank ceil(p/100·n)).
 * The mean is accumulated in double in index order: the result does not
 * depend on thread count. n == 0 gives NaNs. */
typedef struct {
    double mean, p50, p95, max, min;
    long long n;
} kv_stats;

/* scratch must hold n doubles (it is sorted in place; data is left intact). */
void kv_stats_compute(const double *data, size_t n, double *scratch, kv_stats *out);

/* Reads a whole file of at most max_bytes into a malloc'd buffer (*buf,
 * *len; free it). Errors: "path: cannot open: ...", "path: read error",
 * "path: larger than N bytes". */
int kv_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, kv_err *err);
/* A whole regular file (kv_in_check: never a directory, device or fifo) of at
 * most max_bytes, NUL-terminated (*len excludes the NUL). */
int kv_read_text(const char *path, size_t max_bytes, char **buf, size_t *len, kv_err *err);

/* Small helpers */
double kv_now_s(void); /* monotonic clock, seconds */
int kv_parse_int64(const char *s, int64_t *out);   /* whole string, base 10, optional K/M suffix (x1024); no blank or + first */
int kv_parse_double(const char *s, double *out);   /* whole string; no blank, + or hex float */
/* The strict parsers every number a user types goes through (flags and YAML
 * keys alike): the whole string, base 10 (integers take an optional K/M
 * suffix, x1024), no wrap-around, NaN and inf refused, the value within
 * [lo, hi]. On failure err holds one line naming `what` (a flag such as
 * "--layers" or a "file:line:col: key"), the text and the allowed range. */
int kv_parse_i64_in(const char *what, const char *s, int64_t lo, int64_t hi, int64_t *out, kv_err *err);
int kv_parse_f64_in(const char *what, const char *s, double lo, double hi, double *out, kv_err *err);
/* The one comma-list parser: "256,1024,4K", or with `ranges` also "0-3,8"
 * (a-b with a <= b, both ends included). Every value goes through
 * kv_parse_i64_in with [lo, hi]; no empty item, no trailing comma, at most
 * max values. Returns the count, or -1 with err naming `what`. */
int kv_parse_i64_list(const char *what, const char *s, int64_t lo, int64_t hi, int ranges, int64_t *out, int max,
                      kv_err *err);

#endif
