/* wl_profile.c — per (layer, query head) attention statistics of a workload,
 * one pass: each (layer, KV head)'s keys and its heads' window and decode
 * queries are read once; dense attention of those queries is computed once
 * and every statistic comes from it (definitions in wl.h). */
#include "wl.h"

#include <gsl/gsl_blas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const int wl_topk_k[WL_NK] = {1, 4, 16, 64, 256, 1024, 4096};

const char *const wl_stat_names[WL_NSTAT] = {
    "topk1", "topk4", "topk16", "topk64", "topk256", "topk1024", "topk4096", "entropy", "sink_mass",
    "local_mass", "hh_persist", "vote_mass", "vote_recall", "page_recall", "page_gap", "k_outlier", "q_outlier",
    "recent_topk", "k_page_spread", "sparq_share", "far_topk", "local4_mass", "mid_mass", "sparq_mass",
    "early_mass",
};

void wl_stats_vec(const wl_head_stats *s, double *v)
{
    for (int i = 0; i < WL_NK; i++) v[i] = s->topk_mass[i];
    double r[] = {s->entropy, s->sink_mass, s->local_mass, s->hh_persist, s->vote_mass,
                  s->vote_recall, s->page_recall, s->page_gap, s->k_outlier, s->q_outlier, s->recent_topk,
                  s->k_page_spread, s->sparq_share, s->far_topk, s->local4_mass, s->mid_mass, s->sparq_mass,
                  s->early_mass};
    memcpy(v + WL_NK, r, sizeof r);
}

/* Scratch of wl_head_measure_keys: scores (n), probs (n), sorted copy and
 * page scratch (2n), kept mask (n), step-0 top set (n), top marks (n), votes
 * (2n doubles), a row's exponentials (n doubles), all scores (nq, n). */
size_t wl_measure_ws_floats(int64_t n, int64_t nq)
{
    return (size_t)n * 15 + (size_t)nq * (size_t)n + 1024;
}

/* The prepared keys: transposed (n, d) -> (d, n) and page min/max (2 (n / WL_PAGE + 1) d). */
size_t wl_keys_floats(int64_t n, int d)
{
    return (size_t)n * (size_t)d + 2 * (size_t)(n / WL_PAGE + 1) * (size_t)d;
}

size_t wl_head_ws_floats(int64_t n, int64_t nq, int d)
{
    return wl_measure_ws_floats(n, nq) + wl_keys_floats(n, d);
}

/* Reorders x[0..n) so that x[0..k) hold its k largest values (in no
 * particular order) and returns the k-th largest (1 <= k <= n): quickselect
 * (Hoare, C. A. R., "Algorithm 65: Find", CACM 4(7), 1961) with the median
 * of the first, middle and last as pivot, so deterministic. Expected O(n);
 * it replaces a full sort, which was two thirds of a fit's time (perf). */
static float select_top(float *x, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    const int64_t want = k - 1;
    while (lo < hi) {
        float a = x[lo], b = x[lo + (hi - lo) / 2], c = x[hi];
        float piv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) { /* descending: left of i >= piv, right of j <= piv */
            while (x[i] > piv) i++;
            while (x[j] < piv) j--;
            if (i <= j) {
                float t = x[i];
                x[i++] = x[j];
                x[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break; /* x[j+1 .. i-1] all equal the pivot */
    }
    return x[want];
}

/* softmax of the scores row[0..p] into pr (sc: the scores, copied; ex: each
 * exponential, computed once). */
static void softmax_row(const float *row, int64_t p, float *sc, float *pr, double *ex)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j <= p; j++) {
        sc[j] = row[j];
        if (sc[j] > mx) mx = sc[j];
    }
    double z = 0.0;
    for (int64_t j = 0; j <= p; j++) {
        ex[j] = exp((double)(sc[j] - mx));
        z += ex[j];
    }
    for (int64_t j = 0; j <= p; j++) pr[j] = (float)(ex[j] / z);
}

/* Marks the k largest of pr[0..n) (k <= n) in mark (1.0f), others 0, given thr,
 * the k-th largest value: those above it, then those equal to it from the
 * lowest index on (ties to the lower index). */
