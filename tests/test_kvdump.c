/* test_kvdump.c — the KV dump format: a written dump reads back the same
 * rows; a flipped byte, a truncation and a wrong magic are each rejected
 * with the offset; a dump feeds rkv_workload_kv/query; capture from the real
 * model (when `make model` has run) matches a direct session. */
#include <criterion/criterion.h>
#include "kv_skip.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_kvdump.h"
#include "llm.h"

static llm_kvd_info small_info(void)
{
    llm_kvd_info in = {.n_layer = 3, .n_head = 4, .n_kv_head = 2, .head_dim = 6, .n_tokens = 7, .dtype = RKV_DTYPE_FP32,
                   .rope_theta = 10000.0};
    snprintf(in.model, sizeof in.model, "test-model");
    snprintf(in.source, sizeof in.source, "hand-made");
    return in;
}

static float val(int l, int w, int h, int64_t p, int i) { return (float)(l * 1000 + w * 100 + h * 10 + p) + 0.125f * (float)i; }

static void fill(llm_kvd_file *f)
{
    const llm_kvd_info *in = &f->info;
    float row[6];
    for (int l = 0; l < in->n_layer; l++)
        for (int w = 0; w < 3; w++)
            for (int h = 0; h < (w == 2 ? in->n_head : in->n_kv_head); h++)
                for (int64_t p = 0; p < in->n_tokens; p++) {
                    for (int i = 0; i < 6; i++) row[i] = val(l, w, h, p, i);
                    llm_kvd_put(f, l, w, h, p, 1, row, 6);
                }
}

static void tmpname(char *buf, size_t n) { snprintf(buf, n, "/tmp/kvsim-test-%d.kvd", (int)getpid()); }

Test(kvdump, round_trip_and_workload)
{
    llm_kvd_info in = small_info();
    llm_kvd_file *f, *g;
    kv_err err;
    char path[128];
    tmpname(path, sizeof path);
    cr_assert_eq(llm_kvd_alloc(&in, &f, &err), 0, "%s", err.msg);
    fill(f);
    cr_assert_eq(llm_kvd_write(f, path, &err), 0, "%s", err.msg);
    cr_assert_eq(llm_kvd_open(path, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g->info.n_tokens, 7);
    cr_assert_str_eq(g->info.model, "test-model");
    float rows[7 * 6];
    llm_kvd_get(g, 2, 1, 1, 3, 2, rows);
    cr_assert_float_eq(rows[0], val(2, 1, 1, 3, 0), 0.0f);
    cr_assert_float_eq(rows[6 + 5], val(2, 1, 1, 4, 5), 0.0f);
    /* as a workload: K/V of (layer 1, KV head 1); queries of heads 2, 3 */
    mdl_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "t");
    m.num_hidden_layers = 3; m.num_attention_heads = 4; m.num_key_value_heads = 2; m.head_dim = 6;
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    llm_kvd_source(g, &wl.real);
    float K[7 * 6], V[7 * 6], q[2 * 6];
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 1, 7, K, V, &err), 0, "%s", err.msg);
    cr_assert_float_eq(K[5 * 6 + 2], val(1, 0, 1, 5, 2), 0.0f);
    cr_assert_float_eq(V[6 * 6 + 1], val(1, 1, 1, 6, 1), 0.0f);
    cr_assert_neq(rkv_workload_kv(&wl, &m, 1, 1, 8, K, V, &err), 0); /* more tokens than the dump holds */
    rkv_workload_query(&wl, &m, 1, 1, 4, 0, 1, q);
    cr_assert_float_eq(q[0], val(1, 2, 2, 4, 0), 0.0f);
    cr_assert_float_eq(q[6 + 3], val(1, 2, 3, 4, 3), 0.0f);
    m.head_dim = 8;
    cr_assert_neq(rkv_workload_kv(&wl, &m, 1, 1, 7, K, V, &err), 0);
    cr_assert(strstr(err.msg, "does not match"), "%s", err.msg);
    llm_kvd_free(g);
    llm_kvd_free(f);
    unlink(path);
}

