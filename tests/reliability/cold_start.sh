#!/bin/bash
# A cold start with every IdP and partner unreachable. Installation B has a
# SAML provider whose metadata URL nobody answers, an OIDC provider whose
# issuer nobody answers, a trust (installation_C) whose key set URL nobody
# answers, and a trust (installation_A) with its keys in a local file whose
# revocation feed nobody answers (as C's). Then:
#  - fedbridge check exits 0 and warns, naming C's key set where it is written;
#  - the systemd unit's own command lines (conf/systemd/fedbridge.service, with
#    this test's binary, configuration and pid file put in) run: ExecStartPre
#    exits 0, ExecStart serves and /validate allows A's token at once, /readyz
#    lists what is down; fedbridge reload and ExecReload apply changed files;
#  - the IdPs come up: /readyz stops listing the SAML provider and both
#    providers' logins go to their IdP, without a restart.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
unit=$FB_SOURCE_DIR/conf/systemd/fedbridge.service

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
B="$FB_TMP/etc/fedbridge.yaml"
mkdir -p "$FB_TMP/etc" "$FB_TMP/run"
b_port=$(free_port)
a_port=$(free_port)   # A's bridge (its feed): never started
c_port=$(free_port)   # C's bridge (its keys and feed): never started
md_port=$(free_port)  # the SAML IdP's metadata
op_port=$(free_port)  # the OIDC IdP
app="http://127.0.0.1:$(free_port)/cb"
base="http://127.0.0.1:$b_port"
umask 077
printf 'op-secret-%s\n' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$keys/op.secret"
umask 022
# A issues with its own public URL as iss: B's trust in A names it, and A's feed is there.
sed "s|public_url: https://sso.a.example|public_url: http://127.0.0.1:$a_port|" \
	"$pair/installation-a.yaml" >"$pair/a.yaml"
token=$("$FB_BINARY" token issue -c "$pair/a.yaml" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/7 \
	--audience HWqHczeM2P --attr email=u7@a.example --ttl 15m) || fail "token issue at A"
peer=$(cert_escaped "$keys/a-to-b.cert.pem")

# b_config INBOUND: B's configuration, A's users admitted when INBOUND holds.
b_config() {
	cat >"$B" <<YAML
installation:
  name: installation_B
  domain: b.example
  public_url: https://sso.b.example
  listen: 127.0.0.1:$b_port
  ca: $keys/b-ca.pem
keys:
  signing: [$keys/b-signing.pem]
  fid_secret: $keys/b-fid.secret
store: embedded:$FB_TMP/state-b
tenants:
  - id: HWqHczeM2P
    name: B Corp
    providers:
      - name: b-saml
        type: saml
        idp_metadata: http://127.0.0.1:$md_port/saml/metadata.xml
        sp_key: $keys/b-sp.key
        sp_cert: $keys/b-sp.crt
      - name: b-oidc
        type: oidc
        issuer: http://127.0.0.1:$op_port
        client_id: fedbridge
        client_secret_file: $keys/op.secret
    mapping:
      - provider: b-saml
        fid: attrs.employeeNumber[0]
        attributes:
          email: lower(attrs.mail[0])
      - provider: b-oidc
        fid: pairwise(claims.sub)
        attributes:
          email: lower(claims.email)
    trusts:
      - remote: installation_A
        tenants: [HZnKEBoqDU]
        relay: federation.a.example:443
        ca: $keys/a-ca.pem
        client_cert: $keys/b-to-a.cert.pem
        client_key: $keys/b-to-a.key.pem
        keys: $keys/a.jwks
        issuer: http://127.0.0.1:$a_port
        outbound: "true"
        release: [email]
        inbound: "$1"
      - remote: installation_C
        tenants: [Zc4pT7wQ2e]
        relay: federation.c.example:443
        ca: $keys/a-ca.pem
        client_cert: $keys/b-to-a.cert.pem
        client_key: $keys/b-to-a.key.pem
        keys: http://127.0.0.1:$c_port/.well-known/jwks.json
        issuer: http://127.0.0.1:$c_port
        inbound: "true"
    return_to: ["$app"]
YAML
}
b_config true
c_keys_line=$(grep -n "keys: http://127.0.0.1:$c_port/" "$B" | cut -d: -f1)
md_line=$(grep -n "idp_metadata: http://127.0.0.1:$md_port/" "$B" | cut -d: -f1)
op_line=$(grep -n "issuer: http://127.0.0.1:$op_port\$" "$B" | cut -d: -f1)

