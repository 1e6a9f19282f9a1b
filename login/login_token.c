/*
 * The messenger backend's endpoints: POST /token (authorization code,
 * refresh and RFC 8693 token exchange, with client authentication by secret
 * or private_key_jwt), POST /logout, and the IdP's POST
 * /oidc/backchannel-logout.
 */
#include "login_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- POST /token ---- */

/*
 * A client's request refused (or failed) at /token or /logout: logged and
 * audited through login_refuse, answered with the table's OAuth error.
 */
static fb_rc
client_refused(const struct fb_login_env *env, struct fb_login_response *resp,
    enum fb_login_failure f, const struct login_refusal *r)
{
	return login_fail(env, resp, f, r, NULL, NULL);
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
    const char **why, enum fb_login_failure *fail, struct fb_err *detail)
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
		/* The detail goes to the log (the caller's), the client gets the gist. */
		(void)FB_ERR_SET(detail, FB_ERR_INVALID, "client %s: %s", c->c->client_id, err.msg);
		*why = "client_assertion refused (see the log)";
		return NULL;
	}
	if (fb_store_once_consume(store, FB_ONCE_CLIENT_ASSERTION, login_jstr(claims, "jti"),
	        fb_time_add(login_jint(claims, "exp"), s->conf->tokens.clock_skew), now, &first,
	        &err) != FB_OK) {
		/* Not a refusal of the client: the caller answers "try again". */
		(void)FB_ERR_SET(detail, FB_ERR_IO, "%s", err.msg);
		*why = "the store is unavailable";
		*fail = FB_LOGIN_OAUTH_UNAVAILABLE;
		c = NULL;
	} else if (!first) {
		*why = "client_assertion replayed";
		*fail = FB_LOGIN_OAUTH_ASSERTION_REPLAYED;
		c = NULL;
	}
	json_decref(claims);
	return c;
}

/*
 * Finds and authenticates the client; NULL when it is not one of ours, with
 * *fail (FB_LOGIN_OAUTH_CLIENT unless the assertion was replayed or the store
 * did not answer) and *why for the log; detail gets what the log needs beyond
 * *why.
 */
static const struct site_client *
client_authenticate(const struct fb_login_request *req, const struct fb_login_site *s,
    struct fb_store *store, const struct fb_form *f, const char **why, enum fb_login_failure *fail,
    struct fb_err *detail)
{
	const char *auth = req->authorization;
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
		return client_by_assertion(s, store, f, why, fail, detail);
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

/* The client could not be authenticated: invalid_client, or 503 when the store did not answer. */
static fb_rc
client_unknown(const struct fb_login_env *env, struct fb_login_response *resp, const char *area,
    const struct fb_form *f, enum fb_login_failure fail, const char *why,
    const struct fb_err *detail, const char *corr)
{
	struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
		.area = area,
		.corr = corr,
		.client = fb_form_get(f, "client_id"),
		.detail = detail->msg[0] ? detail->msg : why,
		/* Credentials that did not hold (a replayed assertion's did, once). */
		.anonymous = fail == FB_LOGIN_OAUTH_CLIENT };

