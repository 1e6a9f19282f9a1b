/*
 * fedbridge sessions: login sessions, revocations, one-time use and audit,
 * behind one store with three backends: memory (tests), embedded (SQLite,
 * the default) and PostgreSQL (several bridge nodes on one database).
 *
 * Times are Unix seconds. Every call is safe from several threads. Values
 * given to a call are borrowed; values a call returns belong to the caller
 * and are released with the matching _clear/_free function. Error messages
 * never hold a value that may be secret (one-time values, the password).
 */
#ifndef FB_SESSIONS_H
#define FB_SESSIONS_H

#include "fb_common.h"
#include "fb_conf.h"

/* 128 random bits, base64url: 22 characters. */
#define FB_SESSION_ID_BYTES 16
#define FB_SESSION_ID_LEN 22

/* Writes a new random session id and a NUL into out. */
fb_rc fb_session_id_new(char out[FB_SESSION_ID_LEN + 1]);

/* True when s is a well-formed session id (it says nothing of whether it exists). */
bool fb_session_id_valid(const char *s, size_t len);

/* Caps on stored text, in bytes; longer input is refused with FB_ERR_LIMIT. */
#define FB_STORE_NAME_MAX 256 /* fid, tenant, provider, acr, remote names, audit fields */
#define FB_STORE_URI_MAX 1024 /* issuer, subject, IdP session id, one-time values */
#define FB_STORE_JSON_MAX 8192 /* attrs, amr, audit detail */
#define FB_STORE_LIST_MAX 1000 /* most rows one list call returns */

/*
 * A login session. Strings are owned by the struct (fb_session_clear), and
 * NULL only where marked optional.
 */
struct fb_session {
	char id[FB_SESSION_ID_LEN + 1];
	char *fid;
	char *tenant;
	char *provider;
	char *issuer; /* the IdP's issuer or entity id */
	char *subject; /* OIDC sub or SAML NameID */
	char *idp_session; /* OIDC sid or SAML SessionIndex; optional */
	char *acr; /* optional */
	char *amr; /* a JSON array of strings; optional */
	char *attrs; /* the mapped attributes, a JSON object; optional */
	int64_t created;
	int64_t last_seen;
	int64_t expires; /* absolute expiry */
	int64_t idle_timeout; /* seconds without use before it ends; 0: none */
};

/* Frees the strings and zeroes s; safe on a zeroed struct. */
void fb_session_clear(struct fb_session *s);
/* Clears n sessions and frees the array (from fb_store_session_list). */
void fb_session_array_free(struct fb_session *v, size_t n);

/* The store's configuration. */
struct fb_store_opts {
	enum fb_conf_store_kind kind;
	const char *location; /* embedded: a directory; postgresql: a conninfo or URL */
	const char *password; /* postgresql, read from store_password_file; optional */
	unsigned pool_size; /* postgresql connections; 0: 4 */
	unsigned purge_interval; /* seconds between background purges; 0: none */
	/*
	 * Seconds audit records are kept: the purge deletes older ones, the
	 * database refuses to delete younger ones. 0: FB_AUDIT_RETENTION_DEFAULT;
	 * else at least FB_AUDIT_RETENTION_MIN.
	 */
	int64_t audit_retention;
};

struct fb_store;

/*
 * Opens (creating and migrating when needed) a store. An embedded store is
 * the file <location>/fedbridge.db (directory 0700, file 0600); it is checked
 * at open and a damaged file is refused ("corrupt store file ..."). A
 * PostgreSQL store connects once at open to create or migrate the schema.
 */
fb_rc fb_store_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err);
/* Opens the store a configuration names, reading store_password_file when there is one. */
fb_rc fb_store_open_conf(const struct fb_conf *conf, struct fb_store **out, struct fb_err *err);

