#!/bin/bash
# Two installations federating end to end through mTLS relays, with no
# whitelist files. Everything runs on loopback in a scratch folder, removed at
# the end:
#
#   installation_A (tenant HZnKEBoqDU): fedbridge, an OpenID Connect provider
#     (oidc-provider), nginx as its relay federation.a.example
#   installation_B (tenant HWqHczeM2P): fedbridge, a SAML 2.0 IdP
#     (SimpleSAMLphp), nginx as its relay federation.b.example
#
# Each installation makes its CA and certificates the way the messenger's
# federation guide does; the admins exchange `fedbridge trust export` files
# instead of whitelists. alice logs in at A, bob at B; their messages go
# messenger -> own relay -> mTLS -> remote relay -> auth_request to the
# remote bridge's /validate -> the remote inbox. Then every refusal is shown
# with its reason, a key rotation and reloads under traffic.
#
# Usage: scripts/demo-federation.sh   (scripts/demo.sh installs and builds first)
#   FB_BINARY      the fedbridge binary (required)
#   FB_SOURCE_DIR  the source tree (default: this script's parent)
#   FB_DEMO_KEEP   set to keep the scratch folder
# Prints one line per step; exits 1 at the first step that does not go as
# described, naming it.
set -euo pipefail

: "${FB_BINARY:?FB_BINARY must name the fedbridge binary}"
src=${FB_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
fb() { "$FB_BINARY" "$@"; }

W=$(mktemp -d "${TMPDIR:-/tmp}/fedbridge-demo.XXXXXX")
pids=""
bridges="" # "pid:log" of each fedbridge serve: they must stop cleanly
cleanup() {
	local status=$? bad=""
	# The bridges first, one by one: SIGTERM, exit 0, and nothing from the sanitizers
	# (a build with ASan and LeakSanitizer reports leaks at exit and fails it).
	for b in $bridges; do
		kill "${b%%:*}" 2>/dev/null || true
		if ! wait "${b%%:*}" 2>/dev/null; then
			bad="$bad ${b#*:}"
		elif grep -q "LeakSanitizer\|AddressSanitizer\|runtime error:" "${b#*:}"; then
			bad="$bad ${b#*:}"
		fi
	done
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ -n "$bad" ]; then
		for f in $bad; do
			printf 'demo: FAILED: %s did not stop cleanly:\n' "$f" >&2
			tail -n 40 "$f" >&2
		done
		status=1
	fi
	[ -n "${FB_DEMO_KEEP:-}" ] || rm -rf "$W"
	exit "$status"
}
trap cleanup EXIT
started() { pids="$pids $1"; }
bridge_started() { bridges="$bridges $1:$2"; }

say() { printf '%s\n' "$*"; }
# die MESSAGE: names the failed step, then shows the tail of every log the demo
# wrote (the bridges', the relays', the IdPs', npm's), since the scratch folder
# holding them is removed on exit.
die() {
	local f
	printf 'demo: FAILED: %s\n' "$*" >&2
	while IFS= read -r f; do
		[ -s "$f" ] && { echo "--- tail of ${f#"$W"/}" >&2; tail -n 15 "$f" >&2; }
	done < <(find "$W" -name '*.log' -not -path '*/node_modules/*' | sort)
	exit 1
}
ms() { date +%s%3N; }
# wait_for FILE PATTERN [SECONDS] [PID]: polls a log (no fixed sleeps); stops
# waiting, failing, when PID has exited.
wait_for() {
	local deadline=$(($(date +%s) + ${3:-30}))
	until grep -q -- "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for '$2' in $1"
		[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || die "the process writing $1 exited before '$2'"
		sleep 0.05
	done
}
# A loopback port nobody listens on, never handed out twice.
free_port() {
	local p
	while :; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
		grep -qx "$p" "$W/ports" 2>/dev/null && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		echo "$p" >>"$W/ports"
		echo "$p"
		return
	done
}
wait_port() {
	local deadline=$(($(date +%s) + 30))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || die "nothing answers on port $1 ($2)"
		sleep 0.05
	done
}
json() { # KEY.PATH < JSON
	node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=process.argv[1].split(".").reduce((o,k)=>o==null?o:o[k],JSON.parse(s));console.log(v===undefined?"":typeof v==="object"?JSON.stringify(v):v)})' "$1"
}
urlenc() { printf '%s' "$1" | sed 's/%/%25/g; s/:/%3A/g; s/\//%2F/g; s/?/%3F/g; s/=/%3D/g; s/&/%26/g'; }

for tool in node npm nginx php openssl curl; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/deps.sh demo installs it)"
done
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' ||
	die "node $(node --version) at $(command -v node) is too old: the OpenID provider needs Node.js 20.18 or later (scripts/deps.sh demo brings one into .deps/node)"

