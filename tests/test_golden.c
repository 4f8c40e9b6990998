/* test_golden.c — golden/: the .npy reader/writer, gld_write and
 * gld_compare. The expected values of a golden come from a second,
 * independent implementation in NumPy float64 (tests/golden_f64.py) run on
 * random configurations: it must pass, and its deliberately damaged
 * variants must fail. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "gld.h"
#include "gld_npy.h"
#include "kv_jsonr.h"
#include "mdl.h"
#include "rkv.h"

static char tmpdir[64];

static void make_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kvsim-golden-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

Test(npy, roundtrip_every_dtype_and_header_alignment, .init = make_tmp, .fini = rm_tmp)
{
    double f64[24];
    float f32[24];
    int32_t i32[24];
    int64_t i64[24];
    uint16_t u16[24];
    for (int i = 0; i < 24; i++) {
        f64[i] = i * 0.37 - 3;
        f32[i] = (float)f64[i];
        i32[i] = i * 7 - 50;
        i64[i] = (int64_t)i << 40;
        u16[i] = (uint16_t)(0x3f80 + i);
    }
    const void *data[] = {f32, f64, i32, i64, u16};
    int64_t shapes[][3] = {{2, 3, 4}, {24, 0, 0}, {4, 6, 0}, {1, 24, 0}, {3, 8, 0}};
    int ndims[] = {3, 1, 2, 2, 2};
    for (int t = 0; t < 5; t++) {
        char path[128];
        snprintf(path, sizeof path, "%s/a%d.npy", tmpdir, t);
        kv_err err;
        cr_assert_eq(gld_npy_write(path, (gld_npy_dtype)t, ndims[t], shapes[t], data[t], &err), 0, "%s", err.msg);
        FILE *fp = fopen(path, "rb");
        unsigned char h[10];
        cr_assert_eq(fread(h, 1, 10, fp), 10);
        fclose(fp);
        cr_assert_eq((10 + (h[8] | h[9] << 8)) % 64, 0, "header must end on a 64-byte boundary");
        gld_npy a;
        cr_assert_eq(gld_npy_read(path, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(a.dtype, (gld_npy_dtype)t);
        cr_assert_eq(a.ndim, ndims[t]);
        cr_assert_eq(a.n, 24);
        for (int d = 0; d < ndims[t]; d++)
            cr_assert_eq(a.shape[d], shapes[t][d]);
        cr_assert_eq(memcmp(a.data, data[t], 24 * gld_npy_elem_bytes((gld_npy_dtype)t)), 0);
        gld_npy_free(&a);
    }
}

Test(npy, reader_rejects_truncated_and_foreign_files, .init = make_tmp, .fini = rm_tmp)
{
    char path[128];
    snprintf(path, sizeof path, "%s/t.npy", tmpdir);
    float x[63];
    for (int i = 0; i < 63; i++)
        x[i] = (float)i + 0.5f;
    int64_t sh[1] = {63};
    kv_err err;
    cr_assert_eq(gld_npy_write(path, GLD_NPY_F32, 1, sh, x, &err), 0);
    FILE *fs = fopen(path, "rb");
    fseek(fs, 0, SEEK_END);
    long size = ftell(fs);
    fclose(fs);
    cr_assert_eq(truncate(path, size - 4), 0);
    gld_npy a;
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "offset ") && strstr(err.msg, "expected 252 data bytes, file has 248"), "%s", err.msg);
    FILE *fp = fopen(path, "wb");
    const char hdr[] = "\x93NUMPY\x01\x00\x36\x00{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n";
    fwrite(hdr, 1, sizeof hdr - 1, fp);
    fclose(fp);
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "dtype"), "%s", err.msg);
    fp = fopen(path, "wb");
    fputs("not numpy", fp);
    fclose(fp);
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "magic"), "%s", err.msg);
}

/* Writes a raw .npy header with the given dict text and no data. */
static void write_header(const char *path, const char *dict)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    unsigned hl = (unsigned)strlen(dict);
    fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
    fputc((int)(hl & 0xff), fp);
    fputc((int)(hl >> 8), fp);
    fputs(dict, fp);
    fclose(fp);
}

