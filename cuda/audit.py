#!/usr/bin/env python3
"""cuda/audit.py — the static audit of kvsim's CUDA kernels (make cuda-audit).

No GPU is needed: every figure comes from nvcc/ptxas and the SASS of the
cubin (nvdisasm), plus a static time model. Nothing here is a measurement.

  python3 cuda/audit.py [--out reports/cuda-audit] [--baseline cuda/audit-baseline.json]
                        [--write-baseline] [--build build/audit]

Per kernel (ptxas -v, sm_90): registers, spill bytes, stack, static shared
memory, threads per block (its __launch_bounds__ or the launcher's block) and
occupancy at that block size. From the SASS: global loads by width and the
share of 128-bit ones, compare-and-swap instructions and whether one sits in
a loop (a CAS retry loop), and the main loop — the loop moving the most
128-bit global-load bytes per iteration (then the most bytes, then the
fewest instructions) — with its instructions per iteration and
instructions per 2 KB moved per warp.

Estimates (static; the model is stated in README.md, section "CUDA
kernels: static audit"): per kernel and pipeline, on h100-sxm and h200, the
larger of a bandwidth, an issue and a latency bound, plus one graph launch.

Gate (exit 1): any spill; a kernel of the baseline gone; a kernel whose
128-bit load share fell below its baseline; a CAS loop where the baseline
had none. --write-baseline records the current figures as the baseline.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["dense_decode", "dense_decode_v5", "hsa", "hsa_score_v2", "hsa_score_v3", "hsa_select_v4", "stage1", "probes"]
ARCH = "sm_90"

# ---------------------------------------------------------------- machine
# Hopper SM limits (CUDA C++ Programming Guide, "Compute Capabilities",
# table "Technical Specifications per Compute Capability", 9.0).
SM_REGS = 65536
SM_MAX_THREADS = 2048
SM_MAX_WARPS = 64
SM_MAX_BLOCKS = 32
SM_SMEM = 228 * 1024          # per SM; 1 KiB of it reserved per block
REG_ALLOC_UNIT = 256          # registers allocated per warp in units of 256
ISSUE_PER_SM_CYCLE = 4        # four schedulers, one warp instruction each per cycle
# Clock: H100 SXM5 and H200 SXM max boost 1,980 MHz (NVIDIA H100 datasheet;
# H200 shares the GH100 die and clocks).
CLOCK_HZ = 1.98e9
# Assumptions of the model (not measured here):
HBM_LATENCY_S = 600e-9        # global-load latency when a hwmodels file has no dram_latency_s
SMEM_LAT_CYC = 30             # dependent shared-memory load, cycles
BARRIER_CYC = 100             # one __syncthreads of a 1024-thread block, cycles
EXP_INSTR = 40                # one double exp(), SASS instructions (polynomial + scaling)
# One HMMA.16816.F32.BF16 (mma.sync m16n8k16, 2048 FMA) holds its SM sub-partition's tensor core
# for this many cycles: H100 SXM's dense bf16 989 TFLOPS (NVIDIA H100 datasheet) over 132 SMs × 4
# sub-partitions at 1.98 GHz is ~512 FMA per cycle (4 cycles); mma.sync is assumed to reach half
# of that (wgmma's rate is not assumed for it).
HMMA_CYC = 8
INSTR_GOAL = {"attend_split_v5_kernel": 350.0}   # main-loop instructions per 2 KB, gated (issue 13)
INSTR_SLACK = 1.05            # gate: a main loop more than 5 % over its baseline instructions per 2 KB
KEY3_INSTR = 24               # select v3: one register key through one radix pass
HW_MODELS = ["h100-sxm", "h200"]

# Threads per block of kernels launched without __launch_bounds__ (the
# launcher's block size at d = 128; file:function that sets it).
BLOCK_OF = {
    "attend_combine_kernel": 128,    # dense_decode.cu launch(): D threads
    "hsa_pages_update_kernel": 128,  # hsa.cu kcu_hsa_pages_update(): d threads
    "s1_merge_kernel": 256,          # stage1.cu s1_launch()
    "s1_pool_kernel": 256,
    "s1_keep_all_kernel": 256,       # stage1.cu kcu_stage1()
    "fill_bf16_kernel": 256,         # probes.cu kcu_fill_bf16()
    "fill_f32_kernel": 256,
    "probe_empty_kernel": 32,
}


def die(msg):
    print("cuda-audit: " + msg, file=sys.stderr)
    sys.exit(2)


def find_tool(name, build):
    """nvcc's directory, PATH, then a PyPI wheel installed under build/tools."""
    for d in ["/usr/local/cuda/bin"] + os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    tools = os.path.join(build, "..", "tools")
    for dp, _, fs in os.walk(tools):
        if name in fs:
            return os.path.join(dp, name)
    if name == "nvdisasm":
        print("cuda-audit: nvdisasm not found; installing PyPI nvidia-cuda-nvdisasm into build/tools", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", tools,
                            "nvidia-cuda-nvdisasm"])
        if r.returncode == 0:
            for dp, _, fs in os.walk(tools):
                if name in fs:
                    return os.path.join(dp, name)
    die(name + " not found (CUDA toolkit, or pip install nvidia-cuda-nvdisasm)")


def demangle(names):
    filt = shutil.which("c++filt")
    if not filt:
        return {n: n for n in names}
    out = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    return {n: out[i] for i, n in enumerate(names)}


def base_name(dem):
    """'void attend_split_kernel<128, 4, 2>(kcu_attend_args)' -> 'attend_split_kernel'."""
    m = re.match(r"(?:void\s+)?([A-Za-z_]\w*)", dem)
    return m.group(1) if m else dem


