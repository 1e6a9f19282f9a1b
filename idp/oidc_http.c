/*
 * The relying party's HTTP calls, through the one HTTPS client
 * (fb_http_fetch): what it sends and accepts is bounded (256 KiB, 10 s), TLS
 * is verified by libcurl's defaults, and a redirect is an answer, never
 * followed (an endpoint that moves is a configuration change, not something
 * a peer decides). What is left here is what the relying party sends: JSON
 * asked for, a Bearer token or HTTP Basic credentials, cleansed after use.
 */
#include "oidc_int.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define BASIC_PREFIX "Authorization: Basic "
#define BEARER_PREFIX "Authorization: Bearer "
#define CREDENTIALS_MAX 8192 /* the encoded "user:password" of a Basic header */
#define BEARER_HEADER_MAX 16384
#define BASE64_GROUP_IN 3 /* base64 turns each 3 bytes into 4 characters */
#define BASE64_GROUP_OUT 4
#define HTTP_REQUEST_TIMEOUT 408
#define HTTP_TOO_MANY 429
#define HTTP_SERVER_ERROR 500 /* and above */

fb_rc
oidc_url_encode(struct fb_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	fb_rc rc = FB_OK;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && rc == FB_OK; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			rc = fb_buf_append(b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			rc = fb_buf_append(b, e, 3);
		}
	}
	return rc;
}

fb_rc
oidc_status_class(long status)
{
	/* A redirect is an answer too: it is never followed (see above). */
	return status >= HTTP_SERVER_ERROR || status == HTTP_TOO_MANY ||
	        status == HTTP_REQUEST_TIMEOUT
	    ? FB_ERR_IO
	    : FB_ERR_CONFIG;
}

fb_rc
oidc_refusal_class(fb_rc rc)
{
	/* FB_ERR_INVALID: the URL policy or a document's check; FB_ERR_LIMIT: too large. */
	return rc == FB_ERR_INVALID || rc == FB_ERR_LIMIT || rc == FB_ERR_NOTFOUND ? FB_ERR_CONFIG
	                                                                           : rc;
}

/* "Basic " + base64(enc(user) ":" enc(pass)); cleansed and freed by the caller. */
static char *
basic_header(const char *user, const char *pass)
{
	struct fb_buf raw;
	char *hdr = NULL;
	size_t cap;

	fb_buf_init(&raw, CREDENTIALS_MAX);
	if (oidc_url_encode(&raw, user) != FB_OK || fb_buf_append(&raw, ":", 1) != FB_OK ||
	    oidc_url_encode(&raw, pass) != FB_OK)
		goto done;
	cap = sizeof(BASIC_PREFIX) +
	    BASE64_GROUP_OUT * ((raw.len + BASE64_GROUP_IN - 1) / BASE64_GROUP_IN) + 1;
	if ((hdr = malloc(cap)) == NULL)
		goto done;
	memcpy(hdr, BASIC_PREFIX, sizeof(BASIC_PREFIX) - 1);
	(void)EVP_EncodeBlock((unsigned char *)hdr + sizeof(BASIC_PREFIX) - 1,
	    (const unsigned char *)raw.data, (int)raw.len);
done:
	if (raw.data != NULL)
		fb_cleanse(raw.data, raw.len);
	fb_buf_free(&raw);
	return hdr;
}

/* auth_header: NULL, or a secret header line the caller cleanses. */
static fb_rc
perform(const char *url, const struct fb_url_rule *rule, const char *form, const char *auth_header,
    long timeout_ms, struct oidc_http_reply *out, struct fb_err *err)
{
	const struct fb_http_request req = {
		.method = form != NULL ? FB_HTTP_POST_FORM : FB_HTTP_GET,
		.url = url,
		.rule = rule,
		.form = form,
		.timeout_ms = timeout_ms,
		.secret_header = auth_header,
		.accept_json = true,
		.max_bytes = OIDC_HTTP_MAX,
	};
	struct fb_http_reply reply;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = fb_http_fetch(&req, &reply, err)) != FB_OK)
		return rc;
	out->status = reply.status;
	out->body = reply.body; /* the caller's now */
	out->len = reply.len;
	out->json = reply.json;
	return FB_OK;
}

fb_rc
oidc_http_get(const char *url, const struct fb_url_rule *rule, const char *bearer, long timeout_ms,
    struct oidc_http_reply *out, struct fb_err *err)
{
	struct fb_buf hdr;
	fb_rc rc;

	if (bearer == NULL)
		return perform(url, rule, NULL, NULL, timeout_ms, out, err);
	fb_buf_init(&hdr, BEARER_HEADER_MAX);
	if (fb_buf_printf(&hdr, BEARER_PREFIX "%s", bearer) != FB_OK) {
		fb_buf_free(&hdr);
		return FB_ERR_SET(err, FB_ERR_LIMIT, "access token too large");
	}
	rc = perform(url, rule, NULL, hdr.data, timeout_ms, out, err);
	fb_cleanse(hdr.data, hdr.len);
	fb_buf_free(&hdr);
	return rc;
}

fb_rc
oidc_http_post_form(const char *url, const struct fb_url_rule *rule, const char *form,
    const char *basic_user, const char *basic_pass, long timeout_ms, struct oidc_http_reply *out,
    struct fb_err *err)
{
	char *hdr = NULL;
	fb_rc rc;

	if (basic_user != NULL && (hdr = basic_header(basic_user, basic_pass)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = perform(url, rule, form, hdr, timeout_ms, out, err);
	if (hdr != NULL) {
		fb_cleanse(hdr, strlen(hdr));
		free(hdr);
	}
	return rc;
}
