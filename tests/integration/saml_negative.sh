#!/bin/bash
# The SAML service provider's ACS against forged responses: each attack or
# mistake is refused with its own reason on the error page (and the detail in
# the log), never a crash. Responses are built and signed with test keys by
# fixtures/saml/forge.py (python3-lxml, python3-xmlsec); the bridge's
# AuthnRequests are real (Lasso, RSA-SHA256), and every response answers one.
# Every refusal, at the ACS and at single logout, leaves exactly one log line
# and one audit record with its correlation id (trail_check, at the end).
. "$(dirname "$0")/lib.sh"
# A leak inside Lasso's single logout cannot be told apart from other glib allocations.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$FB_SOURCE_DIR/tests/lsan-saml.supp"

py=/usr/bin/python3 # Debian's: python3-lxml and python3-xmlsec live there
"$py" -c 'import lxml, xmlsec' 2>/dev/null ||
	fail "python3-lxml and python3-xmlsec are needed; scripts/deps.sh test installs them"

passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}

examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
pa=$(free_port)
a="http://127.0.0.1:$pa"
app="http://127.0.0.1:9/cb"
idp="http://127.0.0.1:9/idp"
(
	cd "$keys"
	umask 077
	for k in sp idp other; do
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$k.key" -out "$k.pem" -days 30 \
			-subj "/CN=$k" 2>/dev/null || exit 1
	done
	chmod 644 sp.pem idp.pem other.pem
) || fail "openssl"
cert=$(grep -v CERTIFICATE "$keys/idp.pem" | tr -d '\n')
cat >"$keys/idp-metadata.xml" <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="$idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$cert</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$idp/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$idp/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML
grep -v SingleLogoutService "$keys/idp-metadata.xml" | sed "s#entityID=\"$idp\"#entityID=\"$idp-noslo\"#" >"$keys/idp-metadata-noslo.xml"
cat >"$pair/saml.yaml" <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$a", listen: "127.0.0.1:$pa"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret}
store: embedded:state-saml
tenants:
  - id: HZnKEBoqDU
    return_to: ["$app"]
    providers:
      - {name: corp, type: saml, idp_metadata: keys/idp-metadata.xml, sp_key: keys/sp.key, sp_cert: keys/sp.pem}
      - {name: corp-unsolicited, type: saml, idp_metadata: keys/idp-metadata.xml, sp_key: keys/sp.key, sp_cert: keys/sp.pem, allow_idp_initiated: true}
      - {name: corp-noslo, type: saml, idp_metadata: keys/idp-metadata-noslo.xml, sp_key: keys/sp.key, sp_cert: keys/sp.pem}
    mapping:
      - provider: corp
        fid: pairwise(nameid)
        attributes: {email: "first(attrs.mail)", groups: "attrs.groups"}
      - provider: corp-unsolicited
        fid: pairwise(nameid)
      - provider: corp-noslo
        fid: pairwise(nameid)
YAML
"$FB_BINARY" serve -c "$pair/saml.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a2.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a2.log" "listening on 127.0.0.1:$pa"
sp="$a/saml/metadata/corp"
acs="$a/saml/acs/corp"

# The SP's metadata names its entity, ACS and SLO, and its certificate.
md=$(curl -s "$a/saml/metadata/corp")
case "$md" in *"entityID=\"$sp\""*"Location=\"$acs\""*) ;; *) fail "SP metadata: $md" ;; esac
ok "GET /saml/metadata: entityID $sp, ACS $acs"

