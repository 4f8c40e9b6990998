/* validate_audit.c — reads the static estimates of `make cuda-audit`
 * (reports/cuda-audit/audit.json, written by cuda/audit.py) for one hardware
 * model, so `kvsim validate` can print them beside the sim's assumed
 * efficiencies (sim_validate.h). Estimates, never measurements. */
#include "sim_validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kv_jsonr.h"

static double num_of(const kv_jsonr_node *o, const char *key)
{
    const kv_jsonr_node *v = o ? kv_jsonr_get(o, key) : NULL;
    return v && v->kind == KV_JSONR_NUM ? v->num : NAN;
}

/* One kernel's estimate object (est_s, bytes, bound) as a row; 0 when the
 * object is absent (an older audit), -1 when it is malformed. */
static int add_row(sim_audit *a, const hw_model *hw, const kv_jsonr_node *e, const char *key, const char *label,
                   int group, kv_err *err)
{
    const kv_jsonr_node *k = kv_jsonr_get(e, key);
    if (!k)
        return 0;
    double est = num_of(k, "est_s"), ctx = num_of(e, "ctx"), batch = num_of(e, "batch");
    if (k->kind != KV_JSONR_OBJ || !isfinite(est) || !(est > 0) || !isfinite(ctx) || !isfinite(batch)) {
        kv_errf(err, "%s: estimates: \"%s\" at ctx %g batch %g is not an object with a positive est_s", a->path, key,
                ctx, batch);
        return -1;
    }
    if (a->nrows >= SIM_AUDIT_MAX) {
        kv_errf(err, "%s: more than %d estimate rows for %s", a->path, SIM_AUDIT_MAX, a->hw);
        return -1;
    }
    sim_audit_row *r = &a->rows[a->nrows++];
    snprintf(r->kernel, sizeof r->kernel, "%s", label);
    r->group = group;
    r->context = (int64_t)ctx;
    r->batch = (int64_t)batch;
    r->est_s = est;
    double bytes = num_of(k, "bytes");
    r->bytes = isfinite(bytes) ? bytes : 0.0;
    const kv_jsonr_node *b = kv_jsonr_get(k, "bound");
    snprintf(r->bound, sizeof r->bound, "%s", b && b->kind == KV_JSONR_STR ? b->str : "-");
    double t = est - hw->launch_graph_s;
    r->implied_stream_eff = r->bytes > 0 && t > 0 ? r->bytes / (t * hw->hbm_bandwidth_bytes_per_s) : NAN;
    return 0;
}

int sim_audit_load(const char *path, const hw_model *hw, sim_audit *a, kv_err *err)
{
    /* audit.py's key, the label, G */
    static const struct { const char *key, *label; int group; } keys[] = {
        {"dense", "dense v2", 4},          {"dense_v3", "dense v3", 4},          {"dense_v4", "dense v4", 4},
        {"score_v2", "score v2", 4},       {"score_v3", "score v3", 4},          {"select_v4", "select v4", 4},
        {"sparse_attend_v3", "gather v3", 4}, {"sparse_attend_v4", "gather v4", 4},
        {"dense_v4_g8", "dense v4", 8},    {"dense_v5_g8", "dense v5", 8}};
    memset(a, 0, sizeof *a);
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->hw, sizeof a->hw, "%s", hw->name);
    a->sim_stream_eff = hw->stream_read_efficiency;
    a->sim_compute_eff = hw->compute_efficiency;
    kv_jsonr_doc d;
    if (kv_jsonr_load_file(&d, path, err) != 0)
        return -1;
    int rc = -1;
    const kv_jsonr_node *kind = kv_jsonr_get(d.root, "kind"), *est = kv_jsonr_get(d.root, "estimates");
    if (!kind || kind->kind != KV_JSONR_STR || strcmp(kind->str, "kvsim-cuda-audit") != 0 || !est ||
        est->kind != KV_JSONR_ARR) {
        kv_errf(err, "%s: not a kvsim cuda-audit file (kind \"kvsim-cuda-audit\" and an estimates array expected)",
                path);
        goto out;
    }
    for (size_t i = 0; i < est->n; i++) {
        const kv_jsonr_node *e = est->items[i], *h = kv_jsonr_get(e, "hw");
        if (!h || h->kind != KV_JSONR_STR || strcmp(h->str, hw->name) != 0 || !kv_jsonr_get(e, "dense"))
            continue;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (add_row(a, hw, e, keys[k].key, keys[k].label, keys[k].group, err) != 0)
                goto out;
    }
    rc = 0;
out:
    kv_jsonr_free(&d);
    return rc;
}

const sim_audit_row *sim_audit_find(const sim_audit *a, const sim_validate_row *r)
{
    static const char *const map[][2] = {
        {"step_v2", "dense v2"}, {"step_v3", "dense v3"}, {"step_v4", "dense v4"}, {"step_v5", "dense v5"}};
    const rkv_method_type *mt = rkv_method_find(r->method);
    if (!a || !mt || !mt->traits.dense)
        return NULL;
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (strcmp(r->what, map[k][0]) != 0)
            continue;
        for (int i = 0; i < a->nrows; i++) {
            const sim_audit_row *x = &a->rows[i];
            if (!strcmp(x->kernel, map[k][1]) && x->group == r->group && x->context == r->context &&
                x->batch == r->batch)
                return x;
        }
    }
    return NULL;
}
