/* llm_tok.c — GPT-2 style byte-level BPE from a GGUF file's tokenizer.ggml.*
 * keys, as llama.cpp runs it:
 *
 *  1. control tokens written in the text (<|im_start|>, ...) are split out
 *     first and map to their ids;
 *  2. pre-tokenizer: for "smollm" (and the starcoder family) every digit is
 *     its own piece, then GPT-2's split
 *       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     runs over each piece (other pre-tokenizer names get the GPT-2 split alone);
 *  3. each piece's bytes are mapped to GPT-2's printable byte alphabet and
 *     merged pairwise, lowest merge rank first, until no merge applies.
 *
 * Unicode classes are approximated: ASCII exactly; above ASCII, the usual
 * whitespace code points are spaces, Latin-1 and General Punctuation symbols
 * are punctuation, everything else is a letter. That is exact for English
 * text; scripts with their own digits or punctuation may split differently
 * from llama.cpp. */
#include "llm.h"

#include <stdlib.h>
#include <string.h>

/* ---- a string -> int hash map (open addressing, FNV-1a) ---- */
typedef struct {
    const char *s;
    uint32_t n;
    int32_t v;
} smap_slot;

typedef struct {
    smap_slot *slot;
    size_t cap;
} smap;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int smap_init(smap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 16) m->cap *= 2;
    m->slot = calloc(m->cap, sizeof *m->slot);
    return m->slot ? 0 : -1;
}

