#!/bin/bash
# The keyring of keys.signing_dir: fedbridge keys rotate creates the first
# key, publishes a next key ahead of use, promotes it once publish_ahead has
# passed (or with --force), keeps the retired key published until its tokens
# have expired, then deletes it. Tokens of both keys verify at the remote,
# and a running bridge publishes the new set after SIGHUP.
. "$(dirname "$0")/lib.sh"
examples_copy
pair="$FB_TMP/examples/pair"
A="$pair/installation-a-keyring.yaml"
B="$pair/installation-b-keyring.yaml"
sed -e 's|^  signing: \[keys/a-signing.pem\]|  signing_dir: keyring-a\n  publish_ahead: 10m|' \
	"$pair/installation-a.yaml" >"$A"
sed -e 's|keys: keys/a.jwks|keys: a-keyring.jwks|' "$pair/installation-b.yaml" >"$B"
n=0
ok() { n=$((n + 1)); pass "$*"; }
kids() { "$FB_BINARY" keys jwks -c "$A" | grep -o '"kid":"[^"]*"' | cut -d'"' -f4 | sort | tr '\n' ' '; }
issue() { "$FB_BINARY" token issue -c "$A" --tenant HZnKEBoqDU --fid "fid:0/HZnKEBoqDU/$1" --audience HWqHczeM2P; }
header_kid() { echo "$1" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null | grep -o '"kid":"[^"]*"' | cut -d'"' -f4; }
verify() { "$FB_BINARY" token verify -c "$B" --tenant HWqHczeM2P --peer-cert "$pair/keys/a-to-b.cert.pem" "$1"; }
publish() { "$FB_BINARY" keys jwks -c "$A" >"$pair/a-keyring.jwks"; }

if "$FB_BINARY" check -c "$A" 2>"$FB_TMP/err"; then fail "check passed without a keyring"; fi
grep -q "run fedbridge keys rotate" "$FB_TMP/err" || fail "no hint to rotate: $(cat "$FB_TMP/err")"
ok "without a keyring, check says to run keys rotate"

out=$("$FB_BINARY" keys rotate -c "$A") || fail "first rotate"
echo "$out" | grep -q '^created key .* (ES256), active$' || fail "first rotate said: $out"
[ "$(stat -c %a "$pair/keyring-a")" = 700 ] || fail "keyring directory is not 0700"
k1=$(kids | tr -d ' ')
[ "$(stat -c %a "$pair/keyring-a/$k1.pem")" = 600 ] || fail "key file is not 0600"
"$FB_BINARY" check -c "$A" >/dev/null || fail "check after the first rotate"
"$FB_BINARY" keys jwks -c "$A" | grep -q '"exp":[0-9]' || fail "the JWKS carries no exp"
ok "first rotate: active key $k1 (dir 0700, key 0600, exp published)"

publish
t1=$(issue 1)
[ "$(header_kid "$t1")" = "$k1" ] || fail "token not signed by $k1"
verify "$t1" >/dev/null || fail "B refused a token of $k1"
ok "tokens are signed by the active key and verify at B"

out=$("$FB_BINARY" keys rotate -c "$A") || fail "second rotate"
echo "$out" | grep -q 'next: published now' || fail "second rotate said: $out"
[ "$(kids | wc -w)" = 2 ] || fail "the next key is not published: $(kids)"
k2=$(kids | tr ' ' '\n' | grep -v "^$k1$" | grep .)
[ "$(header_kid "$(issue 2)")" = "$k1" ] || fail "the next key signs before publish_ahead"
ok "second rotate: next key $k2 published, $k1 still signs"

out=$("$FB_BINARY" keys rotate -c "$A") || fail "third rotate"
echo "$out" | grep -q 'nothing changed' || fail "third rotate promoted too early: $out"
ok "the next key is not promoted before publish_ahead"

# A running bridge picks the new keys up on SIGHUP.
start_bridge "$A" "$FB_TMP/a.log"
publish
out=$("$FB_BINARY" keys rotate -c "$A" --force) || fail "forced rotate"
echo "$out" | grep -q "key $k2 is now active; key $k1 is retired" || fail "forced rotate said: $out"
kill -HUP "$BRIDGE_PID"
wait_for "$FB_TMP/a.log" "configuration reloaded: generation 2"
served=$(curl -fsS "http://127.0.0.1:$BRIDGE_PORT/.well-known/jwks.json")
echo "$served" | grep -q "\"kid\":\"$k1\"" && echo "$served" | grep -q "\"kid\":\"$k2\"" ||
	fail "after SIGHUP the bridge serves: $served"
t2=$(issue 3)
[ "$(header_kid "$t2")" = "$k2" ] || fail "the promoted key does not sign"
verify "$t2" >/dev/null || fail "B refused a token of the new key"
verify "$t1" >/dev/null || fail "B refused a token of the retired key before it expired"
ok "forced rotate: $k2 signs, retired $k1 stays published; both verify at B; SIGHUP serves both"

# Once every token of the retired key has expired, rotate deletes it.
sed -i "s/\"retired\": [0-9]*/\"retired\": 1000/" "$pair/keyring-a/keyring.json"
out=$("$FB_BINARY" keys rotate -c "$A") || fail "purging rotate"
echo "$out" | grep -q "deleted retired key $k1" || fail "purging rotate said: $out"
[ ! -e "$pair/keyring-a/$k1.pem" ] || fail "the retired key file is still there"
kids | grep -q "$k1" && fail "the retired key is still published"
publish
verify "$t1" | grep -q '"reason":"unknown_key"' || fail "a token of a deleted key still verifies"
ok "expired retired key deleted and unpublished; its tokens are unknown_key"

chmod 755 "$pair/keyring-a"
if "$FB_BINARY" check -c "$A" 2>"$FB_TMP/err"; then fail "check accepted a keyring readable by others"; fi
grep -q "run chmod 700" "$FB_TMP/err" || fail "no chmod hint: $(cat "$FB_TMP/err")"
ok "a keyring accessible by others is refused"
echo "keys_rotate: $n passed, 0 failed"
