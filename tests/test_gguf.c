/* test_gguf.c — the strict GGUF reader: a hand-built file parses with the
 * right metadata and tensors; every truncation and a catalogue of malformed
 * headers are rejected with an offset; each dequantiser against hand-made
 * blocks whose values are worked out here; the real model (when `make model`
 * has fetched it) has the shapes and types SmolLM2-135M-Instruct should. */
#include <criterion/criterion.h>
#include "kv_skip.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm_gguf.h"

#define MODEL_PATH KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"

/* ---- a tiny GGUF writer for tests ---- */
typedef struct {
    uint8_t b[8192];
    size_t n;
} buf;

static void put(buf *w, const void *p, size_t n) { memcpy(w->b + w->n, p, n); w->n += n; }
static void put_u32(buf *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(buf *w, uint64_t v) { put(w, &v, 8); }
static void put_str(buf *w, const char *s) { put_u64(w, strlen(s)); put(w, s, strlen(s)); }
static void pad_to(buf *w, size_t a) { while (w->n % a) w->b[w->n++] = 0; }

static uint16_t f16(float x) /* exact for the values used here */
{
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffff) == 0) return (uint16_t)(b >> 16);
    uint32_t e = ((b >> 23) & 0xff) - 112;
    return (uint16_t)(((b >> 16) & 0x8000) | (e << 10) | ((b >> 13) & 0x3ff));
}

/* Builds: 4 metadata keys, tensors "a" (F32, 3x2) and "b" (Q8_0, 32). Offsets
 * of interest are returned for the corruption tests. */
typedef struct {
    size_t version_at, nkv_at, type_at, arr_at, t_ndims_at, t_type_at, t_off_at, data_at;
} layout;

static void build(buf *w, layout *L)
{
    memset(w, 0, sizeof *w);
    put(w, "GGUF", 4);
    L->version_at = w->n;
    put_u32(w, 3);
    put_u64(w, 2); /* tensors */
    L->nkv_at = w->n;
    put_u64(w, 4); /* kv */
    put_str(w, "general.architecture"); L->type_at = w->n; put_u32(w, LLM_GGUF_VT_STRING); put_str(w, "llama");
    put_str(w, "llama.block_count"); put_u32(w, LLM_GGUF_VT_UINT32); put_u32(w, 30);
    put_str(w, "llama.rope.freq_base"); put_u32(w, LLM_GGUF_VT_FLOAT32); { float f = 100000.0f; put(w, &f, 4); }
    put_str(w, "tokenizer.ggml.tokens"); L->arr_at = w->n; put_u32(w, LLM_GGUF_VT_ARRAY); put_u32(w, LLM_GGUF_VT_STRING);
    put_u64(w, 3); put_str(w, "a"); put_str(w, "bc"); put_str(w, "");
    put_str(w, "a"); L->t_ndims_at = w->n; put_u32(w, 2); put_u64(w, 3); put_u64(w, 2);
    L->t_type_at = w->n; put_u32(w, LLM_GGUF_T_F32); L->t_off_at = w->n; put_u64(w, 0);
    put_str(w, "b"); put_u32(w, 1); put_u64(w, 32); put_u32(w, LLM_GGUF_T_Q8_0); put_u64(w, 32);
    pad_to(w, 32);
    L->data_at = w->n;
    for (int i = 0; i < 6; i++) { float f = 0.25f * (float)i - 0.5f; put(w, &f, 4); }
    pad_to(w, 32);
    uint16_t d = f16(0.125f);
    put(w, &d, 2);
    for (int i = 0; i < 32; i++) { int8_t q = (int8_t)(i * 7 - 100); put(w, &q, 1); }
}

