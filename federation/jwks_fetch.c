/*
 * Fetching a remote bridge's JWKS, feed or discovery document over HTTPS with
 * libcurl: bounded in time and size, TLS verified, the outbound URL policy
 * (fb_url_curl_setup: no redirects, no inside addresses where the rule says),
 * Cache-Control max-age honoured within bounds. A pinned fetch trusts one CA
 * alone (a discovered bridge must prove it holds a certificate of the
 * remote's federation CA).
 */
#include "fb_federation.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_MAX_BYTES 262144
#define FETCH_CONNECT_TIMEOUT_MS 5000L
#define FETCH_TIMEOUT_MS 10000L
#define FETCH_MAX_AGE_MIN 60
#define FETCH_MAX_AGE_MAX 3600

struct fetch_ctx {
	struct fb_buf body;
	int64_t max_age;
	bool too_big;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t n = size * nmemb;

	if (fb_buf_append(&ctx->body, data, n) != FB_OK) {
		ctx->too_big = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_ctx *ctx = arg;
	size_t n = size * nmemb;
	char line[256], *p;

	if (n >= sizeof(line) || n < 14 || strncasecmp(data, "cache-control:", 14) != 0)
		return n;
	memcpy(line, data, n);
	line[n] = '\0';
	if ((p = strstr(line, "max-age=")) != NULL) {
		long v = strtol(p + 8, NULL, 10);
		if (v > 0)
			ctx->max_age = v;
	}
	return n;
}

/* A digest to notice unchanged key sets (not a security boundary: the set is parsed anew). */
static uint64_t
text_digest(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* The pinned CA: a PEM the caller read; nothing else verifies the server. */
struct pin {
	const char *pem;
	size_t len;
};

/* Only the pinned CA, https only, peer and host name verified; false if curl refuses. */
static bool
pin_ca(CURL *c, const struct pin *pin)
{
	struct curl_blob blob = { (void *)pin->pem, pin->len, CURL_BLOB_COPY };

	return curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob) == CURLE_OK &&
	    /* NULL drops the build's default CA file and directory: the system store must
	     * not count (the blob overrides the file, not the directory). */
	    curl_easy_setopt(c, CURLOPT_CAINFO, NULL) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CAPATH, NULL) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_OPTIONS, 0L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
}

static fb_rc
fetch(const char *url, const struct fb_url_rule *rule, const struct pin *pin,
    struct fb_jwks_fetch *out, struct fb_err *err)
{
	struct fetch_ctx ctx;
	struct fb_url_guard guard;
	fb_rc rc;
	CURL *c;
	CURLcode cc;
	long status = 0;
	char why[CURL_ERROR_SIZE] = ""; /* curl's detail (which certificate check failed) */

	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	fb_buf_init(&ctx.body, FETCH_MAX_BYTES);
	ctx.max_age = FB_JWKS_DEFAULT_MAX_AGE;
	if ((c = curl_easy_init()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if ((rc = fb_url_curl_setup(c, url, rule, &guard, err)) != FB_OK) {
		curl_easy_cleanup(c);
		return rc;
	}
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, FETCH_CONNECT_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)FETCH_MAX_BYTES);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
	(void)curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "fedbridge/" FB_VERSION);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
	if (pin != NULL && !pin_ca(c, pin)) {
		curl_easy_cleanup(c);
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_IO, "this libcurl cannot trust one CA alone");
	}
	cc = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (ctx.too_big) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_LIMIT, "larger than %d bytes", FETCH_MAX_BYTES);
	}
	if (guard.refused) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "refusing to connect: the host resolves to a loopback, link-local or private "
		    "address");
	}
	if (cc != CURLE_OK) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(
		    err, FB_ERR_IO, "%s", why[0] != '\0' ? why : curl_easy_strerror(cc));
	}
	if (status != 200) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_IO, "HTTP status %ld", status);
	}
	if (ctx.body.data == NULL && fb_buf_append(&ctx.body, "", 0) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	out->body = ctx.body.data;
	out->len = ctx.body.len;
	out->digest = text_digest(out->body, out->len);
	out->max_age = ctx.max_age < FETCH_MAX_AGE_MIN ? FETCH_MAX_AGE_MIN
	    : ctx.max_age > FETCH_MAX_AGE_MAX          ? FETCH_MAX_AGE_MAX
	                                               : ctx.max_age;
	return FB_OK;
}

fb_rc
fb_jwks_fetch(
    const char *url, const struct fb_url_rule *rule, struct fb_jwks_fetch *out, struct fb_err *err)
{
	return fetch(url, rule, NULL, out, err);
}

fb_rc
fb_jwks_fetch_pinned(const char *url, const struct fb_url_rule *rule, const char *ca_pem,
    size_t ca_len, struct fb_jwks_fetch *out, struct fb_err *err)
{
	struct pin pin = { ca_pem, ca_len };

	return fetch(url, rule, &pin, out, err);
}
