/*
 * The PostgreSQL backend, for several bridge nodes on one database.
 *
 * A small pool of connections (mutex + condvar), each with every statement
 * prepared once after it connects. A connection found dead (the server
 * restarted) is dropped and made again; while the server is away, new
 * connections are tried with exponential backoff capped at one second, so
 * calls fail fast with the server's name and libpq's reason, and the store
 * is back within a second or so of the server.
 *
 * Revocation sequence numbers are the feed's cursor, so they must become
 * visible in order: a trigger takes a transaction-level advisory lock before
 * it draws the number, so revoking transactions commit one at a time
 * (revocations are rare), and NOTIFYs the new number at commit for the other
 * nodes' watch threads.
 */
#include "store_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNEL "fedbridge_revocations"
#define SCHEMA_LOCK "7046016000"
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define DEFAULT_POOL 4
#define MAX_POOL 64

/*
 * sessions.ends (absolute or idle end) has no index and pages keep room, so
 * that touch, the most frequent write, is a HOT update: no index changes.
 */
static const char *const migrations[] = {
	"CREATE TABLE sessions ("
	" id text PRIMARY KEY, fid text NOT NULL, tenant text NOT NULL,"
	" provider text NOT NULL, issuer text NOT NULL, subject text NOT NULL,"
	" idp_session text, acr text, amr text, attrs text,"
	" created bigint NOT NULL, last_seen bigint NOT NULL, expires bigint NOT NULL,"
	" idle_timeout bigint NOT NULL, ends bigint NOT NULL) WITH (fillfactor = 80);"
	"CREATE INDEX sessions_tenant ON sessions (tenant, id);"
	"CREATE INDEX sessions_fid ON sessions (fid, id);"
	"CREATE INDEX sessions_subject ON sessions (subject, issuer);"
	"CREATE INDEX sessions_idp_session ON sessions (idp_session, issuer);"
	"CREATE SEQUENCE revocations_seq;"
	"CREATE TABLE revocations ("
	" seq bigint PRIMARY KEY, kind integer NOT NULL, issuer text NOT NULL,"
	" value text NOT NULL, before bigint NOT NULL, created bigint NOT NULL,"
	" until bigint NOT NULL, reason text, actor text, origin text);"
	"CREATE INDEX revocations_key ON revocations (kind, value, issuer);"
	"CREATE INDEX revocations_until ON revocations (until);"
	"CREATE FUNCTION fedbridge_revocation_seq() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" BEGIN"
	"  PERFORM pg_advisory_xact_lock(7046016001);"
	"  NEW.seq := nextval('revocations_seq');"
	"  PERFORM pg_notify('" CHANNEL "', NEW.seq::text);"
	"  RETURN NEW;"
	" END $f$;"
	"CREATE TRIGGER revocations_seq BEFORE INSERT ON revocations"
	" FOR EACH ROW EXECUTE FUNCTION fedbridge_revocation_seq();"
	"CREATE TABLE once_used ("
	" kind integer NOT NULL, value text NOT NULL, expires bigint NOT NULL,"
	" PRIMARY KEY (kind, value));"
	"CREATE INDEX once_used_expires ON once_used (expires);"
	"CREATE TABLE audit ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time bigint NOT NULL,"
	" kind integer NOT NULL, correlation text, tenant text, fid text, provider text,"
	" audience text, jti text, rule text, actor text, detail text);"
	"CREATE FUNCTION fedbridge_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $f$;"
	"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit"
	" FOR EACH STATEMENT EXECUTE FUNCTION fedbridge_audit_append_only();"
	"CREATE TABLE feed_cursors (remote text PRIMARY KEY, cursor bigint NOT NULL);",
	/* The store's identity, and with each feed cursor the remote store it counts in. */
	"CREATE TABLE store_identity (id integer PRIMARY KEY CHECK (id = 1), epoch text NOT NULL);"
	"ALTER TABLE feed_cursors ADD COLUMN epoch text NOT NULL DEFAULT '',"
	" ADD COLUMN iat bigint NOT NULL DEFAULT 0;"
	"CREATE INDEX revocations_origin ON revocations (origin, until);",
	/*
	 * Audit retention. Every node writes the retention it was opened with
	 * into audit_retention (one row); a row trigger lets a DELETE through
	 * only for a record older than that by the server's clock, and UPDATE
	 * and TRUNCATE stay refused. Sound for what it guards against: the
	 * application's own mistakes and anyone using the store through the
	 * bridge, who can lower the retention to one day at most (the CHECK;
	 * 86400 is FB_AUDIT_RETENTION_MIN, frozen here like the rest of this
	 * entry). Not against the tables' owner (the role that ran this), who
	 * can drop triggers. A missing row makes the test NULL, which refuses
	 * every DELETE.
	 */
	"CREATE TABLE audit_retention (id integer PRIMARY KEY CHECK (id = 1),"
	" seconds bigint NOT NULL CHECK (seconds >= 86400));"
	"CREATE INDEX audit_time ON audit (time);"
	"CREATE FUNCTION fedbridge_audit_retained() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" BEGIN"
	"  IF coalesce(OLD.time < floor(extract(epoch FROM now()))::bigint"
	"   - (SELECT seconds FROM audit_retention WHERE id = 1), false) THEN"
	"   RETURN OLD;"
	"  END IF;"
	"  RAISE EXCEPTION 'the audit trail is append-only within its retention (record %)',"
	"   OLD.id;"
	" END $f$;"
	"DROP TRIGGER audit_append_only ON audit;"
	"CREATE TRIGGER audit_append_only BEFORE UPDATE OR TRUNCATE ON audit"
	" FOR EACH STATEMENT EXECUTE FUNCTION fedbridge_audit_append_only();"
	"CREATE TRIGGER audit_retained BEFORE DELETE ON audit"
	" FOR EACH ROW EXECUTE FUNCTION fedbridge_audit_retained();",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt {
	S_SESSION_PUT,
	S_SESSION_GET,
	S_SESSION_TOUCH,
	S_SESSION_DELETE,
	S_REVOKE,
	S_REV_SINCE,
	S_REV_SEQ,
	S_REV_HEAD,
	S_REVOKED,
	S_ONCE,
	S_AUDIT_APPEND,
	S_AUDIT_LIST,
	S_CURSOR_GET,
	S_CURSOR_SET,
	S_REV_COUNT,
	S_EPOCH,
	S_PURGE_SESSIONS,
	S_PURGE_REVOCATIONS,
	S_PURGE_ONCE,
	S_PURGE_AUDIT,
	S_RETENTION_SET,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_SESSION_PUT] = "INSERT INTO sessions (" STORE_SESSION_COLS ", ends) VALUES"
	                  " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
	                  "  CASE WHEN $14::bigint > 0 THEN LEAST($13::bigint, $12::bigint + $14)"
	                  "  ELSE $13 END)"
	                  " ON CONFLICT (id) DO UPDATE SET fid = EXCLUDED.fid,"
	                  " tenant = EXCLUDED.tenant, provider = EXCLUDED.provider,"
	                  " issuer = EXCLUDED.issuer, subject = EXCLUDED.subject,"
	                  " idp_session = EXCLUDED.idp_session, acr = EXCLUDED.acr,"
	                  " amr = EXCLUDED.amr, attrs = EXCLUDED.attrs,"
	                  " created = EXCLUDED.created, last_seen = EXCLUDED.last_seen,"
	                  " expires = EXCLUDED.expires, idle_timeout = EXCLUDED.idle_timeout,"
	                  " ends = EXCLUDED.ends",
	[S_SESSION_GET] = "SELECT " STORE_SESSION_COLS " FROM sessions WHERE id = $1",
	[S_SESSION_TOUCH] = "UPDATE sessions SET last_seen = GREATEST(last_seen, $2::bigint),"
	                    " ends = CASE WHEN idle_timeout > 0 THEN LEAST(expires,"
	                    "  GREATEST(last_seen, $2::bigint) + idle_timeout) ELSE expires END"
	                    " WHERE id = $1 AND ends > $2::bigint RETURNING " STORE_SESSION_COLS,
	[S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = $1",
	[S_REVOKE] = "INSERT INTO revocations (kind, issuer, value, before, created, until, reason,"
	             " actor, origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
	[S_REV_SINCE] = "SELECT seq, kind, issuer, value, before, created, until, reason, actor,"
	                " origin FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2",
	[S_REV_SEQ] = "SELECT coalesce(max(seq), 0) FROM revocations",
	/* The high-water mark, not max(seq): purging expired rows does not lower it. */
	[S_REV_HEAD] = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM revocations_seq",
	[S_REVOKED] = "SELECT kind FROM revocations WHERE until > $1 AND ("
	              " (kind = 1 AND value = $2 AND issuer = '') OR"
	              " (kind = 2 AND value = $3 AND issuer = '') OR"
	              " (kind = 3 AND value = $4 AND issuer = $6) OR"
	              " (kind = 4 AND value = $5 AND issuer = $6) OR"
	              " (kind = 5 AND value = $7 AND issuer = '') OR"
	              " (kind = 6 AND value = $8 AND issuer = '') OR"
	              " (kind = 7 AND value = $7 AND issuer = '' AND before > $9) OR"
	              " (kind = 7 AND value = '*' AND issuer = '' AND before > $9))"
	              " ORDER BY kind LIMIT 1",
	/* Row-locking upsert: of two racing consumers exactly one inserts or revives the row. */
	[S_ONCE] = "INSERT INTO once_used (kind, value, expires) VALUES ($1, $2, $3)"
	           " ON CONFLICT (kind, value) DO UPDATE SET expires = EXCLUDED.expires"
	           " WHERE once_used.expires <= $4",
	[S_AUDIT_APPEND] = "INSERT INTO audit (time, kind, correlation, tenant, fid, provider,"
	                   " audience, jti, rule, actor, detail) VALUES"
	                   " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
	[S_AUDIT_LIST] = "SELECT id, time, kind, correlation, tenant, fid, provider, audience, jti,"
	                 " rule, actor, detail FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
	[S_CURSOR_GET] = "SELECT cursor, iat, epoch FROM feed_cursors WHERE remote = $1",
	[S_CURSOR_SET] =
	    "INSERT INTO feed_cursors (remote, cursor, iat, epoch) VALUES ($1, $2, $3, $4)"
	    " ON CONFLICT (remote) DO UPDATE SET cursor = EXCLUDED.cursor,"
	    " iat = EXCLUDED.iat, epoch = EXCLUDED.epoch",
	[S_REV_COUNT] = "SELECT count(*) FROM revocations WHERE origin = $1 AND until > $2",
	/* Of two nodes opening a new store together, the first identity stays. */
	[S_EPOCH] =
	    "WITH ins AS (INSERT INTO store_identity (id, epoch) VALUES (1, $1)"
	    " ON CONFLICT (id) DO NOTHING RETURNING epoch)"
	    " SELECT epoch FROM ins UNION ALL SELECT epoch FROM store_identity WHERE id = 1",
	[S_PURGE_SESSIONS] = "DELETE FROM sessions WHERE ends <= $1",
	[S_PURGE_REVOCATIONS] = "DELETE FROM revocations WHERE until <= $1",
	[S_PURGE_ONCE] = "DELETE FROM once_used WHERE expires <= $1",
	/*
	 * Older than the retention by the earlier of now and the server's clock
	 * (now() is the transaction's start, the same in the trigger), and the
	 * longer of ours and the database's (another node may have written a
	 * longer one): the trigger never sees a record it refuses.
	 */
	[S_PURGE_AUDIT] =
	    "DELETE FROM audit WHERE time < LEAST($1::bigint,"
	    " floor(extract(epoch FROM now()))::bigint)"
	    " - GREATEST($2::bigint, (SELECT seconds FROM audit_retention WHERE id = 1))",
	[S_RETENTION_SET] = "INSERT INTO audit_retention (id, seconds) VALUES (1, $1)"
	                    " ON CONFLICT (id) DO UPDATE SET seconds = EXCLUDED.seconds",
};

struct pg_conn {
	PGconn *c; /* NULL: not connected */
	bool busy;
};

struct pg_store {
	struct fb_store base;
	char *conninfo;
	char *password; /* owned copy, wiped at close; never in a message */
	char server[300]; /* "host:port/dbname", for messages */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pg_conn *pool;
	unsigned npool;
	int backoff_ms; /* 0: the last attempt worked */
	int64_t next_try_ms; /* no new connection before this (monotonic) */
	char last_error[256];
	/* the watch thread's own connection, touched by that thread only */
	PGconn *listen;
	int listen_backoff_ms;
	int64_t listen_next_ms;
};

static struct pg_store *
pgs(struct fb_store *st)
{
	return (struct pg_store *)st;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's message for c on one line, into buf. */
static const char *
one_line(const char *msg, char *buf, size_t n)
{
	size_t len;

	(void)snprintf(buf, n, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
	/* One line, single spaces: libpq ends lines with newlines and indents details. */
	len = 0;
	for (char *p = buf; *p != '\0'; p++) {
		char ch = *p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p;

		if (ch != ' ' || (len > 0 && buf[len - 1] != ' '))
			buf[len++] = ch;
	}
	buf[len] = '\0';
	while (len > 0 && buf[len - 1] == ' ')
		buf[--len] = '\0';
	return buf;
}

/* "host:port/dbname" from the conninfo: the server's name, never a password. */
static void
describe(struct pg_store *p)
{
	PQconninfoOption *o = PQconninfoParse(p->conninfo, NULL), *i;
	const char *host = NULL, *port = NULL, *db = NULL;

	for (i = o; i != NULL && i->keyword != NULL; i++) {
		if (strcmp(i->keyword, "host") == 0)
			host = i->val;
		else if (strcmp(i->keyword, "port") == 0)
			port = i->val;
		else if (strcmp(i->keyword, "dbname") == 0)
			db = i->val;
	}
	(void)snprintf(p->server, sizeof(p->server), "%s:%s/%s",
	    host != NULL && host[0] != '\0' ? host : "localhost",
	    port != NULL && port[0] != '\0' ? port : "5432", db != NULL ? db : "");
	PQconninfoFree(o);
}

/* Server notices (a shutdown warning, a NOTICE from DDL) are not for stderr. */
static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A new connection, or NULL with libpq's reason in why. */
static PGconn *
connect_db(struct pg_store *p, char *why, size_t n)
{
	static const char *const keys[] = { "dbname", "connect_timeout", "application_name",
		"password", NULL };
	const char *vals[] = { p->conninfo, "3", "fedbridge", p->password, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r;

	if (c == NULL) {
		(void)snprintf(why, n, "out of memory");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		one_line(PQerrorMessage(c), why, n);
		PQfinish(c);
		return NULL;
	}
	(void)PQsetNoticeProcessor(c, quiet, NULL);
	/*
	 * Every statement is an index lookup whose plan does not depend on the
	 * values; without this, PostgreSQL may plan the eight-way revocation
	 * check afresh on every call (custom plans), which costs more than running it.
	 */
	r = PQexec(c, "SET plan_cache_mode = force_generic_plan");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		one_line(PQerrorMessage(c), why, n);
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

static fb_rc
pg_fail(struct pg_store *p, PGconn *c, const PGresult *r, const char *what, struct fb_err *err)
{
	char buf[300];
	const char *msg = r != NULL ? PQresultErrorMessage(r) : NULL;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(c);
	one_line(msg, buf, sizeof(buf));
	(void)FB_ERR_SET(err, FB_ERR_IO, "PostgreSQL %s: %s: %s", p->server, what, buf);
	return FB_ERR_IO;
}

static fb_rc
prepare_all(struct pg_store *p, PGconn *c, struct fb_err *err)
{
	char name[16];

	for (int i = 0; i < S_COUNT; i++) {
		PGresult *r = NULL;
		fb_rc rc = FB_OK;

		(void)snprintf(name, sizeof(name), "fb%d", i);
		r = PQprepare(c, name, stmt_sql[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = pg_fail(p, c, r, "prepare statements", err);
		PQclear(r);
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
}

/*
 * Whether an idle connection still stands. A server that stopped or
 * restarted has closed it: the socket reads EOF (or a FATAL message),
 * which we see here before sending anything on it.
 */
static bool
alive(PGconn *c)
{
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
	PGnotify *n;

	if (PQstatus(c) != CONNECTION_OK || pfd.fd < 0)
		return false;
	if (poll(&pfd, 1, 0) > 0) {
		if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
			return false;
		while ((n = PQnotifies(c)) != NULL)
			PQfreemem(n);
	}
	return true;
}

/* Takes a free pooled connection, connected and prepared, or fails with the reason. */
static fb_rc
acquire(struct pg_store *p, struct pg_conn **out, struct fb_err *err)
{
	struct pg_conn *pc = NULL;
	char why[256];
	PGconn *c;
	int64_t now;
	fb_rc rc;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* Prefer a connected slot; an empty one will connect. */
		for (unsigned i = 0; i < p->npool; i++)
			if (!p->pool[i].busy &&
			    (pc == NULL || (pc->c == NULL && p->pool[i].c != NULL)))
				pc = &p->pool[i];
		if (pc != NULL)
			break;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	pc->busy = true;
	pthread_mutex_unlock(&p->lock);

	if (pc->c != NULL && alive(pc->c)) {
		*out = pc;
		return FB_OK;
	}
	if (pc->c != NULL) {
		PQfinish(pc->c);
		pc->c = NULL;
	}
	pthread_mutex_lock(&p->lock);
	now = mono_ms();
	if (p->backoff_ms > 0 && now < p->next_try_ms) {
		rc = FB_ERR_SET(err, FB_ERR_IO,
		    "PostgreSQL %s is unavailable: %s (next try in %lld ms)", p->server,
		    p->last_error, (long long)(p->next_try_ms - now));
		pc->busy = false;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	pthread_mutex_unlock(&p->lock);

	c = connect_db(p, why, sizeof(why));
	rc = c != NULL ? prepare_all(p, c, err) : FB_OK;
	pthread_mutex_lock(&p->lock);
	if (c == NULL || rc != FB_OK) {
		if (c == NULL) {
			(void)snprintf(p->last_error, sizeof(p->last_error), "%s", why);
			rc = FB_ERR_SET(
			    err, FB_ERR_IO, "PostgreSQL %s: cannot connect: %s", p->server, why);
		}
		if (c != NULL)
			PQfinish(c);
		p->backoff_ms = p->backoff_ms == 0 ? BACKOFF_FIRST_MS : p->backoff_ms * 2;
		if (p->backoff_ms > BACKOFF_MAX_MS)
			p->backoff_ms = BACKOFF_MAX_MS;
		p->next_try_ms = mono_ms() + p->backoff_ms;
		pc->busy = false;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	p->backoff_ms = 0;
	pc->c = c;
	pthread_mutex_unlock(&p->lock);
	*out = pc;
	return FB_OK;
}

static void
release(struct pg_store *p, struct pg_conn *pc)
{
	/* A connection broken in use is dropped; the next user makes a new one. */
	if (pc->c != NULL && PQstatus(pc->c) != CONNECTION_OK) {
		PQfinish(pc->c);
		pc->c = NULL;
	}
	pthread_mutex_lock(&p->lock);
	pc->busy = false;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Runs prepared statement which; *res is its result on success (PQclear it). */
static fb_rc
exec_stmt(struct pg_store *p, PGconn *c, enum stmt which, int n, const char *const *vals,
    const char *what, PGresult **res, struct fb_err *err)
{
	char name[16];
	PGresult *r = NULL;
	ExecStatusType s;

	(void)snprintf(name, sizeof(name), "fb%d", (int)which);
	r = PQexecPrepared(c, name, n, vals, NULL, NULL, 0);
	s = PQresultStatus(r);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		fb_rc rc = pg_fail(p, c, r, what, err);

		PQclear(r);
		return rc;
	}
	*res = r;
	return FB_OK;
}

/*
 * One call: a connection from the pool, fn on it, and the connection back.
 * A read-only or idempotent call (retry) runs once more on a new connection
 * when the first one broke under it.
 */
typedef fb_rc (*pg_fn)(struct pg_store *p, PGconn *c, void *ctx, struct fb_err *err);

static fb_rc
with_conn(struct pg_store *p, bool retry, pg_fn fn, void *ctx, struct fb_err *err)
{
	struct pg_conn *pc = NULL;
	bool broke;
	fb_rc rc;

	for (int attempt = 0;; attempt++) {
		if ((rc = acquire(p, &pc, err)) != FB_OK || pc == NULL)
			return rc != FB_OK ? rc : FB_ERR_INTERNAL;
		rc = fn(p, pc->c, ctx, err);
		broke = rc != FB_OK && PQstatus(pc->c) != CONNECTION_OK;
		release(p, pc);
		if (!broke || !retry || attempt > 0)
			return rc;
	}
}

static const char *
val(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int64_t
ival(const PGresult *r, int row, int col)
{
	const char *v = val(r, row, col);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static fb_rc
row_session(const PGresult *r, int row, struct fb_session *out)
{
	struct fb_session s = { 0 };
	const char *id = val(r, row, 0);

	if (id == NULL || strlen(id) != FB_SESSION_ID_LEN)
		return FB_ERR_INTERNAL;
	memcpy(s.id, id, FB_SESSION_ID_LEN + 1);
	s.fid = (char *)val(r, row, 1);
	s.tenant = (char *)val(r, row, 2);
	s.provider = (char *)val(r, row, 3);
	s.issuer = (char *)val(r, row, 4);
	s.subject = (char *)val(r, row, 5);
	s.idp_session = (char *)val(r, row, 6);
	s.acr = (char *)val(r, row, 7);
	s.amr = (char *)val(r, row, 8);
	s.attrs = (char *)val(r, row, 9);
	s.created = ival(r, row, 10);
	s.last_seen = ival(r, row, 11);
	s.expires = ival(r, row, 12);
	s.idle_timeout = ival(r, row, 13);
	return fb_store_session_copy(out, &s);
}

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

/* ---- sessions ---- */

struct session_ctx {
	const struct fb_session *in;
	const char *id;
	int64_t now;
	struct fb_session *out;
	const struct fb_session_filter *f;
	struct fb_session *list;
	size_t n;
};

static fb_rc
do_session_put(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct session_ctx *x = arg;
	const struct fb_session *s = x->in;
	char a[24], b[24], d[24], e[24];
	const char *v[14] = { s->id, s->fid, s->tenant, s->provider, s->issuer, s->subject,
		s->idp_session, s->acr, s->amr, s->attrs, I64(a, s->created), I64(b, s->last_seen),
		I64(d, s->expires), I64(e, s->idle_timeout) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_SESSION_PUT, 14, v, "store a session", &r, err)) == FB_OK)
		PQclear(r);
	return rc;
}

static fb_rc
p_session_put(struct fb_store *st, const struct fb_session *s, struct fb_err *err)
{
	struct session_ctx x = { .in = s };

	return with_conn(pgs(st), true, do_session_put, &x, err);
}

static fb_rc
one_session(PGresult *r, const struct session_ctx *x, struct fb_err *err)
{
	fb_rc rc = FB_OK;

	if (PQntuples(r) == 0)
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s (or it has expired)", x->id);
	else if (x->out != NULL && row_session(r, 0, x->out) != FB_OK)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	PQclear(r);
	return rc;
}

static fb_rc
do_session_get(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct session_ctx *x = arg;
	const char *v[1] = { x->id };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_SESSION_GET, 1, v, "read a session", &r, err)) != FB_OK)
		return rc;
	return one_session(r, x, err);
}

static fb_rc
p_session_get(struct fb_store *st, const char *id, struct fb_session *out, struct fb_err *err)
{
	struct session_ctx x = { .id = id, .out = out };

	return with_conn(pgs(st), true, do_session_get, &x, err);
}

static fb_rc
do_session_touch(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct session_ctx *x = arg;
	char a[24];
	const char *v[2] = { x->id, I64(a, x->now) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_SESSION_TOUCH, 2, v, "touch a session", &r, err)) != FB_OK)
		return rc;
	return one_session(r, x, err);
}

static fb_rc
p_session_touch(
    struct fb_store *st, const char *id, int64_t now, struct fb_session *out, struct fb_err *err)
{
	struct session_ctx x = { .id = id, .now = now, .out = out };

	/* last_seen only grows (GREATEST), so running it twice is harmless. */
	return with_conn(pgs(st), true, do_session_touch, &x, err);
}

static fb_rc
do_session_delete(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct session_ctx *x = arg;
	const char *v[1] = { x->id };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_SESSION_DELETE, 1, v, "delete a session", &r, err)) != FB_OK)
		return rc;
	if (strcmp(PQcmdTuples(r), "0") == 0)
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s", x->id);
	PQclear(r);
	return rc;
}

static fb_rc
p_session_delete(struct fb_store *st, const char *id, struct fb_err *err)
{
	struct session_ctx x = { .id = id };

	return with_conn(pgs(st), false, do_session_delete, &x, err);
}

/* Rare (admin listing): the SQL is built per call from the filters given. */
static fb_rc
do_session_list(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	static const char *const cols[] = { "tenant", "fid", "issuer", "subject", "idp_session",
		NULL };
	struct session_ctx *x = arg;
	const struct fb_session_filter *f = x->f;
	const char *all[] = { f->tenant, f->fid, f->issuer, f->subject, f->idp_session, f->after };
	const char *v[6];
	char sql[512];
	size_t len;
	int np = 0, rows;
	PGresult *r = NULL;
	fb_rc rc = FB_OK;

	len = (size_t)snprintf(
	    sql, sizeof(sql), "SELECT " STORE_SESSION_COLS " FROM sessions WHERE true");
	for (int i = 0; i < 6; i++)
		if (all[i] != NULL) {
			v[np] = all[i];
			np++;
			len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND %s %s $%d",
			    cols[i] != NULL ? cols[i] : "id", cols[i] != NULL ? "=" : ">", np);
		}
	/* Byte order, like the other backends (and unlike a locale's collation). */
	(void)snprintf(
	    sql + len, sizeof(sql) - len, " ORDER BY id COLLATE \"C\" LIMIT %zu", f->limit);
	r = PQexecParams(c, sql, np, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = pg_fail(p, c, r, "list sessions", err);
		PQclear(r);
		return rc;
	}
	rows = PQntuples(r);
	if (rows > 0 && (x->list = calloc((size_t)rows, sizeof(*x->list))) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	for (int i = 0; rc == FB_OK && i < rows; i++) {
		if (row_session(r, i, &x->list[i]) != FB_OK)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		else
			x->n++;
	}
	PQclear(r);
	if (rc != FB_OK) {
		fb_session_array_free(x->list, x->n);
		x->list = NULL;
		x->n = 0;
	}
	return rc;
}

static fb_rc
p_session_list(struct fb_store *st, const struct fb_session_filter *f, struct fb_session **v,
    size_t *n, struct fb_err *err)
{
	struct session_ctx x = { .f = f };
	fb_rc rc = with_conn(pgs(st), true, do_session_list, &x, err);

	if (rc == FB_OK) {
		*v = x.list;
		*n = x.n;
	}
	return rc;
}

/* ---- revocations ---- */

struct rev_ctx {
	const struct fb_revocation *in;
	const struct fb_revocation_query *q;
	int64_t now, cursor, out;
	size_t limit;
	struct fb_revocation_list *list;
	bool head; /* do_seq: the sequence's high-water mark, not the highest row */
};

static fb_rc
do_revoke(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct rev_ctx *x = arg;
	const struct fb_revocation *r = x->in;
	char k[24], b[24], n[24], u[24];
	const char *v[9] = { I64(k, r->kind), r->issuer != NULL ? r->issuer : "", r->value,
		I64(b, r->before), I64(n, x->now), I64(u, r->until), r->reason, r->actor,
		r->origin };
	PGresult *res = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_REVOKE, 9, v, "record a revocation", &res, err)) != FB_OK)
		return rc;
	x->out = ival(res, 0, 0);
	PQclear(res);
	return FB_OK;
}

