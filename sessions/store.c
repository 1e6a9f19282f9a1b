/*
 * The store's front: every input is validated here once, so the backends
 * only ever see well-formed values; then the call goes to the backend's
 * table. The watch and purge threads live here too, the same for every
 * backend.
 */
#include "store_int.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define WATCH_BATCH 256
/* Seconds between purges of expired sessions and one-time entries in a configured store. */
#define STORE_PURGE_INTERVAL 300

/* ---- validation ---- */

static fb_rc
check_text(const char *what, const char *s, size_t max, bool required, struct fb_err *err)
{
	size_t len;

	if (s == NULL) {
		if (required)
			return FB_ERR_SET(err, FB_ERR_INVALID, "%s is required", what);
		return FB_OK;
	}
	len = strlen(s);
	if (len == 0 && required)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is empty", what);
	if (len > max)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s is %zu bytes long, more than %zu", what, len, max);
	/* Values are never echoed: some (one-time codes) are secrets. */
	if (!fb_utf8_valid(s, len))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is not valid UTF-8", what);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s contains a control character at byte %zu", what, i);
	return FB_OK;
}

static fb_rc
check_sid(const char *what, const char *s, struct fb_err *err)
{
	if (s == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is required", what);
	if (!fb_session_id_valid(s, strnlen(s, FB_SESSION_ID_LEN + 1)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s is not a session id (%d base64url characters)", what, FB_SESSION_ID_LEN);
	return FB_OK;
}

/* Optional JSON text of one type: an object for attrs, an array of strings for amr. */
static fb_rc
check_json(const char *what, const char *s, json_type want, struct fb_err *err)
{
	json_error_t je;
	json_t *j;
	fb_rc rc = FB_OK;

	if (s == NULL)
		return FB_OK;
	if ((rc = check_text(what, s, FB_STORE_JSON_MAX, true, err)) != FB_OK)
		return rc;
	if ((j = json_loads(s, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is not JSON (column %d: %s)", what,
		    je.column, je.text);
	if (json_typeof(j) != want) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s is not a JSON %s", what,
		    want == JSON_OBJECT ? "object" : "array");
	} else if (want == JSON_ARRAY) {
		for (size_t i = 0; i < json_array_size(j); i++)
			if (!json_is_string(json_array_get(j, i))) {
				rc = FB_ERR_SET(
				    err, FB_ERR_INVALID, "%s[%zu] is not a string", what, i);
				break;
			}
	}
	json_decref(j);
	return rc;
}

/*
 * Audit fields must never hold a whole token: a compact JWS (three base64url
 * parts, the first a JSON header starting "eyJ") is refused outright.
 */
static bool
looks_like_token(const char *s)
{
	const char *p = s;
	int dots = 0;

	for (;;) {
		p = strstr(p, "eyJ");
		if (p == NULL)
			return false;
		dots = 0;
		for (const char *q = p; *q != '\0'; q++) {
			if (*q == '.')
				dots++;
			else if (!(*q == '-' || *q == '_' || (*q >= '0' && *q <= '9') ||
			             (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
				break;
			if (dots == 2 && q - p > 20)
				return true;
		}
		p += 3;
	}
}

/* The text fields of an audit record and their bounds. */
static const struct {
	const char *name;
	size_t offset, max;
} audit_texts[] = {
	{ "correlation", offsetof(struct fb_audit_record, correlation), FB_STORE_NAME_MAX },
	{ "tenant", offsetof(struct fb_audit_record, tenant), FB_STORE_NAME_MAX },
	{ "fid", offsetof(struct fb_audit_record, fid), FB_STORE_NAME_MAX },
	{ "provider", offsetof(struct fb_audit_record, provider), FB_STORE_NAME_MAX },
	{ "audience", offsetof(struct fb_audit_record, audience), FB_STORE_NAME_MAX },
	{ "jti", offsetof(struct fb_audit_record, jti), FB_STORE_NAME_MAX },
	{ "rule", offsetof(struct fb_audit_record, rule), FB_STORE_NAME_MAX },
	{ "actor", offsetof(struct fb_audit_record, actor), FB_STORE_NAME_MAX },
	{ "detail", offsetof(struct fb_audit_record, detail), FB_STORE_JSON_MAX },
};
#define N_AUDIT_TEXTS (sizeof(audit_texts) / sizeof(audit_texts[0]))

/* What an audit record keeps in place of a value that holds a whole token. */
#define AUDIT_TOKEN_NOTE "(a whole token: not kept)"

/*
 * Audit records keep what outsiders sent (a remote's jti, an IdP's error
 * text, a browser's provider name): such a value is escaped and cut to max
 * here, never refused, so the record of a refusal is always written. A
 * whole token is never kept, only a note that there was one. *out is NULL
 * for NULL, else owned by the caller.
 */
static fb_rc
audit_text(const char *what, const char *s, size_t max, char **out, struct fb_err *err)
{
	struct fb_buf b;

	*out = NULL;
	if (s == NULL)
		return FB_OK;
	if (looks_like_token(s))
		s = AUDIT_TOKEN_NOTE;
	fb_buf_init(&b, max + 1);
	if (fb_text_escape(&b, s, strlen(s), max) != FB_OK || fb_buf_append(&b, "", 0) != FB_OK ||
	    b.data == NULL) {
		fb_buf_free(&b);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "audit %s: out of memory", what);
	}
	*out = b.data; /* fb_buf keeps its text NUL-terminated */
	return FB_OK;
}

static fb_rc
check_session(const struct fb_session *s, struct fb_err *err)
{
	fb_rc rc;

	if (s == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no session given");
	if ((rc = check_sid("session id", s->id, err)) != FB_OK ||
	    (rc = check_text("fid", s->fid, FB_STORE_NAME_MAX, true, err)) != FB_OK ||
	    (rc = check_text("tenant", s->tenant, FB_STORE_NAME_MAX, true, err)) != FB_OK ||
	    (rc = check_text("provider", s->provider, FB_STORE_NAME_MAX, true, err)) != FB_OK ||
	    (rc = check_text("issuer", s->issuer, FB_STORE_URI_MAX, true, err)) != FB_OK ||
	    (rc = check_text("subject", s->subject, FB_STORE_URI_MAX, true, err)) != FB_OK ||
	    (rc = check_text("idp_session", s->idp_session, FB_STORE_URI_MAX, false, err)) !=
	        FB_OK ||
	    (rc = check_text("acr", s->acr, FB_STORE_NAME_MAX, false, err)) != FB_OK ||
	    (rc = check_json("amr", s->amr, JSON_ARRAY, err)) != FB_OK ||
	    (rc = check_json("attrs", s->attrs, JSON_OBJECT, err)) != FB_OK)
		return rc;
	if (s->created <= 0 || s->last_seen < s->created || s->expires <= s->created)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "session times must satisfy 0 < created <= last_seen and created < expires");
	if (s->idle_timeout < 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "idle_timeout is negative");
	return FB_OK;
}

static fb_rc
check_limit(size_t limit, struct fb_err *err)
{
	if (limit == 0 || limit > FB_STORE_LIST_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID, "limit must be 1 to %d, got %zu",
		    FB_STORE_LIST_MAX, limit);
	return FB_OK;
}

static fb_rc
check_revocation(const struct fb_revocation *r, int64_t now, struct fb_err *err)
{
	bool with_issuer;
	fb_rc rc;

	if (r == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no revocation given");
	if (fb_revocation_kind_name(r->kind) == NULL || r->kind == FB_REVOCATION_NONE)
		return FB_ERR_SET(err, FB_ERR_INVALID, "unknown revocation kind %d", (int)r->kind);
	with_issuer = r->kind == FB_REVOCATION_SUBJECT || r->kind == FB_REVOCATION_IDP_SESSION;
	/* A remote's session names its issuer; an empty one would read as decided here. */
	if (with_issuer || (r->kind == FB_REVOCATION_SESSION && r->issuer != NULL))
		rc = check_text("revocation issuer", r->issuer, FB_STORE_URI_MAX, true, err);
	else if (r->issuer != NULL)
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "a %s revocation takes no issuer",
		    fb_revocation_kind_name(r->kind));
	else
		rc = FB_OK;
	if (rc != FB_OK)
		return rc;
	if (r->kind == FB_REVOCATION_SESSION)
		rc = check_sid("revoked session id", r->value, err);
	else
		rc = check_text("revocation value", r->value,
		    with_issuer ? FB_STORE_URI_MAX : FB_STORE_NAME_MAX, true, err);
	if (rc != FB_OK ||
	    (rc = check_text("revocation reason", r->reason, FB_STORE_NAME_MAX, false, err)) !=
	        FB_OK ||
	    (rc = check_text("revocation actor", r->actor, FB_STORE_NAME_MAX, false, err)) !=
	        FB_OK ||
	    (rc = check_text("revocation origin", r->origin, FB_STORE_NAME_MAX, false, err)) !=
	        FB_OK)
		return rc;
	if (r->kind == FB_REVOCATION_ISSUED_BEFORE && r->before <= 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "an issued_before revocation needs a time");
	if (r->kind != FB_REVOCATION_ISSUED_BEFORE && r->before != 0)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "only issued_before revocations take a time");
	if (r->until <= now)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "revocation until must be in the future (it must outlive what it revokes)");
	return FB_OK;
}

static fb_rc
check_query(const struct fb_revocation_query *q, struct fb_err *err)
{
	fb_rc rc;

	if (q == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no revocation query given");
	if ((q->session_id != NULL &&
	        (rc = check_sid("session id", q->session_id, err)) != FB_OK) ||
	    (rc = check_text("fid", q->fid, FB_STORE_NAME_MAX, false, err)) != FB_OK ||
	    (rc = check_text("tenant", q->tenant, FB_STORE_NAME_MAX, false, err)) != FB_OK ||
	    (rc = check_text("issuer", q->issuer, FB_STORE_URI_MAX, false, err)) != FB_OK ||
	    (rc = check_text("subject", q->subject, FB_STORE_URI_MAX, false, err)) != FB_OK ||
	    (rc = check_text("idp_session", q->idp_session, FB_STORE_URI_MAX, false, err)) !=
	        FB_OK ||
	    (rc = check_text("trust", q->trust, FB_STORE_NAME_MAX, false, err)) != FB_OK)
		return rc;
	if ((q->subject != NULL || q->idp_session != NULL) && q->issuer == NULL)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "a subject or IdP session is checked with its issuer");
	if (q->issued_at < 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "issued_at is negative");
	return FB_OK;
}

static fb_rc
check_store(const struct fb_store *st, struct fb_err *err)
{
	if (st == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no store");
	return FB_OK;
}

/* ---- names ---- */

const char *
fb_revocation_kind_name(enum fb_revocation_kind kind)
{
	switch (kind) {
	case FB_REVOCATION_NONE:
		return "none";
	case FB_REVOCATION_SESSION:
		return "session";
	case FB_REVOCATION_FID:
		return "fid";
	case FB_REVOCATION_SUBJECT:
		return "subject";
	case FB_REVOCATION_IDP_SESSION:
		return "idp_session";
	case FB_REVOCATION_TENANT:
		return "tenant";
	case FB_REVOCATION_TRUST:
		return "trust";
	case FB_REVOCATION_ISSUED_BEFORE:
		return "issued_before";
	}
	return NULL;
}

const char *
fb_audit_kind_name(enum fb_audit_kind kind)
{
	switch (kind) {
	case FB_AUDIT_LOGIN_ALLOWED:
		return "login_allowed";
	case FB_AUDIT_LOGIN_REFUSED:
		return "login_refused";
	case FB_AUDIT_TOKEN_ISSUED:
		return "token_issued";
	case FB_AUDIT_REVOCATION:
		return "revocation";
	case FB_AUDIT_ADMIN:
		return "admin";
	case FB_AUDIT_TOKEN_REFUSED:
		return "token_refused";
	}
	return NULL;
}

/* ---- owned values ---- */

bool
fb_store_dup(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

void
fb_session_clear(struct fb_session *s)
{
	if (s == NULL)
		return;
	free(s->fid);
	free(s->tenant);
	free(s->provider);
	free(s->issuer);
	free(s->subject);
	free(s->idp_session);
	free(s->acr);
	free(s->amr);
	free(s->attrs);
	memset(s, 0, sizeof(*s));
}

void
fb_session_array_free(struct fb_session *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		fb_session_clear(&v[i]);
	free(v);
}

fb_rc
fb_store_session_copy(struct fb_session *dst, const struct fb_session *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->id, src->id, sizeof(dst->id));
	dst->created = src->created;
	dst->last_seen = src->last_seen;
	dst->expires = src->expires;
	dst->idle_timeout = src->idle_timeout;
	if (!fb_store_dup(&dst->fid, src->fid) || !fb_store_dup(&dst->tenant, src->tenant) ||
	    !fb_store_dup(&dst->provider, src->provider) ||
	    !fb_store_dup(&dst->issuer, src->issuer) ||
	    !fb_store_dup(&dst->subject, src->subject) ||
	    !fb_store_dup(&dst->idp_session, src->idp_session) ||
	    !fb_store_dup(&dst->acr, src->acr) || !fb_store_dup(&dst->amr, src->amr) ||
	    !fb_store_dup(&dst->attrs, src->attrs)) {
		fb_session_clear(dst);
		return FB_ERR_NOMEM;
	}
	return FB_OK;
}

bool
fb_store_session_ended(const struct fb_session *s, int64_t now)
{
	return now >= s->expires || (s->idle_timeout > 0 && now >= s->last_seen + s->idle_timeout);
}

/* A chunk of the string arena behind a list. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	char data[];
};

static void
arena_free(void *strings)
{
	struct arena_chunk *c = strings, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
}

/* Copies s into the arena at *head; *out is NULL for NULL. False on no memory. */
static bool
arena_dup(void **head, const char *s, const char **out)
{
	struct arena_chunk *c = *head;
	size_t len;

	*out = NULL;
	if (s == NULL)
		return true;
	len = strlen(s) + 1;
	if (c == NULL || c->size - c->used < len) {
		size_t size = len > 4000 ? len : 4000;

		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return false;
		c->next = *head;
		c->used = 0;
		c->size = size;
		*head = c;
	}
	memcpy(c->data + c->used, s, len);
	*out = c->data + c->used;
	c->used += len;
	return true;
}

/* Room for one more element in a list of n elements of size sz, growing by doubling. */
static bool
grow(void **v, size_t n, size_t sz)
{
	void *nv;
	size_t cap;

	if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
		return true;
	cap = n == 0 ? 16 : n * 2;
	if ((nv = realloc(*v, cap * sz)) == NULL)
		return false;
	*v = nv;
	return true;
}

fb_rc
fb_store_rev_list_add(struct fb_revocation_list *l, const struct fb_revocation *r)
{
	struct fb_revocation *d;

	if (!grow((void **)&l->v, l->n, sizeof(*l->v)))
		return FB_ERR_NOMEM;
	d = &l->v[l->n];
	*d = *r;
	if (!arena_dup(&l->strings, r->issuer, &d->issuer) ||
	    !arena_dup(&l->strings, r->value, &d->value) ||
	    !arena_dup(&l->strings, r->reason, &d->reason) ||
	    !arena_dup(&l->strings, r->actor, &d->actor) ||
	    !arena_dup(&l->strings, r->origin, &d->origin))
		return FB_ERR_NOMEM;
	l->n++;
	return FB_OK;
}

fb_rc
fb_store_audit_list_add(struct fb_audit_list *l, const struct fb_audit_record *rec)
{
	struct fb_audit_record *d;

	if (!grow((void **)&l->v, l->n, sizeof(*l->v)))
		return FB_ERR_NOMEM;
	d = &l->v[l->n];
	*d = *rec;
	if (!arena_dup(&l->strings, rec->correlation, &d->correlation) ||
	    !arena_dup(&l->strings, rec->tenant, &d->tenant) ||
	    !arena_dup(&l->strings, rec->fid, &d->fid) ||
	    !arena_dup(&l->strings, rec->provider, &d->provider) ||
	    !arena_dup(&l->strings, rec->audience, &d->audience) ||
	    !arena_dup(&l->strings, rec->jti, &d->jti) ||
	    !arena_dup(&l->strings, rec->rule, &d->rule) ||
	    !arena_dup(&l->strings, rec->actor, &d->actor) ||
	    !arena_dup(&l->strings, rec->detail, &d->detail))
		return FB_ERR_NOMEM;
	l->n++;
	return FB_OK;
}

void
fb_revocation_list_free(struct fb_revocation_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	arena_free(l->strings);
	memset(l, 0, sizeof(*l));
}

void
fb_audit_list_free(struct fb_audit_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	arena_free(l->strings);
	memset(l, 0, sizeof(*l));
}

/* ---- open and close ---- */

static void *purge_main(void *arg);

bool
fb_store_epoch_valid(const char *e)
{
	size_t i;

	for (i = 0; e[i] != '\0'; i++)
		if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'f')))
			return false;
	return i == FB_STORE_EPOCH_LEN;
}

/* The identity kept in the store, or a fresh random one it keeps from now on. */
static fb_rc
store_epoch(struct fb_store *st, struct fb_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[FB_STORE_EPOCH_LEN / 2];
	char fresh[FB_STORE_EPOCH_LEN + 1];
	fb_rc rc;

	if (fb_random_bytes(raw, sizeof(raw)) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_INTERNAL, "no random bytes for the store's identity");
	for (size_t i = 0; i < sizeof(raw); i++) {
		fresh[2 * i] = hex[raw[i] >> 4];
		fresh[2 * i + 1] = hex[raw[i] & 0xf];
	}
	fresh[FB_STORE_EPOCH_LEN] = '\0';
	if ((rc = st->ops->epoch(st, fresh, st->epoch, err)) != FB_OK)
		return rc;
	if (!fb_store_epoch_valid(st->epoch))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the store's identity (store_identity) is not %d hex digits: %.40s",
		    FB_STORE_EPOCH_LEN, st->epoch);
	return FB_OK;
}

