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
 * the device math library (expf/exp are the host's), speed. */
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

/* ---------------------------------------------------- warp collectives */
enum { KCU_OP_SHFL = 1, KCU_OP_BALLOT, KCU_OP_MATCH, KCU_OP_ALL, KCU_OP_ANY, KCU_OP_SYNCWARP, KCU_OP_REDUX_ADD };
static const char *const kcu_emu_opname[] = {"?", "shuffle", "ballot", "match_any", "all", "any", "syncwarp",
                                             "reduce_add"};

/* Completes the collective of `mask` if all its lanes are in (warp lock held). */
static inline void kcu_emu_try_complete(kcu_emu_warp &w, unsigned mask)
{
    if ((w.arrived & mask) != mask || !mask)
        return;
    int l0 = __builtin_ctz(mask);
    for (int l = 0; l < 32; l++)
        if ((mask >> l & 1) && (w.op[l] != w.op[l0] || w.mask[l] != w.mask[l0]))
            kcu_emu_fail("warp-divergence",
                         "lanes %d and %d meet at different warp collectives (%s mask %08x vs %s mask %08x)", l0, l,
                         kcu_emu_opname[w.op[l0]], w.mask[l0], kcu_emu_opname[w.op[l]], w.mask[l]);
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1))
            continue;
        uint64_t r = 0;
        switch (w.op[l]) {
        case KCU_OP_SHFL:
            if (!(mask >> w.src[l] & 1)) {
                kcu_emu_fail("warp-mask", "lane %d shuffles from lane %d, outside mask %08x", l, w.src[l], mask);
                r = w.in[l];
            } else
                r = w.in[w.src[l]];
            break;
        case KCU_OP_BALLOT:
        case KCU_OP_ALL:
        case KCU_OP_ANY:
            for (int m = 0; m < 32; m++)
                if ((mask >> m & 1) && w.in[m])
                    r |= 1ull << m;
            if (w.op[l] == KCU_OP_ALL)
                r = r == mask;
            else if (w.op[l] == KCU_OP_ANY)
                r = r != 0;
            break;
        case KCU_OP_REDUX_ADD:
            for (int m = 0; m < 32; m++)
                if (mask >> m & 1)
                    r = (uint32_t)(r + (uint32_t)w.in[m]);
            break;
        case KCU_OP_MATCH:
            for (int m = 0; m < 32; m++)
                if ((mask >> m & 1) && w.in[m] == w.in[l])
                    r |= 1ull << m;
            break;
        default:
            break;
        }
        w.out[l] = r;
        w.seq[l]++;
    }
    w.arrived &= ~mask;
    w.cv.notify_all();
}

/* One lane's part in a collective; returns its result. */
static inline uint64_t kcu_emu_collective(int op, unsigned mask, uint64_t v, int src)
{
    kcu_emu_block *b = kcu_emu_me.blk;
    int lane = (int)(kcu_emu_me.tid & 31);
    kcu_emu_warp &w = b->warps[kcu_emu_me.tid / 32];
    std::unique_lock<std::mutex> l(w.mu);
    if (!(mask >> lane & 1)) {
        kcu_emu_fail("warp-mask", "lane %d calls %s with mask %08x, which does not name it", lane,
                     kcu_emu_opname[op], mask);
        return v; /* undefined on the device; here the lane keeps its value */
    }
    if (mask & ~w.present) {
        kcu_emu_fail("warp-mask", "%s mask %08x names lanes that do not exist (%08x)", kcu_emu_opname[op], mask,
                     mask & ~w.present);
        mask &= w.present;
    }
    if (mask & w.exited) {
        kcu_emu_fail("warp-exited", "%s mask %08x names exited lanes %08x", kcu_emu_opname[op], mask,
                     mask & w.exited);
        mask &= ~w.exited;
    }
    w.op[lane] = op;
    w.mask[lane] = mask;
    w.in[lane] = v;
    w.src[lane] = src;
    w.arrived |= 1u << lane;
    unsigned long my = w.seq[lane];
    kcu_emu_try_complete(w, mask);
    auto t0 = std::chrono::steady_clock::now();
    while (w.seq[lane] == my) {
        w.cv.wait_for(l, std::chrono::milliseconds(20));
        if (w.seq[lane] != my)
            break;
        unsigned missing = mask & ~w.arrived;
        const char *why = nullptr, *kind = "warp-divergence";
        if (missing & w.exited) {
            why = "a lane it waits for exited";
            kind = "warp-exited";
        }
        for (int m = 0; m < 32 && !why; m++)
            if ((missing >> m & 1) && w.bar_phase[m] >= 0 && w.bar_phase[m] == b->phase.load())
                why = "a lane it waits for is at __syncthreads (divergent barrier)";
        if (!why && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60))
            why = "no progress for 60 s (deadlock)";
        if (why) {
            kcu_emu_fail(kind, "lane %d in %s mask %08x, missing %08x: %s", lane, kcu_emu_opname[op],
                         mask, missing, why);
            w.arrived &= ~(1u << lane);
            w.out[lane] = v;
            return v;
        }
    }
    return w.out[lane];
}

