#!/bin/sh
# Regenerates the pictures in docs/figures from their text sources (Graphviz;
# Debian package graphviz). The SVGs are committed so that readers need nothing.
set -eu
cd "$(dirname "$0")/../docs/figures"
command -v dot >/dev/null 2>&1 || { echo "gen-figures: install graphviz (apt-get install graphviz)" >&2; exit 1; }
for src in *.dot; do
	dot -Tsvg "$src" -o "${src%.dot}.svg"
	echo "docs/figures/${src%.dot}.svg"
done
