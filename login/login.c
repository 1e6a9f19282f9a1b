/*
 * Logins: GET /login/<provider> sends the browser to its IdP, GET
 * /oidc/callback turns the IdP's answer into an identity, runs the tenant's
 * mapping, opens a session and sends the browser back to an allow-listed
 * return_to with a one-time code, which the messenger backend redeems at
 * POST /token (login_token.c) for a refresh token and federation tokens. The
 * SAML endpoints are in login_saml.c; what the three share, in login_int.h.
 *
 * Nothing about a login in flight is kept on the server: the state, nonce
 * and PKCE verifier travel in a sealed cookie (AES-256-GCM), bound to the
 * browser, and the state is consumed once in the store. Codes and refresh
 * tokens are sealed the same way under their own keys; a code is consumed
 * once, a refresh token lives as long as its session (revoking the session
 * ends it).
 */
#include "login_int.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* What a /token client's shared secret must have at least (conf checks the same). */
#define CLIENT_SECRET_MIN 32

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
fb_rc
login_seal(const unsigned char key[SEAL_KEY_LEN], const char *purpose, json_t *plain, char **out)
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
json_t *
login_unseal(const unsigned char key[SEAL_KEY_LEN], const char *purpose, const char *text)
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

const char *
login_jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int64_t
login_jint(json_t *o, const char *k)
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
		fb_secret_free(s->clients[i].secret);
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
	fb_rc rc;

	if ((rc = fb_secret_read(path, FB_SECRET_SHORT_MAX, out, &len, err)) != FB_OK)
		return rc;
	while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
		(*out)[--len] = '\0';
	if (len < CLIENT_SECRET_MIN)
		return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: a client secret needs at least %d bytes",
		    path, CLIENT_SECRET_MIN);
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
	if (fb_secret_read(conf->keys.fid_secret, FB_SECRET_SHORT_MAX, &secret, &len, err) !=
	    FB_OK) {
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
	fb_secret_free(secret);
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
				bool unreachable = false;

				s->sp_tenants[s->n_sps] = ten;
				if ((rc = fb_saml_sp_new(&ten->providers[i],
				         conf->installation.public_url, &s->sps[s->n_sps],
				         &unreachable, err)) == FB_OK)
					s->n_sps++;
				if (rc == FB_OK && unreachable)
					fb_log(FB_LOG_WARN,
					    "%s; its logins answer 502 until it is fetched (tried "
					    "again with backoff)",
					    err->msg);
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

void
login_correlation_new(char out[CORRELATION_LEN + 1])
{
	unsigned char r[16];

	if (fb_random_bytes(r, sizeof(r)) != FB_OK ||
	    fb_b64url_encode(r, sizeof(r), out, CORRELATION_LEN + 1) != FB_OK)
		(void)snprintf(out, CORRELATION_LEN + 1, "%lld", (long long)time(NULL));
}

fb_rc
fb_login_response_header(struct fb_login_response *r, const char *name, const char *value)
{
	struct fb_login_header *h;

	if (value == NULL)
		return FB_OK;
	if (r->n_headers == FB_LOGIN_HEADERS_MAX)
		return FB_ERR_LIMIT;
	h = &r->headers[r->n_headers];
	h->name = strdup(name);
	h->value = strdup(value);
	if (h->name == NULL || h->value == NULL) {
		free(h->name);
		free(h->value);
		h->name = h->value = NULL;
		return FB_ERR_NOMEM;
	}
	r->n_headers++;
	return FB_OK;
}

const char *
fb_login_response_get(const struct fb_login_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

void
fb_login_response_clear(struct fb_login_response *r)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		if (r->headers[i].value != NULL) /* a Set-Cookie holds sealed login state */
			fb_cleanse(r->headers[i].value, strlen(r->headers[i].value));
		free(r->headers[i].value);
	}
	if (r->body != NULL)
		fb_cleanse(r->body, r->body_len); /* it may hold tokens */
	free(r->body);
	free(r->content_type);
	memset(r, 0, sizeof(*r));
}

