/* workload.c — the synthetic workload: keys, values and queries that behave
 * like a real model's, per (layer, KV head), from a fixed seed (GSL RNG).
 *
 * What it imitates, and why (each knob is in the YAML workload file):
 *  - RoPE on keys and queries, HF layout (dim i pairs with i + d/2, frequency
 *    θ_i = theta^(-2i/d)), with the model's rope_theta;
 *  - content in low-frequency dims: topic centroids live in the lowest
 *    quarter of frequencies, which RoPE barely rotates, as semantic matching
 *    does in real models (Barbero et al. 2024, "Round and round we go");
 *  - clustered keys: the sequence is a chain of topic runs (geometric lengths,
 *    mean topic_run_mean) so relevant tokens come in contiguous spans, which
 *    is what page-level selection exploits;
 *  - low-rank keys (key_rank) plus small iid noise (Loki: keys are low rank);
 *  - a few outlier channels with large constant magnitude (KIVI/KVQuant: key
 *    caches have fixed outlier channels), which widen page min/max bounds;
 *  - attention sinks: the first sink_tokens keys align with a direction every
 *    query carries (StreamingLLM);
 *  - recency: a component shared by queries and keys in mid frequencies, so
 *    RoPE makes its contribution decay with distance;
 *  - needles: planted tokens whose post-RoPE key a later query matches
 *    exactly (half are asked about in the prompt's last window, the others
 *    only by decode queries, which stage-1 eviction can lose);
 *  - query focus: the queries of a turn concentrate on focus_topics topics;
 *    a decode query drifts to another topic with probability decode_drift
 *    (SnapKV's observation that window attention predicts decode attention
 *    holds mostly, not always);
 *  - per-head diversity inside a group.
 * Logit contributions are in natural units: a unit-norm direction carried by
 * a query with weight a and a key with weight b adds about a·b to q·k/√d.
 *
 * Keys and values of a (layer, KV head) come from one RNG stream seeded by
 * (seed, layer, head); a query from a stream seeded by (seed, layer, head,
 * position), so any subset of queries can be regenerated alone. */
#include "rkv.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rkv_workload_defaults(rkv_workload *wl)
{
    memset(wl, 0, sizeof *wl);
    snprintf(wl->generator, sizeof wl->generator, "synthetic");
    wl->seed = 1;
    wl->key_rank = 32;
    wl->topic_run_mean = 192.0;
    wl->num_topics = 64;
    wl->topic_strength = 2.0;
    wl->key_noise = 0.25;
    wl->outlier_channels = 4;
    wl->outlier_scale = 6.0;
    wl->sink_tokens = 4;
    wl->sink_strength = 8.0;
    wl->recency_strength = 1.5;
    wl->needles = 4;
    wl->needle_strength = 3.0;
    wl->focus_topics = 3;
    wl->query_focus = 2.0;
    wl->query_noise = 0.5;
    wl->decode_drift = 0.15;
    wl->head_diversity = 0.3;
    wl->value_noise = 1.0;
    wl->rope_theta = 0.0;
    wl->nturns = 0;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static unsigned long stream_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t tag)
{
    uint64_t h = mix64(seed ^ 0x6b76736d5f776c31ull);
    h = mix64(h ^ a);
    h = mix64(h ^ (b << 20));
    h = mix64(h ^ (c << 1));
    h = mix64(h ^ tag);
    return (unsigned long)(h & 0xffffffffull) | 1ul;
}

/* Random unit vector supported on dims [lo, hi) of each RoPE half. */
static void unit_in_band(gsl_rng *r, int d, int lo, int hi, float *v)
{
    memset(v, 0, (size_t)d * sizeof *v);
    double n2 = 0.0;
    for (int i = lo; i < hi; i++) {
        double a = gsl_ran_gaussian_ziggurat(r, 1.0), b = gsl_ran_gaussian_ziggurat(r, 1.0);
        v[i] = (float)a;
        v[i + d / 2] = (float)b;
        n2 += a * a + b * b;
    }
    float s = (float)(1.0 / sqrt(n2));
    for (int i = 0; i < d; i++) v[i] *= s;
}

/* Everything of one (layer, KV head) that keys and queries share. Derived
 * from its own stream, so keys and queries agree without storing anything. */
typedef struct {
    int d;
    float scale;          /* d^(1/4): a·b logit units per unit direction */
    float *topic;         /* (num_topics, d) unit centroids, low frequencies */
    float *topic_v;       /* (num_topics, d) value means */
    float *A;             /* (d, key_rank) low-rank basis */
    float *sink;          /* (d) */
    float *rec;           /* (d) recency direction, mid frequencies */
    float *needle;        /* (needles, d) unit directions */
    int64_t needle_pos[64];
    int focus[16];
    double recency_gain;  /* per-head variation */
} head_shape;

