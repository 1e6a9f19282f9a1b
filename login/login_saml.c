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

/* The provider the path names after prefix ("" when none: no provider is named so). */
static const char *
saml_provider(const struct fb_login_request *req, const char *prefix)
{
	const char *p = login_path_tail(req, prefix);

	return p != NULL ? p : "";
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
fb_rc
login_saml_start(const struct fb_login_env *env, const char *provider, const char *return_to,
    const char *corr, struct fb_login_response *resp)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(env->site, provider, &t);
	struct fb_err err = { 0 };
	char handle[CORRELATION_LEN + 1], cname[COOKIE_NAME_MAX], *url = NULL, *rid = NULL,
	                                                          *sealed = NULL;
	char *cookie = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	fb_rc ret;
	struct login_refusal r = { .kind = FB_AUDIT_LOGIN_REFUSED,
		.area = "login",
		.corr = corr,
		.tenant = t->id,
		.provider = provider,
		.reason = "internal" };

	if (return_to == NULL || !login_return_to_allowed(t, return_to))
		return login_refuse_return_to(env, resp, t, provider, return_to, corr);
	login_correlation_new(handle);
	if (fb_saml_sp_authn_request(sp, handle, &url, &rid, &err) != FB_OK) {
		/* Metadata not in force yet is the IdP's outage or misconfiguration. */
		enum fb_login_failure f = err.rc == FB_ERR_IO || err.rc == FB_ERR_CONFIG
		    ? login_idp_failure(provider, err.rc)
		    : FB_LOGIN_INTERNAL;
		r.reason = fb_login_failure_row(f)->code;
		r.detail = err.msg;
		return login_fail(env, resp, f, &r, NULL, NULL);
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", t->id, "h", handle,
	    "rid", rid, "r", return_to, "c", corr, "e", (json_int_t)now + LOGIN_TTL);
	saml_cookie_name(env->site, handle, cname, sizeof(cname));
	if (st == NULL || login_seal(env->site->k_state, "saml login", st, &sealed) != FB_OK ||
	    asprintf(&cookie, "%s=%s; Path=/saml/acs/%s; Max-Age=%d; HttpOnly; SameSite=None%s",
	        cname, sealed, provider, LOGIN_TTL, env->site->secure ? "; Secure" : "") < 0) {
		cookie = NULL;
		r.detail = "the login state could not be sealed";
		ret = login_fail(env, resp, FB_LOGIN_INTERNAL, &r, NULL, NULL);
	} else {
		fb_log(FB_LOG_INFO, "login [%s]: provider %s: AuthnRequest %s to the IdP", corr,
		    provider, rid);
		ret = login_redirect(resp, HTTP_FOUND, url, cookie, corr);
	}
	json_decref(st);
	free(sealed);
	free(cookie);
	free(url);
	free(rid);
	return ret;
}

fb_rc
fb_login_saml_metadata(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const char *provider = login_path_tail(req, "/saml/metadata/");
	static const char ctype[] = "application/samlmetadata+xml";
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = NULL;
	char corr[CORRELATION_LEN + 1];
	const char *xml;

	if (provider != NULL)
		sp = login_find_sp(env->site, provider, &t);
	else if (env->site->n_sps == 1)
		sp = env->site->sps[0];
	if (sp == NULL) {
		login_correlation_new(corr);
		return login_answer_text(resp, FB_LOGIN_UNKNOWN_PROVIDER, corr);
	}
	xml = fb_saml_sp_metadata(sp);
	return login_respond(resp, HTTP_OK, ctype, xml, strlen(xml));
}

/* ---- POST /saml/acs/<provider> ---- */

/* Why an ACS request names no login of this browser, one row each (ACS_NONE: it does). */
enum acs_state {
	ACS_NONE,
	ACS_EXPIRED,
	ACS_BAD_STATE,
	ACS_UNSOLICITED,
	ACS_NO_RETURN_TO,
};

static const struct {
	enum fb_login_failure failure;
	const char *reason; /* the audit record's */
	const char *detail;
} acs_states[] = {
	[ACS_NONE] = { FB_LOGIN_BAD_STATE, NULL, NULL },
	[ACS_EXPIRED] = { FB_LOGIN_EXPIRED, "expired", "the login expired" },
	[ACS_BAD_STATE] = { FB_LOGIN_BAD_STATE, "bad_state",
	    "the login cookie does not match this response" },
	[ACS_UNSOLICITED] = { FB_LOGIN_UNSOLICITED, "unsolicited",
	    "a response without a login in progress (IdP-initiated login is off)" },
	[ACS_NO_RETURN_TO] = { FB_LOGIN_BAD_RETURN_TO, "bad_return_to",
	    "no return_to for an IdP-initiated login" },
};

