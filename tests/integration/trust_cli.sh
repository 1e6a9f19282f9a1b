#!/bin/bash
# Trust without whitelist files: B imports the messenger's federation.yml
# (trusts without keys, which check reports), then A's trust export (keys,
# issuer, CA); bad exports and bad certificates are refused and leave B's
# files as they were; a token A issues is then allowed by B, until the trust
# is removed.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
keys="$pair/keys"
A="$pair/installation-a.yaml"
B="$pair/installation-b.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }
fb() { "$FB_BINARY" "$@"; }
# expect_fail PATTERN CMD...: the command exits 1 and its stderr matches.
expect_fail() {
	pat=$1
	shift
	set +e
	"$@" >"$FB_TMP/out" 2>"$FB_TMP/err"
	rc=$?
	set -e
	[ "$rc" = 1 ] || fail "expected exit 1 from $*, got $rc: $(cat "$FB_TMP/out" "$FB_TMP/err")"
	grep -q -- "$pat" "$FB_TMP/err" || fail "expected '$pat' from $*: $(cat "$FB_TMP/err")"
}

# B without its hand-written trust: trusts come from trusts.d.
sed -i '/^    trusts:/,$d' "$B"
echo "    trusts_dir: trusts.d" >>"$B"
expect_fail "trusts_dir: cannot use .*trusts.d: No such file" fb check -c "$B"
ok "a missing trusts_dir is an error naming it"
mkdir "$pair/trusts.d"
fb check -c "$B" >/dev/null

# 1. The messenger's federation.yml.
cat >"$FB_TMP/federation.yml" <<YAML
enabled: true
mtlsEnabled: true
localTenant: HWqHczeM2P
instances:
- address: federation.a.example:443
  name: installation_A
  cert_cn: installation_A
  ssl_cert: "$keys/b-to-a.cert.pem"
  ssl_key: "$keys/b-to-a.key.pem"
  cacert: "$keys/a-ca.pem"
  tenants:
    - HZnKEBoqDU
  search_policy: full
YAML
fb import federation -c "$B" "$FB_TMP/federation.yml" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "import federation: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "add trust with installation_A (relay federation.a.example:443, tenants HZnKEBoqDU) for tenant HWqHczeM2P; no keys yet" "$FB_TMP/out" ||
	fail "import federation said: $(cat "$FB_TMP/out")"
grep -q "federation.yml:13:3: instances\[0\].search_policy: not used by fedbridge, ignored" "$FB_TMP/err" ||
	fail "an unused key was not reported: $(cat "$FB_TMP/err")"
ok "import federation writes a trust per instance and names the keys it ignores"
fb check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" || fail "check after import federation: $(cat "$FB_TMP/err")"
grep -q "trusts.d/installation_A.yaml:4:9: warning: tenant HWqHczeM2P's trust with installation_A has no keys yet" "$FB_TMP/err" ||
	fail "check did not say the keys are missing: $(cat "$FB_TMP/err")"
grep -q "ok: installation installation_B, 1 tenant, 1 provider, 1 trust, 1 warning" "$FB_TMP/out" ||
	fail "check summary: $(cat "$FB_TMP/out")"
ok "check: a trust with no keys is a warning at its file:line:col"

# Tokens of A are refused while the keys are missing.
token=$(fb token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/100401 --audience HWqHczeM2P \
	--attr email=alice@a.example) || fail "token issue at A"
