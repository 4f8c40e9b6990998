/* fuzz_yaml.c — libFuzzer harness for the strict YAML reader (kv_yaml), on the
 * same bytes the workload loader (rkv_workload_load_mem: every generator's
 * keys, the fitted classes, class map and measured head rows), and the strict
 * JSON reader (kv_jsonr): no input may crash, leak, read out of bounds or leave
 * a partial tree behind after an error.
 * Each accepted document is walked and every key asked for with every type,
 * as the loaders do.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon tests/fuzz_yaml.c \
 *         common/kv_yaml.c common/kv_jsonr.c common/kv_common.c common/kv_afile.c -lyaml -lpthread -lm -o fuzz_yaml
 *   ./fuzz_yaml -max_total_time=60 models/ hwmodels/     (the data files are a good corpus) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv_jsonr.h"
#include "kv_yaml.h"
#include "rkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[] = {"num_hidden_layers", "hidden_size", "sources", "gather_efficiency", NULL};

static void walk(const kv_yaml_doc *d, const kv_yaml_node *n)
{
    kv_err err;
    if (n->kind == KV_YAML_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            walk(d, n->items[i]);
        return;
    }
    if (n->kind != KV_YAML_MAP)
        return;
    kv_yaml_check_keys(d, n, allowed, &err);
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i];
        int64_t iv;
        double x;
        int b;
        char s[16];
        kv_yaml_int(d, n, k, 1, 1, INT64_MAX, &iv, &err);
        kv_yaml_int(d, n, k, 1, -3, 3, &iv, &err);
        kv_yaml_num(d, n, k, 1, 0, 1, 1, &x, &err);
        kv_yaml_bool(d, n, k, 1, &b, &err);
        kv_yaml_str(d, n, k, 1, s, sizeof s, &err);
        walk(d, n->items[i]);
    }
    kv_yaml_int(d, n, "missing", 1, 1, 10, &(int64_t){0}, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_err err;
    kv_yaml_doc d;
    if (kv_yaml_load_mem(&d, "fuzz.yaml", data, size, &err) == 0) {
        walk(&d, d.root);
        kv_yaml_free(&d);
    } else if (d.root) {
        abort(); /* an error must leave no partial result */
    }
    rkv_workload wl;
    rkv_workload_load_mem("fuzz.yaml", data, size, &wl, &err);
    kv_jsonr_doc j;
    if (kv_jsonr_load_mem(&j, "fuzz.json", (const char *)data, size, &err) == 0)
        kv_jsonr_free(&j);
    else if (j.root)
        abort();
    return 0;
}
