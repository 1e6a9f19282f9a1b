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
 * What a SAML 2.0 Response (or a bare Assertion) says about its subject. All
 * owned; release with fb_saml_identity_clear.
 *
 *   issuer         the Assertion's Issuer, else the Response's; NULL if neither
 *   nameid         the Subject's NameID; NULL when the Subject has none
 *   nameid_format  its Format attribute; NULL when absent
 *   session_index  SessionIndex of the first AuthnStatement with one; or NULL
 *   attrs          a JSON object: every Attribute of every AttributeStatement
 *                  under its Name and, when it has a different one, also under
 *                  its FriendlyName; each an array of strings, one per
 *                  AttributeValue in document order. Keys met again (the same
 *                  Name twice, or a FriendlyName equal to another Name) merge
 *                  their values in order.
 */
struct fb_saml_identity {
	char *issuer;
	char *nameid;
	char *nameid_format;
	char *session_index;
	json_t *attrs;
};

/*
 * Reads xml (len bytes, at most 1 MiB of UTF-8, no DOCTYPE, elements nested
 * at most 64 deep): a samlp:Response holding exactly one saml:Assertion as a
 * child, or a bare Assertion. Elements count by namespace URI and local name,
 * never by prefix. A value is all the text and CDATA inside its element
 * joined, so a comment cannot split it. Refused with FB_ERR_INVALID or
 * FB_ERR_LIMIT and a reason in err: anything the XML parse refuses, two
 * Assertions or none, EncryptedAssertion, EncryptedID or EncryptedAttribute
 * (they need the SP key), two Issuers, Subjects or NameIDs, an Attribute
 * without a Name, a value over 4096 bytes, more than 256 values under one key
 * or more than 256 Attributes. *out is written only on success.
 *
 * It READS ONLY: it checks no signature, condition, audience, destination,
 * status or replay, and it does not know which element a signature covers.
 * The SAML login checks all of that before it trusts anything read here.
 * Used as is by `fedbridge mapping test --saml-response`, a dry run.
 */
fb_rc fb_saml_identity_read(
    const char *xml, size_t len, struct fb_saml_identity *out, struct fb_err *err);

/* Frees what id owns and zeroes it; NULL and a zeroed id are fine. */
void fb_saml_identity_clear(struct fb_saml_identity *id);

/* ---- OpenID Connect ID tokens (oidc_token.c) ---- */

/* An issuer's signing keys (its JWKS): RSA and EC keys for signing only. */
struct fb_oidc_keys;
fb_rc fb_oidc_keys_parse(
    const char *jwks, size_t len, struct fb_oidc_keys **out, struct fb_err *err);
void fb_oidc_keys_free(struct fb_oidc_keys *k);
size_t fb_oidc_keys_count(const struct fb_oidc_keys *k);

/* What a login expects of its ID token (all borrowed). */
struct fb_oidc_expect {
	const char *issuer; /* iss, exactly */
	const char *client_id; /* the only audience trusted; azp, when present */
	const char *nonce; /* the login's nonce; NULL only where none was sent */
	const char *const *algs; /* the provider's allow-list; empty: RS256 */
	size_t n_algs;
	int64_t now;
	int64_t skew; /* seconds tolerated on exp, iat, nbf */
};

/*
 * Validates an ID token as OpenID Connect Core 3.1.3.7 says: alg in the
 * allow-list (none and HS* never), a key of the issuer chosen by kid (no kid
 * with several fitting keys: refused), the signature, then iss, aud (only
 * this client), azp, exp, iat, nbf, nonce and sub. *claims is a new object.
 * Errors are FB_ERR_INVALID with "id_token: <which check>".
 */
fb_rc fb_oidc_id_token_validate(const struct fb_oidc_keys *keys, const char *token, size_t len,
    const struct fb_oidc_expect *e, json_t **claims, struct fb_err *err);

/* What an issuer's discovery document says (all owned; fb_oidc_discovery_clear). */
struct fb_oidc_discovery {
	char *issuer;
	char *authorization_endpoint;
	char *token_endpoint;
	char *jwks_uri;
	char *userinfo_endpoint; /* NULL when not offered */
	char *end_session_endpoint; /* NULL when not offered */
	bool pkce_s256; /* code_challenge_methods_supported has S256 */
	bool iss_parameter; /* RFC 9207: the authorization response carries iss */
};

/*
 * Parses /.well-known/openid-configuration of issuer: its issuer must be
 * exactly issuer (Discovery 1.0, 4.3), the authorization, token and JWKS
 * endpoints are required, every endpoint must be https (http only toward
 * loopback) without user info or fragment, and the code flow offered.
 */
fb_rc fb_oidc_discovery_parse(const char *text, size_t len, const char *issuer,
    struct fb_oidc_discovery *out, struct fb_err *err);
void fb_oidc_discovery_clear(struct fb_oidc_discovery *d);

#endif
