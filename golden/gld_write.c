/* gld_write.c — `kvsim golden`: the reference run of one layer, one or
 * every KV head, `steps` decode steps, written stage by stage (layout and
 * bound rule: gld.h; format for users: docs/golden.md).
 *
 * Per KV head H, kvh<H>/prefill/ (methods with a stage-1 vote):
 *   inputs     k_prompt (S, d) f32, q_window (G, w, d) f32
 *   stage1     votes (rows, S − w) f64, pooled (rows, S − w) f64 (+ _bound);
 *              kept (rows, P) int32 absolute positions, ascending
 *              (rows = 1 when the G heads vote together, G when per head)
 * and kvh<H>/step<s>/ for the token at position S + s:
 *   inputs     q (G, d); k_new, v_new (d) the token appended this step;
 *              k_cache, v_cache (C, d) or (G, C, d); cache_positions (C) or (G, C)
 *   pages      page_min, page_max (npages, d) f32 over the cache  [HSA stage 2]
 *   dims       dim_scores (d) f64 = Σ_h |q_h|; dims (r) int32 ascending
 *   page_scores  page_scores (G, npages) f64 = s_h(j)/τ_h
 *   selection  token_scores (C) f64 group-mean probability per cache slot;
 *              selected: (n) cache slots, ascending — or (G, n) per query
 *              head, rows padded with −1 at the end
 *   attention  out (G, d) f32
 * K/V are float32 holding exactly the KV dtype's values (any of rkv.h's
 * dtypes), page_min/page_max the aux dtype's. */
#define _POSIX_C_SOURCE 200809L
#include "gld_internal.h"
#include "kcu_ref.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char file[64];      /* relative path */
    char name[32], stage[16], role[10], compare[8];
    char scores[64];    /* relative path of the scores of a set ("" none) */
    char bound[64];     /* relative path of the bound ("" none) */
    char index[16];     /* what the integers are: absolute, slot, dim ("" for values) */
    int64_t range;      /* sets: valid entries are 0 .. range-1 */
    gld_npy_dtype dtype;
    int ndim;
    int64_t shape[GLD_NPY_MAX_DIMS];
    int kv_head;
    int64_t step;       /* −1: prefill */
} gld_entry;

typedef struct {
    const char *dir;
    char sub[48];       /* current subdirectory, "kvh<H>/step<s>" */
    int kv_head;
    int64_t step;
    gld_entry *t;       /* (cap) */
    int n, cap;
} gld_ctx;

static int mkdirs(const gld_ctx *g, kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/kvh%d", g->dir, g->kv_head);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return kv_errf(err, "%s: cannot create directory: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", g->dir, g->sub);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return kv_errf(err, "%s: cannot create directory: %s", path, strerror(errno));
    return 0;
}

static int enter(gld_ctx *g, int kvh, int64_t step, kv_err *err)
{
    g->kv_head = kvh;
    g->step = step;
    if (step < 0)
        snprintf(g->sub, sizeof g->sub, "kvh%d/prefill", kvh);
    else
        snprintf(g->sub, sizeof g->sub, "kvh%d/step%lld", kvh, (long long)step);
    return mkdirs(g, err);
}

/* Writes one tensor and records it; returns the entry or NULL (err set). */
static gld_entry *put(gld_ctx *g, const char *stage, const char *name, const char *role, const char *compare,
                      gld_npy_dtype dt, int ndim, const int64_t *shape, const void *data, kv_err *err)
{
    if (g->n >= g->cap) {
        kv_errf(err, "more than %d tensors", g->cap);
        return NULL;
    }
    char path[1200];
    gld_entry *e = &g->t[g->n];
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "%s/%s.npy", g->sub, name);
    snprintf(path, sizeof path, "%s/%s", g->dir, e->file);
    if (gld_npy_write(path, dt, ndim, shape, data, err) != 0)
        return NULL;
    g->n++;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->stage, sizeof e->stage, "%s", stage);
    snprintf(e->role, sizeof e->role, "%s", role);
    snprintf(e->compare, sizeof e->compare, "%s", compare);
    e->dtype = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->kv_head = g->kv_head;
    e->step = g->step;
    return e;
}

static int put_input(gld_ctx *g, const char *name, gld_npy_dtype dt, int ndim, const int64_t *shape,
                     const void *data, kv_err *err)
{
    return put(g, "inputs", name, "input", "none", dt, ndim, shape, data, err) ? 0 : -1;
}

/* A compared value tensor and its bound (f64, same shape, NAME_bound.npy). */
static int put_bounded(gld_ctx *g, const char *stage, const char *name, gld_npy_dtype dt, int ndim,
                       const int64_t *shape, const void *data, const double *bound, kv_err *err)
{
    char bn[40];
    snprintf(bn, sizeof bn, "%s_bound", name);
    gld_entry *b = put(g, stage, bn, "bound", "none", GLD_NPY_F64, ndim, shape, bound, err);
    if (!b)
        return -1;
    char bf[64];
    snprintf(bf, sizeof bf, "%s", b->file);
    gld_entry *e = put(g, stage, name, "expected", "bound", dt, ndim, shape, data, err);
    if (!e)
        return -1;
    snprintf(e->bound, sizeof e->bound, "%s", bf);
    return 0;
}

