/* gld_npy.c — .npy writer and strict reader (see gld_npy.h). */
#include "gld_npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const descr[] = {"<f4", "<f8", "<i4", "<i8", "<u2"};
static const char *const names[] = {"float32", "float64", "int32", "int64", "uint16"};
static const size_t bytes[] = {4, 8, 4, 8, 2};

const char *gld_npy_descr(gld_npy_dtype t) { return descr[t]; }
const char *gld_npy_dtype_name(gld_npy_dtype t) { return names[t]; }
size_t gld_npy_elem_bytes(gld_npy_dtype t) { return bytes[t]; }

int gld_npy_write(const char *path, gld_npy_dtype t, int ndim, const int64_t *shape, const void *data, kv_err *err)
{
    if (ndim < 0 || ndim > GLD_NPY_MAX_DIMS)
        return kv_errf(err, "%s: %d dimensions; at most %d are written", path, ndim, GLD_NPY_MAX_DIMS);
    char dict[256], shp[160] = "";
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        char one[32];
        snprintf(one, sizeof one, "%lld,%s", (long long)shape[i], (ndim > 1 && i + 1 < ndim) ? " " : "");
        strncat(shp, one, sizeof shp - strlen(shp) - 1);
        n *= shape[i];
    }
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr[t], shp);
    /* magic (6) + version (2) + header length (2) + dict + padding + '\n', a multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    kv_afile f;
    if (kv_afile_open(&f, path, err) != 0)
        return -1;
    unsigned hl = (unsigned)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f.fp);
    fputc((int)(hl & 0xff), f.fp);
    fputc((int)(hl >> 8), f.fp);
    fwrite(dict, 1, (size_t)len, f.fp);
    for (int i = 0; i < pad; i++)
        fputc(' ', f.fp);
    fputc('\n', f.fp);
    if (n > 0 && fwrite(data, bytes[t], (size_t)n, f.fp) != (size_t)n) {
        kv_afile_abort(&f);
        return kv_errf(err, "%s: short write", path);
    }
    return kv_afile_commit(&f, err);
}

void gld_npy_free(gld_npy *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
}

double gld_npy_get(const gld_npy *a, int64_t i)
{
    switch (a->dtype) {
    case GLD_NPY_F32: return ((const float *)a->data)[i];
    case GLD_NPY_F64: return ((const double *)a->data)[i];
    case GLD_NPY_I32: return ((const int32_t *)a->data)[i];
    case GLD_NPY_I64: return (double)((const int64_t *)a->data)[i];
    case GLD_NPY_U16: return ((const uint16_t *)a->data)[i];
    }
    return 0;
}

/* Finds 'key': in the header dict and returns a pointer just after the colon. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

/* The preamble: magic, version, header length; the header text into *h. */
static int read_header(FILE *fp, const char *path, char **h, size_t *hl, size_t *off, kv_err *err)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return kv_errf(err, "%s: offset 0: expected the .npy magic \\x93NUMPY", path);
    if (pre[6] == 1) {
        *hl = (size_t)pre[8] | (size_t)pre[9] << 8;
        *off = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2)
            return kv_errf(err, "%s: offset 10: truncated header length", path);
        *hl = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        *off = 12;
    } else {
        return kv_errf(err, "%s: offset 6: format version %d.%d; expected 1.0 or 2.0", path, pre[6], pre[7]);
    }
    if (*hl > 65536)
        return kv_errf(err, "%s: offset 8: header length %zu is implausible", path, *hl);
    *h = malloc(*hl + 1);
    if (!*h || fread(*h, 1, *hl, fp) != *hl)
        return kv_errf(err, "%s: offset %zu: truncated header (expected %zu bytes)", path, *off, *hl);
    (*h)[*hl] = '\0';
    return 0;
}

/* 'shape': (a, b, ...) after the '(' at v. Every dimension and the byte
 * count are checked against overflow before anything is allocated: a header
 * saying (2^62, 64) is an error, not a wrapped multiplication. */
