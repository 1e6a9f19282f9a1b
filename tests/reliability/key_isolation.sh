#!/bin/bash
# One partner whose key endpoint hangs holds up nobody else's keys: B trusts
# C (listed first; its keys URL accepts connections and never answers) and A
# (keys fetched from A's bridge). B starts and allows A's tokens within a
# couple of seconds; after A rotates, a token of A's new key is allowed at B
# within a few seconds although C's fetch hangs (each up to its 10 s limit);
# a reload with C still hanging is quick.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
need_node "a partner that never answers"
examples_copy
pair="$FB_TMP/examples/pair"
A="$pair/installation-a-fetch.yaml"
B="$pair/installation-b-fetch.yaml"
QUICK_MS=5000 # well under a fetch's 10 s time limit
n=0
ok() { n=$((n + 1)); pass "$*"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
sed -e 's|^  signing: \[keys/a-signing.pem\]|  signing_dir: keyring-a\n  publish_ahead: 10m\n  lifetime: 1d|' \
	"$pair/installation-a.yaml" >"$A"
"$FB_BINARY" keys rotate -c "$A" >/dev/null || fail "first rotate"
start_bridge "$A" "$FB_TMP/a.log"
a_pid=$BRIDGE_PID
a_url="http://127.0.0.1:$BRIDGE_PORT/.well-known/jwks.json"
pc=$(free_port)
c_url="http://127.0.0.1:$pc/.well-known/jwks.json"
# C's trust comes before A's: a refresher that fetched in turn would wait for C first.
sed -e "s|keys: keys/a.jwks .*|keys: $a_url|" \
	-e 's|^  fid_secret: keys/b-fid.secret|  fid_secret: keys/b-fid.secret\n  refetch_min: 1s|' \
	-e "s|^    trusts:|    trusts:\n      - {remote: installation_C, tenants: [Zc4pT7wQ2e], relay: \"federation.c.example:443\", ca: keys/a-ca.pem, client_cert: keys/b-to-a.cert.pem, client_key: keys/b-to-a.key.pem, keys: \"$c_url\", issuer: \"http://127.0.0.1:$pc\", inbound: \"true\"}|" \
	"$pair/installation-b.yaml" >"$B"
grep -q "keys: $a_url" "$B" && grep -q "keys: \"$c_url\"" "$B" || fail "could not point B at A's and C's JWKS URLs"
"$FB_BINARY" check -c "$B" >/dev/null 2>&1 || fail "B's configuration with C does not load"

# C's bridge: takes every connection, answers nothing (until the test ends).
node -e "require('net').createServer(() => {}).listen($pc, '127.0.0.1', () => console.log('silent'))" \
	>"$FB_TMP/c.log" 2>&1 &
FB_PIDS="$FB_PIDS $!"
wait_for "$FB_TMP/c.log" "silent"

issue() { "$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid "fid:0/HZnKEBoqDU/$1" --audience HWqHczeM2P; }
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
validate() { curl -s -o "$FB_TMP/body" -w '%{http_code}' "$b_url" -H "Authorization: Fed $1" \
	-H "X-Fed-Tenant: HWqHczeM2P" -H "X-Fed-Peer-Cert: $peer"; }
# until_allowed TOKEN WHAT: polls B's /validate until it allows TOKEN, within QUICK_MS of t0.
until_allowed() {
	while [ "$(validate "$1")" != 200 ]; do
		[ "$(ms_since "$t0")" -lt "$QUICK_MS" ] ||
			fail "$2: not allowed after $QUICK_MS ms while C hangs: $(cat "$FB_TMP/body"); $(tail -5 "$FB_TMP/b.log")"
		sleep 0.1
	done
	[ "$(ms_since "$t0")" -lt "$QUICK_MS" ] || fail "$2: allowed only after $(ms_since "$t0") ms while C hangs"
}
t1=$(issue 1)

# (1) Start: A's keys do not wait for C's.
t0=$(date +%s%N)
"$FB_BINARY" serve -c "$B" --listen 127.0.0.1:0 2>"$FB_TMP/b.log" &
b_pid=$!
FB_PIDS="$FB_PIDS $b_pid"
wait_for "$FB_TMP/b.log" "listening on 127.0.0.1:[1-9]"
listening=$(ms_since "$t0")
b_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$FB_TMP/b.log" | head -1)
b_url="http://127.0.0.1:$b_port/validate"
until_allowed "$t1" "A's token after B's start"
start_ms=$(ms_since "$t0")
figure keys_hang_start_ms "$start_ms" "from B's start to A's token allowed while C's key set hangs (ms; was 10,700 with one refresher)"
ok "B listened after $listening ms and allowed A's token $start_ms ms after it started, while C's keys hang"

# (2) A rotates: its new key reaches B while C's fetch hangs.
"$FB_BINARY" keys rotate -c "$A" >/dev/null
"$FB_BINARY" keys rotate -c "$A" --force >/dev/null
kill -HUP "$a_pid"
wait_for "$FB_TMP/a.log" "configuration reloaded: generation 2"
t2=$(issue 2)
t0=$(date +%s%N)
until_allowed "$t2" "a token of A's new key"
rotate_ms=$(ms_since "$t0")
figure keys_hang_rotation_ms "$rotate_ms" "from a token of A's new key first shown to B allowing it while C's key set hangs (ms; was 10,100)"
ok "a token of A's new key allowed at B $rotate_ms ms after it was first shown, while C's keys hang"
grep -q "trust installation_A: 2 keys from $a_url" "$FB_TMP/b.log" || fail "no refetch of A logged"
[ "$(validate "$t1")" = 200 ] || fail "the token of A's retired key stopped verifying"

# (3) A reload with C still hanging: the bridge does not wait for C's fetch.
echo "$b_pid" >"$FB_TMP/b.pid"
t0=$(date +%s%N)
"$FB_BINARY" reload -c "$B" --pid-file "$FB_TMP/b.pid" >"$FB_TMP/out" 2>"$FB_TMP/err" ||
	fail "reload refused while C hangs: $(cat "$FB_TMP/out" "$FB_TMP/err")"
cli_ms=$(ms_since "$t0")
t0=$(date +%s%N)
wait_for "$FB_TMP/b.log" "configuration reloaded: generation 2" 30
reload_ms=$(ms_since "$t0")
[ "$reload_ms" -lt "$QUICK_MS" ] || fail "B took $reload_ms ms to reload while C hangs"
[ "$(validate "$t2")" = 200 ] || fail "B lost A's keys across the reload: $(cat "$FB_TMP/body")"
figure keys_hang_reload_ms "$reload_ms" "from SIGHUP to B reloaded while C's key set hangs (ms; was 10,100)"
figure keys_hang_reload_cli_ms "$cli_ms" "fedbridge reload itself: its check waits for C's fetch to time out (ms)"
ok "fedbridge reload took $cli_ms ms (its check waits for C's fetch to time out), then B reloaded in $reload_ms ms while C's keys hang"

# C's fetch fails on its time limit (the reload's runtime tries it again); /readyz then names
# C's keys, not A's.
deadline=$(( $(date +%s) + 30 ))
until curl -s "http://127.0.0.1:$b_port/readyz" >"$FB_TMP/ready" &&
	jq -e '.status == "ready" and (.unavailable | any(.trust_keys == "installation_C")) and
	(.unavailable | all(.trust_keys != "installation_A"))' "$FB_TMP/ready" >/dev/null; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "/readyz does not list C's keys alone: $(cat "$FB_TMP/ready")"
	sleep 0.5
done
grep -q "trust installation_C: fetching keys from $c_url failed" "$FB_TMP/b.log" || fail "C's failed fetch not logged"
ok "C's fetch failed on its time limit; /readyz lists C's keys as unavailable, not A's"
echo "key_isolation: $n passed, 0 failed"
