/* kcu_emu.h — runs kvsim's CUDA kernels on the CPU, for checking them where
 * no GPU is available (-DKCU_EMU, a host C++20 compiler). One OS thread per
 * CUDA thread, blocks one after another; __syncthreads is a std::barrier
 * over the block, warp shuffles go through a per-warp exchange buffer with a
 * 32-thread barrier; __shared__ variables are function-local statics (shared
 * by the threads of the running block); a thread that returns drops out of
 * later barriers, as an exited CUDA thread does. The runtime API subset the
 * GPU check uses is emulated on host memory; graphs replay nothing (launches
 * run when issued) and events read the host clock, so timings mean nothing.
 *
 * It checks logic — indexing, barriers, shuffles, the selection — not
 * speed, memory-model corner cases or the device's math library (expf/exp
 * are the host's). It is slow: use small shapes. */
#ifndef KCU_EMU_H
#define KCU_EMU_H

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 {
    unsigned x, y, z, w;
};
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

/* ---- device side ---- */
struct kcu_emu_warp {
    std::barrier<> *bar;
    uint64_t slot[32];
};
struct kcu_emu_block {
    std::barrier<> *bar;
    std::vector<kcu_emu_warp> warps;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline thread_local kcu_emu_block *kcu_emu_cur;

static inline void __syncthreads(void) { kcu_emu_cur->bar->arrive_and_wait(); }

template <class T>
static inline T kcu_emu_exchange(T v, int src_lane)
{
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    kcu_emu_warp &w = kcu_emu_cur->warps[threadIdx.x / 32];
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    w.slot[threadIdx.x % 32] = b;
    w.bar->arrive_and_wait();
    uint64_t r = w.slot[src_lane];
    w.bar->arrive_and_wait();
    T out;
    memcpy(&out, &r, sizeof out);
    return out;
}
template <class T>
static inline T __shfl_xor_sync(unsigned, T v, int o)
{
    return kcu_emu_exchange(v, (int)(threadIdx.x % 32) ^ o);
}
template <class T>
static inline T __shfl_up_sync(unsigned, T v, int o)
{
    int lane = (int)(threadIdx.x % 32);
    T r = kcu_emu_exchange(v, lane >= o ? lane - o : lane);
    return r;
}
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline uint4 __ldg(const uint4 *p) { return *p; }
static inline uint4 __ldcs(const uint4 *p) { return *p; }
static inline float __uint_as_float(unsigned u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline unsigned __float_as_uint(float f)
{
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

inline std::vector<unsigned char> kcu_emu_dyn_buf;
static inline void *kcu_emu_dyn_smem(void) { return kcu_emu_dyn_buf.data(); }

/* ---- runtime API subset ---- */
typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorNoDevice = 100
} cudaError_t;
typedef void *cudaStream_t;
typedef double *cudaEvent_t;
typedef void *cudaGraph_t;
typedef void *cudaGraphExec_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamNonBlocking = 1, cudaStreamCaptureModeGlobal = 0 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrClockRate = 13, cudaDevAttrMemoryClockRate = 36 };
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount, l2CacheSize, memoryBusWidth;
    size_t totalGlobalMem;
};

inline cudaError_t kcu_emu_last = cudaSuccess;
static inline cudaError_t cudaGetLastError(void)
{
    cudaError_t e = kcu_emu_last;
    kcu_emu_last = cudaSuccess;
    return e;
}
static inline const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error" : e == cudaErrorInvalidValue ? "invalid argument" : "emulated error";
}
template <class T>
static inline cudaError_t cudaMalloc(T **p, size_t n)
{
    *p = (T *)aligned_alloc(256, (n + 255) / 256 * 256);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline cudaError_t cudaFree(void *p)
{
    free(p);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind)
{
    memcpy(d, s, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemset(void *d, int v, size_t n)
{
    memset(d, v, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { return cudaMemset(d, v, n); }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    *s = nullptr;
    return cudaSuccess;
}
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "kcu-emu (CPU emulation)");
    p->major = 9;
    p->multiProcessorCount = 4;
    p->l2CacheSize = 1 << 20;
    p->totalGlobalMem = (size_t)4 << 30;
    return cudaSuccess;
}
static inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t)
{
    *f = (size_t)2 << 30;
    *t = (size_t)4 << 30;
    return cudaSuccess;
}
static inline cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int)
{
    *v = 0;
    return cudaSuccess;
}
static inline cudaError_t cudaDriverGetVersion(int *v)
{
    *v = 0;
    return cudaSuccess;
}
static inline cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = 0;
    return cudaSuccess;
}
template <class F>
static inline cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int v)
{
    if (kcu_emu_dyn_buf.size() < (size_t)v)
        kcu_emu_dyn_buf.resize((size_t)v);
    return cudaSuccess;
}
static inline cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new double(0);
    return cudaSuccess;
}
static inline cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
    *e = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return cudaSuccess;
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)((*b - *a) * 1e3);
    return cudaSuccess;
}
static inline cudaError_t cudaStreamBeginCapture(cudaStream_t, int) { return cudaSuccess; }
static inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g)
{
    *g = nullptr;
    return cudaSuccess;
}
static inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t, unsigned long long)
{
    *e = nullptr;
    return cudaSuccess;
}
static inline cudaError_t cudaGraphDestroy(cudaGraph_t) { return cudaSuccess; }
static inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t) { return cudaSuccess; }
static inline cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { return cudaSuccess; }

/* One block after another; one thread per CUDA thread (1-D blocks). */
template <class... P, class... A>
static inline void kcu_emu_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t, A &&...args)
{
    unsigned nt = block.x * block.y * block.z;
    if (block.y != 1 || block.z != 1 || nt == 0 || nt > 1024 || (nt > 32 && nt % 32)) {
        kcu_emu_last = cudaErrorInvalidValue;
        return;
    }
    if (kcu_emu_dyn_buf.size() < smem)
        kcu_emu_dyn_buf.resize(smem);
    gridDim = grid;
    blockDim = block;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                kcu_emu_block blk;
                std::barrier<> bar((std::ptrdiff_t)nt);
                blk.bar = &bar;
                unsigned nw = (nt + 31) / 32;
                std::vector<std::barrier<> *> wb;
                for (unsigned w = 0; w < nw; w++)
                    wb.push_back(new std::barrier<>((std::ptrdiff_t)(nt < 32 ? nt : 32)));
                blk.warps.resize(nw);
                for (unsigned w = 0; w < nw; w++)
                    blk.warps[w].bar = wb[w];
                std::vector<std::thread> th;
                th.reserve(nt);
                for (unsigned t = 0; t < nt; t++)
                    th.emplace_back([&, t] {
                        threadIdx = dim3(t, 0, 0);
                        blockIdx = dim3(bx, by, bz);
                        kcu_emu_cur = &blk;
                        k(P(args)...);
                        blk.warps[t / 32].bar->arrive_and_drop();
                        bar.arrive_and_drop();
                    });
                for (auto &x : th)
                    x.join();
                for (auto *b : wb)
                    delete b;
            }
}

#endif
