/* hw.c — hardware models (hw.h): the strict YAML loader with unit sanity
 * checks, the bandwidth-efficiency interpolation, the peak per compute type,
 * the transfer-size and GEMM-shape efficiencies, and the calibration hook
 * that swaps in figures measured by the GPU check (reports/gpu/ JSON).
 *
 * File format and the meaning of every key: hwmodels/README.md. It does not
 * derive anything from the figures (no roofline here; sim/ does that). */
#include "hw.h"

#include <limits.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv_jsonr.h"
#include "kv_yaml.h"

#ifndef KVSIM_DATADIR
#define KVSIM_DATADIR "."
#endif

static const char *const hw_names[] = {
    "h100-sxm", "h100-pcie", "h100-nvl", "h200", "b200", "a100-80g", "a100-40g", "l40s", "mi300x", NULL,
};

const char *const *hw_model_names(void) { return hw_names; }

static const char *const yaml_keys[] = {
    "vendor_name", "hbm_capacity_bytes", "device_total_bytes", "context_bytes", "hbm_bandwidth_bytes_per_s",
    "l2_bytes", "bf16_dense_flops", "fp8_dense_flops", "int8_dense_ops", "fp4_dense_flops", "fp32_flops",
    "sm_count", "interconnect", "nvlink_bytes_per_s", "nvlink_topology", "pcie_bytes_per_s", "link_latency_s",
    "price_per_hour_usd", "stream_read_efficiency", "gather_efficiency", "compute_efficiency", "launch_s",
    "launch_graph_s", "allreduce_latency_s", "dram_latency_s", "fp8_gemm_efficiency", "fp8_gemm_k_half",
    "fp8_gemm_read_efficiency", "sm_clock_hz", "cvt_per_sm_clk", "mamf_bf16_flops", "mamf_fp8_flops",
    "efficiency_source", "sources", NULL,
};

/* Figures that must each carry a source (price only when given). */
static const char *const sourced_keys[] = {
    "hbm_capacity_bytes", "device_total_bytes", "context_bytes", "hbm_bandwidth_bytes_per_s", "l2_bytes",
    "bf16_dense_flops", "fp8_dense_flops", "int8_dense_ops", "fp4_dense_flops", "fp32_flops", "sm_count",
    "nvlink_bytes_per_s", "pcie_bytes_per_s", "link_latency_s", "dram_latency_s", NULL,
};

static const char *const gather_keys[] = {"run_bytes", "efficiency", NULL};

/* A value present but below lo (when nonzero, or always if !zero_ok) is in the wrong unit. */
static int unit_check(const kv_yaml_doc *d, const char *key, double v, double lo, double hi, int zero_ok,
                      const char *hint, kv_err *err)
{
    if ((zero_ok && v == 0) || (v >= lo && v <= hi))
        return 0;
    const kv_yaml_node *n = kv_yaml_get(d->root, key);
    return kv_yaml_errf(d, n->line, n->col, err, "key '%s': %g %s", key, v, hint);
}

static int load_gather(const kv_yaml_doc *d, hw_model *h, kv_err *err)
{
    const kv_yaml_node *seq = kv_yaml_get(d->root, "gather_efficiency");
    if (!seq)
        return kv_yaml_errf(d, 1, 1, err, "missing key 'gather_efficiency'");
    if (seq->kind != KV_YAML_SEQ || seq->n == 0 || seq->n > HW_MAX_RUNS)
        return kv_yaml_errf(d, seq->line, seq->col, err,
                            "key 'gather_efficiency': expected a list of 1 to %d {run_bytes, efficiency} "
                            "entries", HW_MAX_RUNS);
    for (size_t i = 0; i < seq->n; i++) {
        const kv_yaml_node *e = seq->items[i];
        if (e->kind != KV_YAML_MAP)
            return kv_yaml_errf(d, e->line, e->col, err,
                                "gather_efficiency entry %zu: expected {run_bytes: N, efficiency: F}", i + 1);
        int64_t rb = 0;
        double eff = 0;
        if (kv_yaml_check_keys(d, e, gather_keys, err) ||
            kv_yaml_int(d, e, "run_bytes", 1, 1, 1LL << 40, &rb, err) ||
            kv_yaml_num(d, e, "efficiency", 1, 0, 1, 1, &eff, err))
            return -1;
        if (i > 0 && (double)rb <= h->gather_run_bytes[i - 1]) {
            const kv_yaml_node *v = kv_yaml_get(e, "run_bytes");
            return kv_yaml_errf(d, v->line, v->col, err,
                                "key 'run_bytes': %lld is not larger than the previous entry's %.0f; "
                                "gather_efficiency must be in ascending run_bytes", (long long)rb,
                                h->gather_run_bytes[i - 1]);
        }
        h->gather_run_bytes[i] = (double)rb;
        h->gather_efficiency[i] = eff;
    }
    h->n_runs = (int)seq->n;
    return 0;
}

