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
enum { KCU_OP_SHFL = 1, KCU_OP_BALLOT, KCU_OP_MATCH, KCU_OP_ALL, KCU_OP_ANY, KCU_OP_SYNCWARP, KCU_OP_REDUX_ADD,
       KCU_OP_MMA };
static const char *const kcu_emu_opname[] = {"?", "shuffle", "ballot", "match_any", "all", "any", "syncwarp",
                                             "reduce_add", "mma.sync"};

/* One lane's registers of mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
 * (D = A·B + C; A 16×16, B 16×8, C and D 16×8): a[4] and b[2] are .b32
 * registers of two bf16 each, the lower-numbered element in bits 0–15. The
 * lane passes a pointer to this record through the collective; the lane that
 * completes it reads every lane's record (each is parked in the collective
 * until then) and writes every lane's d. */
struct kcu_emu_mma_frag {
    uint32_t a[4], b[2];
    float c[4], d[4];
};

/* The fragment layout of PTX ISA, "Matrix Fragments for mma.m16n8k16 with
 * floating point type" (docs.nvidia.com/cuda/parallel-thread-execution,
 * #warp-level-matrix-fragment-mma-16816-float), with groupID = lane >> 2 and
 * threadID_in_group = lane % 4 (t below):
 *   A, elements a0..a7 (register i/2, half i%2):
 *     row = groupID      for a0, a1, a4, a5;  groupID + 8  for a2, a3, a6, a7
 *     col = 2t + (i & 1) for a0..a3;          2t + (i & 1) + 8 for a4..a7
 *   B, elements b0..b3 (register i/2, half i%2):
 *     row = 2t + (i & 1) for b0, b1;          2t + (i & 1) + 8 for b2, b3
 *     col = groupID
 *   C and D, elements c0..c3 (one f32 register each):
 *     row = groupID for c0, c1;  groupID + 8 for c2, c3
 *     col = 2t + (i & 1)
 * Arithmetic: every bf16 × bf16 product is exact in double; each D element is
 * the sum of its 16 products in k order plus C, in double, rounded once to
 * f32. The PTX ISA leaves the order and the intermediate rounding of the
 * tensor core's sum unspecified, so the device may differ in the last bits
 * (the kernels' checks allow for it). */
static inline float kcu_emu_bf16(uint32_t reg, int half)
{
    uint32_t u = (reg >> (16 * half) & 0xffffu) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline void kcu_emu_mma_complete(kcu_emu_warp &w)
{
    double A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
        const kcu_emu_mma_frag *f = reinterpret_cast<const kcu_emu_mma_frag *>((uintptr_t)w.in[l]);
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 8; i++)
            A[g + ((i >> 1) & 1) * 8][2 * t + (i & 1) + (i >= 4 ? 8 : 0)] = kcu_emu_bf16(f->a[i >> 1], i & 1);
        for (int i = 0; i < 4; i++)
            B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g] = kcu_emu_bf16(f->b[i >> 1], i & 1);
        for (int i = 0; i < 4; i++)
            C[g + (i >= 2 ? 8 : 0)][2 * t + (i & 1)] = f->c[i];
    }
    for (int l = 0; l < 32; l++) {
        kcu_emu_mma_frag *f = reinterpret_cast<kcu_emu_mma_frag *>((uintptr_t)w.in[l]);
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; i++) {
            const int r = g + (i >= 2 ? 8 : 0), c = 2 * t + (i & 1);
            double s = 0.0;
            for (int k = 0; k < 16; k++)
                s += A[r][k] * B[k][c];
            f->d[i] = (float)(s + C[r][c]);
        }
    }
}

/* Completes the collective of `mask` if all its lanes are in (warp lock held). */
static inline void kcu_emu_try_complete(kcu_emu_warp &w, unsigned mask)
{
    if ((w.arrived & mask) != mask || !mask)
        return;
    int l0 = __builtin_ctz(mask);
    bool same = true;
    for (int l = 0; l < 32; l++)
        if ((mask >> l & 1) && (w.op[l] != w.op[l0] || w.mask[l] != w.mask[l0])) {
            same = false;
            kcu_emu_fail("warp-divergence",
                         "lanes %d and %d meet at different warp collectives (%s mask %08x vs %s mask %08x)", l0, l,
                         kcu_emu_opname[w.op[l0]], w.mask[l0], kcu_emu_opname[w.op[l]], w.mask[l]);
        }
    /* mma.sync.aligned: all 32 lanes, at the same mma (PTX ISA, "mma": "the
     * mandatory .aligned qualifier indicates that all threads in the warp must
     * execute the same mma instruction") */
    if (w.op[l0] == KCU_OP_MMA && same && mask == 0xffffffffu)
        kcu_emu_mma_complete(w);
    else if (w.op[l0] == KCU_OP_MMA)
        kcu_emu_fail("warp-mask", "mma.sync with lanes %08x: it needs the whole warp, at the same mma", mask);
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
        default: /* KCU_OP_MMA: done above */
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
/* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {d} = {a}·{b} + {c}
 * (layout and arithmetic above kcu_emu_mma_complete); the whole warp. */
static inline void kcu_emu_mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4])
{
    kcu_emu_mma_frag f;
    memcpy(f.a, a, sizeof f.a);
    memcpy(f.b, b, sizeof f.b);
    memcpy(f.c, c, sizeof f.c);
    memcpy(f.d, c, sizeof f.d);
    (void)kcu_emu_collective(KCU_OP_MMA, 0xffffffffu, (uint64_t)(uintptr_t)&f, kcu_emu_lane());
    memcpy(d, f.d, sizeof f.d);
}
/* __byte_perm(x, y, s): byte i of the result is byte (s >> 4i) & 7 of the
 * 8-byte value y:x (CUDA Math API, "Integer Intrinsics"). */
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s)
{
    const uint64_t v = (uint64_t)y << 32 | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++)
        r |= (unsigned)(v >> (8 * ((s >> (4 * i)) & 7)) & 0xffu) << (8 * i);
    return r;
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
