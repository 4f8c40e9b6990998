/* test_serve_reference.c — serve/: the fast paths against the reference
 * walk, bit for bit (every method, five instance variants and two with swap
 * preemption, every event kind asserted to occur), the exact fixed-point
 * sums, and preemption by swap worked by hand (copy time = blocks x block
 * bytes / the host link), with a full swap space falling back to recompute
 * and nothing lost. Split from test_serve.c; same suite name. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serve_util.h"

/* Two runs' results, bit for bit: every request's latencies, preemptions
 * and tokens, every inter-token gap, the counters and integrals, and every
 * step of the timeline. */
static void same_result(const srv_result *a, const srv_result *b, const char *what)
{
    const size_t n = (size_t)a->n;
    cr_assert_eq(a->steps, b->steps, "%s: %lld steps, reference %lld", what, (long long)b->steps, (long long)a->steps);
    cr_assert(!memcmp(a->ttft_s, b->ttft_s, n * sizeof(double)) && !memcmp(a->tpot_s, b->tpot_s, n * sizeof(double)) &&
              !memcmp(a->e2e_s, b->e2e_s, n * sizeof(double)), "%s: latencies differ", what);
    cr_assert(!memcmp(a->preempted, b->preempted, n * sizeof(int64_t)) &&
              !memcmp(a->tokens_out, b->tokens_out, n * sizeof(int64_t)), "%s: preemptions or tokens differ", what);
    cr_assert_eq(a->n_itl, b->n_itl, "%s", what);
    cr_assert(!memcmp(a->itl_s, b->itl_s, (size_t)a->n_itl * sizeof(double)), "%s: inter-token gaps differ", what);
    const double fa[5] = {a->end_s, a->busy_s, a->area_in_system, a->area_running, a->area_kv_blocks};
    const double fb[5] = {b->end_s, b->busy_s, b->area_in_system, b->area_running, b->area_kv_blocks};
    cr_assert(!memcmp(fa, fb, sizeof fa), "%s: end, busy time or integrals differ", what);
    const int64_t ia[6] = {a->preemptions, a->prefill_tokens, a->decode_steps_seq, a->output_tokens, a->max_running,
                           a->max_kv_blocks};
    const int64_t ib[6] = {b->preemptions, b->prefill_tokens, b->decode_steps_seq, b->output_tokens, b->max_running,
                           b->max_kv_blocks};
    cr_assert(!memcmp(ia, ib, sizeof ia), "%s: counters differ", what);
    cr_assert_eq(a->nsamples, b->nsamples, "%s", what);
    for (int64_t i = 0; i < a->nsamples; i++) {
        const srv_sample *x = &a->samples[i], *y = &b->samples[i];
        cr_assert(x->t_s == y->t_s && x->step_s == y->step_s && x->running == y->running && x->waiting == y->waiting &&
                  x->decode_seqs == y->decode_seqs && x->tokens == y->tokens && x->kv_blocks == y->kv_blocks,
                  "%s: step %lld differs (t %.17g / %.17g, blocks %lld / %lld)", what, (long long)i, x->t_s, y->t_s,
                  (long long)x->kv_blocks, (long long)y->kv_blocks);
    }
}

/* srv_run's fast paths against its definition (srv_config.reference: every
 * decoding sequence's blocks worked from its cache at every step and its
 * method-layer price from the access record priced use by use): the same
 * bits in everything srv_run returns, for every method, under three step
 * loops: vLLM's with a pool small enough to preempt; SGLang v0.3's
 * (prefills alone, admission reserve) at TP 2 with fp8 K/V and two dense
 * layers; multi-step decoding with token-granular blocks, no CUDA graphs.
 * Outputs of 1 and 2 tokens are included (no decode step, one). */
/* Preemption by swap, worked by hand. llama3.1-8b on h100-sxm, full K/V in
 * bf16: one token is 32 layers x 8 KV heads x (K, V) x 128 x 2 B = 131072 B,
 * a block of 16 tokens 2097152 B; the host link is PCIe Gen5 x16, 64e9 B/s
 * one way (H100 datasheet). A pool of 9 blocks; A and B (prompts of 64
 * tokens: 4 blocks each) arrive together and prefill in one step (8
 * blocks). Their first decode step (context 65) needs a 5th block each: A
 * takes the last free one, B finds none and, the last admitted, is
 * preempted itself: its 4 blocks go to the host. That step decodes A alone.
 * B (5 blocks with its next token) waits until A finishes (A needs no 6th
 * block in 10 tokens: 64 + 10 <= 80) and comes back, its 4 blocks copied
 * in, decoding alone. Each of those two steps costs a lone sequence's
 * decode step at context 65 (run C: one request of prompt 64, output 2)
 * plus 4 x 2097152 / 64e9 s. Walk and lockstep alike. */
