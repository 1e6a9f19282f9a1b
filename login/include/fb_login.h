/*
 * The login side of the bridge: GET /login, the OpenID Connect callback,
 * POST /token, POST /logout, back-channel and front-channel logout and the
 * SAML endpoints.
 * Each endpoint reads a neutral request and fills a neutral response, so
 * the HTTP server (one adapter in server.c) is the only code that knows the
 * HTTP library, and tests and fuzzers call the endpoints directly.
 */
#ifndef FB_LOGIN_H
#define FB_LOGIN_H

#include "fb_federation.h"
#include "fb_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- form.c: application/x-www-form-urlencoded ---- */

#define FB_FORM_MAX_PARAMS 32

/* An application/x-www-form-urlencoded body, decoded; owns its strings. */
struct fb_form {
	size_t n;
	const char *name[FB_FORM_MAX_PARAMS];
	const char *value[FB_FORM_MAX_PARAMS];
	char *storage;
	size_t storage_len;
};

/*
 * Decodes body (len bytes): '+' is a space, %XX a byte. Refused with a
 * reason in err: a bad escape, a decoded NUL, a byte sequence that is not
 * UTF-8, an empty name, a parameter given twice (RFC 6749 3.1, 3.2), more
 * than FB_FORM_MAX_PARAMS. *f is written only on success.
 */
fb_rc fb_form_parse(const char *body, size_t len, struct fb_form *f, struct fb_err *err);
/* The value of name, or NULL. */
const char *fb_form_get(const struct fb_form *f, const char *name);
void fb_form_clear(struct fb_form *f);
/*
 * The first value of name in a URL query string (no '?'), decoded like a
 * form value; *out is the caller's to free. NULL when absent, or when its
 * value does not decode (a bad escape, a NUL, not UTF-8): hostile, so unread.
 */
fb_rc fb_query_get(const char *query, const char *name, char **out);

/* ---- the request and the response ---- */

/* One request to a login endpoint, as the server read it (all borrowed; NULL: absent). */
struct fb_login_request {
	const char *method; /* "GET", "HEAD", "POST" */
	const char *path; /* without the query */
	const char *query; /* the raw query string after '?' */
	const char *cookie; /* the Cookie header */
	const char *content_type;
	const char *authorization;
	const char *body; /* NUL-terminated; NULL or "" when there was none */
	size_t body_len;
};

#define FB_LOGIN_HEADERS_MAX 8

struct fb_login_header {
	char *name, *value; /* owned */
};

/* What an endpoint answers; fb_login_response_clear frees it. */
struct fb_login_response {
	unsigned status; /* 0: nothing to answer (out of memory) */
	char *content_type; /* owned; NULL: none */
	char *body; /* owned; NULL when empty */
	size_t body_len;
	size_t n_headers;
	struct fb_login_header headers[FB_LOGIN_HEADERS_MAX];
};

/* Adds a header (copied); a value NULL adds nothing. */
fb_rc fb_login_response_header(struct fb_login_response *r, const char *name, const char *value);
/* The value of a header of the response, or NULL (case-insensitive name). */
const char *fb_login_response_get(const struct fb_login_response *r, const char *name);
void fb_login_response_clear(struct fb_login_response *r);

/* ---- the site and what the endpoints work with ---- */

/*
 * The login side of one configuration: an OpenID Connect relying party per
 * oidc provider, the keys that seal login state, codes and refresh tokens
 * (derived from keys.fid_secret), and the /token clients' secrets.
 */
struct fb_login_site;
fb_rc fb_login_site_new(const struct fb_conf *conf, struct fb_login_site **out, struct fb_err *err);
void fb_login_site_free(struct fb_login_site *s);
/*
 * Fetches what is due from the IdPs: SAML metadata from URLs, OpenID Connect
 * discovery and keys (ahead of the first login, again with backoff while
 * they fail). What happened is logged and counted.
 */
void fb_login_site_refresh(struct fb_login_site *s, int64_t now);
/* When fb_login_site_refresh is next due (0: nothing to fetch). */
int64_t fb_login_site_next_refresh(const struct fb_login_site *s);
/* A provider whose logins cannot start now (fb_login_site_unready). */
struct fb_login_unready {
	const struct fb_conf_provider *provider;
	const char *what; /* provider_metadata (SAML) or provider_discovery (OpenID Connect) */
	fb_rc rc; /* FB_ERR_IO: unreachable; FB_ERR_CONFIG: misconfigured */
	const char *why; /* the last failure, in words */
};
/* Calls fn for each provider whose IdP's metadata, or discovery and keys, are missing. */
void fb_login_site_unready(const struct fb_login_site *s,
    void (*fn)(void *arg, const struct fb_login_unready *u), void *arg);

/* What the endpoints borrow from one configuration, and the store. */
struct fb_login_env {
	const struct fb_conf *conf;
	struct fb_federation *fed; /* signs the federation tokens of /token */
	struct fb_rules *rules; /* the tenants' mappings */
	struct fb_login_site *site;
	struct fb_store *store;
};

