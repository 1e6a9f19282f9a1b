/*
 * Private to idp/: the SAML service provider shared by saml_sp.c (building
 * it, requests, metadata, logout) and saml_acs.c (reading responses).
 */
#ifndef FB_SAML_SP_INT_H
#define FB_SAML_SP_INT_H

#include "fb_idp.h"

#include <lasso/lasso.h>
#include <lasso/id-ff/logout.h>
#include <pthread.h>
#include <stdatomic.h>
#include <xmlsec/keys.h>

#define FB_SAML_IDP_KEYS_MAX 8

/*
 * What the IdP's metadata says, as one immutable, reference-counted value:
 * a refresh builds a new one and swaps it in, requests in flight keep the
 * one they took.
 */
struct saml_idp {
	atomic_uint refs;
	LassoServer *server; /* this SP and the IdP, for Lasso */
	/* The IdP's signing certificates: the only keys a signature may use. */
	xmlSecKeyPtr keys[FB_SAML_IDP_KEYS_MAX];
	size_t n_keys;
	int64_t valid_until; /* the metadata's validUntil; 0: none */
	char *slo_url; /* the IdP's SingleLogoutService for HTTP-Redirect; NULL: none */
};

struct fb_saml_sp {
	const struct fb_conf_provider *p;
	char *entity_id, *acs_url, *slo_url;
	char *idp_entity_id; /* fixed at load: a refresh may not change it */
	char *metadata; /* this SP's metadata document */
	char *key_pem, *cert_pem; /* to build Lasso servers on refresh; the key is cleansed */
	xmlSecKeyPtr sp_key; /* decrypts EncryptedAssertions */
	xmlSecKeyPtr metadata_key; /* idp_metadata_cert: what must sign the IdP's metadata */
	pthread_mutex_t lock;
	struct saml_idp *idp; /* under lock; NULL until a URL's metadata is first fetched */
	int64_t refresh_at; /* under lock; 0: never (a file) */
	unsigned failing; /* under lock: refreshes failed in a row, for the backoff */
	/* under lock, while idp is NULL: why (FB_ERR_IO unreachable, FB_ERR_CONFIG what the URL
	 * serves is wrong), and what was said */
	fb_rc missing_rc;
	char missing_msg[FB_ERR_MSG_MAX];
};

/* The IdP's metadata now (a new reference; release with saml_idp_put), or NULL while
 * a metadata URL has not been fetched yet: the caller answers "unavailable". */
struct saml_idp *saml_idp_get(const struct fb_saml_sp *sp);
void saml_idp_put(struct saml_idp *idp);

/*
 * The bridge keeps no Lasso session (sessions live in the store), so Lasso
 * answers a logout it validated with a failure status; the revocation did
 * end the sessions: the response says Success.
 */
void saml_logout_response_success(LassoLogout *logout);

/* xs:dateTime in UTC ("2026-11-22T10:00:00Z", fractions allowed) to Unix seconds. */
bool fb_saml_time(const char *s, int64_t *out);

/*
 * How long after its IssueInstant an IdP's LogoutRequest is taken (plus the
 * clock skew): a browser or a SOAP call carries it in seconds, and 60 s is
 * what Shibboleth's SP allows a message (MessageFlow expires).
 */
#define FB_SAML_LOGOUT_MAX_AGE 60

/*
 * Checks an IdP's LogoutRequest for freshness and names its ID: ID present,
 * IssueInstant (required, SAML Core 3.2.1) at most skew ahead of now and at
 * most FB_SAML_LOGOUT_MAX_AGE plus skew behind, NotOnOrAfter (optional) not
 * passed. On success out->request_id is a copy of id and out->id_expires
 * the time past which IssueInstant alone refuses the request (how long the
 * caller remembers the ID). Errors: FB_ERR_INVALID naming what is wrong.
 */
fb_rc saml_logout_fresh(const char *id, const char *issue_instant, const char *not_on_or_after,
    int64_t now, int64_t skew, struct fb_saml_logout *out, struct fb_err *err);

#endif
