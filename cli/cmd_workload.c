/* cmd_workload.c — `kvsim workload profile | fit | compare | dump`: measure a
 * real model's attention (KV dumps), fit the synthetic generator to it, check
 * the fit on held-out dumps (workload/wl.h has the definitions), and write a
 * synthetic workload as a dump (llm/llm_kvsynth.c). */
#include "cli.h"
#include "llm_kvdump.h"
#include "kv_yaml.h"
#include "wl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DUMPS 32

static void help(void)
{
    printf("usage: kvsim workload profile DUMP.kvd [--context C] [--window W] [--steps N] [--layers LIST] [--json]\n"
           "       kvsim workload profile --workload FILE|NAME --model M [same options]\n"
           "       kvsim workload fit DUMP.kvd... --out PROFILE.yaml [--classes K] [--key-sets R] [--recency ladder|pairs]\n"
           "                          [--context C] [--window W] [--steps N]\n"
           "       kvsim workload compare --workload FILE|NAME DUMP.kvd... [--context C] [--steps N] [--new N]\n"
           "                              [--method LIST] [--budget LIST] [--tolerance X] [--seeds N] [--csv FILE]\n"
           "       kvsim workload dump --workload FILE|NAME [--model M] --tokens N [--prompt P] --out FILE.kvd\n\n"
           "profile: per (layer, query head) attention statistics (entropy, top-k mass, sink mass, locality,\n"
           "  heavy-hitter persistence, key/query channel outliers, page-bound tightness, stage-1 vote mass),\n"
           "  one pass over a KV dump (kvsim kvdump) or a synthetic workload.\n"
           "fit: fits the fitted generator's head classes to the dumps' statistics; writes a workload YAML.\n"
           "compare: mass recall, top-k recall and stage-1 survival of every method x budget on the dumps\n"
           "  (mean over dumps) and on the workload at the dumps' shape; exit 1 when a figure differs by more\n"
           "  than --tolerance or the workload orders by mass recall a pair of methods otherwise than every\n"
           "  dump does (pairs the dumps do not all order the same way are listed and not checked).\n"
           "dump: the workload's keys, values and queries at a model's shape (smollm2-135m) as an f32 KV dump,\n"
           "  queries from position P on (default N - 32) drawn as decode queries, so that `profile` and the\n"
           "  scripts that read dumps read the synthetic side as they read a real one.\n\n"
           "  --context C      prompt tokens (4096)      --window W   stage-1 window (32)\n"
           "  --steps N        decode steps (32)         --layers L   layers (all)\n"
           "  --classes K      head classes (6)          --threads N  worker threads (number of CPUs)\n"
           "  --key-sets R     fit: synthetic key sets each class is measured on (1: its G heads on one; 2..8: one\n"
           "                   head on each, so R = G costs what 1 does; the committed profile used 1)\n"
           "  --recency K      fit: ladder (a geometric ladder of recency features, band weights fitted) or pairs\n"
           "                   (each RoPE pair's mean query x mean key, measured from the dumps) (ladder)\n"
           "  --method LIST    (exact-topk,rocketkv,quest,sparq,snapkv-gqa,streaming)\n"
           "  --budget LIST    (128,256,512)             --new N      new tokens the split plans for (50)\n"
           "  --tolerance X    (0.05)                    --seeds N    synthetic seeds averaged (1)\n"
           "  --tokens N       dump: positions (1 .. 1048576; the dump must fit in 8 GiB)\n"
           "  --prompt P       dump: the first decode position (0 .. N; N - 32, or 0 when N < 32)\n");
}

static void dump_workload(const llm_kvd_file *f, rkv_workload *wl)
{
    rkv_workload_defaults(wl);
    snprintf(wl->generator, sizeof wl->generator, "kvdump");
    snprintf(wl->path, sizeof wl->path, "%s", f->info.source);
    llm_kvd_source(f, &wl->real);
}

/* Loads a workload by path or by name (refimpl/workloads/NAME.yaml). */
int cli_workload_load(const char *spec, rkv_workload *wl, kv_err *err);
int cli_workload_load(const char *spec, rkv_workload *wl, kv_err *err)
{
    char path[1024];
    if (rkv_workload_find(spec, path, sizeof path, err) != 0) return -1;
    return rkv_workload_load(path, wl, err);
}

