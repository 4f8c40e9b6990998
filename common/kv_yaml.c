/* kv_yaml.c — the strict YAML reader of kv_yaml.h.
 *
 * libyaml's event stream is folded into a small tree with an explicit stack
 * (depth bounded by KV_YAML_MAX_DEPTH, so hostile input cannot recurse us
 * into the ground). Scalars are kept as text; typing happens only when a
 * caller asks for a key with a type. Nothing here prints. */
#include "kv_yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_FILE_BYTES (16u << 20)

int kv_yaml_errf(const kv_yaml_doc *d, int line, int col, kv_err *err, const char *fmt, ...)
{
    if (err) {
        char what[640];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        kv_errf(err, "%s:%d:%d: %s", d->path, line, col, what);
    }
    return -1;
}

/* ---- tree ---- */
static void node_free(kv_yaml_node *n)
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
    free(n->key_line);
    free(n->key_col);
    free(n->text);
    free(n);
}

void kv_yaml_free(kv_yaml_doc *d)
{
    if (!d)
        return;
    node_free(d->root);
    d->root = NULL;
}

static kv_yaml_node *node_new(kv_yaml_kind kind, const yaml_mark_t *m)
{
    kv_yaml_node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = (int)m->line + 1;
        n->col = (int)m->column + 1;
    }
    return n;
}

/* Appends child (and, for a MAP, its key, taking ownership of it). */
static int node_add(kv_yaml_node *p, char *key, int kl, int kc, kv_yaml_node *child)
{
    size_t n = p->n + 1;
    kv_yaml_node **items = realloc(p->items, n * sizeof *items);
    if (!items)
        return -1;
    p->items = items;
    if (p->kind == KV_YAML_MAP) {
        char **keys = realloc(p->keys, n * sizeof *keys);
        if (!keys)
            return -1;
        p->keys = keys;
        int *ln = realloc(p->key_line, n * sizeof *ln);
        if (!ln)
            return -1;
        p->key_line = ln;
        int *cn = realloc(p->key_col, n * sizeof *cn);
        if (!cn)
            return -1;
        p->key_col = cn;
        keys[p->n] = key;
        ln[p->n] = kl;
        cn[p->n] = kc;
    }
    items[p->n] = child;
    p->n = n;
    return 0;
}

typedef struct {
    kv_yaml_node *node;
    char *key; /* pending key of a MAP, NULL when the next scalar is a key */
    int key_line, key_col;
} frame;

