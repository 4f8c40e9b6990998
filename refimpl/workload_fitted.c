/* workload_fitted.c — the fitted generator (generator "fitted"): keys that
 * carry every feature real attention uses, and queries whose weights on
 * those features are fitted per head class to a real model's attention
 * (`kvsim workload fit`, workload/wl_fit.c).
 *
 * What real attention has that the hand-tuned generator (workload.c) lacks,
 * measured with `kvsim workload profile` on SmolLM2-135M dumps of Debian
 * texts (reports/workload-fit/):
 *  - heavy hitters: a few tokens (punctuation, line starts, frequent words)
 *    draw attention from every query of a head, whatever it asks, and keep
 *    it over decode steps (H2O, Zhang et al. 2023, "heavy hitters"). Here a
 *    share hh_fraction of keys carries a salience exp(N(0, hh_sigma)) on a
 *    direction every query of the head weights by its class's `hh`;
 *  - recency at several scales: some heads attend the previous few tokens,
 *    others a paragraph. RoPE alone gives a decay that recurs (a few
 *    cosines), so keys and queries carry recency features per band
 *    (add_rec), whose class weight sets how much that band's locality adds
 *    to the logit: random Fourier features of exp(−|Δ|/rec_span[b]) (rff,
 *    the first profiles) or a deterministic geometric ladder of frequencies
 *    whose kernel falls as ln Δ, so attention as a power of the distance
 *    (ladder, rec_ladder below);
 *  - heads that differ within a layer and a GQA group: the weights are per
 *    query head class, the class of every (layer, query head) is fitted;
 *  - keys that vary on every channel, with a heavy-tailed channel spectrum
 *    shared by queries and keys (chan_spread, chan_spectrum below): real keys
 *    vary about as much inside a page of 16 as over the whole prompt
 *    (`k_page_spread` 2.7 of an iid 3.5, against 1.4 with content on a quarter
 *    of the dims), which is what loosens Quest's page bounds.
 * Sinks (StreamingLLM), topic runs (clustered content), low-rank content and
 * outlier key channels are as in the hand-tuned generator.
 *
 * Logit units: a query weight a on a unit direction a key carries with
 * weight b adds a·b to q·k/√d (both carry d^(1/4) per unit).
 *
 * A target model of another shape maps its layer l to the measured model's
 * layer round(l·(L_src − 1)/(L − 1)) (relative depth) and its query head j
 * to j mod Hq_src. Streams: shape (seed, layer, kv head, 0, 11), keys (…, 12),
 * a query (…, pos + 1, 13), a head's persistent content (…, head, 14); rec_kernel
 * heads: a key's residual innovation (…, t + 1, 16), a query's measured residual
 * (…, pos + 1, 17), a key's residual scale (…, t + 1, 18), the group's shared
 * residual draw (…, pos + 1, 19). */
#include "rkv.h"
#include "workload_internal.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* rec_kernel heads' measured rows: interned copies that live as long as the
 * process (reachable, so not a leak), the same bytes giving the same pointer,
 * so that rkv_workload stays a plain value that copies share. */
typedef struct hv_block {
    struct hv_block *next;
    size_t n;
    float x[];
} hv_block;
static pthread_mutex_t hv_mu = PTHREAD_MUTEX_INITIALIZER;
static hv_block *hv_list;

const float *rkv_wl_hv_intern(const float *x, size_t n)
{
    pthread_mutex_lock(&hv_mu);
    hv_block *b = hv_list;
    while (b && !(b->n == n && memcmp(b->x, x, n * sizeof *x) == 0)) b = b->next;
    if (!b && (b = malloc(sizeof *b + n * sizeof *x)) != NULL) {
        b->n = n;
        memcpy(b->x, x, n * sizeof *x);
        b->next = hv_list;
        hv_list = b;
    }
    pthread_mutex_unlock(&hv_mu);
    return b ? b->x : NULL;
}

typedef struct {
    int d, rk, nt;
    float scale;       /* d^(1/4) */
    float *topic;      /* (nt, d) unit centroids, low frequencies */
    float *topic_v;    /* (nt, d) value means */
    float *A;          /* (d, rk) content basis, entries N(0, (d·rk)^(-1/2)) */
    float sink[512];   /* unit, the 2 lowest frequencies */
    float hh[512];     /* unit, the next 2 */
    float cmask[512];  /* the content dims' scale (content and noise live only there), else 0 */
    int rec_lo[RKV_REC_BANDS], rec_n[RKV_REC_BANDS]; /* band b's features: pairs (i, i + d/2), i in [rec_lo, rec_lo + rec_n) */
    float omega[RKV_REC_BANDS][256]; /* their angular frequencies: |Cauchy| / rec_span[b] */
    float dgain[512];  /* (d) each dim's key gain, the query's its inverse (rec_key_tilt: the ladder's pairs), else 1 */
    int focus[RKV_MAX_MAP_HEADS][16]; /* focus topics of each query head of the group */
    int psrc[256];     /* rec_kernel pairs: the measured pair target pair j takes (-1: none) */
    float pkey[256];   /* the keys' constant direction's norm on pair j (dim j, before RoPE) */
    double pdens;      /* measured pairs per target pair (the ratio of pair densities in log frequency) */
    const float *hk;   /* rec_kernel heads: the measured key row of this (layer, KV head) (NULL: not heads) */
    const float *hq[RKV_MAX_MAP_HEADS]; /* and the query row of each head g of the group */
    int hsrc[256];     /* the measured pair target pair j takes (-1: none) */
    unsigned char hband[256]; /* and that measured pair's band: 0 fast, 1 mid, 2 slow (head_map; mean_gain) */
    float hf;          /* and the factor on its means, s.d.s and sink key: √(pdens·√(d/d_src)) */
    int stretch;       /* the measured part turns at om[j], not RoPE's θ_j (hv_stretch) */
    double temp;       /* and every logit is multiplied by (1 + 0.1·ln s)² (YaRN's attention temperature) */
    double om[256];    /* its angular frequency per target pair */
    int hd;            /* the measured head_dim */
} fit_shape;

