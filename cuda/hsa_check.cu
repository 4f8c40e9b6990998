/* hsa_check.cu — the checks and timings of hsa.cu (stage 2), beside it:
 * pages, dims, scores bit-exact, the select of every version (v1–v4)
 * exact on identical scores and tie-aware end to end, sparse attention over
 * the GPU's selection; the RocketKV step and its parts timed.
 * Called by gpu_check.cu (the driver); shared helpers in gpu_check.h. */
#include "gpu_check.h"

/* --------------------------------------------------- stage-2 checks */
static std::vector<int64_t> takes_from_pos(const int32_t *pos, int64_t n, int64_t npages, int64_t p)
{
    std::vector<int64_t> t((size_t)npages, 0);
    for (int64_t i = 0; i < n; i++)
        if (pos[i] >= 0 && pos[i] / p < npages)
            t[(size_t)(pos[i] / p)]++;
    return t;
}

/* The stage-2 run's inputs and what the GPU returned, on the host. */
struct hsa_run {
    int Hkv, G, d, r, page_gran;
    int64_t cap, p, k, npc, rows, pos_cap;
    const std::vector<int32_t> *lens;
    std::vector<uint16_t> K, V, aux;
    std::vector<float> q, out;
    std::vector<double> sc, avg;
    std::vector<int32_t> dims, pos, cnt;
};

/* What the checks found, summed over every (sequence, KV head). */
struct hsa_tally {
    long long aux_bad = 0, pad_bad = 0, dims_bad = 0, sc_bad = 0, sel_bad = 0, e2e_bad = 0, e2e_diff = 0, att_bad = 0;
    double avg_rel = 0, mabs = 0, mrel = 0;
};

/* One (sequence, KV head) bh against kcu_ref: pages bit-exact, dims and page
 * scores from the GPU's aux bit-exact, the group mean, the selection on the
 * GPU's own mean exact, end to end tie-aware, sparse attention within tolerance. */
static void verify_head(const hsa_run &R, size_t bh, hsa_tally &t)
{
    const int G = R.G, d = R.d;
    const int64_t p = R.p, npc = R.npc, rows = R.rows, pos_cap = R.pos_cap, cap = R.cap;
    int64_t C = (*R.lens)[bh / R.Hkv], np = kcu_npages(C, p);
    std::vector<uint16_t> raux((size_t)rows * npc);
    const uint16_t *Kh = R.K.data() + bh * cap * d;
    kcu_ref_pages_build(Kh, C, d, p, npc, raux.data());
    const uint16_t *ga = R.aux.data() + bh * rows * npc;
    for (int64_t row = 0; row < rows; row++) {
        for (int64_t j = 0; j < np; j++)
            t.aux_bad += ga[row * npc + j] != raux[row * npc + j];
        for (int64_t j = np; j < npc; j++)
            t.pad_bad += ga[row * npc + j] != 0xffff;
    }
    /* dims, signs, τ, page scores: from the GPU's aux (already checked) */
    std::vector<int32_t> rd(d);
    std::vector<double> gsum(d), tau(G), ravg(np), scratch(4 * d);
    const float *qh = R.q.data() + bh * G * d;
    int rr = kcu_ref_hsa_dims(qh, G, d, R.r, rd.data(), gsum.data(), tau.data(), scratch.data());
    for (int i = 0; i < rr; i++)
        t.dims_bad += R.dims[bh * d + i] != rd[i];
    std::vector<double> rsc((size_t)G * np);
    kcu_ref_hsa_page_scores(ga, npc, d, p, G, qh, rd.data(), rr, gsum.data(), tau.data(), np, rsc.data());
    std::vector<double> gsc((size_t)G * np);
    for (int h = 0; h < G; h++)
        for (int64_t j = 0; j < np; j++) {
            double g = R.sc[(bh * G + h) * npc + j];
            gsc[(size_t)h * np + j] = g;
            t.sc_bad += memcmp(&g, &rsc[(size_t)h * np + j], sizeof g) != 0;
        }
    /* group mean from the GPU's scores */
    kcu_ref_hsa_average(gsc.data(), G, np, C, p, ravg.data());
    const double *gavg = R.avg.data() + bh * npc;
    for (int64_t j = 0; j < np; j++)
        t.avg_rel = std::max(t.avg_rel, fabs(gavg[j] - ravg[j]) / (fabs(ravg[j]) + 1e-300));
    /* selection on the GPU's own avg: exact */
    std::vector<int32_t> rpos((size_t)pos_cap + p);
    std::vector<uint64_t> keys(np);
    std::vector<int64_t> take(np), w(np);
    int64_t rn = kcu_ref_hsa_select(gavg, np, C, p, R.k, R.page_gran, rpos.data(), keys.data(), take.data(), w.data());
    const int32_t *gp = R.pos.data() + bh * pos_cap;
    if (rn != R.cnt[bh])
        t.sel_bad++;
    else
        for (int64_t i = 0; i < rn; i++)
            t.sel_bad += gp[i] != rpos[i];
    /* end to end: CPU scores -> CPU avg -> CPU select vs GPU, tie-aware */
    std::vector<double> cavg(np);
    kcu_ref_hsa_average(rsc.data(), G, np, C, p, cavg.data());
    int64_t cn = kcu_ref_hsa_select(cavg.data(), np, C, p, R.k, R.page_gran, rpos.data(), keys.data(), take.data(),
                                    w.data());
    std::vector<int64_t> tref = takes_from_pos(rpos.data(), cn, np, p), tgot = takes_from_pos(gp, R.cnt[bh], np, p);
    int64_t nd = 0;
    t.e2e_bad += kcu_compare_takes(cavg.data(), tref.data(), tgot.data(), np, 1e-9, &nd);
    t.e2e_diff += nd;
    /* sparse attention over the GPU's selection */
    std::vector<double> ref((size_t)G * d);
    kcu_ref_attend(Kh, R.V.data() + bh * cap * d, d, G, qh, gp, R.cnt[bh], ref.data());
    t.att_bad += tol_compare(R.out.data() + bh * G * d, ref.data(), ref.size(), 1e-4, 1e-3, &t.mabs, &t.mrel);
}

