/* llm_eval.c — continuation perplexity, greedy agreement and passkey
 * retrieval with a method inside the decode loop (llm_eval.h). */
#include "llm_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llm_eval_score(llm_eval_set *e, const float *logits, int V, int32_t target, int32_t *ref, int is_ref)
{
    const double nl = -llm_logprob(logits, V, target);
    const int32_t a = llm_argmax(logits, V);
    if (is_ref) *ref = a;
    const int ok = is_ref || a == *ref;
    if (e->tok_nll && e->n < e->cap) {
        e->tok_nll[e->n] = nl;
        e->tok_agree[e->n] = ok;
    }
    e->nll += nl;
    e->agree += ok;
    e->n++;
}

double llm_eval_perplexity(const llm_eval_set *e) { return e->n > 0 ? exp(e->nll / (double)e->n) : NAN; }
double llm_eval_agreement(const llm_eval_set *e) { return e->n > 0 ? (double)e->agree / (double)e->n : NAN; }

int llm_eval_passkey_key(int64_t context, int64_t depth, int trial)
{
    /* three primes spread the cells over 90000 keys */
    return 10000 + (int)((context * 7919 + depth * 104729 + (int64_t)trial * 1299709) % 90000);
}

int llm_eval_passkey_found(const char *generated, int key)
{
    char want[16];
    snprintf(want, sizeof want, "%05d", key);
    return strstr(generated, want) != NULL;
}

void llm_eval_passkey_row(const llm_eval_set *e, const llm_eval_set *full, int c, int nd, int trials,
                          llm_eval_pk_row *row)
{
    int sum = 0, sumf = 0, both = 0;
    for (int di = 0; di < nd; di++) {
        const int a = e->pk_ok[c][di], f = full->pk_ok[c][di];
        sum += a;
        sumf += f;
        both += a < f ? a : f;
    }
    row->mean = (double)sum / (double)(nd * trials);
    row->full_fails = sumf == 0;
    row->vs_full = sumf > 0 ? (double)both / (double)sumf : 0.0;
}

int llm_eval_resolve(llm_eval_set *e, const llm_model *m, int64_t S, int64_t N, rkv_dtype dt, kv_err *err)
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

static int64_t max_window(const llm_eval_set *sets, int ns)
{
    int64_t w = 1;
    for (int i = 0; i < ns; i++)
        if (sets[i].p.window_size > w) w = sets[i].p.window_size;
    return w;
}

/* ---- continuation perplexity ---- */
#define FORCE_ROWS 128 /* teacher-forced tokens per llm_decode_forced call */

/* Scores the N continuation tokens of one set: l0 predicts tok[S]; then
 * teacher-forced decode steps in batches (lg: FORCE_ROWS × V scratch). */
static int score_set(const llm_model *m, llm_session *s, const float *l0, float *lg, const int32_t *tok, int64_t S,
                     int64_t N, llm_eval_set *e, int32_t *ref, int is_ref, kv_err *err)
{
    const int V = m->c.vocab;
    llm_eval_score(e, l0, V, tok[S], &ref[0], is_ref);
    for (int64_t a = 0; a + 1 < N; a += FORCE_ROWS) {
        const int64_t b = N - 1 - a < FORCE_ROWS ? N - 1 - a : FORCE_ROWS;
        if (llm_decode_forced(s, tok + S + a, b, lg, err) != 0) return -1;
        for (int64_t r = 0; r < b; r++)
            llm_eval_score(e, lg + (size_t)r * (size_t)V, V, tok[S + a + r + 1], &ref[a + r + 1], is_ref);
    }
    return 0;
}

int llm_eval_continuation(const llm_model *m, const int32_t *tok, int64_t S, int64_t N, llm_eval_set *sets, int ns,
                            llm_eval_set *full, rkv_dtype dt, int threads, kv_err *err)
{
    const int V = m->c.vocab;
    const int64_t T = S + N + 1;
    float *l0 = malloc((size_t)V * 4), *lg = malloc((size_t)FORCE_ROWS * (size_t)V * 4);
    int32_t *ref = malloc((size_t)N * sizeof *ref);
    llm_session *sd = NULL;
    int rc = -1;
    if (!l0 || !lg || !ref) { kv_errf(err, "out of memory"); goto out; }
    if (full->ntext >= LLM_EVAL_MAX_TEXTS) { kv_errf(err, "at most %d texts", LLM_EVAL_MAX_TEXTS); goto out; }
    llm_session_cfg cfg = {.max_tokens = T, .kv_dtype = dt, .threads = threads, .keep_queries = max_window(sets, ns)};
    if (llm_session_new(m, &cfg, &sd, err) != 0 || llm_prefill(sd, tok, S, l0, 0, 0, err) != 0) goto out;
    for (int k = -1; k < ns; k++) {
        llm_eval_set *e = k < 0 ? full : &sets[k];
        llm_session *s = fork_from(m, sd, k < 0 ? NULL : &e->p, T, dt, threads, err);
        if (!s) goto out;
        e->goff[e->ntext] = e->n;
        const int bad = score_set(m, s, l0, lg, tok, S, N, e, ref, k < 0, err);
        llm_session_free(s);
        if (bad) goto out;
        e->goff[++e->ntext] = e->n;
        fprintf(stderr, "\r  %d/%d runs", k + 2, ns + 1);
    }
    fprintf(stderr, "\n");
    rc = 0;
out:
    llm_session_free(sd);
    free(l0); free(lg); free(ref);
    return rc;
}

