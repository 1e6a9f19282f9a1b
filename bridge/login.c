/*
 * Logins and the token endpoint: GET /login/<provider> sends the browser to
 * its IdP, GET /oidc/callback turns the IdP's answer into an identity, runs
 * the tenant's mapping, opens a session and sends the browser back to an
 * allow-listed return_to with a one-time code, which the messenger backend
 * redeems at POST /token for a refresh token and federation tokens.
 *
 * Nothing about a login in flight is kept on the server: the state, nonce
 * and PKCE verifier travel in a sealed cookie (AES-256-GCM), bound to the
 * browser, and the state is consumed once in the store. Codes and refresh
 * tokens are sealed the same way under their own keys; a code is consumed
 * once, a refresh token lives as long as its session (revoking the session
 * ends it).
 */
#include "server_int.h"

#include "fb_idp.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SEAL_KEY_LEN 32
#define SEAL_IV_LEN 12
#define SEAL_TAG_LEN 16
#define SEALED_MAX 4096
#define LOGIN_TTL 600 /* seconds a login may take at the IdP */
#define CODE_TTL 60 /* seconds the backend has to redeem a code */
#define RETURN_TO_MAX 2048
#define FORM_MAX_PARAMS 32
#define SCRATCH_BYTES ((size_t)256 * 1024)
#define CORRELATION_LEN 22

struct site_client {
	const struct fb_conf_client *c;
	const struct fb_conf_tenant *t;
	char *secret; /* client_secret_*; cleansed on free */
	struct fb_oidc_keys *keys; /* private_key_jwt */
};

struct fb_login_site {
	const struct fb_conf *conf; /* borrowed from the runtime */
	struct fb_oidc_rp **rps; /* one per oidc provider, in configuration order */
	const struct fb_conf_tenant **rp_tenants;
	size_t n_rps;
	struct site_client *clients;
	size_t n_clients;
	struct fb_saml_sp **sps; /* one per saml provider */
	const struct fb_conf_tenant **sp_tenants;
	size_t n_sps;
	unsigned char k_state[SEAL_KEY_LEN], k_code[SEAL_KEY_LEN], k_refresh[SEAL_KEY_LEN];
	char token_url[2200]; /* PUBLIC_URL/token: the aud of client assertions */
	bool secure; /* public_url is https: cookies are Secure and __Secure- (a __Host- cookie
	                would need Path=/) */
};

/* ---- keys and sealing ---- */

static fb_rc
derive(const unsigned char *secret, size_t len, const char *label, unsigned char out[SEAL_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[4];
	int ok;

	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, len);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label));
	p[3] = OSSL_PARAM_construct_end();
	ok = ctx != NULL && EVP_KDF_derive(ctx, out, SEAL_KEY_LEN, p) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? FB_OK : FB_ERR_CRYPTO;
}

/* b64url(iv || AES-256-GCM(json) || tag), with purpose as associated data. */
static fb_rc
seal(const unsigned char key[SEAL_KEY_LEN], const char *purpose, json_t *plain, char **out)
{
	unsigned char *buf = NULL;
	char *text = json_dumps(plain, JSON_COMPACT), *enc = NULL;
	size_t n = text ? strlen(text) : 0, total;
	EVP_CIPHER_CTX *ctx = NULL;
	int len = 0, fin = 0;
	fb_rc rc = FB_ERR_CRYPTO;

	*out = NULL;
	if (text == NULL || n > SEALED_MAX)
		goto done;
	total = SEAL_IV_LEN + n + SEAL_TAG_LEN;
	if ((buf = malloc(total)) == NULL ||
	    (enc = malloc(FB_B64URL_ENCODED_LEN(total) + 1)) == NULL)
		goto done;
	if (fb_random_bytes(buf, SEAL_IV_LEN) != FB_OK || (ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
	    EVP_EncryptUpdate(
	        ctx, NULL, &len, (const unsigned char *)purpose, (int)strlen(purpose)) != 1 ||
	    EVP_EncryptUpdate(ctx, buf + SEAL_IV_LEN, &len, (const unsigned char *)text, (int)n) !=
	        1 ||
	    EVP_EncryptFinal_ex(ctx, buf + SEAL_IV_LEN + len, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, buf + SEAL_IV_LEN + n) !=
	        1)
		goto done;
	(void)fb_b64url_encode(buf, total, enc, FB_B64URL_ENCODED_LEN(total) + 1);
	*out = enc;
	enc = NULL;
	rc = FB_OK;
done:
	EVP_CIPHER_CTX_free(ctx);
	if (text != NULL)
		fb_cleanse(text, n);
	free(text);
	free(buf);
	free(enc);
	return rc;
}

/* The JSON object sealed in text, or NULL when it was not sealed by key for purpose. */
static json_t *
unseal(const unsigned char key[SEAL_KEY_LEN], const char *purpose, const char *text)
{
	size_t len = text ? strlen(text) : 0, n = 0;
	unsigned char *buf = NULL, *plain = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	json_t *doc = NULL;
	int out = 0, fin = 0;

	if (len == 0 || len > FB_B64URL_ENCODED_LEN(SEALED_MAX + SEAL_IV_LEN + SEAL_TAG_LEN))
		return NULL;
	if ((buf = malloc(len)) == NULL || fb_b64url_decode(text, len, buf, len, &n) != FB_OK ||
	    n <= SEAL_IV_LEN + SEAL_TAG_LEN || (plain = malloc(n)) == NULL)
		goto done;
	n -= SEAL_IV_LEN + SEAL_TAG_LEN;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
	    EVP_DecryptUpdate(
	        ctx, NULL, &out, (const unsigned char *)purpose, (int)strlen(purpose)) != 1 ||
	    EVP_DecryptUpdate(ctx, plain, &out, buf + SEAL_IV_LEN, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, buf + SEAL_IV_LEN + n) !=
	        1 ||
	    EVP_DecryptFinal_ex(ctx, plain + out, &fin) != 1)
		goto done;
	doc = json_loadb((const char *)plain, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		doc = NULL;
	}
done:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL)
		fb_cleanse(plain, n);
	free(plain);
	free(buf);
	return doc;
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t
jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* ---- the site ---- */

void
fb_login_site_free(struct fb_login_site *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_rps; i++)
		fb_oidc_rp_free(s->rps[i]);
	for (size_t i = 0; i < s->n_sps; i++)
		fb_saml_sp_free(s->sps[i]);
	free(s->sps);
	free(s->sp_tenants);
	for (size_t i = 0; i < s->n_clients; i++) {
		fb_oidc_keys_free(s->clients[i].keys);
		if (s->clients[i].secret != NULL) {
			fb_cleanse(s->clients[i].secret, strlen(s->clients[i].secret));
			free(s->clients[i].secret);
		}
	}
	free(s->rps);
	free(s->rp_tenants);
	free(s->clients);
	fb_cleanse(s, sizeof(*s));
	free(s);
}

static fb_rc
read_client_secret(const char *path, char **out, struct fb_err *err)
{
	size_t len = 0;

	if (fb_file_read(path, 4096, out, &len, err) != FB_OK)
		return err ? err->rc : FB_ERR_IO;
	while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
		(*out)[--len] = '\0';
	if (len < 32)
		return FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: a client secret needs at least 32 bytes", path);
	return FB_OK;
}

static fb_rc
read_client_keys(const char *path, struct fb_oidc_keys **out, struct fb_err *err)
{
	char *text = NULL;
	size_t len = 0;
	fb_rc rc;

	if ((rc = fb_file_read(path, 262144, &text, &len, err)) != FB_OK)
		return rc;
	rc = fb_oidc_keys_parse(text, len, out, err);
	free(text);
	if (rc == FB_OK && fb_oidc_keys_count(*out) == 0) {
		fb_oidc_keys_free(*out);
		*out = NULL;
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "%s: no RSA or EC signing key", path);
	}
	return rc;
}