/* An index set: 1-D, or (rows, n) with −1 padding; entries in [0, range). */
static int put_set(gld_ctx *g, const char *stage, const char *name, const char *index, int64_t range,
                   const char *scores, int ndim, const int64_t *shape, const int32_t *data, kv_err *err)
{
    gld_entry *e = put(g, stage, name, "expected", "set", GLD_NPY_I32, ndim, shape, data, err);
    if (!e)
        return -1;
    snprintf(e->index, sizeof e->index, "%s", index);
    e->range = range;
    if (scores)
        snprintf(e->scores, sizeof e->scores, "%s/%s.npy", g->sub, scores);
    return 0;
}

/* ------------------------------------------------------- turns */
/* Decode step s's position and turn (rkv_run's walk): S + s in a single
 * turn; with a multi-turn workload, each turn's input then its outputs. −1
 * past the last output. */
static int64_t step_pos(const rkv_workload *wl, int64_t S, int64_t s, int *turn)
{
    *turn = 0;
    if (wl->nturns == 0)
        return S + s;
    int64_t pos = 0;
    for (int t = 0; t < wl->nturns; t++) {
        pos += wl->turn_input[t];
        if (s < wl->turn_output[t]) {
            *turn = t;
            return pos + s;
        }
        s -= wl->turn_output[t];
        pos += wl->turn_output[t];
    }
    return -1;
}

/* The position where turn t's input ends (its stage 1 sees positions below it). */
static int64_t turn_end(const rkv_workload *wl, int t)
{
    int64_t pos = 0;
    for (int u = 0; u < t; u++)
        pos += wl->turn_input[u] + wl->turn_output[u];
    return pos + wl->turn_input[t];
}

/* ------------------------------------------------------------ manifest */
static void manifest_tensor(kv_json *j, const gld_entry *e)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "name"); kv_json_str(j, e->name);
    kv_json_key(j, "file"); kv_json_str(j, e->file);
    kv_json_key(j, "kv_head"); kv_json_int(j, e->kv_head);
    kv_json_key(j, "step"); kv_json_int(j, e->step);
    kv_json_key(j, "stage"); kv_json_str(j, e->stage);
    kv_json_key(j, "role"); kv_json_str(j, e->role);
    kv_json_key(j, "dtype"); kv_json_str(j, gld_npy_dtype_name(e->dtype));
    kv_json_key(j, "shape");
    kv_json_arr_begin(j);
    for (int d = 0; d < e->ndim; d++)
        kv_json_int(j, e->shape[d]);
    kv_json_arr_end(j);
    kv_json_key(j, "compare"); kv_json_str(j, e->compare);
    if (e->bound[0]) {
        kv_json_key(j, "bound_file"); kv_json_str(j, e->bound);
    }
    if (e->index[0]) {
        kv_json_key(j, "index"); kv_json_str(j, e->index);
        kv_json_key(j, "index_range"); kv_json_int(j, e->range);
    }
    if (e->scores[0]) {
        kv_json_key(j, "scores_file"); kv_json_str(j, e->scores);
    }
    kv_json_obj_end(j);
}

static void manifest_rules(kv_json *j)
{
    kv_json_key(j, "tie_rule");
    kv_json_str(j, "every top-k: larger score first, equal scores to the lower index; sets listed ascending");
    kv_json_key(j, "rounding");
    kv_json_str(j, "page score: f32 products and sums rounded separately (no FMA), ascending dims, then "
                   "divided by tau in double; softmax and group mean in double");
    kv_json_key(j, "bound_rule");
    kv_json_str(j, "|actual - expected| <= bound elementwise (NAME_bound.npy), bound = kappa * u * M, "
                   "M = sum of |terms| of the element propagated through softmax to first order; NaN fails");
    kv_json_key(j, "storage");
    kv_json_str(j, "every float tensor is float32 or float64; k_prompt, k_new, v_new, k_cache and v_cache hold "
                   "exactly the kv_dtype's values and page_min, page_max the aux_dtype's (each dtype's values are "
                   "float32 values), so a kernel storing them in kv_dtype converts without rounding and the bounds, "
                   "which cover only the arithmetic, hold for every kv_dtype");
    kv_json_key(j, "kappa"); kv_json_num(j, GLD_KAPPA);
    kv_json_key(j, "unit_roundoff"); kv_json_num(j, GLD_U32);
    kv_json_key(j, "set_rule");
    kv_json_str(j, "equal sets per row; a duplicate, an entry outside [0, index_range) or a -1 before the end "
                   "of a row fails");
    kv_json_key(j, "position_conventions");
    kv_json_obj_begin(j);
    kv_json_key(j, "absolute");
    kv_json_str(j, "token position in the sequence, 0-based (cache_positions, kept)");
    kv_json_key(j, "slot");
    kv_json_str(j, "row of this step's k_cache/v_cache; cache_positions[slot] is its position (selected, "
                   "token_scores)");
    kv_json_key(j, "dim");
    kv_json_str(j, "head dimension 0 .. d-1 (dims)");
    kv_json_key(j, "page");
    kv_json_str(j, "page j holds slots j*page_size .. (j+1)*page_size-1 (page_min, page_max, page_scores)");
    kv_json_obj_end(j);
    kv_json_key(j, "layout");
    kv_json_str(j, "row-major (C order); q (G, d) heads of the group in order; q_window (G, w, d); "
                   "kvh<H>/prefill/ and kvh<H>/step<s>/ hold each head's tensors");
}

