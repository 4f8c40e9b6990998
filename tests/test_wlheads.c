/* test_wlheads.c — the fitted generator's measured heads (rec_kernel heads,
 * `kvsim workload fit --recency heads`): the logits its means give, the
 * residual covariance and latent it draws, the short-range agreement, the
 * mapping to another model shape, the measurement that feeds it (wl_pairs.c),
 * the fit end to end, and its YAML form. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"
#include "text_file.h"
#include "wl.h"
#include "wlfit_util.h"

enum { D = 32, H2 = 16, KR = 5 * H2 + D, QR = 5 * H2 };

/* Rows for shape() (2 layers, 1 KV head, 2 query heads, d = 32): key means
 * 1.5 on pair 2 (re) and 0.7j on pair 5, sink key 2 on dim 3 and −1 on dim
 * 19; query means (2 − 1j)·c on pair 2 and (0.5 + 3j)·c' on pair 5 for head 0,
 * the conjugates for head 1, c and c' chosen so that the amplitude
 * μ_q·conj(μ_k)/√d is 2 − 1j and 0.5 + 3j (head 0); covariances kvar and
 * qvar (var re = var im, no covariance) on every pair. */
static float rows[2 * KR + 4 * QR];

static rkv_workload heads_class(double kvar, double qvar, double agree, double span)
{
    memset(rows, 0, sizeof rows);
    const double sd = sqrt((double)D);
    for (int l = 0; l < 2; l++) {
        float *k = rows + l * KR;
        k[2] = 1.5f;       /* pair 2: 1.5 */
        k[H2 + 5] = 0.7f;  /* pair 5: 0.7j */
        for (int i = 0; i < H2; i++) k[2 * H2 + i] = k[4 * H2 + i] = (float)kvar;
        k[5 * H2 + 3] = 2.0f;
        k[5 * H2 + 19] = -1.0f;
        for (int g = 0; g < 2; g++) {
            float *q = rows + 2 * KR + (l * 2 + g) * QR;
            const double s = g ? -1.0 : 1.0; /* head 1: the conjugate amplitudes */
            /* a = μq·conj(μk)/√d: pair 2, μk = 1.5: μq = a·√d/1.5; pair 5, μk = 0.7j: μq = a·√d/(−0.7j) = a·√d·j/0.7 */
            q[2] = (float)(2.0 * sd / 1.5);
            q[H2 + 2] = (float)(s * -1.0 * sd / 1.5);
            q[5] = (float)(-s * 3.0 * sd / 0.7); /* j·(0.5 + 3j·s) = −3s + 0.5j */
            q[H2 + 5] = (float)(0.5 * sd / 0.7);
            for (int i = 0; i < H2; i++) q[2 * H2 + i] = q[4 * H2 + i] = (float)qvar;
        }
    }
    rkv_workload wl = one_class((rkv_head_class){.name = "h", .persistence = 0.5, .agree = agree});
    wl.rec_ladder = RKV_REC_HEADS;
    wl.hv_layers = 2;
    wl.hv_q_heads = 2;
    wl.hv_kv_heads = 1;
    wl.hv_head_dim = D;
    wl.pair_theta = 10000.0;
    wl.agree_span = span;
    wl.outlier_channels = 0;
    wl.hh_fraction = 0.0;
    wl.hv = rkv_wl_hv_intern(rows, sizeof rows / sizeof rows[0]);
    cr_assert_not_null(wl.hv);
    return wl;
}

static double theta(int i, int d)
{
    return pow(10000.0, -2.0 * i / d);
}

/* Asserts that key t (1 .. n-1) of each head's logits sc[g·n + t] is the
 * measured means' f2·Re(a_2·e^(jθ_2Δ)) + f5·Re(a_5·e^(jθ_5Δ)), Δ = p − t, with
 * heads_class's amplitudes (a_2 = 2 − 1j, a_5 = 0.5 + 3j; head 1 the
 * conjugates), written out here. */
static void means_logits_are(const double *sc, int64_t n, int64_t p, double f2, double f5, double tol)
{
    const double th2 = theta(2, D), th5 = theta(5, D);
    for (int g = 0; g < 2; g++) {
        const double s = g ? -1.0 : 1.0;
        for (int64_t t = 1; t < n; t++) {
            const double Dt = (double)(p - t);
            const double want = f2 * (2.0 * cos(th2 * Dt) + s * sin(th2 * Dt)) + f5 * (0.5 * cos(th5 * Dt) - s * 3.0 * sin(th5 * Dt));
            cr_assert_float_eq(sc[g * n + t], want, tol, "head %d key %lld: %g, want %g", g, (long long)t, sc[g * n + t], want);
        }
    }
}

/* With no residual the logits are the means turned by RoPE: a key at distance
 * Δ scores Σ_i Re(a_i·e^(jθ_iΔ)), a = 2 − 1j on pair 2 and 0.5 + 3j on pair
 * 5 (head 0; head 1 the conjugates), θ_i = 10000^(−2i/32); the sink key is
 * the measured one alone and scores RoPE_p(μ_q)·k0/√d. Both computed here. */
