/* bench_sim.c — analytic predictions per second on one core (goal >= 100,000;
 * ratio to the goal printed). A prediction = resolve one method's parameters
 * for a (context, budget) and run sim_predict: 49 decode steps summed step by
 * step, prefill with stage 1, the memory breakdown. Contexts and budgets
 * vary every call so nothing is cached between predictions. Then
 * trace-driven throughput in MB of trace per CPU second. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#include <unistd.h>
#include "trc.h"

#define GOAL_PER_S 100000.0

static int setup(rkv_request *rq, const mdl_model *m)
{
    rkv_request_defaults(rq);
    rq->d = m->head_dim;
    rq->G = mdl_group_size(m);
    rq->model_max_len = m->max_position_embeddings;
    return 0;
}

/* CPU seconds of this process: the machine is shared, so a per-core rate
 * is predictions per CPU second, not per wall second. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Records one trace (smollm2-135m, all 30 layers, S = 4096, rocketkv t = 256,
 * 49 steps), then times open + trace-driven prediction over it. */
static int bench_traces(const hw_model *h)
{
    static mdl_model m;
    static rkv_workload wl;
    kv_err err;
    if (mdl_model_load("smollm2-135m", &m, &err) != 0)
        goto fail;
    rkv_workload_defaults(&wl);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = m.head_dim;
    rq.G = mdl_group_size(&m);
    rq.model_max_len = m.max_position_embeddings;
    rq.context = 4096;
    rq.budget = 256;
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    if (rkv_params_resolve("rocketkv", &rq, &cfg.sets[0], &err) != 0)
        goto fail;
    cfg.nsets = 1;
    cfg.model = &m;
    cfg.wl = &wl;
    cfg.steps = 49;
    cfg.threads = 2;
    char path[256];
    snprintf(path, sizeof path, "/tmp/kvsim_bench_sim_%ld.trc", (long)getpid());
    if (trc_record_run(path, &cfg, 1, 0, NULL, &err) != 0)
        goto fail;
    double bytes = 0.0, sink = 0.0;
    long n = 0;
    const double c0 = cpu_s();
    double c1 = c0;
    while (c1 - c0 < 1.0) {
        sim_trace *t;
        if (sim_trace_open(path, &t, &err) != 0)
            goto fail_rm;
        sim_config c;
        sim_result r;
        sim_config_defaults(&c, sim_trace_model(t), h, sim_trace_params(t));
        c.access = sim_trace_source(t);
        c.steps = 49;
        int rc = sim_predict(&c, &r, &err);
        bytes += sim_trace_file_bytes(t);
        sim_trace_close(t);
        if (rc != 0)
            goto fail_rm;
        sink += r.step_time_s;
        n++;
        c1 = cpu_s();
    }
    unlink(path);
    printf("sim trace-driven predictions: %.1f MB of trace per CPU second (%ld x %.2f MB trace: smollm2-135m, "
           "30 layers x 3 KV heads, 49 steps, rocketkv t=256, S=4096; open + decode + predict)%s\n",
           bytes / 1e6 / (c1 - c0), n, bytes / n / 1e6, sink > 0 ? "" : " (?)");
    return 0;
fail_rm:
    unlink(path);
fail:
    fprintf(stderr, "bench_sim: %s\n", err.msg);
    return 1;
}

int main(void)
{
    mdl_model m;
    hw_model h;
    kv_err err;
    if (mdl_model_load("llama3.1-8b", &m, &err) != 0 || hw_model_load("h100-sxm", &h, &err) != 0) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        return 1;
    }
    static const char *const methods[] = {"rocketkv", "full", "quest", "snapkv-gqa", "sparq", "streaming"};
    const int nm = (int)(sizeof methods / sizeof methods[0]);
    rkv_request rq;
    setup(&rq, &m);
    double sink = 0.0;
    long n = 0;
    const double t0 = kv_now_s(), c0 = cpu_s();
    double t1 = t0, c1 = c0;
    while (c1 - c0 < 1.0) {
        for (int i = 0; i < 1000; i++, n++) {
            rq.context = 4096 + (n * 7919) % 120000;
            rq.budget = 256 << (n % 5);
            rkv_params p;
            sim_config c;
            sim_result r;
            if (rkv_params_resolve(methods[n % nm], &rq, &p, &err) != 0) {
                fprintf(stderr, "bench_sim: %s\n", err.msg);
                return 1;
            }
            sim_config_defaults(&c, &m, &h, &p);
            c.batch = 1 + n % 16;
            if (sim_predict(&c, &r, &err) != 0) {
                fprintf(stderr, "bench_sim: %s\n", err.msg);
                return 1;
            }
            sink += r.step_time_s;
        }
        t1 = kv_now_s();
        c1 = cpu_s();
    }
    const double per_s = (double)n / (c1 - c0);
    printf("sim analytic predictions: %.0f per CPU second on one core (%ld in %.2f CPU s, %.2f wall s; 49 steps "
           "each, llama3.1-8b, 6 methods, batch 1-16); goal %.0f: ratio %.2f%s\n",
           per_s, n, c1 - c0, t1 - t0, GOAL_PER_S, per_s / GOAL_PER_S, sink > 0 ? "" : " (?)");
    return bench_traces(&h);
}