static int write_manifest(const gld_ctx *g, const mdl_model *m, const rkv_workload *wl, const rkv_params *p,
                          const gld_opts *o, kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", g->dir);
    kv_afile f;
    if (kv_afile_open(&f, path, err) != 0)
        return -1;
    kv_json j;
    kv_json_init(&j, f.fp);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "kind"); kv_json_str(&j, "kvsim-golden");
    kv_json_key(&j, "version"); kv_json_int(&j, GLD_FORMAT_VERSION);
    kv_json_key(&j, "kvsim_version"); kv_json_str(&j, KV_VERSION);
    kv_json_key(&j, "model"); kv_json_str(&j, m->name);
    kv_json_key(&j, "max_position_embeddings"); kv_json_int(&j, m->max_position_embeddings);
    kv_json_key(&j, "method"); kv_json_str(&j, p->method->name);
    kv_json_key(&j, "kv_dtype"); kv_json_str(&j, rkv_dtype_name(p->kv_dtype));
    kv_json_key(&j, "aux_dtype"); kv_json_str(&j, rkv_dtype_name(p->aux_dtype));
    kv_json_key(&j, "G"); kv_json_int(&j, p->G);
    kv_json_key(&j, "d"); kv_json_int(&j, p->d);
    kv_json_key(&j, "budget"); kv_json_int(&j, p->budget);
    kv_json_key(&j, "context"); kv_json_int(&j, p->S);
    kv_json_key(&j, "steps"); kv_json_int(&j, o->steps);
    int t;
    kv_json_key(&j, "first_decode_position"); kv_json_int(&j, p->S);
    kv_json_key(&j, "last_decode_position"); kv_json_int(&j, step_pos(wl, p->S, o->steps - 1, &t));
    kv_json_key(&j, "decode_positions");
    kv_json_arr_begin(&j);
    for (int64_t s = 0; s < o->steps; s++)
        kv_json_int(&j, step_pos(wl, p->S, s, &t));
    kv_json_arr_end(&j);
    kv_json_key(&j, "turns");
    kv_json_arr_begin(&j);
    for (int u = 0; u < (wl->nturns > 0 ? wl->nturns : 1); u++) {
        kv_json_obj_begin(&j);
        kv_json_key(&j, "input"); kv_json_int(&j, wl->nturns > 0 ? wl->turn_input[u] : p->S);
        kv_json_key(&j, "output"); kv_json_int(&j, wl->nturns > 0 ? wl->turn_output[u] : p->S_total - p->S);
        kv_json_key(&j, "first_step");
        int64_t first = 0;
        for (int v = 0; v < u; v++) first += wl->turn_output[v];
        kv_json_int(&j, first);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "layer"); kv_json_int(&j, o->layer);
    kv_json_key(&j, "kv_heads");
    kv_json_arr_begin(&j);
    for (int h = 0; h < m->num_key_value_heads; h++)
        if (o->kv_head < 0 || o->kv_head == h)
            kv_json_int(&j, h);
    kv_json_arr_end(&j);
    kv_json_key(&j, "params"); rkv_params_json(&j, p);
    const rkv_traits *tr = &p->method->traits;
    char tl[160];
    rkv_traits_format(tr, tl, sizeof tl);
    kv_json_key(&j, "traits");
    kv_json_obj_begin(&j);
    kv_json_key(&j, "summary"); kv_json_str(&j, tl);
    kv_json_key(&j, "per_query_head"); kv_json_bool(&j, tr->per_query_head);
    kv_json_key(&j, "dense"); kv_json_bool(&j, tr->dense);
    kv_json_key(&j, "stage1"); kv_json_bool(&j, tr->stage1);
    kv_json_key(&j, "stage2"); kv_json_bool(&j, tr->stage2);
    kv_json_key(&j, "cache_capped"); kv_json_bool(&j, tr->cache_capped);
    kv_json_obj_end(&j);
    manifest_rules(&j);
    kv_json_key(&j, "tensors");
    kv_json_arr_begin(&j);
    for (int i = 0; i < g->n; i++)
        manifest_tensor(&j, &g->t[i]);
    kv_json_arr_end(&j);
    kv_json_obj_end(&j);
    fputc('\n', f.fp);
    return kv_afile_commit(&f, err);
}

/* ------------------------------------------------------- one KV head */
/* The reference run of one (layer, KV head), step by step. */
typedef struct {
    const mdl_model *m;
    const rkv_workload *wl;
    const rkv_params *p;
    int layer, kvh, d, G;
    int64_t S, n, w;     /* prompt, tokens after the last step, stage-1 window of the first turn */
    int64_t wcap;        /* window queries Qw has room for (any turn's window) */
    float *Kf, *Vf;      /* (n, d) the KV dtype's values as f32 */
    void *K, *V;         /* (n, d) in the KV dtype */
    float *Qw;           /* (G, w, d) window queries */
    float *q;            /* (G, d) this step's queries */
    int32_t *ident;      /* (n) 0 .. n-1: the cache of a method that never evicts */
    void *st, *ws;
    rkv_head hd;
    rkv_step_out o;
    void *tmp;           /* (G · n · d) doubles of scratch for gathers and bounds */
    int32_t *slots;      /* (G · n) */
} head_run;

static void head_free(head_run *r)
{
    free(r->Kf); free(r->Vf); free(r->K); free(r->V); free(r->Qw); free(r->q); free(r->ident);
    free(r->st); free(r->ws); free(r->o.pos); free(r->o.count); free(r->o.out); free(r->o.dims);
    free(r->tmp); free(r->slots);
}

