# mk/replay.mk — the trace replayer on the GPU (cuda/replay.cu, cuda/REPLAY.md).
# It links CUDA, so it is its own binary, build/kvsim-cuda (`kvsim-cuda replay
# --trace FILE ...`): the CPU build/kvsim and `make test` never need nvcc.
# Its host-side logic (cuda/replay_host.c) is in libkvsim.a and CPU-tested.
#
#   make replay-build    build/kvsim-cuda with nvcc (-arch from nvidia-smi, else sm_90)
#   make replay-check    build, then replay the rocketkv sample with --check --time (needs a GPU)
#   make replay-emu      replay --check on the CPU under kcu_emu.h (no GPU: logic only, no
#                        timings): the rocketkv sample, then small hsa (page granularity, batch 2)
#                        and full traces written by build/kvsim trace (smollm2-135m, ~2 min)
#
# `make cuda` (the Makefile) compiles cuda/replay.cu with every other .cu
# (-arch=sm_90, warnings as errors).
.PHONY: replay-build replay-check replay-emu

REPLAY_CU   := dense_decode dense_decode_v5 hsa hsa_score_v2 hsa_score_v3 hsa_select_v4 stage1 probes
REPLAY_DEPS := cuda/replay.cu $(REPLAY_CU:%=cuda/%.cu) $(wildcard cuda/*.h cuda/*.cuh)
REPLAY_ARCH ?= $(shell c=$$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .'); echo sm_$${c:-90})
REPLAY_TRACE ?= traces/samples/rocketkv.trc

$(BUILD)/kvsim-cuda: $(REPLAY_DEPS) $(BUILD)/libkvsim.a
ifeq ($(NVCC),)
	@echo "make replay-build: nvcc not found; build/kvsim-cuda needs the CUDA toolkit" >&2; exit 1
else
	@mkdir -p $(BUILD)/replay
	@for f in replay $(REPLAY_CU); do \
	  $(NVCC) -arch=$(REPLAY_ARCH) -std=c++17 -O3 $(INCLUDES) -c cuda/$$f.cu -o $(BUILD)/replay/$$f.o & \
	done; wait
	@for f in replay $(REPLAY_CU); do [ -s $(BUILD)/replay/$$f.o ] || { echo "cuda/$$f.cu failed to compile" >&2; exit 1; }; done
	$(NVCC) -arch=$(REPLAY_ARCH) -o $@ $(addprefix $(BUILD)/replay/,$(addsuffix .o,replay $(REPLAY_CU))) \
	  $(BUILD)/libkvsim.a $(LIBS)
endif

replay-build: $(BUILD)/kvsim-cuda

replay-check: $(BUILD)/kvsim-cuda
	$(BUILD)/kvsim-cuda replay --trace $(REPLAY_TRACE) --check --time

# The CPU emulation (kcu_emu.h): the kernels compiled by the host C++
# compiler ($(BUILD)/emu/%.o, cuda/cuda.mk's rule), the replayer with the
# project's include paths.
$(BUILD)/emu/replay.o: $(REPLAY_DEPS)
	@mkdir -p $(dir $@)
	$(CXX_EMU) -std=c++20 -O2 -DKCU_EMU -Wall -Wextra -Wno-unknown-pragmas -Werror $(INCLUDES) $(PKG_CFLAGS) \
	  -x c++ -c $< -o $@

$(BUILD)/emu/kvsim-cuda-emu: $(BUILD)/emu/replay.o $(REPLAY_CU:%=$(BUILD)/emu/%.o) $(BUILD)/libkvsim.a
	$(CXX_EMU) -o $@ $^ $(LIBS)

replay-emu: $(BUILD)/emu/kvsim-cuda-emu $(BUILD)/kvsim
	$(BUILD)/emu/kvsim-cuda-emu replay --trace $(REPLAY_TRACE) --check
	$(BUILD)/kvsim trace --model smollm2-135m --method hsa --budget 64 --context 300 --steps 2 --layers 3 \
	  --batch 2 --granularity page --out $(BUILD)/emu/hsa.trc >/dev/null
	$(BUILD)/emu/kvsim-cuda-emu replay --trace $(BUILD)/emu/hsa.trc --check
	$(BUILD)/kvsim trace --model smollm2-135m --method full --budget 64 --context 301 --steps 2 --layers 0 \
	  --out $(BUILD)/emu/full.trc >/dev/null
	$(BUILD)/emu/kvsim-cuda-emu replay --trace $(BUILD)/emu/full.trc --check
