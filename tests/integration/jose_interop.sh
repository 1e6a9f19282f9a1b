#!/bin/bash
# Interoperability with an independent JOSE implementation, panva/jose on
# Node.js (tests/interop), both ways and for both algorithms: tokens
# `fedbridge token issue` makes verify in jose and hold exactly the contract's
# header and claims; tokens jose signs with an installation's key and the
# contract's claims pass `fedbridge token verify`, and jose-signed tokens that
# break the contract are denied for the right reason.
. "$(dirname "$0")/lib.sh"

need_node "the JOSE interop test"

passed=0
ok() {
	pass "$*"
	passed=$((passed + 1))
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64url_decode() {
	s=$(tr -- '-_' '+/')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | openssl base64 -d -A
}
# jwks_kid JWKS_TEXT: the kid of a one-key JWKS.
jwks_kid() { printf '%s' "$1" | sed -n 's/.*"kid":"\([^"]*\)".*/\1/p'; }
# pkcs8 PEM: the key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), which jose's importPKCS8 reads.
pkcs8() {
	if head -1 "$1" | grep -q -- '-----BEGIN PRIVATE KEY-----'; then
		echo "$1"
	else
		openssl pkcs8 -topk8 -nocrypt -in "$1" -out "$1.p8" || fail "cannot convert $1 to PKCS#8"
		echo "$1.p8"
	fi
}

# ---- jose, installed from the lock file into a scratch copy ----
interop="$FB_TMP/interop"
npm_copy interop "$interop"
jose_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$interop/node_modules/jose/package.json")
[ -n "$jose_version" ] || fail "jose did not install"
ok "jose $jose_version on node $(node --version)"

jose() { node "$interop/interop.mjs" "$@"; }

# run CMD...: runs CMD, stdout in $out, stderr in $err, exit status in $rc.
run() {
	out=$("$@" 2>"$FB_TMP/stderr") && rc=0 || rc=$?
	err=$(cat "$FB_TMP/stderr")
}

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
conf_a="$pair/installation-a.yaml"
conf_b="$pair/installation-b.yaml"
cnf_ab=$(cert_s256 "$keys/a-to-b.cert.pem")
[ ${#cnf_ab} = 43 ] || fail "cannot hash a-to-b.cert.pem"

# fedbridge's kid for A is the RFC 7638 thumbprint make-keys.sh computed for a.jwks.
run "$FB_BINARY" keys jwks -c "$conf_a"
[ "$rc" = 0 ] || fail "keys jwks for A: exit $rc: $err"
kid_a=$(jwks_kid "$out")
[ -n "$kid_a" ] && [ "$kid_a" = "$(jwks_kid "$(cat "$keys/a.jwks")")" ] ||
	fail "keys jwks kid '$kid_a' is not a.jwks's: $out / $(cat "$keys/a.jwks")"
ok "A's kid $kid_a is the same in keys jwks and a.jwks"

# ---- direction 1: fedbridge issues (ES256), jose verifies ----
run "$FB_BINARY" token issue -c "$conf_a" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 \
	--audience HWqHczeM2P --attr email=alice@a.example --attr department=sales
[ "$rc" = 0 ] || fail "token issue: exit $rc: $err"
tok1=$out
hdr1=$(printf '%s' "${tok1%%.*}" | b64url_decode)
[ "$hdr1" = "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"$kid_a\"}" ] ||
	fail "unexpected header of an issued token: $hdr1"
run jose verify --jwks "$keys/a.jwks" --issuer https://sso.a.example --audience HWqHczeM2P \
	--token "$tok1"
[ "$rc" = 0 ] || fail "jose rejected a token fedbridge issued: $err (token $tok1)"
for want in '"iss":"https://sso.a.example"' '"sub":"fid:0/HZnKEBoqDU/100401"' '"tid":"HZnKEBoqDU"' \
	'"aud":"HWqHczeM2P"' "\"cnf\":{\"x5t#S256\":\"$cnf_ab\"}" \
	'"attrs":{"email":"alice@a.example","department":"sales"}'; do
	case "$out" in *"$want"*) ;; *) fail "jose's payload lacks $want: $out" ;; esac
done
ok "jose verifies an ES256 token fedbridge issued: $out"

# One character of the payload changed, still valid JSON: jose must refuse the signature.
pl1=${tok1#*.}
pl1=${pl1%%.*}
forged=$(printf '%s' "$pl1" | b64url_decode | sed 's/alice@a/alicf@a/' | b64url)
[ "$forged" != "$pl1" ] || fail "could not tamper with the payload"
run jose verify --jwks "$keys/a.jwks" --issuer https://sso.a.example \
	--audience HWqHczeM2P --token "${tok1%%.*}.$forged.${tok1##*.}"
[ "$rc" = 1 ] || fail "jose accepted a tampered token (exit $rc): $out"
case "$err" in *ERR_JWS_SIGNATURE_VERIFICATION_FAILED*) ;; *) fail "tampered token: $err" ;; esac
ok "jose refuses the same token with one payload character changed"

