#!/bin/sh
# CI: proves that the README's commands work on a bare machine, where the
# -dev packages (and so their pkg-config files) arrive only when
# scripts/deps.sh runs. It cannot uninstall the packages of the machine it
# runs on, so it hides them instead: a `pkg-config` earlier on PATH answers
# "not found" for kvsim's packages until an `apt-get` earlier on PATH has
# been called (as deps.sh does on a bare machine, as root), which marks them
# installed. A fresh clone is then built with `make` — the front door the
# README's `make run` and `make test` share. A Makefile that asks pkg-config
# while it is read (the bug this guards against) links without the libraries
# and fails here.
#
#   sh scripts/ci_bare_check.sh [REV]     (default HEAD; needs root for nothing)
set -eu
cd "$(dirname "$0")/.."
REV=${1:-HEAD}
REAL_PKG_CONFIG=$(command -v pkg-config)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
mkdir -p "$T/bin"
cat > "$T/bin/pkg-config" <<SH
#!/bin/sh
# Hides gsl, yaml-0.1, openblas and criterion until $T/installed exists.
if [ ! -f "$T/installed" ]; then
    for a in "\$@"; do
        case "\$a" in gsl|yaml-0.1|openblas|criterion) exit 1;; esac
    done
fi
exec "$REAL_PKG_CONFIG" "\$@"
SH
cat > "$T/bin/apt-get" <<SH
#!/bin/sh
# Stands for the real install: the packages are on this machine, only hidden.
echo "ci_bare_check: apt-get \$*" >&2
touch "$T/installed"
SH
chmod +x "$T/bin/pkg-config" "$T/bin/apt-get"
git clone -q . "$T/clone"
git -C "$T/clone" checkout -q "$REV"
# deps.sh installs only as root; elsewhere it prints the command and stops,
# which is the other behaviour this check shows.
if [ "$(id -u)" != 0 ]; then
    echo "ci_bare_check: not root: checking that make prints the install command and stops"
    if PATH="$T/bin:$PATH" make -C "$T/clone" >"$T/log" 2>&1; then
        echo "ci_bare_check: FAIL: make succeeded with the packages hidden" >&2; exit 1
    fi
    grep -q "apt-get install" "$T/log" || { cat "$T/log"; echo "ci_bare_check: FAIL: no install command printed" >&2; exit 1; }
    echo "ci_bare_check: passed (non-root)"; exit 0
fi
# As a normal user, deps.sh prints the one install command and stops.
if command -v setpriv >/dev/null 2>&1; then
    chmod 755 "$T"
    if setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$T/bin:$PATH" \
           sh "$T/clone/scripts/deps.sh" >"$T/user.log" 2>&1; then
        echo "ci_bare_check: FAIL: deps.sh as a normal user succeeded with the packages hidden" >&2; exit 1
    fi
    grep -q "apt-get install -y" "$T/user.log" || { cat "$T/user.log"; echo "ci_bare_check: FAIL: no install command printed to a normal user" >&2; exit 1; }
    [ ! -f "$T/installed" ] || { echo "ci_bare_check: FAIL: a normal user's deps.sh called apt-get" >&2; exit 1; }
    echo "ci_bare_check: a normal user is told: $(grep 'apt-get install' "$T/user.log" | sed 's/^ *//')"
fi
if ! PATH="$T/bin:$PATH" make -C "$T/clone" -j2 >"$T/log" 2>&1; then
    tail -20 "$T/log"
    echo "ci_bare_check: FAIL: a fresh clone of $REV does not build in one go when the packages arrive through deps.sh" >&2
    exit 1
fi
[ -f "$T/installed" ] || { echo "ci_bare_check: FAIL: deps.sh never installed the hidden packages" >&2; exit 1; }
"$T/clone/build/kvsim" --version >/dev/null
echo "ci_bare_check: passed: a fresh clone of $REV built in one go with the packages arriving through deps.sh"