static int load_sources(const kv_yaml_doc *d, const hw_model *h, kv_err *err)
{
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    if (!src)
        return kv_yaml_errf(d, 1, 1, err, "missing key 'sources' (every datasheet figure needs a source)");
    if (src->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, src->line, src->col, err, "key 'sources': expected a mapping of key: source");
    if (kv_yaml_check_keys(d, src, yaml_keys, err) != 0)
        return -1;
    for (int i = 0; sourced_keys[i]; i++) {
        const kv_yaml_node *v = kv_yaml_get(src, sourced_keys[i]);
        if (!v)
            return kv_yaml_errf(d, src->line, src->col, err, "missing key '%s' in 'sources' (every datasheet "
                                "figure needs a source)", sourced_keys[i]);
        if (v->kind != KV_YAML_SCALAR || !v->text[0])
            return kv_yaml_errf(d, v->line, v->col, err, "sources: key '%s': expected a non-empty string",
                                sourced_keys[i]);
    }
    if (h->price_per_hour_usd > 0 && !kv_yaml_get(src, "price_per_hour_usd"))
        return kv_yaml_errf(d, src->line, src->col, err,
                            "missing key 'price_per_hour_usd' in 'sources' (a price needs a source)");
    return 0;
}

static int get_i64(const kv_yaml_doc *d, const char *key, int64_t min, int64_t *out, kv_err *err)
{
    return kv_yaml_int(d, d->root, key, 1, min, INT64_MAX, out, err);
}

static int get_f64(const kv_yaml_doc *d, const char *key, int required, double *out, kv_err *err)
{
    return kv_yaml_num(d, d->root, key, required, 0, 0, INFINITY, out, err);
}

/* The FP8 curve is measured data: both keys together, with a source. */
/* The CUDA-core figures of a per-head decode kernel (hw_cvt_rate): both or neither, each sourced. */
static int cuda_core_sourced(const kv_yaml_doc *d, kv_err *err)
{
    const kv_yaml_node *c = kv_yaml_get(d->root, "sm_clock_hz");
    const kv_yaml_node *v = kv_yaml_get(d->root, "cvt_per_sm_clk");
    if (!c && !v)
        return 0;
    if (!c || !v)
        return kv_yaml_errf(d, (c ? c : v)->line, (c ? c : v)->col, err,
                            "sm_clock_hz and cvt_per_sm_clk go together (both or neither)");
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    if (!src || !kv_yaml_get(src, "sm_clock_hz"))
        return kv_yaml_errf(d, c->line, c->col, err, "sm_clock_hz needs a 'sources' entry (datasheet)");
    if (!kv_yaml_get(src, "cvt_per_sm_clk"))
        return kv_yaml_errf(d, v->line, v->col, err, "cvt_per_sm_clk needs a 'sources' entry (CUDA guide)");
    return 0;
}

