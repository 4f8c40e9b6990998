/* test_validate.c — sim/validate.c and `kvsim validate` over the SYNTHETIC
 * fixture tests/data/gpu/fixture-not-measured.json (made-up round numbers in
 * gpu_check's schema; no GPU produced it): the error arithmetic, the pinned
 * cache size, calibration, speedups, the matrix bookkeeping, and every error
 * path (each a one-key mutation of the fixture written to /tmp). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "published.h"
#include "sim_validate.h"

#define FIXTURE "tests/data/gpu/fixture-not-measured.json"

static hw_model g_hw;
static mdl_model g_m;

static void load_models(void)
{
    kv_err err;
    cr_assert_eq(hw_model_load("h100-sxm", &g_hw, &err), 0, "%s", err.msg);
    cr_assert_eq(mdl_model_load("llama3.1-8b", &g_m, &err), 0, "%s", err.msg);
}

static const sim_validate_row *row_of(const sim_validate *v, const char *method, const char *what, int64_t budget,
                                      int64_t batch)
{
    for (int i = 0; i < v->nrows; i++)
        if (!strcmp(v->rows[i].method, method) && !strcmp(v->rows[i].what, what) && v->rows[i].budget == budget &&
            v->rows[i].batch == batch)
            return &v->rows[i];
    cr_assert_fail("no row %s/%s/%lld/b%lld", method, what, (long long)budget, (long long)batch);
    return NULL;
}

Test(validate, error_percent_arithmetic)
{
    cr_assert_float_eq(sim_validate_err_pct(110.0, 100.0), 10.0, 1e-12);
    cr_assert_float_eq(sim_validate_err_pct(37.0, 50.0), -26.0, 1e-12);
    cr_assert_float_eq(sim_validate_err_pct(3e-6, 3e-6), 0.0, 1e-12);
    cr_assert(isnan(sim_validate_err_pct(1.0, 0.0)));
    cr_assert(isnan(sim_validate_err_pct(1.0, -2.0)));
}

Test(validate, fixture_rows_speedups_and_matrix, .init = load_models)
{
    sim_validate v;
    kv_err err;
    cr_assert_eq(sim_validate_report(FIXTURE, &g_hw, &g_m, &v, &err), 0, "%s", err.msg);
    cr_assert(strstr(v.comment, "NOT A MEASUREMENT") != NULL);
    cr_assert_eq(v.nrows, 10);
    cr_assert_eq(v.nskipped, 1); /* "future_kernel" */
    cr_assert_eq(v.nchecks, 2);
    cr_assert_eq(v.nchecks_failed, 0);
    for (int i = 0; i < v.nrows; i++) {
        const sim_validate_row *r = &v.rows[i];
        cr_assert(r->pred_s > 0 && r->pred_cal_s > 0, "%s/%s", r->method, r->what);
        cr_assert_float_eq(r->err_pct, 100.0 * (r->pred_s - r->measured_s) / r->measured_s, 1e-9);
        cr_assert_float_eq(r->err_cal_pct, 100.0 * (r->pred_cal_s - r->measured_s) / r->measured_s, 1e-9);
    }
    /* the fixture's medians, read as written */
    const sim_validate_row *f1 = row_of(&v, "full", "step", 0, 1), *r1 = row_of(&v, "rocketkv", "step", 256, 1);
    cr_assert_float_eq(f1->measured_s, 50e-6, 1e-18);
    cr_assert_float_eq(r1->measured_s, 20e-6, 1e-18);
    /* The dense step by hand: the sim prices decode step 0 of the 32768-token
     * context, C = S + 1 = 32769 cached tokens (one more than the fixture's
     * cache_tokens), so one layer reads K and V of 8 KV heads × 32769 tokens × 128
     * dims × 2 bytes = 134,221,824 B, streamed at the datasheet's
     * 3.35e12 B/s × h100-sxm.yaml's stream efficiency 0.89 × the transfer-size
     * efficiency B / (B + 3.35e12 × dram_latency_s 6e-7) = 0.98525, plus one
     * CUDA-graph launch (3 µs): 48.692 µs (its 0.54 GFLOP take 0.78 µs at 0.7 ×
     * 989.4e12, so memory bounds it). Calibrated from the fixture: 3.0e12 B/s and a
     * 2 µs graph launch: 47.411 µs. Against the fixture's 50 µs: -2.62% and -5.18%. */
    const double B = 134221824.0, xfer = B / (B + 3.35e12 * 6e-7);
    const double dense = B / (3.35e12 * 0.89 * xfer) + 3e-6, dense_cal = B / (3.0e12 * xfer) + 2e-6;
    cr_assert(fabs(f1->pred_s - dense) <= 1e-9 * dense, "dense step %.9g s, by hand %.9g s", f1->pred_s, dense);
    cr_assert(fabs(f1->pred_cal_s - dense_cal) <= 1e-9 * dense_cal, "%.9g vs %.9g", f1->pred_cal_s, dense_cal);
    cr_assert_float_eq(f1->err_pct, -2.6152, 5e-4);
    cr_assert_float_eq(f1->err_cal_pct, -5.1788, 5e-4);
    /* calibration from the same file changed the device (stream read 3.0e12 vs 0.89 × 3.35e12) */
    cr_assert_float_eq(v.hw_cal.stream_read_efficiency, 3.0e12 / g_hw.hbm_bandwidth_bytes_per_s, 1e-12);
    cr_assert(fabs(f1->pred_cal_s - f1->pred_s) > 1e-9);
    /* the rocketkv step is the sum of its four kernels, each priced alone */
    double parts = row_of(&v, "rocketkv", "pages_update", 256, 1)->pred_s +
                   row_of(&v, "rocketkv", "score", 256, 1)->pred_s +
                   row_of(&v, "rocketkv", "select", 256, 1)->pred_s +
                   row_of(&v, "rocketkv", "sparse_attend", 256, 1)->pred_s;
    cr_assert_float_eq(r1->pred_s, parts, 1e-15);
    cr_assert_float_eq(row_of(&v, "rocketkv", "step_v1", 256, 1)->pred_s, r1->pred_s, 1e-18);
    /* dense at C = 32768 is decode step 0 (C = S + 1): the same as sim_predict over one step, one layer */
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 32768;
    rq.max_new = 50;
    rq.budget = 32768;
    rq.model_max_len = g_m.max_position_embeddings;
    rq.d = g_m.head_dim;
    rq.G = g_m.num_attention_heads / g_m.num_key_value_heads;
    rkv_params p;
    cr_assert_eq(rkv_params_resolve("full", &rq, &p, &err), 0, "%s", err.msg);
    sim_config c;
    sim_config_defaults(&c, &g_m, &g_hw, &p);
    c.steps = 1;
    sim_result res;
    cr_assert_eq(sim_predict(&c, &res, &err), 0, "%s", err.msg);
    cr_assert_float_eq(f1->pred_s, res.kernel_s[SIM_K_ATTN_DENSE] / g_m.num_hidden_layers, 1e-15);
    /* batch 8 reads 8x the KV: about 8x the dense time (launch cost aside, and the
     * 8x larger transfer streams slightly better: 0.99813 vs 0.98525 of the rate) */
    const sim_validate_row *f8 = row_of(&v, "full", "step", 0, 8);
    cr_assert(f8->pred_s > 7.4 * f1->pred_s && f8->pred_s < 8.0 * f1->pred_s, "%g", f8->pred_s / f1->pred_s);
    /* speedups: measured from the medians, predicted from the predictions */
    cr_assert_eq(v.nspeedup, 3);
    const sim_validate_speedup *s = &v.speedup[0];
    cr_assert_str_eq(s->what, "step");
    cr_assert_float_eq(s->measured, 2.5, 1e-12);
    cr_assert_float_eq(s->pred, f1->pred_s / r1->pred_s, 1e-12);
    cr_assert_float_eq(s->err_pct, 100.0 * (s->pred - 2.5) / 2.5, 1e-9);
    cr_assert_float_eq(s->err_cal_pct, 100.0 * (s->pred_cal - 2.5) / 2.5, 1e-9);
    cr_assert_float_eq(v.speedup[1].measured, 2.0, 1e-12);  /* step_v1 */
    cr_assert_float_eq(v.speedup[2].measured, 5.0, 1e-12);  /* batch 8, budget 1024 */
    /* matrix: full b1, full b8, rocketkv 256/b1, rocketkv 1024/b8 */
    cr_assert_eq(v.matrix_total, 24);
    cr_assert_eq(v.matrix_present, 4);
    cr_assert_eq(v.nmissing, 20);
    cr_assert_str_eq(v.missing[0], "rocketkv 32768/1024/b1");
    sim_validate_free(&v);
    sim_validate_free(NULL);
}

