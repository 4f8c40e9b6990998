/* kcu_emu_smem.h — part of the CPU emulation of CUDA (kcu_emu.h, whose header
 * states the rules): shared memory as checked cells (uninitialised reads and races
 * decided from barrier epochs), atomics, KCU_SHARED / KCU_DYN_SMEM, and the
 * load and bit-cast intrinsics.
 * Included by kcu_emu.h only, after the parts before it. */
#ifndef KCU_EMU_SMEM_H
#define KCU_EMU_SMEM_H

#ifndef KCU_EMU_H
#error "include kcu_emu.h, not kcu_emu_smem.h"
#endif

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

#endif
