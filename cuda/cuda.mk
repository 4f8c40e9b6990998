# cuda/cuda.mk — CUDA rules, included at the end of the Makefile
# (`-include cuda/cuda.mk`). `make cuda` (in the Makefile) compiles every
# cuda/*.cu; these add the GPU check:
#
#   make gpu-check        build, check against the CPU reference, probe, time;
#                         writes reports/gpu/<device>-<date>.json (needs a GPU)
#   make gpu-check-build  build build/gpu/gpu_check only (no GPU needed)
#   make cuda-emu         run gpu_check's kernel checks on the CPU (kcu_emu.h:
#                         one OS thread per CUDA thread, small shapes, ~1 min);
#                         no GPU needed, logic only, no timings
#
# Both go through cuda/gpu_check.sh, which needs only nvcc and a C compiler:
# the CPU reference it links (cuda/kcu_ref_host.c, common/kv_common.c) uses
# libc and libm alone, so a bare GPU machine without GSL or libyaml builds it.
.PHONY: gpu-check gpu-check-build cuda-emu

gpu-check:
	sh cuda/gpu_check.sh

gpu-check-build:
	KCU_BUILD_ONLY=1 sh cuda/gpu_check.sh

# The kernels compiled by the host C++ compiler against kcu_emu.h.
CXX_EMU ?= g++
EMU_CU := dense_decode hsa stage1 probes gpu_check
$(BUILD)/emu/%.o: cuda/%.cu $(wildcard cuda/*.h cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(CXX_EMU) -std=c++20 -O2 -DKCU_EMU -Wall -Wextra -Wno-unknown-pragmas -Werror -Icommon -Icuda -x c++ -c $< -o $@

$(BUILD)/emu/gpu_check_emu: $(EMU_CU:%=$(BUILD)/emu/%.o) cuda/kcu_ref_host.c common/kv_common.c common/kv_afile.c
	$(CC) $(CSTD) -O2 -Icommon -Icuda -c cuda/kcu_ref_host.c -o $(BUILD)/emu/kcu_ref_host.o
	$(CC) $(CSTD) -O2 -Icommon -c common/kv_common.c -o $(BUILD)/emu/kv_common.o
	$(CC) $(CSTD) -O2 -Icommon -c common/kv_afile.c -o $(BUILD)/emu/kv_afile.o
	$(CXX_EMU) -o $@ $(EMU_CU:%=$(BUILD)/emu/%.o) $(BUILD)/emu/kcu_ref_host.o $(BUILD)/emu/kv_common.o \
	  $(BUILD)/emu/kv_afile.o -lpthread -lm

cuda-emu: $(BUILD)/emu/gpu_check_emu
	$(BUILD)/emu/gpu_check_emu --out $(BUILD)/emu/report.json