/* The channel spectrum (chan_spread > 0): real keys vary on every channel, and
 * the few channels where both queries and keys are large carry most of the
 * score variance (SparQ's premise: heavy-tailed query components, Ribar et al. 2024, arXiv:2312.04985),
 * while the many small ones loosen Quest's page min/max bounds. Content and
 * noise move to every pair p < ns (all but the heavy-hitter and sink pairs
 * h2-2, h2-1), pair p scaled by s_p = exp(N(0, chan_spread)) in both queries and keys
 * (its score variance ∝ s_p⁴), normalised to mean s_p² = 1 within each group
 * grp[g] .. grp[g+1]-1 of pairs (each recency band, the content pairs, the
 * topic pairs; grp ends where grp[g] == grp[g+1]): a class's recency weight on
 * band b meets the keys' content and noise on b's own pairs, and that cross
 * term's size is then the same in every (layer, KV head) instead of a sum of
 * a few heavy-tailed draws (normalised over all pairs at once, the first
 * profiles). Own stream (…, 0, 15), so the other draws do not move. */
static int chan_spectrum(const rkv_workload *wl, int layer, int kvh, int h2, int ns, float *cmask, double *dc,
                         const int *grp)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (!r) return -1;
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, 0, 15));
    for (int i = 0; i < h2; i++) cmask[i] = i < ns ? (float)exp(gsl_ran_gaussian_ziggurat(r, wl->chan_spread)) : 0.0f;
    for (int g = 0; grp[g] < grp[g + 1]; g++) { /* mean s² = 1 within each group */
        double a = 0.0;
        for (int i = grp[g]; i < grp[g + 1]; i++) a += (double)cmask[i] * cmask[i];
        const float f = (float)sqrt((double)(grp[g + 1] - grp[g]) / a);
        for (int i = grp[g]; i < grp[g + 1]; i++) cmask[i] *= f;
    }
    for (int i = 0; i < h2; i++) cmask[i + h2] = cmask[i];
    *dc = 2.0 * (double)ns;
    gsl_rng_free(r);
    return 0;
}

/* The recency ladder (rec_kernel: ladder): the m recency pairs get the
 * deterministic geometric frequencies ω_j = (1/s0)·(s0/s2)^(j/(m−1)),
 * j = 0 .. m−1, from 1/rec_span[0] down to 1/rec_span[2] (RoPE's own
 * frequencies are such a ladder, θ_j = base^(−2j/d): Su et al. 2021,
 * arXiv:2104.09864 §3.3), and pair j joins the band whose span is nearest
 * its own 1/ω_j in log scale. With equal weight per rung the kernel
 * (1/m)·Σ_j cos(ω_j·Δ) is about the share of rungs with ω_j·Δ < 1,
 * ln(s2/Δ)/ln(s2/s0) for s0 <= Δ <= s2, so the logit falls by
 * w·ln Δ / ln(s2/s0) and attention
 * thins out as a power of the distance, Δ^(−w/ln(s2/s0)), as real attention's
 * top-k does (reports/workload-fit/README.md). Unlike random Fourier features
 * (rff) it draws no frequency near 0, which gave a random set of far keys a
 * boost that lasts thousands of positions; beyond 1/ω_min the rungs oscillate
 * and their sum is a ±w/√(2m) ripple. No random draw: the other streams keep
 * their values. */
static void rec_ladder(const rkv_workload *wl, int m, fit_shape *fs)
{
    const double s0 = wl->rec_span[0], s2 = wl->rec_span[2], mid = sqrt(s0 * s2);
    const double cut01 = sqrt(wl->rec_span[0] * wl->rec_span[1]), cut12 = sqrt(wl->rec_span[1] * wl->rec_span[2]);
    memset(fs->rec_n, 0, sizeof fs->rec_n);
    for (int j = 0; j < m; j++) {
        const double span = s0 * pow(s2 / s0, m > 1 ? (double)j / (double)(m - 1) : 0.0);
        const int b = span < cut01 ? 0 : span < cut12 ? 1 : 2;
        /* the key/query split of the rung's pair (rec_key_tilt, rkv.h): every logit is unchanged */
        fs->dgain[j] = fs->dgain[j + 2 * m] = (float)pow(span / mid, wl->rec_key_tilt);
        fs->omega[b][fs->rec_n[b]++] = (float)(1.0 / span);
    }
    fs->rec_lo[0] = 0; /* the spans grow with j: each band is a run of pairs */
    for (int b = 1; b < RKV_REC_BANDS; b++) fs->rec_lo[b] = fs->rec_lo[b - 1] + fs->rec_n[b - 1];
}

/* rec_kernel pairs: target pair j (frequency base^(-2j/d)) takes the measured
 * pair of nearest log frequency, i = round(j·(d_s·ln base)/(d·ln base_s)), and
 * that pair's amplitude times pdens = (d_s/ln base_s)/(d/ln base), the ratio of
 * the two models' pairs per unit of log frequency, so that a band of
 * frequencies adds the same logit on either model. Pairs past the last measured
 * one, and the target's heavy-hitter and sink pairs, get none. No draw. */
static void pair_map(const rkv_workload *wl, double theta, int d, fit_shape *fs)
{
    const int h2 = d / 2;
    fs->pdens = (double)wl->pair_head_dim * log(theta) / ((double)d * log(wl->pair_theta));
    for (int j = 0; j < h2 && j < 256; j++) {
        const int i = (int)floor((double)j * fs->pdens + 0.5);
        fs->psrc[j] = j < h2 - 2 && i < wl->pair_n ? i : -1;
        fs->pkey[j] = fs->psrc[j] >= 0 ? (float)wl->pair_key[i] : 0.0f;
    }
}

/* rec_kernel heads past the measured context: with s = run_context /
 * hv_context > 1, the measured part (means, residuals, sink key) of target
 * pair j turns at θ'_j = θ_j·(γ + (1 − γ)/s) instead of RoPE's θ_j, γ =
 * clamp((r − 1)/(32 − 1), 0, 1), r = hv_context·θ_j/2π the turns the pair
 * makes over the measured context — YaRN's interpolation by parts (Peng et al.
 * 2023, arXiv:2309.00071 §3.2, α = 1, β = 32): pairs that turn many times over
 * the measured context keep their frequency (local structure), pairs that
 * turn less than once are slowed by s, so over the run they turn as far as they
 * did over the measured context, and their means do not alias at distances
 * they were never seen at; and every logit is multiplied by YaRN's attention
 * temperature (1 + 0.1·ln s)² (§3.4; the GGUF runner's YaRN does the same, on
 * q and k each, llm/llm_rope.c), applied to the query. No stretch (θ' = θ, the
 * measured part turned by RoPE with the rest) when s <= 1 or either context is
 * unknown. */
