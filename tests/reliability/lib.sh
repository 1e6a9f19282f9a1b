# Shared helpers for the load and fault tests (sourced after
# tests/integration/lib.sh). Each test prints its figures as
#   figure<TAB>KEY<TAB>VALUE<TAB>WHAT
# on stdout and, when FB_FIGURES names a file, into it too, where
# scripts/reliability-report.sh collects them into docs/reliability.md.

# figure KEY VALUE WHAT
figure() {
	printf 'figure\t%s\t%s\t%s\n' "$1" "$2" "$3"
	[ -z "${FB_FIGURES:-}" ] || printf 'figure\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$FB_FIGURES"
}

# series NAME FIELDS...: one point of a time series (for the report's plots).
series() {
	name=$1
	shift
	[ -z "${FB_FIGURES:-}" ] || printf 'series\t%s\t%s\n' "$name" "$*" >>"$FB_FIGURES"
}

# rss_kib PID: the process's resident memory in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# metric URL NAME{LABELS}: a counter's value from /metrics (0 when absent).
metric() {
	curl -s "$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v == "" ? 0 : v }'
}

# wrk_run SECONDS TOKENS_FILE URL [HEADER...]: wrk on one thread, 32
# connections, each request with the next token of TOKENS_FILE; prints
# "requests non2xx socket_errors rate p50_us p99_us max_us".
wrk_run() {
	secs=$1 tokens=$2 url=$3
	shift 3
	hdrs=""
	for h in "$@"; do hdrs="$hdrs [\"${h%%:*}\"] = \"${h#*: }\","; done
	cat >"$FB_TMP/wrk.lua" <<LUA
local tokens = {}
for line in io.lines("$tokens") do tokens[#tokens + 1] = line end
local i = math.random(#tokens)
request = function()
	i = i % #tokens + 1
	return wrk.format("GET", nil, { $hdrs ["Authorization"] = "Fed " .. tokens[i] })
end
done = function(s, latency)
	local e = s.errors
	io.write(string.format("wrk %d %d %d %.1f %d %d %d\n", s.requests, e.status,
		e.connect + e.read + e.write + e.timeout, s.requests / (s.duration / 1e6),
		latency:percentile(50), latency:percentile(99), latency.max))
end
LUA
	wrk -t1 -c32 -d"${secs}s" -s "$FB_TMP/wrk.lua" "$url" | sed -n 's/^wrk //p'
}

# issue_tokens N FILE FROM TO: N tokens, for N different users, from the
# examples/pair installation FROM (a or b) to the other's tenant, one a line.
issue_tokens() {
	case "$3-$4" in
	a-b) set -- "$1" "$2" installation-a.yaml HZnKEBoqDU HWqHczeM2P 200000 a.example ;;
	b-a) set -- "$1" "$2" installation-b.yaml HWqHczeM2P HZnKEBoqDU 300000 b.example ;;
	*) fail "issue_tokens: FROM TO is a b or b a" ;;
	esac
	: >"$2"
	i=0
	while [ "$i" -lt "$1" ]; do
		"$FB_BINARY" token issue -c "$FB_TMP/examples/pair/$3" --tenant "$4" \
			--fid "fid:0/$4/$(($6 + i))" --audience "$5" --attr "email=u$i@$7" \
			--ttl 15m >>"$2" || fail "token issue ($3)"
		i=$((i + 1))
	done
}

# ---- installation A with panva's oidc-provider as its IdP ----
# op_setup: installs the provider from tests/oidc-op's lock file into
# $FB_TMP, copies the examples, picks ports and writes the secrets. Sets
# PAIR, KEYS, OP (issuer URL), A_PORT, A (bridge URL), APP (return_to).
op_setup() {
	need_node "the OpenID provider"
	OP_DIR="$FB_TMP/oidc-op"
	npm_copy oidc-op "$OP_DIR"
	examples_copy
	PAIR="$FB_TMP/examples/pair"
	KEYS="$PAIR/keys"
	A_PORT=$(free_port)
	OP_PORT=$(free_port)
	A="http://127.0.0.1:$A_PORT"
	OP="http://127.0.0.1:$OP_PORT"
	APP="http://127.0.0.1:$(free_port)/cb" # the messenger's return_to; nothing listens there
	umask 077
	printf 'op-secret-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$KEYS/op.secret"
	printf 'messenger-%s\n' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >"$KEYS/messenger.secret"
	umask 022
	users=""
	for i in 1 2 3 4 5 6 7 8; do
		users="$users${users:+,}{\"sub\": \"u-$i\", \"username\": \"user$i\", \"password\": \"pw-$i\",
		  \"claims\": {\"email\": \"user$i@a.example\", \"email_verified\": true, \"department\": \"D$i\"}}"
	done
	cat >"$FB_TMP/op.json" <<JSON
{ "host": "127.0.0.1", "port": $OP_PORT, "issuer": "$OP", "jwks_down_file": "$FB_TMP/jwks.down",
  "clients": [ { "client_id": "fedbridge", "client_secret": "$(cat "$KEYS/op.secret")",
    "redirect_uris": ["$A/oidc/callback"], "token_endpoint_auth_method": "client_secret_basic" } ],
  "users": [ $users ] }
JSON
	LOGIN_USERS="user1:pw-1,user2:pw-2,user3:pw-3,user4:pw-4,user5:pw-5,user6:pw-6,user7:pw-7,user8:pw-8"
}