template <class T>
static inline uint64_t kcu_emu_bits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp values of at most 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    return b;
}
template <class T>
static inline T kcu_emu_unbits(uint64_t b)
{
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}
static inline int kcu_emu_lane(void) { return (int)(kcu_emu_me.tid & 31); }

template <class T>
static inline T __shfl_sync(unsigned m, T v, int src, int width = 32)
{
    int lane = kcu_emu_lane();
    return kcu_emu_unbits<T>(kcu_emu_collective(KCU_OP_SHFL, m, kcu_emu_bits(v), (lane & ~(width - 1)) + (src & (width - 1))));
}
template <class T>
static inline T __shfl_xor_sync(unsigned m, T v, int o, int width = 32)
{
    int lane = kcu_emu_lane(), s = lane ^ o;
    if ((s & ~(width - 1)) != (lane & ~(width - 1)))
        s = lane;
    return kcu_emu_unbits<T>(kcu_emu_collective(KCU_OP_SHFL, m, kcu_emu_bits(v), s));
}
template <class T>
static inline T __shfl_up_sync(unsigned m, T v, unsigned o, int width = 32)
{
    int lane = kcu_emu_lane(), s = lane - (int)o;
    if (s < (lane & ~(width - 1)))
        s = lane;
    return kcu_emu_unbits<T>(kcu_emu_collective(KCU_OP_SHFL, m, kcu_emu_bits(v), s));
}
template <class T>
static inline T __shfl_down_sync(unsigned m, T v, unsigned o, int width = 32)
{
    int lane = kcu_emu_lane(), s = lane + (int)o;
    if (s >= (lane & ~(width - 1)) + width)
        s = lane;
    return kcu_emu_unbits<T>(kcu_emu_collective(KCU_OP_SHFL, m, kcu_emu_bits(v), s));
}
static inline unsigned __ballot_sync(unsigned m, int p)
{
    return (unsigned)kcu_emu_collective(KCU_OP_BALLOT, m, p != 0, kcu_emu_lane());
}
static inline int __all_sync(unsigned m, int p) { return (int)kcu_emu_collective(KCU_OP_ALL, m, p != 0, kcu_emu_lane()); }
static inline int __any_sync(unsigned m, int p) { return (int)kcu_emu_collective(KCU_OP_ANY, m, p != 0, kcu_emu_lane()); }
template <class T>
static inline unsigned __match_any_sync(unsigned m, T v)
{
    return (unsigned)kcu_emu_collective(KCU_OP_MATCH, m, kcu_emu_bits(v), kcu_emu_lane());
}
static inline unsigned __reduce_add_sync(unsigned m, unsigned v)
{
    return (unsigned)kcu_emu_collective(KCU_OP_REDUX_ADD, m, v, kcu_emu_lane());
}
static inline int __ffs(unsigned x) { return x ? __builtin_ctz(x) + 1 : 0; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline void __syncwarp(unsigned m = 0xffffffffu)
{
    (void)kcu_emu_collective(KCU_OP_SYNCWARP, m, 0, kcu_emu_lane());
    kcu_emu_me.wepoch++;
}
static inline void __syncthreads(void)
{
    kcu_emu_block *b = kcu_emu_me.blk;
    kcu_emu_warp &w = b->warps[kcu_emu_me.tid / 32];
    {
        std::lock_guard<std::mutex> l(w.mu);
        w.bar_phase[kcu_emu_me.tid & 31] = b->phase.load();
        w.cv.notify_all();
    }
    b->bar->arrive_and_wait();
    {
        std::lock_guard<std::mutex> l(w.mu);
        w.bar_phase[kcu_emu_me.tid & 31] = -1;
    }
    kcu_emu_me.bepoch++;
}

/* ------------------------------------------------ checked shared cells */
/* One shared-memory element with its access history (see the header). All
 * fields −1 (the 0xff poison) means: not accessed in this launch. */
template <class T>
struct kcu_emu_sh {
    T v;
    int32_t wt, wb, ww, wa; /* last write: thread, barrier epoch, warp epoch, 1 = atomic */
    int32_t rt, rb, rw;     /* last read: thread (−2: several), barrier epoch, warp epoch */

    static bool ordered(int32_t t, int32_t be, int32_t we)
    {
        const kcu_emu_thread &me = kcu_emu_me;
        if (be < 0 || t == (int32_t)me.tid || be < me.bepoch)
            return true;
        return be == me.bepoch && t >= 0 && (unsigned)t / 32 == me.tid / 32 && we < me.wepoch;
    }
    std::mutex &lock() const
    {
        return kcu_emu_me.blk->cell_mu[((uintptr_t)this >> 4) & 63];
    }
    void on_read() const
    {
        auto *s = const_cast<kcu_emu_sh *>(this);
        std::lock_guard<std::mutex> l(lock());
        if (wb < 0)
            kcu_emu_fail("shared-uninit", "read of shared memory never written in this launch (%p)", (const void *)this);
        else if (!ordered(wt, wb, ww))
            kcu_emu_fail("shared-race", "read after write by thread %d with no barrier between (%p)", wt,
                         (const void *)this);
        const kcu_emu_thread &me = kcu_emu_me;
        if (rb == me.bepoch && rt != (int32_t)me.tid)
            s->rt = -2;
        else {
            s->rt = (int32_t)me.tid;
            s->rb = me.bepoch;
            s->rw = me.wepoch;
        }
    }
    void write_locked(bool atomic)
    {
        const kcu_emu_thread &me = kcu_emu_me;
        if (!(atomic && wa == 1) && !ordered(wt, wb, ww))
            kcu_emu_fail("shared-race", "write after write by thread %d with no barrier between (%p)", wt,
                         (const void *)this);
        if (rb >= 0 && (rt == -2 ? rb == me.bepoch : !ordered(rt, rb, rw)))
            kcu_emu_fail("shared-race", "write after read by thread %d with no barrier between (%p)", rt,
                         (const void *)this);
        wt = (int32_t)me.tid;
        wb = me.bepoch;
        ww = me.wepoch;
        wa = atomic ? 1 : 0;
        rb = -1;
    }
    void on_write(void)
    {
        std::lock_guard<std::mutex> l(lock());
        write_locked(false);
    }
    operator T() const
    {
        on_read();
        return v;
    }
    kcu_emu_sh &operator=(T x)
    {
        on_write();
        v = x;
        return *this;
    }
    kcu_emu_sh &operator=(const kcu_emu_sh &o) { return *this = (T)o; }
    kcu_emu_sh &operator+=(T x) { return *this = (T)*this + x; }
    kcu_emu_sh &operator-=(T x) { return *this = (T)*this - x; }
    kcu_emu_sh &operator*=(T x) { return *this = (T)*this * x; }
    kcu_emu_sh &operator|=(T x) { return *this = (T)*this | x; }
    T atomic_add(T x)
    {
        std::lock_guard<std::mutex> l(lock());
        if (wb < 0)
            kcu_emu_fail("shared-uninit", "atomicAdd on shared memory never written in this launch (%p)",
                         (const void *)this);
        write_locked(true);
        T old = v;
        v = old + x;
        return old;
    }
};
template <class T>
using kcu_sh = std::conditional_t<std::is_arithmetic_v<T>, kcu_emu_sh<T>, T>;
#define KCU_SH(T) kcu_sh<T>

template <class T>
static inline T atomicAdd(kcu_emu_sh<T> *p, T v)
{
    return p->atomic_add(v);
}
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline int atomicAdd(int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

/* The block's copy of one KCU_SHARED declaration (key: its address). */
static inline void *kcu_emu_shared_get(const void *key, size_t n)
{
    kcu_emu_block *b = kcu_emu_me.blk;
    std::lock_guard<std::mutex> l(b->smu);
    auto it = b->shared.find(key);
    if (it != b->shared.end())
        return it->second;
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    memset(p, 0xff, (n + 63) / 64 * 64);
    b->shared[key] = p;
    b->static_smem += n;
    /* cells are bigger than the device's elements: the limit is checked on
     * the device sizes by make cuda-audit (ptxas); here only the dynamic
     * part is checked, at launch */
    return p;
}
#define KCU_SHARED(T, name, dims)                                                                      \
    static const char kcu_shkey_##name = 0;                                                            \
    auto &name = *reinterpret_cast<kcu_sh<T>(*) dims>(                                                 \
        kcu_emu_shared_get(&kcu_shkey_##name, sizeof(kcu_sh<T> dims)))
/* The block's dynamic shared memory as cells: `scale` = sizeof(cell) / sizeof(element). */
static inline void *kcu_emu_dyn_smem(size_t scale)
{
    kcu_emu_block *b = kcu_emu_me.blk;
    std::lock_guard<std::mutex> l(b->smu);
    if (!b->dyn && b->dyn_smem) {
        size_t n = (b->dyn_smem * scale + 63) / 64 * 64;
        b->dyn = aligned_alloc(64, n);
        memset(b->dyn, 0xff, n);
    }
    return b->dyn;
}
#define KCU_DYN_SMEM(T, name) kcu_sh<T> *name = (kcu_sh<T> *)kcu_emu_dyn_smem(sizeof(kcu_sh<T>) / sizeof(T))

static inline uint4 __ldg(const uint4 *p) { return *p; }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
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

/* ------------------------------------------------------ runtime API */
struct kcu_emu_stream {
    bool nonblocking = false;
    bool capturing = false;
    std::vector<std::function<void()>> q, cap;
};
struct kcu_emu_event {
    double t = 0;
    kcu_emu_stream *st = nullptr;
};
struct kcu_emu_graph {
    std::vector<std::function<void()>> ops;
};
typedef kcu_emu_stream *cudaStream_t;
typedef kcu_emu_event *cudaEvent_t;
typedef kcu_emu_graph *cudaGraph_t;
typedef kcu_emu_graph *cudaGraphExec_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum { cudaStreamDefault = 0, cudaStreamNonBlocking = 1, cudaStreamCaptureModeGlobal = 0 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrClockRate = 13, cudaDevAttrMemoryClockRate = 36 };
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount, l2CacheSize, memoryBusWidth;
    size_t totalGlobalMem;
};
struct kcu_emu_streams {
    std::mutex mu;
    std::vector<kcu_emu_stream *> all;
    std::map<const void *, int> dyn_limit; /* kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize */
};
inline kcu_emu_streams kcu_emu_s;

static inline void kcu_emu_drain(kcu_emu_stream *s)
{
    while (s && !s->q.empty()) {
        std::vector<std::function<void()>> q;
        q.swap(s->q);
        for (auto &f : q)
            f();
    }
}
static inline cudaError_t kcu_emu_sync_status(void)
{
    std::lock_guard<std::mutex> l(kcu_emu_g.mu);
    if (kcu_emu_g.sticky) {
        kcu_emu_g.sticky = false;
        return cudaErrorLaunchFailure;
    }
    return cudaSuccess;
}
/* Legacy-stream operation: runs now; reports unsynchronised non-blocking work. */
static inline void kcu_emu_legacy(const char *what)
{
    std::lock_guard<std::mutex> l(kcu_emu_s.mu);
    for (auto *s : kcu_emu_s.all)
        if (s->nonblocking && !s->q.empty())
            kcu_emu_fail("stream-order", "%s on the legacy stream while a non-blocking stream holds %zu "
                         "unsynchronised operation(s); they run after it", what, s->q.size());
        else if (!s->nonblocking)
            kcu_emu_drain(s);
}
/* Queues f on s (or runs it: legacy stream); capture records it. */
static inline void kcu_emu_enqueue(cudaStream_t s, const char *what, std::function<void()> f)
{
    if (!s) {
        kcu_emu_legacy(what);
        f();
    } else if (s->capturing)
        s->cap.push_back(std::move(f));
    else
        s->q.push_back(std::move(f));
}

static inline cudaError_t cudaGetLastError(void)
{
    cudaError_t e = kcu_emu_g.last;
    kcu_emu_g.last = cudaSuccess;
    if (e == cudaSuccess)
        e = kcu_emu_sync_status();
    return e;
}
static inline const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument (emulated launch limits)";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure (kcu_emu reported errors above)";
    default:
        return "emulated error";
    }
}
template <class T>
static inline cudaError_t cudaMalloc(T **p, size_t n)
{
    size_t m = (n + 255) / 256 * 256;
    *p = (T *)aligned_alloc(256, m ? m : 256);
    if (*p) /* device memory is not zeroed: poison it as shared memory is */
        memset((void *)*p, 0xa5, m ? m : 256);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline cudaError_t cudaDeviceSynchronize(void)
{
    std::vector<kcu_emu_stream *> all;
    {
        std::lock_guard<std::mutex> l(kcu_emu_s.mu);
        all = kcu_emu_s.all;
    }
    for (auto *s : all)
        kcu_emu_drain(s);
    return kcu_emu_sync_status();
}
static inline cudaError_t cudaFree(void *p)
{
    cudaDeviceSynchronize(); /* cudaFree synchronises the device */
    free(p);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind)
{
    kcu_emu_legacy("cudaMemcpy");
    memcpy(d, s, n);
    return kcu_emu_sync_status();
}
static inline cudaError_t cudaMemset(void *d, int v, size_t n)
{
    kcu_emu_legacy("cudaMemset");
    memset(d, v, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t st)
{
    if (!st)
        return cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice);
    /* a host source is read when the copy runs, as with pinned memory */
    kcu_emu_enqueue(st, "cudaMemcpyAsync", [=] { memcpy(d, s, n); });
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st)
{
    kcu_emu_enqueue(st, "cudaMemsetAsync", [=] { memset(d, v, n); });
    return cudaSuccess;
}
static inline cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    kcu_emu_drain(s);
    return kcu_emu_sync_status();
}
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    *s = new kcu_emu_stream;
    (*s)->nonblocking = flags & cudaStreamNonBlocking;
    std::lock_guard<std::mutex> l(kcu_emu_s.mu);
    kcu_emu_s.all.push_back(*s);
    return cudaSuccess;
}
static inline cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
static inline cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    kcu_emu_drain(s);
    std::lock_guard<std::mutex> l(kcu_emu_s.mu);
    for (size_t i = 0; i < kcu_emu_s.all.size(); i++)
        if (kcu_emu_s.all[i] == s)
            kcu_emu_s.all.erase(kcu_emu_s.all.begin() + (long)i);
    delete s;
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
static inline cudaError_t cudaFuncSetAttribute(F f, cudaFuncAttribute, int v)
{
    if (v < 0 || v > 227 * 1024)
        return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> l(kcu_emu_s.mu);
    kcu_emu_s.dyn_limit[(const void *)f] = v;
    return cudaSuccess;
}
static inline cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new kcu_emu_event;
    return cudaSuccess;
}
static inline cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}
static inline double kcu_emu_now(void)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    e->st = s;
    kcu_emu_enqueue(s, "cudaEventRecord", [e] { e->t = kcu_emu_now(); });
    return cudaSuccess;
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    kcu_emu_drain(e->st);
    return kcu_emu_sync_status();
}
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)((b->t - a->t) * 1e3);
    return cudaSuccess;
}
static inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, int)
{
    if (!s || s->capturing)
        return cudaErrorInvalidValue;
    s->capturing = true;
    s->cap.clear();
    return cudaSuccess;
}
static inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    if (!s || !s->capturing)
        return cudaErrorInvalidValue;
    s->capturing = false;
    *g = new kcu_emu_graph;
    (*g)->ops.swap(s->cap);
    return cudaSuccess;
}
static inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long)
{
    *e = new kcu_emu_graph(*g);
    return cudaSuccess;
}
static inline cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    delete g;
    return cudaSuccess;
}
static inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t g)
{
    delete g;
    return cudaSuccess;
}
static inline cudaError_t cudaGraphLaunch(cudaGraphExec_t g, cudaStream_t s)
{
    for (auto &f : g->ops)
        kcu_emu_enqueue(s, "cudaGraphLaunch", f);
    return cudaSuccess;
}

