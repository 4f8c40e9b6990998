/* fuzz_trace.c — libFuzzer harness for the trace reader (traces/trc_read.c):
 * no input may crash it, read out of bounds, leak, or be accepted and then
 * decode to positions outside the header's ranges. Each accepted file is
 * decoded completely (every stage-1 and step block, every record) and each
 * decoded record is checked against the limits the reader promises.
 *
 *   make fuzz                      (mk/fuzz.mk: builds and runs every tests/fuzz_*.c)
 *   build/fuzz/fuzz_trace -max_total_time=60 traces/samples tests/data/traces
 * Crashes become regression samples under tests/data/traces/ (test_traces.c
 * opens every file there). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trc_reader *r = NULL;
    kv_err err;
    if (trc_open_mem(data, size, "fuzz", &r, &err) != 0) {
        if (!err.msg[0])
            abort(); /* a rejection must say why */
        return 0;
    }
    trc_set_limit(r, 1 << 20);
    const trc_header *h = trc_get_header(r);
    trc_step st = {0};
    trc_stage1 s1 = {0};
    for (int s = 0; s < h->batch; s++) {
        if (trc_read_stage1(r, s, &s1, &err) == 0)
            for (int i = 0; i < s1.nrec; i++)
                for (int k = 0; k < s1.rec[i].nrows; k++)
                    for (int64_t j = 0; j < s1.rec[i].count[k]; j++)
                        if (s1.rec[i].pos[k][j] < 0 || s1.rec[i].pos[k][j] >= h->params.S ||
                            (j > 0 && s1.rec[i].pos[k][j] <= s1.rec[i].pos[k][j - 1]))
                            abort();
        for (int64_t k = 0; k < h->steps; k++) {
            if (trc_read_step(r, s, k, &st, &err) != 0)
                continue;
            for (int i = 0; i < st.nrec; i++) {
                const trc_record *x = &st.rec[i];
                if (trc_step_find(r, &st, x->layer, x->kv_head) != x)
                    abort();
                for (int g = 0; g < x->nrows; g++)
                    for (int64_t j = 0; j < x->count[g]; j++)
                        if (x->pos[g][j] < 0 || x->pos[g][j] > st.position || (j > 0 && x->pos[g][j] <= x->pos[g][j - 1]))
                            abort();
                for (int g = 0; g < x->ndim_rows; g++)
                    for (int64_t j = 0; j < x->ndims; j++)
                        if (x->dims[g][j] < 0 || x->dims[g][j] >= h->d)
                            abort();
            }
        }
    }
    trc_step_free(&st);
    trc_stage1_free(&s1);
    trc_close(r);
    return 0;
}