fb_rc
fb_login_site_new(const struct fb_conf *conf, struct fb_login_site **out, struct fb_err *err)
{
	struct fb_login_site *s = calloc(1, sizeof(*s));
	char redirect[2200], *secret = NULL;
	size_t n_oidc = 0, n_saml = 0, n_clients = 0, len = 0;
	fb_rc rc = FB_OK;

	*out = NULL;
	if (s == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	s->conf = conf;
	s->secure = strncmp(conf->installation.public_url, "https://", 8) == 0;
	for (size_t t = 0; t < conf->n_tenants; t++) {
		n_clients += conf->tenants[t].n_clients;
		for (size_t i = 0; i < conf->tenants[t].n_providers; i++) {
			n_oidc += conf->tenants[t].providers[i].type == FB_PROVIDER_OIDC;
			n_saml += conf->tenants[t].providers[i].type == FB_PROVIDER_SAML;
		}
	}
	s->rps = calloc(n_oidc ? n_oidc : 1, sizeof(struct fb_oidc_rp *));
	s->rp_tenants = calloc(n_oidc ? n_oidc : 1, sizeof(const struct fb_conf_tenant *));
	s->clients = calloc(n_clients ? n_clients : 1, sizeof(*s->clients));
	s->sps = calloc(n_saml ? n_saml : 1, sizeof(struct fb_saml_sp *));
	s->sp_tenants = calloc(n_saml ? n_saml : 1, sizeof(const struct fb_conf_tenant *));
	if (s->rps == NULL || s->rp_tenants == NULL || s->clients == NULL || s->sps == NULL ||
	    s->sp_tenants == NULL) {
		fb_login_site_free(s);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	/* Login state, codes and refresh tokens are sealed under keys derived from the fid
	 * secret, each for its own purpose: one secret file for the admin to keep. */
	if (fb_file_read(conf->keys.fid_secret, 4096, &secret, &len, err) != FB_OK) {
		fb_login_site_free(s);
		fb_err_prefix(err, "keys.fid_secret");
		return FB_ERR_CONFIG;
	}
	if (derive((unsigned char *)secret, len, "fedbridge login state v1", s->k_state) != FB_OK ||
	    derive((unsigned char *)secret, len, "fedbridge authorization code v1", s->k_code) !=
	        FB_OK ||
	    derive((unsigned char *)secret, len, "fedbridge refresh token v1", s->k_refresh) !=
	        FB_OK)
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "HKDF failed");
	fb_cleanse(secret, len);
	free(secret);
	(void)snprintf(
	    redirect, sizeof(redirect), "%s/oidc/callback", conf->installation.public_url);
	(void)snprintf(
	    s->token_url, sizeof(s->token_url), "%s/token", conf->installation.public_url);
	for (size_t t = 0; rc == FB_OK && t < conf->n_tenants; t++) {
		const struct fb_conf_tenant *ten = &conf->tenants[t];
		for (size_t i = 0; rc == FB_OK && i < ten->n_providers; i++) {
			struct fb_oidc_rp_opts o = { .provider = &ten->providers[i],
				.redirect_uri = redirect,
				.skew = conf->tokens.clock_skew,
				.refetch_min = conf->keys.refetch_min };
			if (ten->providers[i].type == FB_PROVIDER_SAML) {
				s->sp_tenants[s->n_sps] = ten;
				if ((rc = fb_saml_sp_new(&ten->providers[i],
				         conf->installation.public_url, &s->sps[s->n_sps], err)) ==
				    FB_OK)
					s->n_sps++;
				continue;
			}
			s->rp_tenants[s->n_rps] = ten;
			if ((rc = fb_oidc_rp_new(&o, &s->rps[s->n_rps], err)) == FB_OK)
				s->n_rps++;
		}
		for (size_t i = 0; rc == FB_OK && i < ten->n_clients; i++) {
			struct site_client *c = &s->clients[s->n_clients];
			c->c = &ten->clients[i];
			c->t = ten;
			if (c->c->secret_file != NULL &&
			    (rc = read_client_secret(c->c->secret_file, &c->secret, err)) != FB_OK)
				fb_err_prefix(err, "client %s", c->c->client_id);
			if (rc == FB_OK && c->c->jwks != NULL &&
			    (rc = read_client_keys(c->c->jwks, &c->keys, err)) != FB_OK)
				fb_err_prefix(err, "client %s: jwks", c->c->client_id);
			s->n_clients++;
		}
	}
	if (rc != FB_OK) {
		fb_login_site_free(s);
		return rc;
	}
	*out = s;
	return FB_OK;
}

/* ---- responses ---- */

static void
correlation_new(char out[CORRELATION_LEN + 1])
{
	unsigned char r[16];

	if (fb_random_bytes(r, sizeof(r)) != FB_OK ||
	    fb_b64url_encode(r, sizeof(r), out, CORRELATION_LEN + 1) != FB_OK)
		(void)snprintf(out, CORRELATION_LEN + 1, "%lld", (long long)time(NULL));
}

static void
html_escape(struct fb_buf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '&':
			(void)fb_buf_printf(b, "&amp;");
			break;
		case '<':
			(void)fb_buf_printf(b, "&lt;");
			break;
		case '>':
			(void)fb_buf_printf(b, "&gt;");
			break;
		case '"':
			(void)fb_buf_printf(b, "&quot;");
			break;
		case '\'':
			(void)fb_buf_printf(b, "&#39;");
			break;
		default:
			(void)fb_buf_append(b, s, 1);
		}
	}
}

static enum MHD_Result
queue(struct MHD_Connection *conn, unsigned status, const char *ctype, const char *body, size_t len,
    const char *const *headers)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (ctype != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
		if (headers[i + 1] != NULL)
			(void)MHD_add_response_header(r, headers[i], headers[i + 1]);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * The page a refused or failed login ends on: what happened in plain words,
 * the reason code, and the correlation id that finds the audit record. It
 * shows no claim value and nothing the IdP sent.
 */
static enum MHD_Result
error_page(struct MHD_Connection *conn, unsigned status, const char *code, const char *what,
    const char *corr, const char *clear_cookie)
{
	static const char csp[] = "default-src 'none'; style-src 'unsafe-inline'";
	const char *headers[] = { "X-Correlation-Id", corr, "Content-Security-Policy", csp,
		"X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer",
		MHD_HTTP_HEADER_SET_COOKIE, clear_cookie, NULL };
	struct fb_buf b;
	enum MHD_Result ret;

	fb_buf_init(&b, 16384);
	(void)fb_buf_printf(&b,
	    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>Login failed</title></head>\n<body style=\"font-family:sans-serif;max-width:"
	    "40em;margin:3em auto\">\n<h1>Login failed</h1>\n<p>");
	html_escape(&b, what);
	(void)fb_buf_printf(&b, "</p>\n<p>Reason: <code id=\"reason\">");
	html_escape(&b, code);
	(void)fb_buf_printf(&b,
	    "</code></p>\n<p>If you ask your administrator for help, give them this reference: "
	    "<code id=\"correlation\">");
	html_escape(&b, corr);
	(void)fb_buf_printf(&b, "</code></p>\n</body></html>\n");
	ret = b.data ? queue(conn, status, "text/html; charset=utf-8", b.data, b.len, headers)
	             : MHD_NO;
	fb_buf_free(&b);
	return ret;
}

static void
audit(struct fb_store *store, enum fb_audit_kind kind, const char *corr, const char *tenant,
    const char *fid, const char *provider, const char *audience, const char *rule,
    const char *detail)
{
	struct fb_audit_record rec = { .time = (int64_t)time(NULL),
		.kind = kind,
		.correlation = corr,
		.tenant = tenant,
		.fid = fid,
		.provider = provider,
		.audience = audience,
		.rule = rule,
		.detail = detail };
	struct fb_err err = { 0 };

	/* Every login ends in one audit record: the metrics count there too. */
	if (kind == FB_AUDIT_LOGIN_ALLOWED || kind == FB_AUDIT_LOGIN_REFUSED)
		fb_metric_count(FB_METRIC_LOGIN, provider ? provider : "-",
		    kind == FB_AUDIT_LOGIN_ALLOWED ? "allowed" : "refused");
	if (kind == FB_AUDIT_LOGIN_REFUSED)
		fb_metric_count(FB_METRIC_REFUSAL, rule ? rule : "-", NULL);
	if (fb_store_audit_append(store, &rec, NULL, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "audit [%s]: not recorded: %s", corr, err.msg);
	}
}

static void
audit_token(struct fb_store *store, const char *corr, const struct fb_session *sess,
    const char *aud, const char *jti, const char *detail)
{
	struct fb_audit_record rec = { .time = (int64_t)time(NULL),
		.kind = FB_AUDIT_TOKEN_ISSUED,
		.correlation = corr,
		.tenant = sess->tenant,
		.fid = sess->fid,
		.provider = sess->provider,
		.audience = aud,
		.jti = jti,
		.detail = detail };
	struct fb_err err = { 0 };

	fb_metric_count(FB_METRIC_TOKEN, aud, NULL);
	if (fb_store_audit_append(store, &rec, NULL, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "audit [%s]: not recorded: %s", corr, err.msg);
	}
}

/* The jti of a token this bridge just signed (its payload is ours: no check needed). */
static void
token_jti(const char *tok, char *out, size_t size)
{
	const char *a = strchr(tok, '.'), *b = a ? strchr(a + 1, '.') : NULL;
	size_t len = a && b ? (size_t)(b - a - 1) : 0, n = 0;
	unsigned char *raw = len ? malloc(len) : NULL;
	json_t *doc = NULL;

	(void)snprintf(out, size, "-");
	if (raw != NULL && fb_b64url_decode(a + 1, len, raw, len, &n) == FB_OK &&
	    (doc = json_loadb((const char *)raw, n, 0, NULL)) != NULL &&
	    json_is_string(json_object_get(doc, "jti")))
		(void)snprintf(out, size, "%s", json_string_value(json_object_get(doc, "jti")));
	json_decref(doc);
	free(raw);
}

/* A login asked to come back somewhere the tenant does not allow: logged, audited, a page. */
static enum MHD_Result
refuse_return_to(struct MHD_Connection *conn, struct fb_store *store,
    const struct fb_conf_tenant *t, const char *provider, const char *return_to, const char *corr)
{
	fb_log(FB_LOG_WARN, "login [%s]: provider %s: return_to %s", corr, provider,
	    return_to ? "not in the tenant's allow-list" : "missing");
	audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL, "return_to",
	    return_to ? "not in the allow-list" : "missing");
	return error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_return_to",
	    "The application that sent you here asked to come back to an address this site does "
	    "not allow.",
	    corr, NULL);
}

/* How long a revocation must be kept: past every token and session it can affect. */
static int64_t
revocation_until(const struct fb_conf *conf, int64_t now)
{
	return now +
	    (conf->tokens.session_ttl > conf->tokens.max_ttl ? conf->tokens.session_ttl
	                                                     : conf->tokens.max_ttl);
}

/* ---- return_to ---- */

/*
 * An allow-listed URL exactly, or followed by a query string: no prefix or
 * host games (user info, other ports, paths below, backslashes, fragments).
 */
static bool
return_to_allowed(const struct fb_conf_tenant *t, const char *r)
{
	size_t len = strlen(r);

	if (len == 0 || len > RETURN_TO_MAX || !fb_utf8_valid(r, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)r[i] <= 0x20 || r[i] == 0x7f || r[i] == '\\' || r[i] == '#')
			return false;
	for (size_t i = 0; i < t->return_to.n; i++) {
		size_t n = strlen(t->return_to.v[i]);
		if (strncmp(r, t->return_to.v[i], n) == 0 && (r[n] == '\0' || r[n] == '?') &&
		    strchr(t->return_to.v[i], '?') == NULL)
			return true;
	}
	return false;
}

/* ---- GET /login/<provider> ---- */

static struct fb_oidc_rp *
find_rp(const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant)
{
	for (size_t i = 0; i < s->n_rps; i++) {
		if (strcmp(fb_oidc_rp_provider(s->rps[i])->name, name) == 0) {
			*tenant = s->rp_tenants[i];
			return s->rps[i];
		}
	}
	return NULL;
}

static void
cookie_name(const struct fb_login_site *s, const char *state, char *out, size_t size)
{
	(void)snprintf(out, size, "%sfb_login_%s", s->secure ? "__Secure-" : "", state);
}

void
fb_login_site_refresh(struct fb_login_site *s, int64_t now)
{
	for (size_t i = 0; s != NULL && i < s->n_sps; i++) {
		struct fb_err err = { 0 };
		bool changed = false;
		if (fb_saml_sp_refresh(s->sps[i], now, &changed, &err) != FB_OK) {
			fb_metric_count(FB_METRIC_IDP_REFRESH_FAILURE,
			    fb_saml_sp_provider(s->sps[i])->name, NULL);
			fb_log(FB_LOG_WARN, "%s", err.msg);
		} else if (changed)
			fb_log(FB_LOG_INFO, "provider %s: the IdP's metadata was fetched again",
			    fb_saml_sp_provider(s->sps[i])->name);
	}
}

