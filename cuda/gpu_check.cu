/* gpu_check.cu — the GPU check: every kernel against the CPU reference of
 * the GPU pipeline (kcu_ref_host.c, itself tested against refimpl on the
 * CPU), the calibration probes, and the fixed timing matrix; writes one JSON
 * report and prints a short table last. Exits 1 if any check fails.
 *
 *   gpu_check --out reports/gpu/<device>-<date>.json [--quick] [--smi TEXT]
 *
 * Check rules (stated once, reported with every result):
 *   attention outputs (bf16 K/V, f32 q, f32 arithmetic vs a double
 *     reference on the same bf16 values): |gpu − ref| <= 1e-4 + 1e-3·|ref|;
 *     split-KV vs one split: max |diff| <= 2e-3·max|ref| (FA's rule);
 *   page min/max: bit-exact; chosen dims, signs and page scores z = s/τ:
 *     bit-exact (refimpl's rounding: f32 products and sums, no FMA);
 *   group-mean probabilities: rel. error <= 1e-12 given the same scores;
 *   selections: exact on identical score arrays (GPU scores re-selected on
 *     the CPU); end to end, differing candidates must be near-ties
 *     (|score − threshold| <= 1e-9·|threshold| stage 2, 1e-4 stage 1, whose
 *     probabilities are fp32 on the GPU and double on the CPU);
 *   stage-1 votes: |gpu − ref| <= 1e-4·|ref| + 1e-6·max(ref).
 * Padding is poisoned: K/V rows past len (and, for sparse attention, every
 * row not selected) are bf16 NaN, outputs are NaN-filled before each run,
 * aux past the last page is NaN and must stay so.
 *
 * Report keys hwmodels reads (hwmodels/README.md, "Calibration file"):
 * device, stream_read_bytes_per_s, gather [{run_bytes, bytes_per_s}],
 * launch_s, launch_graph_s, usable_capacity_bytes; everything else is extra.
 *
 * Timing: CUDA events around one replay of a CUDA graph of the decode step
 * of one layer, L2 flushed (memset of 2× L2) before each rep, median of
 * `reps` (>= 10) after 3 warm-ups. Device data for timing is filled on the
 * device (hash-based values), never zeros. */
#include "kcu_cuda.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <vector>

extern "C" {
#include "kv_common.h"
}
#include "kcu.h"
#include "kcu_kernels.h"
#include "kcu_ref.h"

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            char m_[512];                                                                       \
            snprintf(m_, sizeof m_, "%s:%d: %s: %s", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            gpu_check_abort(m_);                                                                \
        }                                                                                       \
    } while (0)

/* On a CUDA error: say where, write what was gathered so far (the report
 * records the abort), exit 1. Defined after the report writer. */
static void gpu_check_abort(const char *msg) __attribute__((noreturn));

static const uint16_t BF16_NAN = 0x7fc0;

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
};

static std::vector<check_result> g_checks;
static std::vector<timing_result> g_times;
static int g_sms, g_reps = 20;
static size_t g_usable;
static char g_abort[512];
static const char *g_out, *g_smi;
static cudaDeviceProp g_prop;
static int g_in_abort;
static const char *g_only; /* --only SUBSTRING: run only the checks whose name contains it */ /* free bytes right after context creation (hwmodels' usable_capacity_bytes) */
static size_t g_l2;
static void *g_flush;
static cudaStream_t g_st;

static void add_check(const std::string &name, bool pass, double abs_e, double rel_e, long long nd,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void add_check(const std::string &name, bool pass, double abs_e, double rel_e, long long nd,
                      const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_checks.push_back({name, pass, buf, abs_e, rel_e, nd});
    printf("%-4s %-44s %s\n", pass ? "ok" : "FAIL", name.c_str(), buf);
    fflush(stdout);
}

/* ------------------------------------------------------------ helpers */
template <class T>
static T *dalloc(size_t n)
{
    T *p;
    CK(cudaMalloc(&p, n * sizeof(T) + 16));
    return p;
}
template <class T>
static void h2d(T *d, const std::vector<T> &h)
{
    CK(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, g_st));
    CK(cudaStreamSynchronize(g_st));
}
template <class T>
static std::vector<T> d2h(const T *d, size_t n)
{
    std::vector<T> h(n);
    CK(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, g_st));
    CK(cudaStreamSynchronize(g_st));
    return h;
}
static std::vector<uint16_t> rand_bf16(size_t n, uint64_t *s, double scale, int quantized)
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
static void dup_rows(std::vector<uint16_t> &x, size_t nrows, int d, size_t period)
{
    for (size_t t = period; t < nrows; t++)
        memcpy(&x[t * d], &x[(t % period) * d], (size_t)d * sizeof x[0]);
}

static std::vector<float> rand_f32(size_t n, uint64_t *s, double scale)
{
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(kcu_rng_normal(s) * scale);
    return x;
}