# login JAR: starts a login; sets RID (the AuthnRequest's ID) and RELAY.
login() {
	loc=$(curl -s -c "$1" -b "$1" -o /dev/null -w '%{redirect_url}' \
		"$a/login/corp?return_to=$(printf '%s' "$app" | sed 's/:/%3A/g; s/\//%2F/g')")
	read -r RID RELAY SIGALG < <("$py" - "$loc" <<'PY'
import base64, re, sys, urllib.parse, zlib
q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
xml = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()
print(re.search(r' ID="([^"]+)"', xml).group(1), q["RelayState"][0], q["SigAlg"][0])
PY
	)
	[ -n "$RID" ] || fail "no AuthnRequest in $loc"
}
forge() { # CASE [ARGS...] -> base64 SAMLResponse for the login in progress
	"$py" "$FB_SOURCE_DIR/tests/integration/fixtures/saml/forge.py" "$1" --key "$keys/idp.key" \
		--cert "$keys/idp.pem" --other-key "$keys/other.key" --other-cert "$keys/other.pem" \
		--idp "$idp" --sp "$sp" --acs "$acs" --request-id "$RID" "${@:2}"
}
# post JAR B64: the ACS's answer: "303 LOCATION" or "STATUS reason correlation".
post() {
	printf '%s' "$2" >"$FB_TMP/resp.b64"
	curl -s -c "$1" -b "$1" -o "$FB_TMP/page.html" -w '%{http_code} %{redirect_url}' \
		--data-urlencode "SAMLResponse@$FB_TMP/resp.b64" --data-urlencode "RelayState=$RELAY" "$acs" >"$FB_TMP/cb"
	code=$(cut -d' ' -f1 "$FB_TMP/cb")
	if [ "$code" = 303 ]; then
		cat "$FB_TMP/cb"
	else
		printf '%s %s %s' "$code" \
			"$(sed -n 's/.*<code id="reason">\([^<]*\)<.*/\1/p' "$FB_TMP/page.html")" \
			"$(sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p' "$FB_TMP/page.html")"
	fi
}

login "$FB_TMP/j0"
[ "$SIGALG" = http://www.w3.org/2001/04/xmldsig-more#rsa-sha256 ] || fail "AuthnRequest SigAlg: $SIGALG"
ok "the AuthnRequest is signed with RSA-SHA256 and answered by the RelayState-named cookie"

good=$(forge good)
out=$(post "$FB_TMP/j0" "$good")
case "$out" in "303 $app?code="*) ;; *) fail "a good response: $out $(tail -3 "$FB_TMP/a2.log")" ;; esac
ok "a good response (Response and Assertion signed) logs in: 303 to return_to with a code"

# refused CASE REASON DETAIL [FORGE ARGS...]
refused() {
	c=$1 reason=$2 detail=$3
	shift 3
	login "$FB_TMP/j-$c"
	out=$(post "$FB_TMP/j-$c" "$(forge "$c" "$@")")
	set -- $out
	[ "$2" = "$reason" ] || fail "$c: expected $reason, got: $out ($(tail -2 "$FB_TMP/a2.log"))"
	line=$(grep "login \[$3\]" "$FB_TMP/a2.log" | tail -1)
	case "$line" in *"$detail"*) ;; *) fail "$c: the log line lacks '$detail': $line" ;; esac
	trail "$FB_TMP/a2.log" "$3" login_refused
	ok "$c: $reason: ${line#*refused }"
}
refused unsigned signature "the Assertion is not signed"
refused response-only signature "the Assertion is not signed"
refused wrong-key signature "does not verify with a certificate of the IdP's metadata"
refused wrong-key-keyvalue signature "does not verify with a certificate of the IdP's metadata"
refused tampered signature "does not verify"
refused sha1 algorithm "weaker than SHA-256"
refused second-idp signature "the Response's signature"
refused extra-unsigned-assertion bad_response "exactly one Assertion"
for n in 1 2 3 4 5 6 7 8; do
	login "$FB_TMP/j-xsw$n"
	out=$(post "$FB_TMP/j-xsw$n" "$(forge "xsw$n")")
	set -- $out
	case "$2" in bad_response | signature) ;; *) fail "xsw$n: $out" ;; esac
	trail "$FB_TMP/a2.log" "$3" login_refused
done
ok "XML signature wrapping XSW1-8: all refused (bad_response or signature)"
refused duplicate-id bad_response "appears twice"
refused wrong-issuer issuer "Issuer is not $idp"
refused status-failure status "did not answer Success"
refused wrong-destination destination "Destination is not this ACS"
refused no-destination destination "Destination is not this ACS"
refused wrong-recipient subject_confirmation "Recipient is not this ACS"
refused not-bearer subject_confirmation "no SubjectConfirmation with Method bearer"
# Two SubjectConfirmations (valid SAML): one bearer confirmation that passes every check is enough.
for c in two-confirmations two-confirmations-recipient; do
	login "$FB_TMP/j-$c"
	out=$(post "$FB_TMP/j-$c" "$(forge "$c" --nameid "$c-user")")
	case "$out" in "303 $app?code="*) ;; *) fail "$c: $out ($(tail -2 "$FB_TMP/a2.log"))" ;; esac
