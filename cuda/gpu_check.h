/* gpu_check.h — what the GPU check's driver (gpu_check.cu) and the checks
 * beside each kernel (dense_decode_check.cu, hsa_check.cu, stage1_check.cu)
 * share: the run's state (gc_ctx, one per run, passed down — no mutable
 * globals), the CUDA-error macro, device buffers and copies on the work
 * stream, the random inputs, the tolerance rule and the timing harness.
 * The check rules and the report format are in gpu_check.cu's header. */
#ifndef GPU_CHECK_H
#define GPU_CHECK_H

#include "kcu_cuda.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

extern "C" {
#include "kv_common.h"
}
#include "kcu.h"
#include "kcu_kernels.h"
#include "kcu_ref.h"

/* ------------------------------------------------------------ results */
struct check_result {
    std::string name;
    bool pass;
    std::string detail;  /* one line, human */
    double max_abs_err, max_rel_err;
    long long ndiff;     /* differing selected candidates (near-ties allowed) */
};
struct timing_result {
    std::string what, method;
    long long context, budget, batch, C, p, r, k;
    double median_s, min_s, bytes, bytes_per_s;
    int reps;
    std::string model;           /* the bundled model whose one layer this is (kvsim validate prices it) */
    int kv_heads, group, head_dim; /* that layer's shape */
};

/* One run of the check: device facts, options, results so far. */
struct gc_ctx {
    std::vector<check_result> checks;
    std::vector<timing_result> times;
    int sms = 0;                 /* multiprocessors */
    int reps = 20;               /* timed repetitions per graph (>= 10) */
    size_t usable = 0;           /* free bytes right after context creation */
    size_t l2 = 0;               /* L2 bytes (flushed with a 2 × L2 memset) */
    void *flush = nullptr;       /* [2 · l2] bytes */
    cudaStream_t st = nullptr;   /* the work stream: every launch, copy and memset */
    cudaDeviceProp prop{};
    const char *out = nullptr;   /* report path */
    const char *smi = nullptr;   /* nvidia-smi text for the report */
    const char *only = nullptr;  /* --only SUBSTRING: the checks whose name contains it */
    char abort_msg[512] = "";    /* the CUDA error that stopped the run */
    int in_abort = 0;
};

/* On a CUDA error: say where, write what was gathered so far (the report
 * records the abort), exit 1. Needs `c` (the gc_ctx *) in scope. */
