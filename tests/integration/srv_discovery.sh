#!/bin/bash
# A remote found through DNS, like Wire's _wire-server-federator._tcp: B's
# trust in A names only A's domain; a real DNS server (Debian's dnsmasq, on
# loopback) answers the SRV record _fedbridge._tcp.a.example with A's bridge;
# B reads A's /.well-known/fedbridge there (name, tenants, CA, issuer, relay)
# and its keys. A token of A is then allowed at B, revocations flow through
# the feed at the discovered issuer, and a record pointing elsewhere, a
# missing record or another CA are refused.
. "$(dirname "$0")/lib.sh"
command -v dnsmasq >/dev/null 2>&1 || fail "dnsmasq is needed; scripts/deps.sh test installs dnsmasq-base"

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
A="$pair/installation-a.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }

pa=$(free_port)
pb=$(free_port)
dns=$(free_port)
sed -i "s/^  listen: 127.0.0.1:8081/  listen: 127.0.0.1:$pa/; s|^  public_url: https://sso.a.example|  public_url: http://127.0.0.1:$pa|" "$A"
"$FB_BINARY" serve -c "$A" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on"
curl -sf "http://127.0.0.1:$pa/.well-known/fedbridge" >"$FB_TMP/disco.json" || fail "GET /.well-known/fedbridge"
grep -q '"installation": "installation_A"' "$FB_TMP/disco.json" || fail "discovery document: $(cat "$FB_TMP/disco.json")"
ok "A serves its trust export at /.well-known/fedbridge"

# B's bridge, which the record of wrong.example points at (it is installation_B).
b_conf() { # DISCOVER CA
	cat <<YAML
installation: {name: installation_B, domain: b.example, public_url: "http://127.0.0.1:$pb", listen: "127.0.0.1:$pb", resolver: "127.0.0.1:$dns", ca: keys/b-ca.pem}
keys: {signing: [keys/b-signing.pem], fid_secret: keys/b-fid.secret, refetch_min: 1s}
store: embedded:state-b-srv
tenants:
  - id: HWqHczeM2P
    providers:
      - {name: b-corp, type: oidc, issuer: "https://idp.b.example", client_id: fedbridge, client_secret_file: keys/b-fid.secret}
    mapping:
      - {provider: b-corp, fid: pairwise(claims.sub), attributes: {email: claims.email}}
    trusts:
      - remote: installation_A
        tenants: [HZnKEBoqDU]
        discover: $1
        ca: $2
        client_cert: keys/b-to-a.cert.pem
        client_key: keys/b-to-a.key.pem
        outbound: "true"
        release: [email]
        inbound: "true"
YAML
}
B="$pair/b-srv.yaml"

dnsmasq --keep-in-foreground --port="$dns" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
	--no-hosts --conf-file=/dev/null --pid-file="$FB_TMP/dnsmasq.pid" --user="$(id -un)" \
	--log-facility="$FB_TMP/dnsmasq.log" --log-queries \
	--srv-host="_fedbridge._tcp.a.example,127.0.0.1,$pa,10,100" \
	--srv-host="_fedbridge._tcp.a.example,127.0.0.1,9,20,100" \
	--srv-host="_fedbridge._tcp.wrong.example,127.0.0.1,$pb,10,100" 2>"$FB_TMP/dnsmasq.err" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/dnsmasq.log" "started, version"

token=$("$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --attr email=alice@a.example --sid srvtestsession0000001A) || fail "token issue at A"

b_conf a.example keys/a-ca.pem >"$B"
"$FB_BINARY" check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "1 trust$" "$FB_TMP/out" || fail "check: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "query\[SRV\] _fedbridge._tcp.a.example from 127.0.0.1" "$FB_TMP/dnsmasq.log" ||
	fail "the SRV record was not asked at the configured resolver: $(cat "$FB_TMP/dnsmasq.log")"
ok "check: the trust is found through _fedbridge._tcp.a.example at the configured resolver, no warning"
out=$("$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token") ||
	fail "token verify: $out"
[ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100401","tid":"HZnKEBoqDU","attrs":{"email":"alice@a.example"}}' ] ||
	fail "allow: $out"
ok "A's token is allowed at B, with A's issuer and keys from the record with the lowest priority"
"$FB_BINARY" trust show -c "$B" | grep -q "discover     _fedbridge._tcp.a.example (relay, issuer and keys)" ||
	fail "trust show: $("$FB_BINARY" trust show -c "$B")"
ok "trust show names the SRV record"

# The running bridge: found at load, /validate, and the revocation feed at the found issuer.
"$FB_BINARY" serve -c "$B" 2>"$FB_TMP/b.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/b.log" "listening on"
grep -q "trust installation_A: found through _fedbridge._tcp.a.example: issuer http://127.0.0.1:$pa, relay federation.a.example:443" "$FB_TMP/b.log" ||
	fail "B's log: $(cat "$FB_TMP/b.log")"
peer=$(cert_escaped "$keys/a-to-b.cert.pem")
validate() {
	curl -s -o "$FB_TMP/body" -w '%{http_code}' "http://127.0.0.1:$pb/validate" -H "Authorization: Fed $token" \
		-H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $peer"
}
[ "$(validate)" = 200 ] || fail "/validate at B: $(cat "$FB_TMP/body")"
ok "B's bridge logs what it found and allows A's token at /validate"
"$FB_BINARY" sessions revoke -c "$A" --sid srvtestsession0000001A >/dev/null || fail "revoke at A"
deadline=$(($(date +%s) + 15))
until [ "$(validate)" = 401 ] && grep -q '"reason":"revoked"' "$FB_TMP/body"; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "B did not apply A's revocation: $(cat "$FB_TMP/body")"
	sleep 0.1
done
ok "a revocation at A reaches B through the feed at the discovered issuer"

# Refusals: no record, a record pointing at another installation, another CA.
refused() { # DISCOVER CA PATTERN
	b_conf "$1" "$2" >"$pair/bad-srv.yaml"
	set +e
	"$FB_BINARY" token verify -c "$pair/bad-srv.yaml" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" \
		"$token" >"$FB_TMP/out" 2>"$FB_TMP/err"
	rc=$?
	set -e
	[ "$rc" = 2 ] || fail "discover $1 with $2: exit $rc ($(cat "$FB_TMP/out" "$FB_TMP/err"))"
	grep -q -- "$3" "$FB_TMP/err" || fail "discover $1: expected '$3': $(cat "$FB_TMP/err")"
}
refused nosrv.example keys/a-ca.pem "no SRV record _fedbridge._tcp.nosrv.example"
ok "no SRV record: refused, naming the record"
refused wrong.example keys/a-ca.pem "is installation installation_B, not installation_A"
ok "a record pointing at another installation's bridge: refused"
refused a.example keys/b-ca.pem "names another CA than the trust's ca"
ok "a bridge naming another CA than the trust holds: refused"
echo "srv_discovery: $n checks passed"
