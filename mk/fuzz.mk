# mk/fuzz.mk — libFuzzer harnesses (clang): `make fuzz-gguf FUZZ_SECONDS=60`.
FUZZ_SECONDS ?= 60
.PHONY: fuzz-gguf
fuzz-gguf:
	@mkdir -p $(BUILD)/fuzz/gguf-corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Imodels tests/fuzz_gguf.c \
	  models/gguf.c common/kv_common.c -lm -o $(BUILD)/fuzz/fuzz_gguf
	@[ -f $(MODEL_GGUF) ] && head -c 65536 $(MODEL_GGUF) > $(BUILD)/fuzz/gguf-corpus/model-head || true
	cd $(BUILD)/fuzz && ./fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 gguf-corpus

# The tokenizer on the real vocabulary (needs `make model`).
.PHONY: fuzz-tokenizer
fuzz-tokenizer: model
	@mkdir -p $(BUILD)/fuzz/tok-corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Imodels -Irefimpl tests/fuzz_tokenizer.c \
	  models/llm_tok.c models/gguf.c common/kv_common.c -lm -o $(BUILD)/fuzz/fuzz_tokenizer
	@head -c 2000 /usr/share/common-licenses/GPL-3 > $(BUILD)/fuzz/tok-corpus/gpl3 || true
	cd $(BUILD)/fuzz && KVSIM_GGUF=$(abspath $(MODEL_GGUF)) ./fuzz_tokenizer -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=512 -rss_limit_mb=4096 tok-corpus