static void hv_stretch(const rkv_workload *wl, double theta, int d, fit_shape *fs)
{
    fs->stretch = wl->hv_context > 0 && wl->run_context > wl->hv_context;
    fs->temp = 1.0;
    if (!fs->stretch) return;
    const double s = (double)wl->run_context / (double)wl->hv_context;
    fs->temp = (1.0 + 0.1 * log(s)) * (1.0 + 0.1 * log(s));
    for (int j = 0; j < d / 2 && j < 256; j++) {
        const double th = pow(theta, -2.0 * j / d), r = (double)wl->hv_context * th / (2.0 * M_PI);
        const double g = r <= 1.0 ? 0.0 : r >= 32.0 ? 1.0 : (r - 1.0) / 31.0;
        fs->om[j] = th * (g + (1.0 - g) / s);
    }
}

/* Turns pair j of x (rotate-half layout) by om[j]·pos and adds it to y: the
 * measured part of a key or query when it is stretched. */
static void hv_turn_add(const fit_shape *fs, int d, int64_t pos, const float *x, float *y)
{
    const int h2 = d / 2;
    for (int j = 0; j < h2; j++) {
        const double a = fmod(fs->om[j] * (double)pos, 2.0 * M_PI), c = cos(a), sn = sin(a);
        y[j] += (float)(c * x[j] - sn * x[j + h2]);
        y[j + h2] += (float)(sn * x[j] + c * x[j + h2]);
    }
}

/* rec_kernel heads: the measured rows this (layer, KV head) of model m takes:
 * layer by relative depth (class_of's rule), KV head h mod the measured KV
 * heads, query head g of the group the measured group's g mod G_src, so a
 * query always meets the keys it was measured with; target pair j the
 * measured pair of nearest log frequency (pair_map's rule), its means, s.d.s
 * and sink key times hf = √(pdens·√(d/d_src)), so that a band of frequencies
 * adds the same logit on either model. No draw. */
static void head_map(const rkv_workload *wl, const mdl_model *m, double theta, int layer, int kvh, fit_shape *fs)
{
    const int d = m->head_dim, h2 = d / 2, L = m->num_hidden_layers, G = mdl_group_size(m);
    const int Ls = wl->hv_layers, Hqs = wl->hv_q_heads, Hks = wl->hv_kv_heads, ds = wl->hv_head_dim, Gs = Hqs / Hks;
    int sl = Ls > 1 && L > 1 ? (int)floor((double)layer * (Ls - 1) / (double)(L - 1) + 0.5) : 0;
    if (sl >= Ls) sl = Ls - 1;
    const int sk = kvh % Hks;
    fs->hd = ds;
    fs->hk = wl->hv + ((size_t)sl * (size_t)Hks + (size_t)sk) * (size_t)RKV_HV_KROW(ds);
    const float *q0 = wl->hv + (size_t)Ls * (size_t)Hks * (size_t)RKV_HV_KROW(ds);
    for (int g = 0; g < G && g < RKV_MAX_MAP_HEADS; g++)
        fs->hq[g] = q0 + ((size_t)sl * (size_t)Hqs + (size_t)(sk * Gs + g % Gs)) * (size_t)RKV_HV_QROW(ds);
    fs->pdens = (double)ds * log(theta) / ((double)d * log(wl->pair_theta));
    fs->hf = (float)sqrt(fs->pdens * sqrt((double)d / (double)ds));
    for (int j = 0; j < h2 && j < 256; j++) {
        const int i = (int)floor((double)j * fs->pdens + 0.5);
        fs->hsrc[j] = i < ds / 2 ? i : -1;
        /* the turns the measured pair makes over the measured context: >= 64 fast, 4 .. 64 mid, else slow */
        const double turns = (double)wl->hv_context * pow(wl->pair_theta, -2.0 * i / ds) / (2.0 * M_PI);
        fs->hband[j] = turns >= 64.0 ? 0 : turns >= 4.0 ? 1 : 2;
    }
    hv_stretch(wl, theta, d, fs);
}

/* The residual of a measured pair: the mean's two components plus L·(u, v),
 * L the Cholesky factor of the pair's covariance row[2·hs + i], row[3·hs + i],
 * row[4·hs + i] (var re, cov, var im; a covariance the YAML's rounding left
 * slightly indefinite gets l22 = 0). */
static void hv_pair(const float *row, int hs, int i, float u, float v, float *re, float *im)
{
    const double vxx = row[2 * hs + i], vxy = row[3 * hs + i], vyy = row[4 * hs + i];
    const double l11 = sqrt(vxx > 0 ? vxx : 0), l21 = l11 > 0 ? vxy / l11 : 0.0;
    const double l22 = sqrt(vyy - l21 * l21 > 0 ? vyy - l21 * l21 : 0.0);
    *re = row[i] + (float)(l11 * u);
    *im = row[hs + i] + (float)(l21 * u + l22 * v);
}

/* rec_kernel heads: the residual latent. Position t >= sink_tokens draws the
 * innovation ξ(t), 2 per target pair (re, im), from its own stream
 * (…, t + 1, 16), so any position's latent can be made without the others';
 * the latent is z(t) = √(1 − a²)·Σ_{m<M} a^m·ξ(t − m), a = e^(−1/agree_span),
 * M = ⌈4·agree_span⌉ (at most 256; 1 and a = 0 when agree_span is 0: z = ξ),
 * unit variance per component up to the truncation a^(2M) < e^(−8). Keys carry
 * it as their residual, and a query with its class's `agree` ρ shares ρ of its
 * own residual with z(p), so keys near p, whose latents overlap z(p), score
 * higher: the short-range agreement of real queries and keys beyond their means
 * (reports/workload-fit/, "Session 10"). */
static int hv_window(const rkv_workload *wl, double *a)
{
    if (wl->agree_span <= 0) {
        *a = 0.0;
        return 1;
    }
    *a = exp(-1.0 / wl->agree_span);
    const double m = ceil(4.0 * wl->agree_span);
    return m > 256 ? 256 : (int)m;
}

static void hv_innov(const rkv_workload *wl, int layer, int kvh, int64_t t, int h2, gsl_rng *r, float *xi)
{
    if (t < wl->sink_tokens) {
        memset(xi, 0, (size_t)(2 * h2) * sizeof *xi);
        return;
    }
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, (uint64_t)t + 1, 16));
    for (int i = 0; i < 2 * h2; i++) xi[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
}

