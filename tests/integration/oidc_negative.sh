#!/bin/bash
# The OpenID Connect relying party against a misbehaving provider
# (fixtures/oidc/bad_op.mjs), one scenario per provider, modelled on the
# OpenID Foundation's RP certification tests for a Basic and Config RP plus
# fedbridge's own: each bad answer is refused with its own reason, both on
# the error page (reason code, correlation id) and in the log (the detail);
# the good ones (kid absent with a single key, the provider's key rotation)
# pass; after a bad ID token the bridge never calls userinfo; state and
# callback replay and RFC 9207 mix-ups are refused. Every refusal, at the
# callback, /login, /token, /logout and back-channel logout, leaves exactly
# one log line and one audit record with its correlation id; an outage one
# log line and no refusal record (trail_check, at the end).
. "$(dirname "$0")/lib.sh"

need_node "the OpenID Connect tests"

passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
pa=$(free_port)
po=$(free_port)
a="http://127.0.0.1:$pa"
op="http://127.0.0.1:$po"
app="http://127.0.0.1:9/cb"
umask 077
secret="bad-op-secret-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$secret" >"$keys/op.secret"
messenger_secret="messenger-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$messenger_secret" >"$keys/messenger.secret"
umask 022
assertion() { node "$FB_SOURCE_DIR/tests/integration/fixtures/oidc/assertion.mjs" "$@"; }
assertion keygen "$keys"

node "$FB_SOURCE_DIR/tests/integration/fixtures/oidc/bad_op.mjs" "$po" fedbridge "$secret" "$keys/backend.jwks" >"$FB_TMP/op.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/op.log" "^ready "

scenarios="good bad-sig-rs256 sig-none issuer-mismatch aud aud-extra iat sub kid-absent-single-jwks
kid-absent-multiple-jwks nonce-invalid userinfo-bad-sub-claim key-rotation-op-sign-key
discovery-issuer-mismatch expired no-exp iss-mixup no-iss-param hs256 iat-week-old old-far-exp
at-hash-wrong"
{
	cat <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$a", listen: "127.0.0.1:$pa"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret, refetch_min: 1s}
store: embedded:state-negative
tenants:
  - id: HZnKEBoqDU
    return_to: ["$app"]
    clients:
      - {client_id: messenger, client_secret_file: keys/messenger.secret}
      - {client_id: backend-jwt, client_auth: private_key_jwt, jwks: keys/backend.jwks}
    trusts:
      - remote: installation_B
        tenants: [HWqHczeM2P]
        relay: federation.b.example:443
        ca: keys/a-ca.pem
        client_cert: keys/a-to-b.cert.pem
        client_key: keys/a-to-b.key.pem
        keys: keys/b.jwks
        issuer: https://sso.b.example
        outbound: "true"
        release: [email]
    providers:
YAML
	for s in $scenarios; do
		printf '      - {name: %s, type: oidc, issuer: "%s/%s", client_id: fedbridge, client_secret_file: keys/op.secret, userinfo: true, allowed_algs: [RS256]}\n' "$s" "$op" "$s"
	done
	printf '      - {name: private-key-jwt, type: oidc, issuer: "%s/private-key-jwt", client_id: fedbridge, client_auth: private_key_jwt, client_key: keys/backend.key.pem}\n' "$op"
	echo "    mapping:"
	for s in $scenarios private-key-jwt; do
		printf '      - {provider: %s, fid: pairwise(claims.sub), attributes: {email: claims.email}}\n' "$s"
	done
} >"$pair/negative.yaml"
"$FB_BINARY" serve -c "$pair/negative.yaml" 2>"$FB_TMP/a.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a.log" "listening on"

