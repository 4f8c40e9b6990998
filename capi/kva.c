/* kva.c — the flat C API for bindings (see kva.h). Each function resolves
 * its inputs the way the CLI does and makes one library call. */
#define _POSIX_C_SOURCE 200809L
#include "kva.h"
#include "hw.h"
#include "kcu.h"
#include "kcu_ref.h"
#include "sim.h"
#include "swp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kva_version(void) { return KV_VERSION; }
void kva_free(void *p) { free(p); }

static int fail(char *err, const char *msg)
{
    snprintf(err, KVA_ERR_LEN, "%s", msg);
    return -1;
}

/* A request for `method` on `model`, resolved as `kvsim params` does. */
static int resolve_dtype(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
                         rkv_dtype kv_dtype, mdl_model *m, rkv_request *rq, rkv_params *p, char *err);

static int resolve(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
                   mdl_model *m, rkv_request *rq, rkv_params *p, char *err)
{
    return resolve_dtype(model, method, budget, context, max_new, RKV_DTYPE_BF16, m, rq, p, err);
}

/* resolve with the KV dtype (the aux dtype follows it, as the CLI's). */
static int resolve_dtype(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
                         rkv_dtype kv_dtype, mdl_model *m, rkv_request *rq, rkv_params *p, char *err)
{
    kv_err e;
    if (mdl_model_load(model, m, &e) != 0)
        return fail(err, e.msg);
    rkv_request_defaults(rq);
    rq->context = context;
    rq->budget = budget;
    rq->max_new = max_new;
    rq->d = m->head_dim;
    rq->G = mdl_group_size(m);
    rq->model_max_len = m->max_position_embeddings;
    rq->kv_dtype = kv_dtype;
    if (rkv_params_resolve(method, rq, p, &e) != 0)
        return fail(err, e.msg);
    return 0;
}

/* A JSON writer into a malloc'ed string. */
typedef struct {
    char *buf;
    size_t len;
    FILE *fp;
    kv_json j;
} json_out;

static int json_open(json_out *o, char *err)
{
    o->buf = NULL;
    o->fp = open_memstream(&o->buf, &o->len);
    if (!o->fp)
        return fail(err, "out of memory");
    kv_json_init(&o->j, o->fp);
    return 0;
}

static int json_close(json_out *o, char **json)
{
    fclose(o->fp);
    *json = o->buf;
    return 0;
}

static void traits_json(kv_json *j, const rkv_traits *t)
{
    char line[160];
    rkv_traits_format(t, line, sizeof line);
    kv_json_obj_begin(j);
    kv_json_key(j, "summary"); kv_json_str(j, line);
    kv_json_key(j, "per_query_head"); kv_json_bool(j, t->per_query_head);
    kv_json_key(j, "dense"); kv_json_bool(j, t->dense);
    kv_json_key(j, "stage1"); kv_json_bool(j, t->stage1);
    kv_json_key(j, "stage2"); kv_json_bool(j, t->stage2);
    kv_json_key(j, "cache_capped"); kv_json_bool(j, t->cache_capped);
    kv_json_obj_end(j);
}

int kva_params(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
               char **json, char *err)
{
    mdl_model m;
    rkv_request rq;
    rkv_params p;
    json_out o;
    if (resolve(model, method, budget, context, max_new, &m, &rq, &p, err) != 0 || json_open(&o, err) != 0)
        return -1;
    kv_json_obj_begin(&o.j);
    kv_json_key(&o.j, "model"); kv_json_str(&o.j, m.name);
    kv_json_key(&o.j, "G"); kv_json_int(&o.j, p.G);
    kv_json_key(&o.j, "d"); kv_json_int(&o.j, p.d);
    kv_json_key(&o.j, "params"); rkv_params_json(&o.j, &p);
    kv_json_key(&o.j, "traits"); traits_json(&o.j, &p.method->traits);
    kv_json_obj_end(&o.j);
    return json_close(&o, json);
}