# ---- fedbridge check, everything down ----
"$FB_BINARY" check -c "$B" >"$FB_TMP/check.out" 2>"$FB_TMP/check.err" ||
	fail "check exited $? with every IdP and partner down: $(cat "$FB_TMP/check.out" "$FB_TMP/check.err")"
cat "$FB_TMP/check.out" "$FB_TMP/check.err"
grep -Eq "^$B:$c_keys_line:[0-9]+: warning: trust installation_C: could not reach the key set at http://127.0.0.1:$c_port/.well-known/jwks.json" \
	"$FB_TMP/check.err" || fail "check did not name C's unreachable key set at $B:$c_keys_line"
warnings=$(grep -c ': warning: ' "$FB_TMP/check.err" || true)
provider_warnings=$(grep -c ': warning: provider ' "$FB_TMP/check.err" || true)
figure cold_check_exit 0 "fedbridge check, every IdP and partner down (exit status)"
figure cold_check_warnings "$warnings" "warnings check printed (file:line)"
figure cold_check_provider_warnings "$provider_warnings" "of them about the unreachable IdPs (metadata and discovery)"
grep -Eq "^$B:$md_line:[0-9]+: warning: provider b-saml: could not reach its IdP \(.*metadata" "$FB_TMP/check.err" ||
	fail "check did not name b-saml's unreachable metadata at $B:$md_line"
grep -Eq "^$B:$op_line:[0-9]+: warning: provider b-oidc: could not reach its IdP \(.*\.well-known/openid-configuration" "$FB_TMP/check.err" ||
	fail "check did not name b-oidc's unreachable discovery at $B:$op_line"
grep -q ", 3 warnings\$" "$FB_TMP/check.out" || fail "check did not count 3 warnings: $(cat "$FB_TMP/check.out")"
pass "check exits 0 and warns at $B:$c_keys_line about C's key set, at :$md_line about b-saml's metadata, at :$op_line about b-oidc's discovery"

# ---- the systemd unit's commands, this test's paths put in ----
# unit_cmd KEY: the unit's KEY= line with the binary's folder, the configuration
# and the pid file of this test; fails when the line is gone or names anything else.
unit_cmd() {
	line=$(sed -n "s/^$1=//p" "$unit")
	[ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] || fail "$unit has not one $1= line: $line"
	line=$(printf '%s\n' "$line" | sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@|$(dirname "$FB_BINARY")|g" \
		-e "s|@CMAKE_INSTALL_FULL_SYSCONFDIR@/fedbridge/fedbridge.yaml|$B|g" \
		-e "s|/run/fedbridge/fedbridge.pid|$FB_TMP/run/fedbridge.pid|g")
	case "$line" in
	*@*@*) fail "$1 in $unit names what this test does not put in: $line" ;;
	"$(dirname "$FB_BINARY")/fedbridge "*) ;;
	*) fail "$1 in $unit does not run fedbridge as this test expects: $line" ;;
	esac
	printf '%s\n' "$line"
}
pre=$(unit_cmd ExecStartPre)
start=$(unit_cmd ExecStart)
reload=$(unit_cmd ExecReload)
read -ra pre_argv <<<"$pre"
read -ra start_argv <<<"$start"
read -ra reload_argv <<<"$reload"
"${pre_argv[@]}" >"$FB_TMP/pre.out" 2>"$FB_TMP/pre.err" ||
	fail "ExecStartPre ($pre) exited $?: $(cat "$FB_TMP/pre.out" "$FB_TMP/pre.err")"
pass "ExecStartPre exits 0: $(cat "$FB_TMP/pre.out")"

validate() {
	curl -s -o "$FB_TMP/validate" -w '%{http_code}' -m 5 "$base/validate" -H "Authorization: Fed $token" \
		-H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $peer" || true
}
t0=$(date +%s%N)
"${start_argv[@]}" 2>"$FB_TMP/b.log" &
bpid=$!
FB_PIDS="$FB_PIDS $bpid"
deadline=$(( $(date +%s) + 20 ))
until [ "$(validate)" = 200 ]; do
	kill -0 "$bpid" 2>/dev/null || { cat "$FB_TMP/b.log" >&2; fail "ExecStart ($start) exited with everything down"; }
	[ "$(date +%s)" -lt "$deadline" ] || fail "/validate did not allow A's token within 20 s: $(cat "$FB_TMP/validate")"
	sleep 0.02
done
validate_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q '"decision":"allow","fid":"fid:0/HZnKEBoqDU/7"' "$FB_TMP/validate" || fail "/validate: $(cat "$FB_TMP/validate")"
figure cold_validate_ms "$validate_ms" "from ExecStart to /validate allowing a token of a local-keyed trust (ms)"
[ "$validate_ms" -le 5000 ] || fail "/validate took $validate_ms ms to serve after the start"
wait_for "$FB_TMP/run/fedbridge.pid" "^$bpid\$" 5
pass "ExecStart serves: /validate allows A's token $validate_ms ms after the start"

