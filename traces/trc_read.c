/* trc_read.c — the trace reader. trc_open checks the magic, the version,
 * the footer, every block's framing and CRC32C (blocks must tile the file
 * from the header to the index), the index offsets and the header fields;
 * trc_read_step / trc_read_stage1 decode one block with every record checked
 * against the header. Every access goes through a bounds-checked cursor; an
 * error names the byte offset and what was expected.
 *
 * It loads the whole file (traces are tens of MB); it does not mmap. */
#include "trc_internal.h"

/* trc_open loads the whole file: at most 64 GiB. */
#define TRC_MAX_FILE_BYTES ((uint64_t)1 << 36)

#include <errno.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Fuzz builds (make fuzz) accept wrong checksums so that mutations reach the
 * decoders behind them; every other build checks them. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define TRC_FUZZ_SKIP_CRC 1
#else
#define TRC_FUZZ_SKIP_CRC 0
#endif

struct trc_reader {
    const uint8_t *data;
    size_t n;
    uint8_t *owned;
    char name[256];
    trc_header h;
    uint64_t *s1_off, *d_off;  /* (batch), (batch, steps) */
    int64_t max_tok;           /* positions are < this */
    int64_t limit;             /* positions one block may decode to */
};

/* A bounds-checked cursor over [pos, end) of r->data. */
typedef struct {
    const trc_reader *r;
    size_t pos, end;
    kv_err *err;
} cur;

static int bad(cur *c, const char *fmt, const char *what, unsigned long long got, unsigned long long want)
{
    char m[200];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(m, sizeof m, fmt, what, got, want); /* fmt: "%s ... %llu ... %llu" literals of this file */
#pragma GCC diagnostic pop
    return kv_errf(c->err, "%s: offset %zu: %s", c->r->name, c->pos, m);
}

static int rd_u8(cur *c, unsigned *v, const char *what)
{
    if (c->pos >= c->end)
        return kv_errf(c->err, "%s: offset %zu: %s: block ends early, expected 1 more byte", c->r->name, c->pos, what);
    *v = c->r->data[c->pos++];
    return 0;
}

