#!/bin/sh
# The Python package's CI: builds the kvsim wheel (setup.py runs make for
# build/libkvsim.so and build/kvsim), installs it into a fresh virtual
# environment with its test dependencies from PyPI, and runs the pytest
# suite (python/tests and the examples) against the installed package —
# conftest.py checks that kvsim comes from site-packages, at least
# MIN_PASSED tests pass and none is skipped — then type-checks the package
# with mypy --strict (python/pyproject.toml's [tool.mypy]).
#
# The test dependencies: pytest, pandas (kvsim.sweep's DataFrame), matplotlib
# (the capacity-plot example) and PyTorch (the kernel-engineer example,
# which runs on the CPU). PyPI's torch wheel for Linux is the CUDA build: with
# its nvidia-* wheels the venv takes about 5.6 GB, and pip unpacks the
# downloads beside it, so the venv's file system must have NEED_GIB free — with
# less this script FAILS (a missing example is a failure, never a skip).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
NEED_GIB=${NEED_GIB:-14}
TORCH=torch==2.15.0
work=$(mktemp -d /tmp/kvsim-ci-python.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
free_gib=$(df -Pk "$work" | awk 'NR == 2 { print int($4 / 1048576) }')
if [ "$free_gib" -lt "$NEED_GIB" ]; then
    echo "ci_python: $work has $free_gib GiB free; the test venv with $TORCH needs $NEED_GIB GiB" >&2
    exit 1
fi
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
t0=$(date +%s)
"$py" -m pip install -q --upgrade pip setuptools wheel
"$py" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$root/python"
"$py" -m pip install -q "$work"/dist/kvsim-*.whl pytest pandas matplotlib mypy "$TORCH"
echo "ci_python: installed $(ls "$work"/dist) with $("$py" -c 'import torch, pandas, matplotlib; print("torch", torch.__version__, "pandas", pandas.__version__, "matplotlib", matplotlib.__version__)') in $(( $(date +%s) - t0 )) s; venv $(du -sm "$work/venv" | cut -f1) MB"
cd "$work"
KVSIM_EXPECT_INSTALLED=1 "$py" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$root/python" -c "$root/python/pyproject.toml" "$root/python/tests" "$root/python/examples"
"$py" -m mypy --config-file "$root/python/pyproject.toml" "$root/python/kvsim"
