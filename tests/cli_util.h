/* cli_util.h — run the sanitized kvsim binary (KVSIM_BIN, set by make test)
 * from a Criterion test and capture its exit code, stdout and stderr. */
#ifndef TESTS_CLI_UTIL_H
#define TESTS_CLI_UTIL_H

#include <criterion/criterion.h>
#include "kv_skip.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int rc;
    char out[65536];
    char err[8192];
} cli_result;

/* Reads a whole file into buf; a file that does not fit fails the test
 * (a silently cut file would let a check pass on what it never read). */
static inline void cli_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    int more = f && fgetc(f) != EOF;
    if (f) fclose(f);
    cr_assert(!more, "%s is larger than the test's %zu-byte buffer", path, cap - 1);
}

/* A fresh empty directory "/tmp/kvsim-<what>-<tag>-<pid>" for one test. */
static inline void cli_tmp_dir(char *out, size_t cap, const char *what, const char *tag)
{
    snprintf(out, cap, "/tmp/kvsim-%s-%s-%d", what, tag, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    cr_assert_eq(system(cmd), 0);
}

static inline void cli_rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs "$KVSIM_BIN args"; skips the test when KVSIM_BIN is unset. */
static inline void cli_run(cli_result *r, const char *args)
{
    const char *bin = getenv("KVSIM_BIN");
    if (!bin)
        KV_SKIP("KVSIM_BIN not set (run through make test)");
    char o[64], e[64], cmd[2048];
    snprintf(o, sizeof o, "/tmp/kvsim-test-%d.out", (int)getpid());
    snprintf(e, sizeof e, "/tmp/kvsim-test-%d.err", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", bin, args, o, e);
    int st = system(cmd);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cli_slurp(o, r->out, sizeof r->out);
    cli_slurp(e, r->err, sizeof r->err);
    remove(o);
    remove(e);
}

/* Runs "$KVSIM_BIN args" discarding its output; returns the exit code. */
static inline int cli_rc(const char *args)
{
    const char *bin = getenv("KVSIM_BIN");
    if (!bin)
        KV_SKIP("KVSIM_BIN not set (run through make test)");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", bin, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* stderr is exactly one line */
static inline int cli_one_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl && nl[1] == '\0';
}

#endif