fb_rc
fb_login_saml_acs(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const char *provider = saml_provider(req, "/saml/acs/");
	struct fb_store *store = env->store;
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(env->site, provider, &t);
	struct fb_saml_outcome out = { 0 };
	struct fb_identity *id = NULL;
	struct opened opened = { 0 };
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], cname[COOKIE_NAME_MAX], clear[CLEAR_COOKIE_MAX];
	char *code = NULL, *location = NULL, *sealed = NULL;
	const char *relay, *return_to = NULL, *rid = NULL, *body;
	enum acs_state state = ACS_NONE;
	enum login_opening opening = LOGIN_OPEN_UNAVAILABLE;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	fb_rc ret;
	size_t len = req->body != NULL ? req->body_len : 0;
	bool first = false, down;
	struct login_refusal refusal = {
		.kind = FB_AUDIT_LOGIN_REFUSED, .area = "login", .corr = corr, .provider = provider
	};

	login_correlation_new(corr);
	clear[0] = '\0';
	if (sp == NULL) {
		/* No login of this site: an address that does not exist, as at GET /login. */
		fb_log(FB_LOG_INFO, "login [%s]: no SAML provider %.64s", corr, provider);
		return login_answer(resp, FB_LOGIN_UNKNOWN_PROVIDER, NULL, corr, NULL);
	}
	refusal.tenant = t->id;
	body = req->body != NULL ? req->body : "";
	if (!login_form_content_type(req) || fb_form_parse(body, len, &f, &err) != FB_OK ||
	    fb_form_get(&f, "SAMLResponse") == NULL) {
		refusal.reason = "bad_response";
		refusal.detail = err.msg[0] ? err.msg : "no SAMLResponse form field";
		refusal.anonymous = true;
		ret = login_fail(env, resp, FB_LOGIN_NO_SAML_RESPONSE, &refusal, NULL, NULL);
		fb_form_clear(&f);
		return ret;
	}
	/* The login this answers: the sealed cookie named by RelayState. */
	relay = fb_form_get(&f, "RelayState");
	if (relay != NULL && strlen(relay) == CORRELATION_LEN &&
	    strspn(relay, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	        CORRELATION_LEN) {
		saml_cookie_name(env->site, relay, cname, sizeof(cname));
		(void)snprintf(clear, sizeof(clear),
		    "%s=; Path=/saml/acs/%s; Max-Age=0; HttpOnly%s", cname, provider,
		    env->site->secure ? "; Secure" : "");
		sealed = login_cookie(req, cname);
		st = login_unseal(env->site->k_state, "saml login", sealed);
	}
	if (st != NULL) {
		if (login_jstr(st, "c") != NULL)
			(void)snprintf(corr, sizeof(corr), "%s", login_jstr(st, "c"));
		if (login_jstr(st, "p") == NULL || strcmp(login_jstr(st, "p"), provider) != 0 ||
		    login_jstr(st, "h") == NULL || strcmp(login_jstr(st, "h"), relay) != 0 ||
		    login_jint(st, "e") < now)
			state = login_jint(st, "e") < now ? ACS_EXPIRED : ACS_BAD_STATE;
		rid = login_jstr(st, "rid");
		return_to = login_jstr(st, "r");
	} else if (!fb_saml_sp_provider(sp)->allow_idp_initiated) {
		state = ACS_UNSOLICITED;
	} else {
		/* IdP-initiated: RelayState may name where to go, if the tenant allows it. */
		return_to = relay != NULL && login_return_to_allowed(t, relay) ? relay
		    : t->return_to.n > 0                                       ? t->return_to.v[0]
		                                                               : NULL;
		if (return_to == NULL)
			state = ACS_NO_RETURN_TO;
	}
	if (state != ACS_NONE) {
		refusal.reason = acs_states[state].reason;
		refusal.detail = acs_states[state].detail;
		refusal.anonymous = true; /* no login of ours stands behind this post */
		ret = login_fail(
		    env, resp, acs_states[state].failure, &refusal, NULL, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_saml_sp_acs(sp, fb_form_get(&f, "SAMLResponse"), rid, now,
	        env->conf->tokens.clock_skew, &out, &err) != FB_OK) {
		/* Metadata past its validUntil is the IdP's outage, not the user's refusal. */
		bool unavailable = out.failure == FB_SAML_UNAVAILABLE;
		refusal.reason = fb_saml_failure_name(out.failure);
		refusal.detail = err.msg;
		refusal.anonymous = st == NULL; /* unsolicited, and the response did not hold */
		ret = login_fail(env, resp,
		    unavailable ? login_idp_failure(provider, fb_saml_sp_status(sp, NULL, 0))
		                : FB_LOGIN_IDP_ANSWER,
		    &refusal, unavailable ? NULL : refusal.reason, clear[0] ? clear : NULL);
		goto done;
	}
	/* One-time use of the assertion and of the request, across nodes and restarts. */
	down = fb_store_once_consume(store, FB_ONCE_SAML_ASSERTION, out.assertion_id,
	           fb_time_add(out.assertion_expires > 0 ? out.assertion_expires : now + LOGIN_TTL,
	               env->conf->tokens.clock_skew),
	           now, &first, &err) != FB_OK;
	if (!down && first && rid != NULL)
		down = fb_store_once_consume(store, FB_ONCE_SAML_REQUEST, rid, login_jint(st, "e"),
		           now, &first, &err) != FB_OK;
	if (down || !first) {
		refusal.reason = down ? "unavailable" : "replayed";
		refusal.detail = down ? err.msg : "assertion or request used before";
		ret = login_fail(env, resp, down ? FB_LOGIN_STORE_UNAVAILABLE : FB_LOGIN_REPLAYED,
		    &refusal, NULL, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_identity_new(provider, out.id.issuer ? out.id.issuer : fb_saml_sp_idp_entity_id(sp),
	        out.id.nameid, out.id.session_index, &id, &err) != FB_OK) {
		/* Refused like every other ACS refusal: one log line, one audit record. */
		refusal.reason = "bad_response";
		refusal.detail = err.msg;
		ret = login_fail(env, resp, FB_LOGIN_IDP_ANSWER, &refusal, refusal.reason,
		    clear[0] ? clear : NULL);
		goto done;
	} else {
		struct login_facts facts = { .tenant = t->id,
			.provider = provider,
			.id = id,
			.attrs = out.id.attrs,
			.nameid = out.id.nameid,
			.expires_cap = out.session_not_on_or_after };
		opening = login_open_session(env, &facts, corr, &opened);
	}
	if (opening != LOGIN_OPENED) {
		ret = login_answer(
		    resp, login_opening_failure(opening), NULL, corr, clear[0] ? clear : NULL);
		goto done;
	}
	if (login_code_new(env->site, opened.sess.id, t->id, return_to, now, &code) != FB_OK ||
	    asprintf(&location, "%s%ccode=%s", return_to, strchr(return_to, '?') ? '&' : '?',
	        code) < 0) {
		location = NULL;
		refusal.reason = "session";
		refusal.detail = "the login's code could not be made";
		ret = login_fail(
		    env, resp, FB_LOGIN_INTERNAL, &refusal, "session", clear[0] ? clear : NULL);
		goto done;
	}
	ret = login_redirect(resp, HTTP_SEE_OTHER, location, clear[0] ? clear : NULL, corr);
done:
	login_opened_clear(&opened);
	fb_identity_free(id);
	fb_saml_outcome_clear(&out);
	json_decref(st);
	fb_form_clear(&f);
	free(code);
	free(location);
	free(sealed);
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
    const char *provider, const char *corr, const char *detail, bool anonymous)
{
	login_refuse(store, end,
	    &(struct login_refusal){ .kind = FB_AUDIT_REVOCATION,
	        .area = "saml logout",
	        .corr = corr,
	        .tenant = t->id,
	        .provider = provider,
	        .reason = "saml_logout",
	        .detail = detail,
	        .anonymous = anonymous });
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
	saml_logout_refused(store, *end, t, provider, corr, detail, false);
	return false;
}

/*
 * What an IdP's LogoutRequest ends: its session when it names one (every
 * bridge session that session opened), else the subject. Logged and
 * audited; false (logged) when the store could not record it.
 */
static bool
saml_logout_revoke(const struct fb_login_env *env, const struct fb_saml_sp *sp,
    const struct fb_conf_tenant *t, const struct fb_saml_logout *lo, const char *binding,
    const char *corr)
{
	const char *provider = fb_saml_sp_provider(sp)->name;
	int64_t now = (int64_t)time(NULL), seq = 0;
	struct fb_revocation r = { .kind = lo->session_index ? FB_REVOCATION_IDP_SESSION
		                                             : FB_REVOCATION_SUBJECT,
		.issuer = fb_saml_sp_idp_entity_id(sp),
		.value = lo->session_index ? lo->session_index : lo->nameid,
		.until = login_revocation_until(env->conf, now),
		.reason = "SAML single logout",
		.actor = provider };
	struct fb_store *store = env->store;
	struct fb_err err = { 0 };

	if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK) {
		saml_logout_refused(store, LOGIN_UNAVAILABLE, t, provider, corr, err.msg, false);
		return false;
	}
	fb_log(FB_LOG_INFO, "saml logout [%s]: provider %s: %s%s revoked (%lld)", corr, provider,
	    binding, fb_revocation_kind_name(r.kind), (long long)seq);
	login_audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, provider, NULL, "saml_logout",
	    fb_revocation_kind_name(r.kind));
	return true;
}