/* The store's operations, as its error counters name them. */
enum fb_store_op {
	FB_STORE_OP_SESSION_PUT,
	FB_STORE_OP_SESSION_GET,
	FB_STORE_OP_SESSION_TOUCH,
	FB_STORE_OP_SESSION_DELETE,
	FB_STORE_OP_SESSION_LIST,
	FB_STORE_OP_PURGE,
	FB_STORE_OP_REVOKE,
	FB_STORE_OP_REVOCATIONS_SINCE,
	FB_STORE_OP_REVOCATION_SEQ,
	FB_STORE_OP_REVOKED,
	FB_STORE_OP_ONCE_CONSUME,
	FB_STORE_OP_AUDIT_APPEND,
	FB_STORE_OP_AUDIT_LIST,
	FB_STORE_OP_CURSOR_GET,
	FB_STORE_OP_CURSOR_SET,
	FB_STORE_OP_REVOCATION_COUNT,
	FB_STORE_OP_WATCH, /* the revocation watch thread's reads and waits */
	FB_STORE_OPS
};
const char *fb_store_op_name(enum fb_store_op op);
/*
 * How many calls of op failed in the store itself since it was opened: it
 * did not answer or broke. Refused input, absent records and caps are not
 * counted. Safe from any thread.
 */
uint64_t fb_store_errors(struct fb_store *st, enum fb_store_op op);
/* Stops the watch and purge threads and closes; NULL is a no-op. */
void fb_store_close(struct fb_store *store);

/* Adds or replaces a session (by id). Every field is validated. */
fb_rc fb_store_session_put(struct fb_store *store, const struct fb_session *s, struct fb_err *err);
/* Fills *out (cleared first); FB_ERR_NOTFOUND when there is no such session. */
fb_rc fb_store_session_get(
    struct fb_store *store, const char *id, struct fb_session *out, struct fb_err *err);
/*
 * Marks a session used at now and, when out is not NULL, returns it. An
 * absent, expired (past expires) or idle (idle_timeout since last_seen)
 * session gives FB_ERR_NOTFOUND and is not touched.
 */
fb_rc fb_store_session_touch(struct fb_store *store, const char *id, int64_t now,
    struct fb_session *out, struct fb_err *err);
/* FB_ERR_NOTFOUND when there was no such session. */
fb_rc fb_store_session_delete(struct fb_store *store, const char *id, struct fb_err *err);

struct fb_session_filter {
	const char *tenant; /* each NULL field matches anything */
	const char *fid;
	const char *issuer;
	const char *subject;
	const char *idp_session;
	const char *after; /* a page starts after this id (the last one of the previous page) */
	size_t limit; /* 1 to FB_STORE_LIST_MAX */
};

/* Sessions matching f, ordered by id; *v is NULL when *n is 0. */
fb_rc fb_store_session_list(struct fb_store *store, const struct fb_session_filter *f,
    struct fb_session **v, size_t *n, struct fb_err *err);

/* Revocation kinds. Stable numbers: they are stored and sent in the feed. */
enum fb_revocation_kind {
	FB_REVOCATION_NONE = 0, /* only as a check result: not revoked */
	FB_REVOCATION_SESSION = 1, /* value: a bridge session id */
	FB_REVOCATION_FID = 2, /* value: a fid */
	FB_REVOCATION_SUBJECT = 3, /* issuer + value: an IdP subject */
	FB_REVOCATION_IDP_SESSION = 4, /* issuer + value: an IdP session (back-channel logout) */
	FB_REVOCATION_TENANT = 5, /* value: a tenantID */
	FB_REVOCATION_TRUST = 6, /* value: a remote installation (the kill switch) */
	FB_REVOCATION_ISSUED_BEFORE = 7, /* value: a tenantID or "*"; before: the time T */
};

/* A stable lower-case name ("session", "issued_before", ...); NULL for others. */
const char *fb_revocation_kind_name(enum fb_revocation_kind kind);

struct fb_revocation {
	int64_t seq; /* assigned by fb_store_revoke: the feed's cursor, increasing */
	enum fb_revocation_kind kind;
	/*
	 * SUBJECT and IDP_SESSION: the IdP. SESSION: NULL for a session made here,
	 * else the issuer of the remote installation that made it (from its feed).
	 * Else NULL.
	 */
	const char *issuer;
	const char *value;
	int64_t before; /* ISSUED_BEFORE: tokens and sessions issued before this are revoked */
	int64_t created; /* assigned by fb_store_revoke */
	/*
	 * Kept and enforced until then: set it to outlive every token and session
	 * it can affect (now + the longest session or token lifetime).
	 */
	int64_t until;
	const char *reason; /* optional, free text */
	const char *actor; /* optional: who revoked */
	const char *origin; /* NULL or "local": here; else the remote installation it came from */
};