A_TENANT=HZnKEBoqDU
B_TENANT=HWqHczeM2P
pa=$(free_port) pb=$(free_port) po=$(free_port) pi=$(free_port)
ra=$(free_port) rb=$(free_port) oa=$(free_port) ob=$(free_port) ia=$(free_port) ib=$(free_port)
va=$(free_port) vb=$(free_port) # the bridges' relay listeners (installation.relay_listen)
a="http://127.0.0.1:$pa"
b="http://127.0.0.1:$pb"
op="http://127.0.0.1:$po"
idp_base="http://127.0.0.1:$pi"
app_a="http://127.0.0.1:$ia/app" # the messengers' return_to (their web front ends)
app_b="http://127.0.0.1:$ib/app"

say "== fedbridge: two installations federating through mTLS relays, no whitelist files =="

# ---------------------------------------------------------------------------
# 1. Certificates, the way the messenger's federation guide makes them: each
# installation has its CA; it signs its relay's server certificate (with SAN)
# and, for each remote, a client certificate whose CN is that remote's name.
# The client certificate, its key and the CA go to the remote, who presents
# the certificate when its relay connects here.
# ---------------------------------------------------------------------------
pki() { # DIR NAME DOMAIN
	local d=$1/certs
	mkdir -p "$d" "$1/private"
	(
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/private/cakey.pem" \
			-out "$d/server.cacert.pem" -days 3650 -subj "/CN=$2 federation CA" 2>/dev/null
		openssl req -new -newkey rsa:2048 -nodes -keyout "$d/server.key.pem" -out "$d/server.csr.pem" \
			-subj "/CN=federation.$3" 2>/dev/null
		printf 'subjectAltName=DNS:federation.%s,IP:127.0.0.1\n' "$3" >"$d/server.ext"
		openssl x509 -req -in "$d/server.csr.pem" -CA "$d/server.cacert.pem" -CAkey "$1/private/cakey.pem" \
			-CAcreateserial -extfile "$d/server.ext" -out "$d/server.cert.pem" -days 365 2>/dev/null
	) || die "openssl: the certificates of $2"
	chmod 644 "$d/server.cacert.pem" "$d/server.cert.pem"
}
client_for() { # ISSUER_DIR REMOTE_NAME OUT_DIR: the issuer's CA signs CN=REMOTE_NAME
	mkdir -p "$3"
	(
		umask 077
		openssl req -new -newkey rsa:2048 -nodes -keyout "$3/client.key.pem" -out "$3/client.csr.pem" \
			-subj "/CN=$2" 2>/dev/null
		openssl x509 -req -in "$3/client.csr.pem" -CA "$1/certs/server.cacert.pem" \
			-CAkey "$1/private/cakey.pem" -CAcreateserial -out "$3/client.cert.pem" -days 365 2>/dev/null
	) || die "openssl: a client certificate for $2"
	chmod 644 "$3/client.cert.pem"
	cp "$1/certs/server.cacert.pem" "$3/client.cacert.pem"
}
pki "$W/a" installation_A a.example
pki "$W/b" installation_B b.example
client_for "$W/a" installation_B "$W/b/from-a" # A issues B's certificate toward A
client_for "$W/b" installation_A "$W/a/from-b"
client_for "$W/b" installation_C "$W/c-from-b"  # a third installation B also trusts at TLS level
say "pki: A and B each made a CA, a server certificate for federation.<domain> and a client certificate for the other (CN = its installation name)"

