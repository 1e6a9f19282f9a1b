/*
 * Fuzz target for the login endpoints (login/): any bytes, split
 * into lines, as one request: method, path, query, cookie, content type,
 * authorization, then the body (the rest, newlines and all). It is routed
 * as the server routes it, against a fixed configuration: an OpenID
 * Connect provider whose IdP is a closed loopback port (nothing leaves the
 * machine), a SAML provider with a throwaway key, a /token client and a
 * memory store of its own. A cookie line "!oidc STATE JSON" or "!saml HANDLE JSON" is
 * sealed here under the site's key, so the fuzzer reaches past the login
 * state checks. Every answer must be one the failure table allows, or a
 * success; the files go at exit.
 */
#include "login_int.h" /* white box: forges sealed login states to reach the callback */
#include "saml_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FIELDS 6 /* method, path, query, cookie, content type, authorization */
#define CONF_MAX 4096
#define PATH_LEN 160
#define CLIENT_SECRET "messenger-secret-0123456789abcdefghijkl"

static struct {
	struct saml_fixture saml;
	char fid[PATH_LEN], op_secret[PATH_LEN], client[PATH_LEN];
	struct fb_conf *conf;
	struct fb_rules *rules;
	struct fb_login_env env;
	bool ready;
} fz;

/* Runs before the SAML fixture's own cleanup (atexit runs in reverse). */
static void
remove_files(void)
{
	(void)unlink(fz.fid);
	(void)unlink(fz.op_secret);
	(void)unlink(fz.client);
}

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

static void
setup(void)
{
	char conf[CONF_MAX];
	struct fb_conf_diags diags = { 0 };
	int n;

	fb_log_setup((enum fb_log_level)(FB_LOG_ERROR + 1), FB_LOG_TEXT); /* quiet */
	saml_fixture_init(&fz.saml);
	saml_fixture_metadata(&fz.saml, "https://idp.a.example");
	(void)snprintf(fz.fid, sizeof(fz.fid), "%s/fid.secret", fz.saml.dir);
	(void)snprintf(fz.op_secret, sizeof(fz.op_secret), "%s/op.secret", fz.saml.dir);
	(void)snprintf(fz.client, sizeof(fz.client), "%s/client.secret", fz.saml.dir);
	if (atexit(remove_files) != 0)
		abort();
	fixture_write(fz.fid, "fid-secret-0123456789abcdefghijklmnopqrstuv", 43, 0600);
	fixture_write(fz.op_secret, "op-secret-0123456789abcdef", 26, 0600);
	fixture_write(fz.client, CLIENT_SECRET, strlen(CLIENT_SECRET), 0600);
	n = snprintf(conf, sizeof(conf),
	    "installation: {name: installation_A, domain: a.example, public_url: "
	    "\"https://federation.a.example\", listen: \"127.0.0.1:8080\"}\n"
	    "keys: {signing: [%s], fid_secret: %s}\n"
	    "store: \"memory:\"\n"
	    "tenants:\n"
	    "  - id: HZnKEBoqDU\n"
	    "    name: A Corp\n"
	    "    providers:\n"
	    "      - {name: corp, type: oidc, issuer: \"http://127.0.0.1:%u\", client_id: fb, "
	    "client_secret_file: %s}\n"
	    "      - {name: saml, type: saml, idp_metadata: %s, sp_key: %s, sp_cert: %s, "
	    "allow_idp_initiated: true}\n"
	    "    mapping:\n"
	    "      - {provider: corp, fid: pairwise(claims.sub)}\n"
	    "      - {provider: saml, fid: pairwise(nameid)}\n"
	    "    return_to: [\"https://app.a.example/cb\"]\n"
	    "    clients:\n"
	    "      - {client_id: messenger, client_auth: client_secret_post, "
	    "client_secret_file: %s}\n"
	    "      - {client_id: basic, client_secret_file: %s}\n",
	    fz.saml.key, fz.fid, closed_port(), fz.op_secret, fz.saml.metadata, fz.saml.key,
	    fz.saml.cert, fz.client, fz.client);
	if (n < 0 || (size_t)n >= sizeof(conf))
		abort();
	fz.conf = fb_conf_load_buffer(conf, (size_t)n, "fuzz_login", fz.saml.dir, 0, &diags);
	if (fz.conf == NULL || fb_bridge_rules_load(fz.conf, &fz.rules, &diags) != FB_OK ||
	    fb_login_site_new(fz.conf, &fz.env.site, NULL) != FB_OK)
		abort();
	fb_conf_diags_free(&diags);
	fz.env.conf = fz.conf;
	fz.env.rules = fz.rules;
	fz.ready = true;
}