/*
 * Calls each for the id of every session an IdP subject or IdP session
 * revocation covers (its bridge sessions: what tokens carry), a page at a
 * time, however many there are; stops at the first error each returns.
 */
fb_rc fb_store_revocation_sessions(struct fb_store *store, const struct fb_revocation *r,
    fb_rc (*each)(void *arg, const char *session_id, struct fb_err *err), void *arg,
    struct fb_err *err);

/* A list of revocations read back from the store; owns its strings. */
struct fb_revocation_list {
	struct fb_revocation *v;
	size_t n;
	void *strings; /* backing storage of every string in v */
};

void fb_revocation_list_free(struct fb_revocation_list *l);

/* Records a revocation at now; *seq (optional) receives its sequence number. */
fb_rc fb_store_revoke(struct fb_store *store, const struct fb_revocation *r, int64_t now,
    int64_t *seq, struct fb_err *err);
/*
 * Revocations with seq > cursor in increasing order, at most limit
 * (1..FB_STORE_LIST_MAX). The last seq read is the next cursor. Replaces *out.
 */
fb_rc fb_store_revocations_since(struct fb_store *store, int64_t cursor, size_t limit,
    struct fb_revocation_list *out, struct fb_err *err);
/* The highest sequence number so far (0 when none). */
fb_rc fb_store_revocation_seq(struct fb_store *store, int64_t *seq, struct fb_err *err);
/*
 * The highest sequence number ever handed out, of purged revocations too (0
 * when none); with PostgreSQL perhaps of one not yet committed. It only goes
 * back when the store itself does (restored from a backup).
 */
fb_rc fb_store_revocation_head(struct fb_store *store, int64_t *seq, struct fb_err *err);

/* What a login, refresh or token check knows; NULL fields are not checked. */
struct fb_revocation_query {
	const char *session_id;
	const char *fid;
	const char *tenant;
	const char *issuer; /* with subject and idp_session */
	const char *subject;
	const char *idp_session;
	const char *trust; /* the remote installation involved */
	int64_t issued_at; /* 0: not checked against ISSUED_BEFORE */
};

/*
 * Sets *kind to the kind of one revocation in force at now that matches q,
 * or FB_REVOCATION_NONE.
 */
fb_rc fb_store_revoked(struct fb_store *store, const struct fb_revocation_query *q, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err);
/* The same for a session: its id, fid, tenant, subject, IdP session and creation time. */
fb_rc fb_store_session_revoked(struct fb_store *store, const struct fb_session *s, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err);

/*
 * Called for every revocation added by any process sharing the store, in
 * sequence order, from the store's watch thread (one call at a time). r and
 * its strings are valid during the call only.
 */
typedef void (*fb_store_watch_fn)(void *arg, const struct fb_revocation *r);

/* Start from the highest sequence number at the time of the call. */
#define FB_STORE_WATCH_NEW (-1)

/*
 * Starts the watch: cb sees every revocation with seq > after (or only new
 * ones with FB_STORE_WATCH_NEW). PostgreSQL: LISTEN/NOTIFY, with catch-up
 * after a reconnect; embedded: a check every 250 ms (other processes may
 * share the file) and at once for this process's revocations. One watch per
 * store; FB_ERR_INVALID when one runs.
 */
fb_rc fb_store_watch(
    struct fb_store *store, int64_t after, fb_store_watch_fn cb, void *arg, struct fb_err *err);
/* Stops the watch and waits for its thread; no callback runs after it returns. */
void fb_store_unwatch(struct fb_store *store);

/* What a purge removed. */
struct fb_purge_counts {
	size_t sessions; /* expired or idle */
	size_t revocations; /* past their until */
	size_t once; /* one-time records past their expiry */
	size_t audit; /* audit records older than now - the retention */
};

/*
 * Removes what has ended by now, and audit records older than now - the
 * retention; counts (optional) says how much. An SQL store takes the
 * database's clock when it is behind now: its triggers judge by that clock.
 */
fb_rc fb_store_purge(
    struct fb_store *store, int64_t now, struct fb_purge_counts *counts, struct fb_err *err);

