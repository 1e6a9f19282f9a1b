#!/bin/sh
# fedbridge's main job on its embedded default: builds the bridge, makes the
# example keys and serves conf/examples/minimal.yaml until Ctrl-C.
#   FB_DEMO_LISTEN   address to listen on (default 127.0.0.1:8080)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh run

dir=build
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFB_TESTS=OFF >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
conf/examples/make-keys.sh >/dev/null
fb="$dir/bridge/fedbridge"
conf=conf/examples/minimal.yaml
listen=${FB_DEMO_LISTEN:-127.0.0.1:8080}

"$fb" check -c "$conf"
log=$(mktemp)
"$fb" serve -c "$conf" --listen "$listen" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT INT TERM

deadline=$(( $(date +%s) + 20 ))
until grep -q "listening on" "$log"; do
	if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
		cat "$log" >&2
		echo "demo: fedbridge did not start" >&2
		exit 1
	fi
	sleep 0.1
done
cat "$log"
echo "GET http://$listen/healthz -> $(curl -fsS "http://$listen/healthz")"
echo "fedbridge is serving on http://$listen (pid $pid); Ctrl-C stops it."
tail -n +2 -f "$log" &
tailpid=$!
trap 'kill "$pid" "$tailpid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT INT TERM
wait "$pid"