/* ---- SAML: GET /login/<provider>, GET /saml/metadata, POST /saml/acs/<provider> ---- */

static struct fb_saml_sp *
find_sp(const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant)
{
	for (size_t i = 0; i < s->n_sps; i++) {
		if (strcmp(fb_saml_sp_provider(s->sps[i])->name, name) == 0) {
			*tenant = s->sp_tenants[i];
			return s->sps[i];
		}
	}
	return NULL;
}

static void
saml_cookie_name(const struct fb_login_site *s, const char *handle, char *out, size_t size)
{
	(void)snprintf(out, size, "%sfb_saml_%s", s->secure ? "__Secure-" : "", handle);
}

static bool return_to_allowed(const struct fb_conf_tenant *t, const char *r);

/*
 * The SP-initiated login: a signed AuthnRequest by HTTP-Redirect. What the
 * ACS must know (the request ID, provider, tenant, return_to, deadline)
 * travels sealed in a cookie named after a random RelayState. The IdP posts
 * its answer cross-site, so the cookie is SameSite=None (and Secure on https).
 */
static enum MHD_Result
saml_start(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const char *return_to, const char *corr)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = find_sp(rt->login, provider, &t);
	struct fb_err err = { 0 };
	char handle[CORRELATION_LEN + 1], cname[80], *url = NULL, *rid = NULL, *sealed = NULL;
	char *cookie = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;

	if (return_to == NULL || !return_to_allowed(t, return_to))
		return refuse_return_to(conn, store, t, provider, return_to, corr);
	correlation_new(handle);
	if (fb_saml_sp_authn_request(sp, handle, &url, &rid, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "login [%s]: provider %s: %s", corr, provider, err.msg);
		return error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "The login could not be started.", corr, NULL);
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", t->id, "h", handle,
	    "rid", rid, "r", return_to, "c", corr, "e", (json_int_t)now + LOGIN_TTL);
	saml_cookie_name(rt->login, handle, cname, sizeof(cname));
	if (st == NULL || seal(rt->login->k_state, "saml login", st, &sealed) != FB_OK ||
	    asprintf(&cookie, "%s=%s; Path=/saml/acs/%s; Max-Age=%d; HttpOnly; SameSite=None%s",
	        cname, sealed, provider, LOGIN_TTL, rt->login->secure ? "; Secure" : "") < 0) {
		cookie = NULL;
		ret = error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "The login could not be started.", corr, NULL);
	} else {
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, url, MHD_HTTP_HEADER_SET_COOKIE,
			cookie, "X-Correlation-Id", corr, NULL };
		fb_log(FB_LOG_INFO, "login [%s]: provider %s: AuthnRequest %s to the IdP", corr,
		    provider, rid);
		ret = queue(conn, MHD_HTTP_FOUND, NULL, "", 0, headers);
	}
	json_decref(st);
	free(sealed);
	free(cookie);
	free(url);
	free(rid);
	return ret;
}

enum MHD_Result
fb_login_saml_metadata(struct MHD_Connection *conn, struct runtime *rt, const char *provider)
{
	static const char ctype[] = "application/samlmetadata+xml";
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = NULL;
	const char *xml;

	if (provider != NULL)
		sp = find_sp(rt->login, provider, &t);
	else if (rt->login->n_sps == 1)
		sp = rt->login->sps[0];
	if (sp == NULL)
		return queue(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
		    "no such SAML provider: use /saml/metadata/<provider>\n",
		    sizeof("no such SAML provider: use /saml/metadata/<provider>\n") - 1, NULL);
	xml = fb_saml_sp_metadata(sp);
	return queue(conn, MHD_HTTP_OK, ctype, xml, strlen(xml), NULL);
}

enum MHD_Result
fb_login_start(
    struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store, const char *provider)
{
	const char *return_to =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "return_to");
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_login l;
	struct fb_oidc_rp *rp;
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], cname[64], *url = NULL, *sealed = NULL, *cookie = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;

	correlation_new(corr);
	if (find_sp(rt->login, provider, &t) != NULL)
		return saml_start(conn, rt, store, provider, return_to, corr);
	if ((rp = find_rp(rt->login, provider, &t)) == NULL) {
		fb_log(FB_LOG_INFO, "login [%s]: no provider %.64s", corr, provider);
		return error_page(conn, MHD_HTTP_NOT_FOUND, "unknown_provider",
		    "This login address names no identity provider of this site.", corr, NULL);
	}
	if (return_to == NULL || !return_to_allowed(t, return_to))
		return refuse_return_to(conn, store, t, provider, return_to, corr);
	if (fb_oidc_login_new(&l, &err) != FB_OK ||
	    fb_oidc_rp_auth_url(rp, &l, now, &url, &err) != FB_OK) {
		fb_metric_count(FB_METRIC_IDP_REFRESH_FAILURE, provider, NULL);
		fb_log(FB_LOG_ERROR, "login [%s]: provider %s: %s", corr, provider, err.msg);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL,
		    "unavailable", err.msg);
		return error_page(conn, MHD_HTTP_BAD_GATEWAY, "unavailable",
		    "Your identity provider cannot be reached right now. Try again in a minute.",
		    corr, NULL);
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", t->id, "s", l.state,
	    "n", l.nonce, "v", l.verifier, "r", return_to, "c", corr, "e",
	    (json_int_t)now + LOGIN_TTL);
	cookie_name(rt->login, l.state, cname, sizeof(cname));
	if (st == NULL || seal(rt->login->k_state, "login", st, &sealed) != FB_OK ||
	    asprintf(&cookie, "%s=%s; Path=/oidc/callback; Max-Age=%d; HttpOnly; SameSite=Lax%s",
	        cname, sealed, LOGIN_TTL, rt->login->secure ? "; Secure" : "") < 0) {
		cookie = NULL;
		ret = error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
		    "The login could not be started.", corr, NULL);
	} else {
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, url, MHD_HTTP_HEADER_SET_COOKIE,
			cookie, "X-Correlation-Id", corr, NULL };
		fb_log(FB_LOG_INFO, "login [%s]: provider %s: to the IdP", corr, provider);
		ret = queue(conn, MHD_HTTP_FOUND, NULL, "", 0, headers);
	}
	json_decref(st);
	fb_cleanse(&l, sizeof(l));
	free(sealed);
	free(cookie);
	free(url);
	return ret;
}

/* ---- GET /oidc/callback ---- */

/* The session's record of the mapping: its attributes and the audiences it may get. */
static char *
session_outcome(const struct fb_principal *p, const char *corr)
{
	json_t *doc = json_object(), *auds = json_array(),
	       *attrs = fb_principal_attrs_json(p, NULL);
	char *text = NULL;

	for (size_t i = 0; auds != NULL && i < p->n_trusts; i++)
		for (size_t k = 0; p->trusts[i].outbound && k < p->trusts[i].trust->tenants.n; k++)
			(void)json_array_append_new(
			    auds, json_string(p->trusts[i].trust->tenants.v[k]));
	/* The login's correlation id travels in the session's tokens (cid), so the relay
	 * decisions about them, at home and at the remote, name the login. */
	if (doc != NULL && attrs != NULL && auds != NULL &&
	    json_object_set(doc, "attrs", attrs) == 0 &&
	    json_object_set(doc, "audiences", auds) == 0 &&
	    json_object_set_new(doc, "login", json_string(corr)) == 0)
		text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(attrs);
	json_decref(auds);
	json_decref(doc);
	return text;
}

/* A one-time code for the backend: the session, where it goes, and a value consumed once. */
static fb_rc
code_new(const struct fb_login_site *s, const char *sid, const char *tenant, const char *return_to,
    int64_t now, char **out)
{
	char jti[CORRELATION_LEN + 1];
	json_t *c;
	fb_rc rc;

	correlation_new(jti);
	c = json_pack("{s:s,s:s,s:s,s:s,s:I}", "sid", sid, "t", tenant, "r", return_to, "j", jti,
	    "e", (json_int_t)now + CODE_TTL);
	rc = c ? seal(s->k_code, "code", c, out) : FB_ERR_NOMEM;
	json_decref(c);
	return rc;
}

static char *
join_amr(json_t *claims)
{
	json_t *amr = json_object_get(claims, "amr");
	size_t i;
	json_t *v;

	if (!json_is_array(amr))
		return NULL;
	json_array_foreach(amr, i, v) if (!json_is_string(v)) return NULL;
	return json_dumps(amr, JSON_COMPACT);
}

/* A session opened by a login: what the store holds, and what it borrows from. */
struct opened {
	struct fb_session sess; /* fid..subject borrowed; amr and attrs owned */
	struct fb_principal p;
	struct fb_expr_scratch *scratch;
};

static void
opened_clear(struct opened *o)
{
	free(o->sess.amr);
	free(o->sess.attrs);
	fb_principal_clear(&o->p);
	fb_expr_scratch_free(o->scratch);
	memset(o, 0, sizeof(*o));
}

/*
 * identity -> mapping -> session, the same for a browser login and a token
 * exchange. NULL when the session is open; else the reason ("mapping",
 * "refused", "revoked", "session"), already logged and audited.
 */
/* What a login established, whatever the protocol (all borrowed). */
struct login_facts {
	const char *tenant, *provider;
	const struct fb_identity *id;
	json_t *claims; /* OpenID Connect; NULL for SAML */
	const json_t *attrs; /* SAML attributes; NULL for OpenID Connect */
	const char *nameid; /* SAML */
	int64_t expires_cap; /* the IdP's limit on the session (SessionNotOnOrAfter); 0: none */
};