static srv_result swap_case(double swap_bytes, int reference)
{
    load();
    srv_config c = instance("full", 1024);
    cr_assert_eq(srv_token_bytes(&c), 32.0 * 8 * 2 * 128 * 2, "one token's K/V");
    cr_assert_eq(H.pcie_bytes_per_s, 64e9, "h100-sxm's host link");
    c.pool_bytes = 9 * 2097152.0;
    c.preempt_swap = 1;
    c.swap_bytes = swap_bytes;
    c.timeline = 1;
    c.reference = reference;
    srv_request q[2] = {{0.0, 64, 10}, {0.0, 64, 6}};
    srv_workload w = {q, 2};
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.completed, 2);
    cr_assert(r.tokens_out[0] == 10 && r.tokens_out[1] == 6, "tokens %lld, %lld", (long long)r.tokens_out[0],
              (long long)r.tokens_out[1]);
    cr_assert(r.preemptions == 1 && r.preempted[1] == 1, "B preempted once");
    return r;
}

static double lone_decode_step_s(void)
{
    srv_config c = instance("full", 1024);
    c.timeline = 1;
    srv_request q[1] = {{0.0, 64, 2}};
    srv_workload w = {q, 1};
    srv_result r;
    kv_err err = {""};
    cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.nsamples, 2, "prefill, one decode step");
    const double t = r.samples[1].step_s;
    srv_result_free(&r);
    return t;
}

Test(serve, swap_worked_by_hand)
{
    const double copy = 4 * 2097152.0 / 64e9; /* 4 blocks one way */
    for (int ref = 0; ref < 2; ref++) {
        srv_result r = swap_case(4294967296.0, ref);
        const double lone = lone_decode_step_s();
        cr_assert(r.swap_outs == 1 && r.swap_ins == 1 && r.swap_fallbacks == 0 && r.max_swap_blocks == 4,
                  "one swap each way of 4 blocks (out %lld, in %lld)", (long long)r.swap_outs, (long long)r.swap_ins);
        cr_assert_eq(r.swap_blocks, 2048, "4 GiB / 2 MiB blocks");
        rel_eq(r.swap_s, 2 * copy, 1e-15, "swap time: 8 blocks over the link");
        cr_assert_eq(r.prefill_tokens, 128, "nothing prefilled twice");
        /* steps: the prefill; A alone with B's swap-out; A's 8 more steps; B alone with its swap-in; B's 4 more */
        cr_assert_eq(r.nsamples, 1 + 1 + 8 + 1 + 4, "%lld steps", (long long)r.nsamples);
        rel_eq(r.samples[1].step_s, lone + copy, 1e-12, "the swap-out step: A's decode + 4 blocks out");
        cr_assert_eq(r.samples[1].decode_seqs, 1);
        rel_eq(r.samples[10].step_s, lone + copy, 1e-12, "the swap-in step: B's decode + 4 blocks in");
        cr_assert(r.samples[10].decode_seqs == 1 && r.samples[10].kv_blocks == 5, "B back with 5 blocks");
        /* B's token after its return comes one swap-in step after A's last */
        rel_eq(r.ttft_s[1] + r.itl_s[r.n_itl - 5] , r.samples[10].t_s, 1e-12, "B's first gap spans its time swapped");
        srv_result_free(&r);
    }
}

/* The same case with a swap space of 3 blocks: B's 4 do not fit, so B is
 * preempted by recompute (vLLM V0 aborts there; kvsim falls back) and
 * prefills its prompt and its one token again: 128 + 65 tokens. */
Test(serve, swap_space_full_recomputes)
{
    for (int ref = 0; ref < 2; ref++) {
        srv_result r = swap_case(3 * 2097152.0, ref);
        cr_assert(r.swap_outs == 0 && r.swap_ins == 0 && r.swap_fallbacks == 1 && r.swap_s == 0.0,
                  "recomputed, not swapped (out %lld, fallbacks %lld)", (long long)r.swap_outs,
                  (long long)r.swap_fallbacks);
        cr_assert_eq(r.swap_blocks, 3);
        cr_assert_eq(r.prefill_tokens, 128 + 65, "B's prompt and first token prefilled again");
        srv_result_free(&r);
    }
}

/* Under load with swap: every request gets exactly its tokens, none twice;
 * with room in the swap space nothing is prefilled twice; with a small one
 * some preemptions fall back to recompute and the swap space never holds
 * more than it has. */
