#!/bin/sh
# The Python package's CI: builds the kvsim wheel (setup.py runs make for
# build/libkvsim.so and build/kvsim), installs it into a fresh virtual
# environment with its test dependencies from PyPI, and runs the pytest
# suite (python/tests and the examples) against the installed package —
# conftest.py checks that kvsim comes from site-packages, at least
# MIN_PASSED tests pass and none is skipped.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/kvsim-ci-python.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip setuptools wheel
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$root/python"
"$py" -m pip install -q "$work"/dist/kvsim-*.whl pytest matplotlib
echo "ci_python: installed $(ls "$work"/dist)"
cd "$work"
KVSIM_EXPECT_INSTALLED=1 "$py" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$root/python" -c "$root/python/pyproject.toml" "$root/python/tests" "$root/python/examples"