# ---------------------------------------------------------------------------
# 2. The IdPs and the bridges.
# ---------------------------------------------------------------------------
secret() { (umask 077 && printf '%s-%s\n' "$2" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$1"); }
for side in a b; do
	mkdir -p "$W/$side/keys" "$W/$side/trusts.d"
	chmod 700 "$W/$side/keys"
	secret "$W/$side/keys/fid.secret" fid
	secret "$W/$side/keys/messenger.secret" messenger
done
secret "$W/a/keys/op.secret" op

# A's OpenID provider: oidc-provider from tests/oidc-op's lock file.
mkdir -p "$W/oidc-op"
tar -C "$src/tests/oidc-op" --exclude=node_modules -cf - . | tar -C "$W/oidc-op" -xf -
(cd "$W/oidc-op" && npm ci --no-audit --no-fund --loglevel=error) >"$W/npm.log" 2>&1 ||
	die "npm ci in tests/oidc-op: $(tail -5 "$W/npm.log")"
cat >"$W/op.json" <<JSON
{ "host": "127.0.0.1", "port": $po, "issuer": "$op",
  "clients": [ { "client_id": "fedbridge", "client_secret": "$(cat "$W/a/keys/op.secret")",
    "redirect_uris": ["$a/oidc/callback"], "token_endpoint_auth_method": "client_secret_basic" } ],
  "users": [
    { "sub": "a-1001", "username": "alice", "password": "alice-pw",
      "claims": { "email": "Alice@A.example", "email_verified": true, "groups": ["staff", "federation"],
                  "department": "R&D", "name": "Alice" } },
    { "sub": "a-1003", "username": "carol", "password": "carol-pw",
      "claims": { "email": "carol@a.example", "email_verified": true, "groups": ["staff"],
                  "department": "Sales", "name": "Carol" } } ] }
JSON
node "$W/oidc-op/provider.mjs" "$W/op.json" >"$W/op.log" 2>&1 &
started $!
wait_for "$W/op.log" "^ready " 30 $!
op_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$W/oidc-op/node_modules/oidc-provider/package.json")

conf() { # SIDE NAME DOMAIN PORT RELAY_PORT TENANT PROVIDER_YAML MAPPING_YAML APP [RELAY_LISTEN_PORT]
	local relay_listen="" # the relay's own listener: /validate is answered only there
	[ -z "${10:-}" ] || relay_listen="  relay_listen: \"127.0.0.1:${10}\""
	cat <<YAML
# installation $2 of the fedbridge demo (scripts/demo-federation.sh)
installation:
  name: $2
  domain: $3
  public_url: "http://127.0.0.1:$4"
  listen: "127.0.0.1:$4"
$relay_listen
  relay: "federation.$3:$5"
  ca: certs/server.cacert.pem
keys:
  signing_dir: keys/signing
  fid_secret: keys/fid.secret
  refetch_min: 1s
store: embedded:state
tokens: {ttl: 5m, clock_skew: 1s}
tenants:
  - id: $6
    name: $2 corp
    providers:
$7
    mapping:
$8
    trusts_dir: trusts.d
    return_to: ["$9"]
    clients:
      - {client_id: messenger, client_secret_file: keys/messenger.secret}
YAML
}
conf a installation_A a.example "$pa" "$ra" "$A_TENANT" \
	"      - {name: corp, type: oidc, issuer: \"$op\", client_id: fedbridge, client_secret_file: keys/op.secret, scopes: [openid, email, profile, groups]}" \
	"      - provider: corp
        fid: pairwise(claims.sub)
        attributes: {email: lower(claims.email), department: claims.department, groups: claims.groups}
        require: claims.email_verified == true" "$app_a" "$va" >"$W/a/fedbridge.yaml"

# B's SAML IdP trusts B's service provider metadata, which B's bridge serves;
# B starts with a placeholder IdP, then loads SimpleSAMLphp's metadata.
(
	cd "$W/b/keys" && umask 077
	openssl req -x509 -newkey rsa:2048 -nodes -keyout sp.key -out sp.pem -days 365 -subj /CN=sp.b.example 2>/dev/null
	chmod 644 sp.pem
) || die "openssl: B's SP key"
cat >"$W/b/keys/placeholder-idp.xml" <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="$idp_base/saml2/idp/metadata.php">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$(grep -v CERTIFICATE "$W/b/keys/sp.pem" | tr -d '\n')</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$idp_base/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML
b_conf() { # IDP_METADATA
	conf b installation_B b.example "$pb" "$rb" "$B_TENANT" \
		"      - {name: corp, type: saml, idp_metadata: \"$1\", sp_key: keys/sp.key, sp_cert: keys/sp.pem}" \
		"      - provider: corp
        fid: first(attrs.uid)
        attributes: {email: lower(first(attrs.mail)), department: first(attrs.department)}" "$app_b" "$vb"
}
b_conf keys/placeholder-idp.xml >"$W/b/fedbridge.yaml"

for side in a b; do
	(cd "$W/$side" && fb keys rotate -c fedbridge.yaml >/dev/null) || die "keys rotate at $side"
	fb check -c "$W/$side/fedbridge.yaml" >/dev/null 2>"$W/$side/check.log" || die "check at $side: $(cat "$W/$side/check.log")"
	"$FB_BINARY" serve -c "$W/$side/fedbridge.yaml" --pid-file "$W/$side/fedbridge.pid" 2>"$W/$side/bridge.log" &
	bridge_started $! "$W/$side/bridge.log"
done
wait_for "$W/a/bridge.log" "listening on"
wait_for "$W/b/bridge.log" "listening on"
curl -sf "$b/saml/metadata/corp" >"$W/sp-b.xml" || die "GET B's /saml/metadata/corp"
cat >"$W/b-users" <<USERS
bob bob-pw 2001 Bob@B.example Sales staff
dave dave-pw 2002 dave@b.example Procurement staff
USERS
bash "$src/tests/integration/fixtures/saml/ssp.sh" "$W/ssp" "$pi" "$W/sp-b.xml" "$W/b-users" >"$W/ssp.log" 2>&1 &
started $!
deadline=$(($(date +%s) + 30))
until curl -sf -o "$W/idp.xml" "$idp_base/saml2/idp/metadata.php"; do
	[ "$(date +%s)" -lt "$deadline" ] || die "SimpleSAMLphp did not start: $(tail -5 "$W/ssp.log")"
	sleep 0.1
done
b_conf "$idp_base/saml2/idp/metadata.php" >"$W/b/fedbridge.yaml"
reload_bridge() { # SIDE: fedbridge reload, then wait for the bridge to say so
	local n
	n=$(grep -c "configuration reloaded" "$W/$1/bridge.log" || true)
	fb reload -c "$W/$1/fedbridge.yaml" --pid-file "$W/$1/fedbridge.pid" >/dev/null 2>"$W/$1/reload.err" ||
		die "fedbridge reload at $1: $(cat "$W/$1/reload.err")"
	local deadline=$(($(date +%s) + 20))
	until [ "$(grep -c "configuration reloaded" "$W/$1/bridge.log" || true)" -gt "$n" ]; do
		grep -q "reload rejected" "$W/$1/bridge.log" && die "reload rejected at $1"
		[ "$(date +%s)" -lt "$deadline" ] || die "no reload at $1"
		sleep 0.05
	done
}
reload_bridge b
ssp_version=$(dpkg-query -W -f='${Version}' simplesamlphp 2>/dev/null || echo "?")
nginx_version=$(nginx -v 2>&1 | sed 's/.*nginx\///')
say "setup: installation_A (tenant $A_TENANT): fedbridge at $a, OpenID provider oidc-provider $op_version at $op"
say "setup: installation_B (tenant $B_TENANT): fedbridge at $b, SAML IdP SimpleSAMLphp $ssp_version at $idp_base"

# ---------------------------------------------------------------------------
# 3. Trust, without whitelist files: each admin exports, the other imports.
# ---------------------------------------------------------------------------
fb trust export -c "$W/a/fedbridge.yaml" --out "$W/b/installation_A.trust.json" 2>"$W/a/export.log" ||
	die "trust export at A: $(cat "$W/a/export.log")"
fb trust export -c "$W/b/fedbridge.yaml" --out "$W/a/installation_B.trust.json" 2>"$W/b/export.log" ||
	die "trust export at B: $(cat "$W/b/export.log")"
fp_a=$(sed -n 's/.* \(SHA256:[A-Za-z0-9_-]*\) of .*/\1/p' "$W/a/export.log")
fp_b=$(sed -n 's/.* \(SHA256:[A-Za-z0-9_-]*\) of .*/\1/p' "$W/b/export.log")
fb trust import -c "$W/a/fedbridge.yaml" --client-cert "$W/a/from-b/client.cert.pem" \
	--client-key "$W/a/from-b/client.key.pem" --outbound "'federation' in principal.groups" \
	--release email,department --inbound "token.attrs.department != 'Procurement'" \
	"$W/a/installation_B.trust.json" >"$W/a/import.log" 2>&1 || die "trust import at A: $(cat "$W/a/import.log")"
fb trust import -c "$W/b/fedbridge.yaml" --client-cert "$W/b/from-a/client.cert.pem" \
	--client-key "$W/b/from-a/client.key.pem" --outbound true --release email,department --inbound true \
	"$W/b/installation_A.trust.json" >"$W/b/import.log" 2>&1 || die "trust import at B: $(cat "$W/b/import.log")"
grep -q "$fp_a" "$W/b/import.log" && grep -q "$fp_b" "$W/a/import.log" || die "fingerprints differ between export and import"
say "trust: A exported $fp_a; B imported it (same fingerprint): keys followed at $a/.well-known/jwks.json"
say "trust: B exported $fp_b; A imported it: outbound 'federation' in principal.groups, release email+department, inbound department != 'Procurement'"
for side in a b; do
	fb check -c "$W/$side/fedbridge.yaml" >"$W/$side/check.out" 2>&1 || die "check at $side: $(cat "$W/$side/check.out")"
	grep -q "ok: .*1 trust$" "$W/$side/check.out" || die "check at $side: $(cat "$W/$side/check.out")"
	reload_bridge "$side"
done
say "check: fedbridge check at A and at B: $(sed 's/.*: ok: /ok: /' "$W/a/check.out"); $(sed 's/.*: ok: /ok: /' "$W/b/check.out"); no warnings"

# ---------------------------------------------------------------------------
# 4. The relays: nginx with mTLS (ssl_verify_client on; the installation's CA
# signed the client certificates its remotes hold) and, per message, an
# auth_request to the local bridge's /validate before the inbox. Outbound,
# the relay presents the client certificate the remote issued and checks the
# remote's server certificate with the remote's CA.
# ---------------------------------------------------------------------------
relay() { # SIDE DOMAIN TENANT BRIDGE_PORT RELAY_PORT OUT_PORT INBOX_PORT REMOTE REMOTE_DOMAIN REMOTE_RELAY_PORT
	local d="$W/$1/nginx" t="$W/$1/trusts.d"
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<NGINX
worker_processes 2;
error_log $d/error.log warn;
pid $d/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	log_format inbox escape=none 'from=\$http_x_fed_fid tenant=\$http_x_fed_tid attrs=\$http_x_fed_attrs message="\$http_x_message"';
	# The bridge's relay listener (/validate), over kept-alive connections (docs/relay-guide.md).
	upstream bridge_$1 { server 127.0.0.1:$4; keepalive 16; }
	# federation.$2: what remote relays connect to.
	server {
		listen 127.0.0.1:$5 ssl;
		server_name federation.$2;
		ssl_certificate $W/$1/certs/server.cert.pem;
		ssl_certificate_key $W/$1/certs/server.key.pem;
		ssl_client_certificate $W/$1/certs/server.cacert.pem;
		ssl_verify_client on;
		ssl_verify_depth 1;
		location = /inbox {
			auth_request /_fed_validate;
			auth_request_set \$fed_fid \$upstream_http_x_fed_fid;
			auth_request_set \$fed_tid \$upstream_http_x_fed_tid;
			auth_request_set \$fed_attrs \$upstream_http_x_fed_attrs;
			auth_request_set \$fed_reason \$upstream_http_x_fed_reason;
			add_header X-Fed-Reason \$fed_reason always;
			proxy_set_header X-Fed-Fid \$fed_fid;
			proxy_set_header X-Fed-Tid \$fed_tid;
			proxy_set_header X-Fed-Attrs \$fed_attrs;
			proxy_pass http://127.0.0.1:$7/inbox;
		}
		location = /_fed_validate {
			internal;
			proxy_pass http://bridge_$1/validate;
			proxy_method HEAD;
			proxy_http_version 1.1;
			proxy_pass_request_body off;
			proxy_pass_request_headers off;
			proxy_set_header Connection "";
			proxy_set_header Content-Length "";
			proxy_set_header Authorization \$http_authorization;
			proxy_set_header X-Fed-Peer-Cert \$ssl_client_escaped_cert;
			proxy_set_header X-Fed-Tenant $3;
			proxy_set_header X-Fed-Sender \$http_x_fed_sender;
		}
	}
	# The local messenger sends to remotes here.
	server {
		listen 127.0.0.1:$6;
		location = /to/$8/inbox {
			proxy_pass https://127.0.0.1:${10}/inbox;
			proxy_ssl_certificate $t/$8.client.pem;
			proxy_ssl_certificate_key $t/$8.client.key;
			proxy_ssl_trusted_certificate $t/$8.ca.pem;
			proxy_ssl_verify on;
			proxy_ssl_name federation.$9;
			proxy_set_header Host federation.$9;
		}
	}
	# A stand-in messenger inbox: records and echoes what the relay passed on.
	server {
		listen 127.0.0.1:$7;
		location = /inbox {
			access_log $W/$1/inbox.log inbox;
			default_type text/plain;
			return 200 "delivered to $3: from=\$http_x_fed_fid attrs=\$http_x_fed_attrs\n";
		}
	}
}
NGINX
	nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' 2>"$d/stderr" &
	started $!
	wait_port "$5" "relay of $1"
	wait_port "$6" "relay of $1"
}
ia2=$(free_port) ib2=$(free_port)
relay a a.example "$A_TENANT" "$va" "$ra" "$oa" "$ia2" installation_B b.example "$rb"
relay b b.example "$B_TENANT" "$vb" "$rb" "$ob" "$ib2" installation_A a.example "$ra"
say "relays: nginx $nginx_version: federation.a.example:$ra and federation.b.example:$rb (mTLS, ssl_verify_client on, auth_request /validate per message)"

# ---------------------------------------------------------------------------
# 5. Logins through each installation's own IdP, and federation tokens.
# ---------------------------------------------------------------------------
browser() { node "$src/tests/oidc-op/browser.mjs" "$@"; }
login() { # BRIDGE APP USER PASSWORD -> the one-time code
	local back
	back=$(browser login --jar "$W/$3.jar" --user "$3" --password "$4" --stop "$2" \
		"$1/login/corp?return_to=$(urlenc "$2")") || die "login of $3: $back"
	case "$back" in "$2?code="*) printf '%s' "${back#"$2?code="}" ;; *) die "login of $3 ended at $back" ;; esac
}
token_post() { # BRIDGE SIDE FORM...
	local base=$1 side=$2 args=()
	shift 2
	for f in "$@"; do args+=(--data-urlencode "$f"); done
	curl -s -u "messenger:$(cat "$W/$side/keys/messenger.secret")" "${args[@]}" "$base/token"
}
code=$(login "$a" "$app_a" alice alice-pw)
resp=$(token_post "$a" a grant_type=authorization_code "code=$code" "redirect_uri=$app_a")
alice=$(printf '%s' "$resp" | json fid)
alice_tok=$(printf '%s' "$resp" | json "federation_tokens.$B_TENANT")
alice_refresh=$(printf '%s' "$resp" | json refresh_token)
[ -n "$alice_tok" ] || die "alice's token response: $resp"
say "login: alice at A through the OpenID provider -> $alice; federation token for $B_TENANT"
code=$(login "$b" "$app_b" bob bob-pw)
resp=$(token_post "$b" b grant_type=authorization_code "code=$code" "redirect_uri=$app_b")
bob=$(printf '%s' "$resp" | json fid)
bob_tok=$(printf '%s' "$resp" | json "federation_tokens.$A_TENANT")
[ -n "$bob_tok" ] || die "bob's token response: $resp"
say "login: bob at B through the SAML IdP -> $bob; federation token for $A_TENANT"

