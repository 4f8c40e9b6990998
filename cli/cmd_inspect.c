/* cmd_inspect.c — `kvsim inspect FILE`: a trace's header and totals (bytes
 * per access category per step, sectors and KV pages touched, compression
 * achieved against dense attention, size per attended position), or one
 * record in readable text. The totals come from trc_summary_read
 * (traces/trc_summary.h); everything it prints comes from trc_* calls. */
#include "cli.h"
#include "trc_summary.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: kvsim inspect FILE [--json]\n"
           "       kvsim inspect FILE --step N --layer L --head H [--seq S]\n\n"
           "Checks every block of a trace and prints its header and totals: bytes per\n"
           "access category per decode step (summed over layers, KV heads and sequences),\n"
           "their mean, sectors and KV pages touched, the compression achieved against\n"
           "dense attention, and bytes per attended position. With --step/--layer/--head,\n"
           "prints that record: attended positions, dims, bytes, sectors.\n");
}

static void print_list(const int32_t *p, int64_t n)
{
    for (int64_t i = 0; i < n;) { /* as runs: a-b */
        int64_t j = i + 1;
        while (j < n && p[j] == p[j - 1] + 1) j++;
        if (j - i > 1) printf("%s%d-%d", i ? "," : "", p[i], p[j - 1]);
        else printf("%s%d", i ? "," : "", p[i]);
        i = j;
    }
    printf("\n");
}

static int show_record(trc_reader *r, int seq, int64_t step, int layer, int head)
{
    trc_step st = {0};
    kv_err err;
    if (trc_read_step(r, seq, step, &st, &err) != 0) {
        cli_error("kvsim inspect", "%s", err.msg);
        trc_step_free(&st);
        return CLI_FAIL;
    }
    const trc_record *x = trc_step_find(r, &st, layer, head);
    if (!x) {
        cli_error("kvsim inspect", "no record for layer %d, KV head %d in this trace", layer, head);
        trc_step_free(&st);
        return CLI_USAGE;
    }
    const trc_header *h = trc_get_header(r);
    printf("sequence %d, step %lld, position %lld, layer %d, KV head %d (%s, budget %lld)\n", seq, (long long)step,
           (long long)st.position, layer, head, h->params.method->name, (long long)h->params.budget);
    printf("cache_tokens %lld, pages_scored %lld, sectors_kv %lld, sectors_aux %lld, pages_kv %lld\n",
           (long long)x->cache_tokens, (long long)x->pages_scored, (long long)x->sectors_kv, (long long)x->sectors_aux,
           (long long)x->pages_kv);
    int64_t c[TRC_NCAT];
    trc_traffic_cats(&x->bytes, c);
    printf("bytes:");
    for (int k = 0; k < TRC_NCAT; k++) printf(" %s %lld", trc_cat_names[k], (long long)c[k]);
    printf("\n");
    for (int g = 0; g < x->nrows; g++) {
        printf("attended%s (%lld): ", x->shared ? " (all query heads)" : "", (long long)x->count[g]);
        if (!x->shared) printf("[query head %d] ", g);
        print_list(x->pos[g], x->count[g]);
    }
    for (int g = 0; g < x->ndim_rows; g++) {
        printf("dims%s (%lld): ", x->dims_shared ? " (shared)" : "", (long long)x->ndims);
        if (!x->dims_shared) printf("[query head %d] ", g);
        print_list(x->dims[g], x->ndims);
    }
    if (x->has_fid)
        for (int g = 0; g < h->G; g++)
            printf("fidelity [query head %d]: output_rel_err %.6g mass_recall %.6g topk_recall %.6g stage1_survival %.6g\n", g,
                   (double)x->fid[g][0], (double)x->fid[g][1], (double)x->fid[g][2], (double)x->fid[g][3]);
    trc_step_free(&st);
    return CLI_OK;
}

static void tot_json(kv_json *j, const trc_step_totals *t, double div)
{
    kv_json_obj_begin(j);
    for (int k = 0; k < TRC_NCAT; k++) { kv_json_key(j, trc_cat_names[k]); kv_json_num(j, (double)t->cat[k] / div); }
    kv_json_key(j, "sectors_kv"); kv_json_num(j, (double)t->sectors_kv / div);
    kv_json_key(j, "sectors_aux"); kv_json_num(j, (double)t->sectors_aux / div);
    kv_json_key(j, "pages_kv"); kv_json_num(j, (double)t->pages_kv / div);
    kv_json_key(j, "attended_positions"); kv_json_num(j, (double)t->positions / div);
    kv_json_key(j, "full_kv_bytes"); kv_json_num(j, (double)t->full_bytes / div);
    kv_json_obj_end(j);
}