static const char *
open_session(struct runtime *rt, struct fb_store *store, const struct login_facts *f,
    const char *corr, struct opened *o)
{
	const char *tenant = f->tenant, *provider = f->provider;
	const struct fb_identity *id = f->id;
	json_t *claims = f->claims;
	struct fb_login in = { .tenant = tenant,
		.provider = provider,
		.issuer = id->issuer,
		.subject = id->subject,
		.claims = claims,
		.attrs = f->attrs,
		.nameid = f->nameid };
	struct fb_session *sess = &o->sess;
	enum fb_revocation_kind rk = FB_REVOCATION_NONE;
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	const char *why;

	if (fb_expr_scratch_new(SCRATCH_BYTES, &o->scratch) != FB_OK ||
	    fb_mapping_run(rt->rules, &in, o->scratch, &o->p, NULL, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "login [%s]: mapping: %s", corr, err.msg);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL, "mapping",
		    err.msg);
		return "mapping";
	}
	if (!o->p.allowed) {
		fb_log(FB_LOG_INFO, "login [%s]: refused by %s: %s", corr,
		    o->p.rule ? o->p.rule : "mapping", o->p.reason);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL,
		    o->p.rule ? o->p.rule : "mapping", o->p.reason);
		return "refused";
	}
	sess->fid = o->p.fid;
	sess->tenant = (char *)tenant; /* borrowed for the put: the store copies */
	sess->provider = (char *)provider;
	sess->issuer = id->issuer;
	sess->subject = id->subject;
	sess->idp_session = id->idp_session;
	sess->acr = (char *)jstr(claims, "acr");
	sess->amr = join_amr(claims);
	sess->attrs = session_outcome(&o->p, corr);
	sess->created = sess->last_seen = now;
	sess->expires = now + rt->conf->tokens.session_ttl;
	if (f->expires_cap > 0 && f->expires_cap < sess->expires)
		sess->expires = f->expires_cap;
	sess->idle_timeout = rt->conf->tokens.session_idle;
	if (fb_session_id_new(sess->id) != FB_OK || sess->attrs == NULL ||
	    fb_store_session_revoked(store, sess, now, &rk, &err) != FB_OK ||
	    rk != FB_REVOCATION_NONE || fb_store_session_put(store, sess, &err) != FB_OK) {
		why = rk != FB_REVOCATION_NONE ? "revoked" : "session";
		fb_log(FB_LOG_WARN, "login [%s]: %s: %s", corr, why,
		    rk != FB_REVOCATION_NONE ? fb_revocation_kind_name(rk) : err.msg);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, o->p.fid, provider, NULL, why,
		    rk != FB_REVOCATION_NONE ? fb_revocation_kind_name(rk) : err.msg);
		return why;
	}
	{
		char detail[64];
		(void)snprintf(detail, sizeof(detail), "session %s", sess->id);
		audit(store, FB_AUDIT_LOGIN_ALLOWED, corr, tenant, o->p.fid, provider, NULL,
		    o->p.fid_source, detail);
	}
	/* Personal data only where the configuration allows (log.attributes). */
	fb_log(FB_LOG_INFO, "login [%s]: %s logged in through %s (session %.6s…)%s%s", corr,
	    o->p.fid, provider, sess->id, rt->conf->log.attributes ? ", attributes " : "",
	    rt->conf->log.attributes ? sess->attrs : "");
	return NULL;
}

enum MHD_Result
fb_login_oidc_callback(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store)
{
	struct fb_oidc_response resp = {
		.code = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code"),
		.state = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "state"),
		.iss = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "iss"),
		.error = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "error"),
		.error_description =
		    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "error_description"),
	};
	struct fb_oidc_outcome out = { 0 };
	struct fb_oidc_login l;
	struct opened opened = { 0 };
	struct fb_err err = { 0 };
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_rp *rp;
	const char *why;
	char corr[CORRELATION_LEN + 1], cname[64], clear[128], *code = NULL, *location = NULL;
	const char *sealed, *provider, *return_to, *tenant;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;
	bool first = false, down;
	size_t slen = resp.state ? strlen(resp.state) : 0;

	memset(&l, 0, sizeof(l));
	/* The state names the cookie; one that cannot be a state is refused before any lookup. */
	if (slen != FB_OIDC_STATE_LEN ||
	    strspn(resp.state,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789-_") != slen) {
		correlation_new(corr);
		fb_log(FB_LOG_WARN, "login [%s]: callback without a valid state", corr);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, NULL, NULL, NULL, NULL, "bad_state",
		    resp.state ? "malformed state" : "no state");
		return error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_state",
		    "This page was reached without a login in progress.", corr, NULL);
	}
	cookie_name(rt->login, resp.state, cname, sizeof(cname));
	(void)snprintf(clear, sizeof(clear), "%s=; Path=/oidc/callback; Max-Age=0; HttpOnly%s",
	    cname, rt->login->secure ? "; Secure" : "");
	sealed = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, cname);
	st = unseal(rt->login->k_state, "login", sealed);
	if (st != NULL)
		(void)snprintf(corr, sizeof(corr), "%s", jstr(st, "c") ? jstr(st, "c") : "");
	else
		correlation_new(corr);
	provider = jstr(st, "p");
	return_to = jstr(st, "r");
	tenant = jstr(st, "t");
	if (st == NULL || provider == NULL || return_to == NULL || tenant == NULL ||
	    jstr(st, "s") == NULL || strcmp(jstr(st, "s"), resp.state) != 0 ||
	    jint(st, "e") < now) {
		fb_log(FB_LOG_WARN, "login [%s]: callback: %s", corr,
		    st == NULL ? "no login in progress in this browser for this state"
		               : "the login expired");
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL,
		    "bad_state", st == NULL ? "unknown state" : "expired");
		ret = error_page(conn, MHD_HTTP_BAD_REQUEST, st == NULL ? "bad_state" : "expired",
		    st == NULL ? "No login is in progress in this browser for this answer of the "
		                 "identity provider. Start again from your application."
		               : "The login took too long. Start again from your application.",
		    corr, clear);
		goto done;
	}
	/* Consumed once across every bridge node: a replayed answer stops here. A store
	 * that does not answer is not a replay: the user is told to try again. */
	down = fb_store_once_consume(store, FB_ONCE_OIDC_STATE, resp.state, jint(st, "e"), now,
	           &first, &err) != FB_OK;
	if (down || !first) {
		fb_log(FB_LOG_WARN, "login [%s]: callback: %s", corr,
		    down ? err.msg : "state already used (a replayed answer)");
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL,
		    down ? "unavailable" : "state_replayed",
		    down ? "store unavailable" : "state used before");
		ret = error_page(conn, down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST,
		    down ? "unavailable" : "state_replayed",
		    down ? "The login could not be completed. Try again in a minute."
		         : "This answer of the identity provider was already used. Start again "
		           "from your application.",
		    corr, clear);
		goto done;
	}
	if ((rp = find_rp(rt->login, provider, &t)) == NULL || strcmp(t->id, tenant) != 0) {
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL,
		    "unknown_provider", "the provider left the configuration");
		ret = error_page(conn, MHD_HTTP_BAD_REQUEST, "unknown_provider",
		    "This identity provider is no longer configured here.", corr, clear);
		goto done;
	}
	(void)snprintf(l.state, sizeof(l.state), "%s", jstr(st, "s"));
	(void)snprintf(l.nonce, sizeof(l.nonce), "%s", jstr(st, "n") ? jstr(st, "n") : "");
	(void)snprintf(l.verifier, sizeof(l.verifier), "%s", jstr(st, "v") ? jstr(st, "v") : "");
	if (fb_oidc_rp_finish(rp, &l, &resp, now, &out, &err) != FB_OK) {
		const char *step = fb_oidc_failure_name(out.failure);
		bool unavailable = out.failure == FB_OIDC_UNAVAILABLE;

		if (unavailable)
			fb_metric_count(FB_METRIC_IDP_REFRESH_FAILURE, provider, NULL);
		fb_log(FB_LOG_WARN, "login [%s]: provider %s: refused (%s): %s", corr, provider,
		    step, err.msg);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, tenant, NULL, provider, NULL, step,
		    err.msg);
		ret =
		    error_page(conn, unavailable ? MHD_HTTP_BAD_GATEWAY : MHD_HTTP_FORBIDDEN, step,
		        unavailable
		            ? "Your identity provider cannot be reached right now. Try again in a "
		              "minute."
		            : out.failure == FB_OIDC_IDP_ERROR
		            ? "Your identity provider did not log you in."
		            : "The answer of your identity provider could not be accepted.",
		        corr, clear);
		goto done;
	}

	{
		struct login_facts facts = { .tenant = tenant,
			.provider = provider,
			.id = out.identity,
			.claims = out.claims };
		why = open_session(rt, store, &facts, corr, &opened);
	}
	if (why == NULL &&
	    (code_new(rt->login, opened.sess.id, tenant, return_to, now, &code) != FB_OK ||
	        asprintf(&location, "%s%ccode=%s", return_to, strchr(return_to, '?') ? '&' : '?',
	            code) < 0)) {
		location = NULL;
		why = "session";
	}
	if (why != NULL) {
		bool revoked = strcmp(why, "revoked") == 0, refused = strcmp(why, "refused") == 0;
		ret = error_page(conn,
		    revoked || refused || strcmp(why, "mapping") == 0
		        ? MHD_HTTP_FORBIDDEN
		        : MHD_HTTP_SERVICE_UNAVAILABLE,
		    why,
		    refused       ? "Your organisation's rules do not let this account federate."
		        : revoked ? "This account's federation access has been revoked."
		        : strcmp(why, "mapping") == 0
		        ? "Your account could not be mapped to a federation identity."
		        : "The login could not be completed. Try again in a minute.",
		    corr, clear);
		goto done;
	}
	{
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, location,
			MHD_HTTP_HEADER_SET_COOKIE, clear, "X-Correlation-Id", corr, NULL };
		ret = queue(conn, MHD_HTTP_SEE_OTHER, NULL, "", 0, headers);
	}
done:
	fb_cleanse(&l, sizeof(l));
	opened_clear(&opened);
	free(code);
	free(location);
	fb_oidc_outcome_clear(&out);
	json_decref(st);
	return ret;
}

/* ---- POST /token ---- */

/* An RFC 6749 5.2 error. */
static enum MHD_Result
oauth_error(struct MHD_Connection *conn, unsigned status, const char *code, const char *desc,
    const char *corr)
{
	const char *headers[] = { "Pragma", "no-cache", "X-Correlation-Id", corr,
		status == MHD_HTTP_UNAUTHORIZED ? MHD_HTTP_HEADER_WWW_AUTHENTICATE : NULL,
		"Basic realm=\"fedbridge\"", NULL };
	struct fb_buf b;
	enum MHD_Result ret;

	fb_buf_init(&b, 4096);
	(void)fb_buf_printf(&b, "{\"error\":\"%s\",\"error_description\":", code);
	(void)fb_buf_append_json_string(&b, desc);
	(void)fb_buf_printf(&b, "}\n");
	ret = b.data ? queue(conn, status, "application/json", b.data, b.len, headers) : MHD_NO;
	fb_buf_free(&b);
	return ret;
}