Test(gguf, parses_hand_built_file)
{
    buf w;
    layout L;
    build(&w, &L);
    llm_gguf_file *g;
    kv_err err = {{0}};
    cr_assert_eq(llm_gguf_parse(w.b, w.n, "t.gguf", &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g->version, 3);
    cr_assert_eq(g->nkv, 4);
    cr_assert_eq(g->ntensors, 2);
    int64_t bc;
    double th;
    llm_gguf_str s;
    cr_assert_eq(llm_gguf_get_i64(g, "llama.block_count", &bc, &err), 0);
    cr_assert_eq(bc, 30);
    cr_assert_eq(llm_gguf_get_f64(g, "llama.rope.freq_base", &th, &err), 0);
    cr_assert_float_eq(th, 100000.0, 0.0);
    cr_assert_eq(llm_gguf_get_str(g, "general.architecture", &s, &err), 0);
    cr_assert(s.n == 5 && !memcmp(s.p, "llama", 5));
    cr_assert_neq(llm_gguf_get_str(g, "llama.block_count", &s, &err), 0);
    cr_assert(strstr(err.msg, "expected a string"), "%s", err.msg);
    cr_assert_neq(llm_gguf_get_i64(g, "nope", &bc, &err), 0);
    const llm_gguf_kv *tk = llm_gguf_find(g, "tokenizer.ggml.tokens");
    cr_assert(tk && tk->arr_n == 3 && tk->strs[1].n == 2 && !memcmp(tk->strs[1].p, "bc", 2) && tk->strs[2].n == 0);
    const llm_gguf_tensor *a = llm_gguf_tensor_find(g, "a"), *b = llm_gguf_tensor_find(g, "b");
    cr_assert(a && b);
    cr_assert_eq(a->ne[0], 3);
    cr_assert_eq(a->ne[1], 2);
    cr_assert_eq(a->nelem, 6);
    cr_assert_eq(g->data_offset, L.data_at);
    float y[32];
    cr_assert_eq(llm_gguf_tensor_f32(a, y, &err), 0);
    cr_assert_float_eq(y[5], 0.75f, 0.0f);
    cr_assert_eq(llm_gguf_tensor_f32(b, y, &err), 0, "%s", err.msg);
    for (int i = 0; i < 32; i++)
        cr_assert_float_eq(y[i], 0.125f * (float)(i * 7 - 100), 0.0f);
    llm_gguf_free(g);
}

Test(gguf, every_truncation_is_rejected_with_an_offset)
{
    buf w;
    layout L;
    build(&w, &L);
    for (size_t n = 0; n < w.n; n++) {
        llm_gguf_file *g = NULL;
        kv_err err = {{0}};
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any read past it */
        memcpy(copy, w.b, n);
        cr_assert_neq(llm_gguf_parse(copy, n, "t.gguf", &g, &err), 0, "prefix of %zu bytes accepted", n);
        cr_assert_null(g);
        cr_assert(strstr(err.msg, "t.gguf: offset 0x"), "prefix %zu: %s", n, err.msg);
        free(copy);
    }
}

static uint8_t *find(buf *w, const char *s)
{
    for (size_t i = 0; i + strlen(s) <= w->n; i++)
        if (!memcmp(w->b + i, s, strlen(s)))
            return w->b + i;
    cr_assert_fail("'%s' not in the test file", s);
    return NULL;
}

static void expect_reject(buf *w, const char *what)
{
    llm_gguf_file *g = NULL;
    kv_err err = {{0}};
    cr_assert_neq(llm_gguf_parse(w->b, w->n, "bad.gguf", &g, &err), 0, "accepted a file with %s", what);
    cr_assert(strstr(err.msg, what), "expected '%s' in: %s", what, err.msg);
}

Test(gguf, malformed_headers_are_rejected)
{
    buf w;
    layout L;
    uint32_t u;
    uint64_t q;
    build(&w, &L); w.b[0] = 'X'; expect_reject(&w, "magic");
    build(&w, &L); u = 1; memcpy(w.b + L.version_at, &u, 4); expect_reject(&w, "expected 2 or 3");
    build(&w, &L); q = 1ull << 60; memcpy(w.b + L.nkv_at, &q, 8); expect_reject(&w, "cannot fit");
    build(&w, &L); u = 77; memcpy(w.b + L.type_at, &u, 4); expect_reject(&w, "value type 77");
    build(&w, &L); u = LLM_GGUF_VT_ARRAY; memcpy(w.b + L.arr_at + 4, &u, 4); expect_reject(&w, "array element type");
    build(&w, &L); u = 5; memcpy(w.b + L.t_ndims_at, &u, 4); expect_reject(&w, "n_dims 5");
    build(&w, &L); u = 99; memcpy(w.b + L.t_type_at, &u, 4); expect_reject(&w, "known ggml type");
    build(&w, &L); u = LLM_GGUF_T_Q4_1; memcpy(w.b + L.t_type_at, &u, 4); expect_reject(&w, "not a multiple");
    build(&w, &L); q = 8; memcpy(w.b + L.t_off_at, &q, 8); expect_reject(&w, "multiple of the alignment");
    build(&w, &L); q = 32; memcpy(w.b + L.t_off_at, &q, 8); expect_reject(&w, "overlaps");
    build(&w, &L); q = 1u << 20; memcpy(w.b + L.t_off_at, &q, 8); expect_reject(&w, "beyond");
    /* a second tensor named "a" */
    build(&w, &L); memcpy(w.b + L.t_off_at + 8 + 8, "a", 1); expect_reject(&w, "duplicate tensor name 'a'");
    /* "llama.rope.freq_base" has the length of "general.architecture" */
    build(&w, &L); memcpy(find(&w, "llama.rope.freq_base"), "general.architecture", 20);
    expect_reject(&w, "duplicate metadata key 'general.architecture'");
    build(&w, &L); memcpy(find(&w, "llama.rope.freq_base"), "llama.block_count\0\0\0", 20); expect_reject(&w, "NUL");
}

/* ---- dequantisation against hand-worked blocks ---- */
Test(gguf, dequant_q4_0_q4_1)
{
    uint8_t b0[18], b1[20];
    uint16_t d = f16(0.5f), m = f16(-1.25f);
    memcpy(b0, &d, 2);
    memcpy(b1, &d, 2);
    memcpy(b1 + 2, &m, 2);
    for (int j = 0; j < 16; j++) {
        b0[2 + j] = (uint8_t)((j & 15) | (((15 - j) & 15) << 4));
        b1[4 + j] = b0[2 + j];
    }
    float y[32];
    kv_err err;
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_Q4_0, b0, sizeof b0, y, 32, &err), 0);
    for (int j = 0; j < 16; j++) {
        cr_assert_float_eq(y[j], 0.5f * (float)(j - 8), 0.0f);
        cr_assert_float_eq(y[j + 16], 0.5f * (float)(15 - j - 8), 0.0f);
    }
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_Q4_1, b1, sizeof b1, y, 32, &err), 0);
    for (int j = 0; j < 16; j++) {
        cr_assert_float_eq(y[j], 0.5f * (float)j - 1.25f, 0.0f);
        cr_assert_float_eq(y[j + 16], 0.5f * (float)(15 - j) - 1.25f, 0.0f);
    }
    /* too few source bytes, odd count */
    cr_assert_neq(llm_gguf_dequantize(LLM_GGUF_T_Q4_1, b1, 19, y, 32, &err), 0);
    cr_assert_neq(llm_gguf_dequantize(LLM_GGUF_T_Q4_1, b1, 20, y, 31, &err), 0);
    cr_assert_neq(llm_gguf_dequantize(LLM_GGUF_T_Q5_K, b1, 20, y, 32, &err), 0);
}

