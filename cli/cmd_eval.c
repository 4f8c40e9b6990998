/* cmd_eval.c — `kvsim eval`: flags in, llm_eval_continuation or
 * llm_eval_passkey (llm/llm_eval.h, which says what is measured), a table or
 * JSON out. */
#include "cli.h"
#include "llm_eval.h"
#include "rope_opts.h"

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
    printf("usage: kvsim eval [--gguf FILE] [--text LIST] [--offset N] --context S --new N\n"
           "                  --method LIST --budget LIST [--passkey | --positions] [--json]\n\n"
           "Teacher-forced continuation perplexity and greedy-token agreement versus full attention,\n"
           "every method's attention inside the model's decode loop; with --passkey, passkey retrieval\n"
           "at several contexts and depths instead; with --positions, dense perplexity by position\n"
           "over one pass of --context tokens (how quality holds up with context length).\n"
           "Every ratio, agreement, rate and perplexity comes with a percentile-bootstrap interval:\n"
           "texts drawn with replacement, then each drawn text's scored tokens (--positions: blocks\n"
           "of 128 tokens, then tokens); %d resamples, seeded, %.0f %% two-sided.\n\n"
           "  --gguf FILE          model (%s)\n"
           "  --text LIST          real texts, comma-separated (/usr/share/common-licenses/GPL-3)\n"
           "  --offset N           first token of the prompt in each text (0)\n"
           "  --context S          prompt tokens (1024)\n"
           "  --new N              continuation tokens scored (64)\n"
           "  --method LIST        methods (full,snapkv,rocketkv); `full` is always the reference\n"
           "  --budget LIST        budgets t (256)\n"
           "  --dtype D            KV storage bf16, fp16, fp32 (bf16)\n"
           "  --passkey            run passkey retrieval instead\n"
           "  --contexts LIST      passkey contexts in tokens (512,1024,2048)\n"
           "  --depths LIST        passkey depths in percent (0,25,50,75,100)\n"
           "  --trials N           keys per (context, depth) (1)\n"
           "  --positions          perplexity by position bucket instead (one text)\n"
           "  --buckets LIST       --positions: bucket ends in tokens (1024, doubling up to --context)\n"
           "  --nll-out FILE       --positions: also write every token's negative log-likelihood (nats),\n"
           "                       little-endian float64, --context - 1 values (value i predicts token i+1)\n"
           "  --pairs              also the paired perplexity ratio of every two compressed runs, with\n"
           "                       its interval and whether it excludes 1; with --passkey, the paired\n"
           "                       difference of their success rates per context (same prompts)\n"
           "  --resamples B        bootstrap resamples, [100, 100000] (%d)\n"
           "  --json               one JSON object\n"
           "  --threads N          BLAS threads (number of CPUs)\n"
           "  --beyond-context     allow a prompt longer than the model is meant for (to measure\n"
           "                       unscaled RoPE past its trained context)\n",
           KV_BOOT_RESAMPLES, 100.0 * KV_BOOT_LEVEL, DEFAULT_GGUF, KV_BOOT_RESAMPLES);
    cli_rope_help();
}

/* What one run measured, for the printers below. */
typedef struct {
    const char *path;          /* model file */
    char (*texts)[512];        /* (ntext) text files */
    int ntext;
    const int64_t *ntok;       /* (ntext) tokens of each text */
    rkv_dtype dt;
    const llm_rope *rope;      /* RoPE scaling in use */
    kv_boot_cfg boot;
    int64_t offset, S, N;      /* prompt start, prompt and continuation lengths */
    int64_t trials;
    const int64_t *ctxs, *depths; /* passkey contexts (tokens) and depths (percent) */
    int nc, nd;
    const llm_eval_set *sets, *full;
    int ns;
    double wall;               /* seconds */
    int pairs;                 /* --pairs: paired ratios (passkey: rate differences) between the compressed methods */
} eval_out;

