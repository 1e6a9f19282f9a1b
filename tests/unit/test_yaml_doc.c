/*
 * Unit tests for the read-only YAML documents of fb_conf.h (conf/yaml_doc.c)
 * and for what the legacy readers built on them decide: positions of keys,
 * values and items, kinds and null spellings, keys given twice kept for
 * their readers, tags, anchors and aliases refused or bounded, and the order
 * in which a whitelist's problems are named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb_conf.h"
#include "fb_legacy.h"

#define TENANT "HZnKEBoqDU"
#define REMOTE "HWqHczeM2P"
#define SHOWN 200 /* bytes of a test's YAML shown when it fails */

static struct fb_yaml_doc *
parse_ok(const char *yaml, unsigned flags)
{
	struct fb_yaml_doc *doc = NULL;
	struct fb_err err = { 0 };

	if (fb_yaml_parse(yaml, strlen(yaml), "t.yaml", flags, &doc, NULL, &err) != FB_OK)
		fail_msg("%s\n  %s", yaml, err.msg);
	assert_non_null(doc);
	return doc;
}

/* Refused with exactly want, and why names rule at line:col. */
static void
parse_refused(const char *yaml, unsigned flags, const char *want, enum fb_yaml_rule rule,
    unsigned line, unsigned col)
{
	struct fb_yaml_doc *doc = NULL;
	struct fb_yaml_refusal why;
	struct fb_err err = { 0 };
	fb_rc rc;

	rc = fb_yaml_parse(yaml, strlen(yaml), "t.yaml", flags, &doc, &why, &err);
	if (rc == FB_OK || strcmp(err.msg, want) != 0)
		fail_msg("%s\n  got rc %d: %s\n  want:     %s", yaml, (int)rc, err.msg, want);
	assert_null(doc);
	assert_int_equal(why.rule, rule);
	assert_int_equal(why.line, line);
	assert_int_equal(why.col, col);
}

static void
assert_at(const struct fb_yaml_node *n, unsigned line, unsigned col)
{
	assert_non_null(n);
	if (fb_yaml_line(n) != line || fb_yaml_col(n) != col)
		fail_msg("at %u:%u, want %u:%u", fb_yaml_line(n), fb_yaml_col(n), line, col);
}

static void
assert_text(const struct fb_yaml_node *n, const char *want)
{
	size_t len;
	const char *s = fb_yaml_text(n, &len);

	assert_non_null(s);
	assert_int_equal(len, strlen(want));
	assert_string_equal(s, want);
}

static void
test_positions(void **state)
{
	struct fb_yaml_doc *doc;
	const struct fb_yaml_node *root, *list, *flow, *deep;
	size_t len;

	(void)state;
	doc = parse_ok("# a comment\n"
	               "name: first\n"
	               "list:\n"
	               "  - one\n"
	               "  -   \"two\"\n"
	               "flow: {a: [x, y], b: ~}\n"
	               "deep:\n"
	               "  inner: |\n"
	               "    text\n",
	    0);
	root = fb_yaml_root(doc);
	assert_int_equal(fb_yaml_kind(root), FB_YAML_MAP);
	assert_at(root, 2, 1);
	assert_int_equal(fb_yaml_count(root), 4);
	assert_at(fb_yaml_key(root, 0), 2, 1);
	assert_text(fb_yaml_key(root, 0), "name");
	assert_at(fb_yaml_value(root, 0), 2, 7);
	assert_text(fb_yaml_get(root, "name"), "first");

	list = fb_yaml_get(root, "list");
	assert_int_equal(fb_yaml_kind(list), FB_YAML_SEQ);
	assert_int_equal(fb_yaml_count(list), 2);
	assert_at(fb_yaml_item(list, 0), 4, 5);
	assert_at(fb_yaml_item(list, 1), 5, 7);
	assert_text(fb_yaml_item(list, 1), "two");
	assert_null(fb_yaml_item(list, 2));
	assert_null(fb_yaml_text(list, &len));
	assert_null(fb_yaml_key(list, 0)); /* a sequence has no pairs */

	flow = fb_yaml_get(root, "flow");
	assert_at(flow, 6, 7);
	assert_at(fb_yaml_key(flow, 1), 6, 19);
	assert_at(fb_yaml_item(fb_yaml_get(flow, "a"), 1), 6, 15);
	assert_int_equal(fb_yaml_kind(fb_yaml_get(flow, "b")), FB_YAML_NULL);

	deep = fb_yaml_get(fb_yaml_get(root, "deep"), "inner");
	assert_at(deep, 8, 10);
	assert_text(deep, "text\n");
	assert_null(fb_yaml_get(root, "missing"));
	assert_null(fb_yaml_get(deep, "inner")); /* a scalar has no keys */
	assert_int_equal(fb_yaml_count(deep), 0);
	fb_yaml_free(doc);

	/* Only comments: a document without a root, not an error. */
	doc = parse_ok("# nothing yet\n", 0);
	assert_null(fb_yaml_root(doc));
	fb_yaml_free(doc);
	fb_yaml_free(NULL);
}

