/* memory_json.c — a memory breakdown as JSON (sim_memory_json in sim.h), the
 * one writer `kvsim predict` and `kvsim plan` share. */
#include "sim.h"

void sim_memory_json(kv_json *j, const sim_memory *m)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "weights_bytes"); kv_json_num(j, m->weights_bytes);
    kv_json_key(j, "kv_bytes"); kv_json_num(j, m->kv_bytes);
    kv_json_key(j, "aux_bytes"); kv_json_num(j, m->aux_bytes);
    kv_json_key(j, "workspace_bytes"); kv_json_num(j, m->workspace_bytes);
    kv_json_key(j, "reserve_bytes"); kv_json_num(j, m->reserve_bytes);
    kv_json_key(j, "mask_bytes"); kv_json_num(j, m->mask_bytes);
    kv_json_key(j, "prefill_peak_bytes"); kv_json_num(j, m->prefill_peak_bytes);
    kv_json_key(j, "decode_peak_bytes"); kv_json_num(j, m->decode_peak_bytes);
    kv_json_key(j, "peak_bytes"); kv_json_num(j, m->peak_bytes);
    kv_json_key(j, "capacity_bytes"); kv_json_num(j, m->capacity_bytes);
    kv_json_key(j, "fits"); kv_json_bool(j, m->fits);
    kv_json_key(j, "kv_pool_bytes"); kv_json_num(j, m->kv_pool_bytes);
    kv_json_key(j, "kv_cache_tokens"); kv_json_int(j, m->kv_cache_tokens);
    kv_json_key(j, "max_concurrency"); kv_json_num(j, m->max_concurrency);
    kv_json_obj_end(j);
}
