#!/bin/bash
# Every configuration in conf/examples passes `fedbridge check`, and the same
# files with one error each fail with that error's position.
. "$(dirname "$0")/lib.sh"
examples_copy
n=0
for f in "$FB_TMP"/examples/*.yaml "$FB_TMP"/examples/*/*.yaml; do
	[ -f "$f" ] || continue
	out=$("$FB_BINARY" check -c "$f") || fail "fedbridge check rejected $f"
	case "$out" in *": ok: installation "*) ;; *) fail "unexpected summary: $out" ;; esac
	n=$((n + 1))
	pass "$out"

	# The same file with its first tenant's id spoilt must fail and say where.
	bad="$f.bad.yaml"
	sed '0,/- id: [A-Za-z0-9]*/s//- id: bad-tenant/' "$f" >"$bad"
	line=$(grep -n -- '- id: bad-tenant' "$bad" | head -1 | cut -d: -f1)
	[ -n "$line" ] || fail "could not spoil $f"
	if "$FB_BINARY" check -c "$bad" 2>"$FB_TMP/err"; then
		fail "fedbridge check accepted a bad tenant id in $bad"
	fi
	grep -q "$bad:$line:[0-9]*: tenants\[0\]\.id: expected a tenantID" "$FB_TMP/err" ||
		{ cat "$FB_TMP/err" >&2; fail "no positioned error for $bad"; }
	rm -f "$bad"
done
[ "$n" -ge 2 ] || fail "expected at least two example configurations, found $n"

# A key readable by others is refused, as ssh would.
chmod 644 "$FB_TMP/examples/keys/fid.secret"
if "$FB_BINARY" check -c "$FB_TMP/examples/minimal.yaml" 2>"$FB_TMP/err"; then
	fail "a world-readable fid secret was accepted"
fi
grep -q "keys.fid_secret: .*fid.secret: mode 0644, must be 0600 or 0400: group or others can get at the secret; run chmod 600" "$FB_TMP/err" ||
	{ cat "$FB_TMP/err" >&2; fail "no clear refusal of a world-readable secret"; }
pass "world-readable secret refused"
echo "examples: $n passed, 0 failed"
