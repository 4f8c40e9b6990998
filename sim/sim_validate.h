/* sim_validate.h — predicted vs measured: reads a GPU report written by
 * cuda/gpu_check (`reports/gpu/<device>-<date>.json`, schema in cuda/NOTES.md)
 * and prices every timed point with the sim twice, with the hardware model's
 * own efficiency figures and calibrated from the same report's probes
 * (hw_model_apply_calibration). `kvsim validate` prints the result.
 *
 * What is compared: every timing of gpu_check is ONE layer of a model's
 * attention side (all KV heads, batch B) at a fixed cache size C. Each timing
 * carries its own shape (kv_heads, group, head_dim) and, optionally, the
 * bundled model it is one layer of ("model"; absent: the caller's model, so
 * reports written before the key existed read as before); rows of several
 * shapes are priced each with its own model (gpu_check times dense at G = 8
 * as one layer of llama3.1-70b beside the llama3.1-8b matrix). The sim is
 * asked for the decode step whose cache holds exactly that C (the analytic
 * source pinned to that step), and its per-layer kernel times are summed over
 * the kernels the measured graph ran:
 * (by the method's traits, refimpl/rkv.h: a dense method, or a stage-2 one
 * such as rocketkv; the report's other methods are refused):
 *   dense     step, step_rif4, step_v2, step_v3, step_v4, step_v5   attn_dense
 *   stage 2   step, step_v1, step_v3, step_v4, step_v5 kv_append + aux_score + topk + attn_sparse
 *             pages_update                             kv_append
 *             score, score_v2                          aux_score
 *             score_v3 (folds the token too)           kv_append + aux_score
 *             select, select_v1, select_v3, select_v4  topk
 *             sparse_attend, sparse_attend_v3, _v4     attn_sparse
 *             stage1, stage1_v2 (select v2) (with stage 1)   the sim's whole stage 1 per layer
 *                                      (incl. its page build)
 * "End to end" is the measured `step` graph (the whole attention step of a
 * layer); the report holds no whole-model step. Speedup = full `step` /
 * rocketkv `step` at the same (model, context, batch), measured and
 * predicted; step_v5 also against the full step_v4 (the newest dense
 * kernel). The fixed matrix counts the caller's model's rows only.
 * Error % = 100·(predicted − measured)/measured.
 *
 * It deliberately does not judge (no pass/fail threshold) and never invents
 * a figure: a point missing from the report is listed as missing. */
#ifndef SIM_VALIDATE_H
#define SIM_VALIDATE_H

#include <stdint.h>
#include "sim.h"

typedef struct {
    char what[32], method[32];
    char model[64];              /* the bundled model the row is one layer of (its "model", or the caller's) */
    int64_t kv_heads, group, head_dim; /* the row's shape, equal to that model's */
    int64_t context, budget, batch, cache_tokens;
    double measured_s;           /* median */
    double pred_s, pred_cal_s;   /* sim, one layer: default efficiencies / calibrated */
    double err_pct, err_cal_pct;
} sim_validate_row;

typedef struct {
    char what[32];               /* the rocketkv step variant: "step", "step_v1", ... "step_v5" */
    char base[32];               /* the full step it is divided into: "step", or "step_v4" (for step_v5) */
    char model[64];              /* both steps' model */
    int64_t context, budget, batch;
    double measured, pred, pred_cal;   /* speedup = full step / rocketkv step */
    double err_pct, err_cal_pct;
} sim_validate_speedup;

#define SIM_VALIDATE_MAX_MODELS 8 /* distinct models in one report */

/* The fixed matrix of issue 5: contexts × budgets × batches, dense and rocketkv. */
#define SIM_VALIDATE_METHOD "rocketkv" /* the compressed method of the matrix (the GPU check times it) */
#define SIM_VALIDATE_NCTX 3
#define SIM_VALIDATE_NBUDGET 3
#define SIM_VALIDATE_NBATCH 2
extern const int64_t sim_validate_contexts[SIM_VALIDATE_NCTX];
extern const int64_t sim_validate_budgets[SIM_VALIDATE_NBUDGET];
extern const int64_t sim_validate_batches[SIM_VALIDATE_NBATCH];

