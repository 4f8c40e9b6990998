/* trc_write.c — the trace writer: hooks into rkv_run's callbacks, encodes
 * each record into a buffer owned by its (layer, KV head) pair (one worker
 * thread owns a pair at a time, so no locks), and after each sequence's run
 * emits the stage-1 block and one block per step in (layer, KV head) order.
 * The file therefore does not depend on the thread count. It is written
 * through kv_afile: temporary name, renamed only when complete.
 *
 * It also computes the sectors and KV pages a record's reads touch under
 * the layout of FORMAT.md. It does not compute fidelity (refimpl does). */
#include "trc_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    trc_buf rec;            /* encoded step records, concatenated */
    size_t *step_end;       /* (nsteps) end offset of each step's record in rec */
    int64_t *position;      /* (nsteps) token decoded at each step */
    int64_t steps_done;
    trc_buf s1;             /* encoded stage-1 record */
    double cpu_s;           /* CPU seconds spent in this pair's callbacks */
    int64_t positions;
    uint64_t *bm;           /* scratch bitmap over positions (ntok bits) */
    int32_t *slots;         /* scratch (ntok) */
} pair_buf;

typedef struct {
    const rkv_run_cfg *cfg;
    const rkv_params *p;
    int nl, Hkv, G, d;
    int64_t nsteps, ntok, wbytes;
    int seq, with_fid;
    int lidx[TRC_MAX_LAYERS];  /* layer id -> index, -1 when not recorded */
    pair_buf *pairs;
    kv_afile f;
    uint64_t off;
    uint32_t crc;
    uint64_t *s1_off, *d_off;  /* (batch), (batch, nsteps) */
} trc_writer;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------- sectors */
/* Distinct sectors of one region's rows at the ascending slots[0..n). */
static int64_t region_sectors(const int32_t *slots, int64_t n, int64_t R)
{
    const int64_t spp = (TRC_KV_PAGE_TOKENS * R + TRC_SECTOR_BYTES - 1) / TRC_SECTOR_BYTES;
    int64_t count = 0, prev = -1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t page = slots[i] / TRC_KV_PAGE_TOKENS, off = (slots[i] % TRC_KV_PAGE_TOKENS) * R;
        int64_t first = page * spp + off / TRC_SECTOR_BYTES, last = page * spp + (off + R - 1) / TRC_SECTOR_BYTES;
        if (first <= prev) first = prev + 1;
        if (last >= first) count += last - first + 1;
        if (last > prev) prev = last;
    }
    return count;
}

/* Sectors of every slot 0 .. C-1 (closed form of the above). */
static int64_t region_sectors_all(int64_t C, int64_t R)
{
    const int64_t spp = (TRC_KV_PAGE_TOKENS * R + TRC_SECTOR_BYTES - 1) / TRC_SECTOR_BYTES;
    const int64_t rest = C % TRC_KV_PAGE_TOKENS;
    return C / TRC_KV_PAGE_TOKENS * spp + (rest * R + TRC_SECTOR_BYTES - 1) / TRC_SECTOR_BYTES;
}

static int64_t region_pages(const int32_t *slots, int64_t n)
{
    int64_t count = 0, prev = -1;
    for (int64_t i = 0; i < n; i++)
        if (slots[i] / TRC_KV_PAGE_TOKENS != prev) {
            prev = slots[i] / TRC_KV_PAGE_TOKENS;
            count++;
        }
    return count;
}

/* Adds one region's K and V sectors and pages: attended slots, or all C
 * slots for the regions kv_full scans (full_rows: 1 = K, 2 = K and V). */
static void region_add(const int32_t *slots, int64_t n, int64_t C, int64_t R, int full_rows, int64_t *sec, int64_t *pages)
{
    const int64_t att = region_sectors(slots, n, R), all = region_sectors_all(C, R);
    *sec += (full_rows >= 1 ? all : att) + (full_rows >= 2 ? all : att);
    *pages += full_rows >= 1 ? (C + TRC_KV_PAGE_TOKENS - 1) / TRC_KV_PAGE_TOKENS : region_pages(slots, n);
}

/* Sectors and pages a step's reads touch (FORMAT.md "Sectors"). Fails when
 * an attended position is not in the method's cache. */