/* One-time values. Stable numbers, stored. */
enum fb_once_kind {
	FB_ONCE_SAML_ASSERTION = 1, /* a SAML assertion ID */
	FB_ONCE_OIDC_STATE = 2,
	FB_ONCE_OIDC_NONCE = 3,
	FB_ONCE_AUTH_CODE = 4, /* the bridge's own authorization codes */
	FB_ONCE_LOGOUT_TOKEN = 5, /* the jti of an OIDC back-channel logout token */
	FB_ONCE_CLIENT_ASSERTION = 6, /* the jti of a private_key_jwt client assertion */
	FB_ONCE_SAML_REQUEST = 7, /* the ID of an AuthnRequest, answered once */
	FB_ONCE_SAML_LOGOUT = 8, /* the ID of an IdP's LogoutRequest, acted on once */
};

/*
 * Consumes value atomically: *first is true for exactly one caller across all
 * processes sharing the store and across restarts, as long as the value is
 * not past expires (after that it may be consumed again, and is purged).
 */
fb_rc fb_store_once_consume(struct fb_store *store, enum fb_once_kind kind, const char *value,
    int64_t expires, int64_t now, bool *first, struct fb_err *err);

enum fb_audit_kind {
	FB_AUDIT_LOGIN_ALLOWED = 1,
	FB_AUDIT_LOGIN_REFUSED = 2, /* rule: the rule that refused */
	FB_AUDIT_TOKEN_ISSUED = 3, /* jti and audience; never the token */
	FB_AUDIT_REVOCATION = 4,
	FB_AUDIT_ADMIN = 5,
	FB_AUDIT_TOKEN_REFUSED = 6, /* a client's request at /token or /logout; rule: the error */
};

/* A stable lower-case name ("login_allowed", ...); NULL for others. */
const char *fb_audit_kind_name(enum fb_audit_kind kind);

/*
 * One append-only audit record, kept for the store's audit retention: until
 * then it cannot be changed or deleted, after it the purge deletes it. Text fields are optional and
 * must hold no secret and no whole token: a field that looks like a JWT is refused.
 */
struct fb_audit_record {
	int64_t id; /* assigned by fb_store_audit_append, increasing */
	int64_t time;
	enum fb_audit_kind kind;
	const char *correlation; /* the request's correlation id */
	const char *tenant;
	const char *fid;
	const char *provider;
	const char *audience;
	const char *jti;
	const char *rule;
	const char *actor;
	const char *detail;
};

struct fb_audit_list {
	struct fb_audit_record *v;
	size_t n;
	void *strings; /* backing storage of every string in v */
};

void fb_audit_list_free(struct fb_audit_list *l);

fb_rc fb_store_audit_append(
    struct fb_store *store, const struct fb_audit_record *rec, int64_t *id, struct fb_err *err);
/*
 * Records with id > after, in order, at most limit (1..FB_STORE_LIST_MAX).
 * Replaces *out. With PostgreSQL, ids come from a sequence and appends are
 * not serialised (unlike revocations), so a record of a slower concurrent
 * append can appear after a higher id was read: an exporter should re-read
 * the last few seconds.
 */
fb_rc fb_store_audit_list(struct fb_store *store, int64_t after, size_t limit,
    struct fb_audit_list *out, struct fb_err *err);

/* Revocations recorded with this origin still in force at now (until > now). */
fb_rc fb_store_revocation_count(
    struct fb_store *store, const char *origin, int64_t now, int64_t *n, struct fb_err *err);

/*
 * The store's identity: random, made when the store was created and kept in
 * it, so that a store replaced under the same installation (a new database,
 * another backend) is told apart from the one it replaces: its revocation
 * numbers start again from 1. Lower-case hex; valid while the store is open.
 */
#define FB_STORE_EPOCH_LEN 32
const char *fb_store_epoch(const struct fb_store *store);
/* Whether e has the shape of a store identity. */
bool fb_store_epoch_valid(const char *e);

/* Where the revocation feed consumer stands with one remote installation. */
struct fb_feed_cursor {
	int64_t seq; /* the last revocation taken (0: none) */
	int64_t iat; /* the iat of the last page taken (0: none) */
	char epoch[FB_STORE_EPOCH_LEN + 1]; /* the remote store seq counts in ("": not known) */
};

/* The cursor kept for remote; all zero (and an empty epoch) when never set. */
fb_rc fb_store_cursor_get(
    struct fb_store *store, const char *remote, struct fb_feed_cursor *cursor, struct fb_err *err);
fb_rc fb_store_cursor_set(struct fb_store *store, const char *remote,
    const struct fb_feed_cursor *cursor, struct fb_err *err);

#endif
