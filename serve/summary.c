/* summary.c — statistics over a finished run of srv.h: freeing its result,
 * percentiles and distributions of the per-request latencies, and the run's
 * summary (throughputs, KV occupancy, Little's-law check). Split from
 * serve.c, whose event loop produces the result these read. */
#include "srv_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* n doubles for the result's inter-token gaps (every one written before it
 * is read: r->n_itl grows as they are) or a copy of them: tens of MB in a
 * long run, so on Linux in transparent huge pages where the kernel gives
 * them (2 MiB aligned, madvise): a page fault per 2 MiB, not per 4 KiB. */
double *srv_gap_array(size_t n)
{
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20, bytes = (n * sizeof(double) + huge - 1) / huge * huge;
    if (bytes >= 4 * huge) {
        double *p = aligned_alloc(huge, bytes);
        if (p)
            madvise(p, bytes, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(n * sizeof(double));
}

void srv_result_free(srv_result *r)
{
    free(r->ttft_s);
    free(r->tpot_s);
    free(r->e2e_s);
    free(r->itl_s);
    free(r->preempted);
    free(r->tokens_out);
    free(r->samples);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double srv_percentile(const double *x, int64_t n, double p, double *scratch)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) scratch[m++] = x[i];
    if (m == 0) return NAN;
    qsort(scratch, (size_t)m, sizeof *scratch, cmp_double);
    const double pos = p / 100.0 * (double)(m - 1);
    const int64_t lo = (int64_t)floor(pos);
    const int64_t hi = lo + 1 < m ? lo + 1 : lo;
    return scratch[lo] + (pos - (double)lo) * (scratch[hi] - scratch[lo]);
}

/* Puts the k-th smallest of a[lo..hi] at a[k], smaller-or-equal ones
 * before it and greater-or-equal ones after (Hoare's selection, median of
 * three pivots; equal keys stop both scans, so ties split evenly). The
 * value at a rank is the sorted array's, whatever order the rest is in. */
static void select_rank(double *a, int64_t lo, int64_t hi, int64_t k)
{
    while (hi > lo) {
        const int64_t mid = lo + (hi - lo) / 2;
        double x = a[lo], y = a[mid], z = a[hi];
        const double piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) {
                const double t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* a[lo..j] <= piv <= a[i..hi], and a[j+1..i-1] == piv */
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return;
    }
}

/* Mean in the input's order; the percentiles from the order statistics
 * they need (numpy's linear rule), selected rank by rank in ascending order
 * over what is left above the last: the same values a full sort gives. */
void srv_dist_of(const double *x, int64_t n, srv_dist *d)
{
    double *sc = srv_gap_array((size_t)(n > 0 ? n : 1)); /* as large as the gaps */
    int64_t m = 0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i])) { sum += x[i]; sc[m++] = x[i]; }
    d->n = m;
    d->mean = m ? sum / (double)m : NAN;
    const double ps[4] = {50, 90, 95, 99};
    double *out[4] = {&d->p50, &d->p90, &d->p95, &d->p99};
    int64_t done = 0; /* sc[0..done-1]: the smallest done values; every rank selected so far in place */
    for (int k = 0; k < 4; k++) {
        if (m == 0) { *out[k] = NAN; continue; }
        const double pos = ps[k] / 100.0 * (double)(m - 1);
        const int64_t lo = (int64_t)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
        for (int64_t r = lo; r <= hi; r++)
            if (r >= done) {
                select_rank(sc, done, m - 1, r);
                done = r + 1;
            }
        *out[k] = sc[lo] + (pos - (double)lo) * (sc[hi] - sc[lo]);
    }
    free(sc);
}

void srv_summarize(const srv_workload *w, const srv_result *r, double rate, srv_summary *m)
{
    memset(m, 0, sizeof *m);
    srv_dist_of(r->ttft_s, r->n, &m->ttft);
    srv_dist_of(r->tpot_s, r->n, &m->tpot);
    srv_dist_of(r->itl_s, r->n_itl, &m->itl);
    srv_dist_of(r->e2e_s, r->n, &m->e2e);
    m->duration_s = r->end_s - r->first_arrival_s;
    m->requests_per_s = (double)r->completed / m->duration_s;
    m->output_tokens_per_s = (double)r->output_tokens / m->duration_s;
    m->input_tokens_per_s = (double)r->prompt_tokens / m->duration_s;
    const double denom = r->end_s * (double)r->pool_blocks;
    m->kv_occupancy_mean = denom > 0.0 ? r->area_kv_blocks / denom : 0.0;
    m->kv_occupancy_max = r->pool_blocks > 0 ? (double)r->max_kv_blocks / (double)r->pool_blocks : 0.0;
    m->running_mean = r->end_s > 0.0 ? r->area_running / r->end_s : 0.0;
    /* Little: time-average requests in the system over [0, end] against
     * arrival rate × mean time in the system */
    m->mean_in_system = r->area_in_system / r->end_s;
    m->rate_times_e2e = rate * m->e2e.mean;
    m->measured_rate_times_e2e = (double)r->completed / r->end_s * m->e2e.mean;
    for (int64_t i = 0; i < w->n; i++)
        m->lost_tokens += llabs(r->tokens_out[i] - w->req[i].output);
}