Test(npy, reader_refuses_shapes_that_overflow_or_exceed_the_file, .init = make_tmp, .fini = rm_tmp)
{
    char path[128];
    snprintf(path, sizeof path, "%s/h.npy", tmpdir);
    gld_npy a;
    kv_err err;
    /* 2^62 · 64 elements: the product overflows int64 */
    write_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 64), }\n");
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "shape holds more than"), "%s", err.msg);
    /* a dimension past int64 */
    write_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n");
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "malformed shape"), "%s", err.msg);
    /* a plausible shape the file does not hold: refused before allocating */
    write_header(path, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000), }\n");
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "expected 8000000000 data bytes, file has 0"), "%s", err.msg);
    write_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, ");
    cr_assert_eq(gld_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "shape"), "%s", err.msg);
}

static void request(const char *model, const char *method, int64_t context, int64_t budget, mdl_model *m,
                    rkv_params *p)
{
    kv_err err;
    cr_assert_eq(mdl_model_load(model, m, &err), 0, "%s", err.msg);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = context;
    rq.budget = budget;
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    cr_assert_eq(rkv_params_resolve(method, &rq, p, &err), 0, "%s", err.msg);
}

static void golden_for(const char *model, const char *method, int64_t context, int64_t budget, uint64_t seed,
                       int kv_head, int64_t steps, const char *dir)
{
    mdl_model m;
    rkv_params p;
    request(model, method, context, budget, &m, &p);
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    wl.seed = seed;
    gld_opts o = {.layer = 1, .kv_head = kv_head, .steps = steps};
    kv_err err;
    cr_assert_eq(gld_write(&m, &wl, &p, &o, dir, &err), 0, "%s %s: %s", model, method, err.msg);
}

/* Compares; the verdict lines go to buf. Returns res.pass. */
static int run_compare(const char *e, const char *a, int all_stages, char *buf, size_t n)
{
    FILE *fp = fmemopen(buf, n, "w");
    kv_err err;
    gld_result res;
    gld_cmp_opts co = {.all_stages = all_stages};
    int rc = gld_compare(e, a, &co, fp, &res, &err);
    if (rc == 0)
        gld_result_print(&res, fp);
    fclose(fp);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return res.pass;
}

/* Runs the float64 implementation: GOLDEN -> CAND, with extra arguments. */
static void f64_candidate(const char *golden, const char *cand, const char *extra)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && python3 '%s/tests/golden_f64.py' '%s' '%s' %s", cand, KVSIM_DATADIR,
             golden, cand, extra);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Random configurations: models of different G and d (llama3.1-8b G 4 d
 * 128, smollm2-135m G 3 d 64, qwen2.5-7b G 7 d 128), every method the f64
 * implementation knows, contexts and budgets drawn from a fixed generator. */
Test(golden, float64_implementation_passes_on_random_configurations, .init = make_tmp, .fini = rm_tmp)
{
    static const char *const models[] = {"llama3.1-8b", "smollm2-135m", "qwen2.5-7b"};
    static const char *const methods[] = {"rocketkv", "hsa", "snapkv", "snapkv-gqa", "streaming", "full"};
    char g[128], c[128];
    static char buf[1 << 16];
    snprintf(g, sizeof g, "%s/g", tmpdir);
    snprintf(c, sizeof c, "%s/c", tmpdir);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int n = 0;
    for (int mi = 0; mi < 6; mi++)
        for (int k = 0; k < 2; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const char *model = models[(x >> 33) % 3];
            const int64_t context = 200 + (int64_t)((x >> 20) % 900), budget = 24 + (int64_t)((x >> 40) % 300);
            char rmcmd[200];
            snprintf(rmcmd, sizeof rmcmd, "rm -rf '%s'", g);
            cr_assert_eq(system(rmcmd), 0);
            golden_for(model, methods[mi], context, budget, 1 + (x >> 50), k ? -1 : (int)((x >> 8) % 2), 2, g);
            f64_candidate(g, c, "");
            cr_assert(run_compare(g, c, 1, buf, sizeof buf), "%s %s S=%lld t=%lld:\n%s", model, methods[mi],
                      (long long)context, (long long)budget, buf);
            cr_assert(strstr(buf, "0 missing"), "%s", buf);
            n++;
        }
    cr_assert_eq(n, 12);
}

