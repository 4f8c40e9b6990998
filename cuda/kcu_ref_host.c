/* kcu_ref_host.c — CPU reference of the GPU pipeline (see kcu_ref.h).
 *
 * Plain, serial, deterministic; libc and libm only, so the GPU check can
 * compile it on a bare machine. Each function is one step of docs/algorithm.md
 * with its rule in the comment above it. */
#include "kcu_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Radix select: 8 MSB-first passes of 8 bits over the candidates whose key
 * shares the digits fixed so far, each building a weighted histogram; the
 * pass picks the digit holding the need-th unit. The threshold key T then
 * splits the candidates: keys below T are taken whole, keys equal to T are
 * filled in ascending index order until k is reached. */
int64_t kcu_select_host(const uint64_t *keys, const int64_t *w, int64_t n, int64_t k, int64_t *take)
{
    int64_t total = 0;
    for (int64_t j = 0; j < n; j++)
        total += w ? w[j] : 1;
    if (k <= 0) {
        memset(take, 0, (size_t)n * sizeof *take);
        return 0;
    }
    if (k >= total) {
        for (int64_t j = 0; j < n; j++)
            take[j] = w ? w[j] : 1;
        return total;
    }
    uint64_t prefix = 0, need = (uint64_t)k;
    for (int pass = 0; pass < KCU_RADIX_PASSES; pass++) {
        uint64_t hist[KCU_RADIX_BINS] = {0};
        for (int64_t j = 0; j < n; j++)
            if (kcu_radix_match(keys[j], prefix, pass))
                hist[kcu_radix_digit(keys[j], pass)] += (uint64_t)(w ? w[j] : 1);
        uint64_t below;
        unsigned dgt = kcu_radix_pick(hist, need, &below);
        need -= below;
        prefix |= (uint64_t)dgt << (56 - 8 * pass);
    }
    int64_t eq_before = 0, got = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t wj = w ? w[j] : 1;
        take[j] = kcu_select_take(keys[j], wj, prefix, (int64_t)need, eq_before);
        if (keys[j] == prefix)
            eq_before += wj;
        got += take[j];
    }
    return got;
}

int64_t kcu_topk_host(const double *scores, int64_t n, int64_t k, int32_t *idx, uint64_t *keys,
                      int64_t *take)
{
    for (int64_t j = 0; j < n; j++)
        keys[j] = kcu_desc_key(scores[j]);
    kcu_select_host(keys, NULL, n, k, take);
    int64_t m = 0;
    for (int64_t j = 0; j < n; j++)
        if (take[j])
            idx[m++] = (int32_t)j;
    return m;
}

/* Dense attention: o_h = Σ_j softmax_j(q_h·k_j/√d) v_j, in double. */
void kcu_ref_attend(const uint16_t *K, const uint16_t *V, int d, int G, const float *q,
                    const int32_t *idx, int64_t n, double *out)
{
    double scale = 1.0 / sqrt((double)d);
    for (int h = 0; h < G; h++) {
        const float *qh = q + (size_t)h * d;
        double m = -INFINITY;
        for (int64_t t = 0; t < n; t++) {
            const uint16_t *k = K + (size_t)(idx ? idx[t] : t) * d;
            double s = 0;
            for (int i = 0; i < d; i++)
                s += (double)qh[i] * kcu_bf16_to_f32(k[i]);
            s *= scale;
            if (s > m)
                m = s;
        }
        double l = 0;
        double *o = out + (size_t)h * d;
        for (int i = 0; i < d; i++)
            o[i] = 0;
        for (int64_t t = 0; t < n; t++) {
            int64_t row = idx ? idx[t] : t;
            const uint16_t *k = K + (size_t)row * d, *v = V + (size_t)row * d;
            double s = 0;
            for (int i = 0; i < d; i++)
                s += (double)qh[i] * kcu_bf16_to_f32(k[i]);
            double e = exp(s * scale - m);
            l += e;
            for (int i = 0; i < d; i++)
                o[i] += e * kcu_bf16_to_f32(v[i]);
        }
        for (int i = 0; i < d; i++)
            o[i] = l > 0 ? o[i] / l : 0.0;
    }
}

/* Aux data per page of p slots: element-wise min and max of the page's keys
 * (a partial page is padded with +inf/−inf, i.e. only its tokens count);
 * for p = 1 a transposed copy of K. */
