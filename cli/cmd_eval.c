/* cmd_eval.c — `kvsim eval`: flags in, llm_eval_continuation or
 * llm_eval_passkey (llm/llm_eval.h, which says what is measured), a table or
 * JSON out. */
#include "cli.h"
#include "llm_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_GGUF KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"
#define MAX_SETS 64
#define MAX_PK LLM_EVAL_MAX_PK
#define EVAL_TEXT_MAX ((size_t)1 << 28) /* bytes of --text read at most (256 MiB) */
#define PK_MIN_CONTEXT 128   /* passkey: room for the intro, the key and one filler */
#define PK_EXTRA_TOKENS 265  /* passkey: prompt up to context + 256 tokens, + 9 decoded */

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

/* What one run measured, for the printers below. */
typedef struct {
    const char *path, *text;   /* model and text files */
    rkv_dtype dt;
    int64_t ntok, offset, S, N; /* text tokens, prompt start, prompt and continuation lengths */
    int64_t trials;
    const int64_t *ctxs, *depths; /* passkey contexts (tokens) and depths (percent) */
    int nc, nd;
    const llm_eval_set *sets, *full;
    int ns;
    double wall;               /* seconds */
} eval_out;

static void print_json(const eval_out *x, int passkey)
{
    const double full_ppl = llm_eval_perplexity(x->full);
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "model"); kv_json_str(&j, x->path);
    kv_json_key(&j, "kv_dtype"); kv_json_str(&j, rkv_dtype_name(x->dt));
    if (!passkey) {
        kv_json_key(&j, "text"); kv_json_str(&j, x->text);
        kv_json_key(&j, "text_tokens"); kv_json_int(&j, x->ntok);
        kv_json_key(&j, "offset"); kv_json_int(&j, x->offset);
        kv_json_key(&j, "context"); kv_json_int(&j, x->S);
        kv_json_key(&j, "new"); kv_json_int(&j, x->N);
        kv_json_key(&j, "full_perplexity"); kv_json_num(&j, full_ppl);
    }
    kv_json_key(&j, "runs");
    kv_json_arr_begin(&j);
    for (int k = -1; k < x->ns; k++) {
        const llm_eval_set *e = k < 0 ? x->full : &x->sets[k];
        kv_json_obj_begin(&j);
        kv_json_key(&j, "method"); kv_json_str(&j, e->method);
        kv_json_key(&j, "budget"); if (k < 0) kv_json_null(&j); else kv_json_int(&j, e->budget);
        if (!passkey) {
            kv_json_key(&j, "perplexity"); kv_json_num(&j, llm_eval_perplexity(e));
            kv_json_key(&j, "perplexity_ratio"); kv_json_num(&j, llm_eval_perplexity(e) / full_ppl);
            kv_json_key(&j, "greedy_agreement"); kv_json_num(&j, llm_eval_agreement(e));
        } else {
            kv_json_key(&j, "passkey");
            kv_json_arr_begin(&j);
            for (int c = 0; c < x->nc; c++)
                for (int di = 0; di < x->nd; di++) {
                    kv_json_obj_begin(&j);
                    kv_json_key(&j, "context"); kv_json_int(&j, x->ctxs[c]);
                    kv_json_key(&j, "depth"); kv_json_int(&j, x->depths[di]);
                    kv_json_key(&j, "accuracy"); kv_json_num(&j, (double)e->pk_ok[c][di] / (double)x->trials);
                    kv_json_obj_end(&j);
                }
            kv_json_arr_end(&j);
        }
        kv_json_obj_end(&j);
    }
    kv_json_arr_end(&j);
    kv_json_key(&j, "wall_s"); kv_json_num(&j, x->wall);
    kv_json_obj_end(&j);
    printf("\n");
}

static void print_continuation(const eval_out *x)
{
    const double full_ppl = llm_eval_perplexity(x->full);
    printf("%s: %lld tokens; prompt = tokens %lld..%lld, %lld continuation tokens teacher-forced, %s KV\n", x->text,
           (long long)x->ntok, (long long)x->offset, (long long)(x->offset + x->S - 1), (long long)x->N,
           rkv_dtype_name(x->dt));
    printf("| method | budget | perplexity | ratio to full | greedy agreement |\n|---|---:|---:|---:|---:|\n");
    for (int k = -1; k < x->ns; k++) {
        const llm_eval_set *e = k < 0 ? x->full : &x->sets[k];
        const double ppl = llm_eval_perplexity(e);
        if (k < 0) printf("| %s | - | %.3f | 1.000 | 1.000 |\n", e->method, ppl);
        else printf("| %s | %lld | %.3f | %.3f | %.3f |\n", e->method, (long long)e->budget, ppl, ppl / full_ppl,
                    llm_eval_agreement(e));
    }
    fprintf(stderr, "kvsim eval: %.1f s wall\n", x->wall);
}

