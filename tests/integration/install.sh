#!/bin/bash
# What `cmake --install` and the Debian package put on a machine: the binary,
# libfedverify with its header and pkg-config file, the man pages (every
# configuration key in fedbridge.yaml(5)), a hardened systemd unit with its
# own user, and an example configuration that checks once its files exist.
. "$(dirname "$0")/lib.sh"
: "${FB_BUILD_DIR:?FB_BUILD_DIR must name the build directory}"
n=0
ok() { n=$((n + 1)); pass "$*"; }

root="$FB_TMP/root"
DESTDIR="$root" cmake --install "$FB_BUILD_DIR" >"$FB_TMP/install.log" || fail "cmake --install: $(cat "$FB_TMP/install.log")"
bin=$(find "$root" -path '*/bin/fedbridge' -type f | head -1)
[ -x "$bin" ] || fail "no fedbridge binary installed"
"$bin" --version | grep -q '^fedbridge [0-9]' || fail "the installed binary: $("$bin" --version)"
for f in include/fedbridge/fb_verify.h include/fedbridge/fb_err.h man/man1/fedbridge.1 man/man5/fedbridge.yaml.5 \
	systemd/system/fedbridge.service sysusers.d/fedbridge.conf fedbridge/fedbridge.yaml pkgconfig/fedverify.pc; do
	[ -n "$(find "$root" -path "*/$f" | head -1)" ] || fail "not installed: $f"
done
ok "installed: fedbridge, fb_verify.h, fedverify.pc, fedbridge(1), fedbridge.yaml(5), the systemd unit, sysusers.d, the example configuration"

# The man pages: well-formed, and fedbridge.yaml(5) names every key of the schema.
man5=$(find "$root" -path '*/man5/fedbridge.yaml.5')
man1=$(find "$root" -path '*/man1/fedbridge.1')
if command -v groff >/dev/null 2>&1; then
	for m in "$man1" "$man5"; do
		warn=$(groff -man -Tutf8 -ww -z "$m" 2>&1)
		[ -z "$warn" ] || fail "groff warns about $m: $warn"
	done
fi
keys=0
while read -r key; do
	keys=$((keys + 1))
	grep -qxF ".B $key" "$man5" || fail "fedbridge.yaml(5) lacks $key"
done < <("$FB_BINARY" check --reference | sed -n 's/^| `\([^`]*\)` |.*/\1/p')
[ "$keys" -gt 50 ] || fail "only $keys keys in the reference"
for cmd in check serve reload keys token mapping trust import sessions; do
	grep -q "^\.B $cmd\$" "$man1" || fail "fedbridge(1) does not describe $cmd"
done
ok "fedbridge.yaml(5) documents all $keys keys of the schema; fedbridge(1) every command; groff has no warning"

# The unit: the installed binary, its own user, hardening, reload through fedbridge reload.
unit=$(find "$root" -path '*/systemd/system/fedbridge.service')
grep -q "^ExecStart=${bin#"$root"} serve -c " "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
grep -q "^ExecReload=${bin#"$root"} reload -c " "$unit" || fail "ExecReload: $(grep ExecReload "$unit")"
for d in User=fedbridge NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	PrivateDevices=yes CapabilityBoundingSet= StateDirectory=fedbridge MemoryDenyWriteExecute=yes \
	LimitCORE=0; do
	grep -qx "$d" "$unit" || fail "the unit lacks $d"
done
grep -q '^u fedbridge ' "$(find "$root" -path '*/sysusers.d/fedbridge.conf')" || fail "sysusers.d: no user fedbridge"
if command -v systemd-analyze >/dev/null 2>&1; then
	# Paths in the unit point at the real system; only the syntax is checked here.
	out=$(systemd-analyze verify --man=no "$unit" 2>&1 | grep -v "is not executable\|No such file\|Command .* is not" || true)
	[ -z "$out" ] || fail "systemd-analyze: $out"
fi
ok "the systemd unit runs the installed binary as fedbridge with NoNewPrivileges, ProtectSystem=strict, PrivateTmp, no capabilities and no core dumps"

# The example configuration checks once the files it names exist.
etc="$FB_TMP/etc"
mkdir -p "$etc/keys" "$etc/trusts.d"
cp "$(find "$root" -path '*/fedbridge/fedbridge.yaml')" "$etc/fedbridge.yaml"
chmod 700 "$etc/keys"
(umask 077 && for s in fid kc messenger; do openssl rand -hex 32 >"$etc/keys/$s.secret"; done)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$FB_TMP/ca.key" -out "$etc/ca.pem" -days 30 \
	-subj "/CN=example CA" 2>/dev/null
sed -i "s|/opt/certs/server.cacert.pem|ca.pem|; s|embedded:/var/lib/fedbridge|embedded:state|" "$etc/fedbridge.yaml"
"$FB_BINARY" keys rotate -c "$etc/fedbridge.yaml" >/dev/null || fail "keys rotate on the example"
"$FB_BINARY" check -c "$etc/fedbridge.yaml" >"$FB_TMP/out" 2>&1 || fail "the example configuration: $(cat "$FB_TMP/out")"
ok "the example configuration checks: $(tail -1 "$FB_TMP/out" | sed "s|$etc/||")"

# The Debian package (cpack) of a release build with prefix /usr.
pkgdir="$FB_TMP/package"
cmake -S "$FB_SOURCE_DIR" -B "$pkgdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFB_TESTS=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr >"$FB_TMP/pkg.log" 2>&1 || fail "configure the package build: $(tail "$FB_TMP/pkg.log")"
cmake --build "$pkgdir" -j "$(nproc 2>/dev/null || echo 2)" >>"$FB_TMP/pkg.log" 2>&1 || fail "package build: $(tail "$FB_TMP/pkg.log")"
(cd "$pkgdir" && cpack -G DEB) >>"$FB_TMP/pkg.log" 2>&1 || fail "cpack: $(tail "$FB_TMP/pkg.log")"
deb=$(ls "$pkgdir"/fedbridge_*.deb)
dpkg-deb -c "$deb" >"$FB_TMP/contents"
for f in ./usr/bin/fedbridge ./etc/fedbridge/fedbridge.yaml ./usr/lib/systemd/system/fedbridge.service \
	./usr/share/man/man5/fedbridge.yaml.5.gz ./usr/share/man/man1/fedbridge.1.gz ./usr/include/fedbridge/fb_verify.h; do
	grep -q " $f\$" "$FB_TMP/contents" || grep -q " ${f%.gz}\$" "$FB_TMP/contents" || fail "the package lacks $f: $(cat "$FB_TMP/contents")"
done
depends=$(dpkg-deb -f "$deb" Depends)
case "$depends" in *libssl3*libmicrohttpd* | *libmicrohttpd*libssl3*) ;; *) fail "Depends: $depends" ;; esac
dpkg-deb -e "$deb" "$FB_TMP/control"
grep -qx /etc/fedbridge/fedbridge.yaml "$FB_TMP/control/conffiles" || fail "the configuration is not a conffile"
[ -x "$FB_TMP/control/postinst" ] || fail "no postinst"
ok "cpack -G DEB: $(basename "$deb"), Depends from the shared libraries ($(echo "$depends" | tr ',' '\n' | wc -l) packages), /etc/fedbridge/fedbridge.yaml a conffile"
echo "install: $n checks passed"
