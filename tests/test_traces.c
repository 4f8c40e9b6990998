/* test_traces.c — traces/: round trip of every method (every field of every
 * record against what rkv_run handed the writer), exactness of the recorded
 * bytes against each method's analytic traffic() where it is data-independent,
 * byte-identical files (same run twice; 1 vs 2 threads), sector counts on a
 * hand-checked case, every reader error path on committed corrupt samples,
 * and the committed sample traces against their expected `inspect --json`.
 * Shapes are small (smollm2-135m, one or two layers, a few hundred tokens)
 * so the suite stays fast under ASan. Runs from the repository root. */
#include <criterion/criterion.h>
#include "kv_skip.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv_jsonr.h"
#include "trc.h"
#include "trc_summary.h"

static mdl_model model;
static rkv_workload wl;
static const int two_layers[2] = {0, 7};

static void setup_cfg(rkv_run_cfg *cfg, const char *method, int64_t budget, int64_t context, rkv_dtype dt, int threads)
{
    kv_err err = {""};
    cr_assert_eq(mdl_model_load("smollm2-135m", &model, &err), 0, "%s", err.msg);
    rkv_workload_defaults(&wl);
    wl.seed = 7;
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = model.head_dim;
    rq.G = mdl_group_size(&model);
    rq.model_max_len = model.max_position_embeddings;
    rq.context = context;
    rq.budget = budget;
    rq.kv_dtype = dt;
    memset(cfg, 0, sizeof *cfg);
    cr_assert_eq(rkv_params_resolve(method, &rq, &cfg->sets[0], &err), 0, "%s: %s", method, err.msg);
    cfg->nsets = 1;
    cfg->model = &model;
    cfg->wl = &wl;
    cfg->steps = 3;
    cfg->layers = two_layers;
    cfg->nlayers = 2;
    cfg->threads = threads;
}

static char *tmp_path(const char *tag)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "/tmp/kvsim_test_%s_%ld.trc", tag, (long)getpid());
    return p;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "%s: cannot open", path);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    cr_assert_eq(fread(b, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    b[len] = 0;
    *n = (size_t)len;
    return b;
}

/* ---- what rkv_run handed the writer, captured single-threaded ---- */
typedef struct {
    int64_t position, cache_tokens, pages_scored, ndims, count[64];
    int shared, dims_shared;
    rkv_traffic bytes;
    int32_t *pos, *dims;
} cap_rec;

typedef struct {
    cap_rec rec[3][2][8]; /* (step, layer index, KV head) */
    int64_t s1_rows[2][8], s1_n[2][8][64];
    int32_t *s1[2][8];
    int G, d;
} capture;

static int cap_stage1(void *ctx, int set, int layer, int kvh, int nrows, const int32_t *kept, int64_t stride, const int64_t *nk)
{
    capture *c = ctx;
    const int li = layer == 0 ? 0 : 1;
    c->s1_rows[li][kvh] = nrows;
    int64_t tot = 0;
    for (int r = 0; r < nrows; r++) tot += nk[r];
    int32_t *p = c->s1[li][kvh] = malloc((size_t)(tot + 1) * 4);
    for (int r = 0; r < nrows; r++) {
        c->s1_n[li][kvh][r] = nk[r];
        for (int64_t i = 0; i < nk[r]; i++) *p++ = kept ? kept[(size_t)r * (size_t)stride + (size_t)i] : (int32_t)i;
    }
    return 0;
}

static int cap_step(void *ctx, const rkv_record *rec)
{
    capture *c = ctx;
    const rkv_step_out *o = rec->so;
    cap_rec *x = &c->rec[rec->step][rec->layer == 0 ? 0 : 1][rec->kv_head];
    x->position = rec->position;
    x->cache_tokens = o->cache_tokens;
    x->pages_scored = o->pages_scored;
    x->shared = o->shared;
    x->ndims = o->ndims;
    x->dims_shared = o->dims_shared;
    x->bytes = o->bytes;
    const int rows = o->shared ? 1 : c->G;
    x->pos = malloc((size_t)rows * (size_t)o->cap * 4 + 4);
    x->dims = malloc((size_t)c->G * (size_t)c->d * 4);
    for (int r = 0; r < rows; r++) {
        x->count[r] = o->count[r];
        memcpy(x->pos + (size_t)r * (size_t)o->cap, o->pos + (size_t)r * (size_t)o->cap, (size_t)o->count[r] * 4);
    }
    x->count[63] = o->cap;
    if (o->ndims) memcpy(x->dims, o->dims, (size_t)c->G * (size_t)c->d * 4);
    return 0;
}

static void capture_free(capture *c)
{
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < 8; h++) {
                free(c->rec[s][l][h].pos);
                free(c->rec[s][l][h].dims);
            }
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 8; h++) free(c->s1[l][h]);
}

