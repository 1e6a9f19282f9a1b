#!/bin/bash
# Anonymous bad callbacks cannot grow the store. FB_ANON_REQUESTS (default
# 30000; the report: 100000) requests that carry no login state, sent by wrk
# over 16 kept-alive connections, in turn:
#   GET  /oidc/callback?code=...&state=<forged>   (no state cookie)
#   GET  /login/corp?return_to=<not the tenant's>
#   POST /saml/acs/corp-saml with a SAMLResponse that is not one
# Each such refusal is counted (ANON_METRIC) and sampled in the log, not
# written to the audit trail one by one (docs/sessions.md). Fails unless
#   - every one of them was answered 4xx (no 5xx, no socket error);
#   - the embedded store's files (fedbridge.db, its -wal and -shm) grew by at
#     most ANON_STORE_BOUND bytes, and the audit trail by at most
#     ANON_AUDIT_BOUND records, whatever the number of requests;
#   - /validate answered 200 to a trusted partner's token all along;
#   - a refusal that does carry login state (a login started at /login, then
#     called back with error=access_denied) is still audited: exactly one
#     login_refused record with its correlation id, after the flood;
#   - ANON_METRIC counted every request.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || fail "wrk is needed (scripts/deps.sh test)"
need_node "an IdP's discovery document"
requests=${FB_ANON_REQUESTS:-30000}
ANON_STORE_BOUND=${FB_ANON_STORE_BOUND:-1048576} # bytes the store may grow by: 1 MiB, for any N
ANON_AUDIT_BOUND=${FB_ANON_AUDIT_BOUND:-100}     # audit records the flood may add, for any N
ANON_METRIC=${FB_ANON_METRIC:-fedbridge_anonymous_refusals_total}

examples_copy
PAIR="$FB_TMP/examples/pair"
KEYS="$PAIR/keys"
A_PORT=$(free_port)
A="http://127.0.0.1:$A_PORT"
APP="http://127.0.0.1:$(free_port)/cb" # the messenger's return_to; nothing listens there
SI_PORT=$(free_port)
node "$(dirname "$0")/silent_idp.mjs" "$SI_PORT" /realms/corp "$KEYS/a.jwks" >"$FB_TMP/idp.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/idp.log" "^ready "
(
	cd "$KEYS"
	umask 077
	printf 'corp-secret-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >corp.secret
	openssl req -x509 -newkey rsa:2048 -nodes -keyout sp.key -out sp.pem -days 30 -subj /CN=sp 2>/dev/null &&
		openssl req -x509 -newkey rsa:2048 -nodes -keyout idp.key -out idp.pem -days 30 -subj /CN=idp 2>/dev/null &&
		chmod 644 sp.pem idp.pem
) || fail "openssl"
idp="http://127.0.0.1:9/idp"
cat >"$KEYS/idp-metadata.xml" <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="$idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$(grep -v CERTIFICATE "$KEYS/idp.pem" | tr -d '\n')</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="$idp/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
XML
cat >"$PAIR/a.yaml" <<YAML
installation: {name: installation_A, domain: a.example, public_url: "$A", listen: "127.0.0.1:$A_PORT"}
keys: {signing: [keys/a-signing.pem], fid_secret: keys/a-fid.secret}
store: embedded:state-anon
tenants:
  - id: HZnKEBoqDU
    name: A Corp
    providers:
      - {name: corp, type: oidc, issuer: "http://127.0.0.1:$SI_PORT/realms/corp", client_id: fedbridge,
         client_secret_file: keys/corp.secret}
      - {name: corp-saml, type: saml, idp_metadata: keys/idp-metadata.xml, sp_key: keys/sp.key, sp_cert: keys/sp.pem}
    mapping:
      - {provider: corp, fid: pairwise(claims.sub)}
      - {provider: corp-saml, fid: pairwise(nameid)}
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
        inbound: "true"
    return_to: ["$APP"]