static void
test_kinds(void **state)
{
	static const struct {
		const char *yaml;
		enum fb_yaml_kind kind;
	} cases[] = {
		{ "k:\n", FB_YAML_NULL },
		{ "k: ~\n", FB_YAML_NULL },
		{ "k: null\n", FB_YAML_NULL },
		{ "k: Null\n", FB_YAML_NULL },
		{ "k: NULL\n", FB_YAML_NULL },
		{ "k: nULL\n", FB_YAML_SCALAR },
		{ "k: \"null\"\n", FB_YAML_SCALAR },
		{ "k: ''\n", FB_YAML_SCALAR },
		{ "k: 12\n", FB_YAML_SCALAR },
		{ "k: []\n", FB_YAML_SEQ },
		{ "k: {}\n", FB_YAML_MAP },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fb_yaml_doc *doc = parse_ok(cases[i].yaml, 0);
		const struct fb_yaml_node *v = fb_yaml_get(fb_yaml_root(doc), "k");
		if (v == NULL || fb_yaml_kind(v) != cases[i].kind)
			fail_msg("%s: kind %d, want %d", cases[i].yaml,
			    v ? (int)fb_yaml_kind(v) : -1, (int)cases[i].kind);
		fb_yaml_free(doc);
	}
}

/* Keys are kept as written: a reader finds both places of a key given twice. */
static void
test_duplicate_key(void **state)
{
	struct fb_yaml_doc *doc;
	const struct fb_yaml_node *root;
	size_t first, second, len;
	const char *s;

	(void)state;
	doc = parse_ok("a: 1\nb: 2\n\"a\": 3\n\"a\\0\": 4\n? [a]\n: 5\n", 0);
	root = fb_yaml_root(doc);
	assert_int_equal(fb_yaml_count(root), 5);
	first = fb_yaml_find(root, "a", 0);
	second = fb_yaml_find(root, "a", first + 1);
	assert_int_equal(first, 0);
	assert_int_equal(second, 2);
	assert_at(fb_yaml_key(root, first), 1, 1);
	assert_at(fb_yaml_key(root, second), 3, 1);
	/* Neither "a\0" nor the list [a] is the key a. */
	assert_int_equal(fb_yaml_find(root, "a", second + 1), fb_yaml_count(root));
	assert_text(fb_yaml_get(root, "a"), "1");
	/* A value may hold NUL: its length says so. */
	s = fb_yaml_text(fb_yaml_key(root, 3), &len);
	assert_int_equal(len, 2);
	assert_memory_equal(s, "a\0", 2);
	assert_int_equal(fb_yaml_kind(fb_yaml_key(root, 4)), FB_YAML_SEQ);
	assert_int_equal(fb_yaml_find(fb_yaml_value(root, 0), "a", 0), 0); /* not a mapping */
	fb_yaml_free(doc);
}

