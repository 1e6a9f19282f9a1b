/*
 * Unit tests for the expression language (mapping/expr.c): what each form
 * evaluates to, precedence, three-valued logic over absent values, every
 * function, compile errors with their exact offsets, hostile inputs (deep,
 * huge, oddly typed), bounded regular expressions, pairwise ids and the
 * mutable-identifier check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb_mapping.h"

static const unsigned char secret[] = "expr-test-fid-secret-0123456789abcdef";

static const char claims_text[] =
    "{\"iss\":\"https://kc.a.example\",\"sub\":\"u1\",\"email\":\"Alice.Smith@A.example\","
    "\"email_verified\":true,\"groups\":[\"staff\",\"sales\"],\"n\":42,\"z\":null,"
    "\"realm_access\":{\"roles\":[\"federation\",\"offline\"]},\"s\":\"a,b,,c\","
    "\"name\":\"  Alice  \",\"u\":\"\\u0451\\u4e2d\",\"odd\":\"federation\","
    "\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn\":\"as@a.example\","
    "\"nested\":{\"a\":{\"b\":{\"c\":\"deep\"}}},\"mixed\":[1,\"x\",true]}";
static const char attrs_text[] = "{\"mail\":[\"a@b.example\"],\"memberOf\":[\"x\",\"y\"]}";
static const char token_text[] = "{\"tid\":\"HZnKEBoqDU\",\"attrs\":{\"department\":\"sales\"}}";

struct ctx {
	json_t *claims, *attrs, *token;
	struct fb_expr_scratch *s;
	struct fb_expr_input in;
	const char *names[4];
	struct fb_value pv[4];
	struct fb_expr_record principal;
};

static struct ctx g;

static int
setup(void **state)
{
	(void)state;
	memset(&g, 0, sizeof(g));
	g.claims = json_loads(claims_text, 0, NULL);
	g.attrs = json_loads(attrs_text, 0, NULL);
	g.token = json_loads(token_text, 0, NULL);
	if (g.claims == NULL || g.attrs == NULL || g.token == NULL ||
	    fb_expr_scratch_new(65536, &g.s) != FB_OK)
		return -1;
	g.names[0] = "fid";
	g.names[1] = "groups";
	g.pv[0] = (struct fb_value){ .kind = FB_V_STRING, .u.s = { "fid:0/HZnKEBoqDU/7", 18 } };
	g.pv[1] = (struct fb_value){ .kind = FB_V_ABSENT };
	g.principal = (struct fb_expr_record){ g.names, g.pv, 2 };
	g.in.claims = g.claims;
	g.in.attrs = g.attrs;
	g.in.token = g.token;
	g.in.principal = &g.principal;
	g.in.nameid = "A\\asmith";
	g.in.issuer = "https://kc.a.example";
	g.in.provider = "kc";
	g.in.tenant = "HZnKEBoqDU";
	g.in.fid_secret = secret;
	g.in.fid_secret_len = sizeof(secret) - 1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_decref(g.claims);
	json_decref(g.attrs);
	json_decref(g.token);
	fb_expr_scratch_free(g.s);
	return 0;
}

/* Compiles with every input allowed and evaluates; the result as JSON text, or "absent"/"error". */
static void
eval_text(const char *src, char *out, size_t size)
{
	struct fb_expr_error where;
	struct fb_expr *e = NULL;
	struct fb_value v;
	struct fb_buf b;
	fb_rc rc = fb_expr_compile(src, 0xff, FB_EXPR_WANT_ANY, &e, &where);

	if (rc != FB_OK)
		fail_msg("%s: does not compile: %s at %zu", src, where.msg, where.offset);
	fb_expr_scratch_reset(g.s);
	if (fb_expr_eval(e, &g.in, g.s, &v, NULL, NULL) != FB_OK) {
		(void)snprintf(out, size, "error");
	} else {
		fb_buf_init(&b, 8192);
		(void)fb_value_append_json(&b, &v);
		(void)snprintf(out, size, "%s", b.data ? b.data : "");
		fb_buf_free(&b);
	}
	fb_expr_free(e);
}

struct eval_row {
	const char *src;
	const char *want;
};

