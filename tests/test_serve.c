/* test_serve.c — serve/: checks that can fail. One request alone reproduces
 * `kvsim predict` (TTFT with the prompt chunked at the token budget, every
 * decode step); Little's law against the nominal rate within the run's noise
 * and exactly against the measured one; no request lost or served twice, with
 * preemptions happening; percentiles as numpy computes them (by hand); the
 * traffic generator's moments; the same seed giving the same bytes; bad input
 * refused with one line. Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include "cli_util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serve_util.h"

/* sim_predict of one sequence with the prefill chunked at the token budget. */
static sim_result predict(const srv_config *c, int64_t S, int64_t out)
{
    rkv_request rq = c->rq;
    rq.context = S;
    rq.max_new = out;
    rkv_params p;
    kv_err err = {""};
    cr_assert_eq(rkv_params_resolve(c->method, &rq, &p, &err), 0, "%s", err.msg);
    sim_config x;
    sim_config_defaults(&x, &M, &H, &p);
    x.prefill_chunk = c->max_batched_tokens;
    sim_result r;
    cr_assert_eq(sim_predict(&x, &r, &err), 0, "%s", err.msg);
    return r;
}


/* Requests 1000 s apart never meet: each is one sequence alone. */
static void alone_equals_predict(const char *method, int64_t budget, int64_t S, int64_t out)
{
    load();
    srv_config c = instance(method, budget);
    srv_request q[3];
    for (int i = 0; i < 3; i++) q[i] = (srv_request){1000.0 * (i + 1), S, out};
    srv_workload w = {q, 3};
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    sim_result p = predict(&c, S, out);
    for (int i = 0; i < 3; i++) {
        rel_eq(r.ttft_s[i], p.ttft_s, 1e-9, "TTFT");
        rel_eq(r.tpot_s[i], p.step_time_s, 1e-9, "TPOT = mean decode step");
        rel_eq(r.e2e_s[i], p.ttft_s + p.decode_s, 1e-9, "E2E = TTFT + decode");
    }
    /* the first and last inter-token gaps are predict's first and last steps */
    rel_eq(r.itl_s[0], p.first_step_s, 1e-9, "first ITL");
    rel_eq(r.itl_s[out - 2], p.last_step_s, 1e-9, "last ITL");
    cr_assert_eq(r.preemptions, 0);
    srv_result_free(&r);
}

Test(serve, alone_full_equals_predict) { alone_equals_predict("full", 1024, 10000, 40); }
Test(serve, alone_rocketkv_equals_predict) { alone_equals_predict("rocketkv", 256, 9000, 33); }
Test(serve, alone_quest_equals_predict) { alone_equals_predict("quest", 512, 5000, 20); }

Test(serve, percentiles_as_numpy)
{
    /* numpy.percentile([4, 1, 3, 2], q): 50 -> 2.5, 90 -> 3.7, 0 -> 1, 100 -> 4 (by hand: 1 + q/100·3) */
    const double x[4] = {4, 1, 3, 2};
    double sc[4];
    cr_assert_float_eq(srv_percentile(x, 4, 50, sc), 2.5, 1e-15);
    cr_assert_float_eq(srv_percentile(x, 4, 90, sc), 3.7, 1e-15);
    cr_assert_float_eq(srv_percentile(x, 4, 0, sc), 1.0, 1e-15);
    cr_assert_float_eq(srv_percentile(x, 4, 100, sc), 4.0, 1e-15);
    srv_dist d;
    const double y[5] = {NAN, 10, 20, 30, 40};
    srv_dist_of(y, 5, &d);
    cr_assert_eq(d.n, 4);
    cr_assert_float_eq(d.mean, 25.0, 1e-12);
    cr_assert_float_eq(d.p99, 10.0 + 0.99 * 3.0 * 10.0, 1e-12);
}

/* A directory of this test's own, /tmp/kvsim-serve-XXXXXX (mkdtemp): two
 * runs of the suite at once never share a file. rm_dir removes it. */
static void tmp_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/kvsim-serve-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static void rm_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static double mean_of(const double *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

Test(serve, littles_law)
{
    load();
    srv_config c = instance("full", 1024);
    const double rate = 6.0;
    const int64_t n = 4000;
    srv_workload w = poisson(rate, n, "lognormal:1500:0.5", "uniform:50:300", 7);
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.completed, n);
    const double L = r.area_in_system / r.end_s, W = mean_of(r.e2e_s, n);
    /* exact: the area integrated event by event equals the sum of the times in the system */
    rel_eq(L, (double)n / r.end_s * W, 1e-9, "L = (n / T) W");
    /* nominal rate: the measured rate differs by ~1/sqrt(n) (1.6%); allow 4 sigma plus the ramp-down */
    rel_eq(L, rate * W, 4.0 / sqrt((double)n) + 0.02, "L = rate W");
    srv_result_free(&r);
    srv_workload_free(&w);
}