static void corrupt_and_expect(const char *path, long at, int truncate_to, const char *what)
{
    FILE *fp = fopen(path, "r+b");
    cr_assert(fp);
    if (truncate_to >= 0) {
        cr_assert_eq(ftruncate(fileno(fp), truncate_to), 0);
    } else {
        fseek(fp, at, SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, at, SEEK_SET);
        fputc(c ^ 0x20, fp);
    }
    fclose(fp);
    llm_kvd_file *g = NULL;
    kv_err err;
    cr_assert_neq(llm_kvd_open(path, &g, &err), 0, "accepted a dump with %s", what);
    cr_assert(strstr(err.msg, "offset 0x") && strstr(err.msg, what), "%s", err.msg);
}

Test(kvdump, corruption_is_rejected_with_offset)
{
    llm_kvd_info in = small_info();
    llm_kvd_file *f;
    kv_err err;
    char path[128];
    tmpname(path, sizeof path);
    cr_assert_eq(llm_kvd_alloc(&in, &f, &err), 0);
    fill(f);
    cr_assert_eq(llm_kvd_write(f, path, &err), 0);
    corrupt_and_expect(path, LLM_KVD_HEADER_BYTES + 77, -1, "checksum");
    cr_assert_eq(llm_kvd_write(f, path, &err), 0);
    corrupt_and_expect(path, 0, LLM_KVD_HEADER_BYTES + 100, "truncated");
    cr_assert_eq(llm_kvd_write(f, path, &err), 0);
    corrupt_and_expect(path, 1, -1, "magic");
    cr_assert_eq(llm_kvd_write(f, path, &err), 0);
    corrupt_and_expect(path, 20, -1, "shape");
    llm_kvd_free(f);
    unlink(path);
    uint8_t h[32];
    llm_kvd_sha256("abc", 3, h);
    cr_assert_eq(h[0], 0xba);
    cr_assert_eq(h[31], 0xad); /* ba7816bf...f20015ad */
}

/* A dump written elsewhere without its trailer (the PyTorch recipe) is sealed
 * by llm_kvd_seal; a wrong size is refused with the offset. */
