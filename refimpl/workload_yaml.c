/* workload_yaml.c — reads a synthetic workload file: every knob of
 * rkv_workload, each optional (the built-in default otherwise), strictly
 * typed and range-checked, with file:line:col on any error. Multi-turn
 * workloads list their turns:
 *
 *   generator: synthetic
 *   seed: 7
 *   num_topics: 64
 *   turns:
 *     - {input: 16384, output: 32}
 *     - {input: 512, output: 32}
 */
#include "rkv.h"
#include "kv_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KVSIM_DATADIR
#define KVSIM_DATADIR "."
#endif

int rkv_workload_find(const char *name_or_path, char *path, size_t cap, kv_err *err)
{
    static const char *const known[] = {"smollm2-fitted", "smollm2-heads", "handtuned", "multiturn", NULL};
    return kv_data_find("refimpl/workloads", KVSIM_DATADIR, name_or_path, "workload", known, path, cap, err);
}

static const char *const keys[] = {
    "generator", "seed", "key_rank", "topic_run_mean", "num_topics", "topic_strength", "key_noise",
    "outlier_channels", "outlier_scale", "sink_tokens", "sink_strength", "recency_strength", "needles",
    "needle_strength", "focus_topics", "query_focus", "query_noise", "query_content", "query_persistence", "decode_drift", "head_diversity",
    "value_noise", "rope_theta", "turns", "hh_fraction", "hh_sigma", "rec_span", "rec_kernel", "chan_spread", "sink_key_scale", "early_tokens", "early_hh_fraction", "rec_key_tilt", "pair_theta", "pair_head_dim", "pair_key", "agree_span", "resid_tail", "group_share", "group_tail", "head_vectors", "classes", "class_map", NULL,
};

/* A scalar sequence item through the strict ranged parser, "file:line:col: key" in the message. */
static int item_f64(const kv_yaml_doc *d, const kv_yaml_node *v, const char *key, double lo, double hi, double *out,
                    kv_err *err)
{
    char what[600];
    snprintf(what, sizeof what, "%s:%d:%d: key '%s'", d->path, v->line, v->col, key);
    if (v->kind != KV_YAML_SCALAR)
        return kv_errf(err, "%s: expected a number", what);
    return kv_parse_f64_in(what, v->text, lo, hi, out, err);
}