static void mark_thr(const float *pr, int64_t n, int64_t k, float thr, float *mark)
{
    int64_t above = 0;
    for (int64_t j = 0; j < n; j++) above += pr[j] > thr;
    int64_t eq_left = k - above;
    for (int64_t j = 0; j < n; j++) {
        mark[j] = pr[j] > thr ? 1.0f : 0.0f;
        if (pr[j] == thr && eq_left > 0) {
            mark[j] = 1.0f;
            eq_left--;
        }
    }
}

/* Marks the k largest of pr[0..n) (k clipped to n; ties to the lower index) in mark (1.0f), others 0. */
static void mark_top(const float *pr, int64_t n, int64_t k, float *tmp, float *mark)
{
    k = k < n ? k : n;
    memcpy(tmp, pr, (size_t)n * sizeof *tmp);
    mark_thr(pr, n, k, select_top(tmp, n, k), mark);
}

/* Page statistics of one decode query: the WL_PAGES pages (of WL_PAGE keys,
 * complete pages only) with the highest min/max upper bound vs the pages of
 * most true mass; adds recall and the mean bound gap. */
static void page_stats(const float *pmin, const float *pmax, const float *q, const float *sc, const float *pr, int d,
                       int64_t p, float *ws, double *recall, double *gap)
{
    const int64_t np = (p + 1) / WL_PAGE;
    if (np <= WL_PAGES) {
        *recall += 1.0;
        return;
    }
    float *bound = ws, *mass = ws + np, *tmp = ws + 2 * np;
    const float s = 1.0f / sqrtf((float)d);
    double g = 0.0;
    for (int64_t pg = 0; pg < np; pg++) {
        double ub = 0.0, m = 0.0;
        float best = -INFINITY;
        const float *lo = pmin + (size_t)pg * (size_t)d, *hi = pmax + (size_t)pg * (size_t)d;
        for (int i = 0; i < d; i++) ub += q[i] * lo[i] > q[i] * hi[i] ? q[i] * lo[i] : q[i] * hi[i];
        for (int64_t j = pg * WL_PAGE; j < (pg + 1) * WL_PAGE; j++) {
            m += pr[j];
            best = sc[j] > best ? sc[j] : best;
        }
        bound[pg] = (float)(ub * s);
        mass[pg] = (float)m;
        g += bound[pg] - best;
    }
    /* mass of the top pages by bound, and of the top pages by mass */
    mark_top(bound, np, WL_PAGES, tmp, tmp + np);
    double got = 0.0;
    for (int64_t pg = 0; pg < np; pg++) got += tmp[np + pg] * mass[pg];
    memcpy(tmp, mass, (size_t)np * sizeof *tmp);
    select_top(tmp, np, WL_PAGES);
    double best = 0.0;
    for (int i = 0; i < WL_PAGES; i++) best += tmp[i];
    *recall += best > 0 ? got / best : 1.0;
    *gap += g / (double)np;
}

/* Share of q's score variance Σ_i q_i²·kvar_i in its max(1, d/16) channels of
 * largest |q_i| (ties to the lower channel). */
static double sparq_share(const float *q, const double *kvar, int d)
{
    const int r = d / 16 > 1 ? d / 16 : 1;
    double tot = 0.0, top = 0.0;
    unsigned char used[512] = {0};
    for (int i = 0; i < d; i++) tot += (double)q[i] * q[i] * kvar[i];
    for (int k = 0; k < r; k++) {
        int best = -1;
        for (int i = 0; i < d; i++)
            if (!used[i] && (best < 0 || fabsf(q[i]) > fabsf(q[best]))) best = i;
        used[best] = 1;
        top += (double)q[best] * q[best] * kvar[best];
    }
    return tot > 0 ? top / tot : 1.0;
}

/* sparq_mass of one decode query: the true mass pr on the WL_SPARQ_K keys
 * 0 .. p of highest approximate score over q's max(1, d/16) channels of
 * largest |q_i| (ties to the lower channel, then the lower key). ws: 2(p+1),
 * mark: p+1. */
