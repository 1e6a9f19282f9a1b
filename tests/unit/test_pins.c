/*
 * Unit tests for the legacy pin table (mapping/pins.c) and the whitelist
 * files it is imported from (legacy/whitelist.c): what valid input turns
 * into, lookups without letter case, a table of 100,000 pins, and each kind
 * of broken input refused with its message (for YAML, at the exact line and
 * column).
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
#include "fb_legacy.h"

#define TENANT "HZnKEBoqDU"
#define REMOTE "HWqHczeM2P"

/* A pin table around the given members of "pins". */
static char *
table(const char *pins)
{
	static char buf[4096];

	(void)snprintf(
	    buf, sizeof(buf), "{\"version\": 1, \"tenant\": \"" TENANT "\", \"pins\": {%s}}", pins);
	return buf;
}

static struct fb_pins *
parse_ok(const char *json)
{
	struct fb_pins *p = NULL;
	struct fb_err err = { 0 };

	if (fb_pins_parse(json, strlen(json), "t.json", &p, &err) != FB_OK)
		fail_msg("%s: %s", json, err.msg);
	return p;
}

/* ---- pin tables ---- */

static void
test_pins_valid(void **state)
{
	struct fb_pins *p;
	const struct fb_pin *pin;

	(void)state;
	p = parse_ok(table("\"I.Ivanov@Company_Domain\": {\"fid\": \"fid:0/" TENANT "/100401\", "
	                   "\"remotes\": [\"" REMOTE "\", \"Kq7wX2mPzR\"]},"
	                   "\"n.belov@company_domain\": {\"remotes\": [\"" REMOTE "\"]},"
	                   "\"a.petrov@company_domain\": {\"fid\": \"fid:0/" TENANT "/100403\"},"
	                   "\"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd@x\": {\"fid\": \"fid:0/" TENANT
	                   "/1\", \"remotes\": []}"));
	assert_string_equal(fb_pins_tenant(p), TENANT);
	assert_int_equal(fb_pins_count(p), 4);

	pin = fb_pins_find(p, "i.ivanov@company_domain", strlen("i.ivanov@company_domain"));
	assert_non_null(pin);
	assert_string_equal(pin->key, "I.Ivanov@Company_Domain"); /* as the file wrote it */
	assert_string_equal(pin->fid, "fid:0/" TENANT "/100401");
	assert_int_equal(pin->n_remotes, 2);
	assert_string_equal(pin->remotes[0], REMOTE);
	assert_string_equal(pin->remotes[1], "Kq7wX2mPzR");
	assert_ptr_equal(fb_pins_find(p, "I.IVANOV@COMPANY_DOMAIN", 23), pin);
	assert_ptr_equal(fb_pins_find(p, "i.IVANOV@company_DOMAIN", 23), pin);

	pin = fb_pins_find(p, "N.Belov@company_domain", 22);
	assert_non_null(pin);
	assert_null(pin->fid);
	assert_int_equal(pin->n_remotes, 1);

	pin = fb_pins_find(p, "a.petrov@company_domain", 23);
	assert_non_null(pin);
	assert_int_equal(pin->n_remotes, 0);

	/* Only ASCII folds: lower() in a pin_key does the same. */
	assert_non_null(fb_pins_find(p, "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd@X", 10));
	assert_null(fb_pins_find(p, "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@x", 10));

	/* Near misses: prefixes, longer keys, embedded NULs, empty. */
	assert_null(fb_pins_find(p, "i.ivanov@company_domai", 22));
	assert_null(fb_pins_find(p, "i.ivanov@company_domainx", 24));
	assert_null(fb_pins_find(p, "i.ivanov@company_domain\0x", 25));
	assert_null(fb_pins_find(p, "", 0));
	assert_null(fb_pins_find(p, "nobody@company_domain", 21));
	fb_pins_free(p);

	p = parse_ok(table(""));
	assert_int_equal(fb_pins_count(p), 0);
	assert_null(fb_pins_find(p, "a", 1));
	fb_pins_free(p);
	fb_pins_free(NULL);
	assert_null(fb_pins_find(NULL, "a", 1));
}

