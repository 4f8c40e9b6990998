/* gpu_check.cu — the GPU check's driver: every kernel against the CPU
 * reference of the GPU pipeline (kcu_ref_host.c, itself tested against
 * refimpl on the CPU), the calibration probes, and the fixed timing matrix;
 * writes one JSON report and prints a short table last. Exits 1 if any
 * check fails. The checks and timings of each kernel file live beside it
 * (dense_decode_check.cu, hsa_check.cu, stage1_check.cu); this file holds
 * the check lists, the probes, the report and main. The run's state is one
 * gc_ctx (gpu_check.h) passed down: no mutable globals.
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
#include "gpu_check.h"

#include <ctype.h>
#include <time.h>

void add_check(gc_ctx *c, const std::string &name, bool pass, double abs_e, double rel_e, long long nd,
               const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->checks.push_back({name, pass, buf, abs_e, rel_e, nd});
    printf("%-4s %-44s %s\n", pass ? "ok" : "FAIL", name.c_str(), buf);
    fflush(stdout);
}











void time_graph(gc_ctx *c, cudaGraphExec_t ex, timing_result tr)
{
    time_reps(c, [&] { CK(cudaGraphLaunch(ex, c->st)); }, c->reps, &tr.median_s, &tr.min_s);
    tr.reps = c->reps;
    tr.bytes_per_s = tr.bytes / tr.median_s;
    c->times.push_back(tr);
}





/* ------------------------------------------------------------ probes */
struct probe_out {
    double read_bps, read_bytes, launch_s, launch_graph_s;
    std::vector<std::pair<long long, double>> gather;
};

