/* Unit tests for common/: errors, bounded buffers, strict base64url, randomness, secret files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_common.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTHER_UID 65534 /* nobody */

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

/* Escapes text into a fresh string (the test frees it). */
static char *
escaped(const char *s, size_t len, size_t max)
{
	struct fb_buf b;
	char *out;

	fb_buf_init(&b, 1 << 16);
	assert_int_equal(fb_text_escape(&b, s, len, max), FB_OK);
	out = strdup(b.data ? b.data : "");
	fb_buf_free(&b);
	return out;
}

static void
test_text_escape(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain text, fid:0/a/1", "plain text, fid:0/a/1" },
		{ "a\nb", "a\\x0ab" },
		{ "x\r\n2026-01-01T00:00:00Z info admin",
		    "x\\x0d\\x0a2026-01-01T00:00:00Z info admin" },
		{ "\x1b[31mred\x7f", "\\x1b[31mred\\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" }, /* UTF-8 passes */
		{ "bad \xff\xc3", "bad \\xff\\xc3" }, /* not UTF-8: shown byte by byte */
		{ "\xc2\x9b"
		  "2J",
		    "\\u{009b}2J" }, /* C1 CSI */
		{ "a\xe2\x80\xa8"
		  "b\xe2\x80\xae"
		  "c",
		    "a\\u{2028}b\\u{202e}c" },
	};
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = escaped(cases[i].in, strlen(cases[i].in), 1024);
		assert_string_equal(out, cases[i].want);
		free(out);
	}
	/* An embedded NUL cannot end the value early either. */
	out = escaped("a\0b", 3, 1024);
	assert_string_equal(out, "a\\x00b");
	free(out);
	/* Cut at max with the marker, never inside an escape or a character. */
	out = escaped("0123456789abcdefghij", 20, 16);
	assert_string_equal(out, "01234567" FB_ESCAPE_CUT_MARKER);
	free(out);
	out = escaped("\n\n\n\n\n\n", 6, 16);
	assert_string_equal(out, "\\x0a\\x0a" FB_ESCAPE_CUT_MARKER); /* 4 + 4 + 8 */
	free(out);
	out = escaped("0123456789abcdef", 16, 16); /* exactly max: whole */
	assert_string_equal(out, "0123456789abcdef");
	free(out);
}

/* Runs fn with stderr sent to a file; returns what was written (the test frees it). */
static char *
captured_log(void (*fn)(void))
{
	char path[] = "/tmp/fb-test-log.XXXXXX", *text = NULL;
	struct fb_err err = { 0 };
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	size_t len = 0;

	assert_true(fd >= 0 && saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fd);
	assert_int_equal(fb_file_read(path, 1 << 20, &text, &len, &err), FB_OK);
	unlink(path);
	return text;
}

static void
log_forged_line(void)
{
	fb_log(FB_LOG_INFO, "login: no provider %s",
	    "x\n2026-12-07T00:00:00.000Z info fid:0/t/1 admin logged in\x1b[2J");
}