/* The checks' verdicts: v1 reports pages, score, select and sparse attention;
 * v2 and v3 only their select (pages and score do not depend on the version);
 * v4 its score (v2, the same bit-exact rule), its gather (dense v3) and its
 * select; v5 as v4 with score v3, plus its token fold (the aux bit-exact). */
static void report_hsa(gc_ctx *c, const char *name, const hsa_tally &t, int version, int64_t p, int r, int64_t k,
                       int page_gran)
{
    char nm[160];
    if (version == 5) {
        snprintf(nm, sizeof nm, "%s/v5-fold", name);
        add_check(c, nm, t.aux_bad == 0 && t.pad_bad == 0, 0, 0, 0,
                  "p=%lld: %lld aux values differ (bit-exact rule), %lld padding values overwritten", (long long)p,
                  t.aux_bad, t.pad_bad);
    }
    if (version >= 4) {
        snprintf(nm, sizeof nm, "%s/v%d-score", name, version == 5 ? 3 : 2);
        add_check(c, nm, t.dims_bad == 0 && t.sc_bad == 0, 0, 0, 0,
                  "r=%d: %lld dims differ, %lld page scores not bit-exact", r, t.dims_bad, t.sc_bad);
        snprintf(nm, sizeof nm, version == 5 ? "%s/v5-gather" : "%s/v3-gather", name); /* v5: dense v4 */
        add_check(c, nm, t.att_bad == 0, t.mabs, t.mrel, 0, "%lld outputs outside 1e-4+1e-3|ref|, max abs %.2e",
                  t.att_bad, t.mabs);
    }
    if (version >= 2) {
        snprintf(nm, sizeof nm, "%s/v%d-select", name, version);
        add_check(c, nm, t.avg_rel <= 1e-12 && t.sel_bad == 0 && t.e2e_bad == 0, 0, t.avg_rel, t.e2e_diff,
                  "k=%lld%s: avg max rel err %.2e; %lld positions differ on identical scores; end to end %lld "
                  "differing pages, %lld not near-ties",
                  (long long)k, page_gran ? " (page granularity)" : "", t.avg_rel, t.sel_bad, (long long)t.e2e_diff,
                  t.e2e_bad);
        return;
    }
    snprintf(nm, sizeof nm, "%s/pages", name);
    add_check(c, nm, t.aux_bad == 0 && t.pad_bad == 0, 0, 0, 0,
              "p=%lld: %lld aux values differ (bit-exact rule), %lld padding values overwritten", (long long)p,
              t.aux_bad, t.pad_bad);
    snprintf(nm, sizeof nm, "%s/score", name);
    add_check(c, nm, t.dims_bad == 0 && t.sc_bad == 0, 0, 0, 0, "r=%d: %lld dims differ, %lld page scores not bit-exact",
              r, t.dims_bad, t.sc_bad);
    snprintf(nm, sizeof nm, "%s/select", name);
    add_check(c, nm, t.avg_rel <= 1e-12 && t.sel_bad == 0 && t.e2e_bad == 0, 0, t.avg_rel, t.e2e_diff,
              "k=%lld%s: avg max rel err %.2e; %lld positions differ on identical scores; end to end %lld "
              "differing pages, %lld not near-ties",
              (long long)k, page_gran ? " (page granularity)" : "", t.avg_rel, t.sel_bad, (long long)t.e2e_diff,
              t.e2e_bad);
    snprintf(nm, sizeof nm, "%s/sparse-attend", name);
    add_check(c, nm, t.att_bad == 0, t.mabs, t.mrel, 0, "%lld outputs outside 1e-4+1e-3|ref|, max abs %.2e", t.att_bad,
              t.mabs);
}