typedef struct {
    char path[512];
    char device[128], date[64];
    int all_checks_pass;
    int nchecks, nchecks_failed;
    char comment[256];           /* the report's "comment" key, if any (fixtures say so there) */
    hw_model hw, hw_cal;         /* as loaded, and calibrated from the report */
    int nrows;
    sim_validate_row *rows;      /* (nrows), report order */
    int nspeedup;
    sim_validate_speedup *speedup; /* (nspeedup <= 2 · timings) */
    int nskipped;                /* timings whose `what` the sim has no kernel set for */
    int nmodels;                 /* distinct models of the rows; models[0] is the caller's */
    mdl_model *models;           /* (SIM_VALIDATE_MAX_MODELS) */
    int matrix_present;          /* of the 24 matrix points (6 dense + 18 rocketkv `step`) */
    int matrix_total;
    char missing[24][48];        /* "rocketkv 32768/256/b8", ... */
    int nmissing;
} sim_validate;

/* 100·(pred − meas)/meas; NaN when meas is not positive. */
double sim_validate_err_pct(double pred, double meas);

/* Reads and prices the report. hw: the hardware model to start from (not
 * modified); m: the model of the rows without a "model" key (kv_heads, group
 * and head_dim must match it; a row's "model" must be a bundled model name
 * and its shape that model's). Errors name the file, the JSON path and
 * line:col: "r.json:14:7: timings[2].median_s: expected a positive number, got
 * a string". */
int sim_validate_report(const char *path, const hw_model *hw, const mdl_model *m, sim_validate *v, kv_err *err);
void sim_validate_free(sim_validate *v); /* accepts NULL */

/* ---- static estimates beside the sim (reports/cuda-audit/audit.json) ----
 * `make cuda-audit` writes, per hardware model, a static time estimate of
 * each kernel (cuda/audit.py; README "CUDA kernels: static audit") — not a
 * measurement. sim_audit_load reads the rows of one hardware model: per
 * (context, batch) the dense v2, v3 and v4 attention, score v2 and v3,
 * select v4 and the v3/v4 sparse gathers at G = 4 (llama3.1-8b's layer),
 * and dense v4 and v5 at G = 8 (llama3.1-70b's: 8 KV heads × 8, d = 128),
 * with the bytes each streams and the efficiency the estimate implies,
 * bytes / ((est − launch_graph_s) · hbm_bandwidth), to set beside the
 * hardware model's assumed stream_read_efficiency (what the sim prices
 * streaming reads with). Rows of other hardware models are skipped. */
#define SIM_AUDIT_MAX 96

typedef struct {
    char kernel[24];             /* "dense v2", "dense v3", "dense v4", "dense v5", "score v2", "select v4", "gather v3", ... */
    int group;                   /* query heads per KV head of the estimated layer: 4 or 8 */
    int64_t context, batch;
    double est_s;                /* static estimate incl. one launch_graph_s */
    double bytes;                /* streamed; 0 for select */
    char bound[48];              /* "bandwidth", "issue", "latency", ... */
    double implied_stream_eff;   /* see above; NAN without bytes */
} sim_audit_row;

typedef struct {
    char path[256];
    char hw[64];
    double sim_stream_eff, sim_compute_eff; /* the hardware model's assumptions */
    int nrows;
    sim_audit_row rows[SIM_AUDIT_MAX];
} sim_audit;

int sim_audit_load(const char *path, const hw_model *hw, sim_audit *a, kv_err *err);

/* The static estimate of the kernel a measured dense timing ran (full
 * step_v2 → dense v2, step_v3 → dense v3, step_v4 → dense v4, step_v5 →
 * dense v5; same group, context and batch), or NULL. Only dense rows are
 * matched: the audit's stage-2 rows are at budget 2048, which gpu_check
 * does not time, and the audit prices the cache at context + 50 tokens (the
 * last decode step) where gpu_check times context tokens (0.15 % more bytes
 * at 32K). */
const sim_audit_row *sim_audit_find(const sim_audit *a, const sim_validate_row *r);

#endif