	return client_refused(env, resp, fail, &r);
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
static fb_rc
token_response(const struct fb_login_env *env, struct fb_login_response *out,
    const struct site_client *c, const struct fb_session *sess, const char *want,
    const char *refresh, const char *issued_type, const char *corr)
{
	struct fb_store *store = env->store;
	const struct fb_conf_tenant *t = fb_conf_tenant_find(env->conf, sess->tenant);
	json_t *outcome = json_loads(sess->attrs ? sess->attrs : "{}", 0, NULL);
	json_t *auds = json_object_get(outcome, "audiences"), *attrs, *toks = json_object(), *v;
	json_t *resp = NULL;
	const char *first = NULL;
	char *body = NULL;
	size_t i;
	int64_t now = (int64_t)time(NULL);
	fb_rc ret;
	bool failed = false; /* a token this session may have could not be signed */

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
		if (fb_federation_issue(env->fed, &req, &tok, &err) != FB_OK) {
			failed = true;
			fb_log(FB_LOG_ERROR, "token [%s]: %s for %s: %s", corr, sess->fid, aud,
			    err.msg);
		} else {
			char jti[64], detail[64];
			(void)json_object_set_new(toks, aud, json_string(tok));
			login_token_jti(tok, jti, sizeof(jti));
			(void)snprintf(detail, sizeof(detail), "session %s", sess->id);
			login_audit_token(store, corr, sess, aud, jti, detail);
			if (first == NULL)
				first = json_string_value(json_object_get(toks, aud));
		}
		json_decref(rel);
		free(tok);
	}
	if (first == NULL) {
		/* A token that could not be signed is the bridge's failure, not a "no". */
		const char *desc = failed ? "no token could be signed"
		    : want                ? "this user gets no token for that audience"
		                          : "the outbound policy gives this user no remote tenant";
		struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
			.area = "token",
			.corr = corr,
			.tenant = sess->tenant,
			.fid = sess->fid,
			.provider = sess->provider,
			.client = c->c->client_id,
			.detail = desc };
		json_decref(outcome);
		json_decref(toks);
		return client_refused(env, out,
		    failed     ? FB_LOGIN_OAUTH_UNAVAILABLE
		        : want ? FB_LOGIN_OAUTH_BAD_TARGET
		               : FB_LOGIN_OAUTH_NO_AUDIENCE,
		    &r);
	}
	resp = json_pack("{s:s,s:s,s:I,s:s,s:O}", "access_token", first, "token_type", "Fed",
	    "expires_in", (json_int_t)env->conf->tokens.ttl, "fid", sess->fid, "federation_tokens",
	    toks);
	if (resp != NULL && refresh != NULL)
		(void)json_object_set_new(resp, "refresh_token", json_string(refresh));
	if (resp != NULL && issued_type != NULL) /* RFC 8693 2.2.1 */
		(void)json_object_set_new(resp, "issued_token_type", json_string(issued_type));
	body = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	ret = body ? login_respond(out, HTTP_OK, "application/json", body, strlen(body))
	           : FB_ERR_NOMEM;
	if (ret == FB_OK)
		ret = fb_login_response_header(out, "Pragma", "no-cache");
	if (ret == FB_OK)
		ret = fb_login_response_header(out, "X-Correlation-Id", corr);
	json_decref(resp);
	json_decref(outcome);
	json_decref(toks);
	if (body != NULL)
		fb_cleanse(body, strlen(body)); /* it held the tokens */
	free(body);
	return ret;
}

/*
 * The session, if it is live and not revoked; else false with *fail (the
 * session is over, or the store did not answer: err says why) and *why for
 * the log.
 */
static bool
session_live(struct fb_store *store, const char *sid, int64_t now, struct fb_session *out,
    const char **why, enum fb_login_failure *fail, struct fb_err *err)
{
	enum fb_revocation_kind rk = FB_REVOCATION_NONE;
	fb_rc rc =
	    sid == NULL ? FB_ERR_NOTFOUND : fb_store_session_touch(store, sid, now, out, err);

	if (rc == FB_OK)
		rc = fb_store_session_revoked(store, out, now, &rk, err);
	if (rc == FB_OK && rk == FB_REVOCATION_NONE)
		return true;
	*fail = rc != FB_OK && rc != FB_ERR_NOTFOUND ? FB_LOGIN_OAUTH_UNAVAILABLE
	                                             : FB_LOGIN_OAUTH_SESSION_ENDED;
	*why = rc == FB_ERR_NOTFOUND ? "the session has ended"
	    : rc != FB_OK            ? "the store is unavailable"
	                             : "the session was revoked";
	return false;
}

/*
 * A grant refused (invalid_grant, the row fail names) or failed: one the
 * store did not answer (or the bridge failed) is 503, so the client retries
 * and keeps its user; invalid_grant would tell it the session is over. why
 * and err (the store's detail) go to the log.
 */
static fb_rc
grant_refused(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct site_client *c, const char *grant, enum fb_login_failure fail, const char *why,
    const struct fb_err *err, const char *corr)
{
	bool down = fb_login_failure_row(fail)->outage;
	char detail[REFUSAL_DETAIL_MAX];
	struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
		.area = "token",
		.corr = corr,
		.tenant = c->t->id,
		.client = c->c->client_id,
		.detail = detail };

	(void)snprintf(
	    detail, sizeof(detail), "%s: %s", grant, down && err->msg[0] != '\0' ? err->msg : why);
	return client_refused(env, resp, fail, &r);
}

