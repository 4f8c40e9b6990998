/* dense_decode_check.cu — the checks and timings of dense_decode.cu, beside it:
 * dense and sparse split-KV attention against kcu_ref_attend (double), split
 * vs one split, 2 vs 4 rows in flight, v3–v5; the dense step timed at one
 * layer of llama3.1-8b (G = 4, every version) and of llama3.1-70b (G = 8, v4
 * and v5).
 * Called by gpu_check.cu (the driver); shared helpers in gpu_check.h. */
#include "gpu_check.h"

/* ------------------------------------------------- attention checks */
void check_attend(gc_ctx *c, const char *name, int B, int Hkv, int G, int d, std::vector<int32_t> lens, bool sparse,
                         uint64_t seed)
{
    if (c->only && !strstr(name, c->only))
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
    uint16_t *dK = dalloc<uint16_t>(c, nkv), *dV = dalloc<uint16_t>(c, nkv);
    float *dq = dalloc<float>(c, q.size()), *dout = dalloc<float>(c, q.size()), *dout1 = dalloc<float>(c, q.size());
    int32_t *dlen = dalloc<int32_t>(c, B), *didx = nullptr, *dcount = nullptr;
    h2d(c, dK, K);
    h2d(c, dV, V);
    h2d(c, dq, q);
    h2d(c, dlen, lens);
    if (sparse) {
        didx = dalloc<int32_t>(c, idx.size());
        dcount = dalloc<int32_t>(c, count.size());
        h2d(c, didx, idx);
        h2d(c, dcount, count);
    }
    int nsplit = kcu_attend_splits(cap, B, Hkv, c->sms);
    int nsplit3 = sparse ? kcu_gather_splits(cap, B, Hkv, c->sms) : nsplit; /* v3's gather split count */
    float *dws = dalloc<float>(c, kcu_attend_ws_bytes(B, Hkv, G, d, std::max(nsplit, nsplit3)) / sizeof(float));
    kcu_attend_args a = {dK, dV, cap, dq, dlen, didx, dcount, idx_cap, B, Hkv, G, d, nsplit, dws, dout, 2, 1};
    CK(cudaMemsetAsync(dout, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&a, c->st));
    kcu_attend_args a1 = a;
    a1.nsplit = 1;
    a1.out = dout1;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&a1, c->st));
    CK(cudaStreamSynchronize(c->st));
    std::vector<float> out = d2h(c, dout, q.size()), out1 = d2h(c, dout1, q.size());
    kcu_attend_args a4 = a; /* v1b: four rows in flight */
    a4.rows_in_flight = 4;
    a4.out = dout1;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&a4, c->st));
    CK(cudaStreamSynchronize(c->st));
    std::vector<float> out4 = d2h(c, dout1, q.size());
    kcu_attend_args a2 = a; /* v2: compile-time G, one softmax update per tile (v1 where G ∉ {1, 2, 4, 8}) */
    a2.version = 2;
    a2.out = dout1;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&a2, c->st));
    CK(cudaStreamSynchronize(c->st));
    std::vector<float> out2 = d2h(c, dout1, q.size());
    kcu_attend_args a3 = a; /* v3: butterfly scores, staged positions; the gather's split count when sparse */
    a3.version = 3;
    a3.out = dout1;
    a3.nsplit = nsplit3;
    CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
    CK(kcu_attend(&a3, c->st));
    CK(cudaStreamSynchronize(c->st));
    std::vector<float> out3 = d2h(c, dout1, q.size());
    kcu_attend_args a5 = a3; /* v4: v3 + the split merge in the last block (its ticket: ws zeroed once) */
    a5.version = 4;
    CK(cudaMemsetAsync(dws, 0, kcu_attend_ws_bytes(B, Hkv, G, d, std::max(nsplit, nsplit3)), c->st));
    std::vector<float> out5[2];
    for (int rep = 0; rep < 2; rep++) { /* twice: the first call must leave its tickets at zero */
        CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
        CK(kcu_attend(&a5, c->st));
        CK(cudaStreamSynchronize(c->st));
        out5[rep] = d2h(c, dout1, q.size());
    }
    std::vector<float> out6[2]; /* v5 (tensor cores) where kcu_attend launches it (G = 8); same ws and split count as v4 */
    kcu_attend_args a6 = a5;
    a6.version = 5;
    const bool has_v5 = G == 8;
    for (int rep = 0; has_v5 && rep < 2; rep++) {
        CK(cudaMemsetAsync(dout1, 0xff, q.size() * sizeof(float), c->st));
        CK(kcu_attend(&a6, c->st));
        CK(cudaStreamSynchronize(c->st));
        out6[rep] = d2h(c, dout1, q.size());
    }

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
    double mabs2 = 0, mrel2 = 0;
    long long bad2 = tol_compare(out2.data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs2, &mrel2);
    double mabs3 = 0, mrel3 = 0;
    long long bad3 = tol_compare(out3.data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs3, &mrel3);
    double mabs5 = 0, mrel5 = 0;
    long long bad5 = tol_compare(out5[0].data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs5, &mrel5);
    bool same5 = memcmp(out5[0].data(), out5[1].data(), out5[0].size() * sizeof(float)) == 0;
    char nm5[160];
    snprintf(nm5, sizeof nm5, "%s/v4", name);
    add_check(c, nm5, bad5 == 0 && same5, mabs5, mrel5, 0,
              "v4 (G=%d d=%d, %d splits, merged in the kernel): %lld outside 1e-4+1e-3|ref|, max abs %.2e; "
              "second call %s", G, d, a5.nsplit, bad5, mabs5, same5 ? "identical" : "DIFFERS");
    if (has_v5) {
        double mabs6 = 0, mrel6 = 0;
        long long bad6 = tol_compare(out6[0].data(), ref.data(), ref.size(), 1e-4, 1e-3, &mabs6, &mrel6);
        bool same6 = memcmp(out6[0].data(), out6[1].data(), out6[0].size() * sizeof(float)) == 0;
        char nm6[160];
        snprintf(nm6, sizeof nm6, "%s/v5", name);
        add_check(c, nm6, bad6 == 0 && same6, mabs6, mrel6, 0,
                  "v5 (mma.sync, G=%d d=%d, %d splits, merged in the kernel): %lld outside 1e-4+1e-3|ref|, max abs "
                  "%.2e; second call %s", G, d, a6.nsplit, bad6, mabs6, same6 ? "identical" : "DIFFERS");
    }
    char nm3[160];
    snprintf(nm3, sizeof nm3, "%s/v3", name);
    add_check(c, nm3, bad3 == 0, mabs3, mrel3, 0, "v3 (G=%d d=%d, %d splits): %lld outside 1e-4+1e-3|ref|, max abs %.2e",
              G, d, a3.nsplit, bad3, mabs3);
    for (size_t i = 0; i < ref.size(); i++) {
        mref = std::max(mref, fabs(ref[i]));
        double dd = fabs((double)out[i] - out1[i]);
        msplit = (dd > msplit || dd != dd) ? dd : msplit;
    }
    bool split_ok = msplit <= 2e-3 * mref;
    add_check(c, name, bad == 0 && bad4 == 0 && bad2 == 0 && split_ok, std::max(mabs, std::max(mabs4, mabs2)),
              std::max(mrel, std::max(mrel4, mrel2)), 0,
              "B=%d Hkv=%d G=%d d=%d max_len=%lld splits=%d: %lld outside 1e-4+1e-3|ref|, max abs %.2e "
              "(4 rows in flight: %lld, %.2e; v2: %lld, %.2e); split vs 1 split max diff %.2e",
              B, Hkv, G, d, (long long)cap, nsplit, bad, mabs, bad4, mabs4, bad2, mabs2, msplit);
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

