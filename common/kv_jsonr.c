/* kv_jsonr.c — the strict JSON reader of kv_jsonr.h.
 *
 * One function per grammar rule (RFC 8259), each with the rule above it.
 * Recursion is bounded by KV_JSONR_MAX_DEPTH. On any error the partial tree
 * is freed and the message carries the line:col of the offending byte. */
#include "kv_jsonr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE_BYTES (16u << 20)

typedef struct {
    const char *path;
    const char *s, *end;
    int line, col;
    kv_err *err;
    int failed;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *p, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    if (p->err) {
        char what[600];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        kv_errf(p->err, "%s:%d:%d: %s", p->path, p->line, p->col, what);
    }
    return -1;
}

/* What is at the cursor, for messages. */
static const char *here(const parser *p, char *buf, size_t cap)
{
    if (p->s >= p->end)
        return "end of file";
    unsigned char c = (unsigned char)*p->s;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static void advance(parser *p)
{
    if (*p->s == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->s++;
}

/* ws = *( %x20 / %x09 / %x0A / %x0D ) */
static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        advance(p);
}

static void node_free(kv_jsonr_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        node_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->str);
    free(n);
}

void kv_jsonr_free(kv_jsonr_doc *d)
{
    if (!d)
        return;
    node_free(d->root);
    d->root = NULL;
}

const char *kv_jsonr_kind_name(kv_jsonr_kind k)
{
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[k];
}

static void put_utf8(char *out, size_t *len, unsigned cp)
{
    if (cp < 0x80) {
        out[(*len)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*len)++] = (char)(0xc0 | (cp >> 6));
        out[(*len)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*len)++] = (char)(0xe0 | (cp >> 12));
        out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*len)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*len)++] = (char)(0xf0 | (cp >> 18));
        out[(*len)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*len)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p->s >= p->end)
            return fail(p, "unfinished \\u escape");
        char c = *p->s;
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0)
            return fail(p, "expected a hex digit in a \\u escape");
        v = v * 16 + (unsigned)h;
        advance(p);
    }
    *out = v;
    return 0;
}

/* string = quotation-mark *char quotation-mark; decoded into a new buffer
 * sized from a first scan (decoding never lengthens: every escape shrinks). */
static char *parse_string(parser *p)
{
    advance(p); /* opening quote */
    const char *q = p->s;
    while (q < p->end && *q != '"')
        q += *q == '\\' ? 2 : 1;
    size_t len = 0;
    char *out = malloc((size_t)(q - p->s) + 2);
    if (!out) {
        fail(p, "out of memory");
        return NULL;
    }
    for (;;) {
        if (p->s >= p->end) {
            fail(p, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') {
            advance(p);
            out[len] = '\0';
            return out;
        }
        if (c < 0x20) {
            fail(p, "control character 0x%02x in a string (escape it)", c);
            break;
        }
        if (c != '\\') {
            out[len++] = (char)c;
            advance(p);
            continue;
        }
        advance(p);
        if (p->s >= p->end) {
            fail(p, "unterminated string");
            break;
        }
        char e = *p->s;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            out[len++] = to[k - from];
            advance(p);
        } else if (e == 'u') {
            advance(p);
            unsigned cp;
            if (hex4(p, &cp) != 0)
                break;
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (p->end - p->s < 2 || p->s[0] != '\\' || p->s[1] != 'u') {
                    fail(p, "unpaired surrogate in a \\u escape");
                    break;
                }
                advance(p);
                advance(p);
                if (hex4(p, &lo) != 0)
                    break;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(p, "invalid low surrogate in a \\u escape");
                    break;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                fail(p, "unpaired surrogate in a \\u escape");
                break;
            }
            if (cp == 0) {
                fail(p, "\\u0000 in a string is not supported");
                break;
            }
            put_utf8(out, &len, cp);
        } else {
            fail(p, "invalid escape '\\%c' in a string", e >= 0x20 && e < 0x7f ? e : '?');
            break;
        }
    }
    free(out);
    return NULL;
}

static kv_jsonr_node *parse_value(parser *p, int depth);

