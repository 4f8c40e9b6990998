/* gguf.h — a strict reader of GGUF files (versions 2 and 3), the format
 * llama.cpp stores models in: a header, typed metadata (key/value pairs), a
 * table of tensor infos, then the tensor data, each tensor at an offset
 * aligned to general.alignment (32 by default).
 *
 * Strict means: every count, length, type and offset is checked against the
 * bytes that are there before it is used; nothing is read out of bounds; a
 * malformed file is rejected with the byte offset where it went wrong and
 * what was expected ("f.gguf: offset 0x1a2: tensor 'x' type 99: expected a
 * known ggml type"). Nested arrays, duplicate keys or tensor names,
 * overlapping tensors and unaligned offsets are errors.
 *
 * The file is mapped read-only (gguf_open) or borrowed from memory
 * (gguf_parse, used by the fuzz harness); strings and tensor data point into
 * it. Dequantisation to f32 covers F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K and
 * Q6_K; other known types parse (their sizes are checked) but do not
 * dequantise. Little-endian hosts only (every machine kvsim targets).
 *
 * It deliberately knows nothing about llama: models/llm.c reads the keys. */
#ifndef GGUF_H
#define GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"

typedef enum {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12, GGUF_VT_COUNT = 13
} gguf_vtype;

/* ggml tensor types (ids as in ggml.h). */
typedef enum {
    GGUF_T_F32 = 0, GGUF_T_F16 = 1, GGUF_T_Q4_0 = 2, GGUF_T_Q4_1 = 3, GGUF_T_Q5_0 = 6,
    GGUF_T_Q5_1 = 7, GGUF_T_Q8_0 = 8, GGUF_T_Q8_1 = 9, GGUF_T_Q2_K = 10, GGUF_T_Q3_K = 11,
    GGUF_T_Q4_K = 12, GGUF_T_Q5_K = 13, GGUF_T_Q6_K = 14, GGUF_T_Q8_K = 15, GGUF_T_I8 = 24,
    GGUF_T_I16 = 25, GGUF_T_I32 = 26, GGUF_T_I64 = 27, GGUF_T_F64 = 28, GGUF_T_BF16 = 30,
    GGUF_T_COUNT = 31
} gguf_type;

typedef struct {
    const char *p;   /* into the file; not NUL-terminated */
    uint64_t n;      /* bytes */
} gguf_str;

typedef struct {
    char *key;             /* NUL-terminated copy */
    uint64_t offset;       /* file offset of the key */
    gguf_vtype type;
    union {
        uint64_t u;        /* unsigned integers, bool */
        int64_t i;         /* signed integers */
        double f;          /* floats */
    } v;
    gguf_str s;            /* STRING */
    gguf_vtype arr_type;   /* ARRAY: element type (never ARRAY) */
    uint64_t arr_n;        /* ARRAY: elements */
    const void *arr;       /* ARRAY of numbers/bools: first element in the file (little-endian) */
    gguf_str *strs;        /* ARRAY of strings: (arr_n) */
} gguf_kv;

typedef struct {
    char *name;            /* NUL-terminated copy */
    uint64_t info_offset;  /* file offset of the tensor info */
    int n_dims;
    int64_t ne[4];         /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    int64_t nelem;
    gguf_type type;
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const void *data;      /* into the file */
} gguf_tensor;

typedef struct {
    char path[512];
    const uint8_t *base;   /* the whole file */
    size_t size;
    int mapped;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;  /* start of the tensor data section */
    int64_t nkv;
    gguf_kv *kv;
    int64_t ntensors;
    gguf_tensor *tensors;
} gguf_file;

/* Maps path and parses it. *out is NULL on error. */
int gguf_open(const char *path, gguf_file **out, kv_err *err);
/* Parses n bytes at buf (borrowed: must outlive the result). name is used in errors. */
int gguf_parse(const void *buf, size_t n, const char *name, gguf_file **out, kv_err *err);
void gguf_free(gguf_file *g); /* accepts NULL */

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_tensor_find(const gguf_file *g, const char *name);
/* Typed getters: an error names the key and what was found. Integers of any
 * width convert when the value fits. */
int gguf_get_i64(const gguf_file *g, const char *key, int64_t *v, kv_err *err);
int gguf_get_f64(const gguf_file *g, const char *key, double *v, kv_err *err);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *v, kv_err *err);
/* Optional forms: 1 found, 0 absent, -1 wrong type. */
int gguf_opt_i64(const gguf_file *g, const char *key, int64_t *v, kv_err *err);
int gguf_opt_f64(const gguf_file *g, const char *key, double *v, kv_err *err);

const char *gguf_type_name(gguf_type t);      /* "Q4_1"; "?" when unknown */
const char *gguf_vtype_name(gguf_vtype t);
/* Elements per block and bytes per block; 0 for an unknown type. */
int64_t gguf_type_block(gguf_type t);
int64_t gguf_type_block_bytes(gguf_type t);
/* 1 when gguf_dequantize handles t. */
int gguf_type_dequantizable(gguf_type t);

/* n elements (a multiple of the block) of type t at src (src_bytes long) to
 * f32. Checks that src holds them. */
int gguf_dequantize(gguf_type t, const void *src, size_t src_bytes, float *dst, int64_t n, kv_err *err);
/* A whole tensor to f32: dst holds t->nelem floats. */
int gguf_tensor_f32(const gguf_tensor *t, float *dst, kv_err *err);

/* IEEE half and bfloat16 to f32 (exact). */
float gguf_f16_to_f32(uint16_t h);
float gguf_bf16_to_f32(uint16_t h);

#endif