YAML
"$FB_BINARY" check -c "$PAIR/a.yaml" >"$FB_TMP/check.out" 2>&1 || fail "A's configuration: $(cat "$FB_TMP/check.out")"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$FB_SOURCE_DIR/tests/lsan-saml.supp" # Lasso, as saml_negative
a_start "$FB_TMP/a.log"
STORE_DIR="$PAIR/state-anon"
issue_tokens 4 "$FB_TMP/b-tokens" b a
peer_cert=$(cert_escaped "$KEYS/b-to-a.cert.pem")

# store_bytes: the embedded store's files on disk, in bytes (fedbridge.db, -wal, -shm).
store_bytes() { find "$STORE_DIR" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# file_bytes NAME: one of them (0 when absent).
file_bytes() { stat -c %s "$STORE_DIR/$1" 2>/dev/null || echo 0; }
# audit_last: the id of the audit trail's last record (0 when empty), by bisection
# over `sessions audit --after ID --limit 1` (ids only grow).
audit_after() {
	"$FB_BINARY" sessions audit -c "$PAIR/a.yaml" --after "$1" --limit 1 2>"$FB_TMP/audit.err" ||
		fail "sessions audit: $(cat "$FB_TMP/audit.err")"
}
audit_last() {
	lo=0 hi=1
	while [ -n "$(audit_after "$hi")" ]; do lo=$hi hi=$((hi * 2)); done
	[ -n "$(audit_after 0)" ] || { echo 0; return; }
	# a record after lo, none after hi
	while [ $((hi - lo)) -gt 1 ]; do
		mid=$(((lo + hi) / 2))
		if [ -n "$(audit_after "$mid")" ]; then lo=$mid; else hi=$mid; fi
	done
	echo "$hi"
}
# metric_sum NAME: the sum of every series of NAME in /metrics; empty when it has none.
metric_sum() {
	curl -s "$A/metrics" | awk -v m="$1" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) == "{") {
		s += $2; found = 1 } END { if (found) printf "%d\n", s }'
}
validate() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Fed $1" \
		-H "X-Fed-Tenant: HZnKEBoqDU" -H "X-Fed-Peer-Cert: $peer_cert" "$A/validate"
}
[ "$(validate "$(head -1 "$FB_TMP/b-tokens")")" = 200 ] || fail "/validate before the flood: $(validate "$(head -1 "$FB_TMP/b-tokens")")"

# Each kind once, by hand: 4xx, and what today's bridge makes of it.
saml_body="SAMLResponse=$(printf '<not-a-response/>' | base64 -w0 | jq -sRr @uri)&RelayState=forged"
for probe in "/oidc/callback?code=made-up&state=forged-state" \
	"/login/corp?return_to=https%3A%2F%2Fevil.example%2Fcb" "POST /saml/acs/corp-saml"; do
	case "$probe" in
	POST\ *) code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --data "$saml_body" "$A${probe#POST }") ;;
	*) code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$A$probe") ;;
	esac
	[ "${code:0:1}" = 4 ] || fail "$probe: $code (want 4xx); A: $(tail -3 "$FB_TMP/a.log")"
	echo "probe: $probe -> $code"
done

