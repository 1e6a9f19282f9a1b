#!/bin/bash
# The command line follows Unix habits: --help everywhere, usage errors exit 2.
. "$(dirname "$0")/lib.sh"
"$FB_BINARY" --version | grep -q '^fedbridge [0-9]' || fail "--version"
"$FB_BINARY" --help | grep -q 'usage: fedbridge' || fail "--help"
for cmd in check serve; do
	"$FB_BINARY" "$cmd" --help | grep -q "usage: fedbridge $cmd" || fail "$cmd --help"
	set +e
	"$FB_BINARY" "$cmd" 2>/dev/null
	rc=$?
	"$FB_BINARY" "$cmd" --bogus 2>/dev/null
	rc2=$?
	set -e
	[ "$rc" = 2 ] || fail "$cmd without -c exited $rc, expected 2"
	[ "$rc2" = 2 ] || fail "$cmd --bogus exited $rc2, expected 2"
done
set +e
"$FB_BINARY" frobnicate 2>"$FB_TMP/err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown command exited $rc"
grep -q "unknown command 'frobnicate'" "$FB_TMP/err" || fail "unknown command message"
set +e
"$FB_BINARY" check -c "$FB_TMP/missing.yaml" 2>"$FB_TMP/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "check of a missing file exited $rc, expected 1"
grep -q "missing.yaml: cannot read: .*No such file" "$FB_TMP/err" || fail "missing file message"
set +e
"$FB_BINARY" serve -c "$FB_TMP/missing.yaml" 2>"$FB_TMP/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "serve of a missing file exited $rc, expected 1"
echo "cli: 4 passed, 0 failed"
