#!/bin/bash
# Logins under load and under faults, with panva's oidc-provider as the IdP
# and installation A's bridge on its embedded store, all on loopback:
#  1. a burst of FB_BURST_LOGINS (default 1000) browser logins, 32 at a
#     time: every one must succeed, and every session must refresh after;
#  2. the IdP's key set endpoint down: logins go on with the keys the bridge
#     holds; once the IdP signs with a new key, they fail clearly (502
#     "unavailable", counted in /metrics) while A's relay checks go on
#     untouched; when the key set is back, logins recover by themselves;
#  3. kill -9 of the bridge under logins and logouts (FB_KILL_SECONDS,
#     default 12): restarted on the same store, every session it had
#     acknowledged still refreshes and every logout it had acknowledged holds.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || fail "wrk is needed (scripts/deps.sh test)"
burst=${FB_BURST_LOGINS:-1000}
kill_seconds=${FB_KILL_SECONDS:-12}

op_setup
op_start
a_config embedded:state-a
a_start "$FB_TMP/a.log"
issue_tokens 16 "$FB_TMP/b-tokens" b a
read -r n non2xx sock rate p50 p99 max <<<"$(a_checks 3)"
[ "$n" -gt 0 ] && [ "$non2xx" = 0 ] && [ "$sock" = 0 ] || fail "relay checks at A before any fault: $n $non2xx $sock"
figure checks_rate_before "${rate%.*}" "relay checks/s at A with no fault (3 s)"

# ---- 1. the burst ----
out=$(logins run --provider corp --return-to "$APP" --users "$LOGIN_USERS" --out "$FB_TMP/burst.jsonl" \
	--count "$burst" --concurrency 32)
echo "burst: $out"
figure burst_logins "$(json_field "$out" ok)" "logins completed (browser -> IdP -> callback -> POST /token), 32 at a time"
figure burst_failed "$(json_field "$out" failed)" "logins failed"
figure burst_seconds "$(json_field "$out" seconds)" "time for the burst (s)"
figure burst_rate "$(json_field "$out" rate)" "logins/s"
figure burst_p50_ms "$(json_field "$out" p50_ms)" "median login, all steps (ms)"
figure burst_p99_ms "$(json_field "$out" p99_ms)" "p99 login (ms)"
[ "$(json_field "$out" ok)" = "$burst" ] && [ "$(json_field "$out" failed)" = 0 ] ||
	fail "burst: $out; A: $(grep -v ' 200 ' "$FB_TMP/a.log" | tail -5)"
counted=$(metric "$A" 'fedbridge_logins_total{provider="corp",outcome="allowed"}')
[ "$counted" = "$burst" ] || fail "A counted $counted allowed logins, the browsers $burst"
v=$(logins verify --in "$FB_TMP/burst.jsonl") || fail "after the burst: $v"
figure burst_sessions_kept "$(json_field "$v" sessions)" "sessions that refresh afterwards (all of them)"
pass "burst: $burst logins, none failed, all sessions refresh ($out)"

# ---- 2. the IdP's key set down ----
touch "$FB_TMP/jwks.down"
out=$(logins run --provider corp --return-to "$APP" --users "$LOGIN_USERS" --out "$FB_TMP/jwks1.jsonl" --count 20 --concurrency 4)
[ "$(json_field "$out" ok)" = 20 ] || fail "with the key set down and its keys held, logins failed: $out"
figure jwks_down_held_ok "$(json_field "$out" ok)/20" "logins while the key set is down, keys held from before"
# The IdP restarts with a new signing key while its key set stays unreachable.
kill "$OP_PID"
wait "$OP_PID" 2>/dev/null || true
op_start
fails0=$(metric "$A" 'fedbridge_idp_refresh_failures_total{provider="corp"}')
a_checks 6 >"$FB_TMP/checks.jwks" &
checks_pid=$!
out=$(logins run --provider corp --return-to "$APP" --users "$LOGIN_USERS" --out "$FB_TMP/jwks2.jsonl" --count 20 --concurrency 4)
wait "$checks_pid"
read -r n non2xx sock rate p50 p99 max <"$FB_TMP/checks.jwks"
fails=$(( $(metric "$A" 'fedbridge_idp_refresh_failures_total{provider="corp"}') - fails0 ))
reasons=$(json_field "$out" failures)
figure jwks_down_failed "$(json_field "$out" failed)/20" "logins refused once the IdP signs with a key the bridge cannot fetch"
figure jwks_down_answer "$reasons" "what the browser got (HTTP status: error page reason)"
figure jwks_down_counted "$fails" "fedbridge_idp_refresh_failures_total increase"
figure jwks_down_checks "$n" "relay checks at A meanwhile (6 s)"
figure jwks_down_checks_failed "$((non2xx + sock))" "relay checks failed meanwhile"
figure jwks_down_checks_rate "${rate%.*}" "relay checks/s meanwhile"
[ "$reasons" = '{"http_502:unavailable":20}' ] || fail "logins with the new key unreachable: $out; A: $(grep -e refused -e keys "$FB_TMP/a.log" | tail -3); IdP: $(tail -3 "$FB_TMP/op.log")"
[ "$fails" = 20 ] || fail "idp refresh failures counted: $fails, not 20"
# The first login after the rotation fetches the key set (and fails) unless
# the last fetch is younger than keys.refetch_min; either way, no guessing.
grep -Eq "failed \(unavailable\): $OP: its key set (could not be fetched|was fetched less than 5s ago): id_token: no key of the issuer has kid" "$FB_TMP/a.log" ||
	fail "no clear log line: $(grep '(unavailable)' "$FB_TMP/a.log" | tail -2)"