static void
test_eval_table(void **state)
{
	static const struct eval_row rows[] = {
		/* literals and paths */
		{ "'a\\'b'", "\"a'b\"" },
		{ "\"\\u00e9\\n\"", "\"\xc3\xa9\\u000a\"" },
		{ "42", "42" },
		{ "-7", "-7" },
		{ "[1, 'x', true, null]", "[1,\"x\",true,null]" },
		{ "claims.email", "\"Alice.Smith@A.example\"" },
		{ "claims.nested.a.b.c", "\"deep\"" },
		{ "claims['nested']['a'].b['c']", "\"deep\"" },
		{ "claims['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn']",
		    "\"as@a.example\"" },
		{ "claims.realm_access.roles", "[\"federation\",\"offline\"]" },
		{ "claims.realm_access.roles[1]", "\"offline\"" },
		{ "claims.realm_access.roles[2]", "absent" },
		{ "claims.realm_access.roles[-1]", "absent" },
		{ "claims.missing.deeper.still", "absent" },
		{ "claims.email.length", "absent" }, /* a field of a string */
		{ "claims.z", "null" },
		{ "attrs.mail", "[\"a@b.example\"]" },
		{ "nameid", "\"A\\\\asmith\"" },
		{ "principal.fid", "\"fid:0/HZnKEBoqDU/7\"" },
		{ "principal.groups", "absent" },
		{ "principal.nosuch", "absent" },
		{ "token.attrs.department", "\"sales\"" },
		/* precedence: ! binds tighter than &&, && than || */
		{ "!false || false && false", "true" },
		{ "!(false || true) && true", "false" },
		{ "true || false && false", "true" },
		{ "1 == 1 && 'a' != 'b'", "true" },
		{ "'sales' in claims.groups == true", "true" },
		/* equality across kinds */
		{ "1 == '1'", "false" },
		{ "1 != '1'", "true" },
		{ "null == claims.z", "true" },
		{ "claims.groups == ['staff', 'sales']", "true" },
		{ "claims.groups == ['sales', 'staff']", "false" },
		{ "claims.nested == claims.nested", "true" },
		/* membership */
		{ "'staff' in claims.groups", "true" },
		{ "'boss' in claims.groups", "false" },
		{ "'email' in claims", "true" },
		{ "'x' in attrs.memberOf", "true" },
		{ "1 in claims.mixed", "true" },
		/* absent and three-valued logic */
		{ "claims.missing == 'x'", "absent" },
		{ "claims.missing != 'x'", "absent" },
		{ "'x' in claims.missing", "absent" },
		{ "claims.missing in ['x']", "absent" },
		{ "!claims.missing", "absent" },
		{ "false && claims.missing", "false" },
		{ "claims.missing && false", "false" },
		{ "true || claims.missing", "true" },
		{ "claims.missing || true", "true" },
		{ "true && claims.missing", "absent" },
		{ "false || claims.missing", "absent" },
		{ "has(claims.missing)", "false" },
		{ "has(claims.email)", "true" },
		{ "has(claims.z)", "true" },
		{ "has(claims.nested.a.x)", "false" },
		{ "lower(claims.missing)", "absent" },
		/* functions */
		{ "lower(claims.email)", "\"alice.smith@a.example\"" },
		{ "claims.email.lower()", "\"alice.smith@a.example\"" },
		{ "upper('ab\xc3\xa9')", "\"AB\xc3\xa9\"" }, /* ASCII only */
		{ "trim(claims.name)", "\"Alice\"" },
		{ "matches(claims.email, '[A-Za-z.]+@A[.]example')", "true" },
		{ "matches(claims.email, 'Smith')", "false" }, /* anchored: whole value */
		{ "matches('\xd1\x91', '.')", "true" }, /* UTF-8: one character */
		{ "startsWith(claims.email, 'Alice')", "true" },
		{ "endsWith(claims.email, '.example')", "true" },
		{ "endsWith('a', 'abc')", "false" },
		{ "split(claims.s, ',')", "[\"a\",\"b\",\"\",\"c\"]" },
		{ "split('abc', ',')", "[\"abc\"]" },
		{ "join(claims.groups, '+')", "\"staff+sales\"" },
		{ "join(split('a-b', '-'), '')", "\"ab\"" },
		{ "first(claims.groups)", "\"staff\"" },
		{ "first('x')", "\"x\"" },
		{ "first([])", "absent" },
		{ "first(attrs.mail)", "\"a@b.example\"" },
		{ "size(claims.u)", "2" }, /* code points */
		{ "size(claims.groups)", "2" },
		{ "size(claims.nested)", "1" },
		{ "size('')", "0" },
		{ "mutable(claims.email)", "\"Alice.Smith@A.example\"" },
		{ "pairwise(claims.sub) == pairwise('u1')", "true" },
		{ "pairwise(claims.sub) == pairwise('u2')", "false" },
		{ "pairwise('u1', 'ns') == pairwise('u1')", "false" },
		{ "size(pairwise('u1'))", "22" },
		/* run-time type errors fail, never crash */
		{ "lower(claims.n)", "error" },
		{ "claims.odd && true", "error" },
		{ "'x' in claims.email", "error" },
		{ "size(claims.email_verified)", "error" },
		{ "join(claims.mixed, ',')", "error" },
		{ "split(claims.s, '')", "error" },
	};
	char got[512];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		eval_text(rows[i].src, got, sizeof(got));
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s\n  want %s\n  got  %s", rows[i].src, rows[i].want, got);
	}
}

