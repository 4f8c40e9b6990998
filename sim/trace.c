/* trace.c — a trace (traces/FORMAT.md) as a sim_access_source: the exact
 * bytes each (step, layer, KV head) read, summed over KV heads and averaged
 * over the trace's sequences, with the exact reads' contiguous runs counted
 * from the attended positions in slot space (a position's slot is its rank
 * in the method's cache: stage-1 retained prompt positions, then generated
 * ones). Two positions form one run when no cached token lies between them.
 * Aux and write runs follow the layout the format states (dims-major aux),
 * so they equal the analytic ones.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "trc.h"

struct sim_trace {
    trc_reader *r;
    const trc_header *h;
    sim_access_source src;
    trc_stage1 *s1;             /* (batch) */
    trc_step st;
    int64_t cached_step;        /* step whose layers are in acc, or -1 */
    sim_layer_access *acc;      /* (nlayers + 1): recorded layers, then their mean */
    int *layer_index;           /* (num_hidden_layers): index into acc */
};

/* Rank of position x in the kept prompt list K[0..n) (ascending), i.e. its slot. */
static int64_t slot_of(const int32_t *K, int64_t n, int64_t S, int64_t x)
{
    if (x >= S)
        return n + (x - S);
    int64_t lo = 0, hi = n; /* first index with K[i] >= x */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (K[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Contiguous slot runs of an ascending position list. */
static double count_runs(const int32_t *pos, int64_t n, const int32_t *K, int64_t nk, int64_t S)
{
    if (n <= 0)
        return 0.0;
    double runs = 1.0;
    for (int64_t i = 1; i < n; i++) {
        if (pos[i] == pos[i - 1] + 1)
            continue; /* adjacent positions, both cached: adjacent slots */
        if (slot_of(K, nk, S, pos[i]) != slot_of(K, nk, S, pos[i - 1]) + 1)
            runs += 1.0;
    }
    return runs;
}

static int load_step(sim_trace *t, int64_t step, kv_err *err)
{
    const trc_header *h = t->h;
    const rkv_params *p = &h->params;
    const double scale = 1.0 / h->batch;
    memset(t->acc, 0, (size_t)(h->nlayers + 1) * sizeof *t->acc);
    for (int seq = 0; seq < h->batch; seq++) {
        if (trc_read_step(t->r, seq, step, &t->st, err) != 0)
            return -1;
        for (int i = 0; i < t->st.nrec; i++) {
            const trc_record *rec = &t->st.rec[i];
            const trc_stage1_rec *k1 = &t->s1[seq].rec[i];
            double runs = 0.0, rows = 0.0;
            for (int row = 0; row < rec->nrows; row++) {
                int kr = row < k1->nrows ? row : k1->nrows - 1;
                /* attending every cached token is one compacted run whatever the positions */
                runs += rec->count[row] >= rec->cache_tokens
                            ? 1.0
                            : count_runs(rec->pos[row], rec->count[row], k1->pos[kr], k1->count[kr], p->S);
                rows += (double)rec->count[row];
            }
            /* regions read per token row: 2 (K and V), 1 (exact-topk reads V only) */
            const double regions = rows > 0 ? (double)rec->bytes.kv_exact / (rows * p->d * (double)rkv_dtype_bytes(p->kv_dtype)) : 0.0;
            rkv_traffic tr = rec->bytes;
            tr.weights = 0; /* the sim prices weights itself */
            sim_access_add(p, &tr, rec->cache_tokens, regions * runs, scale, &t->acc[i / h->kv_heads]);
        }
    }
    sim_layer_access *mean = &t->acc[h->nlayers];
    for (int l = 0; l < h->nlayers; l++)
        for (int c = 0; c < SIM_CAT_N; c++) {
            mean->bytes[c] += t->acc[l].bytes[c] / h->nlayers;
            mean->runs[c] += t->acc[l].runs[c] / h->nlayers;
            mean->flops[c] += t->acc[l].flops[c] / h->nlayers;
        }
    t->cached_step = step;
    return 0;
}

static int trace_layer_step(void *ctx, int64_t step, int layer, sim_layer_access *out, kv_err *err)
{
    sim_trace *t = ctx;
    if (step != t->cached_step && load_step(t, step, err) != 0)
        return -1;
    *out = t->acc[t->layer_index[layer]];
    return 0;
}

int sim_trace_open(const char *path, sim_trace **out, kv_err *err)
{
    *out = NULL;
    sim_trace *t = calloc(1, sizeof *t);
    if (!t)
        return kv_errf(err, "%s: out of memory", path);
    if (trc_open(path, &t->r, err) != 0)
        goto fail;
    t->h = trc_get_header(t->r);
    const trc_header *h = t->h;
    const int L = h->model.num_hidden_layers;
    t->s1 = calloc((size_t)h->batch, sizeof *t->s1);
    t->acc = calloc((size_t)h->nlayers + 1, sizeof *t->acc);
    t->layer_index = calloc((size_t)L, sizeof *t->layer_index);
    if (!t->s1 || !t->acc || !t->layer_index) {
        kv_errf(err, "%s: out of memory", path);
        goto fail;
    }
    for (int seq = 0; seq < h->batch; seq++)
        if (trc_read_stage1(t->r, seq, &t->s1[seq], err) != 0)
            goto fail;
    for (int l = 0; l < L; l++)
        t->layer_index[l] = h->nlayers;
    for (int i = 0; i < h->nlayers; i++)
        if (h->layers[i] < L) t->layer_index[h->layers[i]] = i;
    t->cached_step = -1;
    t->src.name = "trace";
    t->src.steps = h->steps;
    t->src.uniform_from = L;
    t->src.layer_step = trace_layer_step;
    t->src.ctx = t;
    *out = t;
    return 0;
fail:
    sim_trace_close(t);
    return -1;
}

void sim_trace_close(sim_trace *t)
{
    if (!t)
        return;
    if (t->s1 && t->h)
        for (int i = 0; i < t->h->batch; i++)
            trc_stage1_free(&t->s1[i]);
    free(t->s1);
    trc_step_free(&t->st);
    free(t->acc);
    free(t->layer_index);
    trc_close(t->r);
    free(t);
}

const sim_access_source *sim_trace_source(sim_trace *t) { return &t->src; }
const rkv_params *sim_trace_params(const sim_trace *t) { return &t->h->params; }
const mdl_model *sim_trace_model(const sim_trace *t) { return &t->h->model; }
double sim_trace_file_bytes(const sim_trace *t) { return (double)trc_file_bytes(t->r); }