static fb_rc
p_revoke(struct fb_store *st, const struct fb_revocation *r, int64_t now, int64_t *seq,
    struct fb_err *err)
{
	struct rev_ctx x = { .in = r, .now = now };
	fb_rc rc = with_conn(pgs(st), false, do_revoke, &x, err);

	if (rc == FB_OK)
		*seq = x.out;
	return rc;
}

static fb_rc
do_since(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct rev_ctx *x = arg;
	char a[24], b[24];
	const char *v[2] = { I64(a, x->cursor), I64(b, x->limit) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_REV_SINCE, 2, v, "read revocations", &r, err)) != FB_OK)
		return rc;
	for (int i = 0; rc == FB_OK && i < PQntuples(r); i++) {
		const char *issuer = val(r, i, 2);
		struct fb_revocation rv = {
			.seq = ival(r, i, 0),
			.kind = (enum fb_revocation_kind)ival(r, i, 1),
			.issuer = issuer != NULL && issuer[0] != '\0' ? issuer : NULL,
			.value = val(r, i, 3),
			.before = ival(r, i, 4),
			.created = ival(r, i, 5),
			.until = ival(r, i, 6),
			.reason = val(r, i, 7),
			.actor = val(r, i, 8),
			.origin = val(r, i, 9),
		};

		if (fb_store_rev_list_add(x->list, &rv) != FB_OK)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	PQclear(r);
	return rc;
}