static double sparq_mass(const float *q, const wl_keys *kk, const float *pr, int64_t p, float *ws, float *mark)
{
    const int d = kk->d, r = d / 16 > 1 ? d / 16 : 1;
    int I[32];
    unsigned char used[512] = {0};
    for (int k = 0; k < r && k < 32; k++) {
        int best = -1;
        for (int i = 0; i < d; i++)
            if (!used[i] && (best < 0 || fabsf(q[i]) > fabsf(q[best]))) best = i;
        used[best] = 1;
        I[k] = best;
    }
    const int64_t np = p + 1;
    float *ap = ws;
    /* ap[j] = Σ_k q[I_k]·K[j][I_k], k ascending, read from the transposed keys a channel at a time */
    for (int64_t j = 0; j < np; j++) ap[j] = 0.0f;
    for (int k = 0; k < r && k < 32; k++) {
        const float qi = q[I[k]], *kt = kk->Kt + (size_t)I[k] * (size_t)kk->n;
        for (int64_t j = 0; j < np; j++) ap[j] += qi * kt[j];
    }
    mark_top(ap, np, WL_SPARQ_K, ws + np, mark);
    double m = 0.0;
    for (int64_t j = 0; j < np; j++) m += mark[j] * pr[j];
    return m;
}

/* The stage-1 kept set: window votes (summed probabilities of the window
 * queries over the prefix 0 .. C-w-1), max-pooled over WL_POOL, top C/8 kept, plus the window. */
static void stage1_kept(const float *S, int64_t n, int64_t C, int64_t w, float *sc, float *pr, double *ex, double *votes,
                        float *tmp, float *kept)
{
    const int64_t pre = C - w;
    memset(votes, 0, (size_t)(2 * pre) * sizeof *votes);
    for (int64_t i = 0; i < w; i++) {
        softmax_row(S + (size_t)i * (size_t)n, pre + i, sc, pr, ex);
        for (int64_t j = 0; j < pre; j++) votes[j] += pr[j];
    }
    rkv_pool1d(votes, pre, WL_POOL, RKV_POOL_MAX, votes + pre);
    for (int64_t j = 0; j < pre; j++) pr[j] = (float)votes[pre + j];
    int64_t P = C / 8 < pre ? C / 8 : pre;
    mark_top(pr, pre, P > 0 ? P : 1, tmp, kept);
    for (int64_t j = pre; j < C; j++) kept[j] = 1.0f;
}

/* Per-channel min and max of each complete page of WL_PAGE keys: the bound Quest reads. */
static void page_minmax(const float *K, int64_t npg, int d, float *pmin, float *pmax)
{
    for (int64_t pg = 0; pg < npg; pg++)
        for (int i = 0; i < d; i++) {
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t j = pg * WL_PAGE; j < (pg + 1) * WL_PAGE; j++) {
                float v = K[(size_t)j * (size_t)d + (size_t)i];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            pmin[(size_t)pg * (size_t)d + (size_t)i] = lo;
            pmax[(size_t)pg * (size_t)d + (size_t)i] = hi;
        }
}

/* Variance of each channel over rows 0 .. n-1 of X (n, d). */
static void channel_var(const float *X, int64_t n, int d, double *var)
{
    for (int i = 0; i < d; i++) {
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double v = X[(size_t)j * (size_t)d + (size_t)i];
            s1 += v;
            s2 += v * v;
        }
        var[i] = s2 / (double)n - (s1 / (double)n) * (s1 / (double)n);
    }
}

/* The ranking's distance profile of one decode query at p: adds the shares
 * of its top-WL_RECENT positions that are recent (sinks or the newest) and
 * far (>= WL_FAR back) to out. thr: the min(WL_RECENT, p + 1)-th largest of
 * pr; mk: p + 1 floats. */
static void rank_distance(const float *pr, int64_t p, float thr, float *mk, wl_head_stats *out)
{
    const int64_t np = p + 1, kr = WL_RECENT < np ? WL_RECENT : np;
    mark_thr(pr, np, kr, thr, mk);
    double rec = 0.0, far = 0.0;
    for (int64_t j = 0; j < np; j++) {
        rec += mk[j] * (j < WL_SINK || j > p - (kr - WL_SINK) ? 1.0f : 0.0f);
        far += mk[j] * (j >= WL_SINK && p - j >= WL_FAR ? 1.0f : 0.0f);
    }
    out->recent_topk += rec / (double)kr;
    out->far_topk += far / (double)kr;
}