void kcu_ref_pages_build(const uint16_t *K, int64_t C, int d, int64_t p, int64_t npages_cap, uint16_t *aux)
{
    int64_t np = kcu_npages(C, p);
    for (int64_t j = 0; j < np; j++)
        for (int i = 0; i < d; i++) {
            float mn = INFINITY, mx = -INFINITY;
            for (int64_t t = j * p; t < j * p + kcu_page_count(j, C, p); t++) {
                float x = kcu_bf16_to_f32(K[(size_t)t * d + i]);
                mn = x < mn ? x : mn;
                mx = x > mx ? x : mx;
            }
            aux[kcu_aux_min_off(i, j, npages_cap)] = kcu_f32_to_bf16(mn);
            aux[kcu_aux_max_off(i, j, npages_cap, d, p)] = kcu_f32_to_bf16(mx);
        }
}

/* Step 1: a_i = Σ_h |q_h[i]|, I = top-r dims (ties to the lower index).
 * Step 2's sign: gsum_i = Σ_h q_h[i]. τ_h = √(d·‖q_h[I]‖₁/‖q_h‖₁). */
int kcu_ref_hsa_dims(const float *q, int G, int d, int r, int32_t *dims, double *gsum, double *tau,
                     void *scratch)
{
    double *a = (double *)scratch;
    uint64_t *keys = (uint64_t *)(a + d);
    int64_t *take = (int64_t *)(keys + d);
    if (r < 1)
        r = 1;
    if (r > d)
        r = d;
    for (int i = 0; i < d; i++) {
        double s = 0, g = 0;
        for (int h = 0; h < G; h++) {
            s += fabs((double)q[(size_t)h * d + i]);
            g += (double)q[(size_t)h * d + i];
        }
        a[i] = s;
        gsum[i] = g;
    }
    kcu_topk_host(a, d, r, dims, keys, take);
    for (int h = 0; h < G; h++) {
        double l1 = 0, l1I = 0;
        for (int i = 0; i < d; i++)
            l1 += fabs((double)q[(size_t)h * d + i]);
        for (int t = 0; t < r; t++)
            l1I += fabs((double)q[(size_t)h * d + dims[t]]);
        tau[h] = kcu_tau(d, l1I, l1);
    }
    return r;
}

/* Step 3: s_h(j) = Σ_{i∈I} q_h[i]·K̂_j[i], f32 in dims order, product and
 * sum rounded separately; z = (double)s / τ_h. */
void kcu_ref_hsa_page_scores(const uint16_t *aux, int64_t npages_cap, int d, int64_t p, int G,
                             const float *q, const int32_t *dims, int r, const double *gsum,
                             const double *tau, int64_t npages, double *z)
{
    for (int h = 0; h < G; h++)
        for (int64_t j = 0; j < npages; j++) {
            float s = 0.0f;
            for (int t = 0; t < r; t++) {
                int i = dims[t];
                float mn = kcu_bf16_to_f32(aux[kcu_aux_min_off(i, j, npages_cap)]);
                float mx = kcu_bf16_to_f32(aux[kcu_aux_max_off(i, j, npages_cap, d, p)]);
                s = kcu_page_score_acc(s, q[(size_t)h * d + i], kcu_page_bound(gsum[i], mn, mx));
            }
            z[(size_t)h * npages + j] = (double)s / tau[h];
        }
}

/* Step 4: softmax per head over the C tokens (page j's score repeated on its
 * kcu_page_count tokens), then the mean over the G heads. */
void kcu_ref_hsa_average(const double *z, int G, int64_t npages, int64_t C, int64_t p, double *avg)
{
    for (int64_t j = 0; j < npages; j++)
        avg[j] = 0;
    for (int h = 0; h < G; h++) {
        const double *s = z + (size_t)h * npages;
        double m = -INFINITY;
        for (int64_t j = 0; j < npages; j++)
            m = s[j] > m ? s[j] : m;
        double Z = 0;
        for (int64_t j = 0; j < npages; j++)
            Z += (double)kcu_page_count(j, C, p) * exp(s[j] - m);
        for (int64_t j = 0; j < npages; j++)
            avg[j] += exp(s[j] - m) / Z;
    }
    for (int64_t j = 0; j < npages; j++)
        avg[j] /= (double)G;
}

