#!/bin/bash
# SAML 2.0 login end to end, against a real, independently written IdP
# (Debian's SimpleSAMLphp 1.19, configured and started here on loopback by
# fixtures/saml/ssp.sh) and two running bridges, A (the users') and B (the
# remote). A scripted browser (tests/oidc-op/browser.mjs) follows the
# redirects, fills in SimpleSAMLphp's login form and posts the SAMLResponse
# as a browser would: /login/<provider> -> signed AuthnRequest -> IdP ->
# POST /saml/acs -> mapping -> session -> return_to with a code -> POST
# /token -> `fedbridge token verify` at B allows -> the IdP's single logout
# reaches /saml/slo -> refresh refused and B answers revoked.
. "$(dirname "$0")/lib.sh"
# A leak inside Lasso's single logout cannot be told apart from other glib allocations.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$FB_SOURCE_DIR/tests/lsan-saml.supp"

command -v php >/dev/null 2>&1 && [ -d /usr/share/simplesamlphp/www ] ||
	fail "simplesamlphp and php-cli are needed; scripts/deps.sh test installs them"
need_node "the scripted browser"

passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
pa=$(free_port)
pb=$(free_port)
pi=$(free_port)
a="http://127.0.0.1:$pa"
b="http://127.0.0.1:$pb"
idp_base="http://127.0.0.1:$pi"
idp="$idp_base/saml2/idp/metadata.php"
app="http://127.0.0.1:9/cb"
(
	cd "$keys"
	umask 077
	openssl req -x509 -newkey rsa:2048 -nodes -keyout sp.key -out sp.pem -days 30 -subj /CN=sp 2>/dev/null
	chmod 644 sp.pem
	messenger="messenger-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
	printf '%s\n' "$messenger" >messenger.secret
) || fail "openssl"
messenger_secret=$(cat "$keys/messenger.secret")

a_conf() { # IDP_METADATA
	cat <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$a", listen: "127.0.0.1:$pa"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret}
store: embedded:state-a-saml
tenants:
  - id: HZnKEBoqDU
    name: A Corp
    providers:
      - {name: corp, type: saml, idp_metadata: "$1", sp_key: keys/sp.key, sp_cert: keys/sp.pem}
    mapping:
      - provider: corp
        fid: pairwise(nameid)
        attributes:
          email: lower(first(attrs.mail))
          department: first(attrs.department)
        deny: "'contractors' in attrs.groups"
    trusts:
      - remote: installation_B
        tenants: [HWqHczeM2P]
        relay: federation.b.example:443
        ca: keys/a-ca.pem
        client_cert: keys/a-to-b.cert.pem
        client_key: keys/a-to-b.key.pem
        keys: keys/b.jwks
        issuer: "$b"
        outbound: "true"
        release: [email, department]
        inbound: "true"
    return_to: ["$app"]
    clients:
      - {client_id: messenger, client_secret_file: keys/messenger.secret}
YAML
}

# 1. The SP's metadata, from a bridge that knows no real IdP yet (it does not depend on it).
cat >"$keys/placeholder-idp.xml" <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="$idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$(grep -v CERTIFICATE "$keys/sp.pem" | tr -d '\n')</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$idp_base/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML
a_conf keys/placeholder-idp.xml >"$pair/a-saml.yaml"
"$FB_BINARY" serve -c "$pair/a-saml.yaml" 2>"$FB_TMP/a0.log" &
pid=$!
wait_for "$FB_TMP/a0.log" "listening on"
curl -sf "$a/saml/metadata/corp" >"$FB_TMP/sp.xml" || fail "GET /saml/metadata/corp"
kill "$pid"
wait "$pid" 2>/dev/null || true

# 2. The IdP, which trusts that SP.
cat >"$FB_TMP/users" <<USERS
alice alice-pw alice Alice@A.example R&D staff,federation
bob bob-pw bob bob@a.example Ops contractors
USERS
t0=$(date +%s%N)
bash "$FB_SOURCE_DIR/tests/integration/fixtures/saml/ssp.sh" "$FB_TMP/ssp" "$pi" "$FB_TMP/sp.xml" "$FB_TMP/users" \
	>"$FB_TMP/ssp.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
deadline=$(($(date +%s) + 20))
until curl -sf -o "$FB_TMP/idp.xml" "$idp"; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "SimpleSAMLphp did not start: $(tail -5 "$FB_TMP/ssp.log")"
	sleep 0.1
