/*
 * The embedded backend: one SQLite file, <dir>/fedbridge.db, in WAL mode
 * with synchronous=FULL, so a call that returned has its commit on disk
 * (WAL fsync) and survives kill -9 and a power cut. Why SQLite and not
 * LMDB: docs/dependencies.md.
 *
 * One connection behind a mutex serves every thread of the process. SQLite
 * lets one writer in at a time anyway and most calls write (touch, consume,
 * revoke, audit); a connection per thread would add SQLITE_BUSY between
 * our own threads and a statement cache per thread for nothing. Other
 * processes on the same file (the CLI, a second bridge) wait through
 * busy_timeout.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_NAME "fedbridge.db"
#define BUSY_TIMEOUT_MS 5000

/* Each entry upgrades the schema from version i to i + 1; never edit a shipped one. */
static const char *const migrations[] = {
	"CREATE TABLE sessions ("
	" id TEXT PRIMARY KEY, fid TEXT NOT NULL, tenant TEXT NOT NULL,"
	" provider TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL,"
	" idp_session TEXT, acr TEXT, amr TEXT, attrs TEXT,"
	" created INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires INTEGER NOT NULL,"
	" idle_timeout INTEGER NOT NULL,"
	/*
	 * ends: when it stops being usable (absolute or idle), kept by put and
	 * touch. Not indexed: touch, the most frequent write, then changes no
	 * index, and the background purge can afford a scan.
	 */
	" ends INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX sessions_tenant ON sessions (tenant, id);"
	"CREATE INDEX sessions_fid ON sessions (fid, id);"
	"CREATE INDEX sessions_subject ON sessions (subject, issuer);"
	"CREATE INDEX sessions_idp_session ON sessions (idp_session, issuer);"
	"CREATE TABLE revocations ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
	" issuer TEXT NOT NULL, value TEXT NOT NULL, before INTEGER NOT NULL,"
	" created INTEGER NOT NULL, until INTEGER NOT NULL,"
	" reason TEXT, actor TEXT, origin TEXT);"
	"CREATE INDEX revocations_key ON revocations (kind, value, issuer);"
	"CREATE INDEX revocations_until ON revocations (until);"
	"CREATE TABLE once_used ("
	" kind INTEGER NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL,"
	" PRIMARY KEY (kind, value)) WITHOUT ROWID;"
	"CREATE INDEX once_used_expires ON once_used (expires);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, kind INTEGER NOT NULL,"
	" correlation TEXT, tenant TEXT, fid TEXT, provider TEXT, audience TEXT, jti TEXT,"
	" rule TEXT, actor TEXT, detail TEXT);"
	/* Append-only: the trail cannot be edited through the store's own file either. */
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
	"CREATE TABLE feed_cursors ("
	" remote TEXT PRIMARY KEY, cursor INTEGER NOT NULL) WITHOUT ROWID;",
	/* The store's identity, and with each feed cursor the remote store it counts in. */
	"CREATE TABLE store_identity (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL);"
	"ALTER TABLE feed_cursors ADD COLUMN epoch TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE feed_cursors ADD COLUMN iat INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX revocations_origin ON revocations (origin, until);",
	/*
	 * Audit retention. The store writes the retention it was opened with
	 * into audit_retention (one row); the trigger lets a DELETE through
	 * only for a record older than that by SQLite's clock, and UPDATE stays
	 * refused. Sound for what it guards against: the application's own
	 * mistakes and anyone using the store through the bridge, who can lower
	 * the retention to one day at most (the CHECK; 86400 is
	 * FB_AUDIT_RETENTION_MIN, frozen here like the rest of this entry). Not
	 * against whoever can write the file: they can drop triggers too, which
	 * only file permissions prevent. A missing or odd row makes the
	 * comparison NULL, which refuses every DELETE.
	 */
	"CREATE TABLE audit_retention (id INTEGER PRIMARY KEY CHECK (id = 1),"
	" seconds INTEGER NOT NULL CHECK (typeof(seconds) = 'integer' AND seconds >= 86400));"
	"CREATE INDEX audit_time ON audit (time);"
	"DROP TRIGGER audit_no_delete;"
	"CREATE TRIGGER audit_no_delete_retained BEFORE DELETE ON audit"
	" WHEN NOT coalesce(OLD.time < CAST(strftime('%s', 'now') AS INTEGER)"
	"  - (SELECT seconds FROM audit_retention WHERE id = 1), 0)"
	" BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only within its retention'); END;",
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
	S_EPOCH_INIT,
	S_EPOCH_GET,
	S_PURGE_SESSIONS,
	S_PURGE_REVOCATIONS,
	S_PURGE_ONCE,
	S_PURGE_AUDIT,
	S_RETENTION_SET,
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_SESSION_PUT] = "INSERT OR REPLACE INTO sessions (" STORE_SESSION_COLS ", ends) VALUES "
	                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	                  " CASE WHEN ?14 > 0 THEN min(?13, ?12 + ?14) ELSE ?13 END)",
	[S_SESSION_GET] = "SELECT " STORE_SESSION_COLS " FROM sessions WHERE id = ?1",
	[S_SESSION_TOUCH] =
	    "UPDATE sessions SET last_seen = max(last_seen, ?2),"
	    " ends = CASE WHEN idle_timeout > 0"
	    "  THEN min(expires, max(last_seen, ?2) + idle_timeout) ELSE expires END"
	    " WHERE id = ?1 AND ends > ?2 RETURNING " STORE_SESSION_COLS,
	[S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
	[S_REVOKE] = "INSERT INTO revocations (kind, issuer, value, before, created, until, reason,"
	             " actor, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_REV_SINCE] = "SELECT seq, kind, issuer, value, before, created, until, reason, actor,"
	                " origin FROM revocations WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[S_REV_SEQ] = "SELECT coalesce(max(seq), 0) FROM revocations",
	/* The high-water mark, not max(seq): purging expired rows does not lower it. */
	[S_REV_HEAD] =
	    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0)",
	/* Each branch is an equality on the (kind, value, issuer) index. */
	[S_REVOKED] = "SELECT kind FROM revocations WHERE until > ?1 AND ("
	              " (kind = 1 AND value = ?2 AND issuer = '') OR"
	              " (kind = 2 AND value = ?3 AND issuer = '') OR"
	              " (kind = 3 AND value = ?4 AND issuer = ?6) OR"
	              " (kind = 4 AND value = ?5 AND issuer = ?6) OR"
	              " (kind = 5 AND value = ?7 AND issuer = '') OR"
	              " (kind = 6 AND value = ?8 AND issuer = '') OR"
	              " (kind = 7 AND value = ?7 AND issuer = '' AND before > ?9) OR"
	              " (kind = 7 AND value = '*' AND issuer = '' AND before > ?9))"
	              " ORDER BY kind LIMIT 1",
	/* One statement: a new value, or one past its expiry, is consumed; else nothing changes. */
	[S_ONCE] = "INSERT INTO once_used (kind, value, expires) VALUES (?1, ?2, ?3)"
	           " ON CONFLICT (kind, value) DO UPDATE SET expires = excluded.expires"
	           " WHERE once_used.expires <= ?4",
	[S_AUDIT_APPEND] = "INSERT INTO audit (time, kind, correlation, tenant, fid, provider,"
	                   " audience, jti, rule, actor, detail) VALUES"
	                   " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[S_AUDIT_LIST] = "SELECT id, time, kind, correlation, tenant, fid, provider, audience, jti,"
	                 " rule, actor, detail FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
	[S_CURSOR_GET] = "SELECT cursor, iat, epoch FROM feed_cursors WHERE remote = ?1",
	[S_CURSOR_SET] = "INSERT OR REPLACE INTO feed_cursors (remote, cursor, iat, epoch)"
	                 " VALUES (?1, ?2, ?3, ?4)",
	[S_REV_COUNT] = "SELECT count(*) FROM revocations WHERE origin = ?1 AND until > ?2",
	[S_EPOCH_INIT] = "INSERT OR IGNORE INTO store_identity (id, epoch) VALUES (1, ?1)",
	[S_EPOCH_GET] = "SELECT epoch FROM store_identity WHERE id = 1",
	[S_PURGE_SESSIONS] = "DELETE FROM sessions WHERE ends <= ?1",
	[S_PURGE_REVOCATIONS] = "DELETE FROM revocations WHERE until <= ?1",
	[S_PURGE_ONCE] = "DELETE FROM once_used WHERE expires <= ?1",
	/*
	 * Older than the retention by the earlier of now and SQLite's clock, and
	 * the longer of ours and the file's (another process may have opened it
	 * with a longer one): the trigger judges the same way, so the purge
	 * never asks it for a record it refuses.
	 */
	[S_PURGE_AUDIT] =
	    "DELETE FROM audit WHERE time < min(?1, CAST(strftime('%s', 'now') AS INTEGER))"
	    " - max(?2, coalesce((SELECT seconds FROM audit_retention WHERE id = 1), ?2))",
	[S_RETENTION_SET] = "INSERT INTO audit_retention (id, seconds) VALUES (1, ?1)"
	                    " ON CONFLICT (id) DO UPDATE SET seconds = excluded.seconds",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

