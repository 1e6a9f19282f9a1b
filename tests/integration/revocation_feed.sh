#!/bin/bash
# The signed revocation feed between two installations: a session revoked at
# A (in A's store, by `fedbridge sessions revoke`) is refused by B's relay
# check within seconds, through B pulling A's /revocations, verifying A's
# signature and recording it in B's own store; B's cursor survives a restart.
# What A revokes concerns A's tokens only: a session id of A never revokes
# B's own session of the same id; every trust of A at B counts (B's second
# tenant trusts A's second tenant); a replayed old page is refused; when A's
# store is replaced B reads it again from 0; B takes at most
# store.remote_revocations_max entries in force from A.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
pa=$(free_port)
quota=12 # B's remote_revocations_max: room for what this test revokes before its last step
sed "s|public_url: https://sso.a.example|public_url: http://127.0.0.1:$pa|" "$pair/installation-a.yaml" >"$pair/a.yaml"
sed "s|issuer: https://sso.a.example|issuer: http://127.0.0.1:$pa|" "$pair/installation-b.yaml" >"$pair/b.yaml"
grep -q "127.0.0.1:$pa" "$pair/a.yaml" && grep -q "127.0.0.1:$pa" "$pair/b.yaml" || fail "could not write the configs"
# A second tenant on each side: B's Q7mWc2LxPa trusts A's Rk4vN8sJ3d (a second trust of A at
# B), and B's own tenants trust each other (a local trust: B's relay checks B's own tokens).
cat >>"$pair/a.yaml" <<EOF
  - id: Rk4vN8sJ3d
    name: A Two
    providers:
      - {name: a2-keycloak, type: oidc, issuer: "https://kc.a.example/realms/corp", client_id: fedbridge, client_secret_file: keys/a-keycloak.secret}
    mapping:
      - {provider: a2-keycloak, fid: pairwise(claims.sub)}
    trusts:
      - {remote: installation_B, tenants: [Q7mWc2LxPa], relay: "federation.b.example:443", ca: keys/b-ca.pem, client_cert: keys/a-to-b.cert.pem, client_key: keys/a-to-b.key.pem, keys: keys/b.jwks, issuer: "https://sso.b.example", outbound: "true"}
EOF
cat >>"$pair/b.yaml" <<EOF
      - {remote: installation_B, tenants: [Q7mWc2LxPa], client_cert: keys/b-relay.cert.pem, outbound: "true"}
  - id: Q7mWc2LxPa
    name: B Two
    providers:
      - {name: b2-saml, type: saml, idp_metadata: keys/b-idp-metadata.xml, sp_key: keys/b-sp.key, sp_cert: keys/b-sp.crt}
    mapping:
      - {provider: b2-saml, fid: "attrs.employeeNumber[0]"}
    trusts:
      - {remote: installation_A, tenants: [Rk4vN8sJ3d], relay: "federation.a.example:443", ca: keys/a-ca.pem, client_cert: keys/b-to-a.cert.pem, client_key: keys/b-to-a.key.pem, keys: keys/a.jwks, issuer: "http://127.0.0.1:$pa", inbound: "true"}
      - {remote: installation_B, tenants: [HWqHczeM2P], inbound: "true"}
remote_revocations_max: $quota
EOF
"$FB_BINARY" check -c "$pair/a.yaml" >/dev/null && "$FB_BINARY" check -c "$pair/b.yaml" >/dev/null ||
	fail "the configs with second tenants do not load"
own=$(cert_escaped "$pair/keys/b-relay.cert.pem")
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}
check() { # TOKEN [TENANT [PEER]] -> "200" or the reason /validate at B gives
	curl -s -D - -o /dev/null -H "Authorization: Fed $1" -H "X-Fed-Tenant: ${2:-HWqHczeM2P}" \
		-H "X-Fed-Peer-Cert: ${3:-$peer}" "http://127.0.0.1:$port_b/validate" |
		sed -n 's/^HTTP\/1\.[01] 200.*/200/p; s/^X-Fed-Reason: \([a-z_]*\).*/\1/p'
}
until_revoked() { # WHAT TOKEN [TENANT [PEER]]: B refuses it as revoked within 10 s
	t0=$(date +%s%N)
	while [ "$(check "$2" "${3:-}" "${4:-}")" != revoked ]; do
		[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ] ||
			fail "B still allows $1 after 10 s: $(check "$2" "${3:-}" "${4:-}") $(tail -5 "$FB_TMP/b2.log")"
		sleep 0.1
	done
}