# ---------------------------------------------------------------------------
# 6. Messages through both relays.
# ---------------------------------------------------------------------------
send() { # OUT_PORT REMOTE TOKEN SENDER MESSAGE -> "CODE BODY-or-REASON"
	local code
	code=$(curl -s -o "$W/send.body" -D "$W/send.head" -w '%{http_code}' \
		-H "Authorization: Fed $3" -H "X-Fed-Sender: $4" -H "X-Message: $5" \
		"http://127.0.0.1:$1/to/$2/inbox")
	if [ "$code" = 200 ]; then
		printf '%s %s' "$code" "$(tr -d '\n' <"$W/send.body")"
	else
		printf '%s %s' "$code" "$(sed -n 's/^[Xx]-[Ff]ed-[Rr]eason: *\([a-z_]*\).*/\1/p' "$W/send.head")"
	fi
}
r=$(send "$oa" installation_B "$alice_tok" "$alice" "hello bob")
[ "${r%% *}" = 200 ] || die "alice -> B: $r"
say "send: alice -> installation_B via relay A, mTLS, relay B: ${r#200 }"
r=$(send "$ob" installation_A "$bob_tok" "$bob" "hello alice")
[ "${r%% *}" = 200 ] || die "bob -> A: $r"
say "send: bob -> installation_A via relay B, mTLS, relay A: ${r#200 }"
say "inbox of B: $(tail -1 "$W/b/inbox.log")"
say "inbox of A: $(tail -1 "$W/a/inbox.log")"
grep -q "from=$alice tenant=$A_TENANT attrs={\"department\":\"R&D\",\"email\":\"alice@a.example\"} message=\"hello bob\"" "$W/b/inbox.log" ||
	die "B's inbox holds: $(cat "$W/b/inbox.log")"