/* classes: a list of {name, sink, hh, rec: [a, b, c], focus, content, noise, persistence}. */
static int read_classes(const kv_yaml_doc *d, const kv_yaml_node *seq, rkv_workload *wl, kv_err *err)
{
    static const char *const ckeys[] = {"name", "sink", "hh", "rec", "focus", "content", "noise", "persistence", "pairs",
                                        "agree", "mean_gain", NULL};
    if (seq->kind != KV_YAML_SEQ || seq->n < 1 || seq->n > RKV_MAX_CLASSES)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'classes': expected a list of 1 to %d head classes",
                            RKV_MAX_CLASSES);
    for (size_t i = 0; i < seq->n; i++) {
        const kv_yaml_node *c = seq->items[i];
        rkv_head_class *hc = &wl->cls[i];
        memset(hc, 0, sizeof *hc);
        if (c->kind != KV_YAML_MAP)
            return kv_yaml_errf(d, c->line, c->col, err, "class %zu: expected a mapping", i + 1);
        if (kv_yaml_check_keys(d, c, ckeys, err) != 0 || kv_yaml_str(d, c, "name", 1, hc->name, sizeof hc->name, err) != 0)
            return -1;
        struct { const char *k; double *dst; double lo, hi; } f[] = {
            {"sink", &hc->sink, -100, 100}, {"hh", &hc->hh, -100, 100}, {"focus", &hc->focus, -100, 100},
            {"content", &hc->content, 0, 100}, {"noise", &hc->noise, 0, 100}, {"persistence", &hc->persistence, 0, 1},
        };
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
            if (kv_yaml_num(d, c, f[k].k, 1, f[k].lo, 0, f[k].hi, f[k].dst, err) != 0) return -1;
        const kv_yaml_node *rec = kv_yaml_get(c, "rec");
        if (!rec || rec->kind != KV_YAML_SEQ || rec->n != RKV_REC_BANDS)
            return kv_yaml_errf(d, rec ? rec->line : c->line, rec ? rec->col : c->col, err,
                                "class %zu: key 'rec': expected a list of %d numbers", i + 1, RKV_REC_BANDS);
        for (int b = 0; b < RKV_REC_BANDS; b++)
            if (item_f64(d, rec->items[b], "rec", -100, 100, &hc->rec[b], err) != 0) return -1;
        const kv_yaml_node *pa = kv_yaml_get(c, "pairs"); /* rec_kernel pairs: 2·pair_n numbers, required */
        if (pa && wl->rec_ladder != RKV_REC_PAIRS)
            return kv_yaml_errf(d, pa->line, pa->col, err, "class %zu: key 'pairs' needs rec_kernel 'pairs'", i + 1);
        if (wl->rec_ladder == RKV_REC_PAIRS && (!pa || pa->kind != KV_YAML_SEQ || (int)pa->n != 2 * wl->pair_n))
            return kv_yaml_errf(d, pa ? pa->line : c->line, pa ? pa->col : c->col, err,
                                "class %zu: key 'pairs': expected a list of %d numbers (re, im per measured pair)", i + 1,
                                2 * wl->pair_n);
        for (size_t k = 0; pa && k < pa->n; k++)
            if (item_f64(d, pa->items[k], "pairs", -1000, 1000, &hc->pair_amp[k], err) != 0) return -1;
        const kv_yaml_node *ag = kv_yaml_get(c, "agree"); /* rec_kernel heads: optional, 0 when absent */
        if (ag && wl->rec_ladder != RKV_REC_HEADS)
            return kv_yaml_errf(d, ag->line, ag->col, err, "class %zu: key 'agree' needs rec_kernel 'heads'", i + 1);
        if (kv_yaml_num(d, c, "agree", 0, 0.0, 0, 1.0, &hc->agree, err) != 0) return -1;
        const kv_yaml_node *mg = kv_yaml_get(c, "mean_gain"); /* rec_kernel heads: optional, [0, 0] when absent */
        if (mg && wl->rec_ladder != RKV_REC_HEADS)
            return kv_yaml_errf(d, mg->line, mg->col, err, "class %zu: key 'mean_gain' needs rec_kernel 'heads'", i + 1);
        if (mg && (mg->kind != KV_YAML_SEQ || mg->n != 2))
            return kv_yaml_errf(d, mg->line, mg->col, err, "class %zu: key 'mean_gain': expected a list of 2 numbers", i + 1);
        for (size_t k = 0; mg && k < 2; k++)
            if (item_f64(d, mg->items[k], "mean_gain", -4, 4, &hc->mean_gain[k], err) != 0) return -1;
    }
    wl->nclasses = (int)seq->n;
    return 0;
}

/* rec_kernel pairs: pair_theta, pair_head_dim (the measured model's RoPE base and head_dim) and pair_key (the
 * norm of the keys' mean direction on each measured pair, at most head_dim/2 - 2 of them), all required. */
static int read_pair_key(const kv_yaml_doc *d, const kv_yaml_node *r, rkv_workload *wl, kv_err *err)
{
    const kv_yaml_node *pk = kv_yaml_get(r, "pair_key");
    int64_t hd = 0;
    if (kv_yaml_num(d, r, "pair_theta", 1, 1.0, 0, 1e12, &wl->pair_theta, err) != 0 ||
        kv_yaml_int(d, r, "pair_head_dim", 1, 8, 2 * RKV_MAX_PAIRS + 4, &hd, err) != 0)
        return -1;
    wl->pair_head_dim = (int)hd;
    const int most = wl->pair_head_dim / 2 - 2;
    if (!pk || pk->kind != KV_YAML_SEQ || pk->n < 1 || (int)pk->n > most)
        return kv_yaml_errf(d, pk ? pk->line : 1, pk ? pk->col : 1, err,
                            "key 'pair_key': rec_kernel 'pairs' needs a list of 1 to %d numbers (pair_head_dim/2 - 2)", most);
    wl->pair_n = (int)pk->n;
    for (size_t i = 0; i < pk->n; i++)
        if (item_f64(d, pk->items[i], "pair_key", 0.0, 1e6, &wl->pair_key[i], err) != 0) return -1;
    return 0;
}

