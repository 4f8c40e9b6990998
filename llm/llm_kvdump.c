/* llm_kvdump.c — the KV dump format (llm/KVDUMP.md): writer, checked reader,
 * and capture from a GGUF model over a text file.
 *
 * Layout (little-endian):
 *   header, LLM_KVD_HEADER_BYTES long:
 *     0   "KVSIMKVD"
 *     8   u32 version (1)        12  u32 dtype (0 bf16, 1 fp16, 2 fp32)
 *     16  u32 n_layer            20  u32 n_head (Hq)
 *     24  u32 n_kv_head (Hkv)    28  u32 head_dim (d)
 *     32  u64 n_tokens           40  f64 rope_theta
 *     48  char model[128]        176 char source[384]      (NUL-padded UTF-8)
 *     560 zeros up to 1024
 *   data: for each layer: K (Hkv, n, d), V (Hkv, n, d), Q (Hq, n, d) in dtype;
 *         K and Q after RoPE in Hugging Face rotate-half order (dim i pairs with i + d/2)
 *   trailer: u64 FNV-1a-64 of header + data, then "KVDEND\0\0". */
#include "llm_kvdump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm.h"

size_t llm_kvd_data_bytes(const llm_kvd_info *in)
{
    const size_t rows = (size_t)(2 * in->n_kv_head + in->n_head) * (size_t)in->n_tokens;
    return (size_t)in->n_layer * rows * (size_t)in->head_dim * rkv_dtype_bytes(in->dtype);
}

size_t llm_kvd_row_offset(const llm_kvd_info *in, int layer, int which, int head, int64_t pos)
{
    const size_t n = (size_t)in->n_tokens, row = (size_t)in->head_dim * rkv_dtype_bytes(in->dtype);
    const size_t per_layer = (size_t)(2 * in->n_kv_head + in->n_head) * n;
    size_t r = (size_t)layer * per_layer;
    if (which >= 1) r += (size_t)in->n_kv_head * n;
    if (which >= 2) r += (size_t)in->n_kv_head * n;
    r += (size_t)head * n + (size_t)pos;
    return r * row;
}