/* --------------------------------------------------------- launches */
/* Registers of a kernel from KCU_EMU_REGS ("name registers" lines), −1 if unknown. */
static inline int kcu_emu_regs(const std::string &name)
{
    std::lock_guard<std::mutex> l(kcu_emu_g.mu);
    if (!kcu_emu_g.regs_loaded) {
        kcu_emu_g.regs_loaded = true;
        const char *path = getenv("KCU_EMU_REGS");
        FILE *f = path && *path ? fopen(path, "r") : nullptr;
        char nm[512];
        int r;
        while (f && fscanf(f, "%511s %d", nm, &r) == 2)
            kcu_emu_g.regs[nm] = r;
        if (f)
            fclose(f);
    }
    auto it = kcu_emu_g.regs.find(name);
    return it == kcu_emu_g.regs.end() ? -1 : it->second;
}

/* Replaces the register table with the file at path (NULL: none). */
static inline void kcu_emu_regs_load(const char *path)
{
    {
        std::lock_guard<std::mutex> l(kcu_emu_g.mu);
        kcu_emu_g.regs.clear();
        kcu_emu_g.regs_loaded = false;
    }
    if (path)
        setenv("KCU_EMU_REGS", path, 1);
    else
        unsetenv("KCU_EMU_REGS");
}

