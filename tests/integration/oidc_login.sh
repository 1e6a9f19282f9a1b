#!/bin/bash
# OpenID Connect login end to end, against a real, independently written
# OpenID provider (panva's oidc-provider, OpenID-certified, on Node.js,
# installed from tests/oidc-op's lock file and started here on
# loopback) and two running bridges: A (the users' installation) and B (the
# remote that receives their tokens).
#
# A scripted browser follows the redirects and fills in the provider's login
# form: /login/<provider> -> the provider -> /oidc/callback -> mapping ->
# session -> return_to with a one-time code; the messenger backend redeems
# the code at POST /token; the federation token passes `fedbridge token
# verify` and /validate at B; refresh works; the code cannot be replayed; a
# user the mapping denies ends on an error page with a correlation id; then
# the provider's logout sends a back-channel logout_token to A, after which
# refresh is refused and B answers revoked.
. "$(dirname "$0")/lib.sh"

need_node "the OpenID Connect test"

passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}

# ---- the provider, installed from the lock file into a scratch copy ----
op_dir="$FB_TMP/oidc-op"
npm_copy oidc-op "$op_dir"
op_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$op_dir/node_modules/oidc-provider/package.json")
[ -n "$op_version" ] || fail "oidc-provider did not install"

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
pa=$(free_port)
pb=$(free_port)
po=$(free_port)
app="http://127.0.0.1:$(free_port)/cb" # the messenger's return_to; nothing listens there
op="http://127.0.0.1:$po"
a="http://127.0.0.1:$pa"
b="http://127.0.0.1:$pb"

umask 077
printf 'op-client-secret-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$keys/op.secret"
messenger_secret="messenger-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$messenger_secret" >"$keys/messenger.secret"
umask 022

cat >"$FB_TMP/op.json" <<JSON
{ "host": "127.0.0.1", "port": $po, "issuer": "$op",
  "clients": [ { "client_id": "fedbridge", "client_secret": "$(cat "$keys/op.secret")",
    "redirect_uris": ["$a/oidc/callback"], "token_endpoint_auth_method": "client_secret_basic",
    "backchannel_logout_uri": "$a/oidc/backchannel-logout", "backchannel_logout_session_required": true,
    "post_logout_redirect_uris": ["$a/"] } ],
  "users": [
    { "sub": "u-1001", "username": "alice", "password": "alice-pw",
      "claims": { "email": "Alice@A.example", "email_verified": true, "groups": ["staff", "federation"],
                  "department": "R&D", "employee_number": "1001", "name": "Alice A" } },
    { "sub": "u-1002", "username": "bob", "password": "bob-pw",
      "claims": { "email": "bob@a.example", "email_verified": true, "groups": ["contractors"],
                  "department": "Ops", "employee_number": "1002", "name": "Bob B" } },
    { "sub": "u-1003", "username": "carol", "password": "carol-pw",
      "claims": { "email": "carol@a.example", "email_verified": false, "groups": ["staff"],
                  "department": "Sales", "employee_number": "1003", "name": "Carol C" } } ] }
JSON

node "$op_dir/provider.mjs" "$FB_TMP/op.json" >"$FB_TMP/op.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/op.log" "^ready "
ok "oidc-provider $op_version on node $(node --version) answers at $op"

cat >"$pair/a-oidc.yaml" <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$a", listen: "127.0.0.1:$pa"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret}
store: embedded:state-a-oidc
tenants:
  - id: HZnKEBoqDU
    name: A Corp
    providers:
      - name: corp
        type: oidc
        issuer: "$op"
        client_id: fedbridge
        client_secret_file: keys/op.secret
        scopes: [openid, email, profile, groups]
        userinfo: true
    mapping:
      - provider: corp
        fid: pairwise(claims.sub)
        attributes:
          email: lower(claims.email)
          department: claims.department
        require: claims.email_verified == true
        deny: "'contractors' in claims.groups"
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
cat >"$pair/b-oidc.yaml" <<YAML
installation: {name: installation_B, domain: b.example, public_url: "$b", listen: "127.0.0.1:$pb"}
log: {attributes: true}
keys: {signing: [keys/b-signing.pem], fid_secret: keys/b-fid.secret}
store: embedded:state-b-oidc
tenants:
  - id: HWqHczeM2P
    name: B Corp
    providers:
      - {name: b-corp, type: oidc, issuer: "https://idp.b.example", client_id: fedbridge, client_secret_file: keys/op.secret}
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