const char *
fb_store_epoch(const struct fb_store *st)
{
	return st != NULL ? st->epoch : "";
}

fb_rc
fb_store_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err)
{
	struct fb_store_opts o; /* opts, with the defaults filled in */
	struct fb_store *st = NULL;
	fb_rc rc;

	if (opts == NULL || out == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no store options");
	o = *opts;
	if (o.kind != FB_STORE_MEMORY && (o.location == NULL || o.location[0] == '\0'))
		return FB_ERR_SET(err, FB_ERR_INVALID, "the store needs a location");
	if (o.audit_retention == 0)
		o.audit_retention = FB_AUDIT_RETENTION_DEFAULT;
	/* The SQL stores refuse a shorter one too: their triggers hold the same floor. */
	if (o.audit_retention < FB_AUDIT_RETENTION_MIN)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the audit retention must be at least %d seconds, got %lld",
		    FB_AUDIT_RETENTION_MIN, (long long)o.audit_retention);
	switch (o.kind) {
	case FB_STORE_MEMORY:
		rc = fb_store_memory_open(&o, &st, err);
		break;
	case FB_STORE_EMBEDDED:
		rc = fb_store_sqlite_open(&o, &st, err);
		break;
	case FB_STORE_POSTGRESQL:
		rc = fb_store_pg_open(&o, &st, err);
		break;
	default:
		return FB_ERR_SET(err, FB_ERR_INVALID, "unknown store kind %d", (int)o.kind);
	}
	if (rc != FB_OK)
		return rc;
	st->kind = o.kind;
	st->purge_interval = o.purge_interval;
	st->audit_retention = o.audit_retention;
	if ((rc = store_epoch(st, err)) != FB_OK) {
		st->ops->close(st);
		return rc;
	}
	st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->wake_fd < 0) {
		rc = FB_ERR_SET(err, FB_ERR_IO, "eventfd: %s", strerror(errno));
		st->ops->close(st);
		return rc;
	}
	pthread_mutex_init(&st->watch_lock, NULL);
	pthread_mutex_init(&st->purge_lock, NULL);
	pthread_cond_init(&st->purge_cond, NULL);
	if (st->purge_interval > 0) {
		if (pthread_create(&st->purge_thread, NULL, purge_main, st) != 0) {
			fb_store_close(st);
			return FB_ERR_SET(err, FB_ERR_INTERNAL, "could not start the purge thread");
		}
		st->purging = true;
	}
	*out = st;
	return FB_OK;
}

