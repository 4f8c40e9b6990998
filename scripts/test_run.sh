#!/bin/sh
# scripts/test_run.sh BUILD [criterion options] — `make test`'s runner.
# Runs BUILD/san/kvsim-tests with the options given, keeps its output in
# BUILD/test.log, and prints under Criterion's summary line the tests that
# skipped, each with its reason (tests/kv_skip.h appends them to
# BUILD/test-skips.log). With CI=true or KVSIM_NO_SKIP=1 a skip is a test
# failure (tests/kv_skip.h). Exit status: the suite's.
set -u
build=$1
shift
log="$build/test.log"
skips="$build/test-skips.log"
: >"$skips"
KVSIM_SKIP_LOG=$(cd "$(dirname "$skips")" && pwd)/$(basename "$skips")
export KVSIM_SKIP_LOG
{ "$build/san/kvsim-tests" "$@" 2>&1; echo $? >"$build/test.rc"; } | tee "$log"
rc=$(cat "$build/test.rc")
n=$(wc -l <"$skips" | tr -d ' ')
{
    if [ "$n" -gt 0 ]; then
        echo "[====] Skipped: $n (a failure in CI; CI=true or KVSIM_NO_SKIP=1 makes it one here):"
        sed 's/^/[SKIP] /' "$skips"
    else
        echo "[====] Skipped: 0"
    fi
} | tee -a "$log"
exit "$rc"
