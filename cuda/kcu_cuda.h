/* kcu_cuda.h — the one place the CUDA runtime header is included: the real
 * <cuda_runtime.h> under nvcc, or kcu_emu.h (a CPU emulation of the small
 * part of CUDA the kernels use) when built with -DKCU_EMU by a host C++
 * compiler. Also the launch macro both builds share. */
#ifndef KCU_CUDA_H
#define KCU_CUDA_H

/* Shared memory is declared through KCU_SHARED(T, name, dims) (dims: the
 * array extents, possibly empty) and KCU_DYN_SMEM(T, name); a pointer to
 * shared elements of arithmetic type T is KCU_SH(T) *. Under nvcc these are
 * plain __shared__ T and T; in the emulation every element is a checked
 * cell (kcu_emu.h). */
#ifdef KCU_EMU
#include "kcu_emu.h"
/* k must be a plain name (alias a template instance first): its text names
 * the kernel in the emulation's reports and register table. */
#define KCU_LAUNCH(k, grid, block, smem, st, ...) \
    kcu_emu_launch(#k, k, dim3(grid), dim3(block), (smem), (st), __VA_ARGS__)
#else
#include <cuda_runtime.h>
#define KCU_LAUNCH(k, grid, block, smem, st, ...) k<<<(grid), (block), (smem), (st)>>>(__VA_ARGS__)
#define KCU_DYN_SMEM(T, name) extern __shared__ T name[]
#define KCU_SHARED(T, name, dims) __shared__ T name dims
#define KCU_SH(T) T
#endif

#endif