Test(wlheads, logits_are_the_measured_means)
{
    rkv_workload wl = heads_class(0.0, 0.0, 0.0, 0.0);
    mdl_model m = shape();
    const int64_t n = 600, p = 599;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    means_logits_are(sc, n, p, 1.0, 1.0, 3e-4);
    for (int g = 0; g < 2; g++) /* the sink: q = RoPE_p(μq); k0 has dims 3 and 19 (pair 3): μq has nothing there */
        cr_assert_float_eq(sc[g * n], 0.0, 1e-5, "head %d sink %g", g, sc[g * n]);
    free(sc);
    /* the sink key itself, bit for bit the measured row (same shape: factor 1) */
    float *K = malloc((size_t)n * D * sizeof *K), *V = malloc((size_t)n * D * sizeof *V);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 0, n, K, V, &err), 0, "%s", err.msg);
    for (int i = 0; i < D; i++)
        cr_assert_eq(K[i], i == 3 ? 2.0f : i == 19 ? -1.0f : 0.0f, "sink dim %d: %g", i, K[i]);
    free(K);
    free(V);
}

/* A ladder profile with top-level line top and class keys extra, which the
 * loader must refuse with message want (a heads-only key without heads). */
static void refused_on_ladder(const char *path, const char *top, const char *extra, const char *want)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "generator: fitted\nrec_span: [1, 32, 2048]\nrec_kernel: ladder\n%sclasses:\n"
             "  - {name: a, sink: 0, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, persistence: 0.5%s}\n"
             "class_map:\n  - [a]\n",
             top, extra);
    write_text(path, buf);
    rkv_workload b;
    kv_err err;
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, want);
}

/* mean_gain scales the measured mean query by band of the pair's turns over
 * the measured context (2048 here, no stretch): pair 2 turns 2048·θ_2/2π ≈ 103
 * times (>= 64: fast, band 0), pair 5 ≈ 18 times (4 .. 64: mid, band 1). With
 * mean_gain [ln 2, −ln 4] a key at distance Δ scores 2·Re(a_2·e^(jθ_2Δ)) +
 * Re(a_5·e^(jθ_5Δ))/4: the bands and the logits computed here. */
Test(wlheads, mean_gain_scales_the_means_by_band)
{
    rkv_workload wl = heads_class(0.0, 0.0, 0.0, 0.0);
    wl.hv_context = 2048;
    wl.cls[0].mean_gain[0] = log(2.0);
    wl.cls[0].mean_gain[1] = -log(4.0);
    const double turns2 = 2048.0 * theta(2, D) / (2.0 * M_PI), turns5 = 2048.0 * theta(5, D) / (2.0 * M_PI);
    cr_assert(turns2 >= 64.0 && turns5 >= 4.0 && turns5 < 64.0, "%g %g", turns2, turns5);
    mdl_model m = shape();
    const int64_t n = 600, p = 599;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    means_logits_are(sc, n, p, 2.0, 0.25, 5e-4);
    free(sc);
}

/* mean_gain and resid_tail in YAML: written only when set, read back;
 * refused without rec_kernel heads (file:line:col), mean_gain with the wrong
 * count. */
Test(wlheads, mean_gain_yaml)
{
    rkv_workload a = heads_class(0.5, 0.25, 0.35, 2.0);
    a.hv_context = 2080;
    a.cls[0].mean_gain[0] = -1.25;
    a.cls[0].mean_gain[1] = 0.5;
    kv_err err;
    const char *path = "build/test_wlheads_mg.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(b.cls[0].mean_gain[0], -1.25, 1e-9);
    cr_assert_float_eq(b.cls[0].mean_gain[1], 0.5, 1e-9);
    cr_assert_float_eq(b.resid_tail, 0.0, 0.0, "absent: Gaussian residuals");
    a.resid_tail = 0.15;
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(b.resid_tail, 0.15, 1e-12);
    a.resid_tail = 0.0;
    refused_on_ladder(path, "resid_tail: 0.2\n", "",
                      "build/test_wlheads_mg.yaml:4:13: key 'resid_tail' needs rec_kernel 'heads'");
    refused_on_ladder(path, "", ", mean_gain: [0, 1]",
                      "build/test_wlheads_mg.yaml:5:108: class 1: key 'mean_gain' needs rec_kernel 'heads'");
    a.cls[0].mean_gain[0] = a.cls[0].mean_gain[1] = 0.0;
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[65536];
    int seen = 0;
    while (fgets(line, sizeof line, f)) seen |= strstr(line, "mean_gain") != NULL;
    fclose(f);
    cr_assert_eq(seen, 0, "a class without mean_gain writes none (older readers load it)");
    /* one number where two are needed */
    f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    const size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    char *ag = strstr(text, "agree: 0.3500}");
    cr_assert_not_null(ag, "the class line");
    char bad[(1 << 20) + 32];
    snprintf(bad, sizeof bad, "%.*sagree: 0.3500, mean_gain: [1]}%s", (int)(ag - text), text, ag + strlen("agree: 0.3500}"));
    write_text(path, bad);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert(strstr(err.msg, "build/test_wlheads_mg.yaml:") == err.msg &&
                  strstr(err.msg, ": class 1: key 'mean_gain': expected a list of 2 numbers"),
              "%s", err.msg);
    remove(path);
}

/* Past the measured context the measured part stretches: with hv_context 512
 * and a run of 2048 positions (s = 4), pair i turns at θ'_i = θ_i·(γ + (1 −
 * γ)/4), γ = clamp((r − 1)/31, 0, 1), r = 512·θ_i/2π (YaRN by parts, α = 1,
 * β = 32), and every logit is multiplied by (1 + 0.1·ln 4)²: a key at distance
 * Δ scores that times Σ Re(a_i·e^(jθ'_iΔ)). The ramp, the temperature and the
 * logits computed here; a run of 512 positions or less is not stretched (the
 * first test). */