# ---- direction 2: jose signs (ES256) with A's key, fedbridge verifies at B ----
now=$(date +%s)
# claims FID [AUD_JSON] [EXTRA]: the contract's claims, fresh jti and sid.
claims() {
	printf '{"iss":"https://sso.a.example","sub":"%s","tid":"HZnKEBoqDU","aud":%s,"iat":%d,"nbf":%d,"exp":%d,"jti":"%s","sid":"%s","cnf":{"x5t#S256":"%s"},"attrs":{"email":"bob@a.example"}%s}' \
		"$1" "${2:-\"HWqHczeM2P\"}" "$now" "$now" $((now + 300)) "$(openssl rand 16 | b64url)" \
		"$(openssl rand 16 | b64url)" "$cnf_ab" "${3:-}"
}
key_a=$(pkcs8 "$keys/a-signing.pem")
# expect_deny REASON WHAT CONF CERT TOKEN
expect_deny() {
	run "$FB_BINARY" token verify -c "$3" --tenant HWqHczeM2P --peer-cert "$4" "$5"
	[ "$rc" = 1 ] && [ "$out" = "{\"decision\":\"deny\",\"reason\":\"$1\"}" ] ||
		fail "$2: expected deny $1, got exit $rc: $out $err"
	ok "$2 is denied $1"
}

c2=$(claims fid:0/HZnKEBoqDU/100402)
sid2=$(printf '%s' "$c2" | sed -n 's/.*"sid":"\([^"]*\)".*/\1/p')
[ ${#sid2} = 22 ] || fail "sid is not 22 base64url characters: $c2"
run jose sign --key "$key_a" --kid "$kid_a" --alg ES256 --claims "$c2"
[ "$rc" = 0 ] || fail "jose sign: $err"
tok2=$out
hdr2=$(printf '%s' "${tok2%%.*}" | b64url_decode)
[ "$hdr2" = "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"$kid_a\"}" ] ||
	fail "jose's header is not exactly alg, typ, kid: $hdr2"
run "$FB_BINARY" token verify -c "$conf_b" --tenant HWqHczeM2P \
	--peer-cert "$keys/a-to-b.cert.pem" "$tok2"
[ "$rc" = 0 ] && [ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100402","tid":"HZnKEBoqDU","attrs":{"email":"bob@a.example"}}' ] ||
	fail "fedbridge did not allow a jose-signed ES256 token: exit $rc: $out $err (token $tok2)"
ok "fedbridge allows an ES256 token jose signed: $out"

expect_deny cert_mismatch "the jose-signed token from the other certificate (b-to-a)" \
	"$conf_b" "$keys/b-to-a.cert.pem" "$tok2"

run jose sign --key "$key_a" --kid "$kid_a" --alg ES256 --claims "$(claims fid:0/HZnKEBoqDU/100402)" \
	--extra-header '{"jku":"https://evil.example/jwks.json"}'
[ "$rc" = 0 ] || fail "jose sign with jku: $err"
case "$(printf '%s' "${out%%.*}" | b64url_decode)" in *'"jku"'*) ;; *) fail "no jku in the header" ;; esac
expect_deny malformed "a jose-signed token with a jku header member" "$conf_b" "$keys/a-to-b.cert.pem" "$out"

run jose sign --key "$key_a" --kid "$kid_a" --alg ES256 \
	--claims "$(claims fid:0/HZnKEBoqDU/100402 '["HWqHczeM2P"]')"
[ "$rc" = 0 ] || fail "jose sign with an aud list: $err"
expect_deny malformed "a jose-signed token whose aud is a list" "$conf_b" "$keys/a-to-b.cert.pem" "$out"

run jose sign --key "$key_a" --kid "$kid_a" --alg ES256 \
	--claims "$(claims fid:0/HZnKEBoqDU/100402 '' ',"scope":"admin"')"
[ "$rc" = 0 ] || fail "jose sign with an extra claim: $err"
expect_deny malformed "a jose-signed token with a claim outside the contract" \
	"$conf_b" "$keys/a-to-b.cert.pem" "$out"

run "$FB_BINARY" keys generate --out "$FB_TMP/impostor.pem"
[ "$rc" = 0 ] || fail "keys generate: $err"
run jose sign --key "$(pkcs8 "$FB_TMP/impostor.pem")" --kid "$kid_a" --alg ES256 \
	--claims "$(claims fid:0/HZnKEBoqDU/100402)"
[ "$rc" = 0 ] || fail "jose sign with a fresh key: $err"
expect_deny bad_signature "a token jose signed with a fresh key under A's kid" \
	"$conf_b" "$keys/a-to-b.cert.pem" "$out"

# ---- EdDSA: A signs with a new Ed25519 key, B trusts its JWKS ----
ed_key="$keys/a-ed25519.pem"
run "$FB_BINARY" keys generate --alg EdDSA --out "$ed_key"
[ "$rc" = 0 ] && [ "$out" = "$ed_key: new EdDSA key" ] || fail "keys generate --alg EdDSA: $out $err"
conf_a_ed="$pair/installation-a-ed.yaml"
conf_b_ed="$pair/installation-b-ed.yaml"
sed 's#^  signing: \[keys/a-signing.pem\]$#  signing: [keys/a-ed25519.pem]#' "$conf_a" >"$conf_a_ed"
grep -q 'signing: \[keys/a-ed25519.pem\]' "$conf_a_ed" || fail "could not point A's copy at the Ed25519 key"
run "$FB_BINARY" keys jwks -c "$conf_a_ed"
[ "$rc" = 0 ] || fail "keys jwks for the Ed25519 copy of A: $err"
printf '%s\n' "$out" >"$keys/a-ed.jwks"
kid_ed=$(jwks_kid "$out")
x_ed=$(printf '%s' "$out" | sed -n 's/.*"x":"\([^"]*\)".*/\1/p')
want_kid=$(printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$x_ed" | openssl dgst -sha256 -binary | b64url)
want_x=$(openssl pkey -in "$ed_key" -pubout -outform DER | tail -c 32 | b64url)
[ "$out" = "{\"keys\":[{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"$want_x\",\"kid\":\"$want_kid\",\"alg\":\"EdDSA\",\"use\":\"sig\"}]}" ] ||
	fail "unexpected Ed25519 JWKS (want x $want_x, kid $want_kid): $out"
ok "the Ed25519 JWKS has OpenSSL's public key and its RFC 7638 kid $kid_ed"
sed 's#keys: keys/a\.jwks #keys: keys/a-ed.jwks #' "$conf_b" >"$conf_b_ed"
grep -q 'keys: keys/a-ed.jwks ' "$conf_b_ed" || fail "could not point B's copy at a-ed.jwks"

run "$FB_BINARY" token issue -c "$conf_a_ed" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100403 \
	--audience HWqHczeM2P --attr email=carol@a.example
[ "$rc" = 0 ] || fail "token issue with the Ed25519 key: $err"
tok3=$out
hdr3=$(printf '%s' "${tok3%%.*}" | b64url_decode)
[ "$hdr3" = "{\"alg\":\"EdDSA\",\"typ\":\"fed+jwt\",\"kid\":\"$kid_ed\"}" ] ||
	fail "unexpected header of an EdDSA token: $hdr3"
run jose verify --jwks "$keys/a-ed.jwks" --issuer https://sso.a.example --audience HWqHczeM2P \
	--token "$tok3"
[ "$rc" = 0 ] || fail "jose rejected an EdDSA token fedbridge issued: $err (token $tok3)"
for want in '"sub":"fid:0/HZnKEBoqDU/100403"' "\"cnf\":{\"x5t#S256\":\"$cnf_ab\"}" \
	'"attrs":{"email":"carol@a.example"}'; do
	case "$out" in *"$want"*) ;; *) fail "jose's payload lacks $want: $out" ;; esac
