/*
 * Unit tests for the compiled rules (mapping/rules.c): fid candidates,
 * attributes and their caps, require and deny failing closed, outbound,
 * release and inbound per trust, and compile errors placed at the exact
 * line and column of the file, inside the expression.
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
#include "fb_mapping.h"

static const unsigned char secret[] = "rules-test-fid-secret-0123456789abcdef";

/* A whole configuration around one mapping block and one trust block. */
static const char head[] = "installation:\n"
                           "  name: installation_A\n"
                           "  domain: a.example\n"
                           "  public_url: https://sso.a.example\n"
                           "  listen: 127.0.0.1:8080\n"
                           "keys: {signing: [k.pem], fid_secret: fid.secret}\n"
                           "store: \"memory:\"\n"
                           "tenants:\n"
                           "  - id: HZnKEBoqDU\n"
                           "    providers:\n"
                           "      - {name: kc, type: oidc, issuer: https://kc.a.example, "
                           "client_id: x, client_secret_file: s}\n"
                           "    mapping:\n"
                           "      - provider: kc\n";

static const char default_trusts[] =
    "    trusts:\n"
    "      - remote: installation_B\n"
    "        tenants: [HWqHczeM2P]\n"
    "        relay: federation.b.example:443\n"
    "        ca: ca.pem\n"
    "        client_cert: c.pem\n"
    "        client_key: c.key\n"
    "        keys: b.jwks\n"
    "        issuer: https://sso.b.example\n"
    "        outbound: \"'partners' in principal.groups\"\n"
    "        release: [email]\n"
    "        inbound: token.attrs.department in ['sales', 'legal']\n"
    "      - remote: installation_C\n"
    "        tenants: [Kq7wX2mPzR]\n"
    "        relay: federation.c.example:443\n"
    "        ca: ca.pem\n"
    "        client_cert: c.pem\n"
    "        client_key: c.key\n"
    "        keys: b.jwks\n"
    "        issuer: https://sso.c.example\n"
    "        release: [email, groups]\n";

struct loaded {
	struct fb_conf *conf;
	struct fb_rules *rules;
	struct fb_conf_diags diags;
	char text[8192];
};

/* Loads head + body + trusts; rules NULL (diags filled) when it does not compile. */
static void
load(struct loaded *l, const char *body, const char *trusts)
{
	struct fb_rules_params p = { .fid_secret = secret, .fid_secret_len = sizeof(secret) - 1 };

	memset(l, 0, sizeof(*l));
	(void)snprintf(l->text, sizeof(l->text), "%s%s%s", head, body, trusts);
	l->conf = fb_conf_load_buffer(
	    l->text, strlen(l->text), "t.yaml", "/nonexistent", FB_CONF_NO_FS, &l->diags);
	if (l->conf == NULL) {
		for (size_t i = 0; i < l->diags.n; i++)
			fprintf(stderr, "conf: %s\n", l->diags.v[i].msg);
		fail_msg("the configuration did not load");
	}
	(void)fb_rules_compile(l->conf, &p, &l->rules, &l->diags);
}

static void
unload(struct loaded *l)
{
	fb_rules_free(l->rules);
	fb_conf_unref(l->conf);
	fb_conf_diags_free(&l->diags);
}

static const char *
attr_string(const struct fb_principal *p, const char *name, char *buf, size_t size)
{
	for (size_t i = 0; i < p->n_attrs; i++) {
		if (strcmp(p->attr_names[i], name) != 0)
			continue;
		if (p->attr_values[i].kind == FB_V_ABSENT)
			return "(absent)";
		json_t *j = fb_value_to_json(&p->attr_values[i]);
		char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		(void)snprintf(buf, size, "%s", t ? t : "?");
		free(t);
		json_decref(j);
		return buf;
	}
	return "(no such attribute)";
}

