/* swp_finish.h — what sweep.c (run, resume) and finish.c (finishing, merge)
 * share: a table row by reference, column lookups, and the final write. */
#ifndef SWP_FINISH_H
#define SWP_FINISH_H
#include "swp.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **f;       /* fields, in swp_columns order */
    int64_t index;
    const char *src;/* file it came from (messages) */
} swp_row_ref;

int swp_write_all(int fd, const char *buf, size_t n);   /* 0, or -1 with errno */
int swp_col(const char *name);                          /* index in swp_columns, -1 when absent */
double swp_num(const char *s);                          /* a field as a number (NaN when empty or not a number) */
/* The table's columns are swp_columns, in order; else an error naming path. */
int swp_check_columns(const swp_table *t, const char *path, kv_err *err);
/* Row r's point index, checked against [0, npoints). */
int swp_row_index(const swp_table *t, size_t r, const char *path, int64_t npoints, int64_t *out, kv_err *err);
/* Rows in point order, Pareto columns, atomic write of out. */
int swp_finish(swp_row_ref *rows, size_t n, char *const *comments, size_t ncomments, const char *out, kv_err *err);
#endif
