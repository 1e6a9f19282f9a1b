# Shared helpers for the integration scripts (sourced, POSIX sh + bash).
# FB_BINARY and FB_SOURCE_DIR come from ctest's environment.
set -eu

: "${FB_BINARY:?FB_BINARY must name the fedbridge binary}"
: "${FB_SOURCE_DIR:?FB_SOURCE_DIR must name the source tree}"

FB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fedbridge-test.XXXXXX")
FB_PIDS=""
cleanup() {
	for pid in $FB_PIDS; do kill "$pid" 2>/dev/null || true; done
	for pid in $FB_PIDS; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$FB_TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

# A copy of conf/examples with its keys made, so tests never touch the tree.
examples_copy() {
	cp -r "$FB_SOURCE_DIR/conf/examples" "$FB_TMP/examples"
	rm -rf "$FB_TMP/examples/keys" "$FB_TMP/examples/state"
	rm -rf "$FB_TMP"/examples/*/keys
	for mk in "$FB_TMP"/examples/make-keys.sh "$FB_TMP"/examples/*/make-keys.sh; do
		"$mk" >/dev/null
	done
}

# wait_for FILE PATTERN [SECONDS]: polls FILE until a line matches (no fixed sleeps).
wait_for() {
	deadline=$(( $(date +%s) + ${3:-20} ))
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || { cat "$1" >&2; fail "timed out waiting for '$2' in $1"; }
		sleep 0.05
	done
}