static const struct {
	const char *json; /* NULL: table(pins) */
	const char *pins;
	const char *want; /* a substring of the message */
} broken_pins[] = {
	{ "", NULL, "t.json:1:0: '[' or '{' expected" },
	{ "{\"version\": 1,", NULL, "t.json:1:" },
	{ "[]", NULL, "t.json: expected a JSON object with version, tenant and pins" },
	{ "{\"tenant\": \"" TENANT "\", \"pins\": {}}", NULL, "t.json: version: missing" },
	{ "{\"version\": 2, \"tenant\": \"" TENANT "\", \"pins\": {}}", NULL,
	    "t.json: version: not supported (expected 1" },
	{ "{\"version\": \"1\", \"tenant\": \"" TENANT "\", \"pins\": {}}", NULL,
	    "version: not supported" },
	{ "{\"version\": 1, \"tenant\": \"short\", \"pins\": {}}", NULL,
	    "t.json: tenant: expected a tenantID" },
	{ "{\"version\": 1, \"pins\": {}}", NULL, "t.json: tenant: expected a tenantID" },
	{ "{\"version\": 1, \"tenant\": \"" TENANT "\"}", NULL,
	    "t.json: pins: expected an object" },
	{ "{\"version\": 1, \"tenant\": \"" TENANT "\", \"pins\": []}", NULL,
	    "t.json: pins: expected an object" },
	{ "{\"version\": 1, \"tenant\": \"" TENANT "\", \"pins\": {}, \"extra\": 1}", NULL,
	    "t.json: unknown member \"extra\"" },
	{ "{\"version\": 1, \"version\": 1, \"tenant\": \"" TENANT "\", \"pins\": {}}", NULL,
	    "duplicate object key" },
	{ NULL,
	    "\"a@b\": {\"fid\": \"fid:0/" TENANT "/1\"}, \"a@b\": {\"fid\": \"fid:0/" TENANT
	    "/2\"}",
	    "duplicate object key" },
	{ NULL, "\"a@b\": \"fid:0/" TENANT "/1\"",
	    "t.json: pins[\"a@b\"]: expected an object with fid and/or remotes" },
	{ NULL, "\"a@b\": {}", "t.json: pins[\"a@b\"]: a pin needs a fid or at least one remote" },
	{ NULL, "\"a@b\": {\"remotes\": []}",
	    "t.json: pins[\"a@b\"]: a pin needs a fid or at least one remote" },
	{ NULL, "\"a@b\": {\"fid\": \"fid:0/" TENANT "/1\", \"fidd\": 1}",
	    "t.json: pins[\"a@b\"]: unknown member \"fidd\"" },
	{ NULL, "\"a@b\": {\"fid\": 1}", "t.json: pins[\"a@b\"]: fid: expected a string" },
	{ NULL, "\"a@b\": {\"fid\": null}", "t.json: pins[\"a@b\"]: fid: expected a string" },
	{ NULL, "\"a@b\": {\"fid\": \"fid:1/" TENANT "/1\"}",
	    "t.json: pins[\"a@b\"]: fid \"fid:1/" TENANT "/1\": a fid starts with fid:0/" },
	{ NULL, "\"a@b\": {\"fid\": \"fid:0/" TENANT "/a b\"}",
	    "t.json: pins[\"a@b\"]: fid \"fid:0/" TENANT "/a b\": the fid's local id" },
	{ NULL, "\"a@b\": {\"fid\": \"fid:0/" REMOTE "/1\"}",
	    "t.json: pins[\"a@b\"]: fid fid:0/" REMOTE "/1 is of tenant " REMOTE
	    ", not the table's tenant " TENANT },
	{ NULL, "\"a@b\": {\"remotes\": \"" REMOTE "\"}",
	    "t.json: pins[\"a@b\"]: remotes: expected a list of at most 1000 tenantIDs" },
	{ NULL, "\"a@b\": {\"remotes\": [\"" REMOTE "\", \"bad\"]}",
	    "t.json: pins[\"a@b\"]: remotes[1]: \"bad\" is not a tenantID" },
	{ NULL, "\"a@b\": {\"remotes\": [7]}",
	    "t.json: pins[\"a@b\"]: remotes[0]: a non-string is not a tenantID" },
	{ NULL, "\"a@b\": {\"remotes\": [\"" REMOTE "\", \"" REMOTE "\"]}",
	    "t.json: pins[\"a@b\"]: remotes[1]: " REMOTE " is already remotes[0]" },
	{ NULL, "\"\": {\"remotes\": [\"" REMOTE "\"]}", "t.json: pins[\"\"]: the key is empty" },
	{ NULL, "\"a\\tb\": {\"remotes\": [\"" REMOTE "\"]}",
	    "t.json: pins[\"a\\u0009b\"]: the key has a control character" },
	{ NULL, "\"a\\\"b\\u007f\": {\"remotes\": [\"" REMOTE "\"]}",
	    "t.json: pins[\"a\\\"b\\u007f\"]: the key has a control character" },
	{ NULL, "\"a\\u0000b\": {\"remotes\": [\"" REMOTE "\"]}", "t.json:1:" },
	{ NULL,
	    "\"A@b\": {\"remotes\": [\"" REMOTE "\"]}, \"a@B\": {\"fid\": \"fid:0/" TENANT "/1\"}",
	    "t.json: pins[\"a@B\"]: the same key as pins[\"A@b\"] (keys are compared without "
	    "letter "
	    "case)" },
	{ "{\"version\": 1, \"tenant\": \"" TENANT "\", \"pins\": {\"\xff\": {}}}", NULL,
	    "t.json:1:" },
};

