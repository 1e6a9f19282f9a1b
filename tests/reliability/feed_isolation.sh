#!/bin/bash
# One partner that hangs holds up nobody else's revocations: B trusts A and
# C; C's bridge accepts connections and never answers. A session revoked at
# A is refused at B's relay within 3 s all the same, and C's failures are
# retried less and less often instead of every 2 s.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
need_node "a partner that never answers"
examples_copy
pair="$FB_TMP/examples/pair"
pa=$(free_port)
pc=$(free_port)
sed "s|public_url: https://sso.a.example|public_url: http://127.0.0.1:$pa|" "$pair/installation-a.yaml" >"$pair/a.yaml"
sed "s|issuer: https://sso.a.example|issuer: http://127.0.0.1:$pa|" "$pair/installation-b.yaml" >"$pair/b.yaml"
# C: a second tenant of B trusts installation_C, whose bridge is the silent listener.
cat >>"$pair/b.yaml" <<EOF2
  - id: Q7mWc2LxPa
    name: B Two
    providers:
      - {name: b2-saml, type: saml, idp_metadata: keys/b-idp-metadata.xml, sp_key: keys/b-sp.key, sp_cert: keys/b-sp.crt}
    mapping:
      - {provider: b2-saml, fid: "attrs.employeeNumber[0]"}
    trusts:
      - {remote: installation_C, tenants: [Zc4pT7wQ2e], relay: "federation.c.example:443", ca: keys/a-ca.pem, client_cert: keys/b-to-a.cert.pem, client_key: keys/b-to-a.key.pem, keys: keys/a.jwks, issuer: "http://127.0.0.1:$pc", inbound: "true"}
EOF2
"$FB_BINARY" check -c "$pair/b.yaml" >/dev/null || fail "B's configuration with C does not load"

# C's bridge: takes every connection, answers nothing (until the test ends).
node -e "require('net').createServer(() => {}).listen($pc, '127.0.0.1', () => console.log('silent'))" \
	>"$FB_TMP/c.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/c.log" "silent"

"$FB_BINARY" serve -c "$pair/a.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on 127.0.0.1:$pa"
start_bridge "$pair/b.yaml" "$FB_TMP/b.log"
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
check() {
	curl -s -D - -o /dev/null -H "Authorization: Fed $1" -H "X-Fed-Tenant: HWqHczeM2P" \
		-H "X-Fed-Peer-Cert: $peer" "http://127.0.0.1:$BRIDGE_PORT/validate" |
		sed -n 's/^HTTP\/1\.[01] 200.*/200/p; s/^X-Fed-Reason: \([a-z_]*\).*/\1/p'
}

# Three revocations at A while B's pull of C hangs (each up to its 10 s limit).
for i in 1 2 3; do
	sid=$(printf 'EEEEEEEEEEEEEEEEEEEEE%s' "$(echo "AQg" | cut -c"$i")")
	tok=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU \
		--fid "fid:0/HZnKEBoqDU/10040$i" --audience HWqHczeM2P --sid "$sid")
	[ "$(check "$tok")" = 200 ] || fail "B does not allow A's token: $(check "$tok")"
	"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
	t0=$(date +%s%N)
	while [ "$(check "$tok")" != revoked ]; do
		[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ] ||
			fail "revocation $i at A still allowed at B after 3 s while C hangs: $(tail -5 "$FB_TMP/b.log")"
		sleep 0.1
	done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$ms" -le "${worst:-0}" ] || worst=$ms
	pass "revocation $i at A refused at B after $ms ms while C's feed hangs"
done
figure feed_hang_revocations 3 "sessions revoked at A while B's pull of C's feed hangs"
figure feed_hang_applied_ms_max "$worst" "longest from the revocation at A to B's relay check refusing it (ms; allowed: 3000)"

# C fails each time its fetch times out, and is asked again later each time.
wait_for "$FB_TMP/b.log" "revocation feed of installation_C: .*failed 2 times in a row" 60
n=$(grep -c "revocation feed of installation_C:" "$FB_TMP/b.log")
[ "$n" -le 3 ] || fail "C's failures logged $n times: $(grep installation_C "$FB_TMP/b.log")"
pass "C's hanging feed fails and backs off ($n lines logged)"
figure feed_hang_lines "$n" "log lines about C's hanging feed until its second failure (was one every 2 s)"
ready=$(curl -s "http://127.0.0.1:$BRIDGE_PORT/readyz")
echo "$ready" | jq -e '.status == "ready" and (.unavailable | any(.feed == "installation_C")) and
	(.unavailable | all(.feed != "installation_A"))' >/dev/null ||
	fail "/readyz does not list C's feed alone: $ready"
pass "/readyz stays ready and lists C's feed as unavailable: $ready"
echo "feed_isolation: 5 passed, 0 failed"
