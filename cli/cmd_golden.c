/* cmd_golden.c — `kvsim golden`: one decode step of the reference, stage by
 * stage, written as NumPy .npy tensors plus manifest.json, so that a kernel
 * written anywhere (Triton, CUDA C++, inside an engine) can be checked with
 * `kvsim compare` or any test harness.
 *
 * What is written for (layer, KV head), decode position S (step 0):
 *   inputs     k_prompt (S, d), q_window (G, w, d)          [stage 1]
 *              k_cache, v_cache (C, d), cache_positions (C), q (G, d)
 *   stage1     votes (S − w), pooled (S − w) f64; kept (P) int32 positions
 *   pages      page_min, page_max (npages, d) f32 (values of the aux dtype)
 *   dims       dim_scores (d) f64 = Σ_h |q_h|; dims (r) int32 ascending
 *   page_scores  page_scores (G, npages) f64 = s_h(j)/τ_h
 *   selection  token_scores (C) f64 (group-mean probability per cache slot);
 *              selected (n) int32 cache slots, ascending
 *   attention  out (G, d) f32
 * K/V values are stored as float32 holding exactly the KV dtype's values.
 * Only the stages a method has are written (full: inputs and attention).
 *
 * It deliberately does not run more than one step or one head: a harness
 * loops over invocations if it wants more. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "golden.h"
#include "npy.h"
#include "run_setup.h"
#include "kcu_ref.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The manifest is collected while tensors are written. */
typedef struct {
    char name[40], stage[16], role[10], compare[8], scores[40];
    cli_npy_dtype dtype;
    int ndim;
    int64_t shape[CLI_NPY_MAX_DIMS];
    double atol, rtol;
} tensor_entry;

typedef struct {
    const char *dir;
    tensor_entry t[32];
    int n;
} golden_ctx;

static int put(golden_ctx *g, const char *stage, const char *name, const char *role, const char *compare,
               double atol, double rtol, const char *scores, cli_npy_dtype dt, int ndim, const int64_t *shape,
               const void *data, kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.npy", g->dir, name);
    if (cli_npy_write(path, dt, ndim, shape, data, err) != 0)
        return -1;
    tensor_entry *e = &g->t[g->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->stage, sizeof e->stage, "%s", stage);
    snprintf(e->role, sizeof e->role, "%s", role);
    snprintf(e->compare, sizeof e->compare, "%s", compare);
    snprintf(e->scores, sizeof e->scores, "%s", scores ? scores : "");
    e->dtype = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->atol = atol;
    e->rtol = rtol;
    return 0;
}

static int write_manifest(const golden_ctx *g, const mdl_model *m, const rkv_params *p, int layer, int kvh,
                          kv_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", g->dir);
    kv_afile f;
    if (kv_afile_open(&f, path, err) != 0)
        return -1;
    kv_json j;
    kv_json_init(&j, f.fp);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "kind");
    kv_json_str(&j, "kvsim-golden");
    kv_json_key(&j, "version");
    kv_json_int(&j, 1);
    kv_json_key(&j, "model");
    kv_json_str(&j, m->name);
    kv_json_key(&j, "method");
    kv_json_str(&j, p->method->name);
    kv_json_key(&j, "budget");
    kv_json_int(&j, p->budget);
    kv_json_key(&j, "context");
    kv_json_int(&j, p->S);
    kv_json_key(&j, "decode_position");
    kv_json_int(&j, p->S);
    kv_json_key(&j, "layer");
    kv_json_int(&j, layer);
    kv_json_key(&j, "kv_head");
    kv_json_int(&j, kvh);
    kv_json_key(&j, "params");
    cli_params_json(&j, p);
    kv_json_key(&j, "kv_dtype");
    kv_json_str(&j, rkv_dtype_name(p->kv_dtype));
    kv_json_key(&j, "tie_rule");
    kv_json_str(&j, "every top-k: larger score first, equal scores to the lower index; sets listed ascending");
    kv_json_key(&j, "rounding");
    kv_json_str(&j, "page score: f32 products and sums rounded separately (no FMA), ascending dims, then "
                    "divided by tau in double; softmax and group mean in double");
    kv_json_key(&j, "layouts");
    kv_json_str(&j, "row-major (C order); q (G, d) head h of the group; q_window (G, w, d); page_min/max "
                    "(npages, d); kept: absolute positions; selected: cache slots (cache_positions[slot] "
                    "is the position)");
    kv_json_key(&j, "tensors");
    kv_json_arr_begin(&j);
    for (int i = 0; i < g->n; i++) {
        const tensor_entry *e = &g->t[i];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "name");
        kv_json_str(&j, e->name);
        kv_json_key(&j, "file");
        char fn[64];
        snprintf(fn, sizeof fn, "%s.npy", e->name);
        kv_json_str(&j, fn);
        kv_json_key(&j, "stage");
        kv_json_str(&j, e->stage);
        kv_json_key(&j, "role");
        kv_json_str(&j, e->role);
        kv_json_key(&j, "dtype");
        kv_json_str(&j, cli_npy_dtype_name(e->dtype));
        kv_json_key(&j, "shape");
        kv_json_arr_begin(&j);
        for (int d = 0; d < e->ndim; d++)
            kv_json_int(&j, e->shape[d]);
        kv_json_arr_end(&j);
        kv_json_key(&j, "compare");
        kv_json_str(&j, e->compare);
        if (!strcmp(e->compare, "tol")) {
            kv_json_key(&j, "atol");
            kv_json_num(&j, e->atol);
            kv_json_key(&j, "rtol");
            kv_json_num(&j, e->rtol);
        }
        if (e->scores[0]) {
            kv_json_key(&j, "scores");
            kv_json_str(&j, e->scores);
        }
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_obj_end(&j);
    fputc('\n', f.fp);
    return kv_afile_commit(&f, err);
}