struct sq_store {
	struct fb_store base;
	pthread_mutex_t lock;
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	char path[4096];
};

static struct sq_store *
sq(struct fb_store *st)
{
	return (struct sq_store *)st;
}

/* The error of the last failed call on db, named after the file and what was being done. */
static fb_rc
sq_fail(struct sq_store *s, int code, const char *what, struct fb_err *err)
{
	const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(code);

	switch (code & 0xff) {
	case SQLITE_NOMEM:
		return FB_ERR_SET(
		    err, FB_ERR_NOMEM, "store file %s: %s: out of memory", s->path, what);
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return FB_ERR_SET(
		    err, FB_ERR_IO, "corrupt store file %s: %s: %s", s->path, what, msg);
	case SQLITE_FULL:
		return FB_ERR_SET(
		    err, FB_ERR_IO, "store file %s: %s: the disk is full (%s)", s->path, what, msg);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return FB_ERR_SET(err, FB_ERR_IO,
		    "store file %s: %s: still locked by another process after %d ms (%s)", s->path,
		    what, BUSY_TIMEOUT_MS, msg);
	default:
		return FB_ERR_SET(err, FB_ERR_IO, "store file %s: %s: %s", s->path, what, msg);
	}
}

static sqlite3_stmt *
stmt(struct sq_store *s, enum stmt which)
{
	sqlite3_stmt *q = s->stmt[which];

	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return q;
}

