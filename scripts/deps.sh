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
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "kvsim: installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq build-essential pkg-config $need >/dev/null || {
        echo "kvsim: apt-get install failed for:$need" >&2; exit 1; }
else
    echo "kvsim: missing packages. Run:" >&2
    echo "  sudo apt-get install -y build-essential pkg-config$need" >&2
    exit 1
fi