static int cmp_i32(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

static void round_trip(const char *method)
{
    rkv_run_cfg cfg;
    setup_cfg(&cfg, method, 64, 333, RKV_DTYPE_BF16, 1);
    static capture cap;
    memset(&cap, 0, sizeof cap);
    cap.G = mdl_group_size(&model);
    cap.d = model.head_dim;
    rkv_run_cfg c2 = cfg;
    c2.on_stage1 = cap_stage1;
    c2.on_step = cap_step;
    c2.ctx = &cap;
    kv_err err = {""};
    cr_assert_eq(rkv_run(&c2, NULL, &err), 0, "%s", err.msg);
    const char *path = tmp_path("rt");
    cr_assert_eq(trc_record_run(path, &cfg, 1, 1, NULL, &err), 0, "%s", err.msg);
    trc_reader *r;
    cr_assert_eq(trc_open(path, &r, &err), 0, "%s", err.msg);
    const trc_header *h = trc_get_header(r);
    cr_assert_str_eq(h->params.method->name, method);
    cr_assert_eq(h->params.budget, 64);
    cr_assert_eq(h->params.S, 333);
    cr_assert_eq(h->params.topk, cfg.sets[0].topk);
    cr_assert_eq(h->params.page_size, cfg.sets[0].page_size);
    cr_assert_eq(h->params.capacity, cfg.sets[0].capacity);
    cr_assert_eq(h->params.c, cfg.sets[0].c);
    cr_assert_eq(h->wl.seed, 7);
    cr_assert_eq(h->wl.key_noise, wl.key_noise);
    cr_assert_eq(h->model.num_key_value_heads, 3);
    cr_assert_eq(h->nlayers, 2);
    cr_assert_eq(h->layers[1], 7);
    cr_assert_eq(h->steps, 3);
    cr_assert_eq(h->batch, 1);
    cr_assert_eq(h->fidelity, 1);
    trc_stage1 s1 = {0};
    cr_assert_eq(trc_read_stage1(r, 0, &s1, &err), 0, "%s", err.msg);
    for (int i = 0; i < s1.nrec; i++) {
        const int li = i / 3, kh = i % 3;
        cr_assert_eq(s1.rec[i].nrows, cap.s1_rows[li][kh]);
        const int32_t *want = cap.s1[li][kh];
        for (int k = 0; k < s1.rec[i].nrows; k++) {
            cr_assert_eq(s1.rec[i].count[k], cap.s1_n[li][kh][k]);
            cr_assert_eq(memcmp(s1.rec[i].pos[k], want, (size_t)s1.rec[i].count[k] * 4), 0, "%s: stage 1 differs", method);
            want += s1.rec[i].count[k];
        }
    }
    trc_stage1_free(&s1);
    trc_step st = {0};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(trc_read_step(r, 0, s, &st, &err), 0, "%s", err.msg);
        for (int i = 0; i < st.nrec; i++) {
            const trc_record *x = &st.rec[i];
            const cap_rec *w = &cap.rec[s][i / 3][i % 3];
            cr_assert_eq(st.position, w->position);
            cr_assert_eq(x->cache_tokens, w->cache_tokens);
            cr_assert_eq(x->pages_scored, w->pages_scored);
            cr_assert_eq(x->shared, w->shared);
            cr_assert_eq(x->bytes.weights, x->kv_head == 0 ? mdl_layer_params(&model) * 2 : 0);
            cr_assert_eq(x->bytes.kv_exact, w->bytes.kv_exact);
            cr_assert_eq(x->bytes.kv_full, w->bytes.kv_full);
            cr_assert_eq(x->bytes.aux, w->bytes.aux);
            cr_assert_eq(x->bytes.kv_write, w->bytes.kv_write);
            cr_assert_eq(x->bytes.scores, w->bytes.scores);
            cr_assert(x->sectors_kv > 0 && x->pages_kv > 0);
            cr_assert_eq(x->sectors_aux > 0, x->bytes.aux > 0);
            /* aux rows are dimension-major (FORMAT.md): rows read x sectors per row */
            int64_t rows_read = x->ndims, elem = 2; /* bf16 KV and aux */
            if (!strcmp(method, "quest")) rows_read = 2 * cap.d;
            if (x->ndim_rows > 1) { /* sparq: union of the heads' dims */
                int seen[512] = {0};
                rows_read = 0;
                for (int k = 0; k < x->ndim_rows; k++)
                    for (int64_t j = 0; j < x->ndims; j++) rows_read += !seen[x->dims[k][j]]++;
            }
            { /* K and V rows of d*2 = 128 bytes: 4 sectors each, one per distinct slot */
                int64_t rows = 0;
                if (!strcmp(method, "snapkv")) { /* G regions */
                    for (int k = 0; k < x->nrows; k++) rows += x->count[k];
                } else {
                    static unsigned char in[4096];
                    memset(in, 0, sizeof in);
                    for (int k = 0; k < x->nrows; k++)
                        for (int64_t j = 0; j < x->count[k]; j++) rows += !in[x->pos[k][j]]++;
                }
                const int64_t full = x->bytes.kv_full / (x->cache_tokens * 128);
                const int64_t want = (full >= 1 ? x->cache_tokens : rows) * 4 + (full >= 2 ? x->cache_tokens : rows) * 4;
                cr_assert_eq(x->sectors_kv, want, "%s: sectors_kv %lld, expected %lld", method, (long long)x->sectors_kv,
                             (long long)want);
            }
            if (x->bytes.aux > 0)
                cr_assert_eq(x->sectors_aux, rows_read * ((x->pages_scored * elem + 31) / 32), "%s: sectors_aux %lld",
                             method, (long long)x->sectors_aux);
            for (int k = 0; k < x->nrows; k++) {
                cr_assert_eq(x->count[k], w->count[k], "%s step %d rec %d row %d", method, s, i, k);
                cr_assert_eq(memcmp(x->pos[k], w->pos + (size_t)k * (size_t)w->count[63], (size_t)x->count[k] * 4), 0,
                             "%s: positions differ", method);
            }
            cr_assert_eq(x->ndims, w->ndims);
            for (int k = 0; k < x->ndim_rows; k++) {
                int32_t want[512];
                memcpy(want, w->dims + (size_t)k * (size_t)cap.d, (size_t)w->ndims * 4);
                qsort(want, (size_t)w->ndims, 4, cmp_i32);
                cr_assert_eq(memcmp(x->dims[k], want, (size_t)w->ndims * 4), 0, "%s: dims differ", method);
            }
            cr_assert(x->has_fid);
            for (int g = 0; g < cap.G; g++)
                cr_assert(x->fid[g][RKV_FID_MASS_RECALL] > 0.0f && x->fid[g][RKV_FID_MASS_RECALL] <= 1.0001f);
        }
    }
    trc_step_free(&st);
    trc_close(r);
    capture_free(&cap);
    remove(path);
}

