/*
 * OpenID Connect discovery documents (Discovery 1.0, section 4): what an
 * issuer's /.well-known/openid-configuration says, checked before anything
 * in it is used. The issuer inside must be exactly the configured one (a
 * document served for another issuer is a mix-up), and every endpoint must
 * be https (http only toward loopback), without user info or fragment.
 */
#include "fb_idp.h"

#include <stdlib.h>
#include <string.h>

#define DISCOVERY_MAX ((size_t)256 * 1024)
#define URL_MAX 2048

static bool
loopback_http(const char *u)
{
	static const char *const hosts[] = { "http://127.0.0.1", "http://[::1]",
		"http://localhost" };

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);
		if (strncmp(u, hosts[i], n) == 0 && (u[n] == ':' || u[n] == '/' || u[n] == '\0'))
			return true;
	}
	return false;
}

/* An endpoint URL fedbridge may call: https (or http to loopback), a host, no user info or
 * fragment. */
static bool
endpoint_ok(const char *u)
{
	const char *host, *end;
	size_t len = strlen(u);

	if (len == 0 || len > URL_MAX || strchr(u, '#') != NULL)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return false;
	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (loopback_http(u))
		host = u + 7;
	else
		return false;
	end = host + strcspn(host, "/?");
	return end > host && memchr(host, '@', (size_t)(end - host)) == NULL;
}

static fb_rc
take_url(json_t *doc, const char *name, bool required, char **out, struct fb_err *err)
{
	json_t *v = json_object_get(doc, name);

	*out = NULL;
	if (v == NULL && !required)
		return FB_OK;
	if (!json_is_string(v) || !endpoint_ok(json_string_value(v)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "discovery: %s must be an https URL (http only toward loopback), without user "
		    "info or fragment",
		    name);
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
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "discovery: issuer is %s%s%s, not %s",
		    json_is_string(iss) ? "\"" : "",
		    json_is_string(iss) ? json_string_value(iss) : "absent",
		    json_is_string(iss) ? "\"" : "", issuer);
		goto done;
	}
	if ((out->issuer = strdup(issuer)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = take_url(doc, "authorization_endpoint", true, &out->authorization_endpoint,
	         err)) != FB_OK ||
	    (rc = take_url(doc, "token_endpoint", true, &out->token_endpoint, err)) != FB_OK ||
	    (rc = take_url(doc, "jwks_uri", true, &out->jwks_uri, err)) != FB_OK ||
	    (rc = take_url(doc, "userinfo_endpoint", false, &out->userinfo_endpoint, err)) !=
	        FB_OK ||
	    (rc = take_url(doc, "end_session_endpoint", false, &out->end_session_endpoint, err)) !=
	        FB_OK)
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
