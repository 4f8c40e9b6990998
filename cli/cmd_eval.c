/* cmd_eval.c — `kvsim eval`: accuracy under compression, in the model's own
 * output, with each method's attention inside the decode loop.
 *
 *  - continuation: the prompt (S tokens of a real text) is processed once,
 *    densely; for every method × budget a session starts from a copy of
 *    that cache, runs the method's stage 1, then teacher-forces the next N
 *    tokens of the text through the method's decode steps. Reported:
 *    perplexity of those N tokens, its ratio to full attention's, and the
 *    share of steps whose greedy (argmax) token equals full's.
 *  - passkey (--passkey): a 5-digit key hidden at depths 0–100 % of filler
 *    text at several contexts; each method must generate the key greedily
 *    after "The pass key is". Contexts where `full` fails are reported but
 *    left out of the methods' accuracy relative to full.
 *
 * It does not sample, batch or cache results between runs. */
#include "cli.h"
#include "llm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_GGUF KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"
#define MAX_SETS 64
#define MAX_PK 16

static void help(void)
{
    printf("usage: kvsim eval [--gguf FILE] [--text FILE] [--offset N] --context S --new N\n"
           "                  --method LIST --budget LIST [--passkey] [--json]\n\n"
           "Teacher-forced continuation perplexity and greedy-token agreement versus full attention,\n"
           "every method's attention inside the model's decode loop; with --passkey, passkey retrieval\n"
           "at several contexts and depths instead.\n\n"
           "  --gguf FILE          model (%s)\n"
           "  --text FILE          real text (/usr/share/common-licenses/GPL-3)\n"
           "  --offset N           first token of the prompt in the text (0)\n"
           "  --context S          prompt tokens (1024)\n"
           "  --new N              continuation tokens scored (64)\n"
           "  --method LIST        methods (full,snapkv,rocketkv); `full` is always the reference\n"
           "  --budget LIST        budgets t (256)\n"
           "  --dtype D            KV storage bf16, fp16, fp32 (bf16)\n"
           "  --passkey            run passkey retrieval instead\n"
           "  --contexts LIST      passkey contexts in tokens (512,1024,2048)\n"
           "  --depths LIST        passkey depths in percent (0,25,50,75,100)\n"
           "  --trials N           keys per (context, depth) (1)\n"
           "  --json               one JSON object\n"
           "  --threads N          BLAS threads (number of CPUs)\n",
           DEFAULT_GGUF);
}

typedef struct {
    char method[32];
    int64_t budget;
    rkv_params p;
    double nll;        /* continuation: summed NLL */
    int64_t agree;     /* greedy tokens equal to full's */
    int64_t n;         /* scored tokens */
    int pk_ok[MAX_PK][MAX_PK]; /* passkey successes per (context, depth) */
} eval_set;

static char *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (b && fread(b, 1, (size_t)sz, fp) != (size_t)sz) { free(b); b = NULL; }
    fclose(fp);
    if (b) { b[sz] = '\0'; *n = (size_t)sz; }
    return b;
}

static int resolve(eval_set *e, const llm_model *m, int64_t S, int64_t N, rkv_dtype dt, kv_err *err)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.d = m->c.head_dim;
    rq.G = m->c.n_head / m->c.n_kv_head;
    rq.context = S;
    rq.max_new = N;
    rq.budget = e->budget;
    rq.kv_dtype = dt;
    return rkv_params_resolve(e->method, &rq, &e->p, err);
}

/* A session for set e (NULL: dense) seeded from the dense prompt session src. */
static llm_session *fork_from(const llm_model *m, const llm_session *src, const rkv_params *p, int64_t T, rkv_dtype dt,
                              int threads, kv_err *err)
{
    llm_session *s;
    llm_session_cfg cfg = {.max_tokens = T, .kv_dtype = dt, .method = p, .threads = threads};
    if (llm_session_new(m, &cfg, &s, err) != 0) return NULL;
    if (llm_session_copy(s, src, err) != 0) {
        llm_session_free(s);
        return NULL;
    }
    return s;
}

static int64_t max_window(const eval_set *sets, int ns)
{
    int64_t w = 1;
    for (int i = 0; i < ns; i++)
        if (sets[i].p.window_size > w) w = sets[i].p.window_size;
    return w;
}