done
ok "two SubjectConfirmations (holder-of-key or another Recipient first, then a good bearer one) log in"
refused two-confirmations-none-good subject_confirmation "Recipient is not this ACS"
refused wrong-in-response-to in_response_to "InResponseTo is not this login's request"
refused no-in-response-to in_response_to "no InResponseTo"
refused wrong-audience audience "Audience is not $sp"
refused expired subject_confirmation "expired"
refused not-yet-valid conditions "not valid yet"
refused unknown-condition conditions "unknown condition"
refused doctype bad_response "DOCTYPE"
refused billion-laughs bad_response "DOCTYPE"
refused xxe bad_response "DOCTYPE"
refused oversized bad_response "too large"

# Encrypted assertions: decrypted with the SP's key, then checked the same way.
login "$FB_TMP/je"
out=$(post "$FB_TMP/je" "$(forge encrypted --sp-cert "$keys/sp.pem" --nameid encrypted-user)")
case "$out" in "303 $app?code="*) ;; *) fail "an encrypted assertion: $out ($(tail -2 "$FB_TMP/a2.log"))" ;; esac
ok "an assertion signed, then encrypted to the SP's certificate (AES-128, RSA-OAEP), logs in"
# What AD FS, Keycloak and Entra send once encryption is on: the Response signed over the
# EncryptedAssertion, the Assertion inside signed too. The Response's signature is checked first.
login "$FB_TMP/jes"
out=$(post "$FB_TMP/jes" "$(forge encrypted-signed-response --sp-cert "$keys/sp.pem" --nameid encrypted-signed-user)")
case "$out" in "303 $app?code="*) ;; *) fail "a signed Response with a signed, encrypted assertion: $out ($(tail -2 "$FB_TMP/a2.log"))" ;; esac
ok "a signed Response (RSA-SHA256) holding an assertion signed, then encrypted (AES-128, RSA-OAEP), logs in"
refused encrypted-response-only signature "the Assertion is not signed" --sp-cert "$keys/sp.pem"
refused encrypted-rsa15 algorithm "RSA-OAEP only" --sp-cert "$keys/sp.pem"
refused encrypted bad_response "does not decrypt" --sp-cert "$keys/other.pem"

# An empty NameID: refused like the other ACS refusals, with one log line and one audit record.
login "$FB_TMP/jen"
out=$(post "$FB_TMP/jen" "$(forge good --nameid '')")
set -- $out
[ "$2" = bad_response ] || fail "an empty NameID: $out"
[ "$(grep -c "login \[$3\]: .*refused" "$FB_TMP/a2.log")" = 1 ] && grep "login \[$3\]: .*refused" "$FB_TMP/a2.log" | grep -q "empty NameID" ||
	fail "an empty NameID is not logged once, naming the NameID: $(grep "login \[$3\]" "$FB_TMP/a2.log")"
[ "$("$FB_BINARY" sessions audit -c "$pair/saml.yaml" --limit 1000 | grep -c "\"correlation\":\"$3\".*login_refused\|login_refused.*\"correlation\":\"$3\"")" = 1 ] ||
	fail "an empty NameID has no single audit record: $("$FB_BINARY" sessions audit -c "$pair/saml.yaml" --limit 1000 | grep "$3")"
trail "$FB_TMP/a2.log" "$3" login_refused
ok "an empty NameID is refused (bad_response), logged once and audited once"
login "$FB_TMP/jdel"
out=$(post "$FB_TMP/jdel" "$(forge good --nameid "$(printf 'del\177user')")")
set -- $out
[ "$2" = bad_response ] || fail "a NameID holding a control character: $out"
[ "$(grep -c "login \[$3\]: .*refused" "$FB_TMP/a2.log")" = 1 ] &&
	grep "login \[$3\]: .*refused" "$FB_TMP/a2.log" | grep -q "subject holds a control character" ||
	fail "a NameID holding a control character is not logged once: $(grep "login \[$3\]" "$FB_TMP/a2.log")"
[ "$("$FB_BINARY" sessions audit -c "$pair/saml.yaml" --limit 1000 | grep -c "\"correlation\":\"$3\".*login_refused\|login_refused.*\"correlation\":\"$3\"")" = 1 ] ||
	fail "a NameID holding a control character has no single audit record: $("$FB_BINARY" sessions audit -c "$pair/saml.yaml" --limit 1000 | grep "$3")"
