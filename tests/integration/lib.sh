# Shared helpers for the integration scripts (sourced, POSIX sh + bash).
# FB_BINARY and FB_SOURCE_DIR come from ctest's environment.
set -eu

: "${FB_BINARY:?FB_BINARY must name the fedbridge binary}"
: "${FB_SOURCE_DIR:?FB_SOURCE_DIR must name the source tree}"
root=$FB_SOURCE_DIR
. "$FB_SOURCE_DIR/scripts/node-env.sh"

FB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fedbridge-test.XXXXXX")
FB_PIDS=""
cleanup() {
	status=$?
	for pid in $FB_PIDS; do kill "$pid" 2>/dev/null || true; done
	for pid in $FB_PIDS; do wait "$pid" 2>/dev/null || true; done
	# Bridges built with the sanitizers report leaks and errors when they stop, into
	# their logs: a test whose processes did so fails, whatever it checked before.
	reports=$(grep -rl --include='*.log' -e 'ERROR: LeakSanitizer' -e 'ERROR: AddressSanitizer' \
		-e 'runtime error:' "$FB_TMP" 2>/dev/null || true)
	if [ -n "$reports" ]; then
		for f in $reports; do
			echo "FAIL: sanitizer report in $f:" >&2
			grep -A 30 -e 'ERROR: LeakSanitizer' -e 'ERROR: AddressSanitizer' -e 'runtime error:' "$f" | head -60 >&2
		done
		status=1
	fi
	rm -rf "$FB_TMP"
	exit "$status"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

# A copy of conf/examples with its keys made, so tests never touch the tree.
examples_copy() {
	cp -r "$FB_SOURCE_DIR/conf/examples" "$FB_TMP/examples"
	rm -rf "$FB_TMP/examples/keys" "$FB_TMP/examples/state"
	rm -rf "$FB_TMP"/examples/*/keys
	for mk in "$FB_TMP"/examples/make-keys.sh "$FB_TMP"/examples/*/make-keys.sh; do
		"$mk" >/dev/null
	done
}

# need_node WHAT: node and npm on PATH, Node.js 20.18 or later (what
# oidc-provider and the scripted browser call); fails naming WHAT otherwise.
need_node() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
		fail "node and npm are needed for $1; scripts/deps.sh test installs them"
	node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 18) ? 0 : 1)' ||
		fail "node $(node --version) at $(command -v node) is too old for $1: Node.js 20.18 or later is needed (scripts/deps.sh test brings one into .deps/node)"
}

# npm_copy DIR DEST: tests/DIR (a package with its lock file) copied to DEST
# without node_modules, and its packages installed there with npm ci.
npm_copy() {
	mkdir -p "$2"
	tar -C "$FB_SOURCE_DIR/tests/$1" --exclude=node_modules -cf - . | tar -C "$2" -xf -
	(cd "$2" && npm ci --no-audit --no-fund --loglevel=error) >"$FB_TMP/npm.log" 2>&1 ||
		{ cat "$FB_TMP/npm.log" >&2; fail "npm ci in tests/$1 failed"; }
}

# wait_for FILE PATTERN [SECONDS]: polls FILE until a line matches (no fixed sleeps).
wait_for() {
	deadline=$(( $(date +%s) + ${3:-20} ))
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || { cat "$1" >&2; fail "timed out waiting for '$2' in $1"; }
		sleep 0.05
	done
}

# A TCP port nobody listens on, on loopback: below the kernel's ephemeral range
# (32768 and up), where outgoing connections cannot take it before the test
# binds it, and never one handed out before in this test.
free_port() {
	while :; do
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000 ))
		grep -qx "$p" "$FB_TMP/ports" 2>/dev/null && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		echo "$p" >>"$FB_TMP/ports"
		echo "$p"
		return
	done
}

