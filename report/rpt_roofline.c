/* rpt_roofline.c — every kernel of one decode step on the roofline. */
#include "rpt_internal.h"

#include <stdlib.h>

/* The model and GPU files a sweep used, from its header comments. */
static const char *input_path(const rpt *r, const char *kind, const char *name, char *buf, size_t cap)
{
    size_t kl = strlen(kind), nl = strlen(name);
    for (size_t i = 0; i < r->t.ncomments; i++) {
        const char *c = r->t.comments[i];
        if (!strncmp(c, "# ", 2) && !strncmp(c + 2, kind, kl) && c[2 + kl] == ' ' && !strncmp(c + 3 + kl, name, nl) &&
            c[3 + kl + nl] == ' ') {
            const char *p = c + 4 + kl + nl, *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len < cap) {
                memcpy(buf, p, len);
                buf[len] = '\0';
                return buf;
            }
        }
    }
    return name;
}

int rpt_predict_point(const rpt *r, const mdl_model *m, const hw_model *h, const char *method, int64_t budget,
                      int64_t context, int64_t batch, int64_t max_new, sim_result *res, kv_err *err)
{
    rkv_request rq;
    rkv_params p;
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = context;
    rq.max_new = max_new;
    rq.budget = budget > 0 ? budget : 1024;
    if (rkv_params_resolve(method, &rq, &p, err) != 0) return -1;
    sim_config c;
    sim_config_defaults(&c, m, h, &p);
    c.batch = batch;
    c.tp = (int)r->tp;
    sim_harness_parse(r->harness, &c.harness);
    return sim_predict(&c, res, err);
}

int rpt_plot_roofline(rpt *r, kv_err *err)
{
    char mp[600], hp[600];
    static mdl_model m;
    static hw_model h;
    if (mdl_model_load(input_path(r, "model", r->model, mp, sizeof mp), &m, err) != 0 ||
        hw_model_load(input_path(r, "hw", r->hw, hp, sizeof hp), &h, err) != 0)
        return -1;
    const int64_t max_new = rpt_inum(r->t.rows[0][swp_table_col(&r->t, "new")]);
    static sim_result res[2];
    const char *meth[2] = {rkv_method_baseline()->name, r->method};
    for (int i = 0; i < 2; i++)
        if (rpt_predict_point(r, &m, &h, meth[i], i ? r->budget : 0, r->max_context, r->batch, max_new, &res[i], err) != 0)
            return -1;
    rpt_plot p;
    if (rpt_plot_open(r, &p, "roofline", err) != 0) return -1;
    const double bw = h.hbm_bandwidth_bytes_per_s, peak = h.bf16_dense_flops;
    rpt_plot_set(&p, "set title 'roofline %s (%.0f TFLOP/s bf16, %.2f TB/s): decode step, %s, S=%lld, B=%lld'\n"
             "set key inside left top\n", h.name, peak / 1e12, bw / 1e12, r->model, (long long)r->max_context,
             (long long)r->batch);
    rpt_plot_set(&p, "set xlabel 'arithmetic intensity (FLOP/byte)'\nset ylabel 'attained FLOP/s'\nset logscale xy\n"
             "set format y '%%.0e'\nset xrange [0.05:2000]\nbw = %.10g\npeak = %.10g\nbweff = %.10g\ncpeak = %.10g\n"
             "roof(x) = x*bw < peak ? x*bw : peak\nroofeff(x) = x*bweff < cpeak ? x*bweff : cpeak\n", bw, peak,
             bw * h.stream_read_efficiency, peak * h.compute_efficiency);
    fprintf(r->md, "## Roofline: each kernel of one decode step\n\n%s on %s, context %lld, batch %lld, TP %lld, %s "
            "harness; %s at t=%lld vs full. Bytes and FLOPs per step per rank from `sim_predict` (mean over the decode "
            "steps); attained = FLOPs / predicted kernel time (incl. launch cost). Kernels without FLOPs (append, "
            "top-k, all-reduce) are listed but cannot sit on a log axis.\n\n| method | kernel | bytes/step | FLOPs/step | "
            "time/step (ms) | FLOP/byte | attained TFLOP/s |\n|---|---|---|---|---|---|---|\n", r->model, h.name,
            (long long)r->max_context, (long long)r->batch, (long long)r->tp, r->harness, r->method, (long long)r->budget);
    for (int i = 0; i < 2; i++) {
        char hd[64], spec[256];
        snprintf(hd, sizeof hd, "%s kernels: intensity attained_flops name", meth[i]);
        snprintf(spec, sizeof spec, "1:2 with points pt %d ps 2 title '%s kernels', '' index %d using 1:2:3 with labels "
                 "offset char 1,%d font ',8' notitle", i ? 7 : 5, meth[i], p.nblocks, i ? -1 : 1);
        rpt_plot_block(&p, hd, spec);
        for (int k = 0; k < SIM_K_N; k++) {
            const double by = res[i].kernel_bytes[k], fl = res[i].kernel_flops[k], ts = res[i].kernel_s[k];
            if (by <= 0.0 && fl <= 0.0) continue;
            char ai[32] = "–", at[32] = "–";
            if (by > 0 && fl > 0 && ts > 0) {
                snprintf(ai, sizeof ai, "%.3g", fl / by);
                snprintf(at, sizeof at, "%.3g", fl / ts / 1e12);
                fprintf(p.dat, "%.10g %.10g %s\n", fl / by, fl / ts, sim_kernel_names[k]);
            }
            fprintf(r->md, "| %s | %s | %.4g | %.4g | %.4f | %s | %s |\n", meth[i], sim_kernel_names[k], by, fl, ts * 1e3,
                    ai, at);
        }
    }
    fprintf(r->md, "\n");
    /* the roofs are functions; one dummy block keeps plot_close's bookkeeping simple */
    size_t n = strlen(p.cmd);
    snprintf(p.cmd + n, sizeof p.cmd - n, ", \\\n     roof(x) with lines lw 2 lc rgb 'black' title 'datasheet roof', "
             "\\\n     roofeff(x) with lines dt 2 lc rgb 'gray40' title 'roof x efficiencies (hwmodels)'");
    char cap[256];
    snprintf(cap, sizeof cap, "Every kernel with FLOPs of one decode step of full and %s t=%lld, placed by its "
             "arithmetic intensity and attained throughput under the %s roofline.", r->method, (long long)r->budget, h.name);
    return rpt_plot_close(r, &p, cap, err);
}
