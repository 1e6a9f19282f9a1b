/*
 * The revocation feed between installations. A bridge publishes, signed with
 * its token key, the revocations made here that tokens can show (session,
 * fid, tenant, issued-before) after a cursor; a remote bridge pulls it,
 * checks the signature against the keys it trusts for this issuer, keeps
 * only what concerns that remote's own tenants, and records it in its store
 * (whose watch then feeds the relay check) together with the new cursor.
 */
#include "fb_bridge.h"

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
static fb_rc
add_sessions_of(
    json_t *arr, struct fb_store *store, const struct fb_revocation *r, struct fb_err *err)
{
	struct fb_session_filter f = { .issuer = r->issuer, .limit = FB_STORE_LIST_MAX };
	struct fb_session *list = NULL;
	size_t n = 0;
	fb_rc rc;

	if (r->kind == FB_REVOCATION_SUBJECT)
		f.subject = r->value;
	else
		f.idp_session = r->value;
	if ((rc = fb_store_session_list(store, &f, &list, &n, err)) != FB_OK)
		return rc;
	for (size_t i = 0; i < n && rc == FB_OK; i++)
		rc = add_entry(arr, "session", list[i].id, 0, r->until);
	fb_session_array_free(list, n);
	return rc;
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
	int64_t next = since;
	fb_rc rc;

	*out = NULL;
	if (arr == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = fb_store_revocations_since(store, since, FEED_PAGE, &l, err);
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
		case FB_REVOCATION_IDP_SESSION:
			rc = add_sessions_of(arr, store, r, err);
			break;
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
		    : json_pack("{s:s, s:I, s:I, s:I, s:b, s:O, s:o}", "iss",
		          conf->installation.public_url, "iat", (json_int_t)now, "since",
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

static bool
tenant_of_trust(const struct fb_conf_trust *t, const char *tenant)
{
	for (size_t i = 0; i < t->tenants.n; i++)
		if (strcmp(t->tenants.v[i], tenant) == 0)
			return true;
	return false;
}

/* One entry of a remote's feed into our store, if it concerns that remote's tenants only. */
static fb_rc
record_entry(struct fb_store *store, const struct fb_conf_trust *t, json_t *e, int64_t now,
    int64_t max_until, size_t *recorded, struct fb_err *err)
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
	r.origin = t->remote;
	r.reason = "revocation feed";
	if (strcmp(kind, "session") == 0 && fb_session_id_valid(value, strlen(value))) {
		r.kind = FB_REVOCATION_SESSION;
	} else if (strcmp(kind, "fid") == 0 &&
	    fb_fid_parse(value, strlen(value), &fid, NULL) == FB_OK &&
	    tenant_of_trust(t, fid.tenant)) {
		r.kind = FB_REVOCATION_FID;
	} else if (strcmp(kind, "tenant") == 0 && tenant_of_trust(t, value)) {
		r.kind = FB_REVOCATION_TENANT;
	} else if (strcmp(kind, "issued_before") == 0 && before > 0 && before <= now + 60) {
		r.kind = FB_REVOCATION_ISSUED_BEFORE;
		r.before = before;
		if (strcmp(value, "*") == 0) { /* all of that remote's tenants, not all of ours */
			for (size_t i = 0; i < t->tenants.n && rc == FB_OK; i++) {
				r.value = t->tenants.v[i];
				rc = fb_store_revoke(store, &r, now, NULL, err);
				*recorded += rc == FB_OK;
			}
			return rc;
		}
		if (!tenant_of_trust(t, value))
			return FB_OK;
	} else {
		return FB_OK; /* not ours to decide: ignored, never applied */
	}
	if ((rc = fb_store_revoke(store, &r, now, NULL, err)) == FB_OK)
		(*recorded)++;
	return rc;
}

fb_rc
fb_bridge_feed_apply(struct fb_store *store, const struct fb_conf *conf,
    const struct fb_conf_trust *t, json_t *doc, int64_t cursor, int64_t now, int64_t *next,
    size_t *recorded, struct fb_err *err)
{
	json_t *list = json_object_get(doc, "revocations"), *e;
	json_int_t since = json_integer_value(json_object_get(doc, "since"));
	json_int_t nx = json_integer_value(json_object_get(doc, "next"));
	int64_t longest = conf->tokens.max_ttl > conf->tokens.session_ttl
	    ? conf->tokens.max_ttl
	    : conf->tokens.session_ttl;
	size_t i;
	fb_rc rc = FB_OK;

	*recorded = 0;
	if (!json_is_array(list) || since != cursor || nx < since)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: the feed does not answer since=%lld",
		    t->remote, (long long)cursor);
	json_array_foreach(list, i, e)
	{
		if (!json_is_object(e) ||
		    (rc = record_entry(store, t, e, now, now + longest + conf->tokens.clock_skew,
		         recorded, err)) != FB_OK)
			break;
	}
	if (rc == FB_OK)
		rc = fb_store_cursor_set(store, t->remote, (int64_t)nx, err);
	*next = (int64_t)nx;
	return rc;
}