Test(golden, damaged_candidates_fail, .init = make_tmp, .fini = rm_tmp)
{
    char g[128], c[128];
    static char buf[1 << 16];
    snprintf(g, sizeof g, "%s/g", tmpdir);
    snprintf(c, sizeof c, "%s/c", tmpdir);
    golden_for("llama3.1-8b", "rocketkv", 1111, 64, 3, 3, 2, g);
    static const struct { const char *how, *stage, *why; } cases[] = {
        {"swap", "selection    FAIL", "gap to threshold"},
        {"dup", "selection    FAIL", "duplicate entry"},
        {"oob", "selection    FAIL", "outside [0, "},
        {"value", "attention    FAIL", "outside the bound"},
    };
    for (int i = 0; i < 4; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "--break %s", cases[i].how);
        f64_candidate(g, c, extra);
        cr_assert_not(run_compare(g, c, 0, buf, sizeof buf), "%s passed:\n%s", cases[i].how, buf);
        cr_assert(strstr(buf, cases[i].stage) && strstr(buf, cases[i].why), "%s:\n%s", cases[i].how, buf);
    }
    /* the undamaged candidate passes, so the failures above are the damage */
    f64_candidate(g, c, "");
    cr_assert(run_compare(g, c, 1, buf, sizeof buf), "%s", buf);
}

Test(golden, a_partial_candidate_is_checked_on_what_it_supplies, .init = make_tmp, .fini = rm_tmp)
{
    char g[128], c[128];
    static char buf[1 << 16];
    snprintf(g, sizeof g, "%s/g", tmpdir);
    snprintf(c, sizeof c, "%s/c", tmpdir);
    golden_for("llama3.1-8b", "hsa", 700, 96, 2, 0, 1, g);
    f64_candidate(g, c, "--only out,selected");
    cr_assert(run_compare(g, c, 0, buf, sizeof buf), "%s", buf);
    cr_assert(strstr(buf, "page_scores  MISSING") && strstr(buf, "selection    PASS    1/2 tensors checked, 1 "
                                                                   "missing"), "%s", buf);
    cr_assert_not(run_compare(g, c, 1, buf, sizeof buf), "%s", buf);
    /* a candidate with nothing in it is an error, not a pass */
    kv_err err;
    gld_result res;
    gld_cmp_opts co = {0};
    cr_assert_eq(gld_compare(g, tmpdir, &co, NULL, &res, &err), -1);
    cr_assert(strstr(err.msg, "no tensor"), "%s", err.msg);
    co.atol = -1;
    cr_assert_eq(gld_compare(g, c, &co, NULL, &res, &err), -1);
    cr_assert(strstr(err.msg, "atol must be >= 0"), "%s", err.msg);
}

/* Every method is written; the manifest states G, d, the maximum length and
 * each index tensor's convention; every KV head gets its directory. */
