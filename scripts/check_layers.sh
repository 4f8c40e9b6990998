#!/bin/sh
# check_layers.sh — the folder include graph has no back edge (README "Layout"):
# every `#include "x.h"` of a folder's sources names a header of the folder
# itself or of a folder below it in the table. Also: no code outside
# refimpl/method_*.c compares a method's name (the method's traits decide).
# Run from the repository root; `make test` runs it. Exit 1 on a violation.
set -eu

# folder: the folders it may include (lower layers only)
allowed() {
    case $1 in
    common)   echo "" ;;
    models)   echo "common" ;;
    hwmodels) echo "common" ;;
    engines)  echo "common" ;;
    refimpl)  echo "common models" ;;
    workload) echo "common models refimpl" ;;
    llm)      echo "common models refimpl" ;;
    traces)   echo "common models refimpl" ;;
    sim)      echo "common models hwmodels engines refimpl traces" ;;
    serve)    echo "common models hwmodels engines refimpl traces sim" ;;
    golden)   echo "common models hwmodels refimpl llm traces sim cuda" ;;
    sweep)    echo "common models hwmodels engines refimpl llm traces sim" ;;
    report)   echo "common models hwmodels refimpl llm traces sim sweep" ;;
    cuda)     echo "common models hwmodels refimpl traces sim" ;;
    capi)     echo "common models hwmodels engines refimpl workload llm traces sim serve sweep report cuda golden" ;;
    cli)      echo "common models hwmodels engines refimpl workload llm traces sim serve sweep report cuda golden" ;;
    tests)    echo "common models hwmodels engines refimpl workload llm traces sim serve sweep report cuda golden capi" ;;
    esac
}
FOLDERS="common models hwmodels engines refimpl workload llm traces sim serve sweep report cuda golden capi cli tests"

owner() { # header basename -> owning folder, or nothing (system / same-folder-only names)
    for d in $FOLDERS; do
        if [ -f "$d/$1" ]; then echo "$d"; return; fi
    done
}

bad=0
for d in $FOLDERS; do
    ok=" $d $(allowed "$d") "
    for f in "$d"/*.c "$d"/*.h "$d"/*.cu "$d"/*.cuh; do
        [ -f "$f" ] || continue
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            h=$(basename "$inc")
            o=$(owner "$h")
            [ -n "$o" ] || continue
            case "$ok" in *" $o "*) continue ;; esac
            # the command line's own fuzz harness drives the subcommands
            [ "$f" = tests/fuzz_cli.c ] && [ "$h" = cli.h ] && continue
            echo "check_layers: $f includes $o/$h: $d may include only: $(allowed "$d")" >&2
            bad=1
        done
    done
done

# method names: a comparison with a method's name literal outside its own file
methods='full|exact-topk|streaming|snapkv|snapkv-gqa|quest|sparq|hsa|rocketkv|rocketkv-mt'
hits=$(grep -nE "str(n)?cmp\([^;]*\"($methods)\"" common/*.[ch] models/*.[ch] hwmodels/*.[ch] refimpl/*.[ch] \
       llm/*.[ch] traces/*.[ch] sim/*.[ch] sweep/*.[ch] report/*.[ch] cuda/*_host.c cli/*.[ch] \
       engines/*.[ch] serve/*.[ch] golden/*.[ch] capi/*.[ch] 2>/dev/null |
       grep -v '^refimpl/method_' || true)
if [ -n "$hits" ]; then
    echo "check_layers: method names compared outside refimpl/method_*.c (use the method's traits):" >&2
    echo "$hits" >&2
    bad=1
fi
[ $bad -eq 0 ] && echo "check_layers: include graph acyclic by layer; no method-name comparisons"
exit $bad
