/* kv_skip.h — the one way a Criterion test skips: KV_SKIP("reason", ...).
 *
 * A skip is a failure where everything a test needs is supposed to be there:
 * with CI=true or KVSIM_NO_SKIP=1 in the environment KV_SKIP fails the test
 * with its reason. Otherwise it appends one line "suite::test: reason" to the
 * file named by $KVSIM_SKIP_LOG (scripts/test_run.sh sets it and prints the
 * count and the reasons under Criterion's summary) and skips. Callers return
 * right after KV_SKIP, having freed what they allocated (LeakSanitizer runs
 * when the skipped test's process exits). */
#ifndef KV_SKIP_H
#define KV_SKIP_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when skips are refused: CI=true or KVSIM_NO_SKIP=1. */
static inline int kv_skip_refused(void)
{
    const char *ci = getenv("CI"), *no = getenv("KVSIM_NO_SKIP");
    return (ci && !strcmp(ci, "true")) || (no && !strcmp(no, "1"));
}

static inline void kv_skip_now(const char *why)
{
    if (kv_skip_refused())
        cr_assert_fail("a skip is a failure here (CI=true or KVSIM_NO_SKIP=1): %s", why);
    const char *log = getenv("KVSIM_SKIP_LOG");
    if (log && *log) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%s::%s: %s\n", criterion_current_suite->name,
                         criterion_current_test->name, why);
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd >= 0) {
            if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
            if (write(fd, line, (size_t)n) != n) { /* the summary then under-counts; the skip still shows in -v */ }
            close(fd);
        }
    }
    cr_skip_test("%s", why);
}

#define KV_SKIP(...)                                                    \
    do {                                                                \
        char kv_skip_why_[768];                                         \
        snprintf(kv_skip_why_, sizeof kv_skip_why_, __VA_ARGS__);       \
        kv_skip_now(kv_skip_why_);                                      \
    } while (0)

#endif
