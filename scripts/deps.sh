#!/bin/sh
# Installs what fedbridge needs from Debian's packages, and nothing when it is
# all there already (quiet then). Usage: scripts/deps.sh run|demo|test|report
#   run   build and run the bridge
#   demo  also what the two-installation demo runs: nginx (the relays), Node.js
#         (the OpenID provider, from npm's registry), SimpleSAMLphp (the SAML IdP)
#   test  also the test tools: cmocka, clang for fuzzing, lint tools
#   report  also gnuplot, for scripts/perf-report.sh's plots
set -eu

profile=${1:-run}
build="build-essential cmake pkg-config libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev
libjansson-dev libssl-dev libpcre2-dev libsqlite3-dev libpq-dev libxml2-dev libcjose-dev
liblasso3-dev libxmlsec1-dev libglib2.0-dev zlib1g-dev"
run="$build openssl curl ca-certificates"
demo="$run nginx simplesamlphp php-cli php-xml php-mbstring procps"
test="$demo libcmocka-dev clang libclang-rt-14-dev clang-format clang-tidy wrk postgresql
python3-lxml python3-xmlsec dnsmasq-base"

report="$test gnuplot-nox"

case "$profile" in
run) want=$run ;;
report) want=$report ;;
demo) want=$demo ;;
test) want=$test ;;
*) echo "usage: $0 run|demo|test|report" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done
# Node.js runs the OpenID provider and the JOSE interoperability test; any node and npm
# on PATH will do.
if [ "$profile" != run ]; then
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps: need root (or sudo) to install:$missing" >&2
		exit 1
	}
	SUDO=sudo
else
	SUDO=
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Servers (nginx) are only ever started by the tests themselves, on loopback:
# keep their packages from starting a system instance while installing.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	made_policy=1
	trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