# /readyz: ready (the store answers) and what cannot be reached, listed.
ready=$(curl -s -w '\n%{http_code}' "$base/readyz")
echo "readyz: $ready"
[ "$(printf '%s' "$ready" | tail -1)" = 200 ] || fail "/readyz: $ready"
ready=$(printf '%s' "$ready" | head -1)
echo "$ready" | jq -e '.status == "ready"
	and (.unavailable | any(.trust_keys == "installation_C"))
	and (.unavailable | any(.provider_metadata == "b-saml"))
	and (.unavailable | any(.feed == "installation_A"))
	and (.unavailable | any(.feed == "installation_C"))' >/dev/null ||
	fail "/readyz does not list C's keys, b-saml's metadata and A's and C's feeds: $ready"
# The OIDC provider's discovery is fetched at the start too (in the background, not at
# the first login): listed once that fetch has failed.
deadline=$(( $(date +%s) + 10 ))
until echo "$ready" | jq -e '.unavailable | any(.provider_discovery == "b-oidc" and (has("misconfigured") | not))' >/dev/null; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "/readyz does not list b-oidc's discovery: $ready"
	sleep 0.2
	ready=$(curl -s "$base/readyz")
done
figure cold_readyz_unavailable "$(echo "$ready" | jq -c '[.unavailable[] | del(.detail) | to_entries[0] | "\(.key):\(.value)"]')" "what /readyz lists as unavailable after the start"
grep -q "provider b-saml: IdP metadata: http://127.0.0.1:$md_port/saml/metadata.xml: .*its logins answer 502" "$FB_TMP/b.log" ||
	fail "no warning about b-saml's metadata: $(grep b-saml "$FB_TMP/b.log")"
pass "/readyz is ready and lists C's keys, b-saml's metadata, b-oidc's discovery, A's and C's feeds"

# Logins at the providers that are down answer "unavailable", not an error of the user's.
login() { # PROVIDER: the status and Location of GET /login/PROVIDER
	curl -s -o "$FB_TMP/login" -D "$FB_TMP/login.h" -w '%{http_code}' -m 20 \
		"$base/login/$1?return_to=$(printf '%s' "$app" | jq -sRr @uri)" || true
}
code=$(login b-saml)
[ "$code" = 502 ] && grep -q '<code id="reason">unavailable</code>' "$FB_TMP/login" ||
	fail "/login/b-saml with its metadata unreachable answered $code: $(cat "$FB_TMP/login")"
code=$(login b-oidc)
[ "$code" = 502 ] || fail "/login/b-oidc with its issuer unreachable answered $code: $(cat "$FB_TMP/login")"
figure cold_login_down "b-saml 502, b-oidc 502" "logins while the IdPs are down (unavailable: try again)"
pass "logins answer 502 unavailable (SAML metadata not yet fetched, OIDC issuer unreachable)"

# ---- fedbridge reload and the unit's ExecReload, everything still down ----
# reloaded_to N: the bridge logged generation N and /healthz says so.
reloaded_to() {
	wait_for "$FB_TMP/b.log" "configuration reloaded: generation $1" 10
	curl -s "$base/healthz" | jq -e ".config_generation == $1" >/dev/null ||
		fail "/healthz after reload $1: $(curl -s "$base/healthz")"
}
b_config "token.tid == 'HZnKEBoqDU'"
"$FB_BINARY" reload -c "$B" --pid-file "$FB_TMP/run/fedbridge.pid" >"$FB_TMP/reload.out" 2>"$FB_TMP/reload.err" ||
	fail "fedbridge reload exited $? with everything down: $(cat "$FB_TMP/reload.out" "$FB_TMP/reload.err")"
grep -q "warning: trust installation_C: could not reach" "$FB_TMP/reload.err" || fail "reload did not warn about C: $(cat "$FB_TMP/reload.err")"
grep -q "warning: provider b-oidc: could not reach its IdP" "$FB_TMP/reload.err" || fail "reload did not warn about b-oidc: $(cat "$FB_TMP/reload.err")"
reloaded_to 2
[ "$(validate)" = 200 ] || fail "/validate after the reload: $(cat "$FB_TMP/validate")"
pass "fedbridge reload applies a changed file (generation 2) with everything down"
b_config "token.tid == 'HZnKEBoqDU' || token.tid == 'Zc4pT7wQ2e'"
"${reload_argv[@]}" >"$FB_TMP/execreload.out" 2>"$FB_TMP/execreload.err" ||
	fail "ExecReload ($reload) exited $?: $(cat "$FB_TMP/execreload.out" "$FB_TMP/execreload.err")"
