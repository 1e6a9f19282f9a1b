/*
 * What the login endpoints share (login.c: the site, sealing, requests and
 * responses, audit, GET /login and the OpenID Connect callback, and the
 * session a login opens; login_token.c: POST /token, /logout and
 * back-channel logout; login_frontchannel.c: front-channel logout;
 * login_saml.c: the SAML endpoints; login_fail.c: the
 * failure table and the answers it gives). Private to the login side: the
 * public header is fb_login.h.
 */
#ifndef FB_LOGIN_INT_H
#define FB_LOGIN_INT_H

#include "fb_login.h"

#include "fb_idp.h"

#include <stdbool.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_IV_LEN 12
#define SEAL_TAG_LEN 16
#define SEALED_MAX 4096
#define LOGIN_TTL 600 /* seconds a login may take at the IdP */
#define CODE_TTL 60 /* seconds the backend has to redeem a code */
#define RETURN_TO_MAX 2048
#define FORM_MAX_PARAMS 32
#define SCRATCH_BYTES ((size_t)256 * 1024)
#define CORRELATION_LEN 22
#define COOKIE_NAME_MAX 80 /* __Secure-fb_saml_ and a correlation-sized handle */
#define CLEAR_COOKIE_MAX 192 /* the Set-Cookie that ends a login cookie */
/* A refusal's detail: an error message and the context put before it. */
#define REFUSAL_DETAIL_MAX (FB_ERR_MSG_MAX + 64)

/* The HTTP statuses the login endpoints answer. */
enum login_http_status {
	HTTP_OK = 200,
	HTTP_FOUND = 302,
	HTTP_SEE_OTHER = 303,
	HTTP_BAD_REQUEST = 400,
	HTTP_UNAUTHORIZED = 401,
	HTTP_FORBIDDEN = 403,
	HTTP_NOT_FOUND = 404,
	HTTP_BAD_GATEWAY = 502,
	HTTP_SERVICE_UNAVAILABLE = 503,
};

struct site_client {
	const struct fb_conf_client *c;
	const struct fb_conf_tenant *t;
	char *secret; /* client_secret_*; cleansed on free */
	struct fb_oidc_keys *keys; /* private_key_jwt */
};

struct fb_login_site {
	const struct fb_conf *conf; /* borrowed from the runtime */
	struct fb_oidc_rp **rps; /* one per oidc provider, in configuration order */
	const struct fb_conf_tenant **rp_tenants;
	size_t n_rps;
	struct site_client *clients;
	size_t n_clients;
	struct fb_saml_sp **sps; /* one per saml provider */
	const struct fb_conf_tenant **sp_tenants;
	size_t n_sps;
	unsigned char k_state[SEAL_KEY_LEN], k_code[SEAL_KEY_LEN], k_refresh[SEAL_KEY_LEN];
	char token_url[2200]; /* PUBLIC_URL/token: the aud of client assertions */
	bool secure; /* public_url is https: cookies are Secure and __Secure- (a __Host- cookie
	                would need Path=/) */
};

/* A session opened by a login: what the store holds, and what it borrows from. */
struct opened {
	struct fb_session sess; /* fid..subject borrowed; amr and attrs owned */
	struct fb_principal p;
	struct fb_expr_scratch *scratch;
};

/* What a login established, whatever the protocol (all borrowed). */
struct login_facts {
	const char *tenant, *provider;
	const struct fb_identity *id;
	json_t *claims; /* OpenID Connect; NULL for SAML */
	const json_t *attrs; /* SAML attributes; NULL for OpenID Connect */
	const char *nameid; /* SAML */
	int64_t expires_cap; /* the IdP's limit on the session (SessionNotOnOrAfter); 0: none */
};

/* Seals plain for purpose under key; *out (base64url text) is the caller's to free. */
fb_rc login_seal(
    const unsigned char key[SEAL_KEY_LEN], const char *purpose, json_t *plain, char **out);
/* The sealed document, a new reference (NULL: forged, expired key, other purpose). */
json_t *login_unseal(const unsigned char key[SEAL_KEY_LEN], const char *purpose, const char *text);
/* Borrowed string and integer members (NULL, 0 when absent or of another type). */
const char *login_jstr(json_t *o, const char *k);
int64_t login_jint(json_t *o, const char *k);
void login_correlation_new(char out[CORRELATION_LEN + 1]);
/* Sets resp's status, content type and body (copied), with Cache-Control: no-store. */
fb_rc login_respond(struct fb_login_response *resp, unsigned status, const char *ctype,
    const char *body, size_t len);
/* A redirect (status 302 or 303) to location, setting cookie when not NULL. */
fb_rc login_redirect(struct fb_login_response *resp, unsigned status, const char *location,
    const char *cookie, const char *corr);
/* What follows prefix in req's path ("" when nothing does), or NULL when it does not begin so. */
const char *login_path_tail(const struct fb_login_request *req, const char *prefix);
/* The first value of a query parameter of req, decoded; the caller's to free (NULL: none). */
char *login_query(const struct fb_login_request *req, const char *name);
/* The value of the cookie name in req's Cookie header; the caller's to free (NULL: none). */
char *login_cookie(const struct fb_login_request *req, const char *name);
/* Appends the audit record of what succeeded (a login allowed, a revocation) and counts the
 * login metric; a store failure is logged. A refusal goes through login_refuse. */
void login_audit(struct fb_store *store, enum fb_audit_kind kind, const char *corr,
    const char *tenant, const char *fid, const char *provider, const char *audience,
    const char *rule, const char *detail);
