/*
 * The SAML 2.0 endpoints: the SP-initiated login (AuthnRequest by
 * HTTP-Redirect), SP metadata, the assertion consumer service, and single
 * logout initiated by the IdP (HTTP-Redirect and SOAP).
 */
#include "login_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- SAML: GET /login/<provider>, GET /saml/metadata, POST /saml/acs/<provider> ---- */

struct fb_saml_sp *
login_find_sp(const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant)
{
	for (size_t i = 0; i < s->n_sps; i++) {
		if (strcmp(fb_saml_sp_provider(s->sps[i])->name, name) == 0) {
			*tenant = s->sp_tenants[i];
			return s->sps[i];
		}
	}
	return NULL;
}

static void
saml_cookie_name(const struct fb_login_site *s, const char *handle, char *out, size_t size)
{
	(void)snprintf(out, size, "%sfb_saml_%s", s->secure ? "__Secure-" : "", handle);
}

/*
 * The SP-initiated login: a signed AuthnRequest by HTTP-Redirect. What the
 * ACS must know (the request ID, provider, tenant, return_to, deadline)
 * travels sealed in a cookie named after a random RelayState. The IdP posts
 * its answer cross-site, so the cookie is SameSite=None (and Secure on https).
 */
enum MHD_Result
login_saml_start(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const char *return_to, const char *corr)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(rt->login, provider, &t);
	struct fb_err err = { 0 };
	char handle[CORRELATION_LEN + 1], cname[80], *url = NULL, *rid = NULL, *sealed = NULL;
	char *cookie = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;

	if (return_to == NULL || !login_return_to_allowed(t, return_to))
		return login_refuse_return_to(conn, store, t, provider, return_to, corr);
	login_correlation_new(handle);
	if (fb_saml_sp_authn_request(sp, handle, &url, &rid, &err) != FB_OK) {
		login_refuse(store, LOGIN_UNAVAILABLE,
		    &(struct login_refusal){ .kind = FB_AUDIT_LOGIN_REFUSED,
		        .area = "login",
		        .corr = corr,
		        .tenant = t->id,
		        .provider = provider,
		        .reason = "internal",
		        .detail = err.msg });
		return login_error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "The login could not be started.", corr, NULL);
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", t->id, "h", handle,
	    "rid", rid, "r", return_to, "c", corr, "e", (json_int_t)now + LOGIN_TTL);
	saml_cookie_name(rt->login, handle, cname, sizeof(cname));
	if (st == NULL || login_seal(rt->login->k_state, "saml login", st, &sealed) != FB_OK ||
	    asprintf(&cookie, "%s=%s; Path=/saml/acs/%s; Max-Age=%d; HttpOnly; SameSite=None%s",
	        cname, sealed, provider, LOGIN_TTL, rt->login->secure ? "; Secure" : "") < 0) {
		cookie = NULL;
		login_refuse(store, LOGIN_UNAVAILABLE,
		    &(struct login_refusal){ .kind = FB_AUDIT_LOGIN_REFUSED,
		        .area = "login",
		        .corr = corr,
		        .tenant = t->id,
		        .provider = provider,
		        .reason = "internal",
		        .detail = "the login state could not be sealed" });
		ret = login_error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "The login could not be started.", corr, NULL);
	} else {
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, url, MHD_HTTP_HEADER_SET_COOKIE,
			cookie, "X-Correlation-Id", corr, NULL };
		fb_log(FB_LOG_INFO, "login [%s]: provider %s: AuthnRequest %s to the IdP", corr,
		    provider, rid);
		ret = login_queue(conn, MHD_HTTP_FOUND, NULL, "", 0, headers);
	}
	json_decref(st);
	free(sealed);
	free(cookie);
	free(url);
	free(rid);
	return ret;
}

enum MHD_Result
fb_login_saml_metadata(struct MHD_Connection *conn, struct runtime *rt, const char *provider)
{
	static const char ctype[] = "application/samlmetadata+xml";
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = NULL;
	const char *xml;

	if (provider != NULL)
		sp = login_find_sp(rt->login, provider, &t);
	else if (rt->login->n_sps == 1)
		sp = rt->login->sps[0];
	if (sp == NULL)
		return login_queue(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
		    "no such SAML provider: use /saml/metadata/<provider>\n",
		    sizeof("no such SAML provider: use /saml/metadata/<provider>\n") - 1, NULL);
	xml = fb_saml_sp_metadata(sp);
	return login_queue(conn, MHD_HTTP_OK, ctype, xml, strlen(xml), NULL);
}

