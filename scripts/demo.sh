#!/bin/sh
# fedbridge's main job, end to end on one machine: two installations, each
# with its own IdP (OpenID Connect at A, SAML 2.0 at B), its own fedbridge and
# nginx as its mTLS relay, federate without whitelist files. Installs what it
# needs from Debian (and oidc-provider from npm's registry), builds fedbridge,
# runs everything on loopback, prints what happens, and cleans up.
#   FB_BINARY   use this fedbridge binary instead of building one
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh demo
root=$(pwd)
. scripts/node-env.sh

if [ -z "${FB_BINARY:-}" ]; then
	dir=build
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFB_TESTS=OFF >/dev/null
	cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
	FB_BINARY=$(pwd)/$dir/cli/fedbridge
fi
export FB_BINARY FB_SOURCE_DIR="$(pwd)"
exec bash scripts/demo-federation.sh
