# Thin wrapper around CMake. `make run` and `make test` are the quick start.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# The default model of `make run`: 784-256-128-10, BatchNorm, dropout 0.2, Adam.
RUN_FLAGS ?= --hidden 256,128 --batchnorm --dropout 0.2 --optimizer adam --lr 1e-3 --epochs 10

.PHONY: all deps build run test bench clean

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

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
