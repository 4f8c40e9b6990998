/* fuzz_tokenizer.c — libFuzzer harness for the byte-level BPE tokenizer on
 * the real SmolLM2 vocabulary: any byte string tokenizes without crashing or
 * reading out of bounds, every id is in the vocabulary, and the tokens'
 * bytes concatenate back to the input exactly (unless the input holds a byte
 * the vocabulary cannot represent, which maps to the unknown token).
 *
 *   make model && make fuzz-tokenizer FUZZ_SECONDS=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static llm_gguf_file *g;
static llm_tokenizer *tk;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_err err;
    if (!tk) {
        const char *path = getenv("KVSIM_GGUF");
        if (!path || llm_gguf_open(path, &g, &err) != 0 || llm_tokenizer_load(g, &tk, &err) != 0)
            abort(); /* set KVSIM_GGUF to the model file */
    }
    int32_t *ids = malloc((size + 1) * sizeof *ids);
    int64_t n = llm_tokenize(tk, (const char *)data, size, ids, (int64_t)size + 1);
    if (n < 0 || n > (int64_t)size)
        abort();
    char *out = malloc(size * 16 + 16);
    size_t o = 0;
    int unk = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= llm_vocab_size(tk))
            abort();
        size_t bl;
        const char *b = llm_token_bytes(tk, ids[i], &bl);
        if (ids[i] == 0) unk = 1;
        memcpy(out + o, b, bl);
        o += bl;
    }
    if (!unk && (o != size || memcmp(out, data, size) != 0))
        abort();
    free(out);
    free(ids);
    return 0;
}
