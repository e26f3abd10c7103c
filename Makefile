# Thin wrapper around CMake. `make test` and `make build` run scripts/setup first
# when a dependency or a model is missing.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DATA ?= $(abspath ../shared/data)
export ANJU_DATA_DIR ?= $(if $(wildcard $(DATA)),$(DATA),)

.PHONY: all setup build test test-unit test-asan bench run format clean

all: build

setup:
	@scripts/setup --check >/dev/null 2>&1 || scripts/setup

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Unit and integration tests, then the same unit tests under ASan + UBSan.
test: build test-unit test-asan

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DANJU_SANITIZE=ON -DANJU_BUILD_BENCH=OFF

test-asan: setup $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L unit --timeout 900

bench: build
	$(BUILD)/bin/anju_bench --benchmark_min_time=2

run: build
	scripts/demo

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
