/*
 * How the login endpoints fail, in one table: for each failure the status,
 * the OAuth error (or the page's reason code) and the words the user or
 * the client is shown. The OpenID Connect and SAML paths answer the same
 * failure the same way; what went wrong in detail (an error message, what
 * the IdP said) goes to the log and the audit record only, never here.
 * Outages (the store, the IdP, the bridge itself) answer 502 or 503: try
 * again, never a refusal.
 */
#include "login_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 16384
#define OAUTH_BODY_MAX 4096

#define TRY_AGAIN "The login could not be completed. Try again in a minute."
#define NO_LOGIN                                                                                   \
	"No login is in progress in this browser for this answer of the identity provider. "       \
	"Start again from your application."
#define ALREADY_USED                                                                               \
	"This answer of the identity provider was already used. Start again from your "            \
	"application."

static const struct fb_login_failure_row rows[FB_LOGIN_FAILURES] = {
	[FB_LOGIN_UNKNOWN_PROVIDER] = { HTTP_NOT_FOUND, false, "unknown_provider", false,
	    "This address names no identity provider of this site." },
	[FB_LOGIN_PROVIDER_GONE] = { HTTP_BAD_REQUEST, false, "unknown_provider", false,
	    "This identity provider is no longer configured here." },
	[FB_LOGIN_BAD_RETURN_TO] = { HTTP_BAD_REQUEST, false, "bad_return_to", false,
	    "The application that sent you here asked to come back to an address this site does "
	    "not allow." },
	[FB_LOGIN_BAD_STATE] = { HTTP_BAD_REQUEST, false, "bad_state", false, NO_LOGIN },
	[FB_LOGIN_UNSOLICITED] = { HTTP_BAD_REQUEST, false, "unsolicited", false, NO_LOGIN },
	[FB_LOGIN_EXPIRED] = { HTTP_BAD_REQUEST, false, "expired", false,
	    "The login took too long. Start again from your application." },
	[FB_LOGIN_STATE_REPLAYED] = { HTTP_FORBIDDEN, false, "state_replayed", false,
	    ALREADY_USED },
	[FB_LOGIN_REPLAYED] = { HTTP_FORBIDDEN, false, "replayed", false, ALREADY_USED },
	[FB_LOGIN_NO_SAML_RESPONSE] = { HTTP_BAD_REQUEST, false, "bad_response", false,
	    "This page expects a SAML response from your identity provider." },
	[FB_LOGIN_IDP_ERROR] = { HTTP_FORBIDDEN, false, "idp_error", false,
	    "Your identity provider did not log you in." },
	[FB_LOGIN_IDP_ANSWER] = { HTTP_FORBIDDEN, false, "bad_response", false,
	    "The answer of your identity provider could not be accepted." },
	[FB_LOGIN_MAPPING] = { HTTP_FORBIDDEN, false, "mapping", false,
	    "Your account could not be mapped to a federation identity." },
	[FB_LOGIN_RULES_REFUSED] = { HTTP_FORBIDDEN, false, "refused", false,
	    "Your organisation's rules do not let this account federate." },
	[FB_LOGIN_REVOKED] = { HTTP_FORBIDDEN, false, "revoked", false,
	    "This account's federation access has been revoked." },
	[FB_LOGIN_BAD_LOGOUT_REQUEST] = { HTTP_BAD_REQUEST, false, "bad_logout_request", false,
	    "This logout request could not be accepted." },
	[FB_LOGIN_LOGOUT_REPLAYED] = { HTTP_BAD_REQUEST, false, "bad_logout_request", false,
	    "This logout request was already used." },
	[FB_LOGIN_IDP_UNAVAILABLE] = { HTTP_BAD_GATEWAY, true, "unavailable", false,
	    "Your identity provider cannot be reached right now. Try again in a minute." },
	[FB_LOGIN_IDP_MISCONFIGURED] = { HTTP_BAD_GATEWAY, true, "idp_misconfigured", false,
	    "Logins through your identity provider are not set up correctly. Tell your "
	    "administrator, with the reference below." },
	[FB_LOGIN_STORE_UNAVAILABLE] = { HTTP_SERVICE_UNAVAILABLE, true, "unavailable", false,
	    TRY_AGAIN },
	[FB_LOGIN_INTERNAL] = { HTTP_SERVICE_UNAVAILABLE, true, "internal", false, TRY_AGAIN },
	[FB_LOGIN_OAUTH_BAD_REQUEST] = { HTTP_BAD_REQUEST, false, "invalid_request", true,
	    "the body must be application/x-www-form-urlencoded, each parameter once" },
	[FB_LOGIN_OAUTH_BAD_EXCHANGE] = { HTTP_BAD_REQUEST, false, "invalid_request", true,
	    "a token exchange takes an ID token (subject_token, subject_token_type) and gives a "
	    "JWT, without actor_token" },
	[FB_LOGIN_OAUTH_CLIENT] = { HTTP_UNAUTHORIZED, false, "invalid_client", true,
	    "client authentication failed" },
	[FB_LOGIN_OAUTH_ASSERTION_REPLAYED] = { HTTP_UNAUTHORIZED, false, "invalid_client", true,
	    "the client assertion was replayed" },
	[FB_LOGIN_OAUTH_NO_GRANT_TYPE] = { HTTP_BAD_REQUEST, false, "invalid_request", true,
	    "grant_type is missing" },
	[FB_LOGIN_OAUTH_UNSUPPORTED_GRANT] = { HTTP_BAD_REQUEST, false, "unsupported_grant_type",
	    true,
	    "grant_type must be authorization_code, refresh_token or "
	    "urn:ietf:params:oauth:grant-type:token-exchange" },
	[FB_LOGIN_OAUTH_BAD_CODE] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "the code is not valid: forged, expired, used before, for another client or "
	    "redirect_uri" },
	[FB_LOGIN_OAUTH_BAD_REFRESH] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "not a refresh token of this bridge for this client" },
	[FB_LOGIN_OAUTH_SESSION_ENDED] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "the session has ended or was revoked" },
	[FB_LOGIN_OAUTH_BAD_ID_TOKEN] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "the ID token was refused" },
	[FB_LOGIN_OAUTH_USER_REFUSED] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "the user may not federate: refused by the tenant's rules, revoked or not mapped" },
	[FB_LOGIN_OAUTH_NO_AUDIENCE] = { HTTP_BAD_REQUEST, false, "invalid_grant", true,
	    "the outbound policy gives this user no remote tenant" },
	[FB_LOGIN_OAUTH_BAD_TARGET] = { HTTP_BAD_REQUEST, false, "invalid_target", true,
	    "this user gets no token for that audience" },
	[FB_LOGIN_OAUTH_BAD_LOGOUT] = { HTTP_BAD_REQUEST, false, "invalid_request", true,
	    "not a refresh token of this client, or a post_logout_redirect_uri the tenant does "
	    "not allow" },
	[FB_LOGIN_OAUTH_BAD_LOGOUT_TOKEN] = { HTTP_BAD_REQUEST, false, "invalid_request", true,
	    "the logout_token is missing or was refused" },
	[FB_LOGIN_OAUTH_UNAVAILABLE] = { HTTP_SERVICE_UNAVAILABLE, true, "temporarily_unavailable",
	    true, "the service is unavailable: try again" },
	[FB_LOGIN_OAUTH_IDP_UNAVAILABLE] = { HTTP_SERVICE_UNAVAILABLE, true,
	    "temporarily_unavailable", true, "the identity provider cannot be reached: try again" },
};