/* ---- continuation perplexity ---- */
static int run_continuation(const llm_model *m, const int32_t *tok, int64_t S, int64_t N, eval_set *sets, int ns,
                            eval_set *full, rkv_dtype dt, int threads, kv_err *err)
{
    const int V = m->c.vocab;
    const int64_t T = S + N + 1;
    float *l0 = malloc((size_t)V * 4), *lg = malloc((size_t)V * 4);
    int32_t *ref = malloc((size_t)N * sizeof *ref);
    llm_session *sd = NULL;
    int rc = -1;
    if (!l0 || !lg || !ref) { kv_errf(err, "out of memory"); goto out; }
    llm_session_cfg cfg = {.max_tokens = T, .kv_dtype = dt, .threads = threads, .keep_queries = max_window(sets, ns)};
    if (llm_session_new(m, &cfg, &sd, err) != 0 || llm_prefill(sd, tok, S, l0, 0, 0, err) != 0) goto out;
    for (int k = -1; k < ns; k++) {
        eval_set *e = k < 0 ? full : &sets[k];
        llm_session *s = fork_from(m, sd, k < 0 ? NULL : &e->p, T, dt, threads, err);
        if (!s) goto out;
        memcpy(lg, l0, (size_t)V * 4);
        e->nll = 0.0;
        e->agree = 0;
        e->n = N;
        for (int64_t i = 0; i < N; i++) {
            e->nll -= llm_logprob(lg, V, tok[S + i]);
            int32_t a = llm_argmax(lg, V);
            if (k < 0) ref[i] = a;
            else if (a == ref[i]) e->agree++;
            if (i + 1 < N && llm_decode(s, tok[S + i], lg, err) != 0) {
                llm_session_free(s);
                goto out;
            }
        }
        if (k < 0) e->agree = N;
        llm_session_free(s);
        fprintf(stderr, "\r  %d/%d runs", k + 2, ns + 1);
    }
    fprintf(stderr, "\n");
    rc = 0;
out:
    llm_session_free(sd);
    free(l0); free(lg); free(ref);
    return rc;
}

/* ---- passkey ---- */
static const char pk_intro[] = "There is an important piece of information hidden inside a lot of irrelevant text. "
                               "Find it and memorize it. I will quiz you about it.\n\n";
static const char pk_filler[] = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

/* Builds the prompt of about ctx tokens with the key at depth (percent); returns its token count. */
static int64_t pk_prompt(const llm_model *m, int64_t ctx, int depth, int key, int32_t *ids, int64_t cap)
{
    int32_t tmp[64];
    const int64_t per = llm_tokenize(m->tok, pk_filler, strlen(pk_filler), tmp, 64);
    const int64_t reps = ctx / (per > 0 ? per : 1) - 2, at = reps * depth / 100;
    size_t need = strlen(pk_intro) + (size_t)(reps + 1) * strlen(pk_filler) + 256;
    char *t = malloc(need), *o = t;
    if (!t) return -1;
    o += sprintf(o, "%s", pk_intro);
    for (int64_t r = 0; r <= reps; r++) {
        if (r == at) o += sprintf(o, "The pass key is %05d. Remember it. %05d is the pass key. ", key, key);
        if (r < reps) o += sprintf(o, "%s", pk_filler);
    }
    o += sprintf(o, "\nWhat is the pass key? The pass key is");
    int64_t n = llm_tokenize(m->tok, t, (size_t)(o - t), ids, cap);
    free(t);
    return n;
}

static int pk_generate(const llm_model *m, llm_session *s, const float *l0, int key, kv_err *err)
{
    const int V = m->c.vocab;
    float *lg = malloc((size_t)V * 4);
    if (!lg) return -1;
    memcpy(lg, l0, (size_t)V * 4);
    char out[128] = "", want[8];
    size_t on = 0;
    snprintf(want, sizeof want, "%05d", key);
    for (int i = 0; i < 8; i++) {
        int32_t t = llm_argmax(lg, V);
        size_t bl;
        const char *b = llm_token_bytes(m->tok, t, &bl);
        if (on + bl < sizeof out - 1) { memcpy(out + on, b, bl); on += bl; out[on] = '\0'; }
        if (i < 7 && llm_decode(s, t, lg, err) != 0) { free(lg); return -1; }
    }
    free(lg);
    return strstr(out, want) != NULL;
}