trail "$FB_TMP/a2.log" "$3" login_refused
ok "a NameID holding a control character is refused (bad_response), logged once and audited once"

# Comment injection: the value is the whole text, so the login maps the full NameID.
login "$FB_TMP/jc"
out=$(post "$FB_TMP/jc" "$(forge comment-nameid)")
case "$out" in "303 $app?code="*) ;; *) fail "comment-nameid: $out" ;; esac
"$FB_BINARY" sessions list -c "$pair/saml.yaml" --limit 1000 | grep -q "alice@a.example.evil.example" ||
	fail "the session's subject is not the whole NameID: $("$FB_BINARY" sessions list -c "$pair/saml.yaml")"
ok "a comment inside the NameID does not cut it: the subject is alice@a.example.evil.example"

login "$FB_TMP/jca"
out=$(post "$FB_TMP/jca" "$(forge comment-attribute --nameid comment-attr-user)")
case "$out" in "303 $app?code="*) ;; *) fail "comment-attribute: $out" ;; esac
csid=$("$FB_BINARY" sessions list -c "$pair/saml.yaml" --limit 1000 2>/dev/null | awk '$5 == "comment-attr-user" { print $1 }')
"$FB_BINARY" sessions show -c "$pair/saml.yaml" "$csid" | grep -q '"groups":\["staffadmin","federation"\]' ||
	fail "the attribute value was cut: $("$FB_BINARY" sessions show -c "$pair/saml.yaml" "$csid" | grep attributes)"
ok "a comment inside an attribute value does not cut it: groups [staffadmin, federation]"

# Replay: the same assertion again (in a new login) is refused, also after a restart.
aid="_replay$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
login "$FB_TMP/jr1"
out=$(post "$FB_TMP/jr1" "$(forge good --assertion-id "$aid")")
case "$out" in "303 "*) ;; *) fail "replay setup: $out" ;; esac
login "$FB_TMP/jr2"
out=$(post "$FB_TMP/jr2" "$(forge good --assertion-id "$aid")")
set -- $out
[ "$2" = replayed ] || fail "a replayed assertion: $out"
trail "$FB_TMP/a2.log" "$3" login_refused
kill "$(pgrep -f "serve -c $pair/saml.yaml --listen 127.0.0.1:$pa")"
sleep 0.2
"$FB_BINARY" serve -c "$pair/saml.yaml" --listen "127.0.0.1:$pa" 2>"$FB_TMP/a3.log" &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/a3.log" "listening on 127.0.0.1:$pa"
login "$FB_TMP/jr3"
out=$(post "$FB_TMP/jr3" "$(forge good --assertion-id "$aid")")
set -- $out
[ "$2" = replayed ] || fail "a replayed assertion after a restart: $out"
trail "$FB_TMP/a3.log" "$3" login_refused
ok "a replayed assertion is refused (replayed), also after a restart"

# Unsolicited (no login cookie) is refused while IdP-initiated login is off.
out=$(post "$FB_TMP/none.jar" "$good")
set -- $out
[ "$2" = unsolicited ] || fail "an unsolicited response: $out"
trail "$FB_TMP/a3.log" "$3" anonymous
ok "an unsolicited response is refused (IdP-initiated login is off by default)"

# IdP-initiated login, where the provider allows it: no request, RelayState names where to go.
u_sp="$a/saml/metadata/corp-unsolicited" u_acs="$a/saml/acs/corp-unsolicited"
unsolicited=$("$py" "$FB_SOURCE_DIR/tests/integration/fixtures/saml/forge.py" no-in-response-to \
	--key "$keys/idp.key" --cert "$keys/idp.pem" --other-key "$keys/other.key" --other-cert "$keys/other.pem" \
	--idp "$idp" --sp "$u_sp" --acs "$u_acs" --request-id unused)
printf '%s' "$unsolicited" >"$FB_TMP/u.b64"
st=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --data-urlencode "SAMLResponse@$FB_TMP/u.b64" \
	--data-urlencode "RelayState=$app?from=idp" "$u_acs")
case "$st" in "303 $app?from=idp&code="*) ;; *) fail "an IdP-initiated login where it is allowed: $st $(tail -2 "$FB_TMP/a3.log")" ;; esac
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code} %{redirect_url}' --data-urlencode "SAMLResponse@$FB_TMP/u.b64" \
	--data-urlencode "RelayState=$app?from=idp" "$u_acs")
