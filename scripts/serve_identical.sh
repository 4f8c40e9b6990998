#!/bin/sh
# serve_identical.sh REF_KVSIM NEW_KVSIM — `kvsim serve --json` and its
# per-step --timeline of every method x 4 instance/traffic configurations
# from two binaries, compared byte for byte (stdout, stderr, exit status,
# timeline file). Used to show a speed change to serve/ leaves its output
# unchanged: build the reference from the commit before (git worktree + make
# build/kvsim), then run this.
#   sh scripts/serve_identical.sh /tmp/ref/build/kvsim build/kvsim
# A run whose bytes differ is compared number by number (stdout and the
# timeline, python3): the same count of numbers, integers equal, and the
# largest relative difference of the others printed. With TOL=x (say 1e-12)
# a run whose numbers all agree within x counts as agreeing (a change of
# floating-point summation order moves last digits); without it any byte
# difference fails.
set -u
TOL=${TOL:-}
REF=$1
NEW=$2
METHODS="full exact-topk streaming snapkv snapkv-gqa quest sparq hsa rocketkv rocketkv-mt"
# 1: the bench's model, GPU, budget and lengths (8B on H100, t=256, lognormal prompts ~1K)
C1="--model llama3.1-8b --hw h100-sxm --budget 256 --rate 8 --num-requests 1500 --prompt lognormal:1024:0.6 --output uniform:64:512 --seed 3"
# 2: long prompts, fp8 KV, two dense layers, SGLang's step loop, t=1024
C2="--model qwen2.5-7b --hw h200 --budget 1024 --dtype fp8-e4m3 --skip-layers 2 --engine sglang --rate 1.5 --num-requests 300 --prompt uniform:2000:16000 --output uniform:100:400 --seed 5"
# 3: 70B at TP 4, a small KV pool (preemption), bursty arrivals, multi-step vLLM, no CUDA graphs, t=512
C3="--model llama3.1-70b --hw a100-80g --tp 4 --budget 512 --cuda-graphs off --engine validation/engines/vllm-v0.6-multistep.yaml --kv-pool-bytes 4e9 --rate 6 --arrival gamma --burstiness 0.5 --num-requests 800 --prompt lognormal:2000:0.5 --output lognormal:200:0.7 --seed 7"
# 4: SGLang v0.3's step loop (prefills alone, the admission reserve), a pool small enough to preempt, bursts
C4="--model llama3.1-8b --hw h100-sxm --budget 256 --engine validation/engines/sglang-v0.3.yaml --kv-pool-bytes 4e9 --rate 20 --arrival gamma --burstiness 0.3 --num-requests 1200 --prompt lognormal:1500:0.6 --output uniform:32:700 --seed 11"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
n=0
nclose=0
for m in $METHODS; do
    i=0
    for cfg in "$C1" "$C2" "$C3" "$C4"; do
        i=$((i + 1))
        rm -f "$T/ref.tl.csv" "$T/new.tl.csv"
        # shellcheck disable=SC2086
        "$REF" serve --method "$m" $cfg --json --timeline "$T/ref.tl.csv" >"$T/ref.out" 2>"$T/ref.err"
        echo $? >>"$T/ref.err"
        # shellcheck disable=SC2086
        "$NEW" serve --method "$m" $cfg --json --timeline "$T/new.tl.csv" >"$T/new.out" 2>"$T/new.err"
        echo $? >>"$T/new.err"
        n=$((n + 1))
        # a run that fails writes no timeline: then neither may have one
        tl=same
        if [ -e "$T/ref.tl.csv" ] || [ -e "$T/new.tl.csv" ]; then
            cmp -s "$T/ref.tl.csv" "$T/new.tl.csv" 2>/dev/null || tl=differ
        fi
        if cmp -s "$T/ref.out" "$T/new.out" && cmp -s "$T/ref.err" "$T/new.err" && [ $tl = same ]; then
            steps=$([ -e "$T/new.tl.csv" ] && echo "$(($(wc -l <"$T/new.tl.csv") - 1)) steps" || echo "no timeline")
            echo "same  $m config $i ($(wc -c <"$T/new.out") bytes, $steps, exit $(tail -n1 "$T/new.err"))"
        else
            if cmp -s "$T/ref.err" "$T/new.err"; then errs=same; else errs=other; fi
            rel=$(python3 - "$T" <<'PY' 2>/dev/null || echo "not comparable"
import re, sys
t = sys.argv[1]
num = re.compile(r'-?[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?|nan|inf')
def nums(f):
    try:
        return num.findall(open(f).read())
    except OSError:
        return []
worst, n = 0.0, 0
for a, b in ((t + '/ref.out', t + '/new.out'), (t + '/ref.tl.csv', t + '/new.tl.csv')):
    x, y = nums(a), nums(b)
    if len(x) != len(y):
        print('not comparable'); sys.exit()
    for u, v in zip(x, y):
        n += 1
        if u == v:
            continue
        if not any(c in u + v for c in '.eEni'):
            print('not comparable'); sys.exit()  # an integer differs
        fu, fv = float(u), float(v)
        worst = max(worst, abs(fu - fv) / max(abs(fu), abs(fv)))
print('%.2g over %d numbers' % (worst, n))
PY
)
            if [ $errs = same ] && [ -n "$TOL" ] && [ "$rel" != "not comparable" ] &&
                python3 -c "import sys; sys.exit(0 if float('${rel%% *}') <= float('$TOL') else 1)"; then
                echo "close $m config $i (bytes differ; largest relative difference $rel)"
                nclose=$((nclose + 1))
            else
                echo "DIFF  $m config $i (largest relative difference: $rel)"
                diff "$T/ref.out" "$T/new.out" | head -5
                diff "$T/ref.err" "$T/new.err" | head -5
                [ $tl = same ] || cmp "$T/ref.tl.csv" "$T/new.tl.csv" 2>&1 | head -2
                fail=1
            fi
        fi
    done
done
echo "$n runs compared: $([ $fail = 0 ] && { [ $nclose = 0 ] && echo all byte-identical || echo "$((n - nclose)) byte-identical, $nclose within TOL=$TOL"; } || echo DIFFERENCES)"
exit $fail