void wl_keys_prepare(wl_keys *kk, const float *K, int d, int64_t C, int64_t n, float *mem)
{
    kk->K = K;
    kk->d = d;
    kk->C = C;
    kk->n = n;
    kk->Kt = mem;
    kk->pmin = mem + (size_t)n * (size_t)d;
    kk->pmax = kk->pmin + (size_t)(n / WL_PAGE + 1) * (size_t)d;
    for (int64_t j = 0; j < n; j++)
        for (int i = 0; i < d; i++) kk->Kt[(size_t)i * (size_t)n + (size_t)j] = K[(size_t)j * (size_t)d + (size_t)i];
    page_minmax(K, n / WL_PAGE, d, kk->pmin, kk->pmax);
    channel_var(K, C, d, kk->kvar);
}

/* Top-k masses of one decode query's probabilities pr[0..np), largest k first,
 * each selection inside the previous one's top (tmp: 2 np floats); adds them
 * to out and returns the thresholds the marks need: the min(WL_HH, np)-th and
 * the min(WL_RECENT, np)-th largest (the latter selected on a copy of the
 * smallest chain top that holds it, so the chain's order is untouched). */
static void topk_chain(const float *pr, int64_t np, float *tmp, wl_head_stats *out, float *thr_hh, float *thr_rec)
{
    const int64_t kr = WL_RECENT < np ? WL_RECENT : np;
    memcpy(tmp, pr, (size_t)np * sizeof *tmp);
    int64_t top = np;
    int have_rec = 0;
    *thr_hh = *thr_rec = 0.0f;
    for (int ki = WL_NK - 1; ki >= 0; ki--) {
        const int64_t k = wl_topk_k[ki] < np ? wl_topk_k[ki] : np;
        if (!have_rec && k < kr) { /* top >= kr: the kr largest are in tmp[0..top) */
            memcpy(tmp + np, tmp, (size_t)top * sizeof *tmp);
            *thr_rec = select_top(tmp + np, top, kr);
            have_rec = 1;
        }
        const float t = select_top(tmp, top, k);
        if (wl_topk_k[ki] == WL_HH) *thr_hh = t; /* WL_HH is a point of the curve */
        top = k;
        double cum = 0.0;
        for (int64_t r = 0; r < k; r++) cum += tmp[r];
        out->topk_mass[ki] += cum;
    }
    if (!have_rec) { /* kr <= the smallest k of the chain */
        memcpy(tmp + np, pr, (size_t)np * sizeof *tmp);
        *thr_rec = select_top(tmp + np, np, kr);
    }
}

/* Σ pr[j] over lo <= j < hi, clipped to 0 .. np - 1, in index order. */
static double range_sum(const float *pr, int64_t lo, int64_t hi, int64_t np)
{
    double a = 0.0;
    for (int64_t j = lo > 0 ? lo : 0; j < hi && j < np; j++) a += pr[j];
    return a;
}

/* Every statistic of decode step st (query q at p = C + st; sc, pr: its scores
 * and probabilities) added to out; kept: the stage-1 kept set; top0: step 0's
 * top WL_HH marks. */
static void step_stats(const wl_keys *kk, const float *q, int64_t st, const float *sc, const float *pr, const float *kept,
                       float *top0, float *tmp, float *mk, wl_head_stats *out)
{
    const int64_t C = kk->C, p = C + st, np = p + 1;
    double H = 0.0, vm = 0.0;
    for (int64_t j = 0; j < np; j++) {
        if (pr[j] > 0) H -= pr[j] * log(pr[j]);
        if (j >= C || kept[j] > 0) vm += pr[j]; /* generated tokens are always kept */
    }
    /* each mass sums its range in index order */
    const double sink = range_sum(pr, 0, WL_SINK, np), loc = range_sum(pr, p - WL_LOCAL + 1, np, np);
    const double loc4 = range_sum(pr, p - WL_NEWEST + 1, np, np), mid = range_sum(pr, p - WL_MID + 1, p - WL_LOCAL + 1, np);
    out->entropy += H / log((double)np);
    out->sink_mass += sink;
    out->local_mass += loc;
    out->local4_mass += loc4;
    out->mid_mass += mid;
    out->early_mass += range_sum(pr, WL_SINK, WL_EARLY < p - WL_MID + 1 ? WL_EARLY : p - WL_MID + 1, np);
    out->vote_mass += vm;
    float thr_hh, thr_rec;
    topk_chain(pr, np, tmp, out, &thr_hh, &thr_rec);
    mark_thr(pr, np, WL_HH < np ? WL_HH : np, thr_hh, mk);
    double in_kept = 0.0, inter = 0.0;
    for (int64_t j = 0; j < np; j++) {
        in_kept += mk[j] * (j >= C ? 1.0f : kept[j]);
        if (st > 0 && j < C) inter += mk[j] * top0[j];
    }
    out->vote_recall += in_kept / (double)(WL_HH < np ? WL_HH : np);
    if (st == 0) memcpy(top0, mk, (size_t)C * sizeof *top0);
    else out->hh_persist += inter / (double)WL_HH;
    rank_distance(pr, p, thr_rec, mk, out); /* mk is free again */
    page_stats(kk->pmin, kk->pmax, q, sc, pr, kk->d, p, tmp, &out->page_recall, &out->page_gap);
    out->sparq_share += sparq_share(q, kk->kvar, kk->d);
    out->sparq_mass += sparq_mass(q, kk, pr, p, tmp, mk); /* mk is free again */
}

