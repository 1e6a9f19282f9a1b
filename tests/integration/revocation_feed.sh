#!/bin/bash
# The signed revocation feed between two installations: a session revoked at
# A (in A's store, by `fedbridge sessions revoke`) is refused by B's relay
# check within seconds, through B pulling A's /revocations, verifying A's
# signature and recording it in B's own store; B's cursor survives a restart.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
pa=$(free_port)
sed "s|public_url: https://sso.a.example|public_url: http://127.0.0.1:$pa|" "$pair/installation-a.yaml" >"$pair/a.yaml"
sed "s|issuer: https://sso.a.example|issuer: http://127.0.0.1:$pa|" "$pair/installation-b.yaml" >"$pair/b.yaml"
grep -q "127.0.0.1:$pa" "$pair/a.yaml" && grep -q "127.0.0.1:$pa" "$pair/b.yaml" || fail "could not write the configs"
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}
check() { # TOKEN -> "200" or the reason /validate at B gives
	curl -s -D - -o /dev/null -H "Authorization: Fed $1" -H "X-Fed-Tenant: HWqHczeM2P" \
		-H "X-Fed-Peer-Cert: $peer" "http://127.0.0.1:$port_b/validate" |
		sed -n 's/^HTTP\/1\.[01] 200.*/200/p; s/^X-Fed-Reason: \([a-z_]*\).*/\1/p'
}

"$FB_BINARY" serve -c "$pair/a.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on 127.0.0.1:$pa"
start_bridge "$pair/b.yaml" "$FB_TMP/b.log"
port_b=$BRIDGE_PORT

# The feed itself: a JWS of typ fedrev+jwt that B's keys for A verify.
feed=$(curl -s "http://127.0.0.1:$pa/revocations?since=0")
hdr=$(printf '%s' "${feed%%.*}" | tr '_-' '/+' | base64 -d 2>/dev/null || true)
case "$hdr" in *'"typ":"fedrev+jwt"'*) ;; *) fail "feed header: $hdr ($feed)" ;; esac
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pa/revocations?since=x")" = 400 ] ||
	fail "a bad cursor is not refused"
ok "A publishes a signed feed (typ fedrev+jwt); a bad cursor is a 400"

sid=CCCCCCCCCCCCCCCCCCCCCQ
tok=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --sid "$sid")
[ "$(check "$tok")" = 200 ] || fail "B does not allow A's fresh token: $(check "$tok") $(tail -3 "$FB_TMP/b.log")"
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
t0=$(date +%s%N)
while [ "$(check "$tok")" != revoked ]; do
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ] ||
		fail "B still allows a session revoked at A after 10 s: $(tail -5 "$FB_TMP/b.log")"
	sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "revocation feed of installation_A: 1 recorded" "$FB_TMP/b.log" || fail "no feed line: $(cat "$FB_TMP/b.log")"
ok "a session revoked at A is refused at B's relay after ${ms} ms, through the feed"

# A revocation A may not make (B's own tenant) is not taken from A's feed.
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --tenant HWqHczeM2P >/dev/null || fail "revoke at A"
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --fid fid:0/HZnKEBoqDU/100409 >/dev/null || fail "revoke at A"
wait_for "$FB_TMP/b.log" "revocation feed of installation_A: 1 recorded (cursor 3)" 10
ok "B records only what concerns A's own tenants (B's tenant revoked by A is ignored)"

# B restarts: the cursor and the revocation stay.
kill "$BRIDGE_PID"
wait "$BRIDGE_PID" 2>/dev/null || true
start_bridge "$pair/b.yaml" "$FB_TMP/b2.log"
port_b=$BRIDGE_PORT
[ "$(check "$tok")" = revoked ] || fail "after B's restart: $(check "$tok")"
sleep 2.5
! grep -q "recorded" "$FB_TMP/b2.log" || fail "B pulled the same revocations again: $(cat "$FB_TMP/b2.log")"
ok "after a restart B keeps the revocation and its cursor (nothing pulled twice)"

echo "revocation_feed: $passed passed, 0 failed"