/* Writes the fixture with `from` replaced by `to` (must occur) and expects
 * sim_validate_report to fail with a message containing `want`. */
static void expect_mutation(const char *from, const char *to, const char *want)
{
    static char buf[1 << 16];
    cli_slurp(FIXTURE, buf, sizeof buf);
    char *at = strstr(buf, from);
    cr_assert(at != NULL, "fixture lacks '%s'", from);
    char path[64], *out = malloc(sizeof buf + strlen(to));
    cr_assert(out);
    snprintf(path, sizeof path, "/tmp/kvsim-validate-%d.json", (int)getpid());
    size_t pre = (size_t)(at - buf);
    memcpy(out, buf, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(out, f);
    fclose(f);
    free(out);
    sim_validate v;
    kv_err err;
    int rc = sim_validate_report(path, &g_hw, &g_m, &v, &err);
    remove(path);
    cr_assert_eq(rc, -1, "mutation '%s' -> '%s' was accepted", from, to);
    cr_assert(strstr(err.msg, path) == err.msg, "message does not start with the file: %s", err.msg);
    cr_assert(strstr(err.msg, want) != NULL, "expected '%s' in: %s", want, err.msg);
    cr_assert_null(v.rows);
}

Test(validate, every_error_path, .init = load_models)
{
    kv_err err;
    sim_validate v;
    cr_assert_eq(sim_validate_report("tests/data/gpu/no-such-report.json", &g_hw, &g_m, &v, &err), -1);
    cr_assert(strstr(err.msg, "no-such-report.json") != NULL, "%s", err.msg);
    expect_mutation("{\n  \"kind\"", "[\n  \"kind\"", ":2:9: expected ',' or ']'"); /* not JSON any more */
    expect_mutation("\"kind\": \"kvsim-gpu-check\"", "\"knid\": \"kvsim-gpu-check\"", ":1:1: kind: missing key 'kind'");
    expect_mutation("\"kvsim-gpu-check\"", "\"something-else\"", ":2:11: kind: expected \"kvsim-gpu-check\"");
    expect_mutation("\"device\": \"NVIDIA H100 80GB HBM3\"", "\"device\": 7", ":5:13: device: expected a string, got 7");
    expect_mutation("\"aborted\": null", "\"aborted\": \"cudaErrorIllegalAddress\"", "aborted: the GPU run aborted");
    expect_mutation("\"aborted\": null", "\"aborted\": 0", "aborted: expected null or a string");
    expect_mutation("\"all_checks_pass\": true", "\"all_checks_pass\": \"yes\"", "all_checks_pass: expected true or false");
    expect_mutation("\"pass\": true, \"max_abs_err\": 1e-6", "\"max_abs_err\": 1e-6", "checks[0].pass: expected true or false (missing)");
    expect_mutation("\"stream_read_bytes_per_s\": 3.0e12", "\"stream_read_bytes_per_s\": 9.0e12", "key 'stream_read_bytes_per_s'");
    expect_mutation("\"timings\": [", "\"timings_\": [", "timings: missing key 'timings'");
    expect_mutation("\"median_s\": 20e-6", "\"median_s\": \"fast\"", "timings[1].median_s: expected a number");
    expect_mutation("\"median_s\": 50e-6", "\"median_s\": -1", "timings[0].median_s: expected a number in");
    expect_mutation("\"batch\": 8, \"cache_tokens\": 32768", "\"batch\": 8.5, \"cache_tokens\": 32768", "timings[7].batch: expected an integer");
    expect_mutation("\"what\": \"step\", \"method\": \"full\"", "\"what\": \"step\", \"method\": \"quest\"", "timings[0].method: expected a dense or stage-2 method (the ones the GPU check times), got \"quest\"");
    expect_mutation("\"what\": \"step\", \"method\": \"full\"", "\"what\": \"step\", \"method\": \"nope\"", "timings[0].method: expected a dense or stage-2 method (the ones the GPU check times), got \"nope\"");
    expect_mutation("\"what\": \"step\", \"method\": \"full\"", "\"what\": \"step\"", "timings[0].method: missing key 'method'");
    expect_mutation("\"kv_heads\": 8, \"group\": 4, \"head_dim\": 128, \"median_s\": 50e-6",
                    "\"kv_heads\": 8, \"group\": 4, \"head_dim\": 64, \"median_s\": 50e-6", "timings[0]: shape kv_heads 8, group 4, head_dim 64");
    expect_mutation("\"topk\": 128, \"kv_heads\": 8, \"group\": 4, \"head_dim\": 128, \"median_s\": 20e-6",
                    "\"topk\": 129, \"kv_heads\": 8, \"group\": 4, \"head_dim\": 128, \"median_s\": 20e-6", "timings[1]: topk 129, but rkv_params_resolve");
    expect_mutation("\"cache_tokens\": 5794", "\"cache_tokens\": 5000", "timings[8]: cache_tokens 5000 is not a cache size");
    expect_mutation("{\"what\": \"step\", \"method\": \"full\", \"context\": 32768, \"budget\": 0, \"batch\": 1,",
                    "7, {\"what\": \"step\", \"method\": \"full\", \"context\": 32768, \"budget\": 0, \"batch\": 1,",
                    "timings[0]: expected an object, got 7");
}

Test(validate, timings_must_hold_something_the_sim_prices, .init = load_models)
{
    /* a report whose only timing is unknown to the sim */
    const char *path = "/tmp/kvsim-validate-empty.json";
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("{\"kind\": \"kvsim-gpu-check\", \"comment\": \"synthetic\", \"date\": \"x\", \"device\": \"NVIDIA H100\",\n"
          " \"stream_read_bytes_per_s\": 3e12, \"checks\": [], \"aborted\": null, \"all_checks_pass\": true,\n"
          " \"timings\": [{\"what\": \"warp_magic\", \"method\": \"full\", \"context\": 32768, \"budget\": 0, \"batch\": 1,"
          " \"cache_tokens\": 32768, \"page_size\": 0, \"topr\": 0, \"topk\": 0, \"kv_heads\": 8, \"group\": 4,"
          " \"head_dim\": 128, \"median_s\": 1e-5}]}\n", f);
    fclose(f);
    sim_validate v;
    kv_err err;
    cr_assert_eq(sim_validate_report(path, &g_hw, &g_m, &v, &err), -1);
    cr_assert(strstr(err.msg, "/tmp/kvsim-validate-empty.json:3:13: timings: none of the 1 timings") != NULL, "%s",
              err.msg);
    f = fopen(path, "w");
    fputs("{\"kind\": \"kvsim-gpu-check\", \"date\": \"x\", \"device\": \"d\", \"stream_read_bytes_per_s\": 3e12,"
          " \"checks\": [], \"aborted\": null, \"all_checks_pass\": false, \"timings\": []}\n", f);
    fclose(f);
    cr_assert_eq(sim_validate_report(path, &g_hw, &g_m, &v, &err), -1);
    cr_assert(strstr(err.msg, "timings: expected a non-empty array of timings, got an empty array") != NULL, "%s",
              err.msg);
    remove(path);
}

Test(validate, cli_table_json_and_one_line_errors)
{
    cli_result r;
    cli_run(&r, "validate " FIXTURE);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "priced on h100-sxm") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "SYNTHETIC TEST FIXTURE") != NULL);
    cr_assert(strstr(r.out, "matrix points present: 4 of 24") != NULL, "%s", r.out);
    cli_run(&r, "validate " FIXTURE " --hw h200 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"hw\":\"h200\"") != NULL || strstr(r.out, "\"hw\": \"h200\"") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "\"error_calibrated_pct\"") != NULL);
    cli_run(&r, "validate tests/data/gpu/no-such-report.json");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err), "%s", r.err);
    cli_run(&r, "validate tests/data/calib_h100.json");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "calib_h100.json:1:1: kind: missing key 'kind'"), "%s", r.err);
    cli_run(&r, "validate");
    cr_assert_eq(r.rc, 2);
    cli_run(&r, "validate " FIXTURE " --bogus 1");
    cr_assert_eq(r.rc, 2);
}

