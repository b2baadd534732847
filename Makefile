# The two commands of the README, and a few more. The real build is CMake (CMakeLists.txt).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure test test-asan fuzz demo bench clean format

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash scripts/deps.sh

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@test -f $(BUILD)-asan/CMakeCache.txt || cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHERD_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -L unit

# libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan), each run FUZZ_SECONDS from its
# seeds; fails on any crash. One target: make fuzz FUZZ_TARGETS=gguf. See docs/fuzzing.md.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS ?=
fuzz:
	@bash scripts/deps.sh fuzz
	@test -f $(BUILD)-fuzz/CMakeCache.txt || CC=clang-14 cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=Release -DHERD_FUZZ=ON >/dev/null
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	bash tests/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo: all
	./$(BUILD)/herd demo

bench: all
	bash bench/engine.sh

format:
	clang-format -i src/*/*.[ch] tests/*/*.[ch] bench/*.c 2>/dev/null || true

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
