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
#include <sys/stat.h>
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
    cr_assert_eq(trc_record_run(path, &cfg, 2, 0, NULL, &err), 0, "%s", err.msg);
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

/* A trace-driven prediction prices the bytes the trace holds. Per decode step
 * and the whole model, a category's bytes are the trace's sum over its
 * recorded layers and sequences (mean_per_step in the sample's inspect.json,
 * which tests/trace_reader.py checks independently), averaged over the
 * trace's sequences, scaled from the recorded layers to all 30 (unrecorded
 * layers take the recorded layers' mean), at batch 1:
 *   rocketkv (layers 0,1; 2 sequences): x 30 / (2 · 2) = 7.5
 *     kv_exact 98304 -> 737280, aux 73920 -> 554400, kv_write 6144 -> 46080, scores 21120 -> 158400
 *   quest (layer 5; 1 sequence): x 30
 *     kv_exact 73728 -> 2211840, aux 6528 -> 195840, kv_write 768 -> 23040, scores 1224 -> 36720
 *   snapkv (layer 0; 1 sequence): x 30
 *     kv_exact 224640 -> 6739200, aux 0, kv_write 2304 -> 69120, scores 0
 * No trace reads kv_full. */
Test(sim_trace, samples_open_and_predict)
{
    static const struct {
        const char *path;
        double kv_exact, aux, kv_write, scores;
    } cases[] = {
        {"traces/samples/rocketkv.trc", 737280, 554400, 46080, 158400},
        {"traces/samples/quest.trc", 2211840, 195840, 23040, 36720},
        {"traces/samples/snapkv.trc", 6739200, 0, 69120, 0},
    };
    hw_model h;
    kv_err err = {""};
    cr_assert_eq(hw_model_load("h200", &h, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_trace *t;
        cr_assert_eq(sim_trace_open(cases[i].path, &t, &err), 0, "%s", err.msg);
        sim_config c;
        sim_config_defaults(&c, sim_trace_model(t), &h, sim_trace_params(t));
        c.access = sim_trace_source(t);
        c.steps = c.access->steps;
        c.batch = 1;
        sim_result r;
        cr_assert_eq(sim_predict(&c, &r, &err), 0, "%s: %s", cases[i].path, err.msg);
        const double want[SIM_CAT_N] = {[SIM_CAT_KV_EXACT] = cases[i].kv_exact, [SIM_CAT_AUX] = cases[i].aux,
                                        [SIM_CAT_KV_WRITE] = cases[i].kv_write, [SIM_CAT_SCORES] = cases[i].scores};
        const int cat[] = {SIM_CAT_KV_EXACT, SIM_CAT_KV_FULL, SIM_CAT_AUX, SIM_CAT_KV_WRITE, SIM_CAT_SCORES};
        for (size_t k = 0; k < sizeof cat / sizeof cat[0]; k++)
            cr_assert(fabs(r.cat_bytes[cat[k]] - want[cat[k]]) <= 1e-9 * want[cat[k]], "%s %s: %.17g, expected %.17g",
                      cases[i].path, sim_cat_names[cat[k]], r.cat_bytes[cat[k]], want[cat[k]]);
        struct stat sb;
        cr_assert_eq(stat(cases[i].path, &sb), 0);
        cr_assert_eq(sim_trace_file_bytes(t), (double)sb.st_size, "the file's size on disk");
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