static void print_passkey(const eval_out *x)
{
    printf("passkey retrieval, %d trial(s) per cell, %s KV: accuracy per (context, depth %%)\n\n", (int)x->trials,
           rkv_dtype_name(x->dt));
    printf("| method | budget | context |");
    for (int di = 0; di < x->nd; di++) printf(" %lld%% |", (long long)x->depths[di]);
    printf(" mean | vs full |\n|---|---:|---:|");
    for (int di = 0; di < x->nd; di++) printf("---:|");
    printf("---:|---:|\n");
    for (int k = -1; k < x->ns; k++) {
        const llm_eval_set *e = k < 0 ? x->full : &x->sets[k];
        for (int c = 0; c < x->nc; c++) {
            if (k < 0) printf("| %s | - | %lld |", e->method, (long long)x->ctxs[c]);
            else printf("| %s | %lld | %lld |", e->method, (long long)e->budget, (long long)x->ctxs[c]);
            for (int di = 0; di < x->nd; di++) printf(" %.2f |", (double)e->pk_ok[c][di] / (double)x->trials);
            llm_eval_pk_row row;
            llm_eval_passkey_row(e, x->full, c, x->nd, (int)x->trials, &row);
            printf(" %.2f |", row.mean);
            if (!row.full_fails) printf(" %.2f |\n", row.vs_full);
            else printf(" n/a (full fails) |\n");
        }
    }
    fprintf(stderr, "kvsim eval: %.1f s wall\n", x->wall);
}

/* --method LIST × --budget LIST into sets; the dense baseline is not a set
 * (it always runs, as the reference). Returns the count or -1 (error printed). */
static int parse_sets(const char *prog, const char *ml, const int64_t *budgets, int nb, llm_eval_set *sets)
{
    char names[16][32];
    const int nn = cli_split_names(ml, names[0], sizeof names[0], 16);
    if (nn < 1) { cli_error(prog, "--method: bad list '%s'", ml); return -1; }
    int ns = 0;
    for (int i = 0; i < nn; i++) {
        kv_err merr;
        const rkv_method_type *mt = rkv_method_get(names[i], &merr);
        if (!mt) { cli_error(prog, "--method: %s", merr.msg); return -1; }
        if (!mt->traits.dense) /* the dense baseline always runs, as the reference */
            for (int b = 0; b < nb; b++) {
                if (ns >= MAX_SETS) { cli_error(prog, "at most %d method x budget runs", MAX_SETS); return -1; }
                memset(&sets[ns], 0, sizeof sets[ns]);
                snprintf(sets[ns].method, sizeof sets[ns].method, "%.31s", names[i]);
                sets[ns].budget = budgets[b];
                ns++;
            }
    }
    return ns;
}

/* Every length up front, against the model's trained context (each passkey
 * prompt takes up to PK_EXTRA_TOKENS more than asked, the answer included);
 * -1 with the refusal printed. */
static int check_lengths(const char *prog, const llm_model *m, int passkey, int64_t S, int64_t N, const int64_t *ctxs,
                         int nc)
{
    if (!passkey && S + N > m->c.ctx_train) {
        cli_error(prog, "--context %lld + --new %lld = %lld tokens; the model's context_length is %d", (long long)S,
                  (long long)N, (long long)(S + N), m->c.ctx_train);
        return -1;
    }
    for (int c = 0; passkey && c < nc; c++)
        if (ctxs[c] + PK_EXTRA_TOKENS > m->c.ctx_train) {
            cli_error(prog, "--contexts: %lld is out of range; allowed [%d, %d] (the model's context_length %d "
                      "less %d tokens of passkey prompt and answer)", (long long)ctxs[c], PK_MIN_CONTEXT,
                      m->c.ctx_train - PK_EXTRA_TOKENS, m->c.ctx_train, PK_EXTRA_TOKENS);
            return -1;
        }
    return 0;
}

/* Continuation perplexity: the text's tokens (offset .. offset+S+N-1 must
 * exist), each set resolved, then llm_eval_continuation. A CLI status. */
