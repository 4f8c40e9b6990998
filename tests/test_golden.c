/* test_golden.c — the .npy reader/writer and `kvsim golden` / `kvsim
 * compare` (cli/npy.c, cli/cmd_golden.c, cli/cmd_compare.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/golden.h"
#include "mdl.h"
#include "../cli/npy.h"
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
        cr_assert_eq(cli_npy_write(path, (cli_npy_dtype)t, ndims[t], shapes[t], data[t], &err), 0, "%s", err.msg);
        FILE *fp = fopen(path, "rb");
        unsigned char h[10];
        cr_assert_eq(fread(h, 1, 10, fp), 10);
        fclose(fp);
        cr_assert_eq((10 + (h[8] | h[9] << 8)) % 64, 0, "header must end on a 64-byte boundary");
        cli_npy a;
        cr_assert_eq(cli_npy_read(path, &a, &err), 0, "%s", err.msg);
        cr_assert_eq(a.dtype, (cli_npy_dtype)t);
        cr_assert_eq(a.ndim, ndims[t]);
        cr_assert_eq(a.n, 24);
        for (int d = 0; d < ndims[t]; d++)
            cr_assert_eq(a.shape[d], shapes[t][d]);
        cr_assert_eq(memcmp(a.data, data[t], 24 * cli_npy_elem_bytes((cli_npy_dtype)t)), 0);
        cli_npy_free(&a);
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
    cr_assert_eq(cli_npy_write(path, CLI_NPY_F32, 1, sh, x, &err), 0);
    FILE *fs = fopen(path, "rb");
    fseek(fs, 0, SEEK_END);
    long size = ftell(fs);
    fclose(fs);
    cr_assert_eq(truncate(path, size - 4), 0);
    cli_npy a;
    cr_assert_eq(cli_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "offset ") && strstr(err.msg, "expected 252 data bytes, file has 248"), "%s", err.msg);
    FILE *fp = fopen(path, "wb");
    const char hdr[] = "\x93NUMPY\x01\x00\x36\x00{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n";
    fwrite(hdr, 1, sizeof hdr - 1, fp);
    fclose(fp);
    cr_assert_eq(cli_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "dtype"), "%s", err.msg);
    fp = fopen(path, "wb");
    fputs("not numpy", fp);
    fclose(fp);
    cr_assert_eq(cli_npy_read(path, &a, &err), -1);
    cr_assert(strstr(err.msg, "magic"), "%s", err.msg);
}

static void golden_for(const char *method, int64_t context, int64_t budget, const char *dir)
{
    mdl_model m;
    kv_err err;
    cr_assert_eq(mdl_model_load("llama3.1-8b", &m, &err), 0, "%s", err.msg);
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = context;
    rq.budget = budget;
    rq.d = m.head_dim;
    rq.G = mdl_group_size(&m);
    rq.model_max_len = m.max_position_embeddings;
    rkv_params p;
    cr_assert_eq(rkv_params_resolve(method, &rq, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(cli_golden_write(&m, &wl, &p, 1, 3, dir, &err), 0, "%s", err.msg);
}

static int run_compare(const char *e, const char *a, char *buf, size_t n)
{
    FILE *fp = fmemopen(buf, n, "w");
    kv_err err;
    int rc = cli_compare_dirs(e, a, fp, &err);
    fclose(fp);
    cr_assert_geq(rc, 0, "%s", err.msg);
    return rc;
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    cr_assert_eq(system(cmd), 0);
}

Test(golden, rocketkv_golden_compares_clean_and_catches_changes, .init = make_tmp, .fini = rm_tmp)
{
    char exp[128], act[128], path[200];
    static char buf[65536];
    snprintf(exp, sizeof exp, "%s/exp", tmpdir);
    snprintf(act, sizeof act, "%s/act", tmpdir);
    golden_for("rocketkv", 1111, 64, exp);
    cr_assert_eq(run_compare(exp, exp, buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "stage1") && strstr(buf, "selection") && strstr(buf, "attention"), "%s", buf);

    /* an attention output off by more than the tolerance */
    copy_dir(exp, act);
    snprintf(path, sizeof path, "%s/out.npy", act);
    cli_npy a;
    kv_err err;
    cr_assert_eq(cli_npy_read(path, &a, &err), 0);
    ((float *)a.data)[5] += 0.05f;
    cr_assert_eq(cli_npy_write(path, a.dtype, a.ndim, a.shape, a.data, &err), 0);
    cli_npy_free(&a);
    cr_assert_eq(run_compare(exp, act, buf, sizeof buf), 1);
    cr_assert(strstr(buf, "attention    FAIL"), "%s", buf);
    cr_assert(strstr(buf, "selection    PASS"), "%s", buf);

    /* a selection that swaps one slot for another */
    copy_dir(exp, act);
    snprintf(path, sizeof path, "%s/selected.npy", act);
    cr_assert_eq(cli_npy_read(path, &a, &err), 0);
    int32_t *sel = a.data;
    int32_t cand = 0;
    for (int64_t i = 0; i < a.n && sel[i] == cand; i++)
        cand++; /* the first slot not selected */
    sel[a.n - 1] = cand;
    cr_assert_eq(cli_npy_write(path, a.dtype, a.ndim, a.shape, a.data, &err), 0);
    cli_npy_free(&a);
    cr_assert_eq(run_compare(exp, act, buf, sizeof buf), 1);
    cr_assert(strstr(buf, "selection    FAIL") && strstr(buf, "unexpected") && strstr(buf, "gap to threshold"),
              "%s", buf);

    /* a missing file fails its stage */
    copy_dir(exp, act);
    snprintf(path, sizeof path, "%s/kept.npy", act);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(run_compare(exp, act, buf, sizeof buf), 1);
    cr_assert(strstr(buf, "stage1       FAIL"), "%s", buf);
}

Test(golden, full_and_hsa_write_their_stages, .init = make_tmp, .fini = rm_tmp)
{
    char d1[128], d2[128];
    static char buf[65536];
    snprintf(d1, sizeof d1, "%s/full", tmpdir);
    snprintf(d2, sizeof d2, "%s/hsa", tmpdir);
    golden_for("full", 300, 64, d1);
    golden_for("hsa", 300, 64, d2);
    cr_assert_eq(run_compare(d1, d1, buf, sizeof buf), 0, "%s", buf);
    cr_assert(!strstr(buf, "selection"), "%s", buf);
    cr_assert_eq(run_compare(d2, d2, buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "page_scores") && !strstr(buf, "stage1"), "%s", buf);
    /* a golden dir is not a valid actual for another method's: shapes differ */
    cr_assert_eq(run_compare(d2, d1, buf, sizeof buf), 1);
}

Test(golden, compare_rejects_a_directory_without_manifest, .init = make_tmp, .fini = rm_tmp)
{
    kv_err err;
    static char buf[1024];
    FILE *fp = fmemopen(buf, sizeof buf, "w");
    cr_assert_eq(cli_compare_dirs(tmpdir, tmpdir, fp, &err), -1);
    fclose(fp);
    cr_assert(strstr(err.msg, "manifest.json"), "%s", err.msg);
}
