/*
 * Unit tests for the login endpoints (login/) without a server:
 * a configuration with an OpenID Connect provider whose IdP is a closed
 * loopback port, a SAML provider with a throwaway key, a /token client and
 * a memory store; requests made by hand, responses checked. And the
 * failure table, row by row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fb_metrics.h"
#include "login_int.h" /* white box: forges sealed states and codes */
#include "../fuzz/saml_fixture.h"

#define CLIENT_SECRET "messenger-secret-0123456789abcdefghijkl"
#define APP "https://app.a.example/cb"
#define TENANT "HZnKEBoqDU"
#define CONF_MAX 4096
#define PATH_MAX_LEN 160
#define IDP_REQUEST_MAX 4096
#define IDP_ANSWER_MAX 2048

struct fixture {
	struct saml_fixture saml;
	char fid[PATH_MAX_LEN], op_secret[PATH_MAX_LEN], client[PATH_MAX_LEN];
	struct fb_conf *conf;
	struct fb_rules *rules;
	struct fb_store *store;
	struct fb_login_env env;
	unsigned short closed_port;
	/* The IdP: discovery and keys on loopback, its token endpoint a closed port. */
	int idp_fd;
	unsigned short idp_port;
	pthread_t idp_thread;
};

static struct fixture fx;

/* A loopback port nothing listens on: bound, then closed. */
static unsigned short
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0)
		abort();
	close(s);
	return ntohs(a.sin_port);
}

/* One answer per connection: the discovery document, or an empty key set. */
static void *
idp_serve(void *arg)
{
	char req[IDP_REQUEST_MAX], body[IDP_ANSWER_MAX], answer[IDP_ANSWER_MAX + 256];
	int c, n, len;

	(void)arg;
	while ((c = accept(fx.idp_fd, NULL, NULL)) >= 0) {
		n = (int)read(c, req, sizeof(req) - 1);
		req[n > 0 ? n : 0] = '\0';
		if (strstr(req, "GET /.well-known/openid-configuration ") == req)
			len = snprintf(body, sizeof(body),
			    "{\"issuer\":\"http://127.0.0.1:%u\","
			    "\"authorization_endpoint\":\"http://127.0.0.1:%u/auth\","
			    "\"token_endpoint\":\"http://127.0.0.1:%u/token\","
			    "\"jwks_uri\":\"http://127.0.0.1:%u/keys\","
			    "\"response_types_supported\":[\"code\"],"
			    "\"subject_types_supported\":[\"public\"],"
			    "\"id_token_signing_alg_values_supported\":[\"RS256\"],"
			    "\"code_challenge_methods_supported\":[\"S256\"]}",
			    fx.idp_port, fx.idp_port, fx.closed_port, fx.idp_port);
		else
			len = snprintf(body, sizeof(body), "{\"keys\":[]}");
		n = snprintf(answer, sizeof(answer),
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
		    "Connection: close\r\n\r\n%s",
		    len, body);
		(void)!write(c, answer, (size_t)n);
		close(c);
	}
	return NULL;
}

static void
idp_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fx.idp_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fx.idp_fd < 0 || bind(fx.idp_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fx.idp_fd, (struct sockaddr *)&a, &len) != 0 || listen(fx.idp_fd, 8) != 0 ||
	    pthread_create(&fx.idp_thread, NULL, idp_serve, NULL) != 0)
		abort();
	fx.idp_port = ntohs(a.sin_port);
}

