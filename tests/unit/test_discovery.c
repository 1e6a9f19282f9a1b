/*
 * Unit tests for what a remote found through DNS, or its trust export, may claim
 * (federation/federation.c, federation/trust.c, net/url_policy.c): its issuer must be an
 * https URL on the trust's domain or a host under it, its relay a host:port there,
 * its domain a registrable one (not a public suffix), its "ca" certificates only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb_federation.h"

#define EXPORT_FIXTURE "/tests/fuzz/corpus/fuzz_trust_export/pair_a.json"
#define CA_KEY "\"ca\": \""
/* A PEM block's armour is all the reader needs to see a label: no real key here. */
#define KEY_BLOCK "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"
#define EC_KEY_BLOCK "-----BEGIN EC PRIVATE KEY-----\\nAAAA\\n-----END EC PRIVATE KEY-----\\n"
#define CRL_BLOCK "-----BEGIN X509 CRL-----\\nAAAA\\n-----END X509 CRL-----\\n"
#define CERT_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define BAD_CERT_BLOCK "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n"

/* A's export (the fuzz corpus' pair_a.json), and where its "ca" string lies in it. */
struct fixture {
	char *doc;
	size_t ca_at, ca_len; /* the JSON-escaped value, without its quotes */
};

static struct fixture fx;

static int
fixture_setup(void **state)
{
	const char *src = getenv("FB_SOURCE_DIR");
	char path[4096];
	FILE *f;
	long n;
	char *at, *end;

	(void)state;
	if (src == NULL)
		return -1;
	(void)snprintf(path, sizeof(path), "%s%s", src, EXPORT_FIXTURE);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (fx.doc = calloc(1, (size_t)n + 1)) == NULL ||
	    fread(fx.doc, 1, (size_t)n, f) != (size_t)n) {
		(void)fclose(f);
		return -1;
	}
	(void)fclose(f);
	if ((at = strstr(fx.doc, CA_KEY)) == NULL)
		return -1;
	at += strlen(CA_KEY);
	if ((end = strchr(at, '"')) == NULL)
		return -1;
	fx.ca_at = (size_t)(at - fx.doc);
	fx.ca_len = (size_t)(end - at);
	return 0;
}

static int
fixture_teardown(void **state)
{
	(void)state;
	free(fx.doc);
	return 0;
}

/* The export with "ca" = before + A's CA (when with_ca) + after, all JSON-escaped. */
static char *
export_with_ca(const char *before, bool with_ca, const char *after)
{
	size_t n = strlen(fx.doc) + strlen(before) + strlen(after) + 1;
	char *out = calloc(1, n);

	assert_non_null(out);
	(void)snprintf(out, n, "%.*s%s%.*s%s%s", (int)fx.ca_at, fx.doc, before,
	    with_ca ? (int)fx.ca_len : 0, fx.doc + fx.ca_at, after, fx.doc + fx.ca_at + fx.ca_len);
	return out;
}

/* Parses the export with that "ca"; on success *ca_pem gets what was kept (malloc'd). */
static fb_rc
parse_ca(const char *before, bool with_ca, const char *after, char **ca_pem, struct fb_err *err)
{
	char *doc = export_with_ca(before, with_ca, after);
	struct fb_trust_export ex;
	fb_rc rc = fb_trust_export_parse(doc, strlen(doc), "a.json", &ex, err);

	free(doc);
	if (ca_pem != NULL)
		*ca_pem = rc == FB_OK ? strdup(ex.ca_pem) : NULL;
	if (rc == FB_OK)
		fb_trust_export_free(&ex);
	return rc;
}

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

static void
relay_under_domain(void **state)
{
	(void)state;
	assert_true(fb_hostport_under_domain("federation.a.example:443", "a.example"));
	assert_true(fb_hostport_under_domain("a.example:8443", "a.example"));
	assert_true(fb_hostport_under_domain("Relay.A.Example:1", "a.example"));
	assert_true(fb_hostport_under_domain("federation.a.example:65535", "a.example"));
}

