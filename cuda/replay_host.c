/* replay_host.c — the host-side logic of the trace replayer (kcu_replay.h):
 * launch plan, slot maps, position-set comparison with near-tie
 * classification, tolerance checks, medians and the report. Plain C11,
 * libc + libm, compiled into libkvsim.a and tested in tests/test_replay.c.
 *
 * It deliberately knows no CUDA: cuda/replay.cu calls these around its
 * launches. */
#include "kcu_replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kcu_replay_tolerance(rkv_dtype kv, double *atol, double *rtol)
{
    /* bf16 K/V, f32 queries and f32 arithmetic vs a double reference on the
     * same bf16 values: gpu_check's rule (cuda/gpu_check.cu). */
    if (kv != RKV_DTYPE_BF16)
        return -1;
    *atol = 1e-4;
    *rtol = 1e-3;
    return 0;
}

/* A fitted workload's head classes are not in the trace header: they are
 * read back from the workload file the header names, whose FNV-1a-64 must
 * equal the one the header recorded. Loaded by kcu_replay_plan_make. */
static rkv_workload replay_fitted;
static int replay_fitted_ok;

static int load_fitted(const trc_header *h, kv_err *err)
{
    FILE *fp = fopen(h->wl.path, "rb");
    if (!fp) return kv_errf(err, "fitted workload %s (named by the trace): cannot open", h->wl.path);
    uint64_t fnv = 1469598103934665603ull;
    int c;
    while ((c = getc(fp)) != EOF) fnv = (fnv ^ (uint64_t)(unsigned char)c) * 1099511628211ull;
    fclose(fp);
    fnv &= 0x3fffffffffffffffull; /* as the trace writer stores it (bits 63 and 62 cleared) */
    if (fnv != h->workload_hash)
        return kv_errf(err, "fitted workload %s changed since the trace was written (FNV-1a-64 %016llx, trace %016llx)",
                       h->wl.path, (unsigned long long)fnv, (unsigned long long)h->workload_hash);
    if (rkv_workload_load(h->wl.path, &replay_fitted, err) != 0) return -1;
    replay_fitted.seed = h->wl.seed;
    replay_fitted_ok = 1;
    return 0;
}

static rkv_workload replay_wl(const trc_header *h, int seq)
{
    rkv_workload wl = replay_fitted_ok && !strcmp(h->wl.generator, "fitted") ? replay_fitted : h->wl;
    wl.seed = h->wl.seed + (uint64_t)seq;
    wl.run_context = h->params.S + h->steps; /* the run's positions (rkv_run's, single turn): a measured-heads workload stretches by them */
    return wl;
}

