/* test_hwmodels.c — hwmodels/: the bundled GPUs (dense datasheet figures),
 * every loader error path with its file:line:col (wrong units included), the
 * bandwidth-efficiency interpolation, the calibration hook, `kvsim hw` exit
 * codes. Runs from the repository root (make test does). */
#include <criterion/criterion.h>
#include "cli_util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hw.h"

#define EFF_TOL 1e-12

static hw_model load_ok(const char *name)
{
    hw_model h;
    kv_err err = {""};
    cr_assert_eq(hw_model_load(name, &h, &err), 0, "%s: %s", name, err.msg);
    return h;
}

static void expect_error(const char *path, const char *msg)
{
    hw_model h;
    memset(&h, 0x5a, sizeof h);
    kv_err err = {""};
    cr_assert_eq(hw_model_load(path, &h, &err), -1, "%s was accepted", path);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(h.sm_count, 0x5a5a5a5a, "partial result written on error");
}

Test(hwmodels, every_bundled_gpu_loads_with_sane_figures)
{
    int n = 0;
    for (const char *const *name = hw_model_names(); *name; name++, n++) {
        hw_model h = load_ok(*name);
        cr_assert_str_eq(h.name, *name);
        /* the device reports binary bytes; usable = that less the context */
        cr_assert(h.device_total_bytes > 0.95 * (double)h.hbm_capacity_bytes, "%s: device total", *name);
        cr_assert_eq(h.usable_capacity_bytes, h.device_total_bytes - h.context_bytes, "%s", *name);
        cr_assert(h.bf16_dense_flops > 0 && h.int8_dense_ops >= h.bf16_dense_flops, "%s: INT8 at least BF16", *name);
        cr_assert(h.pcie_bytes_per_s >= 32e9 && h.link_latency_s > 0 && h.dram_latency_s > 0, "%s", *name);
        cr_assert(h.stream_read_efficiency > 0.5 && h.stream_read_efficiency <= 1.0);
        cr_assert_eq(h.gather_run_bytes[0], 256.0, "%s: the table starts at 256 B", *name);
        cr_assert_eq(h.gather_run_bytes[h.n_runs - 1], 65536.0, "%s: the table ends at 64 KiB", *name);
        for (int i = 1; i < h.n_runs; i++)
            cr_assert(h.gather_efficiency[i] >= h.gather_efficiency[i - 1], "%s: gather not monotone", *name);
        cr_assert(h.launch_graph_s < h.launch_s);
        cr_assert(h.efficiency_source[0]);
        cr_assert_str_eq(h.calibration, "");
    }
    cr_assert_eq(n, 9);
}

/* Dense, never with-sparsity; SI units. */
Test(hwmodels, datasheet_figures_are_dense_and_in_si_units)
{
    hw_model h = load_ok("h100-sxm");
    cr_assert_eq(h.hbm_capacity_bytes, 80000000000LL);
    cr_assert_float_eq(h.hbm_bandwidth_bytes_per_s, 3.35e12, 1.0);
    cr_assert_float_eq(h.bf16_dense_flops, 989.4e12, 1e3);
    cr_assert_float_eq(h.fp8_dense_flops, 1978.9e12, 1e3);
    cr_assert_eq(h.sm_count, 132);
    cr_assert_eq(h.l2_bytes, 50LL * 1024 * 1024);
    hw_model h200 = load_ok("h200");
    cr_assert_float_eq(h200.bf16_dense_flops, h.bf16_dense_flops, 1.0, "same GH100 compute");
    cr_assert_float_eq(h200.hbm_bandwidth_bytes_per_s, 4.8e12, 1.0);
    hw_model a100 = load_ok("a100-40g");
    cr_assert_eq(a100.fp8_dense_flops, 0.0, "A100 has no FP8");
    hw_model l40s = load_ok("l40s");
    cr_assert_eq(l40s.nvlink_bytes_per_s, 0.0, "L40S has no NVLink");
    /* boost clocks: FP32 datasheet peak / (2 x FP32 lanes per SM x SMs); 16 conversions per SM per clock */
    cr_assert_float_eq(h.sm_clock_hz, 66.9e12 / (2.0 * 128 * 132), 1e6);
    cr_assert_float_eq(a100.sm_clock_hz, 1.41e9, 2e6, "A100 whitepaper: 1410 MHz boost");
    cr_assert_float_eq(l40s.sm_clock_hz, 91.6e12 / (2.0 * 128 * 142), 1e6);
    cr_assert_float_eq(hw_cvt_rate(&h200), 16.0 * 132 * 1.98e9, 1e9);
}