Test(serve, nothing_lost_under_preemption)
{
    load();
    srv_config c = instance("full", 1024);
    c.pool_bytes = 3e9; /* a small pool: sequences get preempted and recomputed */
    const int64_t n = 600;
    srv_workload w = poisson(20.0, n, "uniform:500:3000", "uniform:20:600", 3);
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    cr_assert_gt(r.preemptions, 0, "the pool was meant to overflow");
    cr_assert_eq(r.completed, n);
    int64_t want_itl = 0, pre = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(r.tokens_out[i], w.req[i].output, "request %lld got %lld tokens of %lld", (long long)i,
                     (long long)r.tokens_out[i], (long long)w.req[i].output);
        cr_assert(r.e2e_s[i] >= r.ttft_s[i] && r.ttft_s[i] > 0.0);
        want_itl += w.req[i].output - 1;
        pre += r.preempted[i];
    }
    cr_assert_eq(r.n_itl, want_itl);
    cr_assert_eq(pre, r.preemptions);
    cr_assert_leq(r.max_kv_blocks, r.pool_blocks);
    /* recompute re-prefills: more prefill tokens than prompts */
    cr_assert_gt(r.prefill_tokens, r.prompt_tokens);
    srv_result_free(&r);
    srv_workload_free(&w);
}

Test(serve, rocketkv_frees_kv_at_stage1)
{
    load();
    srv_config f = instance("full", 1024), k = instance("rocketkv", 256);
    srv_workload w = poisson(4.0, 300, "fixed:8000", "fixed:200", 5);
    srv_result rf, rk;
    kv_err err = {""};
    cr_assert_eq(srv_run(&f, &w, &rf, &err), 0, "%s", err.msg);
    cr_assert_eq(srv_run(&k, &w, &rk, &err), 0, "%s", err.msg);
    /* a compressed sequence holds (P + generated) / (S + generated) of the full blocks, plus aux */
    cr_assert_lt(rk.area_kv_blocks / rk.end_s, 0.5 * rf.area_kv_blocks / rf.end_s);
    srv_result_free(&rf);
    srv_result_free(&rk);
    srv_workload_free(&w);
}

Test(serve, traffic_moments)
{
    load();
    const int64_t n = 40000;
    srv_workload w = poisson(5.0, n, "lognormal:2000:0.7", "uniform:10:20", 11);
    double gaps = w.req[n - 1].arrival_s / (double)n;
    cr_assert(fabs(gaps - 0.2) < 4.0 * 0.2 / sqrt((double)n), "mean gap %g, expected 0.2", gaps);
    int64_t below = 0;
    for (int64_t i = 0; i < n; i++) {
        below += w.req[i].prompt <= 2000;
        cr_assert(w.req[i].output >= 10 && w.req[i].output <= 20);
    }
    /* the median of the lognormal: half below, within 4 sigma of a binomial */
    cr_assert(fabs((double)below / (double)n - 0.5) < 4.0 * 0.5 / sqrt((double)n), "share below the median %g",
              (double)below / (double)n);
    srv_workload_free(&w);
    /* gamma: CV 1/sqrt(k) */
    srv_len pl, ol;
    kv_err err = {""};
    srv_len_parse("p", "fixed:100", &pl, &err);
    srv_len_parse("o", "fixed:10", &ol, &err);
    srv_traffic t = {5.0, SRV_ARRIVAL_GAMMA, 0.25, &pl, &ol, n, 1, 100000};
    cr_assert_eq(srv_workload_generate(&t, &w, &err), 0, "%s", err.msg);
    double s = 0.0, s2 = 0.0, prev = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double g = w.req[i].arrival_s - prev;
        prev = w.req[i].arrival_s;
        s += g;
        s2 += g * g;
    }
    const double mu = s / (double)n, cv = sqrt(s2 / (double)n - mu * mu) / mu;
    cr_assert(fabs(mu - 0.2) < 0.02 && fabs(cv - 2.0) < 0.1, "gamma gaps: mean %g (0.2), CV %g (2)", mu, cv);
    srv_workload_free(&w);
}

Test(serve, request_log_errors_name_the_line)
{
    char dir[64], path[96];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "arrival_s,prompt_tokens,output_tokens\n0.5,100,10\n0.25,100,10\n");
    fclose(f);
    srv_workload w;
    kv_err err = {""};
    cr_assert_neq(srv_workload_load(path, 131072, &w, &err), 0);
    cr_assert(strstr(err.msg, ":3:"), "%s", err.msg);
    f = fopen(path, "w");
    fprintf(f, "arrival_s,prompt_tokens,output_tokens\n0.5,100,x\n");
    fclose(f);
    cr_assert_neq(srv_workload_load(path, 131072, &w, &err), 0);
    cr_assert(strstr(err.msg, ":2:") && strstr(err.msg, "output_tokens"), "%s", err.msg);
    f = fopen(path, "w");
    fprintf(f, "arrival_s,prompt_tokens,output_tokens\n0.5,100,10\n1.5,200,20\n");
    fclose(f);
    cr_assert_eq(srv_workload_load(path, 131072, &w, &err), 0, "%s", err.msg);
    cr_assert_eq(w.n, 2);
    cr_assert_eq(w.req[1].prompt, 200);
    srv_workload_free(&w);
    rm_dir(dir);
}

