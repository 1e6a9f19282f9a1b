#!/bin/bash
# Legacy whitelist files into a pin table, and the pins at work: the seed's
# whitelist.yaml and remote_whitelist.yaml are imported (twice: the merge is
# idempotent), conflicts and broken files are refused with file:line:col,
# and a mapping with `pins:` keeps those users on their old fids while
# everyone else gets a pairwise one.
. "$(dirname "$0")/lib.sh"
fx="$FB_SOURCE_DIR/tests/integration/fixtures/whitelist"
pins="$FB_TMP/pins.json"
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

run "$FB_BINARY" import whitelist --out "$pins" "$fx/whitelist.yaml" "$fx/remote_whitelist.yaml"
[ "$rc" = 0 ] || fail "import: exit $rc: $err"
printf '%s\n' "$err" | grep -q "pins.json: 3 pins (3 with fid, 3 with remotes), 3 new" || fail "summary: $err"
grep -q '^    "i.ivanov@company_domain": {"fid":"fid:0/HZnKEBoqDU/100401","remotes":\["HWqHczeM2P"\]},$' "$pins" ||
	fail "pin table content: $(cat "$pins")"
grep -q '"tenant": "HZnKEBoqDU"' "$pins" || fail "tenant: $(cat "$pins")"
[ "$(stat -c %a "$pins")" = 644 ] || fail "mode $(stat -c %a "$pins")"
ok "both legacy formats import into one pin table (fid and allowed remote per user)"

cp "$pins" "$FB_TMP/first.json"
run "$FB_BINARY" import whitelist --out "$pins" "$fx/remote_whitelist.yaml" "$fx/whitelist.yaml"
[ "$rc" = 0 ] && cmp -s "$pins" "$FB_TMP/first.json" && printf '%s\n' "$err" | grep -q ", 0 new" ||
	fail "re-import changed the table: exit $rc: $err"
ok "importing the same files again changes nothing"

printf 'users:\n  "I.Ivanov@company_domain":\n    fid: fid:0/HZnKEBoqDU/999\n' >"$FB_TMP/other.yaml"
run "$FB_BINARY" import whitelist --out "$pins" "$FB_TMP/other.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -qF "other.yaml:2:3: users: \"I.Ivanov@company_domain\": fid fid:0/HZnKEBoqDU/999, but $pins gave it fid:0/HZnKEBoqDU/100401" ||
	fail "conflicting fid: exit $rc: $err"
cmp -s "$pins" "$FB_TMP/first.json" || fail "a refused import changed the table"
ok "a user given another fid is refused, naming both places, and the table is untouched"

# Two files that give one user two fids: both files and positions are named.
printf 'users:\n  "x@company_domain":\n    fid: fid:0/HZnKEBoqDU/1\n' >"$FB_TMP/r1.yaml"
printf '# second export\nusers:\n  "X@Company_Domain":\n    fid: fid:0/HZnKEBoqDU/2\n' >"$FB_TMP/r2.yaml"
run "$FB_BINARY" import whitelist --out "$FB_TMP/two.json" "$FB_TMP/r1.yaml" "$FB_TMP/r2.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -qF "r2.yaml:3:3: users: \"X@Company_Domain\": fid fid:0/HZnKEBoqDU/2, but $FB_TMP/r1.yaml:2:3 gave it fid:0/HZnKEBoqDU/1" ||
	fail "two fids in two files: exit $rc: $err"
[ ! -e "$FB_TMP/two.json" ] || fail "a conflict still wrote a table"
ok "two files giving a user two fids are refused with both files and positions"

# A remote_whitelist.yaml received from the other installation lists its users.
printf 'users:\n  "b.user@b.example":\n    fid: fid:0/HWqHczeM2P/7\n' >"$FB_TMP/theirs.yaml"
run "$FB_BINARY" import whitelist --out "$pins" "$FB_TMP/theirs.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -qF "theirs.yaml:3:10: users: \"b.user@b.example\": fid fid:0/HWqHczeM2P/7 is of tenant HWqHczeM2P, but the pin table is for HZnKEBoqDU (from $pins)" ||
	fail "another installation's file: exit $rc: $err"
cmp -s "$pins" "$FB_TMP/first.json" || fail "a refused import changed the table"
ok "fids of another tenant are refused"