grep -q "from=$bob tenant=$B_TENANT attrs={\"department\":\"Sales\",\"email\":\"bob@b.example\"} message=\"hello alice\"" "$W/a/inbox.log" ||
	die "A's inbox holds: $(cat "$W/a/inbox.log")"

# ---------------------------------------------------------------------------
# 7. Refusals, each with its reason.
# ---------------------------------------------------------------------------
refused=0
refusal() { refused=$((refused + 1)); say "refuse: $*"; }

code=$(login "$a" "$app_a" carol carol-pw)
resp=$(token_post "$a" a grant_type=authorization_code "code=$code" "redirect_uri=$app_a")
[ "$(printf '%s' "$resp" | json error)" = invalid_grant ] || die "carol got: $resp"
refusal "carol at A (groups: staff) is outside A's outbound policy: POST /token: invalid_grant: $(printf '%s' "$resp" | json error_description)"

code=$(login "$b" "$app_b" dave dave-pw)
resp=$(token_post "$b" b grant_type=authorization_code "code=$code" "redirect_uri=$app_b")
dave=$(printf '%s' "$resp" | json fid)
dave_tok=$(printf '%s' "$resp" | json "federation_tokens.$A_TENANT")
[ -n "$dave_tok" ] || die "dave's token response: $resp"
r=$(send "$ob" installation_A "$dave_tok" "$dave" "hello from procurement")
[ "$r" = "403 policy_denied" ] || die "dave -> A: $r"
refusal "dave at B (department Procurement) is outside A's inbound policy: relay A answered $r"

