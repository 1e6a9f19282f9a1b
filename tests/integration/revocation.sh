#!/bin/bash
# Revocations reach the relay check of a running bridge: `fedbridge sessions
# revoke` writes to the embedded store, the serving bridge's watch applies it
# to /validate within a second, for a session, a fid, the trust kill switch
# and "issued before"; revocations survive kill -9 and restart; /readyz
# answers while the store does.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
a="$pair/installation-a.yaml"
b="$pair/installation-b.yaml"
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}
issue() { # FID SID -> token
	"$FB_BINARY" token issue -c "$a" --tenant HZnKEBoqDU --fid "$1" --audience HWqHczeM2P --sid "$2"
}
check() { # TOKEN -> "200" or the reason /validate at B gives
	curl -s -D - -o /dev/null -H "Authorization: Fed $1" -H "X-Fed-Tenant: HWqHczeM2P" \
		-H "X-Fed-Peer-Cert: $peer" "http://127.0.0.1:$BRIDGE_PORT/validate" |
		sed -n 's/^HTTP\/1\.[01] 200.*/200/p; s/^X-Fed-Reason: \([a-z_]*\).*/\1/p'
}
# until_denied TOKEN: polls /validate until it says revoked, at most 2 s; prints the ms taken.
until_denied() {
	t0=$(date +%s%N)
	while [ "$(check "$1")" != revoked ]; do
		[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ] || return 1
		sleep 0.02
	done
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

start_bridge "$b" "$FB_TMP/b.log"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BRIDGE_PORT/readyz")" = 200 ] || fail "/readyz"
ok "/readyz is 200 while the store answers"

sid1=AAAAAAAAAAAAAAAAAAAAAA
sid2=BBBBBBBBBBBBBBBBBBBBBB
t1=$(issue fid:0/HZnKEBoqDU/100401 "$sid1")
t2=$(issue fid:0/HZnKEBoqDU/100401 "$sid2")
t3=$(issue fid:0/HZnKEBoqDU/100402 "$sid2")
[ "$(check "$t1")" = 200 ] && [ "$(check "$t2")" = 200 ] && [ "$(check "$t3")" = 200 ] ||
	fail "fresh tokens are not allowed: $(cat "$FB_TMP/b.log")"

"$FB_BINARY" sessions revoke -c "$b" --sid "$sid1" --reason test >/dev/null || fail "revoke --sid"
ms=$(until_denied "$t1") || fail "a revoked session was still allowed after 2 s: $(tail -5 "$FB_TMP/b.log")"
[ "$(check "$t2")" = 200 ] || fail "another session was denied too"
ok "a revoked session is refused by the running relay check within ${ms} ms; others are not"

"$FB_BINARY" sessions revoke -c "$b" --fid fid:0/HZnKEBoqDU/100401 >/dev/null || fail "revoke --fid"
ms=$(until_denied "$t2") || fail "a revoked fid was still allowed"
[ "$(check "$t3")" = 200 ] || fail "another fid was denied too"
ok "a revoked fid is refused within ${ms} ms"

# kill -9 and restart: what was revoked stays revoked.
kill -9 "$BRIDGE_PID"
wait "$BRIDGE_PID" 2>/dev/null || true
start_bridge "$b" "$FB_TMP/b2.log"
[ "$(check "$t1")" = revoked ] && [ "$(check "$t2")" = revoked ] && [ "$(check "$t3")" = 200 ] ||
	fail "after kill -9 and restart: $(check "$t1") $(check "$t2") $(check "$t3")"
grep -q "store: .* revocations in force" "$FB_TMP/b2.log" || fail "no load line: $(cat "$FB_TMP/b2.log")"
ok "revocations survive kill -9 and restart"

"$FB_BINARY" sessions revoke -c "$b" --trust installation_A --reason "kill switch" >/dev/null ||
	fail "revoke --trust"
ms=$(until_denied "$t3") || fail "the kill switch did not stop installation_A's tokens"
ok "the trust kill switch refuses every token of that remote within ${ms} ms"

out=$("$FB_BINARY" sessions revoke -c "$b" --sid "$sid1" --fid x 2>&1) && fail "two WHATs accepted"
printf '%s\n' "$out" | grep -q 'give exactly one of' || fail "two WHATs: $out"
set +e
"$FB_BINARY" sessions revoke -c "$b" --issued-before 2999-01-01T00:00:00Z >/dev/null 2>&1
rc=$?
"$FB_BINARY" sessions revoke -c "$b" --subject x >/dev/null 2>&1
rc2=$?
set -e
[ "$rc" = 2 ] && [ "$rc2" = 2 ] || fail "future time or --subject without --issuer: exit $rc $rc2"
"$FB_BINARY" sessions list -c "$b" >/dev/null 2>"$FB_TMP/list.err" || fail "sessions list"
grep -q '^0 sessions$' "$FB_TMP/list.err" || fail "sessions list: $(cat "$FB_TMP/list.err")"
ok "sessions revoke refuses ambiguous or future requests; sessions list works on the store"

echo "revocation: $passed passed, 0 failed"