# A second whitelist.yaml for another remote: remotes accumulate, sorted.
printf 'remoteTenant: Kq7wX2mPzR\nusers:\n  "N.Belov@company_domain":\n  "new.user@company_domain": {note: hired 2024}\n' >"$FB_TMP/c.yaml"
run "$FB_BINARY" import whitelist --out "$pins" "$FB_TMP/c.yaml"
[ "$rc" = 0 ] && printf '%s\n' "$err" | grep -qF "pins.json: 4 pins (3 with fid, 4 with remotes), 1 new" ||
	fail "second remote: exit $rc: $err"
grep -q '^    "n.belov@company_domain": {"fid":"fid:0/HZnKEBoqDU/100402","remotes":\["HWqHczeM2P","Kq7wX2mPzR"\]},$' "$pins" &&
	grep -q '^    "new.user@company_domain": {"remotes":\["Kq7wX2mPzR"\]}$' "$pins" ||
	fail "merged table: $(cat "$pins")"
cp "$pins" "$FB_TMP/second.json"
run "$FB_BINARY" import whitelist --out "$pins" "$FB_TMP/c.yaml" "$fx/whitelist.yaml" "$fx/remote_whitelist.yaml"
[ "$rc" = 0 ] && cmp -s "$pins" "$FB_TMP/second.json" && printf '%s\n' "$err" | grep -q ", 0 new" ||
	fail "re-import of everything changed the table: exit $rc: $err"
cp "$FB_TMP/first.json" "$pins"
ok "another remote's whitelist adds to the remotes, idempotently"