static int fp8_gemm_sourced(const kv_yaml_doc *d, kv_err *err)
{
    const kv_yaml_node *e = kv_yaml_get(d->root, "fp8_gemm_efficiency");
    const kv_yaml_node *k = kv_yaml_get(d->root, "fp8_gemm_k_half");
    if (!e && !k) {
        const kv_yaml_node *r = kv_yaml_get(d->root, "fp8_gemm_read_efficiency");
        return r ? kv_yaml_errf(d, r->line, r->col, err,
                                "fp8_gemm_read_efficiency needs the FP8 curve (fp8_gemm_efficiency, fp8_gemm_k_half)")
                 : 0;
    }
    if (!e || !k)
        return kv_yaml_errf(d, (e ? e : k)->line, (e ? e : k)->col, err,
                            "fp8_gemm_efficiency and fp8_gemm_k_half go together (both or neither)");
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    if (!src || !kv_yaml_get(src, "fp8_gemm_efficiency"))
        return kv_yaml_errf(d, e->line, e->col, err, "fp8_gemm_efficiency needs a 'sources' entry (measured data)");
    const kv_yaml_node *r = kv_yaml_get(d->root, "fp8_gemm_read_efficiency");
    if (r && !kv_yaml_get(src, "fp8_gemm_read_efficiency"))
        return kv_yaml_errf(d, r->line, r->col, err,
                            "fp8_gemm_read_efficiency needs a 'sources' entry (measured data)");
    return 0;
}

/* Optional mamf_bf16_flops / mamf_fp8_flops: measured maximum achievable
 * matmul FLOP/s, each with a source, above half and at most the type's dense
 * peak (a figure outside is in another unit or a sparse peak). An engine
 * reaches matmul_share of the best matmul: BF16 products and attention at
 * matmul_share × mamf_bf16 / peak in place of the file's compute_efficiency. */
static int load_mamf(const kv_yaml_doc *d, hw_model *t, kv_err *err)
{
    static const char *const keys[] = {"mamf_bf16_flops", "mamf_fp8_flops"};
    double *const out[] = {&t->mamf_bf16_flops, &t->mamf_fp8_flops};
    const double peak[] = {t->bf16_dense_flops, t->fp8_dense_flops};
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    for (int i = 0; i < 2; i++) {
        if (kv_yaml_num(d, d->root, keys[i], 0, 0, 0, INFINITY, out[i], err) != 0)
            return -1;
        const kv_yaml_node *n = kv_yaml_get(d->root, keys[i]);
        if (!n)
            continue;
        if (!(*out[i] > 0.5 * peak[i] && *out[i] <= peak[i]))
            return kv_yaml_errf(d, n->line, n->col, err,
                                "key '%s': %g is not above half of and at most the dense peak %g (FLOP/s)", keys[i],
                                *out[i], peak[i]);
        if (!src || !kv_yaml_get(src, keys[i]))
            return kv_yaml_errf(d, n->line, n->col, err, "%s needs a 'sources' entry (measured data)", keys[i]);
    }
    t->matmul_share = t->compute_efficiency / HW_MAMF_REF_SHARE;
    if (t->mamf_bf16_flops > 0.0) /* on the reference part itself the ratio is exactly 1 */
        t->compute_efficiency *= (t->mamf_bf16_flops / t->bf16_dense_flops) / HW_MAMF_REF_SHARE;
    return 0;
}

/* Optional nvlink_topology: "switch" (every pair linked, the default) or
 * "hybrid-cube-mesh" (8 GPUs with 4 NVLink neighbours each); given, it needs
 * a source. */
static int load_topology(const kv_yaml_doc *d, hw_model *h, kv_err *err)
{
    char v[32] = "";
    if (kv_yaml_str(d, d->root, "nvlink_topology", 0, v, sizeof v, err) != 0)
        return -1;
    const kv_yaml_node *n = kv_yaml_get(d->root, "nvlink_topology");
    if (!n)
        return 0;
    if (strcmp(v, "switch") && strcmp(v, "hybrid-cube-mesh"))
        return kv_yaml_errf(d, n->line, n->col, err,
                            "key 'nvlink_topology': '%s' (expected switch or hybrid-cube-mesh)", v);
    const kv_yaml_node *src = kv_yaml_get(d->root, "sources");
    if (!src || !kv_yaml_get(src, "nvlink_topology"))
        return kv_yaml_errf(d, n->line, n->col, err, "nvlink_topology needs a 'sources' entry");
    h->nvlink_hcm = !strcmp(v, "hybrid-cube-mesh");
    return 0;
}

/* Reads every key of the schema, then checks each figure's unit, one line
 * per key in file order: a list of fields, kept as one so a new key is one
 * line in each half. */