Test(hwmodels, loader_error_paths)
{
    expect_error("tests/data/bad/hw_bandwidth_unit.yaml", "tests/data/bad/hw_bandwidth_unit.yaml:5:28: key "
                 "'hbm_bandwidth_bytes_per_s': 3350 looks like GB/s or TB/s, expected bytes/s (e.g. 3.35e12)");
    expect_error("tests/data/bad/hw_capacity_unit.yaml", "tests/data/bad/hw_capacity_unit.yaml:2:21: key "
                 "'hbm_capacity_bytes': 80 looks like GB or GiB, expected bytes (e.g. 80e9)");
    expect_error("tests/data/bad/hw_flops_unit.yaml", "tests/data/bad/hw_flops_unit.yaml:7:19: key "
                 "'bf16_dense_flops': 989.4 looks like TFLOP/s, expected FLOP/s (e.g. 989.4e12)");
    expect_error("tests/data/bad/hw_launch_unit.yaml", "tests/data/bad/hw_launch_unit.yaml:30:11: key 'launch_s': "
                 "5 looks like microseconds, expected seconds (e.g. 5e-6)");
    expect_error("tests/data/bad/hw_sparse_fp8.yaml", "tests/data/bad/hw_sparse_fp8.yaml:8:18: key "
                 "'fp8_dense_flops': 3.9578e+15 is more than twice bf16_dense_flops: a with-sparsity figure? "
                 "use dense figures");
    expect_error("tests/data/bad/hw_table_order.yaml", "tests/data/bad/hw_table_order.yaml:24:17: key "
                 "'run_bytes': 4096 is not larger than the previous entry's 8192; gather_efficiency must be in "
                 "ascending run_bytes");
    expect_error("tests/data/bad/hw_efficiency_range.yaml", "tests/data/bad/hw_efficiency_range.yaml:18:25: key "
                 "'stream_read_efficiency': expected a number in (0, 1], got '1.2'");
    expect_error("tests/data/bad/hw_missing_source.yaml", "tests/data/bad/hw_missing_source.yaml:37:3: missing "
                 "key 'l2_bytes' in 'sources' (every datasheet figure needs a source)");
    expect_error("tests/data/bad/hw_gather_key.yaml", "tests/data/bad/hw_gather_key.yaml:21:22: unknown key "
                 "'eficiency' (did you mean 'efficiency'? expected one of: run_bytes, efficiency)");
    expect_error("tests/data/bad/hw_unknown_key.yaml", "tests/data/bad/hw_unknown_key.yaml:13:1: unknown key "
                 "'sm_clock_mhz' (did you mean 'sm_clock_hz'? expected one of: vendor_name, hbm_capacity_bytes, device_total_bytes, context_bytes, "
                 "hbm_bandwidth_bytes_per_s, l2_bytes, bf16_dense_flops, fp8_dense_flops, int8_dense_ops, "
                 "fp4_dense_flops, fp32_flops, sm_count, interconnect, nvlink_bytes_per_s, nvlink_topology, pcie_bytes_per_s, "
                 "link_latency_s, price_per_hour_usd, stream_read_efficiency, gather_efficiency, compute_efficiency, "
                 "launch_s, launch_graph_s, allreduce_latency_s, dram_latency_s, fp8_gemm_efficiency, fp8_gemm_k_half, "
                 "fp8_gemm_read_efficiency, sm_clock_hz, cvt_per_sm_clk, mamf_bf16_flops, mamf_fp8_flops,...)");
    expect_error("tests/data/bad/hw_topology_value.yaml", "tests/data/bad/hw_topology_value.yaml:18:18: key "
                 "'nvlink_topology': 'torus' (expected switch or hybrid-cube-mesh)");
    expect_error("tests/data/bad/hw_topology_source.yaml", "tests/data/bad/hw_topology_source.yaml:18:18: "
                 "nvlink_topology needs a 'sources' entry");
    expect_error("tests/data/bad/hw_fp8_curve_half.yaml", "tests/data/bad/hw_fp8_curve_half.yaml:34:22: "
                 "fp8_gemm_efficiency and fp8_gemm_k_half go together (both or neither)");
    expect_error("tests/data/bad/hw_fp8_curve_source.yaml", "tests/data/bad/hw_fp8_curve_source.yaml:34:22: "
                 "fp8_gemm_efficiency needs a 'sources' entry (measured data)");
    expect_error("tests/data/bad/hw_cvt_half.yaml", "tests/data/bad/hw_cvt_half.yaml:34:14: "
                 "sm_clock_hz and cvt_per_sm_clk go together (both or neither)");
    expect_error("tests/data/bad/hw_cvt_source.yaml", "tests/data/bad/hw_cvt_source.yaml:34:14: "
                 "sm_clock_hz needs a 'sources' entry (datasheet)");
    expect_error("tests/data/bad/hw_cvt_range.yaml", "tests/data/bad/hw_cvt_range.yaml:35:17: key "
                 "'cvt_per_sm_clk': expected a number in [1, 1024], got '0'");
    expect_error("tests/data/bad/hw_mamf_source.yaml", "tests/data/bad/hw_mamf_source.yaml:30:18: "
                 "mamf_bf16_flops needs a 'sources' entry (measured data)");
    expect_error("tests/data/bad/hw_mamf_range.yaml", "tests/data/bad/hw_mamf_range.yaml:30:18: key "
                 "'mamf_bf16_flops': 794.5 is not above half of and at most the dense peak 9.894e+14 (FLOP/s)");
    expect_error("tests/data/bad/hw_device_total_unit.yaml", "tests/data/bad/hw_device_total_unit.yaml:3:21: key "
                 "'device_total_bytes': 85 is not within 90%..115% of hbm_capacity_bytes; expected bytes");
}