Test(traces, round_trip_full) { round_trip("full"); }
Test(traces, round_trip_exact_topk) { round_trip("exact-topk"); }
Test(traces, round_trip_streaming) { round_trip("streaming"); }
Test(traces, round_trip_snapkv) { round_trip("snapkv"); }
Test(traces, round_trip_snapkv_gqa) { round_trip("snapkv-gqa"); }
Test(traces, round_trip_quest) { round_trip("quest"); }
Test(traces, round_trip_sparq) { round_trip("sparq"); }
Test(traces, round_trip_hsa) { round_trip("hsa"); }
Test(traces, round_trip_rocketkv) { round_trip("rocketkv"); }
Test(traces, round_trip_rocketkv_mt) { round_trip("rocketkv-mt"); }

/* Recorded bytes == analytic traffic() for every data-independent set. */
Test(traces, bytes_equal_analytic_traffic, .timeout = 120)
{
    static const char *const methods[] = {"full", "exact-topk", "streaming", "snapkv", "snapkv-gqa", "quest",
                                          "sparq", "hsa", "rocketkv", "rocketkv-mt"};
    static const int64_t contexts[] = {300, 1111};
    static const int64_t budgets[] = {48, 250};
    static const rkv_dtype dtypes[] = {RKV_DTYPE_BF16, RKV_DTYPE_FP8_E4M3, RKV_DTYPE_FP32};
    int checked = 0, combo = 0;
    const char *path = tmp_path("exact");
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
        for (int ci = 0; ci < 2; ci++)
            for (int bi = 0; bi < 2; bi++, combo++) {
                rkv_run_cfg cfg;
                setup_cfg(&cfg, methods[m], budgets[bi], contexts[ci], dtypes[combo % 3], 2);
                cfg.steps = 2;
                cfg.nlayers = 1;
                const rkv_params *p = &cfg.sets[0];
                if (!rkv_params_data_independent(p))
                    continue;
                kv_err err = {""};
                cr_assert_eq(trc_record_run(path, &cfg, 1, 0, NULL, &err), 0, "%s", err.msg);
                trc_reader *r;
                cr_assert_eq(trc_open(path, &r, &err), 0, "%s", err.msg);
                trc_step st = {0};
                for (int s = 0; s < 2; s++) {
                    cr_assert_eq(trc_read_step(r, 0, s, &st, &err), 0, "%s", err.msg);
                    rkv_traffic t;
                    p->method->traffic(p, s, &t);
                    for (int i = 0; i < st.nrec; i++) {
                        const rkv_traffic *x = &st.rec[i].bytes;
                        cr_assert(x->kv_exact == t.kv_exact && x->kv_full == t.kv_full && x->aux == t.aux &&
                                      x->kv_write == t.kv_write && x->scores == t.scores,
                                  "%s S=%lld t=%lld %s step %d: trace %lld/%lld/%lld/%lld/%lld, analytic %lld/%lld/%lld/%lld/%lld",
                                  methods[m], (long long)contexts[ci], (long long)budgets[bi], rkv_dtype_name(p->kv_dtype), s,
                                  (long long)x->kv_exact, (long long)x->kv_full, (long long)x->aux, (long long)x->kv_write,
                                  (long long)x->scores, (long long)t.kv_exact, (long long)t.kv_full, (long long)t.aux,
                                  (long long)t.kv_write, (long long)t.scores);
                        checked++;
                    }
                }
                trc_step_free(&st);
                trc_close(r);
            }
    remove(path);
    cr_assert(checked >= 100, "only %d records checked", checked);
}