static void
test_pins_broken(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(broken_pins) / sizeof(broken_pins[0]); i++) {
		const char *json =
		    broken_pins[i].json ? broken_pins[i].json : table(broken_pins[i].pins);
		struct fb_pins *p = NULL;
		struct fb_err err = { 0 };
		fb_rc rc = fb_pins_parse(json, strlen(json), "t.json", &p, &err);
		if (rc == FB_OK || strstr(err.msg, broken_pins[i].want) == NULL)
			fail_msg("case %zu: %s\n  got rc %d: %s\n  want: %s", i, json, (int)rc,
			    err.msg, broken_pins[i].want);
		assert_null(p);
		/* Without an err: the same refusal, and no crash. */
		assert_int_not_equal(fb_pins_parse(json, strlen(json), "t.json", &p, NULL), FB_OK);
	}
}

/* Long keys: 320 bytes is the most an e-mail can be; the message shows a prefix only. */
static void
test_pins_key_length(void **state)
{
	char key[400], json[1024];
	struct fb_pins *p = NULL;
	struct fb_err err = { 0 };

	(void)state;
	memset(key, 'k', 320);
	key[320] = '\0';
	(void)snprintf(json, sizeof(json),
	    "{\"version\": 1, \"tenant\": \"" TENANT
	    "\", \"pins\": {\"%s\": {\"remotes\": [\"" REMOTE "\"]}}}",
	    key);
	p = parse_ok(json);
	assert_non_null(fb_pins_find(p, key, 320));
	fb_pins_free(p);

	memset(key, 'k', 321);
	key[321] = '\0';
	(void)snprintf(json, sizeof(json),
	    "{\"version\": 1, \"tenant\": \"" TENANT
	    "\", \"pins\": {\"%s\": {\"remotes\": [\"" REMOTE "\"]}}}",
	    key);
	assert_int_equal(fb_pins_parse(json, strlen(json), "t.json", &p, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "...\"]: the key is longer than 320 bytes"));
	assert_int_equal(fb_pins_find(NULL, key, 321), NULL);
}

/* 100,000 pins: every one is found, in another letter case too, and nothing else is. */
static void
test_pins_many(void **state)
{
	enum { N = 100000 };
	struct fb_buf b;
	struct fb_pins *p = NULL;
	struct fb_err err = { 0 };
	char key[64], upper[64];

	(void)state;
	fb_buf_init(&b, (size_t)64 << 20);
	assert_int_equal(
	    fb_buf_printf(&b, "{\"version\":1,\"tenant\":\"" TENANT "\",\"pins\":{"), FB_OK);
	for (int i = 0; i < N; i++)
		assert_int_equal(fb_buf_printf(&b,
		                     "%s\"user.%d@Company.example\":{\"fid\":\"fid:0/" TENANT
		                     "/%d\",\"remotes\":[\"" REMOTE "\"]}",
		                     i ? "," : "", i, 100000 + i),
		    FB_OK);
	assert_int_equal(fb_buf_printf(&b, "}}"), FB_OK);
	if (fb_pins_parse(b.data, b.len, "many.json", &p, &err) != FB_OK)
		fail_msg("%s", err.msg);
	fb_buf_free(&b);
	assert_int_equal(fb_pins_count(p), N);
	for (int i = 0; i < N; i++) {
		const struct fb_pin *pin;
		char fid[64];
		int len = snprintf(key, sizeof(key), "user.%d@company.example", i);
		(void)snprintf(upper, sizeof(upper), "USER.%d@COMPANY.EXAMPLE", i);
		(void)snprintf(fid, sizeof(fid), "fid:0/" TENANT "/%d", 100000 + i);
		pin = fb_pins_find(p, key, (size_t)len);
		if (pin == NULL || strcmp(pin->fid, fid) != 0 || pin->n_remotes != 1)
			fail_msg("pin %d: not found or wrong", i);
		assert_ptr_equal(fb_pins_find(p, upper, (size_t)len), pin);
	}
	for (int i = N; i < N + 1000; i++) {
		int len = snprintf(key, sizeof(key), "user.%d@company.example", i);
		assert_null(fb_pins_find(p, key, (size_t)len));
	}
	fb_pins_free(p);
}

