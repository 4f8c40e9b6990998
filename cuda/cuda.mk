# cuda/cuda.mk — CUDA rules, included at the end of the Makefile
# (`-include cuda/cuda.mk`). `make cuda` (in the Makefile) compiles every
# cuda/*.cu; these add the GPU check:
#
#   make gpu-check        build, check against the CPU reference, probe, time;
#                         writes reports/gpu/<device>-<date>.json (needs a GPU)
#   make gpu-check-build  build build/gpu/gpu_check only (no GPU needed)
#
# Both go through cuda/gpu_check.sh, which needs only nvcc and a C compiler:
# the CPU reference it links (cuda/kcu_ref_host.c, common/kv_common.c) uses
# libc and libm alone, so a bare GPU machine without GSL or libyaml builds it.
.PHONY: gpu-check gpu-check-build

gpu-check:
	sh cuda/gpu_check.sh

gpu-check-build:
	KCU_BUILD_ONLY=1 sh cuda/gpu_check.sh