/*
 * Every endpoint fills *resp (zeroed, or a response it clears first) and
 * returns FB_OK, or an error when no answer could be made (out of memory):
 * the server drops the connection then. A provider is named by the path's
 * last part.
 */

/* GET /login/<provider>?return_to=... */
fb_rc fb_login_start(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* GET /oidc/callback */
fb_rc fb_login_oidc_callback(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* POST /token */
fb_rc fb_login_token(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* POST /logout: the backend ends a session (refresh_token) and learns where to send the
 * browser to end it at the IdP too. */
fb_rc fb_login_logout(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* GET /saml/metadata[/<provider>] (without one: the only SAML provider's) */
fb_rc fb_login_saml_metadata(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* POST /saml/acs/<provider> */
fb_rc fb_login_saml_acs(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* GET /saml/slo/<provider>?SAMLRequest=... */
fb_rc fb_login_saml_slo(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* POST /saml/slo/<provider>: a LogoutRequest over SOAP */
fb_rc fb_login_saml_slo_soap(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp);
/* POST /oidc/backchannel-logout */
fb_rc fb_login_backchannel_logout(const struct fb_login_env *env,
    const struct fb_login_request *req, struct fb_login_response *resp);
/* GET /oidc/frontchannel-logout?iss=...&sid=...: the IdP's iframe ends its session here */
fb_rc fb_login_frontchannel_logout(const struct fb_login_env *env,
    const struct fb_login_request *req, struct fb_login_response *resp);

/* ---- how a login fails (login_fail.c) ---- */

/*
 * Every way a login endpoint refuses a request or fails, one table row
 * each: what the client is answered (status, OAuth error or page reason,
 * public text). The detail stays in the log and the audit record.
 */
enum fb_login_failure {
	/* pages (GET /login, the callback, the SAML endpoints) */
	FB_LOGIN_UNKNOWN_PROVIDER,
	FB_LOGIN_PROVIDER_GONE,
	FB_LOGIN_BAD_RETURN_TO,
	FB_LOGIN_BAD_STATE,
	FB_LOGIN_UNSOLICITED,
	FB_LOGIN_EXPIRED,
	FB_LOGIN_STATE_REPLAYED,
	FB_LOGIN_REPLAYED,
	FB_LOGIN_NO_SAML_RESPONSE,
	FB_LOGIN_IDP_ERROR,
	FB_LOGIN_IDP_ANSWER,
	FB_LOGIN_MAPPING,
	FB_LOGIN_RULES_REFUSED,
	FB_LOGIN_REVOKED,
	FB_LOGIN_BAD_LOGOUT_REQUEST,
	FB_LOGIN_LOGOUT_REPLAYED,
	FB_LOGIN_IDP_UNAVAILABLE,
	FB_LOGIN_IDP_MISCONFIGURED, /* the IdP's discovery or metadata is wrong: retrying won't help
	                             */
	FB_LOGIN_STORE_UNAVAILABLE,
	FB_LOGIN_INTERNAL,
	/* OAuth (POST /token, /logout, back-channel logout) */
	FB_LOGIN_OAUTH_BAD_REQUEST,
	FB_LOGIN_OAUTH_BAD_EXCHANGE,
	FB_LOGIN_OAUTH_CLIENT,
	FB_LOGIN_OAUTH_ASSERTION_REPLAYED,
	FB_LOGIN_OAUTH_NO_GRANT_TYPE,
	FB_LOGIN_OAUTH_UNSUPPORTED_GRANT,
	FB_LOGIN_OAUTH_BAD_CODE,
	FB_LOGIN_OAUTH_BAD_REFRESH,
	FB_LOGIN_OAUTH_SESSION_ENDED,
	FB_LOGIN_OAUTH_BAD_ID_TOKEN,
	FB_LOGIN_OAUTH_USER_REFUSED,
	FB_LOGIN_OAUTH_NO_AUDIENCE,
	FB_LOGIN_OAUTH_BAD_TARGET,
	FB_LOGIN_OAUTH_BAD_LOGOUT,
	FB_LOGIN_OAUTH_BAD_LOGOUT_TOKEN,
	FB_LOGIN_OAUTH_UNAVAILABLE,
	FB_LOGIN_OAUTH_IDP_UNAVAILABLE,
	FB_LOGIN_FAILURES
};

/* What a failure answers; every field static. */
struct fb_login_failure_row {
	unsigned status;
	bool outage; /* the bridge's or the IdP's, not the caller's: "try again" */
	const char *code; /* the OAuth error, or the page's reason code */
	bool oauth; /* answered as RFC 6749 5.2 JSON, else as a page */
	const char *text; /* the public text: error_description, or the page's words */
};

/* The row of f; NULL when f is out of range. */
const struct fb_login_failure_row *fb_login_failure_row(enum fb_login_failure f);

#endif
