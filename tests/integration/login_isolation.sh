#!/bin/bash
# An IdP whose token endpoint never answers holds up nothing but its own
# logins: while anonymous callbacks wait for it, the bridge answers /healthz
# and the relay check at once; past 16 callbacks per IdP the rest are
# answered within seconds, and all end on 502 (unavailable), never on a refusal.
. "$(dirname "$0")/lib.sh"
need_node "an IdP that never answers at its token endpoint"
examples_copy
pair="$FB_TMP/examples/pair"
pi=$(free_port)
iss="http://127.0.0.1:$pi/realms/corp"
pm=$(free_port) # a SAML IdP's metadata URL where nothing listens
sed -e "s|issuer: https://kc.a.example/realms/corp|issuer: $iss|" \
	-e 's|^    name: A Corp$|    name: A Corp\n    return_to: ["https://app.a.example/cb"]|' \
	-e "s|^    providers:\$|    providers:\n      - {name: a-saml, type: saml, idp_metadata: \"http://127.0.0.1:$pm/metadata\", sp_key: keys/b-sp.key, sp_cert: keys/b-sp.crt}|" \
	-e 's|^    mapping:$|    mapping:\n      - {provider: a-saml, fid: "attrs.employeeNumber[0]"}|' \
	-e 's|^        client_id: fedbridge$|        client_id: fedbridge\n        timeout: 4s|' \
	"$pair/installation-a.yaml" >"$pair/a.yaml"
grep -q "issuer: $iss" "$pair/a.yaml" && grep -q 'return_to:' "$pair/a.yaml" && grep -q 'timeout: 4s' "$pair/a.yaml" ||
	fail "could not write A's configuration"

