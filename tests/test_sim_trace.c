/* test_sim_trace.c — sim/ driven by traces (traces/): for every method whose
 * counts are data-independent, the trace-driven prediction reads exactly the
 * analytic bytes in every category; where the layout fixes the runs (dense
 * and compacted reads) the step times agree too, and where a trace can only
 * merge runs (page gathers) the trace-driven time is never slower. Also the
 * sample traces, unrecorded layers, and trace error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "trc.h"

#define REL_EXACT 1e-12

static mdl_model model;
static rkv_workload wl;
static const int two_layers[] = {0, 17};

static void record(const char *path, const char *method, int64_t budget, int64_t context)
{
    kv_err err = {""};
    cr_assert_eq(mdl_model_load("smollm2-135m", &model, &err), 0, "%s", err.msg);
    rkv_workload_defaults(&wl);
    wl.seed = 11;
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = model.head_dim;
    rq.G = mdl_group_size(&model);
    rq.model_max_len = model.max_position_embeddings;
    rq.context = context;
    rq.budget = budget;
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cr_assert_eq(rkv_params_resolve(method, &rq, &cfg.sets[0], &err), 0, "%s: %s", method, err.msg);
    cfg.nsets = 1;
    cfg.model = &model;
    cfg.wl = &wl;
    cfg.steps = 3;
    cfg.layers = two_layers;
    cfg.nlayers = 2;
    cfg.threads = 2;
    cr_assert_eq(trc_record_run(path, &cfg, 2, 0, &err), 0, "%s", err.msg);
}

static void compare(const char *method, int64_t budget, int64_t context, int same_runs)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/kvsim_test_sim_%s_%ld.trc", method, (long)getpid());
    record(path, method, budget, context);
    sim_trace *t;
    kv_err err = {""};
    cr_assert_eq(sim_trace_open(path, &t, &err), 0, "%s", err.msg);
    hw_model h;
    cr_assert_eq(hw_model_load("h100-sxm", &h, &err), 0, "%s", err.msg);
    const rkv_params *p = sim_trace_params(t);
    cr_assert(rkv_params_data_independent(p), "%s", method);
    sim_config c;
    sim_config_defaults(&c, sim_trace_model(t), &h, p);
    c.batch = 5;
    c.steps = 3;
    sim_result a, r;
    cr_assert_eq(sim_predict(&c, &a, &err), 0, "%s", err.msg);
    c.access = sim_trace_source(t);
    cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s", err.msg);
    for (int i = 0; i < SIM_CAT_N; i++)
        cr_assert(fabs(r.cat_bytes[i] - a.cat_bytes[i]) <= REL_EXACT * a.cat_bytes[i], "%s %s: trace %.17g, analytic %.17g",
                  method, sim_cat_names[i], r.cat_bytes[i], a.cat_bytes[i]);
    cr_assert(r.decode_s <= a.decode_s * (1 + REL_EXACT), "%s: merged runs cannot be slower", method);
    if (same_runs) /* whole compacted caches: the layout fixes the runs */
        cr_assert(fabs(r.decode_s - a.decode_s) <= 1e-9 * a.decode_s, "%s: %.17g vs %.17g", method, r.decode_s, a.decode_s);
    sim_trace_close(t);
    unlink(path);
}

Test(sim_trace, full_equals_analytic) { compare("full", 64, 301, 1); }
Test(sim_trace, streaming_equals_analytic) { compare("streaming", 64, 301, 1); }
Test(sim_trace, snapkv_gqa_equals_analytic) { compare("snapkv-gqa", 96, 301, 1); }
Test(sim_trace, rocketkv_equals_analytic) { compare("rocketkv", 64, 333, 0); }
Test(sim_trace, hsa_equals_analytic) { compare("hsa", 64, 333, 0); }
Test(sim_trace, sparq_equals_analytic) { compare("sparq", 64, 301, 0); }
Test(sim_trace, exact_topk_equals_analytic) { compare("exact-topk", 64, 301, 0); }
Test(sim_trace, rocketkv_no_eviction_equals_analytic) { compare("rocketkv", 512, 301, 1); }

Test(sim_trace, samples_open_and_predict)
{
    static const char *const samples[] = {"traces/samples/rocketkv.trc", "traces/samples/quest.trc",
                                          "traces/samples/snapkv.trc"};
    hw_model h;
    kv_err err = {""};
    cr_assert_eq(hw_model_load("h200", &h, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        sim_trace *t;
        cr_assert_eq(sim_trace_open(samples[i], &t, &err), 0, "%s", err.msg);
        sim_config c;
        sim_config_defaults(&c, sim_trace_model(t), &h, sim_trace_params(t));
        c.access = sim_trace_source(t);
        c.steps = c.access->steps;
        sim_result r;
        cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s: %s", samples[i], err.msg);
        cr_assert(r.step_time_s > 0 && r.cat_bytes[SIM_CAT_WEIGHTS] > 0);
        cr_assert(sim_trace_file_bytes(t) > 0);
        sim_trace_close(t);
    }
}

Test(sim_trace, error_paths)
{
    sim_trace *t = (sim_trace *)1;
    kv_err err = {""};
    cr_assert_eq(sim_trace_open("tests/data/traces/bad_magic.trc", &t, &err), -1);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "bad_magic.trc"), "%s", err.msg);
    cr_assert_eq(sim_trace_open("/nonexistent/x.trc", &t, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/x.trc"), "%s", err.msg);
    sim_trace_close(NULL);
    /* a trace shorter than the steps asked for is an error, not a guess */
    cr_assert_eq(sim_trace_open("traces/samples/rocketkv.trc", &t, &err), 0, "%s", err.msg);
    hw_model h;
    cr_assert_eq(hw_model_load("h100-sxm", &h, &err), 0);
    sim_config c;
    sim_config_defaults(&c, sim_trace_model(t), &h, sim_trace_params(t));
    c.access = sim_trace_source(t);
    sim_result r;
    cr_assert_eq(sim_predict(&c, &r, &err), -1);
    cr_assert(strstr(err.msg, "trace source holds"), "%s", err.msg);
    sim_trace_close(t);
}