reloaded_to 3
[ "$(validate)" = 200 ] || fail "/validate after ExecReload: $(cat "$FB_TMP/validate")"
grep -q "reload rejected" "$FB_TMP/b.log" && fail "a reload was rejected: $(grep 'reload rejected' "$FB_TMP/b.log")"
pass "ExecReload applies a changed file (generation 3) with everything down"

# ---- the IdPs come up: no restart, no reload ----
mkdir -p "$FB_TMP/md/saml" "$FB_TMP/op/.well-known"
cp "$keys/b-idp-metadata.xml" "$FB_TMP/md/saml/metadata.xml"
op="http://127.0.0.1:$op_port"
cat >"$FB_TMP/op/.well-known/openid-configuration" <<JSON
{"issuer": "$op", "authorization_endpoint": "$op/auth", "token_endpoint": "$op/token",
 "jwks_uri": "$op/jwks", "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
 "id_token_signing_alg_values_supported": ["RS256"], "subject_types_supported": ["public"]}
JSON
echo '{"keys": []}' >"$FB_TMP/op/jwks"
cat >"$FB_TMP/idp.py" <<'PY'
import http.server, os, sys
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        p = os.path.join(root, self.path.split("?")[0].lstrip("/"))
        if not os.path.isfile(p):
            self.send_error(404)
            return
        body = open(p, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/samlmetadata+xml" if p.endswith(".xml") else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
PY
up0=$(date +%s%N)
python3 "$FB_TMP/idp.py" "$md_port" "$FB_TMP/md" >"$FB_TMP/md.out" 2>"$FB_TMP/md.log" &
FB_PIDS="$FB_PIDS $!"
python3 "$FB_TMP/idp.py" "$op_port" "$FB_TMP/op" >"$FB_TMP/op.out" 2>"$FB_TMP/op.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/md.out" "^ready"
wait_for "$FB_TMP/op.out" "^ready"
# The OIDC provider's discovery is tried again in the background, with backoff (10 s, 20 s,
# ...), and at a login at most every 10 s after a failure.
deadline=$(( $(date +%s) + 30 ))
until [ "$(login b-oidc)" = 302 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "/login/b-oidc did not recover within 30 s of its IdP: $(cat "$FB_TMP/login")"
	sleep 0.5
done
tr -d '\r' <"$FB_TMP/login.h" | grep -qi "^location: $op/auth?" || fail "/login/b-oidc went elsewhere: $(cat "$FB_TMP/login.h")"
oidc_ms=$(( ($(date +%s%N) - up0) / 1000000 ))
figure cold_oidc_recovery_ms "$oidc_ms" "from the OIDC IdP up to a login redirected to it, no restart (ms)"
pass "b-oidc's IdP back: its logins redirect to it after $oidc_ms ms"
# SAML metadata is fetched again when its retry is due (10 s, then doubling with
# jitter): the refresher wakes for it, not only for the partners' key sets.
deadline=$(( $(date +%s) + 75 ))
while ready=$(curl -s "$base/readyz"); echo "$ready" | jq -e '.unavailable | any(.provider_metadata == "b-saml")' >/dev/null; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "/readyz still lists b-saml 75 s after its IdP came up: $ready"
	kill -0 "$bpid" 2>/dev/null || fail "the bridge exited"
	sleep 0.2
done
recovery_ms=$(( ($(date +%s%N) - up0) / 1000000 ))
figure cold_saml_recovery_ms "$recovery_ms" "from the SAML IdP's metadata up to /readyz no longer listing it, no restart (ms)"
echo "$ready" | jq -e '(.unavailable | any(.trust_keys == "installation_C")) and (.unavailable | any(.feed == "installation_A"))' >/dev/null ||
	fail "/readyz no longer lists what is still down: $ready"
grep -q "provider b-saml: the IdP's metadata was fetched again" "$FB_TMP/b.log" || fail "no log of b-saml's metadata"
code=$(login b-saml)
[ "$code" = 302 ] || [ "$code" = 200 ] || fail "/login/b-saml with its metadata fetched answered $code: $(cat "$FB_TMP/login")"
pass "b-saml's IdP back: /readyz drops it after $recovery_ms ms and its logins go to the IdP ($code)"
[ "$(validate)" = 200 ] || fail "/validate at the end: $(cat "$FB_TMP/validate")"
pass "/validate allowed A's token all along"