/* |g − r| <= atol + rtol·|r|, NaN fails; returns violations. */
static long long tol_compare(const float *g, const double *r, size_t n, double atol, double rtol, double *max_abs,
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

/* ------------------------------------------------- attention checks */
static void check_attend(const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, bool sparse,
                         uint64_t seed)
{
    if (g_only && !strstr(name, g_only))
        return;
    uint64_t s = seed;
    int64_t cap = *std::max_element(lens.begin(), lens.end());
    size_t nkv = (size_t)B * Hkv * cap * d;
    std::vector<uint16_t> K = rand_bf16(nkv, &s, 1.0, 0), V = rand_bf16(nkv, &s, 1.0, 0);
    std::vector<float> q = rand_f32((size_t)B * Hkv * G * d, &s, 1.5);
    int64_t idx_cap = 0;
    std::vector<int32_t> idx, count;
    if (sparse) {
        idx_cap = cap;
        idx.assign((size_t)B * Hkv * idx_cap, -1);
        count.assign((size_t)B * Hkv, 0);
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hkv; h++) {
            size_t bh = (size_t)b * Hkv + h;
            std::vector<char> keep((size_t)cap, 0);
            if (sparse) {
                int32_t n = 0;
                for (int64_t t = 0; t < lens[b]; t++)
                    if (kcu_rng_uniform(&s) < 0.3 || t == lens[b] - 1) {
                        idx[bh * idx_cap + n++] = (int32_t)t;
                        keep[t] = 1;
                    }
                count[bh] = n;
            } else
                for (int64_t t = 0; t < lens[b]; t++)
                    keep[t] = 1;
            for (int64_t t = 0; t < cap; t++)
                if (!keep[t])
                    for (int e = 0; e < d; e++) {
                        K[(bh * cap + t) * d + e] = BF16_NAN;
                        V[(bh * cap + t) * d + e] = BF16_NAN;
                    }
        }
    uint16_t *dK = dalloc<uint16_t>(nkv), *dV = dalloc<uint16_t>(nkv);
    float *dq = dalloc<float>(q.size()), *dout = dalloc<float>(q.size()), *dout1 = dalloc<float>(q.size());
    int32_t *dlen = dalloc<int32_t>(B), *didx = nullptr, *dcount = nullptr;
    h2d(dK, K);
    h2d(dV, V);
    h2d(dq, q);
    h2d(dlen, lens);
    if (sparse) {
        didx = dalloc<int32_t>(idx.size());
        dcount = dalloc<int32_t>(count.size());
        h2d(didx, idx);
        h2d(dcount, count);
    }
    int nsplit = kcu_attend_splits(cap, B, Hkv, g_sms);
    float *dws = dalloc<float>(kcu_attend_ws_bytes(B, Hkv, G, d, nsplit) / sizeof(float));
    kcu_attend_args a = {dK, dV, cap, dq, dlen, didx, dcount, idx_cap, B, Hkv, G, d, nsplit, dws, dout, 2};
    CK(cudaMemsetAsync(dout, 0xff, q.size() * sizeof(float), g_st));
    CK(kcu_attend(&a, g_st));
    kcu_attend_args a1 = a;
    a1.nsplit = 1;
    a1.out = dout1;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), g_st));
    CK(kcu_attend(&a1, g_st));
    CK(cudaStreamSynchronize(g_st));
    std::vector<float> out = d2h(dout, q.size()), out1 = d2h(dout1, q.size());
    kcu_attend_args a4 = a; /* v1b: four rows in flight */
    a4.rows_in_flight = 4;
    a4.out = dout1;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), g_st));
    CK(kcu_attend(&a4, g_st));
    CK(cudaStreamSynchronize(g_st));
    std::vector<float> out4 = d2h(dout1, q.size());

    std::vector<double> ref(q.size());
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hkv; h++) {
            size_t bh = (size_t)b * Hkv + h;
            kcu_ref_attend(K.data() + bh * cap * d, V.data() + bh * cap * d, d, G, q.data() + bh * G * d,
                           sparse ? idx.data() + bh * idx_cap : nullptr, sparse ? count[bh] : lens[b],
                           ref.data() + bh * G * d);
        }
    double mabs = 0, mrel = 0, mref = 0, msplit = 0;
    long long bad = tol_compare(out.data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs, &mrel);
    double mabs4 = 0, mrel4 = 0;
    long long bad4 = tol_compare(out4.data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs4, &mrel4);
    for (size_t i = 0; i < ref.size(); i++) {
        mref = std::max(mref, fabs(ref[i]));
        double dd = fabs((double)out[i] - out1[i]);
        msplit = (dd > msplit || dd != dd) ? dd : msplit;
    }
    bool split_ok = msplit <= 2e-3 * mref;
    add_check(name, bad == 0 && bad4 == 0 && split_ok, std::max(mabs, mabs4), std::max(mrel, mrel4), 0,
              "B=%d Hkv=%d G=%d d=%d max_len=%lld splits=%d: %lld outside 1e-4+1e-3|ref|, max abs %.2e "
              "(4 rows in flight: %lld, %.2e); split vs 1 split max diff %.2e",
              B, Hkv, G, d, (long long)cap, nsplit, bad, mabs, bad4, mabs4, msplit);
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dout1);
    cudaFree(dlen);
    cudaFree(dws);
    if (sparse) {
        cudaFree(didx);
        cudaFree(dcount);
    }
}

/* --------------------------------------------------- stage-2 checks */
static std::vector<int64_t> takes_from_pos(const int32_t *pos, int64_t n, int64_t npages, int64_t p)
{
    std::vector<int64_t> t((size_t)npages, 0);
    for (int64_t i = 0; i < n; i++)
        if (pos[i] >= 0 && pos[i] / p < npages)
            t[(size_t)(pos[i] / p)]++;
    return t;
}

