/*
 * fedbridge idp: adapters toward corporate identity providers. Whatever the
 * protocol, a login ends as one normalized identity, keyed by (issuer,
 * subject) and never by e-mail. Today the identity value; the OpenID Connect
 * and SAML adapters produce it.
 */
#ifndef FB_IDP_H
#define FB_IDP_H

#include "fb_common.h"
#include "fb_conf.h"

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
	int64_t iat_min; /* iat earlier than this (minus skew) is refused: when the login began,
	                    or now less an exchange's maximum age; INT64_MIN: no floor */
	bool logout_token; /* a back-channel logout token: see fb_oidc_rp_validate_logout */
	const char *access_token; /* the code exchange's, or NULL: an at_hash present must be its */
};

#define FB_OIDC_LOGOUT_EVENT "http://schemas.openid.net/event/backchannel-logout"
/*
 * exp became required in logout tokens only with Back-Channel Logout 1.0's
 * errata (December 2023), and some IdPs still send none. Such a token is
 * accepted while its iat is at most this many seconds (plus the skew) old,
 * and *claims gets exp = iat + this: until then (plus the skew, as for any
 * exp) the caller keeps its jti consumed, which covers every moment it is
 * accepted.
 */
#define FB_OIDC_LOGOUT_NO_EXP_MAX_AGE 120

/*
 * Validates an ID token as OpenID Connect Core 3.1.3.7 says: alg in the
 * allow-list (none and HS* never), a key of the issuer chosen by kid (no kid
 * with several fitting keys: refused), the signature, then iss, aud (only
 * this client), azp, exp, iat (not in the future, not before iat_min), nbf,
 * nonce and sub; at_hash, when present and e->access_token is set, must be
 * that token's (Core 3.1.3.6). *claims is a new object. With e->logout_token, a logout
 * token instead (the logout event, a jti, sid or sub, no nonce; exp optional as
 * FB_OIDC_LOGOUT_NO_EXP_MAX_AGE says).
 * Errors are FB_ERR_INVALID with "id_token: <which check>" ("logout_token:
 * ..." for a logout token), or FB_ERR_NOTFOUND
 * when the token names a kid the keys lack (the issuer may have rotated).
 */
fb_rc fb_oidc_id_token_validate(const struct fb_oidc_keys *keys, const char *token, size_t len,
    const struct fb_oidc_expect *e, json_t **claims, struct fb_err *err);

/*
 * Validates a private_key_jwt client assertion (RFC 7523, RFC 7521 4.2) with
 * the client's keys: RS256, PS256 or ES256; iss and sub the client_id, aud
 * exactly audience (the endpoint's URL), exp required, iat and nbf checked
 * with skew, a lifetime of at most FB_CLIENT_ASSERTION_LIFETIME_MAX (exp -
 * iat, or exp - now without iat, then with skew), a jti (which the caller
 * consumes once, until exp plus skew). *claims is a new object. Errors are
 * FB_ERR_INVALID with "client_assertion: <which check>".
 */
#define FB_CLIENT_ASSERTION_LIFETIME_MAX 300 /* seconds; clients sign for 10 to 60 */
fb_rc fb_oidc_client_assertion_validate(const struct fb_oidc_keys *keys, const char *token,
    const char *client_id, const char *audience, int64_t now, int64_t skew, json_t **claims,
    struct fb_err *err);

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
 * endpoints are required, every endpoint must pass fb_oidc_endpoint_rule,
 * and the code flow offered.
 */
fb_rc fb_oidc_discovery_parse(const char *text, size_t len, const char *issuer,
    struct fb_oidc_discovery *out, struct fb_err *err);
/*
 * The outbound URL rule for an endpoint an issuer's discovery document names: the issuer's
 * scheme (http only for a loopback issuer the configuration names); for an https issuer, an
 * endpoint on another host than the issuer's is never a loopback, link-local or private
 * address (the document may not aim our client secret at the bridge host's own ports).
 */
