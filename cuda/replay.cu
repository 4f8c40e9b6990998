/* replay.cu — `kvsim-cuda replay --trace FILE [--check] [--time] [--json]
 * [--reps N]`: replays a kvsim trace on the GPU with the kernels of
 * kcu_kernels.h (cuda/REPLAY.md).
 *
 * For every recorded layer: regenerates the trace's workload from its
 * provenance on the host (refimpl's rkv_workload_kv / rkv_workload_query via
 * kcu_replay_gen_*, bf16 exactly as refimpl stores it) and uploads it into
 * model-shaped buffers K, V [B][Hkv][cap][d]; rocketkv runs stage 1
 * (kcu_stage1) over the prompt; the decode cache is then the trace's stage-1
 * kept positions followed by the generated tokens (compacted slots,
 * traces/FORMAT.md), so stage-2 checks do not inherit a stage-1 near-tie.
 * Each decode step appends its token's row (rows past the cache stay NaN),
 * then runs the method's kernels, the newest versions: full = kcu_attend
 * (dense version 5: v5 at G = 8, else v4); hsa / rocketkv = stage 2 v5 (pages_update, which launches
 * nothing there, score v3 folding the token, select v4), kcu_attend over the
 * selection (dense version 5, the gather split count); stage 1 with select v2.
 *
 * --check (the default): stage-1 kept sets and stage-2 selected positions
 * equal the trace's exactly, differing candidates split into near-ties
 * (score within 1e-4 stage 1 / 1e-9 stage 2 of the threshold score; reported
 * with the gap) and mismatches; chosen dims equal the trace's; outputs within
 * atol + rtol·|ref| of kcu_ref_attend (double) over the same rows, the
 * tolerance stated per KV dtype (kcu_replay_tolerance); no NaN. Padding is
 * poisoned: K/V rows past the cache are bf16 NaN, outputs and position slots
 * are NaN / -1 filled before each step, aux past the last page is NaN and
 * must stay so.
 * --time: on the first recorded layer, the decode step of the trace's method
 * and of dense attention over the uncompressed cache at every recorded step,
 * each kernel of the method's step at the last step, and stage 1: CUDA
 * events around one CUDA-graph replay, L2 flushed (2×L2 memset) before each
 * rep, median of --reps (>= 10, default 20) after 3 warm-ups.
 *
 * The host-side decisions (plan, comparisons, tolerances, report) are in
 * replay_host.c, tested on the CPU; this file only moves data and launches.
 * Built as build/kvsim-cuda (mk/replay.mk) because it links CUDA; the CPU
 * build/kvsim does not. No GPU has run it yet (cuda/REPLAY.md). */
#include "kcu_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

extern "C" {
#include "kv_common.h"
#include "rkv.h"
#include "trc.h"
}
#include "kcu.h"
#include "kcu_kernels.h"
#include "kcu_ref.h"
#include "kcu_replay.h"