fb_rc
login_respond(struct fb_login_response *resp, unsigned status, const char *ctype, const char *body,
    size_t len)
{
	fb_login_response_clear(resp);
	if (ctype != NULL && (resp->content_type = strdup(ctype)) == NULL)
		return FB_ERR_NOMEM;
	if (len > 0) {
		if ((resp->body = malloc(len + 1)) == NULL)
			return FB_ERR_NOMEM;
		memcpy(resp->body, body, len);
		resp->body[len] = '\0';
		resp->body_len = len;
	}
	resp->status = status;
	return fb_login_response_header(resp, "Cache-Control", "no-store");
}

fb_rc
login_redirect(struct fb_login_response *resp, unsigned status, const char *location,
    const char *cookie, const char *corr)
{
	fb_rc rc = login_respond(resp, status, NULL, "", 0);

	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Location", location);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "Set-Cookie", cookie);
	if (rc == FB_OK)
		rc = fb_login_response_header(resp, "X-Correlation-Id", corr);
	return rc;
}

const char *
login_path_tail(const struct fb_login_request *req, const char *prefix)
{
	size_t n = strlen(prefix);

	return req->path != NULL && strncmp(req->path, prefix, n) == 0 ? req->path + n : NULL;
}

char *
login_query(const struct fb_login_request *req, const char *name)
{
	char *v = NULL;

	if (req->query == NULL || fb_query_get(req->query, name, &v) != FB_OK)
		return NULL;
	return v;
}

/* Cookie: a=b; c="d" (RFC 6265 4.2.1): the first cookie of that name. */
char *
login_cookie(const struct fb_login_request *req, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = req->cookie;

	while (p != NULL && *p != '\0') {
		const char *end;
		size_t len;
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vlen = len - nlen - 1;
			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
				v++;
				vlen -= 2;
			}
			return strndup(v, vlen);
		}
		p = end;
	}
	return NULL;
}

static void
audit_append(struct fb_store *store, const struct fb_audit_record *rec)
{
	struct fb_err err = { 0 };

	if (fb_store_audit_append(store, rec, NULL, &err) != FB_OK)
		fb_log(FB_LOG_ERROR, "audit [%s]: not recorded: %s", rec->correlation, err.msg);
}

void
login_audit(struct fb_store *store, enum fb_audit_kind kind, const char *corr, const char *tenant,
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

	/* Every login ends in one audit record: the metrics count there too. */
	if (kind == FB_AUDIT_LOGIN_ALLOWED)
		fb_metric_count(FB_METRIC_LOGIN, provider ? provider : "-", "allowed");
	audit_append(store, &rec);
}

/*
 * How a login or a client's request ends without success, one row each: the
 * log level and word, the login metric's outcome, and whether the audit
 * trail records it. An outage is the bridge's, not the user's: logged and
 * counted, never audited as a refusal.
 */
static const struct {
	enum fb_log_level level;
	const char *word;
	const char *outcome; /* fedbridge_logins_total */
	bool audited;
} login_ends[] = {
	[LOGIN_REFUSED] = { FB_LOG_WARN, "refused", "refused", true },
	[LOGIN_UNAVAILABLE] = { FB_LOG_ERROR, "failed", "unavailable", false },
};

/* The log's sample of anonymous refusals: how many this window, how many left out. */
static struct {
	pthread_mutex_t lock;
	int64_t window; /* its start (seconds) */
	unsigned logged;
	uint64_t unlogged;
} anonymous_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Whether this anonymous refusal gets its log line; says first what the last window left out. */
static bool
anonymous_sampled(int64_t now)
{
	uint64_t left_out = 0;
	bool logged;

	pthread_mutex_lock(&anonymous_log.lock);
	if (now - anonymous_log.window >= ANONYMOUS_LOG_WINDOW) {
		left_out = anonymous_log.unlogged;
		anonymous_log.window = now;
		anonymous_log.logged = 0;
		anonymous_log.unlogged = 0;
	}
	logged = anonymous_log.logged < ANONYMOUS_LOG_BURST;
	if (logged)
		anonymous_log.logged++;
	else
		anonymous_log.unlogged++;
	pthread_mutex_unlock(&anonymous_log.lock);
	if (left_out > 0)
		fb_log(FB_LOG_WARN,
		    "anonymous refusals: %llu more were not logged (past %d in %d s); "
		    "fedbridge_anonymous_refusals_total counts them all",
		    (unsigned long long)left_out, ANONYMOUS_LOG_BURST, ANONYMOUS_LOG_WINDOW);
	return logged;
}