static void json_rope(kv_json *j, const eval_out *x)
{
    kv_json_key(j, "rope_scaling");
    kv_json_obj_begin(j);
    kv_json_key(j, "type"); kv_json_str(j, llm_rope_type_name(x->rope->type));
    kv_json_key(j, "factor"); kv_json_num(j, x->rope->factor);
    kv_json_key(j, "original_context"); kv_json_int(j, x->rope->orig_ctx);
    kv_json_obj_end(j);
    kv_json_key(j, "bootstrap");
    kv_json_obj_begin(j);
    kv_json_key(j, "resamples"); kv_json_int(j, x->boot.resamples);
    kv_json_key(j, "level"); kv_json_num(j, x->boot.level);
    char seed[24];
    snprintf(seed, sizeof seed, "0x%016llx", (unsigned long long)x->boot.seed);
    kv_json_key(j, "seed"); kv_json_str(j, seed);
    kv_json_obj_end(j);
}

static void json_ci(kv_json *j, const char *key, double lo, double hi)
{
    kv_json_key(j, key);
    kv_json_arr_begin(j);
    kv_json_num(j, lo);
    kv_json_num(j, hi);
    kv_json_arr_end(j);
}

static void json_run(kv_json *j, const eval_out *x, const llm_eval_set *e, int is_full, int passkey)
{
    const double full_ppl = llm_eval_perplexity(x->full);
    double lo, hi;
    kv_json_obj_begin(j);
    kv_json_key(j, "method"); kv_json_str(j, e->method);
    kv_json_key(j, "budget"); if (is_full) kv_json_null(j); else kv_json_int(j, e->budget);
    if (!passkey) {
        kv_json_key(j, "tokens_scored"); kv_json_int(j, e->n);
        kv_json_key(j, "perplexity"); kv_json_num(j, llm_eval_perplexity(e));
        kv_json_key(j, "perplexity_ratio"); kv_json_num(j, llm_eval_perplexity(e) / full_ppl);
        if (!is_full && llm_eval_ratio_ci(e, x->full, &x->boot, &lo, &hi) == 0) json_ci(j, "perplexity_ratio_ci", lo, hi);
        kv_json_key(j, "greedy_agreement"); kv_json_num(j, llm_eval_agreement(e));
        if (!is_full && llm_eval_agreement_ci(e, &x->boot, &lo, &hi) == 0) json_ci(j, "greedy_agreement_ci", lo, hi);
    } else {
        kv_json_key(j, "passkey");
        kv_json_arr_begin(j);
        for (int c = 0; c < x->nc; c++)
            for (int di = 0; di < x->nd; di++) {
                kv_json_obj_begin(j);
                kv_json_key(j, "context"); kv_json_int(j, x->ctxs[c]);
                kv_json_key(j, "depth"); kv_json_int(j, x->depths[di]);
                kv_json_key(j, "accuracy"); kv_json_num(j, (double)e->pk_ok[c][di] / (double)x->trials);
                kv_json_obj_end(j);
            }
        kv_json_arr_end(j);
        kv_json_key(j, "passkey_rate");
        kv_json_arr_begin(j);
        for (int c = 0; c < x->nc; c++) {
            llm_eval_pk_row row;
            llm_eval_passkey_row(e, x->full, c, x->nd, (int)x->trials, &row);
            kv_json_obj_begin(j);
            kv_json_key(j, "context"); kv_json_int(j, x->ctxs[c]);
            kv_json_key(j, "rate"); kv_json_num(j, row.mean);
            if (llm_eval_passkey_ci(e, c, x->nd, (int)x->trials, &x->boot, &lo, &hi) == 0) json_ci(j, "rate_ci", lo, hi);
            kv_json_obj_end(j);
        }
        kv_json_arr_end(j);
    }
    kv_json_obj_end(j);
}

/* --pairs: for every two compressed runs a < b (in --method × --budget
 * order), the paired perplexity ratio a / b on the same scored tokens and
 * its interval (the bootstrap of the ratio to full, with b as the
 * reference); "separated" when the interval excludes 1. Narrower than
 * comparing the two intervals against full: the texts' own difficulty
 * cancels in the pair. */