static bool
same_secret(const char *a, const char *b)
{
	size_t n = strlen(a);

	return b != NULL && n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* Splits "Basic base64(enc(id):enc(secret))" (RFC 6749 2.3.1) into decoded parts. */
static bool
basic_credentials(const char *h, struct fb_form *out)
{
	size_t len, n;
	unsigned char *raw;
	char *colon, *body;
	int dec;
	bool ok;

	while (*h == ' ')
		h++;
	len = strlen(h);
	if (len == 0 || len > 4096 || len % 4 != 0 || (raw = malloc(len + 1)) == NULL)
		return false;
	dec = EVP_DecodeBlock(raw, (const unsigned char *)h, (int)len);
	if (dec < 0) {
		free(raw);
		return false;
	}
	n = (size_t)dec;
	while (n > 0 && h[len - 1] == '=' && (len--, true))
		n--; /* EVP_DecodeBlock counts padding as zero bytes */
	raw[n] = '\0';
	if (memchr(raw, '\0', n) != NULL || (colon = strchr((char *)raw, ':')) == NULL) {
		fb_cleanse(raw, n);
		free(raw);
		return false;
	}
	/* id:secret as a form "client_id=id&client_secret=secret", each part form-encoded. */
	*colon = '\0';
	ok = asprintf(&body, "client_id=%s&client_secret=%s", (char *)raw, colon + 1) >= 0;
	fb_cleanse(raw, n);
	free(raw);
	if (!ok)
		return false;
	ok = strchr(body + 10, '&') == strstr(body, "&client_secret=") &&
	    fb_form_parse(body, strlen(body), out, NULL) == FB_OK;
	fb_cleanse(body, strlen(body));
	free(body);
	return ok;
}

static char *peek_claim(const char *token, const char *name);

/*
 * private_key_jwt (RFC 7523 2.2): the assertion names its client (sub), is
 * signed by one of that client's keys, is for this endpoint, and is used
 * once.
 */
static const struct site_client *
client_by_assertion(const struct fb_login_site *s, struct fb_store *store, const struct fb_form *f,
    const char **why)
{
	static const char jwt_bearer[] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
	const char *type = fb_form_get(f, "client_assertion_type"),
	           *id = fb_form_get(f, "client_id");
	const char *assertion = fb_form_get(f, "client_assertion");
	const struct site_client *c = NULL;
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	json_t *claims = NULL;
	char *sub;
	bool first = false;

	if (type == NULL || strcmp(type, jwt_bearer) != 0) {
		*why = "client_assertion_type must be jwt-bearer";
		return NULL;
	}
	if ((sub = peek_claim(assertion, "sub")) == NULL) {
		*why = "client_assertion: not a JWT naming its client (sub)";
		return NULL;
	}
	for (size_t i = 0; i < s->n_clients && c == NULL; i++)
		if (strcmp(s->clients[i].c->client_id, sub) == 0)
			c = &s->clients[i];
	free(sub);
	if (c == NULL || (id != NULL && strcmp(id, c->c->client_id) != 0)) {
		*why =
		    c == NULL ? "unknown client" : "client_id differs from the assertion's client";
		return NULL;
	}
	if (c->c->auth != FB_CLIENT_AUTH_PRIVATE_KEY_JWT || c->keys == NULL) {
		*why = "this client must use its configured authentication method";
		return NULL;
	}
	if (fb_oidc_client_assertion_validate(c->keys, assertion, c->c->client_id, s->token_url,
	        now, s->conf->tokens.clock_skew, &claims, &err) != FB_OK) {
		fb_log(FB_LOG_WARN, "token: client %s: %s", c->c->client_id, err.msg);
		*why = "client_assertion refused (see the log)";
		return NULL;
	}
	if (fb_store_once_consume(store, FB_ONCE_CLIENT_ASSERTION, jstr(claims, "jti"),
	        jint(claims, "exp") + s->conf->tokens.clock_skew, now, &first, &err) != FB_OK) {
		*why = "the store is unavailable";
		c = NULL;
	} else if (!first) {
		*why = "client_assertion replayed";
		c = NULL;
	}
	json_decref(claims);
	return c;
}

/* Finds and authenticates the client; NULL (with *why) when it is not one of ours. */
static const struct site_client *
client_authenticate(struct MHD_Connection *conn, const struct fb_login_site *s,
    struct fb_store *store, const struct fb_form *f, const char **why)
{
	const char *auth =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *id, *secret;
	struct fb_form basic = { 0 };
	const struct site_client *c = NULL;
	enum fb_conf_client_auth used;

	if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
		if (fb_form_get(f, "client_secret") != NULL ||
		    fb_form_get(f, "client_assertion") != NULL) {
			*why = "more than one client authentication";
			return NULL;
		}
		if (!basic_credentials(auth + 6, &basic)) {
			*why = "malformed Basic credentials";
			return NULL;
		}
		id = fb_form_get(&basic, "client_id");
		secret = fb_form_get(&basic, "client_secret");
		used = FB_CLIENT_AUTH_SECRET_BASIC;
		if (fb_form_get(f, "client_id") != NULL &&
		    strcmp(fb_form_get(f, "client_id"), id) != 0) {
			fb_form_clear(&basic);
			*why = "client_id differs from the authenticated client";
			return NULL;
		}
	} else if (fb_form_get(f, "client_assertion") != NULL) {
		return client_by_assertion(s, store, f, why);
	} else {
		id = fb_form_get(f, "client_id");
		secret = fb_form_get(f, "client_secret");
		used = FB_CLIENT_AUTH_SECRET_POST;
	}
	for (size_t i = 0; id != NULL && i < s->n_clients && c == NULL; i++)
		if (strcmp(s->clients[i].c->client_id, id) == 0)
			c = &s->clients[i];
	if (c == NULL || c->c->auth != used || c->secret == NULL ||
	    !same_secret(c->secret, secret)) {
		*why = c == NULL ? "unknown client"
		    : c->c->auth != used
		    ? "this client must use its configured authentication method"
		    : "bad client secret";
		c = NULL;
	}
	fb_form_clear(&basic);
	return c;
}

/* The trust of tenant t that covers remote tenant aud, or NULL. */
static const struct fb_conf_trust *
trust_for(const struct fb_conf_tenant *t, const char *aud)
{
	for (size_t k = 0; k < t->n_trusts; k++)
		for (size_t i = 0; i < t->trusts[k].tenants.n; i++)
			if (strcmp(t->trusts[k].tenants.v[i], aud) == 0)
				return &t->trusts[k];
	return NULL;
}

/* What the trust releases of the session's attributes (a new object). */
static json_t *
released(json_t *attrs, const struct fb_conf_trust *tr)
{
	json_t *out = json_object(), *v;

	for (size_t i = 0; out != NULL && i < tr->release.n; i++)
		if ((v = json_object_get(attrs, tr->release.v[i])) != NULL)
			(void)json_object_set(out, tr->release.v[i], v);
	return out;
}

/*
 * The token response for a live session: one federation token per audience
 * the session's outbound decisions allow (or only want, when the request
 * names one), plus the refresh token when one is given.
 */
static enum MHD_Result
token_response(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct fb_session *sess, const char *want, const char *refresh, const char *issued_type,
    const char *corr)
{
	const struct fb_conf_tenant *t = fb_conf_tenant_find(rt->conf, sess->tenant);
	json_t *outcome = json_loads(sess->attrs ? sess->attrs : "{}", 0, NULL);
	json_t *auds = json_object_get(outcome, "audiences"), *attrs, *toks = json_object(), *v;
	json_t *resp = NULL;
	const char *first = NULL;
	char *body = NULL;
	size_t i;
	int64_t now = (int64_t)time(NULL);
	enum MHD_Result ret;

	attrs = json_object_get(outcome, "attrs");
	json_array_foreach(auds, i, v)
	{
		const char *aud = json_string_value(v);
		const struct fb_conf_trust *tr = t && aud ? trust_for(t, aud) : NULL;
		struct fb_err err = { 0 };
		json_t *rel;
		char *tok = NULL;
		if (tr == NULL || (want != NULL && strcmp(want, aud) != 0))
			continue;
		rel = released(attrs, tr);
		struct fb_issue_request req = { .tenant = sess->tenant,
			.fid = sess->fid,
			.audience = aud,
			.sid = sess->id,
			.cid = json_string_value(json_object_get(outcome, "login")),
			.attrs = rel && json_object_size(rel) ? rel : NULL,
			.now = now };
		if (fb_federation_issue(rt->fed, &req, &tok, &err) != FB_OK) {
			fb_log(FB_LOG_ERROR, "token [%s]: %s for %s: %s", corr, sess->fid, aud,
			    err.msg);
		} else {
			char jti[64], detail[64];
			(void)json_object_set_new(toks, aud, json_string(tok));
			token_jti(tok, jti, sizeof(jti));
			(void)snprintf(detail, sizeof(detail), "session %s", sess->id);
			audit_token(store, corr, sess, aud, jti, detail);
			if (first == NULL)
				first = json_string_value(json_object_get(toks, aud));
		}
		json_decref(rel);
		free(tok);
	}
	if (first == NULL) {
		json_decref(outcome);
		json_decref(toks);
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST,
		    want ? "invalid_target" : "invalid_grant",
		    want ? "this user gets no token for that audience"
		         : "the outbound policy gives this user no remote tenant",
		    corr);
	}
	resp = json_pack("{s:s,s:s,s:I,s:s,s:O}", "access_token", first, "token_type", "Fed",
	    "expires_in", (json_int_t)rt->conf->tokens.ttl, "fid", sess->fid, "federation_tokens",
	    toks);
	if (resp != NULL && refresh != NULL)
		(void)json_object_set_new(resp, "refresh_token", json_string(refresh));
	if (resp != NULL && issued_type != NULL) /* RFC 8693 2.2.1 */
		(void)json_object_set_new(resp, "issued_token_type", json_string(issued_type));
	body = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	{
		const char *headers[] = { "Pragma", "no-cache", "X-Correlation-Id", corr, NULL };
		ret = body
		    ? queue(conn, MHD_HTTP_OK, "application/json", body, strlen(body), headers)
		    : MHD_NO;
	}
	json_decref(resp);
	json_decref(outcome);
	json_decref(toks);
	free(body);
	return ret;
}

/* Why a grant was refused when the store did not answer (compared by address). */
static const char STORE_DOWN[] = "the store is unavailable";

