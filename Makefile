# Thin wrapper around CMake. `make run` and `make test` are the quick start.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# The default model of `make run`: 784-256-128-10, BatchNorm, dropout 0.2, Adam.
RUN_FLAGS ?= --hidden 256,128 --batchnorm --dropout 0.2 --optimizer adam --lr 1e-3 --epochs 10

# `make test-asan`: the CPU build with ASan + UBSan (and LeakSanitizer), whole suite.
ASAN_BUILD ?= build-asan
# Sanitizer reports get exit codes of their own, so that a test expecting a
# failure (exit 1 or 2) cannot pass on a sanitizer's exit; OOM tests need
# malloc to return NULL instead of ASan aborting on absurd sizes.
ASAN_ENV ?= ASAN_OPTIONS=detect_leaks=1:exitcode=86:allocator_may_return_null=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87 LSAN_OPTIONS=exitcode=88
# `make install PREFIX=DIR`: libdescent (.a, .so), include/descent, descent.pc,
# the CMake package and the binary (cmake --install)
PREFIX ?= /usr/local
# `make fuzz`: seconds per libFuzzer harness (tests/fuzz/run.sh)
FUZZ_SECONDS ?= 60

.PHONY: all deps build run test test-asan fuzz bench install clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/descent train $(RUN_FLAGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DDESCENT_SANITIZE=ON -DDESCENT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(ASAN_ENV) ctest --output-on-failure -j$(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

fuzz:
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
