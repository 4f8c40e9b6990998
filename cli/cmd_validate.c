/* cmd_validate.c — `kvsim validate reports/gpu/FILE.json [--hw NAME]
 * [--model M] [--audit FILE] [--json]`: predicted (sim, default and calibrated from the same
 * report) vs measured, per kernel and per step, time and speedup, with the
 * error in percent (sim/sim_validate.h does the work; this file prints). */
#include "cli.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "hw.h"
#include "kv_jsonr.h"
#include "mdl.h"
#include "sim_validate.h"

#define DEFAULT_AUDIT "reports/cuda-audit/audit.json"

static void help(void)
{
    printf("usage: kvsim validate reports/gpu/FILE.json [--hw NAME] [--model M] [--audit FILE] [--json]\n\n"
           "Predicted vs measured for every timing of a gpu_check report (make gpu-check): the sim's time for\n"
           "the same layer, cache size and batch, with the hardware model's efficiency figures and calibrated\n"
           "from the report's own probes; error %% = 100 (predicted - measured) / measured, for each kernel,\n"
           "each step, and the speedup of rocketkv over dense at every point of the fixed matrix (contexts\n"
           "32K/64K/128K x budgets 256/1024/4096 x batch 1/8) present in the report.\n\n"
           "  --hw NAME     GPU model to price with (default: inferred from the report's device name)\n"
           "  --model M     model whose shape the GPU timed (llama3.1-8b)\n"
           "  --json        one JSON object\n"
           "  --audit FILE  static estimates of make cuda-audit to print beside the sim's assumed efficiencies\n"
           "                (default: reports/cuda-audit/audit.json when it exists; estimates, not measurements)\n");
}

/* The bundled hardware model a device name most likely is, or NULL. */
static const char *hw_guess(const char *dev)
{
    if (strstr(dev, "H200"))
        return "h200";
    if (strstr(dev, "B200"))
        return "b200";
    if (strstr(dev, "H100"))
        return strstr(dev, "PCIe") ? "h100-pcie" : strstr(dev, "NVL") ? "h100-nvl" : "h100-sxm";
    if (strstr(dev, "A100"))
        return strstr(dev, "40GB") ? "a100-40g" : "a100-80g";
    if (strstr(dev, "L40S"))
        return "l40s";
    if (strstr(dev, "MI300X"))
        return "mi300x";
    return NULL;
}

/* The report's device name, for --hw's default (a pre-read through the same
 * strict reader: its errors are the report's errors). */
static int device_of(const char *path, char *out, size_t cap, kv_err *err)
{
    kv_jsonr_doc d;
    if (kv_jsonr_load_file(&d, path, err) != 0)
        return -1;
    const kv_jsonr_node *v = kv_jsonr_get(d.root, "device");
    snprintf(out, cap, "%s", v && v->kind == KV_JSONR_STR ? v->str : "");
    kv_jsonr_free(&d);
    return 0;
}

static void num_or_null(kv_json *j, double x)
{
    if (isfinite(x))
        kv_json_num(j, x);
    else
        kv_json_null(j);
}

/* The static estimates of make cuda-audit for the priced hardware model,
 * beside the efficiencies the sim assumes (sim_validate.h, sim_audit). */
static void print_audit_human(const sim_audit *a)
{
    printf("\nstatic estimates (%s, make cuda-audit; ESTIMATES of a static model, not measurements) on %s;\n"
           "the sim assumes stream_read_efficiency %.3f, compute_efficiency %.3f\n",
           a->path, a->hw, a->sim_stream_eff, a->sim_compute_eff);
    printf("%-10s %2s %7s %5s %10s %-34s %10s %12s\n", "kernel", "G", "context", "batch", "est_us", "bound",
           "bytes_MB", "implied_eff");
    for (int i = 0; i < a->nrows; i++) {
        const sim_audit_row *r = &a->rows[i];
        printf("%-10s %2d %7lld %5lld %10.2f %-34s ", r->kernel, r->group, (long long)r->context,
               (long long)r->batch, r->est_s * 1e6, r->bound);
        if (r->bytes > 0)
            printf("%10.2f %12.3f\n", r->bytes / 1e6, r->implied_stream_eff);
        else
            printf("%10s %12s\n", "-", "-");
    }
}

