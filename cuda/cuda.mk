# cuda/cuda.mk — CUDA rules, included at the end of the Makefile
# (`-include cuda/cuda.mk`). `make cuda` (in the Makefile) compiles every
# cuda/*.cu with nvcc; these add:
#
#   make gpu-check          build, check against the CPU reference (and under
#                           compute-sanitizer where present), probe, time;
#                           writes reports/gpu/<device>-<date>.json (needs a GPU)
#   make gpu-check-build    build build/gpu/gpu_check only (no GPU needed)
#   make gpu-check-emu      the same script end to end with the kernels on the
#                           CPU (kcu_emu.h): build, checks, every timed graph
#                           once at tiny shapes, report into build/gpu-emu/,
#                           then kvsim validate reads that report
#                           (cuda/emu_validate.sh; no GPU; logic only, no figures)
#   make cuda-emu           gpu_check's kernel checks under the emulation
#   make cuda-emu-selftest  the emulation catches what it claims to (a deleted
#                           barrier, an injected stream-order bug, warp misuse)
#   make cuda-emu-asan      the self-test and the emulated checks under ASan+UBSan
#   make cuda-audit         static audit (ptxas, SASS, estimates) into
#                           reports/cuda-audit/; exits 1 on a regression against
#                           cuda/audit-baseline.json (spills, fewer 128-bit
#                           loads, a CAS loop)
#   make cuda-audit-baseline  record the current audit as the baseline
#
# gpu_check.sh needs only nvcc and a C compiler: the CPU reference it links
# (cuda/kcu_ref_host.c, common/kv_common.c, common/kv_afile.c) uses libc, libm and
# pthreads alone, so a
# bare GPU machine without GSL or libyaml builds it.
.PHONY: gpu-check gpu-check-build gpu-check-emu cuda-emu cuda-emu-selftest cuda-emu-asan cuda-audit \
	cuda-audit-baseline

gpu-check:
	sh cuda/gpu_check.sh

gpu-check-build:
	KCU_BUILD_ONLY=1 sh cuda/gpu_check.sh

gpu-check-emu: $(BUILD)/kvsim
	KCU_EMU=1 sh cuda/gpu_check.sh
	sh cuda/emu_validate.sh $(BUILD)/kvsim build/gpu-emu/reports $(BUILD)/gpu-emu-validate.json

# The kernels compiled by the host C++ compiler against kcu_emu.h; linked
# with -rdynamic so the emulation finds each kernel's mangled name (its key
# in the register table of make cuda-audit).
CXX_EMU ?= g++
EMU_FLAGS := -std=c++20 -DKCU_EMU -Wall -Wextra -Wno-unknown-pragmas -Werror
EMU_CU := dense_decode dense_decode_v5 hsa hsa_score_v2 hsa_score_v3 hsa_select_v4 stage1 probes gpu_check dense_decode_check hsa_check stage1_check
$(BUILD)/emu/%.o: cuda/%.cu $(wildcard cuda/*.h cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(CXX_EMU) $(EMU_FLAGS) -O2 -Icommon -Icuda -x c++ -c $< -o $@

$(BUILD)/emu/gpu_check_emu: $(EMU_CU:%=$(BUILD)/emu/%.o) cuda/kcu_ref_host.c common/kv_common.c common/kv_afile.c
	$(CC) $(CSTD) -O2 -Icommon -Icuda -c cuda/kcu_ref_host.c -o $(BUILD)/emu/kcu_ref_host.o
	$(CC) $(CSTD) -O2 -Icommon -c common/kv_common.c -o $(BUILD)/emu/kv_common.o
	$(CC) $(CSTD) -O2 -Icommon -c common/kv_afile.c -o $(BUILD)/emu/kv_afile.o
	$(CXX_EMU) -rdynamic -o $@ $(EMU_CU:%=$(BUILD)/emu/%.o) $(BUILD)/emu/kcu_ref_host.o $(BUILD)/emu/kv_common.o \
	  $(BUILD)/emu/kv_afile.o -lpthread -lm

cuda-emu: $(BUILD)/emu/gpu_check_emu
	KCU_EMU_REGS=reports/cuda-audit/registers.txt $(BUILD)/emu/gpu_check_emu --out $(BUILD)/emu/report.json

EMU_SELFTEST := emu_selftest emu_selftest_fault
$(BUILD)/emu/%.o: cuda/%.cc $(wildcard cuda/*.h cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(CXX_EMU) $(EMU_FLAGS) -O1 -Icommon -Icuda -x c++ -c $< -o $@

$(BUILD)/emu/emu_selftest: $(EMU_SELFTEST:%=$(BUILD)/emu/%.o)
	$(CXX_EMU) -rdynamic -o $@ $^ -lpthread

cuda-emu-selftest: $(BUILD)/emu/emu_selftest
	$(BUILD)/emu/emu_selftest

# The same under AddressSanitizer + UBSan (its own objects).
EMU_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/emu-asan/%.o: cuda/%.cu $(wildcard cuda/*.h cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(CXX_EMU) $(EMU_FLAGS) $(EMU_SAN) -O1 -Icommon -Icuda -x c++ -c $< -o $@
$(BUILD)/emu-asan/%.o: cuda/%.cc $(wildcard cuda/*.h cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(CXX_EMU) $(EMU_FLAGS) $(EMU_SAN) -O1 -Icommon -Icuda -x c++ -c $< -o $@

$(BUILD)/emu-asan/emu_selftest: $(EMU_SELFTEST:%=$(BUILD)/emu-asan/%.o)
	$(CXX_EMU) $(EMU_SAN) -rdynamic -o $@ $^ -lpthread

$(BUILD)/emu-asan/gpu_check_emu: $(EMU_CU:%=$(BUILD)/emu-asan/%.o) cuda/kcu_ref_host.c common/kv_common.c \
  common/kv_afile.c
	$(CC) $(CSTD) $(EMU_SAN) -O1 -Icommon -Icuda -c cuda/kcu_ref_host.c -o $(BUILD)/emu-asan/kcu_ref_host.o
	$(CC) $(CSTD) $(EMU_SAN) -O1 -Icommon -c common/kv_common.c -o $(BUILD)/emu-asan/kv_common.o
	$(CC) $(CSTD) $(EMU_SAN) -O1 -Icommon -c common/kv_afile.c -o $(BUILD)/emu-asan/kv_afile.o
	$(CXX_EMU) $(EMU_SAN) -rdynamic -o $@ $(EMU_CU:%=$(BUILD)/emu-asan/%.o) $(BUILD)/emu-asan/kcu_ref_host.o \
	  $(BUILD)/emu-asan/kv_common.o $(BUILD)/emu-asan/kv_afile.o -lpthread -lm

cuda-emu-asan: $(BUILD)/emu-asan/emu_selftest $(BUILD)/emu-asan/gpu_check_emu
	@mkdir -p $(BUILD)/emu
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/emu-asan/emu_selftest
	ASAN_OPTIONS=detect_leaks=1 KCU_EMU_REGS=reports/cuda-audit/registers.txt \
	  $(BUILD)/emu-asan/gpu_check_emu --out $(BUILD)/emu-asan/report.json

cuda-audit:
	python3 cuda/audit.py --out reports/cuda-audit --baseline cuda/audit-baseline.json --build $(BUILD)/audit

cuda-audit-baseline:
	python3 cuda/audit.py --out reports/cuda-audit --baseline cuda/audit-baseline.json --build $(BUILD)/audit \
	  --write-baseline