fb_rc
fb_store_open_conf(const struct fb_conf *conf, struct fb_store **out, struct fb_err *err)
{
	struct fb_store_opts o = { 0 };
	char *password = NULL;
	size_t len = 0;
	fb_rc rc;

	o.kind = conf->store.kind;
	o.location = conf->store.location;
	o.purge_interval = STORE_PURGE_INTERVAL;
	o.audit_retention = conf->store.audit_retention;
	if (conf->store.password_file != NULL) {
		if ((rc = fb_secret_read(conf->store.password_file, FB_SECRET_SHORT_MAX, &password,
		         &len, err)) != FB_OK)
			return rc;
		while (len > 0 && (password[len - 1] == '\n' || password[len - 1] == '\r'))
			password[--len] = '\0';
		o.password = password;
	}
	rc = fb_store_open(&o, out, err);
	fb_secret_free(password);
	return rc;
}

void
fb_store_close(struct fb_store *st)
{
	if (st == NULL)
		return;
	fb_store_unwatch(st);
	if (st->purging) {
		pthread_mutex_lock(&st->purge_lock);
		st->purge_stop = true;
		pthread_cond_signal(&st->purge_cond);
		pthread_mutex_unlock(&st->purge_lock);
		pthread_join(st->purge_thread, NULL);
	}
	pthread_mutex_destroy(&st->watch_lock);
	pthread_mutex_destroy(&st->purge_lock);
	pthread_cond_destroy(&st->purge_cond);
	(void)close(st->wake_fd);
	st->ops->close(st);
}