/* Stage 2 of version `version` on random K/V/q (quantized: pages repeat so
 * scores tie): build over len − 1 tokens, append the last through update,
 * score, select, attend; then every (sequence, KV head) checked on the host. */
static void check_hsa_v(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, int64_t p, int r,
                        int64_t k, int page_gran, int quantized, uint64_t seed, int version)
{
    if (c->only && !strstr(name, c->only))
        return;
    uint64_t s = seed;
    int64_t cap = *std::max_element(lens.begin(), lens.end());
    int64_t npc = kcu_hsa_npages_cap(cap, p) + 8, rows = kcu_aux_rows(d, p), pos_cap = k + p;
    size_t nkv = (size_t)B * Hkv * cap * d, nbh = (size_t)B * Hkv;
    std::vector<uint16_t> K = rand_bf16(nkv, &s, 1.0, quantized), V = rand_bf16(nkv, &s, 1.0, 0);
    if (quantized == 1) /* period 2p: whole pages repeat, so page scores tie */
        for (size_t bh = 0; bh < nbh; bh++) {
            std::vector<uint16_t> blk(K.begin() + bh * cap * d, K.begin() + (bh + 1) * cap * d);
            dup_rows(blk, (size_t)cap, d, (size_t)(2 * p));
            std::copy(blk.begin(), blk.end(), K.begin() + bh * cap * d);
        }
    std::vector<float> q = rand_f32(nbh * G * d, &s, 1.0);
    if (quantized == 2) /* q = 0: every full page ties (select v4: one bin holds them all) */
        std::fill(q.begin(), q.end(), 0.0f);
    if (quantized == 3) /* q ~ 1e-6: distinct page means within one select v4 bin (its radix passes) */
        for (auto &x : q)
            x *= 1e-6f;
    for (size_t bh = 0; bh < nbh; bh++)
        for (int64_t t = lens[bh / Hkv]; t < cap; t++)
            for (int e = 0; e < d; e++)
                K[(bh * cap + t) * d + e] = V[(bh * cap + t) * d + e] = BF16_NAN;
    uint16_t *dK = dalloc<uint16_t>(c, nkv), *dV = dalloc<uint16_t>(c, nkv), *daux = dalloc<uint16_t>(c, nbh * rows * npc);
    float *dq = dalloc<float>(c, q.size()), *dout = dalloc<float>(c, q.size());
    double *davg = dalloc<double>(c, nbh * npc), *dsc = dalloc<double>(c, nbh * G * npc);
    int32_t *dlen = dalloc<int32_t>(c, B), *ddims = dalloc<int32_t>(c, nbh * d), *dpos = dalloc<int32_t>(c, nbh * pos_cap),
            *dcount = dalloc<int32_t>(c, nbh);
    h2d(c, dK, K);
    h2d(c, dV, V);
    h2d(c, dq, q);
    CK(cudaMemsetAsync(daux, 0xff, nbh * rows * npc * sizeof(uint16_t), c->st));
    CK(cudaMemsetAsync(dsc, 0xff, nbh * G * npc * sizeof(double), c->st));
    CK(cudaMemsetAsync(dpos, 0xff, nbh * pos_cap * sizeof(int32_t), c->st));
    /* build over len − 1 tokens, then append the last one through update */
    std::vector<int32_t> lm1(lens);
    for (auto &x : lm1)
        x -= 1;
    h2d(c, dlen, lm1);
    double *dpart = version == 2 || version == 3 ? dalloc<double>(c, kcu_hsa_part_bytes(B, Hkv, G, npc) / 8) : nullptr;
    /* v4 (score v2 + select v4): its workspace zeroed once, as the API asks */
    double *dws4 = version >= 4 ? dalloc<double>(c, kcu_hsa_ws4_bytes(B, Hkv, npc) / 8 + 1) : nullptr;
    if (dws4)
        CK(cudaMemsetAsync(dws4, 0, kcu_hsa_ws4_bytes(B, Hkv, npc), c->st));
    kcu_hsa_args a = {dK, cap, dlen, B,    Hkv,  G,     d,     p,       npc,    daux, dq,
                      r,  k,   page_gran, dsc, davg, ddims, dpos, pos_cap, dcount, dpart, version == 3,
                      version >= 4, dws4, version == 5,
                      1 /* score v3 on the fewest blocks (1–3 per row): each loops over its row's tiles and the
                         * fold falls to the block holding its tile, as the one-wave grid at batch 8 does */};
    CK(kcu_hsa_pages_build(&a, c->st));
    CK(cudaStreamSynchronize(c->st));
    h2d(c, dlen, lens);
    CK(kcu_hsa_pages_update(&a, c->st));
    CK(kcu_hsa_score(&a, c->st));
    CK(kcu_hsa_select(&a, c->st));
    /* v4, v5: the gather is dense_decode.cu v3 with its split count */
    int nsplit = version >= 4 ? kcu_gather_splits(pos_cap, B, Hkv, c->sms) : kcu_attend_splits(pos_cap, B, Hkv, c->sms);
    float *dws = dalloc<float>(c, kcu_attend_ws_bytes(B, Hkv, G, d, nsplit) / sizeof(float));
    /* v5 gathers with dense version 5 (v5 at G = 8, else v4; the split merge in the kernel: its tickets zeroed once) */
    CK(cudaMemsetAsync(dws, 0, kcu_attend_ws_bytes(B, Hkv, G, d, nsplit), c->st));
    kcu_attend_args at = {dK, dV, cap, dq, dlen, dpos, dcount, pos_cap, B, Hkv, G, d, nsplit, dws, dout, 2,
                          version == 5 ? 5 : version == 4 ? 3 : 1};
    CK(cudaMemsetAsync(dout, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&at, c->st));
    CK(cudaStreamSynchronize(c->st));
    hsa_run R;
    R.Hkv = Hkv; R.G = G; R.d = d; R.r = r; R.page_gran = page_gran;
    R.cap = cap; R.p = p; R.k = k; R.npc = npc; R.rows = rows; R.pos_cap = pos_cap; R.lens = &lens;
    R.K.swap(K); R.V.swap(V); R.q.swap(q);
    R.aux = d2h(c, daux, nbh * rows * npc);
    R.sc = d2h(c, dsc, nbh * G * npc);
    R.out = d2h(c, dout, R.q.size());
    R.avg = d2h(c, davg, nbh * npc);
    R.dims = d2h(c, ddims, nbh * d);
    R.pos = d2h(c, dpos, nbh * pos_cap);
    R.cnt = d2h(c, dcount, nbh);
    hsa_tally t;
    for (size_t bh = 0; bh < nbh; bh++)
        verify_head(R, bh, t);
    report_hsa(c, name, t, version, p, r, k, page_gran);
    for (void *ptr : {(void *)dpart, (void *)dK, (void *)dV, (void *)daux, (void *)dq, (void *)dsc, (void *)dout,
                      (void *)davg, (void *)dlen, (void *)ddims, (void *)dpos, (void *)dcount, (void *)dws, (void *)dws4})
        cudaFree(ptr); /* cudaFree(nullptr) does nothing */
}