static int32_t smap_get(const smap *m, const char *s, size_t n)
{
    for (size_t i = fnv(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const smap_slot *e = &m->slot[i];
        if (!e->s) return -1;
        if (e->n == n && !memcmp(e->s, s, n)) return e->v;
    }
}

/* keeps the first value for a key */
static void smap_put(smap *m, const char *s, size_t n, int32_t v)
{
    for (size_t i = fnv(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        smap_slot *e = &m->slot[i];
        if (!e->s) {
            e->s = s; e->n = (uint32_t)n; e->v = v;
            return;
        }
        if (e->n == n && !memcmp(e->s, s, n)) return;
    }
}

/* ---- a (left, right) -> (rank, merged) map ---- */
typedef struct {
    uint64_t key; /* left << 32 | right, +1 so 0 means empty */
    int32_t rank, id;
} pmap_slot;

struct llm_tokenizer {
    int32_t n_vocab;
    llm_gguf_str *tokens;          /* (n_vocab), into the file */
    int32_t *type;             /* (n_vocab) 1 normal, 3 control, 4 user-defined, ... */
    char **bytes;              /* (n_vocab) decoded bytes */
    size_t *nbytes;
    smap vocab;
    pmap_slot *pairs;
    size_t pcap;
    int32_t *special;          /* ids of control / user-defined tokens, longest text first */
    int nspecial;
    int digits_first;          /* pre-tokenizer isolates digits */
    int32_t eos, eot;
    int32_t byte_id[256];      /* id of each single byte's symbol */
    char *template_;           /* chat template (NUL-terminated copy) or NULL */
};

static uint64_t pkey(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static pmap_slot *pmap_find(const llm_tokenizer *t, uint64_t k)
{
    for (size_t i = (k * 0x9E3779B97F4A7C15ull >> 20) & (t->pcap - 1);; i = (i + 1) & (t->pcap - 1))
        if (t->pairs[i].key == k || t->pairs[i].key == 0)
            return &t->pairs[i];
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n. */
static uint32_t byte_cp(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return (uint32_t)b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
            n++;
    return 256u + (uint32_t)n;
}

static int utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Decodes one UTF-8 code point at s[0..n); invalid bytes decode as themselves (len 1). */
static uint32_t utf8_get(const uint8_t *s, size_t n, size_t *len)
{
    uint32_t c = s[0];
    size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (l == 0 || l > n) { *len = 1; return c; }
    if (l == 1) { *len = 1; return c; }
    uint32_t cp = c & (0x7F >> l);
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) { *len = 1; return c; }
        cp = (cp << 6) | (s[i] & 63);
    }
    *len = l;
    return cp;
}

/* Reverse byte map: a code point of the GPT-2 alphabet to its byte, or -1. */
static int cp_byte(uint32_t cp)
{
    static int16_t rev[512];
    static int init = 0;
    if (!init) { /* idempotent: every thread writes the same values */
        for (int i = 0; i < 512; i++) rev[i] = -1;
        for (int b = 0; b < 256; b++) rev[byte_cp(b)] = (int16_t)b;
        init = 1;
    }
    return cp < 512 ? rev[cp] : -1;
}

int32_t llm_vocab_size(const llm_tokenizer *t) { return t->n_vocab; }
int32_t llm_token_eos(const llm_tokenizer *t) { return t->eos; }
int32_t llm_token_eot(const llm_tokenizer *t) { return t->eot; }

const char *llm_token_bytes(const llm_tokenizer *t, int32_t id, size_t *n)
{
    if (id < 0 || id >= t->n_vocab) { *n = 0; return ""; }
    *n = t->nbytes[id];
    return t->bytes[id];
}

void llm_tokenizer_free(llm_tokenizer *t)
{
    if (!t) return;
    if (t->bytes)
        for (int32_t i = 0; i < t->n_vocab; i++) free(t->bytes[i]);
    free(t->bytes); free(t->nbytes); free(t->type); free(t->vocab.slot); free(t->pairs); free(t->special);
    free(t->template_);
    free(t);
}

/* Control tokens longest text first (so a longer one wins over its prefix), then by id: insertion sort, they are few. */
static void sort_special(llm_tokenizer *t)
{
    for (int i = 1; i < t->nspecial; i++) {
        int32_t x = t->special[i];
        int j = i;
        while (j > 0 && t->tokens[t->special[j - 1]].n < t->tokens[x].n) {
            t->special[j] = t->special[j - 1];
            j--;
        }
        t->special[j] = x;
    }
}

/* Long by design: the tokenizer is built from the GGUF keys in order —
 * vocabulary and token types, decoded bytes, the byte alphabet, merges,
 * special tokens, template — each step filling what the next one reads. */
int llm_tokenizer_load(const llm_gguf_file *g, llm_tokenizer **out, kv_err *err)
{
    *out = NULL;
    llm_gguf_str model;
    if (llm_gguf_get_str(g, "tokenizer.ggml.model", &model, err) != 0)
        return -1;
    if (model.n != 4 || memcmp(model.p, "gpt2", 4))
        return kv_errf(err, "%s: tokenizer.ggml.model is '%.*s'; this tokenizer reads byte-level BPE ('gpt2') only",
                       g->path, (int)model.n, model.p);
    const llm_gguf_kv *tk = llm_gguf_find(g, "tokenizer.ggml.tokens"), *mg = llm_gguf_find(g, "tokenizer.ggml.merges"),
                  *ty = llm_gguf_find(g, "tokenizer.ggml.token_type");
    if (!tk || tk->type != LLM_GGUF_VT_ARRAY || tk->arr_type != LLM_GGUF_VT_STRING || tk->arr_n < 256 || tk->arr_n > INT32_MAX)
        return kv_errf(err, "%s: tokenizer.ggml.tokens: expected an array of at least 256 strings", g->path);
    if (!mg || mg->type != LLM_GGUF_VT_ARRAY || mg->arr_type != LLM_GGUF_VT_STRING)
        return kv_errf(err, "%s: tokenizer.ggml.merges: expected an array of strings", g->path);
    if (ty && (ty->type != LLM_GGUF_VT_ARRAY || ty->arr_type != LLM_GGUF_VT_INT32 || ty->arr_n != tk->arr_n))
        return kv_errf(err, "%s: tokenizer.ggml.token_type: expected %llu int32 values", g->path,
                       (unsigned long long)tk->arr_n);
    llm_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return kv_errf(err, "out of memory");
    const int32_t n = (int32_t)tk->arr_n;
    t->n_vocab = n;
    t->tokens = tk->strs;
    t->type = malloc((size_t)n * sizeof *t->type);
    t->bytes = calloc((size_t)n, sizeof *t->bytes);
    t->nbytes = calloc((size_t)n, sizeof *t->nbytes);
    t->special = malloc((size_t)n * sizeof *t->special);
    t->pcap = 16;
    while (t->pcap < 2 * mg->arr_n + 16) t->pcap *= 2;
    t->pairs = calloc(t->pcap, sizeof *t->pairs);
    if (!t->type || !t->bytes || !t->nbytes || !t->special || !t->pairs || smap_init(&t->vocab, (size_t)n) != 0)
        goto oom;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = 1;
        if (ty) memcpy(&v, (const char *)ty->arr + 4 * (size_t)i, 4);
        t->type[i] = v;
        smap_put(&t->vocab, tk->strs[i].p, (size_t)tk->strs[i].n, i);
        /* decoded bytes: control / user-defined tokens are their text, others map back through the byte alphabet */
        const uint8_t *s = (const uint8_t *)tk->strs[i].p;
        size_t sn = (size_t)tk->strs[i].n;
        t->bytes[i] = malloc(sn + 1);
        if (!t->bytes[i]) goto oom;
        size_t o = 0;
        for (size_t k = 0; k < sn;) {
            size_t l;
            uint32_t cp = utf8_get(s + k, sn - k, &l);
            int b = (v == 3 || v == 4) ? -1 : cp_byte(cp);
            if (b >= 0) t->bytes[i][o++] = (char)b;
            else { memcpy(t->bytes[i] + o, s + k, l); o += l; }
            k += l;
        }
        t->bytes[i][o] = '\0';
        t->nbytes[i] = o;
        if ((v == 3 || v == 4) && sn > 0) t->special[t->nspecial++] = i;
    }
    sort_special(t);
    for (int b = 0; b < 256; b++) {
        char u[4];
        int l = utf8_put(byte_cp(b), u);
        t->byte_id[b] = smap_get(&t->vocab, u, (size_t)l);
    }
    /* Vocabularies may lack bytes that never occur in UTF-8 text (0xC0, 0xF5.., some controls): those map to the
     * unknown token (llama.cpp cannot tokenize them either). */
    {
        int64_t unk = 0;
        if (llm_gguf_opt_i64(g, "tokenizer.ggml.unknown_token_id", &unk, NULL) != 1 || unk < 0 || unk >= n) unk = 0;
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0) t->byte_id[b] = (int32_t)unk;
    }
    for (uint64_t r = 0; r < mg->arr_n; r++) {
        const char *s = mg->strs[r].p;
        size_t sn = (size_t)mg->strs[r].n;
        const char *sp = memchr(s, ' ', sn);
        if (!sp || sp == s || sp == s + sn - 1) {
            llm_tokenizer_free(t);
            return kv_errf(err, "%s: tokenizer.ggml.merges[%llu] '%.*s': expected 'left right'", g->path,
                           (unsigned long long)r, (int)(sn > 64 ? 64 : sn), s);
        }
        size_t nl = (size_t)(sp - s);
        int32_t a = smap_get(&t->vocab, s, nl), b = smap_get(&t->vocab, sp + 1, sn - nl - 1);
        char buf[512];
        if (sn - 1 > sizeof buf) continue;
        memcpy(buf, s, nl);
        memcpy(buf + nl, sp + 1, sn - nl - 1);
        int32_t c = smap_get(&t->vocab, buf, sn - 1);
        if (a < 0 || b < 0 || c < 0) continue; /* a merge whose pieces are not tokens can never apply */
        pmap_slot *e = pmap_find(t, pkey(a, b));
        if (e->key == 0) {
            e->key = pkey(a, b);
            e->rank = (int32_t)r;
            e->id = c;
        }
    }
    int64_t v;
    t->eos = llm_gguf_opt_i64(g, "tokenizer.ggml.eos_token_id", &v, NULL) == 1 ? (int32_t)v : -1;
    t->eot = smap_get(&t->vocab, "<|im_end|>", 10);
    if (t->eot < 0) t->eot = t->eos;
    llm_gguf_str pre;
    if (llm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL) == 0) {
        static const char *const digit_pre[] = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                                                "minerva-7b", NULL};
        for (int i = 0; digit_pre[i]; i++)
            if (pre.n == strlen(digit_pre[i]) && !memcmp(pre.p, digit_pre[i], pre.n)) t->digits_first = 1;
    }
    llm_gguf_str tpl;
    if (llm_gguf_get_str(g, "tokenizer.chat_template", &tpl, NULL) == 0) {
        t->template_ = malloc((size_t)tpl.n + 1);
        if (!t->template_) goto oom;
        memcpy(t->template_, tpl.p, (size_t)tpl.n);
        t->template_[tpl.n] = '\0';
    }
    *out = t;
    return 0;
