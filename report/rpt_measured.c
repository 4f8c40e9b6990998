/* rpt_measured.c — predicted vs measured attention time (reports/gpu/ *.json from make gpu-check). */
#define _POSIX_C_SOURCE 200809L
#include "rpt_internal.h"

#include <dirent.h>
#include <stdlib.h>

#include "kv_jsonr.h"

/* ---- predicted vs measured (reports/gpu/ *.json from make gpu-check) ------------ */
static const char *hw_for_device(const char *dev)
{
    if (strstr(dev, "H200")) return "h200";
    if (strstr(dev, "B200")) return "b200";
    if (strstr(dev, "H100") && strstr(dev, "PCIe")) return "h100-pcie";
    if (strstr(dev, "H100") && strstr(dev, "NVL")) return "h100-nvl";
    if (strstr(dev, "H100")) return "h100-sxm";
    if (strstr(dev, "A100") && strstr(dev, "40")) return "a100-40g";
    if (strstr(dev, "A100")) return "a100-80g";
    if (strstr(dev, "L40S")) return "l40s";
    if (strstr(dev, "MI300X")) return "mi300x";
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The *.json files of dir, sorted by name (at most max); returns the count. */
static int list_json(const char *dir, char **files, int max)
{
    DIR *d = dir ? opendir(dir) : NULL;
    int nfiles = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && nfiles < max) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".json")) {
            files[nfiles] = malloc(strlen(dir) + n + 2);
            if (!files[nfiles]) break;
            sprintf(files[nfiles], "%s/%s", dir, e->d_name);
            nfiles++;
        }
    }
    if (d) closedir(d);
    qsort(files, (size_t)nfiles, sizeof *files, cmp_str);
    return nfiles;
}

/* One report's `step` timings against the sim: a data block of p, table rows,
 * and the range [lo, hi] of both (seconds) widened. A file whose device or
 * timings kvsim does not know is listed as skipped. */
static int measured_file(rpt *r, rpt_plot *p, const mdl_model *m, const char *file, double *lo, double *hi,
                         kv_err *err)
{
    kv_jsonr_doc jd;
    memset(&jd, 0, sizeof jd);
    if (kv_jsonr_load_file(&jd, file, err) != 0) return -1;
    const kv_jsonr_node *dev = kv_jsonr_get(jd.root, "device"), *tm = kv_jsonr_get(jd.root, "timings");
    const char *hwn = dev && dev->kind == KV_JSONR_STR ? hw_for_device(dev->str) : NULL;
    static hw_model h;
    if (!hwn || !tm || tm->kind != KV_JSONR_ARR || hw_model_load(hwn, &h, err) != 0) {
        fprintf(r->md, "| %s | (skipped: no device or timings kvsim knows) |||||||| \n", file);
        kv_jsonr_free(&jd);
        return 0;
    }
    kv_err cerr;
    int calibrated = hw_model_apply_calibration(&h, file, &cerr) == 0;
    int any = 0;
    for (size_t i = 0; i < tm->n; i++) {
        const kv_jsonr_node *t = tm->items[i];
        const kv_jsonr_node *what = kv_jsonr_get(t, "what"), *meth = kv_jsonr_get(t, "method"),
                            *ctx = kv_jsonr_get(t, "context"), *bud = kv_jsonr_get(t, "budget"),
                            *bat = kv_jsonr_get(t, "batch"), *med = kv_jsonr_get(t, "median_s");
        if (!what || what->kind != KV_JSONR_STR || strcmp(what->str, "step") || !meth || meth->kind != KV_JSONR_STR ||
            !ctx || !bud || !bat || !med || med->kind != KV_JSONR_NUM || !rkv_method_find(meth->str))
            continue;
        sim_result res;
        rpt rr = *r;
        rr.tp = 1;
        rr.harness = "engine";
        if (rpt_predict_point(&rr, m, &h, meth->str, (int64_t)bud->num, (int64_t)ctx->num, (int64_t)bat->num, 50, &res,
                              err) != 0) {
            kv_jsonr_free(&jd);
            return -1;
        }
        double pred = (res.kernel_s[SIM_K_KV_APPEND] + res.kernel_s[SIM_K_ATTN_DENSE] + res.kernel_s[SIM_K_AUX_SCORE] +
                       res.kernel_s[SIM_K_TOPK] + res.kernel_s[SIM_K_ATTN_SPARSE]) / m->num_hidden_layers;
        if (!any) {
            char hd[256], spec[300];
            snprintf(hd, sizeof hd, "%s (%s)", file, hwn);
            snprintf(spec, sizeof spec, "($1*1e6):($2*1e6) with points pt 7 title '%s%s'", hwn,
                     calibrated ? " (calibrated)" : "");
            rpt_plot_block(p, hd, spec);
            fprintf(p->dat, "# measured_s predicted_s method context budget batch\n");
            any = 1;
        }
        fprintf(p->dat, "%.10g %.10g %s %lld %lld %lld\n", med->num, pred, meth->str, (long long)ctx->num,
                (long long)bud->num, (long long)bat->num);
        fprintf(r->md, "| %s | %s | %s | %lld | %lld | %lld | %.1f | %.1f | %+.0f%% |\n", file, hwn, meth->str,
                (long long)ctx->num, (long long)bud->num, (long long)bat->num, med->num * 1e6, pred * 1e6,
                100.0 * (pred / med->num - 1.0));
        *lo = fmin(*lo, fmin(med->num, pred));
        *hi = fmax(*hi, fmax(med->num, pred));
    }
    kv_jsonr_free(&jd);
    return 0;
}