void check_hsa(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, int64_t p, int r,
                      int64_t k, int page_gran, int quantized, uint64_t seed)
{
    check_hsa_v(c, name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 1);
    check_hsa_v(c, name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 3);
    check_hsa_v(c, name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 2);
    check_hsa_v(c, name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 4);
    check_hsa_v(c, name, B, Hkv, G, d, lens, p, r, k, page_gran, quantized, seed, 5);
}

/* One timed graph of the RocketKV step or a part of it: which kernels
 * (mask: 1 page update, 2 score, 4 select, 8 attention) of which stage-2
 * version (v5 gathers with dense v4: a4; v4 with dense v3: a3; the others
 * with dense v2: a). */
struct rkv_part {
    const char *what;
    double bytes;
    int mask, version;
};

static void time_parts(gc_ctx *c, const rkv_part *parts, int n, const kcu_hsa_args *const hv_of[6],
                       const kcu_attend_args *a, const kcu_attend_args *a3, const kcu_attend_args *a4,
                       const timing_result &base)
{
    for (int i = 0; i < n; i++) {
        const rkv_part &pt = parts[i];
        const kcu_hsa_args *hv = hv_of[pt.version];
        cudaGraphExec_t ex = capture(c, [&] {
            if (pt.mask & 1)
                CK(kcu_hsa_pages_update(hv, c->st));
            if (pt.mask & 2)
                CK(kcu_hsa_score(hv, c->st));
            if (pt.mask & 4)
                CK(kcu_hsa_select(hv, c->st));
            if (pt.mask & 8)
                CK(kcu_attend(pt.version == 5 ? a4 : pt.version == 4 ? a3 : a, c->st));
        });
        timing_result tr = base;
        tr.what = pt.what;
        tr.bytes = pt.bytes;
        time_graph(c, ex, tr);
        CK(cudaGraphExecDestroy(ex));
    }
}