void wl_head_measure_keys(const wl_keys *kk, const float *Q, int64_t w, int64_t steps, int mode, wl_head_stats *out,
                          float *ws)
{
    const int d = kk->d;
    const int64_t C = kk->C, n = kk->n, nq = w + steps;
    float *sc = ws, *pr = ws + n, *tmp = ws + 2 * n, *kept = ws + 4 * n, *top0 = ws + 5 * n, *mk = ws + 6 * n;
    double *votes = (double *)(void *)(ws + ((7 * n + 1) & ~(int64_t)1)); /* 2n doubles, 8-byte aligned */
    double *ex = (double *)(void *)(ws + ((12 * n + 1) & ~(int64_t)1));   /* n doubles */
    float *S = ws + 15 * n;
    /* every score at once: S = Q Kᵀ / √d, (nq, n); causality is applied per row */
    gsl_matrix_float_const_view Qv = gsl_matrix_float_const_view_array(Q, (size_t)nq, (size_t)d);
    gsl_matrix_float_const_view Kv = gsl_matrix_float_const_view_array(kk->K, (size_t)n, (size_t)d);
    gsl_matrix_float_view Sv = gsl_matrix_float_view_array(S, (size_t)nq, (size_t)n);
    gsl_blas_sgemm(CblasNoTrans, CblasTrans, 1.0f / sqrtf((float)d), &Qv.matrix, &Kv.matrix, 0.0f, &Sv.matrix);
    memset(out, 0, sizeof *out);
    if (mode == WL_MEASURE_ALL) stage1_kept(S, n, C, w, sc, pr, ex, votes, tmp, kept);
    for (int64_t st = 0; st < steps; st++) {
        const int64_t p = C + st;
        softmax_row(S + (size_t)(w + st) * (size_t)n, p, sc, pr, ex);
        if (mode == WL_MEASURE_ALL) {
            step_stats(kk, Q + (size_t)(w + st) * (size_t)d, st, sc, pr, kept, top0, tmp, mk, out);
            continue;
        }
        out->sink_mass += range_sum(pr, 0, WL_SINK, p + 1); /* as step_stats sums them */
        out->local_mass += range_sum(pr, p - WL_LOCAL + 1, p + 1, p + 1);
    }
    const double s = 1.0 / (double)steps;
    out->entropy *= s;
    out->sink_mass *= s;
    out->local_mass *= s;
    out->vote_mass *= s;
    out->vote_recall *= s;
    out->page_recall *= s;
    out->page_gap *= s;
    out->recent_topk *= s;
    out->sparq_share *= s;
    out->far_topk *= s;
    out->local4_mass *= s;
    out->mid_mass *= s;
    out->sparq_mass *= s;
    out->early_mass *= s;
    for (int ki = 0; ki < WL_NK; ki++) out->topk_mass[ki] *= s;
    out->hh_persist = steps > 1 ? out->hh_persist / (double)(steps - 1) : 1.0;
    out->q_outlier = wl_channel_outlier(Q, w + steps, d);
}

void wl_head_measure(const float *K, const float *Q, int d, int64_t C, int64_t w, int64_t steps,
                     wl_head_stats *out, float *ws)
{
    const int64_t n = C + steps;
    wl_keys kk;
    wl_keys_prepare(&kk, K, d, C, n, ws + wl_measure_ws_floats(n, w + steps));
    wl_head_measure_keys(&kk, Q, w, steps, WL_MEASURE_ALL, out, ws);
}

