/*
 * The one bounded HTTPS client: every document fedbridge fetches (remote key
 * sets, feeds and discovery documents, an IdP's discovery, keys, token and
 * userinfo endpoints, SAML metadata) comes through here. The URL policy is
 * set up first (fb_url_curl_setup: no redirects, no proxy, every resolved
 * address checked), before any secret is attached; the answer is bounded in
 * time and size; TLS is verified by libcurl's defaults or against one pinned
 * CA alone.
 */
#include "fb_net.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USER_AGENT "fedbridge/" FB_VERSION
#define ACCEPT_JSON_HEADER "Accept: application/json"
#define JSON_TYPE "application/json"
#define CONTENT_TYPE_HEADER "content-type:"
#define CACHE_CONTROL_HEADER "cache-control:"
#define MAX_AGE_DIRECTIVE "max-age="
#define HEADER_LINE_MAX 256 /* longer Cache-Control lines are not read */
#define DECIMAL 10
#define VERIFY_HOST_NAME 2L /* CURLOPT_SSL_VERIFYHOST: the certificate must name the host */

/* What the callbacks gather during one transfer. */
struct transfer {
	struct fb_buf body;
	fb_rc body_rc; /* why the body stopped growing: FB_ERR_LIMIT or FB_ERR_NOMEM */
	bool json;
	int64_t max_age;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;
	fb_rc rc = fb_buf_append(&t->body, data, n);

	if (rc != FB_OK) {
		t->body_rc = rc;
		return 0; /* aborts the transfer */
	}
	return n;
}

static bool
header_named(const char *line, size_t n, const char *name)
{
	size_t len = strlen(name);

	return n > len && strncasecmp(line, name, len) == 0;
}

/* Content-Type: application/json, with or without parameters. */
static bool
content_type_json(const char *line, size_t n)
{
	size_t i = strlen(CONTENT_TYPE_HEADER), len = strlen(JSON_TYPE);

	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return n - i >= len && strncasecmp(line + i, JSON_TYPE, len) == 0 &&
	    (n - i == len || line[i + len] == ';' || line[i + len] == '\r' || line[i + len] == ' ');
}

/* Cache-Control: ... max-age=N ...; -1 when absent or not a positive number. */
static int64_t
cache_control_max_age(const char *data, size_t n)
{
	char line[HEADER_LINE_MAX];
	const char *p;
	long long v;

	if (n >= sizeof(line))
		return -1;
	memcpy(line, data, n);
	line[n] = '\0';
	if ((p = strcasestr(line, MAX_AGE_DIRECTIVE)) == NULL)
		return -1;
	v = strtoll(p + strlen(MAX_AGE_DIRECTIVE), NULL, DECIMAL);
	return v > 0 ? (int64_t)v : -1;
}

/* libcurl hands over each header line of the answer, CRLF included. */
static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;

	if (header_named(data, n, CONTENT_TYPE_HEADER))
		t->json = content_type_json(data, n);
	else if (header_named(data, n, CACHE_CONTROL_HEADER))
		t->max_age = cache_control_max_age(data, n);
	return n;
}

/* Only the pinned CA, https only, peer and host name verified; false if libcurl refuses. */
static bool
pin_ca(CURL *c, const char *pem, size_t len)
{
	struct curl_blob blob = { (void *)pem, len, CURL_BLOB_COPY };

	return curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob) == CURLE_OK &&
	    /* NULL drops the build's default CA file and directory: the system store must
	     * not count (the blob overrides the file, not the directory). */
	    curl_easy_setopt(c, CURLOPT_CAINFO, NULL) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CAPATH, NULL) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_OPTIONS, 0L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, VERIFY_HOST_NAME) == CURLE_OK;
}

/* libcurl copied each header line into the list: the secret one is wiped before freeing. */
static void
headers_free(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h != NULL; h = h->next)
		fb_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

