# A throwaway PostgreSQL for the store's tests and benchmark (sourced).
# pg_start DIR: initdb and start a server in DIR/pg, on a Unix socket in DIR/pg
# only (listen_addresses=''), so no port can clash; sets FB_TEST_PG_URL.
# pg_stop: stops it at once (immediate); pg_restart_start: starts it again.
# As root the server runs as postgres (runuser); otherwise as the caller.

pg_bin() {
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && echo "$d"
	done | sort -V | tail -1
}

pg_start() {
	PG_BIN=$(pg_bin)
	[ -n "$PG_BIN" ] || { echo "no PostgreSQL server installed (apt-get install postgresql)" >&2; return 1; }
	PG_DIR="$1/pg"
	mkdir -p "$PG_DIR"
	if [ "$(id -u)" = 0 ]; then
		PG_RUN="runuser -u postgres --"
		chmod 755 "$1"
		chown postgres "$PG_DIR"
	else
		PG_RUN=""
	fi
	chmod 700 "$PG_DIR"
	$PG_RUN "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync -E UTF8 \
		>"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
	pg_restart_start
	FB_TEST_PG_URL="postgresql://postgres@/postgres?host=$PG_DIR"
	export FB_TEST_PG_URL
}

pg_restart_start() {
	$PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses='' -k $PG_DIR -c max_connections=100" start >/dev/null ||
		{ cat "$PG_DIR/server.log" >&2; return 1; }
}

pg_stop() {
	[ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
		$PG_RUN "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
	return 0
}