static void print_pairs(const eval_out *x, kv_json *j)
{
    if (j) {
        kv_json_key(j, "pairs");
        kv_json_arr_begin(j);
    } else {
        printf("\nPaired perplexity ratios (row a over b on the same tokens):\n\n"
               "| a | b | ratio a/b | CI | separated |\n|---|---|---:|---:|---|\n");
    }
    for (int a = 0; a < x->ns; a++)
        for (int b = a + 1; b < x->ns; b++) {
            const llm_eval_set *ea = &x->sets[a], *eb = &x->sets[b];
            const double r = llm_eval_perplexity(ea) / llm_eval_perplexity(eb);
            double lo, hi;
            if (llm_eval_ratio_ci(ea, eb, &x->boot, &lo, &hi) != 0) lo = hi = NAN;
            const int sep = lo > 1.0 || hi < 1.0;
            if (j) {
                kv_json_obj_begin(j);
                kv_json_key(j, "a"); kv_json_str(j, ea->method);
                kv_json_key(j, "a_budget"); kv_json_int(j, ea->budget);
                kv_json_key(j, "b"); kv_json_str(j, eb->method);
                kv_json_key(j, "b_budget"); kv_json_int(j, eb->budget);
                kv_json_key(j, "perplexity_ratio"); kv_json_num(j, r);
                json_ci(j, "perplexity_ratio_ci", lo, hi);
                kv_json_key(j, "separated"); kv_json_bool(j, sep);
                kv_json_obj_end(j);
            } else {
                printf("| %s t=%lld | %s t=%lld | %.3f | %.3f–%.3f | %s |\n", ea->method, (long long)ea->budget,
                       eb->method, (long long)eb->budget, r, lo, hi, sep ? "yes" : "no");
            }
        }
    if (j) kv_json_arr_end(j);
}

/* --pairs with --passkey: for every context and every two compressed runs
 * a < b, rate_a − rate_b over the same nd × trials prompts and its paired
 * interval (llm_eval_passkey_pair_ci); "separated" when it excludes 0. */
static void print_pk_pairs(const eval_out *x, kv_json *j)
{
    const double n = (double)x->nd * (double)x->trials;
    if (j) {
        kv_json_key(j, "pairs");
        kv_json_arr_begin(j);
    } else {
        printf("\nPaired success-rate differences (row a minus b on the same prompts):\n\n"
               "| context | a | b | rate a − b | CI | separated |\n|---:|---|---|---:|---:|---|\n");
    }
    for (int c = 0; c < x->nc; c++)
        for (int a = 0; a < x->ns; a++)
            for (int b = a + 1; b < x->ns; b++) {
                const llm_eval_set *ea = &x->sets[a], *eb = &x->sets[b];
                double ka = 0.0, kb = 0.0, lo, hi;
                for (int di = 0; di < x->nd; di++) {
                    ka += ea->pk_ok[c][di];
                    kb += eb->pk_ok[c][di];
                }
                if (llm_eval_passkey_pair_ci(ea, eb, c, x->nd, (int)x->trials, &x->boot, &lo, &hi) != 0) lo = hi = NAN;
                const double d = (ka - kb) / n;
                const int sep = lo > 0.0 || hi < 0.0;
                if (j) {
                    kv_json_obj_begin(j);
                    kv_json_key(j, "context"); kv_json_int(j, x->ctxs[c]);
                    kv_json_key(j, "a"); kv_json_str(j, ea->method);
                    kv_json_key(j, "a_budget"); kv_json_int(j, ea->budget);
                    kv_json_key(j, "b"); kv_json_str(j, eb->method);
                    kv_json_key(j, "b_budget"); kv_json_int(j, eb->budget);
                    kv_json_key(j, "rate_difference"); kv_json_num(j, d);
                    json_ci(j, "rate_difference_ci", lo, hi);
                    kv_json_key(j, "separated"); kv_json_bool(j, sep);
                    kv_json_obj_end(j);
                } else {
                    printf("| %lld | %s t=%lld | %s t=%lld | %+.2f | %+.2f – %+.2f | %s |\n", (long long)x->ctxs[c],
                           ea->method, (long long)ea->budget, eb->method, (long long)eb->budget, d, lo, hi,
                           sep ? "yes" : "no");
                }
            }
    if (j) kv_json_arr_end(j);
}

