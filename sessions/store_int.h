/*
 * The store's inside: the backend table, the shared state every backend
 * embeds, and helpers the backends share. Not installed, not for other modules.
 */
#ifndef FB_STORE_INT_H
#define FB_STORE_INT_H

#include "fb_sessions.h"

#include <pthread.h>
#include <stdatomic.h>

struct fb_store;

/*
 * One backend. store.c validates every input before calling these, so a
 * backend sees well-formed values only; it reports its own failures (I/O,
 * disk full, a server down) through err.
 */
struct fb_store_ops {
	const char *name;
	void (*close)(struct fb_store *st);
	fb_rc (*session_put)(struct fb_store *st, const struct fb_session *s, struct fb_err *err);
	fb_rc (*session_get)(
	    struct fb_store *st, const char *id, struct fb_session *out, struct fb_err *err);
	fb_rc (*session_touch)(struct fb_store *st, const char *id, int64_t now,
	    struct fb_session *out, struct fb_err *err);
	fb_rc (*session_delete)(struct fb_store *st, const char *id, struct fb_err *err);
	fb_rc (*session_list)(struct fb_store *st, const struct fb_session_filter *f,
	    struct fb_session **v, size_t *n, struct fb_err *err);
	fb_rc (*purge)(
	    struct fb_store *st, int64_t now, struct fb_purge_counts *c, struct fb_err *err);
	fb_rc (*revoke)(struct fb_store *st, const struct fb_revocation *r, int64_t now,
	    int64_t *seq, struct fb_err *err);
	fb_rc (*revocations_since)(struct fb_store *st, int64_t cursor, size_t limit,
	    struct fb_revocation_list *out, struct fb_err *err);
	fb_rc (*revocation_seq)(struct fb_store *st, int64_t *seq, struct fb_err *err);
	fb_rc (*revocation_head)(struct fb_store *st, int64_t *seq, struct fb_err *err);
	fb_rc (*revoked)(struct fb_store *st, const struct fb_revocation_query *q, int64_t now,
	    enum fb_revocation_kind *kind, struct fb_err *err);
	fb_rc (*once_consume)(struct fb_store *st, enum fb_once_kind kind, const char *value,
	    int64_t expires, int64_t now, bool *first, struct fb_err *err);
	fb_rc (*audit_append)(struct fb_store *st, const struct fb_audit_record *rec, int64_t *id,
	    struct fb_err *err);
	fb_rc (*audit_list)(struct fb_store *st, int64_t after, size_t limit,
	    struct fb_audit_list *out, struct fb_err *err);
	fb_rc (*cursor_get)(struct fb_store *st, const char *remote, struct fb_feed_cursor *cursor,
	    struct fb_err *err);
	fb_rc (*cursor_set)(struct fb_store *st, const char *remote,
	    const struct fb_feed_cursor *cursor, struct fb_err *err);
	fb_rc (*revocation_count)(
	    struct fb_store *st, const char *origin, int64_t now, int64_t *n, struct fb_err *err);
	/*
	 * The store's identity: the one kept in it, or fresh (FB_STORE_EPOCH_LEN
	 * characters) when it has none yet, which is then kept. Copied into out.
	 */
	fb_rc (*epoch)(struct fb_store *st, const char *fresh, char out[FB_STORE_EPOCH_LEN + 1],
	    struct fb_err *err);
	/*
	 * Blocks until a revocation may have been added by another process or
	 * the store's wake_fd becomes readable, or timeout_ms passes. NULL:
	 * the watch only polls (every timeout_ms) and reacts to wake_fd.
	 */
	fb_rc (*watch_wait)(struct fb_store *st, int timeout_ms, struct fb_err *err);
	/* How often the watch thread looks without being told (milliseconds). */
	int watch_poll_ms;
};

/* The shared head of every backend's state (the backend struct starts with it). */
struct fb_store {
	const struct fb_store_ops *ops;
	enum fb_conf_store_kind kind;
	int wake_fd; /* eventfd: a revocation was added here, or a thread must stop */
	char epoch[FB_STORE_EPOCH_LEN + 1]; /* read (or made) once at open */

	pthread_mutex_t watch_lock; /* serialises watch and unwatch */
	bool watching;
	atomic_bool watch_stop;
	pthread_t watch_thread;
	fb_store_watch_fn watch_cb;
	void *watch_arg;
	int64_t watch_after;

	atomic_uint_fast64_t errors[FB_STORE_OPS]; /* failures of the store itself, by operation */

	bool purging;
	pthread_t purge_thread;
	pthread_mutex_t purge_lock;
	pthread_cond_t purge_cond;
	bool purge_stop;
	unsigned purge_interval;
	int64_t audit_retention; /* seconds; validated at open, never 0 */
};

/* Backend constructors: each returns its state with the head filled by store.c. */
fb_rc fb_store_memory_open(
    const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err);
fb_rc fb_store_sqlite_open(
    const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err);
fb_rc fb_store_pg_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err);

/*
 * Growing result lists: strings are copied into a chunk arena hanging off
 * the list's `strings` pointer, so a list is freed in a few calls.
 */
fb_rc fb_store_rev_list_add(struct fb_revocation_list *l, const struct fb_revocation *r);
fb_rc fb_store_audit_list_add(struct fb_audit_list *l, const struct fb_audit_record *rec);

/* Copies src's strings into dst (cleared first); for backends returning sessions. */
fb_rc fb_store_session_copy(struct fb_session *dst, const struct fb_session *src);

/* A string for stored optional text: NULL stays NULL. Returns false on no memory. */
bool fb_store_dup(char **dst, const char *src);

/* Whether a session has ended at now (absolute or idle expiry). */
bool fb_store_session_ended(const struct fb_session *s, int64_t now);

/* A session's columns in the SQL backends, in the order they read and bind them. */
#define STORE_SESSION_COLS                                                                         \
	"id, fid, tenant, provider, issuer, subject, idp_session, acr, amr, attrs, created, "      \
	"last_seen, expires, idle_timeout"

#endif