static int shape_build(const rkv_workload *wl, int d, int layer, int kvh, int64_t S, head_shape *hs)
{
    memset(hs, 0, sizeof *hs);
    hs->d = d;
    hs->scale = (float)pow((double)d, 0.25);
    const int nt = wl->num_topics, rk = wl->key_rank, nn = wl->needles;
    hs->topic = malloc((size_t)nt * (size_t)d * sizeof(float));
    hs->topic_v = malloc((size_t)nt * (size_t)d * sizeof(float));
    hs->A = malloc((size_t)d * (size_t)(rk > 0 ? rk : 1) * sizeof(float));
    hs->sink = malloc((size_t)d * sizeof(float));
    hs->rec = malloc((size_t)d * sizeof(float));
    hs->needle = malloc((size_t)(nn > 0 ? nn : 1) * (size_t)d * sizeof(float));
    if (!hs->topic || !hs->topic_v || !hs->A || !hs->sink || !hs->rec || !hs->needle)
        return -1;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (!r)
        return -1;
    gsl_rng_set(r, stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, 0, 1));
    const int h2 = d / 2;
    for (int t = 0; t < nt; t++) {
        unit_in_band(r, d, h2 - h2 / 4, h2, hs->topic + (size_t)t * (size_t)d);
        for (int i = 0; i < d; i++)
            hs->topic_v[(size_t)t * (size_t)d + (size_t)i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    }
    for (int i = 0; i < d * rk; i++)
        hs->A[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0 / sqrt((double)rk));
    unit_in_band(r, d, h2 - h2 / 8, h2, hs->sink);
    unit_in_band(r, d, h2 / 8, h2 / 2, hs->rec);
    for (int j = 0; j < nn && j < 64; j++) {
        unit_in_band(r, d, 0, h2, hs->needle + (size_t)j * (size_t)d);
        int64_t lo = wl->sink_tokens + 1, hi = S - 64;
        hs->needle_pos[j] = hi > lo ? lo + (int64_t)gsl_rng_uniform_int(r, (unsigned long)(hi - lo)) : lo;
    }
    for (int f = 0; f < wl->focus_topics && f < 16; f++)
        hs->focus[f] = (int)gsl_rng_uniform_int(r, (unsigned long)nt);
    hs->recency_gain = 0.5 + gsl_rng_uniform(r); /* some heads are more local than others */
    gsl_rng_free(r);
    return 0;
}

static void shape_free(head_shape *hs)
{
    free(hs->topic);
    free(hs->topic_v);
    free(hs->A);
    free(hs->sink);
    free(hs->rec);
    free(hs->needle);
}

static double theta_of(const rkv_workload *wl, const mdl_model *m)
{
    return wl->rope_theta > 0 ? wl->rope_theta : (m->rope_theta > 0 ? m->rope_theta : 10000.0);
}

/* In-place RoPE at position pos (HF rotate_half layout). */
static void rope(float *x, int d, int64_t pos, double theta)
{
    const int h2 = d / 2;
    for (int i = 0; i < h2; i++) {
        double f = pow(theta, -2.0 * i / d), a = (double)pos * f;
        double c = cos(a), s = sin(a);
        double x0 = x[i], x1 = x[i + h2];
        x[i] = (float)(x0 * c - x1 * s);
        x[i + h2] = (float)(x0 * s + x1 * c);
    }
}

int64_t rkv_workload_prompt_len(const rkv_workload *wl, int64_t S);
int64_t rkv_workload_prompt_len(const rkv_workload *wl, int64_t S) { return wl->nturns > 0 ? wl->turn_input[0] : S; }