/* ---- whitelist files ---- */

static void
whitelist_ok(const char *yaml, struct fb_whitelist *w)
{
	struct fb_err err = { 0 };

	if (fb_whitelist_parse(yaml, strlen(yaml), "w.yaml", w, &err) != FB_OK)
		fail_msg("%s\n  %s", yaml, err.msg);
}

static void
test_whitelist_formats(void **state)
{
	struct fb_whitelist w;

	(void)state;
	/* The seed's whitelist.yaml: users with empty values. */
	whitelist_ok("remoteTenant: " REMOTE " # tenantID of the remote installation\n"
	             "users:\n"
	             "  \"n.belov@company_domain\":\n"
	             "  \"i.ivanov@company_domain\":\n",
	    &w);
	assert_string_equal(w.remote_tenant, REMOTE);
	assert_int_equal(w.remote_line, 1);
	assert_int_equal(w.remote_col, 15);
	assert_false(w.has_fids);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.users[0].key, "i.ivanov@company_domain"); /* sorted */
	assert_int_equal(w.users[0].line, 4);
	assert_int_equal(w.users[0].col, 3);
	assert_null(w.users[0].fid);
	assert_string_equal(w.users[1].key, "n.belov@company_domain");
	fb_whitelist_free(&w);

	/* The seed's remote_whitelist.yaml: a fid each. */
	whitelist_ok("users:\n"
	             "  \"i.ivanov@company_domain\":\n"
	             "    fid: fid:0/" TENANT "/100401\n"
	             "  \"n.belov@company_domain\":\n"
	             "    fid: fid:0/" TENANT "/100402\n",
	    &w);
	assert_null(w.remote_tenant);
	assert_true(w.has_fids);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.users[1].fid, "fid:0/" TENANT "/100402");
	assert_int_equal(w.users[1].line, 4);
	assert_int_equal(w.users[1].fid_line, 5);
	assert_int_equal(w.users[1].fid_col, 10);
	fb_whitelist_free(&w);

	/* Extra values are skipped; flow style, null spellings and comments are YAML. */
	whitelist_ok("# exported 2024-05-01\n"
	             "users: {\"a@x\": {name: A, groups: [x, {y: [z]}], fid: \"fid:0/" TENANT
	             "/1\"}, b@x: {fid: fid:0/" TENANT "/2, note: ~}}\n",
	    &w);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.users[0].fid, "fid:0/" TENANT "/1");
	fb_whitelist_free(&w);
	whitelist_ok("---\nusers:\n  a@x: ~\n  b@x: null\n  c@x: {}\nremoteTenant: \"" REMOTE
	             "\"\n...\n",
	    &w);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.remote_tenant, REMOTE);
	fb_whitelist_free(&w);

	/* A whitelist.yaml with no users yet is valid (and imports nothing). */
	whitelist_ok("remoteTenant: " REMOTE "\nusers: {}\n", &w);
	assert_int_equal(w.n, 0);
	fb_whitelist_free(&w);
}