typedef struct {
    int64_t context, window, steps;
    int threads;
    int layers[1024], nlayers;
} geo;

static int parse_geo(cli_opts *o, geo *g)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t th;
    if (cli_opt_i64_in(o, "context", 4096, 64, 1 << 22, &g->context) ||
        cli_opt_i64_in(o, "window", 32, 1, 4096, &g->window) || cli_opt_i64_in(o, "steps", 32, 1, 4096, &g->steps) ||
        cli_opt_i64_in(o, "threads", ncpu > 0 ? ncpu : 1, 1, 64, &th))
        return -1;
    g->threads = (int)th;
    if (g->context < 2 * g->window) {
        cli_error(o->prog, "--context %lld must be at least twice --window %lld", (long long)g->context,
                  (long long)g->window);
        return -1;
    }
    int64_t lay[1024];
    g->nlayers = cli_opt_i64_list(o, "layers", NULL, 0, RKV_MAX_MAP_LAYERS * 8, 1, lay, 1024);
    if (g->nlayers < 0) return -1;
    for (int i = 0; i < g->nlayers; i++) g->layers[i] = (int)lay[i];
    return 0;
}

static int check_layers(const char *prog, const geo *g, const mdl_model *m)
{
    for (int i = 0; i < g->nlayers; i++)
        if (g->layers[i] >= m->num_hidden_layers) {
            cli_error(prog, "--layers: layer %d does not exist (%d layers)", g->layers[i], m->num_hidden_layers);
            return -1;
        }
    return 0;
}

static void print_profile(const wl_profile *p, int json)
{
    double mean[WL_NSTAT] = {0};
    const int n = p->nlayers * p->nheads;
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        kv_json_obj_begin(&j);
        kv_json_key(&j, "context"); kv_json_int(&j, p->context);
        kv_json_key(&j, "window"); kv_json_int(&j, p->window);
        kv_json_key(&j, "steps"); kv_json_int(&j, p->steps);
        kv_json_key(&j, "heads");
        kv_json_arr_begin(&j);
        for (int i = 0; i < n; i++) {
            double v[WL_NSTAT];
            wl_stats_vec(&p->h[i], v);
            kv_json_obj_begin(&j);
            kv_json_key(&j, "layer"); kv_json_int(&j, p->layer_ids[i / p->nheads]);
            kv_json_key(&j, "head"); kv_json_int(&j, i % p->nheads);
            for (int s = 0; s < WL_NSTAT; s++) {
                kv_json_key(&j, wl_stat_names[s]);
                kv_json_num(&j, v[s]);
            }
            kv_json_obj_end(&j);
        }
        kv_json_arr_end(&j);
        kv_json_obj_end(&j);
        return;
    }
    printf("context %lld, window %lld, %lld decode steps; means over the decode steps\n", (long long)p->context,
           (long long)p->window, (long long)p->steps);
    printf("layer head");
    for (int s = 0; s < WL_NSTAT; s++) printf(" %*s", s < WL_NK ? 8 : 11, wl_stat_names[s]);
    printf("\n");
    for (int i = 0; i < n; i++) {
        double v[WL_NSTAT];
        wl_stats_vec(&p->h[i], v);
        printf("%5d %4d", p->layer_ids[i / p->nheads], i % p->nheads);
        for (int s = 0; s < WL_NSTAT; s++) {
            printf(" %*.4f", s < WL_NK ? 8 : 11, v[s]);
            mean[s] += v[s] / n;
        }
        printf("\n");
    }
    printf(" mean     ");
    for (int s = 0; s < WL_NSTAT; s++) printf(" %*.4f", s < WL_NK ? 8 : 11, mean[s]);
    printf("\n");
}

