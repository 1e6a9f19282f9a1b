#!/bin/sh
# Builds everything with ASan+UBSan and -Werror and runs every test with
# ctest; then, when clang is there, runs each fuzz target for a bounded time;
# the tests labelled tsan run again in a ThreadSanitizer build.
#   FB_FUZZ_SECONDS  seconds per fuzz target (default 60; 0 skips fuzzing)
#   FB_BUILD_DIR     build directory (default build-test)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh test
root=$(pwd)
. scripts/node-env.sh

jobs=$(nproc 2>/dev/null || echo 2)
dir=${FB_BUILD_DIR:-build-test}
fuzz_seconds=${FB_FUZZ_SECONDS:-60}

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFB_SANITIZE=ON -DFB_WERROR=ON >/dev/null
cmake --build "$dir" -j "$jobs" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

if [ "$fuzz_seconds" -gt 0 ] && command -v clang >/dev/null 2>&1; then
	CC=clang cmake -S . -B "$dir-fuzz" -DCMAKE_BUILD_TYPE=Debug -DFB_FUZZ=ON -DFB_WERROR=ON \
	    -DFB_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
	cmake --build "$dir-fuzz" -j "$jobs" --target fuzzers >/dev/null
	(cd "$dir-fuzz" && ctest -L '^fuzz-run$' --output-on-failure -j "$jobs")
fi

# The tests of what threads share, under ThreadSanitizer (only their targets are built).
cmake -S . -B "$dir-tsan" -DCMAKE_BUILD_TYPE=Debug -DFB_TSAN=ON -DFB_WERROR=ON >/dev/null
cmake --build "$dir-tsan" -j "$jobs" --target test_log_race >/dev/null
(cd "$dir-tsan" && TSAN_OPTIONS=halt_on_error=1 ctest -L '^tsan$' --output-on-failure)

cd "$dir"
ctest --output-on-failure -j "$jobs" -LE '^fuzz-run$'