# The same token replayed by another relay B's CA also trusts (installation_C).
code=$(curl -s -o /dev/null -D "$W/h" -w '%{http_code}' --cacert "$W/b/certs/server.cacert.pem" \
	--cert "$W/c-from-b/client.cert.pem" --key "$W/c-from-b/client.key.pem" \
	--resolve "federation.b.example:$rb:127.0.0.1" -H "Authorization: Fed $alice_tok" \
	-H "X-Fed-Sender: $alice" "https://federation.b.example:$rb/inbox")
reason=$(sed -n 's/^[Xx]-[Ff]ed-[Rr]eason: *\([a-z_]*\).*/\1/p' "$W/h")
[ "$code $reason" = "401 cert_mismatch" ] || die "replay with installation_C's certificate: $code $reason"
refusal "alice's token replayed with installation_C's client certificate (mTLS passes): relay B answered $code $reason"

r=$(send "$oa" installation_B "$alice_tok" "fid:0/$A_TENANT/someoneelse" "spoofed sender")
[ "$r" = "403 sender_mismatch" ] || die "spoofed sender: $r"
refusal "a message claiming another sender with alice's token: relay B answered $r"

short=$(fb token issue -c "$W/a/fedbridge.yaml" --tenant "$A_TENANT" --fid "$alice" --audience "$B_TENANT" \
	--attr email=alice@a.example --ttl 1s) || die "token issue at A"
t0=$(ms)
while :; do
	r=$(send "$oa" installation_B "$short" "$alice" "late")
	[ "$r" = "401 expired" ] && break
	[ "$(($(ms) - t0))" -lt 10000 ] || die "a 1 s token was not refused as expired: $r"
	sleep 0.2
done
refusal "a token A issued with a 1 s lifetime, sent until refused (clock_skew 1s): relay B answered $r after $(($(ms) - t0)) ms"

