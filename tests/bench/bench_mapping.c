/*
 * Mapping benchmark: prints figures with the baseline measured in the same
 * run and the ratio. Not a test: nothing here passes or fails.
 *
 *   (m) one login's mapping: a typical identity (20 claims), 5 attributes,
 *       3 require, 1 deny, 5 trusts' outbound rules; baseline: the same
 *       decisions hand-written in C over the same jansson object
 *   (k) compiling 1,000 rules; baseline: loading the YAML that holds them
 *   (i) one inbound policy at the relay; baseline: the same test in C
 *
 * Each pair is measured in alternating rounds and compared by medians.
 */
#include "fb_conf.h"
#include "fb_mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 9

struct bench {
	struct fb_conf *conf;
	struct fb_rules *rules;
	struct fb_expr_scratch *scratch;
	struct fb_login login;
	json_t *claims, *token;
	char *big_yaml;
	size_t big_len;
	volatile int sink;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void
die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_mapping: %s: %s\n", what, detail ? detail : "");
	exit(1);
}

static double
rate(void (*fn)(struct bench *), struct bench *b, double secs)
{
	double t0 = now_s(), t;
	unsigned long n = 0;

	do {
		fn(b);
		n++;
	} while ((t = now_s() - t0) < secs);
	return (double)n / t;
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return (a > c) - (a < c);
}

static void
paired(void (*base)(struct bench *), void (*op)(struct bench *), struct bench *b, double secs,
    double *base_rate, double *op_rate)
{
	double rb[ROUNDS], ro[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		rb[i] = rate(base, b, secs);
		ro[i] = rate(op, b, secs);
	}
	qsort(rb, ROUNDS, sizeof(double), cmp_double);
	qsort(ro, ROUNDS, sizeof(double), cmp_double);
	*base_rate = rb[ROUNDS / 2];
	*op_rate = ro[ROUNDS / 2];
}

static const char conf_head[] = "installation:\n"
                                "  name: installation_A\n"
                                "  domain: a.example\n"
                                "  public_url: https://sso.a.example\n"
                                "  listen: 127.0.0.1:8080\n"
                                "keys: {signing: [k.pem], fid_secret: fid.secret}\n"
                                "store: \"memory:\"\n"
                                "tenants:\n";

static const char typical[] =
    "  - id: HZnKEBoqDU\n"
    "    providers:\n"
    "      - {name: kc, type: oidc, issuer: https://kc.a.example, client_id: x, "
    "client_secret_file: s}\n"
    "    mapping:\n"
    "      - provider: kc\n"
    "        fid: [claims.employee_id, pairwise(claims.sub)]\n"
    "        attributes:\n"
    "          email: lower(claims.email)\n"
    "          department: claims.department\n"
    "          groups: claims.groups\n"
    "          roles: claims.realm_access.roles\n"
    "          name: claims.name\n"
    "        require:\n"
    "          - claims.email_verified == true\n"
    "          - \"'federation' in claims.realm_access.roles\"\n"
    "          - endsWith(claims.email, '@a.example')\n"
    "        deny: claims.department == 'contractors'\n"
    "    trusts:\n";

static const char trust_fmt[] = "      - remote: installation_%c\n"
                                "        tenants: [%s]\n"
                                "        relay: federation.%c.example:443\n"
                                "        ca: ca.pem\n"
                                "        client_cert: c.pem\n"
                                "        client_key: c.key\n"
                                "        keys: k.jwks\n"
                                "        issuer: https://sso.%c.example\n"
                                "        outbound: \"'/staff/%s' in principal.groups || "
                                "principal.department == '%s'\"\n"
                                "        release: [email, department]\n"
                                "        inbound: token.attrs.department in ['sales', 'legal']\n";

static const char claims_json[] =
    "{\"iss\":\"https://kc.a.example\",\"sub\":\"f2c1c5e4-6d0a-4bb8-9a61-1a2b3c4d5e6f\","
    "\"aud\":\"fedbridge\",\"azp\":\"fedbridge\",\"exp\":1795000000,\"iat\":1794999700,"
    "\"auth_time\":1794999690,\"sid\":\"8b0a3c7e\",\"email\":\"Alice.Smith@a.example\","
    "\"email_verified\":true,\"preferred_username\":\"alice\",\"name\":\"Alice Smith\","
    "\"given_name\":\"Alice\",\"family_name\":\"Smith\",\"realm_access\":{\"roles\":["
    "\"offline_access\",\"federation\",\"default-roles-corp\"]},\"groups\":[\"/staff\","
    "\"/staff/sales\"],\"department\":\"sales\",\"employee_id\":\"100401\",\"locale\":\"en\","
    "\"acr\":\"1\"}";

static struct fb_conf *
load_conf(const char *text, size_t len)
{
	struct fb_conf_diags d = { 0 };
	struct fb_conf *c =
	    fb_conf_load_buffer(text, len, "bench.yaml", "/nonexistent", FB_CONF_NO_FS, &d);

	if (c == NULL)
		die("configuration", d.n ? d.v[0].msg : "");
	fb_conf_diags_free(&d);
	return c;
}

