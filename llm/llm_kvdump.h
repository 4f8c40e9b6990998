/* llm_kvdump.h — a model's real post-RoPE queries, keys and values for one text,
 * per (layer, head), in one checksummed file (llm/KVDUMP.md has the
 * layout and a PyTorch forward-hook recipe that writes the same format).
 *
 * A dump is written atomically (temporary name, fsync, rename) and read by
 * mapping it; the reader checks magic, version, sizes and the FNV-1a-64
 * checksum of every byte before it is used, and reports the offset of what
 * is wrong. llm_kvd_capture runs a GGUF model over a text to make one.
 *
 * It does not know about compression methods: refimpl's workload reads it. */
#ifndef LLM_KVDUMP_H
#define LLM_KVDUMP_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"
#include "rkv.h"
#include "llm_rope.h"

#define LLM_KVD_MAGIC "KVSIMKVD"
#define LLM_KVD_END "KVDEND\0\0"
#define LLM_KVD_VERSION 1
#define LLM_KVD_HEADER_BYTES 1024

typedef struct {
    int n_layer, n_head, n_kv_head, head_dim;
    int64_t n_tokens;
    rkv_dtype dtype;          /* bf16, fp16 or fp32 */
    double rope_theta;
    char model[128];          /* e.g. "SmolLM2-135M-Instruct.Q4_1.gguf sha256:..." */
    char source[384];         /* e.g. "/usr/share/common-licenses/GPL-3 sha256:... tokens 0..4095" */
} llm_kvd_info;

typedef struct llm_kvd_file {
    llm_kvd_info info;
    char path[512];
    const uint8_t *base;      /* mapped file, or owned memory when built in place */
    size_t size;
    int mapped;
    uint8_t *owned;
} llm_kvd_file;

/* Bytes of the data section: per layer K (Hkv, n, d), V (Hkv, n, d), Q (Hq, n, d). */
size_t llm_kvd_data_bytes(const llm_kvd_info *in);
/* Offset (from the data start) of row `pos` of tensor which (0 K, 1 V, 2 Q) of (layer, head). */
size_t llm_kvd_row_offset(const llm_kvd_info *in, int layer, int which, int head, int64_t pos);

/* An empty dump in memory (data zeroed), to be filled with llm_kvd_put and written with llm_kvd_write. */
int llm_kvd_alloc(const llm_kvd_info *in, llm_kvd_file **out, kv_err *err);
/* Stores n rows of f32 (n, d) for (layer, which, head) from position pos0 (encoded to the dtype). */
void llm_kvd_put(llm_kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, const float *rows, size_t stride);
/* Reads n rows as f32 into dst (n, d). */
void llm_kvd_get(const llm_kvd_file *f, int layer, int which, int head, int64_t pos0, int64_t n, float *dst);
int llm_kvd_write(const llm_kvd_file *f, const char *path, kv_err *err);
int llm_kvd_open(const char *path, llm_kvd_file **out, kv_err *err);
/* Fills in the trailer (checksum and end marker) of a dump whose writer left
 * the last 16 bytes unset (e.g. a Python script), rewriting it atomically. */
int llm_kvd_seal(const char *path, kv_err *err);
void llm_kvd_free(llm_kvd_file *f);

/* A synthetic workload as an in-memory f32 dump (llm/llm_kvsynth.c): K and V
 * of positions 0 .. n-1, every position's queries, decode queries from
 * position `prompt` on; `name` is recorded in the source string. */
int llm_kvd_synthesize(const rkv_workload *wl, const mdl_model *m, int64_t n, int64_t prompt, const char *name,
                       llm_kvd_file **out, kv_err *err);
/* The data bytes of such a dump (llm_kvd_data_bytes of its header). */
size_t llm_kvd_synth_bytes(const mdl_model *m, int64_t n);

/* FNV-1a 64 of n bytes (the dump's checksum), and SHA-256 (for naming texts and models). */
uint64_t llm_kvd_fnv1a64(const void *p, size_t n, uint64_t h);
void llm_kvd_sha256(const void *p, size_t n, uint8_t out[32]);
void llm_kvd_sha256_hex(const void *p, size_t n, char out[65]);

/* Runs the GGUF model at gguf_path over the text file's tokens [offset,
 * offset + n_tokens) with dense attention, capturing Q, K, V (post-RoPE, HF
 * rotate-half order) into a new in-memory dump. */
/* The dump as refimpl's Q/K/V source (src->ctx = f; f must outlive it). */
void llm_kvd_source(const llm_kvd_file *f, rkv_qkv_source *src);

int llm_kvd_capture(const char *gguf_path, const char *text_path, int64_t offset, int64_t n_tokens, rkv_dtype dtype,
                llm_kvd_file **out, kv_err *err);
/* The same with RoPE scaling overrides on top of the file's (NULL: none)
 * and `threads` BLAS threads (0: the number of CPUs); the source string then
 * names the scaling used ("rope yarn x4 of 8192"). */
int llm_kvd_capture_rope(const char *gguf_path, const char *text_path, int64_t offset, int64_t n_tokens,
                         rkv_dtype dtype, const llm_rope_override *rope, int threads, llm_kvd_file **out,
                         kv_err *err);

/* A real workload as the user names it (--workload, a sweep's workload:):
 * "kvdump:FILE" (a saved dump) or "gguf:MODEL.gguf,text:FILE[,offset:N][,dtype:D]"
 * (the model run over tokens offset .. offset+n-1 of the text, dense). */
typedef struct {
    int is_dump;              /* 1: kvdump:FILE */
    char path[600];           /* the dump file, or the GGUF model */
    char text[600];           /* gguf: the text file */
    int64_t offset;           /* gguf: first token of the text (0) */
    rkv_dtype dtype;          /* gguf: the dump's dtype, bf16/fp16/fp32 (bf16) */
} llm_kvd_spec;

/* 1 when s names a real workload (starts with kvdump: or gguf:). */
int llm_kvd_spec_is(const char *s);
/* Parses s strictly; err names `what` (e.g. "--workload"), the item and what is allowed. */
int llm_kvd_spec_parse(const char *what, const char *s, llm_kvd_spec *sp, kv_err *err);
/* Opens the dump, or captures n_tokens from the model and text. */
int llm_kvd_spec_load(const llm_kvd_spec *sp, int64_t n_tokens, llm_kvd_file **out, kv_err *err);
/* The model shape a dump describes: name (the model file's first word),
 * layers, heads, head_dim, hidden = heads x head_dim, max length = its
 * tokens, RoPE theta; the rest zero. */
void llm_kvd_model(const llm_kvd_info *in, mdl_model *m);

#endif
