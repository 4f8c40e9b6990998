/* emu_selftest.cc — the CPU emulation (kcu_emu.h) must catch what it claims
 * to catch. Built only with -DKCU_EMU (make cuda-emu-selftest). Each case
 * runs a small kernel and compares the emulation's error counts and the
 * kernel's results with values worked out by hand in the case:
 *
 *   scan-clean      kcu_block_excl_scan twice in a row: exact prefix sums, no error
 *   scan-race       the same with the barrier after the scan's last read
 *                   deleted (emu_selftest_fault.cc): a shared-race report
 *   stream-order    a kernel on a non-blocking stream, then a legacy
 *                   cudaMemcpy with no sync (an injected ordering bug): a
 *                   stream-order report and the stale (poisoned) bytes; the
 *                   fixed version (copy on the stream) is clean and right
 *   ballot / match  values against hand-computed masks and sums
 *   regs-limit      a register table (as make cuda-audit writes) makes a
 *                   launch of 128 registers × 1024 threads fail, × 512 pass
 *   exited-lane     a full-mask shuffle after half the warp returned
 *   divergent       two branches of one warp at different collectives
 *   mask-self       a lane calling a shuffle whose mask omits it
 *   uninit-shared   a read of shared memory nobody wrote
 *   launch-limits   2048 threads; 64 KiB dynamic shared memory without and
 *                   with cudaFuncSetAttribute
 *   block-order     a 64-block grid does not run in index order
 * Exit status: the number of failed cases. */
#include "kcu_cuda.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "kcu_dev.cuh"

#ifndef KCU_EMU
#error "emu_selftest.cc is the emulation's own test (build with -DKCU_EMU)"
#endif

/* emu_selftest_fault.cc: the same scan kernel with the barrier deleted */
void emu_scan_fault_run(int64_t *out, int n);

static int g_fail; /* test-binary tally, not device state */