done
ok "jose verifies an EdDSA token fedbridge issued: $out"
run jose verify --jwks "$keys/a.jwks" --issuer https://sso.a.example --audience HWqHczeM2P \
	--token "$tok3"
[ "$rc" = 1 ] || fail "jose verified an EdDSA token against A's ES256 JWKS: $out"
case "$err" in *ERR_JWKS_NO_MATCHING_KEY*) ;; *) fail "EdDSA token against a.jwks: $err" ;; esac
ok "jose finds no key for it in the ES256 JWKS"

run jose sign --key "$(pkcs8 "$ed_key")" --kid "$kid_ed" --alg EdDSA \
	--claims "$(claims fid:0/HZnKEBoqDU/100404)"
[ "$rc" = 0 ] || fail "jose sign EdDSA: $err"
tok4=$out
run "$FB_BINARY" token verify -c "$conf_b_ed" --tenant HWqHczeM2P \
	--peer-cert "$keys/a-to-b.cert.pem" "$tok4"
[ "$rc" = 0 ] && [ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100404","tid":"HZnKEBoqDU","attrs":{"email":"bob@a.example"}}' ] ||
	fail "fedbridge did not allow a jose-signed EdDSA token: exit $rc: $out $err (token $tok4)"
ok "fedbridge allows an EdDSA token jose signed: $out"
expect_deny unknown_key "the EdDSA token at a B that trusts only A's ES256 key" \
	"$conf_b" "$keys/a-to-b.cert.pem" "$tok4"

run jose sign --key "$key_a" --kid "$kid_ed" --alg ES256 --claims "$(claims fid:0/HZnKEBoqDU/100404)"
[ "$rc" = 0 ] || fail "jose sign ES256 under the Ed25519 kid: $err"
expect_deny bad_signature "an ES256 token under the Ed25519 key's kid" \
	"$conf_b_ed" "$keys/a-to-b.cert.pem" "$out"

echo "jose_interop: $passed passed, 0 failed"