/* ---- sessions ---- */

/*
 * Counts a failure of the store itself (it did not answer, or broke): not a
 * refusal of bad input, an absent record or a cap, which are the caller's.
 */
static fb_rc
counted(struct fb_store *st, enum fb_store_op op, fb_rc rc)
{
	if (rc != FB_OK && rc != FB_ERR_NOTFOUND && rc != FB_ERR_INVALID && rc != FB_ERR_LIMIT)
		atomic_fetch_add_explicit(&st->errors[op], 1, memory_order_relaxed);
	return rc;
}

const char *
fb_store_op_name(enum fb_store_op op)
{
	static const char *const names[FB_STORE_OPS] = {
		[FB_STORE_OP_SESSION_PUT] = "session_put",
		[FB_STORE_OP_SESSION_GET] = "session_get",
		[FB_STORE_OP_SESSION_TOUCH] = "session_touch",
		[FB_STORE_OP_SESSION_DELETE] = "session_delete",
		[FB_STORE_OP_SESSION_LIST] = "session_list",
		[FB_STORE_OP_PURGE] = "purge",
		[FB_STORE_OP_REVOKE] = "revoke",
		[FB_STORE_OP_REVOCATIONS_SINCE] = "revocations_since",
		[FB_STORE_OP_REVOCATION_SEQ] = "revocation_seq",
		[FB_STORE_OP_REVOKED] = "revoked",
		[FB_STORE_OP_ONCE_CONSUME] = "once_consume",
		[FB_STORE_OP_AUDIT_APPEND] = "audit_append",
		[FB_STORE_OP_AUDIT_LIST] = "audit_list",
		[FB_STORE_OP_CURSOR_GET] = "cursor_get",
		[FB_STORE_OP_CURSOR_SET] = "cursor_set",
		[FB_STORE_OP_REVOCATION_COUNT] = "revocation_count",
		[FB_STORE_OP_WATCH] = "watch",
	};

	/* An operation added without a name here still renders, as "unknown". */
	return (unsigned)op < FB_STORE_OPS && names[op] != NULL ? names[op] : "unknown";
}