Test(serve_cli, same_seed_same_bytes)
{
    const char *args = "serve --rate 3,9 --num-requests 200 --prompt lognormal:1000:0.5 --output uniform:20:200 "
                       "--method rocketkv --budget 256 --json --seed 5";
    static cli_result a, b, c;
    cli_run(&a, args);
    cli_run(&b, args);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_str_eq(a.out, b.out);
    cr_assert(strstr(a.out, "\"ttft_s\":{\"mean\":") && strstr(a.out, "\"requests_completed\":200"), "%s", a.out);
    cli_run(&c, "serve --rate 3,9 --num-requests 200 --prompt lognormal:1000:0.5 --output uniform:20:200 "
                "--method rocketkv --budget 256 --json --seed 6");
    cr_assert_str_neq(a.out, c.out);
}

Test(serve_cli, shards_concatenate_to_the_whole)
{
    const char *base = "serve --rate 2,4,6 --num-requests 100 --csv --prompt fixed:512 --output fixed:32";
    static cli_result all, s1, s2;
    char cmd[512];
    cli_run(&all, base);
    snprintf(cmd, sizeof cmd, "%s --shard 1/2", base);
    cli_run(&s1, cmd);
    snprintf(cmd, sizeof cmd, "%s --shard 2/2", base);
    cli_run(&s2, cmd);
    cr_assert_eq(all.rc, 0, "%s", all.err);
    /* shard 1 holds rates 2 and 6, shard 2 rate 4: every row of the whole is in one shard */
    char *save = NULL, *ln;
    int rows = 0;
    for (ln = strtok_r(all.out, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), rows++)
        cr_assert(strstr(s1.out, ln) || strstr(s2.out, ln), "row missing from the shards: %s", ln);
    cr_assert_eq(rows, 4);
}

Test(serve_cli, bad_input_one_line)
{
    static cli_result r;
    const char *bad[] = {
        "serve --rate -1", "serve --rate 5 --prompt lognormal:100", "serve --rate 5 --num-requests 0",
        "serve --prompt fixed:10", "serve --rate 5 --max-num-seqs 0", "serve --rate 5 --harness gpt-fast",
        "serve --rate 5 --requests /nonexistent.csv", "serve --rate 5 --mem-fraction 1.5",
        "serve --rate 5 --preemption swop", "serve --rate 5 --preemption swap --swap-space-bytes -1",
        "serve --rate 5 --preemption swap --engine validation/engines/sglang-v0.3.yaml",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_run(&r, bad[i]);
        cr_assert_eq(r.rc, 2, "%s: rc %d, %s", bad[i], r.rc, r.err);
        cr_assert(cli_one_line(r.err), "%s: %s", bad[i], r.err);
        cr_assert_str_eq(r.out, "");
    }
}