cat >"$FB_TMP/idp.js" <<'EOF2'
// Discovery and keys as an IdP serves them; the token endpoint takes the request and never
// answers, except for the code "overloaded", which it answers 500 server_error.
const http = require('http'), fs = require('fs');
const [port, jwks] = [Number(process.env.IDP_PORT), fs.readFileSync(process.env.IDP_JWKS)];
const iss = `http://127.0.0.1:${port}/realms/corp`;
http.createServer((q, r) => {
  if (q.url.endsWith('/.well-known/openid-configuration')) {
    r.setHeader('content-type', 'application/json');
    r.end(JSON.stringify({ issuer: iss, authorization_endpoint: iss + '/auth',
      token_endpoint: iss + '/token', jwks_uri: iss + '/certs', response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'] }));
  } else if (q.url.endsWith('/certs')) {
    r.setHeader('content-type', 'application/json');
    r.end(jwks);
  } else if (q.url.endsWith('/token')) {
    let body = '';
    q.on('data', (d) => { body += d; });
    q.on('end', () => {
      if (new URLSearchParams(body).get('code') !== 'overloaded') return;
      r.statusCode = 500;
      r.setHeader('content-type', 'application/json');
      r.end('{"error":"server_error"}');
    });
  } else {
    r.statusCode = 404;
    r.end();
  }
}).listen(port, '127.0.0.1', () => console.log('idp up'));
EOF2
IDP_PORT=$pi IDP_JWKS="$pair/keys/a.jwks" node "$FB_TMP/idp.js" >"$FB_TMP/idp.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/idp.log" "idp up"
start_bridge "$pair/a.yaml" "$FB_TMP/a.log"
base="http://127.0.0.1:$BRIDGE_PORT"

# Anonymous callbacks: a free login state each, a made-up code (the bridge must ask the IdP).
callbacks=24
for i in $(seq "$callbacks"); do
	curl -s -D "$FB_TMP/login.$i" -o /dev/null \
		"$base/login/a-keycloak?return_to=https%3A%2F%2Fapp.a.example%2Fcb" || fail "GET /login"
	state=$(sed -n 's/^[Ll]ocation: .*[?&]state=\([^&[:space:]]*\).*/\1/p' "$FB_TMP/login.$i")
	cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$FB_TMP/login.$i" | head -1)
	[ -n "$state" ] && [ -n "$cookie" ] ||
		fail "no login state: $(head -1 "$FB_TMP/login.$i") $(tail -3 "$FB_TMP/a.log")"
	printf '%s %s\n' "$state" "$cookie" >>"$FB_TMP/states"
done
i=0
waiting=""
while read -r state cookie; do
	i=$((i + 1))
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 -b "$cookie" \
		"$base/oidc/callback?code=made-up-$i&state=$state" >"$FB_TMP/cb.$i" &
	waiting="$waiting $!"
done <"$FB_TMP/states"

# Meanwhile: health and the relay check answer at once (each within 2 s, not behind the IdP).
late=0
for i in $(seq 20); do
	curl -s -o /dev/null --max-time 2 "$base/healthz" || late=$((late + 1))
	curl -s -o /dev/null --max-time 2 -H "Authorization: Fed x.y.z" -H "X-Fed-Tenant: HZnKEBoqDU" \
		"$base/validate" || late=$((late + 1))
done
[ "$late" = 0 ] || fail "$late of 40 health and relay checks took over 2 s while callbacks waited for the IdP"
pass "40 health and relay checks answered within 2 s each while $callbacks callbacks waited for a silent IdP"

# shellcheck disable=SC2086
wait $waiting
codes=$(cat "$FB_TMP"/cb.* | cut -d' ' -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ';')
[ "$(cat "$FB_TMP"/cb.* | grep -vc '^502 ')" = 0 ] || fail "callbacks answered other than 502: $codes"
at_once=$(awk '$2 < 3' "$FB_TMP"/cb.* | wc -l)
waited=$(awk '$2 >= 3' "$FB_TMP"/cb.* | wc -l)
longest=$(awk '$2 > m { m = $2 } END { print int(m) }' "$FB_TMP"/cb.*)
[ "$at_once" -ge 1 ] && [ "$waited" -ge 1 ] && [ "$waited" -le 16 ] ||
	fail "expected at most 16 callbacks waiting for the IdP, the rest answered at once: $(cat "$FB_TMP"/cb.*)"
grep -q "requests already wait for this IdP" "$FB_TMP/a.log" || fail "the IdP's share is not logged"
[ "$longest" -lt 6 ] || fail "a callback took ${longest} s: the provider's 4 s deadline did not hold"
pass "every callback ended 502 (unavailable), none refused: $waited waited for the provider's 4 s deadline (longest ${longest} s), $at_once over its share answered within 3 s"
# An IdP that answers 500 at its token endpoint is down, not a verdict: 502, try again.
curl -s -D "$FB_TMP/login.x" -o /dev/null "$base/login/a-keycloak?return_to=https%3A%2F%2Fapp.a.example%2Fcb"
state=$(sed -n 's/^[Ll]ocation: .*[?&]state=\([^&[:space:]]*\).*/\1/p' "$FB_TMP/login.x")
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$FB_TMP/login.x" | head -1)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -b "$cookie" \
	"$base/oidc/callback?code=overloaded&state=$state")
[ "$code" = 502 ] || fail "an IdP answering 500 at its token endpoint: $code (want 502)"
pass "an IdP answering 500 at its token endpoint ends the login on 502, not a refusal"
# A SAML IdP whose metadata could not be fetched at start: the bridge started all the same,
# /readyz names it, its logins answer unavailable.
grep -q "provider a-saml: IdP metadata" "$FB_TMP/a.log" || fail "no warning about a-saml's metadata"
ready=$(curl -s "$base/readyz")
echo "$ready" | jq -e '.status == "ready" and (.unavailable | any(.provider_metadata == "a-saml"))' >/dev/null ||
	fail "/readyz does not list a-saml: $ready"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/login/a-saml?return_to=https%3A%2F%2Fapp.a.example%2Fcb")
[ "${code:0:1}" = 5 ] || fail "a login at a-saml without its metadata: $code (want 5xx)"
pass "a SAML IdP down at start: the bridge serves, /readyz lists it, its logins answer $code"

# A SAML post for a provider nobody configured is routed before it is read: 404, not 2 MiB held.
head -c $((3 << 20)) /dev/zero | tr '\0' 'A' >"$FB_TMP/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --data-binary "@$FB_TMP/big" \
	-H 'Content-Type: application/x-www-form-urlencoded' "$base/saml/acs/nobody")
[ "$code" = 404 ] || fail "a 3 MiB post to an unknown SAML provider: $code (want 404)"
pass "a 3 MiB post to /saml/acs/ of no provider is answered 404 without being kept"
echo "login_isolation: 5 passed, 0 failed"