uint64_t
fb_store_errors(struct fb_store *st, enum fb_store_op op)
{
	return st != NULL && (unsigned)op < FB_STORE_OPS
	    ? atomic_load_explicit(&st->errors[op], memory_order_relaxed)
	    : 0;
}

fb_rc
fb_store_session_put(struct fb_store *st, const struct fb_session *s, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_session(s, err)) != FB_OK)
		return rc;
	return counted(st, FB_STORE_OP_SESSION_PUT, st->ops->session_put(st, s, err));
}

fb_rc
fb_store_session_get(
    struct fb_store *st, const char *id, struct fb_session *out, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_sid("session id", id, err)) != FB_OK)
		return rc;
	if (out == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no session to fill");
	return counted(st, FB_STORE_OP_SESSION_GET, st->ops->session_get(st, id, out, err));
}

fb_rc
fb_store_session_touch(
    struct fb_store *st, const char *id, int64_t now, struct fb_session *out, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_sid("session id", id, err)) != FB_OK)
		return rc;
	return counted(
	    st, FB_STORE_OP_SESSION_TOUCH, st->ops->session_touch(st, id, now, out, err));
}

fb_rc
fb_store_session_delete(struct fb_store *st, const char *id, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_sid("session id", id, err)) != FB_OK)
		return rc;
	return counted(st, FB_STORE_OP_SESSION_DELETE, st->ops->session_delete(st, id, err));
}