/* Maps claims and returns a one-line summary: "allowed fid attrs..." or "refused rule". */
static void
summary(struct loaded *l, const char *claims_json, char *out, size_t size)
{
	struct fb_expr_scratch *s = NULL;
	struct fb_login login = { .tenant = "HZnKEBoqDU",
		.provider = "kc",
		.issuer = "https://kc.a.example",
		.subject = "u1" };
	struct fb_principal p;
	struct fb_err err = { 0 };
	json_t *claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL);
	char a[256];

	assert_non_null(claims);
	assert_non_null(l->rules);
	assert_int_equal(fb_expr_scratch_new(65536, &s), FB_OK);
	login.claims = claims;
	assert_int_equal(fb_mapping_run(l->rules, &login, s, &p, NULL, &err), FB_OK);
	if (p.allowed)
		(void)snprintf(out, size, "allowed %s %s", p.fid,
		    p.n_attrs ? attr_string(&p, p.attr_names[0], a, sizeof(a)) : "");
	else
		(void)snprintf(out, size, "refused %s", p.rule);
	fb_principal_clear(&p);
	json_decref(claims);
	fb_expr_scratch_free(s);
}

/* ---- fid candidates ---- */

static void
test_fid_first_present_wins(void **state)
{
	struct loaded l;
	char got[512];

	(void)state;
	load(&l,
	    "        fid: [claims.employee_id, claims.legacy_id, pairwise(claims.sub)]\n"
	    "        attributes: {email: lower(claims.email)}\n",
	    "");
	assert_non_null(l.rules);
	summary(&l, "{\"sub\":\"u1\",\"employee_id\":\"100401\",\"email\":\"A@B.c\"}", got,
	    sizeof(got));
	assert_string_equal(got, "allowed fid:0/HZnKEBoqDU/100401 \"a@b.c\"");
	/* Absent and empty candidates are skipped. */
	summary(
	    &l, "{\"sub\":\"u1\",\"employee_id\":\"\",\"legacy_id\":\"L-7\"}", got, sizeof(got));
	assert_string_equal(got, "allowed fid:0/HZnKEBoqDU/L-7 (absent)");
	/* Pairwise last: 22 base64url characters, stable for the same subject. */
	summary(&l, "{\"sub\":\"u1\"}", got, sizeof(got));
	assert_int_equal(
	    strlen("allowed fid:0/HZnKEBoqDU/") + 22 + strlen(" (absent)"), strlen(got));
	char again[512];
	summary(&l, "{\"sub\":\"u1\"}", again, sizeof(again));
	assert_string_equal(got, again);
	summary(&l, "{\"sub\":\"u2\"}", again, sizeof(again));
	assert_string_not_equal(got, again);
	unload(&l);
}

static void
test_fid_bad_value_refuses(void **state)
{
	struct loaded l;
	char got[512];

	(void)state;
	load(&l, "        fid: [claims.employee_id, pairwise(claims.sub)]\n", "");
	/* An invalid local part refuses: falling through would split the account. */
	summary(&l, "{\"sub\":\"u1\",\"employee_id\":\"10 04\"}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].fid[0]");
	/* A whole fid is accepted only for this tenant. */
	summary(&l, "{\"sub\":\"u1\",\"employee_id\":\"fid:0/HZnKEBoqDU/77\"}", got, sizeof(got));
	assert_string_equal(got, "allowed fid:0/HZnKEBoqDU/77 ");
	summary(&l, "{\"sub\":\"u1\",\"employee_id\":\"fid:0/HWqHczeM2P/77\"}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].fid[0]");
	/* A list is not a fid. */
	summary(&l, "{\"sub\":\"u1\",\"employee_id\":[\"1\"]}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].fid[0]");
	unload(&l);
	/* Nothing present at all. */
	load(&l, "        fid: claims.employee_id\n", "");
	summary(&l, "{\"sub\":\"u1\"}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].fid[0]");
	unload(&l);
}

/* ---- require and deny fail closed ---- */

