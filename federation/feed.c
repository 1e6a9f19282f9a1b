/*
 * The revocation feed between installations. A bridge publishes, signed with
 * its token key, the revocations made here that tokens can show (session,
 * fid, tenant, issued-before) after a cursor; a remote bridge pulls it,
 * checks the signature against the keys it trusts for this issuer, keeps
 * only what concerns that remote's own tokens, and records it in its store
 * (whose watch then feeds the relay check) together with the new cursor.
 * Pages name the publishing store (epoch) and their iat: a replaced store
 * restarts the cursor, an old page is refused.
 */
#include "fb_federation.h"

#include <stdlib.h>
#include <string.h>

#define FEED_PAGE 500

static const char *
kind_of(const struct fb_revocation *r)
{
	return fb_revocation_kind_name(r->kind);
}

static fb_rc
add_entry(json_t *arr, const char *kind, const char *value, int64_t before, int64_t until)
{
	json_t *e =
	    json_pack("{s:s, s:s, s:I}", "kind", kind, "value", value, "until", (json_int_t)until);

	if (e == NULL)
		return FB_ERR_NOMEM;
	if (before > 0 && json_object_set_new(e, "before", json_integer((json_int_t)before)) != 0) {
		json_decref(e);
		return FB_ERR_NOMEM;
	}
	return json_array_append_new(arr, e) == 0 ? FB_OK : FB_ERR_NOMEM;
}

/* An IdP subject or session is shown to remotes as the bridge sessions it had. */
struct session_entries {
	json_t *arr;
	int64_t until;
};

static fb_rc
add_session_entry(void *arg, const char *session_id, struct fb_err *err)
{
	const struct session_entries *se = arg;

	return add_entry(se->arr, "session", session_id, 0, se->until) == FB_OK
	    ? FB_OK
	    : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
}

static fb_rc
sign_document(const struct fb_signing_key *k, json_t *payload, char **out, struct fb_err *err)
{
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", fb_verify_alg_name(fb_signing_key_alg(k)),
	    "typ", FB_FEED_TYP, "kid", fb_signing_key_kid(k));
	char *h = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	char *p = json_dumps(payload, JSON_COMPACT);
	unsigned char sig[64];
	size_t hl, pl, total;
	char *jws = NULL;
	fb_rc rc = FB_ERR_NOMEM;

	if (h == NULL || p == NULL)
		goto done;
	hl = strlen(h);
	pl = strlen(p);
	total = (hl + 2) / 3 * 4 + 1 + (pl + 2) / 3 * 4 + 1 + 88 + 1;
	if ((jws = malloc(total)) == NULL)
		goto done;
	(void)fb_b64url_encode((const unsigned char *)h, hl, jws, total);
	hl = strlen(jws);
	jws[hl] = '.';
	(void)fb_b64url_encode((const unsigned char *)p, pl, jws + hl + 1, total - hl - 1);
	hl = strlen(jws);
	if ((rc = fb_signing_key_sign(k, jws, hl, sig, err)) != FB_OK)
		goto done;
	jws[hl] = '.';
	(void)fb_b64url_encode(sig, sizeof(sig), jws + hl + 1, total - hl - 1);
	*out = jws;
	jws = NULL;
	rc = FB_OK;
done:
	if (rc == FB_ERR_NOMEM)
		FB_ERR_SET(err, rc, "out of memory");
	free(jws);
	free(h);
	free(p);
	json_decref(hdr);
	return rc;
}

fb_rc
fb_bridge_feed_document(const struct fb_federation *fed, const struct fb_conf *conf,
    struct fb_store *store, int64_t since, int64_t now, char **out, struct fb_err *err)
{
	struct fb_revocation_list l = { 0 };
	json_t *arr = json_array(), *doc = NULL;
	int64_t next = since, head = 0;
	fb_rc rc;

	*out = NULL;
	if (arr == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = fb_store_revocations_since(store, since, FEED_PAGE, &l, err);
	/* Read after the page: at least every seq it lists, unless the store went back. */
	if (rc == FB_OK)
		rc = fb_store_revocation_head(store, &head, err);
	for (size_t i = 0; rc == FB_OK && i < l.n; i++) {
		const struct fb_revocation *r = &l.v[i];
		next = r->seq;
		/* Only what was decided here: a remote's own revocations are its to publish. */
		if (r->origin != NULL && strcmp(r->origin, "local") != 0)
			continue;
		switch (r->kind) {
		case FB_REVOCATION_SESSION:
		case FB_REVOCATION_FID:
		case FB_REVOCATION_TENANT:
			rc = add_entry(arr, kind_of(r), r->value, 0, r->until);
			break;
		case FB_REVOCATION_ISSUED_BEFORE:
			rc = add_entry(arr, kind_of(r), r->value, r->before, r->until);
			break;
		case FB_REVOCATION_SUBJECT:
		case FB_REVOCATION_IDP_SESSION: {
			struct session_entries se = { arr, r->until };

			rc = fb_store_revocation_sessions(store, r, add_session_entry, &se, err);
			break;
		}
		default: /* a trust kill switch here concerns our own relay, not remotes */
			break;
		}
	}
	if (rc == FB_OK) {
		/* The kids we publish: a remote that lacks one fetches our keys at once, so a
		 * key published ahead of a rotation is known there long before it signs. */
		json_t *jwks = json_loads(fb_federation_jwks(fed), 0, NULL), *kids = json_array(),
		       *k;
		size_t ki;
		json_array_foreach(json_object_get(jwks, "keys"), ki, k)
		{
			json_t *kid = json_object_get(k, "kid");
			if (json_is_string(kid) && kids != NULL)
				(void)json_array_append(kids, kid);
		}
		doc = kids == NULL
		    ? NULL
		    : json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:b, s:O, s:o}", "iss",
		          conf->installation.public_url, "iat", (json_int_t)now, "epoch",
		          fb_store_epoch(store), "head", (json_int_t)head, "since",
		          (json_int_t)since, "next", (json_int_t)next, "more", l.n == FEED_PAGE,
		          "revocations", arr, "kids", kids);
		json_decref(jwks);
		rc = doc ? sign_document(fb_federation_signing_key(fed), doc, out, err)
		         : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	json_decref(doc);
	json_decref(arr);
	fb_revocation_list_free(&l);
	return rc;
}