double wl_channel_outlier(const float *X, int64_t n, int d)
{
    double rms[512], srt[512];
    for (int i = 0; i < d; i++) {
        double a = 0.0;
        for (int64_t j = 0; j < n; j++) a += (double)X[(size_t)j * (size_t)d + (size_t)i] * X[(size_t)j * (size_t)d + (size_t)i];
        rms[i] = srt[i] = sqrt(a / (double)n);
    }
    double mx = 0.0;
    for (int i = 0; i < d; i++) mx = rms[i] > mx ? rms[i] : mx;
    /* median by insertion sort (d <= 512) */
    for (int i = 1; i < d; i++)
        for (int j = i; j > 0 && srt[j - 1] > srt[j]; j--) {
            double t = srt[j];
            srt[j] = srt[j - 1];
            srt[j - 1] = t;
        }
    double med = d % 2 ? srt[d / 2] : 0.5 * (srt[d / 2 - 1] + srt[d / 2]);
    return med > 0 ? mx / med : 0.0;
}

double wl_page_spread(const float *X, int64_t n, int d)
{
    const int64_t np = n / WL_PAGE;
    if (np < 1 || n < 2) return 0.0;
    double acc = 0.0;
    int used = 0;
    for (int i = 0; i < d; i++) {
        double s1 = 0.0, s2 = 0.0, rng = 0.0;
        for (int64_t j = 0; j < n; j++) {
            double v = X[(size_t)j * (size_t)d + (size_t)i];
            s1 += v;
            s2 += v * v;
        }
        const double var = s2 / (double)n - (s1 / (double)n) * (s1 / (double)n);
        if (!(var > 1e-12)) continue; /* a constant channel has no spread to compare */
        for (int64_t pg = 0; pg < np; pg++) {
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t j = pg * WL_PAGE; j < (pg + 1) * WL_PAGE; j++) {
                float v = X[(size_t)j * (size_t)d + (size_t)i];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            rng += hi - lo;
        }
        acc += rng / (double)np / sqrt(var);
        used++;
    }
    return used ? acc / used : 0.0;
}

/* ---- over a workload ---- */
void openblas_set_num_threads(int n); /* OpenBLAS's, as refimpl/run.c declares it */

typedef struct {
    const rkv_workload *wl;
    const mdl_model *m;
    int64_t C, w, steps;
    const int *layers;
    int nl, Hkv, G;
    wl_profile *out;
    pthread_mutex_t mu;
    int next, failed;
    kv_err err;
} prof_job;

static int prof_pair(prof_job *j, int li, int kvh, float *K, float *V, float *Q, float *ws)
{
    const int d = j->m->head_dim, G = j->G;
    const int64_t n = j->C + j->steps, nq = j->w + j->steps;
    kv_err e;
    if (rkv_workload_kv(j->wl, j->m, j->layers[li], kvh, n, K, V, &e) != 0) {
        pthread_mutex_lock(&j->mu);
        if (!j->failed) j->err = e;
        j->failed = 1;
        pthread_mutex_unlock(&j->mu);
        return -1;
    }
    double ko = wl_channel_outlier(K, j->C, d), kps = wl_page_spread(K, j->C, d);
    float *qrow = ws; /* G·d scratch before the measurement scratch */
    for (int64_t i = 0; i < nq; i++) {
        int64_t pos = j->C - j->w + i;
        rkv_workload_query(j->wl, j->m, j->layers[li], kvh, pos, 0, pos >= j->C, qrow);
        for (int g = 0; g < G; g++)
            memcpy(Q + ((size_t)g * (size_t)nq + (size_t)i) * (size_t)d, qrow + (size_t)g * (size_t)d,
                   (size_t)d * sizeof *Q);
    }
    float *mws = ws + (size_t)G * (size_t)d;
    wl_keys kk; /* prepared once for the G query heads */
    wl_keys_prepare(&kk, K, d, j->C, n, mws + wl_measure_ws_floats(n, nq));
    for (int g = 0; g < G; g++) {
        wl_head_stats *hs = &j->out->h[(size_t)li * (size_t)j->out->nheads + (size_t)(kvh * G + g)];
        wl_head_measure_keys(&kk, Q + (size_t)g * (size_t)nq * (size_t)d, j->w, j->steps, WL_MEASURE_ALL, hs, mws);
        hs->k_outlier = ko;
        hs->k_page_spread = kps;
    }
    return 0;
}