enum fb_login_failure
login_idp_failure(const char *provider, fb_rc rc)
{
	if (rc == FB_ERR_CONFIG) {
		fb_metric_count(FB_METRIC_IDP_MISCONFIGURED, provider, NULL);
		return FB_LOGIN_IDP_MISCONFIGURED;
	}
	fb_metric_count(FB_METRIC_IDP_REFRESH_FAILURE, provider, NULL);
	return FB_LOGIN_IDP_UNAVAILABLE;
}

void
login_refuse(struct fb_store *store, enum login_end end, const struct login_refusal *r)
{
	struct fb_audit_record rec = { .time = (int64_t)time(NULL),
		.kind = r->kind,
		.correlation = r->corr,
		.tenant = r->tenant,
		.fid = r->fid,
		.provider = r->provider,
		.actor = r->client,
		.rule = r->reason,
		.detail = r->detail };
	bool anonymous = end == LOGIN_REFUSED && r->anonymous;

	if (anonymous) {
		/* Counted by endpoint and reason (both ours: a bounded set of series). */
		fb_metric_count(FB_METRIC_ANONYMOUS_REFUSAL, r->area, r->reason);
		if (!anonymous_sampled(rec.time))
			return;
	}
	/* One line naming the refusal: fb_log escapes what came from outside. */
	fb_log(login_ends[end].level, "%s [%s]: %s%s%s%s (%s): %s%s", r->area, r->corr,
	    r->provider ? "provider " : "", r->provider ? r->provider : "", r->provider ? ": " : "",
	    login_ends[end].word, r->reason, r->detail ? r->detail : "-",
	    anonymous ? " (anonymous: not audited)" : "");
	if (anonymous)
		return;
	if (r->kind == FB_AUDIT_LOGIN_REFUSED) {
		fb_metric_count(
		    FB_METRIC_LOGIN, r->provider ? r->provider : "-", login_ends[end].outcome);
		if (login_ends[end].audited)
			fb_metric_count(FB_METRIC_REFUSAL, r->reason, NULL);
	}
	if (login_ends[end].audited)
		audit_append(store, &rec);
}

void
login_audit_token(struct fb_store *store, const char *corr, const struct fb_session *sess,
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

	fb_metric_count(FB_METRIC_TOKEN, aud, NULL);
	audit_append(store, &rec);
}

/* The jti of a token this bridge just signed (its payload is ours: no check needed). */
void
login_token_jti(const char *tok, char *out, size_t size)
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
fb_rc
login_refuse_return_to(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct fb_conf_tenant *t, const char *provider, const char *return_to, const char *corr)
{
	const char *why = return_to ? login_return_to_problem(t, return_to) : "missing";
	char detail[REFUSAL_DETAIL_MAX];

	if (why == NULL)
		why = "not in the allow-list"; /* not reached: only a refused one comes here */
	(void)snprintf(detail, sizeof(detail), "return_to %s", why);
	return login_fail(env, resp, FB_LOGIN_BAD_RETURN_TO,
	    &(struct login_refusal){ .kind = FB_AUDIT_LOGIN_REFUSED,
	        .area = "login",
	        .corr = corr,
	        .tenant = t->id,
	        .provider = provider,
	        .reason = "return_to",
	        .detail = detail,
	        .anonymous = true },
	    NULL, NULL);
}

/* How long a revocation must be kept: past every token and session it can affect. */
int64_t
login_revocation_until(const struct fb_conf *conf, int64_t now)
{
	return now +
	    (conf->tokens.session_ttl > conf->tokens.max_ttl ? conf->tokens.session_ttl
	                                                     : conf->tokens.max_ttl);
}

/* ---- return_to ---- */

/* What the login adds to return_to, or the IdP's answer carries: never the caller's own. */
static const char *const login_return_to_reserved[] = { "code", "state", "error", NULL };

/*
 * An allow-listed URL exactly, or followed by a query string: no prefix or
 * host games (user info, other ports, paths below, backslashes, fragments).
 * The query may not carry code, state or error: the backend would read a
 * code of the caller's choosing next to, or instead of, the login's own.
 * NULL when allowed, else why not.
 */