static void
test_refused(void **state)
{
	(void)state;
	parse_refused("a: !!str x\n", 0,
	    "t.yaml:1:4: YAML tags such as tag:yaml.org,2002:str are not supported",
	    FB_YAML_RULE_TAG, 1, 4);
	parse_refused("a:\n  - !local {b: 1}\n", FB_YAML_PLAIN,
	    "t.yaml:2:5: anchors (&name) and tags (!tag) are not allowed here", FB_YAML_RULE_TAG, 2,
	    5);
	parse_refused("a: &x 1\nb: *x\n", FB_YAML_PLAIN,
	    "t.yaml:1:4: anchors (&name) and tags (!tag) are not allowed here", FB_YAML_RULE_ANCHOR,
	    1, 4);
	parse_refused("a: 1\nb: *x\n", FB_YAML_PLAIN,
	    "t.yaml:2:4: aliases (*name) are not allowed here", FB_YAML_RULE_ALIAS, 2, 4);
	parse_refused("a: 1\nb: *x\n", 0, "t.yaml:2:4: unknown alias *x", FB_YAML_RULE_ALIAS, 2, 4);
	parse_refused("a: &x [1, *x]\n", 0,
	    "t.yaml:1:11: alias *x refers to a node that contains it", FB_YAML_RULE_ALIAS, 1, 11);
	parse_refused("a: 1\n---\nb: 2\n", 0, "t.yaml:2:1: only one YAML document is allowed",
	    FB_YAML_RULE_DOCUMENTS, 2, 1);
	parse_refused("a: [1\n", 0,
	    "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow "
	    "sequence (line 1)",
	    FB_YAML_RULE_SYNTAX, 2, 1);
	/* The reader knows bytes only; the position is still line and column, in characters. */
	parse_refused("a: \xc3\xa9\nb: \"x\xff\"\n", 0,
	    "t.yaml:2:6: not a YAML file: invalid leading UTF-8 octet (byte 11)",
	    FB_YAML_RULE_SYNTAX, 2, 6);
	parse_refused("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", 0,
	    "t.yaml:1:33: nested deeper than 32 levels", FB_YAML_RULE_LIMIT, 1, 33);
}

