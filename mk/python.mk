# The C library as a shared object for the Python package (python/kvsim,
# ctypes over capi/kva.h): the library sources compiled again with -fPIC.
#   make build/libkvsim.so     the shared library
#   make python-test           the Python package's pytest suite, in a clean venv (scripts/ci_python.sh)
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@

$(BUILD)/libkvsim.so: $(PIC_OBJ)
	$(CC) $(OPT) -shared -o $@ $(PIC_OBJ) $(LIBS)

.PHONY: python-test
python-test:
	@$(MAKE) --no-print-directory $(PAR) $(BUILD)/libkvsim.so $(BUILD)/kvsim
	sh scripts/ci_python.sh