[ "$n" -gt 0 ] && [ "$non2xx" = 0 ] && [ "$sock" = 0 ] || fail "relay checks at A during the IdP outage: $n $non2xx $sock"
rm "$FB_TMP/jwks.down"
t0=$(date +%s%N)
deadline=$(( $(date +%s) + 60 ))
until out=$(logins run --provider corp --return-to "$APP" --users user1:pw-1 --out "$FB_TMP/jwks3.jsonl" --count 1) &&
	[ "$(json_field "$out" ok)" = 1 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "logins did not recover within 60 s of the key set's return: $out"
done
figure jwks_recovery_ms "$(( ($(date +%s%N) - t0) / 1000000 ))" "from the key set's return to the first good login (ms)"
pass "IdP key set down: 20 logins refused as unavailable (502, counted), relay checks untouched ($n, none failed), recovered"

# ---- 3. kill -9 under load ----
logins run --provider corp --return-to "$APP" --users "$LOGIN_USERS" --out "$FB_TMP/kill.jsonl" \
	--seconds "$kill_seconds" --concurrency 16 --logout-every 4 >"$FB_TMP/kill.out" &
driver=$!
# The kill comes once 50 logouts are acknowledged, or halfway through with 5.
half=$(( $(date +%s) + kill_seconds / 2 ))
deadline=$(( $(date +%s) + kill_seconds ))
while :; do
	n=$(grep -c '"kind":"logout"' "$FB_TMP/kill.jsonl" 2>/dev/null || true)
	[ "${n:-0}" -lt 50 ] || break
	[ "${n:-0}" -lt 5 ] || [ "$(date +%s)" -lt "$half" ] || break
	[ "$(date +%s)" -lt "$deadline" ] || fail "no load before the kill: $(cat "$FB_TMP/kill.out")"
	sleep 0.05
done
kill -9 "$A_PID"
t0=$(date +%s%N)
acked_at_kill=$(grep -c '"kind":"session"' "$FB_TMP/kill.jsonl")
a_start "$FB_TMP/a.log"
restart_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$driver" || fail "the login driver failed: $(cat "$FB_TMP/kill.out")"
out=$(cat "$FB_TMP/kill.out")
echo "kill -9: $out"
v=$(logins verify --in "$FB_TMP/kill.jsonl") || fail "after kill -9: $v"
figure kill_acked_sessions "$(json_field "$v" sessions)" "sessions acknowledged (not logged out), of which $acked_at_kill before the kill"
figure kill_acked_logouts "$(json_field "$v" logouts)" "logouts acknowledged"
figure kill_sessions_lost "$(json_field "$v" sessions_lost)" "acknowledged sessions that no longer refresh"
figure kill_logouts_lost "$(json_field "$v" logouts_lost)" "acknowledged logouts undone"
figure kill_restart_ms "$restart_ms" "from kill -9 to the bridge listening again (ms)"
figure kill_failed_logins "$(json_field "$out" failed)" "logins cut off by the kill (not acknowledged: the browser saw an error)"
pass "kill -9 under load: $(json_field "$v" sessions) sessions and $(json_field "$v" logouts) logouts acknowledged, none lost"