[ "${st%% *}" = 403 ] || fail "the same unsolicited response again: $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" login_refused
ok "IdP-initiated login where allow_idp_initiated is set: accepted once (303 to the allowed RelayState), replay refused"

# ---- single logout initiated by the IdP (HTTP-Redirect, signed) ----
login "$FB_TMP/js"
out=$(post "$FB_TMP/js" "$(forge good --nameid slo-user --session-index _slo-session-1)")
case "$out" in "303 "*) ;; *) fail "slo setup: $out" ;; esac
sid=$("$FB_BINARY" sessions list -c "$pair/saml.yaml" --limit 1000 2>/dev/null | awk '$5 == "slo-user" { print $1 }')
[ -n "$sid" ] || fail "no session for slo-user"
slo="$a/saml/slo/corp"
logout_q() { "$py" "$FB_SOURCE_DIR/tests/integration/fixtures/saml/logout.py" --idp "$idp" --slo "$slo" "$@"; }
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$(logout_q --key "$keys/idp.key" --nameid slo-user --session-index _slo-session-1 --unsigned)")
[ "$st" = 400 ] || fail "an unsigned LogoutRequest got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
grep "saml logout \[$(corr_header "$FB_TMP/h")\]" "$FB_TMP/a3.log" | grep -q "refused (saml_logout): .*the LogoutRequest is not signed" ||
	fail "the unsigned LogoutRequest's refusal does not say it is not signed: $(grep "saml logout" "$FB_TMP/a3.log" | tail -1)"
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$(logout_q --key "$keys/other.key" --nameid slo-user --session-index _slo-session-1)")
[ "$st" = 400 ] || fail "a LogoutRequest signed by another key got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$(logout_q --key "$keys/idp.key" --nameid slo-user --session-index _slo-session-1 --issued -3110400 --no-expiry)")
[ "$st" = 400 ] || fail "a LogoutRequest signed 36 days ago (no NotOnOrAfter) got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$(logout_q --key "$keys/idp.key" --nameid slo-user --session-index _slo-session-1 --issued 3600)")
[ "$st" = 400 ] || fail "a LogoutRequest issued an hour from now got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
grep -q "saml logout \[.*refused (saml_logout): saml logout: IssueInstant" "$FB_TMP/a3.log" ||
	fail "the stale LogoutRequest's refusal does not name IssueInstant: $(grep "saml logout" "$FB_TMP/a3.log" | tail -2)"
"$FB_BINARY" sessions show -c "$pair/saml.yaml" "$sid" | grep -q "^revoked *no" || fail "the session was revoked by a bad request: sid=$sid $("$FB_BINARY" sessions show -c "$pair/saml.yaml" "$sid" 2>&1)"
ok "LogoutRequests unsigned, signed by a key not in the metadata, issued 36 days ago or an hour ahead are refused (400); the session stays"
st=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$slo?$(logout_q --key "$keys/idp.key" --nameid slo-user --session-index _slo-session-1)")
case "$st" in "302 $idp/slo?SAMLResponse="*) ;; *) fail "a good LogoutRequest got: $st ($(tail -2 "$FB_TMP/a3.log"))" ;; esac
"$FB_BINARY" sessions show -c "$pair/saml.yaml" "$sid" | grep -q "^revoked *idp_session" ||
	fail "the session is not revoked: $("$FB_BINARY" sessions show -c "$pair/saml.yaml" "$sid")"
ok "an IdP-initiated LogoutRequest (signed, HTTP-Redirect) revokes the IdP session and answers with a LogoutResponse"
# The same signed LogoutRequest again: its ID is consumed once, on every node and after a restart.
lq=$(logout_q --key "$keys/idp.key" --nameid slo-replay --session-index _slo-replay-1)
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$lq")
[ "$st" = 302 ] || fail "a LogoutRequest, first time: $st"
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' "$slo?$lq")
[ "$st" = 400 ] || fail "the same LogoutRequest again got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" revocation
grep -q "saml logout \[.*refused (saml_logout): .*used before" "$FB_TMP/a3.log" ||
	fail "the replayed LogoutRequest's refusal is not logged: $(grep "saml logout" "$FB_TMP/a3.log" | tail -2)"
