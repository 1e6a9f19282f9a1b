#!/bin/bash
# A remote found through DNS, like Wire's _wire-server-federator._tcp: B's
# trust in A names only A's domain; a real DNS server (Debian's dnsmasq, on
# loopback) answers the SRV record _fedbridge._tcp.a.localhost with A's
# bridge, served over TLS by nginx with a certificate of A's federation CA
# (names under .localhost are loopback: libcurl resolves them so); B reads
# A's /.well-known/fedbridge there (name, tenants, CA, issuer, relay) and its
# keys. A token of A is then allowed at B, revocations flow through the feed
# at the discovered issuer, and a record pointing elsewhere, a missing record
# or another CA are refused. The attack: an impostor bridge that names A, its
# tenants and its CA (all public) but serves its own keys, reached through the
# SRV answer over plain HTTP, over TLS with another CA's certificate, or over
# TLS with A's certificate under another name, never gets its keys trusted, not
# at load nor when DNS turns against B later; tokens with unknown kids prompt
# at most one rediscovery per keys.rediscover_min.
. "$(dirname "$0")/lib.sh"
command -v dnsmasq >/dev/null 2>&1 || fail "dnsmasq is needed; scripts/deps.sh test installs dnsmasq-base"
command -v nginx >/dev/null 2>&1 || fail "nginx is needed; scripts/deps.sh test installs nginx"

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
A="$pair/installation-a.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }

pa=$(free_port)  # A's bridge (plain HTTP, behind nginx)
ps=$(free_port)  # nginx: A's bridge over TLS, certificate of A's CA
pb=$(free_port)
pi=$(free_port)  # nginx: the impostor over plain HTTP
pe=$(free_port)  # nginx: the impostor over TLS, certificate of another CA
pw=$(free_port)  # nginx: B's bridge over TLS, certificate of A's CA (a record gone wrong)
pr=$(free_port)  # nginx: A's document, certificate of A's CA, naming a relay off the domain
pd=$(free_port)  # nginx: A's document, certificate of A's CA, claiming the domain co.uk
dns=$(free_port)

# server_cert CA NAME HOST...: a TLS server certificate for HOSTs signed by CA.
server_cert() {
	ca=$1 name=$2
	shift 2
	san=$(printf 'DNS:%s,' "$@")
	openssl req -new -newkey rsa:2048 -nodes -keyout "$keys/$name.key" -out "$keys/$name.csr" \
		-subj "/CN=$1" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "${san%,}" >"$keys/$name.ext"
	openssl x509 -req -in "$keys/$name.csr" -CA "$keys/$ca.pem" -CAkey "$keys/$ca.key" \
		-CAcreateserial -out "$keys/$name.pem" -days 2 -extfile "$keys/$name.ext" 2>/dev/null
}
# A's bridge names: sso.a.localhost (its issuer) and sso.far.localhost (a name of A's
# that another domain's record points at).
server_cert a-ca a-bridge sso.a.localhost sso.far.localhost
server_cert a-ca b-bridge sso.wrong.localhost
# Names of A's CA serving altered copies of A's document (r: its relay, d: its domain).
server_cert a-ca rd-bridge sso.r.localhost sso.d.localhost
# The impostor's certificate comes from a CA of its own (any public CA would do).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$keys/evil-ca.key" -out "$keys/evil-ca.pem" \
	-days 2 -subj "/CN=public CA" 2>/dev/null
server_cert evil-ca evil-bridge sso.evil.localhost

sed -i "s/^  listen: 127.0.0.1:8081/  listen: 127.0.0.1:$pa/; s|^  public_url: https://sso.a.example|  public_url: https://sso.a.localhost:$ps\n  relay: federation.a.localhost:443|" "$A"
"$FB_BINARY" serve -c "$A" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on"

# The impostor: an installation_A of its own (A's configuration, another signing key)
# to sign tokens, and web servers answering /.well-known/fedbridge with A's trust
# export (name, tenants, CA, issuer: all public) but its own keys and key set URL.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/imp-signing.pem" 2>/dev/null
I="$pair/impostor.yaml"
sed -e "s|keys/a-signing.pem|keys/imp-signing.pem|" -e "s|^store: embedded:state-a|store: embedded:state-imp|" "$A" >"$I"
"$FB_BINARY" trust export -c "$A" --out "$FB_TMP/a.trust.json" 2>"$FB_TMP/err" || fail "trust export at A: $(cat "$FB_TMP/err")"
"$FB_BINARY" trust export -c "$I" --out "$FB_TMP/imp.trust.json" 2>"$FB_TMP/err" ||
	fail "trust export at the impostor: $(cat "$FB_TMP/err")"