done
grep -q "IDPSSODescriptor" "$FB_TMP/idp.xml" || fail "IdP metadata: $(head -c 400 "$FB_TMP/idp.xml")"
ok "SimpleSAMLphp $(dpkg-query -W -f='${Version}' simplesamlphp) answers in $(( ($(date +%s%N) - t0) / 1000000 )) ms; the SP is registered from GET /saml/metadata/corp"

# 3. The bridges: A fetches the IdP's metadata from its URL at load.
a_conf "$idp" >"$pair/a-saml.yaml"
cat >"$pair/b-saml.yaml" <<YAML
installation: {name: installation_B, domain: b.example, public_url: "$b", listen: "127.0.0.1:$pb"}
keys: {signing: [keys/b-signing.pem], fid_secret: keys/b-fid.secret}
store: embedded:state-b-saml
tenants:
  - id: HWqHczeM2P
    name: B Corp
    providers:
      - {name: b-corp, type: oidc, issuer: "https://idp.b.example", client_id: fedbridge, client_secret_file: keys/messenger.secret}
    mapping:
      - {provider: b-corp, fid: pairwise(claims.sub), attributes: {email: claims.email}}
    trusts:
      - remote: installation_A
        tenants: [HZnKEBoqDU]
        relay: federation.a.example:443
        ca: keys/b-ca.pem
        client_cert: keys/b-to-a.cert.pem
        client_key: keys/b-to-a.key.pem
        keys: keys/a.jwks
        issuer: "$a"
        outbound: "true"
        release: [email]
        inbound: "true"
YAML
"$FB_BINARY" serve -c "$pair/a-saml.yaml" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
"$FB_BINARY" serve -c "$pair/b-saml.yaml" 2>"$FB_TMP/b.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on"
wait_for "$FB_TMP/b.log" "listening on"

browser() { node "$FB_SOURCE_DIR/tests/oidc-op/browser.mjs" "$@"; }
login() { # USER PASSWORD JAR
	browser login --jar "$3" --user "$1" --password "$2" --stop "$app" \
		"$a/login/corp?return_to=$(printf '%s' "$app" | sed 's/:/%3A/g; s/\//%2F/g')"
}
token_post() {
	args=()
	for f in "$@"; do args+=(--data-urlencode "$f"); done
	curl -s -u "messenger:$messenger_secret" "${args[@]}" "$a/token"
}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=process.argv[1].split(".").reduce((o,k)=>o==null?o:o[k],JSON.parse(s));console.log(v===undefined?"":typeof v==="object"?JSON.stringify(v):v)})' "$1"; }
verify_at_b() { # TOKEN -> decision or reason
	"$FB_BINARY" token verify -c "$pair/b-saml.yaml" --tenant HWqHczeM2P \
		--peer-cert "$keys/a-to-b.cert.pem" "$1" >"$FB_TMP/v.json" || true
	r=$(json reason <"$FB_TMP/v.json")
	[ -n "$r" ] && echo "$r" || json decision <"$FB_TMP/v.json"
}

# 4. alice logs in.
jar="$FB_TMP/alice.jar"
back=$(login alice alice-pw "$jar") || fail "alice's login did not come back: $back $(tail -5 "$FB_TMP/a.log") $(tail -5 "$FB_TMP/ssp/log/ssp.log" 2>/dev/null)"
case "$back" in "$app?code="*) ;; *) fail "not back at return_to with a code: $back" ;; esac
ok "alice: signed AuthnRequest -> SimpleSAMLphp login form -> POST /saml/acs -> return_to with a code"

