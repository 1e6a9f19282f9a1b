/*
 * Session store benchmark: figures, each with a baseline measured in the
 * same run and the ratio. Not a test: nothing here passes or fails.
 *
 *   session create, get and touch per second through the store, against the
 *   same row written and read with the raw library (SQLite, libpq)
 *   revocation checks per second with 1,000,000 revocations stored, against
 *   the same check on an empty store
 *   memory per session in the memory backend (100,000 sessions: heap and
 *   RSS), against the bytes of the session's own text
 *   time for a revocation to reach a second handle's watch, against the
 *   revoke call itself
 *
 * The embedded store is measured in a temporary directory (TMPDIR, default
 * /tmp); PostgreSQL when FB_TEST_PG_URL names a database it may fill
 * (tests/bench/bench_store.sh starts a throwaway one).
 */
#include "fb_sessions.h"

#include <libpq-fe.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1800000000
#define ROUNDS 3
#define REVOCATIONS 1000000
#define MEM_SESSIONS 100000
#define IDS 4096

struct bench {
	struct fb_store *st;
	char ids[IDS][FB_SESSION_ID_LEN + 1];
	unsigned k;
	sqlite3 *raw;
	sqlite3_stmt *raw_put, *raw_get, *raw_touch;
	PGconn *pg;
	volatile long sink;
};

static const char *const row_attrs =
    "{\"email\":\"alice.example@a.example\",\"department\":\"sales\","
    "\"groups\":[\"federation\",\"partners-b\"]}";

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, msg != NULL ? msg : "");
	exit(1);
}

static struct fb_session
row(const char *id, unsigned i)
{
	static char fid[64];
	struct fb_session s = { 0 };

	(void)snprintf(fid, sizeof(fid), "fid:0/HZnKEBoqDU/%u", 100000 + i);
	memcpy(s.id, id, FB_SESSION_ID_LEN + 1);
	s.fid = fid;
	s.tenant = "HZnKEBoqDU";
	s.provider = "corp-keycloak";
	s.issuer = "https://kc.a.example/realms/corp";
	s.subject = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
	s.idp_session = "3b241101-e2bb-4255-8caf-4136c566a962";
	s.acr = "urn:example:acr:mfa";
	s.amr = "[\"pwd\",\"otp\"]";
	s.attrs = (char *)row_attrs;
	s.created = T0;
	s.last_seen = T0;
	s.expires = T0 + 8 * 3600;
	s.idle_timeout = 3600;
	return s;
}

static size_t
row_bytes(const struct fb_session *s)
{
	return FB_SESSION_ID_LEN + strlen(s->fid) + strlen(s->tenant) + strlen(s->provider) +
	    strlen(s->issuer) + strlen(s->subject) + strlen(s->idp_session) + strlen(s->acr) +
	    strlen(s->amr) + strlen(s->attrs) + 4 * sizeof(int64_t);
}

/* Operations per second of fn over at least secs. */
static double
rate(void (*fn)(struct bench *), struct bench *b, double secs)
{
	double t0 = now_s(), t;
	unsigned long n = 0;

	do {
		for (int i = 0; i < 8; i++)
			fn(b);
		n += 8;
	} while ((t = now_s() - t0) < secs);
	return (double)n / t;
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return (a > c) - (a < c);
}

static double
median_rate(void (*fn)(struct bench *), struct bench *b, double secs)
{
	double r[ROUNDS];

	for (int i = 0; i < ROUNDS; i++)
		r[i] = rate(fn, b, secs);
	qsort(r, ROUNDS, sizeof(double), cmp_double);
	return r[ROUNDS / 2];
}

/* Alternating rounds of base and op; medians of each. */
static void
paired(void (*base)(struct bench *), void (*op)(struct bench *), struct bench *b, double secs,
    double *base_rate, double *op_rate)
{
	double rb[ROUNDS], ro[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		rb[i] = rate(base, b, secs);
		ro[i] = rate(op, b, secs);
	}
	qsort(rb, ROUNDS, sizeof(double), cmp_double);
	qsort(ro, ROUNDS, sizeof(double), cmp_double);
	*base_rate = rb[ROUNDS / 2];
	*op_rate = ro[ROUNDS / 2];
}

/* ---- through the store ---- */

static void
op_put(struct bench *b)
{
	unsigned i = b->k++ % IDS;
	struct fb_session s = row(b->ids[i], i);
	struct fb_err err = { 0 };

	if (fb_store_session_put(b->st, &s, &err) != FB_OK)
		die("put", err.msg);
}