struct err_row {
	const char *src;
	unsigned inputs;
	enum fb_expr_want want;
	size_t offset;
	const char *msg; /* a substring of the message */
};

static void
test_compile_errors(void **state)
{
	static const struct err_row rows[] = {
		{ "lowr(claims.email)", 0xff, FB_EXPR_WANT_VALUE, 0,
		    "unknown function 'lowr' (did you mean 'lower'?)" },
		{ "claim.email", 0xff, FB_EXPR_WANT_VALUE, 0,
		    "unknown name 'claim' (did you mean 'claims'?)" },
		{ "lower(claims.a, 'x')", 0xff, FB_EXPR_WANT_VALUE, 0,
		    "lower() takes 1 argument, got 2" },
		{ "pairwise()", 0xff, FB_EXPR_WANT_VALUE, 0, "pairwise() takes 1 to 2 arguments" },
		{ "lower(1)", 0xff, FB_EXPR_WANT_VALUE, 6,
		    "lower() needs a string here, this is a number" },
		{ "size(true)", 0xff, FB_EXPR_WANT_VALUE, 5, "size() needs" },
		{ "join('a', ',')", 0xff, FB_EXPR_WANT_VALUE, 5, "join() needs a list here" },
		{ "lower(attrs.mail)", 0xff, FB_EXPR_WANT_VALUE, 6, "(use first(...))" },
		{ "has(lower(claims.x))", 0xff, FB_EXPR_WANT_BOOL, 4, "has() needs a field path" },
		{ "matches(claims.e, claims.p)", 0xff, FB_EXPR_WANT_BOOL, 18, "string literal" },
		{ "matches(claims.e, 'a(b')", 0xff, FB_EXPR_WANT_BOOL, 22, "bad pattern" },
		{ "claims.a && (claims.b", 0xff, FB_EXPR_WANT_BOOL, 21,
		    "expected ')' to close the one at column 13" },
		{ "claims.a claims.b", 0xff, FB_EXPR_WANT_BOOL, 9,
		    "expected an operator or the end" },
		{ "claims.a = 1", 0xff, FB_EXPR_WANT_BOOL, 9, "use == to compare" },
		{ "claims.a & b", 0xff, FB_EXPR_WANT_BOOL, 9, "use &&" },
		{ "'abc", 0xff, FB_EXPR_WANT_VALUE, 0, "not closed" },
		{ "'\\q'", 0xff, FB_EXPR_WANT_VALUE, 1, "unknown escape" },
		{ "'\\uD800'", 0xff, FB_EXPR_WANT_VALUE, 1, "surrogate" },
		{ "99999999999999999999", 0xff, FB_EXPR_WANT_VALUE, 0, "too large" },
		{ "1.5", 0xff, FB_EXPR_WANT_VALUE, 1, "whole decimal numbers" },
		{ "'a' && true", 0xff, FB_EXPR_WANT_BOOL, 0, "needs true or false on both sides" },
		{ "!'a'", 0xff, FB_EXPR_WANT_BOOL, 1, "'!' needs true or false" },
		{ "1 in 'x'", 0xff, FB_EXPR_WANT_BOOL, 5, "'in' needs a list or an object" },
		{ "'x'", 0xff, FB_EXPR_WANT_BOOL, 0, "must give true or false, this is a string" },
		{ "attrs.mail", 0xff, FB_EXPR_WANT_STRING, 0, "is a list; use first(...)" },
		{ "true", 0xff, FB_EXPR_WANT_VALUE, 0, "string or a list of strings" },
		{ "token.attrs.x == 'y'", FB_EXPR_IN_LOGIN, FB_EXPR_WANT_BOOL, 0,
		    "'token' is not available here: it is for inbound rules" },
		{ "claims.x == 'y'", FB_EXPR_IN_INBOUND, FB_EXPR_WANT_BOOL, 0,
		    "'claims' is not available here" },
		{ "principal", FB_EXPR_IN_OUTBOUND, FB_EXPR_WANT_VALUE, 0,
		    "use a field of principal" },
		{ "", 0xff, FB_EXPR_WANT_VALUE, 0, "ends too early" },
		{ "claims.\xc3\xa9", 0xff, FB_EXPR_WANT_VALUE, 7, "names are ASCII" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fb_expr_error where;
		struct fb_expr *e = NULL;
		fb_rc rc = fb_expr_compile(rows[i].src, rows[i].inputs, rows[i].want, &e, &where);
		if (rc == FB_OK) {
			fb_expr_free(e);
			fail_msg("%s: compiled, expected \"%s\"", rows[i].src, rows[i].msg);
		}
		if (where.offset != rows[i].offset || strstr(where.msg, rows[i].msg) == NULL)
			fail_msg("%s:\n  want %zu: %s\n  got  %zu: %s", rows[i].src, rows[i].offset,
			    rows[i].msg, where.offset, where.msg);
	}
}

static void
test_limits(void **state)
{
	struct fb_expr_error where;
	struct fb_expr *e = NULL;
	char *src = malloc(FB_EXPR_SRC_MAX + 2);
	char got[256];

	(void)state;
	assert_non_null(src);
	/* 200 nested parentheses: refused at compile time, the stack is safe. */
	memset(src, '(', 200);
	memcpy(src + 200, "true", 4);
	memset(src + 204, ')', 200);
	src[404] = '\0';
	assert_int_equal(fb_expr_compile(src, 0xff, FB_EXPR_WANT_BOOL, &e, &where), FB_ERR_CONFIG);
	assert_non_null(strstr(where.msg, "nests too deeply"));
	/* 20 levels are fine. */
	memset(src, '(', 20);
	memcpy(src + 20, "true", 4);
	memset(src + 24, ')', 20);
	src[44] = '\0';
	assert_int_equal(fb_expr_compile(src, 0xff, FB_EXPR_WANT_BOOL, &e, &where), FB_OK);
	fb_expr_free(e);
	/* Longer than the source cap. */
	memset(src, ' ', FB_EXPR_SRC_MAX + 1);
	src[FB_EXPR_SRC_MAX + 1] = '\0';
	src[0] = '1';
	assert_int_equal(fb_expr_compile(src, 0xff, FB_EXPR_WANT_VALUE, &e, &where), FB_ERR_LIMIT);
	/* Too many nodes. */
	{
		size_t at = 0;
		for (int i = 0; i < 600 && at < FB_EXPR_SRC_MAX - 8; i++)
			at +=
			    (size_t)snprintf(src + at, FB_EXPR_SRC_MAX - at, "%s1", i ? "==" : "");
		assert_int_equal(
		    fb_expr_compile(src, 0xff, FB_EXPR_WANT_BOOL, &e, &where), FB_ERR_CONFIG);
		assert_non_null(strstr(where.msg, "too large"));
	}
	free(src);
	/* A pathological pattern on a hostile value stays bounded: an error, not a hang. */
	eval_text("matches('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!', '(a+)+b')", got,
	    sizeof(got));
	assert_true(strcmp(got, "error") == 0 || strcmp(got, "false") == 0);
}

static void
test_hostile_inputs(void **state)
{
	struct fb_expr_error where;
	struct fb_expr *e = NULL;
	struct fb_expr_scratch *small = NULL;
	struct fb_expr_input in = { 0 };
	struct fb_value v;
	json_t *claims, *groups = json_array();
	char *big = malloc(100001), *deep = malloc(20000);
	size_t at = 0;

	(void)state;
	assert_non_null(big);
	assert_non_null(deep);
	/* 10,000 groups: membership still answers. */
	for (int i = 0; i < 10000; i++) {
		char name[16];
		(void)snprintf(name, sizeof(name), "g%d", i);
		json_array_append_new(groups, json_string(name));
	}
	claims = json_pack("{s:o}", "groups", groups);
	in.claims = claims;
	in.tenant = "HZnKEBoqDU";
	assert_int_equal(
	    fb_expr_compile("'g9999' in claims.groups", 0xff, FB_EXPR_WANT_BOOL, &e, &where),
	    FB_OK);
	fb_expr_scratch_reset(g.s);
	assert_int_equal(fb_expr_eval_truth(e, &in, g.s, NULL, NULL), FB_TRUTH_TRUE);
	fb_expr_free(e);
	/* join() of them is past the string cap: an error, not a truncation. */
	assert_int_equal(
	    fb_expr_compile("join(claims.groups, ',')", 0xff, FB_EXPR_WANT_VALUE, &e, &where),
	    FB_OK);
	fb_expr_scratch_reset(g.s);
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_ERR_LIMIT);
	fb_expr_free(e);
	json_decref(claims);
	/* A 100 KB string: lower() refuses it. */
	memset(big, 'A', 100000);
	big[100000] = '\0';
	claims = json_pack("{s:s}", "email", big);
	in.claims = claims;
	assert_int_equal(
	    fb_expr_compile("lower(claims.email)", 0xff, FB_EXPR_WANT_VALUE, &e, &where), FB_OK);
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_ERR_LIMIT);
	/* A scratch too small for the result: a clean limit error too. */
	json_decref(claims);
	claims =
	    json_pack("{s:s}", "email", "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ");
	in.claims = claims;
	assert_int_equal(fb_expr_scratch_new(16, &small), FB_OK);
	assert_int_equal(fb_expr_eval(e, &in, small, &v, NULL, NULL), FB_ERR_LIMIT);
	fb_expr_scratch_free(small);
	fb_expr_free(e);
	json_decref(claims);
	/* Deeply nested input JSON: paths into it are absent or found, never a crash. */
	at = (size_t)snprintf(deep, 20000, "{\"a\":");
	for (int i = 0; i < 1000; i++)
		at += (size_t)snprintf(deep + at, 20000 - at, "{\"a\":");
	at += (size_t)snprintf(deep + at, 20000 - at, "1");
	for (int i = 0; i < 1001; i++)
		at += (size_t)snprintf(deep + at, 20000 - at, "}");
	claims = json_loads(deep, 0, NULL);
	if (claims != NULL) { /* jansson may refuse this depth itself */
		in.claims = claims;
		assert_int_equal(
		    fb_expr_compile("claims.a.a.a.a.b", 0xff, FB_EXPR_WANT_VALUE, &e, &where),
		    FB_OK);
		assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
		assert_int_equal(v.kind, FB_V_ABSENT);
		fb_expr_free(e);
		json_decref(claims);
	}
	free(big);
	free(deep);
}