/* The session, if it is live and not revoked; *why otherwise (STORE_DOWN: no answer). */
static bool
session_live(
    struct fb_store *store, const char *sid, int64_t now, struct fb_session *out, const char **why)
{
	enum fb_revocation_kind rk = FB_REVOCATION_NONE;
	struct fb_err err = { 0 };
	fb_rc rc =
	    sid == NULL ? FB_ERR_NOTFOUND : fb_store_session_touch(store, sid, now, out, &err);

	if (rc == FB_OK)
		rc = fb_store_session_revoked(store, out, now, &rk, &err);
	if (rc != FB_OK && rc != FB_ERR_NOTFOUND) {
		fb_log(FB_LOG_WARN, "session: %s", err.msg);
		*why = STORE_DOWN;
	} else if (rc == FB_ERR_NOTFOUND)
		*why = "the session has ended";
	else if (rk != FB_REVOCATION_NONE)
		*why = "the session was revoked";
	return *why == NULL;
}

/* A grant refused because the store did not answer: 503, so the client retries and keeps its
 * user; invalid_grant would tell it the session is over. */
static enum MHD_Result
grant_refused(struct MHD_Connection *conn, const char *why, const char *corr)
{
	if (why == STORE_DOWN)
		return oauth_error(
		    conn, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", why, corr);
	return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_grant", why, corr);
}

static enum MHD_Result
grant_code(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	const char *code = fb_form_get(f, "code"), *redirect = fb_form_get(f, "redirect_uri");
	struct fb_session sess = { 0 };
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	json_t *doc = unseal(rt->login->k_code, "code", code), *rt_doc = NULL;
	const char *why = NULL;
	char *refresh = NULL;
	enum MHD_Result ret;
	bool first = false;

	if (doc == NULL || jint(doc, "e") < now || jstr(doc, "j") == NULL)
		why = doc == NULL ? "not a code of this bridge" : "the code expired";
	else if (jstr(doc, "t") == NULL || strcmp(jstr(doc, "t"), c->t->id) != 0)
		why = "the code was issued to another tenant";
	else if (redirect == NULL || jstr(doc, "r") == NULL ||
	    strcmp(redirect, jstr(doc, "r")) != 0)
		why = "redirect_uri is not the return_to of the login";
	else if (fb_store_once_consume(store, FB_ONCE_AUTH_CODE, jstr(doc, "j"), jint(doc, "e"),
	             now, &first, &err) != FB_OK)
		why = STORE_DOWN;
	else if (!first)
		why = "the code was used before";
	if (why == NULL && session_live(store, jstr(doc, "sid"), now, &sess, &why)) {
		rt_doc = json_pack("{s:s,s:s,s:s,s:I}", "sid", sess.id, "t", c->t->id, "cid",
		    c->c->client_id, "iat", (json_int_t)now);
		if (rt_doc == NULL ||
		    seal(rt->login->k_refresh, "refresh", rt_doc, &refresh) != FB_OK)
			why = "internal error";
	}
	if (why != NULL) {
		fb_log(FB_LOG_WARN, "token [%s]: authorization_code refused: %s", corr, why);
		ret = grant_refused(conn, why, corr);
	} else {
		ret = token_response(
		    conn, rt, store, &sess, fb_form_get(f, "audience"), refresh, NULL, corr);
	}
	fb_session_clear(&sess);
	json_decref(doc);
	json_decref(rt_doc);
	free(refresh);
	return ret;
}

static enum MHD_Result
grant_refresh(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	json_t *doc = unseal(rt->login->k_refresh, "refresh", fb_form_get(f, "refresh_token"));
	struct fb_session sess = { 0 };
	const char *why = NULL;
	enum MHD_Result ret;

	if (doc == NULL)
		why = "not a refresh token of this bridge";
	else if (jstr(doc, "cid") == NULL || strcmp(jstr(doc, "cid"), c->c->client_id) != 0)
		why = "the refresh token was issued to another client";
	if (why == NULL)
		(void)session_live(store, jstr(doc, "sid"), (int64_t)time(NULL), &sess, &why);
	if (why != NULL) {
		fb_log(FB_LOG_INFO, "token [%s]: refresh_token refused: %s", corr, why);
		ret = grant_refused(conn, why, corr);
	} else {
		/* Syncless: the outcome of the login's mapping stands until the session ends. */
		ret = token_response(
		    conn, rt, store, &sess, fb_form_get(f, "audience"), NULL, NULL, corr);
	}
	fb_session_clear(&sess);
	json_decref(doc);
	return ret;
}

static char *peek_issuer(const char *token);

#define GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TOKEN_TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define TOKEN_TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"

/*
 * RFC 8693: the backend holds the user's ID token from one of its tenant's
 * providers and gets federation tokens without a browser. The ID token is
 * validated as at a login (no nonce: none was sent) and mapped the same way,
 * into a new session; no refresh token is given (the backend can exchange a
 * fresh ID token).
 */
static enum MHD_Result
grant_exchange(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	const char *subject = fb_form_get(f, "subject_token");
	const char *type = fb_form_get(f, "subject_token_type");
	const char *want = fb_form_get(f, "requested_token_type");
	const struct fb_conf_provider *prov = NULL;
	const char *down = NULL; /* the provider whose keys could not be fetched */
	struct fb_identity *id = NULL;
	struct opened opened = { 0 };
	struct fb_err err = { 0 };
	const char *why = NULL;
	char *iss = NULL, detail[FB_ERR_MSG_MAX];
	json_t *claims = NULL, *sid;
	enum MHD_Result ret;

	if (subject == NULL || type == NULL)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "subject_token and subject_token_type are required", corr);
	if (strcmp(type, TOKEN_TYPE_ID_TOKEN) != 0)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "subject_token_type must be " TOKEN_TYPE_ID_TOKEN, corr);
	if (want != NULL && strcmp(want, TOKEN_TYPE_JWT) != 0)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "requested_token_type can only be " TOKEN_TYPE_JWT, corr);
	if (fb_form_get(f, "actor_token") != NULL)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "delegation (actor_token) is not supported", corr);
	iss = peek_issuer(subject);
	(void)snprintf(
	    detail, sizeof(detail), "no provider of tenant %s has that issuer", c->t->id);
	for (size_t i = 0; iss != NULL && i < rt->login->n_rps && claims == NULL; i++) {
		const struct fb_conf_provider *p = fb_oidc_rp_provider(rt->login->rps[i]);
		if (rt->login->rp_tenants[i] != c->t || strcmp(p->issuer, iss) != 0)
			continue;
		fb_rc vrc = fb_oidc_rp_validate_id_token(
		    rt->login->rps[i], subject, NULL, (int64_t)time(NULL), &claims, &err);
		if (vrc == FB_OK)
			prov = p;
		else {
			(void)snprintf(detail, sizeof(detail), "%s", err.msg);
			down = vrc == FB_ERR_IO ? p->name : NULL;
		}
	}
	if (prov == NULL) {
		fb_log(FB_LOG_WARN, "token [%s]: token exchange refused: %s", corr, detail);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, c->t->id, NULL, NULL, NULL,
		    down ? "unavailable" : "id_token", detail);
		free(iss);
		if (down != NULL) {
			/* The IdP's keys could not be fetched: try again later, the token may be
			 * good. */
			fb_metric_count(FB_METRIC_IDP_REFRESH_FAILURE, down, NULL);
			return oauth_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "temporarily_unavailable", detail, corr);
		}
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_grant", detail, corr);
	}
	sid = json_object_get(claims, "sid");
	if (fb_identity_new(prov->name, prov->issuer, jstr(claims, "sub"),
	        json_is_string(sid) ? json_string_value(sid) : NULL, &id, &err) != FB_OK)
		why = "id_token";
	else {
		struct login_facts facts = {
			.tenant = c->t->id, .provider = prov->name, .id = id, .claims = claims
		};
		why = open_session(rt, store, &facts, corr, &opened);
	}
	if (why != NULL)
		ret = oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_grant",
		    strcmp(why, "refused") == 0       ? "the tenant's rules refuse this user"
		        : strcmp(why, "revoked") == 0 ? "this user's federation access is revoked"
		                                      : "the user could not be mapped",
		    corr);
	else
		ret = token_response(conn, rt, store, &opened.sess, fb_form_get(f, "audience"),
		    NULL, TOKEN_TYPE_JWT, corr);
	opened_clear(&opened);
	fb_identity_free(id);
	json_decref(claims);
	free(iss);
	return ret;
}

static bool
form_content_type(struct MHD_Connection *conn)
{
	const char *ct =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	static const char want[] = "application/x-www-form-urlencoded";

	return ct != NULL && strncasecmp(ct, want, sizeof(want) - 1) == 0 &&
	    (ct[sizeof(want) - 1] == '\0' || ct[sizeof(want) - 1] == ';');
}

enum MHD_Result
fb_login_token(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct fb_http_body *body)
{
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	const struct site_client *c;
	const char *grant, *why = NULL;
	char corr[CORRELATION_LEN + 1];
	enum MHD_Result ret;

	correlation_new(corr);
	if (!form_content_type(conn))
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "the body must be application/x-www-form-urlencoded", corr);
	if (fb_form_parse(body->data, body->len, &f, &err) != FB_OK)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request", err.msg, corr);
	if ((c = client_authenticate(conn, rt->login, store, &f, &why)) == NULL) {
		fb_log(FB_LOG_WARN, "token [%s]: client refused: %s", corr, why);
		fb_form_clear(&f);
		return oauth_error(conn, MHD_HTTP_UNAUTHORIZED, "invalid_client", why, corr);
	}
	grant = fb_form_get(&f, "grant_type");
	if (grant == NULL)
		ret = oauth_error(
		    conn, MHD_HTTP_BAD_REQUEST, "invalid_request", "grant_type is missing", corr);
	else if (strcmp(grant, "authorization_code") == 0)
		ret = grant_code(conn, rt, store, c, &f, corr);
	else if (strcmp(grant, "refresh_token") == 0)
		ret = grant_refresh(conn, rt, store, c, &f, corr);
	else if (strcmp(grant, GRANT_TOKEN_EXCHANGE) == 0)
		ret = grant_exchange(conn, rt, store, c, &f, corr);
	else
		ret = oauth_error(conn, MHD_HTTP_BAD_REQUEST, "unsupported_grant_type",
		    "grant_type must be authorization_code, refresh_token or " GRANT_TOKEN_EXCHANGE,
		    corr);
	fb_form_clear(&f);
	return ret;
}

