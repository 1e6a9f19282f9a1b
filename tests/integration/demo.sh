#!/bin/bash
# The README's first command, as CI runs it: the two-installation demo
# (scripts/demo-federation.sh) with the binary under test. Every line it
# prints must match, in order, the line of fixtures/demo/expected.txt (an
# extended regular expression for the whole line: allows and denials with
# their reasons; only ports, ids, fingerprints and timings vary), and the
# figures must say what they claim: no failed message, the revocation seen
# at B within the feed's interval, no process left behind.
. "$(dirname "$0")/lib.sh"

expected="$FB_SOURCE_DIR/tests/integration/fixtures/demo/expected.txt"
out="$FB_TMP/demo.out"
set +e
FB_SOURCE_DIR="$FB_SOURCE_DIR" TMPDIR="$FB_TMP" bash "$FB_SOURCE_DIR/scripts/demo-federation.sh" >"$out" 2>"$FB_TMP/demo.err"
rc=$?
set -e
cat "$out"
[ "$rc" = 0 ] || fail "the demo exited $rc: $(cat "$FB_TMP/demo.err")"
[ ! -s "$FB_TMP/demo.err" ] || fail "the demo wrote to stderr: $(cat "$FB_TMP/demo.err")"

got=$(wc -l <"$out")
want=$(wc -l <"$expected")
[ "$got" = "$want" ] || fail "the demo printed $got lines, expected $want"
i=0
while IFS= read -r pattern <&3 && IFS= read -r line <&4; do
	i=$((i + 1))
	printf '%s\n' "$line" | grep -Eqx -- "$pattern" ||
		fail "line $i of the demo does not match.
  printed:  $line
  expected: $pattern"
done 3<"$expected" 4<"$out"
pass "all $i lines of the demo match fixtures/demo/expected.txt"

# The figures behind the claims.
ms=$(sed -n 's/^refuse: alice revoked at A .* refused her token \([0-9]*\) ms later.*/\1/p' "$out")
[ -n "$ms" ] && [ "$ms" -le 6000 ] || fail "revocation reached B after $ms ms (feed interval 2 s)"
pass "a revocation at A reached B's relay in $ms ms"
reloads=$(sed -n 's/^reload: .* reloaded \([0-9]*\) times.*: 0 failed$/\1/p' "$out")
[ -n "$reloads" ] && [ "$reloads" -ge 4 ] || fail "reloads under traffic: $reloads"
pass "$reloads reloads under traffic, 0 failed messages"

# Nothing left running or lying around.
left=$(ls -d "$FB_TMP"/fedbridge-demo.* 2>/dev/null || true)
[ -z "$left" ] || fail "the demo left $left"
! pgrep -f "$FB_TMP/fedbridge-demo" >/dev/null || fail "the demo left processes: $(pgrep -af "$FB_TMP/fedbridge-demo")"
pass "the demo cleaned up after itself"