Test(gguf, dequant_f16_bf16)
{
    uint16_t h[5] = {0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555}, bf[2] = {0x3f80, 0xc0a0};
    float y[5];
    kv_err err;
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_F16, h, sizeof h, y, 5, &err), 0);
    cr_assert_float_eq(y[0], 1.0f, 0.0f);
    cr_assert_float_eq(y[1], -2.0f, 0.0f);
    cr_assert_float_eq(y[2], 0x1p-24f, 0.0f); /* smallest subnormal */
    cr_assert(isinf(y[3]));
    cr_assert_float_eq(y[4], 0.333251953125f, 0.0f);
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_BF16, bf, sizeof bf, y, 2, &err), 0);
    cr_assert_float_eq(y[0], 1.0f, 0.0f);
    cr_assert_float_eq(y[1], -5.0f, 0.0f);
}

Test(gguf, dequant_q4_k)
{
    uint8_t b[144] = {0};
    uint16_t d = f16(0.25f), dmin = f16(0.5f);
    memcpy(b, &d, 2);
    memcpy(b + 2, &dmin, 2);
    uint8_t *sc = b + 4, *qs = b + 16;
    /* sub-block j scale/min: j<4 from low 6 bits of sc[j] / sc[j+4];
     * j>=4 low nibble / high nibble of sc[j+4] with the top 2 bits from sc[j-4] / sc[j]. */
    sc[0] = 3; sc[4] = 5;                    /* j=0: scale 3, min 5 */
    sc[1] = 0x40 | 7;                        /* j=1: scale 7; j=5 scale gets bits 6-7 (1) << 4 */
    sc[5] = 0x80 | 2;                        /* j=1: min 2; j=5 min gets 2 << 4 */
    sc[9] = 0x31;                            /* j=5: scale 1 | 16 = 17, min 3 | 32 = 35 */
    for (int l = 0; l < 128; l++) qs[l] = (uint8_t)(l % 16 | ((15 - l % 16) << 4));
    float y[256];
    kv_err err;
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_Q4_K, b, sizeof b, y, 256, &err), 0);
    /* element l of sub-block 0: q = qs[l] & 15 */
    for (int l = 0; l < 32; l++) {
        cr_assert_float_eq(y[l], 0.25f * 3 * (float)(l % 16) - 0.5f * 5, 1e-6f);
        cr_assert_float_eq(y[32 + l], 0.25f * 7 * (float)(15 - l % 16) - 0.5f * 2, 1e-6f);
        /* sub-block 5 = high nibbles of qs[64..96) */
        cr_assert_float_eq(y[160 + l], 0.25f * 17 * (float)(15 - (64 + l) % 16) - 0.5f * 35, 1e-5f);
    }
}