static void memory_json(kv_json *j, const sim_memory *m)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "weights_bytes"); kv_json_num(j, m->weights_bytes);
    kv_json_key(j, "kv_bytes"); kv_json_num(j, m->kv_bytes);
    kv_json_key(j, "aux_bytes"); kv_json_num(j, m->aux_bytes);
    kv_json_key(j, "workspace_bytes"); kv_json_num(j, m->workspace_bytes);
    kv_json_key(j, "reserve_bytes"); kv_json_num(j, m->reserve_bytes);
    kv_json_key(j, "peak_bytes"); kv_json_num(j, m->peak_bytes);
    kv_json_key(j, "capacity_bytes"); kv_json_num(j, m->capacity_bytes);
    kv_json_key(j, "fits"); kv_json_bool(j, m->fits);
    kv_json_obj_end(j);
}

static void result_json(kv_json *j, const sim_result *r)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "steps"); kv_json_int(j, r->steps);
    kv_json_key(j, "step_time_s"); kv_json_num(j, r->step_time_s);
    kv_json_key(j, "first_step_s"); kv_json_num(j, r->first_step_s);
    kv_json_key(j, "last_step_s"); kv_json_num(j, r->last_step_s);
    kv_json_key(j, "tokens_per_s"); kv_json_num(j, r->tokens_per_s);
    kv_json_key(j, "ttft_s"); kv_json_num(j, r->ttft_s);
    kv_json_key(j, "prefill_s"); kv_json_num(j, r->prefill_s);
    kv_json_key(j, "stage1_s"); kv_json_num(j, r->stage1_s);
    kv_json_key(j, "flops_per_step"); kv_json_num(j, r->flops_per_step);
    kv_json_key(j, "memory"); memory_json(j, &r->mem);
    kv_json_obj_end(j);
}

static int load_hw(const char *name, hw_model *h, sim_harness *hs, const char *harness, char *err)
{
    kv_err e;
    if (hw_model_load(name, h, &e) != 0)
        return fail(err, e.msg);
    if (sim_harness_parse(harness, hs) != 0)
        return fail(err, "harness: expected engine or gpt-fast");
    return 0;
}

int kva_predict(const char *model, const char *hw, const char *method, int64_t budget, int64_t context,
                int64_t max_new, int64_t batch, int tp, const char *harness, char **json, char *err)
{
    static hw_model h;
    mdl_model m;
    rkv_request rq;
    rkv_params p, pf;
    sim_harness hs;
    kv_err e;
    if (resolve(model, method, budget, context, max_new, &m, &rq, &p, err) != 0 ||
        load_hw(hw, &h, &hs, harness, err) != 0)
        return -1;
    if (rkv_params_resolve(rkv_method_baseline()->name, &rq, &pf, &e) != 0)
        return fail(err, e.msg);
    if (batch < 1 || tp < 1)
        return fail(err, "batch and tp must be at least 1");
    sim_config c, cf;
    sim_config_defaults(&c, &m, &h, &p);
    c.batch = batch;
    c.tp = tp;
    c.harness = hs;
    cf = c;
    cf.params = pf;
    sim_result r, f;
    json_out o;
    if (sim_predict(&c, &r, &e) != 0 || sim_predict(&cf, &f, &e) != 0)
        return fail(err, e.msg);
    if (json_open(&o, err) != 0)
        return -1;
    kv_json_obj_begin(&o.j);
    kv_json_key(&o.j, "model"); kv_json_str(&o.j, m.name);
    kv_json_key(&o.j, "hw"); kv_json_str(&o.j, h.name);
    kv_json_key(&o.j, "batch"); kv_json_int(&o.j, batch);
    kv_json_key(&o.j, "tp"); kv_json_int(&o.j, tp);
    kv_json_key(&o.j, "harness"); kv_json_str(&o.j, sim_harness_name(hs));
    kv_json_key(&o.j, "params"); rkv_params_json(&o.j, &p);
    kv_json_key(&o.j, "method"); result_json(&o.j, &r);
    kv_json_key(&o.j, "full"); result_json(&o.j, &f);
    kv_json_key(&o.j, "speedup_vs_full"); kv_json_num(&o.j, f.step_time_s / r.step_time_s);
    kv_json_obj_end(&o.j);
    return json_close(&o, json);
}