/* The measured dense timings that have a static estimate of the same kernel,
 * shape and point (sim_audit_find), each beside it. */
static void print_audit_vs_measured(const sim_validate *v, const sim_audit *a)
{
    int n = 0;
    for (int i = 0; i < v->nrows; i++) {
        const sim_validate_row *r = &v->rows[i];
        const sim_audit_row *x = sim_audit_find(a, r);
        if (!x)
            continue;
        if (!n++)
            printf("\nmeasured vs static estimate (same kernel, G, context, batch; err%% = 100 (est - measured) / "
                   "measured)\n%-12s %-8s %-10s %2s %7s %5s %11s %10s %8s\n", "model", "what", "kernel", "G", "context",
                   "batch", "measured_us", "est_us", "err%");
        printf("%-12s %-8s %-10s %2lld %7lld %5lld %11.2f %10.2f %+8.1f\n", r->model, r->what, x->kernel,
               (long long)r->group, (long long)r->context, (long long)r->batch, r->measured_s * 1e6, x->est_s * 1e6,
               sim_validate_err_pct(x->est_s, r->measured_s));
    }
    if (!n)
        printf("\nno measured dense timing has a static estimate of the same kernel and point\n");
}

static void print_audit_json(kv_json *j, const sim_audit *a)
{
    kv_json_key(j, "static_estimates");
    kv_json_obj_begin(j);
    kv_json_key(j, "path");
    kv_json_str(j, a->path);
    kv_json_key(j, "measured");
    kv_json_bool(j, 0);
    kv_json_key(j, "sim_stream_read_efficiency");
    kv_json_num(j, a->sim_stream_eff);
    kv_json_key(j, "sim_compute_efficiency");
    kv_json_num(j, a->sim_compute_eff);
    kv_json_key(j, "rows");
    kv_json_arr_begin(j);
    for (int i = 0; i < a->nrows; i++) {
        const sim_audit_row *r = &a->rows[i];
        kv_json_obj_begin(j);
        kv_json_key(j, "kernel");
        kv_json_str(j, r->kernel);
        kv_json_key(j, "group");
        kv_json_int(j, r->group);
        kv_json_key(j, "context");
        kv_json_int(j, r->context);
        kv_json_key(j, "batch");
        kv_json_int(j, r->batch);
        kv_json_key(j, "est_s");
        kv_json_num(j, r->est_s);
        kv_json_key(j, "bound");
        kv_json_str(j, r->bound);
        kv_json_key(j, "bytes");
        kv_json_num(j, r->bytes);
        kv_json_key(j, "implied_stream_efficiency");
        num_or_null(j, r->implied_stream_eff);
        kv_json_obj_end(j);
    }
    kv_json_arr_end(j);
    kv_json_obj_end(j);
}