/* z of position t from the innovations ring[(t − m) mod M], m < M (those before 0 are zero). */
static void hv_latent(const float *ring, int M, double a, int64_t t, int h2, float *z)
{
    const double c = sqrt(1.0 - a * a);
    for (int i = 0; i < 2 * h2; i++) {
        double s = 0.0, w = c;
        for (int m = 0; m < M && m <= t; m++, w *= a) s += w * ring[(size_t)((t - m) % M) * (size_t)(2 * h2) + (size_t)i];
        z[i] = (float)s;
    }
}

/* rec_kernel heads: adds to key k of position t (before RoPE) the measured
 * mean and the residual L·s_t·z(t) on every pair, or for a sink token sets it
 * to the measured sink key; ring holds the last M innovations (hv_innov), and
 * s_t = e^(σε − σ²) (σ = resid_tail, ε ~ N(0, 1) per position: E[s_t²] = 1, so
 * the residual's covariance is kept and its tails grow). */
static void hv_key(const rkv_workload *wl, const fit_shape *fs, int layer, int kvh, int64_t t, gsl_rng *rh, float *ring,
                   int M, double a, float *k)
{
    const int h2 = fs->d / 2, hs = fs->hd / 2;
    float hz[512];
    hv_innov(wl, layer, kvh, t, h2, rh, ring + (size_t)(t % M) * (size_t)fs->d);
    hv_latent(ring, M, a, t, h2, hz);
    if (wl->resid_tail > 0 && t >= wl->sink_tokens) { /* the position's scale e^(σε − σ²), own stream (…, t + 1, 18) */
        gsl_rng_set(rh, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, (uint64_t)t + 1, 18));
        const double sg = wl->resid_tail;
        const float st = (float)exp(sg * gsl_ran_gaussian_ziggurat(rh, 1.0) - sg * sg);
        for (int i = 0; i < 2 * h2; i++) hz[i] *= st;
    }
    for (int j = 0; j < h2; j++) {
        const int i = fs->hsrc[j];
        if (i < 0) continue;
        if (t < wl->sink_tokens) {
            k[j] = fs->hf * fs->hk[5 * hs + i];
            k[j + h2] = fs->hf * fs->hk[5 * hs + i + hs];
        } else {
            float re, im;
            hv_pair(fs->hk, hs, i, hz[2 * j], hz[2 * j + 1], &re, &im);
            k[j] += fs->hf * re;
            k[j + h2] += fs->hf * im;
        }
    }
}

void rkv_fitted_rec_bands(const rkv_workload *wl, int head_dim, int n[RKV_REC_BANDS])
{
    const int m = head_dim / 4; /* the recency pairs: [0, h2/2) */
    if (wl->rec_ladder >= RKV_REC_PAIRS) { /* no bands */
        for (int b = 0; b < RKV_REC_BANDS; b++) n[b] = 0;
        return;
    }
    if (wl->rec_ladder) {
        fit_shape *fs = calloc(1, sizeof *fs);
        if (fs) rec_ladder(wl, m, fs);
        for (int b = 0; b < RKV_REC_BANDS; b++) n[b] = fs ? fs->rec_n[b] : 0;
        free(fs);
        return;
    }
    for (int b = 0; b < RKV_REC_BANDS; b++) n[b] = (b + 1) * m / RKV_REC_BANDS - b * m / RKV_REC_BANDS;
}

static int fshape_build(const rkv_workload *wl, const mdl_model *m, int layer, int kvh, fit_shape *fs)
{
    const int d = m->head_dim, h2 = d / 2, G = mdl_group_size(m);
    memset(fs, 0, sizeof *fs);
    fs->d = d;
    for (int i = 0; i < d; i++) fs->dgain[i] = 1.0f;
    fs->rk = wl->key_rank > 0 ? wl->key_rank : 1;
    fs->nt = wl->num_topics;
    fs->scale = (float)pow((double)d, 0.25);
    fs->topic = malloc((size_t)fs->nt * (size_t)d * sizeof(float));
    fs->topic_v = malloc((size_t)fs->nt * (size_t)d * sizeof(float));
    fs->A = malloc((size_t)d * (size_t)fs->rk * sizeof(float));
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (!fs->topic || !fs->topic_v || !fs->A || !r) {
        if (r) gsl_rng_free(r);
        return -1;
    }
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, 0, 11));
    /* disjoint dims (pairs i, i + d/2), so that no feature leaks noise into another's logit:
     * recency [0, h2/2) (a third per band), content and noise [h2/2, h2 - h2/4), topics
     * [h2 - h2/4, h2 - 2), heavy hitters h2 - 2 and the sink h2 - 1 (the lowest frequencies,
     * which RoPE barely turns) */
    const int top_lo = h2 - h2 / 4, top_hi = h2 - 2;
    double dc = 0.0; /* Σ cmask²: the content dims, counted by scale² */
    for (int i = 0; i < h2; i++) {
        float c = (i >= h2 / 2 && i < top_lo) ? 1.0f : 0.0f;
        fs->cmask[i] = fs->cmask[i + h2] = c;
        dc += 2.0 * c;
    }
    int grp[8], ng = 0; /* the pair groups the spectrum is normalised within: the recency bands, content, topics */
    if (wl->rec_ladder >= RKV_REC_PAIRS)
        grp[ng++] = 0; /* rec_kernel pairs, heads: no bands, [0, h2/2) one group */
    else if (wl->rec_ladder) {
        rec_ladder(wl, h2 / 2, fs); /* no draw: the bands' pairs, known before the draws below need them */
        for (int b = 0; b < RKV_REC_BANDS; b++)
            if (fs->rec_n[b] > 0) grp[ng++] = fs->rec_lo[b];
    } else
        for (int b = 0; b < RKV_REC_BANDS; b++) grp[ng++] = b * (h2 / 2) / RKV_REC_BANDS;
    grp[ng++] = h2 / 2;
    grp[ng++] = top_lo;
    grp[ng++] = top_hi;
    grp[ng] = top_hi; /* the end: grp[g] == grp[g + 1] */
    if (wl->chan_spread > 0 && chan_spectrum(wl, layer, kvh, h2, top_hi, fs->cmask, &dc, grp) != 0) {
        gsl_rng_free(r);
        return -1;
    }
    for (int t = 0; t < fs->nt; t++) {
        rkv_wl_unit_in_band(r, d, top_lo, top_hi, fs->topic + (size_t)t * (size_t)d);
        for (int i = 0; i < d; i++)
            fs->topic_v[(size_t)t * (size_t)d + (size_t)i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    }
    /* content logit std = the class's `content`: dc·σ²·√rk/√d = 1 */
    const double asd = sqrt(sqrt((double)d) / (dc * sqrt((double)fs->rk)));
    for (int i = 0; i < d * fs->rk; i++) fs->A[i] = fs->cmask[i / fs->rk] * (float)gsl_ran_gaussian_ziggurat(r, asd);
    rkv_wl_unit_in_band(r, d, h2 - 1, h2, fs->sink);
    rkv_wl_unit_in_band(r, d, h2 - 2, h2 - 1, fs->hh);
    /* recency: random Fourier features of the kernel exp(-|Δ|/span) (Rahimi & Recht 2007): frequencies
     * drawn from its spectral density, a Cauchy of scale 1/span; on the mid-to-low frequency dims */
    if (wl->rec_ladder == RKV_REC_PAIRS) {
        memset(fs->rec_n, 0, sizeof fs->rec_n); /* no ladder: recency is the measured pairs' (pair_map) */
        pair_map(wl, rkv_wl_theta(wl, m), d, fs);
    } else if (wl->rec_ladder == RKV_REC_HEADS) {
        memset(fs->rec_n, 0, sizeof fs->rec_n); /* no ladder: recency is the measured heads' (head_map) */
        head_map(wl, m, rkv_wl_theta(wl, m), layer, kvh, fs);
    } else if (wl->rec_ladder)
        rec_ladder(wl, h2 / 2, fs);
    else {
        for (int b = 0; b < RKV_REC_BANDS; b++) { /* [0, h2/2) split between the bands */
            fs->rec_lo[b] = b * (h2 / 2) / RKV_REC_BANDS;
            fs->rec_n[b] = (b + 1) * (h2 / 2) / RKV_REC_BANDS - fs->rec_lo[b];
        }
        for (int b = 0; b < RKV_REC_BANDS; b++)
            for (int j = 0; j < fs->rec_n[b]; j++)
                fs->omega[b][j] = (float)(fabs(gsl_ran_cauchy(r, 1.0)) / wl->rec_span[b]);
    }
    int nf = wl->focus_topics < 16 ? wl->focus_topics : 16;
    for (int g = 0; g < G && g < RKV_MAX_MAP_HEADS; g++)
        for (int f = 0; f < nf; f++) fs->focus[g][f] = (int)gsl_rng_uniform_int(r, (unsigned long)fs->nt);
    gsl_rng_free(r);
    return 0;
}