static fb_rc
p_revocations_since(struct fb_store *st, int64_t cursor, size_t limit,
    struct fb_revocation_list *out, struct fb_err *err)
{
	struct rev_ctx x = { .cursor = cursor, .limit = limit, .list = out };

	return with_conn(pgs(st), true, do_since, &x, err);
}

static fb_rc
do_seq(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct rev_ctx *x = arg;
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, x->head ? S_REV_HEAD : S_REV_SEQ, 0, NULL,
	         "read the revocation sequence", &r, err)) != FB_OK)
		return rc;
	x->out = ival(r, 0, 0);
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_revocation_seq(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	struct rev_ctx x = { 0 };
	fb_rc rc = with_conn(pgs(st), true, do_seq, &x, err);

	if (rc == FB_OK)
		*seq = x.out;
	return rc;
}

static fb_rc
p_revocation_head(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	struct rev_ctx x = { .head = true };
	fb_rc rc = with_conn(pgs(st), true, do_seq, &x, err);

	if (rc == FB_OK)
		*seq = x.out;
	return rc;
}

static fb_rc
do_revoked(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct rev_ctx *x = arg;
	const struct fb_revocation_query *q = x->q;
	char n[24], t[24];
	const char *v[9] = { I64(n, x->now), q->session_id, q->fid, q->subject, q->idp_session,
		q->issuer, q->tenant, q->trust, q->issued_at > 0 ? I64(t, q->issued_at) : NULL };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_REVOKED, 9, v, "check revocations", &r, err)) != FB_OK)
		return rc;
	x->out = PQntuples(r) > 0 ? ival(r, 0, 0) : 0;
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_revoked(struct fb_store *st, const struct fb_revocation_query *q, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err)
{
	struct rev_ctx x = { .q = q, .now = now };
	fb_rc rc = with_conn(pgs(st), true, do_revoked, &x, err);

	if (rc == FB_OK)
		*kind = (enum fb_revocation_kind)x.out;
	return rc;
}

