#!/bin/bash
# `fedbridge serve` answers /healthz; SIGHUP with a broken file logs every
# error and keeps the old configuration serving; SIGHUP with a good file
# swaps it; SIGTERM stops it cleanly.
. "$(dirname "$0")/lib.sh"
examples_copy
conf="$FB_TMP/examples/minimal.yaml"
log="$FB_TMP/serve.log"

"$FB_BINARY" serve -c "$conf" --listen 127.0.0.1:0 2>"$log" &
pid=$!
FB_PIDS="$pid"
wait_for "$log" "listening on 127.0.0.1:[1-9]"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
url="http://127.0.0.1:$port/healthz"

body=$(curl -fsS "$url") || fail "GET /healthz failed"
echo "$body" | grep -q '"status":"ok"' || fail "unexpected /healthz body: $body"
echo "$body" | grep -q '"config_generation":1' || fail "expected generation 1: $body"
pass "/healthz answers: $body"

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")
[ "$code" = 405 ] || fail "POST /healthz gave $code, expected 405"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
[ "$code" = 404 ] || fail "GET /nope gave $code, expected 404"
pass "405 and 404 where due"

# Break the file in two places and reload: both errors logged, old config kept.
cp "$conf" "$FB_TMP/good.yaml"
sed -i 's/^  domain: a.example/  domain: a..example\n  colour: blue/' "$conf"
kill -HUP "$pid"
wait_for "$log" "reload rejected: still serving configuration generation 1"
grep -q "reload rejected: .*minimal.yaml:5:11: installation.domain: expected a DNS domain" "$log" ||
	{ cat "$log" >&2; fail "first error not logged with its position"; }
grep -q "reload rejected: .*minimal.yaml:6:3: installation: unknown key \"colour\"" "$log" ||
	{ cat "$log" >&2; fail "second error not logged with its position"; }
body=$(curl -fsS "$url") || fail "the bridge stopped serving after a broken reload"
echo "$body" | grep -q '"config_generation":1' || fail "broken file was applied: $body"
pass "broken reload refused, still serving: $body"

# A good file with a change is swapped in.
sed 's/name: A Corp/name: A Corp renamed/' "$FB_TMP/good.yaml" >"$conf"
kill -HUP "$pid"
wait_for "$log" "configuration reloaded: generation 2"
body=$(curl -fsS "$url") || fail "GET /healthz failed after reload"
echo "$body" | grep -q '"config_generation":2' || fail "expected generation 2: $body"
pass "good reload applied: $body"

kill -TERM "$pid"
wait "$pid" || fail "serve exited with status $? on SIGTERM"
FB_PIDS=""
grep -q "stopping" "$log" || fail "no stop message"
if grep -q "fid.secret\|$(cat "$FB_TMP/examples/keys/fid.secret")" "$log"; then
	fail "a secret appeared in the log"
fi
pass "clean stop"
echo "serve_reload: 5 passed, 0 failed"