static void fshape_free(fit_shape *fs)
{
    free(fs->topic);
    free(fs->topic_v);
    free(fs->A);
}

/* The recency features of position t: cs[2i], cs[2i+1] = cos, sin of ω·t for
 * the recency pair i (band b's pairs are i = rec_lo[b] .. rec_lo[b] + rec_n[b] − 1). */
static void rec_features(const fit_shape *fs, int64_t t, float *cs)
{
    for (int b = 0; b < RKV_REC_BANDS; b++)
        for (int j = 0; j < fs->rec_n[b]; j++) {
            double ang = fmod((double)fs->omega[b][j] * (double)t, 2.0 * M_PI);
            cs[2 * (fs->rec_lo[b] + j)] = (float)cos(ang);
            cs[2 * (fs->rec_lo[b] + j) + 1] = (float)sin(ang);
        }
}

/* Adds the recency features cs of a position (after RoPE): per band, pairs
 * (cos ωt, sin ωt)·sc/√n, times the class weight w[b] for a query (w NULL: a key,
 * weight 1). A query at p and a key at t then add Σ_b w_b·mean_j cos(ω_bj (p − t)),
 * whose expectation is Σ_b w_b·exp(−|p − t|/rec_span[b]). */
static void add_rec_cs(const fit_shape *fs, const float *cs, float sc, const double *w, float *x)
{
    const int h2 = fs->d / 2; /* the bands' dims are disjoint: no cross-band terms */
    for (int b = 0; b < RKV_REC_BANDS; b++) {
        if (fs->rec_n[b] == 0) continue; /* a ladder band no rung is nearest to */
        const float wb = sc / sqrtf((float)fs->rec_n[b]) * (float)(w ? w[b] : 1.0);
        for (int j = 0; j < fs->rec_n[b]; j++) {
            x[fs->rec_lo[b] + j] += wb * cs[2 * (fs->rec_lo[b] + j)];
            x[fs->rec_lo[b] + j + h2] += wb * cs[2 * (fs->rec_lo[b] + j) + 1];
        }
    }
}

static void add_rec(const fit_shape *fs, int64_t t, float sc, const double *w, float *x)
{
    float cs[256]; /* 2 per recency pair: d/2 <= 256 */
    rec_features(fs, t, cs);
    add_rec_cs(fs, cs, sc, w, x);
}

/* The sink key's norm (sink_key_scale; 1 where a caller left it 0). */
static double sink_scale(const rkv_workload *wl)
{
    return wl->sink_key_scale > 0 ? wl->sink_key_scale : 1.0;
}

/* The class of query head j of layer l of model m (relative depth, head index modulo). */
static const rkv_head_class *class_of(const rkv_workload *wl, const mdl_model *m, int layer, int j)
{
    const int L = m->num_hidden_layers;
    int sl = 0;
    if (wl->map_layers > 1 && L > 1)
        sl = (int)floor((double)layer * (wl->map_layers - 1) / (double)(L - 1) + 0.5);
    if (sl >= wl->map_layers) sl = wl->map_layers - 1;
    int sh = wl->map_heads > 0 ? j % wl->map_heads : 0;
    int c = wl->map_layers > 0 ? wl->class_map[sl][sh] : 0;
    return &wl->cls[c < wl->nclasses ? c : 0];
}

