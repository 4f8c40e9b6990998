/* trc_summary.c — a trace's totals (trc_summary.h): one pass over its
 * blocks, summed per step, then over steps. */
#include "trc_summary.h"

#include <stdlib.h>
#include <string.h>

const char *const trc_cat_names[TRC_NCAT] = {"weights", "kv_exact", "kv_full", "aux", "kv_write", "scores"};

void trc_traffic_cats(const rkv_traffic *t, int64_t c[TRC_NCAT])
{
    c[0] = t->weights; c[1] = t->kv_exact; c[2] = t->kv_full; c[3] = t->aux; c[4] = t->kv_write; c[5] = t->scores;
}

void trc_summary_free(trc_summary *s)
{
    if (!s) return;
    free(s->step);
    memset(s, 0, sizeof *s);
}

/* Adds b's counts to a (position is not a count: left alone). */
static void add_totals(trc_step_totals *a, const trc_step_totals *b)
{
    for (int m = 0; m < TRC_NCAT; m++) a->cat[m] += b->cat[m];
    a->sectors_kv += b->sectors_kv;
    a->sectors_aux += b->sectors_aux;
    a->pages_kv += b->pages_kv;
    a->positions += b->positions;
    a->poslist_bytes += b->poslist_bytes;
    a->block_bytes += b->block_bytes;
    a->full_bytes += b->full_bytes;
}

/* One decoded step block of one sequence into its step's totals. */
static void add_step(const trc_header *h, const trc_step *st, trc_step_totals *t)
{
    const int64_t kvb = (int64_t)rkv_dtype_bytes(h->params.kv_dtype);
    t->position = st->position;
    t->block_bytes += st->block_bytes;
    t->positions += st->positions;
    for (int i = 0; i < st->nrec; i++) {
        const trc_record *x = &st->rec[i];
        int64_t c[TRC_NCAT];
        trc_traffic_cats(&x->bytes, c);
        for (int m = 0; m < TRC_NCAT; m++) t->cat[m] += c[m];
        t->sectors_kv += x->sectors_kv;
        t->sectors_aux += x->sectors_aux;
        t->pages_kv += x->pages_kv;
        t->poslist_bytes += x->poslist_bytes;
        t->full_bytes += (st->position + 1) * 2 * h->d * kvb;
    }
}

/* Sequence seq's stage-1 positions and every step block into s. */
static int add_sequence(trc_reader *r, int seq, trc_step *st, trc_summary *s, kv_err *err)
{
    const trc_header *h = trc_get_header(r);
    trc_stage1 s1 = {0};
    if (trc_read_stage1(r, seq, &s1, err) != 0) {
        trc_stage1_free(&s1);
        return -1;
    }
    for (int i = 0; i < s1.nrec; i++)
        for (int k = 0; k < s1.rec[i].nrows; k++) s->stage1_retained += s1.rec[i].count[k];
    trc_stage1_free(&s1);
    for (int64_t k = 0; k < h->steps; k++) {
        if (trc_read_step(r, seq, k, st, err) != 0) return -1;
        add_step(h, st, &s->step[k]);
    }
    return 0;
}

int trc_summary_read(trc_reader *r, trc_summary *s, kv_err *err)
{
    const trc_header *h = trc_get_header(r);
    memset(s, 0, sizeof *s);
    s->steps = h->steps;
    if (!(s->step = calloc((size_t)(h->steps > 0 ? h->steps : 1), sizeof *s->step)))
        return kv_errf(err, "out of memory");
    trc_step st = {0};
    for (int q = 0; q < h->batch; q++)
        if (add_sequence(r, q, &st, s, err) != 0) {
            trc_step_free(&st);
            return -1;
        }
    trc_step_free(&st);
    for (int64_t k = 0; k < h->steps; k++) add_totals(&s->all, &s->step[k]);
    const trc_step_totals *a = &s->all;
    const double read = (double)(a->cat[1] + a->cat[2] + a->cat[3]);
    s->compression = read > 0 ? (double)a->full_bytes / read : 0.0;
    s->bytes_per_position_lists = a->positions ? (double)a->poslist_bytes / (double)a->positions : 0.0;
    s->bytes_per_position_blocks = a->positions ? (double)a->block_bytes / (double)a->positions : 0.0;
    return 0;
}