static void check_hsa_v(const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, int64_t p, int r,
                        int64_t k, int page_gran, int quantized, uint64_t seed, int version)
{
    if (g_only && !strstr(name, g_only))
        return;
    uint64_t s = seed;
    int64_t cap = *std::max_element(lens.begin(), lens.end());
    int64_t npc = kcu_npages(cap, p) + 3, rows = kcu_aux_rows(d, p), pos_cap = k + p;
    size_t nkv = (size_t)B * Hkv * cap * d, nbh = (size_t)B * Hkv;
    std::vector<uint16_t> K = rand_bf16(nkv, &s, 1.0, quantized), V = rand_bf16(nkv, &s, 1.0, 0);
    if (quantized) /* period 2p: whole pages repeat, so page scores tie */
        for (size_t bh = 0; bh < nbh; bh++) {
            std::vector<uint16_t> blk(K.begin() + bh * cap * d, K.begin() + (bh + 1) * cap * d);
            dup_rows(blk, (size_t)cap, d, (size_t)(2 * p));
            std::copy(blk.begin(), blk.end(), K.begin() + bh * cap * d);
        }
    std::vector<float> q = rand_f32(nbh * G * d, &s, 1.0);
    for (size_t bh = 0; bh < nbh; bh++)
        for (int64_t t = lens[bh / Hkv]; t < cap; t++)
            for (int e = 0; e < d; e++)
                K[(bh * cap + t) * d + e] = V[(bh * cap + t) * d + e] = BF16_NAN;
    uint16_t *dK = dalloc<uint16_t>(nkv), *dV = dalloc<uint16_t>(nkv), *daux = dalloc<uint16_t>(nbh * rows * npc);
    float *dq = dalloc<float>(q.size()), *dout = dalloc<float>(q.size());
    double *davg = dalloc<double>(nbh * npc), *dsc = dalloc<double>(nbh * G * npc);
    int32_t *dlen = dalloc<int32_t>(B), *ddims = dalloc<int32_t>(nbh * d), *dpos = dalloc<int32_t>(nbh * pos_cap),
            *dcount = dalloc<int32_t>(nbh);
    h2d(dK, K);
    h2d(dV, V);
    h2d(dq, q);
    CK(cudaMemsetAsync(daux, 0xff, nbh * rows * npc * sizeof(uint16_t), g_st));
    CK(cudaMemsetAsync(dsc, 0xff, nbh * G * npc * sizeof(double), g_st));
    CK(cudaMemsetAsync(dpos, 0xff, nbh * pos_cap * sizeof(int32_t), g_st));
    /* build over len − 1 tokens, then append the last one through update */
    std::vector<int32_t> lm1(lens);
    for (auto &x : lm1)
        x -= 1;
    h2d(dlen, lm1);
    double *dpart = version == 2 ? dalloc<double>(kcu_hsa_part_bytes(B, Hkv, G, npc) / 8) : nullptr;
    kcu_hsa_args a = {dK, cap, dlen, B,    Hkv,  G,     d,     p,       npc,    daux, dq,
                      r,  k,   page_gran, dsc, davg, ddims, dpos, pos_cap, dcount, dpart};
    CK(kcu_hsa_pages_build(&a, g_st));
    CK(cudaStreamSynchronize(g_st));
    h2d(dlen, lens);
    CK(kcu_hsa_pages_update(&a, g_st));
    CK(kcu_hsa_score(&a, g_st));
    CK(kcu_hsa_select(&a, g_st));
    int nsplit = kcu_attend_splits(pos_cap, B, Hkv, g_sms);
    float *dws = dalloc<float>(kcu_attend_ws_bytes(B, Hkv, G, d, nsplit) / sizeof(float));
    kcu_attend_args at = {dK, dV, cap, dq, dlen, dpos, dcount, pos_cap, B, Hkv, G, d, nsplit, dws, dout, 2};
    CK(cudaMemsetAsync(dout, 0xff, q.size() * sizeof(float), g_st));
    CK(kcu_attend(&at, g_st));
    CK(cudaStreamSynchronize(g_st));
    std::vector<uint16_t> aux = d2h(daux, nbh * rows * npc);
    std::vector<double> sc = d2h(dsc, nbh * G * npc);
    std::vector<float> out = d2h(dout, q.size());
    std::vector<double> avg = d2h(davg, nbh * npc);
    std::vector<int32_t> dims = d2h(ddims, nbh * d), pos = d2h(dpos, nbh * pos_cap), cnt = d2h(dcount, nbh);

    long long aux_bad = 0, dims_bad = 0, sc_bad = 0, sel_bad = 0, e2e_bad = 0, e2e_diff = 0, pad_bad = 0;
    double avg_rel = 0, mabs = 0, mrel = 0;
    long long att_bad = 0;
    std::vector<uint16_t> raux((size_t)rows * npc);
    for (size_t bh = 0; bh < nbh; bh++) {
        int64_t C = lens[bh / Hkv], np = kcu_npages(C, p);
        const uint16_t *Kh = K.data() + bh * cap * d;
        kcu_ref_pages_build(Kh, C, d, p, npc, raux.data());
        const uint16_t *ga = aux.data() + bh * rows * npc;
        for (int64_t row = 0; row < rows; row++) {
            for (int64_t j = 0; j < np; j++)
                aux_bad += ga[row * npc + j] != raux[row * npc + j];
            for (int64_t j = np; j < npc; j++)
                pad_bad += ga[row * npc + j] != 0xffff;
        }
        /* dims, signs, τ, page scores: from the GPU's aux (already checked) */
        std::vector<int32_t> rd(d);
        std::vector<double> gsum(d), tau(G), ravg(np), scratch(4 * d);
        const float *qh = q.data() + bh * G * d;
        int rr = kcu_ref_hsa_dims(qh, G, d, r, rd.data(), gsum.data(), tau.data(), scratch.data());
        for (int t = 0; t < rr; t++)
            dims_bad += dims[bh * d + t] != rd[t];
        std::vector<double> rsc((size_t)G * np);
        kcu_ref_hsa_page_scores(ga, npc, d, p, G, qh, rd.data(), rr, gsum.data(), tau.data(), np, rsc.data());
        std::vector<double> gsc((size_t)G * np);
        for (int h = 0; h < G; h++)
            for (int64_t j = 0; j < np; j++) {
                double g = sc[(bh * G + h) * npc + j];
                gsc[(size_t)h * np + j] = g;
                sc_bad += memcmp(&g, &rsc[(size_t)h * np + j], sizeof g) != 0;
            }
        /* group mean from the GPU's scores */
        kcu_ref_hsa_average(gsc.data(), G, np, C, p, ravg.data());
        const double *gavg = avg.data() + bh * npc;
        for (int64_t j = 0; j < np; j++)
            avg_rel = std::max(avg_rel, fabs(gavg[j] - ravg[j]) / (fabs(ravg[j]) + 1e-300));
        /* selection on the GPU's own avg: exact */
        std::vector<int32_t> rpos((size_t)pos_cap + p);
        std::vector<uint64_t> keys(np);
        std::vector<int64_t> take(np), w(np);
        int64_t rn = kcu_ref_hsa_select(gavg, np, C, p, k, page_gran, rpos.data(), keys.data(), take.data(), w.data());
        const int32_t *gp = pos.data() + bh * pos_cap;
        if (rn != cnt[bh])
            sel_bad++;
        else
            for (int64_t i = 0; i < rn; i++)
                sel_bad += gp[i] != rpos[i];
        /* end to end: CPU scores -> CPU avg -> CPU select vs GPU, tie-aware */
        std::vector<double> cavg(np);
        kcu_ref_hsa_average(rsc.data(), G, np, C, p, cavg.data());
        int64_t cn = kcu_ref_hsa_select(cavg.data(), np, C, p, k, page_gran, rpos.data(), keys.data(), take.data(),
                                        w.data());
        std::vector<int64_t> tref = takes_from_pos(rpos.data(), cn, np, p), tgot = takes_from_pos(gp, cnt[bh], np, p);
        int64_t nd = 0;
        e2e_bad += kcu_compare_takes(cavg.data(), tref.data(), tgot.data(), np, 1e-9, &nd);
        e2e_diff += nd;
        /* sparse attention over the GPU's selection */
        std::vector<double> ref((size_t)G * d);
        kcu_ref_attend(Kh, V.data() + bh * cap * d, d, G, qh, gp, cnt[bh], ref.data());
        att_bad += tol_compare(out.data() + bh * G * d, ref.data(), ref.size(), 1e-4, 1e-3, &mabs, &mrel);
    }
    char nm[160];
    if (version == 2) { /* pages and score do not depend on the version */
        snprintf(nm, sizeof nm, "%s/v2-select", name);
        add_check(nm, avg_rel <= 1e-12 && sel_bad == 0 && e2e_bad == 0, 0, avg_rel, e2e_diff,
                  "k=%lld%s: avg max rel err %.2e; %lld positions differ on identical scores; end to end %lld "
                  "differing pages, %lld not near-ties",
                  (long long)k, page_gran ? " (page granularity)" : "", avg_rel, sel_bad, (long long)e2e_diff,
                  e2e_bad);
        cudaFree(dpart);
        goto free_dev;
    }
    snprintf(nm, sizeof nm, "%s/pages", name);
    add_check(nm, aux_bad == 0 && pad_bad == 0, 0, 0, 0,
              "p=%lld: %lld aux values differ (bit-exact rule), %lld padding values overwritten", (long long)p,
              aux_bad, pad_bad);
    snprintf(nm, sizeof nm, "%s/score", name);
    add_check(nm, dims_bad == 0 && sc_bad == 0, 0, 0, 0, "r=%d: %lld dims differ, %lld page scores not bit-exact", r,
              dims_bad, sc_bad);
    snprintf(nm, sizeof nm, "%s/select", name);
    add_check(nm, avg_rel <= 1e-12 && sel_bad == 0 && e2e_bad == 0, 0, avg_rel, e2e_diff,
              "k=%lld%s: avg max rel err %.2e; %lld positions differ on identical scores; end to end %lld "
              "differing pages, %lld not near-ties",
              (long long)k, page_gran ? " (page granularity)" : "", avg_rel, sel_bad, (long long)e2e_diff, e2e_bad);
    snprintf(nm, sizeof nm, "%s/sparse-attend", name);
    add_check(nm, att_bad == 0, mabs, mrel, 0, "%lld outputs outside 1e-4+1e-3|ref|, max abs %.2e", att_bad, mabs);
free_dev:
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(daux);
    cudaFree(dq);
    cudaFree(dsc);
    cudaFree(dout);
    cudaFree(davg);
    cudaFree(dlen);
    cudaFree(ddims);
    cudaFree(dpos);
    cudaFree(dcount);
    cudaFree(dws);
}

static void check_hsa(const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, int64_t p, int r,
                      int64_t k, int page_gran, int quantized, uint64_t seed)
{
    check_hsa_v(name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 1);
    check_hsa_v(name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 2);
}