Test(kvdump, seal_fills_the_trailer)
{
    llm_kvd_info in = small_info();
    llm_kvd_file *f, *g;
    kv_err err;
    char path[128];
    tmpname(path, sizeof path);
    cr_assert_eq(llm_kvd_alloc(&in, &f, &err), 0);
    fill(f);
    FILE *fp = fopen(path, "wb");
    cr_assert(fp);
    cr_assert_eq(fwrite(f->owned, 1, f->size - 16, fp), f->size - 16);
    static const uint8_t zeros[16];
    fwrite(zeros, 1, 16, fp);
    fclose(fp);
    cr_assert_neq(llm_kvd_open(path, &g, &err), 0);
    cr_assert_eq(llm_kvd_seal(path, &err), 0, "%s", err.msg);
    cr_assert_eq(llm_kvd_open(path, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(g->base, f->owned, f->size - 16), 0);
    llm_kvd_free(g);
    cr_assert_eq(truncate(path, (off_t)(f->size - 100)), 0);
    cr_assert_neq(llm_kvd_seal(path, &err), 0);
    cr_assert(strstr(err.msg, "offset 0x"), "%s", err.msg);
    llm_kvd_free(f);
    unlink(path);
}

/* Capture from the real model: causal, so the first 20 positions of a 40-token
 * capture equal a 20-token capture (up to BLAS summation order, which may
 * differ with the matrix shape: 1e-4 relative); every row is finite and not
 * all zero. */
Test(kvdump, capture_from_model_is_causal)
{
    const char *model = KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf";
    FILE *fp = fopen(model, "rb");
    if (!fp) {
        KV_SKIP("%s absent: run `make model`", model);
        return;
    }
    fclose(fp);
    llm_kvd_file *a, *b;
    kv_err err;
    cr_assert_eq(llm_kvd_capture(model, "/usr/share/common-licenses/GPL-3", 100, 40, RKV_DTYPE_FP32, &a, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(llm_kvd_capture(model, "/usr/share/common-licenses/GPL-3", 100, 20, RKV_DTYPE_FP32, &b, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(a->info.n_layer, 30);
    cr_assert_eq(a->info.n_head, 9);
    cr_assert(strstr(a->info.source, "sha256:3972dc97"), "%s", a->info.source);
    static float ra[20 * 64], rb[20 * 64];
    for (int l = 0; l < 30; l += 7)
        for (int w = 0; w < 3; w++) {
            llm_kvd_get(a, l, w, w == 2 ? 8 : 2, 0, 20, ra);
            llm_kvd_get(b, l, w, w == 2 ? 8 : 2, 0, 20, rb);
            double s = 0, e = 0;
            for (int i = 0; i < 20 * 64; i++) {
                cr_assert(isfinite(ra[i]));
                s += (double)ra[i] * ra[i];
                e += ((double)ra[i] - rb[i]) * ((double)ra[i] - rb[i]);
            }
            cr_assert_gt(s, 0.0);
            cr_assert_leq(sqrt(e / s), 1e-4, "layer %d tensor %d: captures differ by %g (relative)", l, w, sqrt(e / s));
        }
    llm_kvd_free(a);
    llm_kvd_free(b);
}

/* The one parser of a real workload's name (kvsim --workload and a sweep's workload: key). */
Test(kvdump, workload_spec_parse)
{
    llm_kvd_spec sp;
    kv_err err = {""};
    cr_assert(llm_kvd_spec_is("kvdump:x.kvd") && llm_kvd_spec_is("gguf:m.gguf,text:t") && !llm_kvd_spec_is("w.yaml"));
    cr_assert_eq(llm_kvd_spec_parse("--workload", "kvdump:a/b.kvd", &sp, &err), 0, "%s", err.msg);
    cr_assert(sp.is_dump && !strcmp(sp.path, "a/b.kvd"));
    cr_assert_eq(llm_kvd_spec_parse("--workload", "gguf:m.gguf,text:t.txt,offset:4K,dtype:fp16", &sp, &err), 0, "%s",
                 err.msg);
    cr_assert(!sp.is_dump && !strcmp(sp.path, "m.gguf") && !strcmp(sp.text, "t.txt"));
    cr_assert_eq(sp.offset, 4096);
    cr_assert_eq(sp.dtype, RKV_DTYPE_FP16);
    cr_assert_eq(llm_kvd_spec_parse("--workload", "text:t.txt,gguf:m.gguf", &sp, &err), 0, "%s", err.msg);
    cr_assert(sp.offset == 0 && sp.dtype == RKV_DTYPE_BF16, "defaults: offset 0, bf16");
    static const struct { const char *spec, *needle; } bad[] = {
        {"gguf:m.gguf", "both gguf:"},           {"gguf:m.gguf,text:t,offset:-1", "out of range"},
        {"gguf:m.gguf,text:t,offset:3x", "3x"},   {"gguf:m.gguf,text:t,dtype:fp8-e4m3", "bf16, fp16 or fp32"},
        {"gguf:m.gguf,text:t,seed:1", "'seed:1'"}, {"gguf:m.gguf,,text:t", "empty"},
        {"kvdump:", "needs a file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(llm_kvd_spec_parse("--workload", bad[i].spec, &sp, &err), -1, "%s accepted", bad[i].spec);
        cr_assert(strstr(err.msg, "--workload") && strstr(err.msg, bad[i].needle), "%s: %s", bad[i].spec, err.msg);
    }
}

/* The model a dump describes, field by field (SmolLM2-135M's shape). */
Test(kvdump, model_from_dump_header)
{
    llm_kvd_info in = {.n_layer = 30, .n_head = 9, .n_kv_head = 3, .head_dim = 64, .n_tokens = 4096,
                       .dtype = RKV_DTYPE_BF16, .rope_theta = 100000.0};
    snprintf(in.model, sizeof in.model, "SmolLM2-135M-Instruct.Q4_1.gguf sha256:abc");
    mdl_model m;
    llm_kvd_model(&in, &m);
    cr_assert_str_eq(m.name, "SmolLM2-135M-Instruct.Q4_1.gguf");
    cr_assert_str_eq(m.source, in.model);
    cr_assert(m.num_hidden_layers == 30 && m.num_attention_heads == 9 && m.num_key_value_heads == 3 && m.head_dim == 64);
    cr_assert_eq(m.hidden_size, 576); /* 9 x 64 */
    cr_assert_eq(m.max_position_embeddings, 4096);
    cr_assert_float_eq(m.rope_theta, 100000.0, 0.0);
    cr_assert_eq(mdl_group_size(&m), 3);
}