/* ---- purge ---- */

struct purge_ctx {
	int64_t now;
	int64_t audit_retention;
	struct fb_purge_counts *c;
};

static fb_rc
purge_one(
    struct pg_store *p, PGconn *c, enum stmt which, int64_t now, size_t *n, struct fb_err *err)
{
	char a[24];
	const char *v[1] = { I64(a, now) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, which, 1, v, "purge", &r, err)) != FB_OK)
		return rc;
	*n = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return FB_OK;
}

static fb_rc
purge_audit(
    struct pg_store *p, PGconn *c, int64_t now, int64_t retention, size_t *n, struct fb_err *err)
{
	char a[24], b[24];
	const char *v[2] = { I64(a, now), I64(b, retention) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_PURGE_AUDIT, 2, v, "purge the audit trail", &r, err)) != FB_OK)
		return rc;
	*n = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return FB_OK;
}

static fb_rc
do_purge(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct purge_ctx *x = arg;
	fb_rc rc;

	/* Each delete stands alone: a purge cut short leaves nothing half done. */
	if ((rc = purge_one(p, c, S_PURGE_SESSIONS, x->now, &x->c->sessions, err)) != FB_OK ||
	    (rc = purge_one(p, c, S_PURGE_REVOCATIONS, x->now, &x->c->revocations, err)) != FB_OK)
		return rc;
	if ((rc = purge_one(p, c, S_PURGE_ONCE, x->now, &x->c->once, err)) != FB_OK)
		return rc;
	return purge_audit(p, c, x->now, x->audit_retention, &x->c->audit, err);
}