static void print_json(const sim_validate *v, const mdl_model *m, const sim_audit *a)
{
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "report"); kv_json_str(&j, v->path);
    kv_json_key(&j, "device"); kv_json_str(&j, v->device);
    kv_json_key(&j, "date"); kv_json_str(&j, v->date);
    kv_json_key(&j, "comment"); kv_json_str(&j, v->comment);
    kv_json_key(&j, "hw"); kv_json_str(&j, v->hw.name);
    kv_json_key(&j, "model"); kv_json_str(&j, m->name);
    kv_json_key(&j, "all_checks_pass"); kv_json_bool(&j, v->all_checks_pass);
    kv_json_key(&j, "checks"); kv_json_int(&j, v->nchecks);
    kv_json_key(&j, "checks_failed"); kv_json_int(&j, v->nchecks_failed);
    kv_json_key(&j, "calibration");
    kv_json_obj_begin(&j);
    kv_json_key(&j, "stream_read_efficiency"); kv_json_num(&j, v->hw.stream_read_efficiency);
    kv_json_key(&j, "stream_read_efficiency_calibrated"); kv_json_num(&j, v->hw_cal.stream_read_efficiency);
    kv_json_key(&j, "launch_graph_s"); kv_json_num(&j, v->hw.launch_graph_s);
    kv_json_key(&j, "launch_graph_s_calibrated"); kv_json_num(&j, v->hw_cal.launch_graph_s);
    kv_json_obj_end(&j);
    kv_json_key(&j, "timings");
    kv_json_arr_begin(&j);
    for (int i = 0; i < v->nrows; i++) {
        const sim_validate_row *r = &v->rows[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "model"); kv_json_str(&j, r->model);
        kv_json_key(&j, "method"); kv_json_str(&j, r->method);
        kv_json_key(&j, "what"); kv_json_str(&j, r->what);
        kv_json_key(&j, "kv_heads"); kv_json_int(&j, r->kv_heads);
        kv_json_key(&j, "group"); kv_json_int(&j, r->group);
        kv_json_key(&j, "head_dim"); kv_json_int(&j, r->head_dim);
        kv_json_key(&j, "context"); kv_json_int(&j, r->context);
        kv_json_key(&j, "budget"); kv_json_int(&j, r->budget);
        kv_json_key(&j, "batch"); kv_json_int(&j, r->batch);
        kv_json_key(&j, "cache_tokens"); kv_json_int(&j, r->cache_tokens);
        kv_json_key(&j, "measured_s"); kv_json_num(&j, r->measured_s);
        kv_json_key(&j, "predicted_s"); kv_json_num(&j, r->pred_s);
        kv_json_key(&j, "predicted_calibrated_s"); kv_json_num(&j, r->pred_cal_s);
        kv_json_key(&j, "error_pct"); num_or_null(&j, r->err_pct);
        kv_json_key(&j, "error_calibrated_pct"); num_or_null(&j, r->err_cal_pct);
        const sim_audit_row *x = sim_audit_find(a, r);
        kv_json_key(&j, "static_estimate_s"); num_or_null(&j, x ? x->est_s : NAN);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "speedups");
    kv_json_arr_begin(&j);
    for (int i = 0; i < v->nspeedup; i++) {
        const sim_validate_speedup *s = &v->speedup[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "model"); kv_json_str(&j, s->model);
        kv_json_key(&j, "what"); kv_json_str(&j, s->what);
        kv_json_key(&j, "base"); kv_json_str(&j, s->base);
        kv_json_key(&j, "context"); kv_json_int(&j, s->context);
        kv_json_key(&j, "budget"); kv_json_int(&j, s->budget);
        kv_json_key(&j, "batch"); kv_json_int(&j, s->batch);
        kv_json_key(&j, "measured"); kv_json_num(&j, s->measured);
        kv_json_key(&j, "predicted"); kv_json_num(&j, s->pred);
        kv_json_key(&j, "predicted_calibrated"); kv_json_num(&j, s->pred_cal);
        kv_json_key(&j, "error_pct"); num_or_null(&j, s->err_pct);
        kv_json_key(&j, "error_calibrated_pct"); num_or_null(&j, s->err_cal_pct);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "skipped_timings"); kv_json_int(&j, v->nskipped);
    kv_json_key(&j, "matrix_points_present"); kv_json_int(&j, v->matrix_present);
    kv_json_key(&j, "matrix_points_total"); kv_json_int(&j, v->matrix_total);
    kv_json_key(&j, "matrix_points_missing");
    kv_json_arr_begin(&j);
    for (int i = 0; i < v->nmissing; i++)
        kv_json_str(&j, v->missing[i]);
    kv_json_arr_end(&j);
    if (a)
        print_audit_json(&j, a);
    kv_json_obj_end(&j);
    fputc('\n', stdout);
}

