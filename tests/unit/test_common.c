/* Unit tests for common/: errors, bounded buffers, strict base64url, randomness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_err_set_and_prefix(void **state)
{
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(FB_ERR_SET(&err, FB_ERR_IO, "open %s", "x.pem"), FB_ERR_IO);
	assert_int_equal(err.rc, FB_ERR_IO);
	assert_string_equal(err.msg, "open x.pem");
	assert_string_equal(err.func, "test_err_set_and_prefix");
	fb_err_prefix(&err, "keys.signing[%d]", 0);
	assert_string_equal(err.msg, "keys.signing[0]: open x.pem");
	/* NULL is allowed everywhere and only the code comes back. */
	assert_int_equal(FB_ERR_SET(NULL, FB_ERR_LIMIT, "x"), FB_ERR_LIMIT);
	fb_err_prefix(NULL, "y");
	assert_string_equal(fb_rc_name(FB_ERR_CONFIG), "config");
	assert_string_equal(fb_rc_name(FB_OK), "ok");
}

static void
test_buf_cap(void **state)
{
	struct fb_buf b;

	(void)state;
	fb_buf_init(&b, 8);
	assert_int_equal(fb_buf_append(&b, "abcd", 4), FB_OK);
	assert_int_equal(fb_buf_printf(&b, "%s", "efgh"), FB_OK);
	assert_string_equal(b.data, "abcdefgh");
	/* One byte past the cap fails and leaves the buffer as it was. */
	assert_int_equal(fb_buf_append(&b, "i", 1), FB_ERR_LIMIT);
	assert_int_equal(fb_buf_printf(&b, "%d", 1), FB_ERR_LIMIT);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "abcdefgh");
	fb_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(fb_buf_append(&b, "x", (size_t)-1), FB_ERR_LIMIT);
	fb_buf_free(&b);
	fb_buf_free(&b); /* twice is harmless */
}

static void
test_buf_json_string(void **state)
{
	struct fb_buf b;

	(void)state;
	fb_buf_init(&b, 256);
	assert_int_equal(fb_buf_append_json_string(&b, "a\"b\\c\n\x01"), FB_OK);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
	fb_buf_free(&b);
}

struct b64_vector {
	const char *raw;
	const char *enc;
};

static void
test_b64url_vectors(void **state)
{
	/* RFC 4648 section 10, in the url alphabet without padding. */
	static const struct b64_vector v[] = { { "", "" }, { "f", "Zg" }, { "fo", "Zm8" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" } };
	char enc[32];
	unsigned char dec[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(
		    fb_b64url_encode(v[i].raw, strlen(v[i].raw), enc, sizeof(enc)), FB_OK);
		assert_string_equal(enc, v[i].enc);
		assert_int_equal(
		    fb_b64url_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec), &n), FB_OK);
		assert_int_equal(n, strlen(v[i].raw));
		assert_memory_equal(dec, v[i].raw, n);
	}
	/* The output buffer must hold the NUL too. */
	assert_int_equal(fb_b64url_encode("foo", 3, enc, 4), FB_ERR_LIMIT);
	assert_int_equal(fb_b64url_decode("Zm9vYmFy", 8, dec, 5, &n), FB_ERR_LIMIT);
}

static void
test_b64url_strict(void **state)
{
	/* Padding, the standard alphabet, whitespace, impossible lengths, non-zero trailing bits.
	 */
	static const char *const bad[] = { "Zg==", "Zm8=", "Zm+v", "Zm/v", "Zm9 v", "Zm9v\n", "Z",
		"Zm9vY", "Zh", "Zm9", "Zm-", "Zm_" };
	unsigned char dec[32];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (fb_b64url_decode(bad[i], strlen(bad[i]), dec, sizeof(dec), &n) !=
		    FB_ERR_INVALID)
			fail_msg("accepted non-canonical base64url \"%s\"", bad[i]);
	}
	/* "Zg" is canonical for "f"; "Zh" differs only in trailing bits and must fail (above). */
	assert_int_equal(fb_b64url_decode("Zg", 2, dec, sizeof(dec), &n), FB_OK);
}

static void
test_random_bytes(void **state)
{
	unsigned char a[32], b[32];

	(void)state;
	assert_int_equal(fb_random_bytes(a, sizeof(a)), FB_OK);
	assert_int_equal(fb_random_bytes(b, sizeof(b)), FB_OK);
	assert_memory_not_equal(a, b, sizeof(a));
}

static void
test_file_read(void **state)
{
	char path[] = "/tmp/fb-test-common.XXXXXX";
	struct fb_err err = { 0 };
	char *data = NULL;
	size_t len = 0;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello", 5), 5);
	close(fd);
	assert_int_equal(fb_file_read(path, 5, &data, &len, &err), FB_OK);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	data = NULL;
	assert_int_equal(fb_file_read(path, 4, &data, &len, &err), FB_ERR_LIMIT);
	assert_null(data);
	assert_non_null(strstr(err.msg, "larger than 4 bytes"));
	unlink(path);
	assert_int_equal(fb_file_read(path, 4, &data, &len, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "No such file"));
	assert_int_equal(fb_file_read("/tmp", 4, &data, &len, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

/* Saturating time arithmetic: the ends of int64 stick instead of wrapping. */
static void
test_time_saturating(void **state)
{
	(void)state;
	assert_true(fb_time_add(1800000000, 30) == 1800000030);
	assert_true(fb_time_sub(1800000000, 30) == 1799999970);
	assert_true(fb_time_add(INT64_MAX, 30) == INT64_MAX);
	assert_true(fb_time_add(INT64_MAX - 10, 30) == INT64_MAX);
	assert_true(fb_time_add(INT64_MIN, -30) == INT64_MIN);
	assert_true(fb_time_add(INT64_MIN, 30) == INT64_MIN + 30);
	assert_true(fb_time_sub(INT64_MIN, 30) == INT64_MIN);
	assert_true(fb_time_sub(INT64_MIN + 10, 30) == INT64_MIN);
	assert_true(fb_time_sub(INT64_MAX, -30) == INT64_MAX);
	assert_true(fb_time_sub(0, INT64_MIN) == INT64_MAX);
	assert_true(fb_time_sub(INT64_MAX, INT64_MIN) == INT64_MAX);
	assert_true(fb_time_sub(INT64_MIN, INT64_MAX) == INT64_MIN);
	assert_true(fb_time_add(INT64_MAX, INT64_MIN) == -1);
}

/* The names a login adds to return_to, however a query spells them. */
static void
test_query_has_param(void **state)
{
	static const char *const names[] = { "code", "state", "error", NULL };
	static const char *const found[] = { "code=x", "a=1&code=x", "a=1;code=x", "cod%65=x",
		"%63ode", "code", "code[]=x", "code%5B%5D=x", "x=1&state=2", "error=e#f",
		"a=1&%zz=1", "%6", "&&error", "a=1&code&b=2" };
	static const char *const clean[] = { "", "next=%2Fchat", "codes=1", "xcode=1", "a=code",
		"a=1&b=code=2", "code+=1", "#code=1", "a=1#&code=1", "st%61t=1&c=2", "a=%zz",
		"errors" };

	(void)state;
	for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++)
		if (!fb_query_has_param(found[i], names))
			fail_msg("\"%s\": not found", found[i]);
	for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
		if (fb_query_has_param(clean[i], names))
			fail_msg("\"%s\": wrong answer", clean[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_set_and_prefix),
		cmocka_unit_test(test_time_saturating),
		cmocka_unit_test(test_query_has_param),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_json_string),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_strict),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_file_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