static fb_rc
grant_code(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	struct fb_store *store = env->store;
	const char *code = fb_form_get(f, "code"), *redirect = fb_form_get(f, "redirect_uri");
	struct fb_session sess = { 0 };
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	json_t *doc = login_unseal(env->site->k_code, "code", code), *rt_doc = NULL;
	const char *why = NULL;
	enum fb_login_failure fail = FB_LOGIN_OAUTH_BAD_CODE;
	char *refresh = NULL;
	fb_rc ret;
	bool first = false;

	if (doc == NULL || login_jint(doc, "e") < now || login_jstr(doc, "j") == NULL)
		why = doc == NULL ? "not a code of this bridge" : "the code expired";
	else if (login_jstr(doc, "t") == NULL || strcmp(login_jstr(doc, "t"), c->t->id) != 0)
		why = "the code was issued to another tenant";
	else if (redirect == NULL || login_jstr(doc, "r") == NULL ||
	    strcmp(redirect, login_jstr(doc, "r")) != 0)
		why = "redirect_uri is not the return_to of the login";
	else if (fb_store_once_consume(store, FB_ONCE_AUTH_CODE, login_jstr(doc, "j"),
	             login_jint(doc, "e"), now, &first, &err) != FB_OK) {
		why = "the store is unavailable";
		fail = FB_LOGIN_OAUTH_UNAVAILABLE;
	} else if (!first)
		why = "the code was used before";
	if (why == NULL &&
	    session_live(store, login_jstr(doc, "sid"), now, &sess, &why, &fail, &err)) {
		rt_doc = json_pack("{s:s,s:s,s:s,s:I}", "sid", sess.id, "t", c->t->id, "cid",
		    c->c->client_id, "iat", (json_int_t)now);
		if (rt_doc == NULL ||
		    login_seal(env->site->k_refresh, "refresh", rt_doc, &refresh) != FB_OK) {
			why = "the refresh token could not be sealed";
			fail = FB_LOGIN_OAUTH_UNAVAILABLE;
		}
	}
	if (why != NULL) {
		ret = grant_refused(env, resp, c, "authorization_code", fail, why, &err, corr);
	} else {
		ret = token_response(
		    env, resp, c, &sess, fb_form_get(f, "audience"), refresh, NULL, corr);
	}
	fb_session_clear(&sess);
	json_decref(doc);
	json_decref(rt_doc);
	free(refresh);
	return ret;
}