# start SCENARIO JAR: GET /login/SCENARIO; prints the provider URL it redirects to.
start() {
	curl -s -c "$2" -b "$2" -o "$FB_TMP/start.html" -w '%{http_code} %{redirect_url}' \
		"$a/login/$1?return_to=$(printf '%s' "$app" | sed 's/:/%3A/g; s/\//%2F/g')"
}
# provider URL: what the provider answers (its redirect to the callback).
provider() { curl -s -o /dev/null -w '%{redirect_url}' "$1"; }
# callback URL JAR: the bridge's answer: "303 LOCATION" or "STATUS reason correlation".
callback() {
	curl -s -c "$2" -b "$2" -o "$FB_TMP/page.html" -D "$FB_TMP/headers" -w '%{http_code} %{redirect_url}' "$1" >"$FB_TMP/cb"
	code=$(cut -d' ' -f1 "$FB_TMP/cb")
	if [ "$code" = 303 ]; then
		cat "$FB_TMP/cb"
	else
		printf '%s %s %s' "$code" \
			"$(sed -n 's/.*<code id="reason">\([^<]*\)<.*/\1/p' "$FB_TMP/page.html")" \
			"$(sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p' "$FB_TMP/page.html")"
	fi
}
# login SCENARIO: the whole flow with a fresh browser; prints callback's answer.
login() {
	jar="$FB_TMP/$1.jar"
	rm -f "$jar"
	st=$(start "$1" "$jar")
	case "$st" in 302\ *) ;; *) echo "$st"; return ;; esac
	cb=$(provider "${st#302 }")
	[ -n "$cb" ] || { echo "provider did not redirect"; return; }
	callback "$cb" "$jar"
}
# refused SCENARIO REASON DETAIL: the login ends on REASON, and the log line of its
# correlation id carries DETAIL.
refused() {
	out=$(login "$1")
	set -- "$1" "$2" "$3" $out
	[ "$5" = "$2" ] || fail "$1: expected reason $2, got: $4 $5 $6 ($(tail -3 "$FB_TMP/a.log"))"
	line=$(grep "login \[$6\]" "$FB_TMP/a.log" | tail -1)
	case "$line" in *"$3"*) ;; *) fail "$1: the log line of $6 lacks '$3': $line" ;; esac
	trail "$FB_TMP/a.log" "$6" login_refused
	ok "$1: refused ($4 $2): ${line#*"$1: "}"
}
allowed() {
	out=$(login "$1")
	case "$out" in "303 $app?code="*) ;; *) fail "$1: expected a login, got: $out ($(tail -3 "$FB_TMP/a.log"))" ;; esac
	ok "$1: $2"
}

allowed good "a well-behaved provider logs in"
allowed private-key-jwt "the bridge authenticates at the token endpoint with private_key_jwt (ES256)"
allowed key-rotation-op-sign-key "first login with the provider's first key"
allowed kid-absent-single-jwks "rp-id_token-kid-absent-single-jwks: no kid, one key: that key"
refused bad-sig-rs256 id_token "bad signature"
refused sig-none id_token "alg none is not allowed"
refused hs256 id_token "alg HS256 is not allowed"
refused issuer-mismatch id_token "iss is not $op/issuer-mismatch"
refused aud id_token "aud must be exactly this client"
refused aud-extra id_token "aud must be exactly this client"
refused iat id_token "no iat"
refused sub id_token "sub must be"
refused kid-absent-multiple-jwks id_token "no kid, and 2 keys"
refused nonce-invalid id_token "nonce does not match"
refused expired id_token "expired"
refused no-exp id_token "no exp"
refused at-hash-wrong id_token "at_hash is not the access token's"
refused iat-week-old id_token "iat is too old"
refused userinfo-bad-sub-claim userinfo "sub is not the ID token's"
refused iss-mixup iss_mismatch "names another issuer"
refused no-iss-param iss_mismatch "lacks iss"

# Discovery for another issuer: the provider is misconfigured, which retrying will not mend;
# said so (not "try again"), before the browser leaves for the provider.
st=$(start discovery-issuer-mismatch "$FB_TMP/d.jar")
[ "${st%% *}" = 502 ] && grep -q '<code id="reason">idp_misconfigured</code>' "$FB_TMP/start.html" &&
	grep -q "Tell your administrator" "$FB_TMP/start.html" ||
	fail "discovery issuer mismatch: $st $(cat "$FB_TMP/start.html")"
grep -q "provider discovery-issuer-mismatch: failed (idp_misconfigured): .*discovery: issuer is" "$FB_TMP/a.log" ||
	fail "the discovery mismatch is not logged: $(tail -3 "$FB_TMP/a.log")"
trail "$FB_TMP/a.log" "$(sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p' "$FB_TMP/start.html")" none
[ "$(curl -s "$a/metrics" | sed -n 's/^fedbridge_idp_misconfigured_total{provider="discovery-issuer-mismatch"} //p')" -ge 1 ] ||
	fail "the misconfigured provider is not counted: $(curl -s "$a/metrics" | grep idp_)"
ok "discovery-issuer-mismatch: 502 idp_misconfigured at /login (not 'try again'), logged naming the issuer, counted in fedbridge_idp_misconfigured_total"