Test(serve, nothing_lost_under_swap)
{
    load();
    const int64_t n = 600;
    srv_workload w = poisson(20.0, n, "uniform:500:3000", "uniform:20:600", 3);
    const double space[2] = {4294967296.0, 0.15e9};
    for (int k = 0; k < 2; k++) {
        srv_config c = instance("full", 1024);
        c.pool_bytes = 3e9;
        c.preempt_swap = 1;
        c.swap_bytes = space[k];
        srv_result r;
        kv_err err = {""};
        cr_assert_eq(srv_run(&c, &w, &r, &err), 0, "%s", err.msg);
        cr_assert_gt(r.swap_outs, 0, "the pool was meant to overflow");
        cr_assert_eq(r.completed, n);
        int64_t want_itl = 0, pre = 0, prompts = 0;
        for (int64_t i = 0; i < n; i++) {
            cr_assert_eq(r.tokens_out[i], w.req[i].output, "request %lld got %lld tokens of %lld", (long long)i,
                         (long long)r.tokens_out[i], (long long)w.req[i].output);
            want_itl += w.req[i].output - 1;
            pre += r.preempted[i];
            prompts += w.req[i].prompt;
        }
        cr_assert_eq(r.n_itl, want_itl);
        cr_assert_eq(pre, r.preemptions);
        cr_assert_eq(r.preemptions, r.swap_outs + r.swap_fallbacks, "every preemption swapped or recomputed");
        cr_assert_eq(r.swap_ins, r.swap_outs, "every swap-out came back");
        cr_assert_leq(r.max_swap_blocks, r.swap_blocks);
        cr_assert_leq(r.max_kv_blocks, r.pool_blocks);
        if (k == 0) {
            cr_assert_eq(r.swap_fallbacks, 0);
            cr_assert_eq(r.prefill_tokens, prompts, "swap: no prompt prefilled twice");
        } else {
            cr_assert_gt(r.swap_fallbacks, 0, "a 0.15 GB swap space fills");
            cr_assert_gt(r.prefill_tokens, prompts);
        }
        srv_result_free(&r);
    }
    srv_workload_free(&w);
}

/* One variant of fast_paths_equal_reference's instance: 0 a small pool;
 * 1 prefills alone, admission reserve, TP 2, fp8, skip layers, a smaller
 * pool; 2 multi-step, one-token blocks, no CUDA graphs, host time; 3 long
 * outputs (the lockstep's ring wraps, far price events), four-token blocks,
 * a small pool; 4 a token budget below max_num_seqs (the walk, no
 * lockstep); 5 variant 0 with preemption by swap; 6 variant 3 by swap
 * with a swap space that fills (recompute fallbacks) and multi-step. */
static srv_config reference_variant(const char *method, int v)
{
    srv_config c = instance(method, 256);
    c.timeline = 1;
    c.pool_bytes = v == 0 ? 2.5e9 : c.pool_bytes;
    if (v == 1) {
        c.prefill_alone = 1;
        c.admit_reserve = 0.1;
        c.tp = 2;
        c.rq.kv_dtype = RKV_DTYPE_FP8_E4M3;
        c.rq.skip_layers = 2;
        c.pool_bytes = 1.5e9;
    } else if (v == 2) {
        c.scheduler_steps = 4;
        c.block_tokens = 1;
        c.cuda_graphs = 0;
        c.host_step_s = 1e-3;
    } else if (v == 3) {
        c.block_tokens = 4;
        c.pool_bytes = 2e9;
    } else if (v == 4) {
        c.max_batched_tokens = 40;
        c.pool_bytes = 3e9;
    } else if (v == 5) { /* variant 0 with preemption by swap, vLLM's 4 GiB swap space */
        c.preempt_swap = 1;
        c.swap_bytes = 4294967296.0;
    } else if (v == 6) { /* variant 3 by swap, a swap space that fills (recompute fallbacks), multi-step */
        c.block_tokens = 4;
        c.pool_bytes = 2e9;
        c.preempt_swap = 1;
        c.swap_bytes = 0.4e9;
        c.scheduler_steps = 3;
    }
    return c;
}