Test(golden, every_method_and_head_with_the_manifest_keys, .init = make_tmp, .fini = rm_tmp)
{
    static char buf[1 << 16];
    for (int i = 0; rkv_methods[i]; i++) {
        char g[160], path[300];
        snprintf(g, sizeof g, "%s/%s", tmpdir, rkv_methods[i]->name);
        golden_for("smollm2-135m", rkv_methods[i]->name, 400, 64, 1, -1, 2, g);
        cr_assert(run_compare(g, g, 1, buf, sizeof buf), "%s", buf);
        snprintf(path, sizeof path, "%s/manifest.json", g);
        kv_jsonr_doc doc;
        kv_err err;
        cr_assert_eq(kv_jsonr_load_file(&doc, path, &err), 0, "%s", err.msg);
        const kv_jsonr_node *G = kv_jsonr_get(doc.root, "G"), *d = kv_jsonr_get(doc.root, "d");
        const kv_jsonr_node *mx = kv_jsonr_get(doc.root, "max_position_embeddings");
        const kv_jsonr_node *heads = kv_jsonr_get(doc.root, "kv_heads"), *ts = kv_jsonr_get(doc.root, "tensors");
        cr_assert(G && G->num == 3 && d && d->num == 64 && mx && mx->num == 8192, "%s", rkv_methods[i]->name);
        cr_assert(heads && heads->n == 3, "smollm2-135m has 3 KV heads");
        int sel = 0;
        for (size_t t = 0; t < ts->n; t++) {
            const kv_jsonr_node *nm = kv_jsonr_get(ts->items[t], "name"), *ix = kv_jsonr_get(ts->items[t], "index");
            if (!strcmp(nm->str, "selected")) {
                cr_assert(ix && !strcmp(ix->str, "slot"));
                sel++;
            }
            if (!strcmp(nm->str, "kept"))
                cr_assert(ix && !strcmp(ix->str, "absolute"));
        }
        cr_assert_eq(sel, 3 * 2, "%s: one selected per head and step", rkv_methods[i]->name);
        kv_jsonr_free(&doc);
        snprintf(path, sizeof path, "%s/kvh2/step1/out.npy", g);
        cr_assert_eq(access(path, R_OK), 0, "%s", path);
    }
}

/* Every KV dtype the reference stores, and an aux dtype other than the KV
 * one: the manifest names both, every K/V input element is a value of the
 * KV dtype (rounding it to the dtype leaves it unchanged, rkv_quantize),
 * and the float64 implementation (which rounds page bounds to a differing
 * aux dtype itself) passes with every stage, so the bounds hold for each. */
Test(golden, every_kv_dtype_passes_the_float64_implementation, .init = make_tmp, .fini = rm_tmp)
{
    static const struct { rkv_dtype kv, aux; } dts[] = {
        {RKV_DTYPE_FP16, RKV_DTYPE_FP16}, {RKV_DTYPE_FP32, RKV_DTYPE_FP32}, {RKV_DTYPE_FP8_E4M3, RKV_DTYPE_FP8_E4M3},
        {RKV_DTYPE_FP8_E5M2, RKV_DTYPE_FP8_E5M2}, {RKV_DTYPE_FP32, RKV_DTYPE_BF16},
    };
    static char buf[1 << 16];
    char g[128], c[128], path[300];
    snprintf(c, sizeof c, "%s/c", tmpdir);
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        snprintf(g, sizeof g, "%s/g%zu", tmpdir, i);
        mdl_model m;
        kv_err err;
        cr_assert_eq(mdl_model_load("smollm2-135m", &m, &err), 0, "%s", err.msg);
        rkv_request rq;
        rkv_request_defaults(&rq);
        rq.context = 400;
        rq.budget = 64;
        rq.d = m.head_dim;
        rq.G = mdl_group_size(&m);
        rq.model_max_len = m.max_position_embeddings;
        rq.kv_dtype = dts[i].kv;
        rq.aux_dtype = dts[i].aux;
        rq.aux_dtype_set = 1;
        rkv_params p;
        cr_assert_eq(rkv_params_resolve("rocketkv", &rq, &p, &err), 0, "%s", err.msg);
        rkv_workload wl;
        rkv_workload_defaults(&wl);
        gld_opts o = {.layer = 1, .kv_head = -1, .steps = 2};
        cr_assert_eq(gld_write(&m, &wl, &p, &o, g, &err), 0, "%s: %s", rkv_dtype_name(dts[i].kv), err.msg);
        f64_candidate(g, c, "");
        cr_assert(run_compare(g, c, 1, buf, sizeof buf), "kv %s aux %s:\n%s", rkv_dtype_name(dts[i].kv),
                  rkv_dtype_name(dts[i].aux), buf);
        cr_assert(strstr(buf, "0 missing"), "%s", buf);
        snprintf(path, sizeof path, "%s/manifest.json", g);
        kv_jsonr_doc doc;
        cr_assert_eq(kv_jsonr_load_file(&doc, path, &err), 0, "%s", err.msg);
        const kv_jsonr_node *kd = kv_jsonr_get(doc.root, "kv_dtype"), *ad = kv_jsonr_get(doc.root, "aux_dtype");
        cr_assert(kd && ad && !strcmp(kd->str, rkv_dtype_name(dts[i].kv)) && !strcmp(ad->str, rkv_dtype_name(dts[i].aux)));
        cr_assert(kv_jsonr_get(doc.root, "storage"));
        kv_jsonr_free(&doc);
        static const char *const inputs[] = {"kvh0/step1/k_cache.npy", "kvh2/step0/v_cache.npy",
                                             "kvh1/prefill/k_prompt.npy"};
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s", g, inputs[k]);
            gld_npy a;
            cr_assert_eq(gld_npy_read(path, &a, &err), 0, "%s", err.msg);
            const float *x = a.data;
            for (int64_t e = 0; e < a.n; e++)
                cr_assert(rkv_quantize(dts[i].kv, x[e]) == x[e], "%s[%lld] = %.9g is not a %s value", path,
                          (long long)e, (double)x[e], rkv_dtype_name(dts[i].kv));
            gld_npy_free(&a);
        }
    }
}

