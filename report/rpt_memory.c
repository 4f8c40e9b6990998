/* rpt_memory.c — peak memory and largest batch vs context per GPU, and the capacity table. */
#include "rpt_internal.h"

int rpt_plot_memory_context(rpt *r, int batch_plot, kv_err *err)
{
    rpt_plot p;
    if (rpt_plot_open(r, &p, batch_plot ? "max_batch_vs_context" : "memory_vs_context", err) != 0) return -1;
    const char *hws[64];
    int64_t ctx[64];
    int nh = STR_AXIS(hw, hws, 64), nc = I64_AXIS(context, ctx, 64, 0);
    if (batch_plot) {
        rpt_plot_set(&p, "set title 'largest batch that fits: %s, TP %lld, %s harness'\n", r->model, (long long)r->tp, r->harness);
        rpt_plot_set(&p, "set xlabel 'context (prompt tokens)'\nset ylabel 'largest batch'\nset logscale x 2\nset logscale y 2\n");
        fprintf(r->md, "## Largest batch vs context, per GPU\n\n| GPU | context | full | %s t=%lld |\n|---|---|---|---|\n",
                r->method, (long long)r->budget);
    } else {
        rpt_plot_set(&p, "set title 'peak memory per GPU: %s, TP %lld, batch %lld, %s harness'\n", r->model, (long long)r->tp,
                 (long long)r->batch, r->harness);
        rpt_plot_set(&p, "set xlabel 'context (prompt tokens)'\nset ylabel 'peak memory per rank (GB)'\nset logscale x 2\n");
        fprintf(r->md, "## Memory vs context, dense vs %s, per GPU\n\n| GPU | context | full peak GB | %s t=%lld peak GB | "
                "saving | capacity GB |\n|---|---|---|---|---|---|\n", r->method, r->method, (long long)r->budget);
    }
    for (int h = 0; h < nh; h++) {
        for (int s = 0; s < 2; s++) {
            const char *m = s == 0 ? rkv_method_baseline()->name : r->method;
            int64_t b = s == 0 ? -1 : r->budget;
            int any = 0;
            for (int c = 0; c < nc; c++) {
                const rpt_row *w = rpt_find(r, hws[h], r->harness, m, b, ctx[c], r->batch, r->tp);
                if (!w || (batch_plot && w->max_batch < 1)) continue; /* nothing fits: no point on a log axis */
                if (!any) {
                    char spec[256], hd[128];
                    snprintf(hd, sizeof hd, "%s %s", hws[h], m);
                    if (batch_plot) snprintf(spec, sizeof spec, "1:2 with linespoints lc %d dt %d title '%s %s'", h + 1, s + 1, hws[h], m);
                    else snprintf(spec, sizeof spec, "1:($2/1e9) with linespoints lc %d dt %d title '%s %s'", h + 1, s + 1, hws[h], m);
                    rpt_plot_block(&p, hd, spec);
                    fprintf(p.dat, batch_plot ? "# context max_batch\n" : "# context peak_bytes kv_bytes aux_bytes weights_bytes capacity_bytes\n");
                    any = 1;
                }
                if (batch_plot) fprintf(p.dat, "%lld %lld\n", (long long)ctx[c], (long long)w->max_batch);
                else fprintf(p.dat, "%lld %.10g %.10g %.10g %.10g %.10g\n", (long long)ctx[c], w->peak, w->kv, w->aux, w->weights, w->cap);
            }
        }
        if (!batch_plot) { /* capacity line */
            const rpt_row *w0 = NULL;
            for (size_t i = 0; i < r->n && !w0; i++) if (!strcmp(r->rows[i].hw, hws[h])) w0 = &r->rows[i];
            char spec[256], hd[128];
            snprintf(hd, sizeof hd, "%s capacity", hws[h]);
            snprintf(spec, sizeof spec, "1:($2/1e9) with lines lc %d dt 3 title '%s capacity'", h + 1, hws[h]);
            rpt_plot_block(&p, hd, spec);
            fprintf(p.dat, "%lld %.10g\n%lld %.10g\n", (long long)ctx[0], w0->cap, (long long)ctx[nc - 1], w0->cap);
        }
        for (int c = 0; c < nc; c++) {
            const rpt_row *f = rpt_find(r, hws[h], r->harness, rkv_method_baseline()->name, -1, ctx[c], r->batch, r->tp);
            const rpt_row *k = rpt_find(r, hws[h], r->harness, r->method, r->budget, ctx[c], r->batch, r->tp);
            if (!f || !k) continue;
            if (batch_plot)
                fprintf(r->md, "| %s | %lld | %lld | %lld |\n", hws[h], (long long)ctx[c], (long long)f->max_batch,
                        (long long)k->max_batch);
            else
                fprintf(r->md, "| %s | %lld | %.2f | %.2f | %.1f%% | %.2f |\n", hws[h], (long long)ctx[c], f->peak / 1e9,
                        k->peak / 1e9, 100.0 * (1.0 - k->peak / f->peak), f->cap / 1e9);
        }
    }
    fprintf(r->md, "\n");
    char cap[512];
    if (batch_plot)
        snprintf(cap, sizeof cap, "Largest batch whose peak memory fits one rank (kvsim plan's solver; capped at "
                 "4096; 0 = batch 1 does not fit, not drawn). Solid: full; dashed: %s t=%lld.", r->method, (long long)r->budget);
    else
        snprintf(cap, sizeof cap, "Peak memory per rank at batch %lld (weights + KV + aux + workspace + reserve; "
                 "gpt-fast: its decode peak incl. the S x S mask). Solid: full; dashed: %s t=%lld; dotted: capacity.",
                 (long long)r->batch, r->method, (long long)r->budget);
    return rpt_plot_close(r, &p, cap, err);
}

