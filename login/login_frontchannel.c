/*
 * GET /oidc/frontchannel-logout?iss=ISSUER&sid=SID (Front-Channel Logout
 * 1.0): the IdP renders it in an iframe in the user's browser when the user
 * logs out there. Nothing vouches for the request beyond iss and sid (the
 * spec's design: sid is an unguessable IdP session id), so it can do no
 * more than the IdP's own logout would: end that IdP session's bridge
 * sessions. Both parameters are required (frontchannel_logout_session_required).
 */
#include "login_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longer than any IdP session id seen (UUIDs, opaque handles); anything longer is refused. */
#define FRONTCHANNEL_SID_MAX 512
/* "frame-ancestors " and the issuer's origin: scheme://host[:port]. */
#define FRONTCHANNEL_CSP_MAX 2400

static const char frontchannel_page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Logged out</title></head>\n<body>Logged out.</body></html>\n";

/*
 * The CSP of the answer: framed by the issuer's origin only. The issuer is
 * the configured one (a URL the configuration checked), cut at its path; an
 * origin with a byte a CSP source may not hold is not framed at all.
 */
static void
frontchannel_csp(const char *issuer, char *out, size_t size)
{
	const char *auth = strstr(issuer, "://");
	size_t n = auth ? (size_t)(auth - issuer) + 3 : 0;

	while (auth != NULL && issuer[n] != '\0' && strchr("/?#", issuer[n]) == NULL) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]",
		        issuer[n]) == NULL) {
			auth = NULL;
			break;
		}
		n++;
	}
	if (auth == NULL || n == (size_t)(auth - issuer) + 3)
		(void)snprintf(out, size, "default-src 'none'; frame-ancestors 'none'");
	else
		(void)snprintf(
		    out, size, "default-src 'none'; frame-ancestors %.*s", (int)n, issuer);
}

fb_rc
fb_login_frontchannel_logout(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const struct fb_login_site *site = env->site;
	const struct fb_conf_provider *prov = NULL;
	const struct fb_conf_tenant *t = NULL;
	struct fb_revocation r = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], csp[FRONTCHANNEL_CSP_MAX];
	char *iss = login_query(req, "iss"), *sid = login_query(req, "sid");
	int64_t now = (int64_t)time(NULL), seq = 0;
	fb_rc ret;
	/* Anonymous: nothing but iss and sid stands behind it, so refusals are counted and
	 * sampled, never audited one by one. */
	struct login_refusal refusal = { .kind = FB_AUDIT_REVOCATION,
		.area = "front-channel logout",
		.corr = corr,
		.reason = "frontchannel_logout",
		.anonymous = true };

	login_correlation_new(corr);
	for (size_t i = 0; iss != NULL && i < site->n_rps && t == NULL; i++) {
		prov = fb_oidc_rp_provider(site->rps[i]);
		if (strcmp(prov->issuer, iss) == 0)
			t = site->rp_tenants[i];
	}
	if (iss == NULL || *iss == '\0' || sid == NULL || *sid == '\0' ||
	    strlen(sid) > FRONTCHANNEL_SID_MAX || t == NULL) {
		if (iss == NULL || *iss == '\0')
			refusal.detail = "no iss";
		else if (sid == NULL || *sid == '\0')
			refusal.detail = "no sid";
		else if (t == NULL)
			refusal.detail = "no provider of this bridge has that issuer";
		else
			refusal.detail = "sid too long";
		refusal.tenant = t ? t->id : NULL;
		refusal.provider = t ? prov->name : NULL;
		ret = login_fail(env, resp, FB_LOGIN_BAD_LOGOUT_REQUEST, &refusal, NULL, NULL);
		goto done;
	}
	/* What back-channel logout does for a logout token with a sid. */
	r.kind = FB_REVOCATION_IDP_SESSION;
	r.issuer = prov->issuer;
	r.value = sid;
	r.until = login_revocation_until(env->conf, now);
	r.reason = "OpenID Connect front-channel logout";
	r.actor = prov->name;
	if (fb_store_revoke(env->store, &r, now, &seq, &err) != FB_OK) {
		refusal.tenant = t->id;
		refusal.provider = prov->name;
		refusal.detail = err.msg;
		ret = login_fail(env, resp, FB_LOGIN_STORE_UNAVAILABLE, &refusal, NULL, NULL);
		goto done;
	}
	fb_log(FB_LOG_INFO, "front-channel logout [%s]: provider %s: %s revoked (%lld)", corr,
	    prov->name, fb_revocation_kind_name(r.kind), (long long)seq);
	login_audit(env->store, FB_AUDIT_REVOCATION, corr, t->id, NULL, prov->name, NULL,
	    "frontchannel_logout", fb_revocation_kind_name(r.kind));
	frontchannel_csp(prov->issuer, csp, sizeof(csp));
	ret = login_respond(resp, HTTP_OK, "text/html; charset=utf-8", frontchannel_page,
	    strlen(frontchannel_page));
	if (ret == FB_OK)
		ret = fb_login_response_header(resp, "Content-Security-Policy", csp);
	if (ret == FB_OK)
		ret = fb_login_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (ret == FB_OK)
		ret = fb_login_response_header(resp, "Referrer-Policy", "no-referrer");
	if (ret == FB_OK)
		ret = fb_login_response_header(resp, "X-Correlation-Id", corr);
done:
	free(iss);
	free(sid);
	return ret;
}
