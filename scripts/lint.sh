#!/bin/sh
# Lint gate: clang-format (project .clang-format) and clang-tidy (project
# .clang-tidy) over every C file. Usage: scripts/lint.sh BUILD_DIR
# (BUILD_DIR holds compile_commands.json).
set -eu
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/lint.sh BUILD_DIR}
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find common net conf verify metrics federation legacy login daemon cli idp mapping sessions tests -name '*.[ch]')
[ -n "$files" ] || { echo "lint: no C files" >&2; exit 1; }

bad=0
for f in $files; do
	if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
		echo "lint: $f is not clang-formatted (run clang-format -i $f)" >&2
		bad=1
	fi
done
# clang-tidy reads the flags of each translation unit from the build.
# Sanitizer flags are GCC's there too; clang-tidy understands them. One
# clang-tidy per core, a few files each, each batch's report kept whole.
srcs=$(echo "$files" | tr ' ' '\n' | grep '\.c$')
jobs=$(nproc 2>/dev/null || echo 2)
reports=$(mktemp -d "${TMPDIR:-/tmp}/fb-tidy.XXXXXX")
# shellcheck disable=SC2016
if ! printf '%s\n' $srcs | xargs -P "$jobs" -n 4 sh -c '
	reports=$0 build=$1
	shift
	out=$(mktemp "$reports/batch.XXXXXX")
	clang-tidy -p "$build" --quiet "$@" >"$out" 2>&1 && rm -f "$out"' "$reports" "$build"; then
	cat "$reports"/batch.* >&2
	bad=1
fi
rm -rf "$reports"
[ "$bad" = 0 ] && echo "lint: $(echo "$files" | wc -w) files clean"
exit "$bad"