int rpt_plot_measured(rpt *r, kv_err *err)
{
    char *files[256];
    const int nfiles = list_json(r->o->gpu_dir, files, 256);
    fprintf(r->md, "## Predicted vs measured\n\n");
    if (nfiles == 0) {
        fprintf(r->md, "No measurements: %s/*.json does not exist yet (`make gpu-check` on a GPU writes them); "
                "this section then plots predicted vs measured attention time per layer.\n\n",
                r->o->gpu_dir ? r->o->gpu_dir : "reports/gpu");
        return 0;
    }
    rpt_plot p;
    int rc = -1;
    if (rpt_plot_open(r, &p, "predicted_vs_measured", err) != 0) goto done;
    rpt_plot_set(&p, "set title 'attention time per layer: predicted (kvsim) vs measured (make gpu-check)'\n"
             "set xlabel 'measured (us)'\nset ylabel 'predicted (us)'\nset logscale xy\n");
    fprintf(r->md, "Each `step` timing of `make gpu-check` (one layer, all KV heads, Llama-3.1-8B shapes, CUDA graph, "
            "L2 flushed) against kvsim's predicted attention kernels for one layer (kv_append + attention kernels, "
            "mean over the decode steps, engine harness, the file's calibration applied when it has one).\n\n"
            "| file | GPU | method | context | t | batch | measured us | predicted us | error |\n"
            "|---|---|---|---|---|---|---|---|---|\n");
    static mdl_model m;
    if (mdl_model_load("llama3.1-8b", &m, err) != 0) goto done;
    double lo = INFINITY, hi = 0;
    for (int f = 0; f < nfiles; f++)
        if (measured_file(r, &p, &m, files[f], &lo, &hi, err) != 0) goto done;
    fprintf(r->md, "\n");
    if (p.nblocks > 0) {
        size_t n = strlen(p.cmd);
        snprintf(p.cmd + n, sizeof p.cmd - n, ", \\\n     x with lines dt 2 lc rgb 'gray40' title 'predicted = measured'");
        rpt_plot_set(&p, "set xrange [%.6g:%.6g]\nset yrange [%.6g:%.6g]\n", lo * 1e6 / 1.5, hi * 1e6 * 1.5, lo * 1e6 / 1.5,
                 hi * 1e6 * 1.5);
    }
    rc = rpt_plot_close(r, &p, "Predicted against measured attention time per layer; on the dashed line the prediction is exact.", err);
done:
    for (int f = 0; f < nfiles; f++) free(files[f]);
    return rc;
}
