/* llm_rope.h — rotary position embedding (RoPE) and its scaling for
 * contexts beyond the trained one, as llama.cpp computes it
 * (ggml/src/ggml-cpu/ops.cpp rope_yarn, ggml_rope_yarn_corr_dims):
 *
 *   pair i of d/2, position p, base b:  θ_i = b^(-2i/d)
 *   none    angle = p · θ_i                                    factor s = 1
 *   linear  angle = (p / s) · θ_i        Position Interpolation, Chen et al.
 *                                        arXiv:2306.15595 §2.3 (f'(x, m) = f(x, m L / L'))
 *   ntk     angle = p · b'^(-2i/d),  b' = b · s^(d/(d-2))       "NTK-aware" base change,
 *                                        Peng et al. arXiv:2309.00071 §3.1 (eq. 16)
 *   yarn    angle = p · θ_i · ((1 - γ_i)/s + γ_i), cos and sin × mscale,
 *           γ_i = ext · ramp(i), ramp(i) = 1 - clamp((i - lo)/max(0.001, hi - lo), 0, 1),
 *           lo = max(0, floor(dim(β_fast))), hi = min(d - 1, ceil(dim(β_slow))),
 *           dim(r) = d · ln(L / (2π r)) / (2 ln b)  — the pair index whose wavelength
 *           2π/θ fits r times into the original context L;
 *           mscale = attn · (1 + 0.1 ln s)   (when ext ≠ 0)
 *           ("NTK-by-parts" §3.2 with its ramp in pair index as the reference
 *           code and llama.cpp write it, and the attention temperature √(1/t) =
 *           0.1 ln s + 1 of §3.4; scores scale by mscale² since q and k both carry it).
 *
 * The keys read are llama.cpp's (src/llama-arch.cpp LLM_KV_ROPE_*):
 * {arch}.rope.scaling.type (none | linear | yarn; llama.cpp has no "ntk"
 * type — it is a freq_base change — so ntk comes only from the command line),
 * .factor (or the older .rope.scale_linear), .original_context_length
 * (default: context_length), .attn_factor and .yarn_attn_factor (default 1
 * each; they multiply), .yarn_ext_factor (default 1 for yarn, else 0),
 * .yarn_beta_fast (32) and .yarn_beta_slow (1), llama.cpp's defaults. */
#ifndef LLM_ROPE_H
#define LLM_ROPE_H

#include <stdint.h>
#include "kv_common.h"
#include "llm_gguf.h"

typedef enum { LLM_ROPE_NONE = 0, LLM_ROPE_LINEAR, LLM_ROPE_NTK, LLM_ROPE_YARN } llm_rope_type;

typedef struct {
    llm_rope_type type;
    double factor;      /* s, context extension factor (1 = none) */
    int64_t orig_ctx;   /* L, tokens: the trained context the factor extends */
    double ext_factor;  /* YaRN ramp weight in [0, 1] (llama.cpp yarn_ext_factor) */
    double attn_factor; /* multiplies cos and sin (attn_factor · yarn_attn_factor) */
    double beta_fast;   /* rotations over L: pairs turning more often extrapolate (32) */
    double beta_slow;   /* rotations over L: pairs turning less often interpolate (1) */
} llm_rope;

/* Command-line overrides: a field is applied when its `has_` is set. */
typedef struct {
    int has_type, has_factor, has_orig_ctx, has_ext, has_attn, has_beta_fast, has_beta_slow;
    llm_rope r;
} llm_rope_override;

const char *llm_rope_type_name(llm_rope_type t);
/* "none", "linear", "ntk", "yarn"; -1 otherwise. */
int llm_rope_type_parse(const char *s, llm_rope_type *t);

/* From the file's {arch}.rope.scaling.* keys (absent: none). ctx_train is
 * {arch}.context_length. An unknown type (longrope, …) or a value outside
 * llm_rope_check's ranges is refused naming the key. */
int llm_rope_from_gguf(const llm_gguf_file *g, const char *arch, int64_t ctx_train, llm_rope *r, kv_err *err);
/* Applies the overrides on top of r (a type change resets the YaRN ramp
 * weight to its default for the new type unless it is overridden too), then
 * checks the result; r is unchanged on error. */
int llm_rope_apply_override(llm_rope *r, const llm_rope_override *ov, kv_err *err);
/* factor in [1, 1024] (exactly 1 for none), orig_ctx in [1, 2^24],
 * ext in [0, 1], attn in (0, 16], 0 < beta_slow < beta_fast <= 1e4. */
int llm_rope_check(const llm_rope *r, kv_err *err);
/* Tokens the scaling is meant for: orig_ctx · factor (ctx_train for none). */
int64_t llm_rope_max_context(const llm_rope *r, int64_t ctx_train);

/* cos and sin (n, d/2) of positions pos0 .. pos0+n-1 for base theta, in
 * double then rounded to float, mscale included. */
void llm_rope_table(const llm_rope *r, double theta, int d, int64_t pos0, int64_t n, float *cs, float *sn);
/* Rotates one head given in GGUF's interleaved layout (pairs 2i, 2i+1) and
 * writes it back in Hugging Face rotate-half order (pairs i, i + d/2);
 * cs, sn: (d/2) of one position. d <= 256. */
void llm_rope_rotate(float *x, int d, const float *cs, const float *sn);

#endif
