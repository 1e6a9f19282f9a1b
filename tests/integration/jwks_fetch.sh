#!/bin/bash
# B trusts A with keys fetched from A's bridge (/.well-known/jwks.json): B
# fetches them at start, refetches when a token names a kid it lacks (A
# rotated), keeps the last good set when A is down, and raises an alarm
# when A's newest key is about to stop signing.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
A="$pair/installation-a-fetch.yaml"
B="$pair/installation-b-fetch.yaml"
n=0
ok() { n=$((n + 1)); pass "$*"; }
sed -e 's|^  signing: \[keys/a-signing.pem\]|  signing_dir: keyring-a\n  publish_ahead: 10m\n  lifetime: 1d|' \
	"$pair/installation-a.yaml" >"$A"
"$FB_BINARY" keys rotate -c "$A" >/dev/null || fail "first rotate"
start_bridge "$A" "$FB_TMP/a.log"
a_pid=$BRIDGE_PID
a_url="http://127.0.0.1:$BRIDGE_PORT/.well-known/jwks.json"
sed -e "s|keys: keys/a.jwks .*|keys: $a_url|" \
	-e 's|^  fid_secret: keys/b-fid.secret|  fid_secret: keys/b-fid.secret\n  refetch_min: 1s|' \
	"$pair/installation-b.yaml" >"$B"
