/* rope_opts.c — the shared RoPE scaling flags (rope_opts.h). */
#include "rope_opts.h"

#include <string.h>

void cli_rope_help(void)
{
    printf("  --rope-scaling T     RoPE scaling: none, linear, ntk, yarn (the file's rope.scaling.type)\n"
           "  --rope-factor F      context extension factor s, [1, 1024] (the file's rope.scaling.factor)\n"
           "  --rope-orig-ctx N    context the factor extends (rope.scaling.original_context_length,\n"
           "                       else context_length)\n"
           "  --yarn-ext-factor E  YaRN ramp weight, [0, 1] (1)\n"
           "  --yarn-attn-factor A YaRN magnitude factor, (0, 16] (1)\n"
           "  --yarn-beta-fast B   YaRN: pairs turning more than B times over the original context\n"
           "                       keep their frequency, (0, 10000] (32)\n"
           "  --yarn-beta-slow B   YaRN: pairs turning fewer than B times are interpolated (1)\n");
}

/* One real flag into *v when given: 1 given, 0 absent, -1 bad. */
static int real_flag(cli_opts *o, const char *name, double lo, double hi, double *v)
{
    if (!cli_opt_str(o, name, NULL)) return 0;
    return cli_opt_f64_in(o, name, 0.0, lo, hi, v) != 0 ? -1 : 1;
}

int cli_rope_opts(cli_opts *o, llm_rope_override *ov)
{
    memset(ov, 0, sizeof *ov);
    const char *t = cli_opt_str(o, "rope-scaling", NULL);
    if (t) {
        if (llm_rope_type_parse(t, &ov->r.type) != 0) {
            cli_error(o->prog, "--rope-scaling: '%s': expected none, linear, ntk or yarn", t);
            return -1;
        }
        ov->has_type = 1;
    }
    if (cli_opt_str(o, "rope-orig-ctx", NULL)) {
        if (cli_opt_i64_in(o, "rope-orig-ctx", 0, 1, (int64_t)1 << 24, &ov->r.orig_ctx) != 0) return -1;
        ov->has_orig_ctx = 1;
    }
    /* the betas' order (slow < fast) is checked once both are known (llm_rope_check) */
    if ((ov->has_factor = real_flag(o, "rope-factor", 1.0, 1024.0, &ov->r.factor)) < 0 ||
        (ov->has_ext = real_flag(o, "yarn-ext-factor", 0.0, 1.0, &ov->r.ext_factor)) < 0 ||
        (ov->has_attn = real_flag(o, "yarn-attn-factor", 1e-6, 16.0, &ov->r.attn_factor)) < 0 ||
        (ov->has_beta_fast = real_flag(o, "yarn-beta-fast", 1e-6, 1e4, &ov->r.beta_fast)) < 0 ||
        (ov->has_beta_slow = real_flag(o, "yarn-beta-slow", 1e-6, 1e4, &ov->r.beta_slow)) < 0)
        return -1;
    return 0;
}