#define CK(x)                                                                                           \
    do {                                                                                                \
        cudaError_t e_ = (x);                                                                           \
        if (e_ != cudaSuccess) {                                                                        \
            fprintf(stderr, "kvsim replay: %s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                                    \
        }                                                                                               \
    } while (0)

static const uint16_t BF16_NAN = 0x7fc0;
static const double STAGE1_EPS = 1e-4, STAGE2_EPS = 1e-9;

template <class T>
static T *dalloc(size_t n)
{
    T *p;
    CK(cudaMalloc(&p, n * sizeof(T) + 16));
    return p;
}
template <class T>
static void h2d(cudaStream_t st, T *d, const T *h, size_t n)
{
    CK(cudaMemcpyAsync(d, h, n * sizeof(T), cudaMemcpyHostToDevice, st));
    CK(cudaStreamSynchronize(st));
}
template <class T>
static void d2h(cudaStream_t st, T *h, const T *d, size_t n)
{
    CK(cudaMemcpyAsync(h, d, n * sizeof(T), cudaMemcpyDeviceToHost, st));
    CK(cudaStreamSynchronize(st));
}

/* ------------------------------------------------------------ state */
struct replay {
    trc_reader *r;
    const trc_header *h;
    kcu_replay_plan pl;
    kcu_replay_report *rep;
    cudaStream_t st;
    int sms;
    size_t l2;
    void *flush;
    int reps;
    size_t nbh;                       /* B·Hkv */
    int rows;                         /* aux rows */
    /* host, per (b, kv head): */
    std::vector<uint16_t> K, V;       /* [bh][tokens][d] positions order */
    std::vector<uint16_t> Kc, Vc;     /* [bh][cap][d] compacted slots */
    std::vector<int32_t> map;         /* [bh][cap] slot -> position */
    std::vector<float> q;             /* [bh][G][d] */
    /* device */
    uint16_t *dK, *dV, *daux;
    float *dq, *dout, *dws, *dws_dense;
    int32_t *dlen, *ddims, *dpos, *dcount;
    double *dz, *davg, *dws4;
    uint16_t *dKd, *dVd;              /* dense timing: [bh][tokens][d] */
    /* stage 1 */
    uint16_t *dK1;
    float *dQw, *dws1;
    double *dvotes, *dpooled;
    int32_t *dkept;
    int nsplit, nsplit_dense;
    kcu_hsa_args ha;
    kcu_attend_args aa, ad;
    kcu_stage1_args s1a;
};

static void alloc_all(replay &R)
{
    const kcu_replay_plan &p = R.pl;
    const size_t nbh = R.nbh, d = p.d, G = p.G;
    R.rows = kcu_aux_rows(p.d, p.p);
    R.K.resize(nbh * p.tokens * d);
    R.V.resize(nbh * p.tokens * d);
    R.Kc.resize(nbh * p.cap * d);
    R.Vc.resize(nbh * p.cap * d);
    R.map.resize(nbh * p.cap);
    R.q.resize(nbh * G * d);
    R.dK = dalloc<uint16_t>(nbh * p.cap * d);
    R.dV = dalloc<uint16_t>(nbh * p.cap * d);
    R.dq = dalloc<float>(nbh * G * d);
    R.dout = dalloc<float>(nbh * G * d);
    R.dlen = dalloc<int32_t>(p.B);
    R.daux = dalloc<uint16_t>(nbh * R.rows * p.npages_cap);
    R.dz = dalloc<double>(nbh * G * p.npages_cap);
    R.davg = dalloc<double>(nbh * p.npages_cap);
    R.ddims = dalloc<int32_t>(nbh * d);
    R.dpos = dalloc<int32_t>(nbh * p.pos_cap);
    R.dcount = dalloc<int32_t>(nbh);
    /* stage 2 v5's workspace (dims table, tile partials, select v4's counters): zeroed once */
    R.dws4 = dalloc<double>(kcu_hsa_ws4_bytes(p.B, p.Hkv, p.npages_cap) / 8 + 1);
    CK(cudaMemsetAsync(R.dws4, 0, kcu_hsa_ws4_bytes(p.B, p.Hkv, p.npages_cap), R.st));
    R.nsplit = p.kind == KCU_REPLAY_FULL ? kcu_attend_splits(p.cap, p.B, p.Hkv, R.sms)
                                         : kcu_gather_splits(p.pos_cap, p.B, p.Hkv, R.sms);
    R.dws = dalloc<float>(kcu_attend_ws_bytes(p.B, p.Hkv, p.G, p.d, R.nsplit) / 4 + 1);
    CK(cudaMemsetAsync(R.dws, 0, kcu_attend_ws_bytes(p.B, p.Hkv, p.G, p.d, R.nsplit), R.st)); /* v4's tickets */
    R.nsplit_dense = kcu_attend_splits(p.tokens, p.B, p.Hkv, R.sms);
    R.dws_dense = dalloc<float>(kcu_attend_ws_bytes(p.B, p.Hkv, p.G, p.d, R.nsplit_dense) / 4 + 1);
    CK(cudaMemsetAsync(R.dws_dense, 0, kcu_attend_ws_bytes(p.B, p.Hkv, p.G, p.d, R.nsplit_dense), R.st));
    R.dKd = R.dVd = nullptr;
    R.dK1 = nullptr;
    if (p.kind == KCU_REPLAY_ROCKETKV && p.P < p.S) {
        R.dK1 = dalloc<uint16_t>(nbh * p.S * d);
        R.dQw = dalloc<float>(nbh * G * p.w * d);
        R.dws1 = dalloc<float>(kcu_stage1_ws_bytes(p.S, p.B, p.Hkv, p.G, p.w) / 4 + 1);
        R.dvotes = dalloc<double>(nbh * p.S);
        R.dpooled = dalloc<double>(nbh * p.S);
        R.dkept = dalloc<int32_t>(nbh * p.P);
        kcu_stage1_args s = {R.dK1, p.S, p.S, R.dQw, p.w, p.P, p.kernel, p.B, p.Hkv, p.G, p.d,
                             R.dws1, R.dvotes, R.dpooled, R.dkept, 1 /* select v2 */};
        R.s1a = s;
    }
    kcu_hsa_args h;
    memset(&h, 0, sizeof h);
    h.K = R.dK;
    h.cap = p.cap;
    h.len = R.dlen;
    h.B = p.B;
    h.Hkv = p.Hkv;
    h.G = p.G;
    h.d = p.d;
    h.p = p.p;
    h.npages_cap = p.npages_cap;
    h.aux = R.daux;
    h.q = R.dq;
    h.r = p.r;
    h.k = p.k;
    h.page_granularity = p.page_granularity;
    h.z = R.dz;
    h.avg = R.davg;
    h.dims = R.ddims;
    h.pos = R.dpos;
    h.pos_cap = p.pos_cap;
    h.count = R.dcount;
    h.v4 = 1;          /* select v4 (v1 on score v3's z where npages_cap > 8192) */
    h.score_v3 = 1;    /* stage 2 v5: score v3 folds the token and builds the dims table */
    h.ws4 = R.dws4;
    h.sms = R.sms;     /* score v3: one wave, the table built once per block */
    R.ha = h;
    const bool sparse = p.kind != KCU_REPLAY_FULL;
    kcu_attend_args a = {R.dK,    R.dV,  p.cap, R.dq,  R.dlen,   sparse ? R.dpos : nullptr, sparse ? R.dcount : nullptr,
                         sparse ? p.pos_cap : 0, p.B, p.Hkv, p.G,   p.d, R.nsplit, R.dws, R.dout, 2, 5};
    R.aa = a;
}

static void free_all(replay &R)
{
    void *ps[] = {R.dK, R.dV, R.dq, R.dout, R.dlen, R.daux, R.dz, R.davg, R.ddims, R.dpos, R.dcount, R.dws4,
                  R.dws, R.dws_dense, R.dKd, R.dVd, R.dK1};
    for (void *p : ps)
        if (p)
            cudaFree(p);
    if (R.dK1) {
        cudaFree(R.dQw);
        cudaFree(R.dws1);
        cudaFree(R.dvotes);
        cudaFree(R.dpooled);
        cudaFree(R.dkept);
    }
}

/* The method's decode-step kernels (capturable: sizes are read on the device). */
static void launch_step(replay &R, unsigned mask)
{
    if (R.pl.kind == KCU_REPLAY_FULL) {
        CK(kcu_attend(&R.aa, R.st));
        return;
    }
    if (mask & 1)
        CK(kcu_hsa_pages_update(&R.ha, R.st));
    if (mask & 2)
        CK(kcu_hsa_score(&R.ha, R.st));
    if (mask & 4)
        CK(kcu_hsa_select(&R.ha, R.st));
    if (mask & 8)
        CK(kcu_attend(&R.aa, R.st));
}

static void set_len(replay &R, int64_t C)
{
    std::vector<int32_t> len((size_t)R.pl.B, (int32_t)C);
    h2d(R.st, R.dlen, len.data(), len.size());
}

/* ------------------------------------------------------------ stage 1 */
static int stage1(replay &R, int li, kv_err *err)
{
    const kcu_replay_plan &p = R.pl;
    const int layer = R.h->layers[li];
    const size_t d = p.d, G = p.G, w = p.w, S = p.S;
    std::vector<uint16_t> K1(R.nbh * S * d);
    std::vector<float> Qw(R.nbh * G * w * d), q(G * d);
    for (size_t bh = 0; bh < R.nbh; bh++) {
        int b = (int)(bh / p.Hkv), kvh = (int)(bh % p.Hkv);
        memcpy(&K1[bh * S * d], &R.K[bh * p.tokens * d], S * d * 2);
        for (size_t i = 0; i < w; i++) {
            kcu_replay_gen_query(R.h, b, layer, kvh, (int64_t)(S - w + i), 0, q.data());
            for (size_t g = 0; g < G; g++)
                memcpy(&Qw[((bh * G + g) * w + i) * d], &q[g * d], d * 4);
        }
    }
    h2d(R.st, R.dK1, K1.data(), K1.size());
    h2d(R.st, R.dQw, Qw.data(), Qw.size());
    CK(cudaMemsetAsync(R.dkept, 0xff, R.nbh * p.P * 4, R.st));
    CK(cudaMemsetAsync(R.dpooled, 0xff, R.nbh * S * 8, R.st));
    CK(kcu_stage1(&R.s1a, R.st));
    CK(cudaStreamSynchronize(R.st));
    if (!R.rep->checked)
        return 0;
    std::vector<int32_t> kept(R.nbh * p.P);
    std::vector<double> pooled(R.nbh * S);
    d2h(R.st, kept.data(), R.dkept, kept.size());
    d2h(R.st, pooled.data(), R.dpooled, pooled.size());
    std::vector<int64_t> scr(2 * S);
    char nm[64];
    snprintf(nm, sizeof nm, "layer%d/stage1", layer);
    kcu_replay_check *c = kcu_replay_add_check(R.rep, nm);
    trc_stage1 s1;
    memset(&s1, 0, sizeof s1);
    for (int b = 0; b < p.B; b++) {
        if (trc_read_stage1(R.r, b, &s1, err) != 0)
            return -1;
        for (int kvh = 0; kvh < p.Hkv; kvh++) {
            const trc_stage1_rec *tr = &s1.rec[li * p.Hkv + kvh];
            size_t bh = (size_t)b * p.Hkv + kvh;
            kcu_replay_setcmp o;
            kcu_replay_compare_sets(tr->pos[0], tr->count[0], &kept[bh * p.P], p.P, p.S, 1, &pooled[bh * S],
                                    STAGE1_EPS, scr.data(), &o);
            if (c)
                kcu_replay_setcmp_add(&c->sets, &o);
        }
    }
    trc_stage1_free(&s1);
    if (c) {
        c->pass = c->sets.nbad == 0;
        snprintf(c->detail, sizeof c->detail,
                 "P=%lld: %lld kept positions vs the trace's %lld: %lld near-tie flips (max gap %.2e), %lld mismatches",
                 (long long)p.P, (long long)c->sets.ngot, (long long)c->sets.nref, (long long)c->sets.nnear,
                 c->sets.max_near_gap, (long long)c->sets.nbad);
    }
    return 0;
}

/* ---------------------------------------------------- one layer, checked */
static int run_layer(replay &R, int li, kv_err *err)
{
    const kcu_replay_plan &p = R.pl;
    const int layer = R.h->layers[li];
    const size_t d = p.d, G = p.G, nbh = R.nbh;
    std::vector<float> Kf(p.tokens * d), Vf(p.tokens * d);
    for (size_t bh = 0; bh < nbh; bh++)
        if (kcu_replay_gen_kv(R.h, &p, (int)(bh / p.Hkv), layer, (int)(bh % p.Hkv), &R.K[bh * p.tokens * d],
                              &R.V[bh * p.tokens * d], Kf.data(), Vf.data(), err) != 0)
            return -1;
    if (R.dK1 && stage1(R, li, err) != 0)
        return -1;
    /* the decode cache: the trace's kept list (or every prompt position), then generated tokens */
    trc_stage1 s1;
    memset(&s1, 0, sizeof s1);
    for (int b = 0; b < p.B; b++) {
        if (trc_read_stage1(R.r, b, &s1, err) != 0)
            return -1;
        for (int kvh = 0; kvh < p.Hkv; kvh++) {
            size_t bh = (size_t)b * p.Hkv + kvh;
            const trc_stage1_rec *tr = &s1.rec[li * p.Hkv + kvh];
            const bool evicts = p.kind == KCU_REPLAY_ROCKETKV && p.P < p.S;
            if (kcu_replay_slot_map(&p, evicts ? tr->pos[0] : nullptr, evicts ? tr->count[0] : 0,
                                    &R.map[bh * p.cap]) != 0) {
                trc_stage1_free(&s1);
                return kv_errf(err, "%s: sequence %d layer %d KV head %d: the stage-1 list holds %lld positions, "
                               "the plan expects %lld ascending below S", R.rep->trace, b, layer, kvh,
                               (long long)tr->count[0], (long long)p.C0);
            }
            kcu_replay_compact(&R.K[bh * p.tokens * d], &R.map[bh * p.cap], p.cap, p.d, &R.Kc[bh * p.cap * d]);
            kcu_replay_compact(&R.V[bh * p.tokens * d], &R.map[bh * p.cap], p.cap, p.d, &R.Vc[bh * p.cap * d]);
        }
    }
    trc_stage1_free(&s1);
    /* upload slots 0 .. C0-1; slots past the cache are NaN until their step */
    {
        std::vector<uint16_t> Kp(R.Kc), Vp(R.Vc);
        for (size_t bh = 0; bh < nbh; bh++)
            for (size_t e = (size_t)p.C0 * d; e < (size_t)p.cap * d; e++)
                Kp[bh * p.cap * d + e] = Vp[bh * p.cap * d + e] = BF16_NAN;
        h2d(R.st, R.dK, Kp.data(), Kp.size());
        h2d(R.st, R.dV, Vp.data(), Vp.size());
    }
    set_len(R, p.C0);
    if (p.kind != KCU_REPLAY_FULL) {
        CK(cudaMemsetAsync(R.daux, 0xff, nbh * R.rows * p.npages_cap * 2, R.st));
        CK(kcu_hsa_pages_build(&R.ha, R.st));
    }
    char nm[64];
    kcu_replay_check *cpos = nullptr, *cdims = nullptr, *cout = nullptr;
    if (R.rep->checked) {
        snprintf(nm, sizeof nm, "layer%d/positions", layer);
        cpos = kcu_replay_add_check(R.rep, nm);
        if (p.kind != KCU_REPLAY_FULL) {
            snprintf(nm, sizeof nm, "layer%d/dims", layer);
            cdims = kcu_replay_add_check(R.rep, nm);
        }
        snprintf(nm, sizeof nm, "layer%d/outputs", layer);
        cout = kcu_replay_add_check(R.rep, nm);
    }
    std::vector<float> out(nbh * G * d);
    std::vector<int32_t> pos(nbh * p.pos_cap), cnt(nbh), dims(nbh * d), refslots(p.cap), all(p.cap);
    std::vector<double> avg(nbh * p.npages_cap), ref(G * d);
    std::vector<uint16_t> aux;
    std::vector<int64_t> scr(2 * (size_t)std::max<int64_t>(p.cap, p.npages_cap));
    for (int64_t i = 0; i < p.cap; i++)
        all[i] = (int32_t)i;
    trc_step ts;
    memset(&ts, 0, sizeof ts);
    long long aux_pad_bad = 0;
    for (int64_t s = 0; s < p.steps; s++) {
        const int64_t C = kcu_replay_cache_tokens(&p, s), slot = C - 1;
        for (size_t bh = 0; bh < nbh; bh++) { /* append this step's token, and its queries */
            const size_t o = (bh * p.cap + slot) * d;
            h2d(R.st, R.dK + o, &R.Kc[o], d);
            h2d(R.st, R.dV + o, &R.Vc[o], d);
            kcu_replay_gen_query(R.h, (int)(bh / p.Hkv), layer, (int)(bh % p.Hkv), kcu_replay_position(&p, s), 1,
                                 &R.q[bh * G * d]);
        }
        h2d(R.st, R.dq, R.q.data(), R.q.size());
        set_len(R, C);
        CK(cudaMemsetAsync(R.dout, 0xff, out.size() * 4, R.st));
        CK(cudaMemsetAsync(R.dpos, 0xff, pos.size() * 4, R.st));
        launch_step(R, 15);
        CK(cudaStreamSynchronize(R.st));
        if (!R.rep->checked)
            continue;
        d2h(R.st, out.data(), R.dout, out.size());
        if (p.kind != KCU_REPLAY_FULL) {
            d2h(R.st, pos.data(), R.dpos, pos.size());
            d2h(R.st, cnt.data(), R.dcount, cnt.size());
            d2h(R.st, dims.data(), R.ddims, dims.size());
            d2h(R.st, avg.data(), R.davg, avg.size());
        }
        const int64_t np = kcu_npages(C, p.p);
        for (int b = 0; b < p.B; b++) {
            if (trc_read_step(R.r, b, s, &ts, err) != 0) {
                trc_step_free(&ts);
                return -1;
            }
            for (int kvh = 0; kvh < p.Hkv; kvh++) {
                const size_t bh = (size_t)b * p.Hkv + kvh;
                const trc_record *rec = trc_step_find(R.r, &ts, layer, kvh);
                if (!rec || !rec->shared) {
                    trc_step_free(&ts);
                    return kv_errf(err, "%s: step %lld sequence %d layer %d KV head %d: %s", R.rep->trace,
                                   (long long)s, b, layer, kvh, rec ? "per-head position lists (not a shared "
                                   "selection)" : "no record");
                }
                int64_t nref = 0, bad_pos = 0;
                for (int64_t i = 0; i < rec->count[0]; i++) {
                    int64_t sl = kcu_replay_slot_of(&R.map[bh * p.cap], C, rec->pos[0][i]);
                    if (sl < 0)
                        bad_pos++;
                    else
                        refslots[nref++] = (int32_t)sl;
                }
                const int32_t *got = p.kind == KCU_REPLAY_FULL ? all.data() : &pos[bh * p.pos_cap];
                const int64_t ngot = p.kind == KCU_REPLAY_FULL ? C : cnt[bh];
                kcu_replay_setcmp o;
                if (p.kind == KCU_REPLAY_FULL)
                    kcu_replay_compare_sets(refslots.data(), nref, got, ngot, C, 1, nullptr, 0, scr.data(), &o);
                else
                    kcu_replay_compare_sets(refslots.data(), nref, got, ngot, np, p.p, &avg[bh * p.npages_cap],
                                            STAGE2_EPS, scr.data(), &o);
                o.nbad += bad_pos;
                kcu_replay_setcmp_add(&cpos->sets, &o);
                if (cdims)
                    for (int64_t i = 0; i < rec->ndims && i < p.d; i++)
                        cdims->dims_bad += rec->ndims != p.r || dims[bh * d + i] != rec->dims[0][i];
                /* outputs over the rows the GPU attended */
                kcu_ref_attend(&R.Kc[bh * p.cap * d], &R.Vc[bh * p.cap * d], p.d, p.G, &R.q[bh * G * d],
                               p.kind == KCU_REPLAY_FULL ? nullptr : got, ngot, ref.data());
                kcu_replay_tol_check(&out[bh * G * d], ref.data(), (int64_t)(G * d), p.atol, p.rtol, &cout->tol);
            }
        }
    }
    trc_step_free(&ts);
    if (R.rep->checked && p.kind != KCU_REPLAY_FULL) { /* aux past the last page stays NaN */
        const int64_t np = kcu_npages(kcu_replay_cache_tokens(&p, p.steps - 1), p.p);
        aux.resize(nbh * R.rows * p.npages_cap);
        d2h(R.st, aux.data(), R.daux, aux.size());
        for (size_t bh = 0; bh < nbh; bh++)
            for (int row = 0; row < R.rows; row++)
                for (int64_t j = np; j < p.npages_cap; j++)
                    aux_pad_bad += aux[(bh * R.rows + row) * p.npages_cap + j] != 0xffff;
    }
    if (cpos) {
        cpos->pass = cpos->sets.nbad == 0 && aux_pad_bad == 0;
        snprintf(cpos->detail, sizeof cpos->detail,
                 "%lld steps: %lld positions vs the trace's %lld: %lld near-tie flips (max gap %.2e), %lld "
                 "mismatches (first gap %.2e); %lld aux padding values overwritten",
                 (long long)p.steps, (long long)cpos->sets.ngot, (long long)cpos->sets.nref,
                 (long long)cpos->sets.nnear, cpos->sets.max_near_gap, (long long)cpos->sets.nbad,
                 cpos->sets.first_bad >= 0 ? cpos->sets.first_bad_gap : 0.0, aux_pad_bad);
    }
    if (cdims) {
        cdims->pass = cdims->dims_bad == 0;
        snprintf(cdims->detail, sizeof cdims->detail, "r=%d: %lld chosen dims differ from the trace's", p.r,
                 (long long)cdims->dims_bad);
    }
    if (cout) {
        cout->pass = cout->tol.nbad == 0;
        snprintf(cout->detail, sizeof cout->detail,
                 "%lld outputs: %lld outside %.0e+%.0e|ref| (bf16 KV), %lld NaN, max abs %.2e", (long long)cout->tol.n,
                 (long long)cout->tol.nbad, p.atol, p.rtol, (long long)cout->tol.nnan, cout->tol.max_abs);
    }
    return 0;
}

/* ------------------------------------------------------------ timing */
template <class F>
static void time_reps(replay &R, F body, int reps, kcu_replay_time *t)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<double> x;
    for (int i = 0; i < reps + 3; i++) {
        CK(cudaMemsetAsync(R.flush, i & 0xff, 2 * R.l2, R.st));
        CK(cudaEventRecord(e0, R.st));
        body();
        CK(cudaEventRecord(e1, R.st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 3)
            x.push_back(ms * 1e-3);
    }
    t->min_s = *std::min_element(x.begin(), x.end());
    t->median_s = kcu_replay_median(x.data(), (int64_t)x.size());
    t->reps = reps;
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
}

template <class F>
static cudaGraphExec_t capture(replay &R, F fn)
{
    cudaGraph_t g;
    cudaGraphExec_t ex;
    CK(cudaStreamBeginCapture(R.st, cudaStreamCaptureModeGlobal));
    fn();
    CK(cudaStreamEndCapture(R.st, &g));
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphDestroy(g));
    return ex;
}

static void time_graph(replay &R, cudaGraphExec_t ex, const char *what, const char *method, int64_t step, int64_t C,
                       int reps)
{
    kcu_replay_time *t = kcu_replay_add_time(R.rep, what, method, step, C);
    if (t)
        time_reps(R, [&] { CK(cudaGraphLaunch(ex, R.st)); }, reps, t);
}

/* After run_layer(0): the cache holds every step's token. */
static void time_layer(replay &R)
{
    const kcu_replay_plan &p = R.pl;
    const size_t d = p.d;
    /* the method's step at every recorded step (len is read on the device) */
    cudaGraphExec_t ex = capture(R, [&] { launch_step(R, 15); });
    for (int64_t s = 0; s < p.steps; s++) {
        set_len(R, kcu_replay_cache_tokens(&p, s));
        time_graph(R, ex, "step", p.method, s, kcu_replay_cache_tokens(&p, s), R.reps);
    }
    CK(cudaGraphExecDestroy(ex));
    if (p.kind != KCU_REPLAY_FULL) { /* each kernel at the last step */
        const struct { const char *what; unsigned mask; } parts[] = {
            {"score_v3", 3}, {"select_v4", 4}, {"sparse_attend_v4", 8}};
        for (auto &pt : parts) {
            cudaGraphExec_t e = capture(R, [&] { launch_step(R, pt.mask); });
            time_graph(R, e, pt.what, p.method, p.steps - 1, kcu_replay_cache_tokens(&p, p.steps - 1), R.reps);
            CK(cudaGraphExecDestroy(e));
        }
        /* dense attention over the uncompressed cache (positions order), same steps */
        R.dKd = dalloc<uint16_t>(R.nbh * p.tokens * d);
        R.dVd = dalloc<uint16_t>(R.nbh * p.tokens * d);
        h2d(R.st, R.dKd, R.K.data(), R.K.size());
        h2d(R.st, R.dVd, R.V.data(), R.V.size());
        kcu_attend_args a = {R.dKd, R.dVd, p.tokens, R.dq, R.dlen, nullptr, nullptr, 0, p.B, p.Hkv, p.G, p.d,
                             R.nsplit_dense, R.dws_dense, R.dout, 2, 4};
        cudaGraphExec_t e = capture(R, [&] { CK(kcu_attend(&a, R.st)); });
        for (int64_t s = 0; s < p.steps; s++) {
            set_len(R, p.S + s + 1);
            time_graph(R, e, "step", "full", s, p.S + s + 1, R.reps);
        }
        CK(cudaGraphExecDestroy(e));
    }
    if (R.dK1) { /* stage 1 (sets its shared-memory attribute outside capture first) */
        CK(kcu_stage1(&R.s1a, R.st));
        cudaGraphExec_t e = capture(R, [&] { CK(kcu_stage1(&R.s1a, R.st)); });
        time_graph(R, e, "stage1", p.method, -1, p.S, std::max(10, R.reps / 2));
        CK(cudaGraphExecDestroy(e));
    }
}

/* ------------------------------------------------------------- main */
static void usage(FILE *fp)
{
    fputs("usage: kvsim-cuda replay --trace FILE [--check] [--time] [--json] [--reps N]\n\n"
          "Replays a kvsim trace (full, hsa or rocketkv) on the GPU with kvsim's CUDA kernels.\n"
          "  --check   selected positions equal the trace's (near-tie flips reported with their score gap),\n"
          "            chosen dims equal, outputs within atol + rtol|ref| per KV dtype, no NaN (the default)\n"
          "  --time    per-kernel and per-step times of the trace's method and of dense attention: CUDA\n"
          "            events, CUDA graphs, L2 flushed before each rep, median of N reps (20; at least 10)\n"
          "  --json    one JSON object on stdout\n",
          fp);
}

/* replay's flags. */
struct replay_args {
    const char *trace = nullptr;
    bool check = false, time_it = false, json = false;
    int reps = 20;
};

/* argv (after "replay") into a; -1 to exit 0 (help printed), 2 on a usage
 * error (message printed), else 0. --reps goes through the strict parser:
 * at least 10 repetitions. */
static int parse_args(int argc, char **argv, replay_args *a)
{
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            a->trace = argv[++i];
        else if (!strncmp(argv[i], "--trace=", 8))
            a->trace = argv[i] + 8;
        else if (!strcmp(argv[i], "--check"))
            a->check = true;
        else if (!strcmp(argv[i], "--time"))
            a->time_it = true;
        else if (!strcmp(argv[i], "--json"))
            a->json = true;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            int64_t v;
            kv_err err;
            if (kv_parse_i64_in("--reps", argv[++i], 10, 1000000, &v, &err) != 0) {
                fprintf(stderr, "kvsim replay: %s\n", err.msg);
                return 2;
            }
            a->reps = (int)v;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "kvsim replay: unknown or incomplete option '%s' (kvsim-cuda replay --help)\n", argv[i]);
            return 2;
        }
    }
    if (!a->trace) {
        fprintf(stderr, "kvsim replay: --trace FILE is required\n");
        return 2;
    }
    if (!a->check && !a->time_it)
        a->check = true;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "replay")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "kvsim-cuda: the one subcommand is 'replay' (kvsim-cuda replay --help)\n");
        return 2;
    }
    replay_args a;
    const int prc = parse_args(argc, argv, &a);
    if (prc != 0)
        return prc < 0 ? 0 : prc;
    const char *trace = a.trace;
    const bool check = a.check, time_it = a.time_it, json = a.json;
    const int reps = a.reps;
    kv_err err;
    replay R;
    if (trc_open(trace, &R.r, &err) != 0) {
        fprintf(stderr, "kvsim replay: %s\n", err.msg);
        return 1;
    }
    R.h = trc_get_header(R.r);
    if (kcu_replay_plan_make(R.h, &R.pl, &err) != 0) {
        fprintf(stderr, "kvsim replay: %s: %s\n", trace, err.msg);
        trc_close(R.r);
        return 1;
    }
    static kcu_replay_report rep;
    memset(&rep, 0, sizeof rep);
    R.rep = &rep;
    rep.plan = R.pl;
    rep.checked = check;
    rep.timed = time_it;
    snprintf(rep.trace, sizeof rep.trace, "%s", trace);
    cudaDeviceProp pr;
    CK(cudaGetDeviceProperties(&pr, 0));
    snprintf(rep.device, sizeof rep.device, "%.120s", pr.name);
    R.sms = pr.multiProcessorCount;
    R.l2 = (size_t)pr.l2CacheSize;
    R.reps = reps;
    R.nbh = (size_t)R.pl.B * R.pl.Hkv;
    CK(cudaStreamCreateWithFlags(&R.st, cudaStreamNonBlocking));
    CK(cudaMalloc(&R.flush, 2 * R.l2 + 16));
    alloc_all(R);
    int rc = 0;
    for (int li = 0; li < R.pl.nlayers && !rc; li++) {
        if (!check && li > 0)
            break; /* timing uses the first recorded layer only */
        if (run_layer(R, li, &err) != 0) {
            fprintf(stderr, "kvsim replay: %s\n", err.msg);
            rc = 1;
        } else if (time_it && li == 0)
            time_layer(R);
    }
    if (!rc) {
        if (json)
            kcu_replay_report_json(&rep, stdout);
        else
            kcu_replay_report_print(&rep, stdout);
        rc = kcu_replay_all_pass(&rep) ? 0 : 1;
    }
    free_all(R);
    cudaFree(R.flush);
    trc_close(R.r);
    return rc;
}