static fb_rc
grant_refresh(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	json_t *doc =
	    login_unseal(env->site->k_refresh, "refresh", fb_form_get(f, "refresh_token"));
	struct fb_session sess = { 0 };
	struct fb_err err = { 0 };
	const char *why = NULL;
	enum fb_login_failure fail = FB_LOGIN_OAUTH_BAD_REFRESH;
	fb_rc ret;

	if (doc == NULL)
		why = "not a refresh token of this bridge";
	else if (login_jstr(doc, "cid") == NULL ||
	    strcmp(login_jstr(doc, "cid"), c->c->client_id) != 0)
		why = "the refresh token was issued to another client";
	if (why == NULL)
		(void)session_live(env->store, login_jstr(doc, "sid"), (int64_t)time(NULL), &sess,
		    &why, &fail, &err);
	if (why != NULL) {
		ret = grant_refused(env, resp, c, "refresh_token", fail, why, &err, corr);
	} else {
		/* Syncless: the outcome of the login's mapping stands until the session ends. */
		ret = token_response(
		    env, resp, c, &sess, fb_form_get(f, "audience"), NULL, NULL, corr);
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
static fb_rc
grant_exchange(const struct fb_login_env *env, struct fb_login_response *resp,
    const struct site_client *c, const struct fb_form *f, const char *corr)
{
	const struct fb_login_site *site = env->site;
	const char *subject = fb_form_get(f, "subject_token");
	const char *type = fb_form_get(f, "subject_token_type");
	const char *want = fb_form_get(f, "requested_token_type");
	const struct fb_conf_provider *prov = NULL;
	const char *down = NULL; /* the provider whose keys could not be fetched */
	fb_rc down_rc = FB_OK; /* why: FB_ERR_IO unreachable, FB_ERR_CONFIG misconfigured */
	struct fb_identity *id = NULL;
	struct opened opened = { 0 };
	struct fb_err err = { 0 };
	enum login_opening opening = LOGIN_OPEN_UNAVAILABLE;
	char *iss = NULL, detail[FB_ERR_MSG_MAX];
	json_t *claims = NULL, *sid;
	fb_rc ret;
	struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
		.area = "token",
		.corr = corr,
		.tenant = c->t->id,
		.client = c->c->client_id,
		.reason = "invalid_request" };

	r.detail = subject == NULL || type == NULL
	    ? "subject_token and subject_token_type are required"
	    : strcmp(type, TOKEN_TYPE_ID_TOKEN) != 0
	    ? "subject_token_type must be " TOKEN_TYPE_ID_TOKEN
	    : want != NULL && strcmp(want, TOKEN_TYPE_JWT) != 0
	    ? "requested_token_type can only be " TOKEN_TYPE_JWT
	    : fb_form_get(f, "actor_token") != NULL ? "delegation (actor_token) is not supported"
	                                            : NULL;
	if (r.detail != NULL)
		return client_refused(env, resp, FB_LOGIN_OAUTH_BAD_EXCHANGE, &r);
	/* From here the exchange is a login: its refusals are login_refused. */
	r.kind = FB_AUDIT_LOGIN_REFUSED;
	iss = peek_issuer(subject);
	(void)snprintf(
	    detail, sizeof(detail), "no provider of tenant %s has that issuer", c->t->id);
	for (size_t i = 0; iss != NULL && i < site->n_rps && claims == NULL; i++) {
		const struct fb_conf_provider *p = fb_oidc_rp_provider(site->rps[i]);
		if (site->rp_tenants[i] != c->t || strcmp(p->issuer, iss) != 0)
			continue;
		fb_rc vrc = fb_oidc_rp_validate_id_token(site->rps[i], subject, NULL,
		    (int64_t)time(NULL), env->conf->tokens.exchange_max_age, &claims, &err);
		if (vrc == FB_OK)
			prov = p;
		else {
			(void)snprintf(detail, sizeof(detail), "%s", err.msg);
			down = vrc == FB_ERR_IO || vrc == FB_ERR_CONFIG ? p->name : NULL;
			down_rc = vrc;
		}
	}
	if (prov == NULL) {
		free(iss);
		r.provider = down;
		r.detail = detail;
		if (down != NULL) {
			/* The IdP's keys could not be fetched: try again later, the token may be
			 * good. */
			r.reason = fb_login_failure_row(login_idp_failure(down, down_rc))->code;
			return client_refused(env, resp, FB_LOGIN_OAUTH_IDP_UNAVAILABLE, &r);
		}
		/* Why the ID token was refused is in the log line, not in the answer. */
		r.reason = "id_token";
		return client_refused(env, resp, FB_LOGIN_OAUTH_BAD_ID_TOKEN, &r);
	}
	sid = json_object_get(claims, "sid");
	if (fb_identity_new(prov->name, prov->issuer, login_jstr(claims, "sub"),
	        json_is_string(sid) ? json_string_value(sid) : NULL, &id, &err) != FB_OK) {
		r.provider = prov->name;
		r.reason = "id_token";
		r.detail = err.msg;
		ret = client_refused(env, resp, FB_LOGIN_OAUTH_BAD_ID_TOKEN, &r);
		goto done;
	} else {
		struct login_facts facts = {
			.tenant = c->t->id, .provider = prov->name, .id = id, .claims = claims
		};
		opening = login_open_session(env, &facts, corr, &opened);
	}
	/* Already logged and audited; a session the store could not keep is "try again". */
	if (opening == LOGIN_OPEN_UNAVAILABLE)
		ret = login_answer(resp, FB_LOGIN_OAUTH_UNAVAILABLE, NULL, corr, NULL);
	else if (opening != LOGIN_OPENED)
		ret = login_answer(resp, FB_LOGIN_OAUTH_USER_REFUSED, NULL, corr, NULL);
	else
		ret = token_response(env, resp, c, &opened.sess, fb_form_get(f, "audience"), NULL,
		    TOKEN_TYPE_JWT, corr);
done:
	login_opened_clear(&opened);
	fb_identity_free(id);
	json_decref(claims);
	free(iss);
	return ret;
}

bool
login_form_content_type(const struct fb_login_request *req)
{
	const char *ct = req->content_type;
	static const char want[] = "application/x-www-form-urlencoded";

	return ct != NULL && strncasecmp(ct, want, sizeof(want) - 1) == 0 &&
	    (ct[sizeof(want) - 1] == '\0' || ct[sizeof(want) - 1] == ';');
}

/* The request's body, "" when there was none. */
static const char *
body_of(const struct fb_login_request *req, size_t *len)
{
	*len = req->body != NULL ? req->body_len : 0;
	return req->body != NULL ? req->body : "";
}

/*
 * What /token and /logout begin with: the form read and the client
 * authenticated. NULL when the request was refused (or the store did not
 * answer), then logged, audited and answered in *ret; f is cleared then.
 * Else the client, with r naming its tenant and client id.
 */
static const struct site_client *
client_request(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp, struct fb_form *f, struct login_refusal *r, fb_rc *ret)
{
	struct fb_err err = { 0 };
	const struct site_client *c;
	const char *why = NULL, *body;
	enum fb_login_failure fail = FB_LOGIN_OAUTH_CLIENT;
	size_t len;

	body = body_of(req, &len);
	if (!login_form_content_type(req) || fb_form_parse(body, len, f, &err) != FB_OK) {
		r->detail =
		    err.msg[0] ? err.msg : "the body must be application/x-www-form-urlencoded";
		r->anonymous = true; /* read before any client is authenticated */
		*ret = client_refused(env, resp, FB_LOGIN_OAUTH_BAD_REQUEST, r);
		r->detail = NULL; /* it was err's */
		r->anonymous = false;
		fb_form_clear(f);
		return NULL;
	}
	if ((c = client_authenticate(req, env->site, env->store, f, &why, &fail, &err)) == NULL) {
		*ret = client_unknown(env, resp, r->area, f, fail, why, &err, r->corr);
		fb_form_clear(f);
		return NULL;
	}
	r->tenant = c->t->id;
	r->client = c->c->client_id;
	return c;
}

fb_rc
fb_login_token(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	struct fb_form f = { 0 };
	const struct site_client *c;
	const char *grant;
	char corr[CORRELATION_LEN + 1];
	fb_rc ret;
	struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
		.area = "token",
		.corr = corr,
		.reason = "invalid_request" };

	login_correlation_new(corr);
	if ((c = client_request(env, req, resp, &f, &r, &ret)) == NULL)
		return ret;
	grant = fb_form_get(&f, "grant_type");
	if (grant == NULL) {
		r.detail = "grant_type is missing";
		ret = client_refused(env, resp, FB_LOGIN_OAUTH_NO_GRANT_TYPE, &r);
	} else if (strcmp(grant, "authorization_code") == 0)
		ret = grant_code(env, resp, c, &f, corr);
	else if (strcmp(grant, "refresh_token") == 0)
		ret = grant_refresh(env, resp, c, &f, corr);
	else if (strcmp(grant, GRANT_TOKEN_EXCHANGE) == 0)
		ret = grant_exchange(env, resp, c, &f, corr);
	else {
		r.reason = "unsupported_grant_type";
		r.detail = "grant_type must be authorization_code, refresh_token or "
		           "" GRANT_TOKEN_EXCHANGE;
		ret = client_refused(env, resp, FB_LOGIN_OAUTH_UNSUPPORTED_GRANT, &r);
	}
	fb_form_clear(&f);
	return ret;
}