/* full, bf16, d = 64: a K row is 128 bytes = 4 sectors; every slot read. */
Test(traces, sectors_of_a_dense_scan)
{
    rkv_run_cfg cfg;
    setup_cfg(&cfg, "full", 64, 301, RKV_DTYPE_BF16, 2);
    cfg.nlayers = 1;
    kv_err err = {""};
    const char *path = tmp_path("sect");
    cr_assert_eq(trc_record_run(path, &cfg, 2, 0, NULL, &err), 0, "%s", err.msg);
    trc_reader *r;
    cr_assert_eq(trc_open(path, &r, &err), 0, "%s", err.msg);
    trc_step st = {0};
    cr_assert_eq(trc_read_step(r, 1, 2, &st, &err), 0, "%s", err.msg);
    const int64_t C = 301 + 2 + 1;
    cr_assert_eq(st.position, 303);
    cr_assert_eq(st.rec[0].sectors_kv, 2 * C * 4);
    cr_assert_eq(st.rec[0].pages_kv, (C + 15) / 16);
    cr_assert_eq(st.rec[0].sectors_aux, 0);
    cr_assert_eq(st.rec[0].bytes.weights, 0, "weights are recorded in sequence 0 only");
    trc_step_free(&st);
    trc_close(r);
    remove(path);
}

