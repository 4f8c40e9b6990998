/* bench_llm.c — speed of the GGUF runner: prefill tokens/s (dense, sgemm)
 * and decode tokens/s (one token per step, sgemv + rkv_attend), best of 2,
 * on SmolLM2-135M-Instruct over the GPL-3 text; and llama.cpp's figures on
 * the same file, text and thread count in the same run where
 * llama-cpp-python is installed (scripts/bench_llamacpp.py). Goal: prefill
 * at least 50 % of llama.cpp's.
 *
 *   make build/bench/bench_llm && build/bench/bench_llm [PREFILL DECODE THREADS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm.h"

#define MODEL KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"
#define TEXT "/usr/share/common-licenses/GPL-3"

int main(int argc, char **argv)
{
    const int64_t S = argc > 1 ? atoll(argv[1]) : 512, N = argc > 2 ? atoll(argv[2]) : 64;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const int th = argc > 3 ? atoi(argv[3]) : (ncpu > 0 ? (int)ncpu : 1);
    kv_err err;
    llm_model *m;
    double t0 = kv_now_s();
    if (llm_model_load(MODEL, &m, &err) != 0) {
        printf("bench_llm: skipped (%s)\n", err.msg);
        return 0;
    }
    const double load = kv_now_s() - t0;
    FILE *fp = fopen(TEXT, "rb");
    static char text[1 << 20];
    size_t tn = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    if (fp) fclose(fp);
    int32_t *ids = malloc((tn + 1) * sizeof *ids);
    int64_t nt = llm_tokenize(m->tok, text, tn, ids, (int64_t)tn + 1);
    if (nt < S + N) {
        printf("bench_llm: %s has %lld tokens, %lld needed\n", TEXT, (long long)nt, (long long)(S + N));
        return 1;
    }
    float *lg = malloc((size_t)m->c.vocab * 4);
    double best_p = 0, best_d = 0;
    for (int rep = 0; rep < 2; rep++) {
        llm_session *s;
        llm_session_cfg cfg = {.max_tokens = S + N + 1, .kv_dtype = RKV_DTYPE_BF16, .threads = th};
        if (llm_session_new(m, &cfg, &s, &err) != 0) { printf("%s\n", err.msg); return 1; }
        double t = kv_now_s();
        if (llm_prefill(s, ids, S, lg, 0, 1, &err) != 0) { printf("%s\n", err.msg); return 1; }
        double p = (double)S / (kv_now_s() - t);
        t = kv_now_s();
        for (int64_t i = 0; i < N; i++)
            if (llm_decode(s, ids[S + i], lg, &err) != 0) { printf("%s\n", err.msg); return 1; }
        double d = (double)N / (kv_now_s() - t);
        if (p > best_p) best_p = p;
        if (d > best_d) best_d = d;
        llm_session_free(s);
    }
    printf("bench_llm: SmolLM2-135M-Instruct Q4_1 (weights f32 after load, %.2f s), %d threads, bf16 KV\n", load, th);
    printf("  kvsim     prefill %lld tokens: %8.1f tokens/s   decode %lld tokens: %6.1f tokens/s\n", (long long)S, best_p,
           (long long)N, best_d);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 %s/scripts/bench_llamacpp.py %s %s %lld %lld %d 2>/dev/null", KVSIM_DATADIR,
             MODEL, TEXT, (long long)S, (long long)N, th);
    FILE *pp = popen(cmd, "r");
    double lp = 0, ld = 0;
    if (pp && fscanf(pp, "%lf %lf", &lp, &ld) == 2 && lp > 0) {
        printf("  llama.cpp prefill %lld tokens: %8.1f tokens/s   decode %lld tokens: %6.1f tokens/s\n", (long long)S,
               lp, (long long)N, ld);
        printf("  ratio     prefill %.2f (goal >= 0.50)            decode %.2f\n", best_p / lp, best_d / ld);
    } else {
        printf("  llama.cpp: not measured (pip install llama-cpp-python)\n");
    }
    if (pp) pclose(pp);
    free(lg);
    free(ids);
    llm_model_free(m);
    return 0;
}
