/* opts.c — the option helpers of cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

#ifdef KVSIM_FUZZ_CLI
#include <setjmp.h>
/* tests/fuzz_cli.c: where cli_opts_unused returns once every option was read
 * and accepted, so that the fuzzed command never computes or writes. */
jmp_buf *cli_fuzz_stop;
#endif

void cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int is_flag(const char *name, const char *const *flags)
{
    for (int i = 0; flags && flags[i]; i++)
        if (!strcmp(flags[i], name))
            return 1;
    return 0;
}

int cli_opts_parse(cli_opts *o, const char *prog, int argc, char **argv, const char *const *flags)
{
    memset(o, 0, sizeof *o);
    o->prog = prog;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (o->npos >= CLI_MAX_OPTS) {
                cli_error(prog, "too many arguments");
                return -1;
            }
            o->pos[o->npos++] = a;
            continue;
        }
        if (o->n >= CLI_MAX_OPTS) {
            cli_error(prog, "too many options");
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        static char namebuf[CLI_MAX_OPTS][64];
        if (eq) {
            size_t len = (size_t)(eq - name);
            if (len >= sizeof namebuf[0]) {
                cli_error(prog, "option name too long: %s", a);
                return -1;
            }
            memcpy(namebuf[o->n], name, len);
            namebuf[o->n][len] = '\0';
            o->name[o->n] = namebuf[o->n];
            o->value[o->n] = eq + 1;
            o->value_given[o->n] = 1;
        } else if (is_flag(name, flags)) {
            o->name[o->n] = name;
            o->value[o->n] = NULL;
        } else {
            /* the last word with no value: an unknown option is reported as
             * unknown (cli_opts_unused), a known one as needing a value */
            o->name[o->n] = name;
            if (i + 1 < argc)
                o->value[o->n] = argv[++i];
            else
                o->novalue[o->n] = 1;
        }
        for (int k = 0; k < o->n; k++)
            if (!strcmp(o->name[k], o->name[o->n])) {
                cli_error(prog, "option --%s given twice", o->name[o->n]);
                return -1;
            }
        o->n++;
    }
    return 0;
}

static int find(cli_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->name[i], name)) {
            o->used[i] = 1;
            return i;
        }
    return -1;
}

/* A known option given last with no value: reported once, remembered so
 * that cli_opts_unused fails too (callers of cli_opt_str get the default). */
static int missing_value(cli_opts *o, int i)
{
    if (i < 0 || !o->novalue[i])
        return 0;
    if (!o->bad)
        cli_error(o->prog, "option --%s needs a value", o->name[i]);
    o->bad = 1;
    return 1;
}

const char *cli_opt_str(cli_opts *o, const char *name, const char *def)
{
    int i = find(o, name);
    if (missing_value(o, i))
        return def;
    return i < 0 || !o->value[i] ? def : o->value[i];
}

int cli_opt_flag(cli_opts *o, const char *name)
{
    int i = find(o, name);
    if (i >= 0 && o->value[i] && !o->novalue[i] && o->value_given[i]) {
        if (!o->bad)
            cli_error(o->prog, "option --%s takes no value, got '--%s=%s'", name, name, o->value[i]);
        o->bad = 1;
    }
    return i >= 0;
}

int cli_opt_i64_in(cli_opts *o, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
    int i = find(o, name);
    if (i < 0) {
        *out = def;
        return 0;
    }
    char what[96];
    kv_err err;
    snprintf(what, sizeof what, "--%s", name);
    if (missing_value(o, i))
        return -1;
    if (kv_parse_i64_in(what, o->value[i], lo, hi, out, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_opt_f64_in(cli_opts *o, const char *name, double def, double lo, double hi, double *out)
{
    int i = find(o, name);
    if (i < 0) {
        *out = def;
        return 0;
    }
    char what[96];
    kv_err err;
    snprintf(what, sizeof what, "--%s", name);
    if (missing_value(o, i))
        return -1;
    if (kv_parse_f64_in(what, o->value[i], lo, hi, out, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_split_names(const char *s, char *out, size_t cap, int max)
{
    int n = 0;
    if (!s || !*s) return -1;
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len == 0 || len >= cap || n >= max) return -1;
        memcpy(out + (size_t)n * cap, s, len);
        out[(size_t)n * cap + len] = '\0';
        n++;
        s += len;
        if (*s == ',' && !*++s) return -1; /* a trailing comma */
    }
    return n;
}

int cli_opts_unused(cli_opts *o)
{
    for (int i = 0; i < o->n; i++)
        if (!o->used[i]) {
            cli_error(o->prog, "unknown option --%s (see --help)", o->name[i]);
            return -1;
        }
#ifdef KVSIM_FUZZ_CLI
    if (!o->bad && cli_fuzz_stop)
        longjmp(*cli_fuzz_stop, 1);
#endif
    return o->bad ? -1 : 0;
}

int cli_opt_i64_list(cli_opts *o, const char *name, const char *def, int64_t lo, int64_t hi, int ranges, int64_t *out,
                     int max)
{
    const char *v = cli_opt_str(o, name, def);
    if (!v) return 0;
    char what[80];
    kv_err err;
    snprintf(what, sizeof what, "--%s", name);
    int n = kv_parse_i64_list(what, v, lo, hi, ranges, out, max, &err);
    if (n < 0) cli_error(o->prog, "%s", err.msg);
    return n;
}

int cli_out_check(cli_opts *o, const char *name, const char *path, int dir)
{
    kv_err err;
    if (!path) {
        cli_error(o->prog, "--%s %s is required (see --help)", name, dir ? "DIR" : "FILE");
        return -1;
    }
    if ((dir ? kv_out_dir_check(path, &err) : kv_out_check(path, &err)) != 0) {
        cli_error(o->prog, "--%s: %s", name, err.msg);
        return -1;
    }
    return 0;
}

int cli_in_check(cli_opts *o, const char *name, const char *path, uint64_t max_bytes)
{
    kv_err err;
    if (kv_in_check(path, max_bytes, &err) != 0) {
        if (name)
            cli_error(o->prog, "--%s: %s", name, err.msg);
        else
            cli_error(o->prog, "%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_parse_shard(cli_opts *o, const char *s, int *index, int *count)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    char a[32];
    int64_t i, n;
    kv_err err;
    if (!slash || (size_t)(slash - s) >= sizeof a) {
        cli_error(o->prog, "--shard: expected i/N with 1 <= i <= N <= %d (e.g. 2/4), got '%s'", CLI_MAX_SHARDS,
                  s ? s : "");
        return -1;
    }
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = '\0';
    if (kv_parse_i64_in("--shard N", slash + 1, 1, CLI_MAX_SHARDS, &n, &err) != 0 ||
        kv_parse_i64_in("--shard i", a, 1, n, &i, &err) != 0) {
        cli_error(o->prog, "%s (in '%s')", err.msg, s);
        return -1;
    }
    *index = (int)i;
    *count = (int)n;
    return 0;
}