static void print_human(const sim_validate *v, const mdl_model *m)
{
    printf("report %s: %s, %s; priced on %s (calibrated: stream read %.3f -> %.3f of datasheet), one layer of each "
           "row's model (%s where a row names none)\n",
           v->path, v->device, v->date, v->hw.name, v->hw.stream_read_efficiency, v->hw_cal.stream_read_efficiency,
           m->name);
    if (v->comment[0])
        printf("comment: %s\n", v->comment);
    printf("checks: %d, %d failed%s\n\n", v->nchecks, v->nchecks_failed,
           v->all_checks_pass ? "" : " (timings of failing kernels are suspect)");
    printf("%-12s %-8s %-13s %2s %7s %6s %5s %7s %11s %11s %8s %11s %8s\n", "model", "method", "what", "G", "context",
           "budget", "batch", "C", "measured_us", "pred_us", "err%", "pred_cal_us", "err_cal%");
    for (int i = 0; i < v->nrows; i++) {
        const sim_validate_row *r = &v->rows[i];
        printf("%-12s %-8s %-13s %2lld %7lld %6lld %5lld %7lld %11.2f %11.2f %+8.1f %11.2f %+8.1f\n", r->model,
               r->method, r->what, (long long)r->group, (long long)r->context, (long long)r->budget,
               (long long)r->batch, (long long)r->cache_tokens,
               r->measured_s * 1e6, r->pred_s * 1e6, r->err_pct, r->pred_cal_s * 1e6, r->err_cal_pct);
    }
    if (v->nspeedup) {
        printf("\nspeedup = full step (base) / rocketkv step, same model, context and batch\n");
        printf("%-12s %-8s %-8s %7s %6s %5s %9s %9s %8s %9s %8s\n", "model", "what", "base", "context", "budget",
               "batch", "measured", "pred", "err%", "pred_cal", "err_cal%");
        for (int i = 0; i < v->nspeedup; i++) {
            const sim_validate_speedup *s = &v->speedup[i];
            printf("%-12s %-8s %-8s %7lld %6lld %5lld %8.2fx %8.2fx %+8.1f %8.2fx %+8.1f\n", s->model, s->what,
                   s->base, (long long)s->context,
                   (long long)s->budget, (long long)s->batch, s->measured, s->pred, s->err_pct, s->pred_cal,
                   s->err_cal_pct);
        }
    }
    printf("\nmatrix points present: %d of %d", v->matrix_present, v->matrix_total);
    for (int i = 0; i < v->nmissing; i++)
        printf("%s%s", i ? ", " : "; missing: ", v->missing[i]);
    printf("\n");
    if (v->nskipped)
        printf("%d timing(s) with a `what` the sim has no kernel set for were skipped\n", v->nskipped);
}

int cmd_validate(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim validate", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const int json = cli_opt_flag(&o, "json");
    const char *hwname = cli_opt_str(&o, "hw", NULL), *model = cli_opt_str(&o, "model", "llama3.1-8b");
    const char *audit = cli_opt_str(&o, "audit", NULL);
    if (!audit && access(DEFAULT_AUDIT, R_OK) == 0)
        audit = DEFAULT_AUDIT;
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (o.npos != 1) {
        cli_error(o.prog, "expected one report file, got %d arguments (kvsim validate --help)", o.npos);
        return CLI_USAGE;
    }
    kv_err err;
    char dev[128];
    if (!hwname) {
        if (device_of(o.pos[0], dev, sizeof dev, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
        if (!(hwname = hw_guess(dev))) {
            cli_error(o.prog, "%s: device \"%s\" is none of the bundled GPUs; pass --hw NAME", o.pos[0], dev);
            return CLI_USAGE;
        }
    }
    hw_model hw;
    mdl_model m;
    if (hw_model_load(hwname, &hw, &err) != 0 || mdl_model_load(model, &m, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    sim_validate v;
    if (sim_validate_report(o.pos[0], &hw, &m, &v, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    static sim_audit au; /* 64 rows: too large for the stack of a fuzzed call */
    if (audit && sim_audit_load(audit, &hw, &au, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        sim_validate_free(&v);
        return CLI_FAIL;
    }
    if (json)
        print_json(&v, &m, audit ? &au : NULL);
    else {
        print_human(&v, &m);
        if (audit) {
            print_audit_human(&au);
            print_audit_vs_measured(&v, &au);
        }
    }
    sim_validate_free(&v);
    return CLI_OK;
}