static fb_rc
p_purge(struct fb_store *st, int64_t now, struct fb_purge_counts *c, struct fb_err *err)
{
	struct purge_ctx x = { .now = now, .audit_retention = st->audit_retention, .c = c };

	return with_conn(pgs(st), true, do_purge, &x, err);
}

/* ---- one-time use, audit, cursors ---- */

struct misc_ctx {
	enum fb_once_kind kind;
	const char *value;
	int64_t expires, now;
	bool first;
	const struct fb_audit_record *rec;
	int64_t id, after;
	size_t limit;
	struct fb_audit_list *list;
	const char *remote;
	struct fb_feed_cursor cursor;
	const char *origin;
	int64_t count;
	const char *fresh;
	char *epoch;
};

static fb_rc
do_once(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	char k[24], e[24], n[24];
	const char *v[4] = { I64(k, x->kind), x->value, I64(e, x->expires), I64(n, x->now) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_ONCE, 4, v, "consume a one-time value", &r, err)) != FB_OK)
		return rc;
	x->first = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_once_consume(struct fb_store *st, enum fb_once_kind kind, const char *value, int64_t expires,
    int64_t now, bool *first, struct fb_err *err)
{
	struct misc_ctx x = { .kind = kind, .value = value, .expires = expires, .now = now };
	/* Never retried: a commit lost with its connection would make a second try "not first". */
	fb_rc rc = with_conn(pgs(st), false, do_once, &x, err);

	if (rc == FB_OK)
		*first = x.first;
	return rc;
}

