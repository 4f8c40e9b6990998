/* srv_internal.h — what serve/'s files share and nobody else needs. */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <stdlib.h>
#include "srv.h"

#define SRV_EFF_CACHE 4096

/* A running sequence's resolved method and its priced method-layer attention. */
typedef struct {
    int64_t req;                  /* request index; -1 when free */
    rkv_params p;                 /* resolved for (prompt, output) */
    sim_analytic_ctx actx;
    sim_access_source src;
    double comp_bytes_per_token;  /* method layers, one rank: stored K/V + aux per cached token */
    double stage1_s;              /* stage 1 of this sequence (0: none) */
    int compresses;               /* the footprint changes at the end of the prefill */
    rkv_traffic key_t;            /* the record's whole input besides p: traffic(step) and the run */
    double key_exact_run, key_aux_run;/* lengths at the step's cache size (sim_access_add's only use of it) */
    int have_price;
    /* per kernel, one layer: Σ bytes / efficiency, bytes, FLOPs, launches */
    double be[SIM_K_N], by[SIM_K_N], fl[SIM_K_N], la[SIM_K_N];
    int used[SIM_K_N], nused;     /* the kernels with a nonzero entry above, ascending */
} srv_slot;

typedef struct {
    sim_config c;                 /* batch 1, full's params: the template every price starts from */
    sim_rank_shape s;
    rkv_params full;
    double launch;
    double *fixed;                /* (nfixed) sim_decode_fixed_s per batch; NaN until asked */
    struct { double run, eff; } effc[SRV_EFF_CACHE]; /* sim_kernel_eff by run length, direct mapped; run < 0: empty */
    int64_t nfixed;
    int L;
    int is_full;
} srv_pricer;

int srv_pricer_init(srv_pricer *pr, const srv_config *c, kv_err *err);
void srv_pricer_free(srv_pricer *pr);
double srv_price_fixed(srv_pricer *pr, int64_t batch);
double srv_price_dense_layer(const srv_pricer *pr, int64_t n, int64_t sum_ctx);
void srv_seq_price(srv_pricer *pr, srv_slot *sl, int64_t step);
double srv_price_method_layer(const srv_pricer *pr, const double *be, const double *by, const double *fl,
                              const double *la);

#endif
