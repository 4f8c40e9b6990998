/* opts.c — the option helpers of cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

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
        } else if (is_flag(name, flags)) {
            o->name[o->n] = name;
            o->value[o->n] = NULL;
        } else {
            if (i + 1 >= argc) {
                cli_error(prog, "option --%s needs a value", name);
                return -1;
            }
            o->name[o->n] = name;
            o->value[o->n] = argv[++i];
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

const char *cli_opt_str(cli_opts *o, const char *name, const char *def)
{
    int i = find(o, name);
    return i < 0 || !o->value[i] ? def : o->value[i];
}

int cli_opt_flag(cli_opts *o, const char *name) { return find(o, name) >= 0; }

int cli_opt_i64(cli_opts *o, const char *name, int64_t def, int64_t *out)
{
    int i = find(o, name);
    if (i < 0) {
        *out = def;
        return 0;
    }
    if (!o->value[i] || kv_parse_int64(o->value[i], out) != 0) {
        cli_error(o->prog, "--%s expects an integer (e.g. 1024 or 32K), got '%s'", name,
                  o->value[i] ? o->value[i] : "");
        return -1;
    }
    return 0;
}

int cli_opt_f64(cli_opts *o, const char *name, double def, double *out)
{
    int i = find(o, name);
    if (i < 0) {
        *out = def;
        return 0;
    }
    if (!o->value[i] || kv_parse_double(o->value[i], out) != 0) {
        cli_error(o->prog, "--%s expects a number, got '%s'", name, o->value[i] ? o->value[i] : "");
        return -1;
    }
    return 0;
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
    if (kv_parse_f64_in(what, o->value[i], lo, hi, out, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return -1;
    }
    return 0;
}

int cli_opts_unused(cli_opts *o)
{
    for (int i = 0; i < o->n; i++)
        if (!o->used[i]) {
            cli_error(o->prog, "unknown option --%s (see --help)", o->name[i]);
            return -1;
        }
    return 0;
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
