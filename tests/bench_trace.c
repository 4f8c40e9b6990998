/* bench_trace.c — what recording a trace costs and how fast it reads back.
 *
 * 1. Writing overhead: the same rkv_run (llama3.1-8b shape, 4 layers, 8K
 *    context, budget 1024, 8 steps, 2 threads) with fidelity on, without and
 *    with the trace writer (which then also stores the fidelity figures);
 *    and the same pair with fidelity off (the writer against the reference's
 *    bare decode work: a stricter bar). Goal: <= 5 %.
 * 2. Reading: trc_open + decoding every stage-1 and step block of that
 *    trace, in MB/s of file, against a plain sequential fread of the same
 *    file measured in the same run (page cache warm for both), and the ratio.
 * Every figure is the median of several runs. Built by `make bench`. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "trc.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU seconds of the whole process (all threads, user + system): on a
 * shared machine this is steadier than wall time, which is printed too. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double plain_read(const char *path, size_t *bytes)
{
    static char buf[1 << 20];
    double t0 = kv_now_s();
    FILE *fp = fopen(path, "rb");
    size_t n = 0, got;
    unsigned sum = 0;
    while (fp && (got = fread(buf, 1, sizeof buf, fp)) > 0) {
        n += got;
        sum += (unsigned char)buf[got - 1];
    }
    if (fp) fclose(fp);
    *bytes = n + (sum & 0); /* keep the loop */
    return kv_now_s() - t0;
}

static double trace_read(const char *path, int64_t *positions)
{
    double t0 = kv_now_s();
    trc_reader *r;
    kv_err err;
    if (trc_open(path, &r, &err) != 0) {
        fprintf(stderr, "bench_trace: %s\n", err.msg);
        exit(1);
    }
    const trc_header *h = trc_get_header(r);
    trc_step st = {0};
    trc_stage1 s1 = {0};
    *positions = 0;
    for (int s = 0; s < h->batch; s++) {
        if (trc_read_stage1(r, s, &s1, &err) != 0) exit(1);
        for (int64_t k = 0; k < h->steps; k++) {
            if (trc_read_step(r, s, k, &st, &err) != 0) {
                fprintf(stderr, "bench_trace: %s\n", err.msg);
                exit(1);
            }
            *positions += st.positions;
        }
    }
    trc_step_free(&st);
    trc_stage1_free(&s1);
    trc_close(r);
    return kv_now_s() - t0;
}

int main(void)
{
    enum { RUNS = 5, READS = 15 };
    static mdl_model m;
    static rkv_workload wl;
    kv_err err;
    if (mdl_model_load("llama3.1-8b", &m, &err) != 0) {
        fprintf(stderr, "bench_trace: %s\n", err.msg);
        return 1;
    }
    rkv_workload_defaults(&wl);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = m.head_dim;
    rq.G = mdl_group_size(&m);
    rq.model_max_len = m.max_position_embeddings;
    rq.context = 8192;
    rq.budget = 1024;
    static rkv_run_cfg cfg;
    if (rkv_params_resolve("rocketkv", &rq, &cfg.sets[0], &err) != 0) return 1;
    static const int layers[4] = {0, 1, 2, 3};
    cfg.nsets = 1;
    cfg.model = &m;
    cfg.wl = &wl;
    cfg.steps = 8;
    cfg.layers = layers;
    cfg.nlayers = 4;
    cfg.threads = 2;
    char path[256];
    snprintf(path, sizeof path, "/tmp/kvsim_bench_trace_%ld.trc", (long)getpid());
    /* [0] fidelity on, [1] + trace, [2] fidelity off, [3] + trace; wall and CPU */
    double wall[4][RUNS], cpu[4][RUNS], own[2][RUNS];
    for (int i = 0; i < RUNS; i++) { /* interleaved, so drift hits every variant */
        for (int v = 0; v < 4; v++) {
            rkv_fidelity fid[1];
            cfg.fidelity = v < 2;
            const double w0 = kv_now_s(), c0 = cpu_s();
            trc_write_stats ws = {0};
            int rc = v % 2 ? trc_record_run(path, &cfg, 1, v < 2, &ws, &err) : rkv_run(&cfg, v < 2 ? fid : NULL, &err);
            if (v % 2) own[v / 2][i] = ws.writer_cpu_s;
            cpu[v][i] = cpu_s() - c0;
            wall[v][i] = kv_now_s() - w0;
            if (rc != 0) {
                fprintf(stderr, "bench_trace: %s\n", err.msg);
                return 1;
            }
            if (v == 0) rkv_fidelity_free(&fid[0]);
        }
    }
    double mw[4], mc[4], mo[2] = {median(own[0], RUNS), median(own[1], RUNS)};
    for (int v = 0; v < 4; v++) {
        mw[v] = median(wall[v], RUNS);
        mc[v] = median(cpu[v], RUNS);
    }
    printf("bench_trace: llama3.1-8b rocketkv S=8192 t=1024, 4 layers x 8 KV heads, 8 steps, 2 threads, median of %d\n", RUNS);
    for (int k = 0; k < 2; k++)
        printf("  write, fidelity %-3s: CPU %.3f s -> %.3f s with the trace, overhead %+.2f%%; wall %.3f s -> %.3f s, %+.2f%%%s\n",
               k ? "off" : "on", mc[2 * k], mc[2 * k + 1], 100.0 * (mc[2 * k + 1] / mc[2 * k] - 1.0), mw[2 * k], mw[2 * k + 1],
               100.0 * (mw[2 * k + 1] / mw[2 * k] - 1.0), k ? "" : "  (goal <= 5%)");
    for (int k = 0; k < 2; k++)
        printf("  writer's own CPU (callbacks + emission + commit), fidelity %-3s: %.4f s = %.2f%% of the run's CPU\n",
               k ? "off" : "on", mo[k], 100.0 * mo[k] / mc[2 * k]);
    double tr[READS], tp[READS], cr[READS], cp[READS];
    size_t bytes = 0;
    int64_t npos = 0;
    for (int i = 0; i < READS; i++) {
        double c0 = cpu_s();
        tp[i] = plain_read(path, &bytes);
        cp[i] = cpu_s() - c0;
        c0 = cpu_s();
        tr[i] = trace_read(path, &npos);
        cr[i] = cpu_s() - c0;
    }
    const double mr = median(tr, READS), mp = median(tp, READS), mb = (double)bytes / 1e6;
    const double mcr = median(cr, READS), mcp = median(cp, READS);
    printf("  read: %.3f MB file, %lld attended positions (%.3f bytes each)\n", mb, (long long)npos, (double)bytes / (double)npos);
    printf("    open + decode every block: %.0f MB/s wall, %.0f MB/s CPU (%.0f M positions/s)\n", mb / mr, mb / mcr,
           (double)npos / mcr / 1e6);
    printf("    plain sequential fread   : %.0f MB/s wall, %.0f MB/s CPU; decode/fread ratio %.3f wall, %.3f CPU\n", mb / mp,
           mb / mcp, mp / mr, mcp / mcr);
    remove(path);
    return 0;
}