const struct fb_login_failure_row *
fb_login_failure_row(enum fb_login_failure f)
{
	return (unsigned)f < FB_LOGIN_FAILURES ? &rows[f] : NULL;
}

enum login_end
login_failure_end(enum fb_login_failure f)
{
	return rows[f].outage ? LOGIN_UNAVAILABLE : LOGIN_REFUSED;
}

/*
 * The page a refused or failed login ends on: what happened in plain words,
 * the reason code, and the correlation id that finds the audit record. It
 * shows no claim value and nothing the IdP sent.
 */
static fb_rc
error_page(struct fb_login_response *resp, unsigned status, const char *code, const char *what,
    const char *corr, const char *clear_cookie)
{
	static const char csp[] = "default-src 'none'; style-src 'unsafe-inline'";
	struct fb_buf b;
	fb_rc rc;

	fb_buf_init(&b, PAGE_MAX);
	(void)fb_buf_printf(&b,
	    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>Login failed</title></head>\n<body style=\"font-family:sans-serif;max-width:"
	    "40em;margin:3em auto\">\n<h1>Login failed</h1>\n<p>");
	(void)fb_buf_append_markup(&b, what);
	(void)fb_buf_printf(&b, "</p>\n<p>Reason: <code id=\"reason\">");
	(void)fb_buf_append_markup(&b, code);
	(void)fb_buf_printf(&b,
	    "</code></p>\n<p>If you ask your administrator for help, give them this reference: "
	    "<code id=\"correlation\">");
	(void)fb_buf_append_markup(&b, corr);
	(void)fb_buf_printf(&b, "</code></p>\n</body></html>\n");
	rc = b.data ? login_respond(resp, status, "text/html; charset=utf-8", b.data, b.len)
	            : FB_ERR_NOMEM;
	fb_buf_free(&b);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "X-Correlation-Id", corr);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Content-Security-Policy", csp);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Referrer-Policy", "no-referrer");
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Set-Cookie", clear_cookie);
	return rc;
}