static probe_out run_probes(gc_ctx *c, bool quick)
{
    probe_out po;
    size_t freeb, totb;
    CK(cudaMemGetInfo(&freeb, &totb));
    size_t bytes = (size_t)4 << 30;
    if (quick || bytes > freeb / 4)
        bytes = std::min((size_t)1 << 30, freeb / 4);
    uint4 *src = dalloc<uint4>(c, bytes / 16);
    unsigned *sink = dalloc<unsigned>(c, 1);
    CK(kcu_fill_f32((float *)src, (int64_t)(bytes / 4), 31, 1.0f, c->st));
    double med, mn;
    time_reps(c, [&] { CK(kcu_probe_read(src, (int64_t)(bytes / 16), sink, c->sms, c->st)); }, 10, &med, &mn);
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
        uint32_t *doffs = dalloc<uint32_t>(c, offs.size());
        h2d(c, doffs, offs);
        time_reps(c, [&] { CK(kcu_probe_gather(src, doffs, nruns, run, sink, c->sms, c->st)); }, 10, &med, &mn);
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
        CK(kcu_probe_empty(c->st));
    std::vector<double> tl, tg;
    cudaGraphExec_t ex = capture(c, [&] {
        for (int i = 0; i < N; i++)
            CK(kcu_probe_empty(c->st));
    });
    for (int rep = 0; rep < 11; rep++) {
        float ms;
        CK(cudaStreamSynchronize(c->st));
        CK(cudaEventRecord(e0, c->st));
        for (int i = 0; i < N; i++)
            CK(kcu_probe_empty(c->st));
        CK(cudaEventRecord(e1, c->st));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        tl.push_back(ms * 1e-3 / N);
        CK(cudaEventRecord(e0, c->st));
        CK(cudaGraphLaunch(ex, c->st));
        CK(cudaEventRecord(e1, c->st));
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
static int write_report(gc_ctx *c, const char *path, const cudaDeviceProp &pr, const char *smi, const probe_out &po)
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
    kv_json_num(&j, (double)c->usable);
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
    for (auto &c : c->checks) {
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
    if (c->abort_msg[0])
        kv_json_str(&j, c->abort_msg);
    else
        kv_json_null(&j);
    kv_json_key(&j, "all_checks_pass");
    kv_json_bool(&j, all && !c->abort_msg[0]);
    kv_json_key(&j, "timing_method");
#ifdef KCU_EMU
    kv_json_str(&j, "CPU EMULATION (--time-smoke): wall seconds of the emulated graphs at tiny shapes, 1 rep, no "
                    "warm-up; they exercise the timing code and the report's rows, they measure nothing");
#else
    kv_json_str(&j, "CUDA events around one CUDA-graph replay per rep (one layer, all KV heads), L2 flushed by a "
                    "2xL2 memset before each rep, median of reps after 3 warm-ups; bytes are analytic");
#endif
    kv_json_key(&j, "timings");
    kv_json_arr_begin(&j);
    for (auto &t : c->times) {
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
        kv_json_key(&j, "model");
        kv_json_str(&j, t.model.c_str());
        kv_json_key(&j, "kv_heads");
        kv_json_int(&j, t.kv_heads);
        kv_json_key(&j, "group");
        kv_json_int(&j, t.group);
        kv_json_key(&j, "head_dim");
        kv_json_int(&j, t.head_dim);
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

void gpu_check_abort(gc_ctx *c, const char *msg)
{
    fprintf(stderr, "gpu_check: %s\n", msg);
    snprintf(c->abort_msg, sizeof c->abort_msg, "%s", msg);
    if (c->out && !c->in_abort) {
        c->in_abort = 1;
        probe_out none = {NAN, NAN, NAN, NAN, {}}; /* written as null: not calibration data */
        if (write_report(c, c->out, c->prop, c->smi, none) == 0)
            fprintf(stderr, "gpu_check: partial report (aborted) written to %s\n", c->out);
    }
    exit(1);
}

static void print_table(gc_ctx *c, double read_bps)
{
    printf("\n%-8s %-7s %2s %7s %6s %5s %10s %8s %6s %8s\n", "method", "what", "G", "context", "budget", "batch",
           "median_us", "GB/s", "%read", "vs_full");
    for (auto &t : c->times) {
        if (t.what != "step" && t.what != "stage1" && t.group == GQ)
            continue;
        double sp = 0; /* the full `step` (dense v1) of the same shape, context and batch / this */
        for (auto &u : c->times)
            if (t.what == "step" && u.method == "full" && u.what == "step" && u.group == t.group &&
                u.context == t.context && u.batch == t.batch)
                sp = u.median_s / t.median_s;
        printf("%-8s %-7s %2d %7lld %6lld %5lld %10.1f %8.1f %6.1f %7.2fx\n", t.method.c_str(), t.what.c_str(),
               t.group, t.context, t.budget, t.batch, t.median_s * 1e6, t.bytes_per_s / 1e9,
               100.0 * t.bytes_per_s / read_bps, sp);
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
 * (p = 5, 7), stage 1 with batch 2 and G = 1; dense v3 at G = 1 (d = 64) and
 * G = 2 (d = 128), and a sparse list longer than one 256-row staged segment
 * per split (on the emulation's 4 SMs). */
static void run_checks_edges(gc_ctx *c)
{
    check_attend(c, "dense/b2-g8-d128-odd", 2, 1, 8, 128, {257, 3}, false, 21);
    check_attend(c, "dense/b3-g3-d64-odd", 3, 1, 3, 64, {77, 1, 130}, false, 22);
    check_attend(c, "sparse/b2-g2-d64", 2, 1, 2, 64, {301, 45}, true, 23);
    check_attend(c, "dense/b1-g1-d64-77", 1, 1, 1, 64, {77}, false, 29);
    check_attend(c, "dense/b1-g2-d128-200", 1, 1, 2, 128, {200}, false, 30);
    check_attend(c, "sparse/b2-h8-g4-d128-2000", 2, 8, 4, 128, {2000, 333}, true, 31); /* ~600 rows: 1 split, 3 segments on the emulation */
    check_hsa(c, "hsa/g1-d128-b2-p5", 2, 1, 1, 128, {333, 101}, 5, 24, 64, 0, 0, 24);
    check_hsa(c, "hsa/g8-d128-p7", 1, 1, 8, 128, {299}, 7, 33, 97, 0, 0, 25);
    check_hsa(c, "hsa/k-ge-total-b2", 2, 1, 4, 64, {50, 37}, 5, 16, 200, 0, 0, 26);
    check_hsa(c, "hsa/k-ge-total-pages", 1, 1, 4, 128, {41}, 4, 16, 64, 1, 0, 27);
    check_stage1(c, "stage1/b2-g1-s257", 2, 1, 1, 128, 257, 16, 100, 7, 0, 28);
}

/* The GPU's check list: odd sizes, per-sequence lengths, both head dims,
 * G = 1/4/8, ties, page granularity, p = 1, a new page by update. */
static void run_checks(gc_ctx *c)
{
    check_attend(c, "dense/b1-g4-d128-4099", 1, 8, 4, 128, {4099}, false, 1);
    check_attend(c, "dense/b3-g4-d128-mixed", 3, 2, 4, 128, {32769, 1000, 63}, false, 2);
    check_attend(c, "dense/b2-g8-d64-1110", 2, 2, 8, 64, {1110, 1}, false, 3);
    check_attend(c, "dense/b1-g1-d128-127", 1, 3, 1, 128, {127}, false, 4);
    check_attend(c, "sparse/b2-g4-d128", 2, 4, 4, 128, {8222, 213}, true, 5);
    check_attend(c, "sparse/b1-g8-d64", 1, 2, 8, 64, {4099}, true, 6);
    check_hsa(c, "hsa/s16k-t256", 1, 8, 4, 128, {1596}, 3, 61, 128, 0, 0, 7);
    check_hsa(c, "hsa/s64k-t4096-b2", 2, 4, 4, 128, {19354, 12345}, 3, 81, 2048, 0, 0, 8);
    check_hsa(c, "hsa/p1-full-dims", 1, 2, 4, 128, {200}, 1, 128, 128, 0, 0, 9);
    check_hsa(c, "hsa/ties-p7", 2, 2, 4, 128, {4099, 1110}, 7, 40, 301, 0, 1, 10);
    check_hsa(c, "hsa/page-gran-p4", 1, 2, 4, 128, {2000}, 4, 32, 129, 1, 0, 11);
    check_hsa(c, "hsa/g8-d64-p16", 1, 2, 8, 64, {4099}, 16, 20, 500, 0, 0, 12);
    check_hsa(c, "hsa/new-page", 1, 2, 4, 128, {1597}, 3, 61, 128, 0, 0, 13);
    check_hsa(c, "hsa/flat-1500-pages", 1, 1, 4, 64, {3001}, 2, 16, 501, 0, 2, 14);
    check_hsa(c, "hsa/near-flat-600-pages", 1, 1, 4, 64, {1201}, 2, 16, 301, 0, 3, 15);
    check_stage1(c, "stage1/s4099-w32-k63", 1, 2, 4, 128, 4099, 32, 1000, 63, 0, 14);
    check_stage1(c, "stage1/s1110-g8-d64-k7", 1, 2, 8, 64, 1110, 8, 300, 7, 0, 15);
    check_stage1(c, "stage1/ties-s2000", 1, 1, 4, 128, 2000, 32, 500, 63, 1, 16);
    check_stage1(c, "stage1/keep-all", 1, 1, 4, 128, 300, 32, 500, 63, 0, 17);
    run_checks_edges(c);
}

/* The CPU emulation's list (kcu_emu.h): the same checks at shapes small
 * enough for one OS thread per CUDA thread. */
static void run_checks_small(gc_ctx *c)
{
    check_attend(c, "dense/b2-g4-d128-mixed", 2, 2, 4, 128, {1100, 63}, false, 2);
    check_attend(c, "dense/b1-g8-d64-300", 1, 1, 8, 64, {300}, false, 3);
    check_attend(c, "dense/b2-g8-d64-odd", 2, 2, 8, 64, {517, 1}, false, 32); /* the GPU list's b2-g8-d64: v5 at d = 64, batch 2 */
    check_attend(c, "sparse/b1-g4-d128", 1, 2, 4, 128, {999}, true, 5);
    check_hsa(c, "hsa/s16k-t256", 1, 2, 4, 128, {1596}, 3, 61, 128, 0, 0, 7);
    check_hsa(c, "hsa/p1-full-dims", 1, 1, 4, 128, {200}, 1, 128, 128, 0, 0, 9);
    check_hsa(c, "hsa/ties-p7", 1, 1, 4, 128, {1110}, 7, 40, 301, 0, 1, 10);
    check_hsa(c, "hsa/page-gran-p4", 1, 1, 4, 128, {700}, 4, 32, 129, 1, 0, 11);
    check_hsa(c, "hsa/g8-d64-p16", 1, 1, 8, 64, {1500}, 16, 20, 500, 0, 0, 12);
    check_hsa(c, "hsa/new-page", 1, 1, 4, 128, {1597}, 3, 61, 128, 0, 0, 13);
    check_hsa(c, "hsa/flat-1500-pages", 1, 1, 4, 64, {3001}, 2, 16, 501, 0, 2, 14);
    check_hsa(c, "hsa/near-flat-600-pages", 1, 1, 4, 64, {1201}, 2, 16, 301, 0, 3, 15);
    check_stage1(c, "stage1/s700-w32-k63", 1, 1, 4, 128, 700, 32, 200, 63, 0, 14);
    check_stage1(c, "stage1/s300-g8-d64-k7", 1, 1, 8, 64, 300, 8, 100, 7, 0, 15);
    check_stage1(c, "stage1/ties-s500", 1, 1, 4, 128, 500, 32, 150, 63, 1, 16);
    check_stage1(c, "stage1/keep-all", 1, 1, 4, 128, 100, 32, 500, 63, 0, 17);
    run_checks_edges(c);
}

/* The driver's flags. */
struct gc_args {
    const char *out = NULL, *smi = NULL, *out_dir = NULL, *only = NULL;
    bool quick = false, no_time = false, emu_full = false, small = false, time_smoke = false;
};

/* argv into a; 2 (usage printed) or 0. */
static int parse_args(int argc, char **argv, gc_args *a)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            a->out = argv[++i];
        else if (!strcmp(argv[i], "--out-dir") && i + 1 < argc)
            a->out_dir = argv[++i];
        else if (!strcmp(argv[i], "--smi") && i + 1 < argc)
            a->smi = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            a->quick = true;
        else if (!strcmp(argv[i], "--checks-only"))
            a->no_time = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            a->only = argv[++i];
        else if (!strcmp(argv[i], "--emu-full"))
            a->emu_full = true;
        else if (!strcmp(argv[i], "--small"))
            a->small = true;
        else if (!strcmp(argv[i], "--time-smoke"))
            a->time_smoke = true;
        else {
            fprintf(stderr, "usage: gpu_check (--out FILE | --out-dir DIR) [--quick] [--checks-only] [--smi TEXT]"
                            " [--only NAME] [--emu-full] [--small] [--time-smoke]\n");
            return 2;
        }
    }
    if (!a->out && !a->out_dir) {
        fprintf(stderr, "gpu_check: --out FILE or --out-dir DIR is required\n");
        return 2;
    }
    return 0;
}

/* DIR/<device slug>-<UTC date>.json into buf (n bytes). */
static void default_out(const char *dir, const char *device, char *buf, size_t n)
{
    char slug[256];
    size_t k = 0;
    for (const char *c = device; *c && k + 1 < sizeof slug; c++) {
        char ch = (char)tolower((unsigned char)*c);
        if (isalnum((unsigned char)ch))
            slug[k++] = ch;
        else if (k && slug[k - 1] != '-')
            slug[k++] = '-';
    }
    while (k && slug[k - 1] == '-')
        k--;
    slug[k] = 0;
    char date[16];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    snprintf(buf, n, "%s/%s-%s.json", dir, slug, date);
}

/* The timed runs: dense (G = 4, and v4/v5 at G = 8) and the RocketKV step
 * at each (context, batch, budget), stage 1 at each context (--quick: 32K,
 * batch 1 only). */
static void run_timings(gc_ctx *c, bool quick)
{
    long long ctxs[] = {32768, 65536, 131072}, budgets[] = {256, 1024, 4096};
    int batches[] = {1, 8};
    for (long long ctx : ctxs)
        for (int b : batches) {
            if (quick && (ctx > 32768 || b > 1))
                continue;
            time_dense(c, ctx, b);
            time_dense_g8(c, ctx, b);
            for (long long t : budgets)
                time_rocketkv(c, ctx, t, b);
        }
    for (long long ctx : ctxs)
        if (!quick || ctx == 32768)
            time_stage1(c, ctx, 1024);
}

#ifdef KCU_EMU
/* The timing code of every timed kernel file run once on the emulation at
 * tiny shapes (the gpu-check rehearsal, make gpu-check-emu): graph capture
 * and replay of every timed graph (dense v4/v5 at G = 8 at batch 2; the
 * rest at batch 1, dense and stage 2 at the same 300-token context so
 * kvsim validate pairs their speedups), and the report's timing rows with
 * each row's model and shape. One rep, no warm-up: the wall times of an
 * emulation mean nothing. */
static void run_time_smoke(gc_ctx *c)
{
    double t0 = kv_now_s();
    c->reps = 1;
    time_dense(c, 300, 1); /* the same (context, batch) as the rocketkv rows: validate pairs their speedups */
    time_dense_g8(c, 300, 2);
    printf("time smoke: dense done, %.1f s\n", kv_now_s() - t0);
    fflush(stdout);
    time_rocketkv(c, 300, 256, 1);
    printf("time smoke: rocketkv done, %.1f s\n", kv_now_s() - t0);
    fflush(stdout);
    time_stage1(c, 300, 256);
    int g8 = 0;
    for (auto &t : c->times)
        g8 += t.group == 8 && t.model == TIMED_MODEL_G8;
    printf("time smoke: %d timed graphs (%d of them dense at G = 8, %s), %.1f s\n", (int)c->times.size(), g8,
           TIMED_MODEL_G8, kv_now_s() - t0);
}
#endif

int main(int argc, char **argv)
{
    gc_ctx run;
    gc_ctx *c = &run;
    gc_args a;
    char out_buf[1024];
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    const char *out = a.out, *smi = a.smi;
    c->only = a.only;
    double t0 = kv_now_s();
    cudaDeviceProp pr;
    CK(cudaGetDeviceProperties(&pr, 0));
    if (!out) {
        default_out(a.out_dir, pr.name, out_buf, sizeof out_buf);
        out = out_buf;
    }
    c->sms = pr.multiProcessorCount;
    c->l2 = (size_t)pr.l2CacheSize;
    CK(cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking));
    {
        size_t fr, tot;
        CK(cudaMemGetInfo(&fr, &tot));
        c->usable = fr;
    }
    CK(cudaMalloc(&c->flush, 2 * c->l2));
    c->out = out;
    c->prop = pr;
    c->smi = smi;
    printf("gpu_check on %s (cc %d.%d, %d SMs, L2 %zu B)\n", pr.name, pr.major, pr.minor, c->sms, c->l2);

#ifdef KCU_EMU
    if (a.emu_full)
        run_checks(c);
    else
        run_checks_small(c);
    if (a.time_smoke)
        run_time_smoke(c);
    {
        int nfail_emu = 0;
        for (auto &c : c->checks)
            nfail_emu += !c.pass;
        probe_out none = {NAN, NAN, NAN, NAN, {}};
        if (write_report(c, out, pr, smi, none) != 0)
            return 1;
        printf("%d emulated checks, %d failed; report %s; %.1f s\n", (int)c->checks.size(), nfail_emu, out,
               kv_now_s() - t0);
        cudaFree(c->flush);
        cudaStreamDestroy(c->st);
        return nfail_emu ? 1 : 0;
    }
#endif
    if (a.emu_full || a.time_smoke) {
        fprintf(stderr, "gpu_check: --emu-full and --time-smoke exist only in the CPU emulation build (make cuda-emu)\n");
        return 2;
    }
    if (a.small) /* the emulation's list (compute-sanitizer runs) */
        run_checks_small(c);
    else
        run_checks(c);
    printf("checks done in %.1f s\n", kv_now_s() - t0);

    probe_out none = {NAN, NAN, NAN, NAN, {}};
    probe_out po = a.small && a.no_time ? none : run_probes(c, a.quick);

    if (!a.no_time)
        run_timings(c, a.quick);
    int rc = write_report(c, out, pr, smi, po);
    print_table(c, po.read_bps);
    int nfail = 0;
    for (auto &c : c->checks)
        nfail += !c.pass;
    printf("%d checks, %d failed; report %s; %.1f s\n", (int)c->checks.size(), nfail, out, kv_now_s() - t0);
    cudaFree(c->flush);
    cudaStreamDestroy(c->st);
    return (rc || nfail) ? 1 : 0;
}