int rkv_fitted_kv(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t n, float *K, float *V,
                  kv_err *err)
{
    const int d = m->head_dim, h2 = d / 2;
    if (d < 16)
        return kv_errf(err, "workload: the fitted generator needs head_dim >= 16, got %d", d);
    fit_shape fs;
    const float *tab = rkv_wl_rope_get(rkv_wl_theta(wl, m), d, n);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (fshape_build(wl, m, layer, kv_head, &fs) != 0 || !tab || !r) {
        fshape_free(&fs);
        if (r) gsl_rng_free(r);
        return kv_errf(err, "workload: out of memory");
    }
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, 0, 12));
    const float sc = fs.scale, ts = (float)wl->topic_strength * sc;
    const double pswitch = wl->topic_run_mean > 1 ? 1.0 / wl->topic_run_mean : 1.0;
    int topic = (int)gsl_rng_uniform_int(r, (unsigned long)fs.nt);
    float e[256];
    gsl_rng *rh = NULL; /* rec_kernel heads: the residual latent's innovations (hv_innov) */
    double ha = 0.0;
    const int hM = hv_window(wl, &ha);
    float *ring = NULL;
    if (fs.hk) {
        rh = gsl_rng_alloc(gsl_rng_taus2);
        ring = malloc((size_t)hM * (size_t)d * sizeof *ring);
        if (!rh || !ring) {
            if (rh) gsl_rng_free(rh);
            free(ring);
            gsl_rng_free(r);
            fshape_free(&fs);
            return kv_errf(err, "workload: out of memory");
        }
    }
    for (int64_t t = 0; t < n; t++) {
        if (gsl_rng_uniform(r) < pswitch) topic = (int)gsl_rng_uniform_int(r, (unsigned long)fs.nt);
        float *k = K + (size_t)t * (size_t)d, *v = V + (size_t)t * (size_t)d;
        const float *c = fs.topic + (size_t)topic * (size_t)d, *cv = fs.topic_v + (size_t)topic * (size_t)d;
        float hh = 0.0f; /* the document's early positions: early_hh_fraction (rkv.h) */
        const double fhh = t >= wl->sink_tokens && t < wl->early_tokens ? wl->early_hh_fraction : wl->hh_fraction;
        if (gsl_rng_uniform(r) < fhh) hh = (float)exp(gsl_ran_gaussian_ziggurat(r, wl->hh_sigma));
        const float sink = t < wl->sink_tokens ? sc * (float)sink_scale(wl) : 0.0f;
        for (int j = 0; j < fs.rk; j++) e[j] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
        for (int i = 0; i < d; i++) {
            float a = 0.0f;
            for (int j = 0; j < fs.rk; j++) a += fs.A[(size_t)i * (size_t)fs.rk + (size_t)j] * e[j];
            /* rec_kernel heads: the measured residual is all of a key's variation but the heavy hitters' (the
             * content, topic and noise draws are made, so the other streams stay, and left out) */
            const float kn = fs.cmask[i] * (float)gsl_ran_gaussian_ziggurat(r, wl->key_noise);
            k[i] = sc * hh * fs.hh[i] + sink * fs.sink[i] + (fs.hk ? 0.0f : a + ts * c[i] + kn);
            v[i] = cv[i] + (float)gsl_ran_gaussian_ziggurat(r, wl->value_noise);
        }
        if (fs.hk && t < wl->sink_tokens) /* rec_kernel heads: the sink key is the measured one alone */
            memset(k, 0, (size_t)d * sizeof *k);
        for (int o = 0; o < wl->outlier_channels && o < h2; o++) /* lowest frequencies, both halves */
            k[(o % 2 ? d : h2) - 1 - o / 2] += (float)wl->outlier_scale * (o % 4 < 2 ? 1.0f : -1.0f);
        if (wl->rec_ladder == RKV_REC_PAIRS && t >= wl->sink_tokens) /* the keys' constant direction on each measured pair */
            for (int j = 0; j < h2; j++) k[j] += fs.pkey[j];
        float hkb[512]; /* the measured part alone, when it turns on its own (stretch) */
        if (fs.hk && fs.stretch) {
            memset(hkb, 0, (size_t)d * sizeof *hkb);
            if (t < wl->sink_tokens) memset(k, 0, (size_t)d * sizeof *k);
            hv_key(wl, &fs, layer, kv_head, t, rh, ring, hM, ha, hkb);
        } else if (fs.hk)
            hv_key(wl, &fs, layer, kv_head, t, rh, ring, hM, ha, k);
        rkv_wl_rope(k, d, t, tab);
        if (fs.hk && fs.stretch) hv_turn_add(&fs, d, t, hkb, k);
        /* the sink key carries no recency features: with them its logit would take the
         * ladder's ripple at the query's distance from the start (a sink mass that swings
         * with the context length, not a fixed attractor) */
        if (t >= wl->sink_tokens) add_rec(&fs, t, sc, NULL, k);
        if (wl->rec_key_tilt != 0) /* k ← D·k, q ← D⁻¹·q: q·k unchanged, cross terms included */
            for (int i = 0; i < d; i++) k[i] *= fs.dgain[i];
    }
    gsl_rng_free(r);
    if (rh) gsl_rng_free(rh);
    free(ring);
    fshape_free(&fs);
    return 0;
}

/* The query side's draws of one (layer, KV head) at positions pos0 .. pos0+n-1,
 * made once: what rkv_fitted_qcache_query needs to assemble any class's
 * queries without a draw (the class weights enter only as coefficients). */
struct rkv_fitted_qcache {
    const mdl_model *m;
    int layer, kv_head, G, d;
    int64_t pos0, n;
    fit_shape fs;
    const float *tab; /* RoPE cos/sin table, >= pos0 + n positions */
    double *xk;       /* (G, rk) head-persistent content draws (stream 14), σ = 1 */
    int *topic;       /* (n, G) the query's topic */
    double *xf;       /* (n, G, rk) fresh content draws (stream 13), σ = 1 */
    double *z;        /* (n, G, d) noise draws (stream 13), σ = 1: a draw at σ is σ times it */
    float *rcs;       /* (n, d/2) recency features of the position (rec_features) */
    float *hpre;      /* rec_kernel heads: (n, G, d) the measured mean query plus its own residual draw, before RoPE */
    float *hlat;      /* and (n, G, d) the residual s.d. times the latent z(pos) of the keys (hv_latent) */
    float *hring;     /* (M, d) scratch: the innovations of the latent's window (hv_window) */
};

void rkv_fitted_qcache_free(rkv_fitted_qcache *c)
{
    if (!c) return;
    fshape_free(&c->fs);
    free(c->xk);
    free(c->topic);
    free(c->xf);
    free(c->z);
    free(c->rcs);
    free(c->hpre);
    free(c->hlat);
    free(c->hring);
    free(c);
}

