/*
 * Unit tests for the outbound URL policy (net/url_policy.c): a table of URLs
 * under each kind of rule, accepted or refused with the reason that names
 * why; the address classes; a libcurl transfer refused at connect time when
 * its name resolves inside; and fb_excerpt, which keeps fetched text out of
 * logs unescaped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "fb_net.h"

/* The rules fedbridge uses. */
static const struct fb_url_rule configured = { .loopback_http = true };
static const struct fb_url_rule outside = { .public_only = true };
static const struct fb_url_rule outside_dev = { .loopback_http = true };
static const struct fb_url_rule remote = {
	.public_only = true, .host = "bridge.a.example", .domain = "a.example"
};
static const struct fb_url_rule remote_dev = {
	.loopback_http = true, .host = "bridge.a.example", .domain = "a.example"
};
static const struct fb_url_rule https_issuer = { .scheme = "https", .public_only = true };

struct row {
	const char *url;
	const struct fb_url_rule *rule;
	const char *want; /* NULL: accepted; else a part of the reason */
};

static void
test_table(void **state)
{
	static const struct row rows[] = {
		{ "https://sso.a.example/jwks", &configured, NULL },
		{ "http://127.0.0.1:8080/jwks", &configured, NULL },
		{ "http://localhost/x", &configured, NULL },
		{ "http://[::1]:9/x", &configured, NULL },
		{ "http://sso.a.example/jwks", &configured, "http only toward loopback" },
		{ "http://127.example/jwks", &configured, "http only toward loopback" },
		{ "ftp://sso.a.example/jwks", &configured, "the scheme must be https" },
		{ "file:///etc/passwd", &configured, "no host" },
		{ "sso.a.example/jwks", &configured, "not an absolute URL" },
		{ "https://u:p@sso.a.example/", &configured, "user info is not allowed" },
		{ "https://sso.a.example/#f", &configured, "a fragment is not allowed" },
		/* named from outside: never loopback http, never an inside address */
		{ "http://127.0.0.1:8080/jwks", &outside, "only where the configuration itself" },
		{ "https://127.0.0.1/jwks", &outside, "loopback, link-local or private" },
		{ "https://localhost/jwks", &outside, "loopback, link-local or private" },
		{ "https://169.254.169.254/latest/meta-data", &outside,
		    "loopback, link-local or private" },
		{ "https://10.1.2.3/", &outside, "loopback, link-local or private" },
		{ "https://172.16.0.1/", &outside, "loopback, link-local or private" },
		{ "https://172.31.255.255/", &outside, "loopback, link-local or private" },
		{ "https://172.32.0.1/", &outside, NULL },
		{ "https://192.168.1.1/", &outside, "loopback, link-local or private" },
		{ "https://0.0.0.0/", &outside, "loopback, link-local or private" },
		{ "https://[::1]/", &outside, "loopback, link-local or private" },
		{ "https://[fe80::1]/", &outside, "loopback, link-local or private" },
		{ "https://[fd00::1]/", &outside, "loopback, link-local or private" },
		{ "https://[::ffff:10.0.0.1]/", &outside, "loopback, link-local or private" },
		{ "https://[2001:db8::1]/", &outside, NULL },
		{ "https://93.184.216.34/", &outside, NULL },
		{ "http://127.0.0.1:8080/jwks", &outside_dev, NULL },
		/* an export's or a discovered bridge's URLs: its host or under its domain */
		{ "https://bridge.a.example/.well-known/jwks.json", &remote, NULL },
		{ "https://sso.a.example/", &remote, NULL },
		{ "https://A.EXAMPLE/", &remote, NULL },
		{ "https://evil.example/", &remote,
		    "neither the remote's host nor under its domain" },
		{ "https://a.example.evil.example/", &remote, "neither the remote's host" },
		{ "https://xa.example/", &remote, "neither the remote's host" },
		{ "https://metadata.internal/", &remote, "neither the remote's host" },
		{ "http://127.0.0.1:8080/", &remote, "only where the configuration itself" },
		{ "http://127.0.0.1:8080/", &remote_dev, NULL },
		{ "http://sso.a.example/", &remote_dev, "http only toward loopback" },
		/* an https issuer's endpoints */
		{ "https://kc.a.example/token", &https_issuer, NULL },
		{ "http://127.0.0.1:8080/token", &https_issuer, "differs from the issuer's" },
		{ "https://127.0.0.1:8080/token", &https_issuer,
		    "loopback, link-local or private" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *got = fb_url_problem(rows[i].url, rows[i].rule);
		if (rows[i].want == NULL && got != NULL)
			fail_msg("row %zu %s refused: %s", i, rows[i].url, got);
		if (rows[i].want != NULL && got == NULL)
			fail_msg(
			    "row %zu %s accepted, expected \"%s\"", i, rows[i].url, rows[i].want);
		if (rows[i].want != NULL && strstr(got, rows[i].want) == NULL)
			fail_msg("row %zu %s: expected \"%s\", got \"%s\"", i, rows[i].url,
			    rows[i].want, got);
	}
}

static void
test_check_message(void **state)
{
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_url_check("https://10.0.0.1/\x01x", &outside, &err), FB_ERR_INVALID);
	assert_int_equal(
	    fb_url_check("https://169.254.169.254/\"x", &outside, &err), FB_ERR_INVALID);
	assert_non_null(
	    strstr(err.msg, "refusing to fetch https://169.254.169.254/\\\"x: a loopback"));
}