oom:
    llm_tokenizer_free(t);
    return kv_errf(err, "out of memory loading the tokenizer");
}

/* ---- pre-tokenizer ---- */
static int is_space_cp(uint32_t c)
{
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
static int is_digit_cp(uint32_t c) { return (c >= '0' && c <= '9') || c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE); }
static int is_letter_cp(uint32_t c)
{
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (is_space_cp(c) || is_digit_cp(c)) return 0;
    if (c >= 0xA1 && c <= 0xBF) return c == 0xAA || c == 0xB5 || c == 0xBA;
    if (c == 0xD7 || c == 0xF7) return 0;
    if (c >= 0x2000 && c <= 0x2BFF) return 0; /* punctuation, symbols, arrows, math, boxes */
    if (c >= 0x3000 && c <= 0x303F) return 0;
    if (c >= 0xFE30 && c <= 0xFE4F) return 0;
    if (c >= 0x1F000) return 0;              /* emoji and pictographs */
    return 1;
}

/* BPE of one piece (bytes s[0..n)), appending ids. */
static int64_t bpe_piece(const llm_tokenizer *t, const uint8_t *s, size_t n, int32_t *ids, int64_t cap, int64_t at,
                         int32_t *sym)
{
    int64_t m = 0;
    for (size_t i = 0; i < n; i++)
        sym[m++] = t->byte_id[s[i]];
    /* Multi-byte UTF-8 symbols start as bytes; merges build them back exactly as GPT-2 does. */
    for (;;) {
        int32_t best = INT32_MAX;
        int64_t bi = -1;
        for (int64_t i = 0; i + 1 < m; i++) {
            const pmap_slot *e = pmap_find(t, pkey(sym[i], sym[i + 1]));
            if (e->key && e->rank < best) {
                best = e->rank;
                bi = i;
            }
        }
        if (bi < 0) break;
        sym[bi] = pmap_find(t, pkey(sym[bi], sym[bi + 1]))->id;
        memmove(sym + bi + 1, sym + bi + 2, (size_t)(m - bi - 2) * sizeof *sym);
        m--;
    }
    for (int64_t i = 0; i < m; i++, at++)
        if (at < cap) ids[at] = sym[i];
    return at;
}