Test(wlheads, stretch_is_yarn_by_parts)
{
    rkv_workload wl = heads_class(0.0, 0.0, 0.0, 0.0);
    wl.hv_context = 512;
    wl.run_context = 2048;
    mdl_model m = shape();
    const int64_t n = 2048, p = 2047;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    double thp[H2];
    for (int i = 0; i < H2; i++) {
        const double r = 512.0 * theta(i, D) / (2.0 * M_PI);
        const double g = r < 1 ? 0 : r > 32 ? 1 : (r - 1) / 31;
        thp[i] = theta(i, D) * (g + (1 - g) / 4.0);
    }
    const double temp = pow(1.0 + 0.1 * log(4.0), 2.0);
    for (int g = 0; g < 2; g++) {
        const double s = g ? -1.0 : 1.0;
        for (int64_t t = 1; t < n; t += 7) {
            const double Dt = (double)(p - t);
            const double want =
                temp * (2.0 * cos(thp[2] * Dt) + s * sin(thp[2] * Dt) + 0.5 * cos(thp[5] * Dt) - s * 3.0 * sin(thp[5] * Dt));
            cr_assert_float_eq(sc[g * n + t], want, 1e-3, "head %d key %lld: %g, want %g", g, (long long)t, sc[g * n + t],
                               want);
        }
    }
    free(sc);
}

/* A target of head_dim 64 takes for its pair j the measured pair round(j/2)
 * (pairs per unit of log frequency: 16/ln 10000 measured, 32/ln 10000 here),
 * its means times hf = √(0.5·√(64/32)), so a key at distance Δ scores
 * Σ_j hf²·Re(a_(round(j/2))·√32/√64 ... ) — written out: hf²·√32/√64·Σ_j
 * Re(a_i·e^(jθ_jΔ)) with θ_j = 10000^(−2j/64). And a target with 2 KV heads
 * and 4 query heads gives its KV head 1 the measured KV head 0 and its query
 * heads 2, 3 the measured heads 0, 1: same logits as heads 0, 1. */
Test(wlheads, map_to_another_shape)
{
    rkv_workload wl = heads_class(0.0, 0.0, 0.0, 0.0);
    mdl_model m = shape();
    m.head_dim = 64;
    const int64_t n = 300, p = 299;
    double *sc = malloc(2 * (size_t)n * sizeof *sc);
    head_logits(&wl, &m, n, p, sc);
    const double hf2 = 0.5 * sqrt(2.0), scale = hf2 * sqrt(32.0) / sqrt(64.0);
    for (int64_t t = 1; t < n; t++) {
        double want = 0.0;
        for (int j = 0; j < 32; j++) {
            const int i = (int)floor(j * 0.5 + 0.5);
            const double th = theta(j, 64), Dt = (double)(p - t);
            if (i == 2) want += 2.0 * cos(th * Dt) + 1.0 * sin(th * Dt);
            if (i == 5) want += 0.5 * cos(th * Dt) - 3.0 * sin(th * Dt);
        }
        cr_assert_float_eq(sc[t], scale * want, 5e-4, "key %lld: %g, want %g", (long long)t, sc[t], scale * want);
    }
    free(sc);
    mdl_model m2 = shape();
    m2.num_key_value_heads = 2;
    m2.num_attention_heads = 4;
    const int64_t n2 = 200;
    float *K = malloc((size_t)n2 * D * sizeof *K), *V = malloc((size_t)n2 * D * sizeof *V), *q = malloc(2 * D * sizeof *q);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m2, 1, 1, n2, K, V, &err), 0, "%s", err.msg);
    rkv_workload_query(&wl, &m2, 1, 1, n2 - 1, 0, 1, q);
    for (int g = 0; g < 2; g++) {
        const double s = g ? -1.0 : 1.0, Dt = 50.0;
        double sc1 = 0;
        for (int i = 0; i < D; i++) sc1 += (double)q[g * D + i] * K[(n2 - 1 - 50) * D + i];
        const double want = 2.0 * cos(theta(2, D) * Dt) + s * sin(theta(2, D) * Dt) + 0.5 * cos(theta(5, D) * Dt) -
                            s * 3.0 * sin(theta(5, D) * Dt);
        cr_assert_float_eq(sc1 / sqrt((double)D), want, 3e-4, "query head %d: %g, want %g", 2 + g, sc1 / sqrt((double)D), want);
    }
    free(K);
    free(V);
    free(q);
}

/* The residual latent with agree_span s is an exponential moving average of
 * unit innovations over M = ⌈4s⌉ positions, z(t) = √(1 − a²)·Σ_(m<M) a^m·ξ(t − m),
 * a = e^(−1/s), so the covariance of a key residual component with the same
 * component Δ positions later, over the measured variance, is the truncated
 * sum (1 − a²)·Σ_(m<M−Δ) a^(2m+Δ) = a^Δ·(1 − a^(2(M−Δ))), computed here.
 * Measured over 20000 keys × 32 components (s.e. about 0.0015). */