static void print_json(const eval_out *x, int passkey)
{
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "model"); kv_json_str(&j, x->path);
    kv_json_key(&j, "kv_dtype"); kv_json_str(&j, rkv_dtype_name(x->dt));
    json_rope(&j, x);
    if (!passkey) {
        kv_json_key(&j, "texts");
        kv_json_arr_begin(&j);
        for (int t = 0; t < x->ntext; t++) {
            kv_json_obj_begin(&j);
            kv_json_key(&j, "path"); kv_json_str(&j, x->texts[t]);
            kv_json_key(&j, "tokens"); kv_json_int(&j, x->ntok[t]);
            kv_json_obj_end(&j);
        }
        kv_json_arr_end(&j);
        kv_json_key(&j, "offset"); kv_json_int(&j, x->offset);
        kv_json_key(&j, "context"); kv_json_int(&j, x->S);
        kv_json_key(&j, "new"); kv_json_int(&j, x->N);
        kv_json_key(&j, "full_perplexity"); kv_json_num(&j, llm_eval_perplexity(x->full));
    }
    kv_json_key(&j, "runs");
    kv_json_arr_begin(&j);
    for (int k = -1; k < x->ns; k++) json_run(&j, x, k < 0 ? x->full : &x->sets[k], k < 0, passkey);
    kv_json_arr_end(&j);
    if (x->pairs && passkey) print_pk_pairs(x, &j);
    else if (x->pairs) print_pairs(x, &j);
    kv_json_key(&j, "wall_s"); kv_json_num(&j, x->wall);
    kv_json_obj_end(&j);
    printf("\n");
}

static void print_boot(const eval_out *x)
{
    printf("intervals: %.0f %% percentile bootstrap, %d resamples, seed 0x%016llx\n", 100.0 * x->boot.level,
           x->boot.resamples, (unsigned long long)x->boot.seed);
}

static void print_continuation(const eval_out *x)
{
    const double full_ppl = llm_eval_perplexity(x->full);
    for (int t = 0; t < x->ntext; t++)
        printf("%s: %lld tokens; prompt = tokens %lld..%lld, %lld continuation tokens teacher-forced\n", x->texts[t],
               (long long)x->ntok[t], (long long)x->offset, (long long)(x->offset + x->S - 1), (long long)x->N);
    printf("%s KV, RoPE %s x%g; %lld tokens scored per row over %d text(s); ", rkv_dtype_name(x->dt),
           llm_rope_type_name(x->rope->type), x->rope->factor, (long long)x->full->n, x->ntext);
    print_boot(x);
    printf("\n| method | budget | perplexity | ratio to full | ratio CI | greedy agreement | agreement CI |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int k = -1; k < x->ns; k++) {
        const llm_eval_set *e = k < 0 ? x->full : &x->sets[k];
        const double ppl = llm_eval_perplexity(e);
        double rl, rh, al, ah;
        if (k < 0) { printf("| %s | - | %.3f | 1.000 | - | 1.000 | - |\n", e->method, ppl); continue; }
        if (llm_eval_ratio_ci(e, x->full, &x->boot, &rl, &rh) != 0) rl = rh = NAN;
        if (llm_eval_agreement_ci(e, &x->boot, &al, &ah) != 0) al = ah = NAN;
        printf("| %s | %lld | %.3f | %.3f | %.3f–%.3f | %.3f | %.3f–%.3f |\n", e->method, (long long)e->budget, ppl,
               ppl / full_ppl, rl, rh, llm_eval_agreement(e), al, ah);
    }
    if (x->pairs) print_pairs(x, NULL);
    fprintf(stderr, "kvsim eval: %.1f s wall\n", x->wall);
}

