/* srv_internal.h — what serve/'s files share and nobody else needs. */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <stdlib.h>
#include "srv.h"

#define SRV_EFF_CACHE 4096

/* Everything a sequence's method-layer price is a function of: the access
 * record sim_access_add builds from traffic t and the run lengths at the
 * step's cache size, and the params that record reads (dtypes, d, G, the
 * method's traits). All 8-byte fields: compared with memcmp. */
typedef struct {
    rkv_traffic t;
    double exact_run, aux_run;        /* bytes: sim_exact_run_bytes, sim_aux_run_bytes at C */
    const rkv_method_type *method;
    int64_t d, G, kv_dtype, aux_dtype;
} srv_price_key;

/* One layer's method attention of one sequence: for each kernel it launches
 * (ascending kernel id), Σ bytes / efficiency, bytes, FLOPs and launches. */
typedef struct {
    struct { double be, by, fl, la; int k; } u[SIM_LAYER_USES]; /* a layer's uses name at most this many kernels */
    int n;
} srv_seq_cost;

/* A running sequence's resolved method and its priced method-layer attention. */
typedef struct {
    int64_t req;                  /* request index; -1 when free */
    rkv_params p;                 /* resolved for (prompt, output) */
    sim_analytic_ctx actx;
    sim_access_source src;
    double comp_bytes_per_token;  /* method layers, one rank: stored K/V + aux per cached token */
    double stage1_s;              /* stage 1 of this sequence (0: none) */
    int compresses;               /* the footprint changes at the end of the prefill */
    srv_price_key key;            /* what the price below was computed from */
    int64_t until;                /* the price holds through this decode step (sim_access_until) */
    int have_price;
    srv_seq_cost cost;            /* the price: one layer, this sequence */
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