static fb_rc
do_audit_append(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	const struct fb_audit_record *a = x->rec;
	char t[24], k[24];
	const char *v[11] = { I64(t, a->time), I64(k, a->kind), a->correlation, a->tenant, a->fid,
		a->provider, a->audience, a->jti, a->rule, a->actor, a->detail };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_AUDIT_APPEND, 11, v, "append to the audit trail", &r, err)) !=
	    FB_OK)
		return rc;
	x->id = ival(r, 0, 0);
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_audit_append(
    struct fb_store *st, const struct fb_audit_record *rec, int64_t *id, struct fb_err *err)
{
	struct misc_ctx x = { .rec = rec };
	fb_rc rc = with_conn(pgs(st), false, do_audit_append, &x, err);

	if (rc == FB_OK)
		*id = x.id;
	return rc;
}

static fb_rc
do_audit_list(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	char a[24], b[24];
	const char *v[2] = { I64(a, x->after), I64(b, x->limit) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_AUDIT_LIST, 2, v, "read the audit trail", &r, err)) != FB_OK)
		return rc;
	for (int i = 0; rc == FB_OK && i < PQntuples(r); i++) {
		struct fb_audit_record rec = {
			.id = ival(r, i, 0),
			.time = ival(r, i, 1),
			.kind = (enum fb_audit_kind)ival(r, i, 2),
			.correlation = val(r, i, 3),
			.tenant = val(r, i, 4),
			.fid = val(r, i, 5),
			.provider = val(r, i, 6),
			.audience = val(r, i, 7),
			.jti = val(r, i, 8),
			.rule = val(r, i, 9),
			.actor = val(r, i, 10),
			.detail = val(r, i, 11),
		};

		if (fb_store_audit_list_add(x->list, &rec) != FB_OK)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	PQclear(r);
	return rc;
}

static fb_rc
p_audit_list(
    struct fb_store *st, int64_t after, size_t limit, struct fb_audit_list *out, struct fb_err *err)
{
	struct misc_ctx x = { .after = after, .limit = limit, .list = out };

