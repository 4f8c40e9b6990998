/* golden.h — `kvsim golden` and `kvsim compare`: the reference's inputs and
 * expected outputs of one decode step, stage by stage, as .npy files plus a
 * JSON manifest, and the comparison of another implementation's outputs
 * against them. The functions are here (not static) so the Criterion suite
 * can call them. */
#ifndef CLI_GOLDEN_H
#define CLI_GOLDEN_H

#include <stdio.h>
#include "kv_common.h"
#include "rkv.h"

/* Writes DIR/manifest.json and DIR/<tensor>.npy for decode step 0 (the token
 * at position S = p->S) of (layer, kv_head). Methods: full, hsa, rocketkv. */
int cli_golden_write(const mdl_model *m, const rkv_workload *wl, const rkv_params *p, int layer, int kv_head,
                     const char *dir, kv_err *err);

/* Compares DIR_ACTUAL against DIR_EXPECTED's manifest; prints one verdict
 * line per stage (and details) to out. Returns 0 when every stage passes,
 * 1 when any fails, -1 (err filled) when the expected directory is unusable. */
int cli_compare_dirs(const char *expected, const char *actual, FILE *out, kv_err *err);

#endif
