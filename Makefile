# tqdb — the two commands of the quick start are `make run` and `make test`.
#   make run        install missing packages, build, start tqdb-server
#                   (127.0.0.1:50051, data in ./tqdb-data; Ctrl-C stops it)
#   make test       install missing packages, build, run every test (ctest)
#   make test-asan  the same under ASan + UBSan (build-asan/)
#   make test-tsan  the same under TSan (build-tsan/)
#   make bench      build and run the benchmarks (JSON lines on stdout)
#   make eval       the fidelity report on ../shared/data: docs/eval/results.jsonl,
#                   results.md and plots (scripts/eval.py; ~10 minutes, not in test)

BUILD    ?= build
JOBS     ?= $(shell nproc)
GENERATOR = $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CTEST_ARGS ?=

.PHONY: all deps build run test test-asan test-tsan bench eval clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/server/tqdb-server

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B build-asan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTQDB_SANITIZE=address
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-tsan: deps
	cmake -S . -B build-tsan $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTQDB_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	$(BUILD)/bench/tqdb-bench codec
	$(BUILD)/bench/tqdb-bench scan
	$(BUILD)/bench/tqdb-bench store

eval: build
	/usr/bin/python3 scripts/eval.py --build $(BUILD)

clean:
	rm -rf build build-asan build-tsan