fb_rc
fb_store_session_list(struct fb_store *st, const struct fb_session_filter *f, struct fb_session **v,
    size_t *n, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if (f == NULL || v == NULL || n == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no filter or result given");
	if ((rc = check_limit(f->limit, err)) != FB_OK ||
	    (rc = check_text("tenant", f->tenant, FB_STORE_NAME_MAX, false, err)) != FB_OK ||
	    (rc = check_text("fid", f->fid, FB_STORE_NAME_MAX, false, err)) != FB_OK ||
	    (rc = check_text("issuer", f->issuer, FB_STORE_URI_MAX, false, err)) != FB_OK ||
	    (rc = check_text("subject", f->subject, FB_STORE_URI_MAX, false, err)) != FB_OK ||
	    (rc = check_text("idp_session", f->idp_session, FB_STORE_URI_MAX, false, err)) !=
	        FB_OK ||
	    (f->after != NULL && (rc = check_sid("after", f->after, err)) != FB_OK))
		return rc;
	*v = NULL;
	*n = 0;
	return counted(st, FB_STORE_OP_SESSION_LIST, st->ops->session_list(st, f, v, n, err));
}

fb_rc
fb_store_revocation_sessions(struct fb_store *st, const struct fb_revocation *r,
    fb_rc (*each)(void *arg, const char *session_id, struct fb_err *err), void *arg,
    struct fb_err *err)
{
	struct fb_session_filter f = { .issuer = r->issuer, .limit = FB_STORE_LIST_MAX };
	char after[FB_SESSION_ID_LEN + 1] = "";
	struct fb_session *list = NULL;
	size_t n = 0;
	fb_rc rc;

	if (r->kind == FB_REVOCATION_SUBJECT)
		f.subject = r->value;
	else if (r->kind == FB_REVOCATION_IDP_SESSION)
		f.idp_session = r->value;
	else
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "only an IdP subject or session has sessions");
	do {
		f.after = after[0] != '\0' ? after : NULL;
		if ((rc = fb_store_session_list(st, &f, &list, &n, err)) != FB_OK)
			return rc;
		for (size_t i = 0; i < n && rc == FB_OK; i++)
			rc = each(arg, list[i].id, err);
		if (n > 0)
			memcpy(after, list[n - 1].id, sizeof(after));
		fb_session_array_free(list, n);
	} while (rc == FB_OK && n == FB_STORE_LIST_MAX);
	return rc;
}

fb_rc
fb_store_purge(struct fb_store *st, int64_t now, struct fb_purge_counts *counts, struct fb_err *err)
{
	struct fb_purge_counts c = { 0 };
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if ((rc = counted(st, FB_STORE_OP_PURGE, st->ops->purge(st, now, &c, err))) == FB_OK &&
	    counts != NULL)
		*counts = c;
	return rc;
}

/*
 * What a background purge removed. Deleting audit records is worth a line
 * at info (the trail shrinks); the routine rest only at debug.
 */
static void
log_purge(const struct fb_purge_counts *c)
{
	if (c->sessions + c->revocations + c->once + c->audit == 0)
		return;
	fb_log(c->audit > 0 ? FB_LOG_INFO : FB_LOG_DEBUG,
	    "store purge: removed %zu sessions, %zu revocations, %zu one-time values, "
	    "%zu audit records",
	    c->sessions, c->revocations, c->once, c->audit);
}

static void *
purge_main(void *arg)
{
	struct fb_store *st = arg;
	struct fb_purge_counts c;
	struct fb_err err = { 0 };
	struct timespec ts;

	pthread_mutex_lock(&st->purge_lock);
	while (!st->purge_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += st->purge_interval;
		(void)pthread_cond_timedwait(&st->purge_cond, &st->purge_lock, &ts);
		if (st->purge_stop)
			break;
		pthread_mutex_unlock(&st->purge_lock);
		/* Nobody waits on this thread: a failure is logged and retried next round. */
		c = (struct fb_purge_counts){ 0 };
		if (counted(st, FB_STORE_OP_PURGE,
		        st->ops->purge(st, (int64_t)time(NULL), &c, &err)) != FB_OK)
			fb_log(FB_LOG_WARN, "store purge: %s", err.msg);
		else
			log_purge(&c);
		pthread_mutex_lock(&st->purge_lock);
	}
	pthread_mutex_unlock(&st->purge_lock);
	return NULL;
}

/* ---- revocations ---- */

static void
wake(struct fb_store *st)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated, which wakes the thread anyway. */
	if (write(st->wake_fd, &one, sizeof(one)) < 0)
		return;
}

fb_rc
fb_store_revoke(struct fb_store *st, const struct fb_revocation *r, int64_t now, int64_t *seq,
    struct fb_err *err)
{
	int64_t s = 0;
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_revocation(r, now, err)) != FB_OK)
		return rc;
	if ((rc = counted(st, FB_STORE_OP_REVOKE, st->ops->revoke(st, r, now, &s, err))) != FB_OK)
		return rc;
	wake(st);
	if (seq != NULL)
		*seq = s;
	return FB_OK;
}

fb_rc
fb_store_revocations_since(struct fb_store *st, int64_t cursor, size_t limit,
    struct fb_revocation_list *out, struct fb_err *err)
{
	struct fb_revocation_list l = { 0 };
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_limit(limit, err)) != FB_OK)
		return rc;
	if (out == NULL || cursor < 0)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "a cursor is 0 or more, and a list is needed");
	if ((rc = counted(st, FB_STORE_OP_REVOCATIONS_SINCE,
	         st->ops->revocations_since(st, cursor, limit, &l, err))) != FB_OK) {
		fb_revocation_list_free(&l);
		return rc;
	}
	fb_revocation_list_free(out);
	*out = l;
	return FB_OK;
}