static void
relay_elsewhere(void **state)
{
	(void)state;
	assert_false(fb_hostport_under_domain("federation.evil.example:443", "a.example"));
	assert_false(fb_hostport_under_domain("evila.example:443", "a.example"));
	assert_false(fb_hostport_under_domain("a.example.evil.test:443", "a.example"));
	/* Addresses are no names under a domain, whatever their digits. */
	assert_false(fb_hostport_under_domain("10.0.0.1:443", "0.1"));
	assert_false(fb_hostport_under_domain("[::1]:443", "a.example"));
	/* No port, a port out of range or with trailing bytes, no host, not a name. */
	assert_false(fb_hostport_under_domain("federation.a.example", "a.example"));
	assert_false(fb_hostport_under_domain("federation.a.example:0", "a.example"));
	assert_false(fb_hostport_under_domain("federation.a.example:65536", "a.example"));
	assert_false(fb_hostport_under_domain("federation.a.example:443x", "a.example"));
	assert_false(fb_hostport_under_domain("federation.a.example:-1", "a.example"));
	assert_false(fb_hostport_under_domain(":443", "a.example"));
	assert_false(fb_hostport_under_domain("evil.test/x.a.example:443", "a.example"));
	assert_false(fb_hostport_under_domain("evil.test@a.example:443", "a.example"));
	assert_false(fb_hostport_under_domain("", "a.example"));
}

static void
domain_registrable(void **state)
{
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_domain_registrable("a.example", false, &err), FB_OK);
	assert_int_equal(fb_domain_registrable("sso.a.example", false, &err), FB_OK);
	assert_int_equal(fb_domain_registrable("example.co.uk", false, &err), FB_OK);
	assert_int_equal(fb_domain_registrable("Wire.COM", false, &err), FB_OK);
	/* Loopback names only for an installation on loopback; a.localhost is two labels. */
	assert_int_equal(fb_domain_registrable("localhost", true, &err), FB_OK);
	assert_int_equal(fb_domain_registrable("a.localhost", true, &err), FB_OK);
}

static void
domain_not_registrable(void **state)
{
	static const char *const suffixes[] = { "com", "co.uk", "CO.UK", "github.io", "org", "uk",
		NULL };
	struct fb_err err = { 0 };

	(void)state;
	for (size_t i = 0; suffixes[i] != NULL; i++) {
		assert_int_equal(fb_domain_registrable(suffixes[i], false, &err), FB_ERR_INVALID);
		assert_non_null(strstr(err.msg, suffixes[i]));
	}
	assert_int_equal(fb_domain_registrable("co.uk", false, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "domain co.uk is a public suffix"));
	assert_int_equal(fb_domain_registrable("example", false, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "domain example has one label"));
	assert_int_equal(fb_domain_registrable("localhost", false, &err), FB_ERR_INVALID);
	assert_int_equal(fb_domain_registrable("com", true, &err), FB_ERR_INVALID);
	assert_int_equal(fb_domain_registrable("", false, &err), FB_ERR_INVALID);
	assert_int_equal(fb_domain_registrable("a..example", false, &err), FB_ERR_INVALID);
	assert_int_equal(fb_domain_registrable("a.example.", false, &err), FB_ERR_INVALID);
	assert_int_equal(fb_domain_registrable("a.example/x", false, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "is not a DNS name"));
}

static void
export_domain(void **state)
{
	struct fb_trust_export ex;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_trust_export_parse(fx.doc, strlen(fx.doc), "a.json", &ex, &err), FB_OK);
	assert_int_equal(fb_trust_export_check_domain(&ex, false, &err), FB_OK);
	free(ex.domain);
	assert_non_null(ex.domain = strdup("co.uk"));
	assert_int_equal(fb_trust_export_check_domain(&ex, false, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "\"domain\": domain co.uk is a public suffix"));
	fb_trust_export_free(&ex);
}

