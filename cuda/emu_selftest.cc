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
 *   mma             one mma.sync m16n8k16 (bf16 → f32) of small integers,
 *                   its fragments filled and read back by the PTX ISA's
 *                   table (written out in the kernel below, indexed
 *                   independently of the emulation's code), against the
 *                   plain product Σ_k A[i][k]·B[k][j] + C[i][j]; bf16
 *                   packing rounds to nearest even (hand-worked values);
 *                   an mma with half the warp exited is reported
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

/* A [16][16], B [16][8] (bf16 bits), C, D [16][8] f32, row-major. Lane l:
 * groupID g = l / 4, threadID_in_group t = l % 4 (PTX ISA, "Matrix Fragments
 * for mma.m16n8k16 with floating point type"): A register 0 = (g, 2t), (g,
 * 2t+1); 1 = (g+8, 2t), (g+8, 2t+1); 2 = (g, 2t+8), (g, 2t+9); 3 = (g+8,
 * 2t+8), (g+8, 2t+9); B register 0 = rows 2t, 2t+1 of column g; 1 = rows
 * 2t+8, 2t+9; C/D c0, c1 = (g, 2t), (g, 2t+1); c2, c3 = (g+8, 2t), (g+8,
 * 2t+1). The lower-numbered element in bits 0–15. */
__global__ void mma_kernel(const uint16_t *A, const uint16_t *B, const float *C, float *D)
{
    const int l = threadIdx.x, g = l / 4, t = l % 4;
    auto pk = [](uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; };
    const uint32_t a[4] = {pk(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]),
                           pk(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]),
                           pk(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]),
                           pk(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9])};
    const uint32_t b[2] = {pk(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]),
                           pk(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g])};
    const float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
    float d[4];
    kcu_mma_bf16_16816(d, a, b, c);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

/* Half the warp returns; the rest call mma.sync: an error. */
__global__ void mma_half_kernel(float *out)
{
    if (threadIdx.x >= 16)
        return;
    const uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    float d[4] = {0, 0, 0, 0};
    kcu_mma_bf16_16816(d, a, b, d);
    out[threadIdx.x] = d[0];
}

/* bf16 bits of a small integer (exact: |v| < 256). */
static uint16_t bf16_of(int v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static void case_mma(void)
{
    /* A[i][k] = (i + 2k) mod 7 − 3, B[k][j] = (3k + j) mod 5 − 2, C[i][j] = i − j:
     * e.g. D[0][0] = Σ_k ((2k mod 7) − 3)·((3k mod 5) − 2) + 0 = 11 (worked by
     * hand: k = 0..15 gives 6, −1, −1, 6, 0, 0, 2, 3, −2, 0, −6, −2, 0, 4, 0, 2) */
    uint16_t *A, *B;
    float *C, *D;
    cudaMalloc(&A, 256 * 2);
    cudaMalloc(&B, 128 * 2);
    cudaMalloc(&C, 128 * 4);
    cudaMalloc(&D, 128 * 4);
    int Ai[16][16], Bi[16][8];
    for (int i = 0; i < 16; i++)
        for (int k = 0; k < 16; k++)
            A[i * 16 + k] = bf16_of(Ai[i][k] = (i + 2 * k) % 7 - 3);
    for (int k = 0; k < 16; k++)
        for (int j = 0; j < 8; j++)
            B[k * 8 + j] = bf16_of(Bi[k][j] = (3 * k + j) % 5 - 2);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++)
            C[i * 8 + j] = (float)(i - j);
    kcu_emu_errors_reset();
    KCU_LAUNCH(mma_kernel, 1, 32, 0, (cudaStream_t)0, A, B, C, D);
    long bad = 0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) {
            int s = i - j;
            for (int k = 0; k < 16; k++)
                s += Ai[i][k] * Bi[k][j];
            bad += D[i * 8 + j] != (float)s;
        }
    /* round to nearest even: 1 + 2^-8 is a tie (-> 1.0, 0x3f80), 1 + 3·2^-8 a tie
     * between 1 + 2^-7 and 1 + 2^-6 (-> the even 1 + 2^-6, 0x3f82), 1 + 2^-8 + 2^-12
     * rounds up (0x3f81), −2 is exact (0xc000) */
    uint32_t p1 = kcu_pack_bf16x2(1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f), p2 = kcu_pack_bf16x2(1.0f + 0x1p-8f + 0x1p-12f, -2.0f);
    bool pack_ok = p1 == 0x3f823f80u && p2 == 0xc0003f81u;
    expect(bad == 0 && D[0] == 11.0f && kcu_emu_errors(nullptr) == 0 && pack_ok, "mma",
           "%ld of 128 elements differ from the plain product (D[0][0] = %g, by hand 11); %ld emulation errors; "
           "bf16 packing %08x %08x (expected 3f823f80 c0003f81)", bad, D[0], kcu_emu_errors(nullptr), p1, p2);
    long n = run_expect_kind(mma_half_kernel, "mma_half_kernel", 32, "warp-exited");
    expect(n > 0, "mma-exited", "%ld warp-exited report(s) for an mma.sync missing 16 lanes", n);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    cudaFree(D);
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
    case_mma();
    printf("emu_selftest: %d case(s) failed\n", g_fail);
    return g_fail;
}
