#!/bin/sh
# Installs what fedbridge needs from Debian's packages, and nothing when it is
# all there already (quiet then). Usage: scripts/deps.sh run|demo|test|report
#   run   build, run and package the bridge
#   demo  also what the two-installation demo runs: nginx (the relays), Node.js
#         (the OpenID provider, from npm's registry), SimpleSAMLphp (the SAML IdP)
#   test  also the test tools: cmocka, clang for fuzzing, lint tools
#   report  also gnuplot, for scripts/perf-report.sh's plots
# Then it checks the commands the scripts call, not only the packages, and
# exits 1 naming any that is still missing.
#
# Node.js (demo, test): the OpenID provider (oidc-provider 9, tests/oidc-op)
# calls URL.parse and the scripted browser Headers.getSetCookie, so the
# requirement is Node.js 20.18 or later. Debian 12 ships 18.19: then Node.js
# 22 LTS comes from npm's registry (the node-linux-<arch> package, which holds
# the binary) into .deps/node in this checkout, nothing system-wide;
# scripts/node-env.sh puts it first on PATH for the demo and the tests.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

profile=${1:-run}
build="build-essential cmake pkg-config libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev
libjansson-dev libssl-dev libpcre2-dev libsqlite3-dev libpq-dev libxml2-dev libcjose-dev
liblasso3-dev libxmlsec1-dev libglib2.0-dev zlib1g-dev libpsl-dev file dpkg-dev"
run="$build openssl curl ca-certificates"
demo="$run nginx simplesamlphp php-cli php-xml php-mbstring procps"
test="$demo libcmocka-dev clang libclang-rt-14-dev clang-format clang-tidy wrk postgresql
python3 python3-lxml python3-xmlsec dnsmasq-base jq"
report="$test gnuplot-nox"

# The commands each profile's scripts call (cpack needs file and dpkg-shlibdeps).
run_cmds="cc cmake pkg-config file dpkg-shlibdeps openssl curl"
demo_cmds="$run_cmds nginx php ps node npm tar"
test_cmds="$demo_cmds clang clang-format clang-tidy wrk dnsmasq python3 jq"
report_cmds="$test_cmds gnuplot"

case "$profile" in
run) want=$run cmds=$run_cmds ;;
demo) want=$demo cmds=$demo_cmds ;;
test) want=$test cmds=$test_cmds ;;
report) want=$report cmds=$report_cmds ;;
*) echo "usage: $0 run|demo|test|report" >&2; exit 2 ;;
esac

node_min_major=20
node_min_minor=18
node_local_version=22.23.5
node_local_dir=$root/.deps/node

missing=""
for p in $want; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done
# Debian's nodejs and npm unless a node and an npm are already on PATH (from
# elsewhere, or .deps/node): their version is checked below.
if [ "$profile" != run ]; then
	. "$root/scripts/node-env.sh"
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -n "$missing" ]; then
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
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
		$SUDO chmod 755 "$policy"
		trap '$SUDO rm -f "$policy"' EXIT
	fi
	$SUDO apt-get update -qq >/dev/null
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# node_fits: the node first on PATH is recent enough.
node_fits() {
	node -e 'const [a, b] = process.versions.node.split(".").map(Number);
process.exit(a > Number(process.argv[1]) || (a === Number(process.argv[1]) && b >= Number(process.argv[2])) ? 0 : 1)' \
	    "$node_min_major" "$node_min_minor" 2>/dev/null
}

if [ "$profile" != run ]; then
	. "$root/scripts/node-env.sh"
	if command -v node >/dev/null 2>&1 && ! node_fits; then
		case $(uname -m) in
		x86_64) arch=x64 ;;
		aarch64) arch=arm64 ;;
		*) arch=$(uname -m) ;;
		esac
		echo "deps: node $(node --version) is older than $node_min_major.$node_min_minor;" \
		    "installing Node.js $node_local_version from npm's registry into .deps/node" >&2
		mkdir -p "$node_local_dir"
		(cd "$node_local_dir" && npm install --no-save --no-audit --no-fund --loglevel=error \
		    "node-linux-$arch@$node_local_version") >"$node_local_dir/install.log" 2>&1 || {
			tail -n 20 "$node_local_dir/install.log" >&2
			echo "deps: could not install node-linux-$arch@$node_local_version from npm's registry" >&2
			exit 1
		}
		mkdir -p "$node_local_dir/bin"
		ln -sf "../node_modules/node-linux-$arch/bin/node" "$node_local_dir/bin/node"
		. "$root/scripts/node-env.sh"
		node_fits || {
			echo "deps: node $(node --version) at $(command -v node) is still older than" \
			    "$node_min_major.$node_min_minor" >&2
			exit 1
		}
	fi
fi

absent=""
for c in $cmds; do
	command -v "$c" >/dev/null 2>&1 || absent="$absent $c"
done
if [ -n "$absent" ]; then
	echo "deps: still missing after installing the $profile packages:$absent" >&2
	exit 1
fi