/* Generates K/V, the window queries, and runs the prefill. */
static int head_start(head_run *r, kv_err *err)
{
    const rkv_params *p = r->p;
    const size_t n = (size_t)r->n, d = (size_t)r->d, G = (size_t)r->G;
    r->Kf = malloc(sizeof(float) * n * d);
    r->Vf = malloc(sizeof(float) * n * d);
    r->K = malloc(rkv_dtype_bytes(p->kv_dtype) * n * d);
    r->V = malloc(rkv_dtype_bytes(p->kv_dtype) * n * d);
    r->Qw = malloc(sizeof(float) * G * (size_t)r->wcap * d);
    r->q = malloc(sizeof(float) * G * d);
    r->ident = malloc(sizeof(int32_t) * n);
    r->st = calloc(1, p->method->state_bytes(p, r->n));
    r->ws = calloc(1, rkv_scratch_bytes(p, r->n));
    r->o.cap = r->n;
    r->o.pos = malloc(sizeof(int32_t) * G * n);
    r->o.count = malloc(sizeof(int64_t) * G);
    r->o.out = malloc(sizeof(float) * G * d);
    r->o.dims = malloc(sizeof(int32_t) * G * d);
    r->tmp = malloc(sizeof(double) * G * (n + 2) * (d > 2 ? d : 2));
    r->slots = malloc(sizeof(int32_t) * G * n);
    if (!r->Kf || !r->Vf || !r->K || !r->V || !r->Qw || !r->q || !r->ident || !r->st || !r->ws || !r->o.pos ||
        !r->o.count || !r->o.out || !r->o.dims || !r->tmp || !r->slots)
        return kv_errf(err, "out of memory for a %lld-token head", (long long)r->n);
    if (rkv_workload_kv(r->wl, r->m, r->layer, r->kvh, r->n, r->Kf, r->Vf, err) != 0)
        return -1;
    rkv_encode(p->kv_dtype, r->Kf, n * d, r->K);
    rkv_encode(p->kv_dtype, r->Vf, n * d, r->V);
    rkv_decode(p->kv_dtype, r->K, n * d, r->Kf);
    rkv_decode(p->kv_dtype, r->V, n * d, r->Vf);
    for (int64_t t = 0; t < r->n; t++)
        r->ident[t] = (int32_t)t;
    for (int64_t i = 0; i < r->w; i++) {
        rkv_workload_query(r->wl, r->m, r->layer, r->kvh, r->S - r->w + i, 0, 0, r->q);
        for (size_t h = 0; h < G; h++)
            memcpy(r->Qw + (h * (size_t)r->w + (size_t)i) * d, r->q + h * d, sizeof(float) * d);
    }
    r->hd = (rkv_head){r->layer, r->kvh, r->d, r->G, p->kv_dtype, r->S, r->n, r->K, r->V};
    p->method->state_init(r->st, p, r->n);
    rkv_prefill_in in = {.n_end = r->S, .w = r->w, .Qw = r->Qw, .turn = 0};
    if (p->method->prefill && p->method->prefill(r->st, p, &r->hd, &in, r->ws) != 0)
        return kv_errf(err, "the reference's prefill failed");
    return 0;
}

/* Decode step s: the token at position pos (of turn t) is appended, then attended. */
static int head_step(head_run *r, int64_t s, int64_t pos, int t, kv_err *err)
{
    rkv_workload_query(r->wl, r->m, r->layer, r->kvh, pos, t, 1, r->q);
    r->hd.n = pos + 1;
    if (r->p->method->step(r->st, r->p, &r->hd, r->q, &r->o, r->ws) != 0)
        return kv_errf(err, "the reference's step %lld failed", (long long)s);
    return 0;
}

/* Window of turn t >= 1's stage 1, as rkv_run takes it: the method's window
 * (at least 1), at most the turn's input and RKV_MAX_WINDOW. */
static int64_t turn_window(const rkv_params *p, const rkv_workload *wl, int t)
{
    int64_t w = p->window_size > 0 ? p->window_size : 1;
    if (w > wl->turn_input[t]) w = wl->turn_input[t];
    return w > RKV_MAX_WINDOW ? RKV_MAX_WINDOW : w;
}

/* The prefill of turn t >= 1, whose input ends at position end − 1: the
 * turn's window queries, then the method's stage 1 (rkv_run's order). */
static int head_prefill(head_run *r, int t, int64_t end, kv_err *err)
{
    const rkv_params *p = r->p;
    const int64_t w = turn_window(p, r->wl, t);
    const size_t d = (size_t)r->d, G = (size_t)r->G;
    for (int64_t i = 0; i < w; i++) {
        rkv_workload_query(r->wl, r->m, r->layer, r->kvh, end - w + i, t, 0, r->q);
        for (size_t h = 0; h < G; h++)
            memcpy(r->Qw + (h * (size_t)w + (size_t)i) * d, r->q + h * d, sizeof(float) * d);
    }
    r->hd.n = end;
    rkv_prefill_in in = {.n_end = end, .w = w, .Qw = r->Qw, .turn = t};
    if (p->method->prefill && p->method->prefill(r->st, p, &r->hd, &in, r->ws) != 0)
        return kv_errf(err, "the reference's prefill of turn %d failed", t);
    return 0;
}

/* Cache rows after a step: 1 (shared by the G heads) or G (per head). */
static int cache_rows(const head_run *r)
{
    return r->o.cache && !r->o.cache_shared ? r->G : 1;
}

/* Row `row` of the cache: its ascending positions and count. */
static int64_t cache_row(const head_run *r, int row, const int32_t **pos)
{
    if (!r->o.cache) {
        *pos = r->ident;
        return r->hd.n;
    }
    const int sh = r->o.cache_shared;
    *pos = r->o.cache + (sh ? 0 : (size_t)row * (size_t)r->o.cache_stride);
    return r->o.cache_n[sh ? 0 : row];
}

