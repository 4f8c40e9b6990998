/* npy.h — NumPy .npy files (format version 1.0; 2.0 is also read), the
 * tensor format of `kvsim golden` / `kvsim compare`: little-endian f32, f64,
 * i32, i64 and u16 (bf16 bits), C order, at most 4 dimensions.
 *
 * Writes go through kv_afile (temporary name, then rename). The reader
 * rejects anything it does not fully understand — other dtypes, Fortran
 * order, a malformed header, a truncated or over-long data section — with
 * the file, the byte offset and what was expected. */
#ifndef CLI_NPY_H
#define CLI_NPY_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"

typedef enum { CLI_NPY_F32, CLI_NPY_F64, CLI_NPY_I32, CLI_NPY_I64, CLI_NPY_U16 } cli_npy_dtype;

#define CLI_NPY_MAX_DIMS 4

typedef struct {
    cli_npy_dtype dtype;
    int ndim;
    int64_t shape[CLI_NPY_MAX_DIMS];
    int64_t n;       /* elements */
    void *data;      /* n elements, owned */
} cli_npy;

const char *cli_npy_descr(cli_npy_dtype t);   /* "<f4", ... */
const char *cli_npy_dtype_name(cli_npy_dtype t); /* "float32", ... */
size_t cli_npy_elem_bytes(cli_npy_dtype t);
int cli_npy_write(const char *path, cli_npy_dtype t, int ndim, const int64_t *shape, const void *data, kv_err *err);
int cli_npy_read(const char *path, cli_npy *a, kv_err *err);
void cli_npy_free(cli_npy *a);  /* NULL-safe */
/* Element i as a double (integers exactly up to 2^53). */
double cli_npy_get(const cli_npy *a, int64_t i);

#endif