# ------------------------------------------------------------------ build
def compile_cubin(nvcc, src, build):
    cu = os.path.join(ROOT, "cuda", src + ".cu")
    cubin = os.path.join(build, src + ".cubin")
    log = os.path.join(build, src + ".ptxas")
    if os.path.exists(cubin) and os.path.exists(log) and os.path.getmtime(cubin) >= max(
            os.path.getmtime(p) for p in [cu] + [os.path.join(ROOT, "cuda", f) for f in os.listdir(
                os.path.join(ROOT, "cuda")) if f.endswith((".h", ".cuh"))]):
        return cubin, open(log).read()
    cmd = [nvcc, "-arch=" + ARCH, "-std=c++17", "-O3", "-I" + os.path.join(ROOT, "common"),
           "-I" + os.path.join(ROOT, "cuda"), "-cubin", "-Xptxas", "-v", "-o", cubin, cu]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die("nvcc failed on %s:\n%s" % (cu, r.stderr))
    open(log, "w").write(r.stderr)
    return cubin, r.stderr


def parse_ptxas(text):
    k, cur = {}, None
    for ln in text.splitlines():
        m = re.search(r"Compiling entry function '(\S+)'", ln)
        if m:
            cur = m.group(1)
            k[cur] = {"regs": 0, "spill_store_bytes": 0, "spill_load_bytes": 0, "stack_bytes": 0, "smem_bytes": 0}
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", ln)
        if m:
            k[cur]["stack_bytes"], k[cur]["spill_store_bytes"], k[cur]["spill_load_bytes"] = map(int, m.groups())
        m = re.search(r"Used (\d+) registers", ln)
        if m:
            k[cur]["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", ln)
            k[cur]["smem_bytes"] = int(s.group(1)) if s else 0
    return k


