# mk/fuzz.mk — libFuzzer harnesses (clang): `make fuzz-gguf FUZZ_SECONDS=60`.
FUZZ_SECONDS ?= 60
.PHONY: fuzz-gguf
fuzz-gguf:
	@mkdir -p $(BUILD)/fuzz/gguf-corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Imodels tests/fuzz_gguf.c \
	  models/gguf.c common/kv_common.c -lm -o $(BUILD)/fuzz/fuzz_gguf
	@[ -f $(MODEL_GGUF) ] && head -c 65536 $(MODEL_GGUF) > $(BUILD)/fuzz/gguf-corpus/model-head || true
	cd $(BUILD)/fuzz && ./fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 gguf-corpus
