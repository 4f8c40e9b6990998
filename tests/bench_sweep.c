/* bench_sweep.c — sweep throughput: points per second without fidelity
 * (each point = the method's prediction, full's prediction, the largest-batch
 * solve and one CSV row written), points per second with fidelity at a small
 * context (Llama-3.1-8B shapes at 2K, one layer, two decode steps, one
 * thread: fidelity computed once per (method, budget) and reused across
 * GPUs and batches), and the scaling from one to two worker processes (two
 * shards run in parallel against the whole sweep in one process; ceiling
 * 2.0). Wall-clock medians of 3 runs; the machine may be shared, so the
 * scaling figure is only as good as the free cores. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swp.h"

static void spec_big(swp_spec *s)
{
    swp_spec_defaults(s);
    const char *hw[] = {"h100-sxm", "h200", "b200", "a100-80g"};
    s->nhw = 4;
    for (int i = 0; i < 4; i++) snprintf(s->hw[i], sizeof s->hw[i], "%s", hw[i]);
    const char *m[] = {"full", "rocketkv", "quest", "snapkv-gqa", "streaming"};
    s->nmethods = 5;
    for (int i = 0; i < 5; i++) snprintf(s->methods[i], sizeof s->methods[i], "%s", m[i]);
    s->nbudgets = 5;
    for (int i = 0; i < 5; i++) s->budgets[i] = 256 << i;
    s->ncontexts = 16;
    for (int i = 0; i < 16; i++) s->contexts[i] = 8192 + 8192 * i;
    s->nbatches = 4;
    for (int i = 0; i < 4; i++) s->batches[i] = 1 << (2 * i);
    s->nharness = 2;
    s->harness[1] = SIM_HARNESS_GPT_FAST;
}

static void spec_fid(swp_spec *s)
{
    swp_spec_defaults(s);
    const char *hw[] = {"h100-sxm", "h200"};
    s->nhw = 2;
    for (int i = 0; i < 2; i++) snprintf(s->hw[i], sizeof s->hw[i], "%s", hw[i]);
    const char *m[] = {"full", "rocketkv", "quest", "snapkv-gqa", "streaming"};
    s->nmethods = 5;
    for (int i = 0; i < 5; i++) snprintf(s->methods[i], sizeof s->methods[i], "%s", m[i]);
    s->nbudgets = 3;
    for (int i = 0; i < 3; i++) s->budgets[i] = 128 << i;
    s->contexts[0] = 2048;
    s->nbatches = 2;
    s->batches[1] = 8;
    s->fidelity = 1;
    snprintf(s->workload, sizeof s->workload, "builtin");
    s->fid_steps = 2;
    snprintf(s->fid_layers, sizeof s->fid_layers, "0");
    s->threads = 1;
}

/* One shard (count 1: everything) into path; returns wall seconds, or -1. */
static double run_shard(const swp_spec *s, const char *path, int index, int count, int64_t *points)
{
    kv_err err;
    swp_sweep *w = swp_sweep_alloc(s, &err);
    if (!w) {
        fprintf(stderr, "bench_sweep: %s\n", err.msg);
        return -1;
    }
    remove(path);
    swp_run_opts o = {index, count, 0, 0, NULL, NULL};
    swp_run_stats st;
    double t0 = kv_now_s();
    int rc = swp_run(w, path, &o, &st, &err);
    double t = kv_now_s() - t0;
    swp_sweep_free(w);
    if (rc != 0) {
        fprintf(stderr, "bench_sweep: %s\n", err.msg);
        return -1;
    }
    if (points) *points = st.total;
    remove(path);
    return t;
}

/* Two shards in two processes; wall seconds until both are done. */
static double run_two(const swp_spec *s, const char *dir)
{
    double t0 = kv_now_s();
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        if (pid[i] < 0) return -1;
        if (pid[i] == 0) {
            char path[256];
            snprintf(path, sizeof path, "%s/shard%d.csv", dir, i);
            _exit(run_shard(s, path, i, 2, NULL) < 0 ? 1 : 0);
        }
    }
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int st;
        waitpid(pid[i], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    return ok ? kv_now_s() - t0 : -1;
}

static double cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median3(double v[3])
{
    qsort(v, 3, sizeof *v, cmp_d);
    return v[1];
}

int main(void)
{
    char dir[] = "/tmp/kvsim-bench-sweep-XXXXXX", path[256];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/all.csv", dir);
    static swp_spec big, fid;
    spec_big(&big);
    spec_fid(&fid);
    int64_t nbig = 0, nfid = 0;
    double t1[3], t2[3], f1[3], f2[3], c[4] = {0, 0, 0, 0}, x;
    for (int r = 0; r < 3; r++) { /* CPU seconds: one process vs the two shards together */
        x = cpu_self();
        if ((t1[r] = run_shard(&big, path, 0, 1, &nbig)) < 0) return 1;
        c[0] += cpu_self() - x;
        x = cpu_children();
        if ((t2[r] = run_two(&big, dir)) < 0) return 1;
        c[1] += cpu_children() - x;
        x = cpu_self();
        if ((f1[r] = run_shard(&fid, path, 0, 1, &nfid)) < 0) return 1;
        c[2] += cpu_self() - x;
        x = cpu_children();
        if ((f2[r] = run_two(&fid, dir)) < 0) return 1;
        c[3] += cpu_children() - x;
    }
    const double a1 = median3(t1), a2 = median3(t2), b1 = median3(f1), b2 = median3(f2);
    printf("sweep without fidelity: %.0f points/s in one process (%lld points: llama3.1-8b, 4 GPUs x 2 harnesses x 16 "
           "contexts x 4 batches x 21 (method, budget); median of 3: %.3f s)\n", (double)nbig / a1, (long long)nbig, a1);
    printf("sweep with fidelity at 2K (1 layer, 2 steps, 1 thread): %.1f points/s in one process (%lld points, 16 "
           "fidelity keys; median of 3: %.2f s)\n", (double)nfid / b1, (long long)nfid, b1);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double load[1] = {0};
    getloadavg(load, 1);
    printf("scaling 1 -> 2 processes (--shard 1/2 and 2/2 in parallel), without fidelity: %.2fx wall (%.3f s -> %.3f s); "
           "ceiling 2.00: ratio %.2f; CPU work %.3f s -> %.3f s (x%.2f)\n", a1 / a2, a1, a2, a1 / a2 / 2.0, c[0] / 3,
           c[1] / 3, c[1] / c[0]);
    printf("scaling 1 -> 2 processes, with fidelity: %.2fx wall (%.2f s -> %.2f s); ceiling 2.00: ratio %.2f; CPU work "
           "%.2f s -> %.2f s (x%.2f: each shard regenerates the workload it scores)\n", b1 / b2, b1, b2, b1 / b2 / 2.0,
           c[2] / 3, c[3] / 3, c[3] / c[2]);
    printf("(machine: %ld CPUs, load average %.1f while measuring: wall scaling needs a free second core)\n", ncpu,
           load[0]);
    rmdir(dir);
    return 0;
}