void gpu_check_abort(gc_ctx *c, const char *msg) __attribute__((noreturn));
#define CK(x)                                                                                         \
    do {                                                                                              \
        cudaError_t e_ = (x);                                                                         \
        if (e_ != cudaSuccess) {                                                                      \
            char m_[512];                                                                             \
            snprintf(m_, sizeof m_, "%s:%d: %s: %s", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            gpu_check_abort(c, m_);                                                                   \
        }                                                                                             \
    } while (0)

/* Records one check and prints its line. */
void add_check(gc_ctx *c, const std::string &name, bool pass, double abs_e, double rel_e, long long nd,
               const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Times a graph (time_reps) and records the result. */
void time_graph(gc_ctx *c, cudaGraphExec_t ex, timing_result tr);

static const uint16_t BF16_NAN = 0x7fc0;
/* The timed shape: one layer of llama3.1-8b (8 KV heads, G = 4, d = 128);
 * dense is also timed at G = 8, one layer of llama3.1-70b (8 KV heads, d = 128). */
static const int HKV = 8, GQ = 4, DH = 128;
#define TIMED_MODEL "llama3.1-8b"
#define TIMED_MODEL_G8 "llama3.1-70b"
static const long long MODEL_MAX = 131072; /* llama3.1-8b max_position_embeddings */

/* ------------------------------------------------------------ helpers */
/* ------------------------------------------------------------ helpers */
template <class T>
static inline T *dalloc(gc_ctx *c, size_t n)
{
    T *p;
    CK(cudaMalloc(&p, n * sizeof(T) + 16));
    return p;
}

template <class T>
static inline void h2d(gc_ctx *c, T *d, const std::vector<T> &h)
{
    CK(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, c->st));
    CK(cudaStreamSynchronize(c->st));
}

template <class T>
static inline std::vector<T> d2h(gc_ctx *c, const T *d, size_t n)
{
    std::vector<T> h(n);
    CK(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    return h;
}

static inline std::vector<uint16_t> rand_bf16(size_t n, uint64_t *s, double scale, int quantized)
{
    std::vector<uint16_t> x(n);
    for (size_t i = 0; i < n; i++) {
        double v = kcu_rng_normal(s) * scale;
        if (quantized) /* few distinct values: many exact ties downstream */
            v = (double)((int)(kcu_rng_uniform(s) * 3.0) - 1) * 0.75 * scale;
        x[i] = kcu_f32_to_bf16((float)v);
    }
    return x;
}

/* Row t becomes a copy of row t % period: identical keys give exactly
 * equal scores, pages and votes, so the tie rule is exercised. */
static inline void dup_rows(std::vector<uint16_t> &x, size_t nrows, int d, size_t period)
{
    for (size_t t = period; t < nrows; t++)
        memcpy(&x[t * d], &x[(t % period) * d], (size_t)d * sizeof x[0]);
}

static inline std::vector<float> rand_f32(size_t n, uint64_t *s, double scale)
{
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(kcu_rng_normal(s) * scale);
    return x;
}

/* |g − r| <= atol + rtol·|r|, NaN fails; returns violations. */
static inline long long tol_compare(const float *g, const double *r, size_t n, double atol, double rtol, double *max_abs,
                             double *max_rel)
{
    long long bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)g[i] - r[i]);
        if (!(e <= atol + rtol * fabs(r[i])))
            bad++;
        if (e > *max_abs || e != e)
            *max_abs = e;
        double rel = e / (fabs(r[i]) + 1e-30);
        if (fabs(r[i]) > 1e-3 && rel > *max_rel)
            *max_rel = rel;
    }
    return bad;
}

/* ------------------------------------------------------------ timing */
template <class F>
static inline void time_reps(gc_ctx *c, F body, int reps, double *median_s, double *min_s)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<double> t;
    const int warm = reps >= 10 ? 3 : 0; /* the emulation's time smoke (1 rep) warms nothing */
    for (int i = 0; i < reps + warm; i++) {
        CK(cudaMemsetAsync(c->flush, i & 0xff, 2 * c->l2, c->st));
        CK(cudaEventRecord(e0, c->st));
        body();
        CK(cudaEventRecord(e1, c->st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= warm)
            t.push_back(ms * 1e-3);
    }
    std::sort(t.begin(), t.end());
    *median_s = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    *min_s = t[0];
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}

/* Captures fn's launches on c->st into a graph and returns the executable. */
template <class F>
static inline cudaGraphExec_t capture(gc_ctx *c, F fn)
{
    cudaGraph_t g;
    cudaGraphExec_t ex;
    CK(cudaStreamBeginCapture(c->st, cudaStreamCaptureModeGlobal));
    fn();
    CK(cudaStreamEndCapture(c->st, &g));
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphDestroy(g));
    return ex;
}

/* ------------------------------------------------------ per kernel file */
/* dense_decode_check.cu */
void check_attend(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, bool sparse,
                  uint64_t seed);
void time_dense(gc_ctx *c, long long ctx, int B);
void time_dense_g8(gc_ctx *c, long long ctx, int B);
/* hsa_check.cu */
void check_hsa(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, int64_t p,
               int r, int64_t k, int page_gran, int quantized, uint64_t seed);
void time_rocketkv(gc_ctx *c, long long ctx, long long budget, int B);
/* stage1_check.cu */
void check_stage1(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, int64_t S, int64_t w, int64_t P,
                  int64_t kern, int quantized, uint64_t seed);
void time_stage1(gc_ctx *c, long long ctx, long long budget);

#endif