"$FB_BINARY" serve -c "$pair/a-oidc.yaml" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
"$FB_BINARY" serve -c "$pair/b-oidc.yaml" 2>"$FB_TMP/b.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on"
wait_for "$FB_TMP/b.log" "listening on"

browser() { node "$op_dir/browser.mjs" "$@"; }
# login USER PASSWORD JAR: the whole browser flow; prints where it ended.
login() {
	browser login --jar "$3" --user "$1" --password "$2" --stop "$app" \
		"$a/login/corp?return_to=$(printf '%s' "$app" | sed 's/:/%3A/g; s/\//%2F/g')"
}
# token_post FORM...: POST /token as the messenger backend (client_secret_basic).
token_post() {
	args=()
	for f in "$@"; do args+=(--data-urlencode "$f"); done
	curl -s -u "messenger:$messenger_secret" "${args[@]}" "$a/token"
}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=process.argv[1].split(".").reduce((o,k)=>o==null?o:o[k],JSON.parse(s));console.log(v===undefined?"":typeof v==="object"?JSON.stringify(v):v)})' "$1"; }
verify_at_b() { # TOKEN -> the decision of `fedbridge token verify` at B
	"$FB_BINARY" token verify -c "$pair/b-oidc.yaml" --tenant HWqHczeM2P \
		--peer-cert "$keys/a-to-b.cert.pem" "$1" | json decision
}
reason_at_b() {
	"$FB_BINARY" token verify -c "$pair/b-oidc.yaml" --tenant HWqHczeM2P \
		--peer-cert "$keys/a-to-b.cert.pem" "$1" | json reason
}

# ---- alice logs in ----
jar="$FB_TMP/alice.jar"
back=$(login alice alice-pw "$jar") || fail "alice's login did not come back: $back $(tail -20 "$FB_TMP/a.log")"
case "$back" in "$app?code="*) ;; *) fail "not back at return_to with a code: $back" ;; esac
code=${back#"$app?code="}
ok "alice: /login -> provider login form -> /oidc/callback -> return_to with a one-time code"

resp=$(token_post grant_type=authorization_code "code=$code" "redirect_uri=$app")
fid=$(printf '%s' "$resp" | json fid)
tok=$(printf '%s' "$resp" | json federation_tokens.HWqHczeM2P)
refresh=$(printf '%s' "$resp" | json refresh_token)
[ -n "$tok" ] && [ -n "$refresh" ] || fail "POST /token: $resp"
case "$fid" in fid:0/HZnKEBoqDU/??????????????????????) ;; *) fail "fid $fid is not a pairwise fid of tenant HZnKEBoqDU" ;; esac
[ "$(printf '%s' "$resp" | json token_type)" = Fed ] && [ "$(printf '%s' "$resp" | json access_token)" = "$tok" ] ||
	fail "token response shape: $resp"
ok "POST /token (authorization_code): fid $fid, a refresh token and a federation token for HWqHczeM2P"

