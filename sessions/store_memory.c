/*
 * The memory backend: hash tables under one mutex. It is the reference the
 * backend-agnostic tests hold the durable backends to, and what tests use
 * when nothing must outlive the process. Each record is one allocation with
 * its strings packed behind it, which keeps a session well under 2 KiB.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry of a string-keyed chained hash table. */
struct ment {
	struct ment *next;
	uint64_t hash;
	int64_t aux; /* a small value: an expiry, a cursor */
	void *val; /* owned; freed with free() */
	char key[];
};

struct mmap {
	struct ment **b;
	size_t nb; /* a power of two, or 0 */
	size_t n;
};

/* One key of the revocation index: the (before, until) of each revocation with that key. */
struct mrev_key {
	size_t n;
	struct {
		int64_t before, until;
	} v[];
};

struct mem_store {
	struct fb_store base;
	pthread_mutex_t lock;
	struct mmap sessions; /* id -> packed struct fb_session */
	struct mmap revidx; /* "kind\x1fissuer\x1fvalue" -> struct mrev_key */
	struct fb_revocation **revs; /* the log, by seq; packed */
	size_t nrevs, caprevs;
	int64_t rev_seq;
	struct mmap once; /* "kind\x1fvalue" -> aux: expiry */
	struct fb_audit_record **audit; /* packed, by increasing id; purged ones removed */
	size_t naudit, capaudit;
	int64_t audit_last_id; /* never lowered: a purge does not give an id out twice */
	struct mmap cursors; /* remote -> val: struct fb_feed_cursor */
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct ment **
mmap_slot(struct mmap *m, const char *key, uint64_t h)
{
	struct ment **p;

	if (m->nb == 0)
		return NULL;
	for (p = &m->b[h & (m->nb - 1)]; *p != NULL; p = &(*p)->next)
		if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
			return p;
	return p;
}

static struct ment *
mmap_get(struct mmap *m, const char *key)
{
	struct ment **p = mmap_slot(m, key, hash_str(key));

	return p != NULL ? *p : NULL;
}

static bool
mmap_grow(struct mmap *m)
{
	size_t nb = m->nb == 0 ? 64 : m->nb * 2;
	struct ment **b = calloc(nb, sizeof(struct ment *)), *e, *next;

	if (b == NULL)
		return false;
	for (size_t i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return true;
}

/* The entry for key, created (val NULL, aux 0) when absent; NULL on no memory. */
static struct ment *
mmap_put(struct mmap *m, const char *key)
{
	uint64_t h = hash_str(key);
	struct ment **p, *e;
	size_t klen = strlen(key) + 1;

	if (m->n >= m->nb && !mmap_grow(m))
		return NULL;
	p = mmap_slot(m, key, h);
	if (*p != NULL)
		return *p;
	if ((e = calloc(1, sizeof(*e) + klen)) == NULL)
		return NULL;
	e->hash = h;
	memcpy(e->key, key, klen);
	*p = e;
	m->n++;
	return e;
}

static bool
mmap_del(struct mmap *m, const char *key)
{
	struct ment **p = mmap_slot(m, key, hash_str(key)), *e;

	if (p == NULL || *p == NULL)
		return false;
	e = *p;
	*p = e->next;
	free(e->val);
	free(e);
	m->n--;
	return true;
}

static void
mmap_free(struct mmap *m)
{
	struct ment *e, *next;

	for (size_t i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e->val);
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* ---- packed records ---- */

static size_t
slen(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

/* Copies s to *p and advances it; the copy (or NULL) is returned. */
static char *
put(char **p, const char *s)
{
	char *d;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	d = memcpy(*p, s, n);
	*p += n;
	return d;
}

static struct fb_session *
pack_session(const struct fb_session *s)
{
	size_t n = slen(s->fid) + slen(s->tenant) + slen(s->provider) + slen(s->issuer) +
	    slen(s->subject) + slen(s->idp_session) + slen(s->acr) + slen(s->amr) + slen(s->attrs);
	struct fb_session *d = malloc(sizeof(*d) + n);
	char *p;

	if (d == NULL)
		return NULL;
	*d = *s;
	p = (char *)(d + 1);
	d->fid = put(&p, s->fid);
	d->tenant = put(&p, s->tenant);
	d->provider = put(&p, s->provider);
	d->issuer = put(&p, s->issuer);
	d->subject = put(&p, s->subject);
	d->idp_session = put(&p, s->idp_session);
	d->acr = put(&p, s->acr);
	d->amr = put(&p, s->amr);
	d->attrs = put(&p, s->attrs);
	return d;
}

static struct fb_revocation *
pack_revocation(const struct fb_revocation *r)
{
	size_t n =
	    slen(r->issuer) + slen(r->value) + slen(r->reason) + slen(r->actor) + slen(r->origin);
	struct fb_revocation *d = malloc(sizeof(*d) + n);
	char *p;

	if (d == NULL)
		return NULL;
	*d = *r;
	p = (char *)(d + 1);
	d->issuer = put(&p, r->issuer);
	d->value = put(&p, r->value);
	d->reason = put(&p, r->reason);
	d->actor = put(&p, r->actor);
	d->origin = put(&p, r->origin);
	return d;
}

static struct fb_audit_record *
pack_audit(const struct fb_audit_record *r)
{
	size_t n = slen(r->correlation) + slen(r->tenant) + slen(r->fid) + slen(r->provider) +
	    slen(r->audience) + slen(r->jti) + slen(r->rule) + slen(r->actor) + slen(r->detail);
	struct fb_audit_record *d = malloc(sizeof(*d) + n);
	char *p;

	if (d == NULL)
		return NULL;
	*d = *r;
	p = (char *)(d + 1);
	d->correlation = put(&p, r->correlation);
	d->tenant = put(&p, r->tenant);
	d->fid = put(&p, r->fid);
	d->provider = put(&p, r->provider);
	d->audience = put(&p, r->audience);
	d->jti = put(&p, r->jti);
	d->rule = put(&p, r->rule);
	d->actor = put(&p, r->actor);
	d->detail = put(&p, r->detail);
	return d;
}

static struct mem_store *
mem(struct fb_store *st)
{
	return (struct mem_store *)st;
}

static fb_rc
nomem(struct fb_err *err)
{
	return FB_ERR_SET(err, FB_ERR_NOMEM, "memory store: out of memory");
}

/* ---- sessions ---- */

static fb_rc
m_session_put(struct fb_store *st, const struct fb_session *s, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_session *d = pack_session(s);
	struct ment *e;

	if (d == NULL)
		return nomem(err);
	pthread_mutex_lock(&m->lock);
	if ((e = mmap_put(&m->sessions, s->id)) == NULL) {
		pthread_mutex_unlock(&m->lock);
		free(d);
		return nomem(err);
	}
	free(e->val);
	e->val = d;
	pthread_mutex_unlock(&m->lock);
	return FB_OK;
}

static fb_rc
m_session_get(struct fb_store *st, const char *id, struct fb_session *out, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct ment *e;
	fb_rc rc;

	pthread_mutex_lock(&m->lock);
	e = mmap_get(&m->sessions, id);
	if (e == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s", id);
	else if ((rc = fb_store_session_copy(out, e->val)) != FB_OK)
		rc = nomem(err);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static fb_rc
m_session_touch(
    struct fb_store *st, const char *id, int64_t now, struct fb_session *out, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_session *s;
	struct ment *e;
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&m->lock);
	e = mmap_get(&m->sessions, id);
	if (e == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s", id);
	} else if (fb_store_session_ended(s = e->val, now)) {
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "session %s has expired", id);
	} else {
		if (now > s->last_seen)
			s->last_seen = now;
		if (out != NULL && fb_store_session_copy(out, s) != FB_OK)
			rc = nomem(err);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static fb_rc
m_session_delete(struct fb_store *st, const char *id, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	bool found;

	pthread_mutex_lock(&m->lock);
	found = mmap_del(&m->sessions, id);
	pthread_mutex_unlock(&m->lock);
	return found ? FB_OK : FB_ERR_SET(err, FB_ERR_NOTFOUND, "no session %s", id);
}

static bool
opt_eq(const char *want, const char *have)
{
	return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

static bool
session_matches(const struct fb_session_filter *f, const struct fb_session *s)
{
	return opt_eq(f->tenant, s->tenant) && opt_eq(f->fid, s->fid) &&
	    opt_eq(f->issuer, s->issuer) && opt_eq(f->subject, s->subject) &&
	    opt_eq(f->idp_session, s->idp_session) &&
	    (f->after == NULL || strcmp(s->id, f->after) > 0);
}

static int
cmp_session_ptr(const void *a, const void *b)
{
	const struct fb_session *x = *(const struct fb_session *const *)a;
	const struct fb_session *y = *(const struct fb_session *const *)b;

	return strcmp(x->id, y->id);
}

static fb_rc
m_session_list(struct fb_store *st, const struct fb_session_filter *f, struct fb_session **v,
    size_t *n, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_session **hits = NULL, *out = NULL;
	size_t nh = 0, k;
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&m->lock);
	if ((hits = calloc(m->sessions.n + 1, sizeof(struct fb_session *))) == NULL) {
		pthread_mutex_unlock(&m->lock);
		return nomem(err);
	}
	for (size_t i = 0; i < m->sessions.nb; i++)
		for (struct ment *e = m->sessions.b[i]; e != NULL; e = e->next)
			if (session_matches(f, e->val))
				hits[nh++] = e->val;
	if (nh > 1)
		qsort(hits, nh, sizeof(struct fb_session *), cmp_session_ptr);
	k = nh < f->limit ? nh : f->limit;
	if (k > 0 && (out = calloc(k, sizeof(*out))) == NULL)
		rc = nomem(err);
	for (size_t i = 0; rc == FB_OK && i < k; i++)
		if (fb_store_session_copy(&out[i], hits[i]) != FB_OK) {
			fb_session_array_free(out, i);
			out = NULL;
			rc = nomem(err);
		}
	pthread_mutex_unlock(&m->lock);
	free(hits);
	if (rc == FB_OK) {
		*v = out;
		*n = k;
	}
	return rc;
}

/* ---- revocations ---- */

static void
rev_key(char *buf, size_t size, enum fb_revocation_kind kind, const char *issuer, const char *value)
{
	(void)snprintf(buf, size, "%d\x1f%s\x1f%s", (int)kind, issuer != NULL ? issuer : "", value);
}

static bool
index_add(struct mem_store *m, const struct fb_revocation *r)
{
	char key[16 + FB_STORE_URI_MAX * 2];
	struct mrev_key *k, *nk;
	struct ment *e;

	rev_key(key, sizeof(key), r->kind, r->issuer, r->value);
	if ((e = mmap_put(&m->revidx, key)) == NULL)
		return false;
	k = e->val;
	nk = realloc(k, sizeof(*k) + ((k != NULL ? k->n : 0) + 1) * sizeof(k->v[0]));
	if (nk == NULL)
		return false;
	if (k == NULL)
		nk->n = 0;
	nk->v[nk->n].before = r->before;
	nk->v[nk->n].until = r->until;
	nk->n++;
	e->val = nk;
	return true;
}

static fb_rc
m_revoke(struct fb_store *st, const struct fb_revocation *r, int64_t now, int64_t *seq,
    struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_revocation *d;
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&m->lock);
	if (m->nrevs == m->caprevs) {
		size_t cap = m->caprevs == 0 ? 64 : m->caprevs * 2;
		struct fb_revocation **nv = realloc(m->revs, cap * sizeof(struct fb_revocation *));

		if (nv == NULL) {
			pthread_mutex_unlock(&m->lock);
			return nomem(err);
		}
		m->revs = nv;
		m->caprevs = cap;
	}
	if ((d = pack_revocation(r)) == NULL || !index_add(m, r)) {
		free(d);
		rc = nomem(err);
	} else {
		d->seq = ++m->rev_seq;
		d->created = now;
		m->revs[m->nrevs++] = d;
		*seq = d->seq;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static fb_rc
m_revocations_since(struct fb_store *st, int64_t cursor, size_t limit,
    struct fb_revocation_list *out, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	size_t lo = 0, hi;
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&m->lock);
	/* The log is in seq order: find the first entry past the cursor. */
	hi = m->nrevs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->revs[mid]->seq <= cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < m->nrevs && out->n < limit && rc == FB_OK; i++)
		if (fb_store_rev_list_add(out, m->revs[i]) != FB_OK)
			rc = nomem(err);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static fb_rc
m_revocation_seq(struct fb_store *st, int64_t *seq, struct fb_err *err)
{
	struct mem_store *m = mem(st);

	(void)err;
	pthread_mutex_lock(&m->lock);
	*seq = m->rev_seq;
	pthread_mutex_unlock(&m->lock);
	return FB_OK;
}

/* Whether a revocation of this key is in force at now (for issued_at when before matters). */
static bool
index_hit(struct mem_store *m, enum fb_revocation_kind kind, const char *issuer, const char *value,
    int64_t now, int64_t issued_at)
{
	char key[16 + FB_STORE_URI_MAX * 2];
	struct mrev_key *k;
	struct ment *e;

	if (value == NULL || (kind == FB_REVOCATION_ISSUED_BEFORE && issued_at <= 0))
		return false;
	rev_key(key, sizeof(key), kind, issuer, value);
	if ((e = mmap_get(&m->revidx, key)) == NULL)
		return false;
	k = e->val;
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].until > now &&
		    (kind != FB_REVOCATION_ISSUED_BEFORE || k->v[i].before > issued_at))
			return true;
	return false;
}

static fb_rc
m_revoked(struct fb_store *st, const struct fb_revocation_query *q, int64_t now,
    enum fb_revocation_kind *kind, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	enum fb_revocation_kind k = FB_REVOCATION_NONE;

	(void)err;
	pthread_mutex_lock(&m->lock);
	if (index_hit(m, FB_REVOCATION_SESSION, NULL, q->session_id, now, 0))
		k = FB_REVOCATION_SESSION;
	else if (index_hit(m, FB_REVOCATION_FID, NULL, q->fid, now, 0))
		k = FB_REVOCATION_FID;
	else if (q->issuer != NULL &&
	    index_hit(m, FB_REVOCATION_SUBJECT, q->issuer, q->subject, now, 0))
		k = FB_REVOCATION_SUBJECT;
	else if (q->issuer != NULL &&
	    index_hit(m, FB_REVOCATION_IDP_SESSION, q->issuer, q->idp_session, now, 0))
		k = FB_REVOCATION_IDP_SESSION;
	else if (index_hit(m, FB_REVOCATION_TENANT, NULL, q->tenant, now, 0))
		k = FB_REVOCATION_TENANT;
	else if (index_hit(m, FB_REVOCATION_TRUST, NULL, q->trust, now, 0))
		k = FB_REVOCATION_TRUST;
	else if (index_hit(m, FB_REVOCATION_ISSUED_BEFORE, NULL, q->tenant, now, q->issued_at) ||
	    index_hit(m, FB_REVOCATION_ISSUED_BEFORE, NULL, "*", now, q->issued_at))
		k = FB_REVOCATION_ISSUED_BEFORE;
	pthread_mutex_unlock(&m->lock);
	*kind = k;
	return FB_OK;
}

/* ---- purge ---- */

static size_t
purge_sessions(struct mem_store *m, int64_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < m->sessions.nb; i++) {
		struct ment **p = &m->sessions.b[i], *e;

		while ((e = *p) != NULL) {
			if (fb_store_session_ended(e->val, now)) {
				*p = e->next;
				free(e->val);
				free(e);
				m->sessions.n--;
				n++;
			} else {
				p = &e->next;
			}
		}
	}
	return n;
}

static size_t
purge_once(struct mem_store *m, int64_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < m->once.nb; i++) {
		struct ment **p = &m->once.b[i], *e;

		while ((e = *p) != NULL) {
			if (e->aux <= now) {
				*p = e->next;
				free(e);
				m->once.n--;
				n++;
			} else {
				p = &e->next;
			}
		}
	}
	return n;
}

/* Drops revocations past until from the log and rebuilds the index from what is left. */
static fb_rc
purge_revocations(struct mem_store *m, int64_t now, size_t *count)
{
	size_t w = 0, n = 0;

	for (size_t i = 0; i < m->nrevs; i++) {
		if (m->revs[i]->until <= now) {
			free(m->revs[i]);
			n++;
		} else {
			m->revs[w++] = m->revs[i];
		}
	}
	m->nrevs = w;
	*count = n;
	if (n == 0)
		return FB_OK;
	mmap_free(&m->revidx);
	for (size_t i = 0; i < m->nrevs; i++)
		if (!index_add(m, m->revs[i]))
			return FB_ERR_NOMEM;
	return FB_OK;
}

/* Drops audit records older than cutoff, keeping the rest in id order. */
static size_t
purge_audit(struct mem_store *m, int64_t cutoff)
{
	size_t w = 0, n = 0;

	for (size_t i = 0; i < m->naudit; i++) {
		if (m->audit[i]->time < cutoff) {
			free(m->audit[i]);
			n++;
		} else {
			m->audit[w++] = m->audit[i];
		}
	}
	m->naudit = w;
	return n;
}

static fb_rc
m_purge(struct fb_store *st, int64_t now, struct fb_purge_counts *c, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	fb_rc rc;

	pthread_mutex_lock(&m->lock);
	c->sessions = purge_sessions(m, now);
	c->once = purge_once(m, now);
	c->audit = purge_audit(m, now - st->audit_retention);
	rc = purge_revocations(m, now, &c->revocations);
	pthread_mutex_unlock(&m->lock);
	return rc == FB_OK ? FB_OK : nomem(err);
}

/* ---- one-time use, audit, cursors ---- */

static fb_rc
m_once_consume(struct fb_store *st, enum fb_once_kind kind, const char *value, int64_t expires,
    int64_t now, bool *first, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	char key[16 + FB_STORE_URI_MAX];
	struct ment *e;

	(void)snprintf(key, sizeof(key), "%d\x1f%s", (int)kind, value);
	pthread_mutex_lock(&m->lock);
	if ((e = mmap_put(&m->once, key)) == NULL) {
		pthread_mutex_unlock(&m->lock);
		return nomem(err);
	}
	/* A new entry has aux 0; an expired one may be consumed again. */
	*first = e->aux <= now;
	if (*first)
		e->aux = expires;
	pthread_mutex_unlock(&m->lock);
	return FB_OK;
}

static fb_rc
m_audit_append(
    struct fb_store *st, const struct fb_audit_record *rec, int64_t *id, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_audit_record *d;

	pthread_mutex_lock(&m->lock);
	if (m->naudit == m->capaudit) {
		size_t cap = m->capaudit == 0 ? 64 : m->capaudit * 2;
		struct fb_audit_record **nv =
		    realloc(m->audit, cap * sizeof(struct fb_audit_record *));

		if (nv == NULL) {
			pthread_mutex_unlock(&m->lock);
			return nomem(err);
		}
		m->audit = nv;
		m->capaudit = cap;
	}
	if ((d = pack_audit(rec)) == NULL) {
		pthread_mutex_unlock(&m->lock);
		return nomem(err);
	}
	d->id = ++m->audit_last_id;
	m->audit[m->naudit++] = d;
	*id = d->id;
	pthread_mutex_unlock(&m->lock);
	return FB_OK;
}

static fb_rc
m_audit_list(
    struct fb_store *st, int64_t after, size_t limit, struct fb_audit_list *out, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	size_t lo = 0, hi;
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&m->lock);
	/* Ids increase along the array (with gaps where the purge took some): bisect. */
	hi = m->naudit;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->audit[mid]->id <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < m->naudit && out->n < limit && rc == FB_OK; i++)
		if (fb_store_audit_list_add(out, m->audit[i]) != FB_OK)
			rc = nomem(err);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static fb_rc
m_cursor_get(
    struct fb_store *st, const char *remote, struct fb_feed_cursor *cursor, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct ment *e;

	(void)err;
	pthread_mutex_lock(&m->lock);
	e = mmap_get(&m->cursors, remote);
	if (e != NULL && e->val != NULL)
		*cursor = *(const struct fb_feed_cursor *)e->val;
	else
		*cursor = (struct fb_feed_cursor){ 0 };
	pthread_mutex_unlock(&m->lock);
	return FB_OK;
}

static fb_rc
m_cursor_set(struct fb_store *st, const char *remote, const struct fb_feed_cursor *cursor,
    struct fb_err *err)
{
	struct mem_store *m = mem(st);
	struct fb_feed_cursor *c = malloc(sizeof(*c));
	struct ment *e = NULL;