# ---------------------------------------------------------------------------
# 8. Key rotation at A reaches B's checks without a restart or a failed message.
# ---------------------------------------------------------------------------
old_kid=$(printf '%s' "$alice_tok" | cut -d. -f1 | tr -- '-_' '+/' | { read -r h; while [ $((${#h} % 4)) -ne 0 ]; do h="$h="; done; printf '%s' "$h" | openssl base64 -d -A; } | json kid)
# The documented rotation: publish the next key, let remotes learn it, then let it sign.
# A's revocation feed announces the kids it publishes; B fetches A's keys when one is new.
fb keys rotate -c "$W/a/fedbridge.yaml" >/dev/null || die "keys rotate at A (publish next)"
reload_bridge a
t0=$(ms)
wait_for "$W/b/bridge.log" "trust installation_A: 2 keys from"
learnt=$(($(ms) - t0))
fb keys rotate -c "$W/a/fedbridge.yaml" --force >/dev/null || die "keys rotate at A (activate)"
reload_bridge a
resp=$(token_post "$a" a grant_type=refresh_token "refresh_token=$alice_refresh")
alice_tok=$(printf '%s' "$resp" | json "federation_tokens.$B_TENANT")
alice_refresh=$(printf '%s' "$resp" | json refresh_token)
new_kid=$(printf '%s' "$alice_tok" | cut -d. -f1 | tr -- '-_' '+/' | { read -r h; while [ $((${#h} % 4)) -ne 0 ]; do h="$h="; done; printf '%s' "$h" | openssl base64 -d -A; } | json kid)
[ -n "$new_kid" ] && [ "$new_kid" != "$old_kid" ] || die "rotation: kid $old_kid -> $new_kid"
r=$(send "$oa" installation_B "$alice_tok" "$alice" "signed by the new key")
[ "${r%% *}" = 200 ] || die "the first message signed by A's new key: $r"
say "rotate: A published its next key; B had it $learnt ms later (announced in A's revocation feed); A switched from ${old_kid:0:12}… to ${new_kid:0:12}…; first message signed by it: 200, no restart"

# ---------------------------------------------------------------------------
# 9. Reloads under traffic: both bridges reloaded while messages flow both ways.
# ---------------------------------------------------------------------------
traffic() { # OUT_PORT REMOTE TOKEN SENDER COUNT LOG
	local i code fails=0
	for i in $(seq 1 "$5"); do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Fed $3" -H "X-Fed-Sender: $4" \
			-H "X-Message: load $i" "http://127.0.0.1:$1/to/$2/inbox")
		[ "$code" = 200 ] || fails=$((fails + 1))
	done
	echo "$fails" >"$6"
}
traffic "$oa" installation_B "$alice_tok" "$alice" 250 "$W/t1" &
t1=$!
traffic "$ob" installation_A "$bob_tok" "$bob" 250 "$W/t2" &
t2=$!
reloads=0
t0=$(ms)
while kill -0 "$t1" 2>/dev/null || kill -0 "$t2" 2>/dev/null; do
	reload_bridge a
	reload_bridge b
	reloads=$((reloads + 2))
done
wait "$t1" "$t2"
elapsed=$(($(ms) - t0))
failed=$(($(cat "$W/t1") + $(cat "$W/t2")))
[ "$failed" = 0 ] || die "$failed messages failed across $reloads reloads"
[ "$reloads" -ge 4 ] || die "only $reloads reloads happened during the traffic"
say "reload: 500 messages (A->B and B->A) in $elapsed ms while the bridges were reloaded $reloads times (fedbridge reload): $failed failed"

# ---------------------------------------------------------------------------
# 10. At runtime: a third installation joins B's federation; A changes a policy.
# ---------------------------------------------------------------------------
C_TENANT=Lq8sT2mZx4
pc=$(free_port)
pki "$W/c" installation_C c.example
client_for "$W/c" installation_B "$W/b/from-c"
mkdir -p "$W/c/keys" "$W/c/trusts.d"
chmod 700 "$W/c/keys"
secret "$W/c/keys/fid.secret" fid
secret "$W/c/keys/messenger.secret" messenger
secret "$W/c/keys/op.secret" op
conf c installation_C c.example "$pc" 443 "$C_TENANT" \
	"      - {name: corp, type: oidc, issuer: \"$op\", client_id: fedbridge-c, client_secret_file: keys/op.secret}" \
	"      - {provider: corp, fid: pairwise(claims.sub), attributes: {email: lower(claims.email)}}" \
	"http://127.0.0.1:$pc/app" >"$W/c/fedbridge.yaml"
fb keys rotate -c "$W/c/fedbridge.yaml" >/dev/null || die "keys rotate at C"
"$FB_BINARY" serve -c "$W/c/fedbridge.yaml" --pid-file "$W/c/fedbridge.pid" 2>"$W/c/bridge.log" &
bridge_started $! "$W/c/bridge.log"
wait_for "$W/c/bridge.log" "listening on"
fb trust export -c "$W/c/fedbridge.yaml" --out "$W/b/installation_C.trust.json" 2>/dev/null || die "trust export at C"
fb trust import -c "$W/c/fedbridge.yaml" --client-cert "$W/c-from-b/client.cert.pem" \
	--client-key "$W/c-from-b/client.key.pem" --outbound true --release email --inbound true \
	"$W/a/installation_B.trust.json" >"$W/c/import.log" 2>&1 || die "trust import at C: $(cat "$W/c/import.log")"
reload_bridge c
fb trust import -c "$W/b/fedbridge.yaml" --client-cert "$W/b/from-c/client.cert.pem" \
	--client-key "$W/b/from-c/client.key.pem" --outbound true --release email --inbound true \
	"$W/b/installation_C.trust.json" >"$W/b/import-c.log" 2>&1 || die "trust import of C at B: $(cat "$W/b/import-c.log")"
erin="fid:0/$C_TENANT/erin"
erin_tok=$(fb token issue -c "$W/c/fedbridge.yaml" --tenant "$C_TENANT" --fid "$erin" --audience "$B_TENANT" \
	--attr email=erin@c.example) || die "token issue at C"
c_send() { # -> CODE REASON-or-BODY, as installation_C's relay would send it
	local code
	code=$(curl -s -o "$W/c.body" -D "$W/c.head" -w '%{http_code}' --cacert "$W/c-from-b/client.cacert.pem" \
		--cert "$W/c-from-b/client.cert.pem" --key "$W/c-from-b/client.key.pem" \
		--resolve "federation.b.example:$rb:127.0.0.1" -H "Authorization: Fed $erin_tok" \
		-H "X-Fed-Sender: $erin" -H "X-Message: $1" "https://federation.b.example:$rb/inbox")
	[ "$code" = 200 ] && printf '200 %s' "$(tr -d '\n' <"$W/c.body")" ||
		printf '%s %s' "$code" "$(sed -n 's/^[Xx]-[Ff]ed-[Rr]eason: *\([a-z_]*\).*/\1/p' "$W/c.head")"
}
before=$(c_send "before B trusts C")
[ "$before" = "401 untrusted_issuer" ] || die "C before B's reload: $before"
traffic "$oa" installation_B "$alice_tok" "$alice" 200 "$W/t3" &
t3=$!
reload_bridge b
wait "$t3"
[ "$(cat "$W/t3")" = 0 ] || die "$(cat "$W/t3") of A's messages failed while B added C"
r=$(c_send "hello from C")
[ "${r%% *}" = 200 ] || die "C after B's reload: $r"
say "join: installation_C (tenant $C_TENANT) sent before B imported its export: $before; B imported it and reloaded under A's traffic (0 of 200 failed); now: ${r#200 }"

r=$(send "$ob" installation_A "$bob_tok" "$bob" "before the policy change")
[ "${r%% *}" = 200 ] || die "bob -> A before the policy change: $r"
fb trust import -c "$W/a/fedbridge.yaml" --inbound "token.attrs.department in ['R&D', 'Legal']" \
	"$W/a/installation_B.trust.json" >/dev/null 2>"$W/a/import2.log" || die "policy change at A: $(cat "$W/a/import2.log")"
reload_bridge a
r=$(send "$ob" installation_A "$bob_tok" "$bob" "after the policy change")
[ "$r" = "403 policy_denied" ] || die "bob -> A after the policy change: $r"
refusal "A narrowed its inbound policy for B to department in ['R&D', 'Legal'] (trust import --inbound + reload): bob (Sales) is now refused by relay A: $r"

# ---------------------------------------------------------------------------
# 10. Revocation at A, refused at B through the revocation feed; the kill switch.
# ---------------------------------------------------------------------------
r=$(send "$oa" installation_B "$alice_tok" "$alice" "before revocation")
[ "${r%% *}" = 200 ] || die "before revocation: $r"
fb sessions revoke -c "$W/a/fedbridge.yaml" --fid "$alice" --reason "demo: alice left" >/dev/null ||
	die "sessions revoke at A"
t0=$(ms)
while :; do
	r=$(send "$oa" installation_B "$alice_tok" "$alice" "after revocation")
	[ "$r" = "401 revoked" ] && break
	[ "$(($(ms) - t0))" -lt 15000 ] || die "B did not refuse a token revoked at A within 15 s: $r"
	sleep 0.1
done
refusal "alice revoked at A (fedbridge sessions revoke): relay B refused her token $(($(ms) - t0)) ms later through A's revocation feed: $r"

fb trust remove -c "$W/b/fedbridge.yaml" installation_A >/dev/null || die "trust remove at B"
reload_bridge b
short=$(fb token issue -c "$W/a/fedbridge.yaml" --tenant "$A_TENANT" --fid "fid:0/$A_TENANT/k1" \
	--audience "$B_TENANT" --attr email=k@a.example) || die "token issue at A"
r=$(send "$oa" installation_B "$short" "fid:0/$A_TENANT/k1" "after the kill switch")
[ "$r" = "401 untrusted_issuer" ] || die "after trust remove at B: $r"
refusal "B removed its trust with installation_A (fedbridge trust remove + reload, the kill switch): relay B answered $r"

say "summary: 2 logins through two IdPs (OIDC, SAML), 2 messages delivered through both relays, $refused refusals with their reasons, 1 key rotation and $reloads reloads with 0 failed messages; no whitelist file anywhere"