static void expect_identical(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    cr_assert_eq(na, nb, "%s: %zu bytes, %s: %zu bytes", a, na, b, nb);
    cr_assert_eq(memcmp(x, y, na), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

Test(traces, same_run_twice_and_one_vs_two_threads_are_byte_identical)
{
    rkv_run_cfg cfg;
    kv_err err = {""};
    const char *a = tmp_path("det_a"), *b = tmp_path("det_b"), *c = tmp_path("det_c");
    setup_cfg(&cfg, "rocketkv", 64, 444, RKV_DTYPE_BF16, 2);
    cr_assert_eq(trc_record_run(a, &cfg, 2, 0, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(trc_record_run(b, &cfg, 2, 0, NULL, &err), 0, "%s", err.msg);
    cfg.threads = 1;
    cr_assert_eq(trc_record_run(c, &cfg, 2, 0, NULL, &err), 0, "%s", err.msg);
    expect_identical(a, b);
    expect_identical(a, c);
    remove(a);
    remove(b);
    remove(c);
}

Test(traces, crc32c_check_value)
{
    cr_assert_eq(trc_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(trc_crc32c(trc_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

Test(traces, position_lists_encode_runs_compactly)
{
    int32_t p[64];
    uint8_t out[2048];
    for (int i = 0; i < 64; i++) p[i] = 100 + i; /* one run */
    cr_assert_eq(trc_poslist_encode(p, 64, out), 4);
    for (int i = 0; i < 64; i++) p[i] = 7 * i + 3; /* isolated, gaps of 6 */
    cr_assert_eq(trc_poslist_encode(p, 64, out), 1 + 64);
}

/* ---- reader error paths: tests/data/traces/<name>.trc must fail with msg ---- */
typedef struct {
    const char *file, *msg;
} bad_case;

static const bad_case bad_cases[] = {
    {"empty.trc", "expected at least 37"},
    {"bad_magic.trc", "offset 0: magic is not"},
    {"bad_version.trc", "offset 8: format version 2, expected 1"},
    {"truncated_middle.trc", "footer"},
    {"truncated_footer.trc", "footer"},
    {"trailing_garbage.trc", "footer"},
    {"flipped_step_byte.trc", "block 'D' CRC32C"},
    {"flipped_header_byte.trc", "block 'H' CRC32C"},
    {"bad_index_offset.trc", "expected"},
    {"missing_field.trc", "required field 'budget' is missing"},
    {"duplicate_field.trc", "duplicate field"},
    {"layers_unsorted.trc", "layer ids must be ascending"},
    {"batch_overflow.trc", "cannot fit in the file"},
    {"count_overflow.trc", "position count"},
    {"position_out_of_range.trc", "out of range, expected below"},
    {"run_overflows_count.trc", "overflows the count"},
    {"varint_too_long.trc", "varint"},
    {"dims_popcount.trc", "dims set, expected ndims"},
    {"bad_flags.trc", "record flags"},
    {"trailing_record_bytes.trc", "trailing bytes"},
    {"wrong_layer.trc", "layer"},
    {"stage1_trailing_bytes.trc", "trailing bytes after the last stage-1 record"},
};

Test(traces, reader_rejects_every_corrupt_sample)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "tests/data/traces/%s", bad_cases[i].file);
        cr_assert_eq(access(path, R_OK), 0, "%s missing (scripts/trace_corrupt.py makes it)", path);
        trc_reader *r = NULL;
        kv_err err = {""};
        int rc = trc_open(path, &r, &err);
        if (rc == 0) { /* structural damage inside a block shows when it is decoded */
            const trc_header *h = trc_get_header(r);
            trc_step st = {0};
            trc_stage1 s1 = {0};
            for (int s = 0; s < h->batch && rc == 0; s++) {
                rc = trc_read_stage1(r, s, &s1, &err);
                for (int64_t k = 0; k < h->steps && rc == 0; k++) rc = trc_read_step(r, s, k, &st, &err);
            }
            trc_step_free(&st);
            trc_stage1_free(&s1);
            trc_close(r);
        }
        cr_assert_eq(rc, -1, "%s was accepted", path);
        cr_assert(strstr(err.msg, bad_cases[i].msg), "%s: '%s' does not say '%s'", path, err.msg, bad_cases[i].msg);
        cr_assert(strstr(err.msg, "offset") || strstr(err.msg, "header:"), "%s: no offset in '%s'", path, err.msg);
    }
}

/* Fuzzer finds (crash-*) are replayed: decoded as far as the reader allows,
 * under ASan/UBSan; a rejection must say where and why. They were found with
 * checksums ignored (mk/fuzz.mk), so here most stop at the CRC check. */
Test(traces, fuzz_regressions_are_handled)
{
    DIR *dir = opendir("tests/data/traces");
    cr_assert(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "crash-", 6))
            continue;
        char path[512];
        snprintf(path, sizeof path, "tests/data/traces/%s", e->d_name);
        size_t len;
        uint8_t *b = slurp(path, &len);
        trc_reader *r;
        kv_err err = {""};
        if (trc_open_mem(b, len, path, &r, &err) == 0) {
            trc_step st = {0};
            for (int64_t k = 0; k < trc_get_header(r)->steps; k++)
                if (trc_read_step(r, 0, k, &st, &err) != 0) cr_assert(strstr(err.msg, "offset"), "%s", err.msg);
            trc_step_free(&st);
            trc_close(r);
        } else {
            cr_assert(err.msg[0], "%s rejected without a message", path);
        }
        free(b);
        n++;
    }
    closedir(dir);
    cr_assert(n >= 1);
}

/* ---- committed samples and their expected inspect --json ---- */
static int run_cli(const char *args, const char *out)
{
    const char *bin = getenv("KVSIM_BIN");
    if (!bin)
        KV_SKIP("KVSIM_BIN not set (run through make test)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>/dev/null", bin, args, out ? out : "/dev/null");
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The oracle is tests/trace_reader.py, a second reader written from
 * traces/FORMAT.md alone: it checks every block's CRC32C, decodes every
 * record and sums what inspect reports; every field of `kvsim inspect --json`
 * must agree with it. The committed .inspect.json files (written by
 * scripts/trace_samples.sh) then pin the output byte for byte, so that a
 * change of formatting shows in review. */
Test(traces, samples_match_their_expected_inspect_json)
{
    static const char *const samples[] = {"rocketkv", "quest", "snapkv"};
    char args[512], got[256], cmd[1024];
    const char *bin = getenv("KVSIM_BIN");
    if (!bin)
        KV_SKIP("KVSIM_BIN not set (run through make test)");
    snprintf(got, sizeof got, "/tmp/kvsim_test_inspect_%ld.json", (long)getpid());
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        snprintf(cmd, sizeof cmd, "python3 tests/trace_reader.py traces/samples/%s.trc --check %s >/dev/null", samples[i],
                 bin);
        cr_assert_eq(system(cmd), 0, "%s: kvsim inspect --json differs from tests/trace_reader.py (run it to see)", cmd);
        snprintf(args, sizeof args, "inspect traces/samples/%s.trc --json", samples[i]);
        cr_assert_eq(run_cli(args, got), 0, "%s", args);
        char want[256];
        snprintf(want, sizeof want, "traces/samples/%s.inspect.json", samples[i]);
        expect_identical(got, want);
    }
    remove(got);
}

/* trc_summary_read, the library call behind `kvsim inspect`, against
 * tests/trace_reader.py's sums (a second implementation written from
 * traces/FORMAT.md): every per-step field exactly, the stage-1 count, and the
 * ratios, on each committed sample. */
static double num_of(const kv_jsonr_node *o, const char *k)
{
    const kv_jsonr_node *v = kv_jsonr_get(o, k);
    cr_assert(v && v->kind == KV_JSONR_NUM, "trace_reader.py output: '%s' missing", k);
    return v->num;
}

Test(traces, summary_matches_second_reader)
{
    static const char *const samples[] = {"rocketkv", "quest", "snapkv"};
    char path[256], out[256], cmd[1024];
    snprintf(out, sizeof out, "/tmp/kvsim_test_summary_%ld.json", (long)getpid());
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        snprintf(path, sizeof path, "traces/samples/%s.trc", samples[i]);
        snprintf(cmd, sizeof cmd, "python3 tests/trace_reader.py %s > %s", path, out);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        kv_jsonr_doc doc;
        kv_err err;
        cr_assert_eq(kv_jsonr_load_file(&doc, out, &err), 0, "%s", err.msg);
        trc_reader *r;
        cr_assert_eq(trc_open(path, &r, &err), 0, "%s", err.msg);
        trc_summary s;
        cr_assert_eq(trc_summary_read(r, &s, &err), 0, "%s", err.msg);
        const kv_jsonr_node *ps = kv_jsonr_get(doc.root, "per_step");
        cr_assert(ps && ps->kind == KV_JSONR_ARR && (int64_t)ps->n == s.steps, "%s: %lld steps", path,
                  (long long)s.steps);
        for (int64_t k = 0; k < s.steps; k++) {
            const kv_jsonr_node *w = ps->items[k];
            const trc_step_totals *t = &s.step[k];
            for (int c = 0; c < TRC_NCAT; c++)
                cr_assert_eq(t->cat[c], (int64_t)num_of(w, trc_cat_names[c]), "%s step %lld %s", path, (long long)k,
                             trc_cat_names[c]);
            cr_assert_eq(t->sectors_kv, (int64_t)num_of(w, "sectors_kv"));
            cr_assert_eq(t->sectors_aux, (int64_t)num_of(w, "sectors_aux"));
            cr_assert_eq(t->pages_kv, (int64_t)num_of(w, "pages_kv"));
            cr_assert_eq(t->positions, (int64_t)num_of(w, "attended_positions"));
            cr_assert_eq(t->full_bytes, (int64_t)num_of(w, "full_kv_bytes"));
        }
        cr_assert_eq(s.stage1_retained, (int64_t)num_of(doc.root, "stage1_retained"));
        cr_assert_eq(s.all.positions, (int64_t)num_of(doc.root, "attended_positions"));
        cr_assert_float_eq(s.compression, num_of(doc.root, "compression_vs_full"), 1e-12 * s.compression);
        cr_assert_float_eq(s.bytes_per_position_lists, num_of(doc.root, "bytes_per_position_lists"), 1e-12);
        cr_assert_float_eq(s.bytes_per_position_blocks, num_of(doc.root, "bytes_per_position_blocks"), 1e-12);
        cr_assert(s.all.positions > 0 && s.compression > 1.0, "%s: a sample that attends nothing tests nothing", path);
        trc_summary_free(&s);
        trc_close(r);
        kv_jsonr_free(&doc);
    }
    remove(out);
}

/* The second reader is not vacuous: a trace whose step block has one flipped
 * byte (tests/data/traces/flipped_step_byte.trc) fails its CRC check. */
Test(traces, second_reader_rejects_a_flipped_byte)
{
    cr_assert_neq(system("python3 tests/trace_reader.py tests/data/traces/flipped_step_byte.trc >/dev/null 2>&1"), 0);
    cr_assert_eq(system("python3 tests/trace_reader.py traces/samples/quest.trc >/dev/null 2>&1"), 0);
}

Test(traces, cli_exit_codes_and_no_partial_file)
{
    char args[512];
    const char *out = tmp_path("cli");
    cr_assert_eq(run_cli("trace --model smollm2-135m --context 300 --budget 64 --steps 2 --layers 0", NULL), 2, "--out is required");
    snprintf(args, sizeof args, "trace --model smollm2-135m --context 300 --budget 64 --steps 2 --layers 0 --batch 0 --out %s", out);
    cr_assert_eq(run_cli(args, NULL), 2);
    cr_assert_eq(access(out, F_OK), -1, "a usage error left %s", out);
    snprintf(args, sizeof args, "trace --model smollm2-135m --context 300 --budget 64,128 --steps 2 --layers 0 --out %s", out);
    cr_assert_eq(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "trace --model smollm2-135m --context 300 --budget 64 --steps 2 --layers 0 --out /nonexistent/dir/x.trc");
    cr_assert_eq(run_cli(args, NULL), 2, "an output directory that does not exist is refused up front");
    snprintf(args, sizeof args, "trace --model smollm2-135m --context 300 --budget 64 --steps 2 --layers 0,3 --batch 2 --out %s", out);
    cr_assert_eq(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "inspect %s --step 1 --layer 3 --head 2 --seq 1", out);
    cr_assert_eq(run_cli(args, NULL), 0);
    snprintf(args, sizeof args, "inspect %s --step 1 --layer 4 --head 2", out);
    cr_assert_eq(run_cli(args, NULL), 2, "layer 4 was not recorded");
    snprintf(args, sizeof args, "inspect %s --step 9 --layer 3 --head 2", out);
    cr_assert_eq(run_cli(args, NULL), 2);
    cr_assert_eq(run_cli("inspect tests/data/traces/flipped_step_byte.trc", NULL), 1);
    cr_assert_eq(run_cli("inspect", NULL), 2);
    cr_assert_eq(run_cli("inspect --help", NULL), 0);
    cr_assert_eq(run_cli("trace --help", NULL), 0);
    remove(out);
}