int hw_model_load(const char *name_or_path, hw_model *h, kv_err *err)
{
    char path[512];
    if (kv_data_find("hwmodels", KVSIM_DATADIR, name_or_path, "hardware model", hw_names, path, sizeof path, err))
        return -1;
    kv_yaml_doc d;
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    hw_model t;
    memset(&t, 0, sizeof t);
    kv_path_stem(path, t.name, sizeof t.name);
    snprintf(t.path, sizeof t.path, "%s", path);
    int64_t sm = 0;
    int rc = kv_yaml_check_keys(&d, d.root, yaml_keys, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "vendor_name", 1, t.vendor_name, sizeof t.vendor_name, err);
    rc = rc ? rc : get_i64(&d, "hbm_capacity_bytes", 1, &t.hbm_capacity_bytes, err);
    rc = rc ? rc : get_i64(&d, "device_total_bytes", 1, &t.device_total_bytes, err);
    rc = rc ? rc : kv_yaml_int(&d, d.root, "context_bytes", 1, 0, INT64_MAX, &t.context_bytes, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "hbm_bandwidth_bytes_per_s", 1, 0, 1, INFINITY,
                               &t.hbm_bandwidth_bytes_per_s, err);
    rc = rc ? rc : get_i64(&d, "l2_bytes", 1, &t.l2_bytes, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "bf16_dense_flops", 1, 0, 1, INFINITY, &t.bf16_dense_flops, err);
    rc = rc ? rc : get_f64(&d, "fp8_dense_flops", 1, &t.fp8_dense_flops, err);
    rc = rc ? rc : get_f64(&d, "int8_dense_ops", 1, &t.int8_dense_ops, err);
    rc = rc ? rc : get_f64(&d, "fp4_dense_flops", 1, &t.fp4_dense_flops, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "fp32_flops", 1, 0, 1, INFINITY, &t.fp32_flops, err);
    rc = rc ? rc : kv_yaml_int(&d, d.root, "sm_count", 1, 1, INT_MAX, &sm, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "interconnect", 1, t.interconnect, sizeof t.interconnect, err);
    rc = rc ? rc : get_f64(&d, "nvlink_bytes_per_s", 1, &t.nvlink_bytes_per_s, err);
    rc = rc ? rc : load_topology(&d, &t, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "pcie_bytes_per_s", 1, 0, 1, INFINITY, &t.pcie_bytes_per_s, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "link_latency_s", 1, 0, 1, INFINITY, &t.link_latency_s, err);
    rc = rc ? rc : get_f64(&d, "price_per_hour_usd", 0, &t.price_per_hour_usd, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "stream_read_efficiency", 1, 0, 1, 1, &t.stream_read_efficiency, err);
    rc = rc ? rc : load_gather(&d, &t, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "compute_efficiency", 1, 0, 1, 1, &t.compute_efficiency, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "launch_s", 1, 0, 1, INFINITY, &t.launch_s, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "launch_graph_s", 1, 0, 1, INFINITY, &t.launch_graph_s, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "allreduce_latency_s", 1, 0, 1, INFINITY, &t.allreduce_latency_s, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "dram_latency_s", 1, 0, 1, INFINITY, &t.dram_latency_s, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "fp8_gemm_efficiency", 0, 0, 1, 1, &t.fp8_gemm_efficiency, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "fp8_gemm_k_half", 0, 0, 0, 1e6, &t.fp8_gemm_k_half, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "fp8_gemm_read_efficiency", 0, 0, 1, 1, &t.fp8_gemm_read_efficiency,
                               err);
    rc = rc ? rc : fp8_gemm_sourced(&d, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "sm_clock_hz", 0, 1e8, 0, 1e10, &t.sm_clock_hz, err);
    rc = rc ? rc : kv_yaml_num(&d, d.root, "cvt_per_sm_clk", 0, 1, 0, 1024, &t.cvt_per_sm_clk, err);
    rc = rc ? rc : cuda_core_sourced(&d, err);
    rc = rc ? rc : load_mamf(&d, &t, err);
    rc = rc ? rc : kv_yaml_str(&d, d.root, "efficiency_source", 1, t.efficiency_source,
                               sizeof t.efficiency_source, err);
    t.sm_count = (int)sm;
    /* Unit sanity: each figure must be within a range no real part leaves. */
    rc = rc ? rc : unit_check(&d, "hbm_capacity_bytes", (double)t.hbm_capacity_bytes, 1e9, 1e13, 0,
                              "looks like GB or GiB, expected bytes (e.g. 80e9)", err);
    /* the device reports binary memory: a little above the decimal label, never far from it */
    rc = rc ? rc : unit_check(&d, "device_total_bytes", (double)t.device_total_bytes,
                              0.9 * (double)t.hbm_capacity_bytes, 1.15 * (double)t.hbm_capacity_bytes, 0,
                              "is not within 90%..115% of hbm_capacity_bytes; expected bytes", err);
    rc = rc ? rc : unit_check(&d, "context_bytes", (double)t.context_bytes, 0,
                              0.05 * (double)t.device_total_bytes, 1,
                              "is more than 5% of device_total_bytes; expected bytes (e.g. 654982512)", err);
    rc = rc ? rc : unit_check(&d, "int8_dense_ops", t.int8_dense_ops, 1e12, 1e17, 1,
                              "looks like TOP/s, expected op/s (0 = no INT8 tensor cores)", err);
    rc = rc ? rc : unit_check(&d, "fp4_dense_flops", t.fp4_dense_flops, 1e12, 1e17, 1,
                              "looks like TFLOP/s, expected FLOP/s (0 = no FP4)", err);
    rc = rc ? rc : unit_check(&d, "pcie_bytes_per_s", t.pcie_bytes_per_s, 1e9, 1e12, 0,
                              "looks like GB/s, expected bytes/s (e.g. 64e9)", err);
    rc = rc ? rc : unit_check(&d, "link_latency_s", t.link_latency_s, 0, 1e-3, 0,
                              "looks like microseconds, expected seconds (e.g. 2e-6)", err);
    rc = rc ? rc : unit_check(&d, "dram_latency_s", t.dram_latency_s, 0, 1e-5, 0,
                              "looks like nanoseconds, expected seconds (e.g. 6e-7)", err);
    rc = rc ? rc : unit_check(&d, "hbm_bandwidth_bytes_per_s", t.hbm_bandwidth_bytes_per_s, 1e11, 1e14, 0,
                              "looks like GB/s or TB/s, expected bytes/s (e.g. 3.35e12)", err);
    rc = rc ? rc : unit_check(&d, "l2_bytes", (double)t.l2_bytes, 1e6, 1e10, 0,
                              "looks like MB or KB, expected bytes (e.g. 52428800)", err);
    rc = rc ? rc : unit_check(&d, "bf16_dense_flops", t.bf16_dense_flops, 1e12, 1e17, 0,
                              "looks like TFLOP/s, expected FLOP/s (e.g. 989.4e12)", err);
    rc = rc ? rc : unit_check(&d, "fp8_dense_flops", t.fp8_dense_flops, 1e12, 1e17, 1,
                              "looks like TFLOP/s, expected FLOP/s (0 = no FP8)", err);
    rc = rc ? rc : unit_check(&d, "fp32_flops", t.fp32_flops, 1e12, 1e17, 0,
                              "looks like TFLOP/s, expected FLOP/s (e.g. 66.9e12)", err);
    rc = rc ? rc : unit_check(&d, "nvlink_bytes_per_s", t.nvlink_bytes_per_s, 1e9, 1e14, 1,
                              "looks like GB/s, expected bytes/s (0 = none)", err);
    rc = rc ? rc : unit_check(&d, "launch_s", t.launch_s, 0, 1e-3, 0,
                              "looks like microseconds, expected seconds (e.g. 5e-6)", err);
    rc = rc ? rc : unit_check(&d, "launch_graph_s", t.launch_graph_s, 0, 1e-3, 0,
                              "looks like microseconds, expected seconds (e.g. 3e-6)", err);
    rc = rc ? rc : unit_check(&d, "allreduce_latency_s", t.allreduce_latency_s, 0, 1e-2, 0,
                              "looks like microseconds, expected seconds (e.g. 8e-6)", err);
    if (!rc && t.fp8_dense_flops > 2.2 * t.bf16_dense_flops)
        rc = unit_check(&d, "fp8_dense_flops", t.fp8_dense_flops, 0, 0, 0,
                        "is more than twice bf16_dense_flops: a with-sparsity figure? use dense figures", err);
    rc = rc ? rc : load_sources(&d, &t, err);
    t.usable_capacity_bytes = t.device_total_bytes - t.context_bytes;
    kv_yaml_free(&d);
    if (rc == 0)
        *h = t;
    return rc;
}