static int rd_var_slow(cur *c, uint64_t *v, const char *what)
{
    uint64_t x = 0;
    const size_t start = c->pos;
    for (int i = 0; i < 10; i++) {
        if (c->pos >= c->end)
            return kv_errf(c->err, "%s: offset %zu: %s: varint runs past the end of its block (at %zu)", c->r->name, start,
                           what, c->end);
        const unsigned b = c->r->data[c->pos++];
        if (i == 9 && b > 0)
            return kv_errf(c->err, "%s: offset %zu: %s: varint exceeds 2^63-1", c->r->name, start, what);
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return kv_errf(c->err, "%s: offset %zu: %s: varint longer than 10 bytes", c->r->name, start, what);
}

/* One-byte varints (most of a trace) inline; the rest through the checked loop. */
static inline int rd_var(cur *c, uint64_t *v, const char *what)
{
    if (c->pos < c->end && c->r->data[c->pos] < 0x80) {
        *v = c->r->data[c->pos++];
        return 0;
    }
    return rd_var_slow(c, v, what);
}

/* A varint that must be <= max. */
static int rd_max(cur *c, uint64_t *v, uint64_t max, const char *what)
{
    const size_t start = c->pos;
    if (rd_var(c, v, what) != 0)
        return -1;
    if (*v > max) {
        c->pos = start;
        return bad(c, "%s = %llu, expected at most %llu", what, *v, max);
    }
    return 0;
}

static int rd_bytes(cur *c, size_t n, const uint8_t **p, const char *what)
{
    if (n > c->end - c->pos)
        return kv_errf(c->err, "%s: offset %zu: %s: %zu bytes needed, the block has %zu left", c->r->name, c->pos, what, n,
                       c->end - c->pos);
    *p = c->r->data + c->pos;
    c->pos += n;
    return 0;
}

/* Checks the framing and CRC of the block at off; c covers its payload. */
static int block_at(trc_reader *r, uint64_t off, int type, cur *c, kv_err *err)
{
    c->r = r;
    c->err = err;
    c->pos = (size_t)off;
    if (off > r->n || r->n - off < 9)
        return kv_errf(err, "%s: offset %llu: block '%c' needs 9 bytes of framing, the file has %llu left", r->name,
                       (unsigned long long)off, type, (unsigned long long)(off > r->n ? 0 : r->n - off));
    const uint8_t *p = r->data + off;
    if (p[0] != type)
        return kv_errf(err, "%s: offset %llu: block type 0x%02x, expected '%c'", r->name, (unsigned long long)off, p[0], type);
    const uint32_t len = trc_rd32(p + 1);
    if (len > TRC_MAX_BLOCK || len > r->n - off - 9)
        return kv_errf(err, "%s: offset %llu: block '%c' length %u runs past the end of the file (%zu bytes)", r->name,
                       (unsigned long long)off + 1, type, len, r->n);
    const uint32_t want = trc_rd32(p + 5 + len), got = trc_crc32c(0, p, 5 + (size_t)len);
    if (want != got && !TRC_FUZZ_SKIP_CRC)
        return kv_errf(err, "%s: offset %llu: block '%c' CRC32C 0x%08x, expected 0x%08x (stored at offset %llu)", r->name,
                       (unsigned long long)off, type, got, want, (unsigned long long)off + 5 + len);
    c->pos = (size_t)off + 5;
    c->end = c->pos + len;
    return 0;
}

static int at_end(cur *c, const char *what)
{
    if (c->pos != c->end)
        return kv_errf(c->err, "%s: offset %zu: %zu trailing bytes after the %s, expected the block to end", c->r->name,
                       c->pos, c->end - c->pos, what);
    return 0;
}

/* ------------------------------------------------------------ header */
static const trc_field *field_find(const char *name, size_t len)
{
    for (size_t i = 0; i < trc_nfields; i++)
        if (strlen(trc_fields[i].name) == len && !memcmp(trc_fields[i].name, name, len))
            return &trc_fields[i];
    return NULL;
}

static int parse_string_field(cur *c, const trc_field *f, trc_header *h, const uint8_t *s, size_t sl, size_t at)
{
    char v[600];
    if (sl >= sizeof v || (f->size && sl >= f->size)) {
        c->pos = at;
        return bad(c, "%s: string of %llu bytes, expected fewer than %llu", f->name, sl, f->size ? f->size : sizeof v);
    }
    memcpy(v, s, sl);
    v[sl] = '\0';
    if (strlen(v) != sl) {
        return kv_errf(c->err, "%s: offset %zu: %s: string holds a NUL byte", c->r->name, at, f->name);
    }
    char *base = (char *)h + f->off;
    int ok = 1;
    switch (f->type) {
    case TRC_F_STR:
        if (f->size) memcpy(base, v, sl + 1);
        else ok = !strcmp(v, trc_layout_const(f->name));
        break;
    case TRC_F_DTYPE: ok = rkv_dtype_parse(v, (rkv_dtype *)(void *)base) == 0; break;
    case TRC_F_POOL: ok = !strcmp(v, "max") || !strcmp(v, "avg"); *(rkv_pool *)(void *)base = !strcmp(v, "avg") ? RKV_POOL_AVG : RKV_POOL_MAX; break;
    case TRC_F_GRAN: ok = !strcmp(v, "token") || !strcmp(v, "page"); *(rkv_granularity *)(void *)base = !strcmp(v, "page") ? RKV_GRAN_PAGE : RKV_GRAN_TOKEN; break;
    case TRC_F_SPLIT: ok = !strcmp(v, "default") || !strcmp(v, "even"); *(rkv_split *)(void *)base = !strcmp(v, "even") ? RKV_SPLIT_EVEN : RKV_SPLIT_DEFAULT; break;
    case TRC_F_METHOD: h->params.method = rkv_method_find(v); ok = h->params.method != NULL; break;
    default: break;
    }
    if (!ok)
        return kv_errf(c->err, "%s: offset %zu: %s = '%s' is not a value this reader knows", c->r->name, at, f->name, v);
    return 0;
}

/* An integer field's value into the header (range-checked for int fields). */
static int put_int_field(cur *c, const trc_field *f, char *base, uint64_t v, size_t vat)
{
    const int64_t x = trc_unzigzag(v);
    if (f->type == TRC_F_INT) {
        if (x < -2147483647 || x > 2147483647) {
            c->pos = vat;
            return bad(c, "%s = %llu does not fit an int (limit %llu)", f->name, (unsigned long long)x, 2147483647ull);
        }
        *(int *)(void *)base = (int)x;
    } else if (f->type == TRC_F_I64) {
        *(int64_t *)(void *)base = x;
    } else {
        *(uint64_t *)(void *)base = (uint64_t)x;
    }
    return 0;
}

/* A list field (layer ids, or a turn list whose length goes to nturn_lists);
 * f NULL: an unknown field, read and skipped. */
static int parse_list_field(cur *c, const trc_field *f, trc_header *h, size_t vat, uint64_t nturn_lists[2])
{
    uint64_t n = 0, v = 0;
    const uint64_t max = f && f->type == TRC_F_LAYERS ? TRC_MAX_LAYERS : f ? RKV_MAX_TURNS : 1u << 20;
    if (rd_max(c, &n, max, "list length")) return -1;
    for (uint64_t k = 0; k < n; k++) {
        if (rd_var(c, &v, "list item")) return -1;
        const int64_t x = trc_unzigzag(v);
        if (!f) continue;
        if (f->type == TRC_F_LAYERS) {
            if (x < 0 || x >= TRC_MAX_LAYERS || (k > 0 && x <= h->layers[k - 1])) {
                c->pos = vat;
                return bad(c, "%s: layer ids must be ascending, distinct and below %llu (item %llu)", f->name,
                           TRC_MAX_LAYERS, k);
            }
            h->layers[k] = (int)x;
        } else {
            (f->type == TRC_F_TURNS_IN ? h->wl.turn_input : h->wl.turn_output)[k] = x;
        }
    }
    if (f && f->type == TRC_F_LAYERS) h->nlayers = (int)n;
    if (f && f->type != TRC_F_LAYERS) nturn_lists[f->type == TRC_F_TURNS_OUT] = n;
    return 0;
}

/* One header field: kind, name, value; a known name must have its kind and
 * appear once (seen), an unknown one is skipped. */
static int parse_field(trc_reader *r, cur *c, unsigned char seen[256], uint64_t nturn_lists[2])
{
    trc_header *h = &r->h;
    unsigned kind = 0;
    uint64_t nl = 0;
    const uint8_t *name = NULL;
    const size_t at = c->pos;
    if (rd_u8(c, &kind, "field kind") || rd_max(c, &nl, 64, "field name length") || rd_bytes(c, (size_t)nl, &name, "field name"))
        return -1;
    const trc_field *f = field_find((const char *)name, (size_t)nl);
    if (f && trc_field_kind(f->type) != (int)kind) {
        c->pos = at;
        return bad(c, "%s: field kind %llu, expected %llu", f->name, kind, (unsigned)trc_field_kind(f->type));
    }
    if (f && seen[f - trc_fields]++)
        return kv_errf(c->err, "%s: offset %zu: %s: duplicate field, expected each name once", c->r->name, at, f->name);
    uint64_t v = 0, n = 0;
    const uint8_t *s = NULL;
    const size_t vat = c->pos;
    char *base = f ? (char *)h + f->off : NULL;
    switch (kind) {
    case TRC_K_INT:
        if (rd_var(c, &v, "integer field")) return -1;
        return f ? put_int_field(c, f, base, v, vat) : 0;
    case TRC_K_F64:
        if (rd_bytes(c, 8, &s, "f64 field")) return -1;
        if (f) { v = trc_rd64(s); memcpy(base, &v, 8); }
        return 0;
    case TRC_K_STR:
        if (rd_max(c, &n, 4096, "string length") || rd_bytes(c, (size_t)n, &s, "string")) return -1;
        return f && parse_string_field(c, f, h, s, (size_t)n, vat) ? -1 : 0;
    case TRC_K_LIST:
        return parse_list_field(c, f, h, vat, nturn_lists);
    default:
        c->pos = at;
        return bad(c, "%s: unknown field kind %llu, expected 1..%llu", "header", kind, 4);
    }
}

/* The decoded header's shapes against each other and the file's size; sets
 * G, d, version and the token count the records may reach. */
static int check_header(trc_reader *r, cur *c, const uint64_t nturn_lists[2])
{
    trc_header *h = &r->h;
    kv_err e2;
    const mdl_model *m = &h->model;
    if (strcmp(h->format, "kvsim-trace"))
        return kv_errf(c->err, "%s: header: format '%s', expected 'kvsim-trace'", r->name, h->format);
    if (mdl_model_check(m, r->name, &e2) != 0)
        return kv_errf(c->err, "%s: header: %s", r->name, e2.msg);
    h->G = mdl_group_size(m);
    h->d = m->head_dim;
    h->version = TRC_VERSION;
    const rkv_params *p = &h->params;
    const char *why = NULL;
    if (h->kv_heads != m->num_key_value_heads) why = "kv_heads differs from model.num_key_value_heads";
    else if (h->G > 64 || h->d > 512) why = "G must be at most 64 and d at most 512";
    else if (p->d != h->d || p->G != h->G) why = "d and G must match the model";
    else if (h->batch < 1 || h->batch > (1 << 20)) why = "batch must be between 1 and 2^20";
    else if (h->steps < 1 || h->steps > (1 << 24)) why = "steps must be between 1 and 2^24";
    else if (h->nlayers < 1 || h->layers[h->nlayers - 1] >= m->num_hidden_layers) why = "layers must be model layers";
    else if (h->kv_page_tokens != TRC_KV_PAGE_TOKENS || h->sector_bytes != TRC_SECTOR_BYTES) why = "layout must be 16-token pages, 32-byte sectors";
    else if (h->fidelity != 0 && h->fidelity != 1) why = "fidelity must be 0 or 1";
    else if (p->S < 1 || p->S >= INT32_MAX) why = "S must be between 1 and 2^31-1";
    else if (h->wl.nturns < 0 || h->wl.nturns > RKV_MAX_TURNS || nturn_lists[0] != (uint64_t)h->wl.nturns ||
             nturn_lists[1] != (uint64_t)h->wl.nturns) why = "workload.nturns must match its turn lists";
    else if ((uint64_t)h->batch * (uint64_t)(h->steps + 1) * 9 > r->n) why = "batch x steps blocks cannot fit in the file";
    if (why)
        return kv_errf(c->err, "%s: header: %s", r->name, why);
    int64_t tok = h->wl.nturns ? 0 : p->S + h->steps;
    for (int t = 0; t < h->wl.nturns; t++) {
        if (h->wl.turn_input[t] < 0 || h->wl.turn_output[t] < 0 || h->wl.turn_input[t] > INT32_MAX || h->wl.turn_output[t] > INT32_MAX)
            return kv_errf(c->err, "%s: header: turn lengths must be between 0 and 2^31-1", r->name);
        tok += h->wl.turn_input[t] + h->wl.turn_output[t];
    }
    if (tok > INT32_MAX)
        return kv_errf(c->err, "%s: header: %lld tokens exceed 2^31-1 positions", r->name, (long long)tok);
    r->max_tok = tok;
    return 0;
}

static int parse_header(trc_reader *r, cur *c)
{
    uint64_t nf, nturn_lists[2] = {0, 0};
    unsigned char seen[256] = {0};
    if (rd_max(c, &nf, 4096, "header field count") != 0)
        return -1;
    for (uint64_t i = 0; i < nf; i++)
        if (parse_field(r, c, seen, nturn_lists) != 0)
            return -1;
    if (at_end(c, "header fields"))
        return -1;
    for (size_t i = 0; i < trc_nfields; i++)
        if (!seen[i])
            return kv_errf(c->err, "%s: header: required field '%s' is missing", r->name, trc_fields[i].name);
    return check_header(r, c, nturn_lists);
}

/* ------------------------------------------------------------ open */
int trc_open_mem(const void *data, size_t n, const char *name, trc_reader **out, kv_err *err)
{
    *out = NULL;
    trc_reader *r = calloc(1, sizeof *r);
    if (!r)
        return kv_errf(err, "%s: out of memory", name);
    r->data = data;
    r->n = n;
    r->limit = (int64_t)1 << 28;
    snprintf(r->name, sizeof r->name, "%s", name);
    cur c = {.r = r, .err = err};
    const uint8_t *d = data;
    if (n < 12 + 9 + 16) {
        kv_errf(err, "%s: offset %zu: file ends after %zu bytes, expected at least 37 (magic, version, header, footer)", name, n, n);
        goto fail;
    }
    if (memcmp(d, TRC_MAGIC, 8)) {
        kv_errf(err, "%s: offset 0: magic is not \"KVSIMTRC\" (not a kvsim trace)", name);
        goto fail;
    }
    if (trc_rd32(d + 8) != TRC_VERSION) {
        kv_errf(err, "%s: offset 8: format version %u, expected %d", name, trc_rd32(d + 8), TRC_VERSION);
        goto fail;
    }
    const uint8_t *f = d + n - 16;
    if (memcmp(f + 8, TRC_FOOTER_MAGIC, 4) || (trc_rd32(f + 12) != trc_crc32c(0, f, 12) && !TRC_FUZZ_SKIP_CRC)) {
        kv_errf(err, "%s: offset %zu: footer (index offset, \"KTRE\", CRC32C) missing or damaged: truncated or not closed", name, n - 16);
        goto fail;
    }
    const uint64_t index_off = trc_rd64(f);
    if (block_at(r, 12, TRC_BLK_HEADER, &c, err) || parse_header(r, &c))
        goto fail;
    const size_t after_header = c.end + 4;
    if (index_off >= n - 16 || index_off < after_header) {
        kv_errf(err, "%s: offset %zu: index offset %llu, expected between %zu and %zu", name, n - 16,
                (unsigned long long)index_off, after_header, n - 17);
        goto fail;
    }
    if (block_at(r, index_off, TRC_BLK_INDEX, &c, err))
        goto fail;
    if (c.end + 4 != n - 16) {
        kv_errf(err, "%s: offset %zu: index block ends at %zu, expected the footer to follow at %zu", name, c.end, c.end + 4, n - 16);
        goto fail;
    }
    const trc_header *h = &r->h;
    uint64_t v = 0;
    if (rd_var(&c, &v, "index batch")) goto fail;
    if (v != (uint64_t)h->batch) { bad(&c, "%s: %llu sequences, expected the header's %llu", "index", v, (unsigned)h->batch); goto fail; }
    if (rd_var(&c, &v, "index steps")) goto fail;
    if (v != (uint64_t)h->steps) { bad(&c, "%s: %llu steps, expected the header's %llu", "index", v, (unsigned long long)h->steps); goto fail; }
    r->s1_off = malloc((size_t)h->batch * 8);
    r->d_off = malloc((size_t)h->batch * (size_t)h->steps * 8);
    if (!r->s1_off || !r->d_off) {
        kv_errf(err, "%s: out of memory for the index", name);
        goto fail;
    }
    for (size_t i = 0; i < (size_t)h->batch * (size_t)(h->steps + 1); i++) {
        if (rd_var(&c, &v, "index offset")) goto fail;
        if (i < (size_t)h->batch) r->s1_off[i] = v;
        else r->d_off[i - (size_t)h->batch] = v;
    }
    /* Blocks tile the file: header, then per sequence S, D.., then the index. */
    uint64_t expect = after_header;
    for (int s = 0; s < h->batch; s++)
        for (int64_t k = -1; k < h->steps; k++) {
            v = k < 0 ? r->s1_off[s] : r->d_off[(size_t)s * (size_t)h->steps + (size_t)k];
            if (v != expect) {
                kv_errf(err, "%s: offset %llu: index: block offset %llu for sequence %d step %lld, expected %llu (blocks follow each other)",
                        name, (unsigned long long)index_off, (unsigned long long)v, s, (long long)k, (unsigned long long)expect);
                goto fail;
            }
            cur b;
            if (block_at(r, v, k < 0 ? TRC_BLK_STAGE1 : TRC_BLK_STEP, &b, err)) goto fail;
            expect = b.end + 4;
        }
    if (at_end(&c, "index")) goto fail;
    if (expect != index_off) {
        kv_errf(err, "%s: offset %llu: %llu unindexed bytes before the index", name, (unsigned long long)expect,
                (unsigned long long)(index_off - expect));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    trc_close(r);
    return -1;
}

/* The reader loads the whole file, so it takes only a regular file (never a
 * device or fifo that reads without end) and reads exactly its size. */
int trc_open(const char *path, trc_reader **out, kv_err *err)
{
    *out = NULL;
    struct stat st;
    if (kv_in_check(path, TRC_MAX_FILE_BYTES, err) != 0 || stat(path, &st) != 0)
        return -1;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    const size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) { fclose(fp); return kv_errf(err, "%s: out of memory for %zu bytes", path, n); }
    size_t got = fread(buf, 1, n, fp);
    int rerr = ferror(fp), grew = got == n && fgetc(fp) != EOF;
    fclose(fp);
    if (rerr || got != n || grew) {
        free(buf);
        return kv_errf(err, "%s: %s", path, rerr ? "read error" : "the file changed size while it was read");
    }
    if (trc_open_mem(buf, n, path, out, err) != 0) { free(buf); return -1; }
    (*out)->owned = buf;
    return 0;
}

void trc_close(trc_reader *r)
{
    if (!r) return;
    free(r->owned);
    free(r->s1_off);
    free(r->d_off);
    free(r);
}

const trc_header *trc_get_header(const trc_reader *r) { return &r->h; }
size_t trc_file_bytes(const trc_reader *r) { return r->n; }
void trc_set_limit(trc_reader *r, int64_t max_positions) { r->limit = max_positions; }

/* ------------------------------------------------------------ blocks */
typedef struct {
    int32_t **buf;
    size_t *cap, used;
    int64_t limit;
} ibuf;

static int ibuf_grow(cur *c, ibuf *b, uint64_t extra)
{
    if ((int64_t)(b->used + extra) > b->limit)
        return bad(c, "%s: block decodes to more than %llu positions (limit %llu)", "record", b->used + extra, (unsigned long long)b->limit);
    if (b->used + extra <= *b->cap && *b->buf) return 0; /* never NULL, even for empty lists */
    size_t cap = *b->cap ? *b->cap : 4096;
    while (cap < b->used + extra) cap *= 2;
    int32_t *p = realloc(*b->buf, cap * 4);
    if (!p) return kv_errf(c->err, "%s: out of memory decoding a block", c->r->name);
    *b->buf = p;
    *b->cap = cap;
    return 0;
}

/* One position list; positions < lim. Returns the offset in b of its first. */
static int rd_poslist(cur *c, ibuf *b, int64_t lim, int64_t *count, size_t *off)
{
    uint64_t n, v, e;
    if (rd_max(c, &n, (uint64_t)lim, "position count") || ibuf_grow(c, b, n))
        return -1;
    *off = b->used;
    int32_t *p = *b->buf + b->used;
    const uint8_t *d = c->r->data;
    const size_t end = c->end;
    const uint64_t L = (uint64_t)lim;
    size_t pos = c->pos; /* kept in a register; c->pos is synced around slow paths */
    uint64_t got = 0, next = 0;
    while (got < n) {
        const size_t at = pos;
        if (pos < end && d[pos] < 0x80) {
            v = d[pos++];
        } else {
            c->pos = pos;
            if (rd_var_slow(c, &v, "position item")) return -1;
            pos = c->pos;
        }
        uint64_t len = 1;
        if (v & 1) {
            if (pos < end && d[pos] < 0x80) {
                e = d[pos++];
            } else {
                c->pos = pos;
                if (rd_var_slow(c, &e, "run length")) return -1;
                pos = c->pos;
            }
            if (e > n - got || e + 2 > n - got) {
                c->pos = at;
                return bad(c, "%s: run of %llu+2 positions overflows the count (%llu left)", "position list", e, n - got);
            }
            len = e + 2;
        }
        const uint64_t start = next + (v >> 1);
        if ((v >> 1) >= L || start + len > L) {
            c->pos = at;
            return bad(c, "%s: position %llu out of range, expected below %llu", "position list",
                       (v >> 1) >= L ? v >> 1 : start + len - 1, (unsigned long long)lim);
        }
        int32_t *q = p + got, x = (int32_t)start;
        for (uint64_t k = 0; k < len; k++) q[k] = x + (int32_t)k;
        got += len;
        next = start + len;
    }
    c->pos = pos;
    *count = (int64_t)n;
    b->used += n;
    return 0;
}

static int grow_offs(cur *c, size_t **offs, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t *p = realloc(*offs, need * sizeof *p);
    if (!p) return kv_errf(c->err, "%s: out of memory", c->r->name);
    *offs = p;
    *cap = need;
    return 0;
}

static int check_id(cur *c, uint64_t got, uint64_t want, const char *what)
{
    if (got == want) return 0;
    return bad(c, "%s %llu, expected %llu", what, got, want);
}

/* A record's dims bitmaps (ndim_rows of them, ndims bits set below d each)
 * into b; offs[64 + k] receives row k's offset. fat: the flags' offset. */
static int read_dims(const trc_reader *r, cur *c, ibuf *b, trc_record *x, size_t *offs, size_t fat, kv_err *err)
{
    const trc_header *h = &r->h;
    uint64_t u;
    if (rd_max(c, &u, (uint64_t)h->d, "ndims")) return -1;
    x->ndims = (int64_t)u;
    if (x->ndims == 0 && x->dims_shared) return kv_errf(err, "%s: offset %zu: record flags: dims_shared set with 0 dims", r->name, fat);
    x->ndim_rows = x->ndims == 0 ? 0 : x->dims_shared ? 1 : h->G;
    const size_t nb = (size_t)(h->d + 7) / 8;
    for (int k = 0; k < x->ndim_rows; k++) {
        const uint8_t *bm = NULL;
        const size_t at = c->pos;
        if (rd_bytes(c, nb, &bm, "dims bitmap") || ibuf_grow(c, b, (uint64_t)h->d)) return -1;
        offs[64 + k] = b->used;
        int64_t cnt = 0;
        for (int dd = 0; dd < (int)nb * 8; dd++)
            if (bm[dd >> 3] >> (dd & 7) & 1) {
                if (dd >= h->d) { c->pos = at; return bad(c, "%s: dim %llu set, expected below d = %llu", "dims bitmap", (unsigned)dd, (unsigned)h->d); }
                (*b->buf)[b->used + (size_t)cnt++] = dd;
            }
        if (cnt != x->ndims) { c->pos = at; return bad(c, "%s: %llu dims set, expected ndims = %llu", "dims bitmap", (unsigned long long)cnt, (unsigned long long)x->ndims); }
        b->used += (size_t)cnt;
    }
    return 0;
}

/* Record i of a step block (layer, KV head, flags, counts, bytes, position
 * lists, dims, fidelity), every field checked; positions below ntok. */
static int read_record(const trc_reader *r, cur *c, ibuf *b, int i, int64_t ntok, trc_record *x, size_t *offs,
                       int64_t *npos, kv_err *err)
{
    const trc_header *h = &r->h;
    const int G = h->G;
    const uint64_t big = (uint64_t)1 << 62;
    unsigned flags = 0;
    uint64_t cat[6], tc[3], u, v = 0;
    if (rd_var(c, &v, "layer") || check_id(c, v, (uint64_t)h->layers[i / h->kv_heads], "layer")) return -1;
    if (rd_var(c, &v, "KV head") || check_id(c, v, (uint64_t)(i % h->kv_heads), "KV head")) return -1;
    x->layer = h->layers[i / h->kv_heads];
    x->kv_head = i % h->kv_heads;
    const size_t fat = c->pos;
    if (rd_u8(c, &flags, "flags")) return -1;
    if ((flags & ~7u) || !!(flags & 4) != h->fidelity) {
        c->pos = fat;
        return bad(c, "%s 0x%02llx, expected bits 0-2 only and bit 2 = %llu (header fidelity)", "record flags", flags, (unsigned)h->fidelity);
    }
    x->shared = flags & 1;
    x->dims_shared = !!(flags & 2);
    x->has_fid = !!(flags & 4);
    if (rd_max(c, &u, (uint64_t)ntok, "cache_tokens")) return -1;
    x->cache_tokens = (int64_t)u;
    if (rd_max(c, &u, (uint64_t)ntok, "pages_scored")) return -1;
    x->pages_scored = (int64_t)u;
    for (int k = 0; k < 6; k++) if (rd_max(c, &cat[k], big, "bytes")) return -1;
    for (int k = 0; k < 3; k++) if (rd_max(c, &tc[k], big, "sectors/pages")) return -1;
    x->bytes = (rkv_traffic){(int64_t)cat[0], (int64_t)cat[1], (int64_t)cat[2], (int64_t)cat[3], (int64_t)cat[4], (int64_t)cat[5]};
    x->sectors_kv = (int64_t)tc[0];
    x->sectors_aux = (int64_t)tc[1];
    x->pages_kv = (int64_t)tc[2];
    x->nrows = x->shared ? 1 : G;
    const size_t pl0 = c->pos;
    for (int k = 0; k < x->nrows; k++) {
        if (rd_poslist(c, b, ntok, &x->count[k], &offs[k])) return -1;
        *npos += x->count[k];
    }
    x->poslist_bytes = (int64_t)(c->pos - pl0);
    if (read_dims(r, c, b, x, offs, fat, err)) return -1;
    if (x->has_fid) {
        const uint8_t *fb = NULL;
        if (rd_bytes(c, (size_t)G * RKV_FID_N * 4, &fb, "fidelity")) return -1;
        for (int g = 0; g < G; g++)
            for (int m = 0; m < RKV_FID_N; m++) {
                uint32_t w32 = trc_rd32(fb + ((size_t)g * RKV_FID_N + (size_t)m) * 4);
                memcpy(&x->fid[g][m], &w32, 4);
            }
    }
    return 0;
}

int trc_read_step(trc_reader *r, int seq, int64_t step, trc_step *st, kv_err *err)
{
    const trc_header *h = &r->h;
    if (seq < 0 || seq >= h->batch || step < 0 || step >= h->steps)
        return kv_errf(err, "%s: sequence %d step %lld: the trace has %d sequences of %lld steps", r->name, seq,
                       (long long)step, h->batch, (long long)h->steps);
    cur c;
    const uint64_t boff = r->d_off[(size_t)seq * (size_t)h->steps + (size_t)step];
    if (block_at(r, boff, TRC_BLK_STEP, &c, err)) return -1;
    /* the whole block: type, length, payload, CRC32C (before the cursor moves) */
    const int64_t block_bytes = (int64_t)(c.end - c.pos) + 9;
    const int nrec = h->nlayers * h->kv_heads;
    uint64_t v = 0, pos = 0;
    if (rd_var(&c, &v, "sequence") || check_id(&c, v, (uint64_t)seq, "sequence")) return -1;
    if (rd_var(&c, &v, "step") || check_id(&c, v, (uint64_t)step, "step")) return -1;
    if (rd_max(&c, &pos, (uint64_t)r->max_tok - 1, "position")) return -1;
    if (nrec > st->nrec) {
        trc_record *nr = realloc(st->rec, (size_t)nrec * sizeof *nr);
        if (!nr) return kv_errf(err, "%s: out of memory", r->name);
        st->rec = nr;
    }
    if (grow_offs(&c, &st->offs, &st->offs_cap, (size_t)nrec * 128)) return -1;
    st->nrec = nrec;
    st->seq = seq;
    st->step = step;
    st->position = (int64_t)pos;
    st->block_bytes = block_bytes;
    ibuf b = {&st->buf, &st->buf_cap, 0, r->limit};
    int64_t npos = 0;
    for (int i = 0; i < nrec; i++)
        if (read_record(r, &c, &b, i, (int64_t)pos + 1, &st->rec[i], st->offs + (size_t)i * 128, &npos, err))
            return -1;
    if (at_end(&c, "last record")) return -1;
    for (int i = 0; i < nrec; i++) { /* buffers may have moved while growing */
        trc_record *x = &st->rec[i];
        const size_t *offs = st->offs + (size_t)i * 128;
        for (int k = 0; k < x->nrows; k++) x->pos[k] = st->buf + offs[k];
        for (int k = 0; k < x->ndim_rows; k++) x->dims[k] = st->buf + offs[64 + k];
    }
    st->positions = npos;
    return 0;
}

void trc_step_free(trc_step *st)
{
    if (!st) return;
    free(st->rec);
    free(st->buf);
    free(st->offs);
    memset(st, 0, sizeof *st);
}

const trc_record *trc_step_find(const trc_reader *r, const trc_step *st, int layer, int kv_head)
{
    for (int i = 0; i < r->h.nlayers; i++)
        if (r->h.layers[i] == layer && kv_head >= 0 && kv_head < r->h.kv_heads)
            return i * r->h.kv_heads + kv_head < st->nrec ? &st->rec[i * r->h.kv_heads + kv_head] : NULL;
    return NULL;
}

static int stage1_decode(trc_reader *r, int seq, trc_stage1 *s1, kv_err *err)
{
    const trc_header *h = &r->h;
    if (seq < 0 || seq >= h->batch)
        return kv_errf(err, "%s: sequence %d: the trace has %d sequences", r->name, seq, h->batch);
    cur c;
    if (block_at(r, r->s1_off[seq], TRC_BLK_STAGE1, &c, err)) return -1;
    const int nrec = h->nlayers * h->kv_heads;
    uint64_t v = 0;
    if (rd_var(&c, &v, "sequence") || check_id(&c, v, (uint64_t)seq, "sequence")) return -1;
    if (nrec > s1->nrec) {
        trc_stage1_rec *nr = realloc(s1->rec, (size_t)nrec * sizeof *nr);
        if (!nr) return kv_errf(err, "%s: out of memory", r->name);
        s1->rec = nr;
    }
    if (grow_offs(&c, &s1->offs, &s1->offs_cap, (size_t)nrec * 64)) return -1;
    s1->nrec = nrec;
    s1->seq = seq;
    ibuf b = {&s1->buf, &s1->buf_cap, 0, r->limit};
    for (int i = 0; i < nrec; i++) {
        trc_stage1_rec *x = &s1->rec[i];
        if (rd_var(&c, &v, "layer") || check_id(&c, v, (uint64_t)h->layers[i / h->kv_heads], "layer")) return -1;
        if (rd_var(&c, &v, "KV head") || check_id(&c, v, (uint64_t)(i % h->kv_heads), "KV head")) return -1;
        const size_t at = c.pos;
        if (rd_var(&c, &v, "rows")) return -1;
        if (v != 1 && v != (uint64_t)h->G) { c.pos = at; return bad(&c, "%s %llu, expected 1 or G = %llu", "stage-1 rows", v, (unsigned)h->G); }
        x->nrows = (int)v;
        for (int k = 0; k < x->nrows; k++)
            if (rd_poslist(&c, &b, h->params.S, &x->count[k], &s1->offs[(size_t)i * 64 + (size_t)k])) return -1;
    }
    if (at_end(&c, "last stage-1 record")) return -1;
    for (int i = 0; i < nrec; i++)
        for (int k = 0; k < s1->rec[i].nrows; k++) s1->rec[i].pos[k] = s1->buf + s1->offs[(size_t)i * 64 + (size_t)k];
    return 0;
}

/* A refused block leaves s1 freed and zeroed (its buffers were grown for
 * records that are now invalid), so no caller path can leak them. */
int trc_read_stage1(trc_reader *r, int seq, trc_stage1 *s1, kv_err *err)
{
    if (stage1_decode(r, seq, s1, err) == 0)
        return 0;
    trc_stage1_free(s1);
    return -1;
}

void trc_stage1_free(trc_stage1 *s1)
{
    if (!s1) return;
    free(s1->rec);
    free(s1->buf);
    free(s1->offs);
    memset(s1, 0, sizeof *s1);
}