set +e
out=$(fb token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token")
set -e
[ "$out" = '{"decision":"deny","reason":"untrusted_issuer"}' ] || fail "pending trust: $out"
ok "a trust without keys refuses the remote's tokens: untrusted_issuer"

# 2. A's export.
fb trust export -c "$A" --out "$FB_TMP/a.json" 2>"$FB_TMP/err" || fail "export: $(cat "$FB_TMP/err")"
fp=$(sed -n 's/.* \(SHA256:[A-Za-z0-9_-]*\) of installation_A$/\1/p' "$FB_TMP/err")
[ -n "$fp" ] || fail "export printed no fingerprint: $(cat "$FB_TMP/err")"
python3 - "$FB_TMP/a.json" <<'PY' || fail "export content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["fedbridge_trust"] == 1 and d["installation"] == "installation_A", d
assert d["tenants"] == ["HZnKEBoqDU"] and d["issuer"] == "https://sso.a.example", d
assert d["relay"] == "federation.a.example:443", d["relay"]
assert d["jwks_uri"] == "https://sso.a.example/.well-known/jwks.json"
assert d["ca"].startswith("-----BEGIN CERTIFICATE-----") and d["jwks"]["keys"][0]["kty"] == "EC"
assert "PRIVATE" not in open(sys.argv[1]).read()
PY
ok "trust export: name, tenants, issuer, keys, CA, relay, nothing secret; fingerprint $fp"

# installation.ca is published: certificates only, re-encoded; a key in that file is an error.
cp "$keys/a-ca.pem" "$FB_TMP/a-ca.orig.pem"
{ echo "note: not for publication"; cat "$FB_TMP/a-ca.orig.pem"; } >"$keys/a-ca.pem"
fb trust export -c "$A" --out "$FB_TMP/a-notes.json" 2>"$FB_TMP/err" || fail "export with a note in the CA file: $(cat "$FB_TMP/err")"
! grep -q "not for publication" "$FB_TMP/a-notes.json" || fail "the export copied the CA file byte for byte"
python3 -c "import json,sys; c=json.load(open('$FB_TMP/a-notes.json'))['ca']; assert c.startswith('-----BEGIN CERTIFICATE-----') and c.count('BEGIN')==1, c" ||
	fail "export ca is not the certificate alone"
cat "$FB_TMP/a-ca.orig.pem" "$keys/a-ca.key" >"$keys/a-ca.pem"
expect_fail "installation.ca: .*a-ca.pem holds a private key where only certificates belong" fb check -c "$A"
set +e
fb trust export -c "$A" --out "$FB_TMP/a-key.json" >"$FB_TMP/out" 2>"$FB_TMP/err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "export from a CA file holding its key succeeded"
! grep -qs "PRIVATE" "$FB_TMP/a-key.json" "$FB_TMP/out" || fail "the CA key was published"
grep -q "a-ca.pem holds a private key" "$FB_TMP/err" || fail "export did not name the file: $(cat "$FB_TMP/err")"
cp "$FB_TMP/a-ca.orig.pem" "$keys/a-ca.pem"
ok "installation.ca: the export carries its certificate alone; a CA file holding its key is an error in check and export"

before=$(cat "$pair"/trusts.d/* | sha256sum)
# Refusals that change nothing.
bad() { # name python-edit
	python3 -c "import json,sys; d=json.load(open('$FB_TMP/a.json')); $2; json.dump(d, open('$FB_TMP/$1.json','w'))"
}
bad unknown "d['allow_all']=True"
expect_fail 'unknown key "allow_all"' fb trust import -c "$B" --keys file "$FB_TMP/unknown.json"
bad version "d['fedbridge_trust']=2"
expect_fail "version 1" fb trust import -c "$B" --keys file "$FB_TMP/version.json"
bad nokeys "d['jwks']={'keys':[]}"
expect_fail 'jwks: JWKS needs "keys"' fb trust import -c "$B" --keys file "$FB_TMP/nokeys.json"
bad badtenant "d['tenants']=['x']"
expect_fail "tenants\[0\] is not a tenantID" fb trust import -c "$B" --keys file "$FB_TMP/badtenant.json"
bad notca "d['ca']=open('$keys/a-to-b.cert.pem').read()"
expect_fail '"ca" is not a CA certificate' fb trust import -c "$B" --keys file "$FB_TMP/notca.json"
printf '{"fedbridge_trust": 1,' >"$FB_TMP/trunc.json"
expect_fail "trunc.json:1:" fb trust import -c "$B" --keys file "$FB_TMP/trunc.json"
# The CA in the export did not issue the client certificate given.
expect_fail "does not verify the client certificate" fb trust import -c "$B" --keys file \
	--client-cert "$keys/a-to-b.cert.pem" --client-key "$keys/a-to-b.key.pem" "$FB_TMP/a.json"
# Our own export.
fb trust export -c "$B" --out "$FB_TMP/b.json" 2>/dev/null
expect_fail "own export" fb trust import -c "$B" "$FB_TMP/b.json"
# A policy that does not compile: the configuration would not load; everything is put back.
expect_fail "were taken back" fb trust import -c "$B" --keys file --inbound "token.attrs.department ==" "$FB_TMP/a.json"
grep -q "trusts.d/installation_A.yaml:.*inbound" "$FB_TMP/err" || fail "no position in the import error: $(cat "$FB_TMP/err")"
[ "$(cat "$pair"/trusts.d/* | sha256sum)" = "$before" ] || fail "a refused import changed trusts.d"
[ ! -e "$pair/trusts.d/installation_A.jwks" ] || fail "a refused import left its JWKS"
ok "trust import refuses unknown keys, other versions, empty key sets, bad tenants, a non-CA, truncated JSON, a CA that did not issue the client certificate, our own export and a broken policy, changing nothing"

# What an export asks us to fetch: its own domain's hosts, https, no inside address.
bad farissuer "d['issuer']='https://sso.evil.example'"
expect_fail '"issuer": refusing to fetch https://sso.evil.example: the host is neither the remote.s host nor under its domain' \
	fb trust import -c "$B" --keys file "$FB_TMP/farissuer.json"
grep -q "(its domain is a.example)" "$FB_TMP/err" || fail "the refusal does not name the export's domain: $(cat "$FB_TMP/err")"
bad farjwks "d['jwks_uri']='https://a.example.evil.example/.well-known/jwks.json'"
expect_fail '"jwks_uri": refusing to fetch https://a.example.evil.example/.well-known/jwks.json: the host is neither' \
	fb trust import -c "$B" --keys url "$FB_TMP/farjwks.json"
bad loopjwks "d['jwks_uri']='http://127.0.0.1:8081/.well-known/jwks.json'"
expect_fail '"jwks_uri": refusing to fetch http://127.0.0.1:8081/.well-known/jwks.json: plain http to loopback only where the configuration itself names' \
	fb trust import -c "$B" --keys url "$FB_TMP/loopjwks.json"
bad loopissuer "d['issuer']='http://localhost:8081'"
expect_fail '"issuer": refusing to fetch http://localhost:8081: plain http to loopback only' \
	fb trust import -c "$B" --keys file "$FB_TMP/loopissuer.json"
bad metadata "d['jwks_uri']='https://169.254.169.254/latest/meta-data/'"
expect_fail '"jwks_uri": refusing to fetch https://169.254.169.254/latest/meta-data/: a loopback, link-local or private address' \
	fb trust import -c "$B" --keys url "$FB_TMP/metadata.json"
[ "$(cat "$pair"/trusts.d/* | sha256sum)" = "$before" ] || fail "a refused import changed trusts.d"
ok "trust import refuses an export whose issuer or jwks_uri lies outside its domain, is loopback http or an inside address, changing nothing"

# The domain an export claims bounds its URLs: a public suffix would let any host under it pass.
bad onelabel "d['domain']='example'"
expect_fail '"domain": domain example has one label' fb trust import -c "$B" --keys file "$FB_TMP/onelabel.json"
bad couk "d['domain']='co.uk'; d['issuer']='https://sso.evil.co.uk'; d['jwks_uri']='https://sso.evil.co.uk/.well-known/jwks.json'"
expect_fail '"domain": domain co.uk is a public suffix' fb trust import -c "$B" --keys file "$FB_TMP/couk.json"
bad ghio "d['domain']='github.io'; d['issuer']='https://evil.github.io'; d['jwks_uri']='https://evil.github.io/jwks.json'"
expect_fail '"domain": domain github.io is a public suffix' fb trust import -c "$B" --keys file "$FB_TMP/ghio.json"
bad localdomain "d['domain']='localhost'; d['issuer']='https://sso.localhost'; d['jwks_uri']='https://sso.localhost/jwks.json'"
expect_fail '"domain": domain localhost has one label' fb trust import -c "$B" --keys file "$FB_TMP/localdomain.json"
# The export's ca is certificates only: no key, no other block, no text.
bad cakey "d['ca']=d['ca']+open('$keys/a-ca.key').read()"
expect_fail '"ca" holds a private key (PEM block PRIVATE KEY) where only certificates belong' \
	fb trust import -c "$B" --keys file "$FB_TMP/cakey.json"
! grep -q "BEGIN PRIVATE" "$FB_TMP/err" "$FB_TMP/out" || fail "the key was shown"
bad cacrl "d['ca']=d['ca']+'-----BEGIN X509 CRL-----\\nAAAA\\n-----END X509 CRL-----\\n'"
expect_fail '"ca" holds a PEM block X509 CRL: only certificates belong there' fb trust import -c "$B" --keys file "$FB_TMP/cacrl.json"
bad canote "d['ca']='note: call Bob first\\n'+d['ca']"
expect_fail '"ca" holds text outside its PEM blocks' fb trust import -c "$B" --keys file "$FB_TMP/canote.json"
bad catail "d['ca']=d['ca']+'<script>'"
expect_fail '"ca" holds something other than PEM certificates after block 1' fb trust import -c "$B" --keys file "$FB_TMP/catail.json"
# Our client certificate goes into trusts.d: never with its key.
cat "$keys/b-to-a.cert.pem" "$keys/b-to-a.key.pem" >"$FB_TMP/b-to-a.both.pem"
expect_fail "import: --client-cert: .*b-to-a.both.pem holds a private key where only certificates belong" \
	fb trust import -c "$B" --keys file --client-cert "$FB_TMP/b-to-a.both.pem" --client-key "$keys/b-to-a.key.pem" "$FB_TMP/a.json"
[ "$(cat "$pair"/trusts.d/* | sha256sum)" = "$before" ] || fail "a refused import changed trusts.d"
[ ! -e "$pair/trusts.d/installation_A.ca.pem" ] || fail "a refused import wrote the CA"
ok "trust import refuses an export whose domain is one label or a public suffix, whose ca holds a key, another block or text, and a client certificate file holding its key, changing nothing"

# The CA is written as certificates, re-encoded: not the export's bytes.
bad caspaced "d['ca']='\\n \\r\\n'+d['ca']+d['ca']+'\\n\\n'"
fb trust import -c "$B" --keys file "$FB_TMP/caspaced.json" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "import with whitespace around the CA: $(cat "$FB_TMP/out" "$FB_TMP/err")"
python3 - "$FB_TMP/a.json" "$pair/trusts.d/installation_A.ca.pem" <<'PY' || fail "the CA file is not the certificates re-encoded: $(cat "$pair/trusts.d/installation_A.ca.pem")"
import json, sys
ca = json.load(open(sys.argv[1]))["ca"]
assert open(sys.argv[2]).read() == ca + ca
PY
ok "trust import writes the export's CA certificates re-encoded, not its bytes"

fb trust import -c "$B" --keys file --release email --outbound true \
	--inbound "token.attrs.email != 'mallory@a.example'" "$FB_TMP/a.json" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "import: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "$fp" "$FB_TMP/err" || fail "import printed another fingerprint than export: $(cat "$FB_TMP/err")"
grep -q "updated trust with installation_A (tenants HZnKEBoqDU) for tenant HWqHczeM2P" "$FB_TMP/out" ||
	fail "import said: $(cat "$FB_TMP/out")"
grep -q "client_cert: '$keys/b-to-a.cert.pem'" "$pair/trusts.d/installation_A.yaml" ||
	fail "the client certificate of federation.yml was not kept"
grep -q "^keys: 'installation_A.jwks'" "$pair/trusts.d/installation_A.yaml" || fail "keys not pinned: $(cat "$pair/trusts.d/installation_A.yaml")"
ok "trust import completes the federation.yml trust with A's keys, issuer and CA; same fingerprint as export"
fb check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/err")"
grep -q "1 trust$" "$FB_TMP/out" || fail "check still warns: $(cat "$FB_TMP/out" "$FB_TMP/err")"
ok "check: nothing missing any more"
fb trust show -c "$B" >"$FB_TMP/out"
grep -q "tenant HWqHczeM2P trusts installation_A" "$FB_TMP/out" &&
	grep -q "client_cert  .*b-to-a.cert.pem (CN=installation_B, until " "$FB_TMP/out" &&
	grep -q "inbound      token.attrs.email != 'mallory@a.example'" "$FB_TMP/out" ||
	fail "trust show: $(cat "$FB_TMP/out")"
ok "trust show prints the trust, its certificates and policies"

out=$(fb token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token") ||
	fail "token verify after import: $out"
[ "$out" = '{"decision":"allow","fid":"fid:0/HZnKEBoqDU/100401","tid":"HZnKEBoqDU","attrs":{"email":"alice@a.example"}}' ] ||
	fail "allow: $out"
ok "A's token is allowed at B: $out"
m=$(fb token issue -c "$A" --tenant HZnKEBoqDU --fid fid:0/HZnKEBoqDU/7 --audience HWqHczeM2P \
	--attr email=mallory@a.example)
set +e
out=$(fb token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$m")
set -e
[ "$out" = '{"decision":"deny","reason":"policy_denied"}' ] || fail "inbound policy: $out"
ok "the imported inbound policy applies: $out"

# 3. Findings: a CA that does not verify the client certificate, and one of another CN.
cp "$pair/trusts.d/installation_A.yaml" "$FB_TMP/saved.yaml"
sed -i "s|^client_cert: .*|client_cert: '$keys/a-to-b.cert.pem'|; s|^client_key: .*|client_key: '$keys/a-to-b.key.pem'|" \
	"$pair/trusts.d/installation_A.yaml"
fb check -c "$B" >/dev/null 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/err")"
grep -q "installation_A.yaml:[0-9]*:[0-9]*: warning: the CA of the trust with installation_A does not verify its client_cert" "$FB_TMP/err" ||
	fail "no CA warning: $(cat "$FB_TMP/err")"
grep -q "warning: client_cert .*a-to-b.cert.pem has CN=installation_A, but installation_A's relay expects this installation's name installation_B" "$FB_TMP/err" ||
	fail "no CN warning: $(cat "$FB_TMP/err")"
cp "$FB_TMP/saved.yaml" "$pair/trusts.d/installation_A.yaml"
ok "check: a CA that does not verify the client certificate, and a client certificate of another CN"
# A trust's ca or client_cert holding a private key: an error at load and in check, naming
# the file and the trust's place in its file.
cat "$keys/a-ca.pem" "$keys/a-ca.key" >"$FB_TMP/a-ca.both.pem"
sed -i "s|^ca: .*|ca: '$FB_TMP/a-ca.both.pem'|" "$pair/trusts.d/installation_A.yaml"
expect_fail "trusts.d/installation_A.yaml:[0-9]*:[0-9]*: ca of tenant HWqHczeM2P's trust with installation_A: $FB_TMP/a-ca.both.pem holds a private key where only certificates belong" \
	fb check -c "$B"
! grep -q "BEGIN" "$FB_TMP/err" "$FB_TMP/out" || fail "check showed the key"
set +e
fb token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token" >"$FB_TMP/out" 2>"$FB_TMP/err"
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "a-ca.both.pem holds a private key" "$FB_TMP/err" ||
	fail "loading a trust whose ca holds a key: exit $rc: $(cat "$FB_TMP/out" "$FB_TMP/err")"
cp "$FB_TMP/saved.yaml" "$pair/trusts.d/installation_A.yaml"
sed -i "s|^client_cert: .*|client_cert: '$FB_TMP/b-to-a.both.pem'|" "$pair/trusts.d/installation_A.yaml"
expect_fail "trusts.d/installation_A.yaml:[0-9]*:[0-9]*: client_cert of tenant HWqHczeM2P's trust with installation_A: $FB_TMP/b-to-a.both.pem holds a private key" \
	fb check -c "$B"
cp "$FB_TMP/saved.yaml" "$pair/trusts.d/installation_A.yaml"
fb check -c "$B" >/dev/null 2>"$FB_TMP/err" || fail "check after putting the trust back: $(cat "$FB_TMP/err")"
ok "a trust's ca or client_cert holding a private key is an error in check and at load, naming the file and its place"
# An expiring client certificate.
openssl req -new -newkey rsa:2048 -nodes -keyout "$FB_TMP/soon.key" -out "$FB_TMP/soon.csr" \
	-subj "/CN=installation_B" 2>/dev/null
openssl x509 -req -in "$FB_TMP/soon.csr" -CA "$keys/a-ca.pem" -CAkey "$keys/a-ca.key" -CAcreateserial \
	-out "$FB_TMP/soon.pem" -days 5 2>/dev/null
chmod 600 "$FB_TMP/soon.key"
sed -i "s|^client_cert: .*|client_cert: '$FB_TMP/soon.pem'|; s|^client_key: .*|client_key: '$FB_TMP/soon.key'|" \
	"$pair/trusts.d/installation_A.yaml"
fb check -c "$B" >/dev/null 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/err")"
grep -q "warning: client certificate $FB_TMP/soon.pem expires on .*, in [45] days" "$FB_TMP/err" ||
	fail "no expiry warning: $(cat "$FB_TMP/err")"
cp "$FB_TMP/saved.yaml" "$pair/trusts.d/installation_A.yaml"
ok "check: a client certificate that expires within 30 days"

# An error inside an imported trust names that file.
sed -i 's/^relay: .*/relay: not a host port/' "$pair/trusts.d/installation_A.yaml"
expect_fail "trusts.d/installation_A.yaml:6:8: tenants\[0\].trusts\[installation_A.yaml\].relay: expected" fb check -c "$B"
cp "$FB_TMP/saved.yaml" "$pair/trusts.d/installation_A.yaml"
ok "an error in an imported trust is reported at its own file:line:col"

# A trust written by hand is never rewritten.
expect_fail "installation-a.yaml:[0-9]*:[0-9]*: tenant HZnKEBoqDU has no trusts_dir" fb trust import -c "$A" "$FB_TMP/b.json"
ok "import into a tenant without trusts_dir names where to add it"

# 4. The kill switch.
fb trust remove -c "$B" installation_A >"$FB_TMP/out" || fail "remove"
grep -q "removed the trust of tenant HWqHczeM2P with installation_A" "$FB_TMP/out" || fail "remove said: $(cat "$FB_TMP/out")"
set +e
out=$(fb token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$keys/a-to-b.cert.pem" "$token")
set -e
[ "$out" = '{"decision":"deny","reason":"untrusted_issuer"}' ] || fail "after remove: $out"
ok "trust remove: A's tokens are refused again ($out)"
echo "trust_cli: $n checks passed"