/* A name that resolves to loopback is refused when libcurl connects, not only by its text. */
static void
test_resolved_refused(void **state)
{
	struct fb_url_guard guard;
	struct fb_err err = { 0 };
	CURL *c = curl_easy_init();
	CURLcode cc;

	(void)state;
	assert_non_null(c);
	/* 1 is tcpmux: nothing listens there; the guard must stop it before a connect. */
	assert_int_equal(
	    fb_url_curl_setup(c, "https://loopback.test:1/", &outside, &guard, &err), FB_OK);
	struct curl_slist *resolve = curl_slist_append(NULL, "loopback.test:1:127.0.0.1");
	(void)curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	cc = curl_easy_perform(c);
	assert_int_not_equal(cc, CURLE_OK);
	assert_true(guard.refused);
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);

	/* Plain http toward loopback must land on loopback. */
	c = curl_easy_init();
	assert_non_null(c);
	assert_int_equal(
	    fb_url_curl_setup(c, "http://localhost:1/", &configured, &guard, &err), FB_OK);
	resolve = curl_slist_append(NULL, "localhost:1:10.0.0.1");
	(void)curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	cc = curl_easy_perform(c);
	assert_int_not_equal(cc, CURLE_OK);
	assert_true(guard.refused);
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
}

static void
test_setup_refuses(void **state)
{
	struct fb_url_guard guard;
	struct fb_err err = { 0 };
	CURL *c = curl_easy_init();

	(void)state;
	assert_non_null(c);
	assert_int_equal(fb_url_curl_setup(
	                     c, "http://169.254.169.254/latest/meta-data/", &outside, &guard, &err),
	    FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "http only toward loopback"));
	curl_easy_cleanup(c);
}

static void
test_excerpt(void **state)
{
	char out[FB_EXCERPT_MAX];
	char big[1000];

	(void)state;
	fb_excerpt("tok\n\x1b[31m\"\\", 11, out, sizeof(out));
	assert_string_equal(out, "tok\\x0a\\x1b[31m\\\"\\\\");
	/* The characters of fb_text_escape: UTF-8 shown, a C1 control and a bad byte escaped. */
	fb_excerpt("caf\xc3\xa9 \xc2\x9b"
	           "2J \xff",
	    12, out, sizeof(out));
	assert_string_equal(out, "caf\xc3\xa9 \\u{009b}2J \\xff");
	memset(big, 'A', sizeof(big));
	fb_excerpt(big, sizeof(big), out, sizeof(out));
	assert_true(strlen(out) < FB_EXCERPT_MAX);
	assert_string_equal(out + strlen(out) - 3, "...");
	fb_excerpt("abc", 3, out, 3);
	assert_string_equal(out, "");
	fb_json_reason("'[' or '{' expected near 'AKIASECRETTOKEN'", out, sizeof(out));
	assert_string_equal(out, "'[' or '{' expected");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_check_message),
		cmocka_unit_test(test_resolved_refused),
		cmocka_unit_test(test_setup_refuses),
		cmocka_unit_test(test_excerpt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
