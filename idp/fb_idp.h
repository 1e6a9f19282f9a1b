/*
 * fedbridge idp: adapters toward corporate identity providers. Whatever the
 * protocol, a login ends as one normalized identity, keyed by (issuer,
 * subject) and never by e-mail. Today the identity value; the OpenID Connect
 * and SAML adapters produce it.
 */
#ifndef FB_IDP_H
#define FB_IDP_H

#include "fb_common.h"

#include <jansson.h>
#include <time.h>

#define FB_IDENTITY_FIELD_MAX 1024

struct fb_identity {
	char *provider; /* the configured provider's name */
	char *issuer; /* OIDC iss or SAML Issuer */
	char *subject; /* OIDC sub or SAML NameID */
	char *idp_session; /* OIDC sid or SAML SessionIndex; NULL when the IdP sent none */
	time_t authn_time; /* 0 when unknown */
};

/*
 * Makes a new identity from borrowed strings, which it copies after checking
 * each: present (idp_session may be NULL), at most FB_IDENTITY_FIELD_MAX
 * bytes, no control characters. The caller frees *out with fb_identity_free.
 */
fb_rc fb_identity_new(const char *provider, const char *issuer, const char *subject,
    const char *idp_session, struct fb_identity **out, struct fb_err *err);

void fb_identity_free(struct fb_identity *id);

/* Same user: same issuer and same subject, byte for byte. */
bool fb_identity_same_user(const struct fb_identity *a, const struct fb_identity *b);

/*
 * What a SAML 2.0 Response (or a bare Assertion) says about its subject:
 * the Issuer, NameID and its Format, SessionIndex, and every attribute as a
 * list of strings under its Name and, when it has one, its FriendlyName.
 * All owned; release with fb_saml_identity_clear.
 */
struct fb_saml_identity {
	char *issuer;
	char *nameid;
	char *nameid_format;
	char *session_index;
	json_t *attrs;
};

/*
 * Reads xml (at most 1 MiB, UTF-8, no DOCTYPE) holding exactly one
 * Assertion. It READS ONLY: it checks no signature, condition, audience or
 * replay, which the SAML login does before trusting any of it. Used as is by
 * `fedbridge mapping test --saml-response`, a dry run.
 */
fb_rc fb_saml_identity_read(
    const char *xml, size_t len, struct fb_saml_identity *out, struct fb_err *err);
void fb_saml_identity_clear(struct fb_saml_identity *id);

#endif
