/* rpt_fidelity.c — fidelity vs budget per method and the two Pareto fronts. */
#include "rpt_internal.h"

int rpt_plot_fidelity(rpt *r, kv_err *err)
{
    rpt_plot p;
    if (rpt_plot_open(r, &p, "fidelity_vs_budget", err) != 0) return -1;
    const char *meth[64];
    int64_t bud[64];
    int nm = STR_AXIS(method, meth, 64), nb = I64_AXIS(budget, bud, 64, 1);
    const rpt_row *any_row = rpt_find(r, r->hw, r->harness, rkv_method_baseline()->name, -1, r->max_context, r->batch, r->tp);
    int64_t fc = any_row ? any_row->fid_context : r->max_context;
    rpt_plot_set(&p, "set title 'attention fidelity vs budget: %s, scored at context %lld'\n", r->model, (long long)fc);
    rpt_plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'mean attention-mass recall'\nset logscale x 2\nset yrange [0:1.02]\n");
    fprintf(r->md, "## Fidelity vs budget, per method\n\nScored by the CPU reference at context %lld (mean over "
            "decode steps, layers and query heads; see the workload line in the CSV header).\n\n| method | t | mass recall | "
            "output rel. error | top-k recall | stage-1 survival |\n|---|---|---|---|---|---|\n", (long long)fc);
    for (int m = 0; m < nm; m++) {
        if (rpt_is_dense(meth[m])) continue;
        int any = 0;
        for (int b = 0; b < nb; b++) {
            const rpt_row *w = rpt_find(r, r->hw, r->harness, meth[m], bud[b], r->max_context, r->batch, r->tp);
            if (!w || isnan(w->fid[0])) continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "1:2 with linespoints title '%s'", meth[m]);
                rpt_plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# budget mass_recall output_rel_err topk_recall stage1_survival\n");
                any = 1;
            }
            fprintf(p.dat, "%lld %.10g %.10g %.10g %.10g\n", (long long)bud[b], w->fid[0], w->fid[1], w->fid[2], w->fid[3]);
            fprintf(r->md, "| %s | %lld | %.4f | %.4f | %.4f | %.4f |\n", meth[m], (long long)bud[b], w->fid[0], w->fid[1],
                    w->fid[2], w->fid[3]);
        }
    }
    fprintf(r->md, "\n");
    return rpt_plot_close(r, &p, "Attention-mass recall (share of dense attention probability on the tokens each method "
                      "attends) against the budget. The other metrics are in the .dat file and the table.", err);
}

int rpt_plot_pareto(rpt *r, int memory, kv_err *err)
{
    rpt_plot p;
    if (rpt_plot_open(r, &p, memory ? "pareto_memory" : "pareto", err) != 0) return -1;
    rpt_plot_set(&p, "set title 'Pareto front, %s vs fidelity: %s on %s, context %lld, batch %lld, %s'\n",
             memory ? "peak memory" : "speedup", r->model, r->hw, (long long)r->max_context, (long long)r->batch, r->harness);
    if (memory)
        rpt_plot_set(&p, "set xlabel 'peak memory per rank (GB, lower is better)'\nset ylabel 'mean attention-mass recall'\n");
    else
        rpt_plot_set(&p, "set xlabel 'decode speedup vs full (x)'\nset ylabel 'mean attention-mass recall'\n");
    const char *meth[64];
    int nm = STR_AXIS(method, meth, 64);
    for (int m = 0; m < nm; m++) {
        int any = 0;
        for (size_t i = 0; i < r->n; i++) {
            const rpt_row *w = &r->rows[i];
            if (!rpt_in_slice(r, w) || strcmp(w->hw, r->hw) || w->context != r->max_context || strcmp(w->method, meth[m]) ||
                isnan(w->fid[0]))
                continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s with points pt %d ps 1.5 title '%s'", memory ? "($1/1e9):2" : "1:2",
                         m + 4, meth[m]);
                rpt_plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# %s mass_recall budget\n", memory ? "peak_bytes" : "speedup_vs_full");
                any = 1;
            }
            fprintf(p.dat, "%.10g %.10g %lld\n", memory ? w->peak : w->speedup, w->fid[0], (long long)w->budget);
        }
    }
    /* the front, ordered along x */
    rpt_row front[256];
    int nf = 0;
    for (size_t i = 0; i < r->n && nf < 256; i++) {
        const rpt_row *w = &r->rows[i];
        if (rpt_in_slice(r, w) && !strcmp(w->hw, r->hw) && w->context == r->max_context && (memory ? w->pm : w->ps) == 1)
            front[nf++] = *w;
    }
    for (int a = 1; a < nf; a++)
        for (int b = a; b > 0; b--) {
            double xa = memory ? front[b].peak : front[b].speedup, xb = memory ? front[b - 1].peak : front[b - 1].speedup;
            if (xa < xb) { rpt_row tmp = front[b]; front[b] = front[b - 1]; front[b - 1] = tmp; }
        }
    if (nf > 0) {
        rpt_plot_block(&p, "front", memory ? "($1/1e9):2 with lines lw 2 lc rgb 'black' title 'Pareto front'"
                                        : "1:2 with lines lw 2 lc rgb 'black' title 'Pareto front'");
        fprintf(p.dat, "# %s mass_recall (front)\n", memory ? "peak_bytes" : "speedup_vs_full");
        for (int i = 0; i < nf; i++)
            fprintf(p.dat, "%.10g %.10g\n", memory ? front[i].peak : front[i].speedup, front[i].fid[0]);
    }
    fprintf(r->md, "%s front (the CSV's `%s` column; points that fit):", memory ? "Memory–fidelity" : "Speed–fidelity",
            memory ? "pareto_memory_fidelity" : "pareto_speed_fidelity");
    for (int i = 0; i < nf; i++) {
        char t[32] = "";
        if (front[i].budget > 0) snprintf(t, sizeof t, " t=%lld", (long long)front[i].budget);
        fprintf(r->md, "%s %s%s (%.2f%s, recall %.4f)", i ? "," : "", front[i].method, t,
                memory ? front[i].peak / 1e9 : front[i].speedup, memory ? " GB" : "x", front[i].fid[0]);
    }
    fprintf(r->md, "\n\n");
    char cap[256];
    snprintf(cap, sizeof cap, "Every (method, budget) at context %lld; the line joins the points no other point beats "
             "on both axes.", (long long)r->max_context);
    return rpt_plot_close(r, &p, cap, err);
}