# ---- the flood ----
cat >"$FB_TMP/flood.lua" <<LUA
local n = $requests
local reqs = {
	wrk.format("GET", "/oidc/callback?code=made-up&state=forged-state"),
	wrk.format("GET", "/login/corp?return_to=https%3A%2F%2Fevil.example%2Fcb"),
	wrk.format("POST", "/saml/acs/corp-saml",
		{ ["Content-Type"] = "application/x-www-form-urlencoded" }, "$saml_body"),
}
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() seen, c2, c3, c4, c5, i = 0, 0, 0, 0, 0, 0 end
request = function()
	i = i + 1
	return reqs[(i - 1) % #reqs + 1]
end
response = function(status)
	seen = seen + 1
	if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1
	elseif status >= 300 then c3 = c3 + 1 else c2 = c2 + 1 end
	if seen == n then
		-- wrk runs for its -d whatever its threads do: the test stops it (SIGINT) on this file.
		local f = io.open("$FB_TMP/flood.enough", "w")
		f:close()
		wrk.thread:stop()
	end
end
done = function(s)
	local e = s.errors
	for _, t in ipairs(threads) do
		io.write(string.format("flood %d %d %d %d %d %d %.1f\n", t:get("seen"), t:get("c2"), t:get("c3"),
			t:get("c4"), t:get("c5"), e.connect + e.read + e.write + e.timeout, s.requests / (s.duration / 1e6)))
	end
end
LUA
bytes0=$(store_bytes)
db0=$(file_bytes fedbridge.db)
audit0=$(audit_last)
metric0=$(metric_sum "$ANON_METRIC")
# /validate meanwhile: one check after another, each within 5 s, until the flood ends.
(
	while [ ! -e "$FB_TMP/flood.done" ]; do
		validate "$(shuf -n1 "$FB_TMP/b-tokens")" >>"$FB_TMP/validate.codes" || true
		echo >>"$FB_TMP/validate.codes"
	done
) &
prober=$!
t0=$(date +%s%N)
wrk -t1 -c16 -d3600s --timeout 10s -s "$FB_TMP/flood.lua" "$A" >"$FB_TMP/wrk.out" 2>&1 &
wrk_pid=$!
FB_PIDS="$FB_PIDS $wrk_pid"
until [ -e "$FB_TMP/flood.enough" ]; do
	kill -0 "$wrk_pid" 2>/dev/null || fail "wrk ended early: $(cat "$FB_TMP/wrk.out")"
	sleep 0.05
done
flood_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -INT "$wrk_pid"
wait "$wrk_pid" || true
touch "$FB_TMP/flood.done"
wait "$prober"
read -r seen c2 c3 c4 c5 sock _ <<<"$(sed -n 's/^flood //p' "$FB_TMP/wrk.out")"
[ -n "${sock:-}" ] || fail "wrk printed no summary: $(cat "$FB_TMP/wrk.out")"
bytes1=$(store_bytes)
db1=$(file_bytes fedbridge.db)
wal1=$(file_bytes fedbridge.db-wal)
audit1=$(audit_last)
metric1=$(metric_sum "$ANON_METRIC")
checks=$(grep -c . "$FB_TMP/validate.codes" || true)
checks_ok=$(grep -c '^200$' "$FB_TMP/validate.codes" || true)

# ---- a refusal with login state: still audited, once ----
curl -s -D "$FB_TMP/login.h" -o /dev/null --max-time 10 "$A/login/corp?return_to=$(printf %s "$APP" | jq -sRr @uri)"
state=$(sed -n 's/^[Ll]ocation: .*[?&]state=\([^&[:space:]]*\).*/\1/p' "$FB_TMP/login.h")
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$FB_TMP/login.h" | head -1)
[ -n "$state" ] && [ -n "$cookie" ] || fail "no login state at /login/corp: $(head -1 "$FB_TMP/login.h") $(tail -3 "$FB_TMP/a.log")"
code=$(curl -s -D "$FB_TMP/refused.h" -o "$FB_TMP/refused.html" -w '%{http_code}' --max-time 10 -b "$cookie" \
	"$A/oidc/callback?error=access_denied&state=$state")
corr=$(corr_header "$FB_TMP/refused.h")
[ -n "$corr" ] || corr=$(sed -n 's/.*<code id="correlation">\([^<]*\)<.*/\1/p' "$FB_TMP/refused.html" | head -1)
"$FB_BINARY" sessions audit -c "$PAIR/a.yaml" --after "$audit1" --limit 1000 >"$FB_TMP/audit.after"
refused_records=$(grep -F "\"correlation\":\"$corr\"" "$FB_TMP/audit.after" | grep -c '"kind":"login_refused"' || true)

growth=$((bytes1 - bytes0))
added=$((audit1 - audit0))
figure anon_requests "$seen" "anonymous bad callbacks answered (a third each: forged OIDC state, bad return_to, SAML garbage)"
figure anon_seconds "$(awk -v m="$flood_ms" 'BEGIN { printf "%.1f", m / 1000 }')" "time for them (s, 16 connections)"
figure anon_rate "$(awk -v n="$seen" -v m="$flood_ms" 'BEGIN { printf "%d", n * 1000 / m }')" "requests/s"
figure anon_answers "4xx $c4, 5xx $c5, 3xx $c3, 2xx $c2, socket errors $sock" "how they were answered"
figure anon_store_before "$bytes0" "the embedded store's files before (bytes)"
figure anon_store_after "$bytes1" "after (bytes)"
figure anon_store_growth "$growth" "growth (bytes; allowed: $ANON_STORE_BOUND)"
figure anon_store_bytes_per_request "$(awk -v g="$growth" -v n="$seen" 'BEGIN { printf "%.1f", n ? g / n : 0 }')" "growth per request (bytes)"
figure anon_db_growth "$((db1 - db0))" "of which fedbridge.db itself (bytes; the rest is its write-ahead log, $wal1 bytes at the end, reused after each checkpoint)"
figure anon_db_bytes_per_record "$(awk -v g="$((db1 - db0))" -v n="$((audit1 - audit0))" 'BEGIN { printf "%.0f", (n > 0 ? g / n : 0) }')" "fedbridge.db growth per audit record added (bytes)"
figure anon_audit_records "$added" "audit records added (allowed: $ANON_AUDIT_BOUND)"
figure anon_metric "${metric1:-absent}" "$ANON_METRIC after (before: ${metric0:-absent})"
figure anon_validate "$checks_ok/$checks" "relay checks answered 200 during the flood"
figure anon_stateful_refusal "$code, $refused_records record(s)" "a refusal with login state after the flood (error=access_denied): status, login_refused records with its correlation id"

[ "$seen" -ge "$requests" ] && [ "$c4" = "$seen" ] && [ "$sock" = 0 ] ||
	fail "the flood's answers: $seen seen, 4xx $c4, 5xx $c5, 3xx $c3, 2xx $c2, socket errors $sock; A: $(grep -E ' 5[0-9][0-9] |error' "$FB_TMP/a.log" | tail -3)"
[ "$checks" -ge 1 ] && [ "$checks_ok" = "$checks" ] ||
	fail "/validate during the flood: $checks_ok of $checks answered 200 ($(sort "$FB_TMP/validate.codes" | uniq -c | tr -s ' \n' ' '))"
[ "${code:0:1}" = 4 ] && [ -n "$corr" ] ||
	fail "the refusal with login state: $code, correlation id '${corr}'"
[ "$refused_records" = 1 ] ||
	fail "the refusal with login state ($corr): $refused_records login_refused records, not 1: $(grep -F "$corr" "$FB_TMP/audit.after")"
[ -n "$metric1" ] || fail "/metrics has no $ANON_METRIC"
counted=$((metric1 - ${metric0:-0}))
# wrk stops with up to 16 requests in flight, which the bridge may still answer.
[ "$counted" -ge "$seen" ] && [ "$counted" -le $((seen + 16)) ] ||
	fail "$ANON_METRIC counted $counted of $seen anonymous refusals"
[ "$growth" -le "$ANON_STORE_BOUND" ] ||
	fail "$seen anonymous refusals grew the store by $growth bytes (allowed: $ANON_STORE_BOUND)"
[ "$added" -le "$ANON_AUDIT_BOUND" ] ||
	fail "$seen anonymous refusals added $added audit records (allowed: $ANON_AUDIT_BOUND)"
pass "$seen anonymous bad callbacks, all 4xx: the store grew by $growth bytes, $added audit records; /validate $checks_ok/$checks; a refusal with login state audited once"
