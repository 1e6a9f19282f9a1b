#!/bin/bash
# PostgreSQL stopped and started again under load: installation A's bridge
# on a PostgreSQL store (started here, Unix socket only), browser logins
# and logouts through panva's oidc-provider and relay checks at A's
# /validate running throughout. While the database is down, /readyz says so
# (503), logins fail with an error page, relay checks go on from memory;
# when it is back the bridge reconnects by itself, and every session and
# logout it acknowledged, before, during or after, is still there.
#   FB_PG_SECONDS  length of the login load (default 12)
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/store_pg_lib.sh"
. "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || fail "wrk is needed (scripts/deps.sh test)"
seconds=${FB_PG_SECONDS:-12}
pg_start "$FB_TMP" || fail "could not start PostgreSQL"
trap 'pg_stop; cleanup' EXIT

op_setup
op_start
a_config "postgresql://postgres@localhost/postgres?host=$PG_DIR"
a_start "$FB_TMP/a.log"
issue_tokens 16 "$FB_TMP/b-tokens" b a
ready() { curl -s -o /dev/null -w '%{http_code}' "$A/readyz"; }
[ "$(ready)" = 200 ] || fail "A is not ready"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

logins run --provider corp --return-to "$APP" --users "$LOGIN_USERS" --out "$FB_TMP/pg.jsonl" \
	--seconds "$seconds" --concurrency 16 --logout-every 4 >"$FB_TMP/pg.out" &
driver=$!
a_checks "$seconds" >"$FB_TMP/checks.out" &
checks=$!
# The database goes away once 30 sessions are acknowledged.
deadline=$(( $(date +%s) + seconds ))
until [ "$(grep -c '"kind":"session"' "$FB_TMP/pg.jsonl" 2>/dev/null || echo 0)" -ge 30 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "no logins before the restart: $(cat "$FB_TMP/pg.out")"
	sleep 0.05
done
t_stop=$(now_ms)
$PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || fail "pg_ctl stop"
t_down=$(now_ms)
deadline=$(( $(date +%s) + 20 ))
until [ "$(ready)" = 503 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "/readyz did not notice the database stopped"
	sleep 0.02
done
t_unready=$(now_ms)
pg_restart_start || fail "PostgreSQL did not start again"
t_up=$(now_ms)
deadline=$(( $(date +%s) + 30 ))
until [ "$(ready)" = 200 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "A did not become ready again: $(tail -5 "$FB_TMP/a.log")"
	sleep 0.02
done
t_ready=$(now_ms)
wait "$driver" || fail "the login driver failed: $(cat "$FB_TMP/pg.out")"
wait "$checks" || fail "wrk failed"
out=$(cat "$FB_TMP/pg.out")
echo "logins: $out"
read -r n non2xx sock rate p50 p99 max <"$FB_TMP/checks.out"
# The first login acknowledged after the database came back.
first_ok=$(node -e 'const fs=require("fs");const up=+process.argv[2];let m=Infinity;
for (const l of fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean)) {
  const r=JSON.parse(l); if (r.kind==="session" && r.t>=up && r.t<m) m=r.t; }
console.log(m===Infinity?-1:m-up)' "$FB_TMP/pg.jsonl" "$t_up")
v=$(logins verify --in "$FB_TMP/pg.jsonl") || fail "after the restart: $v"
figure pg_stop_ms "$((t_down - t_stop))" "pg_ctl stop -m fast (ms)"
figure pg_unready_ms "$((t_unready - t_down))" "from the database gone to /readyz answering 503 (ms)"
figure pg_down_ms "$((t_up - t_stop))" "database unavailable (ms)"
figure pg_ready_again_ms "$((t_ready - t_up))" "from the database back to /readyz 200 (ms)"
figure pg_first_login_ms "$first_ok" "from the database back to the next acknowledged login (ms)"
figure pg_logins_ok "$(json_field "$out" ok)" "logins acknowledged during the run ($seconds s)"
figure pg_logins_failed "$(json_field "$out" failed)" "logins that failed (error page or /token refused)"
figure pg_failures "$(json_field "$out" failures)" "how they failed"
figure pg_sessions_lost "$(json_field "$v" sessions_lost)/$(json_field "$v" sessions)" "acknowledged sessions lost"
figure pg_logouts_lost "$(json_field "$v" logouts_lost)/$(json_field "$v" logouts)" "acknowledged logouts undone"
figure pg_checks "$n" "relay checks at A during the run"
figure pg_checks_failed "$((non2xx + sock))" "relay checks failed"
[ "$n" -gt 0 ] && [ "$non2xx" = 0 ] && [ "$sock" = 0 ] || fail "relay checks during the restart: $n $non2xx $sock"
[ "$first_ok" -ge 0 ] || fail "no login succeeded after the database came back: $out"
# An outage is "try again" (503), never a refusal the messenger would act on
# (invalid_grant would log its user out).
case "$(json_field "$out" failures)" in *_4[0-9][0-9]*) fail "a login met the outage as a refusal: $out" ;; esac
# The outage is counted, by the store operation that met it.
errors=$(curl -s "$A/metrics" | awk '/^fedbridge_store_errors_total/ && $2 > 0 {
	sub(/.*operation="/, "", $1); sub(/".*/, "", $1); printf "%s%s %s", sep, $1, $2; sep = ", " }')
figure pg_store_errors "${errors:-none}" "fedbridge_store_errors_total by operation"
[ -n "$errors" ] || fail "the outage left fedbridge_store_errors_total at 0"
pass "PostgreSQL restart under load: down $((t_up - t_stop)) ms, ready again after $((t_ready - t_up)) ms, $(json_field "$v" sessions) sessions and $(json_field "$v" logouts) logouts kept, $n relay checks none failed"
