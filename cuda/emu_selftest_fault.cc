/* emu_selftest_fault.cc — emu_selftest's scan kernel with the barrier after
 * kcu_block_excl_scan's last shared read deleted (the injected race the
 * emulation must report). Its own translation unit: the fault switch
 * changes kcu_dev.cuh for this file only. */
#define KCU_FAULT_SCAN_NO_TAIL_BARRIER 1
#include "kcu_cuda.h"

#include <stdint.h>

#include "kcu_dev.cuh"

__global__ void scan_fault_kernel(int64_t *out)
{
    KCU_SHARED(int64_t, sm, [33]);
    int64_t tot;
    int64_t a = kcu_block_excl_scan((int64_t)threadIdx.x + 1, &tot, sm);
    int64_t b = kcu_block_excl_scan(2 * (int64_t)threadIdx.x + 1, &tot, sm);
    out[threadIdx.x] = a;
    out[blockDim.x + threadIdx.x] = b;
}

void emu_scan_fault_run(int64_t *out, int n)
{
    KCU_LAUNCH(scan_fault_kernel, 1, n, 0, (cudaStream_t)0, out);
}