/* Runs one block: nt OS threads, barrier, warps, shared arenas. */
template <class Fn>
static inline void kcu_emu_run_block(const char *kname, dim3 bi, unsigned nt, size_t smem, Fn &&body)
{
    kcu_emu_block blk;
    blk.kname = kname;
    blk.idx = bi;
    blk.nt = nt;
    blk.bar = std::make_unique<std::barrier<kcu_emu_phase>>((std::ptrdiff_t)nt, kcu_emu_phase{&blk.phase});
    unsigned nw = (nt + 31) / 32;
    blk.warps = std::make_unique<kcu_emu_warp[]>(nw);
    for (unsigned w = 0; w < nw; w++) {
        unsigned n = nt - 32 * w < 32 ? nt - 32 * w : 32;
        blk.warps[w].present = n == 32 ? 0xffffffffu : (1u << n) - 1;
        for (int l = 0; l < 32; l++)
            blk.warps[w].bar_phase[l] = -1;
    }
    blk.dyn_smem = smem;
    std::vector<std::thread> th;
    th.reserve(nt);
    for (unsigned t = 0; t < nt; t++)
        th.emplace_back([&, t] {
            kcu_emu_me = kcu_emu_thread{&blk, t, 0, 0};
            threadIdx = dim3(t, 0, 0);
            blockIdx = bi;
            body();
            kcu_emu_warp &w = blk.warps[t / 32];
            {
                std::lock_guard<std::mutex> l(w.mu);
                w.exited |= 1u << (t & 31);
                w.cv.notify_all();
            }
            blk.bar->arrive_and_drop();
            kcu_emu_me = kcu_emu_thread{};
        });
    for (auto &x : th)
        x.join();
    for (auto &kv : blk.shared)
        free(kv.second);
    free(blk.dyn);
}

