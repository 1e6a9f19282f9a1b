#!/bin/sh
# The SAML fuzz targets make a throwaway SP private key at start: after a
# corpus replay, nothing of it may be left in the temporary folder.
# Usage: no_secret_left.sh CORPUS_DIR REPLAY...
set -eu
corpus=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fb-fuzz-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for replay in "$@"; do
	TMPDIR=$tmp "$replay" "$corpus/$(basename "$replay" _replay)" >/dev/null 2>&1
	left=$(find "$tmp" -mindepth 1)
	[ -z "$left" ] || { echo "FAIL: $(basename "$replay") left behind: $left" >&2; exit 1; }
	echo "ok: $(basename "$replay") leaves nothing in TMPDIR"
done