Test(hwmodels, unknown_name)
{
    hw_model h;
    kv_err err = {""};
    unsetenv("KVSIM_DATA");
    cr_assert_eq(hw_model_load("h300", &h, &err), -1);
    cr_assert(strstr(err.msg, "unknown hardware model 'h300' (no "), "%s", err.msg);
    cr_assert(strstr(err.msg, "bundled: h100-sxm, h100-pcie,"), "%s", err.msg);
}

/* Table points are exact; between them the fraction is linear in log(run):
 * 362 B is the geometric mean of 256 and 512, so halfway: (0.40 + 0.50) / 2. */
Test(hwmodels, bandwidth_efficiency_interpolates_log_linearly)
{
    hw_model h = load_ok("h100-sxm");
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 256), 0.40, EFF_TOL);
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 4096), 0.78, EFF_TOL);
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, sqrt(256.0 * 512.0)), 0.45, EFF_TOL);
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 2048.0 * pow(2.0, 0.25)), 0.70 + 0.25 * 0.08, EFF_TOL);
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 64), 0.40, EFF_TOL, "clamped below the table");
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 65536), h.stream_read_efficiency, EFF_TOL);
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 1e9), h.stream_read_efficiency, EFF_TOL);
    double prev = 0;
    for (double r = 128; r < 1e6; r *= 1.37) {
        double e = hw_bandwidth_efficiency(&h, r);
        cr_assert(e >= prev - EFF_TOL, "not monotone at %g", r);
        prev = e;
    }
    h.n_runs = 0;
    cr_assert_float_eq(hw_bandwidth_efficiency(&h, 256), h.stream_read_efficiency, EFF_TOL, "no table: stream");
}