static void
test_pairwise(void **state)
{
	struct fb_expr_error where;
	struct fb_expr *e = NULL;
	struct fb_value v;
	struct fb_expr_input in = g.in;
	char first[64];

	(void)state;
	assert_int_equal(
	    fb_expr_compile("pairwise(claims.sub)", 0xff, FB_EXPR_WANT_STRING, &e, &where), FB_OK);
	fb_expr_scratch_reset(g.s);
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_int_equal(v.kind, FB_V_STRING);
	assert_int_equal(v.u.s.len, 22);
	for (size_t i = 0; i < v.u.s.len; i++)
		assert_non_null(
		    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		        v.u.s.p[i]));
	memcpy(first, v.u.s.p, 22);
	first[22] = '\0';
	/* Another tenant, another issuer, another secret: another id. */
	in.tenant = "Zz9sT2mZx4";
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_memory_not_equal(first, v.u.s.p, 22);
	in = g.in;
	in.issuer = "https://other.example";
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_memory_not_equal(first, v.u.s.p, 22);
	in = g.in;
	in.fid_secret = (const unsigned char *)"another-secret-0123456789abcdefgh";
	in.fid_secret_len = 33;
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_memory_not_equal(first, v.u.s.p, 22);
	/* The same inputs: the same id. */
	in = g.in;
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_memory_equal(first, v.u.s.p, 22);
	/* No secret: absent, never an unkeyed hash. */
	in.fid_secret = NULL;
	assert_int_equal(fb_expr_eval(e, &in, g.s, &v, NULL, NULL), FB_OK);
	assert_int_equal(v.kind, FB_V_ABSENT);
	fb_expr_free(e);
}