const char *
login_return_to_problem(const struct fb_conf_tenant *t, const char *r)
{
	size_t len = strlen(r);

	if (len == 0 || len > RETURN_TO_MAX || !fb_utf8_valid(r, len))
		return "empty, too long or not UTF-8";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)r[i] <= 0x20 || r[i] == 0x7f || r[i] == '\\' || r[i] == '#')
			return "holds a control character, a space, a backslash or a fragment";
	for (size_t i = 0; i < t->return_to.n; i++) {
		size_t n = strlen(t->return_to.v[i]);
		if (strncmp(r, t->return_to.v[i], n) != 0 || (r[n] != '\0' && r[n] != '?') ||
		    strchr(t->return_to.v[i], '?') != NULL)
			continue;
		if (r[n] == '?' && fb_query_has_param(r + n + 1, login_return_to_reserved))
			return "its query carries code, state or error (or a name that does not "
			       "decode)";
		return NULL;
	}
	return "not in the allow-list";
}

bool
login_return_to_allowed(const struct fb_conf_tenant *t, const char *r)
{
	return login_return_to_problem(t, r) == NULL;
}

/* ---- GET /login/<provider> ---- */

struct fb_oidc_rp *
login_find_rp(const struct fb_login_site *s, const char *name, const struct fb_conf_tenant **tenant)
{
	for (size_t i = 0; i < s->n_rps; i++) {
		if (strcmp(fb_oidc_rp_provider(s->rps[i])->name, name) == 0) {
			*tenant = s->rp_tenants[i];
			return s->rps[i];
		}
	}
	return NULL;
}

void
login_cookie_name(const struct fb_login_site *s, const char *state, char *out, size_t size)
{
	(void)snprintf(out, size, "%sfb_login_%s", s->secure ? "__Secure-" : "", state);
}

void
fb_login_site_refresh(struct fb_login_site *s, int64_t now)
{
	for (size_t i = 0; s != NULL && i < s->n_sps; i++) {
		struct fb_err err = { 0 };
		bool changed = false;
		fb_rc rc = fb_saml_sp_refresh(s->sps[i], now, &changed, &err);
		if (rc != FB_OK) {
			(void)login_idp_failure(fb_saml_sp_provider(s->sps[i])->name, rc);
			fb_log(FB_LOG_WARN, "%s", err.msg);
		} else if (changed)
			fb_log(FB_LOG_INFO, "provider %s: the IdP's metadata was fetched again",
			    fb_saml_sp_provider(s->sps[i])->name);
	}
	for (size_t i = 0; s != NULL && i < s->n_rps; i++) {
		struct fb_err err = { 0 };
		const char *name = fb_oidc_rp_provider(s->rps[i])->name;
		bool failing = fb_oidc_rp_status(s->rps[i], NULL, 0) != FB_OK;
		fb_rc rc = fb_oidc_rp_next_refresh(s->rps[i]) <= now
		    ? fb_oidc_rp_refresh(s->rps[i], now, &err)
		    : FB_OK;
		if (rc != FB_OK) {
			(void)login_idp_failure(name, rc);
			fb_log(FB_LOG_WARN,
			    "provider %s: %s; its logins answer 502 until it is fetched (tried "
			    "again "
			    "with backoff)",
			    name, err.msg);
		} else if (failing && fb_oidc_rp_status(s->rps[i], NULL, 0) == FB_OK)
			fb_log(FB_LOG_INFO,
			    "provider %s: the IdP's discovery and keys were fetched", name);
	}
}

int64_t
fb_login_site_next_refresh(const struct fb_login_site *s)
{
	int64_t next = 0, at;

	for (size_t i = 0; s != NULL && i < s->n_sps; i++)
		if ((at = fb_saml_sp_next_refresh(s->sps[i])) != 0 && (next == 0 || at < next))
			next = at;
	for (size_t i = 0; s != NULL && i < s->n_rps; i++)
		if ((at = fb_oidc_rp_next_refresh(s->rps[i])) != 0 && (next == 0 || at < next))
			next = at;
	return next;
}

