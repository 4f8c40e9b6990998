/* serve_setup.h — the options `kvsim serve` and `kvsim plan --slo` share:
 * the instance (model, GPU, method, TP, engine limits, KV pool) and the
 * traffic (rate, arrivals, lengths, seed or a request log), and the JSON of
 * a serving result. */
#ifndef CLI_SERVE_SETUP_H
#define CLI_SERVE_SETUP_H

#include "cli.h"
#include "srv.h"

typedef struct {
    mdl_model model;
    hw_model hw;
    eng_engine engine;        /* --engine: memory policy, block size, step limits */
    char method[32];
    srv_config cfg;           /* pool_bytes set by cli_serve_pool */
    double mem_fraction;      /* --mem-fraction; 0: the engine's */
    double pool_bytes_flag;   /* --kv-pool-bytes; 0: from the memory policy */
    srv_len prompt, output;
    srv_traffic tr;           /* rate set per run */
    const char *requests;     /* --requests FILE, or NULL */
    char prompt_spec[256], output_spec[256];
} cli_serve_setup;

/* --model --hw --method --budget --dtype --skip-layers --tp --cuda-graphs
 * --engine --max-num-seqs --max-batched-tokens --block-tokens --mem-fraction
 * --kv-pool-bytes; method/GPU/TP may be given by the caller (plan) instead. */
int cli_serve_instance(cli_opts *o, cli_serve_setup *s, int with_hw_method_tp);
/* Resolves the KV pool for s->cfg (the flag or the memory policy). */
int cli_serve_pool(const char *prog, cli_serve_setup *s);
/* --arrival --burstiness --num-requests --prompt --output --seed --requests. */
int cli_serve_traffic(cli_opts *o, cli_serve_setup *s);
void cli_serve_setup_free(cli_serve_setup *s);
extern const char cli_serve_help[];

/* The workload of one run: the log, or generated at rate. */
int cli_serve_workload(const char *prog, const cli_serve_setup *s, double rate, srv_workload *w);

/* The keys of one run (an object's body: the caller opened the object). */
void cli_serve_json_body(kv_json *j, const cli_serve_setup *s, double rate, const srv_result *r,
                         const srv_summary *m);

#endif