ok "a LogoutRequest replayed (HTTP-Redirect) is refused: its ID is consumed once"
noslo="$a/saml/slo/corp-noslo"
st=$(curl -s -o "$FB_TMP/noslo.html" -w '%{http_code}' "$noslo?$("$py" "$FB_SOURCE_DIR/tests/integration/fixtures/saml/logout.py" --idp "$idp-noslo" --slo "$noslo" --key "$keys/idp.key" --nameid someone --session-index _noslo)")
[ "$st" = 200 ] && grep -q "You are logged out" "$FB_TMP/noslo.html" || fail "a LogoutRequest from an IdP without an SLO service: $st $(cat "$FB_TMP/noslo.html")"
ok "an IdP whose metadata names no SLO service: the logout is recorded and the browser sees a logged-out page"

# ---- single logout over SOAP: an XML-signed LogoutRequest in a SOAP envelope ----
grep -q 'Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="'"$slo"'"' <<<"$(curl -s "$a/saml/metadata/corp")" ||
	fail "the SP metadata offers no SOAP SingleLogoutService"
login "$FB_TMP/jsoap"
out=$(post "$FB_TMP/jsoap" "$(forge good --nameid soap-user --session-index _soap-session-1)")
case "$out" in "303 "*) ;; *) fail "soap setup: $out" ;; esac
ssid=$("$FB_BINARY" sessions list -c "$pair/saml.yaml" --limit 1000 2>/dev/null | awk '$5 == "soap-user" { print $1 }')
soap() { # ARGS... -> "STATUS" of POST /saml/slo/corp, body in $FB_TMP/soap.out
	logout_q --nameid soap-user --session-index _soap-session-1 --soap "$@" >"$FB_TMP/soap.xml"
	curl -s -D "$FB_TMP/h" -o "$FB_TMP/soap.out" -w '%{http_code}' -H 'Content-Type: text/xml' \
		--data-binary "@$FB_TMP/soap.xml" "$slo"
}
[ "$(soap --key "$keys/idp.key" --cert "$keys/idp.pem" --unsigned)" = 400 ] || fail "an unsigned SOAP LogoutRequest was taken"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
grep "saml logout \[$(corr_header "$FB_TMP/h")\]" "$FB_TMP/a3.log" | grep "refused (saml_logout): .*the LogoutRequest is not signed" | grep -qv "not signed by" ||
	fail "the unsigned SOAP LogoutRequest's refusal does not say it is not signed: $(grep "saml logout" "$FB_TMP/a3.log" | tail -1)"
[ "$(soap --key "$keys/other.key" --cert "$keys/other.pem")" = 400 ] || fail "a SOAP LogoutRequest signed by another key was taken"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
[ "$(soap --key "$keys/idp.key" --cert "$keys/idp.pem" --issued -3110400 --no-expiry)" = 400 ] ||
	fail "a SOAP LogoutRequest signed 36 days ago was taken"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
"$FB_BINARY" sessions show -c "$pair/saml.yaml" "$ssid" | grep -q "^revoked *no" || fail "a bad SOAP request revoked the session"
st=$(soap --key "$keys/idp.key" --cert "$keys/idp.pem")
[ "$st" = 200 ] && grep -q "LogoutResponse" "$FB_TMP/soap.out" && grep -q "status:Success" "$FB_TMP/soap.out" ||
	fail "a good SOAP LogoutRequest: $st $(head -c 600 "$FB_TMP/soap.out") $(grep SOAP "$FB_TMP/a3.log" | tail -2)"
"$FB_BINARY" sessions show -c "$pair/saml.yaml" "$ssid" | grep -q "^revoked *idp_session" || fail "the SOAP logout did not revoke the session"
ok "SOAP single logout: unsigned, foreign-key or 36-day-old requests refused (400); a signed one revokes the IdP session and answers a LogoutResponse"
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' -H 'Content-Type: text/xml' --data-binary "@$FB_TMP/soap.xml" "$slo")
[ "$st" = 400 ] || fail "the same SOAP LogoutRequest again got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" revocation
ok "a SOAP LogoutRequest replayed is refused (400): its ID is consumed once"