Test(serve, fast_paths_equal_reference)
{
    load();
    srv_workload w = poisson(12.0, 160, "uniform:200:4000", "uniform:1:300", 9);
    srv_workload wl = poisson(4.0, 50, "uniform:100:3000", "uniform:300:1400", 4);
    int64_t runs = 0, preempted = 0, ev[SRV_EV_N] = {0}, swaps[3] = {0};
    for (const rkv_method_type *const *m = rkv_methods; *m; m++)
        for (int v = 0; v < 7; v++) {
            srv_config c = reference_variant((*m)->name, v);
            const srv_workload *wv = v == 3 || v == 6 ? &wl : &w;
            srv_result a, b;
            kv_err ea = {""}, eb = {""};
            c.reference = 1;
            const int ra = srv_run(&c, wv, &a, &ea);
            c.reference = 0;
            const int rb = srv_run(&c, wv, &b, &eb);
            char what[96];
            snprintf(what, sizeof what, "%s, variant %d", (*m)->name, v);
            cr_assert_eq(ra, rb, "%s: %s / %s", what, ea.msg, eb.msg);
            cr_assert_str_eq(ea.msg, eb.msg, "%s", what);
            if (ra != 0)
                continue;
            same_result(&a, &b, what);
            const int64_t sa[4] = {a.swap_outs, a.swap_ins, a.swap_fallbacks, a.max_swap_blocks};
            const int64_t sb[4] = {b.swap_outs, b.swap_ins, b.swap_fallbacks, b.max_swap_blocks};
            cr_assert(!memcmp(sa, sb, sizeof sa) && a.swap_s == b.swap_s, "%s: swaps differ", what);
            swaps[0] += b.swap_outs, swaps[1] += b.swap_ins, swaps[2] += b.swap_fallbacks;
            int64_t na = 0, nb = 0;
            for (int k = 0; k < SRV_EV_N; k++) {
                na += a.lock_events[k];
                nb += b.lock_events[k];
                ev[k] += b.lock_events[k];
            }
            cr_assert_eq(na, 0, "%s: the reference took the lockstep", what);
            if (v == 4)
                cr_assert_eq(nb, 0, "%s: the lockstep ran with a token budget below max_num_seqs", what);
            else
                cr_assert_eq(b.lock_events[SRV_EV_JOIN], b.lock_events[SRV_EV_DONE] + b.lock_events[SRV_EV_LEAVE],
                             "%s: every member joined once per admission and left once (finished or preempted)", what);
            runs++;
            preempted += a.preemptions > 0;
            srv_result_free(&a);
            srv_result_free(&b);
        }
    srv_workload_free(&w);
    srv_workload_free(&wl);
    cr_assert_geq(runs, 63, "%lld runs compared", (long long)runs);
    cr_assert(swaps[0] > 0 && swaps[1] > 0 && swaps[2] > 0, "swap-outs %lld, swap-ins %lld, recompute fallbacks %lld: "
              "each must occur", (long long)swaps[0], (long long)swaps[1], (long long)swaps[2]);
    cr_assert_geq(preempted, 12, "preemption was exercised in %lld runs", (long long)preempted);
    const char *kind[SRV_EV_N] = {"joins", "block events", "price events", "ring page crossings", "last tokens",
                                  "members preempted"};
    for (int k = 0; k < SRV_EV_N; k++)
        cr_assert_gt(ev[k], 0, "the lockstep's %s were never exercised", kind[k]);
}

/* srv_cost_acc's fixed point against long double (64-bit mantissa, or
 * more): dyadic values whose exact sum long double holds, summed in two
 * orders and with values taken out again, give the exact sum rounded once;
 * srv_fx_value rounds m × 2^k to the nearest double (ties to even) as
 * long double's conversion to double does. */
Test(serve, fixed_point_sums_exact)
{
    cr_assert(sizeof(long double) > sizeof(double) && LDBL_MANT_DIG >= 64, "long double holds 64-bit mantissas");
    uint64_t x = 88172645463325252ull;
    srv_seq_cost c[200];
    memset(c, 0, sizeof c);
    long double exact = 0.0L;
    for (int i = 0; i < 200; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const double v = ldexp((double)(x >> 24), -(int)(x % 11)); /* 40-bit mantissas: the sum needs < 60 bits */
        c[i].be[1] = v;
        c[i].la[1] = 1.0;
        exact += (long double)v;
    }
    srv_cost_acc f, r;
    memset(&f, 0, sizeof f);
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 200; i++) srv_cost_acc_add(&f, &c[i], 1);
    for (int i = 199; i >= 0; i--) srv_cost_acc_add(&r, &c[i], 1);
    for (int i = 0; i < 50; i++) srv_cost_acc_add(&r, &c[i], 1); /* in twice, then out again */
    for (int i = 0; i < 50; i++) srv_cost_acc_add(&r, &c[i], -1);
    srv_seq_cost sf, sr;
    srv_cost_acc_sum(&f, &sf);
    srv_cost_acc_sum(&r, &sr);
    cr_assert(sf.be[1] == (double)exact, "sum %.17g, exact %.17Lg", sf.be[1], exact);
    cr_assert(sr.be[1] == sf.be[1], "another order: %.17g / %.17g", sr.be[1], sf.be[1]);
    cr_assert(sf.la[1] == 1.0 && f.nla[1] == 200 && !f.la_mixed, "launches");
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const uint64_t mant = x >> (x % 40); /* up to 64 bits: ties and sticky bits */
        const int k = (int)(x % 50);
        const __int128 fx = (__int128)mant << k;
        const double want = (double)ldexpl((long double)mant, k - 64);
        cr_assert(srv_fx_value(fx) == want, "%llu x 2^%d: %.17g, want %.17g", (unsigned long long)mant, k - 64,
                  srv_fx_value(fx), want);
        const double v = want;
        cr_assert(srv_fx_value(srv_fx(v)) == v, "round trip of %.17g", v);
    }
}
