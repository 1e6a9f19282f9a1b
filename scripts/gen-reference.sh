#!/bin/sh
# Rewrites the reference table in docs/configuration.md from the schema table.
# Usage: scripts/gen-reference.sh [FEDBRIDGE_BINARY]
set -eu
cd "$(dirname "$0")/.."
fb=${1:-build/cli/fedbridge}
doc=docs/configuration.md
tmp=$(mktemp)
"$fb" check --reference >"$tmp.ref"
awk -v ref="$tmp.ref" '
	/<!-- BEGIN REFERENCE -->/ { print; while ((getline l < ref) > 0) print l; skip = 1; next }
	/<!-- END REFERENCE -->/ { skip = 0 }
	!skip { print }
' "$doc" >"$tmp"
mv "$tmp" "$doc"
rm -f "$tmp.ref"