/* ---- POST /logout ---- */

enum MHD_Result
fb_login_logout(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct fb_http_body *body)
{
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	struct fb_session sess = { 0 };
	const struct site_client *c;
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_rp *rp;
	const char *why = NULL, *after;
	char corr[CORRELATION_LEN + 1], *url = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *doc = NULL, *resp = NULL;
	enum MHD_Result ret;
	fb_rc grc;

	correlation_new(corr);
	if (!form_content_type(conn) || fb_form_parse(body->data, body->len, &f, &err) != FB_OK)
		return oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    err.msg[0] ? err.msg : "the body must be application/x-www-form-urlencoded",
		    corr);
	if ((c = client_authenticate(conn, rt->login, store, &f, &why)) == NULL) {
		fb_form_clear(&f);
		return oauth_error(conn, MHD_HTTP_UNAUTHORIZED, "invalid_client", why, corr);
	}
	after = fb_form_get(&f, "post_logout_redirect_uri");
	doc = unseal(rt->login->k_refresh, "refresh", fb_form_get(&f, "refresh_token"));
	if (doc == NULL)
		why = "not a refresh token of this bridge";
	else if (jstr(doc, "cid") == NULL || strcmp(jstr(doc, "cid"), c->c->client_id) != 0)
		why = "the refresh token was issued to another client";
	else if (after != NULL && !return_to_allowed(c->t, after))
		why = "post_logout_redirect_uri is not in the tenant's return_to list";
	if (why != NULL) {
		ret = oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request", why, corr);
		goto done;
	}
	/* Ending a session that already ended is not an error (as in RFC 7009); a store
	 * that does not answer is: the session may well be live. */
	grc = fb_store_session_get(store, jstr(doc, "sid"), &sess, &err);
	if (grc != FB_OK && grc != FB_ERR_NOTFOUND) {
		fb_log(FB_LOG_WARN, "logout [%s]: %s", corr, err.msg);
		ret = oauth_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
		    "the store is unavailable", corr);
		goto done;
	}
	if (grc == FB_OK) {
		struct fb_revocation r = { .kind = FB_REVOCATION_SESSION,
			.value = sess.id,
			.until = revocation_until(rt->conf, now),
			.reason = "logout",
			.actor = c->c->client_id };
		if (fb_store_revoke(store, &r, now, NULL, &err) != FB_OK) {
			ret = oauth_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "temporarily_unavailable", "the store is unavailable", corr);
			goto done;
		}
		audit(store, FB_AUDIT_REVOCATION, corr, sess.tenant, sess.fid, sess.provider, NULL,
		    "logout", c->c->client_id);
		fb_log(FB_LOG_INFO, "logout [%s]: session of %s ended by client %s", corr, sess.fid,
		    c->c->client_id);
		struct fb_saml_sp *sp;
		if ((rp = find_rp(rt->login, sess.provider, &t)) != NULL &&
		    fb_oidc_rp_end_session_url(rp, after, now, &url, &err) != FB_OK)
			fb_log(FB_LOG_WARN, "logout [%s]: no end-session URL: %s", corr, err.msg);
		/* SAML: a signed LogoutRequest; the IdP answers at /saml/slo with RelayState. */
		if ((sp = find_sp(rt->login, sess.provider, &t)) != NULL &&
		    fb_saml_sp_logout_url(
		        sp, sess.subject, sess.idp_session, after, now, &url, &err) != FB_OK)
			fb_log(
			    FB_LOG_WARN, "logout [%s]: no SAML LogoutRequest: %s", corr, err.msg);
	}
	resp = json_pack("{s:b}", "session_ended", 1);
	if (resp != NULL && url != NULL)
		(void)json_object_set_new(resp, "end_session_url", json_string(url));
	{
		char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
		const char *headers[] = { "X-Correlation-Id", corr, NULL };
		ret = text
		    ? queue(conn, MHD_HTTP_OK, "application/json", text, strlen(text), headers)
		    : MHD_NO;
		free(text);
	}
done:
	fb_session_clear(&sess);
	json_decref(doc);
	json_decref(resp);
	free(url);
	fb_form_clear(&f);
	return ret;
}

/* ---- POST /oidc/backchannel-logout ---- */

/* A string claim of a compact JWS, unverified: only to choose whose keys verify it. */
static char *
peek_claim(const char *token, const char *name)
{
	const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
	size_t n = 0, len = a && b ? (size_t)(b - a - 1) : 0;
	unsigned char *raw;
	json_t *doc;
	char *v = NULL;

	if (len == 0 || len > 16384 || (raw = malloc(len)) == NULL)
		return NULL;
	if (fb_b64url_decode(a + 1, len, raw, len, &n) == FB_OK &&
	    (doc = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL)) != NULL) {
		if (json_is_string(json_object_get(doc, name)))
			v = strdup(jstr(doc, name));
		json_decref(doc);
	}
	free(raw);
	return v;
}

static char *
peek_issuer(const char *token)
{
	return peek_claim(token, "iss");
}

enum MHD_Result
fb_login_backchannel_logout(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const struct fb_http_body *body)
{
	const char *headers[] = { "X-Correlation-Id", NULL, NULL };
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	struct fb_revocation r = { 0 };
	const struct fb_conf_provider *prov = NULL;
	const struct fb_conf_tenant *t = NULL;
	const char *token, *why = NULL;
	char corr[CORRELATION_LEN + 1], *iss = NULL;
	int64_t now = (int64_t)time(NULL), seq = 0;
	json_t *claims = NULL;
	enum MHD_Result ret;
	bool first = false;

	correlation_new(corr);
	headers[1] = corr;
	/* Back-Channel Logout 1.0, 2.8: 200 when done, 400 with an OAuth error otherwise. */
	if (!form_content_type(conn) || fb_form_parse(body->data, body->len, &f, &err) != FB_OK ||
	    (token = fb_form_get(&f, "logout_token")) == NULL) {
		fb_form_clear(&f);
		return oauth_error(
		    conn, MHD_HTTP_BAD_REQUEST, "invalid_request", "no logout_token", corr);
	}
	iss = peek_issuer(token);
	why = "no provider of this bridge has that issuer";
	for (size_t i = 0; iss != NULL && i < rt->login->n_rps && claims == NULL; i++) {
		prov = fb_oidc_rp_provider(rt->login->rps[i]);
		if (strcmp(prov->issuer, iss) != 0)
			continue;
		t = rt->login->rp_tenants[i];
		if (fb_oidc_rp_validate_logout(rt->login->rps[i], token, now, &claims, &err) !=
		    FB_OK)
			why = err.msg;
	}
	if (claims != NULL) {
		why = NULL;
		if (fb_store_once_consume(store, FB_ONCE_LOGOUT_TOKEN, jstr(claims, "jti"),
		        jint(claims, "exp") + rt->conf->tokens.clock_skew, now, &first,
		        &err) != FB_OK)
			why = "the store is unavailable";
		else if (!first)
			why = "logout token replayed";
	}
	if (why == NULL) {
		/* The IdP session when named (every bridge session it opened), else the subject. */
		r.kind = jstr(claims, "sid") ? FB_REVOCATION_IDP_SESSION : FB_REVOCATION_SUBJECT;
		r.issuer = prov->issuer;
		r.value = jstr(claims, "sid") ? jstr(claims, "sid") : jstr(claims, "sub");
		r.until = revocation_until(rt->conf, now);
		r.reason = "OpenID Connect back-channel logout";
		r.actor = prov->name;
		if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK)
			why = "the store is unavailable";
	}
	if (why != NULL) {
		fb_log(FB_LOG_WARN, "back-channel logout [%s]: refused: %s", corr, why);
		audit(store, FB_AUDIT_REVOCATION, corr, t ? t->id : NULL, NULL,
		    prov ? prov->name : NULL, NULL, "backchannel_logout", why);
		ret = oauth_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request", why, corr);
	} else {
		fb_log(FB_LOG_INFO, "back-channel logout [%s]: provider %s: %s revoked (%lld)",
		    corr, prov->name, fb_revocation_kind_name(r.kind), (long long)seq);
		audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, prov->name, NULL,
		    "backchannel_logout", fb_revocation_kind_name(r.kind));
		ret = queue(conn, MHD_HTTP_OK, "application/json", "{}\n", 3, headers);
	}
	json_decref(claims);
	free(iss);
	fb_form_clear(&f);
	return ret;
}

/* ---- POST /saml/acs/<provider> ---- */