int kcu_replay_plan_make(const trc_header *h, kcu_replay_plan *pl, kv_err *err)
{
    memset(pl, 0, sizeof *pl);
    const rkv_params *p = &h->params;
    if (!p->method)
        return kv_errf(err, "the trace names no method");
    const char *m = p->method->name;
    const rkv_traits *tr = &p->method->traits;
    snprintf(pl->method, sizeof pl->method, "%s", m);
    /* the kernels by the method's traits: dense decode, stage 2, stage 1 once at the prefill + stage 2 */
    if (tr->dense)
        pl->kind = KCU_REPLAY_FULL;
    else if (tr->stage2 && !tr->stage1)
        pl->kind = KCU_REPLAY_HSA;
    else if (tr->stage2 && tr->stage1 && !tr->stage1_per_turn)
        pl->kind = KCU_REPLAY_ROCKETKV;
    else
        return kv_errf(err, "method '%s': no CUDA kernels implement it (replay runs dense and stage-2 methods, "
                       "with stage 1 once at the prefill: full, hsa and rocketkv)", m);
    if (h->wl.nturns > 0)
        return kv_errf(err, "a multi-turn workload (%d turns): replay runs single-turn traces only", h->wl.nturns);
    if (!strcmp(h->wl.generator, "fitted") && load_fitted(h, err) != 0)
        return -1;
    if (pl->kind != KCU_REPLAY_FULL && (p->local_window > 0 || p->skip_layers > 0))
        return kv_errf(err, "%s with local_window %lld / skip_layers %lld: the stage-2 kernels implement neither", m,
                       (long long)p->local_window, (long long)p->skip_layers);
    if (pl->kind == KCU_REPLAY_ROCKETKV && p->evicts && p->pool != RKV_POOL_MAX)
        return kv_errf(err, "rocketkv with avg pooling: kcu_stage1 implements max pooling only");
    if (kcu_replay_tolerance(p->kv_dtype, &pl->atol, &pl->rtol) != 0 ||
        (pl->kind != KCU_REPLAY_FULL && p->aux_dtype != RKV_DTYPE_BF16))
        return kv_errf(err, "kv_dtype %s / aux_dtype %s: the kernels store bf16 only", rkv_dtype_name(p->kv_dtype),
                       rkv_dtype_name(p->aux_dtype));
    if (h->d != 64 && h->d != 128)
        return kv_errf(err, "head dim %d: the kernels support d = 64 and 128", h->d);
    if (h->G < 1 || h->G > 8)
        return kv_errf(err, "G = %d query heads per KV head: the kernels support 1 to 8", h->G);
    if (h->batch < 1 || h->kv_heads < 1 || h->nlayers < 1 || h->steps < 1)
        return kv_errf(err, "empty trace (batch %d, kv_heads %d, layers %d, steps %lld)", h->batch, h->kv_heads,
                       h->nlayers, (long long)h->steps);
    pl->B = h->batch;
    pl->Hkv = h->kv_heads;
    pl->G = h->G;
    pl->d = h->d;
    pl->nlayers = h->nlayers;
    pl->S = p->S;
    pl->steps = h->steps;
    pl->tokens = p->S + h->steps;
    if (pl->tokens > INT32_MAX)
        return kv_errf(err, "%lld tokens: positions must fit int32", (long long)pl->tokens);
    pl->P = pl->kind == KCU_REPLAY_ROCKETKV && p->prompt_budget < p->S ? p->prompt_budget : p->S;
    pl->w = p->window_size;
    pl->kernel = p->kernel_size;
    if (pl->kind == KCU_REPLAY_ROCKETKV && pl->P < p->S && (pl->w < 1 || pl->w > pl->P || pl->kernel < 1))
        return kv_errf(err, "rocketkv: window %lld, kernel %lld, prompt budget %lld are not a stage-1 shape",
                       (long long)pl->w, (long long)pl->kernel, (long long)pl->P);
    pl->C0 = pl->P;
    pl->cap = pl->C0 + pl->steps;
    if (pl->kind == KCU_REPLAY_FULL) {
        pl->p = 1;
        pl->r = h->d;
        pl->k = pl->cap;
    } else {
        pl->p = p->page_size > 0 ? p->page_size : 1;
        pl->r = (int)(p->topr > 0 && p->topr < h->d ? p->topr : h->d);
        pl->k = p->topk;
        pl->page_granularity = p->granularity == RKV_GRAN_PAGE && pl->p > 1;
        if (pl->k < 1)
            return kv_errf(err, "%s: topk %lld", m, (long long)pl->k);
    }
    /* one NaN page past the end, rounded up to 8 pages (16-byte aux rows: stage 2 v5) */
    pl->npages_cap = ((pl->cap + pl->p - 1) / pl->p + 1 + 7) / 8 * 8;
    pl->pos_cap = pl->k + pl->p;
    return 0;
}

int64_t kcu_replay_cache_tokens(const kcu_replay_plan *pl, int64_t step) { return pl->C0 + step + 1; }
int64_t kcu_replay_position(const kcu_replay_plan *pl, int64_t step) { return pl->S + step; }

int kcu_replay_slot_map(const kcu_replay_plan *pl, const int32_t *kept, int64_t nkept, int32_t *slot2pos)
{
    if (!kept)
        nkept = pl->S;
    if (nkept != pl->C0)
        return -1;
    for (int64_t i = 0; i < nkept; i++) {
        int32_t v = kept ? kept[i] : (int32_t)i;
        if (v < 0 || v >= pl->S || (i > 0 && v <= slot2pos[i - 1]))
            return -1;
        slot2pos[i] = v;
    }
    for (int64_t s = 0; s < pl->steps; s++)
        slot2pos[nkept + s] = (int32_t)(pl->S + s);
    return 0;
}

