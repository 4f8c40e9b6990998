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

/* The A100 SXM's maximum achievable matmul throughput (MAMF) as a share of
 * its dense BF16 peak: 271.2 of 312 TFLOPS (github.com/stas00/ml-engineering,
 * compute/accelerator/README.md, "Maximum Achievable Matmul FLOPS comparison
 * table", BF16). A file's compute_efficiency is the share of dense peak an
 * engine's products reach on a part whose best matmul reaches this share (the
 * A100, where the 0.7 the files carry is checked: validation/README.md), so
 * an engine reaches compute_efficiency / HW_MAMF_REF_SHARE of a part's best
 * matmul (hw_model.matmul_share), whatever that part's best is. */
#define HW_MAMF_REF_SHARE (271.2e12 / 312e12)

typedef struct {
    char name[64];
    char path[512];
    char vendor_name[128];           /* "NVIDIA H100 SXM5 80GB" */
    int64_t hbm_capacity_bytes;      /* as the vendor states it (decimal label: "80GB" = 80e9) */
    int64_t device_total_bytes;      /* what the device reports to CUDA (cudaMemGetInfo total, deviceQuery's
                                        totalGlobalMem): binary, e.g. 81106 MiB on an H100 80GB */
    int64_t context_bytes;           /* CUDA context + libraries, taken before an engine measures memory */
    int64_t usable_capacity_bytes;   /* device_total_bytes − context_bytes (derived; calibration may replace) */
    double hbm_bandwidth_bytes_per_s;
    int64_t l2_bytes;
    double bf16_dense_flops;
    double fp8_dense_flops;          /* 0: no FP8 */
    double int8_dense_ops;           /* INT8 tensor-core peak, dense; 0: none */
    double fp4_dense_flops;          /* FP4 tensor-core peak, dense; 0: none */
    double fp32_flops;
    int sm_count;
    char interconnect[64];           /* "NVLink 4", "PCIe Gen4 x16", "Infinity Fabric" */
    double nvlink_bytes_per_s;       /* per GPU, one direction; 0 = none */
    int nvlink_hcm;                  /* optional nvlink_topology: 1 = hybrid cube mesh (8 GPUs, 4 NVLink neighbours
                                        each), 0 = every pair linked (NVSwitch, or 2-4 fully connected GPUs) */
    double pcie_bytes_per_s;         /* host link, one direction (the all-reduce path without NVLink) */
    double link_latency_s;           /* per step of a ring or tree all-reduce (alpha) */
    double price_per_hour_usd;       /* 0 = unknown */
    /* efficiency, as data */
    double stream_read_efficiency;   /* fraction of hbm_bandwidth for long streaming reads */
    int n_runs;                      /* gather efficiency table */
    double gather_run_bytes[HW_MAX_RUNS];   /* ascending, 256 .. 65536 */
    double gather_efficiency[HW_MAX_RUNS];  /* fraction of hbm_bandwidth */
    double compute_efficiency;       /* fraction of dense peak reachable (BF16 products, attention): the file's
                                        figure, or, where mamf_bf16_flops is given, matmul_share × that / peak */
    double mamf_bf16_flops;          /* optional: maximum achievable BF16 matmul FLOP/s, measured; 0 = not given */
    double mamf_fp8_flops;           /* optional: the same in FP8 (used where no FP8 curve is given); 0 = not given */
    double matmul_share;             /* derived: share of the best achievable matmul an engine's products reach,
                                        the file's compute_efficiency / HW_MAMF_REF_SHARE */
    double launch_s;                 /* per kernel, plain launches */
    double launch_graph_s;           /* per kernel inside a CUDA graph */
    double allreduce_latency_s;      /* per all-reduce, fixed part (launch and synchronisation) */
    double dram_latency_s;           /* DRAM latency: a kernel moving B bytes streams at B / (B + bw·latency)
                                        of its long-read rate (the bytes in flight it needs to fill the pipe) */
    double fp8_gemm_efficiency;      /* optional: FP8 GEMM share of fp8 peak at unbounded depth; 0 = compute_efficiency */
    double fp8_gemm_k_half;          /* optional: reduction depth (elements) at which an FP8 GEMM reaches half of it */
    double fp8_gemm_read_efficiency; /* optional: fraction of hbm_bandwidth an FP8 GEMM reaches reading its operands
                                        (memory-bound, few rows); 0 = stream_read_efficiency */
    double sm_clock_hz;              /* optional: SM boost clock, Hz (datasheet); 0 = not given */
    double cvt_per_sm_clk;           /* optional: type conversions per SM per clock ("all other type conversions"
                                        of the CUDA guide's arithmetic-throughput table); 0 = not given */
    char efficiency_source[256];
    char calibration[512];           /* reports/gpu JSON applied by hw_model_apply_calibration, or "" */
    char calibration_device[128];    /* the "device" that calibration was measured on (CUDA's name), or "" */
} hw_model;