static int touched(const trc_writer *w, pair_buf *pb, const rkv_step_out *o, int64_t ntok, int64_t out[3])
{
    const int G = w->G, d = w->d;
    const int64_t R = (int64_t)d * (int64_t)rkv_dtype_bytes(w->p->kv_dtype);
    const int rows = o->shared ? 1 : G;
    int full_rows = 0;
    if (o->cache_tokens > 0) {
        int64_t f = o->bytes.kv_full / (o->cache_tokens * R);
        full_rows = f > 2 ? 2 : (int)f;
    }
    out[0] = out[1] = out[2] = 0;
    if (o->cache && !o->cache_shared) { /* one region per query head */
        for (int g = 0; g < G; g++) {
            const int32_t *P = o->pos + (size_t)(o->shared ? 0 : g) * (size_t)o->cap;
            const int64_t np = o->count[o->shared ? 0 : g];
            const int32_t *cr = o->cache + (size_t)g * (size_t)o->cache_stride;
            int64_t n = 0, j = 0;
            for (int64_t i = 0; i < np; i++) {
                while (j < o->cache_n[g] && cr[j] < P[i]) j++;
                if (j >= o->cache_n[g] || cr[j] != P[i])
                    return -1;
                pb->slots[n++] = (int32_t)j;
            }
            region_add(pb->slots, n, o->cache_n[g], R, full_rows, &out[0], &out[2]);
        }
    } else { /* one region: union of the heads' positions */
        const size_t words = (size_t)(ntok + 63) / 64;
        memset(pb->bm, 0, words * 8);
        int64_t want = 0;
        for (int r = 0; r < rows; r++) {
            const int32_t *P = o->pos + (size_t)r * (size_t)o->cap;
            for (int64_t i = 0; i < o->count[r]; i++) {
                if (P[i] < 0 || P[i] >= ntok)
                    return -1;
                uint64_t bit = 1ull << (P[i] & 63);
                if (!(pb->bm[P[i] >> 6] & bit)) want++;
                pb->bm[P[i] >> 6] |= bit;
            }
        }
        int64_t n = 0, C = ntok;
        if (o->cache) {
            C = o->cache_n[0];
            for (int64_t j = 0; j < C; j++)
                if (pb->bm[o->cache[j] >> 6] >> (o->cache[j] & 63) & 1)
                    pb->slots[n++] = (int32_t)j;
        } else {
            for (size_t wd = 0; wd < words; wd++)
                for (uint64_t b = pb->bm[wd]; b; b &= b - 1)
                    pb->slots[n++] = (int32_t)(wd * 64 + (size_t)__builtin_ctzll(b));
        }
        if (n != want)
            return -1;
        region_add(pb->slots, n, C, R, full_rows, &out[0], &out[2]);
    }
    /* aux rows, dimension-major */
    const rkv_traffic *t = &o->bytes;
    if (t->aux > 0 && o->pages_scored > 0) {
        int64_t rows_read, elem;
        if (o->ndims > 0 && o->dims_shared) {
            rows_read = o->ndims;
            elem = t->aux / (o->pages_scored * o->ndims);
        } else if (o->ndims > 0) {
            uint64_t dm[8] = {0};
            rows_read = 0;
            for (int g = 0; g < G; g++)
                for (int64_t i = 0; i < o->ndims; i++) {
                    int32_t x = o->dims[(size_t)g * (size_t)d + (size_t)i];
                    if (!(dm[x >> 6] >> (x & 63) & 1)) rows_read++;
                    dm[x >> 6] |= 1ull << (x & 63);
                }
            elem = t->aux / (o->pages_scored * o->ndims * G);
        } else {
            elem = (int64_t)rkv_dtype_bytes(w->p->aux_dtype);
            rows_read = t->aux / (o->pages_scored * elem);
        }
        out[1] = rows_read * ((o->pages_scored * elem + TRC_SECTOR_BYTES - 1) / TRC_SECTOR_BYTES);
    }
    return 0;
}

/* ---------------------------------------------------------- callbacks */
static size_t poslist_max(int64_t n) { return 10 + 20 * (size_t)n; }