static struct fb_rules *
compile(const struct fb_conf *c)
{
	static const unsigned char secret[] = "bench-fid-secret-0123456789abcdef";
	struct fb_rules_params p = { .fid_secret = secret, .fid_secret_len = sizeof(secret) - 1 };
	struct fb_conf_diags d = { 0 };
	struct fb_rules *r = NULL;

	if (fb_rules_compile(c, &p, &r, &d) != FB_OK)
		die("rules", d.n ? d.v[0].msg : "");
	fb_conf_diags_free(&d);
	return r;
}

/* ---- (m) ---- */

static void
op_mapping(struct bench *b)
{
	struct fb_principal p;

	fb_expr_scratch_reset(b->scratch);
	if (fb_mapping_run(b->rules, &b->login, b->scratch, &p, NULL, NULL) != FB_OK || !p.allowed)
		die("mapping", p.reason);
	b->sink += p.trusts[0].outbound;
	fb_principal_clear(&p);
}

static bool
in_array(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(
	    a, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* What a programmer would write by hand for the same rules, allocation for allocation. */
static void
op_mapping_c(struct bench *b)
{
	static const char *const dept[] = { "sales", "legal", "it", "hr", "ops" };
	json_t *c = b->claims, *roles, *groups, *attrs;
	const char *email, *d;
	char lower[256];
	bool out[5];
	size_t n;

	roles = json_object_get(json_object_get(c, "realm_access"), "roles");
	groups = json_object_get(c, "groups");
	email = json_string_value(json_object_get(c, "email"));
	d = json_string_value(json_object_get(c, "department"));
	if (!json_is_true(json_object_get(c, "email_verified")) || !in_array(roles, "federation") ||
	    email == NULL || (n = strlen(email)) < 10 ||
	    strcmp(email + n - 10, "@a.example") != 0 || d == NULL || strcmp(d, "contractors") == 0)
		die("hand-written mapping", "refused");
	for (size_t i = 0; i < n && i < sizeof(lower) - 1; i++)
		lower[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
	lower[n < sizeof(lower) - 1 ? n : sizeof(lower) - 1] = '\0';
	attrs = json_object();
	json_object_set_new(attrs, "email", json_string(lower));
	json_object_set(attrs, "department", json_object_get(c, "department"));
	json_object_set(attrs, "groups", groups);
	json_object_set(attrs, "roles", roles);
	json_object_set(attrs, "name", json_object_get(c, "name"));
	for (int t = 0; t < 5; t++) {
		char g[32];
		(void)snprintf(g, sizeof(g), "/staff/%s", dept[t]);
		out[t] = in_array(groups, g) || strcmp(d, dept[t]) == 0;
	}
	b->sink += out[0] + (int)json_object_size(attrs);
	json_decref(attrs);
}

/* ---- (k) ---- */

static void
op_load(struct bench *b)
{
	fb_conf_unref(load_conf(b->big_yaml, b->big_len));
}

static void
op_compile(struct bench *b)
{
	fb_rules_free(compile(b->conf));
}

/* ---- (i) ---- */

static void
op_inbound(struct bench *b)
{
	fb_expr_scratch_reset(b->scratch);
	b->sink += fb_rules_inbound(b->rules, "HZnKEBoqDU", "HWqHczeM2P", b->token, b->scratch,
	               NULL) == FB_TRUTH_TRUE;
}

static void
op_inbound_c(struct bench *b)
{
	const char *d =
	    json_string_value(json_object_get(json_object_get(b->token, "attrs"), "department"));

	b->sink += d != NULL && (strcmp(d, "sales") == 0 || strcmp(d, "legal") == 0);
}

static void
loop_rate(void (*fn)(struct bench *), struct bench *b, int n)
{
	for (int i = 0; i < n; i++)
		fn(b);
}

static void
op_mapping_x64(struct bench *b)
{
	loop_rate(op_mapping, b, 64);
}
static void
op_mapping_c_x64(struct bench *b)
{
	loop_rate(op_mapping_c, b, 64);
}
static void
op_inbound_x256(struct bench *b)
{
	loop_rate(op_inbound, b, 256);
}
static void
op_inbound_c_x256(struct bench *b)
{
	loop_rate(op_inbound_c, b, 256);
}

/* A configuration with about 1,000 expressions: 53 tenants of 19 each. */
static char *
big_config(size_t *len)
{
	size_t cap = 1 << 21, at = 0;
	char *s = malloc(cap);

	if (s == NULL)
		die("out of memory", NULL);
	at += (size_t)snprintf(s + at, cap - at, "%s", conf_head);
	for (int t = 0; t < 53; t++) {
		at += (size_t)snprintf(s + at, cap - at,
		    "  - id: Tenant%04dAB\n"
		    "    providers:\n"
		    "      - {name: kc%d, type: oidc, issuer: https://kc.a.example, client_id: x, "
		    "client_secret_file: s}\n"
		    "      - {name: adfs%d, type: saml, idp_metadata: m.xml, sp_key: k, sp_cert: "
		    "c}\n"
		    "    mapping:\n"
		    "      - provider: kc%d\n"
		    "        fid: [claims.employee_id, pairwise(claims.sub)]\n"
		    "        attributes: {email: lower(claims.email), department: "
		    "claims.department,"
		    " groups: claims.groups, roles: claims.realm_access.roles}\n"
		    "        require: [claims.email_verified == true, \"'federation' in "
		    "claims.realm_access.roles\", \"matches(claims.email, "
		    "'[a-z.]+@a[.]example')\"]\n"
		    "        deny: claims.department == 'contractors'\n"
		    "      - provider: adfs%d\n"
		    "        fid: first(attrs['http://schemas.a.example/claims/employeenumber'])\n"
		    "        attributes: {email: lower(first(attrs.mail)), department: "
		    "first(attrs.department), groups: attrs.memberOf, roles: "
		    "\"split(first(attrs.roles), ',')\"}\n"
		    "        require: [\"'Federation Users' in attrs.memberOf\", has(attrs.mail), "
		    "size(attrs.mail) == 1]\n"
		    "        deny: first(attrs.department) == 'contractors'\n",
		    t, t, t, t, t);
	}
	*len = at;
	return s;
}

int
main(void)
{
	struct bench *b = calloc(1, sizeof(*b));
	char text[16384];
	size_t at;
	double base, op, kl, kc, ib, io;
	static const char *const remotes[] = { "HWqHczeM2P", "Kq7wX2mPzR", "Mn3pQ8rStU",
		"Pq4rS9tUvW", "Rs5tU0vWxY" };
	static const char *const dept[] = { "sales", "legal", "it", "hr", "ops" };

	if (b == NULL)
		die("out of memory", NULL);
	at = (size_t)snprintf(text, sizeof(text), "%s%s", conf_head, typical);
	for (int i = 0; i < 5; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at, trust_fmt, 'B' + i, remotes[i],
		    'b' + i, 'b' + i, dept[i], dept[i]);
	b->conf = load_conf(text, at);
	b->rules = compile(b->conf);
	if (fb_expr_scratch_new(65536, &b->scratch) != FB_OK)
		die("scratch", NULL);
	b->claims = json_loads(claims_json, 0, NULL);
	b->token = json_loads("{\"iss\":\"https://sso.b.example\",\"sub\":\"fid:0/HWqHczeM2P/7\","
	                      "\"tid\":\"HWqHczeM2P\",\"aud\":\"HZnKEBoqDU\",\"attrs\":{\"email\":"
	                      "\"bob@b.example\",\"department\":\"legal\"}}",
	    0, NULL);
	if (b->claims == NULL || b->token == NULL)
		die("json", NULL);
	b->login = (struct fb_login){ .tenant = "HZnKEBoqDU",
		.provider = "kc",
		.issuer = "https://kc.a.example",
		.subject = "f2c1c5e4",
		.claims = b->claims };
	b->big_yaml = big_config(&b->big_len);

	printf("identity: %zu claims; rules: 5 attributes, 3 require, 1 deny, 5 trusts\n",
	    json_object_size(b->claims));
	paired(op_mapping_c_x64, op_mapping_x64, b, 0.3, &base, &op);
	printf("(m) mapping of one login          %10.0f /s   hand-written C %.0f /s, "
	       "(m)/C = %.2f  target >= 500,000\n",
	    op * 64, base * 64, op / base);
	{
		struct fb_conf *big = load_conf(b->big_yaml, b->big_len);
		struct fb_conf *keep = b->conf;
		struct fb_rules *r = compile(big);
		size_t n = fb_rules_expr_count(r);
		fb_rules_free(r);
		b->conf = big;
		paired(op_load, op_compile, b, 0.3, &kl, &kc);
		b->conf = keep;
		fb_conf_unref(big);
		printf("(k) compiling %zu rules          %10.2f ms   loading their YAML %.2f ms, "
		       "(k)/load = %.2f  target < 50 ms\n",
		    n, 1000.0 / kc, 1000.0 / kl, kl / kc);
	}
	paired(op_inbound_c_x256, op_inbound_x256, b, 0.3, &ib, &io);
	printf("(i) inbound policy at the relay   %10.0f /s   hand-written C %.0f /s, "
	       "(i)/C = %.2f  target >= 5,000,000\n",
	    io * 256, ib * 256, io / ib);

	fb_rules_free(b->rules);
	fb_conf_unref(b->conf);
	fb_expr_scratch_free(b->scratch);
	json_decref(b->claims);
	json_decref(b->token);
	free(b->big_yaml);
	free(b);
	return 0;
}