/* --------------------------------------------------- stage-1 checks */
static void check_stage1(const char *name, int B, int Hkv, int G, int d, int64_t S, int64_t w, int64_t P, int64_t kern,
                         int quantized, uint64_t seed)
{
    if (g_only && !strstr(name, g_only))
        return;
    uint64_t s = seed;
    size_t nbh = (size_t)B * Hkv, nkv = nbh * S * d;
    std::vector<uint16_t> K = rand_bf16(nkv, &s, 1.0, quantized);
    if (quantized)
        for (size_t bh = 0; bh < nbh; bh++) {
            std::vector<uint16_t> blk(K.begin() + bh * S * d, K.begin() + (bh + 1) * S * d);
            dup_rows(blk, (size_t)S, d, 97);
            std::copy(blk.begin(), blk.end(), K.begin() + bh * S * d);
        }
    std::vector<float> Qw = rand_f32(nbh * G * w * d, &s, 1.0);
    uint16_t *dK = dalloc<uint16_t>(nkv);
    float *dQ = dalloc<float>(Qw.size()), *dws = dalloc<float>(kcu_stage1_ws_bytes(S, B, Hkv, G, w) / 4);
    double *dv = dalloc<double>(nbh * S), *dp = dalloc<double>(nbh * S);
    int32_t *dkept = dalloc<int32_t>(nbh * P);
    h2d(dK, K);
    h2d(dQ, Qw);
    CK(cudaMemsetAsync(dv, 0xff, nbh * S * 8, g_st));
    CK(cudaMemsetAsync(dp, 0xff, nbh * S * 8, g_st));
    CK(cudaMemsetAsync(dkept, 0xff, nbh * P * 4, g_st));
    kcu_stage1_args a = {dK, S, S, dQ, w, P, kern, B, Hkv, G, d, dws, dv, dp, dkept};
    CK(kcu_stage1(&a, g_st));
    CK(cudaStreamSynchronize(g_st));
    std::vector<double> votes = d2h(dv, nbh * S), pooled = d2h(dp, nbh * S);
    std::vector<int32_t> kept = d2h(dkept, nbh * P);
    if (S <= P) { /* nothing evicted: kept must be 0..S-1 */
        long long bad = 0;
        for (size_t bh = 0; bh < nbh; bh++)
            for (int64_t j = 0; j < S; j++)
                bad += kept[bh * P + j] != (int32_t)j;
        char nm0[160];
        snprintf(nm0, sizeof nm0, "%s/select", name);
        add_check(nm0, bad == 0, 0, 0, 0, "S=%lld <= P=%lld: %lld kept positions differ from 0..S-1", (long long)S,
                  (long long)P, bad);
        cudaFree(dK);
        cudaFree(dQ);
        cudaFree(dws);
        cudaFree(dv);
        cudaFree(dp);
        cudaFree(dkept);
        return;
    }
    int64_t npre = S - w;
    std::vector<double> rv(S), rp(S);
    std::vector<int32_t> rk(S > P ? P : S);
    std::vector<unsigned char> scratch((size_t)S * 24);
    long long vote_bad = 0, sel_bad = 0, e2e_bad = 0, e2e_diff = 0;
    double vmax_rel = 0;
    for (size_t bh = 0; bh < nbh; bh++) {
        int64_t n = kcu_ref_stage1(K.data() + bh * S * d, S, d, G, Qw.data() + bh * G * w * d, w, P, kern, rv.data(),
                                   rp.data(), rk.data(), scratch.data());
        const double *gv = votes.data() + bh * S, *gpool = pooled.data() + bh * S;
        const int32_t *gk = kept.data() + bh * P;
        double vm = 0;
        for (int64_t j = 0; j < npre; j++)
            vm = std::max(vm, rv[j]);
        for (int64_t j = 0; j < npre; j++) {
            double e = fabs(gv[j] - rv[j]);
            if (!(e <= 1e-4 * fabs(rv[j]) + 1e-6 * vm))
                vote_bad++;
            if (rv[j] > 1e-6 * vm)
                vmax_rel = std::max(vmax_rel, e / rv[j]);
        }
        /* the GPU's pooled scores re-selected on the CPU: exact */
        std::vector<int32_t> ck((size_t)P);
        std::vector<uint64_t> keys(npre);
        std::vector<int64_t> take(npre);
        int64_t m = kcu_topk_host(gpool, npre, P - w, ck.data(), keys.data(), take.data());
        for (int64_t i = 0; i < m; i++)
            sel_bad += gk[i] != ck[i];
        for (int64_t i = 0; i < w; i++)
            sel_bad += gk[m + i] != (int32_t)(npre + i);
        /* end to end, tie-aware on the CPU's pooled scores */
        std::vector<int64_t> tref(npre, 0), tgot(npre, 0);
        for (int64_t i = 0; i < n - w; i++)
            tref[rk[i]] = 1;
        for (int64_t i = 0; i < P - w; i++)
            if (gk[i] >= 0 && gk[i] < npre)
                tgot[gk[i]] = 1;
        int64_t nd = 0;
        e2e_bad += kcu_compare_takes(rp.data(), tref.data(), tgot.data(), npre, 1e-4, &nd);
        e2e_diff += nd;
    }
    char nm[160];
    snprintf(nm, sizeof nm, "%s/votes", name);
    add_check(nm, vote_bad == 0, 0, vmax_rel, 0, "S=%lld w=%lld G=%d: %lld votes outside 1e-4|ref|+1e-6max, max rel %.2e",
              (long long)S, (long long)w, G, vote_bad, vmax_rel);
    snprintf(nm, sizeof nm, "%s/select", name);
    add_check(nm, sel_bad == 0 && e2e_bad == 0, 0, 0, e2e_diff,
              "P=%lld kernel=%lld: %lld kept differ on identical scores; end to end %lld differ, %lld not near-ties",
              (long long)P, (long long)kern, sel_bad, e2e_diff, e2e_bad);
    cudaFree(dK);
    cudaFree(dQ);
    cudaFree(dws);
    cudaFree(dv);
    cudaFree(dp);
    cudaFree(dkept);
}

/* ------------------------------------------------------------ timing */
template <class F>
static void time_reps(F body, int reps, double *median_s, double *min_s)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<double> t;
    for (int i = 0; i < reps + 3; i++) {
        CK(cudaMemsetAsync(g_flush, i & 0xff, 2 * g_l2, g_st));
        CK(cudaEventRecord(e0, g_st));
        body();
        CK(cudaEventRecord(e1, g_st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 3)
            t.push_back(ms * 1e-3);
    }
    std::sort(t.begin(), t.end());
    *median_s = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    *min_s = t[0];
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}

/* Captures fn's launches on g_st into a graph and returns the executable. */
template <class F>
static cudaGraphExec_t capture(F fn)
{
    cudaGraph_t g;
    cudaGraphExec_t ex;
    CK(cudaStreamBeginCapture(g_st, cudaStreamCaptureModeGlobal));
    fn();
    CK(cudaStreamEndCapture(g_st, &g));
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphDestroy(g));
    return ex;
}

static void time_graph(cudaGraphExec_t ex, timing_result tr)
{
    time_reps([&] { CK(cudaGraphLaunch(ex, g_st)); }, g_reps, &tr.median_s, &tr.min_s);
    tr.reps = g_reps;
    tr.bytes_per_s = tr.bytes / tr.median_s;
    g_times.push_back(tr);
}

static const int HKV = 8, GQ = 4, DH = 128;
static const long long MODEL_MAX = 131072; /* llama3.1-8b max_position_embeddings */