/* How a login or a client's request ended without success (login_ends in login.c). */
enum login_end {
	LOGIN_REFUSED, /* what the user, the client or the IdP sent was refused */
	LOGIN_UNAVAILABLE, /* the store or the IdP did not answer, or the bridge failed: try again
	                    */
};

/* Anonymous refusals logged: at most this many lines per window, then one summing up. */
#define ANONYMOUS_LOG_BURST 100
#define ANONYMOUS_LOG_WINDOW 10 /* seconds */

/* One refusal: what its log line and its audit record say (all borrowed, NULL: none). */
struct login_refusal {
	enum fb_audit_kind kind; /* the record: login_refused, token_refused, revocation */
	const char *area; /* the log line's endpoint: "login", "token", "saml logout", ... */
	const char *corr;
	const char *tenant, *fid, *provider;
	const char *client; /* the client of /token or /logout (the record's actor) */
	const char *reason; /* the reason code: a step, an OAuth error or a mapping rule */
	const char *detail; /* why, in words; may hold values from outside (escaped) */
	/* Nothing vouches for the request: no login state the bridge issued, no client or
	 * IdP whose credentials or signature held. Anyone can send such requests at any
	 * rate, so they are counted, and logged as a sample, never audited one by one. */
	bool anonymous;
};

/*
 * The one way a refusal is recorded: exactly one log line naming it with the
 * correlation id, and for a refusal (not an outage) exactly one audit
 * record; counts the login metrics for logins. An anonymous refusal is
 * counted (fedbridge_anonymous_refusals_total) and logged while at most
 * ANONYMOUS_LOG_BURST were in the last ANONYMOUS_LOG_WINDOW seconds; the
 * first one after that says how many went unlogged.
 */
void login_refuse(struct fb_store *store, enum login_end end, const struct login_refusal *r);
void login_audit_token(struct fb_store *store, const char *corr, const struct fb_session *sess,
    const char *aud, const char *jti, const char *detail);
void login_token_jti(const char *tok, char *out, size_t size);
fb_rc login_refuse_return_to(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct fb_conf_tenant *t, const char *provider, const char *return_to, const char *corr);
int64_t login_revocation_until(const struct fb_conf *conf, int64_t now);
/* Why r may not be a return_to of tenant t; NULL when it may (login_return_to_allowed). */
const char *login_return_to_problem(const struct fb_conf_tenant *t, const char *r);
bool login_return_to_allowed(const struct fb_conf_tenant *t, const char *r);
struct fb_oidc_rp *login_find_rp(
    const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant);
void login_cookie_name(const struct fb_login_site *s, const char *state, char *out, size_t size);
struct fb_saml_sp *login_find_sp(
    const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant);
/* A one-time code for the backend; *out is the caller's to free. */
fb_rc login_code_new(const struct fb_login_site *s, const char *sid, const char *tenant,
    const char *return_to, int64_t now, char **out);
void login_opened_clear(struct opened *o);
/* How login_open_session ended. */
enum login_opening {
	LOGIN_OPENED, /* o holds the session: login_opened_clear */
	LOGIN_OPEN_MAPPING, /* the mapping failed to run */
	LOGIN_OPEN_REFUSED, /* the tenant's rules refuse the user */
	LOGIN_OPEN_REVOKED, /* the user's federation access is revoked */
	LOGIN_OPEN_UNAVAILABLE, /* the store did not keep the session (an outage) */
};
/* identity -> mapping -> session; anything but LOGIN_OPENED is already logged and audited. */
enum login_opening login_open_session(const struct fb_login_env *env, const struct login_facts *f,
    const char *corr, struct opened *o);
/* The page failure a browser login ends on when its session was not opened. */
enum fb_login_failure login_opening_failure(enum login_opening o);
bool login_form_content_type(const struct fb_login_request *req);
fb_rc login_saml_start(const struct fb_login_env *env, const char *provider, const char *return_to,
    const char *corr, struct fb_login_response *resp);

/* ---- answering a failure (login_fail.c) ---- */

/*
 * Answers failure f: its table row's status and public text, as a page
 * (with the reason code: step when given, a stable name such as an IdP
 * step's, else the row's), an OAuth error or plain text, and the
 * correlation id; clear_cookie: a Set-Cookie or NULL. Nothing is logged.
 */
fb_rc login_answer(struct fb_login_response *resp, enum fb_login_failure f, const char *step,
    const char *corr, const char *clear_cookie);
/* The same answer as plain text (SOAP callers, which read no page). */
fb_rc login_answer_text(struct fb_login_response *resp, enum fb_login_failure f, const char *corr);
/*
 * The one way a refusal or an outage ends: recorded through login_refuse
 * (an outage when the row says so) and answered by login_answer.
 */
fb_rc login_fail(const struct fb_login_env *env, struct fb_login_response *resp,
    enum fb_login_failure f, const struct login_refusal *r, const char *step,
    const char *clear_cookie);
/*
 * The failure of a login whose IdP could not be used, counted for provider:
 * FB_ERR_CONFIG (its discovery or metadata is wrong: an admin must act) is
 * idp_misconfigured, anything else unavailable (try again).
 */
enum fb_login_failure login_idp_failure(const char *provider, fb_rc rc);
/* How a failure is recorded: LOGIN_UNAVAILABLE for an outage, else LOGIN_REFUSED. */
enum login_end login_failure_end(enum fb_login_failure f);

#endif