static void
test_conditions_fail_closed(void **state)
{
	struct loaded l;
	char got[512];
	struct fb_principal p;
	struct fb_buf trace;

	(void)state;
	load(&l,
	    "        fid: pairwise(claims.sub)\n"
	    "        require: [claims.email_verified == true, \"'staff' in claims.groups\"]\n"
	    "        deny: claims.department == 'contractors'\n",
	    "");
	summary(&l,
	    "{\"sub\":\"u\",\"email_verified\":true,\"groups\":[\"staff\"],\"department\":\"x\"}",
	    got, sizeof(got));
	assert_int_equal(strncmp(got, "allowed fid:0/HZnKEBoqDU/", 25), 0);
	summary(&l,
	    "{\"sub\":\"u\",\"email_verified\":false,\"groups\":[\"staff\"],\"department\":\"x\"}",
	    got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].require[0]");
	summary(
	    &l, "{\"sub\":\"u\",\"email_verified\":true,\"department\":\"x\"}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].require[1]");
	summary(&l,
	    "{\"sub\":\"u\",\"email_verified\":true,\"groups\":[\"staff\"],"
	    "\"department\":\"contractors\"}",
	    got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].deny[0]");
	/* A deny over an absent value cannot be decided: refused, and the trace says why. */
	summary(
	    &l, "{\"sub\":\"u\",\"email_verified\":true,\"groups\":[\"staff\"]}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].deny[0]");
	fb_buf_init(&trace, 65536);
	{
		struct fb_expr_scratch *s = NULL;
		struct fb_login login = { .tenant = "HZnKEBoqDU",
			.provider = "kc",
			.issuer = "https://kc.a.example",
			.subject = "u" };
		struct fb_err err = { 0 };
		json_t *claims = json_loads(
		    "{\"sub\":\"u\",\"email_verified\":true,\"groups\":[\"staff\"]}", 0, NULL);
		assert_int_equal(fb_expr_scratch_new(65536, &s), FB_OK);
		login.claims = claims;
		assert_int_equal(fb_mapping_run(l.rules, &login, s, &p, &trace, &err), FB_OK);
		assert_false(p.allowed);
		assert_non_null(strstr(p.reason, "could not be decided"));
		assert_non_null(strstr(trace.data, "claims.department: absent"));
		fb_principal_clear(&p);
		json_decref(claims);
		fb_expr_scratch_free(s);
	}
	fb_buf_free(&trace);
	unload(&l);
}

/* ---- attributes ---- */

static void
test_attribute_caps(void **state)
{
	struct loaded l;
	char got[512], big[2048], claims[4096];

	(void)state;
	load(&l,
	    "        fid: pairwise(claims.sub)\n"
	    "        attributes: {groups: claims.groups}\n",
	    "");
	summary(&l, "{\"sub\":\"u\",\"groups\":[\"a\",\"b\"]}", got, sizeof(got));
	assert_non_null(strstr(got, "[\"a\",\"b\"]"));
	summary(&l, "{\"sub\":\"u\",\"groups\":null}", got, sizeof(got));
	assert_non_null(strstr(got, "(absent)"));
	/* 65 items is one over the cap: refused, never truncated silently. */
	{
		size_t at = (size_t)snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"groups\":[");
		for (int i = 0; i < 65; i++)
			at += (size_t)snprintf(
			    claims + at, sizeof(claims) - at, "%s\"g%d\"", i ? "," : "", i);
		(void)snprintf(claims + at, sizeof(claims) - at, "]}");
	}
	summary(&l, claims, got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].attributes.groups");
	memset(big, 'x', 1025);
	big[1025] = '\0';
	(void)snprintf(claims, sizeof(claims), "{\"sub\":\"u\",\"groups\":\"%s\"}", big);
	summary(&l, claims, got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].attributes.groups");
	/* An object is not an attribute value. */
	summary(&l, "{\"sub\":\"u\",\"groups\":{\"a\":1}}", got, sizeof(got));
	assert_string_equal(got, "refused tenants[0].mapping[0].attributes.groups");
	unload(&l);
}