# op_start: (re)starts the provider; each start signs with a new key. Sets OP_PID.
op_start() {
	node "$OP_DIR/provider.mjs" "$FB_TMP/op.json" >"$FB_TMP/op.log" 2>&1 &
	OP_PID=$!
	FB_PIDS="$FB_PIDS $OP_PID"
	wait_for "$FB_TMP/op.log" "^ready "
}

# a_config STORE: installation A's configuration ($PAIR/a.yaml) on that store:
# logins at the provider, tokens for B, B's tokens checked at A's /validate.
a_config() {
	cat >"$PAIR/a.yaml" <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$A", listen: "127.0.0.1:$A_PORT"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret, refetch_min: 5s}
store: "$1"
tenants:
  - id: HZnKEBoqDU
    name: A Corp
    providers:
      - {name: corp, type: oidc, issuer: "$OP", client_id: fedbridge, client_secret_file: keys/op.secret,
         scopes: [openid, email]}
    mapping:
      - provider: corp
        fid: pairwise(claims.sub)
        attributes: {email: lower(claims.email)}
        require: claims.email_verified == true
    trusts:
      - remote: installation_B
        tenants: [HWqHczeM2P]
        relay: federation.b.example:443
        ca: keys/b-ca.pem
        client_cert: keys/a-to-b.cert.pem
        client_key: keys/a-to-b.key.pem
        keys: keys/b.jwks
        issuer: https://sso.b.example
        outbound: "true"
        release: [email]
        inbound: "true"
    return_to: ["$APP"]
    clients:
      - {client_id: messenger, client_secret_file: keys/messenger.secret}
YAML
}

# a_start LOG: starts A's bridge (appending to LOG). Sets A_PID.
a_start() {
	n=$(grep -c "listening on" "$1" 2>/dev/null || true)
	"$FB_BINARY" serve -c "$PAIR/a.yaml" 2>>"$1" &
	A_PID=$!
	FB_PIDS="$FB_PIDS $A_PID"
	deadline=$(( $(date +%s) + 30 ))
	until [ "$(grep -c "listening on" "$1" 2>/dev/null || true)" -gt "${n:-0}" ]; do
		kill -0 "$A_PID" 2>/dev/null || { tail -20 "$1" >&2; fail "A's bridge exited"; }
		[ "$(date +%s)" -lt "$deadline" ] || fail "A's bridge did not start"
		sleep 0.02
	done
}

# logins ARGS...: the browser load driver (tests/oidc-op/logins.mjs) against A.
logins() {
	cmd=$1
	shift
	node "$OP_DIR/logins.mjs" "$cmd" --bridge "$A" --client messenger --secret-file "$KEYS/messenger.secret" "$@"
}

# json_field JSON KEY: one top-level field of a JSON object.
json_field() { node -e 'const v=JSON.parse(process.argv[1])[process.argv[2]];console.log(typeof v==="object"?JSON.stringify(v):v)' "$1" "$2"; }

# a_checks SECONDS: relay checks at A's /validate with the tokens of B in
# $FB_TMP/b-tokens (issue_tokens ... b a), as B's messages would be; prints
# wrk_run's figures.
a_checks() {
	wrk_run "$1" "$FB_TMP/b-tokens" "$A/validate" "X-Fed-Tenant: HZnKEBoqDU" \
		"X-Fed-Peer-Cert: $(cert_escaped "$KEYS/b-to-a.cert.pem")"
}

# a_checks_sliced SECONDS: a_checks in one-second runs, SECONDS of them;
# prints "requests non2xx socket_errors rate p99_median_us p99_max_us": the
# totals, and the median and the worst of the runs' p99s. On a shared
# machine a burst of someone else's work spoils a second or two of a run; the
# median of the seconds' p99s is what the bridge itself does.
a_checks_sliced() {
	: >"$FB_TMP/slices"
	for _ in $(seq "$1"); do a_checks 1 >>"$FB_TMP/slices"; done
	[ "$(wc -l <"$FB_TMP/slices")" = "$1" ] || fail "wrk printed no summary: $(cat "$FB_TMP/slices")"
	med=$(awk '{ print $6 }' "$FB_TMP/slices" | sort -n | sed -n "$((($1 + 1) / 2))p")
	worst=$(awk '{ print $6 }' "$FB_TMP/slices" | sort -n | tail -1)
	awk -v med="$med" -v worst="$worst" '{ n += $1; e += $2; s += $3; r += $4 } END {
		printf "%d %d %d %.1f %d %d\n", n, e, s, r / NR, med, worst }' "$FB_TMP/slices"
}