/* ---- POST /saml/acs/<provider> ---- */

enum MHD_Result
fb_login_saml_acs(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const struct fb_http_body *body)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(rt->login, provider, &t);
	struct fb_saml_outcome out = { 0 };
	struct fb_identity *id = NULL;
	struct opened opened = { 0 };
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], cname[80], clear[160], *code = NULL, *location = NULL;
	const char *relay, *return_to = NULL, *rid = NULL, *why = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;
	bool first = false, down;
	struct login_refusal refusal = {
		.kind = FB_AUDIT_LOGIN_REFUSED, .area = "login", .corr = corr, .provider = provider
	};

	login_correlation_new(corr);
	clear[0] = '\0';
	if (sp == NULL) {
		/* No login of this site: an address that does not exist, as at GET /login. */
		fb_log(FB_LOG_INFO, "login [%s]: no SAML provider %.64s", corr, provider);
		return login_error_page(conn, MHD_HTTP_NOT_FOUND, "unknown_provider",
		    "This address names no SAML identity provider of this site.", corr, NULL);
	}
	refusal.tenant = t->id;
	if (!login_form_content_type(conn) ||
	    fb_form_parse(body->data, body->len, &f, &err) != FB_OK ||
	    fb_form_get(&f, "SAMLResponse") == NULL) {
		refusal.reason = "bad_response";
		refusal.detail = err.msg[0] ? err.msg : "no SAMLResponse form field";
		login_refuse(store, LOGIN_REFUSED, &refusal);
		fb_form_clear(&f);
		return login_error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_response",
		    "This page expects a SAML response from your identity provider.", corr, NULL);
	}
	/* The login this answers: the sealed cookie named by RelayState. */
	relay = fb_form_get(&f, "RelayState");
	if (relay != NULL && strlen(relay) == CORRELATION_LEN &&
	    strspn(relay, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	        CORRELATION_LEN) {
		saml_cookie_name(rt->login, relay, cname, sizeof(cname));
		(void)snprintf(clear, sizeof(clear),
		    "%s=; Path=/saml/acs/%s; Max-Age=0; HttpOnly%s", cname, provider,
		    rt->login->secure ? "; Secure" : "");
		st = login_unseal(rt->login->k_state, "saml login",
		    MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, cname));
	}
	if (st != NULL) {
		if (login_jstr(st, "c") != NULL)
			(void)snprintf(corr, sizeof(corr), "%s", login_jstr(st, "c"));
		if (login_jstr(st, "p") == NULL || strcmp(login_jstr(st, "p"), provider) != 0 ||
		    login_jstr(st, "h") == NULL || strcmp(login_jstr(st, "h"), relay) != 0 ||
		    login_jint(st, "e") < now)
			why = login_jint(st, "e") < now ? "expired" : "bad_state";
		rid = login_jstr(st, "rid");
		return_to = login_jstr(st, "r");
	} else if (!fb_saml_sp_provider(sp)->allow_idp_initiated) {
		why = "unsolicited";
	} else {
		/* IdP-initiated: RelayState may name where to go, if the tenant allows it. */
		return_to = relay != NULL && login_return_to_allowed(t, relay) ? relay
		    : t->return_to.n > 0                                       ? t->return_to.v[0]
		                                                               : NULL;
		if (return_to == NULL)
			why = "bad_return_to";
	}
	if (why != NULL) {
		refusal.reason = why;
		refusal.detail = strcmp(why, "unsolicited") == 0
		    ? "a response without a login in progress (IdP-initiated login is off)"
		    : strcmp(why, "expired") == 0 ? "the login expired"
		    : strcmp(why, "bad_return_to") == 0
		    ? "no return_to for an IdP-initiated login"
		    : "the login cookie does not match this response";
		login_refuse(store, LOGIN_REFUSED, &refusal);
		ret = login_error_page(conn, MHD_HTTP_BAD_REQUEST, why,
		    strcmp(why, "expired") == 0
		        ? "The login took too long. Start again from your application."
		        : "No login is in progress in this browser for this answer of the identity "
		          "provider. Start again from your application.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_saml_sp_acs(sp, fb_form_get(&f, "SAMLResponse"), rid, now,
	        rt->conf->tokens.clock_skew, &out, &err) != FB_OK) {
		/* Metadata past its validUntil is the IdP's outage, not the user's refusal. */
		bool unavailable = out.failure == FB_SAML_UNAVAILABLE;
		refusal.reason = fb_saml_failure_name(out.failure);
		refusal.detail = err.msg;
		login_refuse(store, unavailable ? LOGIN_UNAVAILABLE : LOGIN_REFUSED, &refusal);
		ret = login_error_page(conn,
		    unavailable ? MHD_HTTP_BAD_GATEWAY : MHD_HTTP_FORBIDDEN, refusal.reason,
		    unavailable
		        ? "Your identity provider cannot be used right now. Try again later."
		        : "The answer of your identity provider could not be accepted.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	/* One-time use of the assertion and of the request, across nodes and restarts. */
	down = fb_store_once_consume(store, FB_ONCE_SAML_ASSERTION, out.assertion_id,
	           fb_time_add(out.assertion_expires > 0 ? out.assertion_expires : now + LOGIN_TTL,
	               rt->conf->tokens.clock_skew),
	           now, &first, &err) != FB_OK;
	if (!down && first && rid != NULL)
		down = fb_store_once_consume(store, FB_ONCE_SAML_REQUEST, rid, login_jint(st, "e"),
		           now, &first, &err) != FB_OK;
	if (down || !first) {
		why = down ? "unavailable" : "replayed";
		refusal.reason = why;
		refusal.detail = down ? err.msg : "assertion or request used before";
		login_refuse(store, down ? LOGIN_UNAVAILABLE : LOGIN_REFUSED, &refusal);
		ret = login_error_page(conn,
		    down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_FORBIDDEN, why,
		    down ? "The login could not be completed. Try again in a minute."
		         : "This answer of the identity provider was already used. Start again "
		           "from your application.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_identity_new(provider, out.id.issuer ? out.id.issuer : fb_saml_sp_idp_entity_id(sp),
	        out.id.nameid, out.id.session_index, &id, &err) != FB_OK) {
		/* Refused like every other ACS refusal: one log line, one audit record. */
		why = "bad_response";
		refusal.reason = why;
		refusal.detail = err.msg;
		login_refuse(store, LOGIN_REFUSED, &refusal);
	} else {
		struct login_facts facts = { .tenant = t->id,
			.provider = provider,
			.id = id,
			.attrs = out.id.attrs,
			.nameid = out.id.nameid,
			.expires_cap = out.session_not_on_or_after };
		why = login_open_session(rt, store, &facts, corr, &opened);
	}
	if (why == NULL &&
	    (login_code_new(rt->login, opened.sess.id, t->id, return_to, now, &code) != FB_OK ||
	        asprintf(&location, "%s%ccode=%s", return_to, strchr(return_to, '?') ? '&' : '?',
	            code) < 0)) {
		location = NULL;
		why = "session";
		refusal.reason = why;
		refusal.detail = "the login's code could not be made";
		login_refuse(store, LOGIN_UNAVAILABLE, &refusal);
	}
	if (why != NULL) {
		ret = login_error_page(conn,
		    strcmp(why, "session") == 0 ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_FORBIDDEN,
		    why,
		    strcmp(why, "refused") == 0
		        ? "Your organisation's rules do not let this account federate."
		        : "The login could not be completed.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	{
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, location,
			MHD_HTTP_HEADER_SET_COOKIE, clear[0] ? clear : NULL, "X-Correlation-Id",
			corr, NULL };
		ret = login_queue(conn, MHD_HTTP_SEE_OTHER, NULL, "", 0, headers);
	}
done:
	login_opened_clear(&opened);
	fb_identity_free(id);
	fb_saml_outcome_clear(&out);
	json_decref(st);
	fb_form_clear(&f);
	free(code);
	free(location);
	return ret;
}

/* ---- GET /saml/slo/<provider>: single logout initiated by the IdP ---- */

#define LOGGED_OUT_PAGE                                                                            \
	"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Logged "          \
	"out</title></head>\n<body><h1>You are logged out</h1></body></html>\n"

/* A LogoutRequest refused (end LOGIN_REFUSED) or not recorded (LOGIN_UNAVAILABLE):
 * logged and audited once, as every refusal. */
static void
saml_logout_refused(struct fb_store *store, enum login_end end, const struct fb_conf_tenant *t,
    const char *provider, const char *corr, const char *detail)
{
	login_refuse(store, end,
	    &(struct login_refusal){ .kind = FB_AUDIT_REVOCATION,
	        .area = "saml logout",
	        .corr = corr,
	        .tenant = t->id,
	        .provider = provider,
	        .reason = "saml_logout",
	        .detail = detail });
}

/*
 * The LogoutRequest's ID, consumed once across nodes and restarts: a signed
 * request replayed within its freshness window is refused. True when first;
 * else false with *end saying why (a replay, or the store did not answer),
 * logged and audited. Consumed before the revocation: a retry after a store
 * failure needs a new request (IdPs build one per attempt), never the same
 * one twice.
 */
static bool
saml_logout_once(struct fb_store *store, const struct fb_conf_tenant *t, const char *provider,
    const struct fb_saml_logout *lo, int64_t now, const char *binding, const char *corr,
    enum login_end *end)
{
	struct fb_err err = { 0 };
	bool first = false;
	/* now: the instant the request was judged fresh at, so id_expires is past it. */
	bool down = fb_store_once_consume(store, FB_ONCE_SAML_LOGOUT, lo->request_id,
	                lo->id_expires, now, &first, &err) != FB_OK;
	char detail[REFUSAL_DETAIL_MAX];

	if (!down && first)
		return true;
	*end = down ? LOGIN_UNAVAILABLE : LOGIN_REFUSED;
	(void)snprintf(detail, sizeof(detail), "%s%s", binding,
	    down ? err.msg : "the LogoutRequest was used before (a replay)");
	saml_logout_refused(store, *end, t, provider, corr, detail);
	return false;
}

/*
 * What an IdP's LogoutRequest ends: its session when it names one (every
 * bridge session that session opened), else the subject. Logged and
 * audited; false (logged) when the store could not record it.
 */
static bool
saml_logout_revoke(struct runtime *rt, struct fb_store *store, const struct fb_saml_sp *sp,
    const struct fb_conf_tenant *t, const struct fb_saml_logout *lo, const char *binding,
    const char *corr)
{
	const char *provider = fb_saml_sp_provider(sp)->name;
	int64_t now = (int64_t)time(NULL), seq = 0;
	struct fb_revocation r = { .kind = lo->session_index ? FB_REVOCATION_IDP_SESSION
		                                             : FB_REVOCATION_SUBJECT,
		.issuer = fb_saml_sp_idp_entity_id(sp),
		.value = lo->session_index ? lo->session_index : lo->nameid,
		.until = login_revocation_until(rt->conf, now),
		.reason = "SAML single logout",
		.actor = provider };
	struct fb_err err = { 0 };

	if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK) {
		saml_logout_refused(store, LOGIN_UNAVAILABLE, t, provider, corr, err.msg);
		return false;
	}
	fb_log(FB_LOG_INFO, "saml logout [%s]: provider %s: %s%s revoked (%lld)", corr, provider,
	    binding, fb_revocation_kind_name(r.kind), (long long)seq);
	login_audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, provider, NULL, "saml_logout",
	    fb_revocation_kind_name(r.kind));
	return true;
}

