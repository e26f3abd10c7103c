# Thin wrapper around CMake. `make test` and `make build` run scripts/setup first
# when a dependency or a model is missing.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DATA ?= $(abspath ../shared/data)
export ANJU_DATA_DIR ?= $(if $(wildcard $(DATA)),$(DATA),)

.PHONY: all setup build console test test-unit test-asan test-console bench run format clean

all: build

setup:
	@scripts/setup --check >/dev/null 2>&1 || scripts/setup

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)
	@$(MAKE) --no-print-directory console

# The web console (console/, Vite) into $(BUILD)/console, which anju-server serves at "/".
console:
	@if command -v npm >/dev/null && [ -d console/node_modules ]; then \
	  cd console && ANJU_CONSOLE_OUT=$(abspath $(BUILD))/console npx vite build --logLevel warn && \
	  echo "控制台 / console: $(BUILD)/console"; \
	else echo "控制台未构建：没有 npm 或 console/node_modules（scripts/setup）/ console not built: no npm or console/node_modules (scripts/setup)"; fi

# Unit and integration tests, then the unit tests under ASan + UBSan: the ASan build leaves
# out the end-to-end suites and builds only the programs its tests start (docs/building.md).
test: build test-unit test-asan test-console

test-unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DANJU_SANITIZE=ON -DANJU_BUILD_BENCH=OFF \
	  "-DANJU_APPS=anju-server;anju-converter"

# Accuracy runs over real data sets: model compute, the same code the other tests sanitize.
ASAN_SKIP ?= ^(LivenessEvalTest|OpenSetRealData|CalibrationRealData)\.

test-asan: setup $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L unit \
	  -E '$(ASAN_SKIP)' --timeout 900

# Browser tests of the console (Playwright + Debian's Chromium against a real anju-server).
test-console:
	@if [ -f $(BUILD)/console/index.html ]; then \
	  ANJU_BIN_DIR=$(abspath $(BUILD))/bin ANJU_CONSOLE_DIR=$(abspath $(BUILD))/console \
	  ANJU_CONSOLE_TEST_OUT=$(abspath $(BUILD))/console-test node tests/console/run.mjs; \
	else echo "控制台测试跳过：控制台未构建 / console tests skipped: console not built (no Node.js >= 20.19)"; fi

bench: build
	$(BUILD)/bin/anju_bench --benchmark_min_time=2

run: build
	scripts/demo

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
