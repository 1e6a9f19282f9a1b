#!/bin/bash
# Values from outside reach log lines escaped: a browser's path that carries
# a line break and a fake log line, or terminal escapes, stays on its own
# line, in the text and the JSON format alike.
. "$(dirname "$0")/lib.sh"
examples_copy
B="$FB_TMP/examples/pair/installation-b.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }

forged='x%0a2026-12-07T00:00:00.000Z%20info%20admin%1b[2J%c2%9b2J'
for format in text json; do
	conf="$FB_TMP/examples/pair/b-$format.yaml" # relative paths resolve against its folder
	sed "s/^installation:$/log:\n  format: $format\ninstallation:/" "$B" >"$conf"
	start_bridge "$conf" "$FB_TMP/$format.log"
	base="http://127.0.0.1:$BRIDGE_PORT"
	code=$(curl -g -s -o /dev/null -w '%{http_code}' "$base/login/$forged")
	[ "$code" = 404 ] || fail "GET /login/<forged> answered $code"
	wait_for "$FB_TMP/$format.log" "no provider"
	kill "$BRIDGE_PID"
	wait "$BRIDGE_PID" 2>/dev/null || true
	log="$FB_TMP/$format.log"
	if grep -q '^2026-12-07T00:00:00.000Z' "$log"; then
		fail "a forged line reached the $format log: $(cat "$log")"
	fi
	if grep -q $'\x1b' "$log" || grep -q $'\xc2\x9b' "$log"; then
		fail "terminal escapes reached the $format log"
	fi
	if [ "$format" = text ]; then
		line=$(grep 'no provider' "$log")
		case "$line" in
		*'no provider x\x0a2026-12-07T00:00:00.000Z info admin\x1b[2J\u{009b}2J') ;;
		*) fail "the text log line is not the escaped value: $line" ;;
		esac
	else
		python3 -c 'import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    json.loads(line)' "$log" || fail "the JSON log has a line that is not JSON: $(cat "$log")"
	fi
	ok "$format log: the forged path stays one escaped line"
done
echo "log_injection: $n passed, 0 failed"
