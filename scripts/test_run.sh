#!/bin/sh
# scripts/test_run.sh BUILD [criterion options] — `make test`'s runner.
# Runs BUILD/san/kvsim-tests with the options given, keeps its output in
# BUILD/test.log, and prints under Criterion's summary line the tests that
# skipped, each with its reason (tests/kv_skip.h appends them to
# BUILD/test-skips.log). With CI=true or KVSIM_NO_SKIP=1 a skip is a test
# failure (tests/kv_skip.h). Exit status: the suite's.
#
# Shards: the suites are shared out to TEST_SHARDS runner processes (default:
# one per CPU), each taking the next suite not yet taken (mkdir as the lock)
# and running it alone with the options given (make test passes --jobs 1:
# Criterion 2.4.1's runner leaks when two timed tests overlap in one runner,
# which separate runners never do). The suites' logs are then put together in
# suite order, with one summary line that adds up theirs; a suite whose log has
# no summary line (its runner died) fails the run. A --filter option, or
# TEST_SHARDS=1, runs one process as before.
set -u
build=$1
shift
log="$build/test.log"
skips="$build/test-skips.log"
: >"$skips"
KVSIM_SKIP_LOG=$(cd "$(dirname "$skips")" && pwd)/$(basename "$skips")
export KVSIM_SKIP_LOG
bin="$build/san/kvsim-tests"
shards=${TEST_SHARDS:-$(nproc 2>/dev/null || echo 1)}
case " $* " in *" --filter"*) shards=1 ;; esac

print_skips() {
    n=$(wc -l <"$skips" | tr -d ' ')
    if [ "$n" -gt 0 ]; then
        echo "[====] Skipped: $n (a failure in CI; CI=true or KVSIM_NO_SKIP=1 makes it one here):"
        sed 's/^/[SKIP] /' "$skips"
    else
        echo "[====] Skipped: 0"
    fi
}

if [ "$shards" -le 1 ]; then
    { "$bin" "$@" 2>&1; echo $? >"$build/test.rc"; } | tee "$log"
    rc=$(cat "$build/test.rc")
    print_skips | tee -a "$log"
    exit "$rc"
fi

dir="$build/test-shards"
rm -rf "$dir"
mkdir -p "$dir"
# the slowest suites first (measured on 2 cores: llm_eval 66 s and llm 58 s of a 214 s run,
# golden 22 s, kvdump 16 s), so that no runner starts one of them when the others are nearly done
"$bin" --list 2>&1 | sed -n 's/^\([A-Za-z0-9_]*\): [0-9]* tests*$/\1/p' >"$dir/all"
for s in llm_eval llm golden kvdump; do grep -qx "$s" "$dir/all" && echo "$s"; done >"$dir/suites"
grep -vx -e llm_eval -e llm -e golden -e kvdump "$dir/all" >>"$dir/suites"
n=$(wc -l <"$dir/suites" | tr -d ' ')
if [ "$n" -eq 0 ]; then
    echo "test_run: $bin --list named no suite" >&2
    exit 1
fi
echo "test_run: $n suites on $shards runner processes ($bin $*)"
worker() {
    k=1
    while [ "$k" -le "$n" ]; do
        if mkdir "$dir/claim.$k" 2>/dev/null; then
            s=$(sed -n "${k}p" "$dir/suites")
            t=$(date +%s)
            "$bin" "$@" --filter "$s/*" >"$dir/$k.log" 2>&1
            echo $? >"$dir/$k.rc"
            echo "$(($(date +%s) - t)) $s" >"$dir/$k.time"
        fi
        k=$((k + 1))
    done
}
w=0
while [ "$w" -lt "$shards" ]; do
    worker "$@" &
    w=$((w + 1))
done
wait

rc=0
tested=0 passing=0 failing=0 crashing=0
: >"$log"
k=1
while [ "$k" -le "$n" ]; do
    s=$(sed -n "${k}p" "$dir/suites")
    grep -v 'Synthesis: Tested:' "$dir/$k.log" >>"$log"
    line=$(grep 'Synthesis: Tested:' "$dir/$k.log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "test_run: suite $s wrote no summary line (exit $(cat "$dir/$k.rc" 2>/dev/null || echo '?'))" >>"$log"
        rc=1
    else
        tested=$((tested + $(echo "$line" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')))
        passing=$((passing + $(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')))
        failing=$((failing + $(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')))
        crashing=$((crashing + $(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')))
    fi
    [ "$(cat "$dir/$k.rc" 2>/dev/null || echo 1)" = 0 ] || rc=1
    k=$((k + 1))
done
echo "[====] Synthesis: Tested: $tested | Passing: $passing | Failing: $failing | Crashing: $crashing " >>"$log"
cat "$log"
print_skips | tee -a "$log"
exit "$rc"
