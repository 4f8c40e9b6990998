/* fuzz_gguf.c — libFuzzer harness for the strict GGUF reader: no input may
 * crash, leak, read out of bounds (the input buffer is exactly its size) or
 * leave a partial file behind after an error. Each accepted file has every
 * key read with every getter and every dequantisable tensor (up to 64K
 * elements) converted to f32.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Imodels tests/fuzz_gguf.c \
 *         models/gguf.c common/kv_common.c common/kv_afile.c -lpthread -lm -o fuzz_gguf
 *   ./fuzz_gguf -max_total_time=60 -max_len=65536 corpus/     (a seed: the head of a real .gguf) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_gguf_file *g = NULL;
    kv_err err;
    if (llm_gguf_parse(data, size, "fuzz.gguf", &g, &err) != 0) {
        if (g != NULL || strstr(err.msg, "fuzz.gguf") == NULL)
            abort();
        return 0;
    }
    for (int64_t i = 0; i < g->nkv; i++) {
        const char *k = g->kv[i].key;
        int64_t iv;
        double fv;
        llm_gguf_str s;
        llm_gguf_get_i64(g, k, &iv, &err);
        llm_gguf_get_f64(g, k, &fv, &err);
        llm_gguf_get_str(g, k, &s, &err);
        if (g->kv[i].type == LLM_GGUF_VT_ARRAY && g->kv[i].arr_type == LLM_GGUF_VT_STRING)
            for (uint64_t j = 0; j < g->kv[i].arr_n; j++) {
                volatile char c = g->kv[i].strs[j].n ? g->kv[i].strs[j].p[g->kv[i].strs[j].n - 1] : 0;
                (void)c;
            }
    }
    for (int64_t i = 0; i < g->ntensors; i++) {
        const llm_gguf_tensor *t = &g->tensors[i];
        if (llm_gguf_tensor_find(g, t->name) != t)
            abort();
        if (!llm_gguf_type_dequantizable(t->type) || t->nelem > 65536)
            continue;
        float *y = malloc((size_t)t->nelem * sizeof *y);
        if (y) {
            llm_gguf_tensor_f32(t, y, &err);
            free(y);
        }
    }
    llm_gguf_free(g);
    return 0;
}
