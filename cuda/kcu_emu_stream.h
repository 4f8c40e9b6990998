/* kcu_emu_stream.h — part of the CPU emulation of CUDA (kcu_emu.h, whose header
 * states the rules): the runtime API: memory, streams (a non-blocking stream defers its
 * work until a sync; legacy-stream operations meanwhile are reported), events,
 * graph capture and launch.
 * Included by kcu_emu.h only, after the parts before it. */
#ifndef KCU_EMU_STREAM_H
#define KCU_EMU_STREAM_H

#ifndef KCU_EMU_H
#error "include kcu_emu.h, not kcu_emu_stream.h"
#endif

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

#endif