static void
bind_text(sqlite3_stmt *q, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(q, i);
	else
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static fb_rc
run(struct sq_store *s, sqlite3_stmt *q, const char *what, struct fb_err *err)
{
	int rc = sqlite3_step(q);
	fb_rc r = FB_OK;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = sq_fail(s, rc, what, err);
	sqlite3_reset(q);
	return r;
}

static fb_rc
tx(struct sq_store *s, enum stmt which, const char *what, struct fb_err *err)
{
	return run(s, stmt(s, which), what, err);
}

static void
rollback(struct sq_store *s)
{
	/* Only needed when a transaction is open; it may already be rolled back. */
	if (!sqlite3_get_autocommit(s->db))
		(void)run(s, stmt(s, S_ROLLBACK), "rollback", NULL);
}

static const char *
col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

/* A session from the STORE_SESSION_COLS of the current row. */
static fb_rc
row_session(sqlite3_stmt *q, struct fb_session *out)
{
	struct fb_session s = { 0 };
	const char *id = col_text(q, 0);

	if (id == NULL || strlen(id) != FB_SESSION_ID_LEN)
		return FB_ERR_INTERNAL;
	memcpy(s.id, id, FB_SESSION_ID_LEN + 1);
	s.fid = (char *)col_text(q, 1);
	s.tenant = (char *)col_text(q, 2);
	s.provider = (char *)col_text(q, 3);
	s.issuer = (char *)col_text(q, 4);
	s.subject = (char *)col_text(q, 5);
	s.idp_session = (char *)col_text(q, 6);
	s.acr = (char *)col_text(q, 7);
	s.amr = (char *)col_text(q, 8);
	s.attrs = (char *)col_text(q, 9);
	s.created = sqlite3_column_int64(q, 10);
	s.last_seen = sqlite3_column_int64(q, 11);
	s.expires = sqlite3_column_int64(q, 12);
	s.idle_timeout = sqlite3_column_int64(q, 13);
	return fb_store_session_copy(out, &s);
}

/* ---- sessions ---- */

static fb_rc
s_session_put(struct fb_store *st, const struct fb_session *x, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_SESSION_PUT);
	bind_text(q, 1, x->id);
	bind_text(q, 2, x->fid);
	bind_text(q, 3, x->tenant);
	bind_text(q, 4, x->provider);
	bind_text(q, 5, x->issuer);
	bind_text(q, 6, x->subject);
	bind_text(q, 7, x->idp_session);
	bind_text(q, 8, x->acr);
	bind_text(q, 9, x->amr);
	bind_text(q, 10, x->attrs);
	sqlite3_bind_int64(q, 11, x->created);
	sqlite3_bind_int64(q, 12, x->last_seen);
	sqlite3_bind_int64(q, 13, x->expires);
	sqlite3_bind_int64(q, 14, x->idle_timeout);
	rc = run(s, q, "store a session", err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Steps q (already bound) and reads one session row into out. */
static fb_rc
one_session(struct sq_store *s, sqlite3_stmt *q, const char *id, const char *what,
    struct fb_session *out, struct fb_err *err)
{
	int rc = sqlite3_step(q);
	fb_rc r;

	if (rc == SQLITE_ROW)
		r = out != NULL && row_session(q, out) != FB_OK
		    ? FB_ERR_SET(
		          err, FB_ERR_NOMEM, "store file %s: %s: out of memory", s->path, what)
		    : FB_OK;
	else if (rc == SQLITE_DONE)
		r = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s (or it has expired)", id);
	else
		r = sq_fail(s, rc, what, err);
	sqlite3_reset(q);
	return r;
}

static fb_rc
s_session_get(struct fb_store *st, const char *id, struct fb_session *out, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_SESSION_GET);
	bind_text(q, 1, id);
	rc = one_session(s, q, id, "read a session", out, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_session_touch(
    struct fb_store *st, const char *id, int64_t now, struct fb_session *out, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_SESSION_TOUCH);
	bind_text(q, 1, id);
	sqlite3_bind_int64(q, 2, now);
	rc = one_session(s, q, id, "touch a session", out, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_session_delete(struct fb_store *st, const char *id, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_SESSION_DELETE);
	bind_text(q, 1, id);
	if ((rc = run(s, q, "delete a session", err)) == FB_OK && sqlite3_changes(s->db) == 0)
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s", id);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* A filtered page of sessions: rare (admin listing), so its SQL is built per call. */
static fb_rc
s_session_list(struct fb_store *st, const struct fb_session_filter *f, struct fb_session **v,
    size_t *n, struct fb_err *err)
{
	static const char *const cols[] = { "tenant", "fid", "issuer", "subject", "idp_session",
		NULL };
	const char *vals[] = { f->tenant, f->fid, f->issuer, f->subject, f->idp_session, f->after };
	struct sq_store *s = sq(st);
	struct fb_session *out = NULL;
	char sql[512];
	sqlite3_stmt *q = NULL;
	size_t len, k = 0;
	int rc;
	fb_rc r = FB_OK;

	len = (size_t)snprintf(
	    sql, sizeof(sql), "SELECT " STORE_SESSION_COLS " FROM sessions WHERE 1");
	for (int i = 0; i < 6; i++)
		if (vals[i] != NULL)
			len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND %s %s ?%d",
			    cols[i] != NULL ? cols[i] : "id", cols[i] != NULL ? "=" : ">", i + 1);
	(void)snprintf(sql + len, sizeof(sql) - len, " ORDER BY id LIMIT %zu", f->limit);
	if ((out = calloc(f->limit, sizeof(*out))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&s->lock);
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL)) != SQLITE_OK) {
		r = sq_fail(s, rc, "list sessions", err);
		goto out;
	}
	for (int i = 0; i < 6; i++)
		if (vals[i] != NULL)
			bind_text(q, i + 1, vals[i]);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && k < f->limit) {
		if (row_session(q, &out[k]) != FB_OK) {
			r = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			goto out;
		}
		k++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = sq_fail(s, rc, "list sessions", err);
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->lock);
	if (r != FB_OK || k == 0) {
		fb_session_array_free(out, k);
		out = NULL;
		k = r != FB_OK ? 0 : k;
	}
	if (r == FB_OK) {
		*v = out;
		*n = k;
	}
	return r;
}

