/* kcu_emu.h — runs kvsim's CUDA kernels on the CPU, for checking them where
 * no GPU is available (-DKCU_EMU, a host C++20 compiler). It is strict on
 * purpose: where CUDA leaves an order or a value undefined, the emulation
 * picks the one most likely to expose a bug, and reports every misuse it can
 * see as an error (kcu_emu_errors(); the next synchronising call and
 * cudaGetLastError return cudaErrorLaunchFailure afterwards).
 *
 * Threads. One OS thread per CUDA thread (1-D blocks). Blocks of a grid run
 * KCU_EMU_CONC at a time (default 2) in a random order drawn from
 * KCU_EMU_SEED (default 1), so a kernel that depends on block order or on
 * blocks running one after another fails here.
 *
 * Warps. Every warp collective (__shfl_*_sync, __ballot_sync,
 * __match_any_sync, __reduce_add_sync, __all_sync, __any_sync, __syncwarp)
 * is a rendezvous of
 * exactly the lanes named in its mask. Errors: the caller not in its mask;
 * a mask naming a lane that does not exist or has exited; lanes of one mask
 * arriving at different collectives or with different masks; a shuffle
 * reading a lane outside the mask; a lane waited for that is stuck at
 * __syncthreads (divergent barrier) — the CUDA rules of the Programming
 * Guide, "Warp Shuffle Functions" and "Independent Thread Scheduling".
 * Shuffles carry values only: they order no memory (only __syncthreads and
 * __syncwarp do).
 *
 * Shared memory (KCU_SHARED, KCU_DYN_SMEM; a bare __shared__ does not
 * compile here). Per block, allocated at the block's start and poisoned
 * with 0xff bytes (NaN for floats, −1 / all-ones for integers). Every
 * element is a checked cell (kcu_sh<T>): a read of a cell never written in
 * this launch is an error (uninitialised), and two accesses by different
 * threads, at least one a write, with no __syncthreads between them (or,
 * within one warp, no __syncwarp) are a race — decided from barrier epochs,
 * not from the interleaving that happened to run, so a race is reported on
 * every run. atomicAdd on a cell races only with plain accesses.
 *
 * Launch limits: ≤ 1024 threads, whole warps; static + dynamic shared
 * memory ≤ 48 KiB unless raised by cudaFuncSetAttribute, never > 227 KiB;
 * registers × threads ≤ 65536 where the registers are known (KCU_EMU_REGS:
 * a file of "mangled-kernel-name registers" lines, written by make
 * cuda-audit from ptxas; the binary is linked with -rdynamic so dladdr
 * finds the same mangled name).
 *
 * Streams. The legacy stream (0) runs each operation at once. A stream made
 * with cudaStreamNonBlocking defers its work until a synchronising call on
 * it (cudaStreamSynchronize, cudaEventSynchronize on an event recorded on
 * it, cudaDeviceSynchronize), so two streams without a sync between them
 * run in the order that breaks a missing dependency; a legacy-stream
 * operation issued while a non-blocking stream still holds work is reported
 * (stream-order). Graph capture records the stream's work; cudaGraphLaunch
 * enqueues it again. Events read the host clock: timings mean nothing.
 *
 * Not modelled: the device memory model between blocks beyond run order,
 * the device math library (expf/exp are the host's), speed.
 *
 * Files: this one (types, error state, the thread/warp/block records), then
 * kcu_emu_warp.h (warp collectives, barriers), kcu_emu_smem.h (checked shared
 * memory, atomics, intrinsics), kcu_emu_stream.h (runtime API, streams,
 * events, graphs), kcu_emu_launch.h (launches). */
#ifndef KCU_EMU_H
#define KCU_EMU_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ __shared___use_KCU_SHARED_in_the_emulation
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

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100,
    cudaErrorNotSupported = 801,
    cudaErrorLaunchFailure = 719
} cudaError_t;

/* ------------------------------------------------------------ errors */
struct kcu_emu_state {
    std::mutex mu;
    std::map<std::string, long> count; /* error kind -> occurrences */
    long total = 0;
    bool sticky = false;               /* an error since the last sync */
    cudaError_t last = cudaSuccess;    /* launch-time error for cudaGetLastError */
    std::map<std::string, int> regs;   /* kernel name -> registers (KCU_EMU_REGS) */
    bool regs_loaded = false;
};
inline kcu_emu_state kcu_emu_g;

struct kcu_emu_block;
struct kcu_emu_thread {
    kcu_emu_block *blk = nullptr;
    unsigned tid = 0;    /* threadIdx.x */
    int32_t bepoch = 0;  /* __syncthreads passed */
    int32_t wepoch = 0;  /* __syncwarp passed */
};
inline thread_local kcu_emu_thread kcu_emu_me;
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

/* Block-level state (defined before kcu_emu_fail, which names the kernel). */
struct kcu_emu_warp {
    std::mutex mu;
    std::condition_variable cv;
    unsigned present = 0, exited = 0, arrived = 0;
    int op[32];
    unsigned mask[32];
    int src[32];
    uint64_t in[32], out[32];
    unsigned long seq[32] = {0};
    long bar_phase[32]; /* phase a lane waits at in __syncthreads, −1: not waiting */
};
struct kcu_emu_phase {
    std::atomic<long> *ph;
    void operator()() noexcept { ph->fetch_add(1); }
};
struct kcu_emu_block {
    const char *kname;
    dim3 idx;
    unsigned nt;
    std::atomic<long> phase{0};
    std::unique_ptr<std::barrier<kcu_emu_phase>> bar;
    std::unique_ptr<kcu_emu_warp[]> warps;
    std::mutex smu;
    std::map<const void *, void *> shared;
    size_t static_smem = 0, dyn_smem = 0, smem_limit = 0;
    void *dyn = nullptr;
    std::mutex cell_mu[64];
};

static inline void kcu_emu_fail(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void kcu_emu_fail(const char *kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::lock_guard<std::mutex> l(kcu_emu_g.mu);
    long n = ++kcu_emu_g.count[kind];
    kcu_emu_g.total++;
    kcu_emu_g.sticky = true;
    if (n <= 3) {
        kcu_emu_block *b = kcu_emu_me.blk;
        if (b)
            fprintf(stderr, "kcu_emu: %s: %s block (%u,%u,%u) thread %u: %s\n", kind, b->kname, b->idx.x, b->idx.y,
                    b->idx.z, kcu_emu_me.tid, msg);
        else
            fprintf(stderr, "kcu_emu: %s: %s\n", kind, msg);
        if (n == 3)
            fprintf(stderr, "kcu_emu: %s: further reports of this kind are counted only\n", kind);
    }
}
/* Errors of one kind (NULL: all) reported so far. */
static inline long kcu_emu_errors(const char *kind)
{
    std::lock_guard<std::mutex> l(kcu_emu_g.mu);
    if (!kind)
        return kcu_emu_g.total;
    auto it = kcu_emu_g.count.find(kind);
    return it == kcu_emu_g.count.end() ? 0 : it->second;
}
static inline void kcu_emu_errors_reset(void)
{
    std::lock_guard<std::mutex> l(kcu_emu_g.mu);
    kcu_emu_g.count.clear();
    kcu_emu_g.total = 0;
    kcu_emu_g.sticky = false;
}
static inline unsigned long kcu_emu_env(const char *name, unsigned long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtoul(s, nullptr, 10) : dflt;
}

/* The rest, one part per file (kcu_emu_*.h, in this order). */
#include "kcu_emu_warp.h"
#include "kcu_emu_smem.h"
#include "kcu_emu_stream.h"
#include "kcu_emu_launch.h"

#endif
