/*
 * The relying party's HTTP client: what it sends and accepts is bounded
 * (256 KiB, 10 s), TLS is verified by libcurl's defaults, and a redirect is
 * an answer, never followed (an endpoint that moves is a configuration
 * change, not something a peer decides).
 */
#include "oidc_int.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_CONNECT_TIMEOUT_MS 5000L
#define HTTP_TIMEOUT_MS 10000L

struct reply_ctx {
	struct fb_buf body;
	bool too_big, json;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply_ctx *ctx = arg;
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
	static const char ct[] = "content-type:";
	struct reply_ctx *ctx = arg;
	size_t n = size * nmemb, i = sizeof(ct) - 1;

	if (n > i && strncasecmp(data, ct, i) == 0) {
		while (i < n && (data[i] == ' ' || data[i] == '\t'))
			i++;
		ctx->json = n - i >= 16 && strncasecmp(data + i, "application/json", 16) == 0 &&
		    (n - i == 16 || data[i + 16] == ';' || data[i + 16] == '\r' ||
		        data[i + 16] == ' ');
	}
	return n;
}

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

/* "Basic " + base64(enc(user) ":" enc(pass)); cleansed and freed by the caller. */
static char *
basic_header(const char *user, const char *pass)
{
	struct fb_buf raw;
	char *hdr = NULL;
	size_t cap;

	fb_buf_init(&raw, 8192);
	if (oidc_url_encode(&raw, user) != FB_OK || fb_buf_append(&raw, ":", 1) != FB_OK ||
	    oidc_url_encode(&raw, pass) != FB_OK)
		goto done;
	cap = sizeof("Authorization: Basic ") + 4 * ((raw.len + 2) / 3) + 1;
	if ((hdr = malloc(cap)) == NULL)
		goto done;
	memcpy(hdr, "Authorization: Basic ", sizeof("Authorization: Basic ") - 1);
	(void)EVP_EncodeBlock((unsigned char *)hdr + sizeof("Authorization: Basic ") - 1,
	    (const unsigned char *)raw.data, (int)raw.len);
done:
	if (raw.data != NULL)
		fb_cleanse(raw.data, raw.len);
	fb_buf_free(&raw);
	return hdr;
}

static fb_rc
perform(const char *url, const struct fb_url_rule *rule, const char *form, const char *auth_header,
    struct oidc_http_reply *out, struct fb_err *err)
{
	struct reply_ctx ctx;
	struct fb_url_guard guard;
	fb_rc rc;
	struct curl_slist *headers = NULL, *h;
	CURL *c;
	CURLcode cc;
	long status = 0;

	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	fb_buf_init(&ctx.body, OIDC_HTTP_MAX);
	if ((c = curl_easy_init()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	/* Before any secret is attached: the URL and every address it resolves to. */
	if ((rc = fb_url_curl_setup(c, url, rule, &guard, err)) != FB_OK) {
		curl_easy_cleanup(c);
		return rc;
	}
	if ((h = curl_slist_append(headers, "Accept: application/json")) != NULL)
		headers = h;
	if (auth_header != NULL && (h = curl_slist_append(headers, auth_header)) != NULL)
		headers = h;
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)OIDC_HTTP_MAX);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
	(void)curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "fedbridge/" FB_VERSION);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (form != NULL)
		(void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	cc = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	if (ctx.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: answer larger than %zu bytes", url, OIDC_HTTP_MAX);
	}
	if (guard.refused) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: refusing to connect: the host resolves to a loopback, link-local or "
		    "private address",
		    url);
	}
	if (cc != CURLE_OK) {
		fb_buf_free(&ctx.body);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", url, curl_easy_strerror(cc));
	}
	if (ctx.body.data == NULL && fb_buf_append(&ctx.body, "", 0) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	out->status = status;
	out->body = ctx.body.data;
	out->len = ctx.body.len;
	out->json = ctx.json;
	return FB_OK;
}

fb_rc
oidc_http_get(const char *url, const struct fb_url_rule *rule, const char *bearer,
    struct oidc_http_reply *out, struct fb_err *err)
{
	struct fb_buf hdr;
	fb_rc rc;

	if (bearer == NULL)
		return perform(url, rule, NULL, NULL, out, err);
	fb_buf_init(&hdr, 16384);
	if (fb_buf_printf(&hdr, "Authorization: Bearer %s", bearer) != FB_OK) {
		fb_buf_free(&hdr);
		return FB_ERR_SET(err, FB_ERR_LIMIT, "access token too large");
	}
	rc = perform(url, rule, NULL, hdr.data, out, err);
	fb_cleanse(hdr.data, hdr.len);
	fb_buf_free(&hdr);
	return rc;
}

fb_rc
oidc_http_post_form(const char *url, const struct fb_url_rule *rule, const char *form,
    const char *basic_user, const char *basic_pass, struct oidc_http_reply *out, struct fb_err *err)
{
	char *hdr = NULL;
	fb_rc rc;

	if (basic_user != NULL && (hdr = basic_header(basic_user, basic_pass)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = perform(url, rule, form, hdr, out, err);
	if (hdr != NULL) {
		fb_cleanse(hdr, strlen(hdr));
		free(hdr);
	}
	return rc;
}
