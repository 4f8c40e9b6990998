/* kcu_emu_launch.h — part of the CPU emulation of CUDA (kcu_emu.h, whose header
 * states the rules): kernel launches: launch limits (threads, shared memory, registers
 * from KCU_EMU_REGS), one OS thread per CUDA thread, blocks KCU_EMU_CONC at a
 * time in a seeded random order.
 * Included by kcu_emu.h only, after the parts before it. */
#ifndef KCU_EMU_LAUNCH_H
#define KCU_EMU_LAUNCH_H

#ifndef KCU_EMU_H
#error "include kcu_emu.h, not kcu_emu_launch.h"
#endif

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