static void
log_long_controls(void)
{
	char v[3000];

	memset(v, '\n', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	fb_log(FB_LOG_WARN, "jti %s", v);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_log_escapes(void **state)
{
	char *text;
	json_t *j;

	(void)state;
	fb_log_setup(FB_LOG_INFO, FB_LOG_TEXT);
	text = captured_log(log_forged_line);
	assert_int_equal(count_lines(text), 1);
	assert_non_null(strstr(text,
	    "no provider x\\x0a2026-12-07T00:00:00.000Z info fid:0/t/1 "
	    "admin logged in\\x1b[2J\n"));
	assert_null(strchr(text, '\x1b'));
	free(text);
	/* JSON lines stay whole and parse, however many characters need escaping. */
	fb_log_setup(FB_LOG_INFO, FB_LOG_JSON);
	text = captured_log(log_long_controls);
	assert_int_equal(count_lines(text), 1);
	j = json_loads(text, 0, NULL);
	assert_non_null(j);
	assert_non_null(strstr(json_string_value(json_object_get(j, "msg")), FB_ESCAPE_CUT_MARKER));
	json_decref(j);
	free(text);
	fb_log_setup(FB_LOG_INFO, FB_LOG_TEXT);
}

/* A scratch folder for the secret-file tests, removed with everything in it. */
struct secret_dir {
	char dir[64];
	char path[128];
};

static const char *
secret_path(struct secret_dir *d, const char *name)
{
	(void)snprintf(d->path, sizeof(d->path), "%s/%s", d->dir, name);
	return d->path;
}

static void
secret_write(struct secret_dir *d, const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(secret_path(d, name), "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(d->path, mode), 0);
}

static int
secret_setup(void **state)
{
	struct secret_dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	(void)snprintf(d->dir, sizeof(d->dir), "/tmp/fb-test-secret.XXXXXX");
	if (mkdtemp(d->dir) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int
secret_teardown(void **state)
{
	struct secret_dir *d = *state;
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	free(d);
	return system(cmd) == 0 ? 0 : -1;
}

/* Expects fb_secret_read to refuse name with rc and a message holding want; nothing returned. */
static void
secret_refused(struct secret_dir *d, const char *name, size_t max, fb_rc rc, const char *want)
{
	struct fb_err err = { 0 };
	char *data = (char *)"untouched";
	size_t len = 1;

	assert_int_equal(fb_secret_read(secret_path(d, name), max, &data, &len, &err), rc);
	assert_null(data);
	assert_int_equal(len, 0);
	if (strstr(err.msg, want) == NULL || strstr(err.msg, name) == NULL)
		fail_msg("%s: expected a message naming it with \"%s\", got \"%s\"", name, want,
		    err.msg);
}

static void
test_secret_read_good(void **state)
{
	struct secret_dir *d = *state;
	struct fb_err err = { 0 };
	char *data = NULL;
	size_t len = 0;

	secret_write(d, "rw.secret", "0123456789abcdef\n", 0600);
	assert_int_equal(fb_secret_read(d->path, 17, &data, &len, &err), FB_OK);
	assert_int_equal(len, 17);
	assert_string_equal(data, "0123456789abcdef\n");
	data[0] = '\0'; /* what callers do to a trailing newline: the free still wipes all */
	fb_secret_free(data);
	secret_write(d, "ro.secret", "", 0400);
	assert_int_equal(fb_secret_read(d->path, 17, &data, &len, &err), FB_OK);
	assert_int_equal(len, 0);
	assert_string_equal(data, "");
	fb_secret_free(data);
	fb_secret_free(NULL);
}

static void
test_secret_read_refusals(void **state)
{
	struct secret_dir *d = *state;

	secret_write(d, "target.secret", "0123456789abcdef", 0600);
	/* A link to a good secret file: only the link is wrong. */
	assert_int_equal(symlink("target.secret", secret_path(d, "link.secret")), 0);
	secret_refused(d, "link.secret", 64, FB_ERR_INVALID, "is a symbolic link");
	secret_write(d, "group.secret", "0123456789abcdef", 0640);
	secret_refused(d, "group.secret", 64, FB_ERR_INVALID, "mode 0640, must be 0600 or 0400");
	secret_write(d, "world.secret", "0123456789abcdef", 0644);
	secret_refused(d, "world.secret", 64, FB_ERR_INVALID, "mode 0644, must be 0600 or 0400");
	secret_write(d, "exec.secret", "0123456789abcdef", 0700);
	secret_refused(d, "exec.secret", 64, FB_ERR_INVALID, "mode 0700, must be 0600 or 0400");
	secret_write(d, "big.secret", "0123456789abcdef", 0600);
	secret_refused(d, "big.secret", 15, FB_ERR_LIMIT, "larger than 15 bytes");
	assert_int_equal(mkfifo(secret_path(d, "fifo.secret"), 0600), 0);
	/* Opening a FIFO with no writer must not hang: refused on the descriptor. */
	secret_refused(d, "fifo.secret", 64, FB_ERR_INVALID, "is a FIFO, not a regular file");
	assert_int_equal(mkdir(secret_path(d, "dir.secret"), 0700), 0);
	secret_refused(d, "dir.secret", 64, FB_ERR_INVALID, "is a directory, not a regular file");
	secret_refused(d, "missing.secret", 64, FB_ERR_IO, "No such file");
}

/* Tests run as root here: chown gives the file to another user, as an attacker's would be. */
static void
test_secret_read_other_owner(void **state)
{
	struct secret_dir *d = *state;
	char want[64];

	if (geteuid() != 0)
		skip();
	secret_write(d, "nobody.secret", "0123456789abcdef", 0600);
	assert_int_equal(chown(d->path, OTHER_UID, OTHER_UID), 0);
	(void)snprintf(want, sizeof(want), "owned by uid %d, must be owned by uid 0", OTHER_UID);
	secret_refused(d, "nobody.secret", 64, FB_ERR_INVALID, want);
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

/* The one percent-decoder: forms, queries and nginx's escaped certificate. */
static void
test_percent_decode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(fb_percent_decode("a+b%2Bc%41", 10, out), 6);
	assert_string_equal(out, "a b+cA");
	assert_int_equal(fb_percent_decode("%e2%82%AC", 9, out), 3);
	assert_string_equal(out, "\xe2\x82\xac");
	assert_int_equal(fb_percent_decode("", 0, out), 0);
	assert_string_equal(out, "");
	assert_int_equal(fb_percent_decode("%4", 2, out), -1); /* cut short */
	assert_int_equal(fb_percent_decode("%zz", 3, out), -1);
	assert_int_equal(fb_percent_decode("a%00b", 5, out), -1); /* a decoded NUL */
	assert_int_equal(fb_percent_decode("a\0b", 3, out), -1); /* a written one */
	assert_int_equal(fb_percent_decode("%41%", 4, out), -1);
}

/* The one markup escaper: HTML pages and the XML of a LogoutRequest. */
static void
test_markup(void **state)
{
	struct fb_buf b;

	(void)state;
	fb_buf_init(&b, 256);
	assert_int_equal(fb_buf_append_markup(&b, "<a href=\"x\">Tom & Jerry's</a>"), FB_OK);
	assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
	fb_buf_free(&b);
	fb_buf_init(&b, 8);
	assert_int_equal(fb_buf_append_markup(&b, "<<<"), FB_ERR_LIMIT); /* the cap holds */
	fb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_set_and_prefix),
		cmocka_unit_test(test_time_saturating),
		cmocka_unit_test(test_query_has_param),
		cmocka_unit_test(test_percent_decode),
		cmocka_unit_test(test_markup),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_json_string),
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_strict),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_log_escapes),
		cmocka_unit_test_setup_teardown(
		    test_secret_read_good, secret_setup, secret_teardown),
		cmocka_unit_test_setup_teardown(
		    test_secret_read_refusals, secret_setup, secret_teardown),
		cmocka_unit_test_setup_teardown(
		    test_secret_read_other_owner, secret_setup, secret_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