#define AUDIT_FIXTURE "tests/data/cuda-audit/fixture-not-measured.json"

/* sim_audit_load over the synthetic audit fixture: only h100-sxm rows with
 * a dense estimate (the h200 row and the select-at-7.4K row are skipped);
 * the implied efficiency is bytes / ((est − launch_graph_s) · HBM
 * bandwidth), here with h100-sxm.yaml's 3 µs and 3.35 TB/s written out. */
Test(validate, audit_estimates_beside_the_sim, .init = load_models)
{
    static sim_audit a;
    kv_err err;
    cr_assert_eq(sim_audit_load(AUDIT_FIXTURE, &g_hw, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.nrows, 6);
    cr_assert_float_eq(a.sim_stream_eff, 0.89, 1e-12);
    /* 0.7 x 312 / 271.2 x 794.5 / 989.4: h100-sxm's MAMF share (hwmodels/mamf_sets_the_share_an_engine_reaches) */
    cr_assert_float_eq(a.sim_compute_eff, 0.7 * 312.0 / 271.2 * 794.5 / 989.4, 1e-12);
    cr_assert_str_eq(a.rows[0].kernel, "dense v2");
    cr_assert_float_eq(a.rows[0].implied_stream_eff, 134217728.0 / ((53e-6 - 3e-6) * 3.35e12), 1e-9);
    cr_assert_str_eq(a.rows[1].kernel, "dense v3");
    cr_assert_str_eq(a.rows[1].bound, "issue");
    cr_assert_float_eq(a.rows[1].implied_stream_eff, 134217728.0 / ((43e-6 - 3e-6) * 3.35e12), 1e-9);
    cr_assert_str_eq(a.rows[3].kernel, "select v4");
    cr_assert(isnan(a.rows[3].implied_stream_eff) && a.rows[3].bytes == 0.0);
    cr_assert_str_eq(a.rows[4].kernel, "gather v3");
    cr_assert_float_eq(a.rows[4].implied_stream_eff, 1e6 / (1e-6 * 3.35e12), 1e-9);
    cr_assert_str_eq(a.rows[5].kernel, "dense v2"); /* an older audit: only the keys it has */
    cr_assert_eq(a.rows[5].context, 131072);
    cr_assert_eq(a.rows[5].batch, 8);
    /* not an audit, and a malformed estimate */
    cr_assert_eq(sim_audit_load(FIXTURE, &g_hw, &a, &err), -1);
    cr_assert(strstr(err.msg, "not a kvsim cuda-audit file") != NULL, "%s", err.msg);
    char path[] = "/tmp/kvsim_audit_bad_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"kind\": \"kvsim-cuda-audit\", \"estimates\": [{\"hw\": \"h100-sxm\", \"ctx\": 1, \"batch\": 1, "
          "\"dense\": {\"est_s\": -1}}]}",
          f);
    fclose(f);
    cr_assert_eq(sim_audit_load(path, &g_hw, &a, &err), -1);
    cr_assert(strstr(err.msg, "\"dense\" at ctx 1 batch 1 is not an object with a positive est_s") != NULL, "%s",
              err.msg);
    remove(path);
}