/* One timed dense variant: its `what`, kcu_attend's version and rows in flight. */
struct dense_variant {
    const char *what;
    int version, rows_in_flight;
};

/* Times the variants at one (context, batch) of a layer of HKV KV heads, d =
 * DH and G query heads per KV head: one layer of `model` (the bundled model
 * of that shape, written into each timing row for kvsim validate). */
static void time_dense_shape(gc_ctx *c, long long ctx, int B, int G, const char *model,
                             const std::vector<dense_variant> &vars)
{
    size_t nkv = (size_t)B * HKV * ctx * DH;
    uint16_t *dK = dalloc<uint16_t>(c, nkv), *dV = dalloc<uint16_t>(c, nkv);
    float *dq = dalloc<float>(c, (size_t)B * HKV * G * DH), *dout = dalloc<float>(c, (size_t)B * HKV * G * DH);
    int32_t *dlen = dalloc<int32_t>(c, B);
    CK(kcu_fill_bf16(dK, (int64_t)nkv, 1, 1.0f, c->st));
    CK(kcu_fill_bf16(dV, (int64_t)nkv, 2, 1.0f, c->st));
    CK(kcu_fill_f32(dq, (int64_t)B * HKV * G * DH, 3, 1.0f, c->st));
    std::vector<int32_t> lens(B, (int32_t)ctx);
    h2d(c, dlen, lens);
    int nsplit = kcu_attend_splits(ctx, B, HKV, c->sms);
    size_t ws = kcu_attend_ws_bytes(B, HKV, G, DH, nsplit);
    float *dws = dalloc<float>(c, ws / 4);
    kcu_attend_args a = {dK, dV, ctx, dq, dlen, nullptr, nullptr, 0, B, HKV, G, DH, nsplit, dws, dout, 2, 1};
    CK(cudaMemsetAsync(dws, 0, ws, c->st)); /* v4's and v5's tickets */
    for (const dense_variant &v : vars) {
        a.rows_in_flight = v.rows_in_flight;
        a.version = v.version;
        cudaGraphExec_t ex = capture(c, [&] { CK(kcu_attend(&a, c->st)); });
        timing_result tr = {v.what, "full", ctx, 0, B, ctx, 0, 0, 0, 0, 0, (double)nkv * 2 * 2, 0, 0,
                            model, HKV, G, DH};
        time_graph(c, ex, tr);
        CK(cudaGraphExecDestroy(ex));
    }
    cudaFree(dK);
    cudaFree(dV);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dlen);
    cudaFree(dws);
}

/* The dense step of the matrix's shape (llama3.1-8b: G = 4), every version
 * (v5 runs v4 at G = 4, so it is not timed there). */
void time_dense(gc_ctx *c, long long ctx, int B)
{
    time_dense_shape(c, ctx, B, GQ, TIMED_MODEL,
                     {{"step", 1, 2}, {"step_rif4", 1, 4}, {"step_v2", 2, 2}, {"step_v3", 3, 2}, {"step_v4", 4, 2}});
}

/* Dense at G = 8 (llama3.1-70b's layer: 8 KV heads × 8, d = 128): v4 (CUDA
 * cores) and v5 (tensor cores, mma.sync) — the kernel the audit estimates
 * there. */
void time_dense_g8(gc_ctx *c, long long ctx, int B)
{
    time_dense_shape(c, ctx, B, 8, TIMED_MODEL_G8, {{"step_v4", 4, 2}, {"step_v5", 5, 2}});
}