void fb_oidc_endpoint_rule(const char *issuer, const char *endpoint, struct fb_url_rule *rule);
void fb_oidc_discovery_clear(struct fb_oidc_discovery *d);

/* ---- the SAML 2.0 service provider (saml_sp.c) ---- */

/*
 * Initialises Lasso once per process; call it from the main thread before
 * any other starts. Refused when the environment sets LASSO_FLAG (it can
 * switch signature verification off).
 */
fb_rc fb_saml_init(struct fb_err *err);

/* One configured SAML provider, as this SP sees it; read-only, shared by threads. */
struct fb_saml_sp;

/*
 * Builds the SP for provider p: entityID PUBLIC_URL/saml/metadata/NAME, ACS
 * PUBLIC_URL/saml/acs/NAME (HTTP-POST), SLO PUBLIC_URL/saml/slo/NAME, signed
 * with sp_key (0600) and sp_cert; the IdP's metadata (a file, or a URL
 * fetched now) must describe exactly one IdP with an SSO service. A metadata
 * URL that fails does not fail the SP: *unreachable is set, err says why,
 * and the SP answers "unavailable" (fb_saml_sp_status says which kind) until
 * fb_saml_sp_refresh fetches good metadata. The kinds:
 *   FB_ERR_CONFIG: misconfigured, retrying will not help until someone fixes
 *     it (the URL answers 404 or another 4xx but 408 and 429, or metadata
 *     that does not parse, lacks the IdP's entity or fails a check); returned
 *     here for a metadata file (the admin's), kept as the SP's status for a URL;
 *   FB_ERR_IO: unreachable, try again (no connection, a timeout, 5xx, 408, 429).
 */
fb_rc fb_saml_sp_new(const struct fb_conf_provider *p, const char *public_url,
    struct fb_saml_sp **out, bool *unreachable, struct fb_err *err);
/* Whether the IdP's metadata is in force (false until a URL's first fetch). */
bool fb_saml_sp_ready(const struct fb_saml_sp *sp);
/*
 * FB_OK when the IdP's metadata is in force; else why not yet: FB_ERR_IO (its
 * URL cannot be reached) or FB_ERR_CONFIG (it serves what is not good
 * metadata), with the last failure's words in why (may be NULL).
 */
fb_rc fb_saml_sp_status(const struct fb_saml_sp *sp, char *why, size_t size);
/* When the metadata is next due from its URL (0: never, a file). */
int64_t fb_saml_sp_next_refresh(const struct fb_saml_sp *sp);
void fb_saml_sp_free(struct fb_saml_sp *sp);
const char *fb_saml_sp_metadata(const struct fb_saml_sp *sp); /* the SP's metadata XML */
const char *fb_saml_sp_entity_id(const struct fb_saml_sp *sp);
const char *fb_saml_sp_idp_entity_id(const struct fb_saml_sp *sp);
const struct fb_conf_provider *fb_saml_sp_provider(const struct fb_saml_sp *sp);

/*
 * Reads the IdP's metadata again (its URL or its file) when it is due (its
 * cacheDuration, within a minute and a day; an hour without one): checked
 * as at load (signature when idp_metadata_cert is set, validUntil, the same
 * entityID) and swapped in; a failure keeps the last good one and retries
 * after a minute, doubling to 15 minutes, whichever its kind. *changed says
 * whether new metadata is in force.
 *   FB_ERR_CONFIG: the provider is misconfigured, retrying will not help
 *     (as for fb_saml_sp_new);
 *   FB_ERR_IO: unreachable, try again.
 */
fb_rc fb_saml_sp_refresh(struct fb_saml_sp *sp, int64_t now, bool *changed, struct fb_err *err);

/*
 * An SP-initiated login: the URL of a signed (RSA-SHA256) HTTP-Redirect
 * AuthnRequest asking for an HTTP-POST response, and its ID (what the
 * response's InResponseTo must be). Both malloc'd.
 */
fb_rc fb_saml_sp_authn_request(const struct fb_saml_sp *sp, const char *relay_state, char **url,
    char **request_id, struct fb_err *err);