/* Log-linear in run length between table entries; clamped below the first;
 * at or beyond the last entry, long runs stream. */
double hw_bandwidth_efficiency(const hw_model *h, double run_bytes)
{
    int n = h->n_runs;
    if (n <= 0 || run_bytes >= h->gather_run_bytes[n - 1])
        return h->stream_read_efficiency;
    if (run_bytes <= h->gather_run_bytes[0])
        return h->gather_efficiency[0];
    int i = 0;
    while (i + 1 < n && h->gather_run_bytes[i + 1] <= run_bytes)
        i++;
    double x0 = log(h->gather_run_bytes[i]), x1 = log(h->gather_run_bytes[i + 1]);
    double t = (log(run_bytes) - x0) / (x1 - x0);
    return h->gather_efficiency[i] + t * (h->gather_efficiency[i + 1] - h->gather_efficiency[i]);
}

double hw_peak_flops(const hw_model *h, hw_dtype dt)
{
    switch (dt) {
    case HW_DT_FP4:
        if (h->fp4_dense_flops > 0.0) return h->fp4_dense_flops;
        /* kernels upcast to the next type the part has */
        return h->fp8_dense_flops > 0.0 ? h->fp8_dense_flops : h->bf16_dense_flops;
    case HW_DT_FP8:
        return h->fp8_dense_flops > 0.0 ? h->fp8_dense_flops : h->bf16_dense_flops;
    case HW_DT_INT8:
        return h->int8_dense_ops > 0.0 ? h->int8_dense_ops : h->bf16_dense_flops;
    case HW_DT_FP32:
        return h->fp32_flops;
    case HW_DT_BF16:
    default:
        return h->bf16_dense_flops;
    }
}