static void time_dense(long long ctx, int B)
{
    size_t nkv = (size_t)B * HKV * ctx * DH;
    uint16_t *dK = dalloc<uint16_t>(nkv), *dV = dalloc<uint16_t>(nkv);
    float *dq = dalloc<float>((size_t)B * HKV * GQ * DH), *dout = dalloc<float>((size_t)B * HKV * GQ * DH);
    int32_t *dlen = dalloc<int32_t>(B);
    CK(kcu_fill_bf16(dK, (int64_t)nkv, 1, 1.0f, g_st));
    CK(kcu_fill_bf16(dV, (int64_t)nkv, 2, 1.0f, g_st));
    CK(kcu_fill_f32(dq, (int64_t)B * HKV * GQ * DH, 3, 1.0f, g_st));
    std::vector<int32_t> lens(B, (int32_t)ctx);
    h2d(dlen, lens);
    int nsplit = kcu_attend_splits(ctx, B, HKV, g_sms);
    float *dws = dalloc<float>(kcu_attend_ws_bytes(B, HKV, GQ, DH, nsplit) / 4);
    kcu_attend_args a = {dK, dV, ctx, dq, dlen, nullptr, nullptr, 0, B, HKV, GQ, DH, nsplit, dws, dout, 2};
    for (int rif : {2, 4}) {
        a.rows_in_flight = rif;
        cudaGraphExec_t ex = capture([&] { CK(kcu_attend(&a, g_st)); });
        timing_result tr = {rif == 2 ? "step" : "step_rif4", "full", ctx, 0, B, ctx, 0, 0, 0, 0, 0,
                            (double)nkv * 2 * 2, 0, 0};
        time_graph(ex, tr);
        CK(cudaGraphExecDestroy(ex));
    }
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dlen);
    cudaFree(dws);
}

static void time_rocketkv(long long ctx, long long budget, int B)
{
    kcu_rkv_split sp;
    kcu_rkv_split_compute(ctx, 50, budget, MODEL_MAX, DH, -1.0, &sp);
    int64_t C = sp.capacity, p = sp.p, k = sp.k, npc = kcu_npages(C, p), pos_cap = k + p;
    int r = (int)sp.r, rows = kcu_aux_rows(DH, p);
    size_t nbh = (size_t)B * HKV, nkv = nbh * C * DH;
    uint16_t *dK = dalloc<uint16_t>(nkv), *dV = dalloc<uint16_t>(nkv), *daux = dalloc<uint16_t>(nbh * rows * npc);
    float *dq = dalloc<float>(nbh * GQ * DH), *dout = dalloc<float>(nbh * GQ * DH);
    double *davg = dalloc<double>(nbh * npc), *dsc = dalloc<double>(nbh * GQ * npc);
    int32_t *dlen = dalloc<int32_t>(B), *ddims = dalloc<int32_t>(nbh * DH), *dpos = dalloc<int32_t>(nbh * pos_cap),
            *dcount = dalloc<int32_t>(nbh);
    CK(kcu_fill_bf16(dK, (int64_t)nkv, 11, 1.0f, g_st));
    CK(kcu_fill_bf16(dV, (int64_t)nkv, 12, 1.0f, g_st));
    CK(kcu_fill_f32(dq, (int64_t)nbh * GQ * DH, 13, 1.0f, g_st));
    std::vector<int32_t> lens(B, (int32_t)C);
    h2d(dlen, lens);
    double *dpart = dalloc<double>(kcu_hsa_part_bytes(B, HKV, GQ, npc) / 8);
    kcu_hsa_args h = {dK, C, dlen, B,    HKV,   GQ,   DH,      p,      npc,  daux, dq,
                      r,  k, 0,    dsc, davg, ddims, dpos, pos_cap, dcount, dpart};
    kcu_hsa_args h1 = h; /* v1 select: no per-tile partials */
    h1.part = nullptr;
    CK(kcu_hsa_pages_build(&h, g_st));
    int nsplit = kcu_attend_splits(pos_cap, B, HKV, g_sms);
    float *dws = dalloc<float>(kcu_attend_ws_bytes(B, HKV, GQ, DH, nsplit) / 4);
    kcu_attend_args a = {dK, dV, C, dq, dlen, dpos, dcount, pos_cap, B, HKV, GQ, DH, nsplit, dws, dout, 2};
    CK(cudaStreamSynchronize(g_st));
    /* analytic bytes (docs/algorithm.md traffic table, rocketkv row): aux reads,
     * exact K+V rows, q, page update (read + write of 2d aux + the token) */
    double aux_b = (double)nbh * npc * r * 2, kv_b = (double)nbh * k * 2 * DH * 2;
    double q_b = (double)nbh * GQ * DH * 4, upd_b = (double)nbh * (2 * 2 * DH * 2 + DH * 2);
    timing_result base = {"", "rocketkv", ctx, budget, B, C, p, r, k, 0, 0, 0, 0, 0};
    struct part {
        const char *what;
        double bytes;
        int mask, version;
    } parts[] = {{"step", aux_b + kv_b + q_b + upd_b, 15, 2},
                 {"step_v1", aux_b + kv_b + q_b + upd_b, 15, 1},
                 {"pages_update", upd_b, 1, 2},
                 {"score", aux_b + q_b, 2, 2},
                 {"select", 0, 4, 2},
                 {"select_v1", 0, 4, 1},
                 {"sparse_attend", kv_b + q_b, 8, 2}};
    for (auto &pt : parts) {
        const kcu_hsa_args *hv = pt.version == 2 ? &h : &h1;
        cudaGraphExec_t ex = capture([&] {
            if (pt.mask & 1)
                CK(kcu_hsa_pages_update(hv, g_st));
            if (pt.mask & 2)
                CK(kcu_hsa_score(hv, g_st));
            if (pt.mask & 4)
                CK(kcu_hsa_select(hv, g_st));
            if (pt.mask & 8)
                CK(kcu_attend(&a, g_st));
        });
        timing_result tr = base;
        tr.what = pt.what;
        tr.bytes = pt.bytes;
        time_graph(ex, tr);
        CK(cudaGraphExecDestroy(ex));
    }
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(daux);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dsc);
    cudaFree(davg);
    cudaFree(dlen);
    cudaFree(ddims);
    cudaFree(dpos);
    cudaFree(dcount);
    cudaFree(dws);
    cudaFree(dpart);
}

static void time_stage1(long long ctx, long long budget)
{
    kcu_rkv_split sp;
    kcu_rkv_split_compute(ctx, 50, budget, MODEL_MAX, DH, -1.0, &sp);
    int64_t S = ctx, w = 32, P = sp.P;
    size_t nkv = (size_t)HKV * S * DH;
    uint16_t *dK = dalloc<uint16_t>(nkv);
    float *dQ = dalloc<float>((size_t)HKV * GQ * w * DH), *dws = dalloc<float>(kcu_stage1_ws_bytes(S, 1, HKV, GQ, w) / 4);
    double *dv = dalloc<double>((size_t)HKV * S), *dp = dalloc<double>((size_t)HKV * S);
    int32_t *dkept = dalloc<int32_t>((size_t)HKV * P);
    CK(kcu_fill_bf16(dK, (int64_t)nkv, 21, 1.0f, g_st));
    CK(kcu_fill_f32(dQ, (int64_t)HKV * GQ * w * DH, 22, 1.0f, g_st));
    kcu_stage1_args a = {dK, S, S, dQ, w, P, 63, 1, HKV, GQ, DH, dws, dv, dp, dkept};
    CK(kcu_stage1(&a, g_st)); /* sets the shared-memory attribute outside capture */
    cudaGraphExec_t ex = capture([&] { CK(kcu_stage1(&a, g_st)); });
    timing_result tr = {"stage1", "rocketkv", ctx, budget, 1, S, 0, 0, 0, 0, 0, (double)nkv * 2 * 2, 0, 0};
    int save = g_reps;
    g_reps = 10;
    time_graph(ex, tr);
    g_reps = save;
    CK(cudaGraphExecDestroy(ex));
    cudaFree(dK);
    cudaFree(dQ);
    cudaFree(dws);
    cudaFree(dv);
    cudaFree(dp);
    cudaFree(dkept);
}