/* Whether tenant is one of remote's: named by any of our trusts of that remote, in any tenant. */
static bool
tenant_of_remote(const struct fb_conf *conf, const char *remote, const char *tenant)
{
	for (size_t i = 0; i < conf->n_tenants; i++)
		for (size_t x = 0; x < conf->tenants[i].n_trusts; x++) {
			const struct fb_conf_trust *t = &conf->tenants[i].trusts[x];
			if (strcmp(t->remote, remote) != 0)
				continue;
			for (size_t k = 0; k < t->tenants.n; k++)
				if (strcmp(t->tenants.v[k], tenant) == 0)
					return true;
		}
	return false;
}

/* Whether tenant k of trust t is where that tenant first appears among remote's trusts. */
static bool
first_of_remote(
    const struct fb_conf *conf, const char *remote, const struct fb_conf_trust *t, size_t k)
{
	const char *tenant = t->tenants.v[k];

	for (size_t i = 0; i < conf->n_tenants; i++)
		for (size_t x = 0; x < conf->tenants[i].n_trusts; x++) {
			const struct fb_conf_trust *o = &conf->tenants[i].trusts[x];
			if (strcmp(o->remote, remote) != 0)
				continue;
			for (size_t m = 0; m < o->tenants.n; m++)
				if (strcmp(o->tenants.v[m], tenant) == 0)
					return o == t && m == k;
		}
	return false;
}

/* Records r (store != NULL) or only counts it (store == NULL, the quota's first pass). */
static fb_rc
take(struct fb_store *store, const struct fb_revocation *r, int64_t now, size_t *n,
    struct fb_err *err)
{
	fb_rc rc = store != NULL ? fb_store_revoke(store, r, now, NULL, err) : FB_OK;

	*n += rc == FB_OK;
	return rc;
}

/*
 * One entry of remote's feed: taken when it concerns that remote's own tokens
 * only, else ignored. Counts what it takes into *n; writes it when store is set.
 */
static fb_rc
take_entry(struct fb_store *store, const struct fb_conf *conf, const char *remote,
    const char *issuer, json_t *e, int64_t now, int64_t max_until, size_t *n, struct fb_err *err)
{
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *value = json_string_value(json_object_get(e, "value"));
	json_int_t until = json_integer_value(json_object_get(e, "until"));
	json_int_t before = json_integer_value(json_object_get(e, "before"));
	struct fb_revocation r = { 0 };
	struct fb_fid fid;
	fb_rc rc = FB_OK;

	if (kind == NULL || value == NULL || until <= now)
		return FB_OK; /* nothing in force: nothing to record */
	r.value = value;
	r.until = until < max_until ? until : max_until;
	r.origin = remote;
	r.reason = "revocation feed";
	if (strcmp(kind, "session") == 0 && fb_session_id_valid(value, strlen(value))) {
		/* That remote's session: only tokens it issued match, never ours. */
		r.kind = FB_REVOCATION_SESSION;
		r.issuer = issuer;
	} else if (strcmp(kind, "fid") == 0 &&
	    fb_fid_parse(value, strlen(value), &fid, NULL) == FB_OK &&
	    tenant_of_remote(conf, remote, fid.tenant)) {
		r.kind = FB_REVOCATION_FID;
	} else if (strcmp(kind, "tenant") == 0 && tenant_of_remote(conf, remote, value)) {
		r.kind = FB_REVOCATION_TENANT;
	} else if (strcmp(kind, "issued_before") == 0 && before > 0 &&
	    before <= now + conf->tokens.clock_skew) {
		r.kind = FB_REVOCATION_ISSUED_BEFORE;
		r.before = before;
		if (strcmp(value, "*") != 0)
			return tenant_of_remote(conf, remote, value) ? take(store, &r, now, n, err)
			                                             : FB_OK;
		/* Every tenant of that remote (in all our trusts of it) once, none of ours. */
		for (size_t i = 0; i < conf->n_tenants && rc == FB_OK; i++)
			for (size_t x = 0; x < conf->tenants[i].n_trusts && rc == FB_OK; x++) {
				const struct fb_conf_trust *t = &conf->tenants[i].trusts[x];
				if (strcmp(t->remote, remote) != 0)
					continue;
				for (size_t k = 0; k < t->tenants.n && rc == FB_OK; k++) {
					if (first_of_remote(conf, remote, t, k)) {
						r.value = t->tenants.v[k];
						rc = take(store, &r, now, n, err);
					}
				}
			}
		return rc;
	} else {
		return FB_OK; /* not ours to decide: ignored, never applied */
	}
	return take(store, &r, now, n, err);
}

