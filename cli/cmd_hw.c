/* cmd_hw.c — `kvsim hw list|show NAME [--calibration FILE] [--json]`: the
 * hardware models under hwmodels/. Loading and checking live in hwmodels/
 * (hw.h); this file only prints. */
#include "cli.h"

#include <string.h>

#include "hw.h"

static const char *const hw_flags[] = {"json", "help", "calibration-any", NULL};

static void usage(FILE *fp)
{
    fputs("usage: kvsim hw list [--json]\n"
          "       kvsim hw show NAME|FILE.yaml [--calibration reports/gpu/RUN.json [--calibration-any]] [--json]\n"
          "\n"
          "list    the bundled GPUs with their headline datasheet figures (dense, SI units)\n"
          "show    every figure of one GPU, the gather-efficiency table and where each number comes from;\n"
          "        --calibration replaces the efficiency figures with measured ones (hwmodels/README.md);\n"
          "        one measured on another device is refused unless --calibration-any\n",
          fp);
}

static void json_hw(kv_json *j, const hw_model *h)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "name"); kv_json_str(j, h->name);
    kv_json_key(j, "path"); kv_json_str(j, h->path);
    kv_json_key(j, "vendor_name"); kv_json_str(j, h->vendor_name);
    kv_json_key(j, "hbm_capacity_bytes"); kv_json_int(j, h->hbm_capacity_bytes);
    kv_json_key(j, "device_total_bytes"); kv_json_int(j, h->device_total_bytes);
    kv_json_key(j, "context_bytes"); kv_json_int(j, h->context_bytes);
    kv_json_key(j, "usable_capacity_bytes"); kv_json_int(j, h->usable_capacity_bytes);
    kv_json_key(j, "hbm_bandwidth_bytes_per_s"); kv_json_num(j, h->hbm_bandwidth_bytes_per_s);
    kv_json_key(j, "l2_bytes"); kv_json_int(j, h->l2_bytes);
    kv_json_key(j, "bf16_dense_flops"); kv_json_num(j, h->bf16_dense_flops);
    kv_json_key(j, "fp8_dense_flops"); kv_json_num(j, h->fp8_dense_flops);
    kv_json_key(j, "int8_dense_ops"); kv_json_num(j, h->int8_dense_ops);
    kv_json_key(j, "fp4_dense_flops"); kv_json_num(j, h->fp4_dense_flops);
    kv_json_key(j, "fp32_flops"); kv_json_num(j, h->fp32_flops);
    kv_json_key(j, "sm_count"); kv_json_int(j, h->sm_count);
    kv_json_key(j, "sm_clock_hz"); kv_json_num(j, h->sm_clock_hz);
    kv_json_key(j, "cvt_per_sm_clk"); kv_json_num(j, h->cvt_per_sm_clk);
    kv_json_key(j, "interconnect"); kv_json_str(j, h->interconnect);
    kv_json_key(j, "nvlink_bytes_per_s"); kv_json_num(j, h->nvlink_bytes_per_s);
    kv_json_key(j, "pcie_bytes_per_s"); kv_json_num(j, h->pcie_bytes_per_s);
    kv_json_key(j, "link_latency_s"); kv_json_num(j, h->link_latency_s);
    kv_json_key(j, "dram_latency_s"); kv_json_num(j, h->dram_latency_s);
    kv_json_key(j, "price_per_hour_usd"); kv_json_num(j, h->price_per_hour_usd);
    kv_json_key(j, "stream_read_efficiency"); kv_json_num(j, h->stream_read_efficiency);
    kv_json_key(j, "gather_efficiency");
    kv_json_arr_begin(j);
    for (int i = 0; i < h->n_runs; i++) {
        kv_json_obj_begin(j);
        kv_json_key(j, "run_bytes"); kv_json_num(j, h->gather_run_bytes[i]);
        kv_json_key(j, "efficiency"); kv_json_num(j, h->gather_efficiency[i]);
        kv_json_obj_end(j);
    }
    kv_json_arr_end(j);
    kv_json_key(j, "compute_efficiency"); kv_json_num(j, h->compute_efficiency);
    kv_json_key(j, "matmul_share"); kv_json_num(j, h->matmul_share);
    kv_json_key(j, "mamf_bf16_flops"); kv_json_num(j, h->mamf_bf16_flops);
    kv_json_key(j, "mamf_fp8_flops"); kv_json_num(j, h->mamf_fp8_flops);
    kv_json_key(j, "collective_link_bytes_per_s"); kv_json_num(j, hw_collective_link_bytes_per_s(h));
    kv_json_key(j, "launch_s"); kv_json_num(j, h->launch_s);
    kv_json_key(j, "launch_graph_s"); kv_json_num(j, h->launch_graph_s);
    kv_json_key(j, "allreduce_latency_s"); kv_json_num(j, h->allreduce_latency_s);
    kv_json_key(j, "efficiency_source"); kv_json_str(j, h->efficiency_source);
    kv_json_key(j, "calibration"); kv_json_str(j, h->calibration);
    kv_json_obj_end(j);
}