/* ------------------------------------------------------------ probes */
struct probe_out {
    double read_bps, read_bytes, launch_s, launch_graph_s;
    std::vector<std::pair<long long, double>> gather;
};

static probe_out run_probes(bool quick)
{
    probe_out po;
    size_t freeb, totb;
    CK(cudaMemGetInfo(&freeb, &totb));
    size_t bytes = (size_t)4 << 30;
    if (quick || bytes > freeb / 4)
        bytes = std::min((size_t)1 << 30, freeb / 4);
    uint4 *src = dalloc<uint4>(bytes / 16);
    unsigned *sink = dalloc<unsigned>(1);
    CK(kcu_fill_f32((float *)src, (int64_t)(bytes / 4), 31, 1.0f, g_st));
    double med, mn;
    time_reps([&] { CK(kcu_probe_read(src, (int64_t)(bytes / 16), sink, g_sms, g_st)); }, 10, &med, &mn);
    po.read_bytes = (double)bytes;
    po.read_bps = (double)bytes / med;
    printf("probe stream read: %.3e bytes in %.3e s: %.1f GB/s\n", (double)bytes, med, po.read_bps / 1e9);
    size_t payload = std::min((size_t)1 << 30, bytes / 4);
    for (long long run = 256; run <= 65536; run *= 2) {
        int64_t nslots = (int64_t)(bytes / run), nruns = (int64_t)(payload / run);
        std::vector<uint32_t> offs((size_t)nruns);
        uint64_t s = 77 + (uint64_t)run;
        for (int64_t i = 0; i < nruns; i++) /* distinct slots: a strided walk with a random odd step */
            offs[i] = (uint32_t)(((uint64_t)i * (2 * (kcu_rng_next(&s) % 1000003) + 1) + 12345) % (uint64_t)nslots);
        uint32_t *doffs = dalloc<uint32_t>(offs.size());
        h2d(doffs, offs);
        time_reps([&] { CK(kcu_probe_gather(src, doffs, nruns, run, sink, g_sms, g_st)); }, 10, &med, &mn);
        po.gather.push_back({run, (double)nruns * run / med});
        printf("probe gather run %6lld B: %.1f GB/s\n", run, (double)nruns * run / med / 1e9);
        cudaFree(doffs);
    }
    cudaFree(src);
    cudaFree(sink);
    /* launch cost: N back-to-back empty launches, and the same N as one graph */
    const int N = 2000;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int i = 0; i < 100; i++)
        CK(kcu_probe_empty(g_st));
    std::vector<double> tl, tg;
    cudaGraphExec_t ex = capture([&] {
        for (int i = 0; i < N; i++)
            CK(kcu_probe_empty(g_st));
    });
    for (int rep = 0; rep < 11; rep++) {
        float ms;
        CK(cudaStreamSynchronize(g_st));
        CK(cudaEventRecord(e0, g_st));
        for (int i = 0; i < N; i++)
            CK(kcu_probe_empty(g_st));
        CK(cudaEventRecord(e1, g_st));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        tl.push_back(ms * 1e-3 / N);
        CK(cudaEventRecord(e0, g_st));
        CK(cudaGraphLaunch(ex, g_st));
        CK(cudaEventRecord(e1, g_st));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        tg.push_back(ms * 1e-3 / N);
    }
    std::sort(tl.begin(), tl.end());
    std::sort(tg.begin(), tg.end());
    po.launch_s = tl[tl.size() / 2];
    po.launch_graph_s = tg[tg.size() / 2];
    printf("probe launch: %.2f us per kernel (stream), %.2f us (graph)\n", po.launch_s * 1e6, po.launch_graph_s * 1e6);
    CK(cudaGraphExecDestroy(ex));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    return po;
}