static kv_jsonr_node *new_node(parser *p, kv_jsonr_kind kind)
{
    kv_jsonr_node *n = calloc(1, sizeof *n);
    if (!n) {
        fail(p, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = p->line;
    n->col = p->col;
    return n;
}

static int add_child(parser *p, kv_jsonr_node *parent, char *key, kv_jsonr_node *child)
{
    kv_jsonr_node **items = realloc(parent->items, (parent->n + 1) * sizeof *items);
    if (!items)
        return fail(p, "out of memory");
    parent->items = items;
    if (parent->kind == KV_JSONR_OBJ) {
        char **keys = realloc(parent->keys, (parent->n + 1) * sizeof *keys);
        if (!keys)
            return fail(p, "out of memory");
        parent->keys = keys;
        keys[parent->n] = key;
    }
    items[parent->n++] = child;
    return 0;
}

/* object = begin-object [ member *( value-separator member ) ] end-object
 * member = string name-separator value */
static int parse_object(parser *p, kv_jsonr_node *obj, int depth)
{
    char buf[16];
    advance(p);
    skip_ws(p);
    if (p->s < p->end && *p->s == '}') {
        advance(p);
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->s < p->end && *p->s == '}' && obj->n > 0)
            return fail(p, "trailing comma before '}' (not allowed in JSON)");
        if (p->s >= p->end || *p->s != '"')
            return fail(p, "expected a member name in double quotes, got %s", here(p, buf, sizeof buf));
        int kl = p->line, kc = p->col;
        char *key = parse_string(p);
        if (!key)
            return -1;
        for (size_t i = 0; i < obj->n; i++)
            if (!strcmp(obj->keys[i], key)) {
                p->line = kl;
                p->col = kc;
                free(key);
                return fail(p, "duplicate key \"%.64s\"", obj->keys[i]);
            }
        skip_ws(p);
        if (p->s >= p->end || *p->s != ':') {
            free(key);
            return fail(p, "expected ':' after a member name, got %s", here(p, buf, sizeof buf));
        }
        advance(p);
        kv_jsonr_node *v = parse_value(p, depth + 1);
        if (!v || add_child(p, obj, key, v) != 0) {
            free(key);
            node_free(v);
            return -1;
        }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            advance(p);
            continue;
        }
        if (p->s < p->end && *p->s == '}') {
            advance(p);
            return 0;
        }
        return fail(p, "expected ',' or '}' after an object member, got %s", here(p, buf, sizeof buf));
    }
}

/* array = begin-array [ value *( value-separator value ) ] end-array */
static int parse_array(parser *p, kv_jsonr_node *arr, int depth)
{
    char buf[16];
    advance(p);
    skip_ws(p);
    if (p->s < p->end && *p->s == ']') {
        advance(p);
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->s < p->end && *p->s == ']' && arr->n > 0)
            return fail(p, "trailing comma before ']' (not allowed in JSON)");
        kv_jsonr_node *v = parse_value(p, depth + 1);
        if (!v || add_child(p, arr, NULL, v) != 0) {
            node_free(v);
            return -1;
        }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            advance(p);
            continue;
        }
        if (p->s < p->end && *p->s == ']') {
            advance(p);
            return 0;
        }
        return fail(p, "expected ',' or ']' after an array element, got %s", here(p, buf, sizeof buf));
    }
}