/* ---- trusts: outbound, release, inbound ---- */

static void
test_trust_policies(void **state)
{
	struct loaded l;
	struct fb_expr_scratch *s = NULL;
	struct fb_login login = { .tenant = "HZnKEBoqDU",
		.provider = "kc",
		.issuer = "https://kc.a.example",
		.subject = "u" };
	struct fb_principal p;
	struct fb_err err = { 0 };
	json_t *claims, *rel, *tok;
	char *text;

	(void)state;
	load(&l,
	    "        fid: pairwise(claims.sub)\n"
	    "        attributes: {email: lower(claims.email), groups: claims.groups}\n",
	    default_trusts);
	assert_non_null(l.rules);
	assert_int_equal(fb_expr_scratch_new(65536, &s), FB_OK);
	claims =
	    json_loads("{\"sub\":\"u\",\"email\":\"A@X.y\",\"groups\":[\"partners\"]}", 0, NULL);
	login.claims = claims;
	assert_int_equal(fb_mapping_run(l.rules, &login, s, &p, NULL, &err), FB_OK);
	assert_true(p.allowed);
	assert_int_equal(p.n_trusts, 2);
	assert_string_equal(p.trusts[0].trust->remote, "installation_B");
	assert_true(p.trusts[0].outbound);
	/* No outbound rule: no tokens for that remote. */
	assert_false(p.trusts[1].outbound);
	rel = fb_principal_attrs_json(&p, p.trusts[0].trust);
	text = json_dumps(rel, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"email\":\"a@x.y\"}");
	free(text);
	json_decref(rel);
	fb_principal_clear(&p);
	json_decref(claims);

	/* The inbound policy of the receiving tenant toward the sender's tenant. */
	tok = json_loads("{\"aud\":\"HZnKEBoqDU\",\"attrs\":{\"department\":\"sales\"}}", 0, NULL);
	assert_int_equal(
	    fb_rules_inbound(l.rules, "HZnKEBoqDU", "HWqHczeM2P", tok, s, NULL), FB_TRUTH_TRUE);
	/* The same token from a tenant no trust names, and from a trust without a rule. */
	assert_int_not_equal(
	    fb_rules_inbound(l.rules, "HZnKEBoqDU", "Zz9sT2mZx4", tok, s, NULL), FB_TRUTH_TRUE);
	assert_int_not_equal(
	    fb_rules_inbound(l.rules, "HZnKEBoqDU", "Kq7wX2mPzR", tok, s, NULL), FB_TRUTH_TRUE);
	json_decref(tok);
	tok = json_loads("{\"attrs\":{\"department\":\"hr\"}}", 0, NULL);
	assert_int_equal(
	    fb_rules_inbound(l.rules, "HZnKEBoqDU", "HWqHczeM2P", tok, s, NULL), FB_TRUTH_FALSE);
	json_decref(tok);
	tok = json_loads("{\"attrs\":{}}", 0, NULL);
	assert_int_equal(fb_rules_inbound(l.rules, "HZnKEBoqDU", "HWqHczeM2P", tok, s, NULL),
	    FB_TRUTH_UNDECIDED);
	json_decref(tok);
	fb_expr_scratch_free(s);
	unload(&l);
}

/* ---- compile errors ---- */

/* Compiles a broken mapping and checks the first diagnostic starts with want. */
static void
expect_error(const char *body, const char *trusts, const char *want)
{
	struct loaded l;

	load(&l, body, trusts);
	assert_null(l.rules);
	assert_true(l.diags.n >= 1);
	if (strncmp(l.diags.v[0].msg, want, strlen(want)) != 0)
		fail_msg("expected a diagnostic starting\n  %s\ngot\n  %s", want, l.diags.v[0].msg);
	unload(&l);
}

