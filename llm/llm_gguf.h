/* llm_gguf.h — a strict reader of GGUF files (versions 2 and 3), the format
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
 * The file is mapped read-only (llm_gguf_open) or borrowed from memory
 * (llm_gguf_parse, used by the fuzz harness); strings and tensor data point into
 * it. Dequantisation to f32 covers F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K and
 * Q6_K; other known types parse (their sizes are checked) but do not
 * dequantise. Little-endian hosts only (every machine kvsim targets).
 *
 * It deliberately knows nothing about llama: llm/llm.c reads the keys. */
#ifndef LLM_GGUF_H
#define LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"

typedef enum {
    LLM_GGUF_VT_UINT8 = 0, LLM_GGUF_VT_INT8 = 1, LLM_GGUF_VT_UINT16 = 2, LLM_GGUF_VT_INT16 = 3,
    LLM_GGUF_VT_UINT32 = 4, LLM_GGUF_VT_INT32 = 5, LLM_GGUF_VT_FLOAT32 = 6, LLM_GGUF_VT_BOOL = 7,
    LLM_GGUF_VT_STRING = 8, LLM_GGUF_VT_ARRAY = 9, LLM_GGUF_VT_UINT64 = 10, LLM_GGUF_VT_INT64 = 11,
    LLM_GGUF_VT_FLOAT64 = 12, LLM_GGUF_VT_COUNT = 13
} llm_gguf_vtype;

/* ggml tensor types (ids as in ggml.h). */
typedef enum {
    LLM_GGUF_T_F32 = 0, LLM_GGUF_T_F16 = 1, LLM_GGUF_T_Q4_0 = 2, LLM_GGUF_T_Q4_1 = 3, LLM_GGUF_T_Q5_0 = 6,
    LLM_GGUF_T_Q5_1 = 7, LLM_GGUF_T_Q8_0 = 8, LLM_GGUF_T_Q8_1 = 9, LLM_GGUF_T_Q2_K = 10, LLM_GGUF_T_Q3_K = 11,
    LLM_GGUF_T_Q4_K = 12, LLM_GGUF_T_Q5_K = 13, LLM_GGUF_T_Q6_K = 14, LLM_GGUF_T_Q8_K = 15, LLM_GGUF_T_I8 = 24,
    LLM_GGUF_T_I16 = 25, LLM_GGUF_T_I32 = 26, LLM_GGUF_T_I64 = 27, LLM_GGUF_T_F64 = 28, LLM_GGUF_T_BF16 = 30,
    LLM_GGUF_T_COUNT = 31
} llm_gguf_type;

typedef struct {
    const char *p;   /* into the file; not NUL-terminated */
    uint64_t n;      /* bytes */
} llm_gguf_str;

typedef struct {
    char *key;             /* NUL-terminated copy */
    uint64_t offset;       /* file offset of the key */
    llm_gguf_vtype type;
    union {
        uint64_t u;        /* unsigned integers, bool */
        int64_t i;         /* signed integers */
        double f;          /* floats */
    } v;
    llm_gguf_str s;            /* STRING */
    llm_gguf_vtype arr_type;   /* ARRAY: element type (never ARRAY) */
    uint64_t arr_n;        /* ARRAY: elements */
    const void *arr;       /* ARRAY of numbers/bools: first element in the file (little-endian) */
    llm_gguf_str *strs;        /* ARRAY of strings: (arr_n) */
} llm_gguf_kv;

typedef struct {
    char *name;            /* NUL-terminated copy */
    uint64_t info_offset;  /* file offset of the tensor info */
    int n_dims;
    int64_t ne[4];         /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    int64_t nelem;
    llm_gguf_type type;
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const void *data;      /* into the file */
} llm_gguf_tensor;

typedef struct {
    char path[512];
    const uint8_t *base;   /* the whole file */
    size_t size;
    int mapped;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;  /* start of the tensor data section */
    int64_t nkv;
    llm_gguf_kv *kv;
    int64_t ntensors;
    llm_gguf_tensor *tensors;
} llm_gguf_file;

/* Maps path and parses it. *out is NULL on error. */
int llm_gguf_open(const char *path, llm_gguf_file **out, kv_err *err);
/* Parses n bytes at buf (borrowed: must outlive the result). name is used in errors. */
int llm_gguf_parse(const void *buf, size_t n, const char *name, llm_gguf_file **out, kv_err *err);
void llm_gguf_free(llm_gguf_file *g); /* accepts NULL */

const llm_gguf_kv *llm_gguf_find(const llm_gguf_file *g, const char *key);
const llm_gguf_tensor *llm_gguf_tensor_find(const llm_gguf_file *g, const char *name);
/* Typed getters: an error names the key and what was found. Integers of any
 * width convert when the value fits. */
int llm_gguf_get_i64(const llm_gguf_file *g, const char *key, int64_t *v, kv_err *err);
int llm_gguf_get_f64(const llm_gguf_file *g, const char *key, double *v, kv_err *err);
int llm_gguf_get_str(const llm_gguf_file *g, const char *key, llm_gguf_str *v, kv_err *err);
/* Optional forms: 1 found, 0 absent, -1 wrong type. */
int llm_gguf_opt_i64(const llm_gguf_file *g, const char *key, int64_t *v, kv_err *err);
int llm_gguf_opt_f64(const llm_gguf_file *g, const char *key, double *v, kv_err *err);

const char *llm_gguf_type_name(llm_gguf_type t);      /* "Q4_1"; "?" when unknown */
const char *llm_gguf_vtype_name(llm_gguf_vtype t);
/* 1 when llm_gguf_dequantize handles t. */
int llm_gguf_type_dequantizable(llm_gguf_type t);

/* n elements (a multiple of the block) of type t at src (src_bytes long) to
 * f32. Checks that src holds them. */
int llm_gguf_dequantize(llm_gguf_type t, const void *src, size_t src_bytes, float *dst, int64_t n, kv_err *err);
/* A whole tensor to f32: dst holds t->nelem floats. */
int llm_gguf_tensor_f32(const llm_gguf_tensor *t, float *dst, kv_err *err);

/* IEEE half and bfloat16 to f32 (exact). */
float llm_gguf_f16_to_f32(uint16_t h);
float llm_gguf_bf16_to_f32(uint16_t h);

#endif