static char *dup_bytes(const unsigned char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* One value event (scalar, mapping start, sequence start) arriving at the top frame. */
static int on_value(kv_yaml_doc *d, frame *st, int *sp, const yaml_event_t *ev, kv_err *err)
{
    const yaml_mark_t *m = &ev->start_mark;
    int line = (int)m->line + 1, col = (int)m->column + 1;
    if (ev->type == YAML_ALIAS_EVENT)
        return kv_yaml_errf(d, line, col, err, "aliases (*name) are not supported; write the value out");
    if (*sp == 0) {
        if (ev->type != YAML_MAPPING_START_EVENT || d->root)
            return kv_yaml_errf(d, line, col, err, "expected a mapping of 'key: value' lines at the top level");
        if (!(d->root = node_new(KV_YAML_MAP, m)))
            return kv_yaml_errf(d, line, col, err, "out of memory");
        st[(*sp)++] = (frame){d->root, NULL, 0, 0};
        return 0;
    }
    frame *top = &st[*sp - 1];
    if (top->node->kind == KV_YAML_MAP && !top->key) {
        if (ev->type != YAML_SCALAR_EVENT)
            return kv_yaml_errf(d, line, col, err, "mapping keys must be plain words, not a mapping or sequence");
        const char *k = (const char *)ev->data.scalar.value;
        for (size_t i = 0; i < top->node->n; i++)
            if (!strcmp(top->node->keys[i], k))
                return kv_yaml_errf(d, line, col, err, "duplicate key '%.64s' (first at line %d)", k,
                                    top->node->key_line[i]);
        if (!(top->key = dup_bytes(ev->data.scalar.value, ev->data.scalar.length)))
            return kv_yaml_errf(d, line, col, err, "out of memory");
        top->key_line = line;
        top->key_col = col;
        return 0;
    }
    kv_yaml_kind kind = ev->type == YAML_SCALAR_EVENT ? KV_YAML_SCALAR
                        : ev->type == YAML_MAPPING_START_EVENT ? KV_YAML_MAP : KV_YAML_SEQ;
    if (kind != KV_YAML_SCALAR && *sp >= KV_YAML_MAX_DEPTH)
        return kv_yaml_errf(d, line, col, err, "nesting deeper than %d levels is not supported",
                            KV_YAML_MAX_DEPTH);
    kv_yaml_node *n = node_new(kind, m);
    if (!n)
        return kv_yaml_errf(d, line, col, err, "out of memory");
    if (kind == KV_YAML_SCALAR) {
        n->text = dup_bytes(ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (!n->text || strlen(n->text) != ev->data.scalar.length) {
            const char *why = n->text ? "NUL byte in a value" : "out of memory";
            node_free(n);
            return kv_yaml_errf(d, line, col, err, "%s", why);
        }
    }
    if (node_add(top->node, top->key, top->key_line, top->key_col, n) != 0) {
        node_free(n);
        return kv_yaml_errf(d, line, col, err, "out of memory");
    }
    top->key = NULL; /* owned by the node now */
    if (kind != KV_YAML_SCALAR)
        st[(*sp)++] = (frame){n, NULL, 0, 0};
    return 0;
}

int kv_yaml_load_mem(kv_yaml_doc *d, const char *name, const void *buf, size_t len, kv_err *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", name);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return kv_errf(err, "%s: cannot initialise the YAML parser", name);
    yaml_parser_set_input_string(&parser, buf, len);

    frame st[KV_YAML_MAX_DEPTH];
    int sp = 0, ndocs = 0, rc = 0, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            const char *ctx = parser.context;
            rc = kv_yaml_errf(d, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                              err, "YAML syntax error: %s%s%s%s",
                              parser.problem ? parser.problem : "malformed input", ctx ? " (" : "",
                              ctx ? ctx : "", ctx ? ")" : "");
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1)
                rc = kv_yaml_errf(d, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, err,
                                  "more than one YAML document in the file");
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            rc = on_value(d, st, &sp, &ev, err);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            if (sp > 0)
                sp--;
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    for (int i = 0; i < sp; i++)
        free(st[i].key);
    yaml_parser_delete(&parser);
    if (!rc && !d->root)
        rc = kv_yaml_errf(d, 1, 1, err, "the file is empty; expected a mapping of 'key: value' lines");
    if (rc)
        kv_yaml_free(d);
    return rc;
}

int kv_yaml_load_file(kv_yaml_doc *d, const char *path, kv_err *err)
{
    memset(d, 0, sizeof *d);
    char *buf;
    size_t len;
    if (kv_read_file(path, MAX_FILE_BYTES, &buf, &len, err) != 0)
        return -1;
    int rc = kv_yaml_load_mem(d, path, buf, len, err);
    free(buf);
    return rc;
}

/* ---- lookup and typing ---- */
const kv_yaml_node *kv_yaml_get(const kv_yaml_node *map, const char *key)
{
    if (!map || map->kind != KV_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

void kv_yaml_key_list(char *buf, size_t cap, const char *const *allowed)
{
    size_t len = strlen(buf);
    const char *lead = "expected one of: ";
    for (int i = 0; allowed[i] && len + 1 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : lead, allowed[i]);
        if (w < 0 || (size_t)w >= cap - len) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            return;
        }
        len += (size_t)w;
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65], prev[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, (lb + 1) * sizeof *row);
    }
    return prev[lb];
}

const char *kv_yaml_nearest(const char *key, const char *const *allowed)
{
    const char *best = NULL;
    size_t bestd = strlen(key) < 8 ? 2 : 3; /* further than this is not a typo */
    for (int i = 0; allowed[i]; i++) {
        size_t dd = edit_distance(key, allowed[i]);
        if (dd <= bestd && (!best || dd < bestd)) {
            best = allowed[i];
            bestd = dd;
        }
    }
    return best;
}