/* Gathers rows pos[0..c) of src (·, d) f32 into dst. */
static void gather(const float *src, const int32_t *pos, int64_t c, int d, float *dst)
{
    for (int64_t t = 0; t < c; t++)
        memcpy(dst + (size_t)t * (size_t)d, src + (size_t)pos[t] * (size_t)d, sizeof(float) * (size_t)d);
}

/* Stage 1, written after step 0 (whose cache tells what was kept): votes
 * and pooled votes as the reference computes them (per head through a
 * one-head view, as method_snapkv.c does), with their bounds. */
static int write_stage1(gld_ctx *g, head_run *r, kv_err *err)
{
    const rkv_params *p = r->p;
    const int rows = p->method->traits.per_query_head ? r->G : 1, d = r->d;
    const int64_t S = r->S, w = r->w, np = S - w, P = p->prompt_budget;
    if (cache_rows(r) != rows)
        return kv_errf(err, "internal: %d cache rows for a method with %d selection rows", cache_rows(r), rows);
    if (enter(g, r->kvh, -1, err) != 0)
        return -1;
    int64_t sh[3] = {S, d, 0};
    if (put_input(g, "k_prompt", GLD_NPY_F32, 2, sh, r->Kf, err) != 0)
        return -1;
    sh[0] = r->G; sh[1] = w; sh[2] = d;
    if (put_input(g, "q_window", GLD_NPY_F32, 3, sh, r->Qw, err) != 0)
        return -1;
    const int voted = S > P && w < P;
    double *votes = r->tmp, *vb = votes + rows * np, *pooled = vb + rows * np, *pb = pooled + rows * np;
    void *ws1 = voted ? malloc(rkv_stage1_ws_bytes(S, w, rows > 1 ? 1 : r->G, d)) : NULL;
    if (voted && !ws1)
        return kv_errf(err, "out of memory for stage 1");
    int bad = 0;
    for (int row = 0; voted && row < rows && !bad; row++) {
        rkv_head hv = r->hd;
        hv.n = S;
        hv.G = rows > 1 ? 1 : r->G;
        const float *Qw = r->Qw + (size_t)row * (size_t)w * (size_t)d;
        bad = rkv_stage1_votes(&hv, r->ident, S, Qw, w, 1, votes + row * np, ws1) != 0 ||
              gld_bound_votes(r->Kf, S, d, hv.G, Qw, w, 1, vb + row * np) != 0;
        rkv_pool1d(votes + row * np, np, p->kernel_size, p->pool, pooled + row * np);
        gld_bound_pool(vb + row * np, pooled + row * np, np, p->kernel_size, pb + row * np);
    }
    free(ws1);
    if (bad)
        return kv_errf(err, "the reference's stage-1 vote failed");
    int64_t vs[2] = {rows, np};
    const int vd = rows > 1 ? 2 : 1;
    const int64_t *vsh = rows > 1 ? vs : vs + 1;
    if (voted && (put_bounded(g, "stage1", "votes", GLD_NPY_F64, vd, vsh, votes, vb, err) != 0 ||
                  put_bounded(g, "stage1", "pooled", GLD_NPY_F64, vd, vsh, pooled, pb, err) != 0))
        return -1;
    /* kept: each cache row's positions before the decoded token */
    int32_t *kept = r->slots;
    int64_t nk = 0;
    for (int row = 0; row < rows; row++) {
        const int32_t *cp;
        int64_t c = cache_row(r, row, &cp), k = 0;
        while (k < c && cp[k] < S)
            k++;
        if (row > 0 && k != nk)
            return kv_errf(err, "internal: kept rows of unequal length");
        nk = k;
        memcpy(kept + (size_t)row * (size_t)k, cp, sizeof(int32_t) * (size_t)k);
    }
    int64_t ks[2] = {rows, nk};
    return put_set(g, "stage1", "kept", "absolute", S, voted ? "pooled" : NULL, vd, rows > 1 ? ks : ks + 1, kept,
                   err);
}

/* Step inputs: the query, the appended token and the cache (rows, C, d). */
static int write_step_inputs(gld_ctx *g, head_run *r, int64_t *C, kv_err *err)
{
    const int rows = cache_rows(r), d = r->d;
    const int64_t pos = r->hd.n - 1;
    int64_t sh[3] = {r->G, d, 0};
    if (put_input(g, "q", GLD_NPY_F32, 2, sh, r->q, err) != 0)
        return -1;
    sh[0] = d;
    if (put_input(g, "k_new", GLD_NPY_F32, 1, sh, r->Kf + (size_t)pos * (size_t)d, err) != 0 ||
        put_input(g, "v_new", GLD_NPY_F32, 1, sh, r->Vf + (size_t)pos * (size_t)d, err) != 0)
        return -1;
    int32_t *cpos = r->slots;
    for (int row = 0; row < rows; row++) {
        const int32_t *cp;
        int64_t c = cache_row(r, row, &cp);
        if (row > 0 && c != *C)
            return kv_errf(err, "per-head caches of unequal length (%lld and %lld) are not written",
                           (long long)*C, (long long)c);
        *C = c;
        memcpy(cpos + (size_t)row * (size_t)c, cp, sizeof(int32_t) * (size_t)c);
    }
    float *buf = r->tmp;
    int64_t cs[3] = {rows, *C, d};
    const int nd = rows > 1 ? 3 : 2;
    const int64_t *csh = rows > 1 ? cs : cs + 1;
    gather(r->Kf, cpos, rows * *C, d, buf);
    if (put_input(g, "k_cache", GLD_NPY_F32, nd, csh, buf, err) != 0)
        return -1;
    gather(r->Vf, cpos, rows * *C, d, buf);
    if (put_input(g, "v_cache", GLD_NPY_F32, nd, csh, buf, err) != 0)
        return -1;
    return put_input(g, "cache_positions", GLD_NPY_I32, nd - 1, csh, cpos, err);
}

