#!/bin/sh
# Builds the Debian package (cpack -G DEB) in build-package: fedbridge, the
# libfedverify static library with its header and pkg-config file, the man
# pages, the systemd unit and sysusers file, and /etc/fedbridge/fedbridge.yaml
# (a conffile). Prints the package's path.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh run
dir=${FB_PACKAGE_DIR:-build-package}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFB_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
(cd "$dir" && cpack -G DEB >/dev/null)
ls "$dir"/fedbridge_*.deb