Test(serve_plan, slo_parse)
{
    srv_slo s[SRV_MAX_SLO];
    int n;
    kv_err err = {""};
    cr_assert_eq(srv_slo_parse("ttft_p95=2,tpot_p99=0.05,e2e_mean=30", s, SRV_MAX_SLO, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert(s[0].metric == SRV_SLO_TTFT && s[0].pct == 95.0 && s[0].limit_s == 2.0);
    cr_assert(s[1].metric == SRV_SLO_TPOT && s[1].pct == 99.0 && s[1].limit_s == 0.05);
    cr_assert(s[2].metric == SRV_SLO_E2E && s[2].pct < 0.0 && s[2].limit_s == 30.0);
    const char *bad[] = {"ttft=2", "foo_p95=1", "ttft_p95=-1", "ttft_q95=1", "ttft_p101=1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_neq(srv_slo_parse(bad[i], s, SRV_MAX_SLO, &n, &err), 0, "'%s' accepted", bad[i]);
}

/* The rate found meets the SLO; 3% more (past the 1% bisection bracket) does not. */
Test(serve_plan, max_rate_is_the_boundary)
{
    load();
    srv_config c = instance("full", 1024);
    static srv_len pl, ol;
    kv_err err = {""};
    cr_assert_eq(srv_len_parse("p", "lognormal:2000:0.5", &pl, &err), 0);
    cr_assert_eq(srv_len_parse("o", "uniform:100:300", &ol, &err), 0);
    srv_traffic t = {1.0, SRV_ARRIVAL_POISSON, 1.0, &pl, &ol, 400, 2, M.max_position_embeddings};
    srv_slo slo[1];
    int n;
    cr_assert_eq(srv_slo_parse("ttft_p95=0.5", slo, 1, &n, &err), 0);
    srv_rate_search s;
    cr_assert_eq(srv_max_rate(&c, &t, slo, 1, 0.01, &s, &err), 0, "%s", err.msg);
    cr_assert_gt(s.rate, 0.0);
    cr_assert_leq(s.values[0], 0.5);
    double v[2];
    for (int k = 0; k < 2; k++) {
        srv_traffic x = t;
        x.rate = s.rate * (k == 0 ? 1.0 : 1.03);
        srv_workload w;
        srv_result r;
        cr_assert_eq(srv_workload_generate(&x, &w, &err), 0);
        cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
        double sc[400];
        v[k] = srv_percentile(r.ttft_s, r.n, 95, sc);
        srv_result_free(&r);
        srv_workload_free(&w);
    }
    cr_assert_float_eq(v[0], s.values[0], 1e-12, "the search's figure is a rerun's");
    cr_assert_gt(v[1], 0.5, "ttft p95 %g at 1.03 x %g req/s still meets 0.5 s", v[1], s.rate);
}

Test(serve_cli, plan_slo_table)
{
    static cli_result r;
    cli_run(&r, "plan --slo ttft_p95=1,tpot_p95=0.05 --rate 20 --method full,rocketkv --budget 256 "
                "--prompt fixed:4096 --output fixed:100 --num-requests 100 --json");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"method\":\"full\"") && strstr(r.out, "\"method\":\"rocketkv\"") &&
              strstr(r.out, "\"max_rate_per_instance\":") && strstr(r.out, "\"gpus\":"), "%s", r.out);
    cli_run(&r, "plan --slo ttft_p95 --rate 20");
    cr_assert_eq(r.rc, 2);
    cr_assert(cli_one_line(r.err), "%s", r.err);
}

Test(serve_cli, report_draws_latency_and_occupancy)
{
    static cli_result r;
    char dir[64], cmd[512];
    tmp_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "serve --rate 2,6 --num-requests 100 --prompt fixed:1024 --output fixed:64 --csv --out "
             "%s/rates.csv", dir);
    cli_run(&r, cmd);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(cmd, sizeof cmd, "serve --rate 6 --num-requests 100 --prompt fixed:1024 --output fixed:64 --timeline "
             "%s/tl.csv", dir);
    cli_run(&r, cmd);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(cmd, sizeof cmd, "report --serve %s/rates.csv --timeline %s/tl.csv --out %s/rep", dir, dir, dir);
    cli_run(&r, cmd);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *files[] = {"README.md", "ttft_vs_rate.png", "tpot_vs_rate.svg", "occupancy.png", "occupancy.gp"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/rep/%s", dir, files[i]);
        FILE *f = fopen(p, "rb");
        cr_assert(f, "%s missing", p);
        fclose(f);
    }
    /* the timeline has one row per engine step: a header and as many rows as the run's steps */
    char tl[96];
    snprintf(tl, sizeof tl, "%s/tl.csv", dir);
    FILE *f = fopen(tl, "r");
    int lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    fclose(f);
    cr_assert_gt(lines, 100, "%d timeline rows", lines);
    snprintf(cmd, sizeof cmd, "report --serve %s/tl.csv --out %s/rep", dir, dir);
    cli_run(&r, cmd);
    cr_assert_eq(r.rc, 1, "a timeline is not a rate sweep: %s", r.err);
    cr_assert(cli_one_line(r.err), "%s", r.err);
    rm_dir(dir);
}