static int on_stage1(void *ctx, int set, int layer, int kvh, int nrows, const int32_t *kept, int64_t stride,
                     const int64_t *nkept)
{
    trc_writer *w = ctx;
    pair_buf *pb = &w->pairs[(size_t)w->lidx[layer] * (size_t)w->Hkv + (size_t)kvh];
    const double t0 = thread_cpu_s();
    size_t need = 30;
    for (int r = 0; r < nrows; r++) need += poslist_max(kept ? nkept[r] : 2);
    if (trc_buf_reserve(&pb->s1, need) != 0)
        return -1;
    pb->s1.n = 0;
    trc_put_varint(&pb->s1, (uint64_t)layer);
    trc_put_varint(&pb->s1, (uint64_t)kvh);
    trc_put_varint(&pb->s1, (uint64_t)nrows);
    for (int r = 0; r < nrows; r++) {
        if (kept) {
            pb->s1.n += trc_poslist_encode(kept + (size_t)r * (size_t)stride, nkept[r], pb->s1.p + pb->s1.n);
        } else { /* the run 0 .. n-1 */
            trc_put_varint(&pb->s1, (uint64_t)nkept[r]);
            if (nkept[r] == 1) trc_put_varint(&pb->s1, 0);
            if (nkept[r] >= 2) {
                trc_put_varint(&pb->s1, 1);
                trc_put_varint(&pb->s1, (uint64_t)(nkept[r] - 2));
            }
        }
    }
    pb->cpu_s += thread_cpu_s() - t0;
    return 0;
}

static int on_step(void *ctx, const rkv_record *rec)
{
    trc_writer *w = ctx;
    const rkv_step_out *o = rec->so;
    pair_buf *pb = &w->pairs[(size_t)w->lidx[rec->layer] * (size_t)w->Hkv + (size_t)rec->kv_head];
    if (rec->step != pb->steps_done || rec->step >= w->nsteps)
        return -1;
    const double t0 = thread_cpu_s();
    if (!pb->bm) {
        pb->bm = calloc((size_t)(w->ntok + 63) / 64, 8);
        pb->slots = malloc((size_t)w->ntok * sizeof *pb->slots);
        if (!pb->bm || !pb->slots)
            return -1;
    }
    int64_t tc[3];
    if (touched(w, pb, o, rec->position + 1, tc) != 0)
        return -1;
    const int G = w->G, rows = o->shared ? 1 : G, drows = o->ndims > 0 ? (o->dims_shared ? 1 : G) : 0;
    size_t need = 16 * 10 + (size_t)drows * (size_t)(w->d / 8 + 1) + (w->with_fid ? (size_t)G * 16 : 0);
    for (int r = 0; r < rows; r++) need += poslist_max(o->count[r]);
    if (trc_buf_reserve(&pb->rec, need) != 0)
        return -1;
    trc_buf *b = &pb->rec;
    trc_put_varint(b, (uint64_t)rec->layer);
    trc_put_varint(b, (uint64_t)rec->kv_head);
    trc_put_u8(b, (o->shared ? 1u : 0u) | (o->ndims > 0 && o->dims_shared ? 2u : 0u) | (w->with_fid ? 4u : 0u));
    trc_put_varint(b, (uint64_t)o->cache_tokens);
    trc_put_varint(b, (uint64_t)o->pages_scored);
    const int64_t cat[6] = {w->seq == 0 && rec->kv_head == 0 ? w->wbytes : 0, o->bytes.kv_exact, o->bytes.kv_full,
                            o->bytes.aux, o->bytes.kv_write, o->bytes.scores};
    for (int i = 0; i < 6; i++) trc_put_varint(b, (uint64_t)cat[i]);
    for (int i = 0; i < 3; i++) trc_put_varint(b, (uint64_t)tc[i]);
    for (int r = 0; r < rows; r++) {
        b->n += trc_poslist_encode(o->pos + (size_t)r * (size_t)o->cap, o->count[r], b->p + b->n);
        pb->positions += o->count[r];
    }
    trc_put_varint(b, (uint64_t)o->ndims);
    for (int r = 0; r < drows; r++) {
        uint8_t *bm = b->p + b->n;
        const size_t nb = (size_t)(w->d + 7) / 8;
        memset(bm, 0, nb);
        for (int64_t i = 0; i < o->ndims; i++) {
            int32_t x = o->dims[(size_t)r * (size_t)w->d + (size_t)i];
            bm[x >> 3] |= (uint8_t)(1u << (x & 7));
        }
        b->n += nb;
    }
    if (w->with_fid)
        for (int g = 0; g < G; g++)
            for (int m = 0; m < RKV_FID_N; m++) {
                float v = rec->fid ? (float)rec->fid[(size_t)g * RKV_FID_N + (size_t)m] : 0.0f;
                uint32_t u;
                memcpy(&u, &v, 4);
                trc_le32(b->p + b->n, u);
                b->n += 4;
            }
    pb->step_end[rec->step] = b->n;
    pb->position[rec->step] = rec->position;
    pb->steps_done++;
    if (pb->steps_done == w->nsteps) { /* the pair is finished: drop its scratch */
        free(pb->bm);
        free(pb->slots);
        pb->bm = NULL;
        pb->slots = NULL;
    }
    pb->cpu_s += thread_cpu_s() - t0;
    return 0;
}