Test(hwmodels, calibration_replaces_efficiency_figures)
{
    hw_model h = load_ok("h100-sxm");
    const double ce = h.compute_efficiency;
    kv_err err = {""};
    cr_assert_eq(hw_model_apply_calibration(&h, "tests/data/calib_h100.json", &err), 0, "%s", err.msg);
    cr_assert_float_eq(h.stream_read_efficiency, 3.0e12 / 3.35e12, EFF_TOL);
    cr_assert_eq(h.n_runs, 3);
    cr_assert_float_eq(h.gather_efficiency[0], 1.2e12 / 3.35e12, EFF_TOL);
    cr_assert_float_eq(h.gather_run_bytes[2], 65536.0, EFF_TOL);
    cr_assert_float_eq(h.launch_s, 4.5e-6, 1e-18);
    cr_assert_float_eq(h.launch_graph_s, 2.0e-6, 1e-18);
    cr_assert_eq(h.usable_capacity_bytes, 84500000000LL);
    cr_assert_float_eq(h.compute_efficiency, ce, EFF_TOL, "not in the file: unchanged");
    cr_assert_str_eq(h.calibration, "tests/data/calib_h100.json");
    cr_assert_str_eq(h.efficiency_source, "measured: tests/data/calib_h100.json");
}

Test(hwmodels, calibration_errors_leave_the_model_unchanged)
{
    const struct { const char *path, *msg; } cases[] = {
        {"tests/data/bad/calib_over.json", "tests/data/bad/calib_over.json:5:40: key 'bytes_per_s': expected "
         "bytes/s in (1e9, 3.35e+12] (the datasheet bandwidth), got 4.4e12 (more than the datasheet figure: an "
         "L2-resident measurement?)"},
        {"tests/data/bad/calib_order.json", "tests/data/bad/calib_order.json:5:5: gather entry 2: run_bytes 256 "
         "is not larger than the previous entry's 4096; the table must be ascending"},
        {"tests/data/llama3.1-8b.config.json",
         "tests/data/llama3.1-8b.config.json:1:1: missing key 'stream_read_bytes_per_s'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hw_model h = load_ok("h100-sxm"), before = h;
        kv_err err = {""};
        cr_assert_eq(hw_model_apply_calibration(&h, cases[i].path, &err), -1, "%s accepted", cases[i].path);
        cr_assert_str_eq(err.msg, cases[i].msg);
        cr_assert_eq(memcmp(&h, &before, sizeof h), 0, "model changed by a failed calibration");
    }
}


Test(hwmodels, cli_exit_codes)
{
    cr_assert_eq(cli_rc("hw list"), 0);
    cr_assert_eq(cli_rc("hw list --json"), 0);
    cr_assert_eq(cli_rc("hw show mi300x"), 0);
    cr_assert_eq(cli_rc("hw show h100-sxm --json --calibration tests/data/calib_h100.json"), 0);
    cr_assert_eq(cli_rc("hw show h300"), 1);
    cr_assert_eq(cli_rc("hw show tests/data/bad/hw_bandwidth_unit.yaml"), 1);
    cr_assert_eq(cli_rc("hw show h100-sxm --calibration tests/data/bad/calib_over.json"), 1);
    cr_assert_eq(cli_rc("hw"), 2);
    cr_assert_eq(cli_rc("hw show"), 2);
    cr_assert_eq(cli_rc("hw list extra"), 2);
    cr_assert_eq(cli_rc("hw --help"), 0);
}

/* Capacity as the device reports it: deviceQuery prints bytes / 2^20 rounded (%.0f). */
Test(hwmodels, device_total_is_what_cuda_reports)
{
    hw_model h = load_ok("h100-sxm");
    cr_assert_eq(llround((double)h.device_total_bytes / 1048576.0), 81106, "81106 MBytes in deviceQuery");
    cr_assert(h.device_total_bytes > h.hbm_capacity_bytes, "binary memory exceeds the decimal label");
    hw_model a = load_ok("a100-80g");
    cr_assert_eq(llround((double)a.device_total_bytes / 1048576.0), 81158);
    hw_model m = load_ok("mi300x");
    cr_assert_eq(m.device_total_bytes, 196592LL * 1024 * 1024);
}

/* Which peak applies: a type the part lacks runs in the next wider one. */
Test(hwmodels, peak_per_compute_type)
{
    hw_model h = load_ok("h100-sxm"), a = load_ok("a100-80g"), b = load_ok("b200");
    cr_assert_eq(hw_peak_flops(&h, HW_DT_BF16), 989.4e12);
    cr_assert_eq(hw_peak_flops(&h, HW_DT_FP8), 1978.9e12);
    cr_assert_eq(hw_peak_flops(&h, HW_DT_FP4), 1978.9e12, "no FP4 on Hopper: FP8");
    cr_assert_eq(hw_peak_flops(&a, HW_DT_FP8), 312e12, "no FP8 on Ampere: BF16");
    cr_assert_eq(hw_peak_flops(&a, HW_DT_INT8), 624e12);
    cr_assert_eq(hw_peak_flops(&b, HW_DT_FP4), 9000e12);
}

/* bytes / (bytes + bw · latency): half the rate at bw · latency bytes. */
Test(hwmodels, transfer_and_gemm_shape_efficiency)
{
    hw_model h = load_ok("h100-sxm");
    const double half = 3.35e12 * 6e-7;
    cr_assert_float_eq(hw_transfer_efficiency(&h, half), 0.5, 1e-12);
    cr_assert_float_eq(hw_transfer_efficiency(&h, 9.0 * half), 0.9, 1e-12);
    const double ce = h.compute_efficiency; /* hwmodels/mamf_sets_the_share_an_engine_reaches */
    /* 4096 × 4096: 32 × 32 = 1024 tiles over 132 SMs = 8 waves (1056 slots) */
    cr_assert_float_eq(hw_gemm_efficiency(&h, 4096, 4096), ce * 1024.0 / 1056.0, 1e-12);
    /* 200 rows: 2 tile rows of 128 (tile quantization 200/256), 64 tiles fill 64 of 132 SMs in one wave */
    cr_assert_float_eq(hw_gemm_efficiency(&h, 200, 4096), ce * 200.0 / 256.0 * 64.0 / 132.0, 1e-12);
    cr_assert_float_eq(hw_gemm_efficiency(&h, 8, 4096), ce, 1e-12, "skinny: narrower tiles");
}

/* Maximum achievable matmul (MAMF, ml-engineering's table: A100 SXM BF16
 * 271.2 of 312 TFLOPS, H100 SXM 794.5 of 989, B200 SXM 1745.0 of 2250 and FP8
 * 3432.5 of 4500). An engine reaches 0.7 / (271.2 / 312) = 0.80531 of a
 * part's best (0.7: the A100's compute_efficiency, where the files' 0.7 was
 * checked). Worked by hand:
 *   A100: 0.80531 × 0.86923 = 0.7 exactly (the reference part is unchanged);
 *   H100 BF16: 0.80531 × 794.5 / 989.4 (its file's peak) = 0.80531 × 0.80301 = 0.64667;
 *   B200 BF16: 0.80531 × 1745 / 2250 = 0.80531 × 0.77556 = 0.62456;
 *   B200 FP8 (no FP8 curve: its MAMF): 0.80531 × 3432.5 / 4500 = 0.80531 × 0.76278 = 0.61427;
 *   H100 FP8 (the DeepGEMM curve, K = 742: 0.741 / 2 = 0.3705): 0.80531 × 0.3705 = 0.29837;
 *   L40S BF16 (no measurement): its file's 0.7;
 *   L40S FP8 (no FP8 curve: its fitted MAMF, below): 0.80531 × 414.1 / 733 = 0.80531 × 0.56494 = 0.45495. */
Test(hwmodels, mamf_sets_the_share_an_engine_reaches)
{
    hw_model a = load_ok("a100-80g"), h = load_ok("h100-sxm"), b = load_ok("b200"), l = load_ok("l40s");
    cr_assert_eq(a.compute_efficiency, 0.7, "bit for bit: the A100 rows keep their prices");
    cr_assert_float_eq(a.matmul_share, 0.80531, 1e-5);
    cr_assert_float_eq(h.compute_efficiency, 0.64667, 1e-5);
    cr_assert_float_eq(hw_gemm_efficiency(&h, 8, 4096), 0.64667, 1e-5);
    cr_assert_float_eq(b.compute_efficiency, 0.62456, 1e-5);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&b, HW_DT_FP8, 8, 4096, 4096), 0.61427, 1e-5);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&h, HW_DT_FP8, 8, 4096, 742), 0.29837, 1e-5);
    cr_assert_float_eq(l.compute_efficiency, 0.7, 1e-12);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&l, HW_DT_FP8, 8, 4096, 4096), 0.45495, 1e-5);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&l, HW_DT_BF16, 8, 4096, 4096), 0.7, 1e-12);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&a, HW_DT_INT8, 8, 4096, 4096), 0.7, 1e-12, "INT8 at the BF16 share");
}