resp=$(token_post grant_type=authorization_code "code=${back#"$app?code="}" "redirect_uri=$app")
fid=$(printf '%s' "$resp" | json fid)
tok=$(printf '%s' "$resp" | json federation_tokens.HWqHczeM2P)
refresh=$(printf '%s' "$resp" | json refresh_token)
[ -n "$tok" ] && [ -n "$refresh" ] || fail "POST /token: $resp"
payload=$(printf '%s' "$tok" | cut -d. -f2 | tr -- '-_' '+/')
while [ $((${#payload} % 4)) -ne 0 ]; do payload="$payload="; done
claims=$(printf '%s' "$payload" | openssl base64 -d -A)
[ "$(printf '%s' "$claims" | json attrs.email)" = alice@a.example ] &&
	[ "$(printf '%s' "$claims" | json attrs.department)" = "R&D" ] &&
	[ "$(printf '%s' "$claims" | json sub)" = "$fid" ] || fail "token claims: $claims"
ok "POST /token: fid $fid, attributes from the assertion (mail lower-cased, department)"
[ "$(verify_at_b "$tok")" = allow ] || fail "token verify at B: $(cat "$FB_TMP/v.json")"
ok "fedbridge token verify at B allows the token"
sid=$("$FB_BINARY" sessions list -c "$pair/a-saml.yaml" --fid "$fid" 2>/dev/null | awk '{ print $1 }' | head -1)
"$FB_BINARY" sessions show -c "$pair/a-saml.yaml" "$sid" | grep -q "^idp session  _" ||
	fail "the session holds no SessionIndex: $("$FB_BINARY" sessions show -c "$pair/a-saml.yaml" "$sid")"
ok "the session keeps the IdP's SessionIndex (for single logout)"

# 5. bob (a contractor) is refused by the deny rule.
page=$(login bob bob-pw "$FB_TMP/bob.jar") && fail "bob was let in: $page"
corr=$(printf '%s' "$page" | sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p')
grep -q "login \[$corr\]: provider corp: refused (tenants\[0\].mapping\[0\].deny\[0\]" "$FB_TMP/a.log" ||
	fail "bob's refusal is not logged with deny[0]: $page"
ok "bob (groups: contractors) ends on a 403 page; the log names deny[0]"

# 6. Single logout at the IdP: it sends a LogoutRequest to /saml/slo/corp.
out=$(browser logout --jar "$jar" --stop "http://127.0.0.1:9/" \
	"$idp_base/saml2/idp/initSLO.php?RelayState=$(printf '%s' "http://127.0.0.1:9/bye" | sed 's/:/%3A/g; s/\//%2F/g')") ||
	fail "logout at the IdP: $(grep "saml logout" "$FB_TMP/a.log")"
grep -q "saml logout \[.*\]: provider corp: idp_session revoked" "$FB_TMP/a.log" ||
	fail "no SAML logout reached A: $(printf "%s" "$out" | head -c 3000) $(grep -i logout "$FB_TMP/a.log") $(tail -5 "$FB_TMP/ssp/log/ssp.log")"
ok "the IdP's single logout reaches /saml/slo and revokes alice's IdP session"
r3=$(token_post grant_type=refresh_token "refresh_token=$refresh")
[ "$(printf '%s' "$r3" | json error)" = invalid_grant ] || fail "refresh after the logout: $r3"
ok "refresh after the logout is refused"
deadline=$(($(date +%s) + 10))
until [ "$(verify_at_b "$tok")" = revoked ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "B still allows the token 10 s after the logout"
	sleep 0.2
done
ok "fedbridge token verify at B answers revoked"

# 7. Logout started by the messenger: POST /logout answers a signed LogoutRequest URL;
# the IdP ends its session and answers at /saml/slo, which sends the browser on.
jar2="$FB_TMP/alice2.jar"
back=$(login alice alice-pw "$jar2") || fail "alice's second login: $back"
resp=$(token_post grant_type=authorization_code "code=${back#"$app?code="}" "redirect_uri=$app")
refresh2=$(printf '%s' "$resp" | json refresh_token)
[ -n "$refresh2" ] || fail "second /token: $resp"
out=$(curl -s -u "messenger:$messenger_secret" --data-urlencode "refresh_token=$refresh2" \
	--data-urlencode "post_logout_redirect_uri=$app" "$a/logout")
url=$(printf '%s' "$out" | json end_session_url)
case "$url" in "$idp_base/saml2/idp/SingleLogoutService.php?SAMLRequest="*"&SigAlg="*"&Signature="*) ;;
*) fail "POST /logout for a SAML session: $out" ;; esac
r4=$(token_post grant_type=refresh_token "refresh_token=$refresh2")
[ "$(printf '%s' "$r4" | json error)" = invalid_grant ] || fail "refresh after POST /logout: $r4"
end=$(browser logout --jar "$jar2" --stop "$app" "$url") ||
	fail "the IdP did not take the LogoutRequest: $(printf '%s' "$end" | head -c 2000) $(tail -3 "$FB_TMP/ssp/log/ssp.log")"
[ "$end" = "$app" ] || fail "after the IdP's LogoutResponse: $end"
ok "POST /logout ends the session and gives a signed LogoutRequest; the IdP takes it and answers at /saml/slo, which returns the browser to $app"

echo "saml_login: $passed passed, 0 failed"