/* Rows idx[0..n) of a (·, d) array in the KV dtype, decoded to f32. */
static void gather_rows(const rkv_head *h, const void *base, const int32_t *idx, int64_t n, float *dst)
{
    size_t b = rkv_dtype_bytes(h->dtype);
    for (int64_t t = 0; t < n; t++)
        rkv_decode(h->dtype, (const char *)base + (size_t)(idx ? idx[t] : t) * (size_t)h->d * b, (size_t)h->d,
                   dst + (size_t)t * (size_t)h->d);
}

int cli_golden_write(const mdl_model *m, const rkv_workload *wl, const rkv_params *p, int layer, int kvh,
                     const char *dir, kv_err *err)
{
    const char *mn = p->method->name;
    const int stage1 = !strcmp(mn, "rocketkv"), stage2 = stage1 || !strcmp(mn, "hsa");
    if (!stage2 && strcmp(mn, "full") != 0)
        return kv_errf(err, "method '%s' is not supported; expected full, hsa or rocketkv", mn);
    if (p->kv_dtype != RKV_DTYPE_BF16 || p->aux_dtype != RKV_DTYPE_BF16)
        return kv_errf(err, "only bf16 KV and aux are written (got %s / %s)", rkv_dtype_name(p->kv_dtype),
                       rkv_dtype_name(p->aux_dtype));
    if (p->local_window > 0)
        return kv_errf(err, "--local-window is not supported");
    if (layer < 0 || layer >= m->num_hidden_layers || kvh < 0 || kvh >= m->num_key_value_heads)
        return kv_errf(err, "layer %d / kv head %d out of range (%d layers, %d KV heads)", layer, kvh,
                       m->num_hidden_layers, m->num_key_value_heads);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return kv_errf(err, "%s: cannot create directory: %s", dir, strerror(errno));
    const int d = p->d, G = p->G;
    const int64_t S = p->S, n = S + 1;
    const int64_t w = p->window_size > 0 ? (p->window_size < S ? p->window_size : S) : 0;
    int rc = -1;
    static golden_ctx g;
    memset(&g, 0, sizeof g);
    g.dir = dir;
    float *Kf = malloc(sizeof(float) * (size_t)n * (size_t)d), *Vf = malloc(sizeof(float) * (size_t)n * (size_t)d);
    uint16_t *K = malloc(2 * (size_t)n * (size_t)d), *V = malloc(2 * (size_t)n * (size_t)d);
    float *Qw = malloc(sizeof(float) * (size_t)G * (size_t)(w > 0 ? w : 1) * (size_t)d);
    float *q = malloc(sizeof(float) * (size_t)G * (size_t)d), *qt = malloc(sizeof(float) * (size_t)G * (size_t)d);
    void *st = calloc(1, p->method->state_bytes(p, n));
    void *ws = calloc(1, rkv_scratch_bytes(p, n));
    rkv_step_out o;
    memset(&o, 0, sizeof o);
    o.cap = n;
    o.pos = malloc(sizeof(int32_t) * (size_t)G * (size_t)n);
    o.count = malloc(sizeof(int64_t) * (size_t)G);
    o.out = malloc(sizeof(float) * (size_t)G * (size_t)d);
    o.dims = malloc(sizeof(int32_t) * (size_t)G * (size_t)d);
    float *tmp = NULL;
    int32_t *cpos = NULL, *slots = NULL;
    if (!Kf || !Vf || !K || !V || !Qw || !q || !qt || !st || !ws || !o.pos || !o.count || !o.out || !o.dims) {
        kv_errf(err, "out of memory for a %lld-token head", (long long)n);
        goto free_all;
    }
    if (rkv_workload_kv(wl, m, layer, kvh, n, Kf, Vf, err) != 0)
        goto free_all;
    rkv_encode(p->kv_dtype, Kf, (size_t)n * (size_t)d, K);
    rkv_encode(p->kv_dtype, Vf, (size_t)n * (size_t)d, V);
    for (int64_t i = 0; i < w; i++) {
        rkv_workload_query(wl, m, layer, kvh, S - w + i, 0, 0, qt);
        for (int h = 0; h < G; h++)
            memcpy(Qw + ((size_t)h * (size_t)w + (size_t)i) * (size_t)d, qt + (size_t)h * (size_t)d,
                   sizeof(float) * (size_t)d);
    }
    rkv_workload_query(wl, m, layer, kvh, S, 0, 1, q);
    rkv_head hd = {layer, kvh, d, G, p->kv_dtype, S, n, K, V};
    p->method->state_init(st, p, n);
    rkv_prefill_in in = {.n_end = S, .w = w, .Qw = Qw, .turn = 0};
    if (p->method->prefill && p->method->prefill(st, p, &hd, &in, ws) != 0) {
        kv_errf(err, "the reference's prefill failed");
        goto free_all;
    }
    hd.n = n;
    if (p->method->step(st, p, &hd, q, &o, ws) != 0) {
        kv_errf(err, "the reference's step failed");
        goto free_all;
    }
    const int64_t C = o.cache ? o.cache_n[0] : n;
    cpos = malloc(sizeof(int32_t) * (size_t)C);
    tmp = malloc(sizeof(double) * (size_t)(n > (int64_t)G * d ? n : (int64_t)G * d) * (size_t)(d > 2 ? d : 2));
    slots = malloc(sizeof(int32_t) * (size_t)n);
    if (!cpos || !tmp || !slots) {
        kv_errf(err, "out of memory");
        goto free_all;
    }
    for (int64_t t = 0; t < C; t++)
        cpos[t] = o.cache ? o.cache[t] : (int32_t)t;

    /* inputs */
    int64_t sh[3];
    sh[0] = C;
    sh[1] = d;
    gather_rows(&hd, K, cpos, C, tmp);
    if (put(&g, "inputs", "k_cache", "input", "none", 0, 0, NULL, CLI_NPY_F32, 2, sh, tmp, err))
        goto free_all;
    gather_rows(&hd, V, cpos, C, tmp);
    if (put(&g, "inputs", "v_cache", "input", "none", 0, 0, NULL, CLI_NPY_F32, 2, sh, tmp, err) ||
        put(&g, "inputs", "cache_positions", "input", "none", 0, 0, NULL, CLI_NPY_I32, 1, sh, cpos, err))
        goto free_all;
    sh[0] = G;
    if (put(&g, "inputs", "q", "input", "none", 0, 0, NULL, CLI_NPY_F32, 2, sh, q, err))
        goto free_all;

    /* stage 1 */
    if (stage1 && p->evicts && w > 0) {
        sh[0] = S;
        sh[1] = d;
        gather_rows(&hd, K, NULL, S, tmp);
        if (put(&g, "inputs", "k_prompt", "input", "none", 0, 0, NULL, CLI_NPY_F32, 2, sh, tmp, err))
            goto free_all;
        sh[0] = G;
        sh[1] = w;
        sh[2] = d;
        if (put(&g, "inputs", "q_window", "input", "none", 0, 0, NULL, CLI_NPY_F32, 3, sh, Qw, err))
            goto free_all;
        const int64_t npre = S - w;
        double *votes = (double *)tmp, *pooled = malloc(sizeof(double) * (size_t)npre);
        int32_t *cand = malloc(sizeof(int32_t) * (size_t)S);
        void *ws1 = malloc(rkv_stage1_ws_bytes(S, w, G, d));
        int bad = !pooled || !cand || !ws1;
        if (bad)
            kv_errf(err, "out of memory for stage 1");
        if (!bad) {
            for (int64_t t = 0; t < S; t++)
                cand[t] = (int32_t)t;
            hd.n = S;
            bad = rkv_stage1_votes(&hd, cand, S, Qw, w, 1, votes, ws1) != 0;
            hd.n = n;
            if (bad)
                kv_errf(err, "the reference's stage-1 vote failed");
        }
        if (!bad) {
            rkv_pool1d(votes, npre, p->kernel_size, p->pool, pooled);
            sh[0] = npre;
            bad = put(&g, "stage1", "votes", "expected", "tol", 1e-9, 1e-5, NULL, CLI_NPY_F64, 1, sh, votes, err) ||
                  put(&g, "stage1", "pooled", "expected", "tol", 1e-9, 1e-5, NULL, CLI_NPY_F64, 1, sh, pooled, err);
            sh[0] = C - (n - S); /* the kept prompt positions: the cache before the new token */
            if (!bad)
                bad = put(&g, "stage1", "kept", "expected", "set", 0, 0, "pooled", CLI_NPY_I32, 1, sh, cpos, err);
        }
        free(pooled);
        free(cand);
        free(ws1);
        if (bad)
            goto free_all;
    }

    /* stage 2, recomputed with kcu_ref (bit-identical to refimpl's own
     * arithmetic, tests/test_kcu.c) to expose its intermediate tensors */
    if (stage2) {
        const int64_t pg = p->page_size, np = kcu_npages(C, pg);
        const int r = (int)(p->topr < d ? p->topr : d), rows = kcu_aux_rows(d, pg);
        uint16_t *kc = malloc(2 * (size_t)C * (size_t)d), *aux = malloc(2 * (size_t)rows * (size_t)np);
        float *pm = malloc(sizeof(float) * (size_t)np * (size_t)d * 2);
        double *gsum = malloc(sizeof(double) * (size_t)d), *tau = malloc(sizeof(double) * (size_t)G);
        double *z = malloc(sizeof(double) * (size_t)G * (size_t)np), *avg = malloc(sizeof(double) * (size_t)np);
        double *dsc = malloc(sizeof(double) * (size_t)d), *tok = malloc(sizeof(double) * (size_t)C);
        int32_t *dims = malloc(sizeof(int32_t) * (size_t)d);
        void *scr = malloc((size_t)d * 32);
        int bad = !kc || !aux || !pm || !gsum || !tau || !z || !avg || !dsc || !tok || !dims || !scr;
        if (bad)
            kv_errf(err, "out of memory for stage 2");
        if (!bad) {
            for (int64_t t = 0; t < C; t++)
                memcpy(kc + (size_t)t * (size_t)d, K + (size_t)cpos[t] * (size_t)d, 2 * (size_t)d);
            kcu_ref_pages_build(kc, C, d, pg, np, aux);
            for (int64_t j = 0; j < np; j++)
                for (int i = 0; i < d; i++) {
                    pm[(size_t)j * (size_t)d + (size_t)i] = kcu_bf16_to_f32(aux[kcu_aux_min_off(i, j, np)]);
                    pm[(size_t)(np + j) * (size_t)d + (size_t)i] =
                        kcu_bf16_to_f32(aux[kcu_aux_max_off(i, j, np, d, pg)]);
                }
            kcu_ref_hsa_dims(q, G, d, r, dims, gsum, tau, scr);
            for (int i = 0; i < d; i++) {
                dsc[i] = 0;
                for (int h = 0; h < G; h++)
                    dsc[i] += fabs((double)q[(size_t)h * (size_t)d + (size_t)i]);
            }
            for (int t = 0; t < r; t++)
                if (dims[t] != o.dims[t]) {
                    kv_errf(err, "internal mismatch: kcu dims differ from refimpl's at %d", t);
                    bad = 1;
                }
            kcu_ref_hsa_page_scores(aux, np, d, pg, G, q, dims, r, gsum, tau, np, z);
            kcu_ref_hsa_average(z, G, np, C, pg, avg);
            for (int64_t t = 0; t < C; t++)
                tok[t] = avg[t / pg];
            /* refimpl's attended positions -> cache slots */
            int64_t ns = 0;
            for (int64_t t = 0, i = 0; t < C && i < o.count[0]; t++)
                if (cpos[t] == o.pos[i]) {
                    slots[ns++] = (int32_t)t;
                    i++;
                }
            if (ns != o.count[0]) {
                kv_errf(err, "internal mismatch: attended positions are not cache slots");
                bad = 1;
            }
            int64_t s2[2] = {np, d};
            bad = bad ||
                  put(&g, "pages", "page_min", "expected", "tol", 0, 0, NULL, CLI_NPY_F32, 2, s2, pm, err) ||
                  put(&g, "pages", "page_max", "expected", "tol", 0, 0, NULL, CLI_NPY_F32, 2, s2, pm + np * d, err);
            s2[0] = d;
            bad = bad || put(&g, "dims", "dim_scores", "expected", "tol", 0, 1e-12, NULL, CLI_NPY_F64, 1, s2, dsc, err);
            s2[0] = r;
            bad = bad || put(&g, "dims", "dims", "expected", "set", 0, 0, "dim_scores", CLI_NPY_I32, 1, s2, dims, err);
            s2[0] = G;
            s2[1] = np;
            bad = bad ||
                  put(&g, "page_scores", "page_scores", "expected", "tol", 1e-6, 1e-5, NULL, CLI_NPY_F64, 2, s2, z, err);
            s2[0] = C;
            bad = bad || put(&g, "selection", "token_scores", "expected", "tol", 1e-9, 1e-5, NULL, CLI_NPY_F64, 1,
                             s2, tok, err);
            s2[0] = ns;
            bad = bad ||
                  put(&g, "selection", "selected", "expected", "set", 0, 0, "token_scores", CLI_NPY_I32, 1, s2, slots, err);
        }
        free(kc);
        free(aux);
        free(pm);
        free(gsum);
        free(tau);
        free(z);
        free(avg);
        free(dsc);
        free(tok);
        free(dims);
        free(scr);
        if (bad)
            goto free_all;
    }
    sh[0] = G;
    sh[1] = d;
    /* bf16 K/V, f32 arithmetic in another order: 1e-4 + 1e-3·|ref| */
    if (put(&g, "attention", "out", "expected", "tol", 1e-4, 1e-3, NULL, CLI_NPY_F32, 2, sh, o.out, err) ||
        write_manifest(&g, m, p, layer, kvh, err))
        goto free_all;
    rc = 0;
free_all:
    free(Kf);
    free(Vf);
    free(K);
    free(V);
    free(Qw);
    free(q);
    free(qt);
    free(st);
    free(ws);
    free(o.pos);
    free(o.count);
    free(o.out);
    free(o.dims);
    free(tmp);
    free(cpos);
    free(slots);
    return rc;
}