static int run_passkey(const llm_model *m, const int64_t *ctxs, int nc, const int64_t *depths, int nd, int trials,
                       eval_set *sets, int ns, eval_set *full, rkv_dtype dt, int threads, kv_err *err)
{
    const int V = m->c.vocab;
    float *l0 = malloc((size_t)V * 4);
    if (!l0) return kv_errf(err, "out of memory");
    for (int c = 0; c < nc; c++)
        for (int di = 0; di < nd; di++)
            for (int tr = 0; tr < trials; tr++) {
                const int key = 10000 + (int)((ctxs[c] * 7919 + depths[di] * 104729 + tr * 1299709) % 90000);
                const int64_t cap = ctxs[c] + 256;
                int32_t *ids = malloc((size_t)cap * sizeof *ids);
                if (!ids) { free(l0); return kv_errf(err, "out of memory"); }
                int64_t n = pk_prompt(m, ctxs[c], (int)depths[di], key, ids, cap);
                for (int k = -1; k < ns; k++) {
                    eval_set *e = k < 0 ? full : &sets[k];
                    rkv_request rq;
                    rkv_request_defaults(&rq);
                    rq.d = m->c.head_dim; rq.G = m->c.n_head / m->c.n_kv_head; rq.context = n; rq.max_new = 8;
                    rq.budget = e->budget; rq.kv_dtype = dt;
                    if (k >= 0 && rkv_params_resolve(e->method, &rq, &e->p, err) != 0) { free(ids); free(l0); return -1; }
                }
                llm_session *sd;
                llm_session_cfg cfg = {.max_tokens = n + 9, .kv_dtype = dt, .threads = threads,
                                       .keep_queries = max_window(sets, ns)};
                if (llm_session_new(m, &cfg, &sd, err) != 0 || llm_prefill(sd, ids, n, l0, 0, 0, err) != 0) {
                    free(ids); free(l0); return -1;
                }
                for (int k = -1; k < ns; k++) {
                    eval_set *e = k < 0 ? full : &sets[k];
                    llm_session *s = fork_from(m, sd, k < 0 ? NULL : &e->p, n + 9, dt, threads, err);
                    int ok = s ? pk_generate(m, s, l0, key, err) : -1;
                    llm_session_free(s);
                    if (ok < 0) { llm_session_free(sd); free(ids); free(l0); return -1; }
                    e->pk_ok[c][di] += ok;
                }
                llm_session_free(sd);
                free(ids);
                fprintf(stderr, "\r  passkey context %lld depth %lld%% trial %d", (long long)ctxs[c], (long long)depths[di], tr);
            }
    fprintf(stderr, "\n");
    free(l0);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    static const char *const flags[] = {"help", "json", "passkey", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim eval", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *path = cli_opt_str(&o, "gguf", DEFAULT_GGUF), *text = cli_opt_str(&o, "text", "/usr/share/common-licenses/GPL-3"),
               *ml = cli_opt_str(&o, "method", "full,snapkv,rocketkv"), *dts = cli_opt_str(&o, "dtype", "bf16");
    int64_t S, N, offset, trials, threads, budgets[MAX_SETS], ctxs[MAX_PK], depths[MAX_PK];
    if (cli_opt_i64(&o, "context", 1024, &S) || cli_opt_i64(&o, "new", 64, &N) || cli_opt_i64(&o, "offset", 0, &offset) ||
        cli_opt_i64(&o, "trials", 1, &trials) || cli_opt_i64(&o, "threads", 0, &threads))
        return CLI_USAGE;
    const int json = cli_opt_flag(&o, "json"), passkey = cli_opt_flag(&o, "passkey");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    int nb = cli_opt_i64_list(&o, "budget", "256", 1, INT64_C(1) << 40, 0, budgets, MAX_SETS);
    int nc = nb < 1 ? -1 : cli_opt_i64_list(&o, "contexts", "512,1024,2048", 1, INT64_C(1) << 40, 0, ctxs, MAX_PK);
    int nd = nc < 1 ? -1 : cli_opt_i64_list(&o, "depths", "0,25,50,75,100", 0, 100, 0, depths, MAX_PK);
    if (nd < 1 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (S < 1 || N < 1 || offset < 0 || trials < 1 || trials > 1000 || threads < 0) {
        cli_error(o.prog, "bad --context, --new, --offset or --trials");
        return CLI_USAGE;
    }
    rkv_dtype dt;
    if (rkv_dtype_parse(dts, &dt) != 0 || dt > RKV_DTYPE_FP32) {
        cli_error(o.prog, "--dtype: expected bf16, fp16 or fp32");
        return CLI_USAGE;
    }
    static eval_set sets[MAX_SETS];
    static eval_set full;
    memset(&full, 0, sizeof full);
    snprintf(full.method, sizeof full.method, "%s", rkv_method_baseline()->name);
    int ns = 0;
    for (const char *p = ml; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == 0 || n >= 32) { cli_error(o.prog, "--method: bad list '%s'", ml); return CLI_USAGE; }
        char name[32];
        memcpy(name, p, n);
        name[n] = '\0';
        kv_err merr;
        const rkv_method_type *mt = rkv_method_get(name, &merr);
        if (!mt) { cli_error(o.prog, "--method: %s", merr.msg); return CLI_USAGE; }
        if (!mt->traits.dense) /* the dense baseline always runs, as the reference */
            for (int b = 0; b < nb; b++) {
                if (ns >= MAX_SETS) { cli_error(o.prog, "at most %d method x budget runs", MAX_SETS); return CLI_USAGE; }
                memset(&sets[ns], 0, sizeof sets[ns]);
                snprintf(sets[ns].method, sizeof sets[ns].method, "%s", name);
                sets[ns].budget = budgets[b];
                ns++;
            }
        p += n;
        if (*p == ',') p++;
    }
    kv_err err;
    llm_model *m = NULL;
    if (llm_model_load(path, &m, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    char *buf = NULL;
    int32_t *tok = NULL;
    int64_t ntok = 0;
    double t0 = kv_now_s();
    if (!passkey) {
        size_t tn;
        buf = read_file(text, &tn);
        if (!buf) { cli_error(o.prog, "%s: cannot read", text); goto out; }
        tok = malloc((tn + 1) * sizeof *tok);
        if (!tok) goto out;
        ntok = llm_tokenize(m->tok, buf, tn, tok, (int64_t)tn + 1);
        if (offset + S + N > ntok) {
            cli_error(o.prog, "%s has %lld tokens; --offset %lld + --context %lld + --new %lld do not fit", text,
                      (long long)ntok, (long long)offset, (long long)S, (long long)N);
            rc = CLI_USAGE;
            goto out;
        }
        for (int i = 0; i < ns; i++)
            if (resolve(&sets[i], m, S, N, dt, &err) != 0) { cli_error(o.prog, "%s", err.msg); rc = CLI_USAGE; goto out; }
        if (run_continuation(m, tok + offset, S, N, sets, ns, &full, dt, (int)threads, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            goto out;
        }
    } else if (run_passkey(m, ctxs, nc, depths, nd, (int)trials, sets, ns, &full, dt, (int)threads, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        goto out;
    }
    const double wall = kv_now_s() - t0;
    const double full_ppl = exp(full.nll / (double)N);
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        kv_json_obj_begin(&j);
        kv_json_key(&j, "model"); kv_json_str(&j, path);
        kv_json_key(&j, "kv_dtype"); kv_json_str(&j, rkv_dtype_name(dt));
        if (!passkey) {
            kv_json_key(&j, "text"); kv_json_str(&j, text);
            kv_json_key(&j, "text_tokens"); kv_json_int(&j, ntok);
            kv_json_key(&j, "offset"); kv_json_int(&j, offset);
            kv_json_key(&j, "context"); kv_json_int(&j, S);
            kv_json_key(&j, "new"); kv_json_int(&j, N);
            kv_json_key(&j, "full_perplexity"); kv_json_num(&j, full_ppl);
        }
        kv_json_key(&j, "runs");
        kv_json_arr_begin(&j);
        for (int k = -1; k < ns; k++) {
            const eval_set *e = k < 0 ? &full : &sets[k];
            kv_json_obj_begin(&j);
            kv_json_key(&j, "method"); kv_json_str(&j, e->method);
            kv_json_key(&j, "budget"); if (k < 0) kv_json_null(&j); else kv_json_int(&j, e->budget);
            if (!passkey) {
                kv_json_key(&j, "perplexity"); kv_json_num(&j, exp(e->nll / (double)N));
                kv_json_key(&j, "perplexity_ratio"); kv_json_num(&j, exp(e->nll / (double)N) / full_ppl);
                kv_json_key(&j, "greedy_agreement"); kv_json_num(&j, (double)e->agree / (double)N);
            } else {
                kv_json_key(&j, "passkey");
                kv_json_arr_begin(&j);
                for (int c = 0; c < nc; c++)
                    for (int di = 0; di < nd; di++) {
                        kv_json_obj_begin(&j);
                        kv_json_key(&j, "context"); kv_json_int(&j, ctxs[c]);
                        kv_json_key(&j, "depth"); kv_json_int(&j, depths[di]);
                        kv_json_key(&j, "accuracy"); kv_json_num(&j, (double)e->pk_ok[c][di] / (double)trials);
                        kv_json_obj_end(&j);
                    }
                kv_json_arr_end(&j);
            }
            kv_json_obj_end(&j);
        }
        kv_json_arr_end(&j);
        kv_json_key(&j, "wall_s"); kv_json_num(&j, wall);
        kv_json_obj_end(&j);
        printf("\n");
    } else if (!passkey) {
        printf("%s: %lld tokens; prompt = tokens %lld..%lld, %lld continuation tokens teacher-forced, %s KV\n", text,
               (long long)ntok, (long long)offset, (long long)(offset + S - 1), (long long)N, rkv_dtype_name(dt));
        printf("| method | budget | perplexity | ratio to full | greedy agreement |\n|---|---:|---:|---:|---:|\n");
        for (int k = -1; k < ns; k++) {
            const eval_set *e = k < 0 ? &full : &sets[k];
            const double ppl = exp(e->nll / (double)N);
            if (k < 0) printf("| full | - | %.3f | 1.000 | 1.000 |\n", ppl);
            else printf("| %s | %lld | %.3f | %.3f | %.3f |\n", e->method, (long long)e->budget, ppl, ppl / full_ppl,
                        (double)e->agree / (double)N);
        }
        fprintf(stderr, "kvsim eval: %.1f s wall\n", wall);
    } else {
        printf("passkey retrieval, %d trial(s) per cell, %s KV: accuracy per (context, depth %%)\n\n", (int)trials,
               rkv_dtype_name(dt));
        printf("| method | budget | context |");
        for (int di = 0; di < nd; di++) printf(" %lld%% |", (long long)depths[di]);
        printf(" mean | vs full |\n|---|---:|---:|");
        for (int di = 0; di < nd; di++) printf("---:|");
        printf("---:|---:|\n");
        for (int k = -1; k < ns; k++) {
            const eval_set *e = k < 0 ? &full : &sets[k];
            for (int c = 0; c < nc; c++) {
                int sum = 0, sumf = 0, both = 0;
                if (k < 0) printf("| full | - | %lld |", (long long)ctxs[c]);
                else printf("| %s | %lld | %lld |", e->method, (long long)e->budget, (long long)ctxs[c]);
                for (int di = 0; di < nd; di++) {
                    printf(" %.2f |", (double)e->pk_ok[c][di] / (double)trials);
                    sum += e->pk_ok[c][di];
                    sumf += full.pk_ok[c][di];
                    both += e->pk_ok[c][di] < full.pk_ok[c][di] ? e->pk_ok[c][di] : full.pk_ok[c][di];
                }
                printf(" %.2f |", (double)sum / (double)(nd * trials));
                if (sumf > 0) printf(" %.2f |\n", (double)both / (double)sumf);
                else printf(" n/a (full fails) |\n");
            }
        }
        fprintf(stderr, "kvsim eval: %.1f s wall\n", wall);
    }
    rc = CLI_OK;
out:
    free(buf);
    free(tok);
    llm_model_free(m);
    return rc;
}