static const struct {
	const char *yaml;
	const char *want; /* the whole message */
} broken_whitelists[] = {
	{ "remoteTenant: " REMOTE "\nusers:\n  \"x@y\":\n    - a\n",
	    "w.yaml:3:3: users: \"x@y\": expected an empty value or a mapping, got a list" },
	{ "remoteTenant: " REMOTE "\nusers:\n  \"x@y\": hello\n",
	    "w.yaml:3:3: users: \"x@y\": expected an empty value or a mapping, got a string" },
	{ "remoteTenant: " REMOTE "\nusers:\n  \"a@x\":\n  \"b@x\":\n  \"A@X\":\n",
	    "w.yaml:5:3: users: \"A@X\" is given twice (first at 3:3)" },
	{ "users:\n  a@x: {fid: fid:0/" TENANT "/1}\n  a@x: {fid: fid:0/" TENANT "/1}\n",
	    "w.yaml:3:3: users: \"a@x\" is given twice (first at 2:3)" },
	{ "remoteTenant: nope\nusers:\n  \"a@x\":\n",
	    "w.yaml:1:15: remoteTenant: expected a tenantID (8 to 16 letters and digits), got "
	    "\"nope\"" },
	{ "remoteTenant:\nusers:\n  \"a@x\":\n",
	    "w.yaml:1:14: remoteTenant: expected a tenantID (8 to 16 letters and digits), got an "
	    "empty value" },
	{ "remoteTenant: [" REMOTE "]\nusers: {}\n",
	    "w.yaml:1:15: remoteTenant: expected a tenantID (8 to 16 letters and digits), got a "
	    "list" },
	{ "remoteTenant: " REMOTE "\nremoteTenant: " REMOTE "\nusers: {}\n",
	    "w.yaml:2:1: remoteTenant is given twice (first at 1:15)" },
	{ "users: {}\nremoteTenant: " REMOTE "\nusers: {}\n",
	    "w.yaml:3:1: users is given twice (first at 1:1)" },
	{ "users:\n  \"a@x\":\n",
	    "w.yaml: neither a whitelist.yaml (no remoteTenant) nor a remote_whitelist.yaml (no "
	    "user has a fid)" },
	{ "users:\n  \"a@x\": {name: A}\n",
	    "w.yaml: neither a whitelist.yaml (no remoteTenant) nor a remote_whitelist.yaml (no "
	    "user has a fid)" },
	{ "remote_tenant: " REMOTE "\nusers: {}\n",
	    "w.yaml:1:1: unknown key \"remote_tenant\" (a whitelist file has remoteTenant and "
	    "users)" },
	{ "users: {}\n\"users\\0\": 1\n",
	    "w.yaml:2:1: unknown key \"users\\u0000\" (a whitelist file has remoteTenant and "
	    "users)" },
	{ "? [users]\n: {}\n", "w.yaml:1:3: expected remoteTenant or users, got a list" },
	{ "users:\n  \"a@x\":\n    fid: fid:1/" TENANT "/1\n",
	    "w.yaml:3:10: users: \"a@x\": fid \"fid:1/" TENANT "/1\": a fid starts with fid:0/" },
	{ "users:\n  \"a@x\":\n    fid: fid:0/short/1\n",
	    "w.yaml:3:10: users: \"a@x\": fid \"fid:0/short/1\": the fid's tenantID is not valid" },
	{ "users:\n  \"a@x\":\n    fid:\n",
	    "w.yaml:3:9: users: \"a@x\": fid: expected fid:0/<tenantID>/<id>, got an empty value" },
	{ "users:\n  \"a@x\":\n    fid: [fid:0/" TENANT "/1]\n",
	    "w.yaml:3:10: users: \"a@x\": fid: expected fid:0/<tenantID>/<id>, got a list" },
	{ "users:\n  \"a@x\":\n    fid: fid:0/" TENANT "/1\n    fid: fid:0/" TENANT "/2\n",
	    "w.yaml:4:5: users: \"a@x\": fid is given twice (first at 3:10)" },
	{ "users:\n  \"a@x\":\n    fid: fid:0/" TENANT "/1\n  \"b@x\":\n",
	    "w.yaml:4:3: users: \"b@x\": no fid, but this remote_whitelist.yaml gives other users "
	    "one" },
	{ "users:\n  \"a@x\":\n    [fid]: 1\n",
	    "w.yaml:3:5: users: \"a@x\": expected a name such as fid, got a list" },
	{ "remoteTenant: " REMOTE "\nusers:\n  - a@x\n",
	    "w.yaml:3:3: users: expected a mapping of e-mails (each followed by ':'), got a list" },
	{ "remoteTenant: " REMOTE "\nusers:\n",
	    "w.yaml:2:7: users: expected a mapping of e-mails (each followed by ':'), got an empty "
	    "value" },
	{ "remoteTenant: " REMOTE "\nusers:\n  [a]: 1\n",
	    "w.yaml:3:3: users: expected an e-mail, got a list" },
	{ "remoteTenant: " REMOTE "\nusers:\n  \"\":\n",
	    "w.yaml:3:3: users: \"\": a user must not be empty" },
	{ "remoteTenant: " REMOTE "\nusers:\n  \"a\\tb\":\n",
	    "w.yaml:3:3: users: \"a\\u0009b\": a user must not hold control characters" },
	{ "remoteTenant: &t " REMOTE "\nusers: {}\n",
	    "w.yaml:1:15: anchors (&name) and tags (!tag) are not allowed here" },
	{ "remoteTenant: " REMOTE "\nusers:\n  a@x: *t\n",
	    "w.yaml:3:8: aliases (*name) are not allowed here" },
	{ "users: !!map\n  a@x: {fid: fid:0/" TENANT "/1}\n",
	    "w.yaml:1:8: anchors (&name) and tags (!tag) are not allowed here" },
	{ "remoteTenant: " REMOTE "\nusers: {}\n---\nusers: {}\n",
	    "w.yaml:3:1: a whitelist file holds one document" },
	{ "", "w.yaml: the file is empty (expected users, and remoteTenant in a whitelist.yaml)" },
	{ "# nothing yet\n",
	    "w.yaml: the file is empty (expected users, and remoteTenant in a whitelist.yaml)" },
	{ "remoteTenant: " REMOTE "\n", "w.yaml: no users" },
	{ "hello\n", "w.yaml:1:1: expected a mapping with users (and remoteTenant), got a string" },
	{ "- users\n", "w.yaml:1:1: expected a mapping with users (and remoteTenant), got a list" },
	/* The mistake the messenger's guide warns about: an e-mail without its ':'. */
	{ "remoteTenant: " REMOTE "\nusers:\n  \"a@x\"\n  \"b@x\":\n",
	    "w.yaml:3:3: users: expected a mapping of e-mails (each followed by ':'), got a "
	    "string" },
	{ "remoteTenant: \"" REMOTE "\nusers: {}\n",
	    "w.yaml:3:1: YAML syntax error: found unexpected end of stream while scanning a quoted "
	    "scalar (line 1)" },
	{ "users:\n  \"a\xff\":\n",
	    "w.yaml:2:5: not a YAML file: invalid leading UTF-8 octet (byte 11)" },
	{ "users:\n  a@x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: {x: "
	  "1}}}}}}}}}}}}}}}}}}\n",
	    "w.yaml:2:76: nested deeper than 16 levels" },
};

