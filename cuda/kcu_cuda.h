/* kcu_cuda.h — the one place the CUDA runtime header is included: the real
 * <cuda_runtime.h> under nvcc, or kcu_emu.h (a CPU emulation of the small
 * part of CUDA the kernels use) when built with -DKCU_EMU by a host C++
 * compiler. Also the launch macro both builds share. */
#ifndef KCU_CUDA_H
#define KCU_CUDA_H

#ifdef KCU_EMU
#include "kcu_emu.h"
/* k must be a plain name (alias a template instance first). */
#define KCU_LAUNCH(k, grid, block, smem, st, ...) kcu_emu_launch(k, dim3(grid), dim3(block), (smem), (st), __VA_ARGS__)
#define KCU_DYN_SMEM(T, name) T *name = (T *)kcu_emu_dyn_smem()
#else
#include <cuda_runtime.h>
#define KCU_LAUNCH(k, grid, block, smem, st, ...) k<<<(grid), (block), (smem), (st)>>>(__VA_ARGS__)
#define KCU_DYN_SMEM(T, name) extern __shared__ T name[]
#endif

#endif