Test(serve, empirical_and_uniform_lengths)
{
    char dir[64], path[96];
    tmp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/lengths.csv", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "tokens\n100\n200\n300\n");
    fclose(f);
    char spec[128];
    snprintf(spec, sizeof spec, "csv:%s", path);
    srv_len pl, ol;
    kv_err err = {""};
    cr_assert_eq(srv_len_parse("p", spec, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(pl.nvalues, 3);
    cr_assert_eq(srv_len_parse("o", "uniform:5:7", &ol, &err), 0, "%s", err.msg);
    srv_traffic t = {2.0, SRV_ARRIVAL_POISSON, 1.0, &pl, &ol, 3000, 9, 100000};
    srv_workload w;
    cr_assert_eq(srv_workload_generate(&t, &w, &err), 0, "%s", err.msg);
    int64_t seen[3] = {0}, oseen[3] = {0};
    for (int64_t i = 0; i < w.n; i++) {
        const int64_t p = w.req[i].prompt, o = w.req[i].output;
        cr_assert(p == 100 || p == 200 || p == 300, "prompt %lld not in the file", (long long)p);
        cr_assert(o >= 5 && o <= 7, "output %lld outside 5..7", (long long)o);
        seen[p / 100 - 1]++;
        oseen[o - 5]++;
    }
    for (int k = 0; k < 3; k++) { /* each value drawn with probability 1/3: 1000 ± 4 sigma (25.8) */
        cr_assert(llabs(seen[k] - 1000) < 104, "value %d drawn %lld times", (k + 1) * 100, (long long)seen[k]);
        cr_assert(llabs(oseen[k] - 1000) < 104, "output %d drawn %lld times", k + 5, (long long)oseen[k]);
    }
    srv_workload_free(&w);
    srv_len_free(&pl);
    f = fopen(path, "w");
    fprintf(f, "tokens\n100\nabc\n");
    fclose(f);
    cr_assert_neq(srv_len_parse("--prompt", spec, &pl, &err), 0);
    cr_assert(strstr(err.msg, ":3:"), "%s", err.msg);
    rm_dir(dir);
}

/* An int4-g128 instance prices the dequantisation of its weights: one request
 * alone, against the same instance with dequant_ops 0, every decode step and
 * the one prefill pass (1000 tokens, one chunk) cost W × 1.5 / (fp32_flops / 2)
 * more, W = Llama-3.1-8B's linear-layer and (untied) LM-head weights counted
 * from its dimensions here, 1.5 tinygemm's instructions per int4 weight, one
 * lane instruction per clock (H100: 66.9e12 / 2). */
Test(serve, int4_prices_dequantisation)
{
    load();
    srv_config c = instance("full", 1024);
    sim_weight_dtype wd;
    kv_err err = {""};
    cr_assert_eq(sim_weight_dtype_parse("int4-g128", (double)M.hidden_size, &wd, &err), 0, "%s", err.msg);
    c.weight_bytes_per_param = wd.bits / 8.0;
    c.weight_compute = wd.compute;
    c.weight_dequant_ops = wd.dequant_ops;
    cr_assert_eq(c.weight_dequant_ops, 1.5);
    srv_config z = c;
    z.weight_dequant_ops = 0.0;
    srv_request q[2] = {{1.0, 1000, 20}, {1001.0, 1000, 20}};
    srv_workload w = {q, 2};
    srv_result r, r0;
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(srv_run(&z, &w, &r0, &err), 0, "%s", err.msg);
    const double h = 4096, qkv = 4096 + 2 * 1024, I = 14336, L = 32;
    const double W = L * (h * qkv + h * h + 3 * h * I); /* the engine's (vLLM's) LM head stays bf16 */
    const double dq = W * 1.5 / (66.9e12 / 2.0);
    for (int i = 0; i < 2; i++) {
        rel_eq(r.tpot_s[i] - r0.tpot_s[i], dq, 1e-6, "TPOT: dequantisation per decode step");
        rel_eq(r.ttft_s[i] - r0.ttft_s[i], dq, 1e-6, "TTFT: one prefill pass");
    }
    srv_result_free(&r);
    srv_result_free(&r0);
}

/* sim_access_until (the methods' traffic_until and the run lengths) against
 * the definition, step by step: for every method, budget and request shape,
 * traffic(), sim_exact_run_bytes and sim_aux_run_bytes are the same at every
 * step of [step, until]; for the stage-2 methods (which declare traffic_until)
 * they differ at until + 1, so a price is not kept past its page. */
static int same_access(const rkv_params *p, int64_t a, int64_t b)
{
    rkv_traffic ta, tb;
    p->method->traffic(p, a, &ta);
    p->method->traffic(p, b, &tb);
    const int64_t ca = rkv_cache_tokens(p, a), cb = rkv_cache_tokens(p, b);
    return !memcmp(&ta, &tb, sizeof ta) && sim_exact_run_bytes(p, ca) == sim_exact_run_bytes(p, cb) &&
           sim_aux_run_bytes(p, ca) == sim_aux_run_bytes(p, cb);
}

Test(serve, access_until_is_exact)
{
    load();
    const int64_t budgets[3] = {64, 256, 1024}, prompts[4] = {100, 1000, 5000, 20000}, outs[2] = {50, 700};
    int checked = 0, maximal = 0;
    for (const rkv_method_type *const *m = rkv_methods; *m; m++)
        for (int ib = 0; ib < 3; ib++)
            for (int ip = 0; ip < 4; ip++)
                for (int io = 0; io < 2; io++) {
                    srv_config c = instance((*m)->name, budgets[ib]);
                    rkv_request rq = c.rq;
                    rq.context = prompts[ip];
                    rq.max_new = outs[io];
                    rkv_params p;
                    kv_err err = {""};
                    if (rkv_params_resolve((*m)->name, &rq, &p, &err) != 0)
                        continue; /* a budget the method refuses for this request */
                    const int64_t last = outs[io] - 1;
                    for (int64_t k = 0; k <= last; k++) {
                        const int64_t u = sim_access_until(&p, k);
                        cr_assert_geq(u, k, "%s: until %lld < step %lld", (*m)->name, (long long)u, (long long)k);
                        const int64_t hi = u < last ? u : last;
                        for (int64_t j = k + 1; j <= hi; j++)
                            cr_assert(same_access(&p, k, j), "%s t=%lld S=%lld: access at step %lld differs from step %lld "
                                      "inside until %lld", (*m)->name, (long long)budgets[ib], (long long)prompts[ip],
                                      (long long)j, (long long)k, (long long)u);
                        if ((*m)->traffic_until && u < last) {
                            cr_assert(!same_access(&p, k, u + 1), "%s: until %lld is not the last step with step %lld's "
                                      "access", (*m)->name, (long long)u, (long long)k);
                            maximal++;
                        }
                        checked++;
                    }
                }
    cr_assert_gt(maximal, 1000, "the stage-2 methods' intervals were checked (%d)", maximal);
    cr_assert_gt(checked, 20000);
}

/* The engine's host time (srv.h's step loop): one request alone, every step
 * one scheduler pass with one sequence, so each step is predict's plus
 * host_step_s + host_seq_s — TTFT by one per prefill chunk, E2E by one per
 * step (prompt 10000 at a 4096-token budget: 3 chunks). */
Test(serve, host_time_per_pass_alone)
{
    load();
    srv_config c = instance("full", 1024);
    c.host_step_s = 1e-3;
    c.host_seq_s = 2e-4;
    const int64_t S = 10000, out = 40, chunks = 3;
    srv_request q[2] = {{1000.0, S, out}, {2000.0, S, out}};
    srv_workload w = {q, 2};
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    sim_result p = predict(&c, S, out);
    const double h = 1e-3 + 2e-4;
    for (int i = 0; i < 2; i++) {
        rel_eq(r.ttft_s[i], p.ttft_s + (double)chunks * h, 1e-9, "TTFT + one host time per chunk");
        rel_eq(r.e2e_s[i], p.ttft_s + p.decode_s + (double)(chunks + out - 1) * h, 1e-9, "E2E + one per step");
    }
    rel_eq(r.itl_s[0], p.first_step_s + h, 1e-9, "first ITL");
    srv_result_free(&r);
}

/* With scheduler_steps n the host time is paid once per n decode steps: a
 * request alone decodes out - 1 steps in ceil((out - 1) / n) passes. */
Test(serve, multi_step_pays_host_once_per_pass)
{
    load();
    srv_config c = instance("full", 1024);
    c.host_step_s = 5e-3;
    c.scheduler_steps = 10;
    const int64_t S = 1000, out = 36; /* one chunk; 35 decode steps in 4 passes */
    srv_request q[1] = {{1.0, S, out}};
    srv_workload w = {q, 1};
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    sim_result p = predict(&c, S, out);
    rel_eq(r.ttft_s[0], p.ttft_s + 5e-3, 1e-9, "TTFT: the prefill pass");
    rel_eq(r.e2e_s[0], p.ttft_s + p.decode_s + 5e-3 * (1 + 4), 1e-9, "E2E: 1 + ceil(35 / 10) passes");
    srv_result_free(&r);
}

/* prefill_alone: no step both prefills and decodes, and requests still all
 * finish; without it, under the same load, some steps do both. */
Test(serve, prefill_alone_never_mixes)
{
    load();
    srv_workload w = poisson(6.0, 300, "uniform:100:2000", "uniform:20:300", 11);
    int mixed[2] = {0, 0};
    for (int alone = 0; alone < 2; alone++) {
        srv_config c = instance("full", 1024);
        c.prefill_alone = alone;
        c.timeline = 1;
        srv_result r;
        kv_err err = {""};
        cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.completed, w.n);
        for (int64_t i = 0; i < r.nsamples; i++)
            mixed[alone] += r.samples[i].decode_seqs > 0 && r.samples[i].tokens > r.samples[i].decode_seqs;
        srv_result_free(&r);
    }
    cr_assert_gt(mixed[0], 10, "mixed steps without prefill_alone (%d)", mixed[0]);
    cr_assert_eq(mixed[1], 0, "%d steps prefilled and decoded with prefill_alone", mixed[1]);
    srv_workload_free(&w);
}

/* admit_reserve 1 with token-granular blocks: every admitted request has its
 * whole output reserved, so the pool never runs out and nothing is
 * preempted; with 0 the same load preempts. */
Test(serve, admit_reserve_prevents_preemption)
{
    load();
    srv_workload w = poisson(20.0, 600, "uniform:500:3000", "uniform:20:600", 3);
    int64_t pre[2];
    for (int k = 0; k < 2; k++) {
        srv_config c = instance("full", 1024);
        c.block_tokens = 1;
        c.pool_bytes = 3e9;
        c.admit_reserve = k ? 1.0 : 0.0;
        srv_result r;
        kv_err err = {""};
        cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.completed, w.n);
        pre[k] = r.preemptions;
        srv_result_free(&r);
    }
    cr_assert_gt(pre[0], 0, "the pool was meant to overflow without a reserve");
    cr_assert_eq(pre[1], 0, "%lld preemptions with the whole output reserved", (long long)pre[1]);
    srv_workload_free(&w);
}