static void
op_get(struct bench *b)
{
	struct fb_session s = { 0 };
	struct fb_err err = { 0 };

	if (fb_store_session_get(b->st, b->ids[b->k++ % IDS], &s, &err) != FB_OK)
		die("get", err.msg);
	b->sink += s.created;
	fb_session_clear(&s);
}

static void
op_touch(struct bench *b)
{
	struct fb_err err = { 0 };

	if (fb_store_session_touch(b->st, b->ids[b->k++ % IDS], T0 + 60, NULL, &err) != FB_OK)
		die("touch", err.msg);
}

/* What a login or refresh asks: is this session, its user, IdP session or tenant revoked? */
static void
op_check(struct bench *b)
{
	unsigned i = b->k++ % IDS;
	struct fb_session s = row(b->ids[i], i);
	enum fb_revocation_kind k;
	struct fb_err err = { 0 };

	if (fb_store_session_revoked(b->st, &s, T0 + 60, &k, &err) != FB_OK)
		die("check", err.msg);
	b->sink += (long)k;
}

/* ---- the same with the raw libraries ---- */

static void
raw_sqlite_open(struct bench *b, const char *dir)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/raw.db", dir);
	if (sqlite3_open(path, &b->raw) != SQLITE_OK ||
	    sqlite3_exec(b->raw,
	        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	        "CREATE TABLE s (id TEXT PRIMARY KEY, fid TEXT, tenant TEXT, provider TEXT,"
	        " issuer TEXT, subject TEXT, idp_session TEXT, acr TEXT, amr TEXT, attrs TEXT,"
	        " created INTEGER, last_seen INTEGER, expires INTEGER, idle_timeout INTEGER)"
	        " WITHOUT ROWID",
	        NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->raw,
	        "INSERT OR REPLACE INTO s VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
	        "?12,"
	        " ?13, ?14)",
	        -1, &b->raw_put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->raw, "SELECT * FROM s WHERE id = ?1", -1, &b->raw_get, NULL) !=
	        SQLITE_OK ||
	    sqlite3_prepare_v2(b->raw, "UPDATE s SET last_seen = ?2 WHERE id = ?1", -1,
	        &b->raw_touch, NULL) != SQLITE_OK)
		die("raw sqlite", sqlite3_errmsg(b->raw));
}

static void
raw_sqlite_put(struct bench *b)
{
	unsigned i = b->k++ % IDS;
	struct fb_session s = row(b->ids[i], i);
	const char *t[10] = { s.id, s.fid, s.tenant, s.provider, s.issuer, s.subject, s.idp_session,
		s.acr, s.amr, s.attrs };

	sqlite3_reset(b->raw_put);
	for (int c = 0; c < 10; c++)
		sqlite3_bind_text(b->raw_put, c + 1, t[c], -1, SQLITE_STATIC);
	sqlite3_bind_int64(b->raw_put, 11, s.created);
	sqlite3_bind_int64(b->raw_put, 12, s.last_seen);
	sqlite3_bind_int64(b->raw_put, 13, s.expires);
	sqlite3_bind_int64(b->raw_put, 14, s.idle_timeout);
	if (sqlite3_step(b->raw_put) != SQLITE_DONE)
		die("raw put", sqlite3_errmsg(b->raw));
}

static void
raw_sqlite_get(struct bench *b)
{
	sqlite3_reset(b->raw_get);
	sqlite3_bind_text(b->raw_get, 1, b->ids[b->k++ % IDS], -1, SQLITE_STATIC);
	if (sqlite3_step(b->raw_get) != SQLITE_ROW)
		die("raw get", sqlite3_errmsg(b->raw));
	/* Read the columns out, as the store does. */
	for (int c = 0; c < 10; c++)
		b->sink += (long)strlen((const char *)sqlite3_column_text(b->raw_get, c));
}

static void
raw_sqlite_touch(struct bench *b)
{
	sqlite3_reset(b->raw_touch);
	sqlite3_bind_text(b->raw_touch, 1, b->ids[b->k++ % IDS], -1, SQLITE_STATIC);
	sqlite3_bind_int64(b->raw_touch, 2, T0 + 60);
	if (sqlite3_step(b->raw_touch) != SQLITE_DONE)
		die("raw touch", sqlite3_errmsg(b->raw));
}

static void
raw_pg_exec(struct bench *b, const char *sql)
{
	PGresult *r = PQexec(b->pg, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql, PQerrorMessage(b->pg));
	PQclear(r);
}

