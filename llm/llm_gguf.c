/* llm_gguf.c — the strict GGUF v2/v3 reader and the ggml dequantisers (see
 * llm_gguf.h). Layout of a file (all little-endian):
 *
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv × { string key | u32 value type | value }
 *        string = u64 length | bytes;  array = u32 elem type | u64 count | elems
 *   n_tensors × { string name | u32 n_dims | n_dims × u64 ne | u32 type | u64 offset }
 *   padding to general.alignment | tensor data (offsets relative to here)
 *
 * Every read goes through a cursor that knows how many bytes remain, so a
 * count or length can never walk past the end; allocations are bounded by
 * what the remaining bytes could hold. */
#include "llm_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const uint8_t *b;
    size_t size, pos;
    const char *name;
    kv_err *err;
} cursor;

static int fail(cursor *c, size_t at, const char *what)
{
    return kv_errf(c->err, "%s: offset 0x%zx: %s", c->name, at, what);
}

static int need(cursor *c, size_t n, const char *what)
{
    if (c->size - c->pos < n) {
        char m[300];
        snprintf(m, sizeof m, "file ends (%zu bytes left) where %s (%zu bytes) was expected", c->size - c->pos, what, n);
        return fail(c, c->pos, m);
    }
    return 0;
}

static int rd(cursor *c, void *dst, size_t n, const char *what)
{
    if (need(c, n, what) != 0)
        return -1;
    memcpy(dst, c->b + c->pos, n);
    c->pos += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static int rd_str(cursor *c, llm_gguf_str *s, const char *what)
{
    size_t at = c->pos;
    uint64_t n;
    if (rd_u64(c, &n, what) != 0)
        return -1;
    if (n > c->size - c->pos) {
        char m[300];
        snprintf(m, sizeof m, "%s: length %llu exceeds the %zu bytes left in the file", what, (unsigned long long)n,
                 c->size - c->pos);
        return fail(c, at, m);
    }
    s->p = (const char *)c->b + c->pos;
    s->n = n;
    c->pos += (size_t)n;
    return 0;
}

static char *str_dup(const llm_gguf_str *s)
{
    char *r = malloc((size_t)s->n + 1);
    if (r) {
        memcpy(r, s->p, (size_t)s->n);
        r[s->n] = '\0';
    }
    return r;
}

static const size_t vt_size[LLM_GGUF_VT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const vt_names[LLM_GGUF_VT_COUNT] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                                    "bool", "string", "array", "uint64", "int64", "float64"};

const char *llm_gguf_vtype_name(llm_gguf_vtype t) { return (unsigned)t < LLM_GGUF_VT_COUNT ? vt_names[t] : "?"; }

/* ---- tensor types ---- */
typedef struct {
    const char *name;
    int64_t block, bytes;
} type_info;

static const type_info types[LLM_GGUF_T_COUNT] = {
    [LLM_GGUF_T_F32] = {"F32", 1, 4},       [LLM_GGUF_T_F16] = {"F16", 1, 2},       [LLM_GGUF_T_Q4_0] = {"Q4_0", 32, 18},
    [LLM_GGUF_T_Q4_1] = {"Q4_1", 32, 20},   [LLM_GGUF_T_Q5_0] = {"Q5_0", 32, 22},   [LLM_GGUF_T_Q5_1] = {"Q5_1", 32, 24},
    [LLM_GGUF_T_Q8_0] = {"Q8_0", 32, 34},   [LLM_GGUF_T_Q8_1] = {"Q8_1", 32, 36},   [LLM_GGUF_T_Q2_K] = {"Q2_K", 256, 84},
    [LLM_GGUF_T_Q3_K] = {"Q3_K", 256, 110}, [LLM_GGUF_T_Q4_K] = {"Q4_K", 256, 144}, [LLM_GGUF_T_Q5_K] = {"Q5_K", 256, 176},
    [LLM_GGUF_T_Q6_K] = {"Q6_K", 256, 210}, [LLM_GGUF_T_Q8_K] = {"Q8_K", 256, 292}, [LLM_GGUF_T_I8] = {"I8", 1, 1},
    [LLM_GGUF_T_I16] = {"I16", 1, 2},       [LLM_GGUF_T_I32] = {"I32", 1, 4},       [LLM_GGUF_T_I64] = {"I64", 1, 8},
    [LLM_GGUF_T_F64] = {"F64", 1, 8},       [LLM_GGUF_T_BF16] = {"BF16", 1, 2},
};

const char *llm_gguf_type_name(llm_gguf_type t) { return (unsigned)t < LLM_GGUF_T_COUNT && types[t].name ? types[t].name : "?"; }

int llm_gguf_type_dequantizable(llm_gguf_type t)
{
    switch (t) {
    case LLM_GGUF_T_F32: case LLM_GGUF_T_F16: case LLM_GGUF_T_BF16: case LLM_GGUF_T_Q4_0: case LLM_GGUF_T_Q4_1:
    case LLM_GGUF_T_Q8_0: case LLM_GGUF_T_Q4_K: case LLM_GGUF_T_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* ---- metadata ---- */
static int read_scalar(cursor *c, llm_gguf_vtype t, llm_gguf_kv *kv)
{
    uint8_t buf[8] = {0};
    if (rd(c, buf, vt_size[t], vt_names[t]) != 0)
        return -1;
    switch (t) {
    case LLM_GGUF_VT_UINT8: kv->v.u = buf[0]; break;
    case LLM_GGUF_VT_INT8: kv->v.i = (int8_t)buf[0]; break;
    case LLM_GGUF_VT_UINT16: { uint16_t x; memcpy(&x, buf, 2); kv->v.u = x; break; }
    case LLM_GGUF_VT_INT16: { int16_t x; memcpy(&x, buf, 2); kv->v.i = x; break; }
    case LLM_GGUF_VT_UINT32: { uint32_t x; memcpy(&x, buf, 4); kv->v.u = x; break; }
    case LLM_GGUF_VT_INT32: { int32_t x; memcpy(&x, buf, 4); kv->v.i = x; break; }
    case LLM_GGUF_VT_FLOAT32: { float x; memcpy(&x, buf, 4); kv->v.f = x; break; }
    case LLM_GGUF_VT_UINT64: memcpy(&kv->v.u, buf, 8); break;
    case LLM_GGUF_VT_INT64: memcpy(&kv->v.i, buf, 8); break;
    case LLM_GGUF_VT_FLOAT64: memcpy(&kv->v.f, buf, 8); break;
    case LLM_GGUF_VT_BOOL:
        if (buf[0] > 1)
            return fail(c, c->pos - 1, "bool value: expected 0 or 1");
        kv->v.u = buf[0];
        break;
    default:
        return -1;
    }
    return 0;
}

static int read_kv(cursor *c, llm_gguf_kv *kv)
{
    char m[600];
    llm_gguf_str key;
    kv->offset = c->pos;
    if (rd_str(c, &key, "metadata key") != 0)
        return -1;
    if (key.n == 0)
        return fail(c, (size_t)kv->offset, "metadata key: expected a non-empty string");
    if (memchr(key.p, '\0', (size_t)key.n))
        return fail(c, (size_t)kv->offset, "metadata key: contains a NUL byte");
    if (!(kv->key = str_dup(&key)))
        return kv_errf(c->err, "out of memory");
    uint32_t t;
    size_t tat = c->pos;
    if (rd_u32(c, &t, "metadata value type") != 0)
        return -1;
    if (t >= LLM_GGUF_VT_COUNT) {
        snprintf(m, sizeof m, "key '%.200s': value type %u: expected 0..12", kv->key, t);
        return fail(c, tat, m);
    }
    kv->type = (llm_gguf_vtype)t;
    if (t == LLM_GGUF_VT_STRING)
        return rd_str(c, &kv->s, "string value");
    if (t != LLM_GGUF_VT_ARRAY)
        return read_scalar(c, kv->type, kv);
    uint32_t et;
    uint64_t n;
    tat = c->pos;
    if (rd_u32(c, &et, "array element type") != 0 || rd_u64(c, &n, "array length") != 0)
        return -1;
    if (et >= LLM_GGUF_VT_COUNT || et == LLM_GGUF_VT_ARRAY) {
        snprintf(m, sizeof m, "key '%.200s': array element type %u: expected a scalar or string type (0..8, 10..12)",
                 kv->key, et);
        return fail(c, tat, m);
    }
    kv->arr_type = (llm_gguf_vtype)et;
    kv->arr_n = n;
    size_t left = c->size - c->pos;
    if (et == LLM_GGUF_VT_STRING) {
        if (n > left / 8) {
            snprintf(m, sizeof m, "key '%.200s': %llu strings cannot fit in the %zu bytes left", kv->key,
                     (unsigned long long)n, left);
            return fail(c, tat + 4, m);
        }
        kv->strs = malloc((size_t)(n ? n : 1) * sizeof *kv->strs);
        if (!kv->strs)
            return kv_errf(c->err, "out of memory");
        for (uint64_t i = 0; i < n; i++)
            if (rd_str(c, &kv->strs[i], "array string") != 0)
                return -1;
        return 0;
    }
    if (n > left / vt_size[et]) {
        snprintf(m, sizeof m, "key '%.200s': %llu elements of %zu bytes exceed the %zu bytes left", kv->key,
                 (unsigned long long)n, vt_size[et], left);
        return fail(c, tat + 4, m);
    }
    kv->arr = c->b + c->pos;
    if (et == LLM_GGUF_VT_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (c->b[c->pos + i] > 1)
                return fail(c, c->pos + (size_t)i, "bool array element: expected 0 or 1");
    c->pos += (size_t)(n * vt_size[et]);
    return 0;
}

/* ---- tensor infos ---- */
static int read_tensor_info(cursor *c, llm_gguf_tensor *t)
{
    char m[600];
    llm_gguf_str name;
    t->info_offset = c->pos;
    if (rd_str(c, &name, "tensor name") != 0)
        return -1;
    if (name.n == 0 || memchr(name.p, '\0', (size_t)name.n))
        return fail(c, (size_t)t->info_offset, "tensor name: expected a non-empty string without NUL bytes");
    if (!(t->name = str_dup(&name)))
        return kv_errf(c->err, "out of memory");
    uint32_t nd;
    size_t at = c->pos;
    if (rd_u32(c, &nd, "tensor n_dims") != 0)
        return -1;
    if (nd < 1 || nd > 4) {
        snprintf(m, sizeof m, "tensor '%.200s': n_dims %u: expected 1..4", t->name, nd);
        return fail(c, at, m);
    }
    t->n_dims = (int)nd;
    t->nelem = 1;
    for (int i = 0; i < 4; i++)
        t->ne[i] = 1;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t ne;
        at = c->pos;
        if (rd_u64(c, &ne, "tensor dimension") != 0)
            return -1;
        if (ne < 1 || ne > (uint64_t)INT64_MAX / (uint64_t)t->nelem) {
            snprintf(m, sizeof m, "tensor '%.200s': dimension %u = %llu: expected >= 1 with a total below 2^63",
                     t->name, i, (unsigned long long)ne);
            return fail(c, at, m);
        }
        t->ne[i] = (int64_t)ne;
        t->nelem *= (int64_t)ne;
    }
    uint32_t ty;
    at = c->pos;
    if (rd_u32(c, &ty, "tensor type") != 0)
        return -1;
    if (ty >= LLM_GGUF_T_COUNT || !types[ty].name) {
        snprintf(m, sizeof m, "tensor '%.200s': type %u: expected a known ggml type", t->name, ty);
        return fail(c, at, m);
    }
    t->type = (llm_gguf_type)ty;
    const int64_t blk = types[ty].block;
    if (t->ne[0] % blk != 0) {
        snprintf(m, sizeof m, "tensor '%.200s': row length %lld is not a multiple of the %s block (%lld)", t->name,
                 (long long)t->ne[0], types[ty].name, (long long)blk);
        return fail(c, at, m);
    }
    const uint64_t nblocks = (uint64_t)(t->nelem / blk);
    if (nblocks > UINT64_MAX / (uint64_t)types[ty].bytes) {
        snprintf(m, sizeof m, "tensor '%.200s': size overflows", t->name);
        return fail(c, at, m);
    }
    t->nbytes = nblocks * (uint64_t)types[ty].bytes;
    return rd_u64(c, &t->offset, "tensor data offset");
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const llm_gguf_tensor *x = *(const llm_gguf_tensor *const *)a, *y = *(const llm_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Duplicate names among n strings (sorted copy). Returns the index of a duplicate or -1. */
static int64_t find_dup(char **names, int64_t n, char ***sorted_out)
{
    char **s = malloc((size_t)(n ? n : 1) * sizeof *s);
    if (!s)
        return -2;
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str);
    int64_t dup = -1;
    for (int64_t i = 1; i < n && dup < 0; i++)
        if (!strcmp(s[i - 1], s[i]))
            dup = i;
    *sorted_out = s;
    return dup;
}

/* Long by design: it reads the file in its own order (header, key/values,
 * tensor infos, alignment, data) with a bounds check at every field; split,
 * each part would carry the same cursor and repeat the checks. */
int llm_gguf_parse(const void *buf, size_t n, const char *name, llm_gguf_file **out, kv_err *err)
{
    char m[600];
    *out = NULL;
    llm_gguf_file *g = calloc(1, sizeof *g);
    if (!g)
        return kv_errf(err, "out of memory");
    snprintf(g->path, sizeof g->path, "%s", name);
    g->base = buf;
    g->size = n;
    cursor c = {.b = buf, .size = n, .pos = 0, .name = g->path, .err = err};
    uint8_t magic[4];
    uint64_t nt, nkv;
    if (rd(&c, magic, 4, "the magic \"GGUF\"") != 0)
        goto fail;
    if (memcmp(magic, "GGUF", 4) != 0) {
        fail(&c, 0, "expected the magic \"GGUF\" (is this a GGUF model file?)");
        goto fail;
    }
    if (rd_u32(&c, &g->version, "the version") != 0)
        goto fail;
    if (g->version != 2 && g->version != 3) {
        snprintf(m, sizeof m, "version %u: expected 2 or 3", g->version);
        fail(&c, 4, m);
        goto fail;
    }
    if (rd_u64(&c, &nt, "the tensor count") != 0 || rd_u64(&c, &nkv, "the metadata count") != 0)
        goto fail;
    /* each kv needs >= 8 + 1 + 4 + 1 bytes, each tensor info >= 8 + 1 + 4 + 8 + 4 + 8 */
    if (nkv > (n - c.pos) / 14) {
        snprintf(m, sizeof m, "metadata count %llu cannot fit in %zu bytes", (unsigned long long)nkv, n - c.pos);
        fail(&c, 16, m);
        goto fail;
    }
    if (nt > (n - c.pos) / 33) {
        snprintf(m, sizeof m, "tensor count %llu cannot fit in %zu bytes", (unsigned long long)nt, n - c.pos);
        fail(&c, 8, m);
        goto fail;
    }
    g->kv = calloc((size_t)(nkv ? nkv : 1), sizeof *g->kv);
    if (!g->kv) {
        kv_errf(err, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < nkv; i++) {
        g->nkv = (int64_t)i + 1;
        if (read_kv(&c, &g->kv[i]) != 0)
            goto fail;
    }
    g->alignment = 32;
    const llm_gguf_kv *al = llm_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != LLM_GGUF_VT_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0) {
            fail(&c, (size_t)al->offset, "general.alignment: expected a uint32 power of two");
            goto fail;
        }
        g->alignment = al->v.u;
    }
    {
        char **names = malloc((size_t)(g->nkv ? g->nkv : 1) * sizeof *names), **sorted = NULL;
        if (!names) {
            kv_errf(err, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < g->nkv; i++)
            names[i] = g->kv[i].key;
        int64_t d = find_dup(names, g->nkv, &sorted);
        if (d >= 0) {
            const llm_gguf_kv *k2 = NULL;
            for (int64_t i = g->nkv - 1; i >= 0 && !k2; i--)
                if (!strcmp(g->kv[i].key, sorted[d])) k2 = &g->kv[i];
            snprintf(m, sizeof m, "duplicate metadata key '%.200s'", sorted[d]);
            fail(&c, (size_t)k2->offset, m);
        }
        free(names);
        free(sorted);
        if (d != -1) {
            if (d == -2) kv_errf(err, "out of memory");
            goto fail;
        }
    }
    g->tensors = calloc((size_t)(nt ? nt : 1), sizeof *g->tensors);
    if (!g->tensors) {
        kv_errf(err, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < nt; i++) {
        g->ntensors = (int64_t)i + 1;
        if (read_tensor_info(&c, &g->tensors[i]) != 0)
            goto fail;
        if (g->tensors[i].offset % g->alignment != 0) {
            snprintf(m, sizeof m, "tensor '%.200s': data offset %llu: expected a multiple of the alignment %llu",
                     g->tensors[i].name, (unsigned long long)g->tensors[i].offset, (unsigned long long)g->alignment);
            fail(&c, c.pos - 8, m);
            goto fail;
        }
    }
    {
        uint64_t pad = (g->alignment - (uint64_t)c.pos % g->alignment) % g->alignment;
        g->data_offset = (uint64_t)c.pos + pad;
        if (g->ntensors > 0 && g->data_offset > n) {
            fail(&c, c.pos, "file ends inside the padding before the tensor data");
            goto fail;
        }
    }
    {
        /* names unique; data inside the file; no two tensors overlap */
        char **names = malloc((size_t)(g->ntensors ? g->ntensors : 1) * sizeof *names), **sorted = NULL;
        llm_gguf_tensor **byoff = malloc((size_t)(g->ntensors ? g->ntensors : 1) * sizeof *byoff);
        int bad = 0;
        if (!names || !byoff) {
            free(names);
            free(byoff);
            kv_errf(err, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < g->ntensors; i++) {
            names[i] = g->tensors[i].name;
            byoff[i] = &g->tensors[i];
        }
        int64_t d = find_dup(names, g->ntensors, &sorted);
        if (d == -2) {
            kv_errf(err, "out of memory");
            bad = 1;
        } else if (d >= 0) {
            snprintf(m, sizeof m, "duplicate tensor name '%.200s'", sorted[d]);
            fail(&c, (size_t)g->data_offset, m);
            bad = 1;
        }
        const uint64_t data_len = n >= g->data_offset ? n - g->data_offset : 0;
        for (int64_t i = 0; i < g->ntensors && !bad; i++) {
            llm_gguf_tensor *t = &g->tensors[i];
            if (t->offset > data_len || t->nbytes > data_len - t->offset) {
                snprintf(m, sizeof m,
                         "tensor '%.200s': data [%llu, +%llu) lies beyond the %llu bytes of the data section "
                         "(truncated file?)",
                         t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                         (unsigned long long)data_len);
                fail(&c, (size_t)t->info_offset, m);
                bad = 1;
                break;
            }
            t->data = g->base + g->data_offset + t->offset;
        }
        if (!bad) {
            qsort(byoff, (size_t)g->ntensors, sizeof *byoff, cmp_tensor_offset);
            for (int64_t i = 1; i < g->ntensors; i++)
                if (byoff[i - 1]->offset + byoff[i - 1]->nbytes > byoff[i]->offset) {
                    snprintf(m, sizeof m, "tensor '%.200s' overlaps tensor '%.200s'", byoff[i]->name,
                             byoff[i - 1]->name);
                    fail(&c, (size_t)byoff[i]->info_offset, m);
                    bad = 1;
                    break;
                }
        }
        free(names);
        free(sorted);
        free(byoff);
        if (bad)
            goto fail;
    }
    *out = g;
    return 0;
fail:
    llm_gguf_free(g);
    return -1;
}

int llm_gguf_open(const char *path, llm_gguf_file **out, kv_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return kv_errf(err, "%s: cannot open: %s%s", path, strerror(errno),
                       errno == ENOENT ? " (run `make model` for the default model)" : "");
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kv_errf(err, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return kv_errf(err, "%s: offset 0x0: file is empty; expected the magic \"GGUF\"", path);
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return kv_errf(err, "%s: mmap failed: %s", path, strerror(errno));
    if (llm_gguf_parse(p, n, path, out, err) != 0) {
        munmap(p, n);
        return -1;
    }
    (*out)->mapped = 1;
    return 0;
}

void llm_gguf_free(llm_gguf_file *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->nkv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].strs);
    }
    for (int64_t i = 0; i < g->ntensors; i++)
        free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (g->mapped)
        munmap((void *)(uintptr_t)g->base, g->size);
    free(g);
}

const llm_gguf_kv *llm_gguf_find(const llm_gguf_file *g, const char *key)
{
    for (int64_t i = 0; i < g->nkv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const llm_gguf_tensor *llm_gguf_tensor_find(const llm_gguf_file *g, const char *name)
{
    for (int64_t i = 0; i < g->ntensors; i++)
        if (!strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

static int is_signed_vt(llm_gguf_vtype t) { return t == LLM_GGUF_VT_INT8 || t == LLM_GGUF_VT_INT16 || t == LLM_GGUF_VT_INT32 || t == LLM_GGUF_VT_INT64; }
static int is_unsigned_vt(llm_gguf_vtype t)
{
    return t == LLM_GGUF_VT_UINT8 || t == LLM_GGUF_VT_UINT16 || t == LLM_GGUF_VT_UINT32 || t == LLM_GGUF_VT_UINT64;
}

int llm_gguf_opt_i64(const llm_gguf_file *g, const char *key, int64_t *v, kv_err *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv)
        return 0;
    if (is_signed_vt(kv->type)) {
        *v = kv->v.i;
        return 1;
    }
    if (is_unsigned_vt(kv->type) && kv->v.u <= (uint64_t)INT64_MAX) {
        *v = (int64_t)kv->v.u;
        return 1;
    }
    kv_errf(err, "%s: offset 0x%llx: key '%s' is %s; expected an integer", g->path, (unsigned long long)kv->offset, key,
            llm_gguf_vtype_name(kv->type));
    return -1;
}

int llm_gguf_opt_f64(const llm_gguf_file *g, const char *key, double *v, kv_err *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv)
        return 0;
    if (kv->type == LLM_GGUF_VT_FLOAT32 || kv->type == LLM_GGUF_VT_FLOAT64) {
        *v = kv->v.f;
        return 1;
    }
    int64_t i;
    int r = llm_gguf_opt_i64(g, key, &i, NULL);
    if (r == 1) {
        *v = (double)i;
        return 1;
    }
    kv_errf(err, "%s: offset 0x%llx: key '%s' is %s; expected a number", g->path, (unsigned long long)kv->offset, key,
            llm_gguf_vtype_name(kv->type));
    return -1;
}

int llm_gguf_get_i64(const llm_gguf_file *g, const char *key, int64_t *v, kv_err *err)
{
    int r = llm_gguf_opt_i64(g, key, v, err);
    if (r == 0)
        return kv_errf(err, "%s: required key '%s' is missing", g->path, key);
    return r == 1 ? 0 : -1;
}

int llm_gguf_get_f64(const llm_gguf_file *g, const char *key, double *v, kv_err *err)
{
    int r = llm_gguf_opt_f64(g, key, v, err);
    if (r == 0)
        return kv_errf(err, "%s: required key '%s' is missing", g->path, key);
    return r == 1 ? 0 : -1;
}

int llm_gguf_get_str(const llm_gguf_file *g, const char *key, llm_gguf_str *v, kv_err *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv)
        return kv_errf(err, "%s: required key '%s' is missing", g->path, key);
    if (kv->type != LLM_GGUF_VT_STRING)
        return kv_errf(err, "%s: offset 0x%llx: key '%s' is %s; expected a string", g->path,
                       (unsigned long long)kv->offset, key, llm_gguf_vtype_name(kv->type));
    *v = kv->s;
    return 0;
}

/* ---- dequantisation (block layouts as in ggml-common.h) ---- */
float llm_gguf_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: man · 2^-24, exact in f32 */
            float f = (float)man * 0x1p-24f;
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float llm_gguf_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t u16_at(const uint8_t *p) { uint16_t x; memcpy(&x, p, 2); return x; }

/* Q4_0: { f16 d; u8 qs[16] }: x[j] = d·((qs[j] & 15) - 8), x[j+16] = d·((qs[j] >> 4) - 8). */
static void deq_q4_0(const uint8_t *b, float *y)
{
    const float d = llm_gguf_f16_to_f32(u16_at(b));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((b[2 + j] & 15) - 8);
        y[j + 16] = d * (float)((b[2 + j] >> 4) - 8);
    }
}

/* Q4_1: { f16 d; f16 m; u8 qs[16] }: x[j] = d·(qs[j] & 15) + m, x[j+16] = d·(qs[j] >> 4) + m. */
static void deq_q4_1(const uint8_t *b, float *y)
{
    const float d = llm_gguf_f16_to_f32(u16_at(b)), m = llm_gguf_f16_to_f32(u16_at(b + 2));
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 15) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

/* Q8_0: { f16 d; i8 qs[32] }: x[j] = d·qs[j]. */
static void deq_q8_0(const uint8_t *b, float *y)
{
    const float d = llm_gguf_f16_to_f32(u16_at(b));
    for (int j = 0; j < 32; j++)
        y[j] = d * (float)(int8_t)b[2 + j];
}

/* Q4_K: { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }, 8 sub-blocks of 32
 * with 6-bit scale and min each: x = d·sc·q − dmin·m. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void deq_q4_k(const uint8_t *b, float *y)
{
    const float d = llm_gguf_f16_to_f32(u16_at(b)), dmin = llm_gguf_f16_to_f32(u16_at(b + 2));
    const uint8_t *scales = b + 4, *q = b + 16;
    int is = 0;
    for (int j = 0; j < 256; j += 64) {
        uint8_t sc, m;
        scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

/* Q6_K: { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: 6-bit q − 32, 16 sub-blocks of 16. */
static void deq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = llm_gguf_f16_to_f32(u16_at(b + 208));
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is + 0] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

int llm_gguf_dequantize(llm_gguf_type t, const void *src, size_t src_bytes, float *dst, int64_t n, kv_err *err)
{
    if (!llm_gguf_type_dequantizable(t))
        return kv_errf(err, "tensor type %s (%d) cannot be dequantised by this reader (F32, F16, BF16, Q4_0, Q4_1, "
                            "Q8_0, Q4_K, Q6_K can)", llm_gguf_type_name(t), (int)t);
    const int64_t blk = types[t].block, bb = types[t].bytes;
    if (n < 0 || n % blk != 0)
        return kv_errf(err, "dequantise %s: %lld elements is not a multiple of the block %lld", types[t].name,
                       (long long)n, (long long)blk);
    const int64_t nb = n / blk;
    if ((uint64_t)nb * (uint64_t)bb > src_bytes)
        return kv_errf(err, "dequantise %s: %lld elements need %lld bytes, %zu given", types[t].name, (long long)n,
                       (long long)(nb * bb), src_bytes);
    const uint8_t *s = src;
    switch (t) {
    case LLM_GGUF_T_F32: memcpy(dst, s, (size_t)n * 4); break;
    case LLM_GGUF_T_F16: for (int64_t i = 0; i < n; i++) dst[i] = llm_gguf_f16_to_f32(u16_at(s + 2 * i)); break;
    case LLM_GGUF_T_BF16: for (int64_t i = 0; i < n; i++) dst[i] = llm_gguf_bf16_to_f32(u16_at(s + 2 * i)); break;
    case LLM_GGUF_T_Q4_0: for (int64_t i = 0; i < nb; i++) deq_q4_0(s + i * bb, dst + i * blk); break;
    case LLM_GGUF_T_Q4_1: for (int64_t i = 0; i < nb; i++) deq_q4_1(s + i * bb, dst + i * blk); break;
    case LLM_GGUF_T_Q8_0: for (int64_t i = 0; i < nb; i++) deq_q8_0(s + i * bb, dst + i * blk); break;
    case LLM_GGUF_T_Q4_K: for (int64_t i = 0; i < nb; i++) deq_q4_k(s + i * bb, dst + i * blk); break;
    case LLM_GGUF_T_Q6_K: for (int64_t i = 0; i < nb; i++) deq_q6_k(s + i * bb, dst + i * blk); break;
    default: return -1;
    }
    return 0;
}

int llm_gguf_tensor_f32(const llm_gguf_tensor *t, float *dst, kv_err *err)
{
    kv_err e;
    if (llm_gguf_dequantize(t->type, t->data, (size_t)t->nbytes, dst, t->nelem, &e) != 0)
        return kv_errf(err, "tensor '%s': %s", t->name, e.msg);
    return 0;
}