int kva_plan(const char *model, const char *hw, const char *method, int64_t budget, int64_t context,
             int64_t max_new, int tp, const char *harness, double tpot_slo_s, double target_tokens_per_s,
             char **json, char *err)
{
    static hw_model h;
    mdl_model m;
    rkv_request rq;
    rkv_params p;
    sim_plan_in in;
    kv_err e;
    memset(&in, 0, sizeof in);
    if (resolve(model, method, budget, context, max_new, &m, &rq, &p, err) != 0 ||
        load_hw(hw, &h, &in.harness, harness, err) != 0)
        return -1;
    if (tp < 1 || !(tpot_slo_s >= 0) || !(target_tokens_per_s >= 0))
        return fail(err, "tp must be at least 1, the SLO and the target non-negative");
    in.model = &m;
    in.hw = &h;
    in.method = method;
    in.rq = rq;
    in.tp = tp;
    in.cuda_graphs = 1;
    in.tpot_slo_s = tpot_slo_s;
    in.target_tokens_per_s = target_tokens_per_s;
    in.max_batch_limit = 4096;
    sim_plan_row row;
    json_out o;
    if (sim_plan(&in, &row, &e) != 0)
        return fail(err, e.msg);
    if (json_open(&o, err) != 0)
        return -1;
    kv_json_obj_begin(&o.j);
    kv_json_key(&o.j, "model"); kv_json_str(&o.j, m.name);
    kv_json_key(&o.j, "hw"); kv_json_str(&o.j, h.name);
    kv_json_key(&o.j, "method"); kv_json_str(&o.j, method);
    kv_json_key(&o.j, "budget"); kv_json_int(&o.j, budget);
    kv_json_key(&o.j, "context"); kv_json_int(&o.j, context);
    kv_json_key(&o.j, "tp"); kv_json_int(&o.j, tp);
    kv_json_key(&o.j, "fits"); kv_json_bool(&o.j, row.fits);
    kv_json_key(&o.j, "max_batch"); kv_json_int(&o.j, row.max_batch);
    kv_json_key(&o.j, "tokens_per_s"); kv_json_num(&o.j, row.tokens_per_s);
    kv_json_key(&o.j, "tpot_s"); kv_json_num(&o.j, row.tpot_s);
    kv_json_key(&o.j, "slo_batch"); kv_json_int(&o.j, row.slo_batch);
    kv_json_key(&o.j, "slo_tokens_per_s"); kv_json_num(&o.j, row.slo_tokens_per_s);
    kv_json_key(&o.j, "slo_tpot_s"); kv_json_num(&o.j, row.slo_tpot_s);
    kv_json_key(&o.j, "max_context_at_batch1"); kv_json_int(&o.j, row.max_context_at_batch1);
    kv_json_key(&o.j, "gpus_for_target"); kv_json_int(&o.j, row.gpus_for_target);
    kv_json_key(&o.j, "memory"); memory_json(&o.j, &row.mem);
    kv_json_obj_end(&o.j);
    return json_close(&o, json);
}

int kva_sweep(const char *spec, const char *out_csv, int fidelity, char *err)
{
    static swp_spec s;
    kv_err e;
    swp_spec_defaults(&s);
    if (swp_spec_load(spec, &s, &e) != 0)
        return fail(err, e.msg);
    if (!fidelity)
        s.fidelity = 0;
    swp_sweep *w = swp_sweep_alloc(&s, &e);
    if (!w)
        return fail(err, e.msg);
    swp_run_opts ro = {.index = 0, .count = 1};
    swp_run_stats st;
    int rc = swp_run(w, out_csv, &ro, &st, &e);
    swp_sweep_free(w);
    return rc == 0 ? 0 : fail(err, e.msg);
}

/* ---- the exact reference ------------------------------------------------ */
/* A one-group head over rows of k (and v) rounded to bf16. */
typedef struct {
    rkv_head h;
    uint16_t *K, *V;
} bf16_head;

static int head_from(const float *k, const float *v, int64_t n, int d, int G, bf16_head *b, char *err)
{
    b->K = malloc(2 * (size_t)(n > 0 ? n : 1) * (size_t)d);
    b->V = v ? malloc(2 * (size_t)(n > 0 ? n : 1) * (size_t)d) : NULL;
    if (!b->K || (v && !b->V))
        return fail(err, "out of memory");
    rkv_encode(RKV_DTYPE_BF16, k, (size_t)n * (size_t)d, b->K);
    if (v)
        rkv_encode(RKV_DTYPE_BF16, v, (size_t)n * (size_t)d, b->V);
    b->h = (rkv_head){0, 0, d, G, RKV_DTYPE_BF16, n, n, b->K, b->V};
    return 0;
}