/* HSA stage 2 (pages, dims, page scores, token scores), recomputed to
 * expose the intermediate tensors with refimpl's arithmetic: page bounds as
 * method_hsa.c's page_fold keeps them (each key element rounded to the aux
 * dtype, then min and max per page), dims and τ by kcu_ref_hsa_dims, page
 * scores by kcu_page_bound/kcu_page_score_acc (f32, ascending dims), the
 * group mean by kcu_ref_hsa_average (bit-identical to refimpl's,
 * tests/test_kcu.c); dims are checked against refimpl's. */
typedef struct {
    int64_t np;
    int r;
    float *pm;                 /* (2, np, d): minima then maxima, the aux dtype's values */
    double *gsum, *tau, *z, *zb, *avg, *ab, *dsc, *dscb, *tok, *tokb;
    int32_t *dims;
    void *scr;
} hsa_bufs;

static void hsa_free(hsa_bufs *b)
{
    free(b->pm); free(b->gsum); free(b->tau); free(b->z); free(b->zb); free(b->avg);
    free(b->ab); free(b->dsc); free(b->dscb); free(b->tok); free(b->tokb); free(b->dims); free(b->scr);
}

static int hsa_alloc(hsa_bufs *b, int64_t C, int64_t np, int d, int G)
{
    b->pm = malloc(sizeof(float) * (size_t)np * (size_t)d * 2);
    b->gsum = malloc(sizeof(double) * (size_t)d);
    b->tau = malloc(sizeof(double) * (size_t)G);
    b->z = malloc(sizeof(double) * (size_t)G * (size_t)np);
    b->zb = malloc(sizeof(double) * (size_t)G * (size_t)np);
    b->avg = malloc(sizeof(double) * (size_t)np);
    b->ab = malloc(sizeof(double) * (size_t)np);
    b->dsc = malloc(sizeof(double) * (size_t)d);
    b->dscb = malloc(sizeof(double) * (size_t)d);
    b->tok = malloc(sizeof(double) * (size_t)C);
    b->tokb = malloc(sizeof(double) * (size_t)C);
    b->dims = malloc(sizeof(int32_t) * (size_t)d);
    b->scr = malloc((size_t)d * 32);
    return b->pm && b->gsum && b->tau && b->z && b->zb && b->avg && b->ab && b->dsc && b->dscb && b->tok &&
                   b->tokb && b->dims && b->scr
               ? 0
               : -1;
}

/* Page j's element-wise minimum (pm) and maximum (pm + np·d) over the keys
 * at cache slots j·pg .. j·pg + count − 1 (positions cp), each rounded to the
 * aux dtype first. */
static void pages_build(const head_run *r, const int32_t *cp, int64_t C, int64_t pg, int64_t np, float *pm)
{
    const int d = r->d;
    const rkv_dtype aux = r->p->aux_dtype;
    for (int64_t j = 0; j < np; j++) {
        float *mn = pm + (size_t)j * (size_t)d, *mx = pm + (size_t)(np + j) * (size_t)d;
        for (int64_t t = j * pg; t < j * pg + kcu_page_count(j, C, pg); t++)
            for (int i = 0; i < d; i++) {
                const float v = rkv_quantize(aux, r->Kf[(size_t)cp[t] * (size_t)d + (size_t)i]);
                if (t == j * pg || v < mn[i]) mn[i] = v;
                if (t == j * pg || v > mx[i]) mx[i] = v;
            }
    }
}

/* Stage 2 step 3: z_h(j) = (Σ_{i∈I} q_h[i]·K̂_j[i], f32, ascending dims) / τ_h. */
static void page_scores(const head_run *r, const hsa_bufs *b)
{
    const int d = r->d;
    for (int h = 0; h < r->G; h++)
        for (int64_t j = 0; j < b->np; j++) {
            float s = 0.0f;
            for (int t = 0; t < b->r; t++) {
                const int i = b->dims[t];
                s = kcu_page_score_acc(s, r->q[(size_t)h * (size_t)d + (size_t)i],
                                       kcu_page_bound(b->gsum[i], b->pm[(size_t)j * (size_t)d + (size_t)i],
                                                      b->pm[(size_t)(b->np + j) * (size_t)d + (size_t)i]));
            }
            b->z[(size_t)h * (size_t)b->np + (size_t)j] = (double)s / b->tau[h];
        }
}

