#!/bin/bash
# Secrets stay out of crash dumps and are read only from the files named:
# a running `fedbridge serve` has a core file size limit of 0 and is not
# dumpable, even when started with core dumps allowed; check and serve refuse
# a signing key given as a symbolic link, naming it.
. "$(dirname "$0")/lib.sh"
examples_copy
ex="$FB_TMP/examples"
nobody_uid=65534 nobody_gid=65534

# A symbolic link to a good key: only the link is wrong, and both commands say so.
ln -s signing-2026-11.pem "$ex/keys/link.pem"
sed 's|signing: \[keys/signing-2026-11.pem\]|signing: [keys/link.pem]|' "$ex/minimal.yaml" >"$ex/link.yaml"
grep -q 'keys/link.pem' "$ex/link.yaml" || fail "minimal.yaml no longer names keys/signing-2026-11.pem"
if "$FB_BINARY" check -c "$ex/link.yaml" 2>"$FB_TMP/check.err"; then
	fail "check accepted a signing key given as a symbolic link"
fi
grep -q "keys.signing\[0\]: .*link.pem is a symbolic link" "$FB_TMP/check.err" ||
	{ cat "$FB_TMP/check.err" >&2; fail "check did not name the linked signing key"; }
pass "check refuses a signing key given as a symbolic link"

if timeout 20 "$FB_BINARY" serve -c "$ex/link.yaml" --listen 127.0.0.1:0 2>"$FB_TMP/serve-link.log"; then
	fail "serve ran with a signing key given as a symbolic link"
fi
grep -q "listening on" "$FB_TMP/serve-link.log" && fail "serve listened with a linked signing key"
grep -q "link.pem is a symbolic link" "$FB_TMP/serve-link.log" ||
	{ cat "$FB_TMP/serve-link.log" >&2; fail "serve did not name the linked signing key"; }
pass "serve refuses a signing key given as a symbolic link"

# The bridge as an ordinary user (non-dumpable shows as its /proc/PID/mem owned by root
# only then), started with core dumps allowed: it must turn them off itself. The sanitizers
# would turn them off on their own; disable_coredump=0 leaves that to fedbridge.
chown -R "$nobody_uid:$nobody_gid" "$ex"
chmod 711 "$FB_TMP"
log="$FB_TMP/serve.log"
(
	ulimit -c unlimited
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0" exec setpriv \
		--reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups \
		"$FB_BINARY" serve -c "$ex/minimal.yaml" --listen 127.0.0.1:0
) 2>"$log" &
pid=$!
FB_PIDS="$pid"
wait_for "$log" "listening on 127.0.0.1:[1-9]"

uid=$(awk '/^Uid:/ { print $3 }' "/proc/$pid/status")
[ "$uid" = "$nobody_uid" ] || fail "the bridge runs as uid $uid, expected $nobody_uid"
core=$(grep '^Max core file size' "/proc/$pid/limits")
echo "$core" | grep -Eq '^Max core file size +0 +0 +bytes' ||
	fail "a running bridge may still dump core: $core"
pass "core file size limit 0: $core"
owner=$(stat -c %u "/proc/$pid/mem")
[ "$owner" = 0 ] ||
	fail "the bridge is dumpable: /proc/$pid/mem belongs to uid $owner, not root (PR_SET_DUMPABLE 0 not set)"
pass "the bridge is not dumpable (/proc/$pid/mem belongs to root while it runs as uid $uid)"

kill -TERM "$pid"
wait "$pid" || fail "serve exited with status $? on SIGTERM"
FB_PIDS=""
echo "secrets: 4 passed, 0 failed"