static int do_list(cli_opts *o)
{
    int json = cli_opt_flag(o, "json");
    if (cli_opts_unused(o) != 0)
        return CLI_USAGE;
    if (o->npos != 1) {
        cli_error(o->prog, "list takes no arguments");
        return CLI_USAGE;
    }
    kv_json j;
    if (json) {
        kv_json_init(&j, stdout);
        kv_json_arr_begin(&j);
    } else {
        printf("%-10s %-28s %8s %8s %10s %9s %7s\n", "name", "vendor name", "HBM GB", "TB/s", "BF16 TF",
               "FP8 TF", "stream");
    }
    for (const char *const *n = hw_model_names(); *n; n++) {
        hw_model h;
        kv_err err;
        if (hw_model_load(*n, &h, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        if (json)
            json_hw(&j, &h);
        else
            printf("%-10s %-28s %8.0f %8.3f %10.1f %9.1f %6.0f%%\n", h.name, h.vendor_name,
                   (double)h.hbm_capacity_bytes / 1e9, h.hbm_bandwidth_bytes_per_s / 1e12,
                   h.bf16_dense_flops / 1e12, h.fp8_dense_flops / 1e12, 100 * h.stream_read_efficiency);
    }
    if (json)
        kv_json_arr_end(&j);
    return CLI_OK;
}

static void print_hw(const hw_model *h)
{
    printf("name                       %s\n", h->name);
    printf("path                       %s\n", h->path);
    printf("vendor_name                %s\n", h->vendor_name);
    printf("hbm_capacity_bytes         %lld (%.1f GB)\n", (long long)h->hbm_capacity_bytes,
           (double)h->hbm_capacity_bytes / 1e9);
    printf("device_total_bytes         %lld (%.2f GiB, as the device reports it)\n", (long long)h->device_total_bytes,
           (double)h->device_total_bytes / 1073741824.0);
    printf("context_bytes              %lld (%.2f GiB)\n", (long long)h->context_bytes,
           (double)h->context_bytes / 1073741824.0);
    printf("usable_capacity_bytes      %lld (%.2f GiB)\n", (long long)h->usable_capacity_bytes,
           (double)h->usable_capacity_bytes / 1073741824.0);
    printf("hbm_bandwidth_bytes_per_s  %.6g (%.3f TB/s)\n", h->hbm_bandwidth_bytes_per_s,
           h->hbm_bandwidth_bytes_per_s / 1e12);
    printf("l2_bytes                   %lld (%.1f MiB)\n", (long long)h->l2_bytes, (double)h->l2_bytes / 1048576.0);
    printf("bf16_dense_flops           %.6g (%.1f TFLOP/s)\n", h->bf16_dense_flops, h->bf16_dense_flops / 1e12);
    printf("fp8_dense_flops            %.6g (%.1f TFLOP/s)\n", h->fp8_dense_flops, h->fp8_dense_flops / 1e12);
    printf("int8_dense_ops             %.6g (%.1f TOP/s)\n", h->int8_dense_ops, h->int8_dense_ops / 1e12);
    printf("fp4_dense_flops            %.6g (%.1f TFLOP/s)\n", h->fp4_dense_flops, h->fp4_dense_flops / 1e12);
    printf("fp32_flops                 %.6g (%.1f TFLOP/s)\n", h->fp32_flops, h->fp32_flops / 1e12);
    printf("sm_count                   %d\n", h->sm_count);
    printf("interconnect               %s\n", h->interconnect);
    printf("nvlink_bytes_per_s         %.6g (%.0f GB/s per direction)\n", h->nvlink_bytes_per_s,
           h->nvlink_bytes_per_s / 1e9);
    printf("pcie_bytes_per_s           %.6g (%.0f GB/s per direction)\n", h->pcie_bytes_per_s, h->pcie_bytes_per_s / 1e9);
    printf("link_latency_s             %.3g\n", h->link_latency_s);
    printf("dram_latency_s             %.3g\n", h->dram_latency_s);
    if (h->sm_clock_hz > 0)
        printf("sm_clock_hz                %.4g (%.3g conversions/s: x %g per SM per clock x %d SMs)\n", h->sm_clock_hz,
               hw_cvt_rate(h), h->cvt_per_sm_clk, h->sm_count);
    if (h->price_per_hour_usd > 0)
        printf("price_per_hour_usd         %.2f\n", h->price_per_hour_usd);
    else
        printf("price_per_hour_usd         unknown\n");
    printf("-- efficiency%s\n", h->calibration[0] ? " (calibrated)" : " (defaults)");
    printf("stream_read_efficiency     %.3f (%.3f TB/s)\n", h->stream_read_efficiency,
           h->stream_read_efficiency * h->hbm_bandwidth_bytes_per_s / 1e12);
    printf("gather_efficiency         ");
    for (int i = 0; i < h->n_runs; i++)
        printf(" %.0f:%.2f", h->gather_run_bytes[i], h->gather_efficiency[i]);
    printf("   (run bytes : fraction)\n");
    printf("compute_efficiency         %.3f", h->compute_efficiency);
    if (h->mamf_bf16_flops > 0.0)
        printf(" (%.3f of its best BF16 matmul, %.1f TFLOP/s measured)", h->matmul_share, h->mamf_bf16_flops / 1e12);
    printf("\n");
    if (h->mamf_fp8_flops > 0.0)
        printf("mamf_fp8_flops             %.1f TFLOP/s (FP8 products at %.3f of it)\n", h->mamf_fp8_flops / 1e12,
               h->matmul_share);
    printf("collective link            %.0f GB/s per direction%s\n", hw_collective_link_bytes_per_s(h) / 1e9,
           h->nvlink_bytes_per_s > 0.0 ? " (NVLink)" : " (PCIe at NCCL's link model)");
    printf("launch_s                   %.3g\n", h->launch_s);
    printf("launch_graph_s             %.3g\n", h->launch_graph_s);
    printf("allreduce_latency_s        %.3g\n", h->allreduce_latency_s);
    printf("efficiency_source          %s\n", h->efficiency_source);
    printf("(datasheet sources: the 'sources:' block of %s)\n", h->path);
}

static int do_show(cli_opts *o)
{
    int json = cli_opt_flag(o, "json");
    const char *cal = cli_opt_str(o, "calibration", NULL);
    const int cal_any = cli_opt_flag(o, "calibration-any");
    if (cli_opts_unused(o) != 0)
        return CLI_USAGE;
    if (o->npos != 2) {
        cli_error(o->prog, "show takes one hardware name or YAML path (kvsim hw list shows the names)");
        return CLI_USAGE;
    }
    hw_model h;
    kv_err err;
    if (hw_model_load(o->pos[1], &h, &err) != 0 || (cal && hw_model_apply_calibration(&h, cal, &err) != 0)) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (!cal_any && hw_calibration_check(&h, &err) != 0) {
        cli_error(o->prog, "--calibration: %s", err.msg);
        return CLI_USAGE;
    }
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        json_hw(&j, &h);
    } else {
        print_hw(&h);
    }
    return CLI_OK;
}

int cmd_hw(int argc, char **argv)
{
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim hw", argc, argv, hw_flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    const char *verb = o.npos > 0 ? o.pos[0] : "";
    if (!strcmp(verb, "list"))
        return do_list(&o);
    if (!strcmp(verb, "show"))
        return do_show(&o);
    if (*verb)
        cli_error(o.prog, "unknown action '%s' (expected list or show)", verb);
    else
        usage(stderr);
    return CLI_USAGE;
}
