#!/bin/bash
# Two installations that trust each other (conf/examples/pair): A issues a
# token for alice toward B's tenant; B checks it on the command line, over
# POST and GET /validate, and behind a real nginx relay doing mTLS with
# auth_request, as every federated message would be checked.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
A="$pair/installation-a.yaml"
B="$pair/installation-b.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }

token=$("$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --attr email=alice@a.example --attr department=sales --sid pairtestsession0001xyz) ||
	fail "token issue"

# The command line check.
out=$("$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token") ||
	fail "token verify denied a good token: $out"
[ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100401","tid":"HZnKEBoqDU","attrs":{"department":"sales","email":"alice@a.example"}}' ] ||
	fail "unexpected allow: $out"
ok "token verify allows: $out"
out=$(echo "$token" | "$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" -) ||
	fail "token verify from stdin: $out"
ok "token verify reads the token from stdin"
check_deny() { # expected-reason args...
	want=$1
	shift
	set +e
	out=$("$FB_BINARY" token verify -c "$B" "$@")
	rc=$?
	set -e
	[ "$rc" = 1 ] || fail "expected exit 1 for $want, got $rc ($out)"
	[ "$out" = "{\"decision\":\"deny\",\"reason\":\"$want\"}" ] || fail "expected $want, got $out"
	ok "token verify denies: $want"
}
check_deny cert_mismatch --tenant HWqHczeM2P --peer-cert "$keys/b-to-a.cert.pem" "$token"
check_deny sender_mismatch --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" --sender fid:0/HZnKEBoqDU/1 "$token"
check_deny wrong_audience --tenant Lq8sT2mZx4 --peer-cert "$keys/a-to-b.cert.pem" "$token"
check_deny malformed --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "${token%?????}"
set +e
"$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P "$token" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || fail "missing --peer-cert exited $rc, expected 2"
ok "usage errors exit 2"

# B's bridge: JWKS on its public listener, /validate on its relays' own.
start_bridge "$B" "$FB_TMP/b.log" --relay-listen 127.0.0.1:0
public="http://127.0.0.1:$BRIDGE_PORT"
[ -n "$BRIDGE_RELAY_PORT" ] || fail "no relay listener: $(cat "$FB_TMP/b.log")"
base="http://127.0.0.1:$BRIDGE_RELAY_PORT"
curl -fsS -D "$FB_TMP/h" "$public/.well-known/jwks.json" >"$FB_TMP/jwks" || fail "GET jwks"
[ "$(cat "$FB_TMP/jwks")" = "$("$FB_BINARY" keys jwks -c "$B")" ] || fail "served JWKS differs from keys jwks"
grep -qi '^cache-control: public, max-age=' "$FB_TMP/h" || fail "JWKS without caching headers"
ok "GET /.well-known/jwks.json serves B's keys with caching headers"

s256=$(cert_s256 "$keys/a-to-b.cert.pem")
escaped=$(cert_escaped "$keys/a-to-b.cert.pem")
code=$(curl -s -o "$FB_TMP/body" -D "$FB_TMP/h" -w '%{http_code}' -X POST "$base/validate" \
	-H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $escaped")
[ "$code" = 200 ] || fail "POST /validate gave $code: $(cat "$FB_TMP/body")"
grep -qi '^x-fed-fid: fid:0/HZnKEBoqDU/100401' "$FB_TMP/h" || fail "no X-Fed-Fid header"
grep -qi '^x-fed-tid: HZnKEBoqDU' "$FB_TMP/h" || fail "no X-Fed-Tid header"
ok "POST /validate allows with the escaped PEM: $(cat "$FB_TMP/body")"
code=$(curl -s -o "$FB_TMP/body" -w '%{http_code}' "$base/validate" \
	-H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $escaped")
[ "$code" = 200 ] || fail "GET /validate with an escaped PEM gave $code: $(cat "$FB_TMP/body")"
ok "GET /validate allows with the escaped PEM (as nginx sends it)"

# One peer-certificate header, the configured one: the other, both, or one twice is
# refused before any decision (what a relay that passes a sender's headers on sends).
header_refused() { # what curl-args...
	what=$1
	shift
	code=$(curl -s -o "$FB_TMP/body" -D "$FB_TMP/h" -w '%{http_code}' "$base/validate" \
		-H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" "$@")
	[ "$code" = 400 ] || fail "/validate with $what gave $code, expected 400: $(cat "$FB_TMP/body")"
	grep -qi '^x-fed-reason: peer_cert_header' "$FB_TMP/h" || fail "no X-Fed-Reason for $what"
	ok "/validate refuses $what (400 peer_cert_header)"
}
header_refused "the thumbprint header when the PEM one is configured" -H "X-Fed-Peer-Cert-S256: $s256"
header_refused "both headers" -H "X-Fed-Peer-Cert: $escaped" -H "X-Fed-Peer-Cert-S256: $s256"
header_refused "the PEM header twice" -H "X-Fed-Peer-Cert: $escaped" -H "X-Fed-Peer-Cert: $escaped"
grep -q 'refused: 1 X-Fed-Peer-Cert and 1 X-Fed-Peer-Cert-S256 header(s)' "$FB_TMP/b.log" ||
	fail "the refusal was not logged: $(tail -5 "$FB_TMP/b.log")"
curl -s "$public/metrics" | grep -qx 'fedbridge_relay_bad_requests_total{reason="peer_cert_header"} 3' ||
	fail "refusals not counted: $(curl -s "$public/metrics" | grep bad_requests)"
ok "each refusal logged and counted (fedbridge_relay_bad_requests_total 3)"

# The relays' listener is theirs alone: the public one has no /validate, the relay one
# nothing but /validate and health.
code=$(curl -s -o /dev/null -w '%{http_code}' "$public/validate" -H "Authorization: Fed $token" \
	-H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $escaped")
[ "$code" = 404 ] || fail "the public listener answered /validate with $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/.well-known/jwks.json")
[ "$code" = 404 ] || fail "the relay listener answered /.well-known/jwks.json with $code"
curl -fsS -o /dev/null "$base/healthz" || fail "the relay listener has no /healthz"
ok "/validate only on the relay listener (404 on the public one), which serves nothing else but health"

validate_deny() { # status reason curl-args...
	want_code=$1 want=$2
	shift 2
	code=$(curl -s -o "$FB_TMP/body" -D "$FB_TMP/h" -w '%{http_code}' "$base/validate" "$@")
	[ "$code" = "$want_code" ] || fail "expected $want_code for $want, got $code: $(cat "$FB_TMP/body")"
	grep -q "\"reason\":\"$want\"" "$FB_TMP/body" || fail "expected $want: $(cat "$FB_TMP/body")"
	if [ "$want_code" = 401 ]; then
		grep -qi "^www-authenticate: Fed error=\"$want\"" "$FB_TMP/h" || fail "no WWW-Authenticate for $want"
	fi
	ok "/validate denies $want with $code"
}
validate_deny 401 cert_mismatch -H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" \
	-H "X-Fed-Peer-Cert: $(cert_escaped "$keys/b-to-a.cert.pem")"
validate_deny 401 cert_mismatch -H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P"
validate_deny 403 wrong_audience -H "Authorization: Fed $token" -H "X-Fed-Tenant: Lq8sT2mZx4" \
	-H "X-Fed-Peer-Cert: $escaped"
validate_deny 403 sender_mismatch -H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" \
	-H "X-Fed-Peer-Cert: $escaped" -H "X-Fed-Sender: fid:0/HZnKEBoqDU/999"
validate_deny 401 malformed -H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $escaped"

# B's relay: nginx with mTLS (B's CA, which signed A's client certificate) and
# auth_request to B's bridge for every message, in front of a stand-in inbox.
command -v nginx >/dev/null 2>&1 || fail "nginx is not installed (scripts/deps.sh test installs it)"
relay_port=$(free_port)
inbox_port=$(free_port)
start_nginx "$relay_port" 1 < <(relay_inbound "$relay_port" "$BRIDGE_RELAY_PORT" "$inbox_port" "$keys" HWqHczeM2P
	cat <<NGINX
	# The stand-in messenger inbox: shows what the relay passed on.
	server {
		listen 127.0.0.1:$inbox_port;
		location = /inbox {
			default_type text/plain;
			return 200 "inbox: from=\$http_x_fed_fid attrs=\$http_x_fed_attrs\n";
		}
	}
NGINX
)
relay() { # client-cert client-key curl-args...
	cert=$1 key=$2
	shift 2
	curl -s -o "$FB_TMP/body" -w '%{http_code}' --cacert "$keys/b-ca.pem" --cert "$cert" --key "$key" \
		--resolve "federation.b.example:$relay_port:127.0.0.1" "https://federation.b.example:$relay_port/inbox" "$@"
}
code=$(relay "$keys/a-to-b.cert.pem" "$keys/a-to-b.key.pem" -H "Authorization: Fed $token")
[ "$code" = 200 ] || fail "relay refused a good message: $code $(cat "$FB_TMP/body") $(cat "$FB_TMP/nginx/logs/error.log")"
grep -q 'inbox: from=fid:0/HZnKEBoqDU/100401 attrs={"department":"sales","email":"alice@a.example"}' "$FB_TMP/body" ||
	fail "inbox got: $(cat "$FB_TMP/body")"
ok "through the relay: $(cat "$FB_TMP/body")"

# The same token replayed by another client that B's CA also trusts: mTLS passes, cnf does not.
openssl req -new -newkey rsa:2048 -nodes -keyout "$FB_TMP/other.key" -out "$FB_TMP/other.csr" \
	-subj "/CN=installation_A" 2>/dev/null
openssl x509 -req -in "$FB_TMP/other.csr" -CA "$keys/b-ca.pem" -CAkey "$keys/b-ca.key" \
	-CAcreateserial -out "$FB_TMP/other.pem" -days 1 2>/dev/null
code=$(relay "$FB_TMP/other.pem" "$FB_TMP/other.key" -H "Authorization: Fed $token")
[ "$code" = 401 ] || fail "relay let a replayed token through with another certificate: $code"
ok "relay refuses the token replayed with another client certificate (401)"
# ... and with the thumbprint the token is bound to claimed in a header of its own, and
# the relay's own headers forged: the guide's relay passes none of them to the bridge.
code=$(relay "$FB_TMP/other.pem" "$FB_TMP/other.key" -H "Authorization: Fed $token" \
	-H "X-Fed-Peer-Cert-S256: $s256" -H "X-Fed-Peer-Cert: $escaped" -H "X-Fed-Tenant: HWqHczeM2P")
[ "$code" = 401 ] || fail "relay let a replayed token through with a forged X-Fed-Peer-Cert-S256: $code $(cat "$FB_TMP/body")"
ok "relay refuses the replayed token with forged X-Fed-Peer-Cert(-S256) headers (401: they never reach the bridge)"
code=$(relay "$keys/a-to-b.cert.pem" "$keys/a-to-b.key.pem" -H "Authorization: Fed $token" -H "X-Fed-Sender: fid:0/HZnKEBoqDU/2")
[ "$code" = 403 ] || fail "relay let a forged sender through: $code"
ok "relay refuses a message whose claimed sender is not the token's (403)"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$keys/b-ca.pem" \
	--resolve "federation.b.example:$relay_port:127.0.0.1" "https://federation.b.example:$relay_port/inbox" \
	-H "Authorization: Fed $token")
[ "$code" = 400 ] || fail "relay accepted a connection without a client certificate: $code"
ok "relay requires a client certificate (400 without one)"
# A relay that gives the thumbprint instead (relay_peer_cert_header, applied on reload):
# then the thumbprint header is taken and the PEM one refused.
sed -i 's/^installation:$/installation:\n  relay_peer_cert_header: X-Fed-Peer-Cert-S256/' "$B"
kill -HUP "$BRIDGE_PID"
wait_for "$FB_TMP/b.log" "configuration reloaded: generation 2"
code=$(curl -s -o "$FB_TMP/body" -w '%{http_code}' "$base/validate" \
	-H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert-S256: $s256")
[ "$code" = 200 ] || fail "/validate with the thumbprint header configured gave $code: $(cat "$FB_TMP/body")"
header_refused "the PEM header when the thumbprint one is configured" -H "X-Fed-Peer-Cert: $escaped"
ok "relay_peer_cert_header X-Fed-Peer-Cert-S256: the thumbprint allowed, the PEM header refused"

# Two tenants of one installation trust each other the same way (full.yaml).
full="$FB_TMP/examples/full.yaml"
local_token=$("$FB_BINARY" token issue -c "$full" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/7 \
	--audience Lq8sT2mZx4 --attr email=x@a.example) || fail "token issue between local tenants"
out=$("$FB_BINARY" token verify -c "$full" --tenant Lq8sT2mZx4 \
	--peer-cert "$FB_TMP/examples/keys/client_B.cert.pem" "$local_token") || fail "local trust: $out"
ok "a trust between two tenants of one installation: $out"
if "$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/1 \
	--audience HWqHczeM2P --attr phone=123 2>"$FB_TMP/err"; then
	fail "token issue released an attribute the trust does not release"
fi
grep -q "attribute phone is not released to installation_B" "$FB_TMP/err" || fail "$(cat "$FB_TMP/err")"
ok "token issue refuses attributes the trust does not release"
echo "token_pair: $n passed, 0 failed"