static int run_continuation(const char *prog, const llm_model *m, const char *text, int64_t offset, int64_t S,
                            int64_t N, llm_eval_set *sets, int ns, llm_eval_set *full, rkv_dtype dt, int threads,
                            int64_t *ntok)
{
    kv_err err;
    char *buf = NULL;
    int32_t *tok = NULL;
    size_t tn;
    int rc = CLI_FAIL;
    if (kv_read_text(text, EVAL_TEXT_MAX, &buf, &tn, &err) != 0) { cli_error(prog, "--text: %s", err.msg); goto out; }
    tok = malloc((tn + 1) * sizeof *tok);
    if (!tok) goto out;
    *ntok = llm_tokenize(m->tok, buf, tn, tok, (int64_t)tn + 1);
    if (offset + S + N > *ntok) {
        cli_error(prog, "%s has %lld tokens; --offset %lld + --context %lld + --new %lld do not fit", text,
                  (long long)*ntok, (long long)offset, (long long)S, (long long)N);
        rc = CLI_USAGE;
        goto out;
    }
    for (int i = 0; i < ns; i++)
        if (llm_eval_resolve(&sets[i], m, S, N, dt, &err) != 0) { cli_error(prog, "%s", err.msg); rc = CLI_USAGE; goto out; }
    if (llm_eval_continuation(m, tok + offset, S, N, sets, ns, full, dt, threads, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        goto out;
    }
    rc = CLI_OK;
out:
    free(buf);
    free(tok);
    return rc;
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
    /* lengths are checked against the model's context_length once it is loaded */
    if (cli_opt_i64_in(&o, "context", 1024, 1, INT32_MAX, &S) || cli_opt_i64_in(&o, "new", 64, 1, INT32_MAX, &N) ||
        cli_opt_i64_in(&o, "offset", 0, 0, INT32_MAX, &offset) || cli_opt_i64_in(&o, "trials", 1, 1, 1000, &trials) ||
        cli_opt_i64_in(&o, "threads", 0, 0, 64, &threads))
        return CLI_USAGE;
    const int json = cli_opt_flag(&o, "json"), passkey = cli_opt_flag(&o, "passkey");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    int nb = cli_opt_i64_list(&o, "budget", "256", 1, INT32_MAX, 0, budgets, MAX_SETS);
    int nc = nb < 1 ? -1 : cli_opt_i64_list(&o, "contexts", "512,1024,2048", PK_MIN_CONTEXT, INT32_MAX, 0, ctxs,
                                                    MAX_PK);
    int nd = nc < 1 ? -1 : cli_opt_i64_list(&o, "depths", "0,25,50,75,100", 0, 100, 0, depths, MAX_PK);
    if (nd < 1 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    rkv_dtype dt;
    if (rkv_dtype_parse(dts, &dt) != 0 || dt > RKV_DTYPE_FP32) {
        cli_error(o.prog, "--dtype: expected bf16, fp16 or fp32");
        return CLI_USAGE;
    }
    static llm_eval_set sets[MAX_SETS];
    static llm_eval_set full;
    memset(&full, 0, sizeof full);
    snprintf(full.method, sizeof full.method, "%s", rkv_method_baseline()->name);
    int ns = parse_sets(o.prog, ml, budgets, nb, sets);
    if (ns < 0)
        return CLI_USAGE;
    kv_err err;
    llm_model *m = NULL;
    if (!passkey && cli_in_check(&o, "text", text, EVAL_TEXT_MAX) != 0)
        return CLI_USAGE;
    if (llm_model_load(path, &m, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (check_lengths(o.prog, m, passkey, S, N, ctxs, nc) != 0) {
        llm_model_free(m);
        return CLI_USAGE;
    }
    int rc = CLI_FAIL;
    int64_t ntok = 0;
    double t0 = kv_now_s();
    if (!passkey) {
        if ((rc = run_continuation(o.prog, m, text, offset, S, N, sets, ns, &full, dt, (int)threads, &ntok)) != CLI_OK)
            goto out;
        rc = CLI_FAIL;
    } else if (llm_eval_passkey(m, ctxs, nc, depths, nd, (int)trials, sets, ns, &full, dt, (int)threads, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        goto out;
    }
    const eval_out x = {path, text, dt, ntok, offset, S, N, trials, ctxs, depths, nc, nd, sets, &full, ns,
                        kv_now_s() - t0};
    if (json) print_json(&x, passkey);
    else if (!passkey) print_continuation(&x);
    else print_passkey(&x);
    rc = CLI_OK;
out:
    llm_model_free(m);
    return rc;
}