fb_rc
fb_bridge_feed_apply(struct fb_store *store, const struct fb_conf *conf, const char *remote,
    const char *issuer, json_t *doc, int64_t now, struct fb_feed_cursor *cursor,
    struct fb_feed_taken *taken, struct fb_err *err)
{
	json_t *list = json_object_get(doc, "revocations"), *e;
	json_t *j_since = json_object_get(doc, "since"), *j_next = json_object_get(doc, "next");
	json_t *j_iat = json_object_get(doc, "iat"), *j_head = json_object_get(doc, "head");
	const char *epoch = json_string_value(json_object_get(doc, "epoch"));
	json_int_t since = json_integer_value(j_since), nx = json_integer_value(j_next);
	json_int_t iat = json_integer_value(j_iat), head = json_integer_value(j_head);
	int64_t longest = conf->tokens.max_ttl > conf->tokens.session_ttl
	    ? conf->tokens.max_ttl
	    : conf->tokens.session_ttl;
	int64_t max_until = now + longest + conf->tokens.clock_skew, held = 0;
	struct fb_feed_cursor c = { 0 };
	size_t i, planned = 0;
	fb_rc rc = FB_OK;

	*taken = (struct fb_feed_taken){ 0 };
	if (!json_is_array(list) || !json_is_integer(j_since) || !json_is_integer(j_next) ||
	    !json_is_integer(j_iat) || !json_is_integer(j_head) || nx < since)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed page lacks revocations, since, next, head or iat", remote);
	if (epoch == NULL || !fb_store_epoch_valid(epoch))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed page has no store identity (epoch of %d hex digits)", remote,
		    FB_STORE_EPOCH_LEN);
	/* A replayed page would undo what came since: only a fresh one, never an older one. */
	if (iat > now + conf->tokens.clock_skew)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed page's iat %lld is in the future", remote, (long long)iat);
	if (iat < now - FB_FEED_MAX_AGE)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed page's iat %lld is older than %d s: a replay", remote,
		    (long long)iat, FB_FEED_MAX_AGE);
	if (iat < cursor->iat)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed page's iat %lld is older than the last page taken (%lld)", remote,
		    (long long)iat, (long long)cursor->iat);
	/*
	 * Another store under that remote counts from 1 again, and one restored from
	 * a backup of itself from where the backup stood (its head is behind our
	 * cursor): read it all again from 0.
	 */
	if (cursor->seq != 0 &&
	    ((cursor->epoch[0] != '\0' && strcmp(cursor->epoch, epoch) != 0) ||
	        head < cursor->seq)) {
		c.iat = iat;
		memcpy(c.epoch, epoch, FB_STORE_EPOCH_LEN + 1);
		if ((rc = fb_store_cursor_set(store, remote, &c, err)) != FB_OK)
			return rc;
		*cursor = c;
		taken->restarted = true;
		return FB_OK;
	}
	if (since != cursor->seq || head < nx)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the feed does not answer since=%lld (or lists past its head)", remote,
		    (long long)cursor->seq);
	/* First what the page would record, against the remote's quota; then write it all. */
	json_array_foreach(list, i, e)
	{
		if (json_is_object(e) &&
		    (rc = take_entry(
		         NULL, conf, remote, issuer, e, now, max_until, &planned, err)) != FB_OK)
			return rc;
	}
	if (planned > 0 &&
	    (rc = fb_store_revocation_count(store, remote, now, &held, err)) != FB_OK)
		return rc;
	taken->over_quota =
	    planned > 0 && (int64_t)planned > conf->store.remote_revocations_max - held;
	if (taken->over_quota)
		return FB_ERR_SET(err, FB_ERR_LIMIT,
		    "%s: %zu more revocations would pass remote_revocations_max (%lld, %lld "
		    "in force): page not taken",
		    remote, planned, (long long)conf->store.remote_revocations_max,
		    (long long)held);
	json_array_foreach(list, i, e)
	{
		if (json_is_object(e) &&
		    (rc = take_entry(store, conf, remote, issuer, e, now, max_until,
		         &taken->recorded, err)) != FB_OK)
			return rc;
	}
	c.seq = (int64_t)nx;
	c.iat = (int64_t)iat;
	memcpy(c.epoch, epoch, FB_STORE_EPOCH_LEN + 1);
	if ((rc = fb_store_cursor_set(store, remote, &c, err)) == FB_OK)
		*cursor = c;
	return rc;
}
