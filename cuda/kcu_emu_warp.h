/* kcu_emu_warp.h — part of the CPU emulation of CUDA (kcu_emu.h, whose header
 * states the rules): warp collectives (__shfl_*_sync, __ballot_sync, __match_any_sync,
 * __reduce_add_sync, __all_sync, __any_sync, __syncwarp) as rendezvous of exactly
 * the lanes of their mask, and __syncthreads.
 * Included by kcu_emu.h only, after the parts before it. */
#ifndef KCU_EMU_WARP_H
#define KCU_EMU_WARP_H

#ifndef KCU_EMU_H
#error "include kcu_emu.h, not kcu_emu_warp.h"
#endif

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

#endif
