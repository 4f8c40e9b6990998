/* cmd_check_published.c — `kvsim check-published`: every published
 * measurement in validation/published.csv priced by the simulator with the
 * row's exact configuration (sim/published.h); per point measured, predicted
 * and error; per category the median, p90 and worst |error| (fit verdicts:
 * right / total); the goals; and the regression thresholds of
 * validation/thresholds.csv, which set the exit code (0 within, 1 past one).
 * Columns: validation/README.md. */
#include "cli.h"
#include "published.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NCAT SIM_PUB_NCAT
/* The goals: median and p90 of |error| (0: none); fit: all right. */
static const double goal_median[NCAT] = {0.05, 0.10, 0.02, 0.04, 0.0};
static const double goal_p90[NCAT] = {0.12, 0.0, 0.0, 0.0, 0.0};

static void help(void)
{
    printf("usage: kvsim check-published [--set FILE.csv] [--thresholds FILE.csv] [--quiet]\n\n"
           "Prices every published measurement of the set (validation/published.csv) with its exact\n"
           "configuration and prints measured, predicted and error per point, then median, p90 and worst\n"
           "|error| per category (decode, ttft, kv_capacity, speedup; fit: verdicts right / total) against\n"
           "the goals, and checks the regression thresholds (validation/thresholds.csv): exit 1 when a\n"
           "category's median or p90 is past its threshold or a fit verdict is wrong beyond it.\n");
}

static void print_point(const sim_pub_row *r, const sim_pub_result *o, int quiet)
{
    if (quiet) return;
    if (o->cat == NCAT - 1)
        printf("%-44s %-11s %12s %12s %8s\n", r->f[SIM_PUB_F_ID], sim_pub_cat_names[o->cat],
               o->measured != 0 ? "fits" : "no", o->predicted != 0 ? "fits" : "NO", o->err == 0 ? "right" : "WRONG");
    else
        printf("%-44s %-11s %12.6g %12.6g %+7.1f%%\n", r->f[SIM_PUB_F_ID], sim_pub_cat_names[o->cat], o->measured,
               o->predicted, 100.0 * o->err);
}

/* The per-category table and the threshold verdict; returns the number of categories past a threshold. */
static int summarize(const sim_pub_row *rows, const sim_pub_result *res, int n, const double *tmed, const double *tp90)
{
    int bad = 0;
    printf("\n%-11s %4s %9s %9s %9s  %-44s %s\n", "category", "n", "median", "p90", "worst", "worst point",
           "goal");
    for (int c = 0; c < NCAT; c++) {
        double med = 0, p90 = 0;
        int w;
        int k = sim_pub_cat_stats(res, n, c, &med, &p90, &w);
        if (k == 0) continue;
        const int past = med > tmed[c] || p90 > tp90[c];
        bad += past;
        if (c == NCAT - 1) {
            int wrong = 0;
            for (int i = 0; i < n; i++) wrong += res[i].cat == c && res[i].err != 0.0;
            printf("%-11s %4d %9s %9s %9s  %-44s all right: %s%s\n", sim_pub_cat_names[c], k, "", "", "",
                   wrong ? rows[w].f[SIM_PUB_F_ID] : "-", wrong ? "NOT met" : "met", past ? "  [past threshold]" : "");
            printf("%-11s %4s %d of %d verdicts right\n", "", "", k - wrong, k);
            continue;
        }
        char goal[96];
        int met = med <= goal_median[c] && (goal_p90[c] == 0.0 || p90 <= goal_p90[c]);
        if (goal_p90[c] > 0.0)
            snprintf(goal, sizeof goal, "median <= %.0f%%, p90 <= %.0f%%: %s", 100 * goal_median[c], 100 * goal_p90[c],
                     met ? "met" : "NOT met");
        else
            snprintf(goal, sizeof goal, "median <= %.0f%%: %s", 100 * goal_median[c], met ? "met" : "NOT met");
        printf("%-11s %4d %8.1f%% %8.1f%% %8.1f%%  %-44s %s%s\n", sim_pub_cat_names[c], k, 100 * med, 100 * p90,
               100 * fabs(res[w].err), rows[w].f[SIM_PUB_F_ID], goal, past ? "  [past threshold]" : "");
    }
    return bad;
}

int cmd_check_published(int argc, char **argv)
{
    static const char *const flags[] = {"help", "quiet", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim check-published", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *set = cli_opt_str(&o, "set", KVSIM_DATADIR "/validation/published.csv");
    const char *thr = cli_opt_str(&o, "thresholds", KVSIM_DATADIR "/validation/thresholds.csv");
    const int quiet = cli_opt_flag(&o, "quiet");
    if (o.npos > 0 || cli_opts_unused(&o) != 0) {
        if (o.npos > 0) cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    static sim_pub_row rows[SIM_PUB_MAX_ROWS];
    static sim_pub_result res[SIM_PUB_MAX_ROWS];
    int n;
    kv_err err;
    double tmed[NCAT], tp90[NCAT];
    if (sim_pub_load_rows(set, rows, &n, &err) != 0 || sim_pub_load_thresholds(thr, tmed, tp90, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    char base[1024];
    sim_pub_base(set, base, sizeof base);
    for (int i = 0; i < n; i++)
        if (sim_pub_eval_row(set, base, &rows[i], &res[i], &err) != 0) {
            cli_error(o.prog, "%s (row %s)", err.msg, rows[i].f[SIM_PUB_F_ID]);
            return CLI_FAIL;
        }
    if (!quiet)
        printf("%-44s %-11s %12s %12s %8s\n", "point", "category", "measured", "predicted", "error");
    for (int i = 0; i < n; i++) print_point(&rows[i], &res[i], quiet);
    const int bad = summarize(rows, res, n, tmed, tp90);
    printf("%d points from %s; thresholds %s: %s\n", n, set, thr,
           bad ? "a category is past its threshold" : "every category within");
    return bad ? CLI_FAIL : CLI_OK;
}
