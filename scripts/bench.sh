#!/bin/sh
# Builds the benchmarks optimised (no sanitizers) and prints every figure with
# its baseline from the same run and the ratio. Figures, not pass/fail.
#   FB_BENCH_SECONDS  wrk duration per side (default 10)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh test
dir=build-bench
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" --target bench_verify bench_mapping bench_store fedbridge >/dev/null
echo "fedbridge benchmarks on $(nproc) cores, $(uname -m), $(openssl version)"
"$dir/tests/bench/bench_verify"
"$dir/tests/bench/bench_mapping"
tests/bench/bench_store.sh "$dir/tests/bench/bench_store"
tests/bench/bench_http.sh "$dir/cli/fedbridge" "${FB_BENCH_SECONDS:-10}"