/* Aliases are fine until what they stand for would take a walk too long. */
static void
test_alias_bomb(void **state)
{
	enum { LEVELS = 9, FAN = 10 }; /* FAN^LEVELS nodes through aliases */
	struct fb_yaml_doc *doc;
	struct fb_buf b;
	const struct fb_yaml_node *root, *y;

	(void)state;
	doc = parse_ok("x: &x [1, 2]\ny: *x\nz: &s\n  text\n", 0);
	root = fb_yaml_root(doc);
	y = fb_yaml_get(root, "y");
	assert_int_equal(fb_yaml_count(y), 2);
	assert_at(y, 1, 7); /* the anchored node, where its value starts */
	assert_at(fb_yaml_get(root, "z"), 4, 3);
	fb_yaml_free(doc);

	fb_buf_init(&b, 1 << 16);
	assert_int_equal(fb_buf_printf(&b, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"), FB_OK);
	for (int i = 1; i <= LEVELS; i++) {
		assert_int_equal(fb_buf_printf(&b, "l%d: &l%d [", i, i), FB_OK);
		for (int j = 0; j < FAN; j++)
			assert_int_equal(fb_buf_printf(&b, "%s*l%d", j ? ", " : "", i - 1), FB_OK);
		assert_int_equal(fb_buf_printf(&b, "]\n"), FB_OK);
	}
	parse_refused(b.data, 0,
	    "t.yaml:1:1: the document expands to more than 33554432 nodes through aliases",
	    FB_YAML_RULE_LIMIT, 1, 1);
	/* Nothing of it is handed out, even when asked for what was read. */
	{
		struct fb_yaml_doc *partial = NULL;
		struct fb_yaml_refusal why;
		assert_int_not_equal(
		    fb_yaml_parse(b.data, b.len, "t.yaml", FB_YAML_PARTIAL, &partial, &why, NULL),
		    FB_OK);
		assert_null(partial);
	}
	fb_buf_free(&b);
}

/* With FB_YAML_PARTIAL a refused text still shows what came before the refusal. */
static void
test_partial(void **state)
{
	static const char yaml[] = "a: 1\nb: [x, y\nc: 3\n";
	struct fb_yaml_doc *doc = NULL;
	struct fb_yaml_refusal why;
	struct fb_err err = { 0 };
	const struct fb_yaml_node *root, *b;

	(void)state;
	assert_int_equal(
	    fb_yaml_parse(yaml, strlen(yaml), "t.yaml", 0, &doc, &why, &err), FB_ERR_INVALID);
	assert_null(doc);
	assert_int_equal(
	    fb_yaml_parse(yaml, strlen(yaml), "t.yaml", FB_YAML_PARTIAL, &doc, &why, &err),
	    FB_ERR_INVALID);
	assert_non_null(doc);
	assert_int_equal(why.rule, FB_YAML_RULE_SYNTAX);
	assert_int_equal(why.line, 3);
	root = fb_yaml_root(doc);
	assert_int_equal(fb_yaml_kind(root), FB_YAML_MAP);
	assert_text(fb_yaml_get(root, "a"), "1");
	b = fb_yaml_get(root, "b");
	assert_int_equal(fb_yaml_count(b), 2);
	assert_null(fb_yaml_get(root, "c"));
	fb_yaml_free(doc);
}

/* ---- the legacy readers ---- */

static void
whitelist_refused(const char *yaml, const char *want)
{
	struct fb_whitelist w;
	struct fb_err err = { 0 };
	fb_rc rc = fb_whitelist_parse(yaml, strlen(yaml), "w.yaml", &w, &err);

	if (rc == FB_OK || strcmp(err.msg, want) != 0)
		fail_msg(
		    "%.*s\n  got rc %d: %s\n  want:     %s", SHOWN, yaml, (int)rc, err.msg, want);
}

/* A whitelist's problems are named in file order, whichever layer finds them. */
static void
test_whitelist_order(void **state)
{
	struct fb_buf b;

	(void)state;
	/* A problem before a refused alias, tag or second document is named first, */
	whitelist_refused("remoteTenant: nope\nusers:\n  a@x: *t\n",
	    "w.yaml:1:15: remoteTenant: expected a tenantID (8 to 16 letters and digits), got "
	    "\"nope\"");
	whitelist_refused("users:\n  a@x: {fid: fid:1/" TENANT "/1}\n  b@x: !!map {}\n",
	    "w.yaml:2:14: users: \"a@x\": fid \"fid:1/" TENANT "/1\": a fid starts with fid:0/");
	whitelist_refused("users:\n  - a@x\n---\nusers: {}\n",
	    "w.yaml:2:3: users: expected a mapping of e-mails (each followed by ':'), got a list");
	/* and one after it is not. */
	whitelist_refused("users:\n  a@x: *t\nremoteTenant: nope\n",
	    "w.yaml:2:8: aliases (*name) are not allowed here");
	whitelist_refused("users:\n  a@x: {fid: fid:0/" TENANT
	                  "/1}\n  b@x: \"open\nremoteTenant: nope\n",
	    "w.yaml:5:1: YAML syntax error: found unexpected end of stream while scanning a quoted "
	    "scalar (line 3)");
	/* The whitelist's own depth limit comes before the reader's, as it did. */
	fb_buf_init(&b, 4096);
	assert_int_equal(fb_buf_printf(&b, "remoteTenant: " REMOTE "\nusers:\n  a@x: "), FB_OK);
	for (int i = 0; i < 40; i++)
		assert_int_equal(fb_buf_printf(&b, "{x: "), FB_OK);
	assert_int_equal(fb_buf_printf(&b, "1"), FB_OK);
	for (int i = 0; i < 40; i++)
		assert_int_equal(fb_buf_printf(&b, "}"), FB_OK);
	whitelist_refused(b.data, "w.yaml:3:76: nested deeper than 16 levels");
	fb_buf_free(&b);
}

/* An extra value larger than the reader's cap refuses the file (libyaml took any size). */
static void
test_whitelist_value_cap(void **state)
{
	struct fb_buf b;
	char want[FB_ERR_MSG_MAX];

	(void)state;
	fb_buf_init(&b, 1 << 16);
	assert_int_equal(
	    fb_buf_printf(&b, "remoteTenant: " REMOTE "\nusers:\n  a@x: {note: "), FB_OK);
	for (int i = 0; i <= FB_CONF_MAX_SCALAR; i++)
		assert_int_equal(fb_buf_printf(&b, "n"), FB_OK);
	assert_int_equal(fb_buf_printf(&b, "}\n"), FB_OK);
	(void)snprintf(want, sizeof(want),
	    "w.yaml:3:15: a value of %d bytes, more than the limit of %d", FB_CONF_MAX_SCALAR + 1,
	    FB_CONF_MAX_SCALAR);
	whitelist_refused(b.data, want);
	fb_buf_free(&b);
}

static void
vkfed_refused(const char *yaml, const char *want)
{
	struct fb_vkfed f;
	struct fb_err err = { 0 };
	struct fb_buf notes;
	fb_rc rc;

	fb_buf_init(&notes, 4096);
	rc = fb_vkfed_parse(yaml, strlen(yaml), "federation.yml", &f, &notes, &err);
	fb_buf_free(&notes);
	if (rc == FB_OK || strcmp(err.msg, want) != 0)
		fail_msg("%s\n  got rc %d: %s\n  want:     %s", yaml, (int)rc, err.msg, want);
	fb_vkfed_free(&f);
}

#define VKFED_INSTANCE                                                                             \
	"instances:\n"                                                                             \
	"- address: federation.b.example:443\n"                                                    \
	"  name: installation_B\n"                                                                 \
	"  ssl_cert: c.pem\n"                                                                      \
	"  ssl_key: k.pem\n"                                                                       \
	"  cacert: ca.pem\n"                                                                       \
	"  tenants: [" REMOTE "]\n"

static void
test_vkfed(void **state)
{
	static const char ok[] =
	    "enabled: true\nlocalTenant: " TENANT "\nsearch: x\n" VKFED_INSTANCE "  extra: 1\n";
	struct fb_vkfed f;
	struct fb_err err = { 0 };
	struct fb_buf notes;

	(void)state;
	fb_buf_init(&notes, 4096);
	if (fb_vkfed_parse(ok, strlen(ok), "federation.yml", &f, &notes, &err) != FB_OK)
		fail_msg("%s", err.msg);
	assert_true(f.enabled);
	assert_string_equal(f.local_tenant, TENANT);
	assert_int_equal(f.local_line, 2);
	assert_int_equal(f.local_col, 14);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.v[0].line, 5);
	assert_int_equal(f.v[0].col, 3);
	assert_string_equal(f.v[0].tenants[0], REMOTE);
	assert_string_equal(notes.data,
	    "federation.yml:3:1: search: not used by fedbridge, ignored\n"
	    "federation.yml:11:3: instances[0].extra: not used by fedbridge, ignored\n");
	fb_vkfed_free(&f);
	fb_buf_free(&notes);

	/* What the format never needs is refused where it is written, as before. */
	vkfed_refused("localTenant: &t " TENANT "\n" VKFED_INSTANCE,
	    "federation.yml:1:14: an anchor is not supported here");
	vkfed_refused("localTenant: " TENANT "\nother: *t\n" VKFED_INSTANCE,
	    "federation.yml:2:8: an alias is not supported here");
	vkfed_refused("localTenant: !!str " TENANT "\n" VKFED_INSTANCE,
	    "federation.yml:1:14: a tag is not supported here");
	vkfed_refused("localTenant: " TENANT "\n" VKFED_INSTANCE "---\n{}\n",
	    "federation.yml:9:1: a second document is not supported here");
	/* A syntax error says what the reader found (it said "not a YAML file: ..."). */
	vkfed_refused("localTenant: [" TENANT "\n",
	    "federation.yml:2:1: YAML syntax error: did not find expected ',' or ']' while "
	    "parsing a flow sequence (line 1)");
	vkfed_refused("localTenant: " TENANT "\nlocalTenant: " TENANT "\n",
	    "federation.yml:2:1: localTenant: given twice");
	vkfed_refused("# only a comment\n", "federation.yml: expected a mapping (federation.yml)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_whitelist_order),
		cmocka_unit_test(test_whitelist_value_cap),
		cmocka_unit_test(test_vkfed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