Test(wlheads, latent_correlation_falls_as_a_power)
{
    const double span = 4.0, a = exp(-1.0 / span);
    const int M = 16;
    rkv_workload wl = heads_class(2.25, 0.0, 0.0, span);
    mdl_model m = shape();
    const int64_t n = 20000;
    float *K = malloc((size_t)n * D * sizeof *K), *V = malloc((size_t)n * D * sizeof *V);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    /* the residual, RoPE taken out of every pair, means subtracted */
    double *z = malloc((size_t)n * D * sizeof *z);
    for (int64_t t = 1; t < n; t++)
        for (int i = 0; i < H2; i++) {
            const double c = cos(theta(i, D) * (double)t), s = sin(theta(i, D) * (double)t);
            const double x = K[t * D + i], y = K[t * D + H2 + i];
            z[t * D + i] = x * c + y * s - (i == 2 ? 1.5 : 0.0);
            z[t * D + H2 + i] = -x * s + y * c - (i == 5 ? 0.7 : 0.0);
        }
    const int lags[] = {0, 1, 2, 4};
    for (int li = 0; li < 4; li++) {
        const int L = lags[li];
        double acc = 0;
        int64_t cnt = 0;
        for (int64_t t = 1; t + L < n; t++)
            for (int i = 0; i < D; i++, cnt++) acc += z[t * D + i] * z[(t + L) * D + i];
        const double got = acc / (double)cnt / 2.25;
        const double want = pow(a, L) * (1.0 - pow(a, 2.0 * (M - L)));
        cr_assert_float_eq(got, want, 0.01, "lag %d: correlation %g, want %g", L, got, want);
    }
    free(z);
    free(K);
    free(V);
}

/* resid_tail σ scales each position's residual by s = e^(σε − σ²), ε ~ N(0, 1):
 * E[s²] = 1, so the variance stays the pair's (2.25 here), and E[s⁴] = e^(4σ²),
 * so the residual's kurtosis E[r⁴]/E[r²]² becomes 3·e^(4σ²) (Gaussian: 3) —
 * with σ = 0.5, 3e ≈ 8.15. Both worked here; 20000 positions x 32 dims, with
 * independent latents (agree_span 0). The dims of one position share s, so
 * the kurtosis is estimated within ±10 %. */
Test(wlheads, resid_tail_keeps_the_variance_and_fattens_the_tails)
{
    const double sg = 0.5, kvar = 2.25;
    rkv_workload wl = heads_class(kvar, 0.0, 0.0, 0.0);
    wl.resid_tail = sg;
    mdl_model m = shape();
    const int64_t n = 20000;
    float *K = malloc((size_t)n * D * sizeof *K), *V = malloc((size_t)n * D * sizeof *V);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 0, 0, n, K, V, &err), 0, "%s", err.msg);
    double m2 = 0.0, m4 = 0.0;
    int64_t cnt = 0;
    for (int64_t t = 1; t < n; t++)
        for (int i = 0; i < H2; i++) {
            const double c = cos(theta(i, D) * (double)t), sn = sin(theta(i, D) * (double)t);
            const double x = K[t * D + i], y = K[t * D + H2 + i];
            const double r[2] = {x * c + y * sn - (i == 2 ? 1.5 : 0.0), -x * sn + y * c - (i == 5 ? 0.7 : 0.0)};
            for (int k = 0; k < 2; k++, cnt++) {
                m2 += r[k] * r[k];
                m4 += r[k] * r[k] * r[k] * r[k];
            }
        }
    m2 /= (double)cnt;
    m4 /= (double)cnt;
    cr_assert_float_eq(m2 / kvar, 1.0, 0.03, "variance %g, want %g", m2, kvar);
    const double kurt = m4 / (m2 * m2), want = 3.0 * exp(4.0 * sg * sg);
    cr_assert_float_eq(kurt / want, 1.0, 0.10, "kurtosis %g, want %g", kurt, want);
    free(K);
    free(V);
}

/* The short-range agreement: with unit residual variance on every pair of
 * keys and queries, iid latents (agree_span 0) and the class's agree ρ, a
 * query shares ρ·σ_q·z(p) with its own key's residual σ_k·z(p), so its own
 * key scores on average ρ·Σ_pairs 2·σ_qσ_k/√d = ρ·32/√32 above the rest (whose
 * residuals are independent of it, 0 on average) — RoPE turns both by the
 * same angle at distance 0. Averaged over 400 decode positions (s.e. about
 * 0.05 per mean). */
Test(wlheads, agree_raises_the_own_key)
{
    const double rho = 0.5;
    rkv_workload wl = heads_class(1.0, 1.0, rho, 0.0);
    for (int i = 0; i < (int)(sizeof rows / sizeof rows[0]); i++) /* means off: only the residuals */
        if ((i < 2 * KR && (i % KR < 2 * H2 || i % KR >= 5 * H2)) || (i >= 2 * KR && (i - 2 * KR) % QR < 2 * H2)) rows[i] = 0;
    wl.hv = rkv_wl_hv_intern(rows, sizeof rows / sizeof rows[0]);
    mdl_model m = shape();
    const int64_t n = 1200;
    float *K = malloc((size_t)n * D * sizeof *K), *V = malloc((size_t)n * D * sizeof *V), *q = malloc(2 * D * sizeof *q);
    kv_err err;
    cr_assert_eq(rkv_workload_kv(&wl, &m, 1, 0, n, K, V, &err), 0, "%s", err.msg);
    double own = 0, prev = 0;
    int cnt = 0;
    for (int64_t p = n - 400; p < n; p++) {
        rkv_workload_query(&wl, &m, 1, 0, p, 0, 1, q);
        for (int g = 0; g < 2; g++, cnt++) {
            double s0 = 0, s1 = 0;
            for (int i = 0; i < D; i++) {
                s0 += (double)q[g * D + i] * K[p * D + i];
                s1 += (double)q[g * D + i] * K[(p - 1) * D + i];
            }
            own += s0 / sqrt((double)D);
            prev += s1 / sqrt((double)D);
        }
    }
    own /= cnt;
    prev /= cnt;
    const double want = rho * 32.0 / sqrt((double)D);
    cr_assert_float_eq(own, want, 0.25, "own key: mean logit %g, want %g", own, want);
    cr_assert_float_eq(prev, 0.0, 0.25, "previous key: mean logit %g, want 0", prev);
    free(K);
    free(V);
    free(q);
}