/* ---------------------------------------------------------- output */
static void out_bytes(trc_writer *w, const void *p, size_t n)
{
    fwrite(p, 1, n, w->f.fp);
    w->crc = trc_crc32c(w->crc, p, n);
    w->off += n;
}

static void block_begin(trc_writer *w, int type, size_t len)
{
    uint8_t h[5];
    h[0] = (uint8_t)type;
    trc_le32(h + 1, (uint32_t)len);
    w->crc = 0;
    out_bytes(w, h, 5);
}

static void block_end(trc_writer *w)
{
    uint8_t c[4];
    trc_le32(c, w->crc);
    fwrite(c, 1, 4, w->f.fp);
    w->off += 4;
}

static int block_write(trc_writer *w, int type, const trc_buf *b, kv_err *err)
{
    if (b->n > TRC_MAX_BLOCK)
        return kv_errf(err, "%s: block of %zu bytes exceeds the format's 2^30", w->f.path, b->n);
    block_begin(w, type, b->n);
    out_bytes(w, b->p, b->n);
    block_end(w);
    return 0;
}

static int emit_sequence(trc_writer *w, kv_err *err)
{
    const size_t np = (size_t)w->nl * (size_t)w->Hkv;
    uint8_t pre[40];
    size_t len = trc_varint(pre, (uint64_t)w->seq);
    size_t total = len;
    for (size_t i = 0; i < np; i++) total += w->pairs[i].s1.n;
    if (total > TRC_MAX_BLOCK)
        return kv_errf(err, "%s: stage-1 block exceeds 2^30 bytes", w->f.path);
    w->s1_off[w->seq] = w->off;
    block_begin(w, TRC_BLK_STAGE1, total);
    out_bytes(w, pre, len);
    for (size_t i = 0; i < np; i++) out_bytes(w, w->pairs[i].s1.p, w->pairs[i].s1.n);
    block_end(w);
    for (int64_t s = 0; s < w->nsteps; s++) {
        const int64_t position = w->pairs[0].position[s];
        len = trc_varint(pre, (uint64_t)w->seq);
        len += trc_varint(pre + len, (uint64_t)s);
        len += trc_varint(pre + len, (uint64_t)position);
        total = len;
        for (size_t i = 0; i < np; i++) {
            const pair_buf *pb = &w->pairs[i];
            if (pb->steps_done != w->nsteps || pb->position[s] != position)
                return kv_errf(err, "%s: pair %zu recorded %lld of %lld steps", w->f.path, i, (long long)pb->steps_done,
                               (long long)w->nsteps);
            total += pb->step_end[s] - (s ? pb->step_end[s - 1] : 0);
        }
        if (total > TRC_MAX_BLOCK)
            return kv_errf(err, "%s: step block exceeds 2^30 bytes", w->f.path);
        w->d_off[(size_t)w->seq * (size_t)w->nsteps + (size_t)s] = w->off;
        block_begin(w, TRC_BLK_STEP, total);
        out_bytes(w, pre, len);
        for (size_t i = 0; i < np; i++) {
            const pair_buf *pb = &w->pairs[i];
            const size_t from = s ? pb->step_end[s - 1] : 0;
            out_bytes(w, pb->rec.p + from, pb->step_end[s] - from);
        }
        block_end(w);
    }
    return 0;
}

