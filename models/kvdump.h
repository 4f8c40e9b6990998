/* kvdump.h — a model's real post-RoPE queries, keys and values for one text,
 * per (layer, head), in one checksummed file (models/KVDUMP.md has the
 * layout and a PyTorch forward-hook recipe that writes the same format).
 *
 * A dump is written atomically (temporary name, fsync, rename) and read by
 * mapping it; the reader checks magic, version, sizes and the FNV-1a-64
 * checksum of every byte before it is used, and reports the offset of what
 * is wrong. kvd_capture runs a GGUF model over a text to make one.
 *
 * It does not know about compression methods: refimpl's workload reads it. */
#ifndef KVDUMP_H
#define KVDUMP_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"
#include "rkv.h"

#define KVD_MAGIC "KVSIMKVD"
#define KVD_END "KVDEND\0\0"
#define KVD_VERSION 1
#define KVD_HEADER_BYTES 1024

typedef struct {
    int n_layer, n_head, n_kv_head, head_dim;
    int64_t n_tokens;
    rkv_dtype dtype;          /* bf16, fp16 or fp32 */
    double rope_theta;
    char model[128];          /* e.g. "SmolLM2-135M-Instruct.Q4_1.gguf sha256:..." */
    char source[384];         /* e.g. "/usr/share/common-licenses/GPL-3 sha256:... tokens 0..4095" */
} kvd_info;

typedef struct kvd_file {
    kvd_info info;
    char path[512];
    const uint8_t *base;      /* mapped file, or owned memory when built in place */
    size_t size;
    int mapped;
    uint8_t *owned;
} kvd_file;

/* Bytes of the data section: per layer K (Hkv, n, d), V (Hkv, n, d), Q (Hq, n, d). */
size_t kvd_data_bytes(const kvd_info *in);
/* Offset (from the data start) of row `pos` of tensor which (0 K, 1 V, 2 Q) of (layer, head). */
size_t kvd_row_offset(const kvd_info *in, int layer, int which, int head, int64_t pos);

/* An empty dump in memory (data zeroed), to be filled with kvd_put and written with kvd_write. */
int kvd_alloc(const kvd_info *in, kvd_file **out, kv_err *err);
/* Stores n rows of f32 (n, d) for (layer, which, head) from position pos0 (encoded to the dtype). */
void kvd_put(kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, const float *rows, size_t stride);
/* Reads n rows as f32 into dst (n, d). */
void kvd_get(const kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, float *dst);
int kvd_write(const kvd_file *f, const char *path, kv_err *err);
int kvd_open(const char *path, kvd_file **out, kv_err *err);
/* Fills in the trailer (checksum and end marker) of a dump whose writer left
 * the last 16 bytes unset (e.g. a Python script), rewriting it atomically. */
int kvd_seal(const char *path, kv_err *err);
void kvd_free(kvd_file *f);

/* FNV-1a 64 of n bytes (the dump's checksum), and SHA-256 (for naming texts and models). */
uint64_t kvd_fnv1a64(const void *p, size_t n, uint64_t h);
void kvd_sha256(const void *p, size_t n, uint8_t out[32]);
void kvd_sha256_hex(const void *p, size_t n, char out[65]);

/* Runs the GGUF model at gguf_path over the text file's tokens [offset,
 * offset + n_tokens) with dense attention, capturing Q, K, V (post-RoPE, HF
 * rotate-half order) into a new in-memory dump. */
/* The dump as refimpl's Q/K/V source (src->ctx = f; f must outlive it). */
void kvd_source(const kvd_file *f, rkv_qkv_source *src);

int kvd_capture(const char *gguf_path, const char *text_path, int64_t offset, int64_t n_tokens, rkv_dtype dtype,
                kvd_file **out, kv_err *err);

#endif