Test(gguf, dequant_q6_k)
{
    uint8_t b[210] = {0};
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    uint16_t d = f16(0.5f);
    memcpy(b + 208, &d, 2);
    for (int i = 0; i < 16; i++) sc[i] = (int8_t)(i - 6);
    ql[3] = 0x5A;      /* element 3: low 4 bits 0xA; element 67: high 4 bits 5 */
    qh[3] = 0x2 | (0x3 << 4); /* element 3 gets high bits 2; element 67 gets 3 */
    ql[64 + 40] = 0x0F; /* second half, element 128+40 (l = 8, q2 half): 0xF, scale 8+2 */
    float y[256];
    kv_err err;
    cr_assert_eq(llm_gguf_dequantize(LLM_GGUF_T_Q6_K, b, sizeof b, y, 256, &err), 0);
    cr_assert_float_eq(y[3], 0.5f * (float)sc[0] * (float)((0xA | (2 << 4)) - 32), 1e-6f);
    cr_assert_float_eq(y[67], 0.5f * (float)sc[4] * (float)((0x5 | (3 << 4)) - 32), 1e-6f);
    cr_assert_float_eq(y[128 + 32 + 8], 0.5f * (float)sc[8 + 2] * (float)(0xF - 32), 1e-6f);
    cr_assert_float_eq(y[0], 0.5f * (float)sc[0] * -32.0f, 1e-6f);
    cr_assert_float_eq(y[255], 0.5f * (float)sc[15] * -32.0f, 1e-6f);
}

Test(gguf, real_model_shapes)
{
    FILE *fp = fopen(MODEL_PATH, "rb");
    if (!fp) {
        KV_SKIP("%s absent: run `make model` to test the real file", MODEL_PATH);
        return;
    }
    fclose(fp);
    llm_gguf_file *g;
    kv_err err;
    cr_assert_eq(llm_gguf_open(MODEL_PATH, &g, &err), 0, "%s", err.msg);
    cr_assert_eq(g->version, 3);
    cr_assert_eq(g->ntensors, 272);
    int64_t v;
    cr_assert_eq(llm_gguf_get_i64(g, "llama.attention.head_count_kv", &v, &err), 0);
    cr_assert_eq(v, 3);
    const llm_gguf_tensor *e = llm_gguf_tensor_find(g, "token_embd.weight"), *k = llm_gguf_tensor_find(g, "blk.29.attn_k.weight");
    cr_assert(e && k);
    cr_assert_eq(e->type, LLM_GGUF_T_Q8_0);
    cr_assert_eq(e->ne[0], 576);
    cr_assert_eq(e->ne[1], 49152);
    cr_assert_eq(k->type, LLM_GGUF_T_Q4_1);
    cr_assert_eq(k->ne[1], 192);
    const llm_gguf_kv *tok = llm_gguf_find(g, "tokenizer.ggml.tokens");
    cr_assert(tok && tok->arr_n == 49152);
    llm_gguf_free(g);
}

Test(gguf, open_missing_file_names_make_model)
{
    llm_gguf_file *g;
    kv_err err;
    cr_assert_neq(llm_gguf_open("/nonexistent/x.gguf", &g, &err), 0);
    cr_assert(strstr(err.msg, "make model"), "%s", err.msg);
}
