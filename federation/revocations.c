/*
 * Revocations, from the store to the relay check: each stored revocation
 * turned into what the verify core can match on a token (its sid, sub, tid
 * and iat).
 */
#include "fb_federation.h"

#include <stdlib.h>
#include <string.h>

#define APPLY_PAGE 1000

/* What a revocation of an IdP subject or session revokes: each bridge session it had. */
struct session_revoke {
	struct fb_verifier *v;
	int64_t until;
};

static fb_rc
revoke_session(void *arg, const char *session_id, struct fb_err *err)
{
	const struct session_revoke *sr = arg;

	(void)err;
	return fb_verifier_revoke(sr->v, FB_REVOKE_SESSION, session_id, (time_t)sr->until);
}

fb_rc
fb_bridge_revocation_apply(struct fb_verifier *v, const struct fb_conf *conf,
    struct fb_store *store, const struct fb_revocation *r, struct fb_err *err)
{
	fb_rc rc = FB_OK;

	switch (r->kind) {
	case FB_REVOCATION_SESSION:
		/* A remote's (from its feed) names its issuer: only that issuer's tokens match. */
		return r->issuer != NULL
		    ? fb_verifier_revoke_session(v, r->issuer, r->value, (time_t)r->until)
		    : fb_verifier_revoke(v, FB_REVOKE_SESSION, r->value, (time_t)r->until);
	case FB_REVOCATION_FID:
		return fb_verifier_revoke(v, FB_REVOKE_FID, r->value, (time_t)r->until);
	case FB_REVOCATION_TENANT:
		return fb_verifier_revoke(v, FB_REVOKE_TENANT, r->value, (time_t)r->until);
	case FB_REVOCATION_ISSUED_BEFORE:
		if (strcmp(r->value, "*") == 0) {
			fb_verifier_revoke_before(v, (time_t)r->before);
			return FB_OK;
		}
		return fb_verifier_revoke_tenant_before(v, r->value, (time_t)r->before);
	case FB_REVOCATION_TRUST:
		/* The kill switch: every tenant of that remote, in every local trust. */
		for (size_t t = 0; conf != NULL && t < conf->n_tenants && rc == FB_OK; t++)
			for (size_t x = 0; x < conf->tenants[t].n_trusts && rc == FB_OK; x++) {
				const struct fb_conf_trust *tr = &conf->tenants[t].trusts[x];
				if (strcmp(tr->remote, r->value) != 0)
					continue;
				for (size_t i = 0; i < tr->tenants.n && rc == FB_OK; i++)
					rc = fb_verifier_revoke(v, FB_REVOKE_TENANT,
					    tr->tenants.v[i], (time_t)r->until);
			}
		return rc;
	case FB_REVOCATION_SUBJECT:
	case FB_REVOCATION_IDP_SESSION: {
		struct session_revoke sr = { v, r->until };

		return store != NULL
		    ? fb_store_revocation_sessions(store, r, revoke_session, &sr, err)
		    : FB_OK;
	}
	case FB_REVOCATION_NONE:
		break;
	}
	return FB_ERR_SET(err, FB_ERR_INVALID, "unknown revocation kind %d", (int)r->kind);
}

fb_rc
fb_bridge_revocations_load(struct fb_verifier *v, const struct fb_conf *conf,
    struct fb_store *store, int64_t *last_seq, struct fb_err *err)
{
	struct fb_revocation_list l = { 0 };
	int64_t cursor = 0;
	fb_rc rc;

	do {
		if ((rc = fb_store_revocations_since(store, cursor, APPLY_PAGE, &l, err)) != FB_OK)
			break;
		for (size_t i = 0; i < l.n && rc == FB_OK; i++) {
			rc = fb_bridge_revocation_apply(v, conf, store, &l.v[i], err);
			cursor = l.v[i].seq;
		}
	} while (rc == FB_OK && l.n == APPLY_PAGE);
	fb_revocation_list_free(&l);
	*last_seq = cursor;
	return rc;
}