	return with_conn(pgs(st), true, do_audit_list, &x, err);
}

static fb_rc
do_cursor_get(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	const char *v[1] = { x->remote }, *e;
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_CURSOR_GET, 1, v, "read a feed cursor", &r, err)) != FB_OK)
		return rc;
	x->cursor = (struct fb_feed_cursor){ 0 };
	if (PQntuples(r) > 0) {
		x->cursor.seq = ival(r, 0, 0);
		x->cursor.iat = ival(r, 0, 1);
		e = val(r, 0, 2);
		(void)snprintf(x->cursor.epoch, sizeof(x->cursor.epoch), "%s", e != NULL ? e : "");
		/* Longer than an identity: marked, so that the front end refuses it. */
		if (e != NULL && strlen(e) > FB_STORE_EPOCH_LEN)
			x->cursor.epoch[0] = 'x';
	}
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_cursor_get(
    struct fb_store *st, const char *remote, struct fb_feed_cursor *cursor, struct fb_err *err)
{
	struct misc_ctx x = { .remote = remote };
	fb_rc rc = with_conn(pgs(st), true, do_cursor_get, &x, err);

	if (rc == FB_OK)
		*cursor = x.cursor;
	return rc;
}

static fb_rc
do_cursor_set(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	char a[24], b[24];
	const char *v[4] = { x->remote, I64(a, x->cursor.seq), I64(b, x->cursor.iat),
		x->cursor.epoch };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_CURSOR_SET, 4, v, "store a feed cursor", &r, err)) == FB_OK)
		PQclear(r);
	return rc;
}

static fb_rc
p_cursor_set(struct fb_store *st, const char *remote, const struct fb_feed_cursor *cursor,
    struct fb_err *err)
{
	struct misc_ctx x = { .remote = remote, .cursor = *cursor };

	return with_conn(pgs(st), true, do_cursor_set, &x, err);
}

static fb_rc
do_revocation_count(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	char a[24];
	const char *v[2] = { x->origin, I64(a, x->now) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_REV_COUNT, 2, v, "count a remote's revocations", &r, err)) !=
	    FB_OK)
		return rc;
	x->count = PQntuples(r) > 0 ? ival(r, 0, 0) : 0;
	PQclear(r);
	return FB_OK;
}

static fb_rc
p_revocation_count(
    struct fb_store *st, const char *origin, int64_t now, int64_t *n, struct fb_err *err)
{
	struct misc_ctx x = { .origin = origin, .now = now };
	fb_rc rc = with_conn(pgs(st), true, do_revocation_count, &x, err);

	if (rc == FB_OK)
		*n = x.count;
	return rc;
}

static fb_rc
do_epoch(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	struct misc_ctx *x = arg;
	const char *v[1] = { x->fresh }, *e;
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_EPOCH, 1, v, "read the store's identity", &r, err)) != FB_OK)
		return rc;
	e = PQntuples(r) > 0 ? val(r, 0, 0) : NULL;
	if (e != NULL && strlen(e) == FB_STORE_EPOCH_LEN)
		memcpy(x->epoch, e, FB_STORE_EPOCH_LEN + 1);
	else
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "PostgreSQL %s: the store's identity is damaged", p->server);
	PQclear(r);
	return rc;
}

static fb_rc
p_epoch(
    struct fb_store *st, const char *fresh, char out[FB_STORE_EPOCH_LEN + 1], struct fb_err *err)
{
	struct misc_ctx x = { .fresh = fresh, .epoch = out };

	return with_conn(pgs(st), true, do_epoch, &x, err);
}

/* ---- watch: LISTEN on a connection of its own ---- */

static fb_rc
listen_connect(struct pg_store *p, struct fb_err *err)
{
	char why[256];
	PGresult *r = NULL;
	PGconn *c;
	fb_rc rc = FB_OK;

	if (mono_ms() < p->listen_next_ms)
		return FB_ERR_SET(
		    err, FB_ERR_IO, "PostgreSQL %s: waiting to listen again", p->server);
	if ((c = connect_db(p, why, sizeof(why))) == NULL) {
		rc =
		    FB_ERR_SET(err, FB_ERR_IO, "PostgreSQL %s: cannot connect: %s", p->server, why);
	} else {
		r = PQexec(c, "LISTEN " CHANNEL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = pg_fail(p, c, r, "listen", err);
		PQclear(r);
	}
	if (rc != FB_OK) {
		if (c != NULL)
			PQfinish(c);
		p->listen_backoff_ms =
		    p->listen_backoff_ms == 0 ? BACKOFF_FIRST_MS : p->listen_backoff_ms * 2;
		if (p->listen_backoff_ms > BACKOFF_MAX_MS)
			p->listen_backoff_ms = BACKOFF_MAX_MS;
		p->listen_next_ms = mono_ms() + p->listen_backoff_ms;
		return rc;
	}
	p->listen_backoff_ms = 0;
	p->listen = c;
	return FB_OK;
}

/*
 * Waits for a NOTIFY, the store's wake_fd or the timeout. After a
 * (re)connect it returns at once: the caller then catches up from its last
 * sequence number, so nothing sent while it was away is missed.
 */
static fb_rc
p_watch_wait(struct fb_store *st, int timeout_ms, struct fb_err *err)
{
	struct pg_store *p = pgs(st);
	struct pollfd fds[2];
	PGnotify *n;

	if (p->listen == NULL)
		return listen_connect(p, err);
	fds[0] = (struct pollfd){ .fd = PQsocket(p->listen), .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = st->wake_fd, .events = POLLIN };
	if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR)
		return FB_ERR_SET(err, FB_ERR_IO, "poll: %s", strerror(errno));
	if (fds[0].revents != 0 &&
	    (!PQconsumeInput(p->listen) || PQstatus(p->listen) != CONNECTION_OK)) {
		fb_rc rc = pg_fail(p, p->listen, NULL, "listen", err);

		PQfinish(p->listen);
		p->listen = NULL;
		return rc;
	}
	while ((n = PQnotifies(p->listen)) != NULL)
		PQfreemem(n);
	return FB_OK;
}