/* The L40S's FP8 MAMF from its published table (vLLM PR #6677, one L40S):
 * the compute-bound rows (M = 512 > ridge 733e12 / 864e9 / 2 = 424) 512 x
 * 4096 x 12288 in 139.6 us and 512 x 4096 x 4096 in 45.5 us, each at tile
 * quantization 1 and wave quantization 384 / 426 and 128 / 142 = 0.901;
 * e = Σr / Σr², r = q / (achieved / peak), the closed-form least squares on
 * the relative error; the file carries e × 733 TFLOPS to 0.1 TFLOPS. */
Test(hwmodels, l40s_fp8_mamf_from_vllm_table)
{
    hw_model l = load_ok("l40s");
    const double a1 = 2.0 * 512 * 4096 * 12288 / 139.6e-6 / 733e12, a2 = 2.0 * 512 * 4096 * 4096 / 45.5e-6 / 733e12;
    const double r1 = (384.0 / 426.0) / a1, r2 = (128.0 / 142.0) / a2;
    const double e = (r1 + r2) / (r1 * r1 + r2 * r2);
    cr_assert_float_eq(l.mamf_fp8_flops, e * 733e12, 0.05e12, "%g vs %g", l.mamf_fp8_flops, e * 733e12);
    cr_assert(e > 0.56 && e < 0.57, "0.565 of the dense peak: %g", e);
}