/* wl_heads_measure on a heads workload gives back the rows that made it: the
 * means (1.5 on pair 2, 0.7j on pair 5), the residual covariance (var 0.5 on
 * every pair of keys, no covariance) and the sink key exactly; the query means
 * and the covariance of queries 0.25. 2047 keys and 64 queries: the key
 * figures within 0.05 (3 s.e. of a mean, sqrt(0.5/2047) = 0.016), the query
 * ones within 0.25 (4 s.e., sqrt(0.25/64) = 0.0625). */
Test(wlheads, measure_gives_back_the_rows)
{
    rkv_workload wl = heads_class(0.5, 0.25, 0.0, 0.0);
    mdl_model m = shape();
    double *acc = calloc(2 * KR + 4 * QR, sizeof *acc);
    kv_err err;
    cr_assert_eq(wl_heads_measure(&wl, &m, 2048, 32, 32, 1.0, acc, &err), 0, "%s", err.msg);
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < KR; i++) {
            const double want = rows[l * KR + i];
            const double tol = i >= 5 * H2 ? 1e-6 : 0.05;
            cr_assert_float_eq(acc[l * KR + i], want, tol, "layer %d key row [%d]: %g, want %g", l, i, acc[l * KR + i], want);
        }
        for (int g = 0; g < 2; g++)
            for (int i = 0; i < QR; i++) {
                const double got = acc[2 * KR + (l * 2 + g) * QR + i], want = rows[2 * KR + (l * 2 + g) * QR + i];
                cr_assert_float_eq(got, want, 0.25, "layer %d head %d query row [%d]: %g, want %g", l, g, i, got, want);
            }
    }
    free(acc);
}

/* The fit end to end on a known heads workload's own profile and rows: the
 * result is rec_kernel heads, carries exactly the rows it was given, and its
 * class agree stays in [0, 1]; it round-trips through YAML. */
