/* Unit tests for the values idp/, mapping/ and sessions/ hand each other. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_idp.h"
#include "fb_mapping.h"
#include "fb_sessions.h"

#include <string.h>

static void
test_fid_parse_valid(void **state)
{
	struct fb_fid fid;
	struct fb_err err = { 0 };
	const char *s = "fid:0/HZnKEBoqDU/100401";

	(void)state;
	assert_int_equal(fb_fid_parse(s, strlen(s), &fid, &err), FB_OK);
	assert_string_equal(fid.tenant, "HZnKEBoqDU");
	assert_string_equal(fid.local, "100401");
}

static void
test_fid_parse_invalid(void **state)
{
	static const char *const bad[] = { "", "fid:1/HZnKEBoqDU/100401", "fid:0/HZnKEBoqDU",
		"fid:0/HZnKEBoqDU/", "fid:0//100401", "fid:0/HZn/100401",
		"fid:0/HZnKEBoqDU/100 401", "fid:0/HZnKEBoqDU/a/b", "fid:0/HZnKE-oqDU/1",
		"FID:0/HZnKEBoqDU/1", "fid:0/HZnKEBoqDUHZnKEBoqDUx/1" };
	struct fb_fid fid;
	struct fb_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fb_fid_parse(bad[i], strlen(bad[i]), &fid, &err) != FB_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
	/* An embedded NUL is not hidden by the length. */
	assert_int_equal(fb_fid_parse("fid:0/HZnKEBoqDU/1\0x", 21, &fid, &err), FB_ERR_INVALID);
}

static void
test_fid_format(void **state)
{
	char out[FB_FID_MAX];
	char local[FB_FID_LOCAL_MAX + 2];
	struct fb_fid fid;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_fid_format("HWqHczeM2P", "abc-_.9", out, sizeof(out), &err), FB_OK);
	assert_string_equal(out, "fid:0/HWqHczeM2P/abc-_.9");
	assert_int_equal(fb_fid_parse(out, strlen(out), &fid, &err), FB_OK);
	memset(local, 'a', sizeof(local) - 1);
	local[FB_FID_LOCAL_MAX] = '\0';
	assert_int_equal(fb_fid_format("HWqHczeM2P", local, out, sizeof(out), &err), FB_OK);
	local[FB_FID_LOCAL_MAX] = 'a';
	local[FB_FID_LOCAL_MAX + 1] = '\0';
	assert_int_equal(
	    fb_fid_format("HWqHczeM2P", local, out, sizeof(out), &err), FB_ERR_INVALID);
	assert_int_equal(fb_fid_format("bad", "1", out, sizeof(out), &err), FB_ERR_INVALID);
	assert_int_equal(fb_fid_format("HWqHczeM2P", "1", out, 10, &err), FB_ERR_LIMIT);
}

static void
test_session_ids(void **state)
{
	char a[FB_SESSION_ID_LEN + 1], b[FB_SESSION_ID_LEN + 1];

	(void)state;
	assert_int_equal(fb_session_id_new(a), FB_OK);
	assert_int_equal(fb_session_id_new(b), FB_OK);
	assert_int_equal(strlen(a), FB_SESSION_ID_LEN);
	assert_string_not_equal(a, b);
	assert_true(fb_session_id_valid(a, strlen(a)));
	assert_false(fb_session_id_valid(a, strlen(a) - 1));
	assert_false(fb_session_id_valid("AAAAAAAAAAAAAAAAAAAAA=", 22));
	/* 22 characters carry 132 bits: the last 4 must be zero. */
	assert_false(fb_session_id_valid("AAAAAAAAAAAAAAAAAAAAAB", 22));
	assert_true(fb_session_id_valid("AAAAAAAAAAAAAAAAAAAAAA", 22));
}

static void
test_identity(void **state)
{
	struct fb_identity *a = NULL, *b = NULL;
	struct fb_err err = { 0 };
	char longer[FB_IDENTITY_FIELD_MAX + 2];

	(void)state;
	assert_int_equal(fb_identity_new("corp-keycloak", "https://kc.a.example/realms/corp",
	                     "f81d4fae", NULL, &a, &err),
	    FB_OK);
	assert_null(a->idp_session);
	assert_int_equal(fb_identity_new("other", "https://kc.a.example/realms/corp", "f81d4fae",
	                     "sid-1", &b, &err),
	    FB_OK);
	assert_true(fb_identity_same_user(a, b));
	fb_identity_free(b);
	assert_int_equal(
	    fb_identity_new("p", "https://other.example", "f81d4fae", NULL, &b, &err), FB_OK);
	assert_false(fb_identity_same_user(a, b));
	fb_identity_free(b);
	fb_identity_free(a);
	fb_identity_free(NULL);

	b = NULL;
	assert_int_equal(fb_identity_new("p", "i", "", NULL, &b, &err), FB_ERR_INVALID);
	assert_string_equal(err.msg, "identity: subject is missing");
	assert_int_equal(fb_identity_new("p", "i", "a\nb", NULL, &b, &err), FB_ERR_INVALID);
	assert_string_equal(err.msg, "identity: subject holds a control character");
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(fb_identity_new("p", longer, "s", NULL, &b, &err), FB_ERR_INVALID);
	assert_null(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fid_parse_valid),
		cmocka_unit_test(test_fid_parse_invalid),
		cmocka_unit_test(test_fid_format),
		cmocka_unit_test(test_session_ids),
		cmocka_unit_test(test_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