static int
setup(void **state)
{
	char conf[CONF_MAX];
	struct fb_conf_diags diags = { 0 };
	struct fb_store_opts so = { .kind = FB_STORE_MEMORY };
	struct fb_err err = { 0 };
	int n;

	(void)state;
	fb_log_setup(FB_LOG_ERROR, FB_LOG_TEXT);
	saml_fixture_init(&fx.saml);
	saml_fixture_metadata(&fx.saml, "https://idp.a.example");
	(void)snprintf(fx.fid, sizeof(fx.fid), "%s/fid.secret", fx.saml.dir);
	(void)snprintf(fx.op_secret, sizeof(fx.op_secret), "%s/op.secret", fx.saml.dir);
	(void)snprintf(fx.client, sizeof(fx.client), "%s/client.secret", fx.saml.dir);
	fixture_write(fx.fid, "fid-secret-0123456789abcdefghijklmnopqrstuv", 43, 0600);
	fixture_write(fx.op_secret, "op-secret-0123456789abcdef", 26, 0600);
	fixture_write(fx.client, CLIENT_SECRET, strlen(CLIENT_SECRET), 0600);
	fx.closed_port = closed_port();
	idp_start();
	n = snprintf(conf, sizeof(conf),
	    "installation: {name: installation_A, domain: a.example, public_url: "
	    "\"https://federation.a.example\", listen: \"127.0.0.1:8080\"}\n"
	    "keys: {signing: [%s], fid_secret: %s}\n"
	    "store: \"memory:\"\n"
	    "tenants:\n"
	    "  - id: " TENANT "\n"
	    "    name: A Corp\n"
	    "    providers:\n"
	    "      - {name: corp, type: oidc, issuer: \"http://127.0.0.1:%u\", client_id: fb, "
	    "client_secret_file: %s}\n"
	    "      - {name: down, type: oidc, issuer: \"http://127.0.0.1:%u\", client_id: fb, "
	    "client_secret_file: %s}\n"
	    "      - {name: saml, type: saml, idp_metadata: %s, sp_key: %s, sp_cert: %s}\n"
	    "    mapping:\n"
	    "      - {provider: corp, fid: pairwise(claims.sub)}\n"
	    "      - {provider: down, fid: pairwise(claims.sub)}\n"
	    "      - {provider: saml, fid: pairwise(nameid)}\n"
	    "    return_to: [\"" APP "\"]\n"
	    "    clients:\n"
	    "      - {client_id: messenger, client_auth: client_secret_post, client_secret_file: "
	    "%s}\n",
	    fx.saml.key, fx.fid, fx.idp_port, fx.op_secret, fx.closed_port, fx.op_secret,
	    fx.saml.metadata, fx.saml.key, fx.saml.cert, fx.client);
	assert_true(n > 0 && (size_t)n < sizeof(conf));
	fx.conf = fb_conf_load_buffer(conf, (size_t)n, "test_login", fx.saml.dir, 0, &diags);
	if (fx.conf == NULL) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "conf: %s\n", diags.v[i].msg);
		fail();
	}
	assert_int_equal(fb_bridge_rules_load(fx.conf, &fx.rules, &diags), FB_OK);
	assert_int_equal(fb_store_open(&so, &fx.store, &err), FB_OK);
	fx.env.conf = fx.conf;
	fx.env.rules = fx.rules;
	fx.env.store = fx.store;
	if (fb_login_site_new(fx.conf, &fx.env.site, &err) != FB_OK) {
		fprintf(stderr, "site: %s\n", err.msg);
		fail();
	}
	fb_conf_diags_free(&diags);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)shutdown(fx.idp_fd, SHUT_RDWR); /* accept returns: the IdP's thread ends */
	(void)pthread_join(fx.idp_thread, NULL);
	close(fx.idp_fd);
	fb_login_site_free(fx.env.site);
	fb_store_close(fx.store);
	fb_rules_free(fx.rules);
	fb_conf_unref(fx.conf);
	(void)unlink(fx.fid);
	(void)unlink(fx.op_secret);
	(void)unlink(fx.client);
	saml_fixture_remove(&fx.saml);
	return 0;
}

/* ---- helpers ---- */

static struct fb_login_request
get(const char *path, const char *query, const char *cookie)
{
	return (struct fb_login_request){
		.method = "GET", .path = path, .query = query, .cookie = cookie
	};
}

static struct fb_login_request
post_form(const char *path, const char *body, const char *authorization)
{
	return (struct fb_login_request){ .method = "POST",
		.path = path,
		.content_type = "application/x-www-form-urlencoded",
		.authorization = authorization,
		.body = body,
		.body_len = strlen(body) };
}

/* The page's reason code (<code id="reason">), in out. */
static void
page_reason(const struct fb_login_response *r, char *out, size_t size)
{
	const char *p = r->body ? strstr(r->body, "<code id=\"reason\">") : NULL;
	const char *e;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen("<code id=\"reason\">");
	e = strchr(p, '<');
	(void)snprintf(out, size, "%.*s", e ? (int)(e - p) : 0, p);
}

static void
assert_page(const struct fb_login_response *r, unsigned status, const char *reason)
{
	char got[64];

	assert_int_equal(r->status, status);
	assert_non_null(r->content_type);
	assert_non_null(strstr(r->content_type, "text/html"));
	page_reason(r, got, sizeof(got));
	assert_string_equal(got, reason);
	assert_non_null(fb_login_response_get(r, "X-Correlation-Id"));
	assert_string_equal(fb_login_response_get(r, "Cache-Control"), "no-store");
}

/* An OAuth error: status, error, and an error_description from the table. */
static void
assert_oauth(const struct fb_login_response *r, unsigned status, const char *error)
{
	json_t *doc;
	const char *desc;
	bool from_table = false;

	if (r->status != status)
		fprintf(stderr, "answer: %u %.*s", r->status, (int)r->body_len, r->body);
	assert_int_equal(r->status, status);
	assert_string_equal(r->content_type, "application/json");
	doc = json_loadb(r->body, r->body_len, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "error")), error);
	desc = json_string_value(json_object_get(doc, "error_description"));
	assert_non_null(desc);
	for (int f = 0; f < FB_LOGIN_FAILURES; f++)
		from_table |=
		    strcmp(fb_login_failure_row((enum fb_login_failure)f)->text, desc) == 0;
	assert_true(from_table);
	json_decref(doc);
	if (status == HTTP_UNAUTHORIZED)
		assert_non_null(fb_login_response_get(r, "WWW-Authenticate"));
}

