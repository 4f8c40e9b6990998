/* hw.h — hardware models: one YAML file per GPU under hwmodels/, datasheet
 * figures with their sources (dense figures only, never with-sparsity), the
 * usable capacity a CUDA context leaves, and efficiency as data: achievable
 * bandwidth fraction for streaming reads and for gathers as a function of
 * contiguous run length, achievable compute fraction, launch cost with and
 * without CUDA graphs. Strict loader: file:line:col on any unknown, missing
 * or ill-typed key, and sanity checks that flag numbers in the wrong unit.
 *
 * It knows nothing about models or methods; sim/ combines them. */
#ifndef HW_H
#define HW_H

#include <stdint.h>
#include "kv_common.h"

#define HW_MAX_RUNS 16

typedef struct {
    char name[64];
    char path[512];
    char vendor_name[128];           /* "NVIDIA H100 SXM5 80GB" */
    int64_t hbm_capacity_bytes;      /* as the vendor states it */
    int64_t usable_capacity_bytes;   /* what a CUDA context leaves */
    double hbm_bandwidth_bytes_per_s;
    int64_t l2_bytes;
    double bf16_dense_flops;
    double fp8_dense_flops;
    double fp32_flops;
    int sm_count;
    double nvlink_bytes_per_s;       /* per GPU, one direction; 0 = none */
    double price_per_hour_usd;       /* 0 = unknown */
    /* efficiency, as data */
    double stream_read_efficiency;   /* fraction of hbm_bandwidth for long streaming reads */
    int n_runs;                      /* gather efficiency table */
    double gather_run_bytes[HW_MAX_RUNS];   /* ascending, 256 .. 65536 */
    double gather_efficiency[HW_MAX_RUNS];  /* fraction of hbm_bandwidth */
    double compute_efficiency;       /* fraction of dense peak reachable */
    double launch_s;                 /* per kernel, plain launches */
    double launch_graph_s;           /* per kernel inside a CUDA graph */
    double allreduce_latency_s;      /* per all-reduce, fixed part */
    char efficiency_source[256];
    char calibration[512];           /* reports/gpu JSON applied by hw_model_apply_calibration, or "" */
    char calibration_device[128];    /* the "device" that calibration was measured on (CUDA's name), or "" */
} hw_model;

int hw_model_load(const char *name_or_path, hw_model *h, kv_err *err);
const char *const *hw_model_names(void);
/* Bandwidth efficiency for reads made of contiguous runs of run_bytes
 * (log-linear interpolation in the table, clamped at its ends; runs at least
 * as long as the table's last entry get stream_read_efficiency). */
double hw_bandwidth_efficiency(const hw_model *h, double run_bytes);

/* Replaces the efficiency figures with measured ones from a reports/gpu/
 * JSON file (schema in hwmodels/README.md: stream_read_bytes_per_s required;
 * gather [{run_bytes, bytes_per_s}], launch_s, launch_graph_s,
 * usable_capacity_bytes optional; other keys ignored). Bandwidths become
 * fractions of hbm_bandwidth_bytes_per_s. All or nothing: on error h is
 * left as it was. */
int hw_model_apply_calibration(hw_model *h, const char *json_path, kv_err *err);

/* 1 when a CUDA device name ("NVIDIA H100 80GB HBM3") names the GPU of this
 * model: the family (the name up to its first '-': h100, a100, l40s...) is in
 * it, PCIe and NVL variants agree, and a memory size in both (a100-40g, "40GB")
 * agrees. Case and the separators ' ', '-', '_' do not matter. */
int hw_device_matches(const hw_model *h, const char *device);
/* After hw_model_apply_calibration: refuses (-1, one line) a calibration that
 * does not name its device or was measured on another device than h. */
int hw_calibration_check(const hw_model *h, kv_err *err);

#endif
