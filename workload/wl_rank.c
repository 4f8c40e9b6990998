/* wl_rank.c — the ranking check of `kvsim workload compare`, over the pairs
 * of methods the real texts order alike.
 *
 * Real neighbouring methods are often 0.01–0.03 apart in mass recall, and one
 * text can order two of them one way while another text orders them the
 * other way. Such a pair has no real order to reproduce, so the check asks
 * the synthetic workload for the order of the pairs every text orders the
 * same way, strictly, and of those only. With one text every pair whose two
 * values differ counts. */
#include "wl.h"

/* Rule, per pair i < j: the pair is ordered when real[t][i] > real[t][j] for
 * every text t, or real[t][i] < real[t][j] for every t (an exact tie in any
 * text leaves it unordered). An ordered pair agrees when syn orders it the
 * same way, strictly. */
int wl_rank_pairs(const double *real, int ntext, int n, const double *syn, unsigned char *state, int *agree)
{
    int ordered = 0;
    *agree = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int above = 0, below = 0;
            for (int t = 0; t < ntext; t++) {
                above += real[(int64_t)t * n + i] > real[(int64_t)t * n + j];
                below += real[(int64_t)t * n + i] < real[(int64_t)t * n + j];
            }
            unsigned char s = WL_PAIR_UNORDERED;
            if (ntext > 0 && (above == ntext || below == ntext)) {
                int syn_above = syn[i] > syn[j], syn_below = syn[i] < syn[j];
                s = (above == ntext ? syn_above : syn_below) ? WL_PAIR_AGREE : WL_PAIR_DIFFER;
                ordered++;
                *agree += s == WL_PAIR_AGREE;
            }
            state[i * n + j] = s;
        }
    return ordered;
}