fb_rc
fb_store_revocation_head(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if (seq == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	return counted(st, FB_STORE_OP_REVOCATION_SEQ, st->ops->revocation_head(st, seq, err));
}

fb_rc
fb_store_revocation_seq(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if (seq == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	return counted(st, FB_STORE_OP_REVOCATION_SEQ, st->ops->revocation_seq(st, seq, err));
}

fb_rc
fb_store_revoked(struct fb_store *st, const struct fb_revocation_query *q, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err)
{
	enum fb_revocation_kind k = FB_REVOCATION_NONE;
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_query(q, err)) != FB_OK)
		return rc;
	if (kind == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	if ((rc = counted(st, FB_STORE_OP_REVOKED, st->ops->revoked(st, q, now, &k, err))) == FB_OK)
		*kind = k;
	return rc;
}

fb_rc
fb_store_session_revoked(struct fb_store *st, const struct fb_session *s, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err)
{
	struct fb_revocation_query q;

	if (s == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no session given");
	q = (struct fb_revocation_query){
		.session_id = s->id,
		.fid = s->fid,
		.tenant = s->tenant,
		.issuer = s->issuer,
		.subject = s->subject,
		.idp_session = s->idp_session,
		.issued_at = s->created,
	};
	return fb_store_revoked(st, &q, now, kind, err);
}

/* ---- watch ---- */

static void
drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		continue;
}

/*
 * Delivers what is new since *last; true when a full batch came back (more
 * may be waiting). Failures (a server down) are logged once per outage: the
 * next round catches up from *last, so nothing is skipped.
 */
static bool
watch_deliver(struct fb_store *st, int64_t *last, bool *failing)
{
	struct fb_revocation_list l = { 0 };
	struct fb_err err = { 0 };
	bool more;

	if (counted(st, FB_STORE_OP_WATCH,
	        st->ops->revocations_since(st, *last, WATCH_BATCH, &l, &err)) != FB_OK) {
		if (!*failing)
			fb_log(FB_LOG_WARN, "store watch: %s (will catch up)", err.msg);
		*failing = true;
		fb_revocation_list_free(&l);
		return false;
	}
	if (*failing)
		fb_log(FB_LOG_INFO, "store watch: reading revocations again");
	*failing = false;
	for (size_t i = 0; i < l.n && !atomic_load(&st->watch_stop); i++) {
		st->watch_cb(st->watch_arg, &l.v[i]);
		*last = l.v[i].seq;
	}
	more = l.n == WATCH_BATCH;
	fb_revocation_list_free(&l);
	return more;
}

static void *
watch_main(void *arg)
{
	struct fb_store *st = arg;
	struct pollfd pfd = { .fd = st->wake_fd, .events = POLLIN };
	struct fb_err err = { 0 };
	int64_t last = st->watch_after;
	bool failing = false;

	while (!atomic_load(&st->watch_stop)) {
		if (watch_deliver(st, &last, &failing))
			continue;
		if (atomic_load(&st->watch_stop))
			break;
		if (st->ops->watch_wait != NULL) {
			if (counted(st, FB_STORE_OP_WATCH,
			        st->ops->watch_wait(st, st->ops->watch_poll_ms, &err)) != FB_OK) {
				/* The listener lost its server: it reconnects with backoff. */
				(void)poll(&pfd, 1, 200);
			}
		} else {
			(void)poll(&pfd, 1, st->ops->watch_poll_ms);
		}
		drain(st->wake_fd);
	}
	return NULL;
}

fb_rc
fb_store_watch(
    struct fb_store *st, int64_t after, fb_store_watch_fn cb, void *arg, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if (cb == NULL || after < FB_STORE_WATCH_NEW)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a watch needs a callback and a cursor");
	pthread_mutex_lock(&st->watch_lock);
	if (st->watching) {
		pthread_mutex_unlock(&st->watch_lock);
		return FB_ERR_SET(err, FB_ERR_INVALID, "the store is already watched");
	}
	if (after == FB_STORE_WATCH_NEW &&
	    (rc = counted(st, FB_STORE_OP_REVOCATION_SEQ,
	         st->ops->revocation_seq(st, &after, err))) != FB_OK) {
		pthread_mutex_unlock(&st->watch_lock);
		return rc;
	}
	st->watch_cb = cb;
	st->watch_arg = arg;
	st->watch_after = after;
	atomic_store(&st->watch_stop, false);
	if (pthread_create(&st->watch_thread, NULL, watch_main, st) != 0) {
		pthread_mutex_unlock(&st->watch_lock);
		return FB_ERR_SET(err, FB_ERR_INTERNAL, "could not start the watch thread");
	}
	st->watching = true;
	pthread_mutex_unlock(&st->watch_lock);
	return FB_OK;
}

void
fb_store_unwatch(struct fb_store *st)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->watch_lock);
	if (st->watching) {
		atomic_store(&st->watch_stop, true);
		wake(st);
		pthread_join(st->watch_thread, NULL);
		st->watching = false;
		drain(st->wake_fd);
	}
	pthread_mutex_unlock(&st->watch_lock);
}

/* ---- one-time use, audit, cursors ---- */