/* ---- open and close ---- */

static void
p_close(struct fb_store *st)
{
	struct pg_store *p = pgs(st);

	for (unsigned i = 0; p->pool != NULL && i < p->npool; i++)
		if (p->pool[i].c != NULL)
			PQfinish(p->pool[i].c);
	if (p->listen != NULL)
		PQfinish(p->listen);
	free(p->pool);
	free(p->conninfo);
	if (p->password != NULL) {
		fb_cleanse(p->password, strlen(p->password));
		free(p->password);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

static fb_rc
simple(struct pg_store *p, PGconn *c, const char *sql, const char *what, PGresult **res,
    struct fb_err *err)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	fb_rc rc = FB_OK;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = pg_fail(p, c, r, what, err);
	if (rc == FB_OK && res != NULL)
		*res = r;
	else
		PQclear(r);
	return rc;
}

/*
 * Creates or upgrades the schema in one transaction under an advisory lock,
 * so two nodes starting together do not both run a migration.
 */
static fb_rc
do_migrate(struct pg_store *p, PGconn *c, void *arg, struct fb_err *err)
{
	PGresult *r = NULL;
	int version;
	fb_rc rc;

	(void)arg;
	if ((rc = simple(p, c, "BEGIN", "begin the schema check", NULL, err)) != FB_OK)
		return rc;
	if ((rc = simple(p, c, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", "lock the schema",
	         NULL, err)) != FB_OK ||
	    (rc = simple(p, c,
	         "SET LOCAL client_min_messages = warning;"
	         "CREATE TABLE IF NOT EXISTS fedbridge_schema (version integer NOT NULL)",
	         "create the schema table", NULL, err)) != FB_OK ||
	    (rc = simple(p, c, "SELECT coalesce(max(version), 0) FROM fedbridge_schema",
	         "read the schema version", &r, err)) != FB_OK)
		goto fail;
	version = (int)ival(r, 0, 0);
	PQclear(r);
	if (version > SCHEMA_VERSION) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG,
		    "PostgreSQL %s has fedbridge schema version %d, newer than this fedbridge (%d)",
		    p->server, version, SCHEMA_VERSION);
		goto fail;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char ins[80];

		(void)snprintf(
		    ins, sizeof(ins), "INSERT INTO fedbridge_schema VALUES (%d)", version + 1);
		if ((rc = simple(p, c, migrations[version], "migrate the schema", NULL, err)) !=
		        FB_OK ||
		    (rc = simple(p, c, ins, "record the schema version", NULL, err)) != FB_OK)
			goto fail;
	}
	return simple(p, c, "COMMIT", "commit the schema", NULL, err);
fail:
	(void)simple(p, c, "ROLLBACK", "rollback", NULL, NULL);
	return rc;
}

/* What the audit trigger holds deletes to, from now on (the last node opened sets it). */
static fb_rc
record_retention(struct pg_store *p, PGconn *c, int64_t retention, struct fb_err *err)
{
	char a[24];
	const char *v[1] = { I64(a, retention) };
	PGresult *r = NULL;
	fb_rc rc;

	if ((rc = exec_stmt(p, c, S_RETENTION_SET, 1, v, "record the audit retention", &r, err)) ==
	    FB_OK)
		PQclear(r);
	return rc;
}

static const struct fb_store_ops pg_ops = {
	.name = "postgresql",
	.close = p_close,
	.session_put = p_session_put,
	.session_get = p_session_get,
	.session_touch = p_session_touch,
	.session_delete = p_session_delete,
	.session_list = p_session_list,
	.purge = p_purge,
	.revoke = p_revoke,
	.revocations_since = p_revocations_since,
	.revocation_seq = p_revocation_seq,
	.revocation_head = p_revocation_head,
	.revoked = p_revoked,
	.once_consume = p_once_consume,
	.audit_append = p_audit_append,
	.audit_list = p_audit_list,
	.cursor_get = p_cursor_get,
	.cursor_set = p_cursor_set,
	.revocation_count = p_revocation_count,
	.epoch = p_epoch,
	.watch_wait = p_watch_wait,
	/* NOTIFY wakes the watch; this only bounds the wait if one were ever lost. */
	.watch_poll_ms = 1000,
};

fb_rc
fb_store_pg_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err)
{
	struct pg_store *p = calloc(1, sizeof(*p));
	unsigned n = opts->pool_size == 0 ? DEFAULT_POOL : opts->pool_size;
	char *errmsg = NULL, why[256];
	PQconninfoOption *o;
	PGconn *c;
	fb_rc rc;

	if (p == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	p->base.ops = &pg_ops;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (n > MAX_POOL) {
		p_close(&p->base);
		return FB_ERR_SET(err, FB_ERR_INVALID, "pool size %u is more than %d", n, MAX_POOL);
	}
	p->npool = n;
	if ((p->pool = calloc(n, sizeof(*p->pool))) == NULL ||
	    !fb_store_dup(&p->conninfo, opts->location) ||
	    !fb_store_dup(&p->password, opts->password)) {
		p_close(&p->base);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	/* A malformed conninfo is not echoed: it may hold a password. */
	if ((o = PQconninfoParse(p->conninfo, &errmsg)) == NULL) {
		PQfreemem(errmsg);
		p_close(&p->base);
		return FB_ERR_SET(err, FB_ERR_CONFIG, "the PostgreSQL store URL is not valid");
	}
	PQconninfoFree(o);
	describe(p);
	/* The schema first, on a connection of its own: statements are prepared after it. */
	if ((c = connect_db(p, why, sizeof(why))) == NULL) {
		rc =
		    FB_ERR_SET(err, FB_ERR_IO, "PostgreSQL %s: cannot connect: %s", p->server, why);
		p_close(&p->base);
		return rc;
	}
	if ((rc = do_migrate(p, c, NULL, err)) != FB_OK || (rc = prepare_all(p, c, err)) != FB_OK ||
	    (rc = record_retention(p, c, opts->audit_retention, err)) != FB_OK) {
		PQfinish(c);
		p_close(&p->base);
		return rc;
	}
	p->pool[0].c = c;
	*out = &p->base;
	return FB_OK;
}