static void print_json(trc_reader *r, const trc_summary *s)
{
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "header"); kv_json_obj_begin(&j); trc_header_json(r, &j); kv_json_obj_end(&j);
    kv_json_key(&j, "file_bytes"); kv_json_int(&j, (long long)trc_file_bytes(r));
    kv_json_key(&j, "stage1_retained"); kv_json_int(&j, s->stage1_retained);
    kv_json_key(&j, "attended_positions"); kv_json_int(&j, s->all.positions);
    kv_json_key(&j, "bytes_per_position_lists"); kv_json_num(&j, s->bytes_per_position_lists);
    kv_json_key(&j, "bytes_per_position_blocks"); kv_json_num(&j, s->bytes_per_position_blocks);
    kv_json_key(&j, "compression_vs_full"); kv_json_num(&j, s->compression);
    kv_json_key(&j, "mean_per_step"); tot_json(&j, &s->all, (double)s->steps);
    kv_json_key(&j, "per_step"); kv_json_arr_begin(&j);
    for (int64_t k = 0; k < s->steps; k++) tot_json(&j, &s->step[k], 1.0);
    kv_json_arr_end(&j);
    kv_json_obj_end(&j);
    printf("\n");
}

static void print_text(const char *path, trc_reader *r, const trc_summary *s)
{
    const trc_header *h = trc_get_header(r);
    const double ns = (double)s->steps;
    printf("%s: kvsim trace v%d, %zu bytes\n", path, h->version, trc_file_bytes(r));
    trc_header_fprint(r, stdout);
    printf("\nper decode step, summed over %d layers x %d KV heads x %d sequences (bytes):\n", h->nlayers,
           h->kv_heads, h->batch);
    printf("  %5s %9s", "step", "position");
    for (int m = 0; m < TRC_NCAT; m++) printf(" %12s", trc_cat_names[m]);
    printf(" %11s %11s %9s\n", "sectors_kv", "sectors_aux", "pages_kv");
    for (int64_t k = 0; k <= s->steps; k++) {
        const trc_step_totals *t = k < s->steps ? &s->step[k] : &s->all;
        const double dv = k < s->steps ? 1.0 : ns;
        if (k < s->steps) printf("  %5lld %9lld", (long long)k, (long long)t->position);
        else printf("  %5s %9s", "mean", "");
        for (int m = 0; m < TRC_NCAT; m++) printf(" %12.0f", (double)t->cat[m] / dv);
        printf(" %11.0f %11.0f %9.0f\n", (double)t->sectors_kv / dv, (double)t->sectors_aux / dv, (double)t->pages_kv / dv);
    }
    printf("\nstage-1 retained positions: %lld\n", (long long)s->stage1_retained);
    printf("attended positions: %lld; %.3f bytes each in position lists, %.3f with whole step blocks\n",
           (long long)s->all.positions, s->bytes_per_position_lists, s->bytes_per_position_blocks);
    printf("compression achieved vs full attention (K/V + aux bytes read): %.2fx\n", s->compression);
}

int cmd_inspect(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim inspect", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const int json = cli_opt_flag(&o, "json");
    int64_t step, layer, head, seq;
    /* checked against the trace's header once it is open */
    if (cli_opt_i64_in(&o, "step", -1, 0, INT64_MAX, &step) ||
        cli_opt_i64_in(&o, "layer", -1, 0, TRC_MAX_LAYERS - 1, &layer) ||
        cli_opt_i64_in(&o, "head", -1, 0, INT32_MAX, &head) || cli_opt_i64_in(&o, "seq", 0, 0, INT32_MAX, &seq))
        return CLI_USAGE;
    if (cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (o.npos != 1) {
        cli_error(o.prog, "expected one trace file, got %d arguments (kvsim inspect --help)", o.npos);
        return CLI_USAGE;
    }
    const int one = step >= 0 || layer >= 0 || head >= 0;
    if (one && (step < 0 || layer < 0 || head < 0)) {
        cli_error(o.prog, "--step, --layer and --head go together");
        return CLI_USAGE;
    }
    trc_reader *r;
    kv_err err;
    if (trc_open(o.pos[0], &r, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    const trc_header *h = trc_get_header(r);
    int rc = CLI_USAGE;
    trc_summary s;
    if (one) {
        if (seq >= h->batch || step >= h->steps)
            cli_error(o.prog, "--seq %lld --step %lld: the trace has %d sequences of %lld steps", (long long)seq,
                      (long long)step, h->batch, (long long)h->steps);
        else
            rc = show_record(r, (int)seq, step, (int)layer, (int)head);
    } else if (trc_summary_read(r, &s, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        rc = CLI_FAIL;
        trc_summary_free(&s);
    } else {
        if (json) print_json(r, &s);
        else print_text(o.pos[0], r, &s);
        trc_summary_free(&s);
        rc = CLI_OK;
    }
    trc_close(r);
    return rc;
}
