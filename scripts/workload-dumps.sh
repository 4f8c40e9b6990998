#!/bin/sh
# Real KV dumps of the texts in refimpl/workloads/texts.tsv: extracts each text
# to $OUT/texts/NAME.txt, checks its SHA-256 against the table, and runs
#   kvsim kvdump --gguf MODEL --text $OUT/texts/NAME.txt --offset O --tokens N --out $OUT/NAME.kvd
# Usage: sh scripts/workload-dumps.sh [KVSIM [OUT [TOKENS [ROLE]]]]
#   defaults: build/kvsim build/dumps 4128 (4096 context + 32 decode steps) all
# A dump that exists is kept (delete it to redo). Sequential: each capture uses
# every core through BLAS.
set -eu
KVSIM=${1:-build/kvsim}
OUT=${2:-build/dumps}
TOKENS=${3:-4128}
ROLE=${4:-all}
MODEL=${MODEL:-build/model/SmolLM2-135M-Instruct.Q4_1.gguf}
TABLE=$(dirname "$0")/../refimpl/workloads/texts.tsv
mkdir -p "$OUT/texts"
grep -v '^#' "$TABLE" | while IFS='	' read -r name kind role pkg path sha offset; do
    [ "$ROLE" = all ] || [ "$ROLE" = "$role" ] || continue
    txt="$OUT/texts/$name.txt"
    if [ ! -f "$txt" ]; then
        [ -f "$path" ] || { echo "workload-dumps: $path missing (package $pkg)" >&2; exit 1; }
        case "$path" in *.gz) gzip -dc "$path" > "$txt.tmp" ;; *) cp "$path" "$txt.tmp" ;; esac
        mv "$txt.tmp" "$txt"
    fi
    got=$(sha256sum < "$txt" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "workload-dumps: $path: SHA-256 $got, expected $sha (package $pkg changed?)" >&2; exit 1; }
    kvd="$OUT/$name.kvd"
    [ -f "$kvd" ] && continue
    echo "workload-dumps: $name ($kind, $role): $path tokens $offset..$((offset + TOKENS - 1))"
    "$KVSIM" kvdump --gguf "$MODEL" --text "$txt" --offset "$offset" --tokens "$TOKENS" --out "$kvd"
done