/* Collectives over PCIe run at NCCL's model of the link (NVIDIA/nccl v2.19.3-1
 * src/graph/topo.cc: bw = width × speed / 80 GB/s, speed 120 for 16 GT/s):
 * Gen4 x16 = 16 × 120 / 80 = 24 GB/s, 0.75 of the raw 32 GB/s per direction
 * (the L40S file's figure); Gen5 x16 = 16 × 240 / 80 = 48 of 64. NVLink parts
 * keep their NVLink figure. */
Test(hwmodels, pcie_collectives_at_nccl_link_model)
{
    hw_model l = load_ok("l40s"), h = load_ok("h100-sxm");
    cr_assert_float_eq(hw_collective_link_bytes_per_s(&l), 16.0 * 120.0 / 80.0 * 1e9, 1.0);
    cr_assert_float_eq(hw_collective_link_bytes_per_s(&h), 450e9, 1.0);
    h.nvlink_bytes_per_s = 0.0; /* the same part without NVLink: its Gen5 x16 host link */
    cr_assert_float_eq(hw_collective_link_bytes_per_s(&h), 16.0 * 240.0 / 80.0 * 1e9, 1.0);
}

/* `kvsim hw show` says where compute_efficiency comes from and which link the
 * collectives use: H100 SXM 0.7 × 312 / 271.2 × 794.5 / 989.4 = 0.647, 0.805
 * of its 794.5 TFLOP/s; L40S 16 × 120 / 80 = 24 GB/s over PCIe; B200's FP8 MAMF. */
