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
#include "workload_internal.h"

#include <gsl/gsl_blas.h>
#include <gsl/gsl_randist.h>
#include <pthread.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void rkv_workload_defaults(rkv_workload *wl)
{
    memset(wl, 0, sizeof *wl);
    snprintf(wl->generator, sizeof wl->generator, "handtuned");
    wl->seed = 1;
    wl->key_rank = 32;
    wl->topic_run_mean = 192.0;
    wl->num_topics = 64;
    wl->topic_strength = 2.0;
    wl->key_noise = 0.25;
    wl->outlier_channels = 4;
    wl->outlier_scale = 6.0;
    wl->sink_tokens = 4;
    wl->sink_key_scale = 1.0;
    wl->sink_strength = 8.0;
    wl->recency_strength = 1.5;
    wl->needles = 4;
    wl->needle_strength = 3.0;
    wl->focus_topics = 3;
    wl->query_focus = 3.0;
    wl->query_noise = 0.5;
    wl->query_content = 2.0;
    wl->query_persistence = 0.8;
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

unsigned long rkv_wl_stream_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t tag)
{
    uint64_t h = mix64(seed ^ 0x6b76736d5f776c31ull);
    h = mix64(h ^ a);
    h = mix64(h ^ (b << 20));
    h = mix64(h ^ (c << 1));
    h = mix64(h ^ tag);
    return (unsigned long)(h & 0xffffffffull) | 1ul;
}