static fb_rc
check_once_kind(enum fb_once_kind kind, struct fb_err *err)
{
	switch (kind) {
	case FB_ONCE_SAML_ASSERTION:
	case FB_ONCE_OIDC_STATE:
	case FB_ONCE_OIDC_NONCE:
	case FB_ONCE_AUTH_CODE:
	case FB_ONCE_LOGOUT_TOKEN:
	case FB_ONCE_CLIENT_ASSERTION:
	case FB_ONCE_SAML_REQUEST:
	case FB_ONCE_SAML_LOGOUT:
		return FB_OK;
	}
	return FB_ERR_SET(err, FB_ERR_INVALID, "unknown one-time kind %d", (int)kind);
}

fb_rc
fb_store_once_consume(struct fb_store *st, enum fb_once_kind kind, const char *value,
    int64_t expires, int64_t now, bool *first, struct fb_err *err)
{
	bool f = false;
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_once_kind(kind, err)) != FB_OK ||
	    (rc = check_text("one-time value", value, FB_STORE_URI_MAX, true, err)) != FB_OK)
		return rc;
	if (first == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	if (expires <= now)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "a one-time value must expire in the future");
	if ((rc = counted(st, FB_STORE_OP_ONCE_CONSUME,
	         st->ops->once_consume(st, kind, value, expires, now, &f, err))) == FB_OK)
		*first = f;
	return rc;
}

fb_rc
fb_store_audit_append(
    struct fb_store *st, const struct fb_audit_record *rec, int64_t *id, struct fb_err *err)
{
	struct fb_audit_record safe; /* the record as stored: every text through audit_text */
	char *copies[N_AUDIT_TEXTS] = { NULL };
	int64_t i = 0;
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK)
		return rc;
	if (rec == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no audit record given");
	if (fb_audit_kind_name(rec->kind) == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "unknown audit kind %d", (int)rec->kind);
	if (rec->time <= 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "an audit record needs a time");
	safe = *rec;
	for (size_t k = 0; k < N_AUDIT_TEXTS && rc == FB_OK; k++) {
		const char *v = *(const char *const *)((const char *)rec + audit_texts[k].offset);
		rc = audit_text(audit_texts[k].name, v, audit_texts[k].max, &copies[k], err);
		*(const char **)((char *)&safe + audit_texts[k].offset) = copies[k];
	}
	if (rc == FB_OK &&
	    (rc = counted(st, FB_STORE_OP_AUDIT_APPEND,
	         st->ops->audit_append(st, &safe, &i, err))) == FB_OK &&
	    id != NULL)
		*id = i;
	for (size_t k = 0; k < N_AUDIT_TEXTS; k++)
		free(copies[k]);
	return rc;
}

fb_rc
fb_store_audit_list(
    struct fb_store *st, int64_t after, size_t limit, struct fb_audit_list *out, struct fb_err *err)
{
	struct fb_audit_list l = { 0 };
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK || (rc = check_limit(limit, err)) != FB_OK)
		return rc;
	if (out == NULL || after < 0)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "a cursor is 0 or more, and a list is needed");
	if ((rc = counted(st, FB_STORE_OP_AUDIT_LIST,
	         st->ops->audit_list(st, after, limit, &l, err))) != FB_OK) {
		fb_audit_list_free(&l);
		return rc;
	}
	fb_audit_list_free(out);
	*out = l;
	return FB_OK;
}

fb_rc
fb_store_cursor_get(
    struct fb_store *st, const char *remote, struct fb_feed_cursor *cursor, struct fb_err *err)
{
	struct fb_feed_cursor c = { 0 };
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_text("remote", remote, FB_STORE_NAME_MAX, true, err)) != FB_OK)
		return rc;
	if (cursor == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	if ((rc = counted(st, FB_STORE_OP_CURSOR_GET, st->ops->cursor_get(st, remote, &c, err))) !=
	    FB_OK)
		return rc;
	/* What the store holds is checked like what comes in: a bad row is not a cursor. */
	if (c.seq < 0 || c.iat < 0 || (c.epoch[0] != '\0' && !fb_store_epoch_valid(c.epoch)))
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "the feed cursor of %s in the store is damaged", remote);
	*cursor = c;
	return FB_OK;
}

fb_rc
fb_store_cursor_set(struct fb_store *st, const char *remote, const struct fb_feed_cursor *cursor,
    struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_text("remote", remote, FB_STORE_NAME_MAX, true, err)) != FB_OK)
		return rc;
	if (cursor == NULL || cursor->seq < 0 || cursor->iat < 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a cursor is 0 or more");
	if (memchr(cursor->epoch, '\0', sizeof(cursor->epoch)) == NULL ||
	    (cursor->epoch[0] != '\0' && !fb_store_epoch_valid(cursor->epoch)))
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "a store identity is %d hex digits", FB_STORE_EPOCH_LEN);
	return counted(st, FB_STORE_OP_CURSOR_SET, st->ops->cursor_set(st, remote, cursor, err));
}

fb_rc
fb_store_revocation_count(
    struct fb_store *st, const char *origin, int64_t now, int64_t *n, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = check_store(st, err)) != FB_OK ||
	    (rc = check_text("origin", origin, FB_STORE_NAME_MAX, true, err)) != FB_OK)
		return rc;
	if (n == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "no result given");
	return counted(
	    st, FB_STORE_OP_REVOCATION_COUNT, st->ops->revocation_count(st, origin, now, n, err));
}
