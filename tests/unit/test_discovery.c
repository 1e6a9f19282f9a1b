/*
 * Unit tests for what a remote found through DNS may claim (bridge/federation.c):
 * its issuer must be an https URL on the trust's domain or a host under it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_bridge.h"

static void
issuer_under_domain(void **state)
{
	(void)state;
	assert_true(fb_url_under_domain("https://a.example", "a.example"));
	assert_true(fb_url_under_domain("https://sso.a.example", "a.example"));
	assert_true(fb_url_under_domain("https://SSO.A.Example:8443/path", "a.example"));
	assert_true(fb_url_under_domain("https://x.y.a.example/", "a.example"));
}

static void
issuer_elsewhere(void **state)
{
	(void)state;
	/* Only https: a discovered remote proves itself over TLS. */
	assert_false(fb_url_under_domain("http://sso.a.example", "a.example"));
	/* A suffix that is not a label boundary, or the domain as a label elsewhere. */
	assert_false(fb_url_under_domain("https://evila.example", "a.example"));
	assert_false(fb_url_under_domain("https://a.example.evil.test", "a.example"));
	assert_false(fb_url_under_domain("https://sso.a.example@evil.test/", "a.example"));
	assert_false(fb_url_under_domain("https://evil.test/?sso.a.example", "a.example"));
	assert_false(fb_url_under_domain("https://evil.test#.a.example", "a.example"));
	assert_false(fb_url_under_domain("https://127.0.0.1", "a.example"));
	assert_false(fb_url_under_domain("https://.a.example", "a.example"));
	assert_false(fb_url_under_domain("https://", "a.example"));
	assert_false(fb_url_under_domain("not a url", "a.example"));
	assert_false(fb_url_under_domain("", "a.example"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(issuer_under_domain),
		cmocka_unit_test(issuer_elsewhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