/* ------------------------------------------------------------- report */
static int write_report(const char *path, const cudaDeviceProp &pr, const char *smi, const probe_out &po)
{
    kv_afile f;
    kv_err err;
    if (kv_afile_open(&f, path, &err)) {
        fprintf(stderr, "gpu_check: %s\n", err.msg);
        return -1;
    }
    kv_json j;
    kv_json_init(&j, f.fp);
    int clk = 0, mclk = 0, drv = 0, rt = 0;
    cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
    cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, 0);
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    kv_json_obj_begin(&j);
    kv_json_key(&j, "kind");
    kv_json_str(&j, "kvsim-gpu-check");
    kv_json_key(&j, "date");
    kv_json_str(&j, date);
    kv_json_key(&j, "device");
    kv_json_str(&j, pr.name);
    kv_json_key(&j, "usable_capacity_bytes");
    kv_json_num(&j, (double)g_usable);
    kv_json_key(&j, "device_info");
    kv_json_obj_begin(&j);
    kv_json_key(&j, "name");
    kv_json_str(&j, pr.name);
    kv_json_key(&j, "compute_capability");
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", pr.major, pr.minor);
    kv_json_str(&j, cc);
    kv_json_key(&j, "sms");
    kv_json_int(&j, pr.multiProcessorCount);
    kv_json_key(&j, "l2_bytes");
    kv_json_int(&j, pr.l2CacheSize);
    kv_json_key(&j, "memory_bytes");
    kv_json_num(&j, (double)pr.totalGlobalMem);
    kv_json_key(&j, "memory_bus_bits");
    kv_json_int(&j, pr.memoryBusWidth);
    kv_json_key(&j, "sm_clock_max_hz");
    kv_json_num(&j, clk * 1e3);
    kv_json_key(&j, "mem_clock_max_hz");
    kv_json_num(&j, mclk * 1e3);
    kv_json_key(&j, "driver_version");
    kv_json_int(&j, drv);
    kv_json_key(&j, "runtime_version");
    kv_json_int(&j, rt);
    kv_json_key(&j, "nvidia_smi");
    kv_json_str(&j, smi ? smi : "");
    kv_json_obj_end(&j);
    kv_json_key(&j, "stream_read_bytes_per_s");
    kv_json_num(&j, po.read_bps);
    kv_json_key(&j, "stream_read_bytes");
    kv_json_num(&j, po.read_bytes);
    kv_json_key(&j, "gather");
    kv_json_arr_begin(&j);
    for (auto &g : po.gather) {
        kv_json_obj_begin(&j);
        kv_json_key(&j, "run_bytes");
        kv_json_int(&j, g.first);
        kv_json_key(&j, "bytes_per_s");
        kv_json_num(&j, g.second);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "launch_s");
    kv_json_num(&j, po.launch_s);
    kv_json_key(&j, "launch_graph_s");
    kv_json_num(&j, po.launch_graph_s);
    bool all = true;
    kv_json_key(&j, "checks");
    kv_json_arr_begin(&j);
    for (auto &c : g_checks) {
        all = all && c.pass;
        kv_json_obj_begin(&j);
        kv_json_key(&j, "name");
        kv_json_str(&j, c.name.c_str());
        kv_json_key(&j, "pass");
        kv_json_bool(&j, c.pass);
        kv_json_key(&j, "max_abs_err");
        kv_json_num(&j, c.max_abs_err);
        kv_json_key(&j, "max_rel_err");
        kv_json_num(&j, c.max_rel_err);
        kv_json_key(&j, "near_tie_diffs");
        kv_json_int(&j, c.ndiff);
        kv_json_key(&j, "detail");
        kv_json_str(&j, c.detail.c_str());
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "aborted");
    if (g_abort[0])
        kv_json_str(&j, g_abort);
    else
        kv_json_null(&j);
    kv_json_key(&j, "all_checks_pass");
    kv_json_bool(&j, all && !g_abort[0]);
    kv_json_key(&j, "timing_method");
    kv_json_str(&j, "CUDA events around one CUDA-graph replay per rep (one layer, all KV heads), L2 flushed by a "
                    "2xL2 memset before each rep, median of reps after 3 warm-ups; bytes are analytic");
    kv_json_key(&j, "timings");
    kv_json_arr_begin(&j);
    for (auto &t : g_times) {
        kv_json_obj_begin(&j);
        kv_json_key(&j, "what");
        kv_json_str(&j, t.what.c_str());
        kv_json_key(&j, "method");
        kv_json_str(&j, t.method.c_str());
        kv_json_key(&j, "context");
        kv_json_int(&j, t.context);
        kv_json_key(&j, "budget");
        kv_json_int(&j, t.budget);
        kv_json_key(&j, "batch");
        kv_json_int(&j, t.batch);
        kv_json_key(&j, "cache_tokens");
        kv_json_int(&j, t.C);
        kv_json_key(&j, "page_size");
        kv_json_int(&j, t.p);
        kv_json_key(&j, "topr");
        kv_json_int(&j, t.r);
        kv_json_key(&j, "topk");
        kv_json_int(&j, t.k);
        kv_json_key(&j, "kv_heads");
        kv_json_int(&j, HKV);
        kv_json_key(&j, "group");
        kv_json_int(&j, GQ);
        kv_json_key(&j, "head_dim");
        kv_json_int(&j, DH);
        kv_json_key(&j, "median_s");
        kv_json_num(&j, t.median_s);
        kv_json_key(&j, "min_s");
        kv_json_num(&j, t.min_s);
        kv_json_key(&j, "reps");
        kv_json_int(&j, t.reps);
        kv_json_key(&j, "bytes");
        kv_json_num(&j, t.bytes);
        kv_json_key(&j, "bytes_per_s");
        kv_json_num(&j, t.bytes > 0 ? t.bytes_per_s : 0.0);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_obj_end(&j);
    fputc('\n', f.fp);
    if (kv_afile_commit(&f, &err)) {
        fprintf(stderr, "gpu_check: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void gpu_check_abort(const char *msg)
{
    fprintf(stderr, "gpu_check: %s\n", msg);
    snprintf(g_abort, sizeof g_abort, "%s", msg);
    if (g_out && !g_in_abort) {
        g_in_abort = 1;
        probe_out none = {NAN, NAN, NAN, NAN, {}}; /* written as null: not calibration data */
        if (write_report(g_out, g_prop, g_smi, none) == 0)
            fprintf(stderr, "gpu_check: partial report (aborted) written to %s\n", g_out);
    }
    exit(1);
}

static void print_table(double read_bps)
{
    printf("\n%-8s %-7s %7s %6s %5s %10s %8s %6s %8s\n", "method", "what", "context", "budget", "batch", "median_us",
           "GB/s", "%read", "vs_full");
    for (auto &t : g_times) {
        if (t.what != "step" && t.what != "stage1")
            continue;
        double sp = 0;
        for (auto &u : g_times)
            if (t.what == "step" && u.method == "full" && u.context == t.context && u.batch == t.batch)
                sp = u.median_s / t.median_s;
        printf("%-8s %-7s %7lld %6lld %5lld %10.1f %8.1f %6.1f %7.2fx\n", t.method.c_str(), t.what.c_str(), t.context,
               t.budget, t.batch, t.median_s * 1e6, t.bytes_per_s / 1e9, 100.0 * t.bytes_per_s / read_bps, sp);
    }
    printf("(GB/s from analytic bytes; %%read = share of the measured stream-read bandwidth %.1f GB/s; vs_full = "
           "dense step time / this step time)\n",
           read_bps / 1e9);
}

/* Template instances and paths no other case reaches, on both lists:
 * attend<128, 8> and attend<64, 4> (G = 8 at d = 128, G ≤ 4 at d = 64),
 * G = 1 and G = 8 through stage 2 at d = 128, k at or above the tokens
 * cached (the select's early exit: every page), batch > 1 with odd
 * lengths, a length of one token, pages that do not divide the length
 * (p = 5, 7), stage 1 with batch 2 and G = 1. */
static void run_checks_edges(void)
{
    check_attend("dense/b2-g8-d128-odd", 2, 1, 8, 128, {257, 3}, false, 21);
    check_attend("dense/b3-g3-d64-odd", 3, 1, 3, 64, {77, 1, 130}, false, 22);
    check_attend("sparse/b2-g2-d64", 2, 1, 2, 64, {301, 45}, true, 23);
    check_hsa("hsa/g1-d128-b2-p5", 2, 1, 1, 128, {333, 101}, 5, 24, 64, 0, 0, 24);
    check_hsa("hsa/g8-d128-p7", 1, 1, 8, 128, {299}, 7, 33, 97, 0, 0, 25);
    check_hsa("hsa/k-ge-total-b2", 2, 1, 4, 64, {50, 37}, 5, 16, 200, 0, 0, 26);
    check_hsa("hsa/k-ge-total-pages", 1, 1, 4, 128, {41}, 4, 16, 64, 1, 0, 27);
    check_stage1("stage1/b2-g1-s257", 2, 1, 1, 128, 257, 16, 100, 7, 0, 28);
}

/* The GPU's check list: odd sizes, per-sequence lengths, both head dims,
 * G = 1/4/8, ties, page granularity, p = 1, a new page by update. */
static void run_checks(void)
{
    check_attend("dense/b1-g4-d128-4099", 1, 8, 4, 128, {4099}, false, 1);
    check_attend("dense/b3-g4-d128-mixed", 3, 2, 4, 128, {32769, 1000, 63}, false, 2);
    check_attend("dense/b2-g8-d64-1110", 2, 2, 8, 64, {1110, 1}, false, 3);
    check_attend("dense/b1-g1-d128-127", 1, 3, 1, 128, {127}, false, 4);
    check_attend("sparse/b2-g4-d128", 2, 4, 4, 128, {8222, 213}, true, 5);
    check_attend("sparse/b1-g8-d64", 1, 2, 8, 64, {4099}, true, 6);
    check_hsa("hsa/s16k-t256", 1, 8, 4, 128, {1596}, 3, 61, 128, 0, 0, 7);
    check_hsa("hsa/s64k-t4096-b2", 2, 4, 4, 128, {19354, 12345}, 3, 81, 2048, 0, 0, 8);
    check_hsa("hsa/p1-full-dims", 1, 2, 4, 128, {200}, 1, 128, 128, 0, 0, 9);
    check_hsa("hsa/ties-p7", 2, 2, 4, 128, {4099, 1110}, 7, 40, 301, 0, 1, 10);
    check_hsa("hsa/page-gran-p4", 1, 2, 4, 128, {2000}, 4, 32, 129, 1, 0, 11);
    check_hsa("hsa/g8-d64-p16", 1, 2, 8, 64, {4099}, 16, 20, 500, 0, 0, 12);
    check_hsa("hsa/new-page", 1, 2, 4, 128, {1597}, 3, 61, 128, 0, 0, 13);
    check_stage1("stage1/s4099-w32-k63", 1, 2, 4, 128, 4099, 32, 1000, 63, 0, 14);
    check_stage1("stage1/s1110-g8-d64-k7", 1, 2, 8, 64, 1110, 8, 300, 7, 0, 15);
    check_stage1("stage1/ties-s2000", 1, 1, 4, 128, 2000, 32, 500, 63, 1, 16);
    check_stage1("stage1/keep-all", 1, 1, 4, 128, 300, 32, 500, 63, 0, 17);
    run_checks_edges();
}

/* The CPU emulation's list (kcu_emu.h): the same checks at shapes small
 * enough for one OS thread per CUDA thread. */
static void run_checks_small(void)
{
    check_attend("dense/b2-g4-d128-mixed", 2, 2, 4, 128, {1100, 63}, false, 2);
    check_attend("dense/b1-g8-d64-300", 1, 1, 8, 64, {300}, false, 3);
    check_attend("sparse/b1-g4-d128", 1, 2, 4, 128, {999}, true, 5);
    check_hsa("hsa/s16k-t256", 1, 2, 4, 128, {1596}, 3, 61, 128, 0, 0, 7);
    check_hsa("hsa/p1-full-dims", 1, 1, 4, 128, {200}, 1, 128, 128, 0, 0, 9);
    check_hsa("hsa/ties-p7", 1, 1, 4, 128, {1110}, 7, 40, 301, 0, 1, 10);
    check_hsa("hsa/page-gran-p4", 1, 1, 4, 128, {700}, 4, 32, 129, 1, 0, 11);
    check_hsa("hsa/g8-d64-p16", 1, 1, 8, 64, {1500}, 16, 20, 500, 0, 0, 12);
    check_hsa("hsa/new-page", 1, 1, 4, 128, {1597}, 3, 61, 128, 0, 0, 13);
    check_stage1("stage1/s700-w32-k63", 1, 1, 4, 128, 700, 32, 200, 63, 0, 14);
    check_stage1("stage1/s300-g8-d64-k7", 1, 1, 8, 64, 300, 8, 100, 7, 0, 15);
    check_stage1("stage1/ties-s500", 1, 1, 4, 128, 500, 32, 150, 63, 1, 16);
    check_stage1("stage1/keep-all", 1, 1, 4, 128, 100, 32, 500, 63, 0, 17);
    run_checks_edges();
}

int main(int argc, char **argv)
{
    const char *out = NULL, *smi = NULL, *out_dir = NULL;
    char out_buf[1024];
    bool quick = false, no_time = false, emu_full = false, small = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--out-dir") && i + 1 < argc)
            out_dir = argv[++i];
        else if (!strcmp(argv[i], "--smi") && i + 1 < argc)
            smi = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--checks-only"))
            no_time = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            g_only = argv[++i];
        else if (!strcmp(argv[i], "--emu-full"))
            emu_full = true;
        else if (!strcmp(argv[i], "--small"))
            small = true;
        else {
            fprintf(stderr, "usage: gpu_check (--out FILE | --out-dir DIR) [--quick] [--checks-only] [--smi TEXT]"
                            " [--only NAME] [--emu-full] [--small]\n");
            return 2;
        }
    }
    if (!out && !out_dir) {
        fprintf(stderr, "gpu_check: --out FILE or --out-dir DIR is required\n");
        return 2;
    }
    double t0 = kv_now_s();
    cudaDeviceProp pr;
    CK(cudaGetDeviceProperties(&pr, 0));
    if (!out) { /* DIR/<device slug>-<UTC date>.json */
        char slug[256];
        size_t n = 0;
        for (const char *c = pr.name; *c && n + 1 < sizeof slug; c++) {
            char ch = (char)tolower((unsigned char)*c);
            if (isalnum((unsigned char)ch))
                slug[n++] = ch;
            else if (n && slug[n - 1] != '-')
                slug[n++] = '-';
        }
        while (n && slug[n - 1] == '-')
            n--;
        slug[n] = 0;
        char date[16];
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
        snprintf(out_buf, sizeof out_buf, "%s/%s-%s.json", out_dir, slug, date);
        out = out_buf;
    }
    g_sms = pr.multiProcessorCount;
    g_l2 = (size_t)pr.l2CacheSize;
    CK(cudaStreamCreateWithFlags(&g_st, cudaStreamNonBlocking));
    {
        size_t fr, tot;
        CK(cudaMemGetInfo(&fr, &tot));
        g_usable = fr;
    }
    CK(cudaMalloc(&g_flush, 2 * g_l2));
    g_out = out;
    g_prop = pr;
    g_smi = smi;
    printf("gpu_check on %s (cc %d.%d, %d SMs, L2 %zu B)\n", pr.name, pr.major, pr.minor, g_sms, g_l2);

#ifdef KCU_EMU
    if (emu_full)
        run_checks();
    else
        run_checks_small();
    {
        int nfail_emu = 0;
        for (auto &c : g_checks)
            nfail_emu += !c.pass;
        probe_out none = {NAN, NAN, NAN, NAN, {}};
        if (write_report(out, pr, smi, none) != 0)
            return 1;
        printf("%d emulated checks, %d failed; report %s; %.1f s\n", (int)g_checks.size(), nfail_emu, out,
               kv_now_s() - t0);
        (void)quick;
        (void)no_time;
        (void)small;
        return nfail_emu ? 1 : 0;
    }
#endif
    if (emu_full) {
        fprintf(stderr, "gpu_check: --emu-full exists only in the CPU emulation build (make cuda-emu)\n");
        return 2;
    }
    if (small) /* the emulation's list (compute-sanitizer runs) */
        run_checks_small();
    else
        run_checks();
    printf("checks done in %.1f s\n", kv_now_s() - t0);

    probe_out none = {NAN, NAN, NAN, NAN, {}};
    probe_out po = small && no_time ? none : run_probes(quick);

    if (!no_time) {
        long long ctxs[] = {32768, 65536, 131072}, budgets[] = {256, 1024, 4096};
        int batches[] = {1, 8};
        for (long long ctx : ctxs)
            for (int b : batches) {
                if (quick && (ctx > 32768 || b > 1))
                    continue;
                time_dense(ctx, b);
                for (long long t : budgets)
                    time_rocketkv(ctx, t, b);
            }
        for (long long ctx : ctxs)
            if (!quick || ctx == 32768)
                time_stage1(ctx, 1024);
    }
    int rc = write_report(out, pr, smi, po);
    print_table(po.read_bps);
    int nfail = 0;
    for (auto &c : g_checks)
        nfail += !c.pass;
    printf("%d checks, %d failed; report %s; %.1f s\n", (int)g_checks.size(), nfail, out, kv_now_s() - t0);
    return (rc || nfail) ? 1 : 0;
}
