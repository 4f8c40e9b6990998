/* serve_util.h — what the serve test files share: the model and GPU they
 * load (llama3.1-8b on h100-sxm), a vLLM instance of a method, a relative
 * check, and seeded Poisson traffic. Included by one test file each, so
 * M and H are that file's own. */
#ifndef KVSIM_TESTS_SERVE_UTIL_H
#define KVSIM_TESTS_SERVE_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "srv_internal.h"

static mdl_model M;
static hw_model H;

static inline void load(void)
{
    kv_err err = {""};
    cr_assert_eq(mdl_model_load("llama3.1-8b", &M, &err), 0, "%s", err.msg);
    cr_assert_eq(hw_model_load("h100-sxm", &H, &err), 0, "%s", err.msg);
}

static inline srv_config instance(const char *method, int64_t budget)
{
    srv_config c;
    memset(&c, 0, sizeof c);
    c.model = &M;
    c.hw = &H;
    c.method = method;
    rkv_request_defaults(&c.rq);
    c.rq.budget = budget;
    c.rq.d = M.head_dim;
    c.rq.G = mdl_group_size(&M);
    c.rq.model_max_len = M.max_position_embeddings;
    c.tp = 1;
    c.cuda_graphs = 1;
    c.weight_bytes_per_param = 2.0;
    c.max_num_seqs = 64;
    c.max_batched_tokens = 4096;
    c.block_tokens = 16;
    kv_err err = {""};
    static eng_engine e;
    cr_assert_eq(eng_load("vllm", &e, &err), 0, "%s", err.msg);
    c.engine = &e;
    cr_assert_eq(srv_pool_bytes(&c, &c.pool_bytes, &err), 0, "%s", err.msg);
    return c;
}

static inline void rel_eq(double got, double want, double tol, const char *what)
{
    cr_assert(fabs(got - want) <= tol * fabs(want), "%s: %.17g, expected %.17g (rel %.3g)", what, got, want,
              fabs(got - want) / fabs(want));
}

static inline srv_workload poisson(double rate, int64_t n, const char *prompt, const char *output, uint64_t seed)
{
    static srv_len pl, ol;
    kv_err err = {""};
    cr_assert_eq(srv_len_parse("prompt", prompt, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(srv_len_parse("output", output, &ol, &err), 0, "%s", err.msg);
    srv_traffic t = {rate, SRV_ARRIVAL_POISSON, 1.0, &pl, &ol, n, seed, M.max_position_embeddings};
    srv_workload w;
    cr_assert_eq(srv_workload_generate(&t, &w, &err), 0, "%s", err.msg);
    return w;
}


#endif