/* Step 5: top-k tokens by the average, ties to the lower index. Scores are
 * page-constant, so this is a weighted top-k over pages (weight = tokens
 * in the page) whose threshold page contributes its first tokens. Page
 * granularity: the top ⌈k/p⌉ pages, whole. */
int64_t kcu_ref_hsa_select(const double *avg, int64_t npages, int64_t C, int64_t p, int64_t k,
                           int page_granularity, int32_t *pos, uint64_t *keys, int64_t *take,
                           int64_t *w)
{
    for (int64_t j = 0; j < npages; j++) {
        keys[j] = kcu_desc_key(avg[j]);
        w[j] = kcu_page_count(j, C, p);
    }
    if (page_granularity)
        kcu_select_host(keys, NULL, npages, (k + p - 1) / p, take);
    else
        kcu_select_host(keys, w, npages, k, take);
    int64_t m = 0;
    for (int64_t j = 0; j < npages; j++) {
        int64_t n = page_granularity && take[j] ? w[j] : take[j];
        for (int64_t t = 0; t < n; t++)
            pos[m++] = (int32_t)(j * p + t);
    }
    return m;
}

/* Stage 1, steps 2–5: window query i (position S−w+i) of head h sees keys
 * 0..S−w+i; probabilities in double; votes[j] = Σ_h Σ_i p_{h,i}(j) over the
 * prefix columns j < S−w; max pooling (padding never wins); top-(P−w) prefix
 * positions + the window, ascending. */
int64_t kcu_ref_stage1(const uint16_t *K, int64_t S, int d, int G, const float *Qw, int64_t w,
                       int64_t P, int64_t kernel, double *votes, double *pooled, int32_t *kept,
                       void *scratch)
{
    if (S <= P) {
        for (int64_t j = 0; j < S; j++)
            kept[j] = (int32_t)j;
        return S;
    }
    int64_t npre = S - w;
    double *row = (double *)scratch;
    uint64_t *keys = (uint64_t *)(row + S);
    int64_t *take = (int64_t *)(keys + S);
    double scale = 1.0 / sqrt((double)d);
    for (int64_t j = 0; j < npre; j++)
        votes[j] = 0;
    for (int h = 0; h < G; h++)
        for (int64_t i = 0; i < w; i++) {
            const float *q = Qw + ((size_t)h * w + i) * d;
            int64_t last = npre + i;
            double m = -INFINITY, z = 0;
            for (int64_t j = 0; j <= last; j++) {
                double s = 0;
                for (int e = 0; e < d; e++)
                    s += (double)q[e] * kcu_bf16_to_f32(K[(size_t)j * d + e]);
                row[j] = s * scale;
                m = row[j] > m ? row[j] : m;
            }
            for (int64_t j = 0; j <= last; j++)
                z += exp(row[j] - m);
            for (int64_t j = 0; j < npre; j++)
                votes[j] += exp(row[j] - m) / z;
        }
    for (int64_t j = 0; j < npre; j++) {
        int64_t lo, hi;
        kcu_pool_window(j, npre, kernel, &lo, &hi);
        double mx = votes[lo];
        for (int64_t t = lo + 1; t <= hi; t++)
            mx = votes[t] > mx ? votes[t] : mx;
        pooled[j] = mx;
    }
    int64_t n = kcu_topk_host(pooled, npre, P - w, kept, keys, take);
    for (int64_t i = 0; i < w; i++)
        kept[n + i] = (int32_t)(npre + i);
    return n + w;
}

int64_t kcu_compare_takes(const double *score, const int64_t *take_ref, const int64_t *take_got, int64_t n,
                          double rel_eps, int64_t *ndiff)
{
    double T = INFINITY;
    for (int64_t j = 0; j < n; j++)
        if (take_ref[j] > 0 && score[j] < T)
            T = score[j];
    int64_t bad = 0, diff = 0;
    for (int64_t j = 0; j < n; j++) {
        if (take_ref[j] == take_got[j])
            continue;
        diff++;
        if (!(fabs(score[j] - T) <= rel_eps * fabs(T)))
            bad++;
    }
    if (ndiff)
        *ndiff = diff;
    return bad;
}
