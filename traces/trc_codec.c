/* trc_codec.c — the pieces of the trace format the writer and the reader
 * share: CRC32C (slice-by-8, software), the header field table, position-list
 * encoding and a growable byte buffer. No I/O here. */
#include "trc_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), slice-by-8 ---- */
static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
    crc_ready = 1;
}

/* crc: 0 to start; chain by passing the previous result. The tables are
 * built once (deterministic content, so a benign first-use race writes the
 * same values; trc_record_run and trc_open call it before any thread). */
uint32_t trc_crc32c(uint32_t crc, const void *buf, size_t n)
{
    if (!crc_ready)
        crc_init();
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ trc_rd32(p), hi = trc_rd32(p + 4);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
            crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^ crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

/* ---- buffers ---- */
int trc_buf_reserve(trc_buf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

void trc_buf_free(trc_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- position lists (FORMAT.md "Position lists") ----
 * count, then items: v = gap << 1 | is_run; a run carries e = length - 2. */
size_t trc_poslist_encode(const int32_t *pos, int64_t n, uint8_t *out)
{
    size_t o = trc_varint(out, (uint64_t)n);
    int64_t next = 0; /* first position the next item may start at */
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && pos[j] == pos[j - 1] + 1)
            j++;
        const uint64_t gap = (uint64_t)(pos[i] - next);
        if (j - i >= 2) {
            o += trc_varint(out + o, gap << 1 | 1);
            o += trc_varint(out + o, (uint64_t)(j - i - 2));
        } else {
            o += trc_varint(out + o, gap << 1);
        }
        next = (int64_t)pos[j - 1] + 1;
        i = j;
    }
    return o;
}

/* ---- names ---- */
const char *trc_pool_name(rkv_pool p) { return p == RKV_POOL_AVG ? "avg" : "max"; }
const char *trc_gran_name(rkv_granularity g) { return g == RKV_GRAN_PAGE ? "page" : "token"; }
const char *trc_split_name(rkv_split s) { return s == RKV_SPLIT_EVEN ? "even" : "default"; }

int trc_field_kind(trc_ftype t)
{
    switch (t) {
    case TRC_F_INT: case TRC_F_I64: case TRC_F_U64: return TRC_K_INT;
    case TRC_F_F64: return TRC_K_F64;
    case TRC_F_LAYERS: case TRC_F_TURNS_IN: case TRC_F_TURNS_OUT: return TRC_K_LIST;
    default: return TRC_K_STR;
    }
}

/* ---- the header field table: FORMAT.md's list, in file order ---- */
#define H(f) offsetof(trc_header, f)
#define S(f) offsetof(trc_header, f), sizeof(((trc_header *)0)->f)
const trc_field trc_fields[] = {
    {"format", TRC_F_STR, S(format)},
    {"kvsim_version", TRC_F_STR, S(kvsim_version)},
    {"model.name", TRC_F_STR, S(model.name)},
    {"model.num_hidden_layers", TRC_F_INT, H(model.num_hidden_layers), 0},
    {"model.num_attention_heads", TRC_F_INT, H(model.num_attention_heads), 0},
    {"model.num_key_value_heads", TRC_F_INT, H(model.num_key_value_heads), 0},
    {"model.head_dim", TRC_F_INT, H(model.head_dim), 0},
    {"model.hidden_size", TRC_F_INT, H(model.hidden_size), 0},
    {"model.intermediate_size", TRC_F_INT, H(model.intermediate_size), 0},
    {"model.vocab_size", TRC_F_INT, H(model.vocab_size), 0},
    {"model.max_position_embeddings", TRC_F_INT, H(model.max_position_embeddings), 0},
    {"model.rope_theta", TRC_F_F64, H(model.rope_theta), 0},
    {"model.tie_word_embeddings", TRC_F_INT, H(model.tie_word_embeddings), 0},
    {"model.torch_dtype", TRC_F_STR, S(model.torch_dtype)},
    {"model.attention_bias", TRC_F_INT, H(model.attention_bias), 0},
    {"method", TRC_F_METHOD, H(params.method), 0},
    {"S", TRC_F_I64, H(params.S), 0},
    {"max_new", TRC_F_I64, H(params.max_new), 0},
    {"S_total", TRC_F_I64, H(params.S_total), 0},
    {"budget", TRC_F_I64, H(params.budget), 0},
    {"d", TRC_F_INT, H(params.d), 0},
    {"G", TRC_F_INT, H(params.G), 0},
    {"kv_dtype", TRC_F_DTYPE, H(params.kv_dtype), 0},
    {"aux_dtype", TRC_F_DTYPE, H(params.aux_dtype), 0},
    {"prompt_budget", TRC_F_I64, H(params.prompt_budget), 0},
    {"window_size", TRC_F_I64, H(params.window_size), 0},
    {"kernel_size", TRC_F_I64, H(params.kernel_size), 0},
    {"pool", TRC_F_POOL, H(params.pool), 0},
    {"page_size", TRC_F_I64, H(params.page_size), 0},
    {"topr", TRC_F_I64, H(params.topr), 0},
    {"topk", TRC_F_I64, H(params.topk), 0},
    {"rho", TRC_F_F64, H(params.rho), 0},
    {"c", TRC_F_F64, H(params.c), 0},
    {"c2", TRC_F_F64, H(params.c2), 0},
    {"capacity", TRC_F_I64, H(params.capacity), 0},
    {"compression_ratio", TRC_F_F64, H(params.compression_ratio), 0},
    {"evicts", TRC_F_INT, H(params.evicts), 0},
    {"granularity", TRC_F_GRAN, H(params.granularity), 0},
    {"split", TRC_F_SPLIT, H(params.split), 0},
    {"local_window", TRC_F_I64, H(params.local_window), 0},
    {"skip_layers", TRC_F_I64, H(params.skip_layers), 0},
    {"sink_tokens", TRC_F_I64, H(params.sink_tokens), 0},
    {"mean_v", TRC_F_INT, H(params.mean_v), 0},
    {"workload.generator", TRC_F_STR, S(wl.generator)},
    {"workload.path", TRC_F_STR, S(wl.path)},
    {"workload.file_fnv1a64", TRC_F_U64, H(workload_hash), 0},
    {"workload.seed", TRC_F_U64, H(wl.seed), 0},
    {"workload.key_rank", TRC_F_INT, H(wl.key_rank), 0},
    {"workload.topic_run_mean", TRC_F_F64, H(wl.topic_run_mean), 0},
    {"workload.num_topics", TRC_F_INT, H(wl.num_topics), 0},
    {"workload.topic_strength", TRC_F_F64, H(wl.topic_strength), 0},
    {"workload.key_noise", TRC_F_F64, H(wl.key_noise), 0},
    {"workload.outlier_channels", TRC_F_INT, H(wl.outlier_channels), 0},
    {"workload.outlier_scale", TRC_F_F64, H(wl.outlier_scale), 0},
    {"workload.sink_tokens", TRC_F_INT, H(wl.sink_tokens), 0},
    {"workload.sink_strength", TRC_F_F64, H(wl.sink_strength), 0},
    {"workload.recency_strength", TRC_F_F64, H(wl.recency_strength), 0},
    {"workload.needles", TRC_F_INT, H(wl.needles), 0},
    {"workload.needle_strength", TRC_F_F64, H(wl.needle_strength), 0},
    {"workload.focus_topics", TRC_F_INT, H(wl.focus_topics), 0},
    {"workload.query_focus", TRC_F_F64, H(wl.query_focus), 0},
    {"workload.query_noise", TRC_F_F64, H(wl.query_noise), 0},
    {"workload.query_content", TRC_F_F64, H(wl.query_content), 0},
    {"workload.query_persistence", TRC_F_F64, H(wl.query_persistence), 0},
    {"workload.decode_drift", TRC_F_F64, H(wl.decode_drift), 0},
    {"workload.head_diversity", TRC_F_F64, H(wl.head_diversity), 0},
    {"workload.value_noise", TRC_F_F64, H(wl.value_noise), 0},
    {"workload.rope_theta", TRC_F_F64, H(wl.rope_theta), 0},
    {"workload.nturns", TRC_F_INT, H(wl.nturns), 0},
    {"workload.turn_input", TRC_F_TURNS_IN, H(wl.turn_input), 0},
    {"workload.turn_output", TRC_F_TURNS_OUT, H(wl.turn_output), 0},
    {"layout.kv_page_tokens", TRC_F_INT, H(kv_page_tokens), 0},
    {"layout.kv_order", TRC_F_STR, 0, 0},
    {"layout.aux_order", TRC_F_STR, 0, 0},
    {"layout.sector_bytes", TRC_F_INT, H(sector_bytes), 0},
    {"layout.slots", TRC_F_STR, 0, 0},
    {"steps", TRC_F_I64, H(steps), 0},
    {"batch", TRC_F_INT, H(batch), 0},
    {"kv_heads", TRC_F_INT, H(kv_heads), 0},
    {"layers", TRC_F_LAYERS, H(layers), 0},
    {"fidelity", TRC_F_INT, H(fidelity), 0},
    {"weights_bytes_per_layer", TRC_F_I64, H(weights_bytes_per_layer), 0},
};
const size_t trc_nfields = sizeof trc_fields / sizeof trc_fields[0];