static void same_cost(const srv_seq_cost *a, const srv_seq_cost *b, const char *what, const char *m, int64_t t,
                      int64_t S, int64_t k)
{
    for (int q = 0; q < SRV_ATT_K; q++) {
        const double x[4] = {a->be[q], a->by[q], a->fl[q], a->la[q]};
        const double y[4] = {b->be[q], b->by[q], b->fl[q], b->la[q]};
        cr_assert(!memcmp(x, y, sizeof x), "%s %s t=%lld S=%lld step %lld kernel %d: record (%.17g %.17g %.17g %g), "
                  "%s (%.17g %.17g %.17g %g)", what, m, (long long)t, (long long)S, (long long)k,
                  q + SIM_K_KV_APPEND, x[0], x[1], x[2], x[3], what, y[0], y[1], y[2], y[3]);
    }
}

/* serve's direct price of a sequence's method layer (srv_seq_cost_direct,
 * the record's arithmetic written out), and srv_seq_price walked step by
 * step (kept through sim_access_until, the saturated stage-2 form), against
 * the reference path at every step (the access record sim_access_add
 * builds, priced use by use through sim_layer_uses): the same kernels, and
 * the same bits of every Σ bytes / efficiency, bytes, FLOPs and launches,
 * for every method, budget, prompt and decode step, at TP 1 and 2, bf16 and
 * fp8 K/V (aux fp8 and bf16), and with the dense scan read once per query
 * head from DRAM (a part without the CUDA-core figures: sim_per_head_cuda_core 0). */