# start_bridge CONFIG LOG: runs fedbridge serve on a free port; sets BRIDGE_PID and BRIDGE_PORT.
start_bridge() {
	conf=$1 log=$2
	shift 2
	"$FB_BINARY" serve -c "$conf" --listen 127.0.0.1:0 "$@" 2>"$log" &
	BRIDGE_PID=$!
	FB_PIDS="$FB_PIDS $BRIDGE_PID"
	wait_for "$log" "listening on 127.0.0.1:[1-9]"
	BRIDGE_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
	# With --relay-listen: the relays' own listener (/validate).
	BRIDGE_RELAY_PORT=$(sed -n 's/.*relay checks (.*) on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
}

# base64url of the SHA-256 of a PEM certificate's DER, as in cnf x5t#S256.
cert_s256() {
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | openssl base64 -A |
		tr '+/' '-_' | tr -d '='
}

# The PEM as nginx's $ssl_client_escaped_cert gives it (URL-escaped).
cert_escaped() {
	sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/+/%2B/g' -e 's/\//%2F/g' -e 's/=/%3D/g' "$1" |
		awk '{ printf "%s%%0A", $0 }'
}

# relay_inbound PORT BRIDGE_RELAY_PORT INBOX_PORT KEYS TENANT: the http{}
# blocks of installation B's inbound relay taken from docs/relay-guide.md's
# own text (its nginx block up to the outbound server), with this test's
# ports, files and tenant put in, and the messenger (grpc_pass) replaced by
# the inbox at INBOX_PORT: mTLS (B's relay certificate; B's CA checks the
# client certificates), one auth_request per message to the bridge's relay
# listener (HEAD, over kept-alive connections, only the relay's own headers).
# Fails when the guide no longer has what it substitutes.
relay_inbound() {
	guide=$FB_SOURCE_DIR/docs/relay-guide.md
	awk '/^```nginx/ { on = 1; next } on && /^# Outbound/ { exit } on { print }' "$guide" >"$FB_TMP/guide-inbound.conf"
	for want in 'server 127.0.0.1:8081;' 'listen 443 ssl;' '/etc/fedbridge/certs/server.cert.pem' \
		'/etc/fedbridge/certs/server.key.pem' '/etc/fedbridge/certs/server.cacert.pem' \
		'grpc_pass grpc://messenger-federation;' 'HWqHczeM2P'; do
		grep -qF -- "$want" "$FB_TMP/guide-inbound.conf" ||
			fail "docs/relay-guide.md's inbound nginx block no longer has '$want': update relay_inbound with it"
	done
	printf '\tupstream relay_inbox { server 127.0.0.1:%s; keepalive 32; }\n' "$3"
	sed -e "s|server 127.0.0.1:8081;|server 127.0.0.1:$2;|" \
		-e "s|listen 443 ssl;|listen 127.0.0.1:$1 ssl;|" \
		-e "s|/etc/fedbridge/certs/server.cert.pem|$4/b-relay.cert.pem|" \
		-e "s|/etc/fedbridge/certs/server.key.pem|$4/b-relay.key.pem|" \
		-e "s|/etc/fedbridge/certs/server.cacert.pem|$4/b-ca.pem|" \
		-e "s|grpc_pass grpc://messenger-federation;|proxy_pass http://relay_inbox; proxy_http_version 1.1; proxy_set_header Connection \"\";|" \
		-e "s|HWqHczeM2P|$5|g" "$FB_TMP/guide-inbound.conf"
}

# start_nginx PORT WORKERS < SERVER_BLOCKS: nginx from Debian, run by the test
# in $FB_TMP/nginx with the given http{} server blocks; returns once PORT answers.
start_nginx() {
	mkdir -p "$FB_TMP/nginx/logs" "$FB_TMP/nginx/tmp"
	chmod -R 777 "$FB_TMP/nginx"
	{
		cat <<NGINX
worker_processes $2;
error_log $FB_TMP/nginx/logs/error.log warn;
pid $FB_TMP/nginx/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $FB_TMP/nginx/tmp/body;
	proxy_temp_path $FB_TMP/nginx/tmp/proxy;
	fastcgi_temp_path $FB_TMP/nginx/tmp/fastcgi;
	uwsgi_temp_path $FB_TMP/nginx/tmp/uwsgi;
	scgi_temp_path $FB_TMP/nginx/tmp/scgi;
NGINX
		cat
		echo "}"
	} >"$FB_TMP/nginx/nginx.conf"
	nginx -p "$FB_TMP/nginx" -c "$FB_TMP/nginx/nginx.conf" -g 'daemon off;' 2>"$FB_TMP/nginx/stderr" &
	FB_PIDS="$FB_PIDS $!"
	deadline=$(( $(date +%s) + 20 ))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] ||
			{ cat "$FB_TMP/nginx/stderr" "$FB_TMP/nginx/logs/error.log" >&2; fail "nginx did not start"; }
		sleep 0.05
	done
}

