/* bench_refimpl.c — refimpl speed on the Llama-3.1-8B shape at 32K context
 * (make bench). Each figure is printed with its ceiling measured in the same
 * run and the ratio; medians over repetitions; both cores.
 *   1. stage-1 scoring GFLOP/s (rkv_stage1_votes: sgemm + causal softmax +
 *      window/group sums) vs a large square sgemm of the same BLAS;
 *   2. dense attention bytes/s (rkv_attend over bf16 K/V, G = 4) vs a plain
 *      streaming read (sum of a buffer far larger than the caches);
 * The third figure, `kvsim fidelity` wall time over all layers, is timed by
 * scripts/bench.sh around the real binary. */
#include <gsl/gsl_blas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rkv.h"

#define REPS 5
void openblas_set_num_threads(int n);

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enum { S = 32768, D = 128, G = 4, W = 32, THREADS = 2 };

typedef struct {
    rkv_head h;
    float *Qw, *q, *out, *ws;
    int32_t *cand;
    double *votes;
    void *s1ws;
    int job; /* 0 stage 1, 1 dense attention, 2 stream read */
    const float *big;
    size_t big_n;
    double sink;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    if (w->job == 0)
        rkv_stage1_votes(&w->h, w->cand, S, w->Qw, W, 1, w->votes, w->s1ws);
    else if (w->job == 1)
        rkv_attend(&w->h, w->q, NULL, S, w->out, NULL, w->ws);
    else {
        float acc[16] = {0};
        for (size_t i = 0; i + 16 <= w->big_n; i += 16)
            for (int l = 0; l < 16; l++)
                acc[l] += w->big[i + l];
        double s = 0;
        for (int l = 0; l < 16; l++) s += acc[l];
        w->sink = s;
    }
    return NULL;
}

static double run_all(worker *ws, int job)
{
    pthread_t th[THREADS];
    double t0 = kv_now_s();
    for (int i = 0; i < THREADS; i++) {
        ws[i].job = job;
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    return kv_now_s() - t0;
}

int main(void)
{
    openblas_set_num_threads(1);
    worker w[THREADS];
    memset(w, 0, sizeof w);
    float *tmp = malloc(sizeof(float) * S * D);
    for (int t = 0; t < THREADS; t++) {
        w[t].h = (rkv_head){.d = D, .G = G, .dtype = RKV_DTYPE_BF16, .n = S, .cap = S};
        w[t].h.K = malloc((size_t)S * D * 2);
        w[t].h.V = malloc((size_t)S * D * 2);
        for (size_t i = 0; i < (size_t)S * D; i++) tmp[i] = (float)sin(0.001 * (double)i * (t + 1));
        rkv_encode(RKV_DTYPE_BF16, tmp, (size_t)S * D, w[t].h.K);
        for (size_t i = 0; i < (size_t)S * D; i++) tmp[i] = (float)cos(0.0007 * (double)i * (t + 2));
        rkv_encode(RKV_DTYPE_BF16, tmp, (size_t)S * D, w[t].h.V);
        w[t].Qw = malloc(sizeof(float) * G * W * D);
        for (int i = 0; i < G * W * D; i++) w[t].Qw[i] = (float)sin(0.37 * i);
        w[t].q = w[t].Qw;
        w[t].out = malloc(sizeof(float) * G * D);
        w[t].ws = malloc(sizeof(float) * ((size_t)S * G + 4 * D));
        w[t].cand = malloc(sizeof(int32_t) * S);
        for (int j = 0; j < S; j++) w[t].cand[j] = j;
        w[t].votes = malloc(sizeof(double) * S);
        w[t].s1ws = malloc(rkv_stage1_ws_bytes(S, W, G, D));
    }
    free(tmp);
    /* 1. stage-1 scoring vs square sgemm (2 threads each) */
    double st[REPS], gm[REPS], at[REPS], rd[REPS];
    for (int r = 0; r < REPS; r++)
        st[r] = run_all(w, 0);
    const double s1_flop = 2.0 * G * W * (double)S * D * THREADS;
    const int N = 1536;
    float *A = malloc(sizeof(float) * N * N), *B = malloc(sizeof(float) * N * N), *C = malloc(sizeof(float) * N * N);
    for (int i = 0; i < N * N; i++) { A[i] = (float)(i % 13) * 0.1f; B[i] = (float)(i % 7) * 0.2f; }
    gsl_matrix_float_view Am = gsl_matrix_float_view_array(A, N, N), Bm = gsl_matrix_float_view_array(B, N, N),
                          Cm = gsl_matrix_float_view_array(C, N, N);
    openblas_set_num_threads(THREADS);
    for (int r = 0; r < REPS; r++) {
        double t0 = kv_now_s();
        gsl_blas_sgemm(CblasNoTrans, CblasNoTrans, 1.0f, &Am.matrix, &Bm.matrix, 0.0f, &Cm.matrix);
        gm[r] = kv_now_s() - t0;
    }
    openblas_set_num_threads(1);
    double s1 = s1_flop / median(st, REPS) / 1e9, sg = 2.0 * N * (double)N * N / median(gm, REPS) / 1e9;
    printf("refimpl  stage-1 scoring (llama3.1-8b, S=32K, w=32, G=4; 2 threads): %.1f GFLOP/s; "
           "sgemm %dx%dx%d (2 threads): %.1f GFLOP/s; ratio %.2f (goal >= 0.50)\n",
           s1, N, N, N, sg, s1 / sg);
    /* 2. dense attention vs streaming read */
    for (int r = 0; r < REPS; r++)
        at[r] = run_all(w, 1);
    const size_t big_n = (size_t)256 << 20; /* 1 GiB of floats over 2 threads */
    float *big = malloc(sizeof(float) * big_n);
    for (size_t i = 0; i < big_n; i++) big[i] = (float)(i & 1023);
    for (int t = 0; t < THREADS; t++) {
        w[t].big = big + (size_t)t * (big_n / THREADS);
        w[t].big_n = big_n / THREADS;
    }
    for (int r = 0; r < REPS; r++)
        rd[r] = run_all(w, 2);
    double att = (double)THREADS * S * D * 2 * 2 / median(at, REPS), bw = big_n * 4.0 / median(rd, REPS);
    printf("refimpl  dense attention (bf16 K+V, S=32K, d=128, G=4; 2 threads): %.2f GB/s; "
           "streaming read (2 threads): %.2f GB/s; ratio %.2f (goal >= 0.50)\n",
           att / 1e9, bw / 1e9, att / bw);
    free(big); free(A); free(B); free(C);
    for (int t = 0; t < THREADS; t++) {
        free(w[t].h.K); free(w[t].h.V); free(w[t].Qw); free(w[t].out); free(w[t].ws);
        free(w[t].cand); free(w[t].votes); free(w[t].s1ws);
    }
    return 0;
}