/* ---- POST /logout ---- */

fb_rc
fb_login_logout(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	struct fb_store *store = env->store;
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	struct fb_session sess = { 0 };
	const struct site_client *c;
	const struct fb_conf_tenant *t = NULL;
	struct fb_oidc_rp *rp;
	const char *why = NULL, *after;
	char corr[CORRELATION_LEN + 1], *url = NULL;
	int64_t now = (int64_t)time(NULL);
	json_t *doc = NULL, *answer = NULL;
	fb_rc ret;
	fb_rc grc;
	struct login_refusal r = { .kind = FB_AUDIT_TOKEN_REFUSED,
		.area = "logout",
		.corr = corr,
		.reason = "invalid_request" };

	login_correlation_new(corr);
	if ((c = client_request(env, req, resp, &f, &r, &ret)) == NULL)
		return ret;
	after = fb_form_get(&f, "post_logout_redirect_uri");
	doc = login_unseal(env->site->k_refresh, "refresh", fb_form_get(&f, "refresh_token"));
	if (doc == NULL)
		why = "not a refresh token of this bridge";
	else if (login_jstr(doc, "cid") == NULL ||
	    strcmp(login_jstr(doc, "cid"), c->c->client_id) != 0)
		why = "the refresh token was issued to another client";
	else if (after != NULL && !login_return_to_allowed(c->t, after))
		why = "post_logout_redirect_uri is not in the tenant's return_to list";
	if (why != NULL) {
		r.detail = why;
		ret = client_refused(env, resp, FB_LOGIN_OAUTH_BAD_LOGOUT, &r);
		goto done;
	}
	/* Ending a session that already ended is not an error (as in RFC 7009); a store
	 * that does not answer is: the session may well be live. */
	grc = fb_store_session_get(store, login_jstr(doc, "sid"), &sess, &err);
	r.reason = "temporarily_unavailable";
	r.detail = err.msg;
	if (grc != FB_OK && grc != FB_ERR_NOTFOUND) {
		ret = client_refused(env, resp, FB_LOGIN_OAUTH_UNAVAILABLE, &r);
		goto done;
	}
	if (grc == FB_OK) {
		struct fb_revocation rev = { .kind = FB_REVOCATION_SESSION,
			.value = sess.id,
			.until = login_revocation_until(env->conf, now),
			.reason = "logout",
			.actor = c->c->client_id };
		struct fb_saml_sp *sp;
		if (fb_store_revoke(store, &rev, now, NULL, &err) != FB_OK) {
			ret = client_refused(env, resp, FB_LOGIN_OAUTH_UNAVAILABLE, &r);
			goto done;
		}
		login_audit(store, FB_AUDIT_REVOCATION, corr, sess.tenant, sess.fid, sess.provider,
		    NULL, "logout", c->c->client_id);
		fb_log(FB_LOG_INFO, "logout [%s]: session of %s ended by client %s", corr, sess.fid,
		    c->c->client_id);
		if ((rp = login_find_rp(env->site, sess.provider, &t)) != NULL &&
		    fb_oidc_rp_end_session_url(rp, after, now, &url, &err) != FB_OK)
			fb_log(FB_LOG_WARN, "logout [%s]: no end-session URL: %s", corr, err.msg);
		/* SAML: a signed LogoutRequest; the IdP answers at /saml/slo with RelayState. */
		if ((sp = login_find_sp(env->site, sess.provider, &t)) != NULL &&
		    fb_saml_sp_logout_url(
		        sp, sess.subject, sess.idp_session, after, now, &url, &err) != FB_OK)
			fb_log(
			    FB_LOG_WARN, "logout [%s]: no SAML LogoutRequest: %s", corr, err.msg);
	}
	answer = json_pack("{s:b}", "session_ended", 1);
	if (answer != NULL && url != NULL)
		(void)json_object_set_new(answer, "end_session_url", json_string(url));
	{
		char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
		ret = text ? login_respond(resp, HTTP_OK, "application/json", text, strlen(text))
		           : FB_ERR_NOMEM;
		if (ret == FB_OK)
			ret = fb_login_response_header(resp, "X-Correlation-Id", corr);
		free(text);
	}
done:
	fb_session_clear(&sess);
	json_decref(doc);
	json_decref(answer);
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
			v = strdup(login_jstr(doc, name));
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

fb_rc
fb_login_backchannel_logout(const struct fb_login_env *env, const struct fb_login_request *req,
    struct fb_login_response *resp)
{
	struct fb_store *store = env->store;
	const struct fb_login_site *site = env->site;
	struct fb_form f = { 0 };
	struct fb_err err = { 0 };
	struct fb_revocation r = { 0 };
	const struct fb_conf_provider *prov = NULL;
	const struct fb_conf_tenant *t = NULL;
	const char *token = NULL, *why = NULL, *body;
	char corr[CORRELATION_LEN + 1], *iss = NULL;
	int64_t now = (int64_t)time(NULL), seq = 0;
	json_t *claims = NULL;
	fb_rc ret;
	size_t len;
	bool first = false, down = false;
	struct login_refusal refusal = { .kind = FB_AUDIT_REVOCATION,
		.area = "back-channel logout",
		.corr = corr,
		.reason = "backchannel_logout" };

	login_correlation_new(corr);
	body = body_of(req, &len);
	/* Back-Channel Logout 1.0, 2.8: 200 when done, 400 with an OAuth error otherwise; a
	 * store that does not answer is 503, so the IdP tries again. */
	if (!login_form_content_type(req) || fb_form_parse(body, len, &f, &err) != FB_OK ||
	    (token = fb_form_get(&f, "logout_token")) == NULL) {
		fb_form_clear(&f);
		refusal.detail = "no logout_token";
		refusal.anonymous = true;
		return login_fail(env, resp, FB_LOGIN_OAUTH_BAD_LOGOUT_TOKEN, &refusal, NULL, NULL);
	}
	iss = peek_issuer(token);
	why = "no provider of this bridge has that issuer";
	for (size_t i = 0; iss != NULL && i < site->n_rps && claims == NULL; i++) {
		prov = fb_oidc_rp_provider(site->rps[i]);
		if (strcmp(prov->issuer, iss) != 0)
			continue;
		t = site->rp_tenants[i];
		fb_rc vrc = fb_oidc_rp_validate_logout(site->rps[i], token, now, &claims, &err);
		if (vrc != FB_OK) {
			why = err.msg;
			/* The IdP's keys could not be fetched: not proven bad, so the IdP is
			 * told to try again (503) rather than that its logout was refused. */
			down = vrc == FB_ERR_IO;
		}
	}
	if (claims != NULL) {
		why = NULL;
		down = false;
		if (fb_store_once_consume(store, FB_ONCE_LOGOUT_TOKEN, login_jstr(claims, "jti"),
		        fb_time_add(login_jint(claims, "exp"), env->conf->tokens.clock_skew), now,
		        &first, &err) != FB_OK) {
			why = err.msg;
			down = true;
		} else if (!first)
			why = "logout token replayed";
	}
	if (why == NULL) {
		/* The IdP session when named (every bridge session it opened), else the subject. */
		r.kind =
		    login_jstr(claims, "sid") ? FB_REVOCATION_IDP_SESSION : FB_REVOCATION_SUBJECT;
		r.issuer = prov->issuer;
		r.value = login_jstr(claims, "sid") ? login_jstr(claims, "sid")
		                                    : login_jstr(claims, "sub");
		r.until = login_revocation_until(env->conf, now);
		r.reason = "OpenID Connect back-channel logout";
		r.actor = prov->name;
		if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK) {
			why = err.msg;
			down = true;
		}
	}
	if (why != NULL) {
		refusal.tenant = t ? t->id : NULL;
		refusal.provider = t ? prov->name : NULL; /* t: an issuer of ours matched */
		refusal.detail = why;
		refusal.anonymous = claims == NULL; /* no IdP of ours signed it */
		ret = login_fail(env, resp,
		    down ? FB_LOGIN_OAUTH_UNAVAILABLE : FB_LOGIN_OAUTH_BAD_LOGOUT_TOKEN, &refusal,
		    NULL, NULL);
	} else {
		fb_log(FB_LOG_INFO, "back-channel logout [%s]: provider %s: %s revoked (%lld)",
		    corr, prov->name, fb_revocation_kind_name(r.kind), (long long)seq);
		login_audit(store, FB_AUDIT_REVOCATION, corr, t->id, NULL, prov->name, NULL,
		    "backchannel_logout", fb_revocation_kind_name(r.kind));
		ret = login_respond(resp, HTTP_OK, "application/json", "{}\n", 3);
		if (ret == FB_OK)
			ret = fb_login_response_header(resp, "X-Correlation-Id", corr);
	}
	json_decref(claims);
	free(iss);
	fb_form_clear(&f);
	return ret;
}