int rkv_workload_kv(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head,
                    int64_t n, float *K, float *V, kv_err *err)
{
    const int d = m->head_dim;
    if (d % 2 != 0 || d > 512)
        return kv_errf(err, "workload: head_dim %d must be even and at most 512", d);
    head_shape hs;
    int64_t S = wl->nturns > 0 ? wl->turn_input[0] : n;
    if (shape_build(wl, d, layer, kv_head, S, &hs) != 0) {
        shape_free(&hs);
        return kv_errf(err, "workload: out of memory");
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    if (!r) {
        shape_free(&hs);
        return kv_errf(err, "workload: out of memory");
    }
    gsl_rng_set(r, stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, 0, 2));
    const double theta = theta_of(wl, m);
    const int rk = wl->key_rank, h2 = d / 2;
    const float sc = hs.scale;
    float eps[512];
    int topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
    const double pswitch = wl->topic_run_mean > 1 ? 1.0 / wl->topic_run_mean : 1.0;
    for (int64_t t = 0; t < n; t++) {
        if (gsl_rng_uniform(r) < pswitch)
            topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
        float *k = K + (size_t)t * (size_t)d, *v = V + (size_t)t * (size_t)d;
        for (int j = 0; j < rk; j++)
            eps[j] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
        const float *c = hs.topic + (size_t)topic * (size_t)d, *cv = hs.topic_v + (size_t)topic * (size_t)d;
        for (int i = 0; i < d; i++) {
            float a = 0.0f;
            for (int j = 0; j < rk; j++)
                a += hs.A[(size_t)i * (size_t)rk + (size_t)j] * eps[j];
            k[i] = a + (float)wl->topic_strength * sc * c[i] + (float)(wl->recency_strength * hs.recency_gain) * sc * hs.rec[i]
                 + (float)gsl_ran_gaussian_ziggurat(r, wl->key_noise);
            v[i] = cv[i] + (float)gsl_ran_gaussian_ziggurat(r, wl->value_noise);
        }
        for (int o = 0; o < wl->outlier_channels && o < h2; o++) /* lowest frequencies, both halves */
            k[(o % 2 ? d : h2) - 1 - o / 2] += (float)wl->outlier_scale * (o % 4 < 2 ? 1.0f : -1.0f);
        if (t < wl->sink_tokens)
            for (int i = 0; i < d; i++)
                k[i] += (float)wl->sink_strength * sc * hs.sink[i];
        for (int j = 0; j < wl->needles && j < 64; j++)
            if (hs.needle_pos[j] == t)
                for (int i = 0; i < d; i++) {
                    k[i] = 0.5f * k[i]; /* the needle stands out from its run */
                    v[i] = (float)gsl_ran_gaussian_ziggurat(r, 2.0);
                }
        rope(k, d, t, theta);
        for (int j = 0; j < wl->needles && j < 64; j++)
            if (hs.needle_pos[j] == t) /* planted after RoPE: queries match it exactly */
                for (int i = 0; i < d; i++)
                    k[i] += (float)wl->needle_strength * sc * hs.needle[(size_t)j * (size_t)d + (size_t)i];
    }
    gsl_rng_free(r);
    shape_free(&hs);
    return 0;
}

void rkv_workload_query(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head,
                        int64_t pos, int turn, int decode, float *q)
{
    const int d = m->head_dim, G = mdl_group_size(m), h2 = d / 2;
    head_shape hs;
    int64_t S = wl->nturns > 0 ? wl->turn_input[0] : pos;
    if (shape_build(wl, d, layer, kv_head, S, &hs) != 0) {
        shape_free(&hs);
        memset(q, 0, (size_t)G * (size_t)d * sizeof *q);
        return;
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    gsl_rng_set(r, stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, (uint64_t)pos + 1, 3));
    const float sc = hs.scale;
    /* the turn's focus is a deterministic rotation of the head's topics */
    int nf = wl->focus_topics > 0 ? (wl->focus_topics < 16 ? wl->focus_topics : 16) : 1;
    int topic = (hs.focus[gsl_rng_uniform_int(r, (unsigned long)nf)] + 7 * turn) % wl->num_topics;
    if (decode && gsl_rng_uniform(r) < wl->decode_drift)
        topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
    int needle = -1;
    if (wl->needles > 0) {
        /* window queries ask about the even needles; a decode query asks about any needle with p = 1/4 */
        if (!decode && gsl_rng_uniform(r) < 0.5)
            needle = 2 * (int)gsl_rng_uniform_int(r, (unsigned long)((wl->needles + 1) / 2));
        else if (decode && gsl_rng_uniform(r) < 0.25)
            needle = (int)gsl_rng_uniform_int(r, (unsigned long)wl->needles);
        if (needle >= 64 || needle >= wl->needles)
            needle = -1;
    }
    float base[512], eta[512];
    for (int j = 0; j < wl->key_rank; j++)
        eta[j] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    const float *c = hs.topic + (size_t)topic * (size_t)d;
    for (int i = 0; i < d; i++) {
        float a = 0.0f;
        for (int j = 0; j < wl->key_rank; j++)
            a += hs.A[(size_t)i * (size_t)wl->key_rank + (size_t)j] * eta[j];
        base[i] = 0.5f * a + (float)wl->query_focus * sc * c[i] + sc * hs.sink[i]
                + (float)(wl->recency_strength * hs.recency_gain) * sc * hs.rec[i];
    }
    const double theta = theta_of(wl, m);
    for (int g = 0; g < G; g++) {
        float *qg = q + (size_t)g * (size_t)d;
        float gain = (float)(1.0 + gsl_ran_gaussian_ziggurat(r, wl->head_diversity));
        for (int i = 0; i < d; i++)
            qg[i] = base[i] * gain + (float)gsl_ran_gaussian_ziggurat(r, wl->query_noise);
        rope(qg, d, pos, theta);
        if (needle >= 0) {
            const float *nv = hs.needle + (size_t)needle * (size_t)d;
            for (int i = 0; i < d; i++)
                qg[i] += (float)wl->needle_strength * sc * nv[i];
        }
    }
    (void)h2;
    gsl_rng_free(r);
    shape_free(&hs);
}
