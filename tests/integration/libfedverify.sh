#!/bin/bash
# libfedverify as a relay would use it: installed with cmake --install, found
# through its pkg-config file, linked into a small program that checks a
# token fedbridge issued.
. "$(dirname "$0")/lib.sh"
: "${FB_BUILD_DIR:?FB_BUILD_DIR must name the build directory}"
# DESTDIR: nothing is installed outside the test's folder (the example configuration
# goes to an absolute sysconfdir).
prefix="$FB_TMP/root"
DESTDIR="$prefix" cmake --install "$FB_BUILD_DIR" >/dev/null || fail "cmake --install"
pcdir=$(dirname "$(find "$prefix" -name fedverify.pc | head -1)")
[ -f "$pcdir/fedverify.pc" ] || fail "no fedverify.pc installed"
[ -n "$(find "$prefix" -path '*/include/fedbridge/fb_verify.h')" ] || fail "no fb_verify.h installed"
# The relay's ABI is the check and the error convention: none of common's buffers, logger
# or file helpers.
headers=$(cd "$(dirname "$(find "$prefix" -path '*/include/fedbridge/fb_verify.h')")" && ls | tr '\n' ' ')
[ "$headers" = "fb_err.h fb_verify.h " ] || fail "installed headers: $headers (want fb_err.h fb_verify.h)"
! grep -Eq 'fb_buf|fb_log|fb_file_' "$prefix"/*/include/fedbridge/*.h "$prefix"/*/*/include/fedbridge/*.h 2>/dev/null ||
	fail "an installed header exposes common's internals"
export PKG_CONFIG_PATH="$pcdir"
# shellcheck disable=SC2046,SC2086
cc -std=c17 ${FB_TEST_CFLAGS:-} -o "$FB_TMP/relay_check" "$FB_SOURCE_DIR/tests/consumer/relay_check.c" \
	$(pkg-config --cflags fedverify) $(pkg-config --static --libs fedverify) ||
	fail "could not build a program against libfedverify"
pass "built a relay program with pkg-config --cflags --libs fedverify"
# A relay module is a shared object: the installed archives must link into one.
# shellcheck disable=SC2046,SC2086
cc -std=c17 ${FB_TEST_CFLAGS:-} -shared -fPIC -o "$FB_TMP/relay_check.so" \
	"$FB_SOURCE_DIR/tests/consumer/relay_check.c" \
	$(pkg-config --cflags fedverify) $(pkg-config --static --libs fedverify) 2>"$FB_TMP/so.err" ||
	fail "could not link libfedverify into a shared object: $(head -5 "$FB_TMP/so.err")"
pass "linked libfedverify into a shared object (position-independent archives)"

examples_copy
pair="$FB_TMP/examples/pair"
token=$("$FB_BINARY" token issue -c "$pair/installation-a.yaml" --tenant HZnKEBoqDU \
	--fid fid:0/HZnKEBoqDU/100401 --audience HWqHczeM2P)
out=$("$FB_TMP/relay_check" "$pair/keys/a.jwks" https://sso.a.example HZnKEBoqDU HWqHczeM2P \
	"$pair/keys/a-to-b.cert.pem" "$token") || fail "the embedded check denied: $out"
[ "$out" = "allow fid:0/HZnKEBoqDU/100401" ] || fail "unexpected: $out"
pass "the embedded check allows: $out"
set +e
out=$("$FB_TMP/relay_check" "$pair/keys/a.jwks" https://sso.a.example HZnKEBoqDU HWqHczeM2P \
	"$pair/keys/b-to-a.cert.pem" "$token")
rc=$?
set -e
[ "$rc" = 1 ] && [ "$out" = cert_mismatch ] || fail "expected cert_mismatch, got $rc $out"
pass "and denies another peer certificate: $out"
echo "libfedverify: 4 passed, 0 failed"