/* number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT ) */
static int parse_number(parser *p, kv_jsonr_node *n)
{
    const char *start = p->s, *s = p->s;
    if (s < p->end && *s == '-')
        s++;
    if (s < p->end && *s == '0')
        s++;
    else if (s < p->end && *s >= '1' && *s <= '9')
        while (s < p->end && *s >= '0' && *s <= '9')
            s++;
    else
        return fail(p, "malformed number");
    n->is_int = 1;
    if (s < p->end && *s == '.') {
        s++;
        n->is_int = 0;
        if (!(s < p->end && *s >= '0' && *s <= '9'))
            return fail(p, "malformed number: digits expected after '.'");
        while (s < p->end && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        s++;
        n->is_int = 0;
        if (s < p->end && (*s == '+' || *s == '-'))
            s++;
        if (!(s < p->end && *s >= '0' && *s <= '9'))
            return fail(p, "malformed number: digits expected in the exponent");
        while (s < p->end && *s >= '0' && *s <= '9')
            s++;
    }
    size_t len = (size_t)(s - start);
    if (!(n->str = malloc(len + 1)))
        return fail(p, "out of memory");
    memcpy(n->str, start, len);
    n->str[len] = '\0';
    errno = 0;
    n->num = strtod(n->str, NULL);
    if (errno == ERANGE && fabs(n->num) > 1.0)
        return fail(p, "number %.40s is out of range", n->str);
    while (p->s < s)
        advance(p);
    return 0;
}

static int literal(parser *p, const char *word)
{
    size_t len = strlen(word);
    if ((size_t)(p->end - p->s) < len || memcmp(p->s, word, len) != 0)
        return -1;
    for (size_t i = 0; i < len; i++)
        advance(p);
    return 0;
}

/* value = false / null / true / object / array / number / string */
static kv_jsonr_node *parse_value(parser *p, int depth)
{
    char buf[16];
    skip_ws(p);
    if (depth > KV_JSONR_MAX_DEPTH) {
        fail(p, "nesting deeper than %d levels", KV_JSONR_MAX_DEPTH);
        return NULL;
    }
    if (p->s >= p->end) {
        fail(p, "expected a value, got end of file");
        return NULL;
    }
    char c = *p->s;
    kv_jsonr_kind kind = c == '{' ? KV_JSONR_OBJ : c == '[' ? KV_JSONR_ARR : c == '"' ? KV_JSONR_STR
                         : c == 't' || c == 'f' ? KV_JSONR_BOOL : c == 'n' ? KV_JSONR_NULL : KV_JSONR_NUM;
    if (kind == KV_JSONR_NUM && c != '-' && !(c >= '0' && c <= '9')) {
        fail(p, "expected a value (object, array, string, number, true, false or null), got %s",
             here(p, buf, sizeof buf));
        return NULL;
    }
    kv_jsonr_node *n = new_node(p, kind);
    if (!n)
        return NULL;
    int rc = 0;
    switch (kind) {
    case KV_JSONR_OBJ: rc = parse_object(p, n, depth); break;
    case KV_JSONR_ARR: rc = parse_array(p, n, depth); break;
    case KV_JSONR_STR: rc = (n->str = parse_string(p)) ? 0 : -1; break;
    case KV_JSONR_NUM: rc = parse_number(p, n); break;
    case KV_JSONR_BOOL:
        n->boolean = c == 't';
        rc = literal(p, n->boolean ? "true" : "false");
        break;
    case KV_JSONR_NULL: rc = literal(p, "null"); break;
    }
    if (rc != 0) {
        fail(p, "expected a value (object, array, string, number, true, false or null), got %s",
             here(p, buf, sizeof buf));
        node_free(n);
        return NULL;
    }
    return n;
}

int kv_jsonr_load_mem(kv_jsonr_doc *d, const char *name, const char *buf, size_t len, kv_err *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", name);
    parser p = {d->path, buf, buf + len, 1, 1, err, 0};
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) /* UTF-8 byte order mark */
        p.s += 3;
    d->root = parse_value(&p, 1);
    if (!d->root)
        return -1;
    skip_ws(&p);
    if (p.s < p.end) {
        char b[16];
        fail(&p, "unexpected %s after the end of the JSON value", here(&p, b, sizeof b));
        kv_jsonr_free(d);
        return -1;
    }
    return 0;
}

int kv_jsonr_load_file(kv_jsonr_doc *d, const char *path, kv_err *err)
{
    memset(d, 0, sizeof *d);
    char *buf;
    size_t len;
    if (kv_read_file(path, MAX_FILE_BYTES, &buf, &len, err) != 0)
        return -1;
    int rc = kv_jsonr_load_mem(d, path, buf, len, err);
    free(buf);
    return rc;
}

const kv_jsonr_node *kv_jsonr_get(const kv_jsonr_node *obj, const char *key)
{
    if (!obj || obj->kind != KV_JSONR_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key))
            return obj->items[i];
    return NULL;
}