static void expect(bool ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect(bool ok, const char *name, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("%-14s %s  %s\n", name, ok ? "ok  " : "FAIL", msg);
    g_fail += !ok;
}

/* out[t] = Σ_{u<t} (u+1), then again with (2u+1): two scans back to back. */
__global__ void scan_clean_kernel(int64_t *out)
{
    KCU_SHARED(int64_t, sm, [33]);
    int64_t tot;
    int64_t a = kcu_block_excl_scan((int64_t)threadIdx.x + 1, &tot, sm);
    int64_t b = kcu_block_excl_scan(2 * (int64_t)threadIdx.x + 1, &tot, sm);
    out[threadIdx.x] = a;
    out[blockDim.x + threadIdx.x] = b;
}

static void case_scan(void)
{
    const int n = 256;
    int64_t *d;
    cudaMalloc(&d, 2 * n * sizeof(int64_t));
    kcu_emu_errors_reset();
    KCU_LAUNCH(scan_clean_kernel, 1, n, 0, (cudaStream_t)0, d);
    long bad = 0;
    for (int t = 0; t < n; t++) /* Σ_{u<t}(u+1) = t(t+1)/2; Σ_{u<t}(2u+1) = t² */
        bad += d[t] != (int64_t)t * (t + 1) / 2 || d[n + t] != (int64_t)t * t;
    expect(bad == 0 && kcu_emu_errors(nullptr) == 0, "scan-clean", "%ld wrong sums, %ld emulation errors", bad,
           kcu_emu_errors(nullptr));
    kcu_emu_errors_reset();
    emu_scan_fault_run(d, n);
    long races = kcu_emu_errors("shared-race");
    expect(races > 0, "scan-race", "%ld shared-race report(s) with kcu_dev.cuh's tail barrier deleted", races);
    (void)cudaGetLastError();
    kcu_emu_errors_reset();
    cudaFree(d);
}

__global__ void fill_kernel(int32_t *x, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        x[i] = i;
}

static void case_stream(void)
{
    const int n = 64;
    int32_t *d;
    cudaMalloc(&d, n * sizeof(int32_t));
    cudaStream_t st;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    std::vector<int32_t> h(n, 7);
    /* the bug: kernel on st, copy on the legacy stream, no sync */
    kcu_emu_errors_reset();
    KCU_LAUNCH(fill_kernel, 1, 32, 0, st, d, n);
    cudaMemcpy(h.data(), d, n * sizeof(int32_t), cudaMemcpyDeviceToHost);
    long so = kcu_emu_errors("stream-order");
    expect(so == 1 && h[5] == (int32_t)0xa5a5a5a5, "stream-order", "%ld report(s); h[5] = %#x (poison 0xa5a5a5a5 = stale)",
           so, (unsigned)h[5]);
    cudaStreamSynchronize(st);
    /* the fix: the copy on the work stream, then sync */
    kcu_emu_errors_reset();
    KCU_LAUNCH(fill_kernel, 1, 32, 0, st, d, n);
    cudaMemcpyAsync(h.data(), d, n * sizeof(int32_t), cudaMemcpyDeviceToHost, st);
    cudaError_t e = cudaStreamSynchronize(st);
    expect(e == cudaSuccess && kcu_emu_errors(nullptr) == 0 && h[5] == 5 && h[63] == 63, "stream-fixed",
           "errors %ld, h[5] = %d, h[63] = %d", kcu_emu_errors(nullptr), h[5], h[63]);
    cudaStreamDestroy(st);
    cudaFree(d);
}

/* out[lane] = ballot(lane % 3 == 0); out[32 + lane] = match_any(lane / 4);
 * out[64 + lane] = reduce_add over the lanes of its group of 4 */
__global__ void warp_vote_kernel(unsigned *out)
{
    int lane = threadIdx.x & 31;
    out[lane] = __ballot_sync(KCU_FULL_MASK, lane % 3 == 0);
    unsigned grp = __match_any_sync(KCU_FULL_MASK, lane / 4);
    out[32 + lane] = grp;
    out[64 + lane] = __reduce_add_sync(grp, (unsigned)lane);
    __syncwarp();
}

static void case_vote(void)
{
    unsigned *d;
    cudaMalloc(&d, 96 * sizeof(unsigned));
    kcu_emu_errors_reset();
    KCU_LAUNCH(warp_vote_kernel, 1, 32, 0, (cudaStream_t)0, d);
    unsigned want_b = 0;
    for (int l = 0; l < 32; l += 3)
        want_b |= 1u << l; /* lanes 0, 3, ..., 30 */
    long bad = 0;
    for (int l = 0; l < 32; l++) { /* group g = l / 4 holds lanes 4g..4g+3: sum 16g + 6 */
        unsigned g = (unsigned)l / 4;
        bad += d[l] != want_b || d[32 + l] != 0xfu << (g * 4) || d[64 + l] != 16 * g + 6;
    }
    expect(bad == 0 && kcu_emu_errors(nullptr) == 0, "ballot-match", "ballot %#x (want %#x), %ld wrong lanes", d[0],
           want_b, bad);
    cudaFree(d);
}

__global__ void exited_kernel(float *out)
{
    if (threadIdx.x >= 16)
        return;
    out[threadIdx.x] = __shfl_xor_sync(KCU_FULL_MASK, (float)threadIdx.x, 1);
}
__global__ void divergent_kernel(float *out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x & 1)
        v = __shfl_xor_sync(KCU_FULL_MASK, v, 2);
    else
        v = (float)__ballot_sync(KCU_FULL_MASK, v > 3.0f);
    out[threadIdx.x] = v;
}
__global__ void mask_self_kernel(float *out)
{
    out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, (float)threadIdx.x, 1); /* lanes 16..31 not in mask */
}
__global__ void uninit_kernel(float *out)
{
    KCU_SHARED(float, s, [64]);
    if (threadIdx.x < 32)
        s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x]; /* threads 32..63 read cells nobody wrote */
}

template <class K>
static long run_expect_kind(K k, const char *kname, unsigned nt, const char *kind)
{
    float *d;
    cudaMalloc(&d, 64 * sizeof(float));
    kcu_emu_errors_reset();
    kcu_emu_launch(kname, k, dim3(1), dim3(nt), 0, (cudaStream_t)0, d);
    long n = kcu_emu_errors(kind);
    cudaError_t e = cudaGetLastError();
    kcu_emu_errors_reset();
    cudaFree(d);
    return e == cudaErrorLaunchFailure ? n : -1;
}