Test(validate, cli_prints_the_audit_beside_the_sim)
{
    cli_result r;
    cli_run(&r, "validate " FIXTURE " --audit " AUDIT_FIXTURE);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "ESTIMATES of a static model, not measurements") != NULL, "%s", r.out);
    /* compute_efficiency 0.7 x 312 / 271.2 x 794.5 / 989.4 = 0.647 (h100-sxm's MAMF share) */
    cr_assert(strstr(r.out, "the sim assumes stream_read_efficiency 0.890, compute_efficiency 0.647") != NULL, "%s",
              r.out);
    /* 134217728 / (50 µs · 3.35 TB/s) = 0.801 */
    cr_assert(strstr(r.out, "dense v2     32768     1      53.00 bandwidth") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "134.22        0.801") != NULL, "%s", r.out);
    cli_run(&r, "validate " FIXTURE " --audit " AUDIT_FIXTURE " --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"static_estimates\"") != NULL, "%s", r.out);
    cli_run(&r, "validate " FIXTURE " --audit tests/data/cuda-audit/no-such.json");
    cr_assert_eq(r.rc, 1);
    cr_assert(cli_one_line(r.err), "%s", r.err);
}

/* Writes text to a fresh temporary file; its path in path (a mkstemp template). */
static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* sim/published.c: the set's CSV loader (quotes, comments, a short row refused with path:line), a
 * field refused by name, the per-category median / nearest-rank p90 and the thresholds loader. */