/* Why a SAML response was refused, for the error page, the audit trail and the tests. */
enum fb_saml_failure {
	FB_SAML_OK = 0,
	FB_SAML_BAD_RESPONSE, /* not base64, not XML, a structure that is not one Response with one
	                         Assertion, duplicated IDs, no AuthnStatement or NameID */
	FB_SAML_SIGNATURE, /* missing, misplaced, not covering its element, not by the IdP's keys */
	FB_SAML_ALGORITHM, /* SHA-1 (or weaker) without allow_sha1 */
	FB_SAML_ISSUER,
	FB_SAML_STATUS,
	FB_SAML_DESTINATION,
	FB_SAML_IN_RESPONSE_TO,
	FB_SAML_SUBJECT_CONFIRMATION, /* no bearer confirmation with our Recipient, in time */
	FB_SAML_CONDITIONS, /* times, unknown conditions, SessionNotOnOrAfter past */
	FB_SAML_AUDIENCE,
	FB_SAML_UNSUPPORTED, /* encrypted NameIDs or attributes */
	FB_SAML_UNAVAILABLE, /* the IdP's metadata has expired */
};
const char *fb_saml_failure_name(enum fb_saml_failure f);

struct fb_saml_outcome {
	enum fb_saml_failure failure;
	struct fb_saml_identity id; /* issuer, NameID and format, SessionIndex, attributes */
	char *assertion_id; /* to be consumed once */
	int64_t assertion_expires; /* the earliest NotOnOrAfter: how long to remember the ID */
	int64_t session_not_on_or_after; /* 0: the IdP set no cap */
};
void fb_saml_outcome_clear(struct fb_saml_outcome *o);

/*
 * Reads an HTTP-POST SAMLResponse (base64) at this SP's ACS. request_id is
 * the ID of the AuthnRequest of this login, or NULL for an unsolicited
 * response (which the caller allows only when the provider does). Every
 * check is listed in saml_acs.c; a refusal sets out->failure and err. The
 * caller consumes out->assertion_id once.
 */
fb_rc fb_saml_sp_acs(const struct fb_saml_sp *sp, const char *saml_response, const char *request_id,
    int64_t now, int64_t skew, struct fb_saml_outcome *out, struct fb_err *err);

/* What an IdP's LogoutRequest asks to end (owned; fb_saml_logout_clear). */
struct fb_saml_logout {
	char *nameid;
	char *session_index; /* the first SessionIndex; NULL when the IdP named none */
	char *response_url; /* our LogoutResponse; NULL when the IdP's metadata names no SLO
	                       service to send it to */
	char *request_id; /* the LogoutRequest's ID: the caller consumes it once */
	int64_t id_expires; /* until when to remember it: later, IssueInstant refuses it */
};
void fb_saml_logout_clear(struct fb_saml_logout *l);

/*
 * SP-initiated single logout: the URL of a LogoutRequest for nameid (and
 * session_index, when known) to the IdP's SingleLogoutService, by
 * HTTP-Redirect, signed with RSA-SHA256 by the SP key. *url is malloc'd, or
 * NULL when the IdP's metadata offers no such service.
 */
fb_rc fb_saml_sp_logout_url(const struct fb_saml_sp *sp, const char *nameid,
    const char *session_index, const char *relay_state, int64_t now, char **url,
    struct fb_err *err);

/*
 * Reads a LogoutRequest the IdP sends over SOAP (body: the envelope, len
 * bytes): hardened parse, exactly one LogoutRequest, signed (XML signature
 * by a metadata key, over exactly the request, SHA-256 or better), the
 * IdP's Issuer, Destination (when present) this SLO URL, fresh (IssueInstant
 * within FB_SAML_LOGOUT_MAX_AGE and the skew, NotOnOrAfter not passed), a
 * NameID. *response is the SOAP LogoutResponse to answer (malloc'd). The
 * caller consumes out->request_id once before acting on it.
 */
