# mk/fuzz.mk — `make fuzz`: builds every tests/fuzz_*.c harness with clang's
# libFuzzer (plus ASan and UBSan) against the library sources, then runs each
# for FUZZ_SECONDS with a seed corpus of the committed samples. A crash input
# is written next to the regression samples: tests/data/traces/ for the trace
# reader, tests/data/fuzz/ for the others; commit it with the fix.
#
#   make fuzz FUZZ_SECONDS=120
FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: the trace reader then ignores
# checksums so that mutated inputs reach its decoders.
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
# fuzz_tokenizer needs the real model's vocabulary: `make fuzz-tokenizer` (below).
FUZZ_SRC     := $(filter-out tests/fuzz_tokenizer.c,$(wildcard tests/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/%.c=$(BUILD)/fuzz/%)
# The library is compiled once for every harness (-fsanitize=fuzzer-no-link:
# coverage instrumentation without libFuzzer's main), and each harness links
# those objects: four harnesses no longer compile the library four times.
FUZZ_OBJ_FLAGS := $(patsubst -fsanitize=fuzzer%,-fsanitize=fuzzer-no-link%,$(FUZZ_FLAGS))
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_OBJ_FLAGS) $(INCLUDES) $(DEFS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/%.c $(FUZZ_LIB_OBJ) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) $(INCLUDES) $(DEFS) $(PKG_CFLAGS) $< $(FUZZ_LIB_OBJ) $(LIBS) -o $@

.PHONY: fuzz-after-deps
fuzz:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(PAR) fuzz-after-deps

# The command line (tests/fuzz_cli.c): the CLI sources but main.c, built so
# that cli_opts_unused returns to the harness instead of letting a command
# compute (-DKVSIM_FUZZ_CLI). Its seeds and crash samples: tests/data/fuzz_cli/.
# It works in a temporary directory, so every path it is given is absolute.
CLI_FUZZ_SRC := $(filter-out cli/main.c,$(wildcard cli/*.c))
CLI_FUZZ_OBJ := $(CLI_FUZZ_SRC:%.c=$(BUILD)/fuzz/cliobj/%.o)
$(BUILD)/fuzz/cliobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_OBJ_FLAGS) -DKVSIM_FUZZ_CLI -Icli $(INCLUDES) $(DEFS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/fuzz_cli: tests/fuzz_cli.c tests/fuzz_cli_argv.h $(FUZZ_LIB_OBJ) $(CLI_FUZZ_OBJ) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) -DKVSIM_FUZZ_CLI -Icli $(INCLUDES) $(DEFS) $(PKG_CFLAGS) $< $(FUZZ_LIB_OBJ) \
	  $(CLI_FUZZ_OBJ) $(LIBS) -o $@

fuzz-after-deps: $(FUZZ_BIN)
	@for b in $(FUZZ_BIN); do \
	  n=$$(basename $$b); \
	  seeds="traces/samples tests/data models hwmodels"; extra=""; \
	  case $$n in fuzz_trace) art=tests/data/traces;; \
	    fuzz_cli) art=tests/data/fuzz_cli; seeds=$(CURDIR)/tests/data/fuzz_cli; extra=-close_fd_mask=3;; \
	    *) art=tests/data/fuzz;; esac; \
	  mkdir -p $(BUILD)/fuzz/corpus-$$n $$art; \
	  echo "make fuzz: $$n for $(FUZZ_SECONDS) s (crashes to $$art/)"; \
	  $$b -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -artifact_prefix=$(CURDIR)/$$art/crash-$$n- $$extra \
	    $(abspath $(BUILD))/fuzz/corpus-$$n $$seeds >$(BUILD)/fuzz/$$n.log 2>&1 \
	    || { tail -30 $(BUILD)/fuzz/$$n.log; echo "make fuzz: $$n found a crash (input in $$art/)"; exit 1; }; \
	  tail -1 $(BUILD)/fuzz/$$n.log; \
	done

# The tokenizer on the real vocabulary (needs `make model`).
.PHONY: fuzz-tokenizer
fuzz-tokenizer: model
	@mkdir -p $(BUILD)/fuzz/tok-corpus
	$(FUZZ_CC) $(CSTD) $(FUZZ_FLAGS) -Icommon -Imodels -Irefimpl -Illm tests/fuzz_tokenizer.c \
	  llm/llm_tok.c llm/llm_gguf.c common/kv_common.c common/kv_afile.c -lpthread -lm -o $(BUILD)/fuzz/fuzz_tokenizer
	@head -c 2000 /usr/share/common-licenses/GPL-3 > $(BUILD)/fuzz/tok-corpus/gpl3 || true
	cd $(BUILD)/fuzz && KVSIM_GGUF=$(abspath $(MODEL_GGUF)) ./fuzz_tokenizer -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=512 -rss_limit_mb=4096 tok-corpus