# The token carries the mapped, released attributes: e-mail lower-cased, the department.
token_claims() {
	payload=$(printf '%s' "$1" | cut -d. -f2 | tr -- '-_' '+/')
	while [ $((${#payload} % 4)) -ne 0 ]; do payload="$payload="; done
	printf '%s' "$payload" | openssl base64 -d -A
}
claims=$(token_claims "$tok")
[ "$(printf '%s' "$claims" | json attrs.email)" = alice@a.example ] &&
	[ "$(printf '%s' "$claims" | json attrs.department)" = "R&D" ] &&
	[ "$(printf '%s' "$claims" | json sub)" = "$fid" ] &&
	[ "$(printf '%s' "$claims" | json iss)" = "$a" ] ||
	fail "token claims: $claims"
ok "the token's claims: iss $a, sub = fid, attrs email (lower-cased) and department"

[ "$(verify_at_b "$tok")" = allow ] || fail "token verify at B: $(reason_at_b "$tok")"
ok "fedbridge token verify at B allows the token"

replay=$(token_post grant_type=authorization_code "code=$code" "redirect_uri=$app")
[ "$(printf '%s' "$replay" | json error)" = invalid_grant ] || fail "code replay: $replay"
ok "the code cannot be redeemed twice: $(printf '%s' "$replay" | json error_description)"

r2=$(token_post grant_type=refresh_token "refresh_token=$refresh")
tok2=$(printf '%s' "$r2" | json federation_tokens.HWqHczeM2P)
[ -n "$tok2" ] && [ "$tok2" != "$tok" ] && [ "$(printf '%s' "$r2" | json fid)" = "$fid" ] || fail "refresh: $r2"
[ "$(verify_at_b "$tok2")" = allow ] || fail "the refreshed token is not allowed"
ok "refresh_token gives a new federation token for the same fid, allowed at B"

bad=$(curl -s -u "messenger:wrong-secret-wrong-secret-wrong-secret" --data-urlencode grant_type=refresh_token \
	--data-urlencode "refresh_token=$refresh" -o /dev/null -w '%{http_code}' "$a/token")
[ "$bad" = 401 ] || fail "a wrong client secret got HTTP $bad"
ok "a wrong client secret is refused (401 invalid_client)"

# The same user logging in again gets the same fid (keyed by issuer and subject).
back2=$(login alice alice-pw "$FB_TMP/alice2.jar") || fail "second login: $back2"
fid2=$(token_post grant_type=authorization_code "code=${back2#"$app?code="}" "redirect_uri=$app" | json fid)
[ "$fid2" = "$fid" ] || fail "second login gave fid $fid2, not $fid"
ok "a second login of alice (new browser) maps to the same fid"

# ---- users the mapping refuses ----
page=$(login bob bob-pw "$FB_TMP/bob.jar") && fail "bob (a contractor) was let in: $page"
corr=$(printf '%s' "$page" | sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p')
[ "$(printf '%s' "$page" | head -1)" = "status 403" ] && [ -n "$corr" ] &&
	printf '%s' "$page" | grep -q '<code id="reason">refused</code>' || fail "bob's page: $page"
grep -q "login \[$corr\]: provider corp: refused (tenants\[0\].mapping\[0\].deny\[0\]" "$FB_TMP/a.log" ||
	fail "the refusal of $corr is not logged with its rule: $(grep "$corr" "$FB_TMP/a.log")"
audit=$("$FB_BINARY" sessions audit -c "$pair/a-oidc.yaml" --limit 1000 | grep "\"correlation\":\"$corr\"")
case "$audit" in *'"kind":"login_refused"'*'"rule":"tenants[0].mapping[0].deny[0]"'*) ;; *) fail "audit of $corr: $audit" ;; esac
ok "bob (deny: contractors) ends on a 403 page with correlation id $corr; log and audit trail name deny[0]"

page=$(login carol carol-pw "$FB_TMP/carol.jar") && fail "carol (e-mail not verified) was let in"
corr=$(printf '%s' "$page" | sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p')
grep -q "login \[$corr\]: provider corp: refused (tenants\[0\].mapping\[0\].require\[0\]" "$FB_TMP/a.log" ||
	fail "carol's refusal is not logged with require[0]"
ok "carol (email_verified false) is refused by require[0]"

# ---- a return_to outside the allow-list never reaches the provider ----
st=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$a/login/corp?return_to=https%3A%2F%2Fevil.example%2F")
[ "$st" = "400 " ] || fail "an unlisted return_to got: $st"
ok "an unlisted return_to is refused with 400, no redirect"

# ---- RFC 8693: a backend holding alice's ID token from the provider, no browser at the bridge ----
verifier=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
cb="$a/oidc/callback"
auth="$op/auth?response_type=code&client_id=fedbridge&scope=openid%20email%20profile%20groups&state=s-exchange"
auth="$auth&redirect_uri=$(printf '%s' "$cb" | sed 's/:/%3A/g; s/\//%2F/g')&code_challenge=$challenge&code_challenge_method=S256"
back=$(browser login --jar "$FB_TMP/backend.jar" --user alice --password alice-pw --stop "$cb" "$auth") ||
	fail "the backend's own login at the provider: $back"
op_code=$(printf '%s' "$back" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
idt=$(curl -s -u "fedbridge:$(cat "$keys/op.secret")" --data-urlencode grant_type=authorization_code \
	--data-urlencode "code=$op_code" --data-urlencode "redirect_uri=$cb" \
	--data-urlencode "code_verifier=$verifier" "$op/token" | json id_token)
[ -n "$idt" ] || fail "no ID token from the provider's token endpoint"
resp=$(token_post grant_type=urn:ietf:params:oauth:grant-type:token-exchange "subject_token=$idt" \
	subject_token_type=urn:ietf:params:oauth:token-type:id_token audience=HWqHczeM2P)
xtok=$(printf '%s' "$resp" | json access_token)
[ -n "$xtok" ] && [ "$(printf '%s' "$resp" | json fid)" = "$fid" ] &&
	[ "$(printf '%s' "$resp" | json issued_token_type)" = urn:ietf:params:oauth:token-type:jwt ] ||
	fail "token exchange: $resp"
[ "$(verify_at_b "$xtok")" = allow ] || fail "the exchanged token is not allowed at B"
ok "RFC 8693: alice's ID token from the provider, exchanged at /token, gives the same fid and a token B allows"

# ---- front-channel logout: iss and the IdP session id of that exchange's ID token ----
# The IdP renders GET /oidc/frontchannel-logout?iss&sid in an iframe; nothing else vouches.
idp_sid=$(token_claims "$idt" | json sid)
[ -n "$idp_sid" ] || fail "the provider's ID token carries no sid: $(token_claims "$idt")"
fcl() { curl -s -G -D "$FB_TMP/fcl.hdr" -o "$FB_TMP/fcl.body" -w '%{http_code}' "$@" "$a/oidc/frontchannel-logout"; }
[ "$(fcl --data-urlencode "sid=$idp_sid")" = 400 ] &&
	[ "$(fcl --data-urlencode "iss=$op")" = 400 ] &&
	[ "$(fcl --data-urlencode "iss=https://other.example" --data-urlencode "sid=$idp_sid")" = 400 ] ||
	fail "front-channel logout without iss, without sid, of another issuer: $(cat "$FB_TMP/fcl.hdr")"
[ "$(verify_at_b "$xtok")" = allow ] || fail "a refused front-channel logout ended the session"
st=$(fcl --data-urlencode "iss=$op" --data-urlencode "sid=$idp_sid")
[ "$st" = 200 ] && grep -qi "^Content-Security-Policy: .*frame-ancestors $op\b" "$FB_TMP/fcl.hdr" &&
	grep -qi '^Cache-Control: no-store' "$FB_TMP/fcl.hdr" && grep -qi '^X-Content-Type-Options: nosniff' "$FB_TMP/fcl.hdr" ||
	fail "front-channel logout: $st $(cat "$FB_TMP/fcl.hdr")"
grep -q "front-channel logout \[.*\]: provider corp: idp_session revoked" "$FB_TMP/a.log" || fail "A did not log the revocation"
deadline=$(($(date +%s) + 10))
until [ "$(reason_at_b "$xtok")" = revoked ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "B still allows the exchanged token 10 s after front-channel logout: $(reason_at_b "$xtok")"
	sleep 0.2
done
ok "front-channel logout: no iss, no sid or another issuer is 400; iss $op with the ID token's sid is 200 (framed by $op only) and ends that IdP session's bridge session (B: revoked)"

# ---- back-channel logout ----
out=$(browser logout --jar "$jar" "$op/session/end?client_id=fedbridge") || fail "logout at the provider: $out"
deadline=$(($(date +%s) + 10))
until grep -q "back-channel logout \[.*\]: provider corp: idp_session revoked" "$FB_TMP/a.log"; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "no back-channel logout reached A: logout said: $out; provider: $(tail -5 "$FB_TMP/op.log"); A: $(grep -i logout "$FB_TMP/a.log")"
	sleep 0.05
done
ok "logout at the provider: its back-channel logout_token revokes alice's IdP session at A"

r3=$(token_post grant_type=refresh_token "refresh_token=$refresh")
[ "$(printf '%s' "$r3" | json error)" = invalid_grant ] || fail "refresh after logout: $r3"
ok "refresh after the logout is refused: $(printf '%s' "$r3" | json error_description)"

# B learns it from A's revocation feed (pulled every 2 s): poll, at most 10 s.
deadline=$(($(date +%s) + 10))
until [ "$(reason_at_b "$tok2")" = revoked ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "B still allows the token 10 s after the logout: $(reason_at_b "$tok2")"
	sleep 0.2
done
ok "fedbridge token verify at B answers revoked for the token of the ended session"

# The audit trail ties it together: the token's jti was recorded at issuance (with the
# session), and B's relay check logs its denial with the relay's request id and that jti.
jti2=$(token_claims "$tok2" | json jti)
"$FB_BINARY" sessions audit -c "$pair/a-oidc.yaml" --limit 1000 >"$FB_TMP/audit.jsonl"
grep '"kind":"token_issued"' "$FB_TMP/audit.jsonl" | grep -q "\"jti\":\"$jti2\".*\"detail\":\"session " ||
	fail "no token_issued record with jti $jti2: $(cat "$FB_TMP/audit.jsonl")"
grep '"kind":"login_allowed"' "$FB_TMP/audit.jsonl" | grep -q "\"fid\":\"$fid\".*\"detail\":\"session " ||
	fail "no login_allowed record for $fid"
grep -q '"kind":"revocation".*"rule":"backchannel_logout"' "$FB_TMP/audit.jsonl" || fail "no revocation record"
hdr=$(curl -s -D - -o /dev/null -H "Authorization: Fed $tok2" -H "X-Fed-Tenant: HWqHczeM2P" \
	-H "X-Fed-Peer-Cert: $(cert_escaped "$keys/a-to-b.cert.pem")" -H "X-Request-Id: relay-req-42" "$b/validate")
case "$hdr" in *"X-Correlation-Id: relay-req-42"*"X-Fed-Reason: revoked"* | *"X-Fed-Reason: revoked"*"X-Correlation-Id: relay-req-42"*) ;;
*) fail "/validate at B: $hdr" ;; esac
sid2=$(token_claims "$tok2" | json sid)
login_corr=$(grep '"kind":"login_allowed"' "$FB_TMP/audit.jsonl" | grep "\"detail\":\"session $sid2\"" |
	sed -n 's/.*"correlation":"\([^"]*\)".*/\1/p')
[ -n "$login_corr" ] && [ "$(token_claims "$tok2" | json cid)" = "$login_corr" ] ||
	fail "the token's cid is not the correlation id of its login ($login_corr): $(token_claims "$tok2")"
grep -q "relay \[relay-req-42\]: deny revoked: tenant HWqHczeM2P, jti $jti2, sid $sid2, login $login_corr" "$FB_TMP/b.log" ||
	fail "B's log lacks the denial with the request id, jti and login: $(grep relay "$FB_TMP/b.log")"
ok "audit: login_allowed ($login_corr) and token_issued (jti $jti2) at A; B's relay denial logged under the relay's request id with that jti and A's login correlation id"

# Personal attributes are logged only where log.attributes allows: B (true) names
# alice's e-mail with its decision, A (default false) never writes it anywhere.
grep "relay \[relay-req-42\]: deny revoked" "$FB_TMP/b.log" | grep -q ', attributes {.*"email":"alice@a.example"' ||
	fail "B (log.attributes: true) does not log the attributes: $(grep 'relay \[relay-req-42\]' "$FB_TMP/b.log")"
! grep -qi 'alice@a.example' "$FB_TMP/a.log" || fail "A logged alice's e-mail with log.attributes off: $(grep -i 'alice@a.example' "$FB_TMP/a.log" | head -2)"
ok "log.attributes: B logs the token's attributes with its decision; A (off, the default) never logs alice's e-mail"

# ---- metrics: the counters agree with the audit trail; histograms are well formed ----
curl -fsS "$a/metrics" >"$FB_TMP/metrics-a" || fail "GET /metrics at A"
curl -fsS "$b/metrics" >"$FB_TMP/metrics-b" || fail "GET /metrics at B"
metric() { # FILE SERIES -> value (0 when absent)
	v=$(grep -F "$2 " "$1" | awk '{ print $NF }' | head -1)
	echo "${v:-0}"
}
allowed=$(grep -c '"kind":"login_allowed"' "$FB_TMP/audit.jsonl")
issued=$(grep -c '"kind":"token_issued".*"audience":"HWqHczeM2P"' "$FB_TMP/audit.jsonl")
[ "$(metric "$FB_TMP/metrics-a" 'fedbridge_logins_total{provider="corp",outcome="allowed"}')" = "$allowed" ] ||
	fail "logins allowed: metrics $(metric "$FB_TMP/metrics-a" 'fedbridge_logins_total{provider="corp",outcome="allowed"}'), audit $allowed"
[ "$(metric "$FB_TMP/metrics-a" 'fedbridge_tokens_issued_total{audience="HWqHczeM2P"}')" = "$issued" ] ||
	fail "tokens issued: metrics $(metric "$FB_TMP/metrics-a" 'fedbridge_tokens_issued_total{audience="HWqHczeM2P"}'), audit $issued"
[ "$(metric "$FB_TMP/metrics-a" 'fedbridge_login_refusals_total{rule="tenants[0].mapping[0].deny[0]"}')" = 1 ] &&
	[ "$(metric "$FB_TMP/metrics-a" 'fedbridge_login_refusals_total{rule="tenants[0].mapping[0].require[0]"}')" = 1 ] ||
	fail "refusals by rule: $(grep refusals "$FB_TMP/metrics-a")"
hist_ok() { # FILE NAME MIN_COUNT: cumulative buckets, +Inf = count >= MIN_COUNT
	awk -v n="$2" -v min="$3" '
		index($0, n "_bucket{") == 1 { if ($NF < last) bad = 1; last = $NF; inf = $NF }
		index($0, n "_count ") == 1 { count = $NF }
		END { exit !(bad == 0 && count == inf && count >= min) }' "$1"
}
callbacks=4 # alice twice, bob and carol came back through /oidc/callback
hist_ok "$FB_TMP/metrics-a" fedbridge_login_callback_duration_seconds "$callbacks" &&
	[ "$(metric "$FB_TMP/metrics-a" fedbridge_login_callback_duration_seconds_count)" = "$callbacks" ] ||
	fail "login callback histogram: $(grep login_callback "$FB_TMP/metrics-a")"
checks=$(grep '^fedbridge_relay_checks_total' "$FB_TMP/metrics-b" | awk '{ s += $NF } END { print s }')
hist_ok "$FB_TMP/metrics-b" fedbridge_validate_duration_seconds "$checks" &&
	[ "$(metric "$FB_TMP/metrics-b" fedbridge_validate_duration_seconds_count)" = "$checks" ] ||
	fail "validate histogram ($checks checks): $(grep validate_duration "$FB_TMP/metrics-b")"
grep -Eq '^fedbridge_signing_key_expiry_timestamp_seconds\{kid="[A-Za-z0-9_-]+"\} [0-9]+$' "$FB_TMP/metrics-a" ||
	fail "no signing key expiry: $(grep signing_key "$FB_TMP/metrics-a")"
ok "metrics: $allowed logins allowed and $issued tokens issued (as the audit trail says), refusals by rule, login callback and /validate histograms ($checks checks)"

echo "oidc_login: $passed passed, 0 failed"