static void
raw_pg_open(struct bench *b, const char *url)
{
	PGresult *r;

	if (PQstatus(b->pg = PQconnectdb(url)) != CONNECTION_OK)
		die("raw libpq", PQerrorMessage(b->pg));
	raw_pg_exec(b,
	    "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_raw;"
	    "CREATE TABLE bench_raw (id text PRIMARY KEY, fid text, tenant text,"
	    " provider text, issuer text, subject text, idp_session text, acr text,"
	    " amr text, attrs text, created bigint, last_seen bigint, expires bigint,"
	    " idle_timeout bigint);"
	    "CREATE INDEX ON bench_raw (tenant, id); CREATE INDEX ON bench_raw (fid, id);"
	    "CREATE INDEX ON bench_raw (subject, issuer);"
	    "CREATE INDEX ON bench_raw (idp_session, issuer);"
	    "CREATE INDEX ON bench_raw (expires)");
	r = PQprepare(b->pg, "put",
	    "INSERT INTO bench_raw VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
	    " $14) ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen",
	    0, NULL);
	PQclear(r);
	r = PQprepare(b->pg, "get", "SELECT * FROM bench_raw WHERE id = $1", 0, NULL);
	PQclear(r);
	r = PQprepare(b->pg, "touch", "UPDATE bench_raw SET last_seen = $2 WHERE id = $1", 0, NULL);
	PQclear(r);
}