static int do_profile(cli_opts *o)
{
    geo g;
    kv_err err;
    if (parse_geo(o, &g) != 0) return CLI_USAGE;
    const char *ws = cli_opt_str(o, "workload", NULL), *mname = cli_opt_str(o, "model", NULL);
    int json = cli_opt_flag(o, "json");
    if ((ws != NULL) == (o->npos == 2)) {
        cli_error(o->prog, "profile: give one DUMP.kvd, or --workload with --model");
        return CLI_USAGE;
    }
    if (o->npos > 2) {
        cli_error(o->prog, "profile: one dump at a time, got %d", o->npos - 1);
        return CLI_USAGE;
    }
    if (cli_opts_unused(o) != 0) return CLI_USAGE;
    llm_kvd_file *f = NULL;
    mdl_model m;
    rkv_workload wl;
    if (ws) {
        if (mdl_model_load(mname ? mname : "smollm2-135m", &m, &err) != 0 || cli_workload_load(ws, &wl, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
    } else {
        if (llm_kvd_open(o->pos[1], &f, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        llm_kvd_model(&f->info, &m);
        dump_workload(f, &wl);
    }
    wl_profile p;
    int rc = CLI_OK;
    if (check_layers(o->prog, &g, &m) != 0) rc = CLI_USAGE;
    else if (wl_profile_run(&wl, &m, g.context, g.window, g.steps, g.nlayers ? g.layers : NULL, g.nlayers, g.threads,
                            &p, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        rc = CLI_FAIL;
    } else {
        print_profile(&p, json);
        wl_profile_free(&p);
    }
    llm_kvd_free(f);
    return rc;
}

/* Opens the dumps named by the positional arguments from index 1; all of one shape. */
static int open_dumps(cli_opts *o, llm_kvd_file **f, int *nf, mdl_model *m)
{
    kv_err err;
    *nf = 0;
    if (o->npos < 2 || o->npos - 1 > MAX_DUMPS) {
        cli_error(o->prog, "expected 1 to %d KV dumps, got %d", MAX_DUMPS, o->npos - 1);
        return CLI_USAGE;
    }
    for (int i = 1; i < o->npos; i++) {
        if (llm_kvd_open(o->pos[i], &f[*nf], &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        mdl_model mi;
        llm_kvd_model(&f[*nf]->info, &mi);
        (*nf)++;
        if (i == 1) *m = mi;
        else if (mi.num_hidden_layers != m->num_hidden_layers || mi.num_attention_heads != m->num_attention_heads ||
                 mi.num_key_value_heads != m->num_key_value_heads || mi.head_dim != m->head_dim) {
            cli_error(o->prog, "%s: a different model shape from %s", o->pos[i], o->pos[1]);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

/* --recency pairs: every dump's measured pair amplitudes and key norms
 * (wl_pairs_measure), averaged over the dumps; *amp and *key are the caller's
 * to free, also on failure. */
static int measure_pairs(const char *prog, llm_kvd_file *const *f, int nf, const mdl_model *m, const geo *g, double **amp,
                         double **key)
{
    const int npr = m->head_dim / 2 - 2 > 0 ? m->head_dim / 2 - 2 : 1;
    const size_t na = (size_t)m->num_hidden_layers * (size_t)m->num_attention_heads * 2 * (size_t)npr;
    kv_err err;
    *amp = calloc(na, sizeof **amp);
    *key = calloc((size_t)npr, sizeof **key);
    if (!*amp || !*key) {
        cli_error(prog, "fit: out of memory");
        return -1;
    }
    for (int i = 0; i < nf; i++) {
        rkv_workload wl;
        dump_workload(f[i], &wl);
        if (wl_pairs_measure(&wl, m, g->context, g->steps, *amp, *key, &err) != 0) {
            cli_error(prog, "%s", err.msg);
            return -1;
        }
    }
    for (size_t i = 0; i < na; i++) (*amp)[i] /= nf;
    for (int i = 0; i < npr; i++) (*key)[i] /= nf;
    return 0;
}

/* --recency heads: every dump's measured head rows (wl_heads_measure),
 * averaged over the dumps and interned into *hv, and with GQA groups the
 * group's agreement (wl_group_measure) averaged into group. */
static int measure_heads(const char *prog, llm_kvd_file *const *f, int nf, const mdl_model *m, const geo *g,
                         const float **hv, double group[2])
{
    const int G2 = mdl_group_size(m) >= 2; /* the group statistic needs two heads a group */
    const int d = m->head_dim;
    const size_t n = (size_t)m->num_hidden_layers *
                     ((size_t)m->num_key_value_heads * (size_t)RKV_HV_KROW(d) + (size_t)m->num_attention_heads * (size_t)RKV_HV_QROW(d));
    double *acc = calloc(n, sizeof *acc);
    float *x = malloc(n * sizeof *x);
    kv_err err;
    int rc = 0;
    if (!acc || !x) {
        cli_error(prog, "fit: out of memory");
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < nf; i++) {
        rkv_workload wl;
        dump_workload(f[i], &wl);
        if (wl_heads_measure(&wl, m, g->context, g->window, g->steps, 1.0 / nf, acc, &err) != 0) {
            cli_error(prog, "%s", err.msg);
            rc = -1;
        }
    }
    for (int i = 0; rc == 0 && i < nf && G2; i++) { /* the group's agreement beyond the means (wl_group.c) */
        rkv_workload wl;
        wl_group_keys gk;
        double v[2];
        dump_workload(f[i], &wl);
        if (wl_group_keys_load(&gk, &wl, m, g->context, WL_GROUP_LAYER_STEP, &err) != 0 ||
            wl_group_measure(&wl, m, &gk, g->window, g->steps, v, &err) != 0) {
            cli_error(prog, "%s", err.msg);
            rc = -1;
        }
        wl_group_keys_free(&gk);
        if (rc == 0) {
            group[0] += v[0] / nf;
            group[1] += v[1] / nf;
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) x[i] = (float)acc[i];
        if (!(*hv = rkv_wl_hv_intern(x, n))) {
            cli_error(prog, "fit: out of memory");
            rc = -1;
        }
    }
    free(acc);
    free(x);
    return rc;
}

static int do_fit(cli_opts *o)
{
    geo g;
    kv_err err;
    int64_t classes, ksets;
    if (parse_geo(o, &g) != 0 || cli_opt_i64_in(o, "classes", 6, 1, RKV_MAX_CLASSES, &classes) ||
        cli_opt_i64_in(o, "key-sets", 1, 1, WL_FIT_MAX_KEY_SETS, &ksets))
        return CLI_USAGE;
    const char *out = cli_opt_str(o, "out", NULL);
    if (!out) {
        cli_error(o->prog, "fit: --out PROFILE.yaml is required");
        return CLI_USAGE;
    }
    const char *recency = cli_opt_str(o, "recency", "ladder");
    if (strcmp(recency, "ladder") != 0 && strcmp(recency, "pairs") != 0 && strcmp(recency, "heads") != 0) {
        cli_error(o->prog, "fit: --recency: expected 'ladder', 'pairs' or 'heads', got '%s'", recency);
        return CLI_USAGE;
    }
    const int pairs = !strcmp(recency, "pairs"), heads = !strcmp(recency, "heads");
    if (g.nlayers) {
        cli_error(o->prog, "fit: --layers is not accepted (every layer is fitted)");
        return CLI_USAGE;
    }
    if (cli_opts_unused(o) != 0) return CLI_USAGE;
    llm_kvd_file *f[MAX_DUMPS];
    int nf = 0, rc;
    mdl_model m;
    wl_profile p[MAX_DUMPS];
    int np = 0;
    double *pamp = NULL, *pkey = NULL; /* --recency pairs: the measured amplitudes and key norms */
    double t0 = kv_now_s();
    if ((rc = open_dumps(o, f, &nf, &m)) != CLI_OK) goto out;
    for (int i = 0; i < nf; i++, np++) {
        rkv_workload wl;
        dump_workload(f[i], &wl);
        if (wl_profile_run(&wl, &m, g.context, g.window, g.steps, NULL, 0, g.threads, &p[i], &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
    }
    double t1 = kv_now_s();
    wl_fit_cfg cfg = {.classes = (int)classes, .context = g.context, .window = g.window, .steps = g.steps,
                      .threads = g.threads, .seed = 1, .key_sets = (int)ksets};
    if ((pairs && measure_pairs(o->prog, f, nf, &m, &g, &pamp, &pkey) != 0) ||
        (heads && measure_heads(o->prog, f, nf, &m, &g, &cfg.head_vec, cfg.group_real) != 0)) {
        rc = CLI_FAIL;
        goto out;
    }
    cfg.group = heads && mdl_group_size(&m) >= 2;
    cfg.pair_amp = pamp;
    cfg.pair_key = pkey;
    rkv_workload fw;
    if (wl_fit(p, np, &m, &cfg, &fw, stderr, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    char header[8192], ksets_note[64];
    snprintf(ksets_note, sizeof ksets_note, " measured on %lld synthetic key sets", (long long)ksets);
    int hl = snprintf(header, sizeof header,
                      "# Fitted by `kvsim workload fit` (workload/wl_fit.c) to %s at context %lld, window %lld, %lld "
                      "decode steps, %lld head classes%s, from:\n",
                      m.source, (long long)g.context, (long long)g.window, (long long)g.steps, (long long)classes,
                      ksets > 1 ? ksets_note : "");
    for (int i = 0; i < nf && hl < (int)sizeof header - 600; i++)
        hl += snprintf(header + hl, sizeof header - (size_t)hl, "#   %s\n", f[i]->info.source);
    if (wl_write_yaml(&fw, out, header, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    fprintf(stderr, "kvsim workload fit: %s: %d classes from %d dumps; profiling %.2f s, fitting %.2f s wall, %d threads\n",
            out, (int)classes, nf, t1 - t0, kv_now_s() - t1, g.threads);
out:
    free(pamp);
    free(pkey);
    for (int i = 0; i < np; i++) wl_profile_free(&p[i]);
    for (int i = 0; i < nf; i++) llm_kvd_free(f[i]);
    return rc;
}

#define DUMP_MAX_BYTES (8ull << 30)

static int do_dump(cli_opts *o)
{
    kv_err err;
    int64_t n, prompt;
    const char *ws = cli_opt_str(o, "workload", NULL), *mname = cli_opt_str(o, "model", "smollm2-135m");
    const char *out = cli_opt_str(o, "out", NULL);
    if (cli_opt_i64_in(o, "tokens", 0, 1, 1 << 20, &n) != 0) return CLI_USAGE;
    if (cli_opt_i64_in(o, "prompt", n >= 32 ? n - 32 : 0, 0, n > 0 ? n : 0, &prompt) != 0) return CLI_USAGE;
    if (!ws || !out || n == 0) {
        cli_error(o->prog, "dump: --workload, --tokens and --out are required");
        return CLI_USAGE;
    }
    if (o->npos > 1) {
        cli_error(o->prog, "dump: takes no positional argument, got '%s'", o->pos[1]);
        return CLI_USAGE;
    }
    if (cli_opts_unused(o) != 0) return CLI_USAGE;
    mdl_model m;
    rkv_workload wl;
    if (kv_out_check(out, &err) != 0) { /* before the work, not after it (llm_kvd_write checks again) */
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (mdl_model_load(mname, &m, &err) != 0 || cli_workload_load(ws, &wl, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    const double per_token = (double)llm_kvd_synth_bytes(&m, 1);
    if ((double)n * per_token > (double)DUMP_MAX_BYTES) {
        cli_error(o->prog, "dump: --tokens %lld makes a %.1f GiB dump of %s; at most 8 GiB (--tokens <= %lld)",
                  (long long)n, (double)n * per_token / 1073741824.0, m.name,
                  (long long)((double)DUMP_MAX_BYTES / per_token));
        return CLI_USAGE;
    }
    llm_kvd_file *f = NULL;
    double t0 = kv_now_s();
    if (llm_kvd_synthesize(&wl, &m, n, prompt, ws, &f, &err) != 0 || llm_kvd_write(f, out, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        llm_kvd_free(f);
        return CLI_FAIL;
    }
    fprintf(stderr, "kvsim workload dump: %s: %s at the shape of %s, %lld tokens, decode from %lld; %.1f MB, %.2f s\n",
            out, ws, m.name, (long long)n, (long long)prompt, (double)f->size / 1e6, kv_now_s() - t0);
    llm_kvd_free(f);
    return CLI_OK;
}

int cmd_workload_compare(cli_opts *o);

int cmd_workload(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim workload", argc, argv, flags) != 0) return CLI_USAGE;
    if (cli_opt_flag(&o, "help") || o.npos < 1) {
        help();
        return o.npos < 1 && !cli_opt_flag(&o, "help") ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(o.pos[0], "profile")) return do_profile(&o);
    if (!strcmp(o.pos[0], "fit")) return do_fit(&o);
    if (!strcmp(o.pos[0], "compare")) return cmd_workload_compare(&o);
    if (!strcmp(o.pos[0], "dump")) return do_dump(&o);
    cli_error(o.prog, "unknown action '%s' (profile, fit, compare or dump)", o.pos[0]);
    return CLI_USAGE;
}
