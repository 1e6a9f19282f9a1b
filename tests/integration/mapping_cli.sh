#!/bin/bash
# The admin's rules through the real binary: golden identities (Keycloak,
# AD FS, Google Workspace) against tests/fixtures/mapping, refusals naming
# their rule, mapping diff between two configurations, expression errors
# with their column, mutable fid sources refused, every example config
# dry-run, and the inbound policy applied by the relay check.
. "$(dirname "$0")/lib.sh"
fixtures="$FB_SOURCE_DIR/tests/fixtures/mapping"
examples_copy
ex="$FB_TMP/examples"
cp "$fixtures/mapping.yaml" "$ex/mapping.yaml"
# A fixed fid secret, so pairwise fids in the golden files stay put.
printf 'mapping-fixture-fid-secret-0123456789abcdef' >"$ex/keys/fid.secret"
chmod 600 "$ex/keys/fid.secret"
cp -r "$fixtures/identities" "$FB_TMP/ids"
conf="$ex/mapping.yaml"
passed=0

run() {
	set +e
	out=$("$@" 2>"$FB_TMP/stderr")
	rc=$?
	set -e
	err=$(cat "$FB_TMP/stderr")
}
ok() {
	passed=$((passed + 1))
	pass "$1"
}

# ---- golden files ----
run "$FB_BINARY" mapping test -c "$conf" "$FB_TMP/ids"
n=$(ls "$FB_TMP"/ids/*.expected.json | wc -l)
[ "$rc" = 0 ] && [ "$n" -ge 12 ] && printf '%s\n' "$out" | grep -q "^$n of $n identities as expected$" ||
	fail "golden identities: exit $rc: $out $err"
ok "$n saved identities map as their golden files say"

# A golden file that no longer matches fails the run and says how.
sed -i 's/"fid:0\/HZnKEBoqDU\/100401"/"fid:0\/HZnKEBoqDU\/999999"/' "$FB_TMP/ids/keycloak-alice.expected.json"
run "$FB_BINARY" mapping test -c "$conf" "$FB_TMP/ids"
[ "$rc" = 1 ] && printf '%s\n' "$out" | grep -q '^FAIL keycloak-alice.json$' &&
	printf '%s\n' "$out" | grep -q "^$((n - 1)) of $n identities as expected$" ||
	fail "a spoiled golden file: exit $rc: $out"
ok "a golden file that does not match fails with FAIL and exit 1"
cp "$fixtures/identities/keycloak-alice.expected.json" "$FB_TMP/ids/"

# ---- one identity, text and JSON ----
run "$FB_BINARY" mapping test -c "$conf" --identity "$FB_TMP/ids/keycloak-alice.json"
[ "$rc" = 0 ] || fail "keycloak-alice: exit $rc: $out $err"
for want in 'login allowed' 'fid: fid:0/HZnKEBoqDU/100401  (from tenants\[0\].mapping\[0\].fid\[0\])' \
	'  email = "alice.smith@a.example"' '  installation_B: tokens issued, releases  = {"email":"alice.smith@a.example","department":"sales"}' \
	'  installation_C: tokens issued' 'claims.email_verified = true'; do
	printf '%s\n' "$out" | grep -q -- "$want" || fail "keycloak-alice text lacks '$want': $out"
done
ok "mapping test prints fid, attributes, per-trust decisions and the values it read"

run "$FB_BINARY" mapping test -c "$conf" --provider keycloak --claims "$FB_TMP/ids/keycloak-alice.json"
[ "$rc" = 1 ] || fail "claims file that is an identity document: expected a refusal, exit $rc: $out"
# --claims takes the bare claims: extract them from the identity file.
sed -n '/"claims": {/,/^  }/p' "$FB_TMP/ids/keycloak-bob-unverified.json" | sed '1s/.*/{/; $s/.*/}/' >"$FB_TMP/bob.claims.json"
run "$FB_BINARY" mapping test -c "$conf" --provider keycloak --claims "$FB_TMP/bob.claims.json" --json
[ "$rc" = 1 ] || fail "bob (unverified e-mail): expected exit 1, got $rc: $out $err"
for want in '"allowed": false' '"refused_by": "tenants\[0\].mapping\[0\].require\[0\]"' \
	'claims.email_verified = false'; do
	printf '%s\n' "$out" | grep -q -- "$want" || fail "bob --json lacks '$want': $out"
done
ok "a refused login exits 1 and names the failing rule and the value it saw (--claims --json)"

run "$FB_BINARY" mapping test -c "$conf" --identity "$FB_TMP/ids/keycloak-dave-no-department.json"
[ "$rc" = 1 ] && printf '%s\n' "$out" | grep -q 'login refused by tenants\[0\].mapping\[0\].deny\[0\]' &&
	printf '%s\n' "$out" | grep -q 'claims.department: absent' ||
	fail "dave (no department): exit $rc: $out"
ok "a deny rule over an absent value refuses (fail closed) and the trace says what was absent"

run "$FB_BINARY" mapping test -c "$conf" --identity "$FB_TMP/ids/adfs-alice.json"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q 'fid: fid:0/HZnKEBoqDU/100401 ' ||
	fail "adfs-alice: exit $rc: $out"
ok "AD FS and Keycloak map alice to one fid through the employee number (account linking)"

run "$FB_BINARY" mapping test -c "$conf" --provider adfs --saml-response "$fixtures/adfs-alice-response.xml"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q 'fid: fid:0/HZnKEBoqDU/100401 ' &&
	printf '%s\n' "$out" | grep -q '  email = "alice.smith@a.example"' ||
	fail "--saml-response: exit $rc: $out $err"
ok "a saved SAML Response maps like the identity it holds (a comment inside a value does not cut it)"

# ---- diff between two versions of a configuration ----
sed "s/outbound: principal.department in \['sales', 'legal'\]/outbound: principal.department == 'sales'/" \
	"$conf" >"$ex/mapping-v2.yaml"
grep -q "principal.department == 'sales'" "$ex/mapping-v2.yaml" || fail "could not make mapping-v2.yaml"
run "$FB_BINARY" mapping diff -c "$conf" -c "$ex/mapping-v2.yaml" "$FB_TMP/ids"
[ "$rc" = 1 ] && printf '%s\n' "$out" | grep -q '^keycloak-erin-no-employee-id.json: trusts: ' &&
	printf '%s\n' "$out" | grep -q '^1 of [0-9]* identities change$' ||
	fail "mapping diff: exit $rc: $out $err"
run "$FB_BINARY" mapping diff -c "$conf" -c "$conf" "$FB_TMP/ids"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '^0 of [0-9]* identities change$' ||
	fail "mapping diff of a config with itself: exit $rc: $out"
ok "mapping diff names the one identity whose trust decision changes, and exits 0 when none does"

# ---- configuration errors: line, column, the column inside the expression ----
sed 's/email: lower(claims.email)$/email: lowr(claims.email)/' "$conf" >"$ex/typo.yaml"
run "$FB_BINARY" check -c "$ex/typo.yaml"
line=$(grep -n 'email: lowr(claims.email)' "$ex/typo.yaml" | head -1 | cut -d: -f1)
col=$(( $(sed -n "${line}p" "$ex/typo.yaml" | sed 's/lowr.*//' | wc -c) ))
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "typo.yaml:$line:$col: tenants\[0\].mapping\[0\].attributes.email: unknown function 'lowr' (did you mean 'lower'?) (column 1 of the expression)" ||
	fail "unknown function: exit $rc: $err (want line $line col $col)"
ok "an unknown function is a config error at file:$line:$col with a did-you-mean"

sed "s/outbound: principal.department in \['sales', 'legal'\]/outbound: principal.department in ['sales', 'legal'/" \
	"$conf" >"$ex/syntax.yaml"
run "$FB_BINARY" check -c "$ex/syntax.yaml"
line=$(grep -n "outbound: principal.department in \['sales', 'legal'$" "$ex/syntax.yaml" | cut -d: -f1)
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "syntax.yaml:$line:60: tenants\[0\].trusts\[0\].outbound: expected '\]' to close the one at column 25, got end of expression (column 42 of the expression)" ||
	fail "syntax error: exit $rc: $err"
ok "a syntax error reports the column inside the expression"

sed 's/          - pairwise(claims.sub)$/          - lower(claims.email)/' "$conf" >"$ex/mutable.yaml"
run "$FB_BINARY" check -c "$ex/mutable.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "mapping\[0\].fid\[1\]: 'email' can change" ||
	fail "mutable fid source: exit $rc: $err"
sed 's/          - pairwise(claims.sub)$/          - mutable(lower(claims.email))/' "$conf" >"$ex/mutable-ok.yaml"
run "$FB_BINARY" check -c "$ex/mutable-ok.yaml"
[ "$rc" = 0 ] || fail "mutable() did not accept the e-mail explicitly: $err"
ok "an e-mail as fid source is refused unless written mutable(...)"

sed 's/release: \[email, department\]/release: [email, departmnt]/' "$conf" >"$ex/release.yaml"
run "$FB_BINARY" check -c "$ex/release.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q 'no mapping of tenant HZnKEBoqDU defines attribute "departmnt"' ||
	fail "release of an unknown attribute: exit $rc: $err"
ok "releasing an attribute no mapping makes is a config error"

# ---- usage ----
run "$FB_BINARY" mapping test -c "$conf"
[ "$rc" = 2 ] || fail "mapping test without input: exit $rc"
run "$FB_BINARY" mapping test -c "$conf" --claims a --identity b
[ "$rc" = 2 ] || fail "two inputs: exit $rc"
run "$FB_BINARY" mapping test -c "$conf" --provider nosuch --claims "$FB_TMP/bob.claims.json"
[ "$rc" = 2 ] && printf '%s\n' "$err" | grep -q 'no provider nosuch' || fail "unknown provider: exit $rc: $err"
run "$FB_BINARY" mapping diff -c "$conf" "$FB_TMP/ids"
[ "$rc" = 2 ] || fail "diff with one config: exit $rc"
run "$FB_BINARY" mapping --help
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q 'usage: fedbridge mapping test' || fail "mapping --help"
ok "usage errors exit 2"

# ---- every example configuration dry-runs ----
cat >"$FB_TMP/kc.json" <<'EOF'
{"claims": {"iss": "https://kc.a.example/realms/corp",
 "sub": "4f1d", "email": "Alice@A.example", "email_verified": true,
 "groups": ["federation", "partners-b"], "department": "sales"}}
EOF
for c in "$ex/minimal.yaml:corp-keycloak" "$ex/full.yaml:corp-keycloak" "$ex/pair/installation-a.yaml:a-keycloak"; do
	run "$FB_BINARY" mapping test -c "${c%%:*}" --provider "${c##*:}" --identity "$FB_TMP/kc.json"
	[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '^fid: fid:0/[A-Za-z0-9]*/[A-Za-z0-9_-]\{22\} ' ||
		fail "mapping test on ${c%%:*}: exit $rc: $out $err"
done
cat >"$FB_TMP/saml.json" <<'EOF'
{"provider": "b-saml", "issuer": "http://adfs.b.example/adfs/services/trust",
 "nameid": "bob", "attrs": {"employeeNumber": ["200417"], "mail": ["Bob@B.example"]}}
EOF
run "$FB_BINARY" mapping test -c "$ex/pair/installation-b.yaml" --identity "$FB_TMP/saml.json"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '^fid: fid:0/HWqHczeM2P/200417 ' ||
	fail "mapping test on installation-b.yaml: exit $rc: $out $err"
ok "mapping test works on every example configuration"

# ---- the relay check applies the receiving tenant's inbound policy ----
pair="$ex/pair"
sed "s/inbound: \"true\"/inbound: token.attrs.department in ['sales', 'legal']/" \
	"$pair/installation-b.yaml" >"$pair/installation-b-inbound.yaml"
grep -q "inbound: token.attrs.department" "$pair/installation-b-inbound.yaml" || fail "no inbound rule written"
verify_with() { # DEPARTMENT -> out/rc of the relay check at B
	run "$FB_BINARY" token issue -c "$pair/installation-a.yaml" --tenant HZnKEBoqDU \
		--fid fid:0/HZnKEBoqDU/100401 --audience HWqHczeM2P --attr "department=$1"
	[ "$rc" = 0 ] || fail "token issue: $err"
	run "$FB_BINARY" token verify -c "$pair/installation-b-inbound.yaml" --tenant HWqHczeM2P \
		--peer-cert "$pair/keys/a-to-b.cert.pem" "$out"
}
verify_with sales
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '"decision":"allow"' || fail "inbound sales: exit $rc: $out $err"
verify_with hr
[ "$rc" = 1 ] && [ "$out" = '{"decision":"deny","reason":"policy_denied"}' ] ||
	fail "inbound hr: exit $rc: $out $err"
ok "the relay check allows sales and denies hr with policy_denied under B's inbound rule"

echo "mapping_cli: $passed passed, 0 failed"