/* rec_kernel heads, group_share γ > 0: the draw the G query heads of (layer,
 * kv_head) share at position pos, 2 per pair, into sh, from its own stream
 * (…, pos + 1, 19): first ε for the position's scale s = e^(σε − σ²) (σ =
 * group_tail), then the d unit normals, each times √γ·s. Returns √(1 − γ), the
 * factor of each head's own draw (1: nothing shared, sh untouched). A head's
 * residual draw √(1 − γ)·u + √γ·s·w keeps unit variance (E[s²] = 1); two heads'
 * draws correlate by γ on average, more at positions where s is large. */
static float group_draw(const rkv_workload *wl, int layer, int kvh, int64_t pos, int d, gsl_rng *r, float *sh)
{
    const double gm = wl->group_share;
    if (!(gm > 0)) return 1.0f;
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, (uint64_t)pos + 1, 19));
    const double sg = wl->group_tail, s = exp(sg * gsl_ran_gaussian_ziggurat(r, 1.0) - sg * sg) * sqrt(gm);
    for (int i = 0; i < d; i++) sh[i] = (float)(s * gsl_ran_gaussian_ziggurat(r, 1.0));
    return (float)sqrt(1.0 - gm);
}

/* Position i's draws from its own stream, in rkv_fitted_query's order of old: per
 * query head, the topic (and the decode drift), then the fresh content, then the noise. */
static void qcache_draw(rkv_fitted_qcache *c, const rkv_workload *wl, int64_t i, int decode, gsl_rng *r)
{
    const int G = c->G, d = c->d, rk = c->fs.rk, nf = wl->focus_topics < 16 ? wl->focus_topics : 16;
    const int64_t pos = c->pos0 + i;
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)c->layer, (uint64_t)c->kv_head, (uint64_t)pos + 1, 13));
    for (int g = 0; g < G; g++) {
        int topic = c->fs.focus[g < RKV_MAX_MAP_HEADS ? g : 0][gsl_rng_uniform_int(r, (unsigned long)nf)];
        if (decode && gsl_rng_uniform(r) < wl->decode_drift) topic = (int)gsl_rng_uniform_int(r, (unsigned long)c->fs.nt);
        c->topic[i * G + g] = topic;
        double *xf = c->xf + ((size_t)i * (size_t)G + (size_t)g) * (size_t)rk;
        for (int j = 0; j < rk; j++) xf[j] = gsl_ran_gaussian_ziggurat(r, 1.0);
        double *z = c->z + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
        for (int k = 0; k < d; k++) z[k] = gsl_ran_gaussian_ziggurat(r, 1.0);
    }
    rec_features(&c->fs, pos, c->rcs + (size_t)i * (size_t)(d / 2));
    if (c->hpre) { /* rec_kernel heads: the measured mean query and residual s.d. per pair, own stream (…, pos + 1, 17) */
        const int h2 = d / 2, hs = c->fs.hd / 2;
        const float hf = c->fs.hf;
        double ha;
        const int M = hv_window(wl, &ha);
        float z[512]; /* the latent of the query's own position: its key's */
        for (int m = 0; m < M && m <= pos; m++)
            hv_innov(wl, c->layer, c->kv_head, pos - m, h2, r, c->hring + (size_t)((pos - m) % M) * (size_t)d);
        hv_latent(c->hring, M, ha, pos, h2, z);
        float sh[512]; /* group_share: the draw the G heads share, times √γ·e^(σε − σ²); own draws times √(1 − γ) */
        const float fown = group_draw(wl, c->layer, c->kv_head, pos, d, r, sh);
        gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)c->layer, (uint64_t)c->kv_head, (uint64_t)pos + 1, 17));
        for (int g = 0; g < G; g++) {
            float *x = c->hpre + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
            float *y = c->hlat + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
            const float *hq = c->fs.hq[g < RKV_MAX_MAP_HEADS ? g : 0];
            memset(x, 0, (size_t)d * sizeof *x);
            memset(y, 0, (size_t)d * sizeof *y);
            for (int j = 0; j < h2; j++) {
                const int s = c->fs.hsrc[j];
                if (s < 0) continue;
                float re, im;
                hv_pair(hq, hs, s, z[2 * j], z[2 * j + 1], &re, &im);
                y[j] = hf * (re - hq[s]); /* the residual part alone */
                y[j + h2] = hf * (im - hq[hs + s]);
                float u = (float)gsl_ran_gaussian_ziggurat(r, 1.0), v = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
                if (fown < 1.0f) {
                    u = fown * u + sh[2 * j];
                    v = fown * v + sh[2 * j + 1];
                }
                hv_pair(hq, hs, s, u, v, &re, &im);
                x[j] = hf * re;
                x[j + h2] = hf * im;
            }
        }
    }
}

int rkv_fitted_qcache_new(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t pos0, int64_t n,
                          int64_t decode_from, rkv_fitted_qcache **out, kv_err *err)
{
    const int d = m->head_dim, G = mdl_group_size(m);
    rkv_fitted_qcache *c = calloc(1, sizeof *c);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    *out = NULL;
    if (!c || !r || fshape_build(wl, m, layer, kv_head, &c->fs) != 0) {
        if (r) gsl_rng_free(r);
        rkv_fitted_qcache_free(c);
        return kv_errf(err, "workload: out of memory");
    }
    const int rk = c->fs.rk;
    *c = (rkv_fitted_qcache){.m = m, .layer = layer, .kv_head = kv_head, .G = G, .d = d, .pos0 = pos0, .n = n, .fs = c->fs};
    c->tab = rkv_wl_rope_get(rkv_wl_theta(wl, m), d, pos0 + n);
    c->xk = malloc((size_t)G * (size_t)rk * sizeof *c->xk);
    c->topic = malloc((size_t)n * (size_t)G * sizeof *c->topic);
    c->xf = malloc((size_t)n * (size_t)G * (size_t)rk * sizeof *c->xf);
    c->z = malloc((size_t)n * (size_t)G * (size_t)d * sizeof *c->z);
    c->rcs = malloc((size_t)n * (size_t)(d / 2) * sizeof *c->rcs);
    if (c->fs.hk) {
        double ha;
        c->hpre = malloc((size_t)n * (size_t)G * (size_t)d * sizeof *c->hpre);
        c->hlat = malloc((size_t)n * (size_t)G * (size_t)d * sizeof *c->hlat);
        c->hring = malloc((size_t)hv_window(wl, &ha) * (size_t)d * sizeof *c->hring);
    }
    if (!c->tab || !c->xk || !c->topic || !c->xf || !c->z || !c->rcs ||
        (c->fs.hk && (!c->hpre || !c->hlat || !c->hring))) {
        gsl_rng_free(r);
        rkv_fitted_qcache_free(c);
        return kv_errf(err, "workload: out of memory");
    }
    for (int g = 0; g < G; g++) { /* a head's persistent content: its own stream, the same at every position */
        gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, (uint64_t)g, 14));
        for (int j = 0; j < rk; j++) c->xk[(size_t)g * (size_t)rk + (size_t)j] = gsl_ran_gaussian_ziggurat(r, 1.0);
    }
    for (int64_t i = 0; i < n; i++) qcache_draw(c, wl, i, pos0 + i >= decode_from, r);
    gsl_rng_free(r);
    *out = c;
    return 0;
}

