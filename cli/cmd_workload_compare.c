/* cmd_workload_compare.c — `kvsim workload compare`: every method x budget's
 * mass recall, top-k recall and stage-1 survival on real KV dumps (mean over
 * the dumps) against a synthetic workload at the dumps' shape; the method
 * ranking by mass recall per budget; a CSV for plots. Exit 1 when a figure is
 * off by more than --tolerance or the synthetic orders a pair of methods
 * otherwise than every real dump does (wl_rank_pairs: pairs the dumps do not
 * all order the same way are printed and not checked). */
#include "cli.h"
#include "llm_kvdump.h"
#include "wl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DUMPS 32
#define MAX_M 16
#define MAX_B 8
static const int metrics[3] = {RKV_FID_MASS_RECALL, RKV_FID_TOPK_RECALL, RKV_FID_STAGE1_SURVIVAL};

int cli_workload_load(const char *spec, rkv_workload *wl, kv_err *err);

typedef struct {
    double real[3], real_min[3], real_max[3], syn[3];
    double mass_text[MAX_DUMPS]; /* (dumps) each dump's mass recall: the ranking check reads them */
} cell;

typedef struct {
    char methods[MAX_M][32];
    int nm, nb;
    int64_t budgets[MAX_B];
    int64_t context, steps, max_new;
    int threads;
    int ndumps;              /* real dumps */
    char dump_names[MAX_DUMPS][64]; /* their file names, without the folder */
    cell c[MAX_M][MAX_B];
} cmp_job;

/* Runs every method at budget index b over workload wl; its metric means into val[method][3]. */
static int run_budget(cmp_job *J, const mdl_model *m, const rkv_workload *wl, int b, double val[MAX_M][3], kv_err *err)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = m->head_dim;
    rq.G = mdl_group_size(m);
    rq.model_max_len = m->max_position_embeddings;
    rq.context = J->context;
    rq.max_new = J->max_new;
    rq.budget = J->budgets[b];
    rkv_run_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model = m;
    cfg.wl = wl;
    cfg.steps = J->steps;
    cfg.threads = J->threads;
    cfg.fidelity = 1;
    for (int i = 0; i < J->nm; i++)
        if (rkv_params_resolve(J->methods[i], &rq, &cfg.sets[cfg.nsets++], err) != 0) return -1;
    rkv_fidelity fid[RKV_MAX_SETS];
    if (rkv_run(&cfg, fid, err) != 0) return -1;
    for (int i = 0; i < J->nm; i++) {
        for (int k = 0; k < 3; k++) val[i][k] = fid[i].overall[metrics[k]].mean;
        rkv_fidelity_free(&fid[i]);
    }
    return 0;
}