Test(hwmodels, show_prints_matmul_share_and_collective_link)
{
    cli_result r;
    cli_run(&r, "hw show h100-sxm");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "compute_efficiency         0.647 (0.805 of its best BF16 matmul, 794.5 TFLOP/s "
                            "measured)\n") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "collective link            450 GB/s per direction (NVLink)\n") != NULL, "%s", r.out);
    cli_run(&r, "hw show l40s");
    cr_assert(strstr(r.out, "compute_efficiency         0.700\n") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "collective link            24 GB/s per direction (PCIe at NCCL's link model)\n") != NULL,
              "%s", r.out);
    cli_run(&r, "hw show b200");
    cr_assert(strstr(r.out, "mamf_fp8_flops             3432.5 TFLOP/s (FP8 products at 0.805 of it)\n") != NULL, "%s",
              r.out);
}

/* The FP8 curve against the table it was fit to, DeepGEMM's README (commit
 * a6d97a1, "Normal GEMMs for dense models", M = 4096 on an H800: same FP8
 * peak and 132 SMs as the H100 SXM): achieved TFLOPS = peak × the best
 * kernel's efficiency within 2% for each of the six rows; an engine reaches
 * matmul_share of it. Other types keep compute_efficiency. */
Test(hwmodels, fp8_gemm_curve_reproduces_deepgemm_table)
{
    hw_model h = load_ok("h100-sxm");
    static const double rows[][4] = {{4096, 2112, 7168, 1058}, {4096, 24576, 1536, 990}, {4096, 32768, 512, 590},
                                     {4096, 7168, 16384, 1358}, {4096, 4096, 7168, 1304}, {4096, 7168, 2048, 1025}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const double got = 1978.9 * hw_fp8_gemm_best(&h, rows[i][0], rows[i][1], rows[i][2]);
        cr_assert(fabs(got / rows[i][3] - 1.0) < 0.02, "M=%g N=%g K=%g: %.0f TFLOPS, DeepGEMM %g", rows[i][0],
                  rows[i][1], rows[i][2], got, rows[i][3]);
    }
    /* the formula written out: 0.741 · K / (K + 742) × tile and wave quantization (1024 tiles, 8 waves) */
    cr_assert_float_eq(hw_fp8_gemm_best(&h, 4096, 4096, 742), 0.741 * 0.5 * 1024.0 / 1056.0, 1e-12);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&h, HW_DT_FP8, 4096, 4096, 742),
                       0.7 / (271.2 / 312.0) * 0.741 * 0.5 * 1024.0 / 1056.0, 1e-12);
    cr_assert_float_eq(hw_gemm_efficiency_dt(&h, HW_DT_BF16, 4096, 4096, 742), h.compute_efficiency * 1024.0 / 1056.0,
                       1e-12);
    hw_model a = load_ok("a100-80g"); /* no FP8 curve: the flat share */
    cr_assert_float_eq(hw_gemm_efficiency_dt(&a, HW_DT_FP8, 8, 4096, 742), a.compute_efficiency, 1e-12);
    /* the files carry what the fit script (a second implementation of the model) finds */
    FILE *p = popen("python3 hwmodels/fit_fp8_gemm.py", "r");
    cr_assert(p, "python3 hwmodels/fit_fp8_gemm.py");
    double e = 0, kh = 0, r = 0;
    cr_assert_eq(fscanf(p, "fp8_gemm_efficiency %lf fp8_gemm_k_half %lf fp8_gemm_read_efficiency %lf", &e, &kh, &r), 3);
    while (fgetc(p) != EOF) {} /* its per-row lines: read them all so the script is not cut off */
    cr_assert_eq(pclose(p), 0);
    static const char *const hopper[] = {"h100-sxm", "h100-pcie", "h100-nvl", "h200"};
    for (size_t i = 0; i < 4; i++) {
        hw_model x = load_ok(hopper[i]);
        cr_assert_float_eq(x.fp8_gemm_efficiency, e, 5e-4, "%s: %g, the fit %g", hopper[i], x.fp8_gemm_efficiency, e);
        cr_assert_float_eq(x.fp8_gemm_k_half, kh, 0.5, "%s: %g, the fit %g", hopper[i], x.fp8_gemm_k_half, kh);
        cr_assert_float_eq(x.fp8_gemm_read_efficiency, r, 5e-4, "%s: %g, the fit %g", hopper[i],
                           x.fp8_gemm_read_efficiency, r);
    }
}
