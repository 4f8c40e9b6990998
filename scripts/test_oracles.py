#!/usr/bin/env python3
"""scripts/test_oracles.py — what every Criterion test checks against.

Every Test() and ParameterizedTest() in tests/test_*.c has one row in
tests/ORACLES.tsv: "suite/name<TAB>oracle<TAB>why". The oracle is one of

  hand         expected values worked by hand (in the test or its comment):
               numbers, messages, exit codes of the documented contract
  formula      the expected value is computed in the test by a formula written
               there (an identity for round trips, a bound, a count)
  published    a published figure: a paper table, a datasheet, a standard's
               test vector, a model card
  second-impl  a second implementation: Python/NumPy under tests/ or scripts/,
               llama.cpp, GSL BLAS, libm, a brute-force search, a naive rule
  property     an invariant whose expected value is produced by the code under
               test itself (determinism, equivalence of two of its paths)
  self         the code's own output, or a check that cannot fail for a wrong
               answer (only "> 0", only "runs")

The first four are independent of the code under test; property and self are
not. Prints the counts and the independent share; exits 1 when the share is
below 80%, when a test has no row, when a row names no test, when an oracle
is not one of the above, or when a test skips with cr_skip_test instead of
KV_SKIP (tests/kv_skip.h).

    python3 scripts/test_oracles.py            # counts and share
    python3 scripts/test_oracles.py --list     # every test with its oracle
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tests", "ORACLES.tsv")
INDEPENDENT = ("hand", "formula", "published", "second-impl")
ORACLES = INDEPENDENT + ("property", "self")
GOAL = 0.80

# Test(suite, name ...) or ParameterizedTest(type *p, suite, name ...)
TEST_RE = re.compile(r"^\s*(Parameterized)?Test\(\s*(?:[^,()]*\*\s*\w+\s*,\s*)?(\w+)\s*,\s*(\w+)", re.M)


def direct_skips(errors):
    """A test skips through KV_SKIP (tests/kv_skip.h) so that the skip is counted,
    named, and a failure in CI; a direct cr_skip_test/cr_skip is none of these."""
    tdir = os.path.join(ROOT, "tests")
    for fn in sorted(os.listdir(tdir)):
        if fn == "kv_skip.h" or not (fn.endswith(".c") or fn.endswith(".h")):
            continue
        with open(os.path.join(tdir, fn), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if re.search(r"\bcr_skip(_test)?\s*\(", line):
                    errors.append("tests/%s:%d: skip through KV_SKIP(\"reason\") (tests/kv_skip.h), not cr_skip_test: "
                                  "the skip is then counted, named in make test's summary, and a failure in CI" % (fn, n))


def declared_tests():
    tests = {}
    tdir = os.path.join(ROOT, "tests")
    for fn in sorted(os.listdir(tdir)):
        if not (fn.startswith("test_") and fn.endswith(".c")):
            continue
        with open(os.path.join(tdir, fn), encoding="utf-8") as f:
            text = f.read()
        for m in TEST_RE.finditer(text):
            key = "%s/%s" % (m.group(2), m.group(3))
            line = text.count("\n", 0, m.start()) + 1
            tests.setdefault(key, "tests/%s:%d" % (fn, line))
    return tests


def read_table(errors):
    rows = {}
    with open(TABLE, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2].strip():
                errors.append("tests/ORACLES.tsv:%d: expected 'suite/name<TAB>oracle<TAB>why', got %r" % (n, line))
                continue
            key, oracle, _why = parts
            if oracle not in ORACLES:
                errors.append("tests/ORACLES.tsv:%d: oracle %r is not one of %s" % (n, oracle, ", ".join(ORACLES)))
            if key in rows:
                errors.append("tests/ORACLES.tsv:%d: %s listed twice" % (n, key))
            rows[key] = (oracle, n)
    return rows


def main():
    errors = []
    direct_skips(errors)
    tests = declared_tests()
    rows = read_table(errors)
    for key, where in sorted(tests.items(), key=lambda kv: kv[1]):
        if key not in rows:
            errors.append("%s: Test %s has no row in tests/ORACLES.tsv: add one line '%s<TAB>ORACLE<TAB>what the "
                          "expected value comes from', ORACLE one of %s (see scripts/test_oracles.py)"
                          % (where, key, key, "|".join(ORACLES)))
    for key, (_oracle, n) in sorted(rows.items(), key=lambda kv: kv[1][1]):
        if key not in tests:
            errors.append("tests/ORACLES.tsv:%d: %s names no Test() in tests/test_*.c (renamed or removed? update the row)"
                          % (n, key))
    counts = {o: 0 for o in ORACLES}
    for key in tests:
        if key in rows:
            counts[rows[key][0]] += 1
    total = len(tests)
    indep = sum(counts[o] for o in INDEPENDENT)
    share = indep / total if total else 0.0
    if "--list" in sys.argv[1:]:
        for key, where in sorted(tests.items(), key=lambda kv: kv[1]):
            print("%-12s %s (%s)" % (rows.get(key, ("-",))[0], key, where))
    print("test oracles: %d tests; %s" % (total, ", ".join("%s %d" % (o, counts[o]) for o in ORACLES)))
    print("independent (hand, formula, published, second-impl): %d of %d = %.1f%% (goal >= %.0f%%)"
          % (indep, total, 100.0 * share, 100.0 * GOAL))
    for e in errors:
        print("test_oracles: " + e, file=sys.stderr)
    if share < GOAL:
        print("test_oracles: the independent share %.1f%% is below %.0f%%: give the 'property'/'self' tests an "
              "independent expected value" % (100.0 * share, 100.0 * GOAL), file=sys.stderr)
    return 1 if errors or share < GOAL else 0


if __name__ == "__main__":
    sys.exit(main())