/* "!oidc STATE JSON" or "!saml HANDLE JSON": that login's cookie, sealed; else NULL. */
static char *
sealed_cookie(const char *line)
{
	bool oidc = strncmp(line, "!oidc ", 6) == 0;
	const char *name = line + 6, *sp;
	char cname[COOKIE_NAME_MAX], handle[CORRELATION_LEN + 1], *sealed = NULL, *cookie = NULL;
	json_t *doc;

	if ((!oidc && strncmp(line, "!saml ", 6) != 0) || (sp = strchr(name, ' ')) == NULL ||
	    (size_t)(sp - name) > CORRELATION_LEN)
		return NULL;
	(void)snprintf(handle, sizeof(handle), "%.*s", (int)(sp - name), name);
	if (oidc)
		login_cookie_name(fz.env.site, handle, cname, sizeof(cname));
	else /* as login_saml.c names it (https: __Secure-) */
		(void)snprintf(cname, sizeof(cname), "__Secure-fb_saml_%s", handle);
	if ((doc = json_loads(sp + 1, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return NULL;
	if (json_is_object(doc) &&
	    login_seal(fz.env.site->k_state, oidc ? "login" : "saml login", doc, &sealed) ==
	        FB_OK &&
	    asprintf(&cookie, "%s=%s", cname, sealed) < 0)
		cookie = NULL;
	json_decref(doc);
	free(sealed);
	return cookie;
}

/* Routes as server.c's login_route does (the method checks are the server's). */
static fb_rc
dispatch(const struct fb_login_request *q, struct fb_login_response *r)
{
	const char *p = q->path;
	bool post = strcmp(q->method, "POST") == 0;

	if (strcmp(p, "/token") == 0)
		return fb_login_token(&fz.env, q, r);
	if (strcmp(p, "/logout") == 0)
		return fb_login_logout(&fz.env, q, r);
	if (strcmp(p, "/oidc/backchannel-logout") == 0)
		return fb_login_backchannel_logout(&fz.env, q, r);
	if (strcmp(p, "/oidc/callback") == 0)
		return fb_login_oidc_callback(&fz.env, q, r);
	if (strncmp(p, "/saml/acs/", 10) == 0)
		return fb_login_saml_acs(&fz.env, q, r);
	if (strncmp(p, "/saml/slo/", 10) == 0)
		return post ? fb_login_saml_slo_soap(&fz.env, q, r)
		            : fb_login_saml_slo(&fz.env, q, r);
	if (strcmp(p, "/saml/metadata") == 0 || strncmp(p, "/saml/metadata/", 15) == 0)
		return fb_login_saml_metadata(&fz.env, q, r);
	if (strncmp(p, "/login/", 7) == 0)
		return fb_login_start(&fz.env, q, r);
	return FB_ERR_NOTFOUND;
}

/* What every answer must be: a status of the table, a success, or a redirect. */
static void
check(const struct fb_login_response *r)
{
	bool known = r->status == HTTP_OK || r->status == HTTP_FOUND || r->status == HTTP_SEE_OTHER;

	for (int f = 0; !known && f < FB_LOGIN_FAILURES; f++)
		known = fb_login_failure_row((enum fb_login_failure)f)->status == r->status;
	if (!known || (r->body == NULL) != (r->body_len == 0) ||
	    (r->body != NULL && r->body[r->body_len] != '\0') ||
	    fb_login_response_get(r, "Cache-Control") == NULL)
		__builtin_trap();
	/* A redirect says where to. */
	if ((r->status == HTTP_FOUND || r->status == HTTP_SEE_OTHER) &&
	    fb_login_response_get(r, "Location") == NULL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *field[FIELDS] = { 0 }, *p, *cookie = NULL;
	struct fb_login_request q;
	struct fb_login_response r = { 0 };
	struct fb_store_opts so = { .kind = FB_STORE_MEMORY };

	if (!fz.ready)
		setup();
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (size_t i = 0; i < FIELDS; i++) {
		char *nl = strchr(p, '\n');
		field[i] = p;
		if (nl == NULL) {
			p += strlen(p);
			continue;
		}
		*nl = '\0';
		p = nl + 1;
	}
	cookie = sealed_cookie(field[3]);
	q = (struct fb_login_request){ .method = field[0],
		.path = field[1],
		.query = field[2][0] ? field[2] : NULL,
		.cookie = cookie  ? cookie
		    : field[3][0] ? field[3]
		                  : NULL,
		.content_type = field[4][0] ? field[4] : NULL,
		.authorization = field[5][0] ? field[5] : NULL,
		.body = p,
		.body_len = size - (size_t)(p - copy) };
	/* A store per input: each input stands alone (a replay of it alone reproduces it), and
	 * nothing it keeps outlives it. */
	if (fb_store_open(&so, &fz.env.store, NULL) != FB_OK)
		abort();
	if (dispatch(&q, &r) == FB_OK)
		check(&r);
	fb_login_response_clear(&r);
	fb_store_close(fz.env.store);
	fz.env.store = NULL;
	free(cookie);
	free(copy);
	return 0;
}
