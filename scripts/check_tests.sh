#!/bin/sh
# scripts/check_tests.sh LOG MIN — `make check-tests`: the suite that wrote LOG
# (scripts/test_run.sh) ran at least MIN tests and all of them passed. Reads
# Criterion's summary line "Synthesis: Tested: N | Passing: P | Failing: F |
# Crashing: C"; a missing line (the suite died or never ran) is a failure, as
# is a count below MIN (tests lost: a file dropped from the build, a filter
# left in place). Raise MIN in the Makefile (MIN_TESTS) when tests are added.
set -u
log=$1
min=$2
line=$(grep 'Synthesis: Tested:' "$log" 2>/dev/null | tail -n 1)
if [ -z "$line" ]; then
    echo "check-tests: no Criterion summary line in $log: the suite did not run to the end" >&2
    exit 1
fi
tested=$(echo "$line" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
passing=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
skipped=$(sed -n 's/^\[====\] Skipped: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$tested" ] || [ -z "$passing" ]; then
    echo "check-tests: cannot read the counts in: $line" >&2
    exit 1
fi
if [ "$tested" -lt "$min" ]; then
    echo "check-tests: $tested tests ran, fewer than the minimum $min (MIN_TESTS in the Makefile)" >&2
    exit 1
fi
if [ "$passing" -ne "$tested" ]; then
    echo "check-tests: $passing of $tested tests passed" >&2
    exit 1
fi
echo "check-tests: $tested tests ran and passed (minimum $min), ${skipped:-0} skipped"