static void
export_ca_certificates(void **state)
{
	struct fb_err err = { 0 };
	char *kept = NULL, *spaced = NULL, *twice = NULL, *ca = NULL;

	(void)state;
	/* As exported: kept as it is (the exporter re-encodes too). */
	assert_int_equal(parse_ca("", true, "", &kept, &err), FB_OK);
	/* Whitespace around, a CR: re-encoded, so what is written is the same. */
	assert_int_equal(parse_ca("\\n  \\r\\n", true, "\\n\\n\\t", &spaced, &err), FB_OK);
	/* Two certificates: both kept, nothing else. */
	assert_non_null(ca = strndup(fx.doc + fx.ca_at, fx.ca_len));
	assert_int_equal(parse_ca(ca, true, "", &twice, &err), FB_OK);
	if (kept == NULL || spaced == NULL || twice == NULL)
		fail_msg("a parsed export without its ca");
	else {
		assert_true(strncmp(kept, CERT_BEGIN, strlen(CERT_BEGIN)) == 0);
		assert_string_equal(spaced, kept);
		assert_int_equal(strlen(twice), 2 * strlen(kept));
		assert_true(strncmp(twice, kept, strlen(kept)) == 0);
		assert_string_equal(twice + strlen(kept), kept);
	}
	free(spaced);
	free(twice);
	free(ca);
	free(kept);
}

static void
export_ca_refused(void **state)
{
	static const struct {
		const char *before, *after, *message;
		bool with_ca;
	} cases[] = {
		{ "", KEY_BLOCK, "\"ca\" holds a private key (PEM block PRIVATE KEY)", true },
		{ EC_KEY_BLOCK, "", "\"ca\" holds a private key (PEM block EC PRIVATE KEY)", true },
		{ "", CRL_BLOCK, "\"ca\" holds a PEM block X509 CRL: only certificates", true },
		{ "note: hello\\n", "", "\"ca\" holds text outside its PEM blocks", true },
		{ "", "trailing",
		    "\"ca\" holds something other than PEM certificates after block 1", true },
		{ "", "-----BEGIN CERTIFICATE-----\\nMIIB", "something other than PEM certificates",
		    true },
		{ "", BAD_CERT_BLOCK, "a CERTIFICATE block that is not one X.509 certificate",
		    true },
		{ "\\n \\n", "", "\"ca\" holds no PEM certificate", false },
	};
	struct fb_err err = { 0 };
	char *kept = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(
		    parse_ca(cases[i].before, cases[i].with_ca, cases[i].after, &kept, &err),
		    FB_ERR_INVALID);
		assert_null(kept);
		if (strstr(err.msg, cases[i].message) == NULL)
			fail_msg("case %zu: %s", i, err.msg);
		/* Nothing of the key reaches the message. */
		assert_null(strstr(err.msg, "AAAA"));
	}
}

/* A partner that stays down is asked less and less often, never in step with other bridges. */
static void
retry_backs_off(void **state)
{
	int64_t first_low = FB_JWKS_RETRY - FB_JWKS_RETRY / FB_BACKOFF_JITTER_PART;
	bool varied = false;

	(void)state;
	for (int i = 0; i < 64; i++) {
		int64_t d0 = fb_backoff_delay(FB_JWKS_RETRY, FB_JWKS_RETRY_MAX, 0),
		        d1 = fb_backoff_delay(FB_JWKS_RETRY, FB_JWKS_RETRY_MAX, 1),
		        dn = fb_backoff_delay(FB_JWKS_RETRY, FB_JWKS_RETRY_MAX, 40);

		assert_true(d0 >= first_low && d0 <= FB_JWKS_RETRY);
		assert_true(d1 >= 2 * first_low && d1 <= 2 * (int64_t)FB_JWKS_RETRY);
		assert_true(dn >= FB_JWKS_RETRY_MAX - FB_JWKS_RETRY_MAX / FB_BACKOFF_JITTER_PART &&
		    dn <= FB_JWKS_RETRY_MAX);
		varied = varied || d0 != fb_backoff_delay(FB_JWKS_RETRY, FB_JWKS_RETRY_MAX, 0);
	}
	assert_true(varied);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(retry_backs_off),
		cmocka_unit_test(issuer_under_domain),
		cmocka_unit_test(issuer_elsewhere),
		cmocka_unit_test(relay_under_domain),
		cmocka_unit_test(relay_elsewhere),
		cmocka_unit_test(domain_registrable),
		cmocka_unit_test(domain_not_registrable),
		cmocka_unit_test(export_domain),
		cmocka_unit_test(export_ca_certificates),
		cmocka_unit_test(export_ca_refused),
	};
	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