/* rec_kernel heads: pair_theta (the measured model's RoPE base) and head_vectors {layers, q_heads, kv_heads,
 * head_dim, context (optional), keys, queries}: layers·kv_heads key rows of RKV_HV_KROW(head_dim) numbers, layers·q_heads query rows
 * of RKV_HV_QROW(head_dim); s.d.s >= 0, every number within ±1e6. All required. The rows are interned. */
static int read_head_vectors(const kv_yaml_doc *d, const kv_yaml_node *r, rkv_workload *wl, kv_err *err)
{
    static const char *const hkeys[] = {"layers", "q_heads", "kv_heads", "head_dim", "context", "keys", "queries", NULL};
    const kv_yaml_node *hv = kv_yaml_get(r, "head_vectors");
    int64_t L, Hq, Hkv, hd;
    if (kv_yaml_num(d, r, "pair_theta", 1, 1.0, 0, 1e12, &wl->pair_theta, err) != 0) return -1;
    if (!hv || hv->kind != KV_YAML_MAP)
        return kv_yaml_errf(d, hv ? hv->line : 1, hv ? hv->col : 1, err,
                            "key 'head_vectors': rec_kernel 'heads' needs a mapping {layers, q_heads, kv_heads, head_dim, keys, queries}");
    if (kv_yaml_check_keys(d, hv, hkeys, err) != 0 ||
        kv_yaml_int(d, hv, "layers", 1, 1, RKV_MAX_MAP_LAYERS, &L, err) != 0 ||
        kv_yaml_int(d, hv, "q_heads", 1, 1, RKV_MAX_MAP_HEADS, &Hq, err) != 0 ||
        kv_yaml_int(d, hv, "kv_heads", 1, 1, RKV_MAX_MAP_HEADS, &Hkv, err) != 0 ||
        kv_yaml_int(d, hv, "head_dim", 1, 4, 512, &hd, err) != 0)
        return -1;
    int64_t hc = 0; /* the measured context: optional, 0 (no stretch past it) when absent */
    if (kv_yaml_int(d, hv, "context", 0, 2, (int64_t)1 << 30, &hc, err) != 0) return -1;
    wl->hv_context = hc;
    if (Hq % Hkv != 0 || hd % 2 != 0)
        return kv_yaml_errf(d, hv->line, hv->col, err,
                            "key 'head_vectors': q_heads (%lld) must be a multiple of kv_heads (%lld) and head_dim (%lld) even",
                            (long long)Hq, (long long)Hkv, (long long)hd);
    const int kr = RKV_HV_KROW((int)hd), qr = RKV_HV_QROW((int)hd), h2 = (int)hd / 2;
    const size_t nk = (size_t)(L * Hkv), nq = (size_t)(L * Hq);
    float *x = malloc((nk * (size_t)kr + nq * (size_t)qr) * sizeof *x);
    if (!x) return kv_errf(err, "workload: out of memory");
    static const char *const name[2] = {"keys", "queries"};
    for (int part = 0; part < 2; part++) {
        const kv_yaml_node *rows = kv_yaml_get(hv, name[part]);
        const size_t want = part ? nq : nk;
        const int len = part ? qr : kr;
        if (!rows || rows->kind != KV_YAML_SEQ || rows->n != want) {
            free(x);
            return kv_yaml_errf(d, rows ? rows->line : hv->line, rows ? rows->col : hv->col, err,
                                "key 'head_vectors': '%s' needs a list of %zu rows (layers x %s)", name[part], want,
                                part ? "q_heads" : "kv_heads");
        }
        for (size_t i = 0; i < want; i++) {
            const kv_yaml_node *row = rows->items[i];
            if (row->kind != KV_YAML_SEQ || (int)row->n != len) {
                free(x);
                return kv_yaml_errf(d, row->line, row->col, err, "key 'head_vectors': each '%s' row needs %d numbers",
                                    name[part], len);
            }
            float *dst = x + (part ? nk * (size_t)kr : 0) + i * (size_t)len;
            for (int j = 0; j < len; j++) {
                const int var = (j >= 2 * h2 && j < 3 * h2) || (j >= 4 * h2 && j < 5 * h2); /* the variances */
                double v;
                if (item_f64(d, row->items[j], name[part], var ? 0.0 : -1e6, 1e6, &v, err) != 0) {
                    free(x);
                    return -1;
                }
                dst[j] = (float)v;
            }
            for (int j = 0; j < h2; j++) { /* each pair's covariance positive semidefinite, up to the printed digits */
                const double vxx = dst[2 * h2 + j], vxy = dst[3 * h2 + j], vyy = dst[4 * h2 + j];
                if (vxy * vxy > vxx * vyy * (1.0 + 1e-3) + 1e-9) {
                    const kv_yaml_node *it = row->items[3 * h2 + j];
                    free(x);
                    return kv_yaml_errf(d, it->line, it->col, err,
                                        "key 'head_vectors': pair %d's covariance (%g, %g, %g) is not positive semidefinite", j,
                                        vxx, vxy, vyy);
                }
            }
        }
    }
    wl->hv = rkv_wl_hv_intern(x, nk * (size_t)kr + nq * (size_t)qr);
    free(x);
    if (!wl->hv) return kv_errf(err, "workload: out of memory");
    wl->hv_layers = (int)L;
    wl->hv_q_heads = (int)Hq;
    wl->hv_kv_heads = (int)Hkv;
    wl->hv_head_dim = (int)hd;
    return 0;
}