static void
test_compile_errors(void **state)
{
	(void)state;
	/* Line 14 is the first line after head; plain, single and double quoted scalars. */
	expect_error("        fid: lowr(claims.sub)\n", "",
	    "t.yaml:14:14: tenants[0].mapping[0].fid[0]: unknown function 'lowr'");
	expect_error("        fid: pairwise(claims.sub)\n"
	             "        require: claims.a && (claims.b\n",
	    "",
	    "t.yaml:15:39: tenants[0].mapping[0].require[0]: expected ')' to close the one at "
	    "column 13, got end of expression (column 22 of the expression)");
	expect_error("        fid: pairwise(claims.sub)\n"
	             "        require: 'claims.a == ''x'' && clams.b'\n",
	    "",
	    "t.yaml:15:40: tenants[0].mapping[0].require[0]: unknown name 'clams' (did you "
	    "mean 'claims'?) (column 20 of the expression)");
	expect_error("        fid: pairwise(claims.sub)\n"
	             "        require: \"claims.a == \\\"x\\\" && clams.b\"\n",
	    "",
	    "t.yaml:15:40: tenants[0].mapping[0].require[0]: unknown name 'clams' (did you "
	    "mean 'claims'?) (column 20 of the expression)");
	/* An e-mail is not a fid unless the rule says so. */
	expect_error("        fid: [claims.employee_id, lower(claims.email)]\n", "",
	    "t.yaml:14:41: tenants[0].mapping[0].fid[1]: 'email' can change");
	/* Reserved principal names. */
	expect_error("        fid: pairwise(claims.sub)\n"
	             "        attributes: {fid: claims.x}\n",
	    "", "t.yaml:15:22: tenants[0].mapping[0].attributes.fid: 'fid' is a name");
	/* Inputs outside their place: token in a login rule, claims in an inbound rule. */
	expect_error("        fid: pairwise(claims.sub)\n"
	             "        require: token.attrs.x == 'y'\n",
	    "", "t.yaml:15:18: tenants[0].mapping[0].require[0]: ");
}

static void
test_mutable_explicit(void **state)
{
	struct loaded l;
	char got[512];

	(void)state;
	load(&l, "        fid: mutable(claims.uid)\n", "");
	assert_non_null(l.rules);
	unload(&l);
	load(&l, "        fid: [mutable(claims.preferred_username)]\n", "");
	assert_non_null(l.rules);
	summary(&l, "{\"sub\":\"u\",\"preferred_username\":\"alice\"}", got, sizeof(got));
	assert_string_equal(got, "allowed fid:0/HZnKEBoqDU/alice ");
	unload(&l);
}

static void
test_unknown_tenant_provider(void **state)
{
	struct loaded l;
	struct fb_expr_scratch *s = NULL;
	struct fb_principal p;
	struct fb_err err = { 0 };
	struct fb_login login = { .tenant = "HZnKEBoqDU", .provider = "nosuch" };

	(void)state;
	load(&l, "        fid: pairwise(claims.sub)\n", "");
	assert_int_equal(fb_expr_scratch_new(4096, &s), FB_OK);
	assert_int_equal(fb_mapping_run(l.rules, &login, s, &p, NULL, &err), FB_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "no mapping for provider nosuch"));
	login.tenant = "Zz9sT2mZx4";
	login.provider = "kc";
	assert_int_equal(fb_mapping_run(l.rules, &login, s, &p, NULL, &err), FB_ERR_NOTFOUND);
	fb_expr_scratch_free(s);
	unload(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fid_first_present_wins),
		cmocka_unit_test(test_fid_bad_value_refuses),
		cmocka_unit_test(test_conditions_fail_closed),
		cmocka_unit_test(test_attribute_caps),
		cmocka_unit_test(test_trust_policies),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_mutable_explicit),
		cmocka_unit_test(test_unknown_tenant_provider),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