Test(wlheads, fit_end_to_end)
{
    rkv_workload src = heads_class(0.5, 0.25, 0.3, 1.0);
    mdl_model m = shape();
    const int64_t C = 512;
    wl_profile prof;
    kv_err err;
    cr_assert_eq(wl_profile_run(&src, &m, C, 32, 8, NULL, 0, 1, &prof, &err), 0, "%s", err.msg);
    double *acc = calloc(2 * KR + 4 * QR, sizeof *acc);
    cr_assert_eq(wl_heads_measure(&src, &m, C, 32, 8, 1.0, acc, &err), 0, "%s", err.msg);
    float *x = malloc((2 * KR + 4 * QR) * sizeof *x);
    for (int i = 0; i < 2 * KR + 4 * QR; i++) x[i] = (float)acc[i];
    wl_fit_cfg cfg = {.classes = 2, .context = C, .window = 32, .steps = 8, .threads = 1, .seed = 1,
                      .head_vec = rkv_wl_hv_intern(x, 2 * KR + 4 * QR)};
    rkv_workload fw;
    cr_assert_eq(wl_fit(&prof, 1, &m, &cfg, &fw, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(fw.rec_ladder, RKV_REC_HEADS);
    cr_assert_eq(fw.hv, cfg.head_vec);
    cr_assert_eq(fw.nclasses, 2);
    for (int c = 0; c < 2; c++) {
        cr_assert(fw.cls[c].agree >= 0 && fw.cls[c].agree <= 1, "class %d agree %g", c, fw.cls[c].agree);
        cr_assert_eq(fw.cls[c].sink, 0.0, "class %d: the sink is measured, its weight stays 0", c);
        for (int k = 0; k < 2; k++)
            cr_assert(fabs(fw.cls[c].mean_gain[k]) <= 2.0, "class %d mean_gain[%d] %g", c, k, fw.cls[c].mean_gain[k]);
    }
    const char *path = "build/test_wlheads_fit.yaml";
    cr_assert_eq(wl_write_yaml(&fw, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.rec_ladder, RKV_REC_HEADS);
    cr_assert_float_eq(b.agree_span, 0.75, 1e-9); /* the fit's key side (wl_fit.c), not the source's 1 */
    cr_assert_float_eq(b.hh_sigma, 0.25, 1e-9);
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 2; k++) cr_assert_float_eq(b.cls[c].mean_gain[k], fw.cls[c].mean_gain[k], 1e-4);
    for (int i = 0; i < 2 * KR + 4 * QR; i++)
        cr_assert_float_eq(b.hv[i], x[i], 1e-4 * (1 + fabs(x[i])), "row float %d: %g, wrote %g", i, b.hv[i], x[i]);
    remove(path);
    wl_profile_free(&prof);
    free(acc);
    free(x);
}

/* A heads profile written and read back keeps every float the %.5g it was
 * printed with allows, agree and agree_span; the refusals, by hand. */
Test(wlheads, yaml_round_trip_and_errors)
{
    rkv_workload a = heads_class(0.5, 0.25, 0.35, 2.0);
    a.hv_context = 2080;
    kv_err err;
    const char *path = "build/test_wlheads.yaml";
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    rkv_workload b;
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(b.rec_ladder, RKV_REC_HEADS);
    cr_assert_eq(b.hv_layers, 2);
    cr_assert_eq(b.hv_q_heads, 2);
    cr_assert_eq(b.hv_kv_heads, 1);
    cr_assert_eq(b.hv_head_dim, 32);
    cr_assert_float_eq(b.agree_span, 2.0, 1e-9);
    cr_assert_eq(b.hv_context, 2080);
    cr_assert_eq(b.run_context, 0, "the run's context is never read from a file");
    cr_assert_float_eq(b.cls[0].agree, 0.35, 1e-9);
    for (int i = 0; i < 2 * KR + 4 * QR; i++)
        cr_assert_float_eq(b.hv[i], rows[i], 1e-4 * (1 + fabs(rows[i])), "float %d: %g, wrote %g", i, b.hv[i], rows[i]);
    static const char head[] = "generator: fitted\nrec_span: [1, 32, 2048]\nrec_kernel: heads\npair_theta: 10000\n";
    static const char cls[] = "classes:\n  - {name: a, sink: 0, hh: 0, rec: [0, 0, 0], focus: 0, content: 0, noise: 0, "
                              "persistence: 0.5}\nclass_map:\n  - [a]\n";
    char buf[4096];
    /* a key row one number short (head_dim 4: key rows of 5·2 + 4 = 14, query rows of 10) */
    snprintf(buf, sizeof buf, "%shead_vectors:\n  layers: 1\n  q_heads: 1\n  kv_heads: 1\n  head_dim: 4\n"
                              "  keys:\n    - [0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0]\n"
                              "  queries:\n    - [0, 0, 0, 0, 1, 0, 1, 1, 0, 1]\n%s", head, cls);
    write_text(path, buf);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlheads.yaml:11:7: key 'head_vectors': each 'keys' row needs 14 numbers");
    /* pair 1's covariance (1, 2, 1): 4 > 1·1, not positive semidefinite */
    snprintf(buf, sizeof buf, "%shead_vectors:\n  layers: 1\n  q_heads: 1\n  kv_heads: 1\n  head_dim: 4\n"
                              "  keys:\n    - [0, 0, 0, 0, 1, 1, 0, 2, 1, 1, 0, 0, 0, 0]\n"
                              "  queries:\n    - [0, 0, 0, 0, 1, 0, 1, 1, 0, 1]\n%s", head, cls);
    write_text(path, buf);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlheads.yaml:11:29: key 'head_vectors': pair 1's covariance (1, 2, 1) is not "
                              "positive semidefinite");
    /* a negative variance */
    snprintf(buf, sizeof buf, "%shead_vectors:\n  layers: 1\n  q_heads: 1\n  kv_heads: 1\n  head_dim: 4\n"
                              "  keys:\n    - [0, 0, 0, 0, -1, 1, 0, 0, 1, 1, 0, 0, 0, 0]\n"
                              "  queries:\n    - [0, 0, 0, 0, 1, 0, 1, 1, 0, 1]\n%s", head, cls);
    write_text(path, buf);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert(strstr(err.msg, "build/test_wlheads.yaml:11:20: key 'keys'"), "%s", err.msg);
    /* head_vectors and agree need rec_kernel heads */
    refused_on_ladder(path, "agree_span: 1\n", "",
                      "build/test_wlheads.yaml:4:13: key 'agree_span' needs rec_kernel 'heads'");
    refused_on_ladder(path, "", ", agree: 0.5",
                      "build/test_wlheads.yaml:5:104: class 1: key 'agree' needs rec_kernel 'heads'");
    /* rec_kernel heads without head_vectors */
    snprintf(buf, sizeof buf, "%s%s", head, cls);
    write_text(path, buf);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert_str_eq(err.msg, "build/test_wlheads.yaml:1:1: key 'head_vectors': rec_kernel 'heads' needs a mapping "
                              "{layers, q_heads, kv_heads, head_dim, keys, queries}");
    remove(path);
}

/* rkv_workload_load_mem (what the YAML fuzz harness reads) gives what
 * rkv_workload_load gives for the same bytes: the seed file of the harness,
 * read both ways — the interned rows the same pointer, every knob equal —
 * and a bad document refused with the name it was given. */
Test(wlheads, load_mem_equals_load)
{
    const char *path = "tests/data/workload_heads_seed.yaml";
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    char buf[4096];
    const size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    rkv_workload a, b;
    kv_err err;
    cr_assert_eq(rkv_workload_load(path, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_load_mem("mem.yaml", buf, n, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(a.hv, b.hv);
    cr_assert_eq(a.hv_context, 64);
    cr_assert_eq(b.hv_context, 64);
    cr_assert_eq(a.hv_head_dim, b.hv_head_dim);
    cr_assert_float_eq(a.cls[0].agree, 0.3, 1e-12);
    cr_assert_float_eq(b.cls[0].agree, 0.3, 1e-12);
    cr_assert_float_eq(a.cls[0].mean_gain[0], -0.5, 1e-12);
    cr_assert_float_eq(b.cls[0].mean_gain[1], 0.25, 1e-12);
    cr_assert_float_eq(a.resid_tail, 0.1, 1e-12);
    cr_assert_float_eq(b.resid_tail, 0.1, 1e-12);
    cr_assert_float_eq(a.agree_span, b.agree_span, 0.0);
    cr_assert_str_eq(b.path, "mem.yaml");
    cr_assert_eq(rkv_workload_load_mem("mem.yaml", "generator: fitted\nrec_kernel: heads\n", 35, &b, &err), -1);
    cr_assert(strstr(err.msg, "mem.yaml:"), "%s", err.msg);
}

/* group_share γ and group_tail σ: head g's residual draw at a position is
 * √(1 − γ)·u_g + √γ·s·w, u_g its own, w and s = e^(σε − σ²) the group's. Per
 * component, worked here: variance (1 − γ) + γ·E[s²] = 1; the two heads'
 * covariance γ·E[s²] = γ; E[x0²·x1²] = (1 − γ)² + 2γ(1 − γ) + 3γ²·E[s⁴] with
 * E[s⁴] = e^(4σ²): for γ = 0.5, σ = 0.3, 0.75 + 0.75·e^0.36 = 1.825 (1.5
 * with no tail, 1 with nothing shared). 20000 decode positions x 32
 * components, the measured means taken out (query variance 1 on every pair). */
static void group_moments(double gm, double sg, double out[4])
{
    rkv_workload wl = heads_class(1.0, 1.0, 0.0, 0.0);
    wl.group_share = gm;
    wl.group_tail = sg;
    mdl_model m = shape();
    const int64_t n = 20000;
    rkv_fitted_qcache *qc;
    kv_err err;
    cr_assert_eq(rkv_fitted_qcache_new(&wl, &m, 0, 0, 1, n, 1, &qc, &err), 0, "%s", err.msg);
    double v0 = 0, v1 = 0, c01 = 0, m22 = 0;
    int64_t cnt = 0;
    float q[2 * D];
    for (int64_t k = 0; k < n; k++) {
        const int64_t p = 1 + k;
        rkv_fitted_qcache_query(qc, &wl, k, q);
        double r[2][D];
        for (int g = 0; g < 2; g++) {
            const float *mq = rows + 2 * KR + g * QR; /* layer 0, head g: the measured mean */
            for (int i = 0; i < H2; i++) {
                const double c = cos(theta(i, D) * (double)p), sn = sin(theta(i, D) * (double)p);
                const double x = q[g * D + i], y = q[g * D + H2 + i];
                r[g][i] = x * c + y * sn - mq[i];
                r[g][H2 + i] = -x * sn + y * c - mq[H2 + i];
            }
        }
        for (int i = 0; i < D; i++, cnt++) {
            v0 += r[0][i] * r[0][i];
            v1 += r[1][i] * r[1][i];
            c01 += r[0][i] * r[1][i];
            m22 += r[0][i] * r[0][i] * r[1][i] * r[1][i];
        }
    }
    rkv_fitted_qcache_free(qc);
    out[0] = v0 / (double)cnt;
    out[1] = v1 / (double)cnt;
    out[2] = c01 / sqrt(v0 * v1);
    out[3] = m22 / (double)cnt;
}

Test(wlheads, group_share_correlates_the_heads_residuals)
{
    const double gm = 0.5, sg = 0.3;
    double a[4], b[4], z[4];
    group_moments(gm, sg, a);
    group_moments(gm, 0.0, b);
    group_moments(0.0, 0.0, z);
    for (int g = 0; g < 2; g++) cr_assert_float_eq(a[g], 1.0, 0.03, "head %d variance %g, want 1", g, a[g]);
    cr_assert_float_eq(a[2], gm, 0.03, "correlation %g, want %g", a[2], gm);
    cr_assert_float_eq(b[2], gm, 0.03, "no tail: correlation %g, want %g", b[2], gm);
    cr_assert_float_eq(z[2], 0.0, 0.03, "nothing shared: correlation %g, want 0", z[2]);
    const double want = (1 - gm) * (1 - gm) + 2 * gm * (1 - gm) + 3 * gm * gm * exp(4 * sg * sg);
    cr_assert_float_eq(a[3] / want, 1.0, 0.06, "E[x0^2 x1^2] %g, want %g", a[3], want);
    cr_assert_float_eq(b[3] / 1.5, 1.0, 0.06, "no tail: E[x0^2 x1^2] %g, want 1.5", b[3]);
}

/* wl_group_measure with isotropic keys (no means: variance 1 on every
 * component, independent positions) scores a head's residual r_g against
 * keys whose covariance is the identity, so the correlation of two heads'
 * logits over the keys is the cosine of r_0 and r_1: mean γ, and for
 * Gaussian draws of d components s.d. about (1 − γ²)/√d (Fisher's variance of
 * a correlation from d pairs), 0.1326 for γ = 0.5, d = 32; worked here.
 * 2 layers x 256 decode steps. */
Test(wlheads, group_measure_is_the_residuals_cosine)
{
    const double gm = 0.5;
    mdl_model m = shape();
    double v[2], z[2];
    for (int k = 0; k < 2; k++) {
        rkv_workload wl = heads_class(1.0, 1.0, 0.0, 0.0);
        for (int l = 0; l < 2; l++) { /* the key means off */
            rows[l * KR + 2] = 0.0f;
            rows[l * KR + H2 + 5] = 0.0f;
        }
        wl.hv = rkv_wl_hv_intern(rows, sizeof rows / sizeof rows[0]);
        wl.group_share = k ? 0.0 : gm;
        wl_group_keys gk;
        kv_err err;
        cr_assert_eq(wl_group_keys_load(&gk, &wl, &m, 1024, 1, &err), 0, "%s", err.msg);
        cr_assert_eq(wl_group_measure(&wl, &m, &gk, 32, 256, k ? z : v, &err), 0, "%s", err.msg);
        wl_group_keys_free(&gk);
    }
    cr_assert_float_eq(v[0], gm, 0.03, "mean %g, want %g", v[0], gm);
    const double sd = (1 - gm * gm) / sqrt((double)D);
    cr_assert_float_eq(v[1] / sd, 1.0, 0.15, "s.d. %g, want %g", v[1], sd);
    cr_assert_float_eq(z[0], 0.0, 0.03, "nothing shared: mean %g, want 0", z[0]);
    cr_assert_float_eq(z[1] / (1 / sqrt((double)D)), 1.0, 0.15, "nothing shared: s.d. %g, want %g", z[1], 1 / sqrt((double)D));
}

/* wl_group_fit finds the share and tail of a source of another seed (0.5 and
 * 0.4, both points of its grid) from the source's figures alone; the fit's
 * own figures at its answer are within what the seeds leave (0.03, 0.02);
 * and a model without GQA groups is refused. */
Test(wlheads, group_fit_finds_a_known_share)
{
    mdl_model m = shape();
    m.num_hidden_layers = 4; /* layers 0 and 2 measured */
    rkv_workload src = heads_class(1.0, 1.0, 0.0, 0.0);
    src.group_share = 0.5;
    src.group_tail = 0.4;
    src.seed = 7;
    wl_fit_cfg cfg = {.context = 1024, .window = 32, .steps = 256, .threads = 2, .group = 1};
    wl_group_keys gk;
    kv_err err;
    cr_assert_eq(wl_group_keys_load(&gk, &src, &m, cfg.context, WL_GROUP_LAYER_STEP, &err), 0, "%s", err.msg);
    cr_assert_eq(wl_group_measure(&src, &m, &gk, cfg.window, cfg.steps, cfg.group_real, &err), 0, "%s", err.msg);
    wl_group_keys_free(&gk);
    rkv_workload w = heads_class(1.0, 1.0, 0.0, 0.0);
    double got[2];
    cr_assert_eq(wl_group_fit(&w, &m, &cfg, got, &err), 0, "%s", err.msg);
    cr_assert_float_eq(w.group_share, 0.5, 0.1 + 1e-9, "group_share %g, want 0.5", w.group_share);
    cr_assert_float_eq(w.group_tail, 0.4, 0.2 + 1e-9, "group_tail %g, want 0.4", w.group_tail);
    cr_assert_float_eq(got[0], cfg.group_real[0], 0.03, "mean %g, source %g", got[0], cfg.group_real[0]);
    cr_assert_float_eq(got[1], cfg.group_real[1], 0.02, "s.d. %g, source %g", got[1], cfg.group_real[1]);
    m.num_attention_heads = 1;
    cr_assert_eq(wl_group_keys_load(&gk, &src, &m, cfg.context, 1, &err), -1);
    cr_assert(strstr(err.msg, "GQA groups of 2 or more"), "%s", err.msg);
}

/* group_share and group_tail in YAML: written only when group_share is set,
 * read back; refused out of range and without rec_kernel heads
 * (file:line:col). */
Test(wlheads, group_share_yaml)
{
    rkv_workload a = heads_class(0.5, 0.25, 0.35, 2.0);
    a.hv_context = 2080;
    kv_err err;
    const char *path = "build/test_wlheads_gs.yaml";
    rkv_workload b;
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(b.group_share, 0.0, 0.0, "absent: nothing shared");
    cr_assert_float_eq(b.group_tail, 0.0, 0.0);
    a.group_share = 0.75;
    a.group_tail = 0.8;
    cr_assert_eq(wl_write_yaml(&a, path, "# test\n", &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_load(path, &b, &err), 0, "%s", err.msg);
    cr_assert_float_eq(b.group_share, 0.75, 1e-12);
    cr_assert_float_eq(b.group_tail, 0.8, 1e-12);
    FILE *rf = fopen(path, "rb");
    cr_assert_not_null(rf);
    char *text = calloc(1, 1 << 20);
    cr_assert_not_null(text);
    fread(text, 1, (1 << 20) - 1, rf);
    fclose(rf);
    char *at = strstr(text, "group_share: 0.75\n");
    cr_assert_not_null(at);
    memcpy(at, "group_share: 1.75\n", 18);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    cr_assert_eq(rkv_workload_load(path, &b, &err), -1);
    cr_assert(strstr(err.msg, "build/test_wlheads_gs.yaml:") && strstr(err.msg, "group_share"), "%s", err.msg);
    refused_on_ladder(path, "group_tail: 0.5\n", "",
                      "build/test_wlheads_gs.yaml:4:13: key 'group_tail' needs rec_kernel 'heads'");
    remove(path);
}
