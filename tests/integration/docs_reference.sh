#!/bin/bash
# docs/configuration.md carries the reference table made from the schema
# table; this keeps the two in step. Regenerate with scripts/gen-reference.sh.
. "$(dirname "$0")/lib.sh"
doc="$FB_SOURCE_DIR/docs/configuration.md"
sed -n '/<!-- BEGIN REFERENCE -->/,/<!-- END REFERENCE -->/p' "$doc" | sed '1d;$d' >"$FB_TMP/doc.md"
"$FB_BINARY" check --reference >"$FB_TMP/schema.md"
[ -s "$FB_TMP/schema.md" ] || fail "empty reference"
if ! diff -u "$FB_TMP/doc.md" "$FB_TMP/schema.md"; then
	fail "docs/configuration.md is out of step with the schema: run scripts/gen-reference.sh"
fi
echo "docs_reference: 1 passed, 0 failed"
