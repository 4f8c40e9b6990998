/* audit_shapes.c — the launch shapes make cuda-audit's static estimates use,
 * computed by the same kcu.h functions the launchers and gpu_check call
 * (kcu_rkv_split_compute, kcu_attend_split_count, kcu_npages), so the estimate and
 * the kernel cannot disagree on a grid. Prints one JSON object per line:
 *   audit_shapes SMS CTX BUDGET BATCH...   (budget 0: dense only)
 * Fixed model shape: llama3.1-8b, 8 KV heads, G = 4, d = 128, bf16,
 * max_new = 50, 131072-token cap (as gpu_check times). */
#include <stdio.h>
#include <stdlib.h>

#include "kcu.h"

enum { HKV = 8, GQ = 4, DH = 128, MAX_NEW = 50 };
static const int64_t MODEL_MAX = 131072;

/* kcu_attend_splits (dense_decode.cu) without the CUDA runtime. */
static int attend_splits(int64_t rows, int B, int sms)
{
    return kcu_attend_split_count(rows, (int64_t)B * HKV, sms);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 2) % 3) {
        fprintf(stderr, "usage: audit_shapes SMS CTX BUDGET BATCH [CTX BUDGET BATCH ...]\n");
        return 2;
    }
    int sms = atoi(argv[1]);
    for (int i = 2; i + 2 < argc; i += 3) {
        int64_t ctx = atoll(argv[i]), t = atoll(argv[i + 1]);
        int B = atoi(argv[i + 2]);
        int64_t St = ctx + MAX_NEW < MODEL_MAX ? ctx + MAX_NEW : MODEL_MAX;
        printf("{\"ctx\": %lld, \"budget\": %lld, \"batch\": %d, \"hkv\": %d, \"g\": %d, \"d\": %d, "
               "\"dense_rows\": %lld, \"dense_nsplit\": %d",
               (long long)ctx, (long long)t, B, HKV, GQ, DH, (long long)St, attend_splits(St, B, sms));
        if (t > 0) {
            kcu_rkv_split sp;
            kcu_rkv_split_compute(ctx, MAX_NEW, t, MODEL_MAX, DH, -1.0, &sp);
            printf(", \"capacity\": %lld, \"p\": %lld, \"r\": %lld, \"k\": %lld, \"npages\": %lld, "
                   "\"sparse_nsplit\": %d, \"sparse_nsplit_v3\": %d",
                   (long long)sp.capacity, (long long)sp.p, (long long)sp.r, (long long)sp.k,
                   (long long)kcu_npages(sp.capacity, sp.p), attend_splits(sp.k + sp.p, B, sms),
                   kcu_gather_split_count(sp.k + sp.p, (int64_t)B * HKV, sms));
        }
        printf("}\n");
    }
    return 0;
}