enum MHD_Result
fb_login_saml_slo(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const char *query)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(rt->login, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	enum login_end end = LOGIN_REFUSED;
	enum MHD_Result ret;

	login_correlation_new(corr);
	if (sp == NULL)
		return login_error_page(conn, MHD_HTTP_NOT_FOUND, "unknown_provider",
		    "This address names no SAML identity provider of this site.", corr, NULL);
	/* The IdP's answer to a logout this bridge started: the session ended already (at
	 * POST /logout), so nothing changes here; the browser goes on to RelayState only when
	 * the tenant allows that address. */
	if (MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "SAMLResponse") != NULL &&
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "SAMLRequest") == NULL) {
		const char *relay =
		    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "RelayState");
		if (relay != NULL && login_return_to_allowed(t, relay)) {
			const char *headers[] = { MHD_HTTP_HEADER_LOCATION, relay,
				"X-Correlation-Id", corr, NULL };
			return login_queue(conn, MHD_HTTP_SEE_OTHER, NULL, "", 0, headers);
		}
		return login_queue(conn, MHD_HTTP_OK, "text/html; charset=utf-8", LOGGED_OUT_PAGE,
		    sizeof(LOGGED_OUT_PAGE) - 1, NULL);
	}
	if (fb_saml_sp_logout_request(sp, query, now, rt->conf->tokens.clock_skew, &lo, &err) !=
	    FB_OK) {
		saml_logout_refused(store, LOGIN_REFUSED, t, provider, corr, err.msg);
		return login_error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_logout_request",
		    "This logout request could not be accepted.", corr, NULL);
	}
	if (!saml_logout_once(store, t, provider, &lo, now, "", corr, &end)) {
		bool down = end == LOGIN_UNAVAILABLE;
		ret = login_error_page(conn,
		    down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST,
		    down ? "unavailable" : "bad_logout_request",
		    down ? "The logout could not be recorded. Try again in a minute."
		         : "This logout request was already used.",
		    corr, NULL);
	} else if (!saml_logout_revoke(rt, store, sp, t, &lo, "", corr)) {
		ret = login_error_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
		    "The logout could not be recorded. Try again in a minute.", corr, NULL);
	} else if (lo.response_url == NULL) {
		/* The IdP's metadata names no SLO service to answer to. */
		const char *headers[] = { "X-Correlation-Id", corr, NULL };
		ret = login_queue(conn, MHD_HTTP_OK, "text/html; charset=utf-8", LOGGED_OUT_PAGE,
		    sizeof(LOGGED_OUT_PAGE) - 1, headers);
	} else {
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, lo.response_url,
			"X-Correlation-Id", corr, NULL };
		ret = login_queue(conn, MHD_HTTP_FOUND, NULL, "", 0, headers);
	}
	fb_saml_logout_clear(&lo);
	return ret;
}