# rp-key-rotation-op-sign-key: by now the provider signs with a key the bridge has
# not seen; the unknown kid makes it refetch the keys once, and the login passes.
allowed key-rotation-op-sign-key "after the provider rotated its key: refetched on the unknown kid"

# No userinfo call after a bad ID token; one per good login.
stats=$(curl -s "$op/_stats")
for s in bad-sig-rs256 sig-none hs256 issuer-mismatch aud aud-extra iat sub kid-absent-multiple-jwks nonce-invalid expired no-exp iss-mixup no-iss-param iat-week-old at-hash-wrong; do
	case "$stats" in *"\"$s\""*) fail "userinfo of $s was called after its bad answer: $stats" ;; esac
done
case "$stats" in *'"good":1'*'"userinfo-bad-sub-claim":1'*) ;; *) fail "userinfo calls: $stats" ;; esac
ok "userinfo is never called after a bad ID token or response (calls: $stats)"

# ---- return_to: known open-redirect payloads never leave the bridge ----
# (the allow-list holds http://127.0.0.1:9/cb; payloads from the usual lists)
payloads=(
	"https://evil.example/" "//evil.example" "///evil.example" "/\\evil.example" "\\\\evil.example"
	"http://127.0.0.1:9/cb@evil.example" "http://127.0.0.1:9@evil.example/cb"
	"http://evil.example\\@127.0.0.1:9/cb" "http://127.0.0.1:9/cb.evil.example"
	"http://127.0.0.1:9/cbx" "http://127.0.0.1:9/cb/" "http://127.0.0.1:9/cb/../evil"
	"http://127.0.0.1:9/cb#@evil.example" "http://127.0.0.1:9/cb\\@evil.example"
	"http://127.0.0.1:90/cb" "https://127.0.0.1:9/cb" "http://127.0.0.1:9/CB"
	"http://127.0.0.1:9/cb%2F..%2F..%2Fevil" "javascript:alert(1)//http://127.0.0.1:9/cb"
	"data:text/html,<script>alert(1)</script>" "http:/\\/evil.example"
	"http://127.0.0.1:9/cb$(printf '\r\n')Location: https://evil.example"
	"http://127.0.0.1:9/cb$(printf '\t')x" " http://127.0.0.1:9/cb" "http://127.0.0.1:9/cb "
	"http://127.0.0.1:9/cb%00https://evil.example" "" "http://[::1]:9/cb" "http://localhost:9/cb"
)
enc() { node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' -- "$1"; }
for p in "${payloads[@]}"; do
	st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code} %{redirect_url}' "$a/login/good?return_to=$(enc "$p")")
	[ "$st" = "400 " ] || fail "return_to $(printf '%q' "$p") got: $st"
	trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
done
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$a/login/good")
[ "$st" = 400 ] || fail "no return_to got: $st"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
st=$(curl -s -o /dev/null -w '%{http_code}' "$a/login/good?return_to=$(enc "http://127.0.0.1:9/cb?next=%2Fchat&x=@evil")")
[ "$st" = 302 ] || fail "the listed URL with a query string got: $st"
ok "return_to: ${#payloads[@]} open-redirect payloads and a missing one refused with 400; the listed URL with a query passes"
# The login adds code= to return_to: a query already carrying code (or state, error), however
# spelled, would hand the backend a second code of the caller's choosing.
for p in "$app?code=attacker" "$app?x=1&code=attacker" "$app?cod%65=attacker" "$app?code%5B%5D=attacker" \
	"$app?x=1;code=attacker" "$app?state=s" "$app?error=access_denied" "$app?%zz=1"; do
	st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code} %{redirect_url}' "$a/login/good?return_to=$(enc "$p")")
	[ "$st" = "400 " ] || fail "return_to $p got: $st"
	trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
done
grep -q "return_to its query carries code, state or error" "$FB_TMP/a.log" ||
	fail "the return_to refusal does not say why: $(grep return_to "$FB_TMP/a.log" | tail -2)"
ok "return_to whose query carries code, state or error (plain, percent-encoded, code[], after ';') is refused with 400"

# ---- state and replay ----
jar="$FB_TMP/replay.jar"
st=$(start good "$jar")
cb=$(provider "${st#302 }")
cp "$jar" "$jar.copy"
out=$(callback "$cb" "$jar")
case "$out" in "303 $app?code="*) ;; *) fail "replay setup: $out" ;; esac
out=$(callback "$cb" "$jar.copy")
set -- $out
[ "$2" = state_replayed ] || fail "a replayed callback (same browser cookie, same code) got: $out"
trail "$FB_TMP/a.log" "$3" login_refused
ok "the same callback replayed (cookie kept) is refused: state_replayed"