static int hsa_compute(const head_run *r, int64_t C, hsa_bufs *b, kv_err *err)
{
    const rkv_params *p = r->p;
    const int d = r->d, G = r->G;
    const int64_t pg = p->page_size, np = kcu_npages(C, pg);
    b->np = np;
    b->r = (int)(p->topr < d ? p->topr : d);
    if (hsa_alloc(b, C, np, d, G) != 0)
        return kv_errf(err, "out of memory for stage 2");
    const int32_t *cp;
    cache_row(r, 0, &cp);
    pages_build(r, cp, C, pg, np, b->pm);
    kcu_ref_hsa_dims(r->q, G, d, b->r, b->dims, b->gsum, b->tau, b->scr);
    for (int i = 0; i < d; i++) {
        b->dsc[i] = 0;
        for (int h = 0; h < G; h++)
            b->dsc[i] += fabs((double)r->q[(size_t)h * (size_t)d + (size_t)i]);
        b->dscb[i] = GLD_KAPPA * GLD_U32 * b->dsc[i];
    }
    for (int t = 0; t < b->r; t++)
        if (b->dims[t] != r->o.dims[t])
            return kv_errf(err, "internal mismatch: kcu dims differ from refimpl's at %d", t);
    page_scores(r, b);
    gld_bound_page_scores(r->q, G, d, b->dims, b->r, b->pm, b->pm + (size_t)np * (size_t)d, np, b->gsum, b->tau,
                          b->z, b->zb);
    kcu_ref_hsa_average(b->z, G, np, C, pg, b->avg);
    gld_bound_average(b->z, b->zb, G, np, C, pg, b->avg, b->ab);
    for (int64_t t = 0; t < C; t++) {
        b->tok[t] = b->avg[t / pg];
        b->tokb[t] = b->ab[t / pg];
    }
    return 0;
}

static int write_hsa(gld_ctx *g, const head_run *r, int64_t C, kv_err *err)
{
    hsa_bufs b;
    memset(&b, 0, sizeof b);
    int rc = -1;
    const int d = r->d;
    if (hsa_compute(r, C, &b, err) != 0)
        goto done;
    int64_t s2[2] = {b.np, d};
    if (put(g, "pages", "page_min", "expected", "exact", GLD_NPY_F32, 2, s2, b.pm, err) == NULL ||
        put(g, "pages", "page_max", "expected", "exact", GLD_NPY_F32, 2, s2, b.pm + b.np * d, err) == NULL)
        goto done;
    s2[0] = d;
    if (put_bounded(g, "dims", "dim_scores", GLD_NPY_F64, 1, s2, b.dsc, b.dscb, err) != 0)
        goto done;
    s2[0] = b.r;
    if (put_set(g, "dims", "dims", "dim", d, "dim_scores", 1, s2, b.dims, err) != 0)
        goto done;
    s2[0] = r->G;
    s2[1] = b.np;
    if (put_bounded(g, "page_scores", "page_scores", GLD_NPY_F64, 2, s2, b.z, b.zb, err) != 0)
        goto done;
    s2[0] = C;
    if (put_bounded(g, "selection", "token_scores", GLD_NPY_F64, 1, s2, b.tok, b.tokb, err) != 0)
        goto done;
    rc = 0;
done:
    hsa_free(&b);
    return rc;
}

