/*
 * Unit tests for OpenID Connect discovery documents (idp/oidc_discovery.c):
 * a Keycloak-shaped document is read whole; each broken or hostile variant
 * is refused with the reason that names it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fb_idp.h"

#define ISS "https://kc.a.example/realms/corp"

static const char keycloak[] =
    "{\"issuer\":\"" ISS "\","
    "\"authorization_endpoint\":\"" ISS "/protocol/openid-connect/auth\","
    "\"token_endpoint\":\"" ISS "/protocol/openid-connect/token\","
    "\"userinfo_endpoint\":\"" ISS "/protocol/openid-connect/userinfo\","
    "\"end_session_endpoint\":\"" ISS "/protocol/openid-connect/logout\","
    "\"jwks_uri\":\"" ISS "/protocol/openid-connect/certs\","
    "\"response_types_supported\":[\"code\",\"none\",\"id_token\"],"
    "\"subject_types_supported\":[\"public\",\"pairwise\"],"
    "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\"],"
    "\"code_challenge_methods_supported\":[\"plain\",\"S256\"],"
    "\"authorization_response_iss_parameter_supported\":true}";

static void
test_keycloak(void **state)
{
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_oidc_discovery_parse(keycloak, strlen(keycloak), ISS, &d, &err), FB_OK);
	assert_string_equal(d.token_endpoint, ISS "/protocol/openid-connect/token");
	assert_string_equal(d.jwks_uri, ISS "/protocol/openid-connect/certs");
	assert_string_equal(d.userinfo_endpoint, ISS "/protocol/openid-connect/userinfo");
	assert_true(d.pkce_s256);
	assert_true(d.iss_parameter);
	fb_oidc_discovery_clear(&d);
}

struct row {
	const char *from, *to, *issuer, *want;
};

static void
test_refusals(void **state)
{
	static const struct row rows[] = {
		/* a document for another issuer: the mix-up Discovery 4.3 forbids */
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"https://evil.example\"", ISS,
		    "issuer is \"https://evil.example\", not " ISS },
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"" ISS "/\"", ISS, "not " ISS },
		{ "\"issuer\":\"" ISS "\",", "", ISS, "issuer is absent" },
		{ "", "", "https://kc.a.example/realms/other",
		    "not https://kc.a.example/realms/other" },
		{ "\"token_endpoint\":\"https", "\"token_endpoint\":\"http", ISS,
		    "token_endpoint must be an https URL" },
		{ "\"jwks_uri\":\"https://", "\"jwks_uri\":\"https://user:pw@", ISS,
		    "jwks_uri must be an https URL" },
		{ "/certs\"", "/certs#x\"", ISS, "jwks_uri must be" },
		{ "\"jwks_uri\":\"" ISS "/protocol/openid-connect/certs\",", "", ISS,
		    "jwks_uri must be" },
		{ "\"authorization_endpoint\":\"https", "\"authorization_endpoint\":\"javascript",
		    ISS, "authorization_endpoint must be" },
		{ "\"userinfo_endpoint\":\"https", "\"userinfo_endpoint\":\"ftp", ISS,
		    "userinfo_endpoint must be" },
		/* an https issuer's document aiming our client secret at the bridge host or an
		 * inside service */
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"https://127.0.0.1:8081", ISS,
		    "token_endpoint must be an https URL (http only toward loopback, for a "
		    "loopback "
		    "issuer), without user info or fragment: a loopback, link-local or private "
		    "address" },
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"http://127.0.0.1:8081", ISS,
		    "token_endpoint must be an https URL" },
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"https://localhost", ISS,
		    "a loopback, link-local or private address" },
		{ "\"jwks_uri\":\"" ISS, "\"jwks_uri\":\"https://169.254.169.254/latest", ISS,
		    "jwks_uri must be an https URL" },
		{ "\"userinfo_endpoint\":\"" ISS, "\"userinfo_endpoint\":\"https://10.0.0.7", ISS,
		    "a loopback, link-local or private address" },
		{ "\"end_session_endpoint\":\"" ISS, "\"end_session_endpoint\":\"https://[fd00::1]",
		    ISS, "a loopback, link-local or private address" },
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"https://evil.example/\\u001b[2J\"", ISS,
		    "issuer is \"https://evil.example/\\x1b[2J\"" },
		{ "[\"code\",\"none\",\"id_token\"]", "[\"id_token\"]", ISS,
		    "does not offer the authorization code flow" },
		{ "\"issuer\":", "\"issuer\":\"x\",\"issuer\":", ISS, "not a JSON object" },
	};
	char doc[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fb_oidc_discovery d;
		struct fb_err err = { 0 };
		const char *at = rows[i].from[0] ? strstr(keycloak, rows[i].from) : keycloak;
		fb_rc rc;
		assert_non_null(at);
		(void)snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - keycloak), keycloak,
		    rows[i].to, at + strlen(rows[i].from));
		rc = fb_oidc_discovery_parse(doc, strlen(doc), rows[i].issuer, &d, &err);
		if (rc == FB_OK) {
			fb_oidc_discovery_clear(&d);
			fail_msg("row %zu accepted, expected \"%s\"", i, rows[i].want);
		}
		if (strstr(err.msg, rows[i].want) == NULL)
			fail_msg("row %zu: expected \"%s\", got \"%s\"", i, rows[i].want, err.msg);
	}
}

static void
test_loopback_http(void **state)
{
	static const char doc[] = "{\"issuer\":\"http://127.0.0.1:9000\","
	                          "\"authorization_endpoint\":\"http://127.0.0.1:9000/auth\","
	                          "\"token_endpoint\":\"http://localhost:9000/token\","
	                          "\"jwks_uri\":\"http://[::1]:9000/jwks\","
	                          "\"response_types_supported\":[\"code\"]}";
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(
	    fb_oidc_discovery_parse(doc, strlen(doc), "http://127.0.0.1:9000", &d, &err), FB_OK);
	assert_false(d.pkce_s256);
	assert_false(d.iss_parameter);
	assert_null(d.userinfo_endpoint);
	fb_oidc_discovery_clear(&d);
}

/* An https issuer on an inside address names its own host: the configuration's word. */
static void
test_issuer_own_host(void **state)
{
	static const char doc[] = "{\"issuer\":\"https://10.0.0.5\","
	                          "\"authorization_endpoint\":\"https://10.0.0.5/auth\","
	                          "\"token_endpoint\":\"https://10.0.0.5/token\","
	                          "\"jwks_uri\":\"https://10.0.0.5/jwks\","
	                          "\"response_types_supported\":[\"code\"]}";
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };
	struct fb_url_rule rule;

	(void)state;
	assert_int_equal(
	    fb_oidc_discovery_parse(doc, strlen(doc), "https://10.0.0.5", &d, &err), FB_OK);
	fb_oidc_discovery_clear(&d);
	fb_oidc_endpoint_rule(ISS, "https://other.example/token", &rule);
	assert_true(rule.public_only);
	assert_false(rule.loopback_http);
	fb_oidc_endpoint_rule(ISS, ISS "/token", &rule);
	assert_false(rule.public_only);
	fb_oidc_endpoint_rule("http://127.0.0.1:9000", "http://localhost:9000/token", &rule);
	assert_true(rule.loopback_http);
	assert_string_equal(rule.scheme, "http");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keycloak),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_loopback_http),
		cmocka_unit_test(test_issuer_own_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