enum MHD_Result
fb_login_saml_acs(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const struct fb_http_body *body)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = find_sp(rt->login, provider, &t);
	struct fb_saml_outcome out = { 0 };
	struct fb_identity *id = NULL;
	struct opened opened = { 0 };
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], cname[80], clear[160], *code = NULL, *location = NULL;
	const char *relay, *return_to = NULL, *rid = NULL, *why = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	enum MHD_Result ret;
	bool first = false, down;

	correlation_new(corr);
	clear[0] = '\0';
	if (sp == NULL)
		return error_page(conn, MHD_HTTP_NOT_FOUND, "unknown_provider",
		    "This address names no SAML identity provider of this site.", corr, NULL);
	if (!form_content_type(conn) || fb_form_parse(body->data, body->len, &f, &err) != FB_OK ||
	    fb_form_get(&f, "SAMLResponse") == NULL) {
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL,
		    "bad_response", "no SAMLResponse form field");
		fb_form_clear(&f);
		return error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_response",
		    "This page expects a SAML response from your identity provider.", corr, NULL);
	}
	/* The login this answers: the sealed cookie named by RelayState. */
	relay = fb_form_get(&f, "RelayState");
	if (relay != NULL && strlen(relay) == CORRELATION_LEN &&
	    strspn(relay, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	        CORRELATION_LEN) {
		saml_cookie_name(rt->login, relay, cname, sizeof(cname));
		(void)snprintf(clear, sizeof(clear),
		    "%s=; Path=/saml/acs/%s; Max-Age=0; HttpOnly%s", cname, provider,
		    rt->login->secure ? "; Secure" : "");
		st = unseal(rt->login->k_state, "saml login",
		    MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, cname));
	}
	if (st != NULL) {
		if (jstr(st, "c") != NULL)
			(void)snprintf(corr, sizeof(corr), "%s", jstr(st, "c"));
		if (jstr(st, "p") == NULL || strcmp(jstr(st, "p"), provider) != 0 ||
		    jstr(st, "h") == NULL || strcmp(jstr(st, "h"), relay) != 0 ||
		    jint(st, "e") < now)
			why = jint(st, "e") < now ? "expired" : "bad_state";
		rid = jstr(st, "rid");
		return_to = jstr(st, "r");
	} else if (!fb_saml_sp_provider(sp)->allow_idp_initiated) {
		why = "unsolicited";
	} else {
		/* IdP-initiated: RelayState may name where to go, if the tenant allows it. */
		return_to = relay != NULL && return_to_allowed(t, relay) ? relay
		    : t->return_to.n > 0                                 ? t->return_to.v[0]
		                                                         : NULL;
		if (return_to == NULL)
			why = "bad_return_to";
	}
	if (why != NULL) {
		fb_log(FB_LOG_WARN, "login [%s]: provider %s: refused (%s)", corr, provider, why);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL, why,
		    strcmp(why, "unsolicited") == 0
		        ? "a response without a login in progress (IdP-initiated login is off)"
		        : why);
		ret = error_page(conn, MHD_HTTP_BAD_REQUEST, why,
		    strcmp(why, "expired") == 0
		        ? "The login took too long. Start again from your application."
		        : "No login is in progress in this browser for this answer of the identity "
		          "provider. Start again from your application.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_saml_sp_acs(sp, fb_form_get(&f, "SAMLResponse"), rid, now,
	        rt->conf->tokens.clock_skew, &out, &err) != FB_OK) {
		const char *step = fb_saml_failure_name(out.failure);
		fb_log(FB_LOG_WARN, "login [%s]: provider %s: refused (%s): %s", corr, provider,
		    step, err.msg);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL, step,
		    err.msg);
		ret = error_page(conn, MHD_HTTP_FORBIDDEN, step,
		    "The answer of your identity provider could not be accepted.", corr,
		    clear[0] ? clear : NULL);
		goto done;
	}
	/* One-time use of the assertion and of the request, across nodes and restarts. */
	down = fb_store_once_consume(store, FB_ONCE_SAML_ASSERTION, out.assertion_id,
	           (out.assertion_expires > 0 ? out.assertion_expires : now + LOGIN_TTL) +
	               rt->conf->tokens.clock_skew,
	           now, &first, &err) != FB_OK;
	if (!down && first && rid != NULL)
		down = fb_store_once_consume(store, FB_ONCE_SAML_REQUEST, rid, jint(st, "e"), now,
		           &first, &err) != FB_OK;
	if (down || !first) {
		why = down ? "unavailable" : "replayed";
		fb_log(FB_LOG_WARN, "login [%s]: provider %s: refused (%s)", corr, provider, why);
		audit(store, FB_AUDIT_LOGIN_REFUSED, corr, t->id, NULL, provider, NULL, why,
		    down ? err.msg : "assertion or request used before");
		ret =
		    error_page(conn, down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_FORBIDDEN, why,
		        down ? "The login could not be completed. Try again in a minute."
		             : "This answer of the identity provider was already used. Start again "
		               "from your application.",
		        corr, clear[0] ? clear : NULL);
		goto done;
	}
	if (fb_identity_new(provider, out.id.issuer ? out.id.issuer : fb_saml_sp_idp_entity_id(sp),
	        out.id.nameid, out.id.session_index, &id, &err) != FB_OK) {
		why = "bad_response";
	} else {
		struct login_facts facts = { .tenant = t->id,
			.provider = provider,
			.id = id,
			.attrs = out.id.attrs,
			.nameid = out.id.nameid,
			.expires_cap = out.session_not_on_or_after };
		why = open_session(rt, store, &facts, corr, &opened);
	}
	if (why == NULL &&
	    (code_new(rt->login, opened.sess.id, t->id, return_to, now, &code) != FB_OK ||
	        asprintf(&location, "%s%ccode=%s", return_to, strchr(return_to, '?') ? '&' : '?',
	            code) < 0)) {
		location = NULL;
		why = "session";
	}
	if (why != NULL) {
		ret = error_page(conn,
		    strcmp(why, "session") == 0 ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_FORBIDDEN,
		    why,
		    strcmp(why, "refused") == 0
		        ? "Your organisation's rules do not let this account federate."
		        : "The login could not be completed.",
		    corr, clear[0] ? clear : NULL);
		goto done;
	}
	{
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, location,
			MHD_HTTP_HEADER_SET_COOKIE, clear[0] ? clear : NULL, "X-Correlation-Id",
			corr, NULL };
		ret = queue(conn, MHD_HTTP_SEE_OTHER, NULL, "", 0, headers);
	}
done:
	opened_clear(&opened);
	fb_identity_free(id);
	fb_saml_outcome_clear(&out);
	json_decref(st);
	fb_form_clear(&f);
	free(code);
	free(location);
	return ret;
}

/* ---- GET /saml/slo/<provider>: single logout initiated by the IdP ---- */

#define LOGGED_OUT_PAGE                                                                            \
	"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Logged "          \
	"out</title></head>\n<body><h1>You are logged out</h1></body></html>\n"

/*
 * What an IdP's LogoutRequest ends: its session when it names one (every
 * bridge session that session opened), else the subject. Logged and
 * audited; false (logged) when the store could not record it.
 */
static bool
saml_logout_revoke(struct runtime *rt, struct fb_store *store, const struct fb_saml_sp *sp,
    const struct fb_conf_tenant *t, const struct fb_saml_logout *lo, const char *binding,
    const char *corr)
{
	const char *provider = fb_saml_sp_provider(sp)->name;
	int64_t now = (int64_t)time(NULL), seq = 0;
	struct fb_revocation r = { .kind = lo->session_index ? FB_REVOCATION_IDP_SESSION
		                                             : FB_REVOCATION_SUBJECT,
		.issuer = fb_saml_sp_idp_entity_id(sp),
		.value = lo->session_index ? lo->session_index : lo->nameid,
		.until = revocation_until(rt->conf, now),
		.reason = "SAML single logout",
		.actor = provider };
	struct fb_err err = { 0 };

	if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "saml logout [%s]: %s", corr, err.msg);
		return false;
	}
	fb_log(FB_LOG_INFO, "saml logout [%s]: provider %s: %s%s revoked (%lld)", corr, provider,
	    binding, fb_revocation_kind_name(r.kind), (long long)seq);
	audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, provider, NULL, "saml_logout",
	    fb_revocation_kind_name(r.kind));
	return true;
}

enum MHD_Result
fb_login_saml_slo(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const char *query)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = find_sp(rt->login, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	enum MHD_Result ret;

	correlation_new(corr);
	if (sp == NULL)
		return error_page(conn, MHD_HTTP_NOT_FOUND, "unknown_provider",
		    "This address names no SAML identity provider of this site.", corr, NULL);
	/* The IdP's answer to a logout this bridge started: the session ended already (at
	 * POST /logout), so nothing changes here; the browser goes on to RelayState only when
	 * the tenant allows that address. */
	if (MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "SAMLResponse") != NULL &&
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "SAMLRequest") == NULL) {
		const char *relay =
		    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "RelayState");
		if (relay != NULL && return_to_allowed(t, relay)) {
			const char *headers[] = { MHD_HTTP_HEADER_LOCATION, relay,
				"X-Correlation-Id", corr, NULL };
			return queue(conn, MHD_HTTP_SEE_OTHER, NULL, "", 0, headers);
		}
		return queue(conn, MHD_HTTP_OK, "text/html; charset=utf-8", LOGGED_OUT_PAGE,
		    sizeof(LOGGED_OUT_PAGE) - 1, NULL);
	}
	if (fb_saml_sp_logout_request(sp, query, now, rt->conf->tokens.clock_skew, &lo, &err) !=
	    FB_OK) {
		fb_log(FB_LOG_WARN, "saml logout [%s]: provider %s: refused: %s", corr, provider,
		    err.msg);
		audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, provider, NULL, "saml_logout",
		    err.msg);
		return error_page(conn, MHD_HTTP_BAD_REQUEST, "bad_logout_request",
		    "This logout request could not be accepted.", corr, NULL);
	}
	if (!saml_logout_revoke(rt, store, sp, t, &lo, "", corr)) {
		ret = error_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
		    "The logout could not be recorded. Try again in a minute.", corr, NULL);
	} else if (lo.response_url == NULL) {
		/* The IdP's metadata names no SLO service to answer to. */
		const char *headers[] = { "X-Correlation-Id", corr, NULL };
		ret = queue(conn, MHD_HTTP_OK, "text/html; charset=utf-8", LOGGED_OUT_PAGE,
		    sizeof(LOGGED_OUT_PAGE) - 1, headers);
	} else {
		const char *headers[] = { MHD_HTTP_HEADER_LOCATION, lo.response_url,
			"X-Correlation-Id", corr, NULL };
		ret = queue(conn, MHD_HTTP_FOUND, NULL, "", 0, headers);
	}
	fb_saml_logout_clear(&lo);
	return ret;
}

/* ---- POST /saml/slo/<provider>: single logout over SOAP ---- */

enum MHD_Result
fb_login_saml_slo_soap(struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store,
    const char *provider, const struct fb_http_body *body)
{
	const struct fb_conf_tenant *t = NULL;
	struct fb_saml_sp *sp = find_sp(rt->login, provider, &t);
	struct fb_saml_logout lo = { 0 };
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], *soap = NULL;
	int64_t now = (int64_t)time(NULL);
	const char *headers[] = { "X-Correlation-Id", NULL, NULL };
	enum MHD_Result ret;

	correlation_new(corr);
	headers[1] = corr;
	if (sp == NULL)
		return queue(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
		    "no such SAML provider\n", 22, headers);
	if (fb_saml_sp_logout_soap(sp, body->data, body->len, now, rt->conf->tokens.clock_skew, &lo,
	        &soap, &err) != FB_OK) {
		fb_log(FB_LOG_WARN, "saml logout [%s]: provider %s: SOAP: refused: %s", corr,
		    provider, err.msg);
		audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, provider, NULL, "saml_logout",
		    err.msg);
		return queue(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8",
		    "logout request refused\n", 23, headers);
	}
	if (!saml_logout_revoke(rt, store, sp, t, &lo, "SOAP: ", corr)) {
		ret = queue(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
		    "store unavailable\n", 18, headers);
	} else {
		ret = queue(
		    conn, MHD_HTTP_OK, "text/xml; charset=utf-8", soap, strlen(soap), headers);
	}
	fb_saml_logout_clear(&lo);
	free(soap);
	return ret;
}