void
fb_login_site_unready(const struct fb_login_site *s,
    void (*fn)(void *arg, const struct fb_login_unready *u), void *arg)
{
	char why[FB_ERR_MSG_MAX];
	struct fb_login_unready u = { .why = why };

	for (size_t i = 0; s != NULL && i < s->n_sps; i++) {
		u.rc = fb_saml_sp_status(s->sps[i], why, sizeof(why));
		u.provider = fb_saml_sp_provider(s->sps[i]);
		u.what = "provider_metadata";
		if (u.rc != FB_OK)
			fn(arg, &u);
	}
	for (size_t i = 0; s != NULL && i < s->n_rps; i++) {
		u.rc = fb_oidc_rp_status(s->rps[i], why, sizeof(why));
		u.provider = fb_oidc_rp_provider(s->rps[i]);
		u.what = "provider_discovery";
		if (u.rc != FB_OK)
			fn(arg, &u);
	}
}

fb_rc
fb_login_start(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	const char *provider =
	    login_path_tail(req, "/login/") ? login_path_tail(req, "/login/") : "";
	char *return_to = login_query(req, "return_to"); /* owned */
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_login l;
	struct fb_oidc_rp *rp;
	struct fb_err err = { 0 };
	char corr[CORRELATION_LEN + 1], cname[COOKIE_NAME_MAX], *url = NULL, *sealed = NULL,
	                                                        *cookie = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	fb_rc ret;
	struct login_refusal r = {
		.kind = FB_AUDIT_LOGIN_REFUSED, .area = "login", .corr = corr, .provider = provider
	};

	memset(&l, 0, sizeof(l));
	login_correlation_new(corr);
	if (login_find_sp(env->site, provider, &t) != NULL) {
		ret = login_saml_start(env, provider, return_to, corr, resp);
		goto done;
	}
	if ((rp = login_find_rp(env->site, provider, &t)) == NULL) {
		/* An address that names nothing here: logged, not audited (no login began). */
		fb_log(FB_LOG_INFO, "login [%s]: no provider %.64s", corr, provider);
		ret = login_answer(resp, FB_LOGIN_UNKNOWN_PROVIDER, NULL, corr, NULL);
		goto done;
	}
	r.tenant = t->id;
	if (return_to == NULL || !login_return_to_allowed(t, return_to)) {
		ret = login_refuse_return_to(env, resp, t, provider, return_to, corr);
		goto done;
	}
	if (fb_oidc_login_new(&l, &err) != FB_OK ||
	    fb_oidc_rp_auth_url(rp, &l, now, &url, &err) != FB_OK) {
		enum fb_login_failure f = login_idp_failure(provider, err.rc);
		r.reason = fb_login_failure_row(f)->code;
		r.detail = err.msg;
		ret = login_fail(env, resp, f, &r, NULL, NULL);
		goto done;
	}
	st = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "p", provider, "t", t->id, "s", l.state,
	    "n", l.nonce, "v", l.verifier, "r", return_to, "c", corr, "e",
	    (json_int_t)now + LOGIN_TTL);
	login_cookie_name(env->site, l.state, cname, sizeof(cname));
	if (st == NULL || login_seal(env->site->k_state, "login", st, &sealed) != FB_OK ||
	    asprintf(&cookie, "%s=%s; Path=/oidc/callback; Max-Age=%d; HttpOnly; SameSite=Lax%s",
	        cname, sealed, LOGIN_TTL, env->site->secure ? "; Secure" : "") < 0) {
		cookie = NULL;
		r.reason = "internal";
		r.detail = "the login state could not be sealed";
		ret = login_fail(env, resp, FB_LOGIN_INTERNAL, &r, NULL, NULL);
	} else {
		fb_log(FB_LOG_INFO, "login [%s]: provider %s: to the IdP", corr, provider);
		ret = login_redirect(resp, HTTP_FOUND, url, cookie, corr);
	}
