#!/bin/sh
# Checks the packages kvsim needs; installs the missing ones through apt-get
# when run as root, otherwise prints the one command to run. Quiet when all
# are present.
need=""
pkg-config --exists gsl 2>/dev/null       || need="$need libgsl-dev"
pkg-config --exists yaml-0.1 2>/dev/null  || need="$need libyaml-dev"
pkg-config --exists openblas 2>/dev/null  || need="$need libopenblas-dev"
pkg-config --exists criterion 2>/dev/null || need="$need libcriterion-dev"
command -v pkg-config >/dev/null 2>&1     || need="pkg-config $need"
command -v gnuplot >/dev/null 2>&1        || need="$need gnuplot-nox"
command -v parallel >/dev/null 2>&1       || need="$need parallel"
command -v clang >/dev/null 2>&1          || need="$need clang"
python3 -c "import numpy" 2>/dev/null      || need="$need python3 python3-numpy"
# A python3 that is not Debian's (pyenv, a venv first on PATH) does not see
# python3-numpy: it gets numpy from PyPI after the packages.
pip_numpy() {
    python3 -c "import numpy" 2>/dev/null && return 0
    echo "kvsim: $(command -v python3) has no numpy: python3 -m pip install numpy"
    python3 -m pip install -q numpy >/dev/null || { echo "kvsim: python3 -m pip install numpy failed" >&2; exit 1; }
}
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "kvsim: installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq build-essential pkg-config $need >/dev/null || {
        echo "kvsim: apt-get install failed for:$need" >&2; exit 1; }
    pip_numpy
else
    echo "kvsim: missing packages. Run:" >&2
    echo "  sudo apt-get install -y build-essential pkg-config$need" >&2
    exit 1
fi
