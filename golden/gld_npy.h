/* gld_npy.h — NumPy .npy files (format version 1.0; 2.0 is also read), the
 * tensor format of `kvsim golden` / `kvsim compare`: little-endian f32, f64,
 * i32, i64 and u16 (bf16 bits), C order, at most 4 dimensions.
 *
 * Writes go through kv_afile (temporary name, then rename). The reader
 * rejects anything it does not fully understand — other dtypes, Fortran
 * order, a malformed header, a truncated or over-long data section — with
 * the file, the byte offset and what was expected. A shape whose byte count
 * overflows or exceeds GLD_NPY_MAX_BYTES or the file is refused before any
 * allocation. */
#ifndef GLD_NPY_H
#define GLD_NPY_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"

typedef enum { GLD_NPY_F32, GLD_NPY_F64, GLD_NPY_I32, GLD_NPY_I64, GLD_NPY_U16 } gld_npy_dtype;

#define GLD_NPY_MAX_DIMS 4
/* Largest data section read (bytes): 2^40, far above any golden tensor. */
#define GLD_NPY_MAX_BYTES ((int64_t)1 << 40)

typedef struct {
    gld_npy_dtype dtype;
    int ndim;
    int64_t shape[GLD_NPY_MAX_DIMS];
    int64_t n;       /* elements */
    void *data;      /* n elements, owned */
} gld_npy;

const char *gld_npy_descr(gld_npy_dtype t);   /* "<f4", ... */
const char *gld_npy_dtype_name(gld_npy_dtype t); /* "float32", ... */
size_t gld_npy_elem_bytes(gld_npy_dtype t);
int gld_npy_write(const char *path, gld_npy_dtype t, int ndim, const int64_t *shape, const void *data, kv_err *err);
int gld_npy_read(const char *path, gld_npy *a, kv_err *err);
void gld_npy_free(gld_npy *a);  /* NULL-safe */
/* Element i as a double (integers exactly up to 2^53). */
double gld_npy_get(const gld_npy *a, int64_t i);

#endif