/* GPT-2 split of text[0..n) (code points cps with byte offsets off), calling bpe_piece per piece. */
static int64_t gpt2_split(const llm_tokenizer *t, const uint8_t *text, const uint32_t *cp, const size_t *off, size_t ncp,
                          int32_t *ids, int64_t cap, int64_t at, int32_t *sym)
{
#define CP(i) ((i) < ncp ? cp[(i)] : 0xFFFFFFFFu)
    size_t pos = 0;
    while (pos < ncp) {
        const size_t start = pos;
        const uint32_t c = cp[pos];
        if (c == '\'' && pos + 1 < ncp) {
            uint32_t c1 = CP(pos + 1), c2 = CP(pos + 2);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') pos += 2;
            else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) pos += 3;
        }
        if (pos == start) {
            const uint32_t cc = (c == ' ' && pos + 1 < ncp) ? cp[pos + 1] : c;
            const size_t sp = (c == ' ' && pos + 1 < ncp) ? 1 : 0;
            if (is_letter_cp(cc)) {
                pos += sp;
                while (pos < ncp && is_letter_cp(cp[pos])) pos++;
            } else if (is_digit_cp(cc)) {
                pos += sp;
                while (pos < ncp && is_digit_cp(cp[pos])) pos++;
            } else if (!is_space_cp(cc)) {
                pos += sp;
                while (pos < ncp && !is_space_cp(cp[pos]) && !is_letter_cp(cp[pos]) && !is_digit_cp(cp[pos])) pos++;
            } else {
                size_t ws = 0;
                while (pos + ws < ncp && is_space_cp(cp[pos + ws])) ws++;
                if (ws > 1 && pos + ws < ncp) pos += ws - 1; /* \s+(?!\S): leave one space for the next word */
                else if (ws > 0) pos += ws;
                else pos++;
            }
        }
        const size_t b0 = off[start], b1 = pos < ncp ? off[pos] : off[ncp];
        at = bpe_piece(t, text + b0, b1 - b0, ids, cap, at, sym);
    }
