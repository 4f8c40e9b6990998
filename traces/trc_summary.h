/* trc_summary.h — a trace's totals, what `kvsim inspect` prints: per decode
 * step, summed over sequences, layers and KV heads, the bytes of each access
 * category, sectors and KV pages touched, attended positions, their encoded
 * size, and the K/V bytes dense attention would read at that step,
 * (position + 1) · 2 · d · b per record (b: bytes per KV element); then the
 * same over all steps, the stage-1 retained positions, the compression
 * achieved against dense attention (dense K/V bytes over kv_exact + kv_full
 * + aux) and the bytes per attended position (position lists alone, and
 * whole step blocks).
 *
 * tests/trace_reader.py is a second implementation of the same sums, written
 * from traces/FORMAT.md. */
#ifndef TRC_SUMMARY_H
#define TRC_SUMMARY_H

#include <stdint.h>
#include "trc.h"

#define TRC_NCAT 6
/* "weights", "kv_exact", "kv_full", "aux", "kv_write", "scores": rkv_traffic's fields in file order */
extern const char *const trc_cat_names[TRC_NCAT];
/* t's six categories in trc_cat_names order, bytes. */
void trc_traffic_cats(const rkv_traffic *t, int64_t c[TRC_NCAT]);

typedef struct {
    int64_t position;        /* the step's decoded position (token index) */
    int64_t positions;       /* attended positions, all rows */
    int64_t poslist_bytes;   /* encoded size of the position lists, bytes */
    int64_t block_bytes;     /* size of the step blocks, bytes */
    int64_t cat[TRC_NCAT];   /* bytes per access category (trc_cat_names) */
    int64_t sectors_kv, sectors_aux, pages_kv;
    int64_t full_bytes;      /* K/V bytes dense attention would read */
} trc_step_totals;

typedef struct {
    int64_t steps;
    trc_step_totals *step;   /* (steps) */
    trc_step_totals all;     /* summed over steps (position unused: 0) */
    int64_t stage1_retained; /* positions kept by stage 1, all sequences, layers, heads and rows */
    double compression;      /* all.full_bytes / (kv_exact + kv_full + aux); 0 when nothing is read */
    double bytes_per_position_lists;  /* all.poslist_bytes / all.positions; 0 when none */
    double bytes_per_position_blocks; /* all.block_bytes / all.positions; 0 when none */
} trc_summary;

/* Reads every stage-1 and step block of r (each validated) and fills s.
 * Free with trc_summary_free (also after a failure). */
int trc_summary_read(trc_reader *r, trc_summary *s, kv_err *err);
void trc_summary_free(trc_summary *s);

#endif