static uint64_t fnv1a64_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    uint64_t h = 1469598103934665603ull;
    int c;
    while ((c = getc(fp)) != EOF)
        h = (h ^ (uint64_t)(unsigned char)c) * 1099511628211ull;
    fclose(fp);
    return h;
}

/* The header block, from the table in trc_codec.c. */
static int header_encode(const trc_header *h, trc_buf *b)
{
    if (trc_buf_reserve(b, 64 * 1024) != 0)
        return -1;
    trc_put_varint(b, trc_nfields);
    for (size_t i = 0; i < trc_nfields; i++) {
        const trc_field *f = &trc_fields[i];
        const char *base = (const char *)h + f->off;
        const size_t nl = strlen(f->name);
        trc_put_u8(b, (unsigned)trc_field_kind(f->type));
        trc_put_varint(b, nl);
        memcpy(b->p + b->n, f->name, nl);
        b->n += nl;
        const char *s = NULL;
        int64_t iv = 0;
        switch (f->type) {
        case TRC_F_INT: iv = *(const int *)(const void *)base; break;
        case TRC_F_I64: iv = *(const int64_t *)(const void *)base; break;
        case TRC_F_U64: iv = (int64_t)*(const uint64_t *)(const void *)base; break;
        case TRC_F_F64: {
            uint64_t u;
            memcpy(&u, base, 8);
            trc_le64(b->p + b->n, u);
            b->n += 8;
            continue;
        }
        case TRC_F_STR: s = f->size ? base : trc_layout_const(f->name); break;
        case TRC_F_DTYPE: s = rkv_dtype_name(*(const rkv_dtype *)(const void *)base); break;
        case TRC_F_POOL: s = trc_pool_name(*(const rkv_pool *)(const void *)base); break;
        case TRC_F_GRAN: s = trc_gran_name(*(const rkv_granularity *)(const void *)base); break;
        case TRC_F_SPLIT: s = trc_split_name(*(const rkv_split *)(const void *)base); break;
        case TRC_F_METHOD: s = h->params.method->name; break;
        case TRC_F_LAYERS:
            trc_put_varint(b, (uint64_t)h->nlayers);
            for (int k = 0; k < h->nlayers; k++) trc_put_varint(b, trc_zigzag(h->layers[k]));
            continue;
        case TRC_F_TURNS_IN: case TRC_F_TURNS_OUT: {
            const int64_t *a = f->type == TRC_F_TURNS_IN ? h->wl.turn_input : h->wl.turn_output;
            trc_put_varint(b, (uint64_t)h->wl.nturns);
            for (int k = 0; k < h->wl.nturns; k++) trc_put_varint(b, trc_zigzag(a[k]));
            continue;
        }
        }
        if (s) {
            const size_t sl = strlen(s);
            trc_put_varint(b, sl);
            memcpy(b->p + b->n, s, sl);
            b->n += sl;
        } else {
            trc_put_varint(b, trc_zigzag(iv));
        }
    }
    return 0;
}

static void writer_free(trc_writer *w)
{
    const size_t np = (size_t)w->nl * (size_t)w->Hkv;
    for (size_t i = 0; w->pairs && i < np; i++) {
        pair_buf *pb = &w->pairs[i];
        trc_buf_free(&pb->rec);
        trc_buf_free(&pb->s1);
        free(pb->step_end);
        free(pb->position);
        free(pb->bm);
        free(pb->slots);
    }
    free(w->pairs);
    free(w->s1_off);
    free(w->d_off);
}

static int64_t run_steps(const rkv_run_cfg *c)
{
    if (c->wl->nturns == 0)
        return c->steps;
    int64_t n = 0;
    for (int t = 0; t < c->wl->nturns; t++) n += c->wl->turn_output[t];
    return n;
}

/* The writer's shape and the file's header from cfg (w->cfg, whose single
 * parameter set is recorded): layers ascending, distinct and in range. */