done:
	json_decref(st);
	fb_cleanse(&l, sizeof(l));
	free(sealed);
	free(cookie);
	free(url);
	free(return_to);
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
fb_rc
login_code_new(const struct fb_login_site *s, const char *sid, const char *tenant,
    const char *return_to, int64_t now, char **out)
{
	char jti[CORRELATION_LEN + 1];
	json_t *c;
	fb_rc rc;

	login_correlation_new(jti);
	c = json_pack("{s:s,s:s,s:s,s:s,s:I}", "sid", sid, "t", tenant, "r", return_to, "j", jti,
	    "e", (json_int_t)now + CODE_TTL);
	rc = c ? login_seal(s->k_code, "code", c, out) : FB_ERR_NOMEM;
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

void
login_opened_clear(struct opened *o)
{
	free(o->sess.amr);
	free(o->sess.attrs);
	fb_principal_clear(&o->p);
	fb_expr_scratch_free(o->scratch);
	memset(o, 0, sizeof(*o));
}

/*
 * identity -> mapping -> session, the same for a browser login and a token
 * exchange. LOGIN_OPENED when the session is open; else why not, already
 * logged and audited.
 */
enum login_opening
login_open_session(
    const struct fb_login_env *env, const struct login_facts *f, const char *corr, struct opened *o)
{
	struct fb_store *store = env->store;
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
	enum login_opening why;
	struct login_refusal r = { .kind = FB_AUDIT_LOGIN_REFUSED,
		.area = "login",
		.corr = corr,
		.tenant = tenant,
		.provider = provider };

	if (fb_expr_scratch_new(SCRATCH_BYTES, &o->scratch) != FB_OK ||
	    fb_mapping_run(env->rules, &in, o->scratch, &o->p, NULL, &err) != FB_OK) {
		r.reason = "mapping";
		r.detail = err.msg;
		login_refuse(store, LOGIN_REFUSED, &r);
		return LOGIN_OPEN_MAPPING;
	}
	if (!o->p.allowed) {
		r.reason = o->p.rule ? o->p.rule : "mapping";
		r.detail = o->p.reason;
		login_refuse(store, LOGIN_REFUSED, &r);
		return LOGIN_OPEN_REFUSED;
	}
	sess->fid = o->p.fid;
	sess->tenant = (char *)tenant; /* borrowed for the put: the store copies */
	sess->provider = (char *)provider;
	sess->issuer = id->issuer;
	sess->subject = id->subject;
	sess->idp_session = id->idp_session;
	sess->acr = (char *)login_jstr(claims, "acr");
	sess->amr = join_amr(claims);
	sess->attrs = session_outcome(&o->p, corr);
	sess->created = sess->last_seen = now;
	sess->expires = now + env->conf->tokens.session_ttl;
	if (f->expires_cap > 0 && f->expires_cap < sess->expires)
		sess->expires = f->expires_cap;
	sess->idle_timeout = env->conf->tokens.session_idle;
	if (fb_session_id_new(sess->id) != FB_OK || sess->attrs == NULL ||
	    fb_store_session_revoked(store, sess, now, &rk, &err) != FB_OK ||
	    rk != FB_REVOCATION_NONE || fb_store_session_put(store, sess, &err) != FB_OK) {
		/* Revoked is a refusal; a store that did not answer is an outage. */
		why = rk != FB_REVOCATION_NONE ? LOGIN_OPEN_REVOKED : LOGIN_OPEN_UNAVAILABLE;
		r.fid = o->p.fid;
		r.reason = why == LOGIN_OPEN_REVOKED ? "revoked" : "session";
		r.detail = rk != FB_REVOCATION_NONE ? fb_revocation_kind_name(rk)
		    : err.msg[0]                    ? err.msg
		                                    : "the session could not be made";
		login_refuse(
		    store, rk != FB_REVOCATION_NONE ? LOGIN_REFUSED : LOGIN_UNAVAILABLE, &r);
		return why;
	}
	{
		char detail[64];
		(void)snprintf(detail, sizeof(detail), "session %s", sess->id);
		login_audit(store, FB_AUDIT_LOGIN_ALLOWED, corr, tenant, o->p.fid, provider, NULL,
		    o->p.fid_source, detail);
	}
	/* Personal data only where the configuration allows (log.attributes). */
	fb_log(FB_LOG_INFO, "login [%s]: %s logged in through %s (session %.6s…)%s%s", corr,
	    o->p.fid, provider, sess->id, env->conf->log.attributes ? ", attributes " : "",
	    env->conf->log.attributes ? sess->attrs : "");
	return LOGIN_OPENED;
}

enum fb_login_failure
login_opening_failure(enum login_opening o)
{
	switch (o) {
	case LOGIN_OPEN_MAPPING:
		return FB_LOGIN_MAPPING;
	case LOGIN_OPEN_REFUSED:
		return FB_LOGIN_RULES_REFUSED;
	case LOGIN_OPEN_REVOKED:
		return FB_LOGIN_REVOKED;
	case LOGIN_OPENED: /* not a failure: the caller failed after it (an outage) */
	case LOGIN_OPEN_UNAVAILABLE:
	default:
		return FB_LOGIN_STORE_UNAVAILABLE;
	}
}

/* The callback's query parameters, decoded (each owned; NULL when absent). */
struct callback_query {
	char *code, *state, *iss, *error, *error_description;
};

static void
callback_query_clear(struct callback_query *q)
{
	if (q->code != NULL)
		fb_cleanse(q->code, strlen(q->code)); /* redeemable with the cookie */
	free(q->code);
	free(q->state);
	free(q->iss);
	free(q->error);
	free(q->error_description);
	memset(q, 0, sizeof(*q));
}

fb_rc
fb_login_oidc_callback(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	struct callback_query q = { .code = login_query(req, "code"),
		.state = login_query(req, "state"),
		.iss = login_query(req, "iss"),
		.error = login_query(req, "error"),
		.error_description = login_query(req, "error_description") };
	struct fb_oidc_response answer = { .code = q.code,
		.state = q.state,
		.iss = q.iss,
		.error = q.error,
		.error_description = q.error_description };
	struct fb_store *store = env->store;
	struct fb_oidc_outcome out = { 0 };
	struct fb_oidc_login l;
	struct opened opened = { 0 };
	struct fb_err err = { 0 };
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_rp *rp;
	struct login_refusal refusal = { .kind = FB_AUDIT_LOGIN_REFUSED, .area = "login" };
	enum login_opening opening = LOGIN_OPEN_UNAVAILABLE;
	char corr[CORRELATION_LEN + 1], cname[COOKIE_NAME_MAX], clear[CLEAR_COOKIE_MAX];
	char *code = NULL, *location = NULL, *sealed = NULL;
	const char *provider, *return_to, *tenant;
	int64_t now = (int64_t)time(NULL);
	json_t *st = NULL;
	fb_rc ret;
	bool first = false, down;
	size_t slen = q.state ? strlen(q.state) : 0;

	memset(&l, 0, sizeof(l));
	refusal.corr = corr;
	/* The state names the cookie; one that cannot be a state is refused before any lookup. */
	if (slen != FB_OIDC_STATE_LEN ||
	    strspn(q.state,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789-_") != slen) {
		login_correlation_new(corr);
		refusal.reason = "bad_state";
		refusal.detail =
		    q.state ? "callback with a malformed state" : "callback without a state";
		refusal.anonymous = true;
		ret = login_fail(env, resp, FB_LOGIN_BAD_STATE, &refusal, NULL, NULL);
		goto done;
	}
	login_cookie_name(env->site, q.state, cname, sizeof(cname));
	(void)snprintf(clear, sizeof(clear), "%s=; Path=/oidc/callback; Max-Age=0; HttpOnly%s",
	    cname, env->site->secure ? "; Secure" : "");
	sealed = login_cookie(req, cname);
	st = login_unseal(env->site->k_state, "login", sealed);
	if (st != NULL)
		(void)snprintf(
		    corr, sizeof(corr), "%s", login_jstr(st, "c") ? login_jstr(st, "c") : "");
	else
		login_correlation_new(corr);
	provider = login_jstr(st, "p");
	return_to = login_jstr(st, "r");
	tenant = login_jstr(st, "t");
	refusal.tenant = tenant;
	refusal.provider = provider;
	if (st == NULL || provider == NULL || return_to == NULL || tenant == NULL ||
	    login_jstr(st, "s") == NULL || strcmp(login_jstr(st, "s"), q.state) != 0 ||
	    login_jint(st, "e") < now) {
		/* Only a login of this state past its deadline expired; any other cookie is
		 * not this login's. */
		bool expired = st != NULL && provider != NULL && return_to != NULL &&
		    tenant != NULL && login_jstr(st, "s") != NULL &&
		    strcmp(login_jstr(st, "s"), q.state) == 0;
		refusal.reason = expired ? "expired" : "bad_state";
		refusal.detail = expired
		    ? "callback: the login expired"
		    : "callback: no login in progress in this browser for this state";
		refusal.anonymous = true; /* until the state proves a login of ours */
		ret = login_fail(env, resp, expired ? FB_LOGIN_EXPIRED : FB_LOGIN_BAD_STATE,
		    &refusal, NULL, clear);
		goto done;
	}
	/* Consumed once across every bridge node: a replayed answer stops here. A store
	 * that does not answer is not a replay: the user is told to try again. */
	down = fb_store_once_consume(store, FB_ONCE_OIDC_STATE, q.state, login_jint(st, "e"), now,
	           &first, &err) != FB_OK;
	if (down || !first) {
		refusal.reason = down ? "unavailable" : "state_replayed";
		refusal.detail =
		    down ? err.msg : "callback: state already used (a replayed answer)";
		ret = login_fail(env, resp,
		    down ? FB_LOGIN_STORE_UNAVAILABLE : FB_LOGIN_STATE_REPLAYED, &refusal, NULL,
		    clear);
		goto done;
	}
	if ((rp = login_find_rp(env->site, provider, &t)) == NULL || strcmp(t->id, tenant) != 0) {
		refusal.reason = "unknown_provider";
		refusal.detail = "callback: the provider left the configuration";
		ret = login_fail(env, resp, FB_LOGIN_PROVIDER_GONE, &refusal, NULL, clear);
		goto done;
	}
	(void)snprintf(l.state, sizeof(l.state), "%s", login_jstr(st, "s"));
	(void)snprintf(
	    l.nonce, sizeof(l.nonce), "%s", login_jstr(st, "n") ? login_jstr(st, "n") : "");
	(void)snprintf(
	    l.verifier, sizeof(l.verifier), "%s", login_jstr(st, "v") ? login_jstr(st, "v") : "");
	/* The login began LOGIN_TTL before its deadline (fb_login_start seals "e" so). */
	l.started = fb_time_sub(login_jint(st, "e"), LOGIN_TTL);
	if (fb_oidc_rp_finish(rp, &l, &answer, now, &out, &err) != FB_OK) {
		/* An IdP that did not answer (discovery, keys, or its token endpoint not
		 * reached) is an outage: the user is told to try again, not refused. */
		bool unavailable = out.failure == FB_OIDC_UNAVAILABLE ||
		    (out.failure == FB_OIDC_TOKEN_ENDPOINT && err.rc == FB_ERR_IO);
		enum fb_login_failure f = unavailable  ? login_idp_failure(provider, err.rc)
		    : out.failure == FB_OIDC_IDP_ERROR ? FB_LOGIN_IDP_ERROR
		                                       : FB_LOGIN_IDP_ANSWER;

		refusal.reason = fb_oidc_failure_name(out.failure);
		refusal.detail = err.msg;
		ret =
		    login_fail(env, resp, f, &refusal, unavailable ? NULL : refusal.reason, clear);
		goto done;
	}
	{
		struct login_facts facts = { .tenant = tenant,
			.provider = provider,
			.id = out.identity,
			.claims = out.claims };
		opening = login_open_session(env, &facts, corr, &opened);
	}
	if (opening != LOGIN_OPENED) {
		ret = login_answer(resp, login_opening_failure(opening), NULL, corr, clear);
		goto done;
	}
	if (login_code_new(env->site, opened.sess.id, tenant, return_to, now, &code) != FB_OK ||
	    asprintf(&location, "%s%ccode=%s", return_to, strchr(return_to, '?') ? '&' : '?',
	        code) < 0) {
		location = NULL;
		refusal.reason = "session";
		refusal.detail = "the login's code could not be made";
		ret = login_fail(env, resp, FB_LOGIN_INTERNAL, &refusal, "session", clear);
		goto done;
	}
	ret = login_redirect(resp, HTTP_SEE_OTHER, location, clear, corr);
done:
	fb_cleanse(&l, sizeof(l));
	login_opened_clear(&opened);
	free(code);
	free(location);
	free(sealed);
	fb_oidc_outcome_clear(&out);
	json_decref(st);
	callback_query_clear(&q);
	return ret;
}