"$FB_BINARY" serve -c "$pair/a.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a.log" &
pid_a=$!
FB_PIDS="$FB_PIDS $pid_a"
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

# (a) A session id of A's is A's: B's own session of the same id stays, A's token of it goes.
sid=DDDDDDDDDDDDDDDDDDDDDQ
mine=$("$FB_BINARY" token issue -c "$pair/b.yaml" --tenant HWqHczeM2P --fid fid:0/HWqHczeM2P/7 \
	--audience Q7mWc2LxPa --sid "$sid")
theirs=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/7 \
	--audience HWqHczeM2P --sid "$sid")
[ "$(check "$mine" Q7mWc2LxPa "$own")" = 200 ] || fail "B does not allow its own token: $(check "$mine" Q7mWc2LxPa "$own")"
[ "$(check "$theirs")" = 200 ] || fail "B does not allow A's token: $(check "$theirs")"
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
until_revoked "A's revoked session" "$theirs"
[ "$(check "$mine" Q7mWc2LxPa "$own")" = 200 ] ||
	fail "A's feed revoked B's own session of the same id: $(check "$mine" Q7mWc2LxPa "$own")"
"$FB_BINARY" sessions revoke -c "$pair/b.yaml" --sid "$sid" >/dev/null || fail "revoke at B"
until_revoked "its own revoked session" "$mine" Q7mWc2LxPa "$own"
ok "A's session revocation refuses A's token only, not B's own session of the same id (B's own revocation does)"

# (b) Every trust of A at B counts: A's second tenant is trusted by B's second tenant.
two=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant Rk4vN8sJ3d --fid fid:0/Rk4vN8sJ3d/5 \
	--audience Q7mWc2LxPa)
[ "$(check "$two" Q7mWc2LxPa)" = 200 ] || fail "B does not allow A's second tenant: $(check "$two" Q7mWc2LxPa)"
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --fid fid:0/Rk4vN8sJ3d/5 >/dev/null || fail "revoke at A"
until_revoked "a user of A's second tenant revoked at A" "$two" Q7mWc2LxPa
ok "a revocation for A's tenant in B's second trust of A is taken"