int64_t kcu_replay_slot_of(const int32_t *slot2pos, int64_t n, int32_t pos)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (slot2pos[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && slot2pos[lo] == pos ? lo : -1;
}

/* ------------------------------------------------------------- workload */
int kcu_replay_gen_kv(const trc_header *h, const kcu_replay_plan *pl, int seq, int layer, int kv_head, uint16_t *K,
                      uint16_t *V, float *Kf, float *Vf, kv_err *err)
{
    rkv_workload wl = replay_wl(h, seq);
    if (rkv_workload_kv(&wl, &h->model, layer, kv_head, pl->tokens, Kf, Vf, err) != 0)
        return -1;
    rkv_encode(RKV_DTYPE_BF16, Kf, (size_t)pl->tokens * (size_t)pl->d, K);
    rkv_encode(RKV_DTYPE_BF16, Vf, (size_t)pl->tokens * (size_t)pl->d, V);
    return 0;
}

void kcu_replay_gen_query(const trc_header *h, int seq, int layer, int kv_head, int64_t pos, int decode, float *q)
{
    rkv_workload wl = replay_wl(h, seq);
    rkv_workload_query(&wl, &h->model, layer, kv_head, pos, 0, decode, q);
}

void kcu_replay_compact(const uint16_t *src, const int32_t *slot2pos, int64_t n, int d, uint16_t *dst)
{
    for (int64_t s = 0; s < n; s++)
        memcpy(dst + s * d, src + (int64_t)slot2pos[s] * d, (size_t)d * sizeof *dst);
}

/* ---------------------------------------------------------- set compare */
void kcu_replay_compare_sets(const int32_t *ref, int64_t nref, const int32_t *got, int64_t ngot, int64_t ncand,
                             int64_t p, const double *score, double rel_eps, int64_t *scratch,
                             kcu_replay_setcmp *o)
{
    memset(o, 0, sizeof *o);
    o->nref = nref;
    o->ngot = ngot;
    o->first_bad = -1;
    int64_t *tr = scratch, *tg = scratch + ncand;
    memset(scratch, 0, (size_t)(2 * ncand) * sizeof *scratch);
    for (int64_t i = 0; i < nref; i++)
        if (ref[i] >= 0 && ref[i] / p < ncand)
            tr[ref[i] / p]++;
    for (int64_t i = 0; i < ngot; i++) {
        if (got[i] < 0 || got[i] / p >= ncand || (i > 0 && got[i] <= got[i - 1])) {
            o->ninvalid++;
            continue;
        }
        tg[got[i] / p]++;
    }
    double T = INFINITY;
    if (score)
        for (int64_t j = 0; j < ncand; j++)
            if (tr[j] > 0 && score[j] < T)
                T = score[j];
    for (int64_t j = 0; j < ncand; j++) {
        if (tr[j] == tg[j])
            continue;
        o->ndiff++;
        double gap = score && isfinite(T) ? fabs(score[j] - T) / (fabs(T) > 0 ? fabs(T) : 1e-300) : INFINITY;
        if (gap <= rel_eps) {
            o->nnear++;
            if (gap > o->max_near_gap)
                o->max_near_gap = gap;
        } else {
            if (o->first_bad < 0) {
                o->first_bad = j;
                o->first_bad_gap = gap;
            }
            o->nbad++;
        }
    }
    o->nbad += o->ninvalid;
}

void kcu_replay_setcmp_add(kcu_replay_setcmp *a, const kcu_replay_setcmp *b)
{
    if (a->first_bad < 0 && b->first_bad >= 0) {
        a->first_bad = b->first_bad;
        a->first_bad_gap = b->first_bad_gap;
    }
    a->nref += b->nref;
    a->ngot += b->ngot;
    a->ndiff += b->ndiff;
    a->nnear += b->nnear;
    a->nbad += b->nbad;
    a->ninvalid += b->ninvalid;
    if (b->max_near_gap > a->max_near_gap)
        a->max_near_gap = b->max_near_gap;
}

/* ------------------------------------------------------------ tolerance */
void kcu_replay_tol_check(const float *got, const double *ref, int64_t n, double atol, double rtol,
                          kcu_replay_tol *acc)
{
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], e = fabs(g - ref[i]);
        acc->n++;
        if (isnan(g)) {
            acc->nnan++;
            acc->nbad++;
            acc->max_abs = INFINITY;
            continue;
        }
        if (!(e <= atol + rtol * fabs(ref[i])))
            acc->nbad++;
        if (e > acc->max_abs)
            acc->max_abs = e;
        if (fabs(ref[i]) > 1e-3 && e / fabs(ref[i]) > acc->max_rel)
            acc->max_rel = e / fabs(ref[i]);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kcu_replay_median(double *x, int64_t n)
{
    if (n <= 0)
        return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* --------------------------------------------------------------- report */
kcu_replay_check *kcu_replay_add_check(kcu_replay_report *r, const char *name)
{
    if (r->ncheck >= KCU_REPLAY_MAX_CHECKS)
        return NULL;
    kcu_replay_check *c = &r->check[r->ncheck++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->sets.first_bad = -1;
    return c;
}

kcu_replay_time *kcu_replay_add_time(kcu_replay_report *r, const char *what, const char *method, int64_t step,
                                     int64_t cache_tokens)
{
    if (r->ntime >= KCU_REPLAY_MAX_TIMES)
        return NULL;
    kcu_replay_time *t = &r->time[r->ntime++];
    memset(t, 0, sizeof *t);
    snprintf(t->what, sizeof t->what, "%s", what);
    snprintf(t->method, sizeof t->method, "%s", method);
    t->step = step;
    t->cache_tokens = cache_tokens;
    return t;
}

int kcu_replay_all_pass(const kcu_replay_report *r)
{
    for (int i = 0; i < r->ncheck; i++)
        if (!r->check[i].pass)
            return 0;
    return 1;
}

static void num(kv_json *j, const char *k, double v)
{
    kv_json_key(j, k);
    if (isfinite(v))
        kv_json_num(j, v);
    else
        kv_json_null(j);
}

void kcu_replay_report_json(const kcu_replay_report *r, FILE *fp)
{
    const kcu_replay_plan *p = &r->plan;
    kv_json j;
    kv_json_init(&j, fp);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "kind"); kv_json_str(&j, "kvsim-replay");
    kv_json_key(&j, "trace"); kv_json_str(&j, r->trace);
    kv_json_key(&j, "device"); kv_json_str(&j, r->device);
    kv_json_key(&j, "method"); kv_json_str(&j, p->method);
    kv_json_key(&j, "batch"); kv_json_int(&j, p->B);
    kv_json_key(&j, "kv_heads"); kv_json_int(&j, p->Hkv);
    kv_json_key(&j, "group"); kv_json_int(&j, p->G);
    kv_json_key(&j, "head_dim"); kv_json_int(&j, p->d);
    kv_json_key(&j, "layers"); kv_json_int(&j, p->nlayers);
    kv_json_key(&j, "S"); kv_json_int(&j, p->S);
    kv_json_key(&j, "steps"); kv_json_int(&j, p->steps);
    kv_json_key(&j, "prompt_budget"); kv_json_int(&j, p->P);
    kv_json_key(&j, "page_size"); kv_json_int(&j, p->p);
    kv_json_key(&j, "topr"); kv_json_int(&j, p->r);
    kv_json_key(&j, "topk"); kv_json_int(&j, p->k);
    num(&j, "atol", p->atol);
    num(&j, "rtol", p->rtol);
    kv_json_key(&j, "checked"); kv_json_bool(&j, r->checked);
    kv_json_key(&j, "all_checks_pass"); kv_json_bool(&j, kcu_replay_all_pass(r));
    kv_json_key(&j, "checks");
    kv_json_arr_begin(&j);
    for (int i = 0; i < r->ncheck; i++) {
        const kcu_replay_check *c = &r->check[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "name"); kv_json_str(&j, c->name);
        kv_json_key(&j, "pass"); kv_json_bool(&j, c->pass);
        kv_json_key(&j, "positions_ref"); kv_json_int(&j, c->sets.nref);
        kv_json_key(&j, "positions_got"); kv_json_int(&j, c->sets.ngot);
        kv_json_key(&j, "differing_candidates"); kv_json_int(&j, c->sets.ndiff);
        kv_json_key(&j, "near_tie_flips"); kv_json_int(&j, c->sets.nnear);
        num(&j, "near_tie_max_gap", c->sets.max_near_gap);
        kv_json_key(&j, "mismatches"); kv_json_int(&j, c->sets.nbad);
        num(&j, "first_mismatch_gap", c->sets.first_bad >= 0 ? c->sets.first_bad_gap : NAN);
        kv_json_key(&j, "dims_differing"); kv_json_int(&j, c->dims_bad);
        kv_json_key(&j, "outputs"); kv_json_int(&j, c->tol.n);
        kv_json_key(&j, "outputs_outside_tol"); kv_json_int(&j, c->tol.nbad);
        kv_json_key(&j, "outputs_nan"); kv_json_int(&j, c->tol.nnan);
        num(&j, "max_abs_err", c->tol.max_abs);
        num(&j, "max_rel_err", c->tol.max_rel);
        kv_json_key(&j, "detail"); kv_json_str(&j, c->detail);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "timed"); kv_json_bool(&j, r->timed);
    kv_json_key(&j, "timing_method");
    kv_json_str(&j, "CUDA events around one CUDA-graph replay per rep (one recorded layer, all sequences and KV "
                    "heads), L2 flushed by a 2xL2 memset before each rep, median of reps after 3 warm-ups");
    kv_json_key(&j, "timings");
    kv_json_arr_begin(&j);
    for (int i = 0; i < r->ntime; i++) {
        const kcu_replay_time *t = &r->time[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "what"); kv_json_str(&j, t->what);
        kv_json_key(&j, "method"); kv_json_str(&j, t->method);
        kv_json_key(&j, "step"); kv_json_int(&j, t->step);
        kv_json_key(&j, "cache_tokens"); kv_json_int(&j, t->cache_tokens);
        num(&j, "median_s", t->median_s);
        num(&j, "min_s", t->min_s);
        kv_json_key(&j, "reps"); kv_json_int(&j, t->reps);
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_obj_end(&j);
    fputc('\n', fp);
}

void kcu_replay_report_print(const kcu_replay_report *r, FILE *fp)
{
    const kcu_replay_plan *p = &r->plan;
    fprintf(fp, "replay %s on %s: %s, B=%d Hkv=%d G=%d d=%d, %d layer(s), S=%lld, %lld step(s), P=%lld p=%lld r=%d "
                "k=%lld\n",
            r->trace, r->device, p->method, p->B, p->Hkv, p->G, p->d, p->nlayers, (long long)p->S,
            (long long)p->steps, (long long)p->P, (long long)p->p, p->r, (long long)p->k);
    for (int i = 0; i < r->ncheck; i++) {
        const kcu_replay_check *c = &r->check[i];
        fprintf(fp, "%-4s %-28s %s\n", c->pass ? "ok" : "FAIL", c->name, c->detail);
    }
    if (r->ntime)
        fprintf(fp, "\n%-14s %-9s %5s %8s %11s %11s %5s\n", "what", "method", "step", "C", "median_us", "min_us",
                "reps");
    for (int i = 0; i < r->ntime; i++) {
        const kcu_replay_time *t = &r->time[i];
        fprintf(fp, "%-14s %-9s %5lld %8lld %11.2f %11.2f %5d\n", t->what, t->method, (long long)t->step,
                (long long)t->cache_tokens, t->median_s * 1e6, t->min_s * 1e6, t->reps);
    }
    if (r->checked)
        fprintf(fp, "%s\n", kcu_replay_all_pass(r) ? "all checks pass" : "CHECKS FAILED");
}