static void help(void)
{
    printf("usage: kvsim golden --model M --method X --budget T --context S --out DIR [--layer L] [--kv-head H]\n"
           "                    [--seed N]\n\n"
           "Writes the reference's inputs and expected outputs of one decode step (the token at position S),\n"
           "stage by stage, as NumPy .npy files plus DIR/manifest.json (shapes, dtypes, tie rule,\n"
           "tolerances). Methods: full, hsa, rocketkv. Check another implementation's outputs with\n"
           "`kvsim compare DIR DIR_ACTUAL`.\n\n%s"
           "  --out DIR          output directory (created)\n"
           "  --layer L          layer (0)\n"
           "  --kv-head H        KV head (0)\n"
           "  --seed N           workload seed (1)\n",
           cli_run_setup_help);
}

int cmd_golden(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim golden", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *out = cli_opt_str(&o, "out", NULL);
    int64_t layer, kvh, seed;
    if (cli_out_check(&o, "out", out, 1) != 0)
        return CLI_USAGE;
    static cli_run_setup s;
    int rc = cli_run_setup_parse(&o, &s, 0);
    if (rc != CLI_OK)
        return rc;
    /* the layer and KV head within the model just loaded */
    if (cli_opt_i64_in(&o, "layer", 0, 0, s.model.num_hidden_layers - 1, &layer) ||
        cli_opt_i64_in(&o, "kv-head", 0, 0, s.model.num_key_value_heads - 1, &kvh) ||
        cli_opt_i64_in(&o, "seed", 1, 0, INT64_MAX, &seed))
        return CLI_USAGE;
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (s.cfg.nsets != 1) {
        cli_error(o.prog, "one method and one budget at a time (got %d combinations)", s.cfg.nsets);
        return CLI_USAGE;
    }
    s.wl.seed = (uint64_t)seed;
    kv_err err = {{0}};
    if (cli_golden_write(&s.model, &s.wl, &s.cfg.sets[0], (int)layer, (int)kvh, out, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    printf("kvsim golden: %s, %s t=%lld S=%lld layer %lld kv head %lld -> %s/manifest.json\n", s.model.name,
           s.cfg.sets[0].method->name, (long long)s.cfg.sets[0].budget, (long long)s.cfg.sets[0].S, (long long)layer,
           (long long)kvh, out);
    return CLI_OK;
}
