# erpsync: the two commands of README.md, and a few for developers.
#   make demo    install what is missing, build, run the main job and show the result
#   make check   install what the tests need, build with sanitizers, run every test
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build/release
CHECK_BUILD ?= build/asan

.PHONY: all build demo check deps test-deps asan test format checksrc clean docs bench

all: build

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)

asan: test-deps
	@cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DES_ASAN=ON -DES_UBSAN=ON >/dev/null
	@cmake --build $(CHECK_BUILD) -j $(JOBS)

check: asan checksrc
	@cd $(CHECK_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test: check

checksrc:
	@scripts/checksrc.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

docs: build
	@$(BUILD)/erpsync config-docs > docs/config-reference.md

bench:
	@cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DES_BENCH=ON >/dev/null
	@cmake --build build/bench -j $(JOBS)

clean:
	@rm -rf build