/* Slot of position x in the ascending row cp[0..c), or −1. */
static int32_t slot_of(const int32_t *cp, int64_t c, int32_t x)
{
    int64_t lo = 0, hi = c;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cp[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c && cp[lo] == x ? (int32_t)lo : -1;
}

/* selected: refimpl's attended positions as slots of each head's cache row. */
static int write_selection(gld_ctx *g, const head_run *r, int64_t C, int hsa, kv_err *err)
{
    const int sh = r->o.shared, rows = sh ? 1 : r->G;
    int64_t nmax = 0;
    for (int h = 0; h < rows; h++)
        nmax = r->o.count[h] > nmax ? r->o.count[h] : nmax;
    int32_t *sel = r->slots;
    for (int h = 0; h < rows; h++) {
        const int32_t *cp;
        const int64_t c = cache_row(r, cache_rows(r) > 1 ? h : 0, &cp);
        const int32_t *ps = r->o.pos + (size_t)h * (size_t)r->o.cap;
        for (int64_t i = 0; i < nmax; i++) {
            int32_t s = i < r->o.count[h] ? slot_of(cp, c, ps[i]) : -1;
            if (i < r->o.count[h] && s < 0)
                return kv_errf(err, "internal mismatch: attended position %d is not in the cache", ps[i]);
            sel[(size_t)h * (size_t)nmax + (size_t)i] = s;
        }
    }
    int64_t ss[2] = {rows, nmax};
    return put_set(g, "selection", "selected", "slot", C, hsa && sh ? "token_scores" : NULL, sh ? 1 : 2,
                   sh ? ss + 1 : ss, sel, err);
}

/* out (G, d) with its bound; SparQ's mean-V blend adds the magnitude of
 * the mean of V and of the output itself (α comes from approximate scores). */
static int write_attention(gld_ctx *g, const head_run *r, kv_err *err)
{
    const int d = r->d, G = r->G;
    double *b = r->tmp, *mv = b + (size_t)G * (size_t)d;
    for (int h = 0; h < G; h++) {
        const int row = r->o.shared ? 0 : h;
        gld_bound_attend(r->Kf, r->Vf, r->o.pos + (size_t)row * (size_t)r->o.cap, r->o.count[row], d,
                         r->q + (size_t)h * (size_t)d, b + (size_t)h * (size_t)d);
    }
    if (r->p->mean_v > 0) {
        for (int i = 0; i < d; i++)
            mv[i] = 0;
        for (int64_t t = 0; t < r->hd.n; t++)
            for (int i = 0; i < d; i++)
                mv[i] += fabs((double)r->Vf[(size_t)t * (size_t)d + (size_t)i]) / (double)r->hd.n;
        for (int h = 0; h < G; h++)
            for (int i = 0; i < d; i++)
                b[(size_t)h * (size_t)d + (size_t)i] +=
                    GLD_KAPPA * GLD_U32 * (mv[i] + fabs((double)r->o.out[(size_t)h * (size_t)d + (size_t)i]));
    }
    int64_t sh[2] = {G, d};
    return put_bounded(g, "attention", "out", GLD_NPY_F32, 2, sh, r->o.out, b, err);
}

/* The method's traits (refimpl/rkv.h) decide which stages are written:
 * stage 2 (HSA: pages, dims, page scores, token scores) and stage 1 (the
 * SnapKV vote, when the request evicts prompt tokens). */
static int has_hsa_stages(const head_run *r)
{
    return r->p->method->traits.stage2 && cache_rows(r) == 1 && r->o.shared;
}

static int has_stage1(const rkv_params *p)
{
    return p->method->traits.stage1 && p->evicts && p->window_size > 0;
}

/* Every step of one KV head; a step that opens a later turn first runs that
 * turn's prefill (and any turn's before it), as rkv_run does. */
static int write_head(gld_ctx *g, head_run *r, int64_t steps, kv_err *err)
{
    if (head_start(r, err) != 0)
        return -1;
    int turn = 0;
    for (int64_t s = 0; s < steps; s++) {
        int t;
        const int64_t pos = step_pos(r->wl, r->S, s, &t);
        for (int u = turn + 1; u <= t; u++)
            if (head_prefill(r, u, turn_end(r->wl, u), err) != 0)
                return -1;
        turn = t;
        if (head_step(r, s, pos, t, err) != 0)
            return -1;
        if (s == 0 && has_stage1(r->p) && r->w > 0 && write_stage1(g, r, err) != 0)
            return -1;
        int64_t C = 0;
        const int hsa = has_hsa_stages(r);
        if (enter(g, r->kvh, s, err) != 0 || write_step_inputs(g, r, &C, err) != 0 ||
            (hsa && write_hsa(g, r, C, err) != 0) || write_selection(g, r, C, hsa, err) != 0 ||
            write_attention(g, r, err) != 0)
            return -1;
    }
    return 0;
}

static int check_request(const mdl_model *m, const rkv_workload *wl, const rkv_params *p, const gld_opts *o,
                         kv_err *err)
{
    if (wl->nturns > 0 && p->S != wl->turn_input[0])
        return kv_errf(err, "a multi-turn workload's first input (%lld tokens) must be the request's context (%lld)",
                       (long long)wl->turn_input[0], (long long)p->S);
    if (o->layer < 0 || o->layer >= m->num_hidden_layers)
        return kv_errf(err, "layer %d out of range (%s has %d layers)", o->layer, m->name, m->num_hidden_layers);
    if (o->kv_head < -1 || o->kv_head >= m->num_key_value_heads)
        return kv_errf(err, "kv head %d out of range (%s has %d KV heads)", o->kv_head, m->name,
                       m->num_key_value_heads);
    int64_t room = p->S_total - p->S > 1 ? p->S_total - p->S : 1;
    if (wl->nturns > 0)
        for (int t = room = 0; t < wl->nturns; t++)
            room += wl->turn_output[t];
    if (o->steps < 1 || o->steps > room)
        return kv_errf(err, "--steps must be between 1 and %lld (the tokens generated after the prompt%s), got %lld",
                       (long long)room, wl->nturns > 0 ? "s of every turn" : "", (long long)o->steps);
    /* Decode positions are S .. S + steps − 1 (multi-turn: step_pos); a model has positions 0 .. max − 1. */
    int t;
    const int64_t last = step_pos(wl, p->S, o->steps - 1, &t);
    if (last >= (int64_t)m->max_position_embeddings)
        return kv_errf(err, "decode position %lld is past %s's maximum length %d (positions 0 .. %d): "
                       "--context + --steps must be at most %d", (long long)last, m->name,
                       m->max_position_embeddings, m->max_position_embeddings - 1, m->max_position_embeddings);
    return 0;
}

int gld_write(const mdl_model *m, const rkv_workload *wl, const rkv_params *p, const gld_opts *o, const char *dir,
              kv_err *err)
{
    if (check_request(m, wl, p, o, err) != 0)
        return -1;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return kv_errf(err, "%s: cannot create directory: %s", dir, strerror(errno));
    gld_ctx g = {.dir = dir, .cap = GLD_MAX_TENSORS};
    g.t = calloc((size_t)g.cap, sizeof *g.t);
    if (!g.t)
        return kv_errf(err, "out of memory");
    int rc = 0;
    rkv_workload *wlc = malloc(sizeof *wlc); /* a measured-heads workload learns the run's positions, as in rkv_run */
    if (!wlc) {
        free(g.t);
        return kv_errf(err, "out of memory");
    }
    *wlc = *wl;
    int t0;
    wlc->run_context = step_pos(wl, p->S, o->steps - 1, &t0) + 1;
    wl = wlc;
    for (int h = 0; h < m->num_key_value_heads && rc == 0; h++) {
        if (o->kv_head >= 0 && h != o->kv_head)
            continue;
        int t;
        head_run r = {.m = m, .wl = wl, .p = p, .layer = o->layer, .kvh = h, .d = p->d, .G = p->G, .S = p->S,
                      .n = step_pos(wl, p->S, o->steps - 1, &t) + 1};
        r.w = p->window_size > 0 ? (p->window_size < p->S ? p->window_size : p->S) : 0;
        r.wcap = r.w > 1 ? r.w : 1;
        for (int u = 1; u < wl->nturns; u++)
            r.wcap = turn_window(p, wl, u) > r.wcap ? turn_window(p, wl, u) : r.wcap;
        rc = write_head(&g, &r, o->steps, err);
        head_free(&r);
    }
    if (rc == 0)
        rc = write_manifest(&g, m, wl, p, o, err);
    free(g.t);
    free(wlc);
    return rc;
}