/* class_map: one list per measured layer of class names, one per query head. */
static int read_class_map(const kv_yaml_doc *d, const kv_yaml_node *seq, rkv_workload *wl, kv_err *err)
{
    if (seq->kind != KV_YAML_SEQ || seq->n < 1 || seq->n > RKV_MAX_MAP_LAYERS)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'class_map': expected a list of 1 to %d layers",
                            RKV_MAX_MAP_LAYERS);
    for (size_t l = 0; l < seq->n; l++) {
        const kv_yaml_node *row = seq->items[l];
        if (row->kind != KV_YAML_SEQ || row->n < 1 || row->n > RKV_MAX_MAP_HEADS ||
            (l > 0 && (int)row->n != wl->map_heads))
            return kv_yaml_errf(d, row->line, row->col, err,
                                "class_map layer %zu: expected a list of class names, one per query head (%d)", l,
                                l > 0 ? wl->map_heads : RKV_MAX_MAP_HEADS);
        wl->map_heads = (int)row->n;
        for (size_t h = 0; h < row->n; h++) {
            const kv_yaml_node *v = row->items[h];
            int c = -1;
            for (int k = 0; v->kind == KV_YAML_SCALAR && k < wl->nclasses; k++)
                if (!strcmp(v->text, wl->cls[k].name)) c = k;
            if (c < 0)
                return kv_yaml_errf(d, v->line, v->col, err, "class_map layer %zu head %zu: '%s' is not a class name", l,
                                    h, v->kind == KV_YAML_SCALAR ? v->text : "(not a scalar)");
            wl->class_map[l][h] = (uint8_t)c;
        }
    }
    wl->map_layers = (int)seq->n;
    return 0;
}

/* The fitted generator's keys: rec_span, classes, class_map (all required), hh_fraction, hh_sigma, chan_spread,
 * sink_key_scale (1 when absent), rec_kernel (rff when absent: the profiles written before it existed),
 * early_tokens, early_hh_fraction and rec_key_tilt (0 when absent). */
