/* trc.h — exact access traces (traces/FORMAT.md): the writer that hooks into
 * rkv_run's callbacks and the reader the simulator and `kvsim inspect` use.
 *
 * Writer: trc_record_run() runs the reference B times (seeds seed..seed+B-1)
 * and writes one file atomically. Records are buffered per (layer, KV head)
 * pair and emitted in (step, layer, head) order, so the file does not depend
 * on the thread count.
 *
 * Reader: trc_open() loads the file, checks every block checksum, the index
 * and the header; trc_read_step() decodes one (sequence, step) block with
 * every record validated. Errors carry the byte offset and what was
 * expected. The reader never reads outside the bytes it was given.
 *
 * It deliberately does not price anything (sim/ does) nor compute fidelity. */
#ifndef TRC_H
#define TRC_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"
#include "mdl.h"
#include "rkv.h"

#define TRC_VERSION 1
#define TRC_KV_PAGE_TOKENS 16
#define TRC_SECTOR_BYTES 32
#define TRC_MAX_LAYERS 1024

/* ------------------------------------------------------------- writer */
/* Runs cfg (exactly one parameter set; cfg->on_stage1/on_step/ctx are
 * replaced) for batch sequences with seeds cfg->wl->seed + i and writes the
 * trace to path. with_fidelity: store per-record fidelity (cfg->fidelity is
 * set accordingly). No file is left under path on failure. */
int trc_record_run(const char *path, const rkv_run_cfg *cfg, int batch, int with_fidelity, kv_err *err);

/* Position-list coding (exposed for tests and the benchmark). Appends to
 * out (capacity must be at least 10 + 20·n); returns bytes written. */
size_t trc_poslist_encode(const int32_t *pos, int64_t n, uint8_t *out);

uint32_t trc_crc32c(uint32_t crc, const void *buf, size_t n);

/* ------------------------------------------------------------- reader */
typedef struct {
    int version;
    char format[16];               /* "kvsim-trace" */
    char kvsim_version[32];
    mdl_model model;
    rkv_params params;             /* method resolved by name: traffic() is callable */
    rkv_workload wl;               /* seed of sequence 0 */
    uint64_t workload_hash;        /* FNV-1a 64 of the workload file, 0 for built-in */
    int kv_page_tokens, sector_bytes;
    int64_t steps;
    int batch, kv_heads, G, d;
    int nlayers;
    int layers[TRC_MAX_LAYERS];    /* layer ids recorded, ascending */
    int fidelity;
    int64_t weights_bytes_per_layer;
} trc_header;

/* One (sequence, step, layer, KV head) record. pos/dims point into the
 * trc_step that holds the record. */
typedef struct {
    int layer, kv_head;
    int shared, dims_shared, has_fid;
    int64_t cache_tokens, pages_scored;
    rkv_traffic bytes;
    int64_t sectors_kv, sectors_aux, pages_kv;
    int nrows;                     /* 1 if shared else G */
    const int32_t *pos[64];        /* (nrows) ascending */
    int64_t count[64];
    int64_t ndims;
    int ndim_rows;                 /* 0, 1 or G */
    const int32_t *dims[64];       /* (ndim_rows, ndims) ascending */
    float fid[64][RKV_FID_N];
    int64_t poslist_bytes;         /* encoded size of this record's position lists */
} trc_record;

typedef struct {
    int seq;
    int64_t step, position;
    int nrec;                      /* nlayers · kv_heads */
    trc_record *rec;               /* (nlayers, kv_heads) */
    int64_t block_bytes;
    int64_t positions;             /* attended positions in the block (all rows) */
    int32_t *buf;                  /* private: positions and dims of every record */
    size_t buf_cap;
    size_t *offs;                  /* private */
    size_t offs_cap;
} trc_step;

typedef struct {
    int nrows;
    const int32_t *pos[64];
    int64_t count[64];
} trc_stage1_rec;

typedef struct {
    int seq;
    int nrec;
    trc_stage1_rec *rec;           /* (nlayers, kv_heads) */
    int32_t *buf;                  /* private */
    size_t buf_cap;
    size_t *offs;                  /* private */
    size_t offs_cap;
} trc_stage1;

typedef struct trc_reader trc_reader;

/* Opens (reads the whole file) and checks every block checksum, the index
 * and the header. name is used in error messages. */
int trc_open(const char *path, trc_reader **r, kv_err *err);
/* Same over a caller-owned buffer (kept, not copied, until trc_close). */
int trc_open_mem(const void *data, size_t n, const char *name, trc_reader **r, kv_err *err);
void trc_close(trc_reader *r);
const trc_header *trc_get_header(const trc_reader *r);
size_t trc_file_bytes(const trc_reader *r);
/* Most positions (and dims) one block may decode to; a block claiming more is
 * rejected (a run item covers many positions in two bytes). Default 2^28. */
void trc_set_limit(trc_reader *r, int64_t max_positions);

/* Decodes the (seq, step) block into st (buffers reused across calls; zero st
 * before the first call, trc_step_free after the last). */
int trc_read_step(trc_reader *r, int seq, int64_t step, trc_step *st, kv_err *err);
void trc_step_free(trc_step *st);
/* The record of (layer id, KV head) in st, or NULL. */
const trc_record *trc_step_find(const trc_reader *r, const trc_step *st, int layer, int kv_head);

int trc_read_stage1(trc_reader *r, int seq, trc_stage1 *s1, kv_err *err);
void trc_stage1_free(trc_stage1 *s1);

/* Prints every header field ("name = value") in file order. */
void trc_header_fprint(const trc_reader *r, FILE *fp);
/* Streams every header field into an open JSON object (key/value pairs). */
void trc_header_json(const trc_reader *r, kv_json *j);

#endif