/* Checks the launch now (errors go to cudaGetLastError), queues its run. */
template <class... P, class... A>
static inline void kcu_emu_launch(const char *kname, void (*k)(P...), dim3 grid, dim3 block, size_t smem,
                                  cudaStream_t st, A &&...args)
{
    unsigned nt = block.x * block.y * block.z;
    const char *bad = nullptr;
    char why[256];
    /* the host compiler mangles a kernel as nvcc does (Itanium ABI), so the
     * symbol (binary linked with -rdynamic) keys ptxas's register count */
    Dl_info di;
    int regs = dladdr((void *)k, &di) && di.dli_sname ? kcu_emu_regs(di.dli_sname) : -1;
    int dyn_max = 48 * 1024;
    {
        std::lock_guard<std::mutex> l(kcu_emu_s.mu);
        auto it = kcu_emu_s.dyn_limit.find((const void *)k);
        if (it != kcu_emu_s.dyn_limit.end())
            dyn_max = it->second;
    }
    if (block.y != 1 || block.z != 1)
        bad = "only 1-D blocks are emulated";
    else if (nt == 0 || nt > 1024)
        bad = "threads per block outside 1..1024";
    else if (nt % 32)
        bad = "a block of a partial warp (kvsim launches whole warps)";
    else if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        bad = "grid dimension 0 or over the limit";
    else if (smem > (size_t)dyn_max)
        bad = "dynamic shared memory over the kernel's limit (cudaFuncSetAttribute)";
    else if (regs > 0 && (long)regs * nt > 65536)
        bad = "registers × threads over the 65536 registers of an SM";
    if (bad) {
        snprintf(why, sizeof why, "%s: grid (%u,%u,%u) block %u smem %zu regs %d", bad, grid.x, grid.y, grid.z, nt,
                 smem, regs);
        bool was;
        {
            std::lock_guard<std::mutex> l(kcu_emu_g.mu);
            was = kcu_emu_g.sticky;
        }
        kcu_emu_fail("launch-limit", "%s", why);
        { /* a configuration error is returned once, not sticky (as on the device) */
            std::lock_guard<std::mutex> l(kcu_emu_g.mu);
            kcu_emu_g.sticky = was;
        }
        kcu_emu_g.last = cudaErrorInvalidConfiguration;
        return;
    }
    auto tup = std::make_tuple(P(args)...);
    kcu_emu_enqueue(st, kname, [=] {
        gridDim = grid;
        blockDim = block;
        std::vector<dim3> order;
        for (unsigned bz = 0; bz < grid.z; bz++)
            for (unsigned by = 0; by < grid.y; by++)
                for (unsigned bx = 0; bx < grid.x; bx++)
                    order.push_back(dim3(bx, by, bz));
        static std::mt19937_64 rng(kcu_emu_env("KCU_EMU_SEED", 1));
        std::shuffle(order.begin(), order.end(), rng);
        size_t conc = kcu_emu_env("KCU_EMU_CONC", 2);
        conc = conc < 1 ? 1 : conc;
        for (size_t i = 0; i < order.size(); i += conc) {
            std::vector<std::thread> blocks;
            for (size_t j = i; j < order.size() && j < i + conc; j++)
                blocks.emplace_back([&, j] {
                    kcu_emu_run_block(kname, order[j], nt, smem, [&] { std::apply(k, tup); });
                });
            for (auto &b : blocks)
                b.join();
        }
    });
}

#endif