fb_rc
fb_login_saml_slo(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const char *provider = saml_provider(req, "/saml/slo/");
	struct fb_store *store = env->store;
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(env->site, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	enum login_end end = LOGIN_REFUSED;
	char *saml_response = NULL, *saml_request = NULL, *relay = NULL; /* owned */
	fb_rc ret;

	login_correlation_new(corr);
	if (sp == NULL)
		return login_answer(resp, FB_LOGIN_UNKNOWN_PROVIDER, NULL, corr, NULL);
	/* The IdP's answer to a logout this bridge started: the session ended already (at
	 * POST /logout), so nothing changes here; the browser goes on to RelayState only when
	 * the tenant allows that address. */
	saml_response = login_query(req, "SAMLResponse");
	saml_request = login_query(req, "SAMLRequest");
	if (saml_response != NULL && saml_request == NULL) {
		relay = login_query(req, "RelayState");
		if (relay != NULL && login_return_to_allowed(t, relay))
			ret = login_redirect(resp, HTTP_SEE_OTHER, relay, NULL, corr);
		else
			ret = login_respond(resp, HTTP_OK, "text/html; charset=utf-8",
			    LOGGED_OUT_PAGE, sizeof(LOGGED_OUT_PAGE) - 1);
		goto done;
	}
	if (fb_saml_sp_logout_request(
	        sp, req->query, now, env->conf->tokens.clock_skew, &lo, &err) != FB_OK) {
		saml_logout_refused(store, LOGIN_REFUSED, t, provider, corr, err.msg, true);
		ret = login_answer(resp, FB_LOGIN_BAD_LOGOUT_REQUEST, NULL, corr, NULL);
	} else if (!saml_logout_once(store, t, provider, &lo, now, "", corr, &end)) {
		ret = login_answer(resp,
		    end == LOGIN_UNAVAILABLE ? FB_LOGIN_STORE_UNAVAILABLE
		                             : FB_LOGIN_LOGOUT_REPLAYED,
		    NULL, corr, NULL);
	} else if (!saml_logout_revoke(env, sp, t, &lo, "", corr)) {
		ret = login_answer(resp, FB_LOGIN_STORE_UNAVAILABLE, NULL, corr, NULL);
	} else if (lo.response_url == NULL) {
		/* The IdP's metadata names no SLO service to answer to. */
		ret = login_respond(resp, HTTP_OK, "text/html; charset=utf-8", LOGGED_OUT_PAGE,
		    sizeof(LOGGED_OUT_PAGE) - 1);
		if (ret == FB_OK)
			ret = fb_login_response_header(resp, "X-Correlation-Id", corr);
	} else {
		ret = login_redirect(resp, HTTP_FOUND, lo.response_url, NULL, corr);
	}
	fb_saml_logout_clear(&lo);
done:
	free(saml_response);
	free(saml_request);
	free(relay);
	return ret;
}

/* ---- POST /saml/slo/<provider>: single logout over SOAP ---- */

fb_rc
fb_login_saml_slo_soap(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const char *provider = saml_provider(req, "/saml/slo/");
	struct fb_store *store = env->store;
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = login_find_sp(env->site, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], *soap = NULL;
	int64_t now = (int64_t)time(NULL);
	enum login_end end = LOGIN_REFUSED;
	fb_rc ret;

	login_correlation_new(corr);
	if (sp == NULL)
		return login_answer_text(resp, FB_LOGIN_UNKNOWN_PROVIDER, corr);
	if (fb_saml_sp_logout_soap(sp, req->body != NULL ? req->body : "",
	        req->body != NULL ? req->body_len : 0, now, env->conf->tokens.clock_skew, &lo,
	        &soap, &err) != FB_OK) {
		char detail[REFUSAL_DETAIL_MAX];
		(void)snprintf(detail, sizeof(detail), "SOAP: %s", err.msg);
		saml_logout_refused(store, LOGIN_REFUSED, t, provider, corr, detail, true);
		return login_answer_text(resp, FB_LOGIN_BAD_LOGOUT_REQUEST, corr);
	}
	if (!saml_logout_once(store, t, provider, &lo, now, "SOAP: ", corr, &end)) {
		ret = login_answer_text(resp,
		    end == LOGIN_UNAVAILABLE ? FB_LOGIN_STORE_UNAVAILABLE
		                             : FB_LOGIN_LOGOUT_REPLAYED,
		    corr);
	} else if (!saml_logout_revoke(env, sp, t, &lo, "SOAP: ", corr)) {
		ret = login_answer_text(resp, FB_LOGIN_STORE_UNAVAILABLE, corr);
	} else {
		ret = login_respond(resp, HTTP_OK, "text/xml; charset=utf-8", soap, strlen(soap));
		if (ret == FB_OK)
			ret = fb_login_response_header(resp, "X-Correlation-Id", corr);
	}
	fb_saml_logout_clear(&lo);
	free(soap);
	return ret;
}
