/* trc_internal.h — what trc_write.c, trc_read.c and trc_codec.c share and
 * nobody else should: block types, the header field table (one table drives
 * both the writer and the reader) and byte helpers. */
#ifndef TRC_INTERNAL_H
#define TRC_INTERNAL_H

#include <string.h>

#include "trc.h"

#define TRC_MAGIC "KVSIMTRC"
#define TRC_FOOTER_MAGIC "KTRE"
#define TRC_MAX_BLOCK (1u << 30)
#define TRC_BLK_HEADER 'H'
#define TRC_BLK_STAGE1 'S'
#define TRC_BLK_STEP 'D'
#define TRC_BLK_INDEX 'I'

/* On-disk kinds of header fields. */
enum { TRC_K_INT = 1, TRC_K_F64 = 2, TRC_K_STR = 3, TRC_K_LIST = 4 };

/* In-memory types of header fields. */
typedef enum {
    TRC_F_INT, TRC_F_I64, TRC_F_U64, TRC_F_F64, TRC_F_STR, TRC_F_DTYPE, TRC_F_POOL, TRC_F_GRAN,
    TRC_F_SPLIT, TRC_F_METHOD, TRC_F_LAYERS, TRC_F_TURNS_IN, TRC_F_TURNS_OUT
} trc_ftype;

typedef struct {
    const char *name;
    trc_ftype type;
    size_t off;     /* into trc_header */
    size_t size;    /* char array size for TRC_F_STR */
} trc_field;

extern const trc_field trc_fields[];
extern const size_t trc_nfields;
int trc_field_kind(trc_ftype t);

/* Growable byte buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} trc_buf;

int trc_buf_reserve(trc_buf *b, size_t extra);
void trc_buf_free(trc_buf *b);
/* Callers reserve first; these never allocate. */
static inline void trc_put_u8(trc_buf *b, unsigned v) { b->p[b->n++] = (uint8_t)v; }
static inline size_t trc_varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}
static inline void trc_put_varint(trc_buf *b, uint64_t v) { b->n += trc_varint(b->p + b->n, v); }
static inline uint64_t trc_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t trc_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
static inline void trc_le32(uint8_t *o, uint32_t v)
{
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static inline void trc_le64(uint8_t *o, uint64_t v)
{
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t trc_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t trc_rd64(const uint8_t *p) { return (uint64_t)trc_rd32(p) | (uint64_t)trc_rd32(p + 4) << 32; }

const char *trc_pool_name(rkv_pool p);
const char *trc_gran_name(rkv_granularity g);
const char *trc_split_name(rkv_split s);


/* Value of the constant layout strings (fields with off = size = 0). */
static inline const char *trc_layout_const(const char *name)
{
    if (!strcmp(name, "layout.kv_order")) return "head-major";
    if (!strcmp(name, "layout.aux_order")) return "dim-major";
    return "compacted";
}

#endif
