#!/bin/bash
# The session store against real servers: a throwaway PostgreSQL started here
# (Unix socket in a temporary directory, stopped on exit) and SQLite files.
#   1. the backend-agnostic unit suite against PostgreSQL
#   2. two processes race for the same 1000 one-time values: exactly one wins each
#   3. kill -9 of a process writing revocations: every acknowledged one survives
#   4. PostgreSQL stops under an open store: clear errors; back within 5 s unaided
#   5. a revocation reaches a second handle's watch within 1 s
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store_pg_lib.sh"
: "${FB_BUILD_DIR:?FB_BUILD_DIR must name the build directory}"
tool="$FB_BUILD_DIR/tests/integration/store_tool"
unit="$FB_BUILD_DIR/tests/unit/test_store"
[ -x "$tool" ] && [ -x "$unit" ] || fail "build store_tool and test_store first"
trap 'pg_stop; cleanup' EXIT
pg_start "$FB_TMP" || fail "could not start PostgreSQL"
pg="$FB_TEST_PG_URL"
passed=0

# 1
"$unit" >"$FB_TMP/unit.log" 2>&1 || { cat "$FB_TMP/unit.log" >&2; fail "unit suite on PostgreSQL"; }
! grep -q "FB_TEST_PG_URL is not set" "$FB_TMP/unit.log" || fail "the PostgreSQL group did not run"
pass "unit suite: $(grep -c '^\[       OK' "$FB_TMP/unit.log") tests passed, the PostgreSQL group included"
passed=$((passed + 1))

# 2
race() { # STORE NAME
	rm -rf "$FB_TMP/race"
	mkdir "$FB_TMP/race"
	"$tool" race "$1" 1000 "$FB_TMP/race" >"$FB_TMP/race-a" 2>"$FB_TMP/race-a.err" &
	a=$!
	"$tool" race "$1" 1000 "$FB_TMP/race" >"$FB_TMP/race-b" 2>"$FB_TMP/race-b.err" &
	b=$!
	FB_PIDS="$FB_PIDS $a $b"
	deadline=$(( $(date +%s) + 30 ))
	until [ "$(find "$FB_TMP/race" -name 'ready-*' | wc -l)" = 2 ]; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "$2 race: the racers did not start"
		sleep 0.01
	done
	touch "$FB_TMP/race/go"
	wait "$a" || { cat "$FB_TMP/race-a.err" >&2; fail "$2 race: process a failed"; }
	wait "$b" || { cat "$FB_TMP/race-b.err" >&2; fail "$2 race: process b failed"; }
	total=$(cat "$FB_TMP/race-a" "$FB_TMP/race-b" | wc -l)
	unique=$(cat "$FB_TMP/race-a" "$FB_TMP/race-b" | sort -u | wc -l)
	[ "$total" = 1000 ] && [ "$unique" = 1000 ] ||
		fail "$2 race: $total wins for 1000 values ($unique distinct)"
	pass "$2 race: 1000 values, exactly one winner each (a $(wc -l <"$FB_TMP/race-a"), b $(wc -l <"$FB_TMP/race-b"))"
	passed=$((passed + 1))
}
race "$pg" PostgreSQL
race "embedded:$FB_TMP/race-db" SQLite

# 3
kill9() { # STORE NAME
	out="$FB_TMP/acked-$2"
	"$tool" revoke-stream "$1" >"$out" 2>"$out.err" &
	w=$!
	FB_PIDS="$FB_PIDS $w"
	deadline=$(( $(date +%s) + 20 ))
	while [ "$(wc -l <"$out")" -lt 300 ]; do
		[ "$(date +%s)" -lt "$deadline" ] || { cat "$out.err" >&2; fail "$2: the writer is too slow"; }
		sleep 0.02
	done
	kill -9 "$w"
	wait "$w" 2>/dev/null || true
	# The last line may be cut mid-number by the kill: only whole lines were acknowledged.
	sed '$d' "$out" >"$out.whole"
	res=$("$tool" has-seqs "$1" <"$out.whole") || fail "$2 after kill -9: $res"
	pass "$2 after kill -9: $res"
	passed=$((passed + 1))
}
kill9 "embedded:$FB_TMP/kill-db" SQLite
kill9 "$pg" PostgreSQL

# 4
mkdir "$FB_TMP/outage"
"$tool" outage "$pg" "$FB_TMP/outage" >"$FB_TMP/outage.log" 2>&1 &
o=$!
FB_PIDS="$FB_PIDS $o"
wait_for_file() { deadline=$(( $(date +%s) + 30 )); until [ -e "$1" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || { cat "$FB_TMP/outage.log" >&2; fail "timed out waiting for $1"; }
	sleep 0.02; done; }
wait_for_file "$FB_TMP/outage/up"
pg_stop
touch "$FB_TMP/outage/down"
wait_for_file "$FB_TMP/outage/failed"
pg_restart_start || fail "PostgreSQL did not start again"
touch "$FB_TMP/outage/back"
wait "$o" || { cat "$FB_TMP/outage.log" >&2; fail "the store did not recover"; }
grep -q "server down: io: PostgreSQL $PG_DIR" "$FB_TMP/outage.log" ||
	{ cat "$FB_TMP/outage.log" >&2; fail "the failure does not name the server"; }
pass "PostgreSQL restart: $(tr '\n' ' ' <"$FB_TMP/outage.log")"
passed=$((passed + 1))

# 5
res=$("$tool" watch "$pg" 20) || fail "PostgreSQL watch: $res"
pass "PostgreSQL $res"
res=$("$tool" watch "embedded:$FB_TMP/watch-db" 10) || fail "SQLite watch: $res"
pass "SQLite $res"
passed=$((passed + 2))
echo "store_postgres: $passed passed, 0 failed"