out=$(callback "$cb" "$FB_TMP/empty.jar")
set -- $out
[ "$1" = 400 ] && [ "$2" = bad_state ] || fail "callback without the login cookie: $out"
trail "$FB_TMP/a.log" "$3" anonymous
ok "a callback from another browser (no login cookie) is refused: bad_state"

st=$(start good "$jar")
cb=$(provider "${st#302 }")
bad_state=$(printf '%s' "$cb" | sed 's/state=[^&]*/state=AAAAAAAAAAAAAAAAAAAAAA/')
out=$(callback "$bad_state" "$jar")
set -- $out
[ "$2" = bad_state ] || fail "a wrong state: $out"
trail "$FB_TMP/a.log" "$3" anonymous
no_state=$(printf '%s' "$cb" | sed 's/&state=[^&]*//; s/?state=[^&]*&/?/')
out=$(callback "$no_state" "$jar")
set -- $out
[ "$2" = bad_state ] || fail "no state: $out"
trail "$FB_TMP/a.log" "$3" anonymous
ok "a wrong state and a missing state are refused: bad_state"

# The IdP's error_description, with a line break and a forged line, stays in its one line.
forged=$(enc "no$(printf '\r\n')2026-01-01T00:00:00.000Z warn login [x]: provider good: refused (forged): x")
out=$(callback "$a/oidc/callback?error=access_denied&error_description=$forged&state=${cb##*state=}" "$jar")
set -- $out
[ "$2" = idp_error ] || fail "an IdP error: $out"
trail "$FB_TMP/a.log" "$3" login_refused
grep -q "refused (forged)" "$FB_TMP/a.log" && ! grep -q "^2026-01-01T00:00:00.000Z warn login \[x\]" "$FB_TMP/a.log" ||
	fail "the IdP's error_description is not escaped in its line: $(grep -F "[$3]" "$FB_TMP/a.log")"
ok "error=access_denied from the provider ends on an idp_error page; its error_description stays in the line"

# ---- RFC 8693 token exchange: an ID token held by the backend, validated like a login's ----
exchange() { # SUBJECT_TOKEN [TYPE] -> the JSON answer of POST /token (headers in $FB_TMP/h)
	curl -s -D "$FB_TMP/h" -u "messenger:$messenger_secret" \
		--data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
		--data-urlencode "subject_token=$1" \
		--data-urlencode "subject_token_type=${2:-urn:ietf:params:oauth:token-type:id_token}" \
		--data-urlencode audience=HWqHczeM2P "$a/token"
}
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
idt=$(curl -s "$op/good/mint")
resp=$(exchange "$idt")
tok=$(printf '%s' "$resp" | field access_token)
[ -n "$tok" ] && [ "$(printf '%s' "$resp" | field issued_token_type)" = urn:ietf:params:oauth:token-type:jwt ] ||
	fail "token exchange of a good ID token: $resp"
sed "s#issuer: https://sso.a.example#issuer: $a#" "$pair/installation-b.yaml" >"$pair/b-neg.yaml"
"$FB_BINARY" token verify -c "$pair/b-neg.yaml" --tenant HWqHczeM2P \
	--peer-cert "$keys/a-to-b.cert.pem" "$tok" >"$FB_TMP/verify.json" ||
	fail "the exchanged token is not allowed at B: $(cat "$FB_TMP/verify.json")"
ok "token exchange: a good ID token gives a federation token that B allows"
for sc in bad-sig-rs256:"bad signature" expired:expired aud:"aud must be" sig-none:"alg none" iss-mismatch:"no provider"; do
	name=${sc%%:*}
	want=${sc#*:}
	[ "$name" = iss-mismatch ] && name=issuer-mismatch
	resp=$(exchange "$(curl -s "$op/$name/mint")")
	[ "$(printf '%s' "$resp" | field error)" = invalid_grant ] || fail "exchange of $name: $resp"
	# Why is the log's (and the audit's), not the client's: the answer says only that it was refused.
	case "$(printf '%s' "$resp" | field error_description)" in *"$want"*) fail "exchange of $name: the detail reached the client: $resp" ;; esac
	grep -F "[$(corr_header "$FB_TMP/h")]" "$FB_TMP/a.log" | grep -qF "$want" || fail "exchange of $name: the log line lacks '$want'"
	trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" login_refused