static int writer_init(trc_writer *w, trc_header *h, const char *path, int batch, int with_fidelity, kv_err *err)
{
    const rkv_run_cfg *cfg = w->cfg;
    const mdl_model *m = cfg->model;
    w->p = &cfg->sets[0];
    w->Hkv = m->num_key_value_heads;
    w->G = mdl_group_size(m);
    w->d = m->head_dim;
    w->nsteps = run_steps(cfg);
    w->ntok = rkv_run_tokens(cfg);
    w->with_fid = with_fidelity;
    w->wbytes = mdl_layer_params(m) * 2;
    memset(h, 0, sizeof *h);
    for (int i = 0; i < TRC_MAX_LAYERS; i++) w->lidx[i] = -1;
    if (cfg->layers) {
        for (int i = 0; i < cfg->nlayers; i++) {
            if (cfg->layers[i] < 0 || cfg->layers[i] >= m->num_hidden_layers ||
                (i > 0 && cfg->layers[i] <= cfg->layers[i - 1]))
                return kv_errf(err, "%s: layers must be ascending, distinct and in range", path);
            w->lidx[cfg->layers[i]] = i;
            h->layers[i] = cfg->layers[i];
        }
        w->nl = cfg->nlayers;
    } else {
        for (int i = 0; i < m->num_hidden_layers; i++) w->lidx[i] = h->layers[i] = i;
        w->nl = m->num_hidden_layers;
    }
    snprintf(h->format, sizeof h->format, "kvsim-trace");
    snprintf(h->kvsim_version, sizeof h->kvsim_version, "%s", KV_VERSION);
    h->model = *m;
    h->params = cfg->sets[0];
    h->wl = *cfg->wl;
    /* bits 63 and 62 cleared: header integers are svarints, and the zigzag of a value
     * of 2^62 or more is a varint above 2^63-1, which every reader refuses */
    h->workload_hash = cfg->wl->path[0] ? fnv1a64_file(cfg->wl->path) & 0x3fffffffffffffffull : 0;
    h->kv_page_tokens = TRC_KV_PAGE_TOKENS;
    h->sector_bytes = TRC_SECTOR_BYTES;
    h->steps = w->nsteps;
    h->batch = batch;
    h->kv_heads = w->Hkv;
    h->nlayers = w->nl;
    h->fidelity = with_fidelity;
    h->weights_bytes_per_layer = w->wbytes;
    return 0;
}

/* Per-pair buffers and the block offsets of batch sequences; -1 when out of memory. */
static int writer_alloc(trc_writer *w, int batch)
{
    const size_t np = (size_t)w->nl * (size_t)w->Hkv;
    w->pairs = calloc(np, sizeof *w->pairs);
    w->s1_off = calloc((size_t)batch, 8);
    w->d_off = calloc((size_t)batch * (size_t)w->nsteps, 8);
    if (!w->pairs || !w->s1_off || !w->d_off)
        return -1;
    for (size_t i = 0; i < np; i++) {
        w->pairs[i].step_end = calloc((size_t)w->nsteps, sizeof(size_t));
        w->pairs[i].position = calloc((size_t)w->nsteps, sizeof(int64_t));
        if (!w->pairs[i].step_end || !w->pairs[i].position)
            return -1;
    }
    return 0;
}

/* Runs the reference once per sequence (seed + s) and emits its blocks;
 * *own accumulates the writer's CPU time on this thread since *t0. */
static int record_sequences(trc_writer *w, rkv_run_cfg *cfg, rkv_workload *wl, uint64_t seed0, int batch, double *own,
                            double *t0, kv_err *err)
{
    const size_t np = (size_t)w->nl * (size_t)w->Hkv;
    for (int s = 0; s < batch; s++) {
        w->seq = s;
        wl->seed = seed0 + (uint64_t)s;
        for (size_t i = 0; i < np; i++) {
            w->pairs[i].rec.n = 0;
            w->pairs[i].s1.n = 0;
            w->pairs[i].steps_done = 0;
        }
        rkv_fidelity fid[1];
        *own += thread_cpu_s() - *t0;
        if (rkv_run(cfg, w->with_fid ? fid : NULL, err) != 0)
            return -1;
        *t0 = thread_cpu_s();
        if (w->with_fid)
            rkv_fidelity_free(&fid[0]);
        if (emit_sequence(w, err) != 0)
            return -1;
    }
    return 0;
}

/* The index block (every sequence's stage-1 and step block offsets) and the
 * footer; hb is reused as the index's buffer. -2 when out of memory. */