/* Order of methods by value, descending, ties to the lower index. */
static void rank(const double *v, int n, int *order)
{
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[order[j]] > v[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

static void print_order(const char *what, const double *v, int n, const cmp_job *J)
{
    int o[MAX_M];
    rank(v, n, o);
    printf("  %-22s", what);
    for (int i = 0; i < n; i++) printf("%s%s", i ? " > " : " ", J->methods[o[i]]);
    printf("\n");
}

/* Budget b's ranking by mass recall: the mean over the dumps, each dump's, the
 * synthetic; then the pairs every dump orders alike and whether the synthetic
 * orders each so. Returns the number of those pairs, or -(number + 1) when the
 * synthetic orders one of them otherwise. */
static int print_ranking(const cmp_job *J, int b)
{
    double rv[MAX_M], sv[MAX_M], per[MAX_DUMPS * MAX_M];
    unsigned char st[MAX_M * MAX_M];
    for (int i = 0; i < J->nm; i++) {
        rv[i] = J->c[i][b].real[0];
        sv[i] = J->c[i][b].syn[0];
        for (int t = 0; t < J->ndumps; t++) per[t * J->nm + i] = J->c[i][b].mass_text[t];
    }
    printf("budget %lld ranking by mass recall:\n", (long long)J->budgets[b]);
    print_order("real (mean)", rv, J->nm, J);
    for (int t = 0; t < J->ndumps && J->ndumps > 1; t++) print_order(J->dump_names[t], per + t * J->nm, J->nm, J);
    print_order("synthetic", sv, J->nm, J);
    int agree, ordered = wl_rank_pairs(per, J->ndumps, J->nm, sv, st, &agree);
    printf("  pairs every dump orders alike: %d of %d; the synthetic orders %d of them the same", ordered,
           J->nm * (J->nm - 1) / 2, agree);
    const char *sep = "; the synthetic has instead: ";
    for (int i = 0; i < J->nm; i++)
        for (int j = i + 1; j < J->nm; j++)
            if (st[i * J->nm + j] == WL_PAIR_DIFFER) {
                int lo = J->c[i][b].mass_text[0] > J->c[j][b].mass_text[0] ? j : i; /* the dumps' lower one */
                printf("%s%s %s %s", sep, J->methods[lo], sv[lo] > sv[i + j - lo] ? ">" : "=",
                       J->methods[i + j - lo]);
                sep = ", ";
            }
    sep = "; not ordered alike by the dumps (not checked): ";
    for (int i = 0; i < J->nm; i++)
        for (int j = i + 1; j < J->nm; j++)
            if (st[i * J->nm + j] == WL_PAIR_UNORDERED) {
                printf("%s%s/%s", sep, J->methods[i], J->methods[j]);
                sep = ", ";
            }
    printf(": %s\n", agree == ordered ? "same" : "DIFFERENT");
    return agree == ordered ? ordered : -ordered - 1;
}

static int print_table(const cmp_job *J, double tol, const char *wname, int ndumps, FILE *csv)
{
    static const char *const short_names[3] = {"mass", "topk", "stage1"};
    int bad = 0;
    printf("%-12s %6s", "method", "budget");
    for (int k = 0; k < 3; k++) printf("   %6s real  synth   diff", short_names[k]);
    printf("\n");
    if (csv) fprintf(csv, "method,budget,metric,real_mean,real_min,real_max,synthetic,diff\n");
    for (int b = 0; b < J->nb; b++)
        for (int i = 0; i < J->nm; i++) {
            const cell *c = &J->c[i][b];
            printf("%-12s %6lld", J->methods[i], (long long)J->budgets[b]);
            int ok = 1;
            for (int k = 0; k < 3; k++) {
                double d = c->syn[k] - c->real[k];
                printf("   %11.3f %6.3f %+6.3f", c->real[k], c->syn[k], d);
                if (fabs(d) > tol) ok = 0;
                if (csv)
                    fprintf(csv, "%s,%lld,%s,%.6f,%.6f,%.6f,%.6f,%.6f\n", J->methods[i], (long long)J->budgets[b],
                            rkv_fid_names[metrics[k]], c->real[k], c->real_min[k], c->real_max[k], c->syn[k], d);
            }
            printf("  %s\n", ok ? "ok" : "OFF");
            bad += !ok;
        }
    int rank_bad = 0, npairs = 0;
    for (int b = 0; b < J->nb; b++) {
        int ordered = print_ranking(J, b);
        npairs += ordered >= 0 ? ordered : -ordered - 1;
        rank_bad += ordered < 0;
    }
    printf("workload %s vs %d real dump(s): %d of %d method x budget cells within +-%.3f on all three metrics; "
           "%d of %d budgets rank the methods the same (over the %d of %d pairs that every dump orders alike)\n",
           wname, ndumps, J->nm * J->nb - bad, J->nm * J->nb, tol, J->nb - rank_bad, J->nb, npairs,
           J->nb * J->nm * (J->nm - 1) / 2);
    return bad || rank_bad ? CLI_FAIL : CLI_OK;
}

static int parse_cmp(cli_opts *o, cmp_job *J, double *tol, int64_t *seeds)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t th;
    if (cli_opt_i64_in(o, "context", 4096, 64, 1 << 22, &J->context) || cli_opt_i64_in(o, "steps", 32, 1, 4096, &J->steps) ||
        cli_opt_i64_in(o, "new", 50, 1, 1 << 20, &J->max_new) || cli_opt_i64_in(o, "threads", ncpu > 0 ? ncpu : 1, 1, 64, &th) ||
        cli_opt_f64_in(o, "tolerance", 0.05, 0.0, 1.0, tol) || cli_opt_i64_in(o, "seeds", 1, 1, 64, seeds))
        return -1;
    J->threads = (int)th;
    if (J->steps > J->max_new) {
        cli_error(o->prog, "--steps %lld must be at most --new %lld", (long long)J->steps, (long long)J->max_new);
        return -1;
    }
    const char *ml = cli_opt_str(o, "method", "exact-topk,rocketkv,quest,sparq,snapkv-gqa,streaming");
    J->nm = cli_split_names(ml, J->methods[0], sizeof J->methods[0], MAX_M);
    if (J->nm < 1) {
        cli_error(o->prog, "--method: expected a comma list of at most %d method names, got '%s'", MAX_M, ml);
        return -1;
    }
    J->nb = cli_opt_i64_list(o, "budget", "128,256,512", 1, INT32_MAX, 0, J->budgets, MAX_B);
    return J->nb < 1 ? -1 : 0;
}

/* Budget b of every method: the mean (and range) over the real dumps, and
 * the mean over the synthetic workload's seeds, into J->c[·][b]. -1 with
 * the error printed. */
static int run_cell_budget(cmp_job *J, const mdl_model *m, llm_kvd_file *const *f, int nf, const rkv_workload *syn,
                           int64_t seeds, int b, cli_opts *o)
{
    kv_err err;
    double acc[MAX_M][3] = {{0}}, mn[MAX_M][3], mx[MAX_M][3], sacc[MAX_M][3] = {{0}}, val[MAX_M][3];
    for (int i = 0; i < MAX_M; i++)
        for (int k = 0; k < 3; k++) {
            mn[i][k] = INFINITY;
            mx[i][k] = -INFINITY;
        }
    for (int d = 0; d < nf; d++) {
        rkv_workload wl;
        rkv_workload_defaults(&wl);
        snprintf(wl.generator, sizeof wl.generator, "kvdump");
        llm_kvd_source(f[d], &wl.real);
        if (run_budget(J, m, &wl, b, val, &err) != 0) {
            cli_error(o->prog, "%s: %s", o->pos[d + 1], err.msg);
            return -1;
        }
        for (int i = 0; i < J->nm; i++) {
            J->c[i][b].mass_text[d] = val[i][0];
            for (int k = 0; k < 3; k++) {
                acc[i][k] += 1.0 / nf * val[i][k];
                if (val[i][k] < mn[i][k]) mn[i][k] = val[i][k];
                if (val[i][k] > mx[i][k]) mx[i][k] = val[i][k];
            }
        }
    }
    for (int64_t s = 0; s < seeds; s++) {
        rkv_workload wl = *syn;
        wl.seed = syn->seed + (uint64_t)s;
        if (run_budget(J, m, &wl, b, val, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return -1;
        }
        for (int i = 0; i < J->nm; i++)
            for (int k = 0; k < 3; k++) sacc[i][k] += 1.0 / (double)seeds * val[i][k];
    }
    for (int i = 0; i < J->nm; i++)
        for (int k = 0; k < 3; k++) {
            J->c[i][b].real[k] = acc[i][k];
            J->c[i][b].real_min[k] = mn[i][k];
            J->c[i][b].real_max[k] = mx[i][k];
            J->c[i][b].syn[k] = sacc[i][k];
        }
    return 0;
}

/* wl_group_measure of one workload at the compare's geometry (window 32, as the fit's default). */
static int group_of(const rkv_workload *wl, const mdl_model *m, const cmp_job *J, double v[2], kv_err *err)
{
    wl_group_keys gk;
    rkv_workload w = *wl;
    w.run_context = J->context + J->steps; /* as wl_profile_run tells a generated workload */
    if (wl_group_keys_load(&gk, &w, m, J->context, WL_GROUP_LAYER_STEP, err) != 0) return -1;
    const int rc = wl_group_measure(&w, m, &gk, 32, J->steps, v, err);
    wl_group_keys_free(&gk);
    return rc;
}

/* With GQA groups, how far the heads of a group agree beyond their mean queries (what RocketKV's
 * stage 2 and SnapKV-GQA, one selection per group, depend on): the dumps' and the synthetic's (its
 * first seed). Printed for information; not one of the checked cells. */
static int print_group(const cmp_job *J, const mdl_model *m, llm_kvd_file *const *f, int nf, const rkv_workload *syn,
                       cli_opts *o)
{
    if (mdl_group_size(m) < 2 || J->context <= WL_SINK + 2 || J->context < 32) return 0;
    kv_err err;
    double v[2], r[2] = {0, 0}, lo = INFINITY, hi = -INFINITY;
    for (int d = 0; d < nf; d++) {
        rkv_workload wl;
        rkv_workload_defaults(&wl);
        snprintf(wl.generator, sizeof wl.generator, "kvdump");
        llm_kvd_source(f[d], &wl.real);
        if (group_of(&wl, m, J, v, &err) != 0) {
            cli_error(o->prog, "%s: %s", o->pos[d + 1], err.msg);
            return -1;
        }
        r[0] += v[0] / nf;
        r[1] += v[1] / nf;
        lo = fmin(lo, v[0]);
        hi = fmax(hi, v[0]);
    }
    if (group_of(syn, m, J, v, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return -1;
    }
    printf("group agreement (correlation of the residual logits between a GQA group's heads; not checked): real mean "
           "%.3f (dumps %.3f .. %.3f) s.d. %.3f; synthetic mean %.3f s.d. %.3f\n",
           r[0], lo, hi, r[1], v[0], v[1]);
    return 0;
}

int cmd_workload_compare(cli_opts *o);
int cmd_workload_compare(cli_opts *o)
{
    static cmp_job J;
    double tol;
    int64_t seeds;
    kv_err err;
    memset(&J, 0, sizeof J);
    if (parse_cmp(o, &J, &tol, &seeds) != 0) return CLI_USAGE;
    const char *ws = cli_opt_str(o, "workload", NULL), *csvp = cli_opt_str(o, "csv", NULL);
    if (!ws || o->npos < 2 || o->npos - 1 > MAX_DUMPS) {
        cli_error(o->prog, "compare: --workload FILE|NAME and 1 to %d KV dumps are required", MAX_DUMPS);
        return CLI_USAGE;
    }
    if (cli_opts_unused(o) != 0) return CLI_USAGE;
    rkv_workload syn;
    if (cli_workload_load(ws, &syn, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    llm_kvd_file *f[MAX_DUMPS];
    int nf = 0, rc = CLI_OK;
    mdl_model m;
    memset(&m, 0, sizeof m);
    for (int i = 1; i < o->npos; i++, nf++)
        if (llm_kvd_open(o->pos[i], &f[nf], &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
    llm_kvd_model(&f[0]->info, &m);
    J.ndumps = nf;
    for (int d = 0; d < nf; d++) {
        const char *slash = strrchr(o->pos[d + 1], '/');
        snprintf(J.dump_names[d], sizeof J.dump_names[d], "%s", slash ? slash + 1 : o->pos[d + 1]);
    }
    double t0 = kv_now_s();
    for (int b = 0; b < J.nb; b++)
        if (run_cell_budget(&J, &m, f, nf, &syn, seeds, b, o) != 0) {
            rc = CLI_FAIL;
            goto out;
        }
    printf("context %lld, %lld decode steps, shape of %s (L=%d Hq=%d Hkv=%d d=%d); real: mean over %d dump(s); "
           "synthetic: %s, %lld seed(s)\n",
           (long long)J.context, (long long)J.steps, f[0]->info.model, m.num_hidden_layers, m.num_attention_heads,
           m.num_key_value_heads, m.head_dim, nf, ws, (long long)seeds);
    kv_afile af;
    FILE *csv = NULL;
    if (csvp) {
        if (kv_afile_open(&af, csvp, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
        csv = af.fp;
    }
    rc = print_table(&J, tol, ws, nf, csv);
    if (print_group(&J, &m, f, nf, &syn, o) != 0) rc = CLI_FAIL;
    fflush(stdout); /* the table before the timing line when both go to one file */
    if (csv && kv_afile_commit(&af, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        rc = CLI_FAIL;
    }
    fprintf(stderr, "kvsim workload compare: %.1f s wall, %d threads\n", kv_now_s() - t0, J.threads);
out:
    for (int i = 0; i < nf; i++) llm_kvd_free(f[i]);
    return rc;
}