done
ok "token exchange refuses bad ID tokens; their reason (bad signature, expired, aud, alg none, iss) is logged, not answered"
resp=$(exchange "$(curl -s "$op/old-far-exp/mint")")
[ "$(printf '%s' "$resp" | field error)" = invalid_grant ] || fail "exchange of an ID token issued 30 days ago: $resp"
grep -F "[$(corr_header "$FB_TMP/h")]" "$FB_TMP/a.log" | grep -qF "iat is too old" || fail "exchange of an old ID token: not logged: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" login_refused
ok "token exchange refuses an ID token issued 30 days ago, whatever its exp (tokens.exchange_max_age)"
resp=$(exchange "$idt" urn:ietf:params:oauth:token-type:access_token)
[ "$(printf '%s' "$resp" | field error)" = invalid_request ] || fail "exchange of an access token: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
ok "token exchange takes only ID tokens (subject_token_type)"

# ---- private_key_jwt at /token: the backend signs an assertion with its key ----
jwt_exchange() { # ASSERTION -> the JSON answer of a token exchange as backend-jwt (headers in $FB_TMP/h)
	curl -s -D "$FB_TMP/h" --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
		--data-urlencode "subject_token=$idt" \
		--data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:id_token \
		--data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
		--data-urlencode "client_assertion=$1" "$a/token"
}
idt=$(curl -s "$op/good/mint")
as=$(assertion sign "$keys" backend-jwt "$a/token")
resp=$(jwt_exchange "$as")
[ -n "$(printf '%s' "$resp" | field access_token)" ] || fail "private_key_jwt: $resp $(grep "client backend-jwt" "$FB_TMP/a.log")"
ok "private_key_jwt: a backend authenticated by a signed assertion gets federation tokens"
resp=$(jwt_exchange "$as")
[ "$(printf '%s' "$resp" | field error)" = invalid_client ] &&
	printf '%s' "$resp" | grep -q replayed || fail "an assertion used twice: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
ok "the same assertion twice: invalid_client (replayed)"
for bad in "$a/other" "$a"; do
	resp=$(jwt_exchange "$(assertion sign "$keys" backend-jwt "$bad")")
	[ "$(printf '%s' "$resp" | field error)" = invalid_client ] || fail "assertion for aud $bad: $resp"
	trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
done
grep -q "client_assertion: aud must be exactly $a/token" "$FB_TMP/a.log" || fail "the aud refusal is not logged"
resp=$(jwt_exchange "$(assertion sign "$keys" backend-jwt "$a/token" -120)")
[ "$(printf '%s' "$resp" | field error)" = invalid_client ] || fail "an expired assertion: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
resp=$(jwt_exchange "$(assertion sign "$keys" messenger "$a/token")")
[ "$(printf '%s' "$resp" | field error)" = invalid_client ] || fail "an assertion for a secret client: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
ok "assertions for another audience, expired, or for a client_secret client: invalid_client"
for life in "86400 0" "3600 none" "301 0"; do
	set -- $life
	resp=$(jwt_exchange "$(assertion sign "$keys" backend-jwt "$a/token" "$1" "$2")")
	[ "$(printf '%s' "$resp" | field error)" = invalid_client ] || fail "an assertion living $1 s (iat $2): $resp"
	trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
done
grep -q "client_assertion: its lifetime (exp - iat) is over 300 s" "$FB_TMP/a.log" &&
	grep -q "client_assertion: its lifetime (exp - now) is over 300 s" "$FB_TMP/a.log" ||
	fail "the lifetime refusal is not logged: $(grep "client backend-jwt" "$FB_TMP/a.log" | tail -3)"
resp=$(jwt_exchange "$(assertion sign "$keys" backend-jwt "$a/token" 300)")
[ -n "$(printf '%s' "$resp" | field access_token)" ] || fail "an assertion living 300 s: $resp"
ok "assertions living a day, an hour (no iat) or 301 s: invalid_client; 300 s passes"

