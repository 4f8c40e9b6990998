/* install_check.c — compiled against the installed kvsim.h and libkvsim.a
 * through pkg-config (make install-check): a C program resolves RocketKV's
 * parameters and runs dense attention through the public API alone. */
#include <kvsim.h>
#include <stdio.h>

int main(void)
{
    rkv_request rq;
    rkv_request_defaults(&rq);
    rq.context = 16384;
    rq.budget = 256;
    rkv_params p;
    kv_err err;
    if (rkv_params_resolve("rocketkv", &rq, &p, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    float K[4 * 8] = {1, 0, 0, 0, 0, 0, 0, 0}, V[4 * 8] = {0, 1}, q[8] = {1}, out[8], ws[64];
    rkv_head h = {.d = 8, .G = 1, .dtype = RKV_DTYPE_FP32, .n = 4, .cap = 4, .K = K, .V = V};
    rkv_attend(&h, q, NULL, 4, out, NULL, ws);
    printf("install-check: rocketkv t=256 S=16384 -> P=%lld p=%lld r=%lld; attention out[1]=%.4f\n",
           (long long)p.prompt_budget, (long long)p.page_size, (long long)p.topr, (double)out[1]);
    return p.prompt_budget == 1546 ? 0 : 1;
}