/* Which GPUs, how many: per (GPU, context), the largest batch at each TP for
 * full and the reference method, and the fewest ranks on which batch 1 fits. */
void rpt_capacity_table(rpt *r)
{
    const char *hws[64];
    int64_t ctx[64], tps[64];
    int nh = STR_AXIS(hw, hws, 64), nc = I64_AXIS(context, ctx, 64, 0), nt = I64_AXIS(tp, tps, 64, 0);
    fprintf(r->md, "## Capacity: largest batch per GPU and TP\n\n%s, %s harness; each cell: largest batch that fits per "
            "TP group, full / %s t=%lld (0: batch 1 does not fit). Tokens/s at that batch are in the CSV.\n\n| GPU | "
            "context |", r->model, r->harness, r->method, (long long)r->budget);
    for (int t = 0; t < nt; t++) fprintf(r->md, " TP %lld |", (long long)tps[t]);
    fprintf(r->md, " fewest GPUs for batch 1: full / %s |\n|---|---|", r->method);
    for (int t = 0; t <= nt; t++) fprintf(r->md, "---|");
    fprintf(r->md, "\n");
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) {
            int64_t need[2] = {0, 0};
            fprintf(r->md, "| %s | %lld |", hws[h], (long long)ctx[c]);
            for (int t = 0; t < nt; t++) {
                const rpt_row *f = rpt_find(r, hws[h], r->harness, rkv_method_baseline()->name, -1, ctx[c], r->batch, tps[t]);
                const rpt_row *k = rpt_find(r, hws[h], r->harness, r->method, r->budget, ctx[c], r->batch, tps[t]);
                if (f && f->max_batch > 0 && !need[0]) need[0] = tps[t];
                if (k && k->max_batch > 0 && !need[1]) need[1] = tps[t];
                if (f && k) fprintf(r->md, " %lld / %lld |", (long long)f->max_batch, (long long)k->max_batch);
                else fprintf(r->md, " – |");
            }
            char a[32] = "none swept", b[32] = "none swept";
            if (need[0]) snprintf(a, sizeof a, "%lld", (long long)need[0]);
            if (need[1]) snprintf(b, sizeof b, "%lld", (long long)need[1]);
            fprintf(r->md, " %s / %s |\n", a, b);
        }
    fprintf(r->md, "\n");
}