Test(sim, published_loader_and_stats)
{
    kv_err err;
    static sim_pub_row rows[SIM_PUB_MAX_ROWS];
    int n = -1;
    char set[] = "/tmp/kvsim_pub_set_XXXXXX";
    write_temp(set, "id,category,...\n"
                    "p1,decode,tokens_per_s,llama3.1-8b,h100-sxm,-,bf16,bf16,full,0,12x,200,1,1,-,-,104.9,"
                    "\"say \"\"hi\"\", ok\"\n"
                    "# a comment\n"
                    "\n"
                    "p2,decode,tokens_per_s,llama3.1-8b,h100-sxm,-,bf16,bf16,full,0,5,200,1,1,-,-,104.9\n");
    cr_assert_eq(sim_pub_load_rows(set, rows, &n, &err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:5: 17 fields, expected 18 (id, ..., source)", set);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(n, 1); /* the row before the short one was read, with its fields */
    cr_assert_eq(rows[0].line, 2);
    cr_assert_str_eq(rows[0].f[SIM_PUB_F_ID], "p1");
    cr_assert_str_eq(rows[0].f[SIM_PUB_F_HW], "h100-sxm");
    cr_assert_str_eq(rows[0].f[SIM_PUB_F_CTX], "12x");
    cr_assert_str_eq(rows[0].f[SIM_PUB_F_MEAS], "104.9");
    cr_assert_str_eq(rows[0].f[SIM_PUB_F_SOURCE], "say \"hi\", ok");
    /* its context '12x' is refused naming the file, line and column */
    sim_pub_result o;
    cr_assert_eq(sim_pub_eval_row(set, ".", &rows[0], &o, &err), -1);
    snprintf(want, sizeof want, "%s:2: column 'context'", set);
    cr_assert(strstr(err.msg, want) == err.msg, "%s", err.msg);
    remove(set);
    /* decode |err| 0.10 0.02 0.05 0.30 0.01 0.03 0.07 0.04 0.06 0.08 -> sorted 0.01 0.02 0.03 0.04 0.05
     * 0.06 0.07 0.08 0.10 0.30: median (0.05+0.06)/2 = 0.055, p90 nearest rank ceil(0.9*10) = 9 -> 0.10,
     * worst row 6; speedup 0.04 0.08 0.02 0.06 -> median (0.04+0.06)/2 = 0.05, p90 rank ceil(3.6) = 4
     * -> 0.08, worst row 5; the ttft row counts in neither. */
    const sim_pub_result res[15] = {{0, 1, 1, 0.10},  {1, 1, 1, 0.5},   {0, 1, 1, -0.02}, {3, 1, 1, 0.04},
                                    {0, 1, 1, 0.05},  {3, 1, 1, -0.08}, {0, 1, 1, -0.30}, {3, 1, 1, 0.02},
                                    {0, 1, 1, 0.01},  {3, 1, 1, 0.06},  {0, 1, 1, 0.03},  {0, 1, 1, -0.07},
                                    {0, 1, 1, 0.04},  {0, 1, 1, 0.06},  {0, 1, 1, -0.08}};
    double med = -1, p90 = -1;
    int w = -2;
    cr_assert_eq(sim_pub_cat_stats(res, 15, 0, &med, &p90, &w), 10);
    cr_assert_float_eq(med, 0.055, 1e-15);
    cr_assert_float_eq(p90, 0.10, 1e-15);
    cr_assert_eq(w, 6);
    cr_assert_eq(sim_pub_cat_stats(res, 15, 3, &med, &p90, &w), 4);
    cr_assert_float_eq(med, 0.05, 1e-15);
    cr_assert_float_eq(p90, 0.08, 1e-15);
    cr_assert_eq(w, 5);
    cr_assert_eq(sim_pub_cat_stats(res, 15, 2, &med, &p90, &w), 0);
    cr_assert_eq(w, -1);
    /* thresholds: a listed category read, the others unbounded; an unknown one refused */
    double tmed[SIM_PUB_NCAT], tp90[SIM_PUB_NCAT];
    char thr[] = "/tmp/kvsim_pub_thr_XXXXXX";
    write_temp(thr, "category,median_max,p90_max\n# note\nttft,0.1,0.25\n");
    cr_assert_eq(sim_pub_load_thresholds(thr, tmed, tp90, &err), 0, "%s", err.msg);
    cr_assert(tmed[1] == 0.1 && tp90[1] == 0.25 && isinf(tmed[0]) && isinf(tp90[4]));
    remove(thr);
    char thr2[] = "/tmp/kvsim_pub_thr_XXXXXX";
    write_temp(thr2, "category,median_max,p90_max\nprefill,0.1,0.2\n");
    cr_assert_eq(sim_pub_load_thresholds(thr2, tmed, tp90, &err), -1);
    snprintf(want, sizeof want, "%s:2: unknown category 'prefill'", thr2);
    cr_assert_str_eq(err.msg, want);
    remove(thr2);
}