static int write_index_footer(trc_writer *w, int batch, trc_buf *hb, kv_err *err)
{
    hb->n = 0;
    if (trc_buf_reserve(hb, 20 + 10 * (size_t)batch * (size_t)(w->nsteps + 1)) != 0)
        return -2;
    trc_put_varint(hb, (uint64_t)batch);
    trc_put_varint(hb, (uint64_t)w->nsteps);
    for (int s = 0; s < batch; s++) trc_put_varint(hb, w->s1_off[s]);
    for (size_t i = 0; i < (size_t)batch * (size_t)w->nsteps; i++) trc_put_varint(hb, w->d_off[i]);
    const uint64_t index_off = w->off;
    if (block_write(w, TRC_BLK_INDEX, hb, err) != 0)
        return -1;
    uint8_t foot[16];
    trc_le64(foot, index_off);
    memcpy(foot + 8, TRC_FOOTER_MAGIC, 4);
    trc_le32(foot + 12, trc_crc32c(0, foot, 12));
    out_bytes(w, foot, 16);
    return 0;
}

static void fill_stats(const trc_writer *w, double own, int64_t file_bytes, trc_write_stats *stats)
{
    const size_t np = (size_t)w->nl * (size_t)w->Hkv;
    stats->writer_cpu_s = own;
    stats->file_bytes = file_bytes;
    stats->positions = 0;
    for (size_t i = 0; i < np; i++) {
        stats->writer_cpu_s += w->pairs[i].cpu_s;
        stats->positions += w->pairs[i].positions;
    }
}

int trc_record_run(const char *path, const rkv_run_cfg *cfg_in, int batch, int with_fidelity, trc_write_stats *stats,
                   kv_err *err)
{
    double own = 0.0, t0 = thread_cpu_s(); /* the writer's own CPU time on this thread */
    if (cfg_in->nsets != 1)
        return kv_errf(err, "%s: a trace records one method and one budget, got %d parameter sets", path, cfg_in->nsets);
    if (batch < 1 || batch > 1 << 20)
        return kv_errf(err, "%s: batch must be between 1 and 2^20, got %d", path, batch);
    const mdl_model *m = cfg_in->model;
    if (m->num_hidden_layers > TRC_MAX_LAYERS || mdl_group_size(m) > 64 || m->head_dim > 512)
        return kv_errf(err, "%s: model too large for the trace format (layers <= %d, G <= 64, d <= 512)", path,
                       TRC_MAX_LAYERS);
    trc_writer w;
    memset(&w, 0, sizeof w);
    rkv_run_cfg cfg = *cfg_in;
    rkv_workload wl = *cfg_in->wl;
    cfg.wl = &wl;
    w.cfg = &cfg;
    trc_header h;
    if (writer_init(&w, &h, path, batch, with_fidelity, err) != 0)
        return -1;
    trc_buf hb = {0};
    if (writer_alloc(&w, batch) != 0 || header_encode(&h, &hb) != 0)
        goto oom;
    if (kv_afile_open(&w.f, path, err) != 0)
        goto fail;
    out_bytes(&w, TRC_MAGIC, 8);
    uint8_t v[4];
    trc_le32(v, TRC_VERSION);
    out_bytes(&w, v, 4);
    if (block_write(&w, TRC_BLK_HEADER, &hb, err) != 0)
        goto fail_file;
    cfg.on_stage1 = on_stage1;
    cfg.on_step = on_step;
    cfg.ctx = &w;
    cfg.fidelity = with_fidelity;
    if (record_sequences(&w, &cfg, &wl, cfg_in->wl->seed, batch, &own, &t0, err) != 0)
        goto fail_file;
    const int irc = write_index_footer(&w, batch, &hb, err);
    if (irc == -2)
        goto oom_file;
    if (irc != 0)
        goto fail_file;
    trc_buf_free(&hb);
    const int64_t file_bytes = (int64_t)w.off;
    if (kv_afile_commit(&w.f, err) != 0) {
        writer_free(&w);
        return -1;
    }
    if (stats)
        fill_stats(&w, own + thread_cpu_s() - t0, file_bytes, stats);
    writer_free(&w);
    return 0;
oom_file:
    kv_errf(err, "%s: out of memory while writing the trace", path);
fail_file:
    kv_afile_abort(&w.f);
    goto fail;
oom:
    kv_errf(err, "%s: out of memory for the trace buffers", path);
fail:
    trc_buf_free(&hb);
    writer_free(&w);
    return -1;
}