double hw_transfer_efficiency(const hw_model *h, double bytes)
{
    if (bytes <= 0.0)
        return 1.0;
    return bytes / (bytes + h->hbm_bandwidth_bytes_per_s * h->dram_latency_s);
}

/* 128 × 128 output tiles, one per SM per wave (NVIDIA, "Matrix Multiplication
 * Background User's Guide": tile and wave quantization). Skinny products
 * (m < 128, decode) run narrower tiles and split K, so neither rule applies
 * below one full tile row. */
static double tile_wave_q(const hw_model *h, double m, double n)
{
    if (m < 128.0 || n <= 0.0)
        return 1.0;
    const double tm = ceil(m / 128.0), tn = ceil(n / 128.0), tiles = tm * tn;
    const double tile_q = (m * n) / (tm * 128.0 * tn * 128.0);
    const double waves = ceil(tiles / (double)h->sm_count);
    const double wave_q = tiles / (waves * (double)h->sm_count);
    return tile_q * wave_q;
}

double hw_gemm_efficiency(const hw_model *h, double m, double n)
{
    return h->compute_efficiency * tile_wave_q(h, m, n);
}

/* The measured FP8 curve: each output tile pays a fixed cost (pipeline
 * fill, scale promotion, epilogue) worth k_half reduction steps, so a product
 * of depth k runs at e·k / (k + k_half) before tile and wave quantization
 * (fit to DeepGEMM's table: hwmodels/README.md). */
double hw_fp8_gemm_best(const hw_model *h, double m, double n, double k)
{
    if (h->fp8_gemm_efficiency <= 0.0 || h->fp8_dense_flops <= 0.0)
        return 0.0;
    const double depth = k > 0.0 ? k / (k + h->fp8_gemm_k_half) : 1.0;
    return h->fp8_gemm_efficiency * depth * tile_wave_q(h, m, n);
}

/* An engine's FP8 products reach matmul_share of the best FP8 matmul: the
 * curve where the part has one, else its measured MAMF; other types (and
 * FP8 on a part with neither) run at compute_efficiency by shape. */
