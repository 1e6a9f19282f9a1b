/*
 * OpenID Connect discovery documents (Discovery 1.0, section 4): what an
 * issuer's /.well-known/openid-configuration says, checked before anything
 * in it is used. The issuer inside must be exactly the configured one (a
 * document served for another issuer is a mix-up), and every endpoint must
 * pass the outbound URL policy for that issuer (fb_oidc_endpoint_rule).
 */
#include "fb_idp.h"
#include "oidc_int.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DISCOVERY_MAX ((size_t)256 * 1024)
#define URL_MAX 2048
#define HOST_MAX 256

/* The host of url as libcurl reads it, into out; false when it has none. */
static bool
url_host(const char *url, char *out, size_t size)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool ok = false;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && strlen(host) < size) {
		memcpy(out, host, strlen(host) + 1);
		ok = true;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

void
fb_oidc_endpoint_rule(const char *issuer, const char *endpoint, struct fb_url_rule *rule)
{
	char ih[HOST_MAX], eh[HOST_MAX];
	const bool https = strncmp(issuer, "https://", strlen("https://")) == 0;

	memset(rule, 0, sizeof(*rule));
	rule->scheme = https ? "https" : "http";
	/* An http issuer passed the configuration's check: it is on loopback. */
	rule->loopback_http = !https;
	/* The issuer's own host is as trusted as the configuration that names it. */
	rule->public_only = https &&
	    !(url_host(issuer, ih, sizeof(ih)) && url_host(endpoint, eh, sizeof(eh)) &&
	        strcasecmp(ih, eh) == 0);
}

/* Printable ASCII within URL_MAX, then the outbound URL policy. */
static const char *
endpoint_problem(const char *issuer, const char *u)
{
	struct fb_url_rule rule;
	size_t len = strlen(u);

	if (len == 0 || len > URL_MAX)
		return "empty or too long";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return "a control, space or non-ASCII byte";
	fb_oidc_endpoint_rule(issuer, u, &rule);
	return fb_url_problem(u, &rule);
}

static fb_rc
take_url(json_t *doc, const char *issuer, const char *name, bool required, char **out,
    struct fb_err *err)
{
	json_t *v = json_object_get(doc, name);
	const char *problem;

	*out = NULL;
	if (v == NULL && !required)
		return FB_OK;
	problem = json_is_string(v) ? endpoint_problem(issuer, json_string_value(v)) : "absent";
	if (problem != NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "discovery: %s must be an https URL (http only toward loopback, for a loopback "
		    "issuer), without user info or fragment: %s",
		    name, problem);
	if ((*out = strdup(json_string_value(v))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	return FB_OK;
}

static bool
list_has(json_t *doc, const char *name, const char *value)
{
	json_t *arr = json_object_get(doc, name), *v;
	size_t i;

	json_array_foreach(arr, i,
	    v) if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) return true;
	return false;
}

void
fb_oidc_discovery_clear(struct fb_oidc_discovery *d)
{
	free(d->issuer);
	free(d->authorization_endpoint);
	free(d->token_endpoint);
	free(d->jwks_uri);
	free(d->userinfo_endpoint);
	free(d->end_session_endpoint);
	memset(d, 0, sizeof(*d));
}

fb_rc
fb_oidc_discovery_parse(const char *text, size_t len, const char *issuer,
    struct fb_oidc_discovery *out, struct fb_err *err)
{
	json_t *doc = NULL, *iss;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (len > DISCOVERY_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "discovery: larger than %zu bytes", DISCOVERY_MAX);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return FB_ERR_SET(err, FB_ERR_INVALID, "discovery: not a JSON object");
	}
	iss = json_object_get(doc, "issuer");
	/* Discovery 4.3: the issuer inside must be the one we asked; otherwise a mix-up. */
	if (!json_is_string(iss) || strcmp(json_string_value(iss), issuer) != 0) {
		char shown[FB_EXCERPT_MAX];
		/* The document's word, bounded and escaped before it can reach a log. */
		if (json_is_string(iss))
			fb_excerpt(
			    json_string_value(iss), json_string_length(iss), shown, sizeof(shown));
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "discovery: issuer is %s%s%s, not %s%s",
		    json_is_string(iss) ? "\"" : "", json_is_string(iss) ? shown : "absent",
		    json_is_string(iss) ? "\"" : "", issuer,
		    json_is_string(iss) ? ": " OIDC_ISSUER_HINT : "");
		goto done;
	}
	if ((out->issuer = strdup(issuer)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = take_url(doc, issuer, "authorization_endpoint", true,
	         &out->authorization_endpoint, err)) != FB_OK ||
	    (rc = take_url(doc, issuer, "token_endpoint", true, &out->token_endpoint, err)) !=
	        FB_OK ||
	    (rc = take_url(doc, issuer, "jwks_uri", true, &out->jwks_uri, err)) != FB_OK ||
	    (rc = take_url(
	         doc, issuer, "userinfo_endpoint", false, &out->userinfo_endpoint, err)) != FB_OK ||
	    (rc = take_url(doc, issuer, "end_session_endpoint", false, &out->end_session_endpoint,
	         err)) != FB_OK)
		goto done;
	if (!list_has(doc, "response_types_supported", "code")) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "discovery: the issuer does not offer the authorization code flow");
		goto done;
	}
	out->pkce_s256 = list_has(doc, "code_challenge_methods_supported", "S256");
	out->iss_parameter =
	    json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported"));
	rc = FB_OK;
done:
	if (rc != FB_OK)
		fb_oidc_discovery_clear(out);
	json_decref(doc);
	return rc;
}