static void case_warp_errors(void)
{
    long n = run_expect_kind(exited_kernel, "exited_kernel", 32, "warp-exited");
    expect(n > 0, "exited-lane", "%ld warp-exited report(s) (-1: no launch failure returned)", n);
    n = run_expect_kind(divergent_kernel, "divergent_kernel", 32, "warp-divergence");
    expect(n > 0, "divergent", "%ld warp-divergence report(s)", n);
    n = run_expect_kind(mask_self_kernel, "mask_self_kernel", 32, "warp-mask");
    expect(n == 16, "mask-self", "%ld warp-mask report(s) (16 lanes outside their mask)", n);
    n = run_expect_kind(uninit_kernel, "uninit_kernel", 64, "shared-uninit");
    expect(n == 32, "uninit-shared", "%ld shared-uninit report(s) (32 unwritten cells read)", n);
}

__global__ void dyn_kernel(float *out)
{
    KCU_DYN_SMEM(float, s);
    s[threadIdx.x] = 2.0f;
    __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

static void case_limits(void)
{
    float *d;
    cudaMalloc(&d, 2048 * sizeof(float));
    kcu_emu_errors_reset();
    KCU_LAUNCH(dyn_kernel, 1, 2048, 0, (cudaStream_t)0, d);
    cudaError_t e1 = cudaGetLastError();
    KCU_LAUNCH(dyn_kernel, 1, 64, 64 * 1024, (cudaStream_t)0, d);
    cudaError_t e2 = cudaGetLastError();
    cudaFuncSetAttribute(dyn_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
    kcu_emu_errors_reset();
    KCU_LAUNCH(dyn_kernel, 1, 64, 64 * 1024, (cudaStream_t)0, d);
    cudaError_t e3 = cudaGetLastError();
    expect(e1 == cudaErrorInvalidConfiguration && e2 == cudaErrorInvalidConfiguration && e3 == cudaSuccess &&
               d[0] == 2.0f,
           "launch-limits", "2048 threads: %d, 64 KiB unset: %d, 64 KiB set: %d (want 9, 9, 0)", (int)e1, (int)e2,
           (int)e3);
    kcu_emu_errors_reset();
    cudaFree(d);
}

static void case_regs(void)
{
    const char *path = "build/emu/selftest-regs.txt";
    FILE *f = fopen(path, "w");
    if (!f) {
        expect(false, "regs-limit", "cannot write %s", path);
        return;
    }
    fprintf(f, "_Z10dyn_kernelPf 128\n"); /* dyn_kernel(float *), mangled as nvcc does */
    fclose(f);
    kcu_emu_regs_load(path);
    float *d;
    cudaMalloc(&d, 1024 * sizeof(float));
    kcu_emu_errors_reset();
    KCU_LAUNCH(dyn_kernel, 1, 1024, 4096, (cudaStream_t)0, d);
    cudaError_t e1 = cudaGetLastError();
    KCU_LAUNCH(dyn_kernel, 1, 512, 2048, (cudaStream_t)0, d);
    cudaError_t e2 = cudaGetLastError();
    expect(e1 == cudaErrorInvalidConfiguration && e2 == cudaSuccess, "regs-limit",
           "128 regs x 1024 threads: %d, x 512: %d (want 9, 0)", (int)e1, (int)e2);
    kcu_emu_regs_load(nullptr);
    kcu_emu_errors_reset();
    cudaFree(d);
}

__global__ void order_kernel(unsigned *slot, unsigned *order)
{
    if (threadIdx.x == 0)
        order[atomicAdd(slot, 1u)] = blockIdx.x;
}

static void case_order(void)
{
    unsigned *d;
    cudaMalloc(&d, 65 * sizeof(unsigned));
    d[0] = 0;
    KCU_LAUNCH(order_kernel, 64, 32, 0, (cudaStream_t)0, d, d + 1);
    int inversions = 0;
    std::vector<int> seen(64, 0);
    bool perm = d[0] == 64;
    for (int i = 0; i < 64 && perm; i++) {
        perm = d[1 + i] < 64 && !seen[d[1 + i]]++;
        inversions += i && d[1 + i] < d[i];
    }
    expect(perm && inversions > 0, "block-order", "all 64 blocks ran once: %s; %d descents in the run order",
           perm ? "yes" : "no", inversions);
    cudaFree(d);
}

int main(void)
{
    case_scan();
    case_stream();
    case_vote();
    case_warp_errors();
    case_limits();
    case_regs();
    case_order();
    printf("emu_selftest: %d case(s) failed\n", g_fail);
    return g_fail;
}