double hw_gemm_efficiency_dt(const hw_model *h, hw_dtype dt, double m, double n, double k)
{
    if (dt != HW_DT_FP8 || h->fp8_dense_flops <= 0.0)
        return hw_gemm_efficiency(h, m, n);
    if (h->fp8_gemm_efficiency > 0.0)
        return h->matmul_share * hw_fp8_gemm_best(h, m, n, k);
    if (h->mamf_fp8_flops > 0.0)
        return h->matmul_share * (h->mamf_fp8_flops / h->fp8_dense_flops) * tile_wave_q(h, m, n);
    return hw_gemm_efficiency(h, m, n);
}

/* DeepGEMM's M = 64 / 128 rows (hwmodels/README.md) stream their FP8 weights
 * at 45-80% of HBM peak, below a plain streaming read: a tile's operands
 * arrive through a pipeline of TMA loads that few rows of work cannot keep
 * full. */
double hw_gemm_read_efficiency(const hw_model *h, hw_dtype dt)
{
    if (dt == HW_DT_FP8 && h->fp8_gemm_read_efficiency > 0.0 && h->fp8_dense_flops > 0.0)
        return h->fp8_gemm_read_efficiency;
    return h->stream_read_efficiency;
}

double hw_collective_link_bytes_per_s(const hw_model *h)
{
    return h->nvlink_bytes_per_s > 0.0 ? h->nvlink_bytes_per_s : h->pcie_bytes_per_s * HW_NCCL_PCIE_SHARE;
}

/* ---- calibration from reports/gpu/ ---- */
static int cal_num(const kv_jsonr_doc *d, const kv_jsonr_node *obj, const char *key, int required,
                   double lo, double hi, const char *what, double *out, kv_err *err)
{
    const kv_jsonr_node *v = kv_jsonr_get(obj, key);
    if (!v || v->kind == KV_JSONR_NULL) {
        if (required)
            return kv_errf(err, "%s:%d:%d: missing key '%s'", d->path, obj->line, obj->col, key);
        return 1;
    }
    if (v->kind != KV_JSONR_NUM || !(v->num > lo) || v->num > hi)
        return kv_errf(err, "%s:%d:%d: key '%s': expected %s, got %s%s", d->path, v->line, v->col, key, what,
                       v->kind == KV_JSONR_NUM ? v->str : kv_jsonr_kind_name(v->kind),
                       v->kind == KV_JSONR_NUM && v->num > hi ? " (more than the datasheet figure: "
                       "an L2-resident measurement?)" : "");
    *out = v->num;
    return 0;
}