# ---- the trail of refusals: each one logged once and audited once ----
# trail LOG CORR KIND: a refusal answered with correlation id CORR by the bridge logging to
# LOG; KIND is the audit record it must leave (login_refused, token_refused, revocation),
# or none for an outage (logged as such, never audited as a refusal).
trail() {
	[ -n "$2" ] || fail "a refusal ($3) answered without a correlation id"
	printf '%s %s %s\n' "$1" "$2" "$3" >>"$FB_TMP/trail"
}
# corr_header FILE: the X-Correlation-Id of the response headers curl wrote to FILE (-D).
corr_header() { tr -d '\r' <"$1" | sed -n 's/^[Xx]-[Cc]orrelation-[Ii]d: //p'; }
# trail_check CONFIG: every refusal recorded by trail has exactly one warning or error line
# naming its correlation id, and that line says "refused (reason)" (an outage: "failed
# (reason)"); the store of CONFIG holds exactly one refusal record with that id, of its
# kind (none for an outage, none for an anonymous refusal, whose line says so). Prints how
# many were checked.
trail_check() {
	[ -s "$FB_TMP/trail" ] || fail "trail_check: no refusal was recorded"
	: >"$FB_TMP/trail.audit"
	after=0
	while "$FB_BINARY" sessions audit -c "$1" --after "$after" --limit 1000 >"$FB_TMP/trail.page" ||
		fail "trail_check: sessions audit failed"; [ -s "$FB_TMP/trail.page" ]; do
		cat "$FB_TMP/trail.page" >>"$FB_TMP/trail.audit"
		after=$(tail -1 "$FB_TMP/trail.page" | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
		[ -n "$after" ] || fail "trail_check: an audit record without an id"
	done
	n=0
	while read -r log corr kind; do
		word=refused
		[ "$kind" = none ] && word=failed
		lines=$(grep -F "[$corr]" "$log" | grep -E '^[^ ]+ (warn|error) ' || true)
		[ "$(printf '%s' "$lines" | grep -c '')" = 1 ] ||
			fail "refusal $corr ($kind): not one log line but: $lines"
		printf '%s' "$lines" | grep -Eq "\[$corr\]: (provider [^ ]+: )?$word \([^)]+\): " ||
			fail "refusal $corr ($kind): the log line does not name it ($word (reason)): $lines"
		records=$(grep -F "\"correlation\":\"$corr\"" "$FB_TMP/trail.audit" |
			grep -E '"kind":"(login_refused|token_refused|revocation)"' || true)
		if [ "$kind" = none ]; then
			[ -z "$records" ] || fail "outage $corr audited as a refusal: $records"
		elif [ "$kind" = anonymous ]; then
			[ -z "$records" ] || fail "anonymous refusal $corr audited: $records"
			printf '%s' "$lines" | grep -q '(anonymous: not audited)$' ||
				fail "anonymous refusal $corr: its line does not say so: $lines"
		else
			[ "$(printf '%s' "$records" | grep -c '')" = 1 ] &&
				printf '%s' "$records" | grep -q "\"kind\":\"$kind\"" ||
				fail "refusal $corr: not one $kind record but: ${records:-none}"
		fi
		n=$((n + 1))
	done <"$FB_TMP/trail"
	echo "$n"
}