imp_site() { # DIR JWKS_URL
	mkdir -p "$1/.well-known"
	jq -c .jwks "$FB_TMP/imp.trust.json" >"$1/.well-known/jwks.json"
	jq --slurpfile imp "$FB_TMP/imp.trust.json" --arg uri "$2" '.jwks = $imp[0].jwks | .jwks_uri = $uri' \
		"$FB_TMP/a.trust.json" >"$1/.well-known/fedbridge"
}
mkdir -p "$FB_TMP/nginx" "$FB_TMP/nginx/relay-off/.well-known" "$FB_TMP/nginx/domain-suffix/.well-known"
imp_site "$FB_TMP/nginx/imp-plain" "http://127.0.0.1:$pi/.well-known/jwks.json"
imp_site "$FB_TMP/nginx/imp-tls" "https://sso.evil.localhost:$pe/.well-known/jwks.json"
chmod 711 "$FB_TMP" # nginx's workers read the impostor's files

start_nginx "$ps" 1 <<NGINX
	server {
		listen 127.0.0.1:$ps ssl;
		ssl_certificate $keys/a-bridge.pem;
		ssl_certificate_key $keys/a-bridge.key;
		location / { proxy_pass http://127.0.0.1:$pa; }
	}
	server {
		listen 127.0.0.1:$pe ssl;
		ssl_certificate $keys/evil-bridge.pem;
		ssl_certificate_key $keys/evil-bridge.key;
		root $FB_TMP/nginx/imp-tls;
		default_type application/json;
	}
	server {
		listen 127.0.0.1:$pi;
		root $FB_TMP/nginx/imp-plain;
		default_type application/json;
	}
	server {
		listen 127.0.0.1:$pr ssl;
		ssl_certificate $keys/rd-bridge.pem;
		ssl_certificate_key $keys/rd-bridge.key;
		root $FB_TMP/nginx/relay-off;
		default_type application/json;
	}
	server {
		listen 127.0.0.1:$pd ssl;
		ssl_certificate $keys/rd-bridge.pem;
		ssl_certificate_key $keys/rd-bridge.key;
		root $FB_TMP/nginx/domain-suffix;
		default_type application/json;
	}
	server {
		listen 127.0.0.1:$pw ssl;
		ssl_certificate $keys/b-bridge.pem;
		ssl_certificate_key $keys/b-bridge.key;
		location / { proxy_pass http://127.0.0.1:$pb; }
	}
NGINX
curl -sf --cacert "$keys/a-ca.pem" "https://sso.a.localhost:$ps/.well-known/fedbridge" >"$FB_TMP/disco.json" ||
	fail "GET /.well-known/fedbridge"
grep -q '"installation": "installation_A"' "$FB_TMP/disco.json" || fail "discovery document: $(cat "$FB_TMP/disco.json")"
curl -sf --cacert "$keys/evil-ca.pem" "https://sso.evil.localhost:$pe/.well-known/fedbridge" >"$FB_TMP/imp.json" ||
	fail "GET the impostor's /.well-known/fedbridge"
for k in installation tenants ca issuer; do
	[ "$(jq -c ".$k" "$FB_TMP/imp.json")" = "$(jq -c ".$k" "$FB_TMP/disco.json")" ] ||
		fail "the impostor does not copy A's $k: $(cat "$FB_TMP/imp.json")"
done
[ "$(jq -c .jwks "$FB_TMP/imp.json")" != "$(jq -c .jwks "$FB_TMP/disco.json")" ] || fail "the impostor serves A's keys"
cmp -s "$FB_TMP/nginx/imp-plain/.well-known/jwks.json" <(curl -sf "http://127.0.0.1:$pi/.well-known/jwks.json") ||
	fail "the impostor's key set over plain HTTP"
ok "A serves its trust export at /.well-known/fedbridge over TLS (A's CA); the impostor the same name, tenants, CA and issuer with its own keys"
# altered_site DIR HOST:PORT JQ: A's document and keys, served by a holder of a certificate
# of A's CA under HOST, its issuer and jwks_uri there, then JQ applied.
altered_site() {
	jq -c .jwks "$FB_TMP/disco.json" >"$1/.well-known/jwks.json"
	jq --arg at "https://$2" '.issuer = $at | .jwks_uri = ($at + "/.well-known/jwks.json") | '"$3" \
		"$FB_TMP/disco.json" >"$1/.well-known/fedbridge"
}
altered_site "$FB_TMP/nginx/relay-off" "sso.r.localhost:$pr" '.relay = "federation.evil.example:443"'
altered_site "$FB_TMP/nginx/domain-suffix" "sso.d.localhost:$pd" '.domain = "co.uk" | .relay = "federation.d.localhost:443"'

# B's bridge, which the record of wrong.example points at (it is installation_B).
b_conf() { # DISCOVER CA
	cat <<YAML
installation: {name: installation_B, domain: b.example, public_url: "http://127.0.0.1:$pb", listen: "127.0.0.1:$pb", resolver: "127.0.0.1:$dns", ca: keys/b-ca.pem}
keys: {signing: [keys/b-signing.pem], fid_secret: keys/b-fid.secret, refetch_min: 1s, rediscover_min: 3s}
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

# start_dns LOG [a.localhost's record]: dnsmasq on the resolver port; sets DNS_PID.
start_dns() {
	dnsmasq --keep-in-foreground --port="$dns" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
		--no-hosts --conf-file=/dev/null --pid-file="$FB_TMP/$1.pid" --user="$(id -un)" \
		--log-facility="$FB_TMP/$1.log" --log-queries \
		--srv-host="_fedbridge._tcp.a.localhost,${2:-sso.a.localhost,$ps},10,100" \
		--srv-host="_fedbridge._tcp.a.localhost,127.0.0.1,9,20,100" \
		--srv-host="_fedbridge._tcp.wrong.localhost,sso.wrong.localhost,$pw,10,100" \
		--srv-host="_fedbridge._tcp.plain.localhost,127.0.0.1,$pi,10,100" \
		--srv-host="_fedbridge._tcp.evil.localhost,sso.evil.localhost,$pe,10,100" \
		--srv-host="_fedbridge._tcp.host.localhost,sso.host.localhost,$ps,10,100" \
		--srv-host="_fedbridge._tcp.far.localhost,sso.far.localhost,$ps,10,100" \
		--srv-host="_fedbridge._tcp.r.localhost,sso.r.localhost,$pr,10,100" \
		--srv-host="_fedbridge._tcp.d.localhost,sso.d.localhost,$pd,10,100" 2>"$FB_TMP/$1.err" &
	DNS_PID=$!
	FB_PIDS="$FB_PIDS $DNS_PID"
	wait_for "$FB_TMP/$1.log" "started, version"
}
start_dns dnsmasq

token=$("$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --attr email=alice@a.example --sid srvtestsession0000001A) || fail "token issue at A"
token2=$("$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100402 \
	--audience HWqHczeM2P --attr email=bob@a.example --sid srvtestsession0000002A) || fail "token issue at A"
imp_token=$("$FB_BINARY" token issue -c "$I" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --attr email=alice@a.example --sid srvtestsession0000003A) || fail "token issue at the impostor"

b_conf a.localhost keys/a-ca.pem >"$B"
"$FB_BINARY" check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/out" "$FB_TMP/err")"
# B's IdP (idp.b.example) is not there in this test: a warning about it, none about the trust.
grep -q "1 trust" "$FB_TMP/out" && ! grep -q "warning: trust" "$FB_TMP/err" ||
	fail "check: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "query\[SRV\] _fedbridge._tcp.a.localhost from 127.0.0.1" "$FB_TMP/dnsmasq.log" ||
	fail "the SRV record was not asked at the configured resolver: $(cat "$FB_TMP/dnsmasq.log")"
ok "check: the trust is found through _fedbridge._tcp.a.localhost at the configured resolver, no warning about it"
out=$("$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token") ||
	fail "token verify: $out"
[ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100401","tid":"HZnKEBoqDU","attrs":{"email":"alice@a.example"}}' ] ||
	fail "allow: $out"
ok "A's token is allowed at B, with A's issuer and keys from the record with the lowest priority"
"$FB_BINARY" trust show -c "$B" | grep -q "discover     _fedbridge._tcp.a.localhost (relay, issuer and keys)" ||
	fail "trust show: $("$FB_BINARY" trust show -c "$B")"
ok "trust show names the SRV record"

# The running bridge: found at load, /validate, and the revocation feed at the found issuer.
"$FB_BINARY" serve -c "$B" 2>"$FB_TMP/b.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/b.log" "listening on"
b_started=$(date +%s)
grep -q "trust installation_A: found through _fedbridge._tcp.a.localhost: issuer https://sso.a.localhost:$ps, relay federation.a.localhost:443" "$FB_TMP/b.log" ||
	fail "B's log: $(cat "$FB_TMP/b.log")"
peer=$(cert_escaped "$keys/a-to-b.cert.pem")
validate() { # [TOKEN]
	curl -s -o "$FB_TMP/body" -w '%{http_code}' "http://127.0.0.1:$pb/validate" -H "Authorization: Fed ${1:-$token}" \
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
ok "a revocation at A reaches B through the feed at the discovered issuer (over TLS, A's CA)"

# Tokens with a kid B lacks (the impostor's) prompt a rediscovery at most once per
# keys.rediscover_min (3 s here, refetch_min 1 s): a burst over 2.5 s makes one.
srv_queries() { grep -c "query\[SRV\] _fedbridge._tcp.a.localhost from" "$1"; }
while [ "$(date +%s)" -lt $((b_started + 4)) ]; do sleep 0.1; done
q0=$(srv_queries "$FB_TMP/dnsmasq.log")
burst_end=$(($(date +%s%N) + 2500000000))
sent=0
while [ "$(date +%s%N)" -lt "$burst_end" ]; do
	[ "$(validate "$imp_token")" = 401 ] || fail "the impostor's token at B: $(cat "$FB_TMP/body")"
	sent=$((sent + 1))
	sleep 0.05
done
deadline=$(($(date +%s) + 10))
until [ "$(srv_queries "$FB_TMP/dnsmasq.log")" -gt "$q0" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "an unknown kid prompted no rediscovery: $(cat "$FB_TMP/b.log")"
	sleep 0.05
done
q1=$(srv_queries "$FB_TMP/dnsmasq.log")
[ "$q1" = $((q0 + 1)) ] || fail "$sent tokens with an unknown kid in 2.5 s prompted $((q1 - q0)) rediscoveries, not 1"
rediscovered=$(date +%s)
ok "$sent tokens with an unknown kid in 2.5 s prompted one rediscovery (keys.rediscover_min)"

# DNS turns: a.localhost's record now names the impostor over TLS. The next rediscovery
# fails to prove anything; B keeps A's issuer and keys and says so.
kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null || true
start_dns dnsmasq2 "sso.evil.localhost,$pe"
while [ "$(date +%s)" -lt $((rediscovered + 4)) ]; do sleep 0.1; done
[ "$(validate "$imp_token")" = 401 ] || fail "the impostor's token at B: $(cat "$FB_TMP/body")"
wait_for "$FB_TMP/b.log" "trust installation_A: fetching keys from _fedbridge._tcp.a.localhost failed (.*sso.evil.localhost.*); keeping the last good set (1 keys)"
grep -q "query\[SRV\] _fedbridge._tcp.a.localhost from" "$FB_TMP/dnsmasq2.log" || fail "no rediscovery after the turn"
[ "$(validate "$imp_token")" = 401 ] && grep -q '"reason":"unknown_key"' "$FB_TMP/body" ||
	fail "the impostor's token after a rediscovery through its record: $(cat "$FB_TMP/body")"
[ "$(validate "$token2")" = 200 ] || fail "A's token after a failed rediscovery: $(cat "$FB_TMP/body")"
curl -sf "http://127.0.0.1:$pb/metrics" | grep -q 'fedbridge_remote_keys_fetch_failures_total{remote="installation_A"} 1' ||
	fail "failed rediscovery not counted: $(curl -s "http://127.0.0.1:$pb/metrics" | grep -i remote)"
ok "a rediscovery through a record naming the impostor fails, is logged and counted; A's issuer and keys stay"

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
refused nosrv.localhost keys/a-ca.pem "no SRV record _fedbridge._tcp.nosrv.localhost"
ok "no SRV record: refused, naming the record"
# B's bridge over TLS with a certificate of A's CA: proven, but not installation_A.
refused wrong.localhost keys/a-ca.pem "is installation installation_B, not installation_A"
ok "a record pointing at another installation's bridge: refused"
refused a.localhost keys/b-ca.pem "unable to get local issuer certificate"
ok "a bridge whose certificate is not of the trust's ca: refused"
refused plain.localhost keys/a-ca.pem "_fedbridge._tcp.plain.localhost -> https://127.0.0.1:$pi/.well-known/fedbridge (with the trust.s ca .*keys/a-ca.pem alone): .*wrong version number"
ok "the impostor over plain HTTP (naming A, its tenants and CA, with its own keys): refused"
refused evil.localhost keys/a-ca.pem "sso.evil.localhost.*unable to get local issuer certificate"
ok "the impostor over TLS with another CA's certificate: refused"
refused host.localhost keys/a-ca.pem "no alternative certificate subject name matches target host name 'sso.host.localhost'"
ok "a certificate of A's CA for another name than the SRV target: refused"
refused far.localhost keys/a-ca.pem "names issuer https://sso.a.localhost:$ps, not an https URL on far.localhost or a host under it"
ok "a proven bridge whose issuer is not under the trust's domain: refused"
refused r.localhost keys/a-ca.pem "https://sso.r.localhost:$pr/.well-known/fedbridge names relay federation.evil.example:443, not host:port on r.localhost or a host under it"
ok "a proven bridge whose relay is not under the trust's domain: refused"
refused d.localhost keys/a-ca.pem "https://sso.d.localhost:$pd/.well-known/fedbridge: \"domain\": domain co.uk is a public suffix"
ok "a proven bridge claiming a public suffix as its domain: refused"
echo "srv_discovery: $n checks passed"