/* The request's own header lines; false when out of memory. */
static bool
headers_add(struct curl_slist **headers, const struct fb_http_request *req)
{
	struct curl_slist *h;

	if (req->accept_json) {
		if ((h = curl_slist_append(*headers, ACCEPT_JSON_HEADER)) == NULL)
			return false;
		*headers = h;
	}
	if (req->secret_header != NULL) {
		if ((h = curl_slist_append(*headers, req->secret_header)) == NULL)
			return false;
		*headers = h;
	}
	return true;
}

/* The bounds and callbacks every transfer has; false if libcurl refuses one. */
static bool
transfer_setup(CURL *c, const struct fb_http_request *req, struct transfer *t,
    struct curl_slist *headers, char *why)
{
	long total = req->timeout_ms > 0 ? req->timeout_ms : FB_HTTP_TIMEOUT_MS;
	long connect = total < FB_HTTP_CONNECT_TIMEOUT_MS ? total : FB_HTTP_CONNECT_TIMEOUT_MS;
	bool ok = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes) ==
	        CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, t) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, t) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) == CURLE_OK;

	if (ok && req->method == FB_HTTP_POST_FORM)
		ok = curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->form != NULL ? req->form : "") ==
		    CURLE_OK;
	return ok;
}

/* What went wrong with a transfer libcurl performed, naming the URL as shown. */
static fb_rc
transfer_failed(const struct fb_http_request *req, const struct transfer *t,
    const struct fb_url_guard *guard, CURLcode cc, const char *why, const char *shown,
    struct fb_err *err)
{
	if (t->body_rc == FB_ERR_NOMEM)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (t->body_rc == FB_ERR_LIMIT || cc == CURLE_FILESIZE_EXCEEDED)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: answer larger than %zu bytes", shown, req->max_bytes);
	if (guard->refused)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: refusing to connect: the host resolves to a loopback, link-local or "
		    "private address",
		    shown);
	/* why holds the detail (which certificate check failed); the code's text otherwise. */
	return FB_ERR_SET(
	    err, FB_ERR_IO, "%s: %s", shown, why[0] != '\0' ? why : curl_easy_strerror(cc));
}

fb_rc
fb_http_fetch(const struct fb_http_request *req, struct fb_http_reply *out, struct fb_err *err)
{
	struct transfer t = { .max_age = -1 };
	struct fb_url_guard guard;
	struct curl_slist *headers = NULL;
	char why[CURL_ERROR_SIZE] = "";
	char shown[FB_EXCERPT_MAX]; /* the URL may come from a hostile document */
	long status = 0;
	CURLcode cc;
	CURL *c;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	fb_excerpt(req->url, strlen(req->url), shown, sizeof(shown));
	if ((c = curl_easy_init()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	/* Before any secret is attached: the URL and every address it resolves to. */
	if ((rc = fb_url_curl_setup(c, req->url, req->rule, &guard, err)) != FB_OK) {
		curl_easy_cleanup(c);
		return rc;
	}
	fb_buf_init(&t.body, req->max_bytes);
	if (!headers_add(&headers, req))
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	else if (!transfer_setup(c, req, &t, headers, why))
		rc = FB_ERR_SET(err, FB_ERR_INTERNAL, "%s: libcurl refused an option", shown);
	else if (req->ca_pem != NULL && !pin_ca(c, req->ca_pem, req->ca_len))
		rc =
		    FB_ERR_SET(err, FB_ERR_IO, "%s: this libcurl cannot trust one CA alone", shown);
	if (rc == FB_OK) {
		cc = curl_easy_perform(c);
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK || t.body_rc != FB_OK)
			rc = transfer_failed(req, &t, &guard, cc, why, shown, err);
	}
	curl_easy_cleanup(c);
	headers_free(headers);
	/* An empty answer is still a string. */
	if (rc == FB_OK && t.body.data == NULL && fb_buf_append(&t.body, "", 0) != FB_OK)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (rc != FB_OK) {
		fb_buf_free(&t.body);
		return rc;
	}
	out->status = status;
	out->body = t.body.data;
	out->len = t.body.len;
	out->json = t.json;
	out->max_age = t.max_age;
	return FB_OK;
}

void
fb_http_reply_free(struct fb_http_reply *reply)
{
	free(reply->body);
	memset(reply, 0, sizeof(*reply));
}