static void
test_mutable_and_trace(void **state)
{
	static const struct {
		const char *src;
		bool flagged;
		const char *name;
		size_t offset;
	} rows[] = {
		{ "lower(claims.email)", true, "email", 6 },
		{ "claims.preferred_username", true, "preferred_username", 0 },
		{ "first(attrs['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'])", true,
		    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", 6 },
		{ "first(attrs['urn:oid:0.9.2342.19200300.100.1.3'])", true,
		    "urn:oid:0.9.2342.19200300.100.1.3", 6 },
		{ "claims.Email", true, "Email", 0 },
		{ "mutable(lower(claims.email))", false, NULL, 0 },
		{ "pairwise(claims.sub)", false, NULL, 0 },
		{ "claims.employee_id", false, NULL, 0 },
		{ "nameid", false, NULL, 0 },
	};
	struct fb_expr_error where;
	struct fb_expr *e = NULL;
	struct fb_buf trace;
	size_t off = 99;
	const char *name = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(
		    fb_expr_compile(rows[i].src, 0xff, FB_EXPR_WANT_VALUE, &e, &where), FB_OK);
		if (fb_expr_reads_mutable(e, &off, &name) != rows[i].flagged)
			fail_msg("%s: mutable %d expected", rows[i].src, rows[i].flagged);
		if (rows[i].flagged && (strcmp(name, rows[i].name) != 0 || off != rows[i].offset))
			fail_msg("%s: got %s at %zu", rows[i].src, name, off);
		fb_expr_free(e);
	}
	/* The trace names every input value read, absent ones too. */
	assert_int_equal(fb_expr_compile("claims.email_verified && claims.department == 'x'", 0xff,
	                     FB_EXPR_WANT_BOOL, &e, &where),
	    FB_OK);
	fb_buf_init(&trace, 4096);
	assert_int_equal(fb_expr_eval_truth(e, &g.in, g.s, &trace, NULL), FB_TRUTH_UNDECIDED);
	assert_non_null(strstr(trace.data, "claims.email_verified = true\n"));
	assert_non_null(strstr(trace.data, "claims.department: absent\n"));
	assert_non_null(strstr(trace.data, "result: absent"));
	fb_buf_free(&trace);
	fb_expr_free(e);
}

/* matches() keeps working across scratch resets (its PCRE2 context lives outside). */
static void
test_matches_after_resets(void **state)
{
	struct fb_expr_error where;
	struct fb_expr *e = NULL;

	(void)state;
	assert_int_equal(fb_expr_compile("matches(claims.email, '[A-Za-z.]+@A[.]example')", 0xff,
	                     FB_EXPR_WANT_BOOL, &e, &where),
	    FB_OK);
	for (int i = 0; i < 5000; i++) {
		fb_expr_scratch_reset(g.s);
		assert_int_equal(fb_expr_eval_truth(e, &g.in, g.s, NULL, NULL), FB_TRUTH_TRUE);
	}
	fb_expr_free(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_table),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_pairwise),
		cmocka_unit_test(test_mutable_and_trace),
		cmocka_unit_test(test_matches_after_resets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
