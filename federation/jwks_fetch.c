/*
 * Fetching a remote bridge's JWKS, feed or discovery document through the
 * one HTTPS client (fb_http_fetch: bounded in time, TLS verified, the
 * outbound URL policy): at most 256 KiB, status 200 alone, Cache-Control
 * max-age honoured within bounds. A pinned fetch trusts one CA alone (a
 * discovered bridge must prove it holds a certificate of the remote's
 * federation CA).
 */
#include "fb_federation.h"

#include <stdlib.h>
#include <string.h>

#define FETCH_MAX_BYTES ((size_t)256 * 1024)
#define FETCH_MAX_AGE_MIN 60
#define FETCH_MAX_AGE_MAX 3600
#define HTTP_OK 200
#define FNV1A_OFFSET_BASIS 1469598103934665603ULL
#define FNV1A_PRIME 1099511628211ULL

/* A digest to notice unchanged key sets (not a security boundary: the set is parsed anew). */
static uint64_t
text_digest(const char *s, size_t n)
{
	uint64_t h = FNV1A_OFFSET_BASIS;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * FNV1A_PRIME;
	return h;
}

/* What the remote asked for, within bounds: neither hammered nor forgotten for long. */
static int64_t
max_age_clamped(int64_t asked)
{
	int64_t age = asked > 0 ? asked : FB_JWKS_DEFAULT_MAX_AGE;

	return age < FETCH_MAX_AGE_MIN ? FETCH_MAX_AGE_MIN
	    : age > FETCH_MAX_AGE_MAX  ? FETCH_MAX_AGE_MAX
	                               : age;
}

/* ca_pem: NULL, or the PEM of the one CA to trust (the caller read it). */
static fb_rc
fetch(const char *url, const struct fb_url_rule *rule, const char *ca_pem, size_t ca_len,
    struct fb_jwks_fetch *out, struct fb_err *err)
{
	const struct fb_http_request req = {
		.method = FB_HTTP_GET,
		.url = url,
		.rule = rule,
		.ca_pem = ca_pem,
		.ca_len = ca_len,
		.max_bytes = FETCH_MAX_BYTES,
	};
	struct fb_http_reply reply;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = fb_http_fetch(&req, &reply, err)) != FB_OK)
		return rc;
	if (reply.status != HTTP_OK) {
		long status = reply.status;
		/* The body of a failed fetch is dropped, never quoted. */
		fb_http_reply_free(&reply);
		return FB_ERR_SET(err, FB_ERR_IO, "HTTP status %ld", status);
	}
	out->body = reply.body; /* the caller's now */
	out->len = reply.len;
	out->digest = text_digest(out->body, out->len);
	out->max_age = max_age_clamped(reply.max_age);
	return FB_OK;
}

fb_rc
fb_jwks_fetch(
    const char *url, const struct fb_url_rule *rule, struct fb_jwks_fetch *out, struct fb_err *err)
{
	return fetch(url, rule, NULL, 0, out, err);
}

fb_rc
fb_jwks_fetch_pinned(const char *url, const struct fb_url_rule *rule, const char *ca_pem,
    size_t ca_len, struct fb_jwks_fetch *out, struct fb_err *err)
{
	return fetch(url, rule, ca_pem, ca_len, out, err);
}