/* Random unit vector supported on dims [lo, hi) of each RoPE half. */
void rkv_wl_unit_in_band(gsl_rng *r, int d, int lo, int hi, float *v)
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
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kvh, 0, 1));
    const int h2 = d / 2;
    for (int t = 0; t < nt; t++) {
        rkv_wl_unit_in_band(r, d, h2 - h2 / 4, h2, hs->topic + (size_t)t * (size_t)d);
        for (int i = 0; i < d; i++)
            hs->topic_v[(size_t)t * (size_t)d + (size_t)i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    }
    for (int i = 0; i < d * rk; i++)
        hs->A[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0 / sqrt((double)rk));
    rkv_wl_unit_in_band(r, d, h2 - h2 / 8, h2, hs->sink);
    rkv_wl_unit_in_band(r, d, h2 / 8, h2 / 2, hs->rec);
    for (int j = 0; j < nn && j < 64; j++) {
        rkv_wl_unit_in_band(r, d, 0, h2, hs->needle + (size_t)j * (size_t)d);
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

double rkv_wl_theta(const rkv_workload *wl, const mdl_model *m)
{
    return wl->rope_theta > 0 ? wl->rope_theta : (m->rope_theta > 0 ? m->rope_theta : 10000.0);
}

/* RoPE angles, cos and sin of pos·θ_i, shared by all (layer, head) pairs of
 * a process: computed once per (theta, d), grown to the longest sequence
 * asked for. Guarded by a mutex; readers get a stable pointer. */
typedef struct {
    double theta;
    int d;
    int64_t n;
    float *cs; /* (n, d/2, 2) */
} rope_table;

static pthread_mutex_t rope_mu = PTHREAD_MUTEX_INITIALIZER;
static rope_table rope_tab[4];
static int rope_ntab;
static float *rope_retired[64]; /* grown-out tables, reachable until exit */
static int rope_nretired;

const float *rkv_wl_rope_get(double theta, int d, int64_t n)
{
    pthread_mutex_lock(&rope_mu);
    rope_table *t = NULL;
    for (int i = 0; i < rope_ntab; i++)
        if (rope_tab[i].theta == theta && rope_tab[i].d == d)
            t = &rope_tab[i];
    if (!t) {
        if (rope_ntab == 4) { /* evict the oldest; callers never hold two */
            free(rope_tab[0].cs);
            memmove(rope_tab, rope_tab + 1, 3 * sizeof *rope_tab);
            rope_ntab = 3;
        }
        t = &rope_tab[rope_ntab++];
        memset(t, 0, sizeof *t);
        t->theta = theta;
        t->d = d;
    }
    if (t->n < n) {
        int64_t nn = n < 4096 ? 4096 : n;
        float *cs = malloc((size_t)nn * (size_t)d * sizeof *cs);
        if (!cs) {
            pthread_mutex_unlock(&rope_mu);
            return NULL;
        }
        /* old readers may still use the old table: keep it alive (leak-free: freed at exit) */
        for (int64_t p = 0; p < nn; p++)
            for (int i = 0; i < d / 2; i++) {
                double a = (double)p * pow(theta, -2.0 * i / d);
                cs[((size_t)p * (size_t)(d / 2) + (size_t)i) * 2] = (float)cos(a);
                cs[((size_t)p * (size_t)(d / 2) + (size_t)i) * 2 + 1] = (float)sin(a);
            }
        if (t->cs && rope_nretired < 64) /* readers may still hold it: retire, never free */
            rope_retired[rope_nretired++] = t->cs;
        t->cs = cs;
        t->n = nn;
    }
    const float *r = t->cs;
    pthread_mutex_unlock(&rope_mu);
    return r;
}

/* In-place RoPE at position pos (HF rotate_half layout), from the table. */
void rkv_wl_rope(float *x, int d, int64_t pos, const float *tab)
{
    const int h2 = d / 2;
    const float *cs = tab + (size_t)pos * (size_t)h2 * 2;
    for (int i = 0; i < h2; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        float x0 = x[i], x1 = x[i + h2];
        x[i] = x0 * c - x1 * s;
        x[i + h2] = x0 * s + x1 * c;
    }
}

int64_t rkv_workload_prompt_len(const rkv_workload *wl, int64_t S);
int64_t rkv_workload_prompt_len(const rkv_workload *wl, int64_t S) { return wl->nturns > 0 ? wl->turn_input[0] : S; }

/* A real model's keys and values, from the source, after checking its shape. */
static int real_kv(const rkv_qkv_source *in, const mdl_model *m, int layer, int kv_head, int64_t n, float *K,
                   float *V, kv_err *err)
{
    if (in->head_dim != m->head_dim || in->n_layer != m->num_hidden_layers ||
        in->n_kv_head != m->num_key_value_heads || in->n_head != m->num_attention_heads)
        return kv_errf(err, "workload: the KV dump (L=%d Hq=%d Hkv=%d d=%d) does not match model %s", in->n_layer,
                       in->n_head, in->n_kv_head, in->head_dim, m->name);
    if (n > in->n_tokens)
        return kv_errf(err, "workload: %lld tokens needed (context + steps) but the KV dump holds %lld",
                       (long long)n, (long long)in->n_tokens);
    in->get(in->ctx, layer, 0, kv_head, 0, n, K);
    in->get(in->ctx, layer, 1, kv_head, 0, n, V);
    return 0;
}

int rkv_workload_kv(const rkv_workload *wl, const mdl_model *m, int layer, int kv_head,
                    int64_t n, float *K, float *V, kv_err *err)
{
    const int d = m->head_dim;
    if (rkv_check_shape("workload", d, mdl_group_size(m), err) != 0)
        return -1;
    if (wl->real.get)
        return real_kv(&wl->real, m, layer, kv_head, n, K, V, err);
    if (!strcmp(wl->generator, "fitted"))
        return rkv_fitted_kv(wl, m, layer, kv_head, n, K, V, err);
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
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, 0, 2));
    const double theta = rkv_wl_theta(wl, m);
    const float *tab = rkv_wl_rope_get(theta, d, n);
    const int rk = wl->key_rank, h2 = d / 2;
    const float sc = hs.scale;
    if (!tab) {
        gsl_rng_free(r);
        shape_free(&hs);
        return kv_errf(err, "workload: out of memory");
    }
    /* low-rank part of every key at once: K = E·Aᵀ, E (n, rk) standard normal */
    if (rk > 0) {
        float *E = V; /* V is filled below; borrow it for E (n·rk <= n·d) */
        for (int64_t i = 0; i < n * rk; i++)
            E[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
        gsl_matrix_float_const_view Ev = gsl_matrix_float_const_view_array(E, (size_t)n, (size_t)rk);
        gsl_matrix_float_const_view Av = gsl_matrix_float_const_view_array(hs.A, (size_t)d, (size_t)rk);
        gsl_matrix_float_view Kv = gsl_matrix_float_view_array(K, (size_t)n, (size_t)d);
        gsl_blas_sgemm(CblasNoTrans, CblasTrans, 1.0f, &Ev.matrix, &Av.matrix, 0.0f, &Kv.matrix);
    } else {
        memset(K, 0, (size_t)n * (size_t)d * sizeof *K);
    }
    int topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
    const double pswitch = wl->topic_run_mean > 1 ? 1.0 / wl->topic_run_mean : 1.0;
    const float ts = (float)wl->topic_strength * sc, rs = (float)(wl->recency_strength * hs.recency_gain) * sc;
    for (int64_t t = 0; t < n; t++) {
        if (gsl_rng_uniform(r) < pswitch)
            topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
        float *k = K + (size_t)t * (size_t)d, *v = V + (size_t)t * (size_t)d;
        const float *c = hs.topic + (size_t)topic * (size_t)d, *cv = hs.topic_v + (size_t)topic * (size_t)d;
        for (int i = 0; i < d; i++)
            k[i] += ts * c[i] + rs * hs.rec[i] + (float)gsl_ran_gaussian_ziggurat(r, wl->key_noise);
        for (int i = 0; i < d; i++)
            v[i] = cv[i] + (float)gsl_ran_gaussian_ziggurat(r, wl->value_noise);
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
        rkv_wl_rope(k, d, t, tab);
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
    const int d = m->head_dim, G = mdl_group_size(m);
    if (wl->real.get) { /* heads kv_head·G .. kv_head·G + G - 1 of the real run (rkv_workload_kv checked the shape) */
        for (int g = 0; g < G; g++)
            wl->real.get(wl->real.ctx, layer, 2, kv_head * G + g, pos, 1, q + (size_t)g * (size_t)d);
        return;
    }
    if (!strcmp(wl->generator, "fitted")) {
        rkv_fitted_query(wl, m, layer, kv_head, pos, decode, q);
        return;
    }
    head_shape hs;
    int64_t S = wl->nturns > 0 ? wl->turn_input[0] : pos;
    if (shape_build(wl, d, layer, kv_head, S, &hs) != 0) {
        shape_free(&hs);
        memset(q, 0, (size_t)G * (size_t)d * sizeof *q);
        return;
    }
    gsl_rng *r = gsl_rng_alloc(gsl_rng_taus2);
    gsl_rng_set(r, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, (uint64_t)pos + 1, 3));
    const float sc = hs.scale;
    /* the turn's focus is a deterministic rotation of the head's topics */
    int nf = wl->focus_topics > 0 ? (wl->focus_topics < 16 ? wl->focus_topics : 16) : 1;
    int topic = (hs.focus[gsl_rng_uniform_int(r, (unsigned long)nf)] + 7 * turn) % wl->num_topics;
    int drifted = 0;
    if (decode && gsl_rng_uniform(r) < wl->decode_drift) {
        topic = (int)gsl_rng_uniform_int(r, (unsigned long)wl->num_topics);
        drifted = 1;
    }
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
    /* the content part persists over a turn (queries of a head stay alike, as
     * SnapKV observed); a drifting decode query takes fresh content */
    float base[RKV_MAX_HEAD_DIM], eta[RKV_MAX_HEAD_DIM];
    gsl_rng *rt = gsl_rng_alloc(gsl_rng_taus2);
    gsl_rng_set(rt, rkv_wl_stream_seed(wl->seed, (uint64_t)layer, (uint64_t)kv_head, (uint64_t)turn, 4));
    const double keep = drifted ? 0.0 : sqrt(wl->query_persistence), fresh = sqrt(1.0 - keep * keep);
    for (int j = 0; j < wl->key_rank; j++) {
        double a = gsl_ran_gaussian_ziggurat(rt, 1.0), b = gsl_ran_gaussian_ziggurat(r, 1.0);
        eta[j] = (float)(keep * a + fresh * b);
    }
    gsl_rng_free(rt);
    const float *c = hs.topic + (size_t)topic * (size_t)d;
    for (int i = 0; i < d; i++) {
        float a = 0.0f;
        for (int j = 0; j < wl->key_rank; j++)
            a += hs.A[(size_t)i * (size_t)wl->key_rank + (size_t)j] * eta[j];
        base[i] = (float)wl->query_content * a + (float)wl->query_focus * sc * c[i] + sc * hs.sink[i]
                + (float)(wl->recency_strength * hs.recency_gain) * sc * hs.rec[i];
    }
    const float *tab = rkv_wl_rope_get(rkv_wl_theta(wl, m), d, pos + 1);
    for (int g = 0; g < G; g++) {
        float *qg = q + (size_t)g * (size_t)d;
        float gain = (float)(1.0 + gsl_ran_gaussian_ziggurat(r, wl->head_diversity));
        for (int i = 0; i < d; i++)
            qg[i] = base[i] * gain + (float)gsl_ran_gaussian_ziggurat(r, wl->query_noise);
        if (tab)
            rkv_wl_rope(qg, d, pos, tab);
        if (needle >= 0) {
            const float *nv = hs.needle + (size_t)needle * (size_t)d;
            for (int i = 0; i < d; i++)
                qg[i] += (float)wl->needle_strength * sc * nv[i];
        }
    }
    gsl_rng_free(r);
    shape_free(&hs);
}