static void print_passkey(const eval_out *x)
{
    printf("passkey retrieval, %d trial(s) per cell, %s KV, RoPE %s x%g: accuracy per (context, depth %%); ",
           (int)x->trials, rkv_dtype_name(x->dt), llm_rope_type_name(x->rope->type), x->rope->factor);
    print_boot(x);
    printf("\n| method | budget | context |");
    for (int di = 0; di < x->nd; di++) printf(" %lld%% |", (long long)x->depths[di]);
    printf(" mean | mean CI | vs full |\n|---|---:|---:|");
    for (int di = 0; di < x->nd; di++) printf("---:|");
    printf("---:|---:|---:|\n");
    for (int k = -1; k < x->ns; k++) {
        const llm_eval_set *e = k < 0 ? x->full : &x->sets[k];
        for (int c = 0; c < x->nc; c++) {
            if (k < 0) printf("| %s | - | %lld |", e->method, (long long)x->ctxs[c]);
            else printf("| %s | %lld | %lld |", e->method, (long long)e->budget, (long long)x->ctxs[c]);
            for (int di = 0; di < x->nd; di++) printf(" %.2f |", (double)e->pk_ok[c][di] / (double)x->trials);
            llm_eval_pk_row row;
            double lo, hi;
            llm_eval_passkey_row(e, x->full, c, x->nd, (int)x->trials, &row);
            if (llm_eval_passkey_ci(e, c, x->nd, (int)x->trials, &x->boot, &lo, &hi) != 0) lo = hi = NAN;
            printf(" %.2f | %.2f–%.2f |", row.mean, lo, hi);
            if (!row.full_fails) printf(" %.2f |\n", row.vs_full);
            else printf(" n/a (full fails) |\n");
        }
    }
    if (x->pairs) print_pk_pairs(x, NULL);
    fprintf(stderr, "kvsim eval: %.1f s wall\n", x->wall);
}

/* --positions: perplexity of the tokens whose position falls in each bucket
 * [previous end, end), over one dense pass; intervals by the grouped
 * bootstrap with 128-token blocks as groups (neighbouring tokens are not
 * independent). */
