#!/bin/bash
# (f) POST/GET /validate throughput with wrk on loopback (keep-alive, a cached
# token) against nginx answering a static 200 on the same machine in the same
# run. Prints both figures and the ratio; not a test.
#   usage: tests/bench/bench_http.sh FEDBRIDGE_BINARY [SECONDS]
set -eu
FB_BINARY=${1:?usage: bench_http.sh FEDBRIDGE_BINARY [SECONDS]}
FB_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
export FB_BINARY FB_SOURCE_DIR
seconds=${2:-10}
. "$FB_SOURCE_DIR/tests/integration/lib.sh"
command -v wrk >/dev/null && command -v nginx >/dev/null || fail "wrk and nginx are needed (scripts/deps.sh test)"

examples_copy
pair="$FB_TMP/examples/pair"
token=$("$FB_BINARY" token issue -c "$pair/installation-a.yaml" --tenant HZnKEBoqDU \
	--fid fid:0/HZnKEBoqDU/100401 --audience HWqHczeM2P --attr email=alice@a.example --ttl 15m)
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
start_bridge "$pair/installation-b.yaml" "$FB_TMP/b.log"

port=$(free_port)
start_nginx "$port" auto <<NGINX
	server {
		listen 127.0.0.1:$port;
		location / { default_type application/json; return 200 '{"decision":"allow"}'; }
	}
NGINX

h=(-H "Authorization: Fed $token" -H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $peer")
code=$(curl -s -o /dev/null -w '%{http_code}' "${h[@]}" "http://127.0.0.1:$BRIDGE_PORT/validate")
[ "$code" = 200 ] || fail "/validate answered $code"
rps() { wrk -t1 -c32 -d"${seconds}s" "$@" | awk '/Requests\/sec/ { print $2 }'; }
nginx_rps=$(rps "${h[@]}" "http://127.0.0.1:$port/validate")
bridge_rps=$(rps "${h[@]}" "http://127.0.0.1:$BRIDGE_PORT/validate")
errors=$(wrk -t1 -c32 -d1s "${h[@]}" "http://127.0.0.1:$BRIDGE_PORT/validate" | grep -c 'Non-2xx' || true)
printf '(f) GET /validate via wrk      %12.0f /s   nginx static 200 %.0f /s, (f)/nginx = %.2f  target >= 0.50%s\n' \
	"$bridge_rps" "$nginx_rps" "$(awk -v a="$bridge_rps" -v b="$nginx_rps" 'BEGIN { print a / b }')" \
	"$([ "$errors" = 0 ] || echo '  (non-2xx answers seen!)')"