static void
raw_pg_put(struct bench *b)
{
	unsigned i = b->k++ % IDS;
	struct fb_session s = row(b->ids[i], i);
	const char *v[14] = { s.id, s.fid, s.tenant, s.provider, s.issuer, s.subject, s.idp_session,
		s.acr, s.amr, s.attrs, "1800000000", "1800000000", "1800028800", "3600" };
	PGresult *r = PQexecPrepared(b->pg, "put", 14, v, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("raw pg put", PQerrorMessage(b->pg));
	PQclear(r);
}

static void
raw_pg_touch(struct bench *b)
{
	const char *v[2] = { b->ids[b->k++ % IDS], "1800000060" };
	PGresult *r = PQexecPrepared(b->pg, "touch", 2, v, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("raw pg touch", PQerrorMessage(b->pg));
	PQclear(r);
}

static void
raw_pg_get(struct bench *b)
{
	const char *v[1] = { b->ids[b->k++ % IDS] };
	PGresult *r = PQexecPrepared(b->pg, "get", 1, v, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		die("raw pg get", PQerrorMessage(b->pg));
	b->sink += (long)strlen(PQgetvalue(r, 0, 1));
	PQclear(r);
}

/* ---- setup ---- */

static struct fb_store *
open_store(enum fb_conf_store_kind kind, const char *location)
{
	struct fb_store_opts o = { .kind = kind, .location = location, .pool_size = 2 };
	struct fb_store *st = NULL;
	struct fb_err err = { 0 };

	if (fb_store_open(&o, &st, &err) != FB_OK)
		die("open", err.msg);
	return st;
}

/* 1M fid revocations, bulk-loaded beside the store (one transaction, not 1M calls). */
static void
load_revocations_sqlite(const char *dir)
{
	char path[512];
	sqlite3 *db;

	(void)snprintf(path, sizeof(path), "%s/fedbridge.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
	        "BEGIN; WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < "
	        "1000000) INSERT INTO revocations (kind, issuer, value, before, created, until)"
	        " SELECT 2, '', 'fid:0/HWqHczeM2P/' || i, 0, 1800000000, 1900000000 FROM g;"
	        " COMMIT",
	        NULL, NULL, NULL) != SQLITE_OK)
		die("load revocations", sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Between phases: PostgreSQL cleans up the row versions the writes left, as autovacuum would. */
static void
settle_pg(struct bench *b)
{
	raw_pg_exec(b, "VACUUM ANALYZE sessions");
	raw_pg_exec(b, "VACUUM ANALYZE bench_raw");
	raw_pg_exec(b, "VACUUM ANALYZE revocations");
}

static void
settle_none(struct bench *b)
{
	(void)b;
}

static void
load_revocations_pg(struct bench *b)
{
	/* The per-row trigger (lock, NOTIFY) is for live revocations; a bulk load skips it. */
	raw_pg_exec(b,
	    "BEGIN; ALTER TABLE revocations DISABLE TRIGGER revocations_seq;"
	    "INSERT INTO revocations (seq, kind, issuer, value, before, created, until)"
	    " SELECT nextval('revocations_seq'), 2, '', 'fid:0/HWqHczeM2P/' || g, 0,"
	    " 1800000000, 1900000000 FROM generate_series(1, 1000000) g;"
	    "ALTER TABLE revocations ENABLE TRIGGER revocations_seq; COMMIT; ANALYZE");
}

static void
pg_wipe(struct bench *b)
{
	raw_pg_exec(b,
	    "SET client_min_messages = warning;"
	    "DROP TABLE IF EXISTS sessions, revocations, once_used, audit, feed_cursors,"
	    " fedbridge_schema CASCADE; DROP SEQUENCE IF EXISTS revocations_seq;"
	    "DROP FUNCTION IF EXISTS fedbridge_revocation_seq, fedbridge_audit_append_only"
	    " CASCADE");
}

struct watch_seen {
	atomic_llong seq;
};

static void
on_rev(void *arg, const struct fb_revocation *r)
{
	atomic_store(&((struct watch_seen *)arg)->seq, r->seq);
}

/* Median and max time from revoke on a to b's watch callback; *call: the revoke call itself. */
static void
propagation(
    struct fb_store *a, struct fb_store *b, int n, double *median, double *max, double *call)
{
	struct watch_seen w = { 0 };
	struct fb_err err = { 0 };
	double lat[64], calls[64], t0;
	char v[FB_SESSION_ID_LEN + 1];
	int64_t seq;

	if (fb_store_watch(b, FB_STORE_WATCH_NEW, on_rev, &w, &err) != FB_OK)
		die("watch", err.msg);
	for (int i = 0; i < n; i++) {
		struct fb_revocation r = { .kind = FB_REVOCATION_SESSION,
			.value = v,
			.until = (int64_t)time(NULL) + 3600 };

		(void)fb_session_id_new(v);
		t0 = now_s();
		if (fb_store_revoke(a, &r, (int64_t)time(NULL), &seq, &err) != FB_OK)
			die("revoke", err.msg);
		calls[i] = (now_s() - t0) * 1000;
		while (atomic_load(&w.seq) < seq && now_s() - t0 < 5)
			usleep(200);
		lat[i] = (now_s() - t0) * 1000;
		usleep(23 * 1000);
	}
	fb_store_unwatch(b);
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	qsort(calls, (size_t)n, sizeof(double), cmp_double);
	*median = lat[n / 2];
	*max = lat[n - 1];
	*call = calls[n / 2];
}

/* The figures for one durable backend. */
static void
run_backend(struct bench *b, const char *name, enum fb_conf_store_kind kind, const char *loc,
    const char *loc_loaded, void (*const raw[3])(struct bench *), void (*settle)(struct bench *),
    double secs)
{
	struct fb_store *empty, *loaded, *second;
	double base, op, med, max, call, t0;

	b->st = open_store(kind, loc);
	for (unsigned i = 0; i < IDS; i++) {
		b->k = i;
		op_put(b);
		raw[0](b);
	}
	settle(b);
	paired(raw[0], op_put, b, secs, &base, &op);
	printf("%-10s session create          %9.0f /s   raw library %9.0f /s   ratio %.2f\n", name,
	    op, base, op / base);
	settle(b);
	paired(raw[1], op_get, b, secs, &base, &op);
	printf("%-10s session get             %9.0f /s   raw library %9.0f /s   ratio %.2f\n", name,
	    op, base, op / base);
	settle(b);
	paired(raw[2], op_touch, b, secs, &base, &op);
	printf("%-10s session touch (write)   %9.0f /s   raw update  %9.0f /s   ratio %.2f\n", name,
	    op, base, op / base);
	empty = b->st;
	settle(b);
	/* The empty-store baseline first: with PostgreSQL both handles share one database. */
	base = median_rate(op_check, b, secs);

	t0 = now_s();
	if (kind == FB_STORE_EMBEDDED) {
		fb_store_close(open_store(kind, loc_loaded)); /* the schema */
		load_revocations_sqlite(loc_loaded);
		loaded = open_store(kind, loc_loaded);
	} else {
		loaded = open_store(kind, loc_loaded);
		load_revocations_pg(b);
	}
	printf("%-10s (1M revocations loaded in %.1f s)\n", name, now_s() - t0);
	{
		struct fb_revocation_query q = { .fid = "fid:0/HWqHczeM2P/777" };
		enum fb_revocation_kind k = FB_REVOCATION_NONE;
		struct fb_err err = { 0 };

		if (fb_store_revoked(loaded, &q, T0 + 60, &k, &err) != FB_OK ||
		    k != FB_REVOCATION_FID)
			die("the loaded revocations are not seen", err.msg);
	}
	b->st = loaded;
	settle(b);
	op = median_rate(op_check, b, secs);
	printf("%-10s revocation check, 1M    %9.0f /s   empty store %9.0f /s   ratio %.2f\n", name,
	    op, base, op / base);

	second = open_store(kind, loc_loaded);
	propagation(loaded, second, 20, &med, &max, &call);
	printf("%-10s revocation to a 2nd handle: median %.1f ms, max %.1f ms   revoke call %.1f ms"
	       "   target <= 1000 ms\n",
	    name, med, max, call);
	fb_store_close(second);
	fb_store_close(loaded);
	fb_store_close(empty);
	b->st = NULL;
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	char line[128], *p;
	long resident = 0;

	if (f == NULL)
		return 0;
	/* statm: size resident shared ... in pages */
	if (fgets(line, sizeof(line), f) != NULL) {
		(void)strtol(line, &p, 10);
		resident = strtol(p, NULL, 10);
	}
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
run_memory(void)
{
	struct fb_store *st = open_store(FB_STORE_MEMORY, NULL);
	struct mallinfo2 m0, m1;
	char id[FB_SESSION_ID_LEN + 1];
	struct fb_session s;
	struct fb_err err = { 0 };
	long r0, r1;
	size_t payload = 0;

	m0 = mallinfo2();
	r0 = rss_kib();
	for (unsigned i = 0; i < MEM_SESSIONS; i++) {
		if (fb_session_id_new(id) != FB_OK)
			die("id", NULL);
		s = row(id, i);
		payload = row_bytes(&s);
		if (fb_store_session_put(st, &s, &err) != FB_OK)
			die("put", err.msg);
	}
	m1 = mallinfo2();
	r1 = rss_kib();
	printf("memory     100k sessions: heap %zu B/session, RSS +%.1f MiB (%ld B/session)   "
	       "session text %zu B   ratio %.2f   target <= 2048 B\n",
	    (m1.uordblks - m0.uordblks) / MEM_SESSIONS, (double)(r1 - r0) / 1024,
	    (r1 - r0) * 1024 / MEM_SESSIONS, payload,
	    (double)(m1.uordblks - m0.uordblks) / MEM_SESSIONS / (double)payload);
	fb_store_close(st);
}

int
main(void)
{
	static void (*const raw_sqlite[3])(
	    struct bench *) = { raw_sqlite_put, raw_sqlite_get, raw_sqlite_touch };
	static void (*const raw_pg[3])(struct bench *) = { raw_pg_put, raw_pg_get, raw_pg_touch };
	const char *tmp = getenv("TMPDIR"), *pg = getenv("FB_TEST_PG_URL");
	char dir[256], a[300], c[300], cmd[300];
	struct bench *b = calloc(1, sizeof(*b));
	double secs = 0.5;

	if (b == NULL)
		die("out of memory", NULL);
	for (unsigned i = 0; i < IDS; i++)
		if (fb_session_id_new(b->ids[i]) != FB_OK)
			die("id", NULL);
	{
		struct fb_session s = row(b->ids[0], 0);

		printf("store: session rows of %zu bytes; embedded = SQLite %s, WAL, "
		       "synchronous=FULL; %.1f s per round, median of %d\n",
		    row_bytes(&s), sqlite3_libversion(), secs, ROUNDS);
	}
	run_memory();

	(void)snprintf(dir, sizeof(dir), "%s/fb-bench-store.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", dir);
	(void)snprintf(a, sizeof(a), "%s/a", dir);
	(void)snprintf(c, sizeof(c), "%s/loaded", dir);
	raw_sqlite_open(b, dir);
	run_backend(b, "embedded", FB_STORE_EMBEDDED, a, c, raw_sqlite, settle_none, secs);
	sqlite3_finalize(b->raw_put);
	sqlite3_finalize(b->raw_get);
	sqlite3_finalize(b->raw_touch);
	sqlite3_close(b->raw);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_store: could not remove %s\n", dir);

	if (pg == NULL || pg[0] == '\0') {
		printf("postgresql: skipped (FB_TEST_PG_URL is not set; tests/bench/bench_store.sh "
		       "starts a server)\n");
	} else {
		raw_pg_open(b, pg);
		pg_wipe(b);
		run_backend(b, "postgresql", FB_STORE_POSTGRESQL, pg, pg, raw_pg, settle_pg, secs);
		raw_pg_exec(b, "DROP TABLE bench_raw");
		PQfinish(b->pg);
	}
	free(b);
	return 0;
}