/* ---- multi-turn ----
 * tests/data/golden_multiturn.yaml: turns (300 in, 2 out), (40, 3), (24, 2).
 * Decode positions by hand: 300, 301; 300+2+40 = 342, 343, 344; 342+3+24 =
 * 369, 370. The oracles: the float64 implementation passes every stage, and
 * each step's attended positions (cache_positions[selected]) equal those
 * rkv_run's own multi-turn walk hands its on_step callback. */
#define MT_STEPS 7
#define MT_HEADS 3
typedef struct {
    int64_t position[MT_STEPS];
    int32_t pos[MT_STEPS][MT_HEADS][8][512]; /* (step, KV head, row, attended) */
    int64_t count[MT_STEPS][MT_HEADS][8];
    int rows[MT_STEPS][MT_HEADS];
} mt_seen;

static int mt_on_step(void *ctx, const rkv_record *rec)
{
    mt_seen *m = ctx;
    const rkv_step_out *o = rec->so;
    if (rec->step >= MT_STEPS || rec->kv_head >= MT_HEADS || rec->layer != 0) return -1;
    m->position[rec->step] = rec->position;
    const int rows = o->shared ? 1 : 3;
    m->rows[rec->step][rec->kv_head] = rows;
    for (int r = 0; r < rows; r++) {
        if (o->count[r] > 512) return -1;
        m->count[rec->step][rec->kv_head][r] = o->count[r];
        memcpy(m->pos[rec->step][rec->kv_head][r], o->pos + (size_t)r * (size_t)o->cap, sizeof(int32_t) * (size_t)o->count[r]);
    }
    return 0;
}

