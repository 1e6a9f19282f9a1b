#!/bin/bash
# Two bridge replicas on one PostgreSQL store (started here, in a temporary
# directory): a revocation made once reaches both relay checks within a
# second; with the database down, relay checks go on from memory while
# /readyz says not ready; both recover by themselves when it returns.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/store_pg_lib.sh"
pg_start "$FB_TMP" || fail "could not start PostgreSQL"
trap 'pg_stop; cleanup' EXIT
examples_copy
pair="$FB_TMP/examples/pair"
sed "s|^store: .*|store: \"postgresql://postgres@localhost/postgres?host=$PG_DIR\"|" "$pair/installation-b.yaml" >"$pair/b-pg.yaml"
grep -q '^store: "postgresql://' "$pair/b-pg.yaml" || fail "could not write b-pg.yaml"
"$FB_BINARY" check -c "$pair/b-pg.yaml" >/dev/null || fail "check of b-pg.yaml"
peer=$(cert_escaped "$pair/keys/a-to-b.cert.pem")
passed=0
ok() {
	passed=$((passed + 1))
	pass "$1"
}
check() { # PORT TOKEN -> "200" or the reason
	curl -s -D - -o /dev/null -H "Authorization: Fed $2" -H "X-Fed-Tenant: HWqHczeM2P" \
		-H "X-Fed-Peer-Cert: $peer" "http://127.0.0.1:$1/validate" |
		sed -n 's/^HTTP\/1\.[01] 200.*/200/p; s/^X-Fed-Reason: \([a-z_]*\).*/\1/p'
}
ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz"; }

start_bridge "$pair/b-pg.yaml" "$FB_TMP/b1.log"
p1=$BRIDGE_PORT
start_bridge "$pair/b-pg.yaml" "$FB_TMP/b2.log"
p2=$BRIDGE_PORT
issue() { "$FB_BINARY" token issue -c "$pair/installation-a.yaml" --tenant HZnKEBoqDU --fid "$1" --audience HWqHczeM2P; }
t1=$(issue fid:0/HZnKEBoqDU/100401)
t2=$(issue fid:0/HZnKEBoqDU/100402)
[ "$(check $p1 "$t1")" = 200 ] && [ "$(check $p2 "$t1")" = 200 ] || fail "fresh token not allowed"
[ "$(ready $p1)" = 200 ] && [ "$(ready $p2)" = 200 ] || fail "replicas not ready"

"$FB_BINARY" sessions revoke -c "$pair/b-pg.yaml" --fid fid:0/HZnKEBoqDU/100401 >/dev/null || fail "revoke"
t0=$(date +%s%N)
while [ "$(check $p1 "$t1")" != revoked ] || [ "$(check $p2 "$t1")" != revoked ]; do
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1000 ] || fail "not refused by both replicas within 1 s"
	sleep 0.01
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(check $p1 "$t2")" = 200 ] || fail "another user was refused"
ok "a revocation made once is refused by both replicas within ${ms} ms (LISTEN/NOTIFY)"

pg_stop
[ "$(ready $p1)" = 503 ] && [ "$(ready $p2)" = 503 ] || fail "/readyz while the database is down: $(ready $p1) $(ready $p2)"
[ "$(check $p1 "$t2")" = 200 ] && [ "$(check $p1 "$t1")" = revoked ] ||
	fail "relay checks without the database: $(check $p1 "$t2") $(check $p1 "$t1")"
out=$("$FB_BINARY" sessions revoke -c "$pair/b-pg.yaml" --fid fid:0/HZnKEBoqDU/100402 2>&1) &&
	fail "a revoke with the database down succeeded"
printf '%s\n' "$out" | grep -q 'PostgreSQL' || fail "revoke error: $out"
ok "database down: /readyz is 503, relay checks go on from memory, a revoke fails clearly"

pg_restart_start || fail "could not restart PostgreSQL"
t0=$(date +%s)
while [ "$(ready $p1)" != 200 ] || [ "$(ready $p2)" != 200 ]; do
	[ $(( $(date +%s) - t0 )) -lt 5 ] || fail "not ready within 5 s of the database returning"
	sleep 0.05
done
"$FB_BINARY" sessions revoke -c "$pair/b-pg.yaml" --fid fid:0/HZnKEBoqDU/100402 >/dev/null || fail "revoke after restart"
t0=$(date +%s%N)
while [ "$(check $p2 "$t2")" != revoked ]; do
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ] || fail "the watch did not recover: $(tail -5 "$FB_TMP/b2.log")"
	sleep 0.02
done
ok "both replicas are ready again and follow new revocations after the database returns"

echo "bridge_postgres: $passed passed, 0 failed"
