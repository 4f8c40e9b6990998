/* rope_opts.h — the RoPE scaling flags `kvsim kvdump`, `eval` and
 * `generate` share (llm/llm_rope.h says what each one means). */
#ifndef CLI_ROPE_OPTS_H
#define CLI_ROPE_OPTS_H

#include "cli.h"
#include "llm_rope.h"

/* --rope-scaling none|linear|ntk|yarn, --rope-factor F, --rope-orig-ctx N,
 * --yarn-ext-factor E, --yarn-attn-factor A, --yarn-beta-fast B,
 * --yarn-beta-slow B into overrides (each flag through the ranged parser);
 * -1 after printing one error line. */
int cli_rope_opts(cli_opts *o, llm_rope_override *ov);
/* The help lines for those flags. */
void cli_rope_help(void);

#endif
