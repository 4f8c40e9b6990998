/* kv_yaml.h — a small strict reader for the YAML files kvsim keeps its data in
 * (models/NAME.yaml, hwmodels/NAME.yaml, workload files), built on libyaml's event
 * API.
 *
 * What it reads: one document whose root is a mapping. Values are scalars,
 * or nested mappings / sequences down to KV_YAML_MAX_DEPTH levels (enough for
 * `sources: {key: text}` and `gather_efficiency: [{run_bytes: .., efficiency: ..}]`).
 * Every node keeps its 1-based line:col, so each error names the spot:
 *
 *   models/foo.yaml:3:11: key 'head_dim': expected a positive integer, got '12x'
 *   models/foo.yaml:4:1: unknown key 'hiden_size' (did you mean 'hidden_size'? expected one of: ...)
 *   models/foo.yaml:1:1: missing key 'vocab_size'
 *   models/foo.yaml:7:1: duplicate key 'head_dim' (first at line 3)
 *   models/foo.yaml:2:9: YAML syntax error: mapping values are not allowed in this context
 *
 * What it deliberately does not do: aliases (rejected), multiple documents
 * (rejected), non-scalar or duplicate mapping keys (rejected), YAML 1.1 type
 * guessing ("yes", "on", "0x10" are not booleans or integers). The caller
 * asks for each key with the type it expects; the reader never guesses.
 * On error nothing is returned: the document is freed and the pointer reset. */
#ifndef KV_YAML_H
#define KV_YAML_H

#include <stddef.h>
#include <stdint.h>
#include "kv_common.h"

#define KV_YAML_MAX_DEPTH 4 /* root mapping = 1 */

typedef enum { KV_YAML_SCALAR, KV_YAML_MAP, KV_YAML_SEQ } kv_yaml_kind;

typedef struct kv_yaml_node {
    kv_yaml_kind kind;
    int line, col;                /* 1-based start of the node */
    char *text;                   /* SCALAR: the value as written (NUL-terminated) */
    int quoted;                   /* SCALAR: written with quotes (never a number or bool) */
    size_t n;                     /* MAP, SEQ: number of children */
    char **keys;                  /* MAP: (n) key texts */
    int *key_line, *key_col;      /* MAP: (n) key positions */
    struct kv_yaml_node **items;  /* MAP: (n) values; SEQ: (n) items */
} kv_yaml_node;

typedef struct {
    char path[512];               /* used as the prefix of every message */
    kv_yaml_node *root;           /* a MAP */
} kv_yaml_doc;

/* Load a file / a buffer (name is used in messages). 0 or -1 with err filled. */
int kv_yaml_load_file(kv_yaml_doc *d, const char *path, kv_err *err);
int kv_yaml_load_mem(kv_yaml_doc *d, const char *name, const void *buf, size_t len, kv_err *err);
void kv_yaml_free(kv_yaml_doc *d); /* accepts a zeroed or freed doc */

/* "path:line:col: " + message; returns -1. */
int kv_yaml_errf(const kv_yaml_doc *d, int line, int col, kv_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The value of key in map, or NULL when absent (or map is not a MAP). */
const kv_yaml_node *kv_yaml_get(const kv_yaml_node *map, const char *key);

/* Every key of map must be in allowed (NULL-terminated); the first that is
 * not gives "unknown key 'k' (did you mean ...? expected one of: a, b, ...)". */
int kv_yaml_check_keys(const kv_yaml_doc *d, const kv_yaml_node *map,
                       const char *const *allowed, kv_err *err);

/* Typed getters. When the key is absent: required ⇒ "missing key" error
 * (at 1:1 for the root mapping, else at the mapping's position); optional ⇒
 * 0 and *out untouched. A value of the wrong type or outside the range gives
 * "key 'k': expected <what>, got '<text>'" at the value's position.
 *
 * Integers: decimal digits with an optional sign, or a plain number in
 * exponent form that is exactly an integer (80e9). Doubles: any plain
 * finite number. Bools: true / false. Strings: any scalar, at most cap-1 bytes. */
int kv_yaml_int(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                int64_t min, int64_t max, int64_t *out, kv_err *err);
/* lo_open: the lower bound is excluded ((0, 1] for fractions, (0, inf) for sizes). */
int kv_yaml_num(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                double lo, int lo_open, double hi, double *out, kv_err *err);
int kv_yaml_bool(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                 int *out, kv_err *err);
int kv_yaml_str(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                char *out, size_t cap, kv_err *err);

/* Parses a scalar node as a number / an integer under the same rules; 0 ok, -1 not one. */
int kv_yaml_scalar_f64(const kv_yaml_node *v, double *out);
int kv_yaml_scalar_i64(const kv_yaml_node *v, int64_t *out);

/* Appends "expected one of: a, b, c" to buf (truncating with "..."). Shared with the JSON reader. */
void kv_yaml_key_list(char *buf, size_t cap, const char *const *allowed);
/* The allowed key closest to key by edit distance, or NULL when none is close. */
const char *kv_yaml_nearest(const char *key, const char *const *allowed);

/* Finds a data file. A path (contains '/' or ends in ".yaml") is used as is.
 * A name (letters, digits, '.', '_', '-') is looked up as
 * $KVSIM_DATA/<subdir>/<name>.yaml, then <datadir>/<subdir>/<name>.yaml.
 * what ("model", "hardware model") and known (NULL-terminated bundled
 * names) make the not-found message useful. */
int kv_data_find(const char *subdir, const char *datadir, const char *name_or_path, const char *what,
                 const char *const *known, char *out, size_t cap, kv_err *err);
/* "dir/llama3.1-8b.yaml" -> "llama3.1-8b" (at most cap-1 bytes). */
void kv_path_stem(const char *path, char *out, size_t cap);

#endif
