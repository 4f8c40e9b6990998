/* kv_jsonr.h — a small strict JSON reader (RFC 8259): recursive descent into
 * a tree whose nodes keep their 1-based line:col, for the JSON kvsim reads
 * (Hugging Face config.json, reports/gpu/ calibration files).
 *
 * Strict: one value per file, no trailing commas, no comments, no NaN or
 * Infinity, no duplicate object keys, no control characters in strings,
 * nesting at most KV_JSONR_MAX_DEPTH. Errors read
 *   "config.json:12:5: expected ',' or '}' after an object member, got ']'".
 * It deliberately does not stream or keep large documents cheaply: inputs are
 * small (a few KB). The writer is kv_json_* in kv_common.h. */
#ifndef KV_JSONR_H
#define KV_JSONR_H

#include <stddef.h>
#include "kv_common.h"

#define KV_JSONR_MAX_DEPTH 64

typedef enum { KV_JSONR_NULL, KV_JSONR_BOOL, KV_JSONR_NUM, KV_JSONR_STR, KV_JSONR_ARR, KV_JSONR_OBJ } kv_jsonr_kind;

typedef struct kv_jsonr_node {
    kv_jsonr_kind kind;
    int line, col;                 /* 1-based start of the value */
    int boolean;                   /* BOOL */
    double num;                    /* NUM */
    int is_int;                    /* NUM written without '.' or exponent */
    char *str;                     /* STR: decoded UTF-8; NUM: the text as written */
    size_t n;                      /* ARR, OBJ: children */
    char **keys;                   /* OBJ: (n) decoded keys */
    struct kv_jsonr_node **items;  /* ARR, OBJ: (n) values */
} kv_jsonr_node;

typedef struct {
    char path[512];
    kv_jsonr_node *root;
} kv_jsonr_doc;

int kv_jsonr_load_file(kv_jsonr_doc *d, const char *path, kv_err *err);
int kv_jsonr_load_mem(kv_jsonr_doc *d, const char *name, const char *buf, size_t len, kv_err *err);
void kv_jsonr_free(kv_jsonr_doc *d);

/* Member of an object, or NULL (absent, or obj is not an object). */
const kv_jsonr_node *kv_jsonr_get(const kv_jsonr_node *obj, const char *key);
/* A name for the kind, for messages: "a string", "an array"... */
const char *kv_jsonr_kind_name(kv_jsonr_kind k);

#endif
