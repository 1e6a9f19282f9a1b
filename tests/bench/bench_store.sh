#!/bin/bash
# The session store benchmark against both durable backends: SQLite in a
# temporary directory and a throwaway PostgreSQL started here (Unix socket in
# the same directory, default settings, fsync on), stopped on exit. Prints
# figures with their baselines; not a test.
#   usage: tests/bench/bench_store.sh [BENCH_STORE_BINARY]
# Without a binary it builds build-bench/tests/bench/bench_store (Release).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
	cmake -S "$src" -B "$src/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$src/build-bench" -j "$(nproc 2>/dev/null || echo 2)" --target bench_store >/dev/null
	bin="$src/build-bench/tests/bench/bench_store"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fb-bench-store.XXXXXX")
. "$src/tests/integration/store_pg_lib.sh"
trap 'pg_stop; rm -rf "$tmp"' EXIT
pg_start "$tmp" || { echo "bench_store: could not start PostgreSQL" >&2; exit 1; }
echo "session store on $(nproc) cores, $(uname -m); $("$PG_BIN/postgres" --version)"
TMPDIR="$tmp" "$bin"