# A POST without a SAMLResponse: refused, logged and counted; nothing vouches for it, so no record.
st=$(curl -s -D "$FB_TMP/h" -o /dev/null -w '%{http_code}' --data-urlencode "RelayState=x" "$acs")
[ "$st" = 400 ] || fail "a POST without a SAMLResponse got $st"
trail "$FB_TMP/a3.log" "$(corr_header "$FB_TMP/h")" anonymous
n=$(trail_check "$pair/saml.yaml")
ok "each of $n refusals (ACS: every forged response, replays, unsolicited, no SAMLResponse; single logout on both bindings) left one log line; one audit record each where a login of ours or the IdP's signature stood behind it, none for the anonymous ones"
anon=$(curl -s "$a/metrics" | sed -n 's/^fedbridge_anonymous_refusals_total{endpoint="saml logout",reason="saml_logout"} //p')
[ "$anon" = 7 ] || fail "unsigned, foreign-key or stale LogoutRequests counted: ${anon:-none} (want 7)"
ok "the 7 LogoutRequests nothing vouched for are counted in fedbridge_anonymous_refusals_total"

# ---- the IdP's metadata: validUntil, and a signature when idp_metadata_cert is set ----
(
	cd "$keys"
	umask 077
	openssl req -x509 -newkey rsa:2048 -nodes -keyout meta.key -out meta.pem -days 30 -subj /CN=meta 2>/dev/null
	chmod 644 meta.pem
) || fail "openssl"
"$py" - "$keys" <<'PY' || fail "signing the metadata"
import sys, xmlsec
from lxml import etree
d = sys.argv[1]
def sign(name, out, tamper=False):
    doc = etree.fromstring(open(f"{d}/{name}", "rb").read())
    doc.set("ID", "_md1")
    sig = xmlsec.template.create(doc, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds")
    doc.insert(0, sig)
    ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256, uri="#_md1")
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(f"{d}/meta.key", xmlsec.KeyFormat.PEM)
    xmlsec.tree.add_ids(doc, ["ID"])
    ctx.sign(sig)
    data = etree.tostring(doc)
    if tamper:
        data = data.replace(b"/sso", b"/evil")
    open(f"{d}/{out}", "wb").write(data)
sign("idp-metadata.xml", "signed-metadata.xml")
sign("idp-metadata.xml", "tampered-metadata.xml", tamper=True)
PY
sed 's/entityID=/validUntil="2001-01-01T00:00:00Z" entityID=/' "$keys/idp-metadata.xml" >"$keys/expired-metadata.xml"
# starts CONFIG_SUFFIX METADATA [CERT]: "ok" when a bridge with it starts, else its error.
starts() {
	sed -e "s#idp_metadata: keys/idp-metadata.xml#idp_metadata: $2${3:+, idp_metadata_cert: $3}#" \
		-e "s#embedded:state-saml#embedded:state-saml-$1#" "$pair/saml.yaml" >"$pair/saml-$1.yaml"
	"$FB_BINARY" serve -c "$pair/saml-$1.yaml" --listen 127.0.0.1:0 2>"$FB_TMP/s-$1.log" &
	spid=$!
	while kill -0 "$spid" 2>/dev/null && ! grep -q "listening on" "$FB_TMP/s-$1.log"; do sleep 0.05; done
	if grep -q "listening on" "$FB_TMP/s-$1.log"; then
		kill "$spid"
		wait "$spid" 2>/dev/null || true
		echo ok
	else
		wait "$spid" 2>/dev/null || true
		grep -o "provider corp: .*" "$FB_TMP/s-$1.log" | head -1
	fi
}
[ "$(starts signed keys/signed-metadata.xml keys/meta.pem)" = ok ] || fail "signed metadata: $(cat "$FB_TMP/s-signed.log")"
case "$(starts unsigned keys/idp-metadata.xml keys/meta.pem)" in *"not signed by the certificate of idp_metadata_cert"*) ;; *) fail "unsigned metadata with idp_metadata_cert: $(cat "$FB_TMP/s-unsigned.log")" ;; esac
case "$(starts tampered keys/tampered-metadata.xml keys/meta.pem)" in *"not signed by"*) ;; *) fail "tampered metadata: $(cat "$FB_TMP/s-tampered.log")" ;; esac
case "$(starts expired keys/expired-metadata.xml)" in *"has expired (validUntil)"*) ;; *) fail "expired metadata: $(cat "$FB_TMP/s-expired.log")" ;; esac
ok "IdP metadata: signed by idp_metadata_cert is taken; unsigned, tampered or past its validUntil is refused at load"

echo "saml_negative: $passed passed, 0 failed"