int llm_eval_positions(const llm_model *m, const int32_t *tok, int64_t n, double *nll, int threads, kv_err *err)
{
    const int V = m->c.vocab;
    float *lg = malloc((size_t)FORCE_ROWS * (size_t)V * 4);
    llm_session *s = NULL;
    int rc = -1;
    llm_session_cfg cfg = {.max_tokens = n, .kv_dtype = RKV_DTYPE_FP32, .threads = threads};
    if (!lg) { kv_errf(err, "out of memory"); goto out; }
    if (llm_session_new(m, &cfg, &s, err) != 0) goto out;
    for (int64_t a = 0; a < n; a += FORCE_ROWS) {
        const int64_t b = n - a < FORCE_ROWS ? n - a : FORCE_ROWS;
        if (llm_prefill(s, tok + a, b, lg, 1, 0, err) != 0) goto out;
        for (int64_t r = 0; r < b && a + r + 1 < n; r++)
            nll[a + r] = -llm_logprob(lg + (size_t)r * (size_t)V, V, tok[a + r + 1]);
        fprintf(stderr, "\r  %lld/%lld tokens", (long long)(a + b), (long long)n);
    }
    fprintf(stderr, "\n");
    rc = 0;
out:
    llm_session_free(s);
    free(lg);
    return rc;
}

/* ---- intervals ---- */
int llm_eval_ratio_ci(const llm_eval_set *e, const llm_eval_set *full, const kv_boot_cfg *b, double *lo, double *hi)
{
    if (!e->tok_nll || !full->tok_nll || e->n != full->n || e->n > e->cap || e->ntext != full->ntext ||
        kv_boot_mean(e->tok_nll, full->tok_nll, e->goff, e->ntext, b, lo, hi) != 0)
        return -1;
    *lo = exp(*lo);
    *hi = exp(*hi);
    return 0;
}

int llm_eval_agreement_ci(const llm_eval_set *e, const kv_boot_cfg *b, double *lo, double *hi)
{
    if (!e->tok_agree || e->n > e->cap) return -1;
    return kv_boot_mean(e->tok_agree, NULL, e->goff, e->ntext, b, lo, hi);
}

int llm_eval_passkey_ci(const llm_eval_set *e, int c, int nd, int trials, const kv_boot_cfg *b, double *lo, double *hi)
{
    const int64_t n = (int64_t)nd * trials, goff[2] = {0, n};
    double *x = malloc((size_t)n * sizeof *x);
    if (!x) return -1;
    for (int di = 0, i = 0; di < nd; di++)
        for (int t = 0; t < trials; t++) x[i++] = t < e->pk_ok[c][di];
    const int rc = kv_boot_mean(x, NULL, goff, 1, b, lo, hi);
    free(x);
    return rc;
}

int llm_eval_passkey_pair_ci(const llm_eval_set *a, const llm_eval_set *b, int c, int nd, int trials,
                             const kv_boot_cfg *bc, double *lo, double *hi)
{
    if (!a->pk_out || !b->pk_out || nd < 1 || trials < 1) return -1;
    const int64_t n = (int64_t)nd * trials, goff[2] = {0, n}, at = (int64_t)c * n;
    double *x = malloc((size_t)n * 2 * sizeof *x);
    if (!x) return -1;
    for (int64_t i = 0; i < n; i++) {
        x[i] = a->pk_out[at + i];
        x[n + i] = b->pk_out[at + i];
    }
    const int rc = kv_boot_mean(x, x + n, goff, 1, bc, lo, hi);
    free(x);
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
    char out[128] = "";
    size_t on = 0;
    for (int i = 0; i < 8; i++) {
        int32_t t = llm_argmax(lg, V);
        size_t bl;
        const char *b = llm_token_bytes(m->tok, t, &bl);
        if (on + bl < sizeof out - 1) { memcpy(out + on, b, bl); on += bl; out[on] = '\0'; }
        if (i < 7 && llm_decode(s, t, lg, err) != 0) { free(lg); return -1; }
    }
    free(lg);
    return llm_eval_passkey_found(out, key);
}

int llm_eval_passkey(const llm_model *m, const int64_t *ctxs, int nc, const int64_t *depths, int nd, int trials,
                       llm_eval_set *sets, int ns, llm_eval_set *full, rkv_dtype dt, int threads, kv_err *err)
{
    const int V = m->c.vocab;
    float *l0 = malloc((size_t)V * 4);
    if (!l0) return kv_errf(err, "out of memory");
    for (int c = 0; c < nc; c++)
        for (int di = 0; di < nd; di++)
            for (int tr = 0; tr < trials; tr++) {
                const int key = llm_eval_passkey_key(ctxs[c], depths[di], tr);
                const int64_t cap = ctxs[c] + 256;
                int32_t *ids = malloc((size_t)cap * sizeof *ids);
                if (!ids) { free(l0); return kv_errf(err, "out of memory"); }
                int64_t n = pk_prompt(m, ctxs[c], (int)depths[di], key, ids, cap);
                for (int k = -1; k < ns; k++) {
                    llm_eval_set *e = k < 0 ? full : &sets[k];
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
                    llm_eval_set *e = k < 0 ? full : &sets[k];
                    llm_session *s = fork_from(m, sd, k < 0 ? NULL : &e->p, n + 9, dt, threads, err);
                    int ok = s ? pk_generate(m, s, l0, key, err) : -1;
                    llm_session_free(s);
                    if (ok < 0) { llm_session_free(sd); free(ids); free(l0); return -1; }
                    e->pk_ok[c][di] += ok;
                    if (e->pk_out) e->pk_out[((int64_t)c * nd + di) * trials + tr] = (uint8_t)ok;
                }
                llm_session_free(sd);
                free(ids);
                fprintf(stderr, "\r  passkey context %lld depth %lld%% trial %d", (long long)ctxs[c], (long long)depths[di], tr);
            }
    fprintf(stderr, "\n");
    free(l0);
    return 0;
}