int hw_model_apply_calibration(hw_model *h, const char *json_path, kv_err *err)
{
    kv_jsonr_doc d;
    if (kv_jsonr_load_file(&d, json_path, err) != 0)
        return -1;
    hw_model t = *h;
    const kv_jsonr_node *root = d.root;
    double bw = h->hbm_bandwidth_bytes_per_s, x = 0;
    char what[128];
    snprintf(what, sizeof what, "bytes/s in (1e9, %g] (the datasheet bandwidth)", bw);
    int rc = root->kind == KV_JSONR_OBJ ? 0
             : kv_errf(err, "%s:%d:%d: expected a JSON object", d.path, root->line, root->col);
    rc = rc ? rc : cal_num(&d, root, "stream_read_bytes_per_s", 1, 1e9, bw, what, &x, err);
    if (!rc)
        t.stream_read_efficiency = x / bw;
    const kv_jsonr_node *g = rc ? NULL : kv_jsonr_get(root, "gather");
    if (g && g->kind != KV_JSONR_NULL) {
        if (g->kind != KV_JSONR_ARR || g->n == 0 || g->n > HW_MAX_RUNS)
            rc = kv_errf(err, "%s:%d:%d: key 'gather': expected an array of 1 to %d {run_bytes, bytes_per_s}",
                         d.path, g->line, g->col, HW_MAX_RUNS);
        for (size_t i = 0; !rc && i < g->n; i++) {
            const kv_jsonr_node *e = g->items[i];
            double rb = 0, b = 0;
            if (e->kind != KV_JSONR_OBJ) {
                rc = kv_errf(err, "%s:%d:%d: gather entry %zu: expected {run_bytes, bytes_per_s}", d.path,
                             e->line, e->col, i + 1);
                break;
            }
            rc = cal_num(&d, e, "run_bytes", 1, 0, 1099511627776.0, "a positive byte count", &rb, err);
            rc = rc ? rc : cal_num(&d, e, "bytes_per_s", 1, 1e9, bw, what, &b, err);
            if (!rc && i > 0 && rb <= t.gather_run_bytes[i - 1])
                rc = kv_errf(err, "%s:%d:%d: gather entry %zu: run_bytes %.0f is not larger than the previous "
                             "entry's %.0f; the table must be ascending", d.path, e->line, e->col, i + 1, rb,
                             t.gather_run_bytes[i - 1]);
            if (!rc) {
                t.gather_run_bytes[i] = rb;
                t.gather_efficiency[i] = b / bw;
            }
        }
        if (!rc)
            t.n_runs = (int)g->n;
    }
    const struct { const char *key; double hi; const char *what; double *dst; } opt[] = {
        {"launch_s", 1e-3, "seconds in (0, 1e-3]", &t.launch_s},
        {"launch_graph_s", 1e-3, "seconds in (0, 1e-3]", &t.launch_graph_s},
        {"usable_capacity_bytes", (double)h->device_total_bytes,
         "bytes, at most 110% of hbm_capacity_bytes", NULL},
    };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0] && !rc; i++) {
        int r = cal_num(&d, root, opt[i].key, 0, opt[i].dst ? 0 : 1e9, opt[i].hi, opt[i].what, &x, err);
        if (r < 0)
            rc = -1;
        else if (r == 0 && opt[i].dst)
            *opt[i].dst = x;
        else if (r == 0)
            t.usable_capacity_bytes = (int64_t)x;
    }
    const kv_jsonr_node *dev = kv_jsonr_get(root, "device");
    snprintf(t.calibration_device, sizeof t.calibration_device, "%s",
             dev && dev->kind == KV_JSONR_STR ? dev->str : "");
    if (!rc) {
        snprintf(t.efficiency_source, sizeof t.efficiency_source, "measured: %.200s", json_path);
        snprintf(t.calibration, sizeof t.calibration, "%s", json_path);
        *h = t;
    }
    kv_jsonr_free(&d);
    return rc;
}

/* Lower-cases s into out, separators as spaces, with a space at both ends so
 * that " word " finds whole words. */
static void dev_norm(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = ' ';
    for (; *s && n + 2 < cap; s++)
        out[n++] = (*s == '-' || *s == '_') ? ' ' : (char)tolower((unsigned char)*s);
    out[n++] = ' ';
    out[n] = '\0';
}

/* The memory size written as <digits>g / <digits>gb in s (0: none). */
static long dev_gb(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p == ' ' && isdigit((unsigned char)p[1])) {
            char *end;
            long v = strtol(p + 1, &end, 10);
            if (*end == 'g' && (end[1] == ' ' || (end[1] == 'b' && end[2] == ' ')))
                return v;
        }
    return 0;
}

int hw_device_matches(const hw_model *h, const char *device)
{
    char name[96], dev[256], fam[64];
    dev_norm(h->name, name, sizeof name);
    dev_norm(device, dev, sizeof dev);
    const char *sp = strchr(name + 1, ' ');
    snprintf(fam, sizeof fam, "%.*s", (int)(sp - name - 1), name + 1);
    if (!fam[0] || !strstr(dev, fam))
        return 0;
    static const char *const variants[] = {" pcie ", " nvl "};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (!strstr(name, variants[i]) != !strstr(dev, variants[i]))
            return 0;
    const long a = dev_gb(name), b = dev_gb(dev);
    return !(a && b && a != b);
}

int hw_calibration_check(const hw_model *h, kv_err *err)
{
    if (!h->calibration[0])
        return 0;
    if (!h->calibration_device[0])
        return kv_errf(err, "%s: the calibration does not say which device it was measured on (key 'device'); "
                       "--calibration-any applies it to %s anyway", h->calibration, h->name);
    if (!hw_device_matches(h, h->calibration_device))
        return kv_errf(err, "%s: measured on '%s', not on %s (%s); --calibration-any applies it anyway",
                       h->calibration, h->calibration_device, h->name, h->vendor_name);
    return 0;
}

double hw_cvt_rate(const hw_model *h)
{
    return (double)h->sm_count * h->sm_clock_hz * h->cvt_per_sm_clk;
}