	if (c == NULL)
		return nomem(err);
	*c = *cursor;
	pthread_mutex_lock(&m->lock);
	if ((e = mmap_put(&m->cursors, remote)) != NULL) {
		free(e->val);
		e->val = c;
		c = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	free(c);
	return e != NULL ? FB_OK : nomem(err);
}

static fb_rc
m_revocation_count(
    struct fb_store *st, const char *origin, int64_t now, int64_t *n, struct fb_err *err)
{
	struct mem_store *m = mem(st);
	int64_t k = 0;

	(void)err;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nrevs; i++)
		k += m->revs[i]->origin != NULL && strcmp(m->revs[i]->origin, origin) == 0 &&
		    m->revs[i]->until > now;
	pthread_mutex_unlock(&m->lock);
	*n = k;
	return FB_OK;
}

/* Memory dies with the process: every open is a new store. */
static fb_rc
m_epoch(
    struct fb_store *st, const char *fresh, char out[FB_STORE_EPOCH_LEN + 1], struct fb_err *err)
{
	(void)st;
	(void)err;
	memcpy(out, fresh, FB_STORE_EPOCH_LEN + 1);
	return FB_OK;
}

static void
m_close(struct fb_store *st)
{
	struct mem_store *m = mem(st);

	mmap_free(&m->sessions);
	mmap_free(&m->revidx);
	mmap_free(&m->once);
	mmap_free(&m->cursors);
	for (size_t i = 0; i < m->nrevs; i++)
		free(m->revs[i]);
	free(m->revs);
	for (size_t i = 0; i < m->naudit; i++)
		free(m->audit[i]);
	free(m->audit);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct fb_store_ops memory_ops = {
	.name = "memory",
	.close = m_close,
	.session_put = m_session_put,
	.session_get = m_session_get,
	.session_touch = m_session_touch,
	.session_delete = m_session_delete,
	.session_list = m_session_list,
	.purge = m_purge,
	.revoke = m_revoke,
	.revocations_since = m_revocations_since,
	.revocation_seq = m_revocation_seq,
	.revocation_head =
	    m_revocation_seq, /* rev_seq is never lowered: it is the high-water mark */
	.revoked = m_revoked,
	.once_consume = m_once_consume,
	.audit_append = m_audit_append,
	.audit_list = m_audit_list,
	.cursor_get = m_cursor_get,
	.cursor_set = m_cursor_set,
	.revocation_count = m_revocation_count,
	.epoch = m_epoch,
	.watch_wait = NULL,
	/* Revocations come from this process only, and each one wakes the watch at once. */
	.watch_poll_ms = 1000,
};

fb_rc
fb_store_memory_open(const struct fb_store_opts *opts, struct fb_store **out, struct fb_err *err)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	(void)opts;
	if (m == NULL)
		return nomem(err);
	m->base.ops = &memory_ops;
	pthread_mutex_init(&m->lock, NULL);
	*out = &m->base;
	return FB_OK;
}