fb_rc fb_saml_sp_logout_soap(const struct fb_saml_sp *sp, const char *body, size_t len, int64_t now,
    int64_t skew, struct fb_saml_logout *out, char **response, struct fb_err *err);

/*
 * Reads an IdP-initiated LogoutRequest by HTTP-Redirect (query is the raw
 * query string): it must be signed by the IdP (Lasso checks the query
 * signature against the metadata), from the IdP's entity, for this SP's SLO
 * URL and fresh (as over SOAP); the answer is a LogoutResponse URL (signed).
 * The caller consumes out->request_id once before acting on it.
 */
fb_rc fb_saml_sp_logout_request(const struct fb_saml_sp *sp, const char *query, int64_t now,
    int64_t skew, struct fb_saml_logout *out, struct fb_err *err);

/* ---- the OpenID Connect relying party (oidc_rp.c) ---- */

/*
 * One configured provider, live: its discovery document and keys, fetched
 * when first needed and kept (the keys refetched every hour, and on an
 * unknown kid at most once per refetch_min; a failed fetch keeps the last
 * good set), and its client credentials. Safe from several threads: a login
 * waits for a fetch only when it needs what is being fetched.
 *
 * When discovery or keys cannot be had, the fb_oidc_rp_* calls below that
 * need them say which kind of failure it is (a failed discovery is tried
 * again after 10 s either way):
 *   FB_ERR_CONFIG: the provider is misconfigured, retrying will not help
 *     (discovery answering 404 or another 4xx but 408 and 429, a document
 *     that does not parse or names another issuer, a jwks_uri or endpoint
 *     the URL policy refuses, a key set that is not one);
 *   FB_ERR_IO: unreachable, try again (no connection, a timeout, 5xx, 408,
 *     429, or this login's time ran out waiting for another's fetch).
 * err names the provider and what is wrong.
 */
struct fb_oidc_rp;

struct fb_oidc_rp_opts {
	const struct fb_conf_provider *provider; /* borrowed: must outlive the rp */
	const char *redirect_uri; /* PUBLIC_URL/oidc/callback */
	int64_t skew; /* seconds tolerated on exp, iat, nbf */
	int64_t refetch_min; /* least time between two unknown-kid key fetches */
};

/* Reads the client secret or key now (a file that cannot be read is a config error). */
fb_rc fb_oidc_rp_new(const struct fb_oidc_rp_opts *o, struct fb_oidc_rp **out, struct fb_err *err);
void fb_oidc_rp_free(struct fb_oidc_rp *rp);
const struct fb_conf_provider *fb_oidc_rp_provider(const struct fb_oidc_rp *rp);
/*
 * Fetches the discovery document and keys ahead of logins when due: at once
 * for a new rp, again with backoff and jitter while they fail, the keys
 * again once old. Returns the fetch's result (FB_OK when nothing was due).
 */
fb_rc fb_oidc_rp_refresh(struct fb_oidc_rp *rp, int64_t now, struct fb_err *err);
/* When fb_oidc_rp_refresh is next due. */
int64_t fb_oidc_rp_next_refresh(struct fb_oidc_rp *rp);
/*
 * FB_OK when discovery and keys are in hand (or were not tried yet); else
 * why logins cannot start: FB_ERR_IO (unreachable) or FB_ERR_CONFIG
 * (misconfigured), with the last failure's words in why (may be NULL).
 */
fb_rc fb_oidc_rp_status(struct fb_oidc_rp *rp, char *why, size_t size);

#define FB_OIDC_STATE_LEN 22 /* 128 random bits, base64url */
#define FB_OIDC_VERIFIER_LEN 43 /* 256 random bits, base64url (RFC 7636) */

/* What one login attempt must remember between the redirect and the callback. */
struct fb_oidc_login {
	char state[FB_OIDC_STATE_LEN + 1];
	char nonce[FB_OIDC_STATE_LEN + 1];
	char verifier[FB_OIDC_VERIFIER_LEN + 1];
	int64_t started; /* when the browser left for the IdP: no older ID token is this login's */
};