static void
test_whitelist_broken(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(broken_whitelists) / sizeof(broken_whitelists[0]); i++) {
		const char *yaml = broken_whitelists[i].yaml;
		struct fb_whitelist w;
		struct fb_err err = { 0 };
		fb_rc rc = fb_whitelist_parse(yaml, strlen(yaml), "w.yaml", &w, &err);
		if (rc == FB_OK || strcmp(err.msg, broken_whitelists[i].want) != 0)
			fail_msg("case %zu:\n%s\n  got rc %d: %s\n  want:     %s", i, yaml, (int)rc,
			    err.msg, broken_whitelists[i].want);
		assert_int_not_equal(
		    fb_whitelist_parse(yaml, strlen(yaml), "w.yaml", &w, NULL), FB_OK);
	}
}

/* The buffer is not NUL-terminated: a parse must stop at len. */
static void
test_whitelist_length(void **state)
{
	static const char yaml[] = "remoteTenant: " REMOTE "\nusers:\n  a@x:\nxyz: 1";
	struct fb_whitelist w;

	(void)state;
	whitelist_ok("remoteTenant: " REMOTE "\nusers:\n  a@x:\n", &w);
	fb_whitelist_free(&w);
	assert_int_equal(fb_whitelist_parse(yaml, strlen(yaml) - 6, "w.yaml", &w, NULL), FB_OK);
	assert_int_equal(w.n, 1);
	fb_whitelist_free(&w);
	assert_int_not_equal(fb_whitelist_parse(yaml, strlen(yaml), "w.yaml", &w, NULL), FB_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pins_valid),
		cmocka_unit_test(test_pins_broken),
		cmocka_unit_test(test_pins_key_length),
		cmocka_unit_test(test_pins_many),
		cmocka_unit_test(test_whitelist_formats),
		cmocka_unit_test(test_whitelist_broken),
		cmocka_unit_test(test_whitelist_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