static void head_release(bf16_head *b)
{
    free(b->K);
    free(b->V);
}

static int check_dims(int G, int d, char *err)
{
    if (G < 1 || G > 64 || d < 1 || d > 1024)
        return fail(err, "G must be in [1, 64] and d in [1, 1024]");
    return 0;
}

/* Stage 1 as refimpl's methods run it: the G heads voting together
 * (rocketkv, snapkv-gqa) or each head alone through a one-head view
 * (snapkv), votes then pooling then the top-(P − w) prefix plus the window. */
int kva_stage1_select(const float *k, int64_t S, int d, int G, const float *qw, int64_t w, int64_t P,
                      int64_t kernel, int pool_avg, int per_head, double *votes, double *pooled, int32_t *kept,
                      int64_t *nkept, char *err)
{
    if (check_dims(G, d, err) != 0)
        return -1;
    if (S < 1 || w < 1 || w > S || P < 1 || kernel < 1)
        return fail(err, "need S >= 1, 1 <= w <= S, P >= 1 and kernel >= 1");
    bf16_head b;
    if (head_from(k, NULL, S, d, G, &b, err) != 0)
        return -1;
    const int rows = per_head ? G : 1, gv = per_head ? 1 : G;
    const int64_t np = S - w;
    const rkv_pool pool = pool_avg ? RKV_POOL_AVG : RKV_POOL_MAX;
    int32_t *cand = malloc(sizeof(int32_t) * (size_t)S);
    void *ws = malloc(rkv_stage1_ws_bytes(S, w, gv, d));
    int rc = cand && ws ? 0 : fail(err, "out of memory");
    for (int64_t t = 0; cand && t < S; t++)
        cand[t] = (int32_t)t;
    b.h.G = gv;
    for (int r = 0; rc == 0 && r < rows; r++) {
        const float *q = qw + (size_t)r * (size_t)w * (size_t)d;
        if (votes && np > 0) {
            if (rkv_stage1_votes(&b.h, cand, S, q, w, 1, votes + (size_t)r * (size_t)np, ws) != 0)
                rc = fail(err, "stage-1 vote failed");
            else if (pooled)
                rkv_pool1d(votes + (size_t)r * (size_t)np, np, kernel, pool, pooled + (size_t)r * (size_t)np);
        }
        *nkept = rkv_stage1_select(&b.h, cand, S, q, w, P, kernel, pool, 1, kept + (size_t)r * (size_t)P, ws);
    }
    free(cand);
    free(ws);
    head_release(&b);
    return rc;
}

/* HSA over one step's cache with kcu_ref, the arithmetic refimpl's
 * method_hsa.c uses (tests/test_kcu.c checks them bit for bit): page
 * min/max, top-r dims by Σ_h|q_h|, page scores, the group-mean token
 * probability, top-k tokens (or ⌈k/p⌉ pages), the newest local_window slots. */