Test(serve, direct_price_equals_record)
{
    load();
    const int64_t budgets[3] = {64, 256, 1024}, prompts[4] = {100, 1000, 5000, 20000}, out = 600;
    const struct { int tp; rkv_dtype kv, aux; int per_head; } v[3] = {
        {1, RKV_DTYPE_BF16, RKV_DTYPE_BF16, 0}, {2, RKV_DTYPE_FP8_E4M3, RKV_DTYPE_FP8_E4M3, 1},
        {1, RKV_DTYPE_FP8_E4M3, RKV_DTYPE_BF16, 0}};
    int64_t compared = 0, kernels = 0, saturated = 0;
    for (int iv = 0; iv < 3; iv++)
        for (const rkv_method_type *const *m = rkv_methods; *m; m++)
            for (int ib = 0; ib < 3; ib++) {
                srv_config c = instance((*m)->name, budgets[ib]);
                c.tp = v[iv].tp;
                c.rq.kv_dtype = v[iv].kv;
                c.rq.aux_dtype = v[iv].aux;
                c.rq.aux_dtype_set = 1;
                srv_pricer pr;
                kv_err err = {""};
                cr_assert_eq(srv_pricer_init(&pr, &c, &err), 0, "%s", err.msg);
                pr.c.kv_reads_per_query_head = v[iv].per_head;
                hw_model plain = H; /* without the CUDA-core figures: the dense scan read G times */
                plain.sm_clock_hz = plain.cvt_per_sm_clk = 0.0;
                if (v[iv].per_head) pr.c.hw = &plain;
                cr_assert_eq(sim_per_head_cuda_core(&pr.c), 0);
                for (int ip = 0; ip < 4; ip++) {
                    rkv_request rq = c.rq;
                    rq.context = prompts[ip];
                    rq.max_new = out;
                    rkv_params p;
                    if (rkv_params_resolve((*m)->name, &rq, &p, &err) != 0)
                        continue; /* a budget the method refuses for this request */
                    srv_seq_form f;
                    srv_seq_form_init(&pr, &p, M.num_key_value_heads, &f);
                    cr_assert(f.direct);
                    static srv_slot sl;
                    memset(&sl, 0, sizeof sl);
                    sl.p = p;
                    sl.form = f;
                    sl.actx.num_kv_heads = M.num_key_value_heads;
                    for (int64_t k = 0; k < out; k++) {
                        srv_seq_cost a, b;
                        srv_seq_cost_record(&pr, &p, M.num_key_value_heads, k, &a);
                        srv_seq_cost_direct(&pr, &f, &p, k, &b);
                        same_cost(&a, &b, "direct", (*m)->name, budgets[ib], prompts[ip], k);
                        srv_seq_price(&pr, &sl, k);
                        same_cost(&a, &sl.cost, "srv_seq_price", (*m)->name, budgets[ib], prompts[ip], k);
                        saturated += sl.saturated;
                        compared++;
                        for (int q = 0; q < SRV_ATT_K; q++) kernels += a.la[q] > 0.0;
                    }
                }
                srv_pricer_free(&pr);
            }
    cr_assert_gt(compared, 50000, "%lld steps compared", (long long)compared);
    cr_assert_gt(saturated, 20000, "the saturated stage-2 form was walked (%lld steps)", (long long)saturated);
    cr_assert_gt(kernels, 3 * compared, "the stage-2 methods' four kernels were compared (%lld)", (long long)kernels);
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* srv_dist_of selects the order statistics instead of sorting: the same
 * bits as a full qsort then numpy's linear rule (written here), on arrays of
 * 1..3000 values, with many ties (values drawn from a few levels), sorted
 * and reversed runs, and NaNs skipped; the mean in the input's order. */
Test(serve, dist_selection_equals_sort)
{
    uint64_t st = 88172645463325252ull;
    double *x = malloc(3000 * sizeof *x), *y = malloc(3000 * sizeof *y);
    int cases = 0;
    for (int64_t n = 1; n <= 3000; n = n < 20 ? n + 1 : n * 13 / 10)
        for (int kind = 0; kind < 4; kind++) {
            for (int64_t i = 0; i < n; i++) {
                st ^= st << 13; st ^= st >> 7; st ^= st << 17;
                const double u = (double)(st >> 11) / 9007199254740992.0;
                x[i] = kind == 0 ? u : kind == 1 ? floor(u * 5.0) : kind == 2 ? (double)i : (double)(n - i);
                if (kind == 0 && st % 17 == 0) x[i] = NAN;
            }
            srv_dist d;
            srv_dist_of(x, n, &d);
            int64_t m = 0;
            double sum = 0.0;
            for (int64_t i = 0; i < n; i++)
                if (!isnan(x[i])) { sum += x[i]; y[m++] = x[i]; }
            qsort(y, (size_t)m, sizeof *y, cmp_d);
            cr_assert_eq(d.n, m);
            if (m == 0) continue;
            const double ps[4] = {50, 90, 95, 99}, got[4] = {d.p50, d.p90, d.p95, d.p99};
            for (int k = 0; k < 4; k++) {
                const double pos = ps[k] / 100.0 * (double)(m - 1);
                const int64_t lo = (int64_t)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
                const double want = y[lo] + (pos - (double)lo) * (y[hi] - y[lo]);
                cr_assert(!memcmp(&want, &got[k], sizeof want), "n %lld kind %d p%g: %.17g, sorted %.17g",
                          (long long)n, kind, ps[k], got[k], want);
            }
            const double mean = sum / (double)m;
            cr_assert(!memcmp(&mean, &d.mean, sizeof mean));
            cases++;
        }
    free(x);
    free(y);
    cr_assert_gt(cases, 150);
}

/* srv_summarize on a run written by hand: two requests, every figure worked
 * from the fields below. */
Test(serve, summary_worked_by_hand)
{
    srv_request req[2] = {{1.0, 100, 3}, {2.0, 50, 2}};
    srv_workload w = {req, 2};
    double ttft[2] = {0.5, 0.25}, tpot[2] = {0.1, 0.2}, e2e[2] = {0.7, 0.45};
    double itl[3] = {0.1, 0.1, 0.2};
    int64_t out[2] = {3, 1};   /* the second request got one token of two: 1 lost */
    srv_result r = {0};
    r.n = 2;
    r.ttft_s = ttft; r.tpot_s = tpot; r.e2e_s = e2e; r.itl_s = itl; r.n_itl = 3;
    r.tokens_out = out;
    r.completed = 2; r.output_tokens = 5; r.prompt_tokens = 150;
    r.first_arrival_s = 1.0; r.end_s = 5.0;
    r.area_in_system = 1.15; r.area_running = 2.0; r.area_kv_blocks = 10.0;
    r.pool_blocks = 4; r.max_kv_blocks = 3;
    srv_summary m;
    srv_summarize(&w, &r, 0.5, &m);
    cr_assert_float_eq(m.duration_s, 4.0, 1e-15);
    cr_assert_float_eq(m.requests_per_s, 2.0 / 4.0, 1e-15);
    cr_assert_float_eq(m.output_tokens_per_s, 5.0 / 4.0, 1e-15);
    cr_assert_float_eq(m.input_tokens_per_s, 150.0 / 4.0, 1e-15);
    cr_assert_float_eq(m.kv_occupancy_mean, 10.0 / (5.0 * 4.0), 1e-15);
    cr_assert_float_eq(m.kv_occupancy_max, 3.0 / 4.0, 1e-15);
    cr_assert_float_eq(m.running_mean, 2.0 / 5.0, 1e-15);
    cr_assert_float_eq(m.mean_in_system, 1.15 / 5.0, 1e-15);
    cr_assert_float_eq(m.e2e.mean, 0.575, 1e-15);
    cr_assert_float_eq(m.rate_times_e2e, 0.5 * 0.575, 1e-15);
    cr_assert_float_eq(m.measured_rate_times_e2e, 2.0 / 5.0 * 0.575, 1e-15);
    cr_assert_float_eq(m.ttft.p50, 0.375, 1e-15);  /* numpy: halfway between 0.25 and 0.5 */
    cr_assert_eq(m.itl.n, 3);
    cr_assert_eq(m.lost_tokens, 1);
}