# (d) A replayed page: the answer A gave to B's cursor a while ago, served again in A's place.
# B has taken all of A's feed (the last revocation above is refused at B): its cursor is A's next.
page=$(curl -sf "http://127.0.0.1:$pa/revocations?since=0") || fail "A's feed"
payload=${page#*.}
payload=$(printf '%s' "${payload%%.*}" | tr '_-' '/+')
while [ $(( ${#payload} % 4 )) -ne 0 ]; do payload="$payload="; done
cursor=$(printf '%s' "$payload" | base64 -d | sed -n 's/.*"next":\([0-9]*\).*/\1/p')
[ -n "$cursor" ] || fail "no next in A's feed: $page"
curl -sf "http://127.0.0.1:$pa/revocations?since=$cursor" >"$FB_TMP/old-page" || fail "A's feed"
sleep 4.5 # B takes newer pages meanwhile (it pulls every 2 s; iat counts seconds)
kill "$pid_a"
wait "$pid_a" 2>/dev/null || true
python3 - "$pa" "$FB_TMP/old-page" >"$FB_TMP/replay.log" 2>&1 <<'PY' &
import http.server, sys
page = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/fedrev+jwt")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
    def log_message(self, *a):
        sys.stderr.write("GET %s\n" % self.path)
        sys.stderr.flush()
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
replay=$!
FB_PIDS="$FB_PIDS $replay"
wait_for "$FB_TMP/replay.log" "GET /revocations?since=$cursor" 10
wait_for "$FB_TMP/b2.log" "older than the last page taken" 10
kill "$replay"
wait "$replay" 2>/dev/null || true
ok "a replayed old page of A's feed is refused"

# (c) A's store is replaced (a new, empty one): its numbering starts at 1 again.
mv "$pair/state-a" "$pair/state-a.old"
"$FB_BINARY" serve -c "$pair/a.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a2.log" &
pid_a=$!
FB_PIDS="$FB_PIDS $pid_a"
wait_for "$FB_TMP/a2.log" "listening on 127.0.0.1:$pa"
sid=EEEEEEEEEEEEEEEEEEEEEQ
tok=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/8 \
	--audience HWqHczeM2P --sid "$sid")
[ "$(check "$tok")" = 200 ] || fail "B does not allow A's token: $(check "$tok")"
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
until_revoked "a session revoked in A's new store" "$tok"
grep -q "revocation feed of installation_A: its store was replaced" "$FB_TMP/b2.log" ||
	fail "B did not say A's store was replaced: $(cat "$FB_TMP/b2.log")"
ok "after A's store is replaced B reads A's feed again from 0"

# (c) again: A's store restored from a backup of itself, same identity, numbering back where the
# backup stood (behind B's cursor).
stop_a() {
	kill "$pid_a"
	wait "$pid_a" 2>/dev/null || true
}
start_a() { # LOG
	"$FB_BINARY" serve -c "$pair/a.yaml" --listen "127.0.0.1:$pa" 2>"$1" &
	pid_a=$!
	FB_PIDS="$FB_PIDS $pid_a"
	wait_for "$1" "listening on 127.0.0.1:$pa"
}
stop_a
cp -r "$pair/state-a" "$pair/state-a.bak"
start_a "$FB_TMP/a3.log"
for sid in GGGGGGGGGGGGGGGGGGGGGA GGGGGGGGGGGGGGGGGGGGGQ; do
	tok=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/8 \
		--audience HWqHczeM2P --sid "$sid")
	"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
done
until_revoked "the later of two sessions revoked at A" "$tok"
stop_a
rm -rf "$pair/state-a"
mv "$pair/state-a.bak" "$pair/state-a"
start_a "$FB_TMP/a4.log"
sid=HHHHHHHHHHHHHHHHHHHHHQ
tok=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/8 \
	--audience HWqHczeM2P --sid "$sid")
"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "$sid" >/dev/null || fail "revoke at A"
until_revoked "a session revoked in A's restored store" "$tok"
[ "$(grep -c "revocation feed of installation_A: its store was replaced" "$FB_TMP/b2.log")" -ge 2 ] ||
	fail "B did not say A's store was restored: $(cat "$FB_TMP/b2.log")"
ok "after A's store is restored from a backup B reads A's feed again from 0"

# (e) The quota: entries in force from A at B stay within remote_revocations_max.
for i in 0 1 2 3 4 5 6 7 8 9; do
	"$FB_BINARY" sessions revoke -c "$pair/a.yaml" --sid "FFFFFFFFFFFFFFFFFFFF${i}Q" >/dev/null ||
		fail "revoke at A"
done
last=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/9 \
	--audience HWqHczeM2P --sid FFFFFFFFFFFFFFFFFFFF9Q)
wait_for "$FB_TMP/b2.log" "would pass remote_revocations_max ($quota" 10
metrics=$(curl -s "http://127.0.0.1:$port_b/metrics")
printf '%s\n' "$metrics" | grep -q '^fedbridge_revocation_feed_quota_total{remote="installation_A"} [1-9]' ||
	fail "no quota count in B's metrics: $(printf '%s\n' "$metrics" | grep feed)"
[ "$(check "$last")" = 200 ] || fail "B took a page past the quota: $(check "$last")"
ok "B takes no page that would pass its quota for A: logged and counted, the cursor waits"

echo "revocation_feed: $passed passed, 0 failed"