/* The G queries at position pos0 + i for wl's classes: content (persistent and
 * fresh parts by the class's persistence), sink, heavy hitters and focus topic,
 * noise, RoPE, then the recency features by the class's band weights. A draw at
 * σ is σ times the draw at 1 (GSL's ziggurat scales its unit draw), so the noise
 * is the same float as a draw at the class's σ. */
void rkv_fitted_qcache_query(const rkv_fitted_qcache *c, const rkv_workload *wl, int64_t i, float *q)
{
    const int d = c->d, G = c->G, rk = c->fs.rk;
    const fit_shape *fs = &c->fs;
    const float sc = fs->scale;
    for (int g = 0; g < G; g++) {
        const rkv_head_class *hc = class_of(wl, c->m, c->layer, c->kv_head * G + g);
        float *qg = q + (size_t)g * (size_t)d;
        const double keep = sqrt(hc->persistence), fresh = sqrt(1.0 - hc->persistence);
        const double *xk = c->xk + (size_t)g * (size_t)rk, *xf = c->xf + ((size_t)i * (size_t)G + (size_t)g) * (size_t)rk;
        const double *z = c->z + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
        float eta[256];
        for (int j = 0; j < rk; j++) eta[j] = (float)(keep * xk[j] + fresh * xf[j]);
        const float *ct = fs->topic + (size_t)c->topic[i * G + g] * (size_t)d;
        for (int k = 0; k < d; k++) {
            float a = 0.0f;
            for (int j = 0; j < rk; j++) a += fs->A[(size_t)k * (size_t)rk + (size_t)j] * eta[j];
            qg[k] = (float)hc->content * a +
                    sc * ((float)(hc->sink / sink_scale(wl)) * fs->sink[k] + (float)hc->hh * fs->hh[k] +
                          (float)hc->focus * ct[k]) +
                    fs->cmask[k] * (float)(hc->noise * z[k]);
        }
        if (wl->rec_ladder == RKV_REC_PAIRS) /* the class's query on each measured pair: w = a·pdens·√d/|k|, so that q·k/√d
                                  * adds Re(a·pdens·e^(jθΔ)) once RoPE turns both */
            for (int j = 0; j < d / 2; j++) {
                if (fs->psrc[j] < 0 || fs->pkey[j] <= 0) continue;
                const double w = fs->pdens * sqrt((double)d) / fs->pkey[j];
                qg[j] += (float)(hc->pair_amp[2 * fs->psrc[j]] * w);
                qg[j + d / 2] += (float)(hc->pair_amp[2 * fs->psrc[j] + 1] * w);
            }
        float hqb[512]; /* the measured part, when it turns on its own (stretch) */
        if (c->hpre) { /* e^mean_gain·mean + √(1 − ρ²)·own residual + ρ·latent residual: the residual's variance kept */
            const float *x = c->hpre + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
            const float *y = c->hlat + ((size_t)i * (size_t)G + (size_t)g) * (size_t)d;
            const double rho = hc->agree < -1 ? -1 : hc->agree > 1 ? 1 : hc->agree;
            const float fo = (float)sqrt(1.0 - rho * rho), fl = (float)rho;
            const float fm[3] = {(float)exp(hc->mean_gain[0]), (float)exp(hc->mean_gain[1]), 1.0f};
            const float *hq = fs->hq[g < RKV_MAX_MAP_HEADS ? g : 0];
            const int hs = fs->hd / 2;
            float *dst = fs->stretch ? hqb : qg;
            if (fs->stretch) memset(hqb, 0, (size_t)d * sizeof *hqb);
            for (int j = 0; j < d / 2; j++) {
                const int s = fs->hsrc[j];
                if (s < 0) continue;
                const float m0 = fs->hf * hq[s], m1 = fs->hf * hq[hs + s];
                const float gm = fm[fs->hband[j]]; /* mean_gain by the pair's band */
                dst[j] += gm * m0 + fo * (x[j] - m0) + fl * y[j];
                dst[j + d / 2] += gm * m1 + fo * (x[j + d / 2] - m1) + fl * y[j + d / 2];
            }
        }
        rkv_wl_rope(qg, d, c->pos0 + i, c->tab);
        if (c->hpre && fs->stretch) hv_turn_add(fs, d, c->pos0 + i, hqb, qg);
        add_rec_cs(fs, c->rcs + (size_t)i * (size_t)(d / 2), sc, hc->rec, qg);
        if (wl->rec_key_tilt != 0) /* the inverse of the keys' gain (rkv_fitted_kv) */
            for (int k = 0; k < d; k++) qg[k] /= fs->dgain[k];
        if (fs->stretch) /* YaRN's attention temperature (hv_stretch) */
            for (int k = 0; k < d; k++) qg[k] *= (float)fs->temp;
    }
}

void rkv_fitted_query(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head, int64_t pos, int decode,
                      float *q)
{
    rkv_fitted_qcache *c;
    kv_err e;
    if (rkv_fitted_qcache_new(wl, m, layer, kv_head, pos, 1, decode ? pos : pos + 1, &c, &e) != 0) {
        memset(q, 0, (size_t)mdl_group_size(m) * (size_t)m->head_dim * sizeof *q);
        return;
    }
    rkv_fitted_qcache_query(c, wl, 0, q);
    rkv_fitted_qcache_free(c);
}