/* ---- POST /saml/slo/<provider>: single logout over SOAP ---- */

enum MHD_Result
fb_login_saml_slo_soap(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const struct fb_http_body *body)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(rt->login, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], *soap = NULL;
	int64_t now = (int64_t)time(NULL);
	const char *headers[] = { "X-Correlation-Id", NULL, NULL };
	enum login_end end = LOGIN_REFUSED;
	enum MHD_Result ret;

	login_correlation_new(corr);
	headers[1] = corr;
	if (sp == NULL)
		return login_queue(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
		    "no such SAML provider\n", 22, headers);
	if (fb_saml_sp_logout_soap(sp, body->data, body->len, now, rt->conf->tokens.clock_skew, &lo,
	        &soap, &err) != FB_OK) {
		char detail[REFUSAL_DETAIL_MAX];
		(void)snprintf(detail, sizeof(detail), "SOAP: %s", err.msg);
		saml_logout_refused(store, LOGIN_REFUSED, t, provider, corr, detail);
		return login_queue(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8",
		    "logout request refused\n", 23, headers);
	}
	if (!saml_logout_once(store, t, provider, &lo, now, "SOAP: ", corr, &end)) {
		ret = end == LOGIN_UNAVAILABLE
		    ? login_queue(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
		          "store unavailable\n", 18, headers)
		    : login_queue(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8",
		          "logout request refused\n", 23, headers);
	} else if (!saml_logout_revoke(rt, store, sp, t, &lo, "SOAP: ", corr)) {
		ret = login_queue(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
		    "store unavailable\n", 18, headers);
	} else {
		ret = login_queue(
		    conn, MHD_HTTP_OK, "text/xml; charset=utf-8", soap, strlen(soap), headers);
	}
	fb_saml_logout_clear(&lo);
	free(soap);
	return ret;
}