static void *prof_worker(void *arg)
{
    prof_job *j = arg;
    const int d = j->m->head_dim;
    const int64_t n = j->C + j->steps, nq = j->w + j->steps;
    float *K = malloc((size_t)n * (size_t)d * sizeof *K), *V = malloc((size_t)n * (size_t)d * sizeof *V);
    float *Q = malloc((size_t)j->G * (size_t)nq * (size_t)d * sizeof *Q);
    float *ws = malloc((wl_head_ws_floats(n, nq, d) + (size_t)j->G * (size_t)d) * sizeof *ws);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int t = j->failed ? -1 : j->next++;
        if (!K || !V || !Q || !ws) {
            if (!j->failed) kv_errf(&j->err, "workload profile: out of memory");
            j->failed = 1;
            t = -1;
        }
        pthread_mutex_unlock(&j->mu);
        if (t < 0 || t >= j->nl * j->Hkv) break;
        if (prof_pair(j, t / j->Hkv, t % j->Hkv, K, V, Q, ws) != 0) break;
    }
    free(K);
    free(V);
    free(Q);
    free(ws);
    return NULL;
}

static int profile_impl(const rkv_workload *wl, const mdl_model *m, int64_t C, int64_t w, int64_t steps,
                        const int *layers, int nlayers, int threads, wl_profile *out, kv_err *err);

/* A measured-heads workload learns the positions it is generated for (C + steps), as in rkv_run. */
int wl_profile_run(const rkv_workload *wl, const mdl_model *m, int64_t C, int64_t w, int64_t steps,
                   const int *layers, int nlayers, int threads, wl_profile *out, kv_err *err)
{
    if (wl->rec_ladder != RKV_REC_HEADS) return profile_impl(wl, m, C, w, steps, layers, nlayers, threads, out, err);
    rkv_workload *c = malloc(sizeof *c);
    if (!c) {
        memset(out, 0, sizeof *out);
        return kv_errf(err, "workload profile: out of memory");
    }
    *c = *wl;
    c->run_context = C + steps;
    const int rc = profile_impl(c, m, C, w, steps, layers, nlayers, threads, out, err);
    free(c);
    return rc;
}

static int profile_impl(const rkv_workload *wl, const mdl_model *m, int64_t C, int64_t w, int64_t steps,
                        const int *layers, int nlayers, int threads, wl_profile *out, kv_err *err)
{
    memset(out, 0, sizeof *out);
    if (C < 2 * w || w < 1 || steps < 1 || C > (int64_t)1 << 24)
        return kv_errf(err, "workload profile: context %lld must be at least twice the window %lld (>= 1), steps >= 1",
                       (long long)C, (long long)w);
    const int L = m->num_hidden_layers;
    out->nlayers = layers ? nlayers : L;
    out->nheads = m->num_attention_heads;
    out->context = C;
    out->window = w;
    out->steps = steps;
    out->head_dim = m->head_dim;
    out->layer_ids = malloc((size_t)out->nlayers * sizeof *out->layer_ids);
    out->h = calloc((size_t)out->nlayers * (size_t)out->nheads, sizeof *out->h);
    if (!out->layer_ids || !out->h) {
        wl_profile_free(out);
        return kv_errf(err, "workload profile: out of memory");
    }
    for (int i = 0; i < out->nlayers; i++) out->layer_ids[i] = layers ? layers[i] : i;
    openblas_set_num_threads(1); /* the workers own the CPUs: a BLAS pool would spin beside them (perf: sched_yield) */
    prof_job j = {.wl = wl, .m = m, .C = C, .w = w, .steps = steps, .layers = out->layer_ids, .nl = out->nlayers,
                  .Hkv = m->num_key_value_heads, .G = mdl_group_size(m), .out = out};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th[64];
    int nt = threads < 1 ? 1 : (threads > 64 ? 64 : threads), started = 0;
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[started], NULL, prof_worker, &j) == 0) started++;
    if (started == 0) prof_worker(&j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.mu);
    if (j.failed) {
        *err = j.err;
        wl_profile_free(out);
        return -1;
    }
    return 0;
}

void wl_profile_free(wl_profile *p)
{
    free(p->layer_ids);
    free(p->h);
    memset(p, 0, sizeof *p);
}