int kv_yaml_check_keys(const kv_yaml_doc *d, const kv_yaml_node *map, const char *const *allowed,
                       kv_err *err)
{
    for (size_t i = 0; i < map->n; i++) {
        int ok = 0;
        for (int k = 0; allowed[k] && !ok; k++)
            ok = !strcmp(map->keys[i], allowed[k]);
        if (ok)
            continue;
        char list[600] = "";
        const char *near = kv_yaml_nearest(map->keys[i], allowed);
        if (near)
            snprintf(list, sizeof list, "did you mean '%s'? ", near);
        kv_yaml_key_list(list, sizeof list, allowed);
        return kv_yaml_errf(d, map->key_line[i], map->key_col[i], err, "unknown key '%.64s' (%s)",
                            map->keys[i], list);
    }
    return 0;
}

/* [+-]? digits [. digits] [e [+-] digits], with at least one digit before the exponent. */
static int is_plain_number(const char *s)
{
    int digits = 0;
    if (*s == '+' || *s == '-')
        s++;
    while (*s >= '0' && *s <= '9')
        s++, digits++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++, digits++;
    }
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

int kv_yaml_scalar_f64(const kv_yaml_node *v, double *out)
{
    if (!v || v->kind != KV_YAML_SCALAR || v->quoted || !is_plain_number(v->text))
        return -1;
    errno = 0;
    double x = strtod(v->text, NULL);
    if (errno == ERANGE || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

int kv_yaml_scalar_i64(const kv_yaml_node *v, int64_t *out)
{
    if (!v || v->kind != KV_YAML_SCALAR || v->quoted || !is_plain_number(v->text))
        return -1;
    if (!strpbrk(v->text, ".eE")) {
        errno = 0;
        long long x = strtoll(v->text, NULL, 10);
        if (errno == ERANGE)
            return -1;
        *out = x;
        return 0;
    }
    double x;
    if (kv_yaml_scalar_f64(v, &x) != 0 || x != floor(x) || fabs(x) >= 9.2e18)
        return -1;
    *out = (int64_t)x;
    return 0;
}

/* Finds key; fills *v (NULL when absent). Returns -1 (error) when absent and required. */
static int lookup(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                  const kv_yaml_node **v, kv_err *err)
{
    *v = kv_yaml_get(map, key);
    if (*v || !required)
        return 0;
    int root = map == d->root;
    return kv_yaml_errf(d, root ? 1 : map->line, root ? 1 : map->col, err, "missing key '%s'", key);
}

static int type_error(const kv_yaml_doc *d, const char *key, const kv_yaml_node *v, const char *what,
                      kv_err *err)
{
    if (v->kind != KV_YAML_SCALAR)
        return kv_yaml_errf(d, v->line, v->col, err, "key '%s': expected %s, got a %s", key, what,
                            v->kind == KV_YAML_MAP ? "mapping" : "sequence");
    if (v->quoted)
        return kv_yaml_errf(d, v->line, v->col, err, "key '%s': expected %s, got the quoted string \"%.64s\"",
                            key, what, v->text);
    return kv_yaml_errf(d, v->line, v->col, err, "key '%s': expected %s, got '%.64s'", key, what, v->text);
}

int kv_yaml_int(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                int64_t min, int64_t max, int64_t *out, kv_err *err)
{
    const kv_yaml_node *v;
    if (lookup(d, map, key, required, &v, err) != 0)
        return -1;
    if (!v)
        return 0;
    int64_t x = 0;
    int bad = kv_yaml_scalar_i64(v, &x) != 0;
    if (bad || x < min || x > max) {
        if (bad)
            x = min;
        char what[96];
        if (x > max)
            snprintf(what, sizeof what, "an integer at most %lld", (long long)max);
        else if (min == 1 && max >= INT_MAX)
            snprintf(what, sizeof what, "a positive integer");
        else if (min == 0 && max >= INT_MAX)
            snprintf(what, sizeof what, "a non-negative integer");
        else
            snprintf(what, sizeof what, "an integer in [%lld, %lld]", (long long)min, (long long)max);
        return type_error(d, key, v, what, err);
    }
    *out = x;
    return 0;
}

int kv_yaml_num(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                double lo, int lo_open, double hi, double *out, kv_err *err)
{
    const kv_yaml_node *v;
    if (lookup(d, map, key, required, &v, err) != 0)
        return -1;
    if (!v)
        return 0;
    double x;
    if (kv_yaml_scalar_f64(v, &x) != 0 || x < lo || (lo_open && x == lo) || x > hi) {
        char what[96];
        if (isinf(hi) && lo == 0)
            snprintf(what, sizeof what, lo_open ? "a positive number" : "a non-negative number");
        else if (isinf(hi))
            snprintf(what, sizeof what, "a number %s %g", lo_open ? ">" : ">=", lo);
        else
            snprintf(what, sizeof what, "a number in %c%g, %g]", lo_open ? '(' : '[', lo, hi);
        return type_error(d, key, v, what, err);
    }
    *out = x;
    return 0;
}

int kv_yaml_bool(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                 int *out, kv_err *err)
{
    const kv_yaml_node *v;
    if (lookup(d, map, key, required, &v, err) != 0)
        return -1;
    if (!v)
        return 0;
    if (v->kind == KV_YAML_SCALAR && !v->quoted && (!strcmp(v->text, "true") || !strcmp(v->text, "false"))) {
        *out = v->text[0] == 't';
        return 0;
    }
    return type_error(d, key, v, "true or false", err);
}

int kv_yaml_str(const kv_yaml_doc *d, const kv_yaml_node *map, const char *key, int required,
                char *out, size_t cap, kv_err *err)
{
    const kv_yaml_node *v;
    if (lookup(d, map, key, required, &v, err) != 0)
        return -1;
    if (!v)
        return 0;
    if (v->kind != KV_YAML_SCALAR || strlen(v->text) >= cap || (required && !v->text[0])) {
        char what[64];
        snprintf(what, sizeof what, "a non-empty string of at most %zu bytes", cap - 1);
        return type_error(d, key, v, what, err);
    }
    memcpy(out, v->text, strlen(v->text) + 1);
    return 0;
}

/* ---- data file lookup ---- */
void kv_path_stem(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml"))
        len -= 5;
    else if (len > 5 && !strcmp(base + len - 5, ".json"))
        len -= 5;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, base, len);
    out[len] = '\0';
}

static int file_exists(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    fclose(fp);
    return 1;
}

int kv_data_find(const char *subdir, const char *datadir, const char *name_or_path, const char *what,
                 const char *const *known, char *out, size_t cap, kv_err *err)
{
    size_t len = strlen(name_or_path);
    if (strchr(name_or_path, '/') || (len > 5 && !strcmp(name_or_path + len - 5, ".yaml"))) {
        if (len >= cap)
            return kv_errf(err, "%s: path too long", name_or_path);
        memcpy(out, name_or_path, len + 1);
        return 0;
    }
    int ok = len > 0 && len < 64;
    for (const char *c = name_or_path; *c && ok; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '.' || *c == '_' || *c == '-';
    char names[400] = "";
    for (int i = 0; known && known[i]; i++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", known[i]);
    }
    if (!ok)
        return kv_errf(err, "'%.64s' is neither a %s name (%s) nor a path to a .yaml file", name_or_path,
                       what, names);
    const char *env = getenv("KVSIM_DATA");
    const char *dirs[2] = {env && *env ? env : NULL, datadir};
    char tried[2][600] = {"", ""};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        int w = snprintf(tried[i], sizeof tried[i], "%s/%s/%s.yaml", dirs[i], subdir, name_or_path);
        if (w > 0 && (size_t)w < sizeof tried[i] && (size_t)w < cap && file_exists(tried[i])) {
            memcpy(out, tried[i], (size_t)w + 1);
            return 0;
        }
    }
    return kv_errf(err, "unknown %s '%s' (no %s%s%s; bundled: %s)", what, name_or_path, tried[0],
                   tried[0][0] ? " nor " : "", tried[1], names);
}
