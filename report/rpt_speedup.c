/* rpt_speedup.c — speedup vs budget per context, and per method at the largest context. */
#include "rpt_internal.h"

/* ---- the plots ------------------------------------------------------------------ */
int rpt_plot_speedup_budget(rpt *r, kv_err *err)
{
    rpt_plot p;
    if (rpt_plot_open(r, &p, "speedup_vs_budget", err) != 0) return -1;
    const char *harn[4];
    int64_t ctx[64];
    int nh = STR_AXIS(harness, harn, 4), nc = I64_AXIS(context, ctx, 64, 0);
    rpt_plot_set(&p, "set title 'speedup vs full: %s, %s on %s, TP %lld, batch %lld'\n", r->method, r->model, r->hw,
             (long long)r->tp, (long long)r->batch);
    rpt_plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'decode speedup vs full (x)'\nset logscale x 2\n");
    fprintf(r->md, "## Speedup vs budget, per context\n\n| harness | context |");
    int64_t bud[64];
    int nb = I64_AXIS(budget, bud, 64, 1);
    for (int b = 0; b < nb; b++) fprintf(r->md, " t=%lld |", (long long)bud[b]);
    fprintf(r->md, "\n|---|---|");
    for (int b = 0; b < nb; b++) fprintf(r->md, "---|");
    fprintf(r->md, "\n");
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) {
            char hb[256], ct[32];
            rpt_human_tokens(ctx[c], ct, sizeof ct);
            int any = 0;
            fprintf(r->md, "| %s | %s |", harn[h], ct);
            for (int b = 0; b < nb; b++) {
                const rpt_row *w = rpt_find(r, r->hw, harn[h], r->method, bud[b], ctx[c], r->batch, r->tp);
                if (w && !any) {
                    snprintf(hb, sizeof hb, "%s context %lld", harn[h], (long long)ctx[c]);
                    char spec[256];
                    snprintf(spec, sizeof spec, "1:2 with linespoints lc %d pt %d dt %d title '%s %s'", c + 1, h ? 6 : 7,
                             h + 1, harn[h], ct);
                    rpt_plot_block(&p, hb, spec);
                    fprintf(p.dat, "# budget speedup_vs_full step_time_s full_step_time_s\n");
                    any = 1;
                }
                if (w) fprintf(p.dat, "%lld %.10g %.10g %.10g\n", (long long)bud[b], w->speedup, w->step, w->step * w->speedup);
                if (w) fprintf(r->md, " %.2fx |", w->speedup);
                else fprintf(r->md, " – |");
            }
            fprintf(r->md, "\n");
        }
    fprintf(r->md, "\n");
    char cap[512];
    snprintf(cap, sizeof cap, "Decode speedup of %s over full attention (mean step time over the decode steps, "
             "kvsim predict's roofline), %s on %s, TP %lld, batch %lld; solid: engine harness, dashed: gpt-fast "
             "(the paper's).", r->method, r->model, r->hw, (long long)r->tp, (long long)r->batch);
    return rpt_plot_close(r, &p, cap, err);
}

int rpt_plot_speedup_methods(rpt *r, kv_err *err)
{
    rpt_plot p;
    if (rpt_plot_open(r, &p, "speedup_vs_budget_methods", err) != 0) return -1;
    const char *meth[64];
    int64_t bud[64];
    int nm = STR_AXIS(method, meth, 64), nb = I64_AXIS(budget, bud, 64, 1);
    rpt_plot_set(&p, "set title 'speedup vs full by method: %s on %s, context %lld, %s, batch %lld'\n", r->model, r->hw,
             (long long)r->max_context, r->harness, (long long)r->batch);
    rpt_plot_set(&p, "set xlabel 'token budget t'\nset ylabel 'decode speedup vs full (x)'\nset logscale x 2\n");
    for (int m = 0; m < nm; m++) {
        if (rpt_is_dense(meth[m])) continue;
        int any = 0;
        for (int b = 0; b < nb; b++) {
            const rpt_row *w = rpt_find(r, r->hw, r->harness, meth[m], bud[b], r->max_context, r->batch, r->tp);
            if (!w) continue;
            if (!any) {
                char spec[256];
                snprintf(spec, sizeof spec, "1:2 with linespoints title '%s'", meth[m]);
                rpt_plot_block(&p, meth[m], spec);
                fprintf(p.dat, "# budget speedup_vs_full\n");
                any = 1;
            }
            fprintf(p.dat, "%lld %.10g\n", (long long)bud[b], w->speedup);
        }
    }
    char cap[256];
    snprintf(cap, sizeof cap, "Every method's speedup over full at the largest context (%lld), same slice.",
             (long long)r->max_context);
    return rpt_plot_close(r, &p, cap, err);
}