printf 'remoteTenant: HWqHczeM2P\nusers:\n  "a@x":\n  "b@x":\n    - list\n' >"$FB_TMP/bad1.yaml"
printf 'remoteTenant: HWqHczeM2P\nusers:\n  "a@x":\n  "A@X":\n' >"$FB_TMP/bad2.yaml"
printf 'remoteTenant: nope\nusers:\n  "a@x":\n' >"$FB_TMP/bad3.yaml"
printf 'users:\n  "a@x":\n' >"$FB_TMP/bad4.yaml"
printf 'remote_tenant: HWqHczeM2P\nusers: {}\n' >"$FB_TMP/bad5.yaml"
printf 'users:\n  "a@x":\n    fid: fid:1/HZnKEBoqDU/1\n' >"$FB_TMP/bad6.yaml"
printf 'remoteTenant: HWqHczeM2P\nusers:\n  "a@x"\n' >"$FB_TMP/bad7.yaml"
printf 'remoteTenant: HZnKEBoqDU\nusers:\n  "a@x":\n' >"$FB_TMP/bad8.yaml"
for want in "bad1.yaml:4:3: users: \"b@x\": expected an empty value or a mapping, got a list" \
	"bad2.yaml:4:3: users: \"A@X\" is given twice (first at 3:3)" \
	"bad3.yaml:1:15: remoteTenant: expected a tenantID (8 to 16 letters and digits), got \"nope\"" \
	"bad4.yaml: neither a whitelist.yaml (no remoteTenant) nor a remote_whitelist.yaml (no user has a fid)" \
	"bad5.yaml:1:1: unknown key \"remote_tenant\"" \
	"bad6.yaml:3:10: users: \"a@x\": fid \"fid:1/HZnKEBoqDU/1\": a fid starts with fid:0/" \
	"bad7.yaml:3:3: users: expected a mapping of e-mails (each followed by ':'), got a string" \
	"bad8.yaml:1:15: remoteTenant: HZnKEBoqDU is the local tenant (from --tenant), not a remote one"; do
	f=${want%%:*}
	run "$FB_BINARY" import whitelist --tenant HZnKEBoqDU --out "$FB_TMP/x.json" "$fx/whitelist.yaml" "$FB_TMP/$f"
	[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -qF "$want" || fail "$f: exit $rc: $err (want $want)"
done
[ ! -e "$FB_TMP/x.json" ] || fail "a broken file still wrote a table"
ok "broken files are refused with file:line:col and nothing is written"

run "$FB_BINARY" import whitelist "$fx/whitelist.yaml"
[ "$rc" = 2 ] && printf '%s\n' "$err" | grep -q "^fedbridge import: whitelist: --out PINS.json is required" ||
	fail "no --out: exit $rc: $err"
run "$FB_BINARY" import whitelist --out "$FB_TMP/y.json"
[ "$rc" = 2 ] || fail "no file: exit $rc"
run "$FB_BINARY" import whitelist --tenant nope --out "$FB_TMP/y.json" "$fx/whitelist.yaml"
[ "$rc" = 2 ] || fail "bad --tenant: exit $rc"
run "$FB_BINARY" import whitelist --frobnicate --out "$FB_TMP/y.json" "$fx/whitelist.yaml"
[ "$rc" = 2 ] || fail "unknown option: exit $rc"
run "$FB_BINARY" import frobnicate
[ "$rc" = 2 ] || fail "unknown import: exit $rc"
run "$FB_BINARY" import whitelist --help
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q "^usage: fedbridge import whitelist \[--tenant ID\] --out PINS.json FILE...$" ||
	fail "--help: exit $rc: $out"
run "$FB_BINARY" --help
printf '%s\n' "$out" | grep -q "^  import " || fail "import is not in fedbridge --help"
run "$FB_BINARY" import whitelist --out "$FB_TMP/y.json" "$fx/whitelist.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "give --tenant" || fail "no tenant: exit $rc: $err"
[ ! -e "$FB_TMP/y.json" ] || fail "usage errors still wrote a table"
run "$FB_BINARY" import whitelist --tenant HZnKEBoqDU --out "$FB_TMP/y.json" "$fx/whitelist.yaml"
[ "$rc" = 0 ] && grep -q '"a.petrov@company_domain": {"remotes":\["HWqHczeM2P"\]}' "$FB_TMP/y.json" ||
	fail "whitelist.yaml alone with --tenant: exit $rc: $err"
run "$FB_BINARY" import whitelist --tenant HWqHczeM2P --out "$FB_TMP/y.json" "$fx/remote_whitelist.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -qF "y.json: the pin table is for tenant HZnKEBoqDU, but --tenant says HWqHczeM2P; refusing to merge" ||
	fail "merge into another tenant's table: exit $rc: $err"
ok "usage: --out and a file required, --help, exit 2 on usage errors; --tenant when no file has a fid"

# ---- the pins at work in a mapping ----
examples_copy
ex="$FB_TMP/examples"
cp "$pins" "$ex/pins.json"
sed -e 's|^        fid: pairwise(claims.sub)$|        pins: pins.json\n        fid: pairwise(claims.sub)|' \
	"$ex/minimal.yaml" >"$ex/pinned.yaml"
cat >>"$ex/pinned.yaml" <<'YAML'
    trusts:
      - remote: installation_B
        tenants: [HWqHczeM2P]
        relay: federation.b.example:443
        ca: keys/client_B.cacert.pem
        client_cert: keys/client_B.cert.pem
        client_key: keys/client_B.key.pem
        keys: keys/installation_B.jwks
        issuer: https://sso.b.example
        outbound: "'HWqHczeM2P' in principal.legacy_remotes"
        release: [email]
YAML
grep -q 'pins: pins.json' "$ex/pinned.yaml" || fail "could not write pinned.yaml"
id() { printf '{"provider":"corp-keycloak","claims":{"iss":"https://kc.a.example/realms/corp","sub":"%s","email":"%s","email_verified":true}}' "$1" "$2" >"$FB_TMP/id.json"; }
id 7f3a I.Ivanov@Company_Domain
run "$FB_BINARY" mapping test -c "$ex/pinned.yaml" --identity "$FB_TMP/id.json"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '^fid: fid:0/HZnKEBoqDU/100401  (from tenants\[0\].mapping\[0\].pins)$' &&
	printf '%s\n' "$out" | grep -q 'installation_B: tokens issued' ||
	fail "a pinned user: exit $rc: $out $err"
id 9c1d newcomer@company_domain
run "$FB_BINARY" mapping test -c "$ex/pinned.yaml" --identity "$FB_TMP/id.json"
[ "$rc" = 0 ] && printf '%s\n' "$out" | grep -q '^fid: fid:0/HZnKEBoqDU/[A-Za-z0-9_-]\{22\}  (from tenants\[0\].mapping\[0\].fid\[0\])$' &&
	printf '%s\n' "$out" | grep -q 'installation_B: no tokens' ||
	fail "a user without a pin: exit $rc: $out $err"
ok "a pinned user keeps the old fid and the old allowed remote; others get pairwise fids"

printf '{"version":1,"tenant":"HWqHczeM2P","pins":{"a@b":{"fid":"fid:0/HWqHczeM2P/1"}}}' >"$ex/pins.json"
run "$FB_BINARY" check -c "$ex/pinned.yaml"
[ "$rc" = 1 ] && printf '%s\n' "$err" | grep -q "pinned.yaml:[0-9]*:[0-9]*: tenants\[0\].mapping\[0\].pins: the pin table is for tenant HWqHczeM2P, not HZnKEBoqDU" ||
	fail "pins of another tenant: exit $rc: $err"
ok "a pin table of another tenant is a config error"

echo "import_whitelist: $passed passed, 0 failed"