int kva_hsa_select(const float *q, int G, int d, const float *k, int64_t C, int64_t page_size, int64_t topr,
                   int64_t topk, int page_granularity, int64_t local_window, int32_t *selected, int64_t *nsel,
                   int32_t *dims, int *r, double *page_scores, double *token_scores, char *err)
{
    if (check_dims(G, d, err) != 0)
        return -1;
    if (C < 1 || page_size < 1 || topr < 1 || topk < 1 || local_window < 0)
        return fail(err, "need C, page_size, topr, topk >= 1 and local_window >= 0");
    const int64_t np = kcu_npages(C, page_size);
    bf16_head b;
    if (head_from(k, NULL, C, d, G, &b, err) != 0)
        return -1;
    uint16_t *aux = malloc(2 * (size_t)kcu_aux_rows(d, page_size) * (size_t)np);
    double *gsum = malloc(sizeof(double) * (size_t)d), *tau = malloc(sizeof(double) * (size_t)G);
    double *z = malloc(sizeof(double) * (size_t)G * (size_t)np), *avg = malloc(sizeof(double) * (size_t)np);
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)np);
    int64_t *take = malloc(sizeof(int64_t) * (size_t)np), *wt = malloc(sizeof(int64_t) * (size_t)np);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)C);
    void *scr = malloc((size_t)d * 32);
    int rc = aux && gsum && tau && z && avg && keys && take && wt && pos && scr ? 0 : fail(err, "out of memory");
    if (rc == 0) {
        kcu_ref_pages_build(b.K, C, d, page_size, np, aux);
        *r = kcu_ref_hsa_dims(q, G, d, (int)(topr < d ? topr : d), dims, gsum, tau, scr);
        kcu_ref_hsa_page_scores(aux, np, d, page_size, G, q, dims, *r, gsum, tau, np, z);
        kcu_ref_hsa_average(z, G, np, C, page_size, avg);
        int64_t m = kcu_ref_hsa_select(avg, np, C, page_size, topk, page_granularity, pos, keys, take, wt);
        /* union with the newest local_window slots, ascending */
        int64_t from = C - local_window < 0 ? 0 : C - local_window, n = 0, i = 0;
        for (int64_t t = 0; t < C; t++) {
            int in_sel = i < m && pos[i] == t;
            if (in_sel)
                i++;
            if (in_sel || (local_window > 0 && t >= from))
                selected[n++] = (int32_t)t;
        }
        *nsel = n;
        if (page_scores)
            memcpy(page_scores, z, sizeof(double) * (size_t)G * (size_t)np);
        for (int64_t t = 0; token_scores && t < C; t++)
            token_scores[t] = avg[t / page_size];
    }
    free(aux); free(gsum); free(tau); free(z); free(avg); free(keys); free(take); free(wt); free(pos); free(scr);
    head_release(&b);
    return rc;
}

int kva_attend(const float *q, int G, int d, const float *k, const float *v, int64_t n, const int32_t *idx,
               int64_t nidx, float *out, char *err)
{
    if (check_dims(G, d, err) != 0)
        return -1;
    if (n < 1 || (idx && nidx < 1))
        return fail(err, "attention needs at least one row");
    for (int64_t i = 0; idx && i < nidx; i++)
        if (idx[i] < 0 || idx[i] >= n)
            return fail(err, "an index is outside the rows of k and v");
    bf16_head b;
    if (head_from(k, v, n, d, G, &b, err) != 0)
        return -1;
    const int64_t m = idx ? nidx : n;
    float *ws = malloc(sizeof(float) * ((size_t)m * (size_t)G + 4 * (size_t)d + 64));
    int rc = ws ? 0 : fail(err, "out of memory");
    if (rc == 0)
        rkv_attend(&b.h, q, idx, m, out, NULL, ws);
    free(ws);
    head_release(&b);
    return rc;
}

/* ---- golden files ------------------------------------------------------- */
int kva_golden_write(const char *model, const char *method, int64_t budget, int64_t context, int64_t max_new,
                     int layer, int kv_head, int64_t steps, uint64_t seed, const char *kv_dtype, const char *dir,
                     char *err)
{
    mdl_model m;
    rkv_request rq;
    rkv_params p;
    rkv_dtype dt = RKV_DTYPE_BF16;
    if (kv_dtype && rkv_dtype_parse(kv_dtype, &dt) != 0) {
        snprintf(err, KVA_ERR_LEN, "kv_dtype: unknown '%s' (expected bf16, fp16, fp32, fp8-e4m3, fp8-e5m2)",
                 kv_dtype);
        return -1;
    }
    if (resolve_dtype(model, method, budget, context, max_new, dt, &m, &rq, &p, err) != 0)
        return -1;
    /* the CLI's default workload (kvsim golden without --workload), so both write the same bytes */
    static rkv_workload wl;
    char wpath[1024];
    kv_err e;
    rkv_workload_defaults(&wl);
    if (rkv_workload_find(RKV_DEFAULT_WORKLOAD, wpath, sizeof wpath, &e) != 0 || rkv_workload_load(wpath, &wl, &e) != 0)
        return fail(err, e.msg);
    wl.seed = seed;
    gld_opts o = {.layer = layer, .kv_head = kv_head, .steps = steps};
    return gld_write(&m, &wl, &p, &o, dir, &e) == 0 ? 0 : fail(err, e.msg);
}