/* An RFC 6749 5.2 error. */
static fb_rc
oauth_error(
    struct fb_login_response *resp, const struct fb_login_failure_row *row, const char *corr)
{
	struct fb_buf b;
	fb_rc rc;

	fb_buf_init(&b, OAUTH_BODY_MAX);
	(void)fb_buf_printf(&b, "{\"error\":\"%s\",\"error_description\":", row->code);
	(void)fb_buf_append_json_string(&b, row->text);
	(void)fb_buf_printf(&b, "}\n");
	rc = b.data ? login_respond(resp, row->status, "application/json", b.data, b.len)
	            : FB_ERR_NOMEM;
	fb_buf_free(&b);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Pragma", "no-cache");
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "X-Correlation-Id", corr);
	if (rc == FB_OK && row->status == HTTP_UNAUTHORIZED)
		rc =
		    fb_login_response_header(resp, "WWW-Authenticate", "Basic realm=\"fedbridge\"");
	return rc;
}

fb_rc
login_answer(struct fb_login_response *resp, enum fb_login_failure f, const char *step,
    const char *corr, const char *clear_cookie)
{
	const struct fb_login_failure_row *row = &rows[f];

	if (row->oauth)
		return oauth_error(resp, row, corr);
	return error_page(
	    resp, row->status, step ? step : row->code, row->text, corr, clear_cookie);
}

fb_rc
login_answer_text(struct fb_login_response *resp, enum fb_login_failure f, const char *corr)
{
	const struct fb_login_failure_row *row = &rows[f];
	struct fb_buf b;
	fb_rc rc;

	fb_buf_init(&b, OAUTH_BODY_MAX);
	(void)fb_buf_printf(&b, "%s\n", row->text);
	rc = b.data ? login_respond(resp, row->status, "text/plain; charset=utf-8", b.data, b.len)
	            : FB_ERR_NOMEM;
	fb_buf_free(&b);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "X-Correlation-Id", corr);
	return rc;
}

fb_rc
login_fail(const struct fb_login_env *env, struct fb_login_response *resp, enum fb_login_failure f,
    const struct login_refusal *r, const char *step, const char *clear_cookie)
{
	struct login_refusal rec = *r;

	if (rec.reason == NULL)
		rec.reason = rows[f].code; /* the audit record's reason: the row's code */
	login_refuse(env->store, login_failure_end(f), &rec);
	return login_answer(resp, f, step, r->corr, clear_cookie);
}