fb_rc fb_oidc_login_new(struct fb_oidc_login *out, struct fb_err *err);

/* The authorization request (code flow, PKCE S256, state, nonce); *url is malloc'd. */
fb_rc fb_oidc_rp_auth_url(struct fb_oidc_rp *rp, const struct fb_oidc_login *l, int64_t now,
    char **url, struct fb_err *err);

/*
 * Where to send the browser to end its session at the IdP (RP-Initiated
 * Logout 1.0): the end_session_endpoint with client_id and, when given,
 * post_logout_redirect_uri. *url is malloc'd, or NULL when the IdP offers no
 * end_session_endpoint.
 */
fb_rc fb_oidc_rp_end_session_url(struct fb_oidc_rp *rp, const char *post_logout_redirect_uri,
    int64_t now, char **url, struct fb_err *err);

/* The callback's query parameters (borrowed; NULL when absent). */
struct fb_oidc_response {
	const char *code, *state, *iss, *error, *error_description;
};

/* Why a login failed, for the error page, the audit trail and the tests. */
enum fb_oidc_failure {
	FB_OIDC_OK = 0,
	FB_OIDC_IDP_ERROR, /* the IdP answered with error=... */
	FB_OIDC_BAD_RESPONSE, /* no code, or a state that is not this login's */
	FB_OIDC_ISS_MISMATCH, /* RFC 9207: iss missing where promised, or another issuer's */
	FB_OIDC_UNAVAILABLE, /* discovery or keys could not be fetched (rc: IO or CONFIG) */
	FB_OIDC_TOKEN_ENDPOINT, /* the code exchange failed */
	FB_OIDC_ID_TOKEN, /* the ID token failed validation */
	FB_OIDC_USERINFO, /* userinfo failed, or its sub is not the ID token's */
};
/* A stable name ("id_token", "iss_mismatch", ...). */
const char *fb_oidc_failure_name(enum fb_oidc_failure f);

struct fb_oidc_outcome {
	enum fb_oidc_failure failure;
	struct fb_identity *identity; /* owned; on success */
	json_t *claims; /* owned; the ID token's claims, plus userinfo's where it adds */
};
void fb_oidc_outcome_clear(struct fb_oidc_outcome *o);

/*
 * Ends a login: checks the response against l (state, RFC 9207 iss),
 * redeems the code (with the PKCE verifier and the client's credentials),
 * validates the ID token (nonce l->nonce, iat not before l->started less
 * the skew, its at_hash, when present, the access token's) and, when the
 * provider is set to,
 * fetches userinfo, whose sub must be the ID token's. On failure
 * out->failure says which step and err why; userinfo is never called after
 * a bad ID token.
 */
fb_rc fb_oidc_rp_finish(struct fb_oidc_rp *rp, const struct fb_oidc_login *l,
    const struct fb_oidc_response *resp, int64_t now, struct fb_oidc_outcome *out,
    struct fb_err *err);

/*
 * Validates a back-channel logout token (Back-Channel Logout 1.0, 2.6) of
 * this provider: signed like its ID tokens, iss, aud, iat and exp checked
 * the same way, the logout event present, a jti, sid or sub (or both), and
 * no nonce. A token without exp is taken while fresh (see
 * FB_OIDC_LOGOUT_NO_EXP_MAX_AGE); *claims then carries the exp its jti is
 * kept by. *claims is a new object. Errors say "logout_token: <which check>".
 */
fb_rc fb_oidc_rp_validate_logout(
    struct fb_oidc_rp *rp, const char *token, int64_t now, json_t **claims, struct fb_err *err);

/*
 * Validates an ID token of this provider outside a login (a token exchange):
 * the same checks, without a nonce, and its iat at most max_age seconds
 * (plus skew) before now. *claims is a new object.
 */
fb_rc fb_oidc_rp_validate_id_token(struct fb_oidc_rp *rp, const char *token, const char *nonce,
    int64_t now, int64_t max_age, json_t **claims, struct fb_err *err);

#endif