static int read_fitted(const kv_yaml_doc *d, const kv_yaml_node *r, rkv_workload *wl, kv_err *err)
{
    const kv_yaml_node *rs = kv_yaml_get(r, "rec_span"), *cl = kv_yaml_get(r, "classes"), *cm = kv_yaml_get(r, "class_map");
    if (!rs || !cl || !cm)
        return kv_yaml_errf(d, 1, 1, err, "generator 'fitted' needs keys rec_span, classes and class_map");
    if (kv_yaml_num(d, r, "hh_fraction", 0, 0.0, 0, 1.0, &wl->hh_fraction, err) != 0 ||
        kv_yaml_num(d, r, "hh_sigma", 0, 0.0, 0, 10.0, &wl->hh_sigma, err) != 0 ||
        kv_yaml_num(d, r, "chan_spread", 0, 0.0, 0, 4.0, &wl->chan_spread, err) != 0 ||
        kv_yaml_num(d, r, "sink_key_scale", 0, 0.0, 1, 1000.0, &wl->sink_key_scale, err) != 0 ||
        kv_yaml_num(d, r, "early_hh_fraction", 0, 0.0, 0, 1.0, &wl->early_hh_fraction, err) != 0 ||
        kv_yaml_num(d, r, "rec_key_tilt", 0, -4.0, 0, 4.0, &wl->rec_key_tilt, err) != 0)
        return -1;
    int64_t et = wl->early_tokens;
    if (kv_yaml_int(d, r, "early_tokens", 0, 0, 1 << 30, &et, err) != 0) return -1;
    wl->early_tokens = (int)et;
    if (rs->kind != KV_YAML_SEQ || rs->n != RKV_REC_BANDS)
        return kv_yaml_errf(d, rs->line, rs->col, err, "key 'rec_span': expected a list of %d token counts", RKV_REC_BANDS);
    for (int b = 0; b < RKV_REC_BANDS; b++)
        if (item_f64(d, rs->items[b], "rec_span", 1.0, 1e9, &wl->rec_span[b], err) != 0) return -1;
    char kern[16] = "rff";
    if (kv_yaml_str(d, r, "rec_kernel", 0, kern, sizeof kern, err) != 0) return -1;
    const kv_yaml_node *rk = kv_yaml_get(r, "rec_kernel");
    if (strcmp(kern, "rff") != 0 && strcmp(kern, "ladder") != 0 && strcmp(kern, "pairs") != 0 && strcmp(kern, "heads") != 0)
        return kv_yaml_errf(d, rk->line, rk->col, err,
                            "key 'rec_kernel': expected 'rff', 'ladder', 'pairs' or 'heads', got '%s'", kern);
    wl->rec_ladder = !strcmp(kern, "heads") ? RKV_REC_HEADS : !strcmp(kern, "pairs") ? RKV_REC_PAIRS : !strcmp(kern, "ladder");
    if (wl->rec_ladder == RKV_REC_PAIRS && read_pair_key(d, r, wl, err) != 0) return -1;
    if (wl->rec_ladder == RKV_REC_HEADS && read_head_vectors(d, r, wl, err) != 0) return -1;
    const kv_yaml_node *asn = kv_yaml_get(r, "agree_span");
    if (asn && wl->rec_ladder != RKV_REC_HEADS)
        return kv_yaml_errf(d, asn->line, asn->col, err, "key 'agree_span' needs rec_kernel 'heads'");
    if (kv_yaml_num(d, r, "agree_span", 0, 0.0, 0, 64.0, &wl->agree_span, err) != 0) return -1;
    const kv_yaml_node *rtn = kv_yaml_get(r, "resid_tail");
    if (rtn && wl->rec_ladder != RKV_REC_HEADS)
        return kv_yaml_errf(d, rtn->line, rtn->col, err, "key 'resid_tail' needs rec_kernel 'heads'");
    if (kv_yaml_num(d, r, "resid_tail", 0, 0.0, 0, 2.0, &wl->resid_tail, err) != 0) return -1;
    static const char *const gk[2] = {"group_share", "group_tail"};
    for (int i = 0; i < 2; i++) {
        const kv_yaml_node *gn = kv_yaml_get(r, gk[i]);
        if (gn && wl->rec_ladder != RKV_REC_HEADS)
            return kv_yaml_errf(d, gn->line, gn->col, err, "key '%s' needs rec_kernel 'heads'", gk[i]);
        if (kv_yaml_num(d, r, gk[i], 0, 0.0, 0, i ? 2.0 : 1.0, i ? &wl->group_tail : &wl->group_share, err) != 0) return -1;
    }
    const kv_yaml_node *hvn = kv_yaml_get(r, "head_vectors");
    if (hvn && wl->rec_ladder != RKV_REC_HEADS)
        return kv_yaml_errf(d, hvn->line, hvn->col, err, "key 'head_vectors' needs rec_kernel 'heads'");
    if (wl->rec_ladder == 1 && !(wl->rec_span[0] < wl->rec_span[1] && wl->rec_span[1] < wl->rec_span[2]))
        return kv_yaml_errf(d, rs->line, rs->col, err, "key 'rec_span': rec_kernel 'ladder' needs increasing spans, got "
                            "[%g, %g, %g]", wl->rec_span[0], wl->rec_span[1], wl->rec_span[2]);
    return read_classes(d, cl, wl, err) != 0 || read_class_map(d, cm, wl, err) != 0 ? -1 : 0;
}