# ------------------------------------------------------------------- SASS
INSN = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:\{\s*)?(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")


def parse_sass(text):
    """{function: [(addr, opcode, operands)], labels {name: addr}}."""
    funcs, cur, pending = {}, None, []
    for ln in text.splitlines():
        m = re.match(r"\s*\.text\.(\S+):", ln)
        if m:
            cur = m.group(1)
            funcs[cur] = {"insns": [], "labels": {}}
            pending = []
            continue
        if cur is None:
            continue
        m = re.match(r"\s*(\.L_x_\d+):", ln)
        if m:
            pending.append(m.group(1))
            continue
        m = INSN.search(ln)
        if m:
            addr = int(m.group(1), 16)
            for lb in pending:
                funcs[cur]["labels"][lb] = addr
            pending = []
            funcs[cur]["insns"].append((addr, m.group(3), m.group(4)))
    return funcs


def load_bytes(op):
    """Bytes per thread of a global load opcode (LDG.E.128 -> 16), 0 if not one."""
    if not (op.startswith("LDG") or op == "LD" or op.startswith("LD.")):
        return 0
    for w, b in ((".128", 16), (".64", 8), (".U16", 2), (".S16", 2), (".U8", 1), (".S8", 1)):
        if w in op:
            return b
    return 4


def analyse(fn):
    insns, labels = fn["insns"], fn["labels"]
    loads = [load_bytes(op) for _, op, _ in insns]
    n_ldg = sum(1 for b in loads if b)
    n_128 = sum(1 for b in loads if b == 16)
    loops = []
    for i, (addr, op, arg) in enumerate(insns):
        if op.startswith("BRA"):
            m = re.search(r"(\.L_x_\d+)", arg)
            if m and m.group(1) in labels and labels[m.group(1)] <= addr:
                t = labels[m.group(1)]
                j0 = next(j for j, x in enumerate(insns) if x[0] == t)
                loops.append((j0, i))
    cas = [i for i, (_, op, _) in enumerate(insns) if "CAS" in op]
    cas_loop = any(j0 <= c <= j1 for c in cas for j0, j1 in loops)
    main = None
    # a kernel streaming through the read-only path (LDG...CONSTANT, __ldg): its main loop is one of
    # those loops (dense v4's in-kernel split merge reads with ld.cg, 128-bit too, and is not it)
    ro = [(j0, j1) for j0, j1 in loops if any(load_bytes(op) and ".CONSTANT" in op for _, op, _ in insns[j0:j1 + 1])]
    cand = ro or loops
    for j0, j1 in cand:
        # a loop around another candidate that has 128-bit loads is not the steady state: the inner
        # one is (score v3's loop over a block's tiles around its 32-row chunk loop)
        if any((k0, k1) != (j0, j1) and j0 <= k0 and k1 <= j1 and any(b == 16 for b in loads[k0:k1 + 1])
               for k0, k1 in cand):
            continue
        lb = sum(loads[j0:j1 + 1])
        b128 = sum(b for b in loads[j0:j1 + 1] if b == 16)
        body = sum(1 for _, op, _ in insns[j0:j1 + 1] if op != "NOP")
        # the most 128-bit bytes, then the fewest instructions: of nested
        # loops the inner one (an outer loop adding only narrow loads, such as
        # dense v3's staging of the position list, is not the main loop)
        key = (b128, 0 if b128 else lb, -body)
        if lb and (main is None or key > main[0]):
            main = (key, j0, j1, lb, body)
    res = {"sass_instructions": sum(1 for _, op, _ in insns if op != "NOP"), "global_loads": n_ldg,
           "global_loads_128": n_128, "share_128": round(n_128 / n_ldg, 4) if n_ldg else None,
           "cas_instructions": len(cas), "cas_loop": cas_loop, "loops": len(loops), "main_loop": None}
    if main:
        _, j0, j1, lb, body = main
        bw = 32 * lb
        res["main_loop"] = {"first_pc": insns[j0][0], "last_pc": insns[j1][0], "instructions": body,
                            "load_bytes_per_warp": bw, "instructions_per_2kb": round(body * 2048.0 / bw, 1),
                            "loads_128_in_loop": sum(1 for b in loads[j0:j1 + 1] if b == 16),
                            "hmma": sum(1 for _, op, _ in insns[j0:j1 + 1] if op.startswith("HMMA")),
                            "byte_share_128": round(sum(b for b in loads[j0:j1 + 1] if b == 16) / lb, 4)}
    return res


def occupancy(regs, smem, threads):
    warps = (threads + 31) // 32
    rpw = (regs * 32 + REG_ALLOC_UNIT - 1) // REG_ALLOC_UNIT * REG_ALLOC_UNIT if regs else REG_ALLOC_UNIT
    by_regs = (SM_REGS // rpw) // warps
    by_threads = SM_MAX_THREADS // (warps * 32)
    by_smem = SM_SMEM // (smem + 1024)
    blocks = max(0, min(SM_MAX_BLOCKS, by_regs, by_threads, by_smem))
    lim = min((by_regs, "registers"), (by_threads, "threads"), (by_smem, "shared memory"), (SM_MAX_BLOCKS, "blocks"))
    return {"threads": threads, "blocks_per_sm": blocks, "occupancy": round(blocks * warps / SM_MAX_WARPS, 3),
            "limited_by": lim[1]}


def launch_threads(src_text, fname, dem=""):
    m = re.search(r"__launch_bounds__\((\w+)(?:,[^)]*)?\)\s*" + re.escape(fname) + r"\b", src_text)
    if not m:   # GMAX * 32 (hsa_score_v3_kernel): the template argument times a constant
        m2 = re.search(r"template <int (\w+)>\s*__global__ void __launch_bounds__\(\1 \* (\d+)(?:,[^)]*)?\)\s*" +
                       re.escape(fname) + r"\b", src_text)
        t = re.search(r"<(\d+)>", dem)
        if m2 and t:
            return int(t.group(1)) * int(m2.group(2))
        return BLOCK_OF.get(fname)
    v = m.group(1)
    if v.isdigit():
        return int(v)
    d = re.search(r"#define\s+" + v + r"\s+(\d+)", src_text)
    return int(d.group(1)) if d else None


# -------------------------------------------------------------- estimates
def hw_model(name):
    path = os.path.join(ROOT, "hwmodels", name + ".yaml")
    hw = {}
    for ln in open(path):
        m = re.match(r"(\w+):\s*([0-9.eE+-]+)\s*(#.*)?$", ln)
        if m:
            hw[m.group(1)] = float(m.group(2))
    return {"name": name, "bw": hw["hbm_bandwidth_bytes_per_s"], "stream_eff": hw["stream_read_efficiency"],
            "sms": int(hw["sm_count"]), "launch_s": hw["launch_graph_s"], "issue_eff": hw["compute_efficiency"],
            "latency_s": hw.get("dram_latency_s", HBM_LATENCY_S)}


def stream_kernel(k, blocks, nbytes, hw, replicas=1):
    """Streaming kernel: max of bandwidth, issue and latency bounds (README).
    replicas: warps of a block that each load the same bytes (score v2: 2
    head-half warps; score v3: one warp per head) — each runs the main loop
    over them, so its instructions count that many times, and only
    1/replicas of the bytes in flight are distinct."""
    ml = k["main_loop"]
    occ = max(1, k["occupancy"]["blocks_per_sm"])
    warps = (k["occupancy"]["threads"] + 31) // 32
    per_sm = min(occ, math.ceil(blocks / hw["sms"]))
    waves = math.ceil(blocks / (hw["sms"] * occ))
    active = min(hw["sms"], blocks)
    t_bw = nbytes / (hw["bw"] * hw["stream_eff"])
    warp_instr = replicas * nbytes / ml["load_bytes_per_warp"] * ml["instructions"]
    # an SM issues at most one instruction per resident warp per cycle
    issue = min(ISSUE_PER_SM_CYCLE, per_sm * warps)
    t_issue = waves * per_sm * (warp_instr / blocks) / (issue * CLOCK_HZ * hw["issue_eff"])
    inflight = active * per_sm * warps * ml["load_bytes_per_warp"] / replicas
    t_lat = nbytes * hw["latency_s"] / inflight
    # tensor cores (dense v5): the main loop's HMMA spread over the SM's 4 sub-partitions
    warp_hmma = replicas * nbytes / ml["load_bytes_per_warp"] * ml.get("hmma", 0)
    t_tensor = waves * per_sm * (warp_hmma / blocks) * HMMA_CYC / (ISSUE_PER_SM_CYCLE * CLOCK_HZ)
    t = max(t_bw, t_issue, t_lat, t_tensor)
    bound = ("bandwidth" if t == t_bw else "issue" if t == t_issue else "latency" if t == t_lat else
             "tensor cores")
    return {"blocks": blocks, "waves": waves, "bytes": nbytes, "replicas": replicas, "t_bandwidth_s": t_bw,
            "t_issue_s": t_issue, "t_tensor_s": t_tensor,
            "t_latency_s": t_lat, "bound": bound, "est_s": t + hw["launch_s"]}


def select_kernel(k, n, hw, version, g=4, passes=8, bins=256):
    """One 1024-thread block per (sequence, KV head): the group-mean pass
    (G double exp per page; v1 twice: normaliser, then mean), then 8 radix
    passes, then the index-ordered emit (two block scans per 1024 pages).
    v1/v2 pass: the SASS histogram loop over n/1024 keys per thread, one
    thread's serial scan of 256 bins, 3 barriers; CAS retries not modelled.
    v3 pass: KEY3_INSTR per register key (ballot, match, reduce, atomic),
    a 5-step shuffle scan of the bins, 4 barriers."""
    warps, per_thread = 32, math.ceil(n / 1024)
    avg = (2 if version == 1 else 1) * warps * per_thread * g * EXP_INSTR / ISSUE_PER_SM_CYCLE
    if version == 3:
        per_pass = warps * per_thread * KEY3_INSTR / ISSUE_PER_SM_CYCLE + 5 * SMEM_LAT_CYC + 4 * BARRIER_CYC
    else:
        hist = next((l for l in k.get("loops_detail", []) if l["atomics"]), None)
        body = hist["instructions"] if hist else 20
        per_pass = (warps * per_thread * body / ISSUE_PER_SM_CYCLE + bins * (SMEM_LAT_CYC + 8) + 3 * BARRIER_CYC)
    emit = per_thread * 2 * (5 * SMEM_LAT_CYC + 3 * BARRIER_CYC)
    t = (avg + passes * per_pass + emit) / (CLOCK_HZ * hw["issue_eff"])
    return {"version": version, "blocks_per_bh": 1, "pages": n, "est_s": t + hw["launch_s"],
            "bound": "latency (one block, serial passes)", "cas_retries_modelled": False}


SEL4_TILE, SEL4_RANK_MAX = 256, 64   # select v4: pages per block; candidates ranked by counting
SC2_TILE = 256                       # score v2: pages per block (hsa.cu)


def select_v4_kernel(n, nbh, hw, g=4, d=128):
    """Select v4 (hsa.cu), one launch: phase 1 in ceil(n/256)·B·Hkv blocks of
    1024 threads (1 per SM: waves over the SMs), each one DRAM latency (the
    scores) + 8 warps × G double exp + 4 barriers + its 4096-bin histogram
    (4 bins per thread, zeroed and flushed); then the last block per row: one
    DRAM latency (histogram, avg), 4 block scans (5 dependent shared loads +
    3 barriers each: the bin, compaction, two for the emit) and the in-bin
    select by counting, assuming the threshold's 1/64-octave bin holds at
    most 64 pages (2 rounds × 64 candidates × 6 instructions, one warp)."""
    lat = hw["latency_s"]
    clk = CLOCK_HZ * hw["issue_eff"]
    blocks = math.ceil(n / SEL4_TILE) * nbh
    waves = math.ceil(blocks / hw["sms"])
    p1 = lat + (8 * g * EXP_INSTR / ISSUE_PER_SM_CYCLE + 2 * EXP_INSTR + 4 * BARRIER_CYC +
                32 * 8 / ISSUE_PER_SM_CYCLE) / clk
    last = lat + (4 * (5 * SMEM_LAT_CYC + 3 * BARRIER_CYC) + 2 * SEL4_RANK_MAX * 6) / clk
    t = waves * p1 + last
    return {"version": 4, "blocks": blocks, "waves": waves, "pages": n, "est_s": t + hw["launch_s"],
            "bound": "latency (waves + last block)", "assumed_bin_pages_max": SEL4_RANK_MAX}


def dims_table(d, hw):
    """The dims/sign/τ table that hsa_pages_update_v2_kernel builds after
    folding the token (no launch of its own): one DRAM latency (q) and the
    d-step rank count (4 instructions per step, one dependent shared load
    per 4 steps)."""
    return {"est_s": hw["latency_s"] + (4 * d + d / 4 * SMEM_LAT_CYC) / (CLOCK_HZ * hw["issue_eff"])}


def combine_kernel(comb, nsplit, hw):
    """v1–v3's split merge, attend_combine_kernel (dense_decode.cu launch()), a
    second launch after the split kernel: its launch plus one DRAM latency per
    round of loads — each round covers the splits one iteration of its loop
    reads (its SASS: 3 loads per split, so global loads / 3), since the merge
    chain waits for them. The partials were just written (L2): the DRAM
    latency is an upper bound."""
    per_round = max(1, comb["global_loads"] // 3)
    return {"est_s": hw["launch_s"] + math.ceil(nsplit / per_round) * hw["latency_s"],
            "rounds": math.ceil(nsplit / per_round)}


def merge_v4(nsplit, g, d, hw):
    """Dense v4's (and v5's) split merge inside the kernel (attend_v4_merge,
    dense_dev.cuh), in the last block of each (sequence, KV head): one
    latency for the ticket, the (m, l) reads (⌈nsplit/32⌉ rounds), then
    ⌈nsplit/8⌉ rounds of loads (each thread's ⌈G·D/4/128⌉ 16-byte runs
    together, 8 splits each in flight — since session 5; before, the runs
    one after the other: ⌈G·D/512⌉·⌈nsplit/8⌉ rounds), one DRAM latency each."""
    rounds = 1 + math.ceil(nsplit / 32) + math.ceil(nsplit / 8)
    return {"est_s": rounds * hw["latency_s"], "rounds": rounds}


DADD_LAT_CYC = 8   # one dependent double add (assumed; the τ sums are sequential chains)


def score_v3_table(k, d, r, g, hw):
    """Score v3's prologue (hsa_score_v3.cu hsa_sc3_table), in every block:
    q and the row length arrive after one DRAM latency; the fold's loads
    wait for the length (a second latency) but are consumed after the rank
    count. Then, in cycles: the G-step sums per dim (a DADD chain), the
    rank loop over d dims (its SASS instructions per dim, from the loop with
    the most DSETP.GT, or the ‖q‖₁ DADD chain it carries if longer), ‖q[I]‖₁
    (an r-step DADD chain), the ro/qs fill (two dependent shared loads per
    item) and 4 barriers."""
    rank = max((l for l in k.get("loops_detail", []) if l.get("dsetp_gt")), key=lambda l: l["dsetp_gt"],
               default=None)
    per_dim = max(DADD_LAT_CYC, rank["instructions"] / rank["dsetp_gt"]) if rank else 16
    threads = k["occupancy"]["threads"]
    cyc = (g * DADD_LAT_CYC + d * per_dim + r * DADD_LAT_CYC + math.ceil(r * g / threads) * 2 * SMEM_LAT_CYC +
           4 * BARRIER_CYC)
    t = max(2 * hw["latency_s"], hw["latency_s"] + cyc / (CLOCK_HZ * hw["issue_eff"]))
    return {"est_s": t, "rank_cycles_per_dim": per_dim, "cycles": cyc}


def estimates(kernels, shapes_bin):
    out = []
    by = {}
    for name, k in kernels.items():
        by.setdefault(k["demangled"], k)

    def find(prefix):
        for dem, k in by.items():
            if re.sub(r"^void ", "", dem).startswith(prefix):
                return k
        die("kernel %s not found in the cubins" % prefix)
    dense = find("attend_split_v2_kernel<128, 4>")
    dense1 = find("attend_split_kernel<128, 4, 2>")
    score = find("hsa_score_kernel<4>")
    select = find("hsa_select_kernel")
    select3 = find("hsa_select_v3_kernel<8>")
    score2 = find("hsa_score_v2_kernel<4>")
    dense3 = find("attend_split_v3_kernel<128, 4>")
    score3 = find("hsa_score_v3_kernel<4>")
    dense4 = find("attend_split_v4_kernel<128, 4>")
    comb = find("attend_combine_kernel")
    dense4_g8 = find("attend_split_v4_kernel<128, 8>")
    dense5_g8 = find("attend_split_v5_kernel<128, 8>")
    dense5_g4 = find("attend_split_v5_kernel<128, 4>")
    for hwn in HW_MODELS:
        hw = hw_model(hwn)
        cases = [(32768, 2048, 1), (131072, 2048, 1), (32768, 2048, 8), (131072, 2048, 8)]
        args = [str(hw["sms"])] + [str(x) for c in cases for x in c]
        shp = [json.loads(l) for l in subprocess.run([shapes_bin] + args, capture_output=True, text=True,
                                                     check=True).stdout.splitlines()]
        for s in shp:
            B, hkv = s["batch"], s["hkv"]
            nbh = B * hkv
            dense_b = nbh * s["dense_rows"] * s["d"] * 2 * 2
            d = stream_kernel(dense, s["dense_nsplit"] * nbh, dense_b, hw)
            d1 = stream_kernel(dense1, s["dense_nsplit"] * nbh, dense_b, hw)
            d3 = stream_kernel(dense3, s["dense_nsplit"] * nbh, dense_b, hw)
            cmb = combine_kernel(comb, s["dense_nsplit"], hw)
            for x in (d, d1, d3):   # v1–v3: + the combine kernel (a second launch)
                x["combine_s"] = cmb["est_s"]
                x["est_s"] += cmb["est_s"]
            d4 = stream_kernel(dense4, s["dense_nsplit"] * nbh, dense_b, hw)
            d4["merge_s"] = merge_v4(s["dense_nsplit"], s["g"], s["d"], hw)["est_s"]
            d4["est_s"] += d4["merge_s"]
            # dense at G = 8 (8 KV heads × 8 query heads, d = 128: llama-3.1-70B's shape) and v5 at
            # G = 4: the same bytes and split count (neither depends on G), each kernel's own loop
            for nm, kern, g in (("dense_v4_g8", dense4_g8, 8), ("dense_v5_g8", dense5_g8, 8),
                                ("dense_v5_g4", dense5_g4, 4)):
                x = stream_kernel(kern, s["dense_nsplit"] * nbh, dense_b, hw)
                x["merge_s"] = merge_v4(s["dense_nsplit"], g, s["d"], hw)["est_s"]
                x["est_s"] += x["merge_s"]
                x["fraction_of_stream"] = x["t_bandwidth_s"] / (x["est_s"] - hw["launch_s"])
                s[nm] = x
            np_ = s["npages"]
            aux_b = nbh * np_ * s["r"] * 2
            sc = stream_kernel(score, math.ceil(np_ / 256) * nbh, aux_b, hw) if score and score["main_loop"] else None
            se1 = select_kernel(select, np_, hw, 2)
            se = select_kernel(select3, np_, hw, 3)
            ga = stream_kernel(dense, s["sparse_nsplit"] * nbh, nbh * s["k"] * s["d"] * 2 * 2, hw)
            ga["combine_s"] = combine_kernel(comb, s["sparse_nsplit"], hw)["est_s"]
            ga["est_s"] += ga["combine_s"]
            step = (sc["est_s"] if sc else float("nan")) + se["est_s"] + ga["est_s"] + hw["launch_s"]
            npc8 = (np_ + 7) // 8 * 8
            sc2 = stream_kernel(score2, math.ceil(npc8 / SC2_TILE) * nbh, aux_b, hw, replicas=2)
            se4 = select_v4_kernel(npc8, nbh, hw)
            ga3 = stream_kernel(dense3, s["sparse_nsplit_v3"] * nbh, nbh * s["k"] * s["d"] * 2 * 2, hw)
            ga3["combine_s"] = combine_kernel(comb, s["sparse_nsplit_v3"], hw)["est_s"]
            ga3["est_s"] += ga3["combine_s"]
            ga4 = stream_kernel(dense4, s["sparse_nsplit_v3"] * nbh, nbh * s["k"] * s["d"] * 2 * 2, hw)
            ga4["merge_s"] = merge_v4(s["sparse_nsplit_v3"], s["g"], s["d"], hw)["est_s"]
            ga4["est_s"] += ga4["merge_s"]
            step4 = sc2["est_s"] + se4["est_s"] + ga3["est_s"] + hw["launch_s"] + dims_table(s["d"], hw)["est_s"]
            # v5: score v3 folds the token and builds the table itself (no page-update launch)
            # score v3's grid (hsa_score_v3.cu hsa_score_v3, a.sms > 0): at most one wave, ⌊wave/rows⌋ ≥ 1
            # blocks per row looping over its tiles, each block building the table once
            sc3_per_row = min(math.ceil(npc8 / SC2_TILE), max(1, score3["occupancy"]["blocks_per_sm"] * hw["sms"] // nbh))
            sc3 = stream_kernel(score3, sc3_per_row * nbh, aux_b, hw, replicas=s["g"])
            tb3 = score_v3_table(score3, s["d"], s["r"], s["g"], hw)
            sc3["prologue_s"] = tb3["est_s"]
            sc3["blocks_per_row"] = sc3_per_row
            sc3["est_s"] += tb3["est_s"] * sc3["waves"]
            step5 = sc3["est_s"] + se4["est_s"] + ga4["est_s"]
            out.append({"hw": hwn, "ctx": s["ctx"], "budget": s["budget"], "batch": B, "capacity": s["capacity"],
                        "page_size": s["p"], "topr": s["r"], "topk": s["k"], "pages": np_,
                        "dense": d, "dense_v1": d1, "score": sc, "select": se, "select_v2": se1, "sparse_attend": ga,
                        "dense_fraction_of_stream": d["t_bandwidth_s"] / (d["est_s"] - hw["launch_s"]),
                        "rocketkv_step_s": step, "speedup_vs_dense": d["est_s"] / step,
                        "score_v2": sc2, "select_v4": se4, "sparse_attend_v3": ga3, "rocketkv_step_v4_s": step4,
                        "speedup_v4_vs_dense": d["est_s"] / step4, "dense_v3": d3,
                        "dense_v3_fraction_of_stream": d3["t_bandwidth_s"] / (d3["est_s"] - hw["launch_s"]),
                        "speedup_v4_vs_dense_v3": d3["est_s"] / step4,
                        "score_v3": sc3, "rocketkv_step_v5_s": step5, "speedup_v5_vs_dense_v3": d3["est_s"] / step5,
                        "dense_v4": d4, "sparse_attend_v4": ga4, "speedup_v5_vs_dense_v4": d4["est_s"] / step5,
                        "dense_v4_fraction_of_stream": d4["t_bandwidth_s"] / (d4["est_s"] - hw["launch_s"]),
                        "dense_v4_g8": s["dense_v4_g8"], "dense_v5_g8": s["dense_v5_g8"],
                        "dense_v5_g4": s["dense_v5_g4"]})
        sel74 = select_kernel(select3, 7400, hw, 3)
        sel74v2 = select_kernel(select, 7400, hw, 2)
        sel74v4 = select_v4_kernel(7400, 8, hw)
        out.append({"hw": hwn, "select_7400_pages_s": sel74["est_s"], "select_7400_pages_no_launch_s":
                    sel74["est_s"] - hw["launch_s"], "select_v2_7400_pages_s": sel74v2["est_s"],
                    "select_v4_7400_pages_s": sel74v4["est_s"],
                    "select_v4_7400_pages_no_launch_s": sel74v4["est_s"] - hw["launch_s"]})
    return out


# ------------------------------------------------------------------ main
def loops_detail(fn):
    insns, labels = fn["insns"], fn["labels"]
    res = []
    for i, (addr, op, arg) in enumerate(insns):
        if op.startswith("BRA"):
            m = re.search(r"(\.L_x_\d+)", arg)
            if m and m.group(1) in labels and labels[m.group(1)] <= addr:
                j0 = next(j for j, x in enumerate(insns) if x[0] == labels[m.group(1)])
                body = insns[j0:i + 1]
                res.append({"instructions": sum(1 for _, o, _ in body if o != "NOP"),
                            "atomics": sum(1 for _, o, _ in body if o.startswith(("ATOMS", "ATOM", "RED"))),
                            "dsetp_gt": sum(1 for _, o, _ in body if o.startswith("DSETP.GT"))})
    return res


def gate(kernels, base):
    bad = []
    for name, k in sorted(kernels.items()):
        if k["spill_store_bytes"] or k["spill_load_bytes"]:
            bad.append("%s: spills %d B stores, %d B loads" % (k["demangled"], k["spill_store_bytes"],
                                                              k["spill_load_bytes"]))
    for name, b in sorted(base.items()):
        k = kernels.get(name)
        if not k:
            bad.append("%s: in the baseline but no longer compiled" % b.get("demangled", name))
            continue
        if b.get("share_128") is not None and (k["share_128"] or 0) + 1e-9 < b["share_128"]:
            bad.append("%s: 128-bit load share %.3f < baseline %.3f" % (k["demangled"], k["share_128"] or 0,
                                                                      b["share_128"]))
        kl = (k["main_loop"] or {}).get("byte_share_128", 0.0)
        if b.get("loop_byte_share_128") is not None and kl + 1e-9 < b["loop_byte_share_128"]:
            bad.append("%s: main-loop bytes by 128-bit loads %.3f < baseline %.3f" % (k["demangled"], kl,
                                                                                    b["loop_byte_share_128"]))
        if k["cas_loop"] and not b.get("cas_loop"):
            bad.append("%s: a compare-and-swap loop (none in the baseline)" % k["demangled"])
        ki = (k["main_loop"] or {}).get("instructions_per_2kb")
        bi = b.get("instructions_per_2kb")
        if bi is not None and (ki is None or ki > bi * INSTR_SLACK):
            bad.append("%s: main loop %s instructions per 2 KB > baseline %.1f + %.0f %%" % (
                k["demangled"], ki, bi, 100 * (INSTR_SLACK - 1)))
    for name, k in sorted(kernels.items()):
        goal = INSTR_GOAL.get(base_name(k["demangled"]))
        ki = (k["main_loop"] or {}).get("instructions_per_2kb")
        if goal is not None and (ki is None or ki > goal):
            bad.append("%s: main loop %s instructions per 2 KB > goal %.0f" % (k["demangled"], ki, goal))
    for name, k in sorted(kernels.items()):
        if name not in base and k["cas_loop"]:
            bad.append("%s: new kernel with a compare-and-swap loop" % k["demangled"])
    return bad


def fmt_us(s):
    return "%.1f" % (s * 1e6) if s is not None and s == s else "-"


def write_md(path, kernels, est, bad):
    L = ["# CUDA static audit (make cuda-audit)", "",
         "Static figures from ptxas and the sm_90 SASS; the time figures are **ESTIMATES of a static model "
         "(README, \"CUDA kernels: static audit\"), not measurements**.", "",
         "| kernel | regs | spill B | smem B | threads | blocks/SM | occ. | LDG | 128-bit | CAS loop | "
         "loop instr | instr / 2 KB | loop bytes 128-bit |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, k in sorted(kernels.items(), key=lambda x: x[1]["demangled"]):
        ml = k["main_loop"] or {}
        o = k["occupancy"] or {}
        L.append("| `%s` | %d | %d | %d | %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
            k["demangled"].replace("void ", "").split("(")[0], k["regs"],
            k["spill_store_bytes"] + k["spill_load_bytes"], k["smem_bytes"], o.get("threads", "-"),
            o.get("blocks_per_sm", "-"), o.get("occupancy", "-"), k["global_loads"],
            "-" if k["share_128"] is None else "%.0f%%" % (100 * k["share_128"]), "yes" if k["cas_loop"] else "no",
            ml.get("instructions", "-"), ml.get("instructions_per_2kb", "-"),
            "%.0f%%" % (100 * ml["byte_share_128"]) if ml else "-"))
    L += ["", "## Stage 2 v5 (score v3: fold + dims table + scores in one launch; select v4; gather with dense v4), ESTIMATED",
          "", "| hw | ctx | batch | dense v4 µs (merge) | dense v3 µs (combine) | score v3 µs (its prologue) | "
          "score v2 µs + update launch + table µs | select v4 µs | gather v4 µs (merge) | RocketKV step v5 µs | "
          "step v4 µs | v5 vs dense v4 | v5 vs dense v3 | v4 vs dense v3 |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in est:
        if "score_v3" in e:
            L.append("| %s | %d | %d | %s (%s) | %s (%s) | %s (%s) | %s + %s | %s | %s (%s) | %s | %s | %.2f× | %.2f× | "
                     "%.2f× |" % (
                e["hw"], e["ctx"], e["batch"], fmt_us(e["dense_v4"]["est_s"]), fmt_us(e["dense_v4"]["merge_s"]),
                fmt_us(e["dense_v3"]["est_s"]), fmt_us(e["dense_v3"]["combine_s"]), fmt_us(e["score_v3"]["est_s"]),
                fmt_us(e["score_v3"]["prologue_s"]), fmt_us(e["score_v2"]["est_s"]),
                fmt_us(e["rocketkv_step_v4_s"] - e["score_v2"]["est_s"] - e["select_v4"]["est_s"] -
                       e["sparse_attend_v3"]["est_s"]),
                fmt_us(e["select_v4"]["est_s"]), fmt_us(e["sparse_attend_v4"]["est_s"]),
                fmt_us(e["sparse_attend_v4"]["merge_s"]),
                fmt_us(e["rocketkv_step_v5_s"]), fmt_us(e["rocketkv_step_v4_s"]), e["speedup_v5_vs_dense_v4"],
                e["speedup_v5_vs_dense_v3"], e["speedup_v4_vs_dense_v3"]))
    L += ["", "## Dense decode at G = 8 (8 KV heads × G = 8, d = 128; v5 = mma.sync) and v5 at G = 4, ESTIMATED", "",
          "| hw | ctx | batch | v4 G=8 µs (bound) | v5 G=8 µs (bound) | v5 / stream | v5 tensor-core bound µs | "
          "v4 G=4 µs | v5 G=4 µs (bound) |", "|---|---|---|---|---|---|---|---|---|"]
    for e in est:
        if "dense_v5_g8" in e:
            a4, a5, b5 = e["dense_v4_g8"], e["dense_v5_g8"], e["dense_v5_g4"]
            L.append("| %s | %d | %d | %s (%s) | %s (%s) | %.0f%% | %s | %s | %s (%s) |" % (
                e["hw"], e["ctx"], e["batch"], fmt_us(a4["est_s"]), a4["bound"], fmt_us(a5["est_s"]), a5["bound"],
                100 * a5["fraction_of_stream"], fmt_us(a5["t_tensor_s"]), fmt_us(e["dense_v4"]["est_s"]),
                fmt_us(b5["est_s"]), b5["bound"]))
    L += ["", "## Stage 2 v4 (score v2 + select v4 + gather with dense v3), ESTIMATED", "",
          "| hw | ctx | batch | dense v3 µs | dense v3 / stream | score v2 µs (v1) | select v4 µs (v3) | gather v3 µs (v2) | "
          "RocketKV step v4 µs (v3) | speed-up vs dense v2 | vs dense v3 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in est:
        if "select_v4" in e:
            L.append("| %s | %d | %d | %s %s | %.0f%% | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %.2f× | %.2f× |" % (
                e["hw"], e["ctx"], e["batch"], fmt_us(e["dense_v3"]["est_s"]), e["dense_v3"]["bound"],
                100 * e["dense_v3_fraction_of_stream"], fmt_us(e["score_v2"]["est_s"]),
                fmt_us(e["score"]["est_s"] if e["score"] else None), fmt_us(e["select_v4"]["est_s"]),
                fmt_us(e["select"]["est_s"]), fmt_us(e["sparse_attend_v3"]["est_s"]),
                fmt_us(e["sparse_attend"]["est_s"]), fmt_us(e["rocketkv_step_v4_s"]),
                fmt_us(e["rocketkv_step_s"]), e["speedup_v4_vs_dense"], e["speedup_v4_vs_dense_v3"]))
    for e in est:
        if "select_v4_7400_pages_s" in e:
            L.append("")
            L.append("- %s: stage-2 select v4 at 7,400 pages (8 KV heads, batch 1): ESTIMATED %s µs incl. its one "
                     "graph launch (%s µs without); goal ≤ 10 µs." % (
                         e["hw"], fmt_us(e["select_v4_7400_pages_s"]), fmt_us(e["select_v4_7400_pages_no_launch_s"])))
    L += ["", "## Goal estimates (ESTIMATED, static model — no GPU has run these kernels)", "",
          "| hw | ctx | batch | dense v2 µs (v1) | dense v2 / stream | score µs | select v3 (v2) µs | gather µs | "
          "RocketKV step µs | speed-up vs dense |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in est:
        if "dense" in e:
            L.append("| %s | %d | %d | %s %s (%s) | %.0f%% | %s | %s (%s) | %s | %s | %.2f× |" % (
                e["hw"], e["ctx"], e["batch"], fmt_us(e["dense"]["est_s"]), e["dense"]["bound"],
                fmt_us(e["dense_v1"]["est_s"]),
                100 * e["dense_fraction_of_stream"], fmt_us(e["score"]["est_s"] if e["score"] else None),
                fmt_us(e["select"]["est_s"]), fmt_us(e["select_v2"]["est_s"]), fmt_us(e["sparse_attend"]["est_s"]), fmt_us(e["rocketkv_step_s"]),
                e["speedup_vs_dense"]))
    for e in est:
        if "select_7400_pages_s" in e:
            L.append("")
            L.append("- %s: stage-2 select v3 at 7,400 pages (8 KV heads, batch 1): ESTIMATED %s µs incl. one graph "
                     "launch (%s µs without; v2 %s µs); goal ≤ 10 µs." % (
                         e["hw"], fmt_us(e["select_7400_pages_s"]), fmt_us(e["select_7400_pages_no_launch_s"]),
                         fmt_us(e["select_v2_7400_pages_s"])))
    L += ["", "## Gate", ""] + (["- FAIL: " + b for b in bad] if bad else ["- pass (no spills, no lost 128-bit "
                                                                          "loads, no new CAS loop, no main loop over "
                                                                          "its baseline instructions per 2 KB + 5 % "
                                                                          "or its goal)"])
    open(path, "w").write("\n".join(L) + "\n")


def main():
    a = sys.argv[1:]
    out = a[a.index("--out") + 1] if "--out" in a else os.path.join(ROOT, "reports", "cuda-audit")
    basef = a[a.index("--baseline") + 1] if "--baseline" in a else os.path.join(ROOT, "cuda", "audit-baseline.json")
    build = a[a.index("--build") + 1] if "--build" in a else os.path.join(ROOT, "build", "audit")
    os.makedirs(build, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    nvcc = find_tool("nvcc", build)
    nvdisasm = find_tool("nvdisasm", build)
    shapes = os.path.join(build, "audit_shapes")
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-O2", "-I" + os.path.join(ROOT, "cuda"),
                    "-I" + os.path.join(ROOT, "common"), os.path.join(ROOT, "cuda", "audit_shapes.c"), "-o", shapes,
                    "-lm"], check=True)
    kernels = {}
    for src in SOURCES:
        cubin, log = compile_cubin(nvcc, src, build)
        res = parse_ptxas(log)
        sass = parse_sass(subprocess.run([nvdisasm, "-c", cubin], capture_output=True, text=True,
                                         check=True).stdout)
        dem = demangle(list(res))
        text = open(os.path.join(ROOT, "cuda", src + ".cu")).read()
        for inc in re.findall(r'#include "(\w+\.cuh)"', text):   # block-size macros may live there
            text += open(os.path.join(ROOT, "cuda", inc)).read()
        for name, r in res.items():
            fn = sass.get(name, {"insns": [], "labels": {}})
            k = dict(r)
            k.update({"file": "cuda/%s.cu" % src, "demangled": dem[name]})
            k.update(analyse(fn))
            k["loops_detail"] = loops_detail(fn)
            th = launch_threads(text, base_name(dem[name]), dem[name])
            k["occupancy"] = occupancy(k["regs"], k["smem_bytes"], th) if th else None
            kernels[name] = k
    est = estimates(kernels, shapes)
    keep = {n: {"demangled": k["demangled"], "share_128": k["share_128"], "cas_loop": k["cas_loop"],
                "loop_byte_share_128": (k["main_loop"] or {}).get("byte_share_128"), "regs": k["regs"],
                "instructions_per_2kb": (k["main_loop"] or {}).get("instructions_per_2kb")}
            for n, k in kernels.items()}
    if "--write-baseline" in a:
        base = keep
    elif os.path.exists(basef):
        base = json.load(open(basef))["kernels"]
    else:
        die("no baseline %s (make cuda-audit-baseline writes it)" % basef)
    bad = gate(kernels, base)
    # the emulation's register table (kcu_emu.h, KCU_EMU_REGS)
    with open(os.path.join(out, "registers.txt"), "w") as f:
        for name, k in sorted(kernels.items()):
            f.write("%s %d\n" % (name, k["regs"]))
    doc = {"kind": "kvsim-cuda-audit", "arch": ARCH, "measured": False,
           "model": {"exp_instructions": EXP_INSTR, "select3_key_instructions": KEY3_INSTR, "select4_tile_pages": SEL4_TILE,
                     "select4_assumed_bin_pages_max": SEL4_RANK_MAX, "clock_hz": CLOCK_HZ, "issue_per_sm_cycle": ISSUE_PER_SM_CYCLE, "hbm_latency": "hwmodels/<hw>.yaml dram_latency_s (else 600 ns)",
                     "smem_latency_cycles": SMEM_LAT_CYC, "barrier_cycles": BARRIER_CYC,
                     "bandwidth": "hwmodels/<hw>.yaml hbm_bandwidth_bytes_per_s x stream_read_efficiency",
                     "launch": "hwmodels/<hw>.yaml launch_graph_s per kernel",
                     "issue": "4 warp instructions per SM cycle x hwmodels/<hw>.yaml compute_efficiency"},
           "kernels": kernels, "estimates": est, "gate": {"pass": not bad, "failures": bad}}
    tmp = os.path.join(out, "audit.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "audit.json"))
    write_md(os.path.join(out, "audit.md"), kernels, est, bad)
    if "--write-baseline" in a:
        with open(basef, "w") as f:
            json.dump({"kind": "kvsim-cuda-audit-baseline", "kernels": keep}, f, indent=1, sort_keys=True)
            f.write("\n")
        print("cuda-audit: baseline written to " + os.path.relpath(basef, ROOT))
    print(open(os.path.join(out, "audit.md")).read())
    if bad:
        print("cuda-audit: %d regression(s) against %s" % (len(bad), os.path.relpath(basef, ROOT)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
