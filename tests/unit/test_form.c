/*
 * Unit tests for the application/x-www-form-urlencoded reader under POST
 * /token and the back-channel logout endpoint (login/form.c): decoding,
 * and each kind of broken body refused with its reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fb_login.h"

static void
test_decoding(void **state)
{
	static const char body[] = "grant_type=authorization_code&code=a%2Bb+c%3D%3D&redirect_uri="
	                           "https%3A%2F%2Fapp.a.example%2Fcb%3Fx%3D1&empty=&bare&&x=%C3%A9";
	struct fb_form f;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_form_parse(body, strlen(body), &f, &err), FB_OK);
	assert_int_equal(f.n, 6);
	assert_string_equal(fb_form_get(&f, "grant_type"), "authorization_code");
	assert_string_equal(fb_form_get(&f, "code"), "a+b c==");
	assert_string_equal(fb_form_get(&f, "redirect_uri"), "https://app.a.example/cb?x=1");
	assert_string_equal(fb_form_get(&f, "empty"), "");
	assert_string_equal(fb_form_get(&f, "bare"), "");
	assert_string_equal(fb_form_get(&f, "x"), "\xc3\xa9");
	assert_null(fb_form_get(&f, "missing"));
	fb_form_clear(&f);
	/* An empty body is an empty form. */
	assert_int_equal(fb_form_parse("", 0, &f, &err), FB_OK);
	assert_int_equal(f.n, 0);
	fb_form_clear(&f);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *body, *why;
	} cases[] = {
		{ "code=1&code=2", "given twice" },
		{ "a=1&b=%2", "parameter b: bad value encoding" },
		{ "a=%zz", "bad value encoding" },
		{ "a=x%00y", "bad value encoding" },
		{ "a=%ff", "bad value encoding" },
		{ "=1", "empty name" },
		{ "%00=1", "bad name encoding" },
		{ "a%2=1", "bad name encoding" },
	};
	struct fb_form f;
	struct fb_err err;
	char many[4096];
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (fb_form_parse(cases[i].body, strlen(cases[i].body), &f, &err) == FB_OK)
			fail_msg("%s: accepted", cases[i].body);
		if (strstr(err.msg, cases[i].why) == NULL)
			fail_msg(
			    "%s: expected \"%s\", got %s", cases[i].body, cases[i].why, err.msg);
	}
	/* A NUL inside the body itself. */
	assert_int_equal(fb_form_parse("a=b\0c", 5, &f, &err), FB_ERR_INVALID);
	for (int i = 0; i <= FB_FORM_MAX_PARAMS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "p%d=v&", i);
	memset(&err, 0, sizeof(err));
	assert_int_equal(fb_form_parse(many, n, &f, &err), FB_ERR_LIMIT);
	assert_non_null(strstr(err.msg, "more than 32 parameters"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoding),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