static int read_turns(const kv_yaml_doc *d, const kv_yaml_node *seq, rkv_workload *wl, kv_err *err)
{
    static const char *const tkeys[] = {"input", "output", NULL};
    if (seq->kind != KV_YAML_SEQ)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'turns': expected a list of {input, output}");
    if (seq->n < 1 || seq->n > RKV_MAX_TURNS)
        return kv_yaml_errf(d, seq->line, seq->col, err, "key 'turns': expected 1 to %d turns, got %zu",
                            RKV_MAX_TURNS, seq->n);
    for (size_t i = 0; i < seq->n; i++) {
        const kv_yaml_node *t = seq->items[i];
        if (t->kind != KV_YAML_MAP)
            return kv_yaml_errf(d, t->line, t->col, err, "turn %zu: expected a mapping {input: N, output: N}", i + 1);
        if (kv_yaml_check_keys(d, t, tkeys, err) != 0 ||
            kv_yaml_int(d, t, "input", 1, 1, INT32_MAX / 2, &wl->turn_input[i], err) != 0 ||
            kv_yaml_int(d, t, "output", 1, 1, 1 << 20, &wl->turn_output[i], err) != 0)
            return -1;
    }
    wl->nturns = (int)seq->n;
    return 0;
}

static int load_doc(kv_yaml_doc d, const char *path, rkv_workload *out, kv_err *err);

int rkv_workload_load(const char *path, rkv_workload *out, kv_err *err)
{
    kv_yaml_doc d;
    memset(&d, 0, sizeof d);
    if (kv_yaml_load_file(&d, path, err) != 0)
        return -1;
    return load_doc(d, path, out, err);
}

int rkv_workload_load_mem(const char *name, const void *buf, size_t len, rkv_workload *out, kv_err *err)
{
    kv_yaml_doc d;
    memset(&d, 0, sizeof d);
    if (kv_yaml_load_mem(&d, name, buf, len, err) != 0)
        return -1;
    return load_doc(d, name, out, err);
}

