/* params_json.c — resolved parameters as one JSON object with
 * TensorRT-LLM's names (the CLI's --json output, golden manifests). */
#include "rkv.h"

void rkv_params_json(kv_json *j, const rkv_params *p)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "method"); kv_json_str(j, p->method->name);
    kv_json_key(j, "budget"); kv_json_int(j, p->budget);
    kv_json_key(j, "context"); kv_json_int(j, p->S);
    kv_json_key(j, "max_new"); kv_json_int(j, p->max_new);
    kv_json_key(j, "total_tokens"); kv_json_int(j, p->S_total);
    kv_json_key(j, "kv_dtype"); kv_json_str(j, rkv_dtype_name(p->kv_dtype));
    kv_json_key(j, "aux_dtype"); kv_json_str(j, rkv_dtype_name(p->aux_dtype));
    kv_json_key(j, "prompt_budget"); kv_json_int(j, p->prompt_budget);
    kv_json_key(j, "window_size"); kv_json_int(j, p->window_size);
    kv_json_key(j, "kernel_size"); kv_json_int(j, p->kernel_size);
    kv_json_key(j, "pool"); kv_json_str(j, p->pool == RKV_POOL_AVG ? "avg" : "max");
    kv_json_key(j, "page_size"); kv_json_int(j, p->page_size);
    kv_json_key(j, "topr"); kv_json_int(j, p->topr);
    kv_json_key(j, "topk"); kv_json_int(j, p->topk);
    kv_json_key(j, "rho"); kv_json_num(j, p->rho);
    kv_json_key(j, "c"); kv_json_num(j, p->c);
    kv_json_key(j, "c2"); kv_json_num(j, p->c2);
    kv_json_key(j, "capacity"); kv_json_int(j, p->capacity);
    kv_json_key(j, "compression_ratio"); kv_json_num(j, p->compression_ratio);
    kv_json_key(j, "evicts"); kv_json_bool(j, p->evicts);
    kv_json_key(j, "granularity"); kv_json_str(j, p->granularity == RKV_GRAN_PAGE ? "page" : "token");
    kv_json_key(j, "split"); kv_json_str(j, p->split == RKV_SPLIT_EVEN ? "even" : "default");
    kv_json_key(j, "local_window"); kv_json_int(j, p->local_window);
    kv_json_key(j, "skip_layers"); kv_json_int(j, p->skip_layers);
    kv_json_obj_end(j);
}