static int parse_shape(const char *v, const char *path, size_t off, gld_npy *a, kv_err *err)
{
    const size_t eb = bytes[a->dtype];
    a->n = 1;
    while (*v != ')') {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || errno == ERANGE || x < 0 || a->ndim >= GLD_NPY_MAX_DIMS)
            return kv_errf(err, "%s: offset %zu: malformed shape (at most %d non-negative dimensions)", path, off,
                           GLD_NPY_MAX_DIMS);
        if (x > 0 && a->n > GLD_NPY_MAX_BYTES / (int64_t)eb / x)
            return kv_errf(err, "%s: offset %zu: shape holds more than %lld bytes", path, off,
                           (long long)GLD_NPY_MAX_BYTES);
        a->shape[a->ndim++] = x;
        a->n *= x;
        v = end;
        while (*v == ',' || *v == ' ')
            v++;
        if (*v == '\0')
            return kv_errf(err, "%s: offset %zu: unterminated shape", path, off);
    }
    return 0;
}

/* The header dict: descr, fortran_order, shape. */
static int parse_dict(const char *h, const char *path, size_t off, gld_npy *a, kv_err *err)
{
    const char *v = dict_value(h, "descr");
    int t = -1;
    for (int i = 0; v && i < 5; i++)
        if (v[0] == '\'' && !strncmp(v + 1, descr[i], 3) && v[4] == '\'')
            t = i;
    if (t < 0)
        return kv_errf(err, "%s: offset %zu: dtype %.8s is not one of <f4 <f8 <i4 <i8 <u2", path, off,
                       v ? v : "(none)");
    a->dtype = (gld_npy_dtype)t;
    v = dict_value(h, "fortran_order");
    if (!v || strncmp(v, "False", 5) != 0)
        return kv_errf(err, "%s: offset %zu: expected 'fortran_order': False", path, off);
    v = dict_value(h, "shape");
    if (!v || *v != '(')
        return kv_errf(err, "%s: offset %zu: expected 'shape': (...)", path, off);
    return parse_shape(v + 1, path, off, a, err);
}

/* The data section: exactly the bytes the shape says, checked against the
 * file's size before allocating. */
static int read_data(FILE *fp, const char *path, size_t off, gld_npy *a, kv_err *err)
{
    const size_t nb = (size_t)a->n * bytes[a->dtype];
    long here = ftell(fp), fsize = -1;
    if (here < 0 || fseek(fp, 0, SEEK_END) != 0 || (fsize = ftell(fp)) < here || fseek(fp, here, SEEK_SET) != 0)
        return kv_errf(err, "%s: cannot seek", path);
    if ((uint64_t)(fsize - here) < (uint64_t)nb)
        return kv_errf(err, "%s: offset %zu: expected %zu data bytes, file has %zu", path, off, nb,
                       (size_t)(fsize - here));
    a->data = malloc(nb ? nb : 1);
    if (!a->data)
        return kv_errf(err, "%s: out of memory for %zu bytes", path, nb);
    if (fread(a->data, 1, nb, fp) != nb)
        return kv_errf(err, "%s: offset %zu: short read of %zu data bytes", path, off, nb);
    if (fgetc(fp) != EOF)
        return kv_errf(err, "%s: offset %zu: data continues past the %zu bytes the shape says", path, off + nb, nb);
    return 0;
}

int gld_npy_read(const char *path, gld_npy *a, kv_err *err)
{
    memset(a, 0, sizeof *a);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return kv_errf(err, "%s: cannot open", path);
    char *h = NULL;
    size_t hl = 0, off = 0;
    int rc = read_header(fp, path, &h, &hl, &off, err);
    if (rc == 0)
        rc = parse_dict(h, path, off, a, err);
    if (rc == 0)
        rc = read_data(fp, path, off + hl, a, err);
    if (rc != 0) {
        free(a->data);
        a->data = NULL;
    }
    free(h);
    fclose(fp);
    return rc;
}