grep -q "keys: $a_url" "$B" || fail "could not point B at A's JWKS URL"
issue() { "$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid "fid:0/HZnKEBoqDU/$1" --audience HWqHczeM2P; }
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")

"$FB_BINARY" check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" || fail "check: $(cat "$FB_TMP/err")"
grep -q ' 1 trust$' "$FB_TMP/out" && [ ! -s "$FB_TMP/err" ] ||
	fail "check could not fetch A's keys: $(cat "$FB_TMP/out" "$FB_TMP/err")"
t1=$(issue 1)
"$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$pair/keys/a-to-b.cert.pem" "$t1" >/dev/null ||
	fail "token verify with fetched keys"
ok "check and token verify fetch A's keys from its bridge"

start_bridge "$B" "$FB_TMP/b.log"
b_url="http://127.0.0.1:$BRIDGE_PORT/validate"
validate() { curl -s -o "$FB_TMP/body" -w '%{http_code}' "$b_url" -H "Authorization: Fed $1" \
	-H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $peer"; }
[ "$(validate "$t1")" = 200 ] || fail "B's bridge refused A's token: $(cat "$FB_TMP/body")"
grep -q "trust installation_A: 1 keys from $a_url" "$FB_TMP/b.log" || fail "no fetch logged"
grep -q "ALARM trust installation_A: the newest key of $a_url stops signing in" "$FB_TMP/b.log" ||
	fail "no alarm about A's key expiring within a day"
metrics=$(curl -fsS "http://127.0.0.1:$BRIDGE_PORT/metrics") || fail "GET /metrics"
echo "$metrics" | grep -Eq '^fedbridge_remote_keys_expiry_timestamp_seconds\{remote="installation_A"\} [1-9][0-9]+$' ||
	fail "no key expiry in the metrics: $metrics"
echo "$metrics" | grep -Eq '^fedbridge_relay_checks_total\{decision="allow",reason="allow"\} [1-9]' ||
	fail "the allowed check is not counted: $metrics"
ok "B's bridge fetched A's keys at start and raised the expiry alarm (log and metrics)"

# A rotates: a token signed by the new key reaches B before B's scheduled refetch.
"$FB_BINARY" keys rotate -c "$A" >/dev/null
"$FB_BINARY" keys rotate -c "$A" --force >/dev/null
kill -HUP "$a_pid"
wait_for "$FB_TMP/a.log" "configuration reloaded: generation 2"
t2=$(issue 2)
first=$(validate "$t2")
grep -q '"reason":"unknown_key"' "$FB_TMP/body" || [ "$first" = 200 ] || fail "unexpected first answer $first"
deadline=$(( $(date +%s) + 15 ))
until [ "$(validate "$t2")" = 200 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "B never learnt A's new key: $(cat "$FB_TMP/body")"
	sleep 0.2
done
grep -q "trust installation_A: 2 keys from $a_url" "$FB_TMP/b.log" || fail "no refetch logged"
[ "$(validate "$t1")" = 200 ] || fail "the token of A's retired key stopped verifying"
ok "after A rotated, an unknown kid made B refetch; old and new tokens verify"

# A goes away: B keeps the last good set.
kill "$a_pid"
wait "$a_pid" 2>/dev/null || true
bogus="$(printf '{"alg":"ES256","typ":"fed+jwt","kid":"gone"}' | openssl base64 -A | tr '+/' '-_' |
	tr -d '=').$(echo "$t2" | cut -d. -f2-)"
[ "$(validate "$bogus")" = 401 ] && grep -q '"reason":"unknown_key"' "$FB_TMP/body" ||
	fail "a token with an unknown kid: $(cat "$FB_TMP/body")"
# Unknown kids prompt a refetch at most every refetch_min (1 s here): keep asking.
deadline=$(( $(date +%s) + 15 ))
until grep -q "fetching keys from $a_url failed" "$FB_TMP/b.log"; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "no failed fetch logged"
	validate "$bogus" >/dev/null
	sleep 0.2
done
grep -q "keeping the last good set (2 keys)" "$FB_TMP/b.log" || fail "last good set not kept"
[ "$(validate "$t2")" = 200 ] || fail "B lost A's keys when A went down"
curl -fsS "http://127.0.0.1:$BRIDGE_PORT/metrics" |
	grep -Eq '^fedbridge_remote_keys_fetch_failures_total\{remote="installation_A"\} [1-9]' ||
	fail "the failed fetch is not in the metrics"
ok "with A down, B keeps the last good key set and still verifies"
ready=$(curl -s "http://127.0.0.1:$BRIDGE_PORT/readyz")
echo "$ready" | jq -e '.status == "ready" and (.unavailable | any(.trust_keys == "installation_A"))' >/dev/null ||
	fail "/readyz does not list A's keys while A is down: $ready"
ok "/readyz stays ready and lists A's key set as unavailable"

# A partner that is down is not a fault of B's files: check (the unit's ExecStartPre) and
# reload warn, naming the trust where its keys are written, and go on.
grep -q '^ExecStartPre=.*fedbridge check' "$FB_SOURCE_DIR/conf/systemd/fedbridge.service" ||
	fail "the unit no longer checks before it starts"
"$FB_BINARY" check -c "$B" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "check refused B's files while A is down: $(cat "$FB_TMP/out" "$FB_TMP/err")"
keys_at=$(grep -n "keys: $a_url" "$B" | cut -d: -f1)
grep -Eq "^$B:$keys_at:[0-9]+: warning: trust installation_A: could not reach the key set at $a_url \(.+\); the bridge starts without them" "$FB_TMP/err" ||
	fail "check did not name the unreachable key set: $(cat "$FB_TMP/err")"
grep -q ', 1 warning$' "$FB_TMP/out" || fail "check did not count the warning: $(cat "$FB_TMP/out")"
echo "$BRIDGE_PID" >"$FB_TMP/b.pid"
"$FB_BINARY" reload -c "$B" --pid-file "$FB_TMP/b.pid" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "reload refused while A is down: $(cat "$FB_TMP/out" "$FB_TMP/err")"
grep -q "warning: trust installation_A: could not reach" "$FB_TMP/err" || fail "reload did not warn"
wait_for "$FB_TMP/b.log" "configuration reloaded: generation 2"
[ "$(validate "$t2")" = 200 ] || fail "B lost A's keys across the reload while A is down"
ok "with A down, check and reload warn about A's keys (file:line) and succeed; the reload keeps them"
echo "jwks_fetch: $n passed, 0 failed"