int kva_golden_compare(const char *expected, const char *actual, int all_stages, double atol, gld_result *res,
                       char *err)
{
    gld_cmp_opts co = {.all_stages = all_stages, .atol = atol};
    kv_err e;
    return gld_compare(expected, actual, &co, NULL, res, &e) == 0 ? 0 : fail(err, e.msg);
}

/* ---- any method, prefill then decode steps ------------------------------ */
/* The request a bare (K, V, Q) run resolves: context S, max_new new tokens,
 * the group's shape, no model length cap. */
static int bare_params(const char *method, int64_t budget, int64_t S, int64_t max_new, int d, int G, rkv_params *p,
                       char *err)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = S;
    rq.max_new = max_new;
    rq.budget = budget;
    rq.d = d;
    rq.G = G;
    kv_err e;
    return rkv_params_resolve(method, &rq, p, &e) == 0 ? 0 : fail(err, e.msg);
}

int kva_decode(const char *method, int64_t budget, int64_t max_new, const float *k, const float *v, int64_t S,
               int64_t steps, int d, int G, const float *qw, int64_t w, const float *q, float *out, int32_t *pos,
               int64_t *count, char *err)
{
    if (check_dims(G, d, err) != 0)
        return -1;
    if (S < 1 || steps < 1 || w < 0 || w > S || max_new < steps)
        return fail(err, "need S >= 1, 1 <= steps <= max_new and 0 <= w <= S");
    rkv_params p;
    if (bare_params(method, budget, S, max_new, d, G, &p, err) != 0)
        return -1;
    const int64_t n = S + steps, ww = p.window_size > 0 ? (p.window_size < S ? p.window_size : S) : 0;
    if (p.method->traits.stage1 && p.evicts && ww > 0 && (!qw || w != ww))
        return fail(err, "this method's stage 1 needs q_window with min(window_size, S) queries");
    bf16_head b;
    if (head_from(k, v, n, d, G, &b, err) != 0)
        return -1;
    void *st = calloc(1, p.method->state_bytes(&p, n)), *ws = calloc(1, rkv_scratch_bytes(&p, n));
    rkv_step_out o;
    memset(&o, 0, sizeof o);
    o.cap = n;
    o.pos = malloc(sizeof(int32_t) * (size_t)G * (size_t)n);
    o.count = malloc(sizeof(int64_t) * (size_t)G);
    o.out = malloc(sizeof(float) * (size_t)G * (size_t)d);
    o.dims = malloc(sizeof(int32_t) * (size_t)G * (size_t)d);
    int rc = st && ws && o.pos && o.count && o.out && o.dims ? 0 : fail(err, "out of memory");
    if (rc == 0) {
        p.method->state_init(st, &p, n);
        b.h.n = S;
        rkv_prefill_in in = {.n_end = S, .w = ww, .Qw = qw, .turn = 0};
        if (p.method->prefill && p.method->prefill(st, &p, &b.h, &in, ws) != 0)
            rc = fail(err, "prefill failed");
    }
    for (int64_t s = 0; rc == 0 && s < steps; s++) {
        b.h.n = S + s + 1;
        if (p.method->step(st, &p, &b.h, q + (size_t)s * (size_t)G * (size_t)d, &o, ws) != 0) {
            rc = fail(err, "decode step failed");
            break;
        }
        memcpy(out + (size_t)s * (size_t)G * (size_t)d, o.out, sizeof(float) * (size_t)G * (size_t)d);
        for (int h = 0; h < G; h++) {
            const int row = o.shared ? 0 : h;
            count[s * G + h] = o.count[row];
            memcpy(pos + ((size_t)s * (size_t)G + (size_t)h) * (size_t)n, o.pos + (size_t)row * (size_t)o.cap,
                   sizeof(int32_t) * (size_t)o.count[row]);
        }
    }
    free(st); free(ws); free(o.pos); free(o.count); free(o.out); free(o.dims);
    head_release(&b);
    return rc;
}
