/*
 * Unit tests for the SAML service provider's IdP metadata (idp/saml_sp.c):
 * validUntil and cacheDuration at load, and the refresh that swaps in new
 * metadata only when it is due and passes every check, keeping the last
 * good one otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fuzz/saml_fixture.h"

#include <time.h>

static struct saml_fixture fx;

static void
write_metadata(const char *entity, const char *root_attrs)
{
	char *xml = NULL;
	int n = asprintf(&xml,
	    "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
	    "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"%s\" %s>"
	    "<md:IDPSSODescriptor "
	    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
	    "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s"
	    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
	    "<md:SingleSignOnService "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" "
	    "Location=\"%s/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
	    entity, root_attrs, fx.cert_b64, entity);

	assert_true(n > 0);
	fixture_write(fx.metadata, xml, (size_t)n, 0644);
	free(xml);
}

static const char *
load(struct fb_saml_sp **sp)
{
	static struct fb_err err;
	bool unreachable = false;

	memset(&err, 0, sizeof(err));
	*sp = NULL;
	return fb_saml_sp_new(&fx.p, "https://sp.example", sp, &unreachable, &err) == FB_OK
	    ? NULL
	    : err.msg;
}

static void
test_load(void **state)
{
	struct fb_saml_sp *sp;
	const char *why;

	(void)state;
	write_metadata(
	    "https://idp.example", "validUntil=\"2099-01-01T00:00:00Z\" cacheDuration=\"PT2H\"");
	assert_null(load(&sp));
	assert_string_equal(fb_saml_sp_idp_entity_id(sp), "https://idp.example");
	fb_saml_sp_free(sp);

	write_metadata("https://idp.example", "validUntil=\"2001-01-01T00:00:00Z\"");
	why = load(&sp);
	assert_non_null(why);
	assert_non_null(strstr(why, "has expired (validUntil)"));

	write_metadata("https://idp.example", "validUntil=\"tomorrow\"");
	assert_non_null(strstr(load(&sp), "a bad validUntil"));
	write_metadata(
	    "https://idp.example", "cacheDuration=\"P1M\""); /* months: no fixed length */
	assert_non_null(strstr(load(&sp), "a bad cacheDuration"));
	write_metadata("https://idp.example", "cacheDuration=\"PT\"");
	assert_non_null(strstr(load(&sp), "a bad cacheDuration"));
}

static void
test_refresh(void **state)
{
	struct fb_saml_sp *sp;
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	bool changed = true;

	(void)state;
	write_metadata("https://idp.example", "cacheDuration=\"PT2H\"");
	assert_null(load(&sp));
	/* Not due before two hours. */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 3600, &changed, &err), FB_OK);
	assert_false(changed);
	/* Due, but the entity changed: refused, the last good one stays, retried in a minute. */
	write_metadata("https://other.example", "cacheDuration=\"PT2H\"");
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7300, &changed, &err), FB_ERR_CONFIG);
	assert_false(changed);
	assert_non_null(strstr(err.msg, "entityID changed"));
	assert_non_null(strstr(err.msg, "the last good one stays"));
	assert_string_equal(fb_saml_sp_idp_entity_id(sp), "https://idp.example");
	memset(&err, 0, sizeof(err));
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7330, &changed, &err), FB_OK);
	assert_false(changed); /* within the minute: not tried again */
	/* Expired metadata is not taken either. */
	write_metadata("https://idp.example", "validUntil=\"2001-01-01T00:00:00Z\"");
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7400, &changed, &err), FB_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "validUntil"));
	/* Good metadata is swapped in. */
	write_metadata("https://idp.example", "cacheDuration=\"PT10M\"");
	memset(&err, 0, sizeof(err));
	/* (a second failure in a row waits two minutes, less up to a fifth) */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7600, &changed, &err), FB_OK);
	assert_true(changed);
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7700, &changed, &err), FB_OK);
	assert_false(changed); /* next due ten minutes later */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 8200, &changed, &err), FB_OK);
	assert_true(changed);
	fb_saml_sp_free(sp);
}

/* A metadata URL that cannot be reached at start: the SP exists, answers "unavailable". */
static void
test_unreachable(void **state)
{
	struct fb_saml_sp *sp = NULL;
	struct fb_saml_outcome out;
	struct fb_err err = { 0 };
	bool unreachable = false, changed = true;
	char *url = NULL, *id = NULL;
	const char *saved = fx.p.idp_metadata;

	(void)state;
	fx.p.idp_metadata = "http://127.0.0.1:1/metadata"; /* nothing listens on port 1 */
	assert_int_equal(
	    fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, &err), FB_OK);
	assert_non_null(sp);
	assert_true(unreachable);
	assert_non_null(strstr(err.msg, "IdP metadata"));
	assert_false(fb_saml_sp_ready(sp));
	assert_null(fb_saml_sp_idp_entity_id(sp));
	assert_int_equal(fb_saml_sp_authn_request(sp, "rs", &url, &id, &err), FB_ERR_IO);
	assert_null(url);
	assert_int_equal(
	    fb_saml_sp_acs(sp, "PHg+PC94Pg==", NULL, (int64_t)time(NULL), 60, &out, &err),
	    FB_ERR_INVALID);
	assert_int_equal(out.failure, FB_SAML_UNAVAILABLE);
	fb_saml_outcome_clear(&out);
	/* Still down at the retry: no change, an error to log. */
	assert_int_equal(
	    fb_saml_sp_refresh(sp, (int64_t)time(NULL) + 3600, &changed, &err), FB_ERR_IO);
	assert_false(changed);
	fb_saml_sp_free(sp);
	fx.p.idp_metadata = saved;
}

static int
setup(void **state)
{
	(void)state;
	saml_fixture_init(&fx);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	saml_fixture_remove(&fx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(test_unreachable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