int hw_model_load(const char *name_or_path, hw_model *h, kv_err *err);
/* Type conversions per second over the device: sm_count × sm_clock_hz × cvt_per_sm_clk; 0 when the
 * file does not give them. */
double hw_cvt_rate(const hw_model *h);

/* Compute types a kernel's multiply-adds can run in (which peak applies). */
typedef enum { HW_DT_BF16, HW_DT_FP8, HW_DT_INT8, HW_DT_FP4, HW_DT_FP32 } hw_dtype;
/* Dense peak for dt; a type the part lacks falls back to the next wider one
 * it has (fp4 → fp8 → bf16; int8 → bf16), the way kernels upcast. */
double hw_peak_flops(const hw_model *h, hw_dtype dt);
/* Fraction of the long-read rate reached by a kernel moving `bytes`:
 * bytes / (bytes + hbm_bandwidth · dram_latency_s). */
double hw_transfer_efficiency(const hw_model *h, double bytes);
/* Fraction of dense peak a GEMM of m rows (tokens) × n columns reaches:
 * compute_efficiency × tile quantization (m, n rounded up to 128 × 128 tiles)
 * × wave quantization (tiles over sm_count). */
double hw_gemm_efficiency(const hw_model *h, double m, double n);
/* The best FP8 kernel's share of the FP8 peak at depth k (the measured curve,
 * before an engine's share): fp8_gemm_efficiency · k / (k + fp8_gemm_k_half)
 * × tile and wave quantization; 0 when the part has no FP8 curve. */
double hw_fp8_gemm_best(const hw_model *h, double m, double n, double k);
/* What an engine's product of depth k in type dt reaches: FP8 on a part with
 * the FP8 curve, matmul_share × hw_fp8_gemm_best; FP8 on a part with
 * mamf_fp8_flops, matmul_share × mamf_fp8_flops / fp8 peak × tile and wave
 * quantization; every other case hw_gemm_efficiency. */
double hw_gemm_efficiency_dt(const hw_model *h, hw_dtype dt, double m, double n, double k);
/* Fraction of hbm_bandwidth a GEMM in type dt reaches on its operand
 * traffic: fp8_gemm_read_efficiency for FP8 on a part that has it, else
 * stream_read_efficiency (before hw_transfer_efficiency). */
double hw_gemm_read_efficiency(const hw_model *h, hw_dtype dt);
/* NCCL's model of a PCIe link (NVIDIA/nccl src/graph/topo.cc ncclTopoAddPci:
 * width × per-lane rate / 80 GB/s with 16 GT/s → 120 (× 100 Mb/s per lane),
 * i.e. 24 GB/s for Gen4 x16 and 48 for Gen5 x16: 0.75 of the raw per-direction
 * rate, the 128b/130b encoding and TLP overhead included). */
#define HW_NCCL_PCIE_SHARE 0.75
/* Bytes/s one direction a collective moves per GPU: NVLink where the part has
 * it, else the PCIe link at NCCL's share (HW_NCCL_PCIE_SHARE). */
double hw_collective_link_bytes_per_s(const hw_model *h);
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