/* ---- revocations ---- */

static fb_rc
s_revoke(struct fb_store *st, const struct fb_revocation *r, int64_t now, int64_t *seq,
    struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_REVOKE);
	sqlite3_bind_int(q, 1, (int)r->kind);
	bind_text(q, 2, r->issuer != NULL ? r->issuer : "");
	bind_text(q, 3, r->value);
	sqlite3_bind_int64(q, 4, r->before);
	sqlite3_bind_int64(q, 5, now);
	sqlite3_bind_int64(q, 6, r->until);
	bind_text(q, 7, r->reason);
	bind_text(q, 8, r->actor);
	bind_text(q, 9, r->origin);
	/* AUTOINCREMENT and one writer at a time: seq grows in commit order, never reused. */
	if ((rc = run(s, q, "record a revocation", err)) == FB_OK)
		*seq = sqlite3_last_insert_rowid(s->db);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_revocations_since(struct fb_store *st, int64_t cursor, size_t limit,
    struct fb_revocation_list *out, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	struct fb_revocation r;
	sqlite3_stmt *q;
	fb_rc rc = FB_OK;
	int src;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_REV_SINCE);
	sqlite3_bind_int64(q, 1, cursor);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
	while ((src = sqlite3_step(q)) == SQLITE_ROW) {
		const char *issuer = col_text(q, 2);

		r = (struct fb_revocation){
			.seq = sqlite3_column_int64(q, 0),
			.kind = (enum fb_revocation_kind)sqlite3_column_int(q, 1),
			.issuer = issuer != NULL && issuer[0] != '\0' ? issuer : NULL,
			.value = col_text(q, 3),
			.before = sqlite3_column_int64(q, 4),
			.created = sqlite3_column_int64(q, 5),
			.until = sqlite3_column_int64(q, 6),
			.reason = col_text(q, 7),
			.actor = col_text(q, 8),
			.origin = col_text(q, 9),
		};
		if (fb_store_rev_list_add(out, &r) != FB_OK) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (rc == FB_OK && src != SQLITE_DONE)
		rc = sq_fail(s, src, "read revocations", err);
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Runs a one-integer query; *v is 0 when there is no row. */
static fb_rc
scalar(struct sq_store *s, sqlite3_stmt *q, const char *what, int64_t *v, struct fb_err *err)
{
	int rc = sqlite3_step(q);
	fb_rc r = FB_OK;

	*v = 0;
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(q, 0);
	else if (rc != SQLITE_DONE)
		r = sq_fail(s, rc, what, err);
	sqlite3_reset(q);
	return r;
}

static fb_rc
s_revocation_seq(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	rc = scalar(s, stmt(s, S_REV_SEQ), "read the revocation sequence", seq, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_revocation_head(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	rc = scalar(s, stmt(s, S_REV_HEAD), "read the revocation sequence", seq, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_revoked(struct fb_store *st, const struct fb_revocation_query *x, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	int64_t k = 0;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_REVOKED);
	sqlite3_bind_int64(q, 1, now);
	bind_text(q, 2, x->session_id);
	bind_text(q, 3, x->fid);
	bind_text(q, 4, x->subject);
	bind_text(q, 5, x->idp_session);
	bind_text(q, 6, x->issuer);
	bind_text(q, 7, x->tenant);
	bind_text(q, 8, x->trust);
	if (x->issued_at > 0)
		sqlite3_bind_int64(q, 9, x->issued_at);
	rc = scalar(s, q, "check revocations", &k, err);
	pthread_mutex_unlock(&s->lock);
	*kind = (enum fb_revocation_kind)k;
	return rc;
}

/* ---- purge ---- */

static fb_rc
purge_one(struct sq_store *s, enum stmt which, int64_t now, size_t *n, struct fb_err *err)
{
	sqlite3_stmt *q = stmt(s, which);
	fb_rc rc;

	sqlite3_bind_int64(q, 1, now);
	if ((rc = run(s, q, "purge", err)) == FB_OK)
		*n = (size_t)sqlite3_changes(s->db);
	return rc;
}

static fb_rc
purge_audit(struct sq_store *s, int64_t now, int64_t retention, size_t *n, struct fb_err *err)
{
	sqlite3_stmt *q = stmt(s, S_PURGE_AUDIT);
	fb_rc rc;

	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, retention);
	if ((rc = run(s, q, "purge the audit trail", err)) == FB_OK)
		*n = (size_t)sqlite3_changes(s->db);
	return rc;
}

static fb_rc
s_purge(struct fb_store *st, int64_t now, struct fb_purge_counts *c, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	if ((rc = tx(s, S_BEGIN, "begin a purge", err)) == FB_OK &&
	    (rc = purge_one(s, S_PURGE_SESSIONS, now, &c->sessions, err)) == FB_OK &&
	    (rc = purge_one(s, S_PURGE_REVOCATIONS, now, &c->revocations, err)) == FB_OK &&
	    (rc = purge_one(s, S_PURGE_ONCE, now, &c->once, err)) == FB_OK &&
	    (rc = purge_audit(s, now, st->audit_retention, &c->audit, err)) == FB_OK)
		rc = tx(s, S_COMMIT, "commit a purge", err);
	if (rc != FB_OK)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- one-time use, audit, cursors ---- */

static fb_rc
s_once_consume(struct fb_store *st, enum fb_once_kind kind, const char *value, int64_t expires,
    int64_t now, bool *first, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_ONCE);
	sqlite3_bind_int(q, 1, (int)kind);
	bind_text(q, 2, value);
	sqlite3_bind_int64(q, 3, expires);
	sqlite3_bind_int64(q, 4, now);
	/* The statement is its own transaction; changes() is read under the same mutex. */
	if ((rc = run(s, q, "consume a one-time value", err)) == FB_OK)
		*first = sqlite3_changes(s->db) == 1;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_audit_append(
    struct fb_store *st, const struct fb_audit_record *r, int64_t *id, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_AUDIT_APPEND);
	sqlite3_bind_int64(q, 1, r->time);
	sqlite3_bind_int(q, 2, (int)r->kind);
	bind_text(q, 3, r->correlation);
	bind_text(q, 4, r->tenant);
	bind_text(q, 5, r->fid);
	bind_text(q, 6, r->provider);
	bind_text(q, 7, r->audience);
	bind_text(q, 8, r->jti);
	bind_text(q, 9, r->rule);
	bind_text(q, 10, r->actor);
	bind_text(q, 11, r->detail);
	if ((rc = run(s, q, "append to the audit trail", err)) == FB_OK)
		*id = sqlite3_last_insert_rowid(s->db);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_audit_list(
    struct fb_store *st, int64_t after, size_t limit, struct fb_audit_list *out, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	struct fb_audit_record r;
	sqlite3_stmt *q;
	fb_rc rc = FB_OK;
	int src;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_AUDIT_LIST);
	sqlite3_bind_int64(q, 1, after);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)limit);
	while ((src = sqlite3_step(q)) == SQLITE_ROW) {
		r = (struct fb_audit_record){
			.id = sqlite3_column_int64(q, 0),
			.time = sqlite3_column_int64(q, 1),
			.kind = (enum fb_audit_kind)sqlite3_column_int(q, 2),
			.correlation = col_text(q, 3),
			.tenant = col_text(q, 4),
			.fid = col_text(q, 5),
			.provider = col_text(q, 6),
			.audience = col_text(q, 7),
			.jti = col_text(q, 8),
			.rule = col_text(q, 9),
			.actor = col_text(q, 10),
			.detail = col_text(q, 11),
		};
		if (fb_store_audit_list_add(out, &r) != FB_OK) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (rc == FB_OK && src != SQLITE_DONE)
		rc = sq_fail(s, src, "read the audit trail", err);
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_cursor_get(
    struct fb_store *st, const char *remote, struct fb_feed_cursor *cursor, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	const char *e;
	fb_rc rc = FB_OK;
	int src;

	*cursor = (struct fb_feed_cursor){ 0 };
	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_CURSOR_GET);
	bind_text(q, 1, remote);
	if ((src = sqlite3_step(q)) == SQLITE_ROW) {
		cursor->seq = sqlite3_column_int64(q, 0);
		cursor->iat = sqlite3_column_int64(q, 1);
		e = col_text(q, 2);
		/* Longer than an identity: kept as is, so that the front end refuses it. */
		(void)snprintf(cursor->epoch, sizeof(cursor->epoch), "%s", e != NULL ? e : "");
		if (e != NULL && strlen(e) > FB_STORE_EPOCH_LEN)
			cursor->epoch[0] = 'x';
	} else if (src != SQLITE_DONE) {
		rc = sq_fail(s, src, "read a feed cursor", err);
	}
	sqlite3_reset(q);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_cursor_set(struct fb_store *st, const char *remote, const struct fb_feed_cursor *cursor,
    struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_CURSOR_SET);
	bind_text(q, 1, remote);
	sqlite3_bind_int64(q, 2, cursor->seq);
	sqlite3_bind_int64(q, 3, cursor->iat);
	bind_text(q, 4, cursor->epoch);
	rc = run(s, q, "store a feed cursor", err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_revocation_count(
    struct fb_store *st, const char *origin, int64_t now, int64_t *n, struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	fb_rc rc;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_REV_COUNT);
	bind_text(q, 1, origin);
	sqlite3_bind_int64(q, 2, now);
	rc = scalar(s, q, "count a remote's revocations", n, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static fb_rc
s_epoch(
    struct fb_store *st, const char *fresh, char out[FB_STORE_EPOCH_LEN + 1], struct fb_err *err)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q;
	const char *e;
	fb_rc rc;
	int src;

	pthread_mutex_lock(&s->lock);
	q = stmt(s, S_EPOCH_INIT);
	bind_text(q, 1, fresh);
	if ((rc = run(s, q, "record the store's identity", err)) == FB_OK) {
		q = stmt(s, S_EPOCH_GET);
		if ((src = sqlite3_step(q)) == SQLITE_ROW && (e = col_text(q, 0)) != NULL &&
		    strlen(e) == FB_STORE_EPOCH_LEN)
			memcpy(out, e, FB_STORE_EPOCH_LEN + 1);
		else if (src == SQLITE_ROW || src == SQLITE_DONE)
			rc = FB_ERR_SET(err, FB_ERR_INVALID,
			    "store file %s: the store's identity is damaged", s->path);
		else
			rc = sq_fail(s, src, "read the store's identity", err);
		sqlite3_reset(q);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- open and close ---- */

static void
s_close(struct fb_store *st)
{
	struct sq_store *s = sq(st);

	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* The last connection to close checkpoints the WAL into the main file. */
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Runs one or more statements given as text, for setup. */
static fb_rc
exec(struct sq_store *s, const char *sql, const char *what, struct fb_err *err)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? FB_OK : sq_fail(s, rc, what, err);
}

/* A one-text-value PRAGMA; result (size n) receives its answer. */
static fb_rc
pragma_text(struct sq_store *s, const char *sql, char *result, size_t n, struct fb_err *err)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	const char *v;

	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		v = col_text(q, 0);
		(void)snprintf(result, n, "%s", v != NULL ? v : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_OK || rc == SQLITE_DONE ? FB_OK : sq_fail(s, rc, sql, err);
}

/* Creates or upgrades the schema inside one write transaction. */
static fb_rc
migrate(struct sq_store *s, struct fb_err *err)
{
	char v[32];
	int version;
	fb_rc rc;

	if ((rc = exec(s, "BEGIN IMMEDIATE", "begin the schema check", err)) != FB_OK)
		return rc;
	if ((rc = exec(s, "CREATE TABLE IF NOT EXISTS fedbridge_schema (version INTEGER NOT NULL)",
	         "create the schema table", err)) != FB_OK ||
	    (rc = pragma_text(s, "SELECT coalesce(max(version), 0) FROM fedbridge_schema", v,
	         sizeof(v), err)) != FB_OK)
		goto fail;
	version = (int)strtol(v, NULL, 10);
	if (version > SCHEMA_VERSION) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG,
		    "store file %s has schema version %d, newer than this fedbridge (%d)", s->path,
		    version, SCHEMA_VERSION);
		goto fail;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char ins[80];

		(void)snprintf(
		    ins, sizeof(ins), "INSERT INTO fedbridge_schema VALUES (%d)", version + 1);
		if ((rc = exec(s, migrations[version], "migrate the schema", err)) != FB_OK ||
		    (rc = exec(s, ins, "record the schema version", err)) != FB_OK)
			goto fail;
	}
	return exec(s, "COMMIT", "commit the schema", err);
fail:
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* The directory (made 0700 when absent) and an empty 0600 file before SQLite opens it. */
static fb_rc
prepare_files(const char *dir, const char *path, struct fb_err *err)
{
	struct stat sb;
	int fd;

	if (stat(dir, &sb) != 0) {
		if (errno != ENOENT || mkdir(dir, 0700) != 0)
			return FB_ERR_SET(
			    err, FB_ERR_IO, "store directory %s: %s", dir, strerror(errno));
	} else if (!S_ISDIR(sb.st_mode)) {
		return FB_ERR_SET(err, FB_ERR_IO, "store directory %s is not a directory", dir);
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return FB_ERR_SET(err, FB_ERR_IO, "store file %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		(void)close(fd);
		return FB_ERR_SET(err, FB_ERR_IO, "store file %s is not a regular file", path);
	}
	(void)close(fd);
	return FB_OK;
}

static fb_rc
setup(struct sq_store *s, int64_t audit_retention, struct fb_err *err)
{
	sqlite3_stmt *q;
	char v[64];
	int rc;
	fb_rc r;

	rc = sqlite3_open_v2(s->path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "open", err);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* The first read of the file: garbage shows up here as "not a database". */
	if ((r = pragma_text(s, "PRAGMA journal_mode = WAL", v, sizeof(v), err)) != FB_OK)
		return r;
	if (strcmp(v, "wal") != 0)
		return FB_ERR_SET(
		    err, FB_ERR_IO, "store file %s: cannot use WAL mode (got %s)", s->path, v);
	/* Damage past the header shows up only when pages are read: check them all now. */
	if ((r = pragma_text(s, "PRAGMA quick_check", v, sizeof(v), err)) != FB_OK)
		return r;
	if (strcmp(v, "ok") != 0)
		return FB_ERR_SET(
		    err, FB_ERR_IO, "corrupt store file %s: quick_check says: %s", s->path, v);
	if ((r = exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "set up", err)) !=
	        FB_OK ||
	    (r = migrate(s, err)) != FB_OK)
		return r;
	for (int i = 0; i < S_COUNT; i++)
		if ((rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		         &s->stmt[i], NULL)) != SQLITE_OK)
			return sq_fail(s, rc, "prepare statements", err);
	/* What the audit trigger holds deletes to, from now on. */
	q = stmt(s, S_RETENTION_SET);
	sqlite3_bind_int64(q, 1, audit_retention);
	return run(s, q, "record the audit retention", err);
}

static const struct fb_store_ops sqlite_ops = {
	.name = "embedded",
	.close = s_close,
	.session_put = s_session_put,
	.session_get = s_session_get,
	.session_touch = s_session_touch,
	.session_delete = s_session_delete,
	.session_list = s_session_list,
	.purge = s_purge,
	.revoke = s_revoke,
	.revocations_since = s_revocations_since,
	.revocation_seq = s_revocation_seq,
	.revocation_head = s_revocation_head,
	.revoked = s_revoked,
	.once_consume = s_once_consume,
	.audit_append = s_audit_append,
	.audit_list = s_audit_list,
	.cursor_get = s_cursor_get,
	.cursor_set = s_cursor_set,
	.revocation_count = s_revocation_count,
	.epoch = s_epoch,
	.watch_wait = NULL,
	/* Other processes may write the file; they cannot wake us, so look this often. */
	.watch_poll_ms = 250,
};

fb_rc
fb_store_sqlite_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err)
{
	struct sq_store *s = calloc(1, sizeof(*s));
	fb_rc rc;
	int n;

	if (s == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	s->base.ops = &sqlite_ops;
	pthread_mutex_init(&s->lock, NULL);
	n = snprintf(s->path, sizeof(s->path), "%s/" DB_NAME, opts->location);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		s_close(&s->base);
		return FB_ERR_SET(err, FB_ERR_LIMIT, "store directory name is too long");
	}
	if ((rc = prepare_files(opts->location, s->path, err)) != FB_OK ||
	    (rc = setup(s, opts->audit_retention, err)) != FB_OK) {
		s_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return FB_OK;
}