void time_rocketkv(gc_ctx *c, long long ctx, long long budget, int B)
{
    kcu_rkv_split sp;
    kcu_rkv_split_compute(ctx, 50, budget, MODEL_MAX, DH, -1.0, &sp);
    int64_t C = sp.capacity, p = sp.p, k = sp.k, npc = kcu_hsa_npages_cap(C, p), pos_cap = k + p;
    int r = (int)sp.r, rows = kcu_aux_rows(DH, p);
    size_t nbh = (size_t)B * HKV, nkv = nbh * C * DH;
    uint16_t *dK = dalloc<uint16_t>(c, nkv), *dV = dalloc<uint16_t>(c, nkv), *daux = dalloc<uint16_t>(c, nbh * rows * npc);
    float *dq = dalloc<float>(c, nbh * GQ * DH), *dout = dalloc<float>(c, nbh * GQ * DH);
    double *davg = dalloc<double>(c, nbh * npc), *dsc = dalloc<double>(c, nbh * GQ * npc);
    int32_t *dlen = dalloc<int32_t>(c, B), *ddims = dalloc<int32_t>(c, nbh * DH), *dpos = dalloc<int32_t>(c, nbh * pos_cap),
            *dcount = dalloc<int32_t>(c, nbh);
    CK(kcu_fill_bf16(dK, (int64_t)nkv, 11, 1.0f, c->st));
    CK(kcu_fill_bf16(dV, (int64_t)nkv, 12, 1.0f, c->st));
    CK(kcu_fill_f32(dq, (int64_t)nbh * GQ * DH, 13, 1.0f, c->st));
    std::vector<int32_t> lens(B, (int32_t)C);
    h2d(c, dlen, lens);
    double *dpart = dalloc<double>(c, kcu_hsa_part_bytes(B, HKV, GQ, npc) / 8);
    kcu_hsa_args h = {dK, C, dlen, B,    HKV,   GQ,   DH,      p,      npc,  daux, dq,
                      r,  k, 0,    dsc, davg, ddims, dpos, pos_cap, dcount, dpart, 0, 0, nullptr, 0, 0};
    kcu_hsa_args h1 = h, h3 = h, h4 = h; /* v1 select: no per-tile partials; v3: registers, 32-bit bins */
    h1.part = nullptr;
    h3.select_v3 = 1;
    double *dws4 = dalloc<double>(c, kcu_hsa_ws4_bytes(B, HKV, npc) / 8 + 1);
    CK(cudaMemsetAsync(dws4, 0, kcu_hsa_ws4_bytes(B, HKV, npc), c->st));
    h4.v4 = 1; /* score v2 + select v4 */
    h4.ws4 = dws4;
    kcu_hsa_args h5 = h4; /* v5: score v3 (fold + table + score in one launch) + select v4 */
    h5.score_v3 = 1;
    h5.sms = c->sms;
    int nsplit3 = kcu_gather_splits(pos_cap, B, HKV, c->sms); /* gather v3 */
    float *dws3 = dalloc<float>(c, kcu_attend_ws_bytes(B, HKV, GQ, DH, nsplit3) / 4);
    CK(kcu_hsa_pages_build(&h, c->st));
    int nsplit = kcu_attend_splits(pos_cap, B, HKV, c->sms);
    float *dws = dalloc<float>(c, kcu_attend_ws_bytes(B, HKV, GQ, DH, nsplit) / 4);
    kcu_attend_args a = {dK, dV, C, dq, dlen, dpos, dcount, pos_cap, B, HKV, GQ, DH, nsplit, dws, dout, 2, 1};
    kcu_attend_args a3 = a;
    a3.version = 3;
    a3.nsplit = nsplit3;
    a3.ws = dws3;
    kcu_attend_args a4 = a3; /* v5's gather: dense version 5 (v4 at G = 4), the merge in the kernel (tickets zeroed once) */
    a4.version = 5;
    CK(cudaMemsetAsync(dws3, 0, kcu_attend_ws_bytes(B, HKV, GQ, DH, nsplit3), c->st));
    CK(cudaStreamSynchronize(c->st));
    /* analytic bytes (docs/algorithm.md traffic table, rocketkv row): aux reads,
     * exact K+V rows, q, page update (read + write of 2d aux + the token) */
    double aux_b = (double)nbh * npc * r * 2, kv_b = (double)nbh * k * 2 * DH * 2;
    double q_b = (double)nbh * GQ * DH * 4, upd_b = (double)nbh * (2 * 2 * DH * 2 + DH * 2);
    timing_result base = {"", "rocketkv", ctx, budget, B, C, p, r, k, 0, 0, 0, 0, 0, TIMED_MODEL, HKV, GQ, DH};
    const rkv_part parts[] = {{"step", aux_b + kv_b + q_b + upd_b, 15, 2},
                 {"step_v1", aux_b + kv_b + q_b + upd_b, 15, 1},
                 {"pages_update", upd_b, 1, 2},
                 {"score", aux_b + q_b, 2, 2},
                 {"select", 0, 4, 2},
                 {"select_v1", 0, 4, 1},
                 {"step_v3", aux_b + kv_b + q_b + upd_b, 15, 3},
                 {"select_v3", 0, 4, 3},
                 {"step_v5", aux_b + kv_b + q_b + upd_b, 15, 5},
                 {"score_v3", aux_b + q_b + upd_b, 2, 5},
                 {"sparse_attend_v4", kv_b + q_b, 8, 5},
                 {"step_v4", aux_b + kv_b + q_b + upd_b, 15, 4},
                 {"score_v2", aux_b + q_b, 2, 4},
                 {"select_v4", 0, 4, 4},
                 {"sparse_attend_v3", kv_b + q_b, 8, 4},
                 {"sparse_attend", kv_b + q_b, 8, 2}};
    const kcu_hsa_args *hv[6] = {&h1, &h1, &h, &h3, &h4, &h5}; /* by stage-2 version */
    time_parts(c, parts, (int)(sizeof parts / sizeof parts[0]), hv, &a, &a3, &a4, base);
    for (void *ptr : {(void *)dK, (void *)dV, (void *)daux, (void *)dq, (void *)dout, (void *)dsc, (void *)davg,
                      (void *)dlen, (void *)ddims, (void *)dpos, (void *)dcount, (void *)dws, (void *)dpart,
                      (void *)dws4, (void *)dws3})
        cudaFree(ptr);
}