static int print_positions(const eval_out *x, const double *nll, int64_t n, const int64_t *ends, int nb, int json)
{
    kv_json j;
    if (json) {
        kv_json_init(&j, stdout);
        kv_json_obj_begin(&j);
        kv_json_key(&j, "model"); kv_json_str(&j, x->path);
        kv_json_key(&j, "text"); kv_json_str(&j, x->texts[0]);
        kv_json_key(&j, "offset"); kv_json_int(&j, x->offset);
        kv_json_key(&j, "context"); kv_json_int(&j, x->S);
        json_rope(&j, x);
        kv_json_key(&j, "buckets");
        kv_json_arr_begin(&j);
    } else {
        printf("%s: tokens %lld..%lld in one dense pass (fp32 KV), RoPE %s x%g of %lld; perplexity of the tokens\n"
               "predicted at each position range; ", x->texts[0], (long long)x->offset,
               (long long)(x->offset + n - 1), llm_rope_type_name(x->rope->type), x->rope->factor,
               (long long)x->rope->orig_ctx);
        print_boot(x);
        printf("\n| positions | tokens | perplexity | CI |\n|---|---:|---:|---:|\n");
    }
    int64_t a = 0;
    for (int b = 0; b < nb; b++) {
        const int64_t e = ends[b] - 1 < n - 1 ? ends[b] - 1 : n - 1; /* nll[i] predicts token i+1 */
        const int64_t cnt = e - a;
        if (cnt < 1) break;
        int64_t goff[LLM_EVAL_MAX_TEXTS * 64 + 1];
        int ng = 0;
        for (int64_t p = 0; p < cnt && ng < LLM_EVAL_MAX_TEXTS * 64; p += 128) goff[ng++] = p;
        goff[ng] = cnt;
        double sum = 0.0, lo, hi;
        for (int64_t i = a; i < e; i++) sum += nll[i];
        if (kv_boot_mean(nll + a, NULL, goff, ng, &x->boot, &lo, &hi) != 0) return -1;
        if (json) {
            kv_json_obj_begin(&j);
            kv_json_key(&j, "from"); kv_json_int(&j, a + 1);
            kv_json_key(&j, "to"); kv_json_int(&j, e);
            kv_json_key(&j, "tokens"); kv_json_int(&j, cnt);
            kv_json_key(&j, "perplexity"); kv_json_num(&j, exp(sum / (double)cnt));
            json_ci(&j, "perplexity_ci", exp(lo), exp(hi));
            kv_json_obj_end(&j);
        } else {
            printf("| %lld–%lld | %lld | %.3f | %.3f–%.3f |\n", (long long)(a + 1), (long long)e, (long long)cnt,
                   exp(sum / (double)cnt), exp(lo), exp(hi));
        }
        a = e;
    }
    if (json) {
        kv_json_arr_end(&j);
        kv_json_key(&j, "wall_s"); kv_json_num(&j, x->wall);
        kv_json_obj_end(&j);
        printf("\n");
    } else {
        fprintf(stderr, "kvsim eval: %.1f s wall\n", x->wall);
    }
    return 0;
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

/* Reads and tokenizes one text; returns the token count or -1 (error printed). */
static int64_t load_text(const char *prog, const llm_model *m, const char *path, int32_t **tok)
{
    char *buf = NULL;
    size_t tn;
    kv_err err;
    *tok = NULL;
    if (kv_read_text(path, EVAL_TEXT_MAX, &buf, &tn, &err) != 0) {
        cli_error(prog, "--text: %s", err.msg);
        return -1;
    }
    *tok = malloc((tn + 1) * sizeof **tok);
    int64_t n = *tok ? llm_tokenize(m->tok, buf, tn, *tok, (int64_t)tn + 1) : -1;
    free(buf);
    if (n < 0) cli_error(prog, "--text %s: out of memory or not tokenizable", path);
    return n;
}

/* Per-token score arrays for the bootstrap: cap tokens per set. */
static int alloc_scores(llm_eval_set *sets, int ns, llm_eval_set *full, int64_t cap)
{
    for (int k = -1; k < ns; k++) {
        llm_eval_set *e = k < 0 ? full : &sets[k];
        e->tok_nll = malloc((size_t)cap * sizeof *e->tok_nll);
        e->tok_agree = malloc((size_t)cap * sizeof *e->tok_agree);
        e->cap = cap;
        if (!e->tok_nll || !e->tok_agree) return -1;
    }
    return 0;
}

static void free_scores(llm_eval_set *sets, int ns, llm_eval_set *full)
{
    for (int k = -1; k < ns; k++) {
        llm_eval_set *e = k < 0 ? full : &sets[k];
        free(e->tok_nll);
        free(e->tok_agree);
        free(e->pk_out);
        e->tok_nll = e->tok_agree = NULL;
        e->pk_out = NULL;
    }
}

/* --nll-out: the n - 1 per-token values as little-endian float64 (bytes
 * written one by one, so the file is the same on any host), atomically. */
static int write_nll(const char *prog, const char *path, const double *nll, int64_t n)
{
    kv_afile f;
    kv_err err;
    if (kv_afile_open(&f, path, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        return -1;
    }
    for (int64_t i = 0; i + 1 < n; i++) {
        uint64_t u;
        unsigned char b[8];
        memcpy(&u, &nll[i], sizeof u);
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(u >> (8 * k));
        fwrite(b, 1, sizeof b, f.fp);
    }
    if (kv_afile_commit(&f, &err) != 0) {
        cli_error(prog, "--nll-out: %s", err.msg);
        return -1;
    }
    return 0;
}

/* --positions over the first text; the bucket ends default to 1024, 2048, … up to S. */
static int run_positions(const char *prog, const llm_model *m, eval_out *x, const int32_t *tok, const int64_t *ends,
                         int nb, int threads, int json, const char *nll_out)
{
    int64_t def[40];
    if (nb == 0) {
        for (int64_t e = 1024; nb < 39; e *= 2) {
            def[nb++] = e < x->S ? e : x->S;
            if (e >= x->S) break;
        }
        ends = def;
    }
    double *nll = malloc((size_t)x->S * sizeof *nll);
    kv_err err;
    if (!nll) return CLI_FAIL;
    const double t0 = kv_now_s();
    if (llm_eval_positions(m, tok + x->offset, x->S, nll, threads, &err) != 0) {
        cli_error(prog, "%s", err.msg);
        free(nll);
        return CLI_FAIL;
    }
    x->wall = kv_now_s() - t0;
    if (nll_out && write_nll(prog, nll_out, nll, x->S) != 0) {
        free(nll);
        return CLI_FAIL;
    }
    const int rc = print_positions(x, nll, x->S, ends, nb, json);
    free(nll);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

/* Long by design: flags, then the model and its limits, then one of the three runs. */
int cmd_eval(int argc, char **argv)
{
    static const char *const flags[] = {"help", "json", "passkey", "positions", "beyond-context", "pairs", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim eval", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *path = cli_opt_str(&o, "gguf", DEFAULT_GGUF), *tl = cli_opt_str(&o, "text", "/usr/share/common-licenses/GPL-3"),
               *ml = cli_opt_str(&o, "method", "full,snapkv,rocketkv"), *dts = cli_opt_str(&o, "dtype", "bf16"),
               *nll_out = cli_opt_str(&o, "nll-out", NULL);
    int64_t S, N, offset, trials, threads, resamples, budgets[MAX_SETS], ctxs[MAX_PK], depths[MAX_PK], ends[40];
    /* lengths are checked against the model's context once it is loaded */
    if (cli_opt_i64_in(&o, "context", 1024, 1, INT32_MAX, &S) || cli_opt_i64_in(&o, "new", 64, 1, INT32_MAX, &N) ||
        cli_opt_i64_in(&o, "offset", 0, 0, INT32_MAX, &offset) || cli_opt_i64_in(&o, "trials", 1, 1, 1000, &trials) ||
        cli_opt_i64_in(&o, "threads", 0, 0, 64, &threads) ||
        cli_opt_i64_in(&o, "resamples", KV_BOOT_RESAMPLES, 100, 100000, &resamples))
        return CLI_USAGE;
    const int json = cli_opt_flag(&o, "json"), passkey = cli_opt_flag(&o, "passkey"),
              positions = cli_opt_flag(&o, "positions"), beyond = cli_opt_flag(&o, "beyond-context"),
              pairs = cli_opt_flag(&o, "pairs");
    llm_rope_override rov;
    if (cli_rope_opts(&o, &rov) != 0)
        return CLI_USAGE;
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    int nb = cli_opt_i64_list(&o, "budget", "256", 1, INT32_MAX, 0, budgets, MAX_SETS);
    int nc = nb < 1 ? -1 : cli_opt_i64_list(&o, "contexts", "512,1024,2048", PK_MIN_CONTEXT, INT32_MAX, 0, ctxs,
                                                    MAX_PK);
    int nd = nc < 1 ? -1 : cli_opt_i64_list(&o, "depths", "0,25,50,75,100", 0, 100, 0, depths, MAX_PK);
    int nbk = nd < 1 ? -1 : cli_opt_i64_list(&o, "buckets", NULL, 2, INT32_MAX, 0, ends, 40);
    if (nbk < 0 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (passkey && positions) {
        cli_error(o.prog, "--passkey and --positions: choose one");
        return CLI_USAGE;
    }
    if (pairs && positions) {
        cli_error(o.prog, "--pairs: only for the continuation or --passkey (not with --positions)");
        return CLI_USAGE;
    }
    if (nll_out && !positions) {
        cli_error(o.prog, "--nll-out: only with --positions");
        return CLI_USAGE;
    }
    if (nll_out && cli_out_check(&o, "nll-out", nll_out, 0) != 0)
        return CLI_USAGE;
    for (int b = 1; b < nbk; b++)
        if (ends[b] <= ends[b - 1]) {
            cli_error(o.prog, "--buckets: %lld after %lld: expected increasing ends", (long long)ends[b],
                      (long long)ends[b - 1]);
            return CLI_USAGE;
        }
    static char texts[LLM_EVAL_MAX_TEXTS][512];
    const int ntext = cli_split_names(tl, &texts[0][0], sizeof texts[0], LLM_EVAL_MAX_TEXTS);
    if (ntext < 1 || (positions && ntext != 1)) {
        cli_error(o.prog, "--text: '%s': expected %s", tl,
                  positions ? "one file" : "a comma list of up to 16 files, no empty item");
        return CLI_USAGE;
    }
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
    for (int t = 0; !passkey && t < ntext; t++)
        if (cli_in_check(&o, "text", texts[t], EVAL_TEXT_MAX) != 0)
            return CLI_USAGE;
    if (llm_model_load(path, &m, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (llm_model_set_rope(m, &rov, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        llm_model_free(m);
        return CLI_USAGE;
    }
    /* every length up front, against the model's context: context_length, or
     * what RoPE scaling extends it to (each passkey prompt takes up to 256
     * tokens more than asked, plus 9 generated) */
    const int64_t mctx = beyond ? INT32_MAX : llm_model_max_context(m);
    const int64_t need = positions ? S : S + N;
    if (!passkey && need > mctx) {
        cli_error(o.prog, "--context %lld%s = %lld tokens; the model's context is %lld (context_length, or RoPE "
                  "scaling's; --beyond-context to go past it)", (long long)S, positions ? "" : " + --new",
                  (long long)need, (long long)mctx);
        llm_model_free(m);
        return CLI_USAGE;
    }
    for (int c = 0; passkey && c < nc; c++)
        if (ctxs[c] + PK_EXTRA_TOKENS > mctx) {
            cli_error(o.prog, "--contexts: %lld is out of range; allowed [%d, %lld] (the model's context %lld "
                      "less %d tokens of passkey prompt and answer)", (long long)ctxs[c], PK_MIN_CONTEXT,
                      (long long)(mctx - PK_EXTRA_TOKENS), (long long)mctx, PK_EXTRA_TOKENS);
            llm_model_free(m);
            return CLI_USAGE;
        }
    int rc = CLI_FAIL;
    int32_t *tok = NULL;
    int64_t ntok[LLM_EVAL_MAX_TEXTS] = {0};
    double t0 = kv_now_s();
    eval_out x = {path, texts, ntext, ntok, dt, &m->c.rope,
                  {(int)resamples, KV_BOOT_LEVEL, KV_BOOT_SEED}, offset, S, N, trials, ctxs, depths, nc, nd,
                  sets, &full, ns, 0.0, pairs};
    if (!passkey && alloc_scores(sets, ns, &full, (int64_t)ntext * N) != 0) { cli_error(o.prog, "out of memory"); goto out; }
    for (int i = 0; !passkey && !positions && i < ns; i++)
        if (llm_eval_resolve(&sets[i], m, S, N, dt, &err) != 0) { cli_error(o.prog, "%s", err.msg); rc = CLI_USAGE; goto out; }
    for (int t = 0; !passkey && t < ntext; t++) {
        free(tok);
        if ((ntok[t] = load_text(o.prog, m, texts[t], &tok)) < 0) goto out;
        if (offset + need > ntok[t]) {
            cli_error(o.prog, "%s has %lld tokens; --offset %lld + %lld tokens do not fit", texts[t],
                      (long long)ntok[t], (long long)offset, (long long)need);
            rc = CLI_USAGE;
            goto out;
        }
        if (positions) {
            rc = run_positions(o.prog, m, &x, tok, ends, nbk, (int)threads, json, nll_out);
            goto out;
        }
        if (llm_eval_continuation(m, tok + offset, S, N, sets, ns, &full, dt, (int)threads, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            goto out;
        }
    }
    for (int k = -1; passkey && pairs && k < ns; k++) {
        llm_eval_set *e = k < 0 ? &full : &sets[k];
        if (!(e->pk_out = calloc((size_t)nc * (size_t)nd * (size_t)trials, 1))) { cli_error(o.prog, "out of memory"); goto out; }
    }
    if (passkey && llm_eval_passkey(m, ctxs, nc, depths, nd, (int)trials, sets, ns, &full, dt, (int)threads, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        goto out;
    }
    x.wall = kv_now_s() - t0;
    if (json) print_json(&x, passkey);
    else if (!passkey) print_continuation(&x);
    else print_passkey(&x);
    rc = CLI_OK;
out:
    free(tok);
    free_scores(sets, ns, &full);
    llm_model_free(m);
    return rc;
}
