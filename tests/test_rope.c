/* test_rope.c — RoPE scaling (llm/llm_rope.h): rotated vectors against an
 * independent NumPy float64 reference written from the papers
 * (tests/rope_ref.py) for none, linear, NTK-aware and YaRN at positions up
 * to 32K; linear scaling worked by hand; the GGUF rope.scaling.* keys read
 * with llama.cpp's names and defaults; overrides and their range checks;
 * the CLI flags through the ranged parser. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "llm_rope.h"

#define MODEL_PATH KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"

static const int64_t positions[] = {0, 1, 7, 100, 4095, 8191, 16383, 32767};
#define NPOS (int)(sizeof positions / sizeof positions[0])

/* The reference's input: x_k = cos(1.3 k + 0.2) in the interleaved layout. */
static void ref_input(float *x, int d)
{
    for (int k = 0; k < d; k++) x[k] = (float)cos(1.3 * k + 0.2);
}

/* Runs rope_ref.py for r and compares every position's rotated vector. */
static void check_against_numpy(const llm_rope *r, double theta, int d)
{
    char cmd[1024];
    int o = snprintf(cmd, sizeof cmd, "python3 '%s/tests/rope_ref.py' %s %.17g %lld %.17g %d %.17g %.17g %.17g %.17g",
                     KVSIM_DATADIR, llm_rope_type_name(r->type), r->factor, (long long)r->orig_ctx, theta, d,
                     r->beta_fast, r->beta_slow, r->attn_factor, r->ext_factor);
    for (int p = 0; p < NPOS; p++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %lld", (long long)positions[p]);
    FILE *f = popen(cmd, "r");
    cr_assert(f, "%s", cmd);
    float cs[128], sn[128], x[256];
    double worst = 0.0;
    for (int p = 0; p < NPOS; p++) {
        llm_rope_table(r, theta, d, positions[p], 1, cs, sn);
        ref_input(x, d);
        llm_rope_rotate(x, d, cs, sn);
        for (int k = 0; k < d; k++) {
            double want;
            cr_assert_eq(fscanf(f, "%lf", &want), 1, "%s: no value for position %lld dim %d", cmd,
                         (long long)positions[p], k);
            const double e = fabs((double)x[k] - want);
            if (e > worst) worst = e;
            /* float32 cos/sin and products of unit-size numbers: 2e-6; 1e-5 leaves room */
            cr_assert(e <= 1e-5, "%s x%g: position %lld dim %d: %.8f vs NumPy %.8f", llm_rope_type_name(r->type),
                      r->factor, (long long)positions[p], k, (double)x[k], want);
        }
    }
    cr_assert_eq(pclose(f), 0, "%s failed (numpy installed?)", cmd);
    cr_log_info("%s x%g d=%d: largest difference from NumPy %.2e", llm_rope_type_name(r->type), r->factor, d, worst);
}

static llm_rope rope_of(llm_rope_type t, double s, int64_t L)
{
    return (llm_rope){.type = t, .factor = s, .orig_ctx = L, .ext_factor = t == LLM_ROPE_YARN ? 1.0 : 0.0,
                      .attn_factor = 1.0, .beta_fast = 32.0, .beta_slow = 1.0};
}

Test(rope, every_scaling_matches_numpy_reference)
{
    /* SmolLM2-135M's head (d 64, base 1e5, 8192 positions) extended 4x, and
     * a Llama-2-like head (d 128, base 1e4, 4096) extended 8x */
    const llm_rope_type types[] = {LLM_ROPE_NONE, LLM_ROPE_LINEAR, LLM_ROPE_NTK, LLM_ROPE_YARN};
    for (int t = 0; t < 4; t++) {
        check_against_numpy(&(llm_rope){.type = types[t], .factor = t ? 4.0 : 1.0, .orig_ctx = 8192,
                                        .ext_factor = types[t] == LLM_ROPE_YARN, .attn_factor = 1.0,
                                        .beta_fast = 32.0, .beta_slow = 1.0}, 1e5, 64);
        if (t) check_against_numpy(&(llm_rope){.type = types[t], .factor = 8.0, .orig_ctx = 4096,
                                               .ext_factor = types[t] == LLM_ROPE_YARN, .attn_factor = 1.0,
                                               .beta_fast = 32.0, .beta_slow = 1.0}, 1e4, 128);
    }
    /* YaRN with every knob off its default */
    llm_rope y = rope_of(LLM_ROPE_YARN, 2.5, 2048);
    y.ext_factor = 0.5; y.attn_factor = 0.9; y.beta_fast = 16.0; y.beta_slow = 2.0;
    check_against_numpy(&y, 1e4, 64);
}

Test(rope, linear_by_hand)
{
    /* d 4, base 1e4, factor 2, position 2: pair 0 turns 2/2 · 1 = 1 rad,
     * pair 1 turns 2/2 · 1e4^(-1/2) = 0.01 rad. Input (1, 0, 0, 1)
     * interleaved is z0 = 1, z1 = j; rotated, z0 = cos 1 + j sin 1 and
     * z1 = -sin 0.01 + j cos 0.01; in rotate-half order
     * (0.5403023, -0.0099998, 0.8414710, 0.9999500). */
    llm_rope r = rope_of(LLM_ROPE_LINEAR, 2.0, 16);
    float cs[2], sn[2], x[4] = {1, 0, 0, 1};
    llm_rope_table(&r, 1e4, 4, 2, 1, cs, sn);
    llm_rope_rotate(x, 4, cs, sn);
    const float want[4] = {0.5403023f, -0.0099998f, 0.8414710f, 0.9999500f};
    for (int k = 0; k < 4; k++) cr_assert_float_eq(x[k], want[k], 1e-6, "dim %d: %f vs %f", k, x[k], want[k]);
    /* unscaled, position 1 gives the same angles: p / s */
    llm_rope n = rope_of(LLM_ROPE_NONE, 1.0, 16);
    float c1[2], s1[2];
    llm_rope_table(&n, 1e4, 4, 1, 1, c1, s1);
    for (int i = 0; i < 2; i++) cr_assert_float_eq(c1[i], cs[i], 1e-7);
}

Test(rope, yarn_magnitude_and_untouched_fast_pairs)
{
    /* YaRN at s = 4: cos² + sin² = (0.1 ln 4 + 1)² = 1.29215…² for every
     * pair; pair 0 (wavelength 2π, 8192/2π ≈ 1304 rotations > 32) keeps
     * its angle exactly: position 1 turns 1 rad. */
    llm_rope r = rope_of(LLM_ROPE_YARN, 4.0, 8192);
    float cs[32], sn[32];
    llm_rope_table(&r, 1e5, 64, 1, 1, cs, sn);
    const double m = 0.1 * log(4.0) + 1.0;
    for (int i = 0; i < 32; i++)
        cr_assert_float_eq(hypot(cs[i], sn[i]), m, 1e-6, "pair %d", i);
    cr_assert_float_eq(atan2(sn[0], cs[0]), 1.0, 1e-6);
    /* the slowest pair is interpolated fully: its angle is θ_31 / 4 */
    cr_assert_float_eq(atan2(sn[31], cs[31]), pow(1e5, -62.0 / 64.0) / 4.0, 1e-9);
}

/* ---- GGUF keys ---- */
typedef struct {
    uint8_t b[4096];
    size_t n;
} gbuf;
static void put(gbuf *w, const void *p, size_t n) { memcpy(w->b + w->n, p, n); w->n += n; }
static void put_u32(gbuf *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(gbuf *w, uint64_t v) { put(w, &v, 8); }
static void put_str(gbuf *w, const char *s) { put_u64(w, strlen(s)); put(w, s, strlen(s)); }
static void kv_str(gbuf *w, const char *k, const char *v) { put_str(w, k); put_u32(w, LLM_GGUF_VT_STRING); put_str(w, v); }
static void kv_f32(gbuf *w, const char *k, float v) { put_str(w, k); put_u32(w, LLM_GGUF_VT_FLOAT32); put(w, &v, 4); }
static void kv_u32(gbuf *w, const char *k, uint32_t v) { put_str(w, k); put_u32(w, LLM_GGUF_VT_UINT32); put_u32(w, v); }

/* A GGUF of metadata only: n keys written by fill. */
static llm_gguf_file *gguf_of(int nkv, void (*fill)(gbuf *))
{
    static gbuf w;
    memset(&w, 0, sizeof w);
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, 0);
    put_u64(&w, (uint64_t)nkv);
    fill(&w);
    llm_gguf_file *g;
    kv_err err;
    cr_assert_eq(llm_gguf_parse(w.b, w.n, "t.gguf", &g, &err), 0, "%s", err.msg);
    return g;
}

static void yarn_keys(gbuf *w)
{
    kv_str(w, "llama.rope.scaling.type", "yarn");
    kv_f32(w, "llama.rope.scaling.factor", 4.0f);
    kv_u32(w, "llama.rope.scaling.original_context_length", 4096);
    kv_f32(w, "llama.rope.scaling.yarn_beta_fast", 24.0f);
    kv_f32(w, "llama.rope.scaling.attn_factor", 0.5f);
}
static void linear_old_key(gbuf *w)
{
    kv_str(w, "llama.rope.scaling.type", "linear");
    kv_f32(w, "llama.rope.scale_linear", 2.0f);
}
static void longrope(gbuf *w) { kv_str(w, "llama.rope.scaling.type", "longrope"); }
static void bad_factor(gbuf *w)
{
    kv_str(w, "llama.rope.scaling.type", "linear");
    kv_f32(w, "llama.rope.scaling.factor", 0.25f);
}
static void nothing(gbuf *w) { (void)w; }

Test(rope, gguf_keys_with_llama_cpp_names_and_defaults)
{
    llm_rope r;
    kv_err err;
    llm_gguf_file *g = gguf_of(5, yarn_keys);
    cr_assert_eq(llm_rope_from_gguf(g, "llama", 8192, &r, &err), 0, "%s", err.msg);
    /* given: type, factor, L, beta_fast, attn; defaulted as llama.cpp does:
     * ext 1 (yarn), beta_slow 1 */
    cr_assert_eq(r.type, LLM_ROPE_YARN);
    cr_assert_float_eq(r.factor, 4.0, 0.0);
    cr_assert_eq(r.orig_ctx, 4096);
    cr_assert_float_eq(r.beta_fast, 24.0, 0.0);
    cr_assert_float_eq(r.beta_slow, 1.0, 0.0);
    cr_assert_float_eq(r.ext_factor, 1.0, 0.0);
    cr_assert_float_eq(r.attn_factor, 0.5, 0.0);
    cr_assert_eq(llm_rope_max_context(&r, 8192), 16384);
    llm_gguf_free(g);
    g = gguf_of(2, linear_old_key);
    cr_assert_eq(llm_rope_from_gguf(g, "llama", 2048, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.type, LLM_ROPE_LINEAR);
    cr_assert_float_eq(r.factor, 2.0, 0.0);
    cr_assert_eq(r.orig_ctx, 2048, "original context defaults to context_length");
    cr_assert_float_eq(r.ext_factor, 0.0, 0.0);
    llm_gguf_free(g);
    g = gguf_of(0, nothing);
    cr_assert_eq(llm_rope_from_gguf(g, "llama", 8192, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.type, LLM_ROPE_NONE);
    cr_assert_eq(llm_rope_max_context(&r, 8192), 8192);
    llm_gguf_free(g);
    g = gguf_of(1, longrope);
    cr_assert_eq(llm_rope_from_gguf(g, "llama", 8192, &r, &err), -1);
    cr_assert(strstr(err.msg, "llama.rope.scaling.type") && strstr(err.msg, "longrope"), "%s", err.msg);
    llm_gguf_free(g);
    g = gguf_of(2, bad_factor);
    cr_assert_eq(llm_rope_from_gguf(g, "llama", 8192, &r, &err), -1);
    cr_assert(strstr(err.msg, "t.gguf") && strstr(err.msg, "0.25") && strstr(err.msg, "[1, 1024]"), "%s", err.msg);
    llm_gguf_free(g);
}

Test(rope, overrides_and_their_checks)
{
    llm_rope r = rope_of(LLM_ROPE_NONE, 1.0, 8192);
    llm_rope_override ov = {.has_type = 1, .r.type = LLM_ROPE_YARN};
    kv_err err;
    cr_assert_eq(llm_rope_apply_override(&r, &ov, &err), -1, "yarn without a factor");
    cr_assert(strstr(err.msg, "--rope-factor"), "%s", err.msg);
    ov.has_factor = 1;
    ov.r.factor = 4.0;
    cr_assert_eq(llm_rope_apply_override(&r, &ov, &err), 0, "%s", err.msg);
    cr_assert_float_eq(r.ext_factor, 1.0, 0.0, "yarn's ramp weight defaults to 1");
    cr_assert_eq(llm_rope_max_context(&r, 8192), 32768);
    llm_rope_override b = {.has_beta_slow = 1, .r.beta_slow = 40.0};
    cr_assert_eq(llm_rope_apply_override(&r, &b, &err), -1);
    cr_assert(strstr(err.msg, "beta_slow 40"), "%s", err.msg);
    llm_rope_override none = {.has_type = 1, .r.type = LLM_ROPE_NONE};
    cr_assert_eq(llm_rope_apply_override(&r, &none, &err), 0, "%s", err.msg);
    cr_assert_float_eq(r.factor, 1.0, 0.0);
}

Test(rope, cli_flags_are_ranged)
{
    cli_result r;
    cli_run(&r, "generate --prompt hi --rope-factor 0.5");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--rope-factor") && strstr(r.err, "0.5") && strstr(r.err, "[1, 1024]"), "%s", r.err);
    cli_run(&r, "eval --rope-scaling cubic");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--rope-scaling") && strstr(r.err, "cubic") && strstr(r.err, "yarn"), "%s", r.err);
    cli_run(&r, "kvdump --gguf x --text y --out /tmp/z.kvd --tokens 4 --yarn-beta-fast nan");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--yarn-beta-fast"), "%s", r.err);
    cli_run(&r, "eval --rope-orig-ctx 0");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "--rope-orig-ctx") && strstr(r.err, "[1, 16777216]"), "%s", r.err);
    FILE *f = fopen(MODEL_PATH, "rb");
    if (!f) return; /* the checks that need the model (its context) follow */
    fclose(f);
    /* 8192 positions × 2 = 16384: a 16K prompt fits under linear x2, not without */
    cli_run(&r, "eval --context 16000 --new 500 --rope-scaling linear --rope-factor 2");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "16500") && strstr(r.err, "16384"), "%s", r.err);
    cli_run(&r, "generate --prompt hi --rope-scaling yarn --yarn-beta-slow 33");
    cr_assert_eq(r.rc, 2);
    cr_assert(strstr(r.err, "needs a factor") || strstr(r.err, "beta_slow"), "%s", r.err);
}
