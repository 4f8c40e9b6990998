/* method_internal.h — what the method files share and nothing else needs:
 * the growable-in-place position list, workspace carving, and the stage-2
 * (hybrid sparse attention) engine used by hsa, rocketkv and rocketkv-mt. */
#ifndef RKV_METHOD_INTERNAL_H
#define RKV_METHOD_INTERNAL_H

#include "rkv.h"

#include <string.h>

/* The method type objects (one per method_<name>.c); rkv_methods[] lists them. */
extern const rkv_method_type rkv_method_full, rkv_method_exact_topk, rkv_method_streaming,
    rkv_method_snapkv, rkv_method_snapkv_gqa, rkv_method_quest, rkv_method_sparq, rkv_method_hsa,
    rkv_method_rocketkv, rkv_method_rocketkv_mt;

/* Carves `bytes` (64-byte aligned) from *cursor. */
static inline void *rkv_carve(char **cursor, size_t bytes)
{
    void *p = *cursor;
    *cursor += (bytes + 63) & ~(size_t)63;
    return p;
}

static inline size_t rkv_round64(size_t b) { return (b + 63) & ~(size_t)63; }

/* A list of cache positions, ascending, in memory carved from the state. */
typedef struct {
    int32_t *pos;
    int64_t n, cap;
} rkv_list;

static inline void rkv_list_push(rkv_list *l, int32_t p)
{
    if (l->n < l->cap)
        l->pos[l->n++] = p;
}

/* Appends positions [from, to) */
static inline void rkv_list_push_range(rkv_list *l, int64_t from, int64_t to)
{
    for (int64_t p = from; p < to; p++)
        rkv_list_push(l, (int32_t)p);
}

/* Common parameter pieces. */
int64_t rkv_total_tokens(const rkv_request *rq);  /* S' */
int rkv_check_request(const rkv_request *rq, const char *method, kv_err *err);
void rkv_params_base(const rkv_request *rq, const rkv_method_type *m, rkv_params *p);
/* Fills compression_ratio from traffic() of full and of p's method at the last step. */
void rkv_params_finish(rkv_params *p);
/* RocketKV's stage-2 shape (docs/algorithm.md step 3) for a cache of `capacity`. */
void rkv_stage2_shape(const rkv_request *rq, int64_t capacity, rkv_params *p);

/* ---- the stage-2 engine (method_hsa.c) ---- */
typedef struct {
    rkv_list cache;     /* positions in cache-slot order (ascending) */
    int64_t seen;       /* next history position to append */
    int64_t npages;
    float *pmin, *pmax; /* (npages_cap, d): page min / max in the aux dtype's values */
    int64_t npages_cap;
    int32_t *kept;      /* stage-1 output scratch (cap) */
} rkv_stage2;

size_t rkv_stage2_bytes(const rkv_params *p, int64_t max_tokens);
void rkv_stage2_init(rkv_stage2 *s, char **cursor, const rkv_params *p, int64_t max_tokens);
/* Rebuilds all pages from the cache list. */
void rkv_stage2_build(rkv_stage2 *s, const rkv_params *p, const rkv_head *h);
/* Appends history positions [s->seen, h->n) to the cache, updating pages. */
void rkv_stage2_append(rkv_stage2 *s, const rkv_params *p, const rkv_head *h);
int rkv_stage2_step(rkv_stage2 *s, const rkv_params *p, const rkv_head *h, const float *q,
                    rkv_step_out *o, void *ws);
size_t rkv_stage2_ws_bytes(const rkv_params *p, int64_t max_tokens);
/* Analytic stage-2 bytes at decode step `step` (the traffic() of hsa, rocketkv, rocketkv-mt). */
void rkv_stage2_traffic(const rkv_params *p, int64_t step, rkv_traffic *t);
int64_t rkv_stage2_traffic_until(const rkv_params *p, int64_t step);

/* Fills the common fields of o for a shared attention over `pos` and attends. */
void rkv_attend_shared(const rkv_head *h, const float *q, const int32_t *pos, int64_t n,
                       rkv_step_out *o, float *ws);

#endif