/* The workload in a parsed document (freed here); path names it in messages. */
static int load_doc(kv_yaml_doc d, const char *path, rkv_workload *out, kv_err *err)
{
    rkv_workload wl;
    rkv_workload_defaults(&wl);
    snprintf(wl.path, sizeof wl.path, "%s", path);
    const kv_yaml_node *r = d.root;
    int64_t i64;
    int rc = kv_yaml_check_keys(&d, r, keys, err);
    if (rc == 0 && kv_yaml_str(&d, r, "generator", 0, wl.generator, sizeof wl.generator, err) != 0) rc = -1;
    if (rc == 0 && !strcmp(wl.generator, "synthetic")) /* the hand-tuned generator's old name */
        snprintf(wl.generator, sizeof wl.generator, "handtuned");
    if (rc == 0 && strcmp(wl.generator, "handtuned") != 0 && strcmp(wl.generator, "fitted") != 0) {
        const kv_yaml_node *g = kv_yaml_get(r, "generator");
        rc = kv_yaml_errf(&d, g->line, g->col, err, "key 'generator': expected 'fitted' or 'handtuned' ('synthetic'), got '%s'",
                          wl.generator);
    }
    if (rc == 0 && !strcmp(wl.generator, "handtuned")) {
        static const char *const fk[] = {"hh_fraction", "hh_sigma", "rec_span", "rec_kernel", "chan_spread", "sink_key_scale", "early_tokens",
                                         "early_hh_fraction", "rec_key_tilt", "pair_theta", "pair_head_dim", "pair_key",
                                         "agree_span", "resid_tail", "group_share", "group_tail", "head_vectors", "classes", "class_map"};
        for (size_t i = 0; rc == 0 && i < sizeof fk / sizeof fk[0]; i++) {
            const kv_yaml_node *v = kv_yaml_get(r, fk[i]);
            if (v) rc = kv_yaml_errf(&d, v->line, v->col, err, "key '%s' belongs to generator 'fitted'", fk[i]);
        }
    }
    if (rc == 0 && !strcmp(wl.generator, "fitted") && read_fitted(&d, r, &wl, err) != 0) rc = -1;
    if (rc == 0) {
        i64 = (int64_t)wl.seed;
        if (kv_yaml_int(&d, r, "seed", 0, 0, INT64_MAX, &i64, err) != 0) rc = -1;
        wl.seed = (uint64_t)i64;
    }
    struct { const char *k; int *dst; int64_t lo, hi; } ints[] = {
        {"key_rank", &wl.key_rank, 0, 256}, {"num_topics", &wl.num_topics, 1, 4096},
        {"outlier_channels", &wl.outlier_channels, 0, 64}, {"sink_tokens", &wl.sink_tokens, 0, 1024},
        {"needles", &wl.needles, 0, 64}, {"focus_topics", &wl.focus_topics, 1, 16},
    };
    for (size_t i = 0; rc == 0 && i < sizeof ints / sizeof ints[0]; i++) {
        i64 = *ints[i].dst;
        if (kv_yaml_int(&d, r, ints[i].k, 0, ints[i].lo, ints[i].hi, &i64, err) != 0) rc = -1;
        *ints[i].dst = (int)i64;
    }
    struct { const char *k; double *dst; double lo; int lo_open; double hi; } nums[] = {
        {"topic_run_mean", &wl.topic_run_mean, 1.0, 0, 1e9}, {"topic_strength", &wl.topic_strength, 0.0, 0, 100.0},
        {"key_noise", &wl.key_noise, 0.0, 0, 100.0}, {"outlier_scale", &wl.outlier_scale, 0.0, 0, 1000.0},
        {"sink_strength", &wl.sink_strength, 0.0, 0, 100.0}, {"recency_strength", &wl.recency_strength, 0.0, 0, 100.0},
        {"needle_strength", &wl.needle_strength, 0.0, 0, 100.0}, {"query_focus", &wl.query_focus, 0.0, 0, 100.0},
        {"query_noise", &wl.query_noise, 0.0, 0, 100.0}, {"query_content", &wl.query_content, 0.0, 0, 100.0},
        {"query_persistence", &wl.query_persistence, 0.0, 0, 1.0}, {"decode_drift", &wl.decode_drift, 0.0, 0, 1.0},
        {"head_diversity", &wl.head_diversity, 0.0, 0, 10.0}, {"value_noise", &wl.value_noise, 0.0, 0, 100.0},
        {"rope_theta", &wl.rope_theta, 0.0, 0, 1e12},
    };
    for (size_t i = 0; rc == 0 && i < sizeof nums / sizeof nums[0]; i++)
        if (kv_yaml_num(&d, r, nums[i].k, 0, nums[i].lo, nums[i].lo_open, nums[i].hi, nums[i].dst, err) != 0)
            rc = -1;
    const kv_yaml_node *turns = kv_yaml_get(r, "turns");
    if (rc == 0 && turns && read_turns(&d, turns, &wl, err) != 0)
        rc = -1;
    kv_yaml_free(&d);
    if (rc == 0)
        *out = wl;
    return rc;
}