static void multi_turn_case(const char *method, char *buf, size_t nbuf)
{
    static const int64_t want_pos[MT_STEPS] = {300, 301, 342, 343, 344, 369, 370};
    static mt_seen seen;
    memset(&seen, 0, sizeof seen);
    char g[128], c[128], path[300];
    snprintf(g, sizeof g, "%s/%s", tmpdir, method);
    snprintf(c, sizeof c, "%s/c", tmpdir);
    mdl_model m;
    kv_err err;
    rkv_workload wl;
    cr_assert_eq(rkv_workload_load(KVSIM_DATADIR "/tests/data/golden_multiturn.yaml", &wl, &err), 0, "%s", err.msg);
    cr_assert_eq(wl.nturns, 3);
    cr_assert_eq(mdl_model_load("smollm2-135m", &m, &err), 0, "%s", err.msg);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = wl.turn_input[0];
    rq.max_new = wl.turn_output[0];
    rq.budget = 64;
    rq.d = m.head_dim;
    rq.G = mdl_group_size(&m);
    rq.model_max_len = m.max_position_embeddings;
    rkv_run_cfg cfg = {.model = &m, .wl = &wl, .nsets = 1, .threads = 1};
    cr_assert_eq(rkv_params_resolve(method, &rq, &cfg.sets[0], &err), 0, "%s", err.msg);
    gld_opts o = {.layer = 0, .kv_head = -1, .steps = MT_STEPS};
    cr_assert_eq(gld_write(&m, &wl, &cfg.sets[0], &o, g, &err), 0, "%s: %s", method, err.msg);
    f64_candidate(g, c, "");
    cr_assert(run_compare(g, c, 1, buf, nbuf), "%s multi-turn:\n%s", method, buf);
    cr_assert(strstr(buf, "0 missing"), "%s", buf);
    const int layer0[1] = {0};
    cfg.layers = layer0;
    cfg.nlayers = 1;
    cfg.on_step = mt_on_step;
    cfg.ctx = &seen;
    cr_assert_eq(rkv_run(&cfg, NULL, &err), 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/manifest.json", g);
    kv_jsonr_doc doc;
    cr_assert_eq(kv_jsonr_load_file(&doc, path, &err), 0, "%s", err.msg);
    const kv_jsonr_node *dp = kv_jsonr_get(doc.root, "decode_positions"), *tu = kv_jsonr_get(doc.root, "turns");
    cr_assert(dp && dp->n == MT_STEPS && tu && tu->n == 3);
    for (int s = 0; s < MT_STEPS; s++) {
        cr_assert_eq((int64_t)dp->items[s]->num, want_pos[s], "step %d", s);
        cr_assert_eq(seen.position[s], want_pos[s], "rkv_run step %d", s);
        for (int h = 0; h < MT_HEADS; h++) {
            gld_npy cp, sel;
            snprintf(path, sizeof path, "%s/kvh%d/step%d/cache_positions.npy", g, h, s);
            cr_assert_eq(gld_npy_read(path, &cp, &err), 0, "%s", err.msg);
            snprintf(path, sizeof path, "%s/kvh%d/step%d/selected.npy", g, h, s);
            cr_assert_eq(gld_npy_read(path, &sel, &err), 0, "%s", err.msg);
            const int rows = seen.rows[s][h], cache_rows = cp.ndim == 2 ? (int)cp.shape[0] : 1;
            const int64_t C = cp.shape[cp.ndim - 1], n = sel.shape[sel.ndim - 1];
            cr_assert_eq(sel.ndim == 2 ? (int)sel.shape[0] : 1, rows, "%s step %d head %d", method, s, h);
            for (int r = 0; r < rows; r++) {
                const int32_t *cr = (const int32_t *)cp.data + (size_t)(cache_rows > 1 ? r : 0) * (size_t)C;
                const int32_t *sr = (const int32_t *)sel.data + (size_t)r * (size_t)n;
                int64_t k = 0;
                for (; k < n && sr[k] >= 0; k++)
                    cr_assert_eq(cr[sr[k]], seen.pos[s][h][r][k], "%s step %d head %d row %d: attended %lld", method,
                                 s, h, r, (long long)k);
                cr_assert_eq(k, seen.count[s][h][r], "%s step %d head %d row %d", method, s, h, r);
            }
            gld_npy_free(&cp);
            gld_npy_free(&sel);
        }
    }
    kv_jsonr_free(&doc);
}

Test(golden, multi_turn_matches_the_reference_run_and_the_float64_implementation, .init = make_tmp, .fini = rm_tmp)
{
    static char buf[1 << 16];
    multi_turn_case("rocketkv", buf, sizeof buf);
    multi_turn_case("snapkv", buf, sizeof buf);
}

/* Decode positions run S .. S + steps − 1 and a model has 0 .. max − 1. */
/* Decode positions run S .. S + steps − 1 and a model has 0 .. max − 1: a
 * prompt filling all 8192 positions of smollm2-135m leaves none to decode. */
Test(golden, refuses_decode_positions_past_the_model_maximum_length, .init = make_tmp, .fini = rm_tmp)
{
    mdl_model m;
    rkv_params p;
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    char g[128];
    snprintf(g, sizeof g, "%s/g", tmpdir);
    kv_err err;
    gld_opts o = {.layer = 0, .kv_head = 0, .steps = 1};
    request("smollm2-135m", "full", 8192, 64, &m, &p);
    cr_assert_eq(gld_write(&m, &wl, &p, &o, g, &err), -1);
    cr_assert(strstr(err.msg, "decode position 8192 is past smollm2-135m's maximum length 8192"), "%s", err.msg);
    request("smollm2-135m", "full", 8191, 64, &m, &p);
    o.steps = 2; /* S' = min(S + new, 8192) leaves one step */
    cr_assert_eq(gld_write(&m, &wl, &p, &o, g, &err), -1);
    cr_assert(strstr(err.msg, "--steps must be between 1 and 1"), "%s", err.msg);
    o.steps = 1; /* position 8191, the last the model has */
    cr_assert_eq(gld_write(&m, &wl, &p, &o, g, &err), 0, "%s", err.msg);
}

Test(golden, compare_rejects_a_directory_without_manifest, .init = make_tmp, .fini = rm_tmp)
{
    kv_err err;
    gld_result res;
    gld_cmp_opts co = {0};
    cr_assert_eq(gld_compare(tmpdir, tmpdir, &co, NULL, &res, &err), -1);
    cr_assert(strstr(err.msg, "manifest.json"), "%s", err.msg);
}

/* The thin CLI: flags in, one library call, verdict out; bad numbers are
 * one line with the flag and the range, exit 2, nothing written. */
Test(golden_cli, golden_then_compare_with_every_head_and_several_steps, .init = make_tmp, .fini = rm_tmp)
{
    char args[512], g[128], c[128];
    snprintf(g, sizeof g, "%s/g", tmpdir);
    snprintf(c, sizeof c, "%s/c", tmpdir);
    cli_result r;
    snprintf(args, sizeof args, "golden --model smollm2-135m --method rocketkv --budget 96 --context 900 --steps 3 "
             "--kv-head all --layer 2 --seed 7 --out %s", g);
    cli_run(&r, args);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "3 step(s), layer 2, kv head all"), "%s", r.out);
    f64_candidate(g, c, "");
    snprintf(args, sizeof args, "compare %s %s --all-stages", g, c);
    cli_run(&r, args);
    cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
    /* 3 KV heads × (votes, pooled, kept + 3 steps × (page_min, page_max, dim_scores, dims, page_scores,
     * token_scores, selected, out)) = 3 × (3 + 24) */
    cr_assert(strstr(r.out, "PASS: 81 tensor(s) checked, 0 missing"), "%s", r.out);
    snprintf(args, sizeof args, "compare %s %s --atol -1", g, c);
    cli_run(&r, args);
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--atol") && strstr(r.err, "out of range") && cli_one_line(r.err), "%s", r.err);
    snprintf(args, sizeof args, "golden --model smollm2-135m --method hsa --budget 96 --context 900 --kv-head 3 "
             "--out %s/x", tmpdir);
    cli_run(&r, args);
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--kv-head") && cli_one_line(r.err), "%s", r.err);
    snprintf(args, sizeof args, "%s/x", tmpdir);
    cr_assert_neq(access(args, F_OK), 0, "nothing is written on bad usage");
}