uint64_t llm_kvd_fnv1a64(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void header_encode(const llm_kvd_info *in, uint8_t *h)
{
    memset(h, 0, LLM_KVD_HEADER_BYTES);
    memcpy(h, LLM_KVD_MAGIC, 8);
    put_u32(h + 8, LLM_KVD_VERSION);
    put_u32(h + 12, (uint32_t)in->dtype);
    put_u32(h + 16, (uint32_t)in->n_layer);
    put_u32(h + 20, (uint32_t)in->n_head);
    put_u32(h + 24, (uint32_t)in->n_kv_head);
    put_u32(h + 28, (uint32_t)in->head_dim);
    put_u64(h + 32, (uint64_t)in->n_tokens);
    memcpy(h + 40, &in->rope_theta, 8);
    memcpy(h + 48, in->model, strnlen(in->model, 127));
    memcpy(h + 176, in->source, strnlen(in->source, 383));
}

static int check_info(const llm_kvd_info *in, const char *path, kv_err *err)
{
    if (in->n_layer < 1 || in->n_layer > 1024 || in->n_head < 1 || in->n_head > 1024 || in->n_kv_head < 1 ||
        in->n_head % in->n_kv_head != 0 || in->head_dim < 2 || in->head_dim > 1024 || in->n_tokens < 1 ||
        in->n_tokens > ((int64_t)1 << 31))
        return kv_errf(err, "%s: offset 0x10: shape L=%d Hq=%d Hkv=%d d=%d n=%lld: expected positive sizes with Hkv "
                            "dividing Hq", path, in->n_layer, in->n_head, in->n_kv_head, in->head_dim,
                       (long long)in->n_tokens);
    if (in->dtype != RKV_DTYPE_BF16 && in->dtype != RKV_DTYPE_FP16 && in->dtype != RKV_DTYPE_FP32)
        return kv_errf(err, "%s: offset 0xc: dtype %d: expected 0 (bf16), 1 (fp16) or 2 (fp32)", path, (int)in->dtype);
    return 0;
}

int llm_kvd_alloc(const llm_kvd_info *in, llm_kvd_file **out, kv_err *err)
{
    *out = NULL;
    if (check_info(in, "kvdump", err) != 0)
        return -1;
    llm_kvd_file *f = calloc(1, sizeof *f);
    if (!f) return kv_errf(err, "out of memory");
    f->info = *in;
    f->size = LLM_KVD_HEADER_BYTES + llm_kvd_data_bytes(in) + 16;
    f->owned = calloc(1, f->size);
    if (!f->owned) {
        const size_t mb = f->size >> 20;
        free(f);
        return kv_errf(err, "out of memory for a %zu MB KV dump", mb);
    }
    f->base = f->owned;
    header_encode(in, f->owned);
    *out = f;
    return 0;
}

void llm_kvd_put(llm_kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, const float *rows, size_t stride)
{
    const int d = f->info.head_dim;
    const size_t rb = (size_t)d * rkv_dtype_bytes(f->info.dtype);
    uint8_t *dst = f->owned + LLM_KVD_HEADER_BYTES + llm_kvd_row_offset(&f->info, layer, which, head, pos0);
    for (int64_t r = 0; r < n; r++)
        rkv_encode(f->info.dtype, rows + (size_t)r * stride, (size_t)d, dst + (size_t)r * rb);
}

static void source_get(const void *ctx, int layer, int which, int head, int64_t pos0, int64_t n, float *dst)
{
    llm_kvd_get(ctx, layer, which, head, pos0, n, dst);
}

void llm_kvd_source(const llm_kvd_file *f, rkv_qkv_source *src)
{
    src->n_layer = f->info.n_layer;
    src->n_head = f->info.n_head;
    src->n_kv_head = f->info.n_kv_head;
    src->head_dim = f->info.head_dim;
    src->n_tokens = f->info.n_tokens;
    src->get = source_get;
    src->ctx = f;
}

void llm_kvd_get(const llm_kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, float *dst)
{
    const uint8_t *src = f->base + LLM_KVD_HEADER_BYTES + llm_kvd_row_offset(&f->info, layer, which, head, pos0);
    rkv_decode(f->info.dtype, src, (size_t)n * (size_t)f->info.head_dim, dst);
}

int llm_kvd_write(const llm_kvd_file *f, const char *path, kv_err *err)
{
    if (!f->owned)
        return kv_errf(err, "kvdump: only a dump built in memory can be written");
    const size_t body = f->size - 16;
    uint8_t tr[16];
    put_u64(tr, llm_kvd_fnv1a64(f->owned, body, 1469598103934665603ull));
    memcpy(tr + 8, LLM_KVD_END, 8);
    kv_afile af;
    if (kv_afile_open(&af, path, err) != 0)
        return -1;
    if (fwrite(f->owned, 1, body, af.fp) != body || fwrite(tr, 1, 16, af.fp) != 16) {
        kv_afile_abort(&af);
        return kv_errf(err, "%s: write failed: %s", path, strerror(errno));
    }
    return kv_afile_commit(&af, err);
}

int llm_kvd_open(const char *path, llm_kvd_file **out, kv_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kv_errf(err, "%s: not a regular file", path);
    }
    const size_t n = (size_t)st.st_size;
    if (n < LLM_KVD_HEADER_BYTES + 16) {
        close(fd);
        return kv_errf(err, "%s: offset 0x0: %zu bytes; expected at least the %d-byte header and 16-byte trailer", path,
                       n, LLM_KVD_HEADER_BYTES);
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return kv_errf(err, "%s: mmap failed: %s", path, strerror(errno));
    const uint8_t *b = p;
    llm_kvd_info in;
    memset(&in, 0, sizeof in);
    if (memcmp(b, LLM_KVD_MAGIC, 8) != 0) {
        kv_errf(err, "%s: offset 0x0: expected the magic \"KVSIMKVD\" (not a kvsim KV dump)", path);
        goto fail;
    }
    if (get_u32(b + 8) != LLM_KVD_VERSION) {
        kv_errf(err, "%s: offset 0x8: version %u: expected %d", path, get_u32(b + 8), LLM_KVD_VERSION);
        goto fail;
    }
    in.dtype = (rkv_dtype)get_u32(b + 12);
    in.n_layer = (int)get_u32(b + 16);
    in.n_head = (int)get_u32(b + 20);
    in.n_kv_head = (int)get_u32(b + 24);
    in.head_dim = (int)get_u32(b + 28);
    in.n_tokens = (int64_t)get_u64(b + 32);
    memcpy(&in.rope_theta, b + 40, 8);
    memcpy(in.model, b + 48, 127);
    memcpy(in.source, b + 176, 383);
    if (check_info(&in, path, err) != 0)
        goto fail;
    const size_t want = LLM_KVD_HEADER_BYTES + llm_kvd_data_bytes(&in) + 16;
    if (n != want) {
        kv_errf(err, "%s: offset 0x%zx: file is %zu bytes; the header's shape needs %zu (truncated or padded)", path,
                n < want ? n : want, n, want);
        goto fail;
    }
    if (memcmp(b + n - 8, LLM_KVD_END, 8) != 0) {
        kv_errf(err, "%s: offset 0x%zx: expected the end marker \"KVDEND\"", path, n - 8);
        goto fail;
    }
    const uint64_t sum = llm_kvd_fnv1a64(b, n - 16, 1469598103934665603ull);
    if (sum != get_u64(b + n - 16)) {
        kv_errf(err, "%s: offset 0x%zx: checksum %016llx, computed %016llx: the file is corrupted", path, n - 16,
                (unsigned long long)get_u64(b + n - 16), (unsigned long long)sum);
        goto fail;
    }
    llm_kvd_file *f = calloc(1, sizeof *f);
    if (!f) {
        kv_errf(err, "out of memory");
        goto fail;
    }
    f->info = in;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->base = b;
    f->size = n;
    f->mapped = 1;
    *out = f;
    return 0;
fail:
    munmap(p, n);
    return -1;
}

int llm_kvd_seal(const char *path, kv_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[LLM_KVD_HEADER_BYTES];
    llm_kvd_info in;
    memset(&in, 0, sizeof in);
    if (fread(h, 1, sizeof h, fp) != sizeof h || memcmp(h, LLM_KVD_MAGIC, 8) != 0 || get_u32(h + 8) != LLM_KVD_VERSION) {
        fclose(fp);
        return kv_errf(err, "%s: offset 0x0: expected a version-%d header starting with \"KVSIMKVD\"", path, LLM_KVD_VERSION);
    }
    in.dtype = (rkv_dtype)get_u32(h + 12);
    in.n_layer = (int)get_u32(h + 16);
    in.n_head = (int)get_u32(h + 20);
    in.n_kv_head = (int)get_u32(h + 24);
    in.head_dim = (int)get_u32(h + 28);
    in.n_tokens = (int64_t)get_u64(h + 32);
    if (check_info(&in, path, err) != 0) {
        fclose(fp);
        return -1;
    }
    llm_kvd_file *f = NULL;
    if (llm_kvd_alloc(&in, &f, err) != 0) {
        fclose(fp);
        return -1;
    }
    const size_t body = f->size - 16;
    memcpy(f->owned, h, sizeof h);
    size_t got = fread(f->owned + sizeof h, 1, body - sizeof h, fp);
    uint8_t extra[17];
    size_t tail = fread(extra, 1, sizeof extra, fp);
    fclose(fp);
    if (got != body - sizeof h || (tail != 0 && tail != 16)) {
        llm_kvd_free(f);
        return kv_errf(err, "%s: offset 0x%zx: the header's shape needs %zu data bytes (+ an optional 16-byte "
                            "trailer); the file has %zu", path, sizeof h + got, body - sizeof h, got + tail);
    }
    int rc = llm_kvd_write(f, path, err);
    llm_kvd_free(f);
    return rc;
}

void llm_kvd_free(llm_kvd_file *f)
{
    if (!f) return;
    if (f->mapped) munmap((void *)(uintptr_t)f->base, f->size);
    free(f->owned);
    free(f);
}

/* ---- SHA-256 (FIPS 180-4), for naming inputs ---- */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(uint32_t *h, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void llm_kvd_sha256(const void *data, size_t n, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha_block(h, p + i);
    uint8_t last[128] = {0};
    size_t r = n - i;
    memcpy(last, p + i, r);
    last[r] = 0x80;
    size_t nb = r + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++) last[nb - 1 - k] = (uint8_t)(bits >> (8 * k));
    sha_block(h, last);
    if (nb == 128) sha_block(h, last + 64);
    for (int k = 0; k < 8; k++) {
        out[4 * k] = (uint8_t)(h[k] >> 24); out[4 * k + 1] = (uint8_t)(h[k] >> 16);
        out[4 * k + 2] = (uint8_t)(h[k] >> 8); out[4 * k + 3] = (uint8_t)h[k];
    }
}

void llm_kvd_sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    llm_kvd_sha256(p, n, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* ---- capture ---- */
typedef struct {
    llm_kvd_file *f;
    int Hq, Hk, d;
} cap_ctx;

static int on_qkv(void *ctx, int layer, int64_t pos0, int64_t n, const float *Q, const float *K, const float *V)
{
    cap_ctx *c = ctx;
    const size_t qd = (size_t)c->Hq * (size_t)c->d, kd = (size_t)c->Hk * (size_t)c->d;
    for (int h = 0; h < c->Hk; h++) {
        llm_kvd_put(c->f, layer, 0, h, pos0, n, K + (size_t)h * (size_t)c->d, kd);
        llm_kvd_put(c->f, layer, 1, h, pos0, n, V + (size_t)h * (size_t)c->d, kd);
    }
    for (int h = 0; h < c->Hq; h++)
        llm_kvd_put(c->f, layer, 2, h, pos0, n, Q + (size_t)h * (size_t)c->d, qd);
    return 0;
}

/* The text a capture tokenizes: a regular file of at most 256 MiB. */
static char *read_all(const char *path, size_t *n, kv_err *err)
{
    char *b;
    return kv_read_text(path, (size_t)1 << 28, &b, n, err) == 0 ? b : NULL;
}

int llm_kvd_capture(const char *gguf_path, const char *text_path, int64_t offset, int64_t n_tokens, rkv_dtype dtype,
                llm_kvd_file **out, kv_err *err)
{
    return llm_kvd_capture_rope(gguf_path, text_path, offset, n_tokens, dtype, NULL, 0, out, err);
}

int llm_kvd_capture_rope(const char *gguf_path, const char *text_path, int64_t offset, int64_t n_tokens,
                         rkv_dtype dtype, const llm_rope_override *rope, int threads, llm_kvd_file **out,
                         kv_err *err)
{
    *out = NULL;
    size_t tn;
    char *text = read_all(text_path, &tn, err);
    if (!text) return -1;
    llm_model *m = NULL;
    llm_session *s = NULL;
    int32_t *ids = NULL;
    int rc = -1;
    if (llm_model_load(gguf_path, &m, err) != 0) goto out;
    if (rope && llm_model_set_rope(m, rope, err) != 0) goto out;
    ids = malloc((tn + 1) * sizeof *ids);
    if (!ids) { kv_errf(err, "out of memory"); goto out; }
    const int64_t nt = llm_tokenize(m->tok, text, tn, ids, (int64_t)tn + 1);
    if (offset < 0 || n_tokens < 1 || offset + n_tokens > nt) {
        kv_errf(err, "%s: %lld tokens; tokens %lld..%lld were asked for", text_path, (long long)nt, (long long)offset,
                (long long)(offset + n_tokens - 1));
        goto out;
    }
    llm_kvd_info in = {.n_layer = m->c.n_layer, .n_head = m->c.n_head, .n_kv_head = m->c.n_kv_head,
                   .head_dim = m->c.head_dim, .n_tokens = n_tokens, .dtype = dtype, .rope_theta = m->c.rope_theta};
    char th[65], mh[65];
    llm_kvd_sha256_hex(text, tn, th);
    llm_kvd_sha256_hex(m->g->base, m->g->size, mh);
    const char *mb = strrchr(gguf_path, '/');
    snprintf(in.model, sizeof in.model, "%.50s sha256:%.64s", mb ? mb + 1 : gguf_path, mh);
    const llm_rope *rp = &m->c.rope;
    char rs[96] = "";
    if (rp->type != LLM_ROPE_NONE)
        snprintf(rs, sizeof rs, ", rope %s x%g of %lld", llm_rope_type_name(rp->type), rp->factor, (long long)rp->orig_ctx);
    snprintf(in.source, sizeof in.source, "%.180s sha256:%.64s tokens %lld..%lld of %lld%.48s", text_path, th,
             (long long)offset, (long long)(offset + n_tokens - 1), (long long)nt, rs);
    llm_kvd_file *f;
    if (llm_kvd_alloc(&in, &f, err) != 0) goto out;
    cap_ctx cc = {.f = f, .Hq = m->c.n_head, .Hk = m->c.n_kv_head, .d = m->c.head_dim};
    llm_session_cfg cfg = {.max_tokens = n_tokens, .kv_dtype = RKV_DTYPE_FP32, .threads = threads, .on_qkv = on_qkv,
                           .ctx = &cc};
    if (llm_session_new(m, &cfg, &s, err) != 0 || llm_prefill(s, ids + offset, n_tokens, NULL, 0, 0, err) != 0) {
        llm_kvd_free(f);
        goto out;
    }
    *out = f;
    rc = 0;
out:
    llm_session_free(s);
    llm_model_free(m);
    free(ids);
    free(text);
    return rc;
}

int llm_kvd_spec_is(const char *s)
{
    return s && (!strncmp(s, "kvdump:", 7) || !strncmp(s, "gguf:", 5));
}

/* One item of a gguf: spec. */
static int spec_item(const char *what, const char *item, llm_kvd_spec *sp, kv_err *err)
{
    if (!strncmp(item, "gguf:", 5) && item[5]) snprintf(sp->path, sizeof sp->path, "%s", item + 5);
    else if (!strncmp(item, "text:", 5) && item[5]) snprintf(sp->text, sizeof sp->text, "%s", item + 5);
    else if (!strncmp(item, "offset:", 7)) {
        char w[128];
        snprintf(w, sizeof w, "%s offset", what);
        return kv_parse_i64_in(w, item + 7, 0, INT64_C(1) << 31, &sp->offset, err);
    } else if (!strncmp(item, "dtype:", 6)) {
        if (rkv_dtype_parse(item + 6, &sp->dtype) != 0 || sp->dtype > RKV_DTYPE_FP32)
            return kv_errf(err, "%s: dtype '%s': expected bf16, fp16 or fp32", what, item + 6);
    } else {
        return kv_errf(err, "%s: '%s': expected gguf:FILE, text:FILE, offset:N or dtype:D", what, item);
    }
    return 0;
}

int llm_kvd_spec_parse(const char *what, const char *s, llm_kvd_spec *sp, kv_err *err)
{
    memset(sp, 0, sizeof *sp);
    sp->dtype = RKV_DTYPE_BF16;
    if (!strncmp(s, "kvdump:", 7)) {
        if (!s[7] || strlen(s + 7) >= sizeof sp->path)
            return kv_errf(err, "%s: kvdump: needs a file name (at most %zu bytes)", what, sizeof sp->path - 1);
        sp->is_dump = 1;
        snprintf(sp->path, sizeof sp->path, "%s", s + 7);
        return 0;
    }
    for (const char *p = s; *p;) {
        const char *c = strchr(p, ',');
        const size_t n = c ? (size_t)(c - p) : strlen(p);
        char item[600];
        if (n == 0 || n >= sizeof item)
            return kv_errf(err, "%s: '%s': an empty or over-long item", what, s);
        memcpy(item, p, n);
        item[n] = '\0';
        if (spec_item(what, item, sp, err) != 0) return -1;
        p += n;
        if (*p == ',') p++;
    }
    if (!sp->path[0] || !sp->text[0])
        return kv_errf(err, "%s: '%s': both gguf:MODEL.gguf and text:FILE are needed", what, s);
    return 0;
}

int llm_kvd_spec_load(const llm_kvd_spec *sp, int64_t n_tokens, llm_kvd_file **out, kv_err *err)
{
    if (sp->is_dump) return llm_kvd_open(sp->path, out, err);
    return llm_kvd_capture(sp->path, sp->text, sp->offset, n_tokens, sp->dtype, out, err);
}

void llm_kvd_model(const llm_kvd_info *in, mdl_model *m)
{
    memset(m, 0, sizeof *m);
    const char *sp = strchr(in->model, ' ');
    snprintf(m->name, sizeof m->name, "%.*s", sp ? (int)(sp - in->model) : 63, in->model);
    snprintf(m->source, sizeof m->source, "%s", in->model);
    m->num_hidden_layers = in->n_layer;
    m->num_attention_heads = in->n_head;
    m->num_key_value_heads = in->n_kv_head;
    m->head_dim = in->head_dim;
    m->hidden_size = in->n_head * in->head_dim;
    m->max_position_embeddings = (int)in->n_tokens;
    m->rope_theta = in->rope_theta;
}