/* A cookie of the site's name for state, sealed from doc (consumed), as "name=value". */
static char *
sealed_cookie(const char *name, const char *purpose, json_t *doc)
{
	char *sealed = NULL, *cookie = NULL;

	assert_int_equal(login_seal(fx.env.site->k_state, purpose, doc, &sealed), FB_OK);
	assert_true(asprintf(&cookie, "other=1; %s=%s", name, sealed) > 0);
	free(sealed);
	json_decref(doc);
	return cookie;
}

static json_t *
login_state(const char *state, const char *provider, int64_t expires)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", TENANT, "s",
	    state, "n", "nonce", "v", "verifier-0123456789012345678901234567890123", "r", APP, "c",
	    "corr-of-the-test-login", "e", (json_int_t)expires);
}

/* ---- GET /login ---- */

static void
test_start(void **state)
{
	struct fb_login_response r = { 0 };
	struct fb_login_request q;
	const char *cookie, *location;

	(void)state;
	/* SAML: a cookie with the sealed state, and the browser to the IdP. */
	q = get("/login/saml", "return_to=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_FOUND);
	cookie = fb_login_response_get(&r, "Set-Cookie");
	location = fb_login_response_get(&r, "Location");
	assert_non_null(cookie);
	assert_non_null(location);
	assert_true(strncmp(cookie, "__Secure-fb_saml_", 17) == 0);
	assert_non_null(strstr(cookie, "HttpOnly"));
	assert_non_null(strstr(cookie, "Path=/saml/acs/saml"));
	assert_true(strncmp(location, "https://idp.a.example/sso?SAMLRequest=", 38) == 0);
	/* A return_to outside the allow-list, or none: refused, no cookie. */
	q = get("/login/saml", "return_to=https%3A%2F%2Fevil.example%2F", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_return_to");
	assert_null(fb_login_response_get(&r, "Set-Cookie"));
	q = get("/login/corp", "return_to=https%3A%2F%2Fapp.a.example%2Fcb%3Fcode%3Dx", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_return_to");
	q = get("/login/corp", NULL, NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_return_to");
	/* A provider nobody configured: 404. */
	q = get("/login/nope", "return_to=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_NOT_FOUND, "unknown_provider");
	/* OpenID Connect: the state sealed in a cookie named by it, the browser to the IdP. */
	q = get("/login/corp", "return_to=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_FOUND);
	cookie = fb_login_response_get(&r, "Set-Cookie");
	location = fb_login_response_get(&r, "Location");
	assert_non_null(cookie);
	assert_non_null(location);
	assert_true(strncmp(cookie, "__Secure-fb_login_", 18) == 0);
	assert_non_null(strstr(cookie, "Path=/oidc/callback"));
	assert_non_null(strstr(cookie, "SameSite=Lax"));
	assert_non_null(strstr(location, "/auth?"));
	assert_non_null(strstr(location, "code_challenge_method=S256"));
	/* Toward an IdP that does not answer: an outage, not a refusal. */
	q = get("/login/down", "return_to=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
	assert_int_equal(fb_login_start(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_GATEWAY, "unavailable");
	assert_null(fb_login_response_get(&r, "Set-Cookie"));
	fb_login_response_clear(&r);
}

/* ---- GET /oidc/callback ---- */

static void
test_callback(void **state)
{
	static const char st[] = "AAAAAAAAAAAAAAAAAAAAAA", other[] = "BBBBBBBBBBBBBBBBBBBBBA";
	struct fb_login_response r = { 0 };
	struct fb_login_request q;
	char cname[COOKIE_NAME_MAX], query[128], *cookie;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	login_cookie_name(fx.env.site, st, cname, sizeof(cname));
	/* No state, a malformed one, one without its cookie: bad_state. */
	q = get("/oidc/callback", "code=abc", NULL);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	q = get("/oidc/callback", "code=abc&state=short", NULL);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	(void)snprintf(query, sizeof(query), "code=abc&state=%s", st);
	q = get("/oidc/callback", query, NULL);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	assert_non_null(strstr(fb_login_response_get(&r, "Set-Cookie"), "Max-Age=0"));
	/* A forged cookie. */
	(void)snprintf(query, sizeof(query), "code=abc&state=%s", st);
	{
		char forged[256];
		(void)snprintf(
		    forged, sizeof(forged), "%s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", cname);
		q = get("/oidc/callback", query, forged);
		assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
		assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	}
	/* The cookie of another login (its state is not the answer's). */
	cookie = sealed_cookie(cname, "login", login_state(other, "corp", now + LOGIN_TTL));
	q = get("/oidc/callback", query, cookie);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	free(cookie);
	/* State sealed for another purpose (the SAML login's): not this login's. */
	cookie = sealed_cookie(cname, "saml login", login_state(st, "corp", now + LOGIN_TTL));
	q = get("/oidc/callback", query, cookie);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_state");
	free(cookie);
	/* Expired. */
	cookie = sealed_cookie(cname, "login", login_state(st, "corp", now - 1));
	q = get("/oidc/callback", query, cookie);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "expired");
	free(cookie);
	/* A good cookie, but the IdP's token endpoint (a closed port) cannot be reached: 502,
	 * not a refusal; the same answer again is a replay. */
	cookie = sealed_cookie(cname, "login", login_state(st, "corp", now + LOGIN_TTL));
	q = get("/oidc/callback", query, cookie);
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_GATEWAY, "unavailable");
	assert_null(strstr(r.body, "127.0.0.1")); /* the detail stays in the log */
	assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_FORBIDDEN, "state_replayed");
	free(cookie);
	fb_login_response_clear(&r);
}

/* The audit records in the store now. */
static size_t
audit_count(void)
{
	struct fb_audit_list l = { 0 };
	struct fb_err err = { 0 };
	size_t n = 0;
	int64_t after = 0;

	do {
		assert_int_equal(fb_store_audit_list(fx.store, after, 1000, &l, &err), FB_OK);
		n += l.n;
		if (l.n > 0)
			after = l.v[l.n - 1].id;
	} while (l.n > 0);
	fb_audit_list_free(&l);
	return n;
}

/* The value of one series in /metrics' text, 0 when absent. */
static unsigned long long
metric_value(const char *series)
{
	struct fb_buf b;
	const char *p;
	unsigned long long v = 0;

	fb_buf_init(&b, 1 << 20);
	fb_metrics_render(&b);
	assert_non_null(b.data);
	if ((p = strstr(b.data, series)) != NULL)
		v = strtoull(p + strlen(series), NULL, 10);
	fb_buf_free(&b);
	return v;
}

/* Lines of fd's file holding needle. */
static size_t
lines_with(int fd, const char *needle)
{
	char line[8192];
	size_t n = 0;
	FILE *f = fdopen(dup(fd), "r");

	assert_non_null(f);
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Refusals nothing vouches for: counted, a sample logged, none audited. */
static void
test_anonymous(void **state)
{
	enum { BAD_CALLBACKS = 250 };
	static const char series[] =
	    "fedbridge_anonymous_refusals_total{endpoint=\"login\",reason=\"bad_state\"} ";
	struct fb_login_response r = { 0 };
	struct fb_login_request q;
	const char *tmp = getenv("TMPDIR");
	char log_path[PATH_MAX_LEN];
	int log_fd, saved = dup(STDERR_FILENO);
	size_t audited = audit_count();
	unsigned long long counted = metric_value(series);

	(void)state;
	(void)snprintf(log_path, sizeof(log_path), "%s/test_login_log.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	log_fd = mkstemp(log_path);
	assert_true(log_fd >= 0 && saved >= 0);
	(void)unlink(log_path);
	/* The log goes to a file while the flood runs. */
	assert_int_equal(dup2(log_fd, STDERR_FILENO), STDERR_FILENO);
	fb_log_setup(FB_LOG_INFO, FB_LOG_TEXT);
	for (int i = 0; i < BAD_CALLBACKS; i++) {
		q = get("/oidc/callback", "code=made-up&state=AAAAAAAAAAAAAAAAAAAAAA", NULL);
		assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
		assert_int_equal(r.status, HTTP_BAD_REQUEST);
	}
	fb_log_setup(FB_LOG_ERROR, FB_LOG_TEXT);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	assert_int_equal(audit_count(), audited);
	assert_int_equal(metric_value(series), counted + BAD_CALLBACKS);
	{
		size_t logged = lines_with(log_fd, "(anonymous: not audited)");
		/* Every one, until the window's burst (earlier tests' refusals count too). */
		assert_true(logged >= 1 && logged <= ANONYMOUS_LOG_BURST);
	}
	close(log_fd);
	/* A refusal with a login of ours behind it is still audited: an expired state. */
	{
		static const char st[] = "CCCCCCCCCCCCCCCCCCCCCA";
		char cname[COOKIE_NAME_MAX], query[128], *cookie;
		login_cookie_name(fx.env.site, st, cname, sizeof(cname));
		(void)snprintf(query, sizeof(query), "code=abc&state=%s", st);
		cookie = sealed_cookie(
		    cname, "login", login_state(st, "corp", (int64_t)time(NULL) + LOGIN_TTL));
		q = get("/oidc/callback", query, cookie);
		assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
		/* The IdP cannot be reached (502: an outage, not audited); the replay is. */
		assert_int_equal(fb_login_oidc_callback(&fx.env, &q, &r), FB_OK);
		assert_page(&r, HTTP_FORBIDDEN, "state_replayed");
		free(cookie);
	}
	assert_int_equal(audit_count(), audited + 1);
	fb_login_response_clear(&r);
}

/* ---- POST /token ---- */

static void
test_token(void **state)
{
	struct fb_login_response r = { 0 };
	struct fb_login_request q;
	char body[1024], *code = NULL, *refresh = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *doc;

	(void)state;
	/* Not a form, a form that does not decode: invalid_request, without the parser's words. */
	q = post_form("/token", "grant_type=refresh_token", NULL);
	q.content_type = "application/json";
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	q = post_form("/token", "grant_type=%zz&client_id=messenger", NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	assert_null(strstr(r.body, "bad value encoding"));
	/* Bad client authentication: unknown client, wrong secret, two methods. */
	q = post_form("/token", "grant_type=refresh_token&client_id=nobody&client_secret=x", NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_UNAUTHORIZED, "invalid_client");
	assert_null(strstr(r.body, "unknown client"));
	q = post_form(
	    "/token", "grant_type=refresh_token&client_id=messenger&client_secret=x", NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_UNAUTHORIZED, "invalid_client");
	q = post_form("/token", "grant_type=refresh_token&client_secret=x", "Basic !!!!");
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_UNAUTHORIZED, "invalid_client");
	/* An unknown grant, none at all. */
	q = post_form(
	    "/token", "grant_type=password&client_id=messenger&client_secret=" CLIENT_SECRET, NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "unsupported_grant_type");
	q = post_form("/token", "client_id=messenger&client_secret=" CLIENT_SECRET, NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	/* A forged code, an expired one. */
	q = post_form("/token",
	    "grant_type=authorization_code&code=forged&redirect_uri=https%3A%2F%2Fapp.a.example%"
	    "2Fcb"
	    "&client_id=messenger&client_secret=" CLIENT_SECRET,
	    NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	assert_int_equal(login_code_new(fx.env.site, "AAAAAAAAAAAAAAAAAAAAAA", TENANT, APP,
	                     now - CODE_TTL - 1, &code),
	    FB_OK);
	(void)snprintf(body, sizeof(body),
	    "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Fapp.a.example%%"
	    "2Fcb"
	    "&client_id=messenger&client_secret=" CLIENT_SECRET,
	    code);
	q = post_form("/token", body, NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	free(code);
	/* A live code of a session that does not exist (ended): invalid_grant. */
	assert_int_equal(
	    login_code_new(fx.env.site, "AAAAAAAAAAAAAAAAAAAAAA", TENANT, APP, now, &code), FB_OK);
	(void)snprintf(body, sizeof(body),
	    "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Fapp.a.example%%"
	    "2Fcb"
	    "&client_id=messenger&client_secret=" CLIENT_SECRET,
	    code);
	q = post_form("/token", body, NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	free(code);
	/* A refresh token of a session that is over (revoked, or never was). */
	doc = json_pack("{s:s,s:s,s:s,s:I}", "sid", "BBBBBBBBBBBBBBBBBBBBBA", "t", TENANT, "cid",
	    "messenger", "iat", (json_int_t)now);
	assert_int_equal(login_seal(fx.env.site->k_refresh, "refresh", doc, &refresh), FB_OK);
	json_decref(doc);
	{
		struct fb_revocation rev = { .kind = FB_REVOCATION_SESSION,
			.value = "BBBBBBBBBBBBBBBBBBBBBA",
			.until = now + 3600,
			.reason = "test",
			.actor = "test" };
		struct fb_session sess = { .id = "BBBBBBBBBBBBBBBBBBBBBA",
			.fid = "fid-of-the-test",
			.tenant = TENANT,
			.provider = "corp",
			.issuer = "https://idp.a.example",
			.subject = "u-1",
			.attrs = "{}",
			.created = now,
			.last_seen = now,
			.expires = now + 3600 };
		struct fb_err err = { 0 };
		fb_rc rc = fb_store_session_put(fx.store, &sess, &err);
		if (rc == FB_OK)
			rc = fb_store_revoke(fx.store, &rev, now, NULL, &err);
		if (rc != FB_OK)
			fprintf(stderr, "session, revocation: %s\n", err.msg);
		assert_int_equal(rc, FB_OK);
	}
	(void)snprintf(body, sizeof(body),
	    "grant_type=refresh_token&refresh_token=%s&client_id=messenger&client_"
	    "secret=" CLIENT_SECRET,
	    refresh);
	q = post_form("/token", body, NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	q = post_form("/token",
	    "grant_type=refresh_token&refresh_token=forged&client_id=messenger&client_"
	    "secret=" CLIENT_SECRET,
	    NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	/* Token exchange: an access token is not taken; an ID token of no provider is refused,
	 * and why stays in the log. */
	q = post_form("/token",
	    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x"
	    "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
	    "&client_id=messenger&client_secret=" CLIENT_SECRET,
	    NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	q = post_form("/token",
	    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
	    "&subject_token=eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2V2aWwifQ."
	    "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token"
	    "&client_id=messenger&client_secret=" CLIENT_SECRET,
	    NULL);
	assert_int_equal(fb_login_token(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_grant");
	assert_null(strstr(r.body, "no provider"));
	/* /logout: a forged refresh token, an unauthenticated client. */
	q = post_form("/logout",
	    "refresh_token=forged&client_id=messenger&client_secret=" CLIENT_SECRET, NULL);
	assert_int_equal(fb_login_logout(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	(void)snprintf(
	    body, sizeof(body), "refresh_token=%s&client_id=messenger&client_secret=no", refresh);
	q = post_form("/logout", body, NULL);
	assert_int_equal(fb_login_logout(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_UNAUTHORIZED, "invalid_client");
	/* A session already over: ended again without an error (RFC 7009). */
	(void)snprintf(body, sizeof(body),
	    "refresh_token=%s&client_id=messenger&client_secret=" CLIENT_SECRET, refresh);
	q = post_form("/logout", body, NULL);
	assert_int_equal(fb_login_logout(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_OK);
	assert_non_null(strstr(r.body, "\"session_ended\":true"));
	free(refresh);
	fb_login_response_clear(&r);
}

/* ---- POST /oidc/backchannel-logout ---- */

static void
test_backchannel(void **state)
{
	static const char *const bodies[] = { "", "logout_token=", "logout_token=garbage",
		"logout_token=a.b.c", "logout_token=eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"logout_token=%zz", "logout_token=1&logout_token=2" };
	struct fb_login_response r = { 0 };
	struct fb_login_request q;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		q = post_form("/oidc/backchannel-logout", bodies[i], NULL);
		assert_int_equal(fb_login_backchannel_logout(&fx.env, &q, &r), FB_OK);
		assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	}
	q = post_form("/oidc/backchannel-logout", "logout_token=x", NULL);
	q.content_type = NULL;
	assert_int_equal(fb_login_backchannel_logout(&fx.env, &q, &r), FB_OK);
	assert_oauth(&r, HTTP_BAD_REQUEST, "invalid_request");
	/* A logout token of the provider whose IdP cannot be reached: its keys cannot be
	 * fetched, so it is not proven bad; 503 makes the IdP send it again. */
	{
		char payload[128], b64[192], body[512];
		size_t n = (size_t)snprintf(payload, sizeof(payload),
		    "{\"iss\":\"http://127.0.0.1:%u\",\"jti\":\"j\"}", fx.closed_port);
		assert_int_equal(
		    fb_b64url_encode((const unsigned char *)payload, n, b64, sizeof(b64)), FB_OK);
		(void)snprintf(body, sizeof(body),
		    "logout_token=eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.%s.c2ln", b64);
		q = post_form("/oidc/backchannel-logout", body, NULL);
		assert_int_equal(fb_login_backchannel_logout(&fx.env, &q, &r), FB_OK);
		assert_oauth(&r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable");
	}
	fb_login_response_clear(&r);
}

/* ---- GET /oidc/frontchannel-logout ---- */

/* Front-channel logout: iss and sid both required, of one of our OpenID Connect providers;
 * refusals are anonymous (counted, not audited); a good one revokes the IdP session. */
static void
test_frontchannel(void **state)
{
	static const char series[] = "fedbridge_anonymous_refusals_total{endpoint=\"front-channel "
	                             "logout\",reason=\"frontchannel_logout\"} ";
	struct fb_login_response r = { 0 };
	struct fb_login_request q;
	struct fb_err err = { 0 };
	enum fb_revocation_kind kind = FB_REVOCATION_NONE;
	char issuer[64], query[256], csp[128], missing_sid[96], unknown_iss[96], empty_sid[128];
	struct fb_revocation_query rq = { .issuer = issuer, .idp_session = "idp-sid-1" };
	int64_t now = (int64_t)time(NULL);
	size_t audited = audit_count();
	unsigned long long counted = metric_value(series);
	const char *bad[4];

	(void)state;
	(void)snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%u", fx.idp_port);
	(void)snprintf(
	    missing_sid, sizeof(missing_sid), "iss=http%%3A%%2F%%2F127.0.0.1%%3A%u", fx.idp_port);
	(void)snprintf(empty_sid, sizeof(empty_sid), "%s&sid=", missing_sid);
	(void)snprintf(
	    unknown_iss, sizeof(unknown_iss), "iss=https%%3A%%2F%%2Fother.example&sid=idp-sid-1");
	bad[0] = "sid=idp-sid-1"; /* no iss */
	bad[1] = missing_sid;
	bad[2] = empty_sid;
	bad[3] = unknown_iss;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q = get("/oidc/frontchannel-logout", bad[i], NULL);
		assert_int_equal(fb_login_frontchannel_logout(&fx.env, &q, &r), FB_OK);
		assert_page(&r, HTTP_BAD_REQUEST, "bad_logout_request");
	}
	q = get("/oidc/frontchannel-logout", NULL, NULL);
	assert_int_equal(fb_login_frontchannel_logout(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_logout_request");
	assert_int_equal(audit_count(), audited);
	assert_int_equal(metric_value(series), counted + sizeof(bad) / sizeof(bad[0]) + 1);
	assert_int_equal(fb_store_revoked(fx.store, &rq, now, &kind, &err), FB_OK);
	assert_int_equal(kind, FB_REVOCATION_NONE);

	/* The IdP's iframe: 200, framed by the issuer's origin only, the IdP session revoked
	 * and one audit record of it. */
	(void)snprintf(query, sizeof(query), "%s&sid=idp-sid-1", missing_sid);
	q = get("/oidc/frontchannel-logout", query, NULL);
	assert_int_equal(fb_login_frontchannel_logout(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_OK);
	assert_non_null(strstr(r.content_type, "text/html"));
	assert_string_equal(fb_login_response_get(&r, "Cache-Control"), "no-store");
	assert_string_equal(fb_login_response_get(&r, "X-Content-Type-Options"), "nosniff");
	(void)snprintf(csp, sizeof(csp), "default-src 'none'; frame-ancestors %s", issuer);
	assert_string_equal(fb_login_response_get(&r, "Content-Security-Policy"), csp);
	assert_null(strstr(r.body, "<script"));
	assert_int_equal(fb_store_revoked(fx.store, &rq, now, &kind, &err), FB_OK);
	assert_int_equal(kind, FB_REVOCATION_IDP_SESSION);
	assert_int_equal(audit_count(), audited + 1);
	fb_login_response_clear(&r);
}

/* ---- SAML ---- */

static void
test_saml(void **state)
{
	struct fb_login_response r = { 0 }, start = { 0 };
	struct fb_login_request q;
	char cookie[4096], body[256];
	const char *set, *eq, *semi, *handle;
	static const char *const responses[] = { "garbage", "!!!not base64!!!", "",
		"PHNhbWxwOlJlc3BvbnNlLz4=" /* <samlp:Response/> */ };

	(void)state;
	/* Metadata: of the one SAML provider, or named; another name is 404. */
	q = get("/saml/metadata", NULL, NULL);
	assert_int_equal(fb_login_saml_metadata(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_OK);
	assert_string_equal(r.content_type, "application/samlmetadata+xml");
	assert_non_null(strstr(r.body, "EntityDescriptor"));
	q = get("/saml/metadata/saml", NULL, NULL);
	assert_int_equal(fb_login_saml_metadata(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_OK);
	q = get("/saml/metadata/nope", NULL, NULL);
	assert_int_equal(fb_login_saml_metadata(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_NOT_FOUND);
	/* ACS: no form, no login in progress (unsolicited), an unknown provider. */
	q = post_form("/saml/acs/saml", "RelayState=x", NULL);
	assert_int_equal(fb_login_saml_acs(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_response");
	q = post_form("/saml/acs/saml", "SAMLResponse=garbage", NULL);
	assert_int_equal(fb_login_saml_acs(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "unsolicited");
	q.path = "/saml/acs/nope";
	assert_int_equal(fb_login_saml_acs(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_NOT_FOUND, "unknown_provider");
	/* With a login in progress: each broken response is refused (403), never accepted. */
	for (size_t i = 0; i < sizeof(responses) / sizeof(responses[0]); i++) {
		q = get("/login/saml", "return_to=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
		assert_int_equal(fb_login_start(&fx.env, &q, &start), FB_OK);
		assert_int_equal(start.status, HTTP_FOUND);
		set = fb_login_response_get(&start, "Set-Cookie");
		eq = strchr(set, '=');
		semi = strchr(set, ';');
		handle = set + strlen("__Secure-fb_saml_");
		(void)snprintf(cookie, sizeof(cookie), "%.*s", (int)(semi - set), set);
		{
			char *enc = NULL;
			size_t n = strlen(responses[i]);
			/* form-encode the response: base64's '+', '/' and '=' */
			enc = calloc(1, n * 3 + 1);
			assert_non_null(enc);
			for (size_t k = 0, o = 0; k < n; k++)
				o += (size_t)sprintf(
				    enc + o, "%%%02X", (unsigned char)responses[i][k]);
			(void)snprintf(body, sizeof(body), "SAMLResponse=%s&RelayState=%.*s", enc,
			    (int)(eq - handle), handle);
			free(enc);
		}
		q = post_form("/saml/acs/saml", body, NULL);
		q.cookie = cookie;
		assert_int_equal(fb_login_saml_acs(&fx.env, &q, &r), FB_OK);
		assert_int_equal(r.status, HTTP_FORBIDDEN);
		assert_null(fb_login_response_get(&r, "Location"));
		assert_non_null(strstr(fb_login_response_get(&r, "Set-Cookie"), "Max-Age=0"));
	}
	/* Single logout: an unsigned request, an unknown provider; SOAP garbage. */
	q = get("/saml/slo/saml", "SAMLRequest=garbage", NULL);
	assert_int_equal(fb_login_saml_slo(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_BAD_REQUEST, "bad_logout_request");
	q.path = "/saml/slo/nope";
	assert_int_equal(fb_login_saml_slo(&fx.env, &q, &r), FB_OK);
	assert_page(&r, HTTP_NOT_FOUND, "unknown_provider");
	q = post_form("/saml/slo/saml", "<soap/>", NULL);
	q.content_type = "text/xml";
	assert_int_equal(fb_login_saml_slo_soap(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_BAD_REQUEST);
	/* The IdP's answer to our logout: on to an allowed RelayState only. */
	q = get(
	    "/saml/slo/saml", "SAMLResponse=x&RelayState=https%3A%2F%2Fapp.a.example%2Fcb", NULL);
	assert_int_equal(fb_login_saml_slo(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_SEE_OTHER);
	assert_string_equal(fb_login_response_get(&r, "Location"), APP);
	q = get("/saml/slo/saml", "SAMLResponse=x&RelayState=https%3A%2F%2Fevil.example", NULL);
	assert_int_equal(fb_login_saml_slo(&fx.env, &q, &r), FB_OK);
	assert_int_equal(r.status, HTTP_OK);
	assert_null(fb_login_response_get(&r, "Location"));
	fb_login_response_clear(&start);
	fb_login_response_clear(&r);
}

/* ---- the failure table ---- */

static void
test_failure_table(void **state)
{
	static const char *const oauth_codes[] = { "invalid_request", "invalid_client",
		"invalid_grant", "unsupported_grant_type", "invalid_target",
		"temporarily_unavailable", "server_error", NULL };

	(void)state;
	for (int f = 0; f < FB_LOGIN_FAILURES; f++) {
		const struct fb_login_failure_row *row =
		    fb_login_failure_row((enum fb_login_failure)f);
		struct fb_login_response r = { 0 };
		bool known = false;

		assert_non_null(row);
		assert_non_null(row->code);
		assert_non_null(row->text);
		assert_true(row->text[0] != '\0');
		assert_null(strchr(row->text, '%')); /* never a format */
		assert_null(strchr(row->text, '\n'));
		if (row->outage)
			assert_true(row->status >= 500 && row->status < 600);
		else
			assert_true(row->status >= 400 && row->status < 500);
		assert_int_equal(login_failure_end((enum fb_login_failure)f),
		    row->outage ? LOGIN_UNAVAILABLE : LOGIN_REFUSED);
		if (row->oauth) {
			for (size_t i = 0; oauth_codes[i] != NULL; i++)
				known |= strcmp(oauth_codes[i], row->code) == 0;
			assert_true(known);
		}
		/* Answered as the row says. */
		assert_int_equal(
		    login_answer(&r, (enum fb_login_failure)f, NULL, "corr", NULL), FB_OK);
		assert_int_equal(r.status, row->status);
		assert_non_null(strstr(r.body, row->code));
		if (row->oauth) /* the public text is the error_description, as it is */
			assert_non_null(strstr(r.body, row->text));
		fb_login_response_clear(&r);
	}
	assert_null(fb_login_failure_row(FB_LOGIN_FAILURES));
	/* The same failure reads the same whatever the protocol. */
	assert_ptr_equal(fb_login_failure_row(FB_LOGIN_BAD_STATE)->text,
	    fb_login_failure_row(FB_LOGIN_UNSOLICITED)->text);
}

/* ---- the request's parts ---- */

static void
test_request_parts(void **state)
{
	struct fb_login_request q = { .cookie = "a=1; fb=\"two\";  c=3 ",
		.query = "x=1&y=a+b%2Fc&y=second&bad=%zz&nul=%00&e" };
	char *v;

	(void)state;
	assert_non_null(v = login_cookie(&q, "fb"));
	assert_string_equal(v, "two");
	free(v);
	assert_non_null(v = login_cookie(&q, "c"));
	assert_string_equal(v, "3");
	free(v);
	assert_null(login_cookie(&q, "b"));
	assert_null(login_cookie(&q, "f"));
	assert_non_null(v = login_query(&q, "y"));
	assert_string_equal(v, "a b/c"); /* the first one */
	free(v);
	assert_non_null(v = login_query(&q, "e"));
	assert_string_equal(v, "");
	free(v);
	assert_null(login_query(&q, "bad"));
	assert_null(login_query(&q, "nul"));
	assert_null(login_query(&q, "z"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_table),
		cmocka_unit_test(test_request_parts),
		cmocka_unit_test(test_start),
		cmocka_unit_test(test_callback),
		cmocka_unit_test(test_anonymous),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_backchannel),
		cmocka_unit_test(test_frontchannel),
		cmocka_unit_test(test_saml),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