#undef CP
    return at;
}

/* Plain text (no control tokens) text[0..n). */
static int64_t tokenize_plain(const llm_tokenizer *t, const uint8_t *text, size_t n, int32_t *ids, int64_t cap,
                              int64_t at, uint32_t *cp, size_t *off, int32_t *sym)
{
    size_t ncp = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        off[ncp] = i;
        cp[ncp++] = utf8_get(text + i, n - i, &l);
        i += l;
    }
    off[ncp] = n;
    if (!t->digits_first)
        return gpt2_split(t, text, cp, off, ncp, ids, cap, at, sym);
    /* \p{N}: each digit alone; the gaps between go through the GPT-2 split */
    size_t a = 0;
    for (size_t i = 0; i <= ncp; i++) {
        if (i == ncp || is_digit_cp(cp[i])) {
            if (i > a) /* off[] holds offsets into text, so the gap's slice needs no rebasing */
                at = gpt2_split(t, text, cp + a, off + a, i - a, ids, cap, at, sym);
            if (i < ncp) at = bpe_piece(t, text + off[i], off[i + 1] - off[i], ids, cap, at, sym);
            a = i + 1;
        }
    }
    return at;
}

int64_t llm_tokenize(const llm_tokenizer *t, const char *text, size_t len, int32_t *ids, int64_t cap)
{
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    size_t *off = malloc((len + 1) * sizeof *off);
    int32_t *sym = malloc((len + 1) * sizeof *sym);
    if (!cp || !off || !sym) {
        free(cp); free(off); free(sym);
        return -1;
    }
    const uint8_t *s = (const uint8_t *)text;
    int64_t at = 0;
    size_t a = 0, i = 0;
    while (i < len) {
        int32_t hit = -1;
        for (int k = 0; k < t->nspecial; k++) {
            const llm_gguf_str *tk = &t->tokens[t->special[k]];
            if (tk->p[0] == (char)s[i] && tk->n <= len - i && !memcmp(s + i, tk->p, (size_t)tk->n)) {
                hit = t->special[k];
                break;
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        if (i > a) at = tokenize_plain(t, s + a, i - a, ids, cap, at, cp, off, sym);
        if (at < cap) ids[at] = hit;
        at++;
        i += (size_t)t->tokens[hit].n;
        a = i;
    }
    if (len > a) at = tokenize_plain(t, s + a, len - a, ids, cap, at, cp, off, sym);
    free(cp); free(off); free(sym);
    return at;
}

/* ---- chat template ---- */
int64_t llm_chat_format(const llm_tokenizer *t, const char *system, const char *user, char *out, size_t cap)
{
    if (!t->template_ || !strstr(t->template_, "<|im_start|>"))
        return -1;
    char defsys[512] = "";
    if (!system) {
        /* the template's default: '<|im_start|>system\n<text><|im_end|>' */
        const char *p = strstr(t->template_, "<|im_start|>system\n");
        const char *q = p ? strstr(p, "<|im_end|>") : NULL;
        if (p && q) {
            p += strlen("<|im_start|>system\n");
            size_t n = (size_t)(q - p) < sizeof defsys - 1 ? (size_t)(q - p) : sizeof defsys - 1;
            memcpy(defsys, p, n);
            defsys[n] = '\0';
            system = defsys;
        }
    }
    int n;
    if (system)
        n = snprintf(out, cap, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                     system, user);
    else
        n = snprintf(out, cap, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