# ---- RP-initiated logout: the backend ends the session, the browser goes to the IdP ----
out=$(login good)
code=${out#"303 $app?code="}
resp=$(curl -s -u "messenger:$messenger_secret" --data-urlencode grant_type=authorization_code \
	--data-urlencode "code=$code" --data-urlencode "redirect_uri=$app" "$a/token")
refresh=$(printf '%s' "$resp" | field refresh_token)
[ -n "$refresh" ] || fail "login for the logout test: $resp"
logout() { # REFRESH [POST_LOGOUT_REDIRECT_URI] (headers in $FB_TMP/h)
	curl -s -D "$FB_TMP/h" -u "messenger:$messenger_secret" --data-urlencode "refresh_token=$1" \
		${2:+--data-urlencode "post_logout_redirect_uri=$2"} "$a/logout"
}
resp=$(logout "$refresh" "https://evil.example/")
[ "$(printf '%s' "$resp" | field error)" = invalid_request ] || fail "logout to an unlisted URL: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
resp=$(logout "$refresh" "$app")
url=$(printf '%s' "$resp" | field end_session_url)
[ "$url" = "$op/good/logout?client_id=fedbridge&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb" ] ||
	fail "POST /logout: $resp"
resp=$(curl -s -D "$FB_TMP/h" -u "messenger:$messenger_secret" --data-urlencode grant_type=refresh_token \
	--data-urlencode "refresh_token=$refresh" "$a/token")
[ "$(printf '%s' "$resp" | field error)" = invalid_grant ] || fail "refresh after logout: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
resp=$(logout "$refresh")
case "$resp" in *'"session_ended":true'*) ;; *) fail "a second logout: $resp" ;; esac
ok "POST /logout ends the session (refresh refused after), answers the IdP's end-session URL; again is fine"

# ---- /token and back-channel logout refusals the flows above do not reach ----
# token ARGS...: POST /token with curl ARGS; prints the error, headers in $FB_TMP/h.
token() { curl -s -D "$FB_TMP/h" "$@" "$a/token" | field error; }
[ "$(token -u "messenger:wrong-$messenger_secret" -d grant_type=refresh_token -d refresh_token=x)" = invalid_client ] ||
	fail "a wrong client secret"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
[ "$(token --data-urlencode "client_id=$(printf 'evil\r\nclient')" -d client_secret=x -d grant_type=refresh_token)" = invalid_client ] ||
	fail "an unknown client"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
[ "$(token -u "messenger:$messenger_secret" -d grant_type=authorization_code -d code=forged -d "redirect_uri=$app")" = invalid_grant ] ||
	fail "a forged code"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
[ "$(token -u "messenger:$messenger_secret" -d grant_type=authorization_code -d "code=${code}" -d "redirect_uri=$app")" = invalid_grant ] ||
	fail "a code used twice"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
[ "$(token -u "messenger:$messenger_secret" -d grant_type=password)" = unsupported_grant_type ] ||
	fail "an unsupported grant"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" token_refused
[ "$(token -u "messenger:$messenger_secret" -H 'Content-Type: application/json' -d '{}')" = invalid_request ] ||
	fail "a JSON body"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
resp=$(curl -s -D "$FB_TMP/h" --data-urlencode "logout_token=$(curl -s "$op/good/mint")" "$a/oidc/backchannel-logout")
[ "$(printf '%s' "$resp" | field error)" = invalid_request ] || fail "an ID token as a logout token: $resp"
trail "$FB_TMP/a.log" "$(corr_header "$FB_TMP/h")" anonymous
ok "/token: a wrong secret, an unknown client, a forged or used code, an unsupported grant, a JSON body; an ID token as a logout token: refused"

n=$(trail_check "$pair/negative.yaml")
ok "each of $n refusals (callback, /login, return_to, token exchange, client assertions, grants, logout, back-channel logout) left one log line and one audit record; the outage none; the anonymous ones (no login state, no client or IdP that proved itself) a line saying so and no record"
# Anonymous refusals are counted by endpoint and reason, all of them.
metric() { curl -s "$a/metrics" | sed -n "s/^fedbridge_anonymous_refusals_total{endpoint=\"$1\",reason=\"$2\"} //p"; }
[ "$(metric login bad_state)" = 3 ] || fail "anonymous bad_state callbacks counted: $(metric login bad_state) (want 3)"
[ "$(metric login return_to)" = $((${#payloads[@]} + 9)) ] ||
	fail "anonymous return_to refusals counted: $(metric login return_to) (want $((${#payloads[@]} + 9)))"
[ "$(metric token invalid_client)" -ge 9 ] || fail "failed client authentications counted: $(metric token invalid_client)"
[ "$(metric back-channel\ logout backchannel_logout)" = 1 ] || fail "the unproven logout token is not counted"
ok "anonymous refusals are counted in fedbridge_anonymous_refusals_total by endpoint and reason"

echo "oidc_negative: $passed passed, 0 failed"
