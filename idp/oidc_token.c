/*
 * OpenID Connect ID token validation (Core 3.1.3.7), done here rather than
 * by Debian's liboauth2, which checks neither nonce, aud nor iss and has no
 * alg allow-list (docs/dependencies.md). cjose parses the JWS and checks the
 * signature; every decision about what to accept is made in this file:
 * the alg against the provider's allow-list (never none, never HMAC), the
 * key by kid from the issuer's key set, the key type against the alg, then
 * iss, aud, azp, exp, iat, nbf, nonce and sub, and at_hash against the
 * access token when both are there.
 */
#include "fb_idp.h"

#include <cjose/cjose.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OIDC_KEYS_MAX 64
#define OIDC_TOKEN_MAX ((size_t)64 * 1024)
#define OIDC_SUB_MAX 255
#define JWS_ALG_MAX 8 /* "RS256" and the like, with the NUL */

struct fb_oidc_keys {
	cjose_jwk_t **keys;
	char **kids; /* NULL where the key has none */
	size_t n;
};

void
fb_oidc_keys_free(struct fb_oidc_keys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++) {
		cjose_jwk_release(k->keys[i]);
		free(k->kids[i]);
	}
	free(k->keys);
	free(k->kids);
	free(k);
}

size_t
fb_oidc_keys_count(const struct fb_oidc_keys *k)
{
	return k->n;
}

static bool
is_b64url(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		        (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

/* cjose asserts (aborts) on some non-base64url key material: such a key is skipped first. */
static bool
jwk_material_ok(json_t *k)
{
	static const char *const fields[] = { "n", "e", "x", "y", "d", "p", "q", "dp", "dq", "qi",
		"k" };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *v = json_object_get(k, fields[i]);
		if (v != NULL && (!json_is_string(v) || !is_b64url(json_string_value(v))))
			return false;
	}
	return true;
}

fb_rc
fb_oidc_keys_parse(const char *jwks, size_t len, struct fb_oidc_keys **out, struct fb_err *err)
{
	json_t *doc = json_loadb(jwks, len, JSON_REJECT_DUPLICATES, NULL), *arr, *k;
	struct fb_oidc_keys *ks = NULL;
	size_t i;
	fb_rc rc = FB_ERR_INVALID;

	*out = NULL;
	arr = json_object_get(doc, "keys");
	if (!json_is_array(arr) || json_array_size(arr) > OIDC_KEYS_MAX) {
		FB_ERR_SET(err, rc, "not a JWKS of at most %d keys", OIDC_KEYS_MAX);
		goto done;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL ||
	    (ks->keys = calloc(json_array_size(arr) + 1, sizeof(cjose_jwk_t *))) == NULL ||
	    (ks->kids = calloc(json_array_size(arr) + 1, sizeof(*ks->kids))) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(arr, i, k)
	{
		json_t *use = json_object_get(k, "use"), *kid = json_object_get(k, "kid");
		char *text;
		cjose_err cerr;
		cjose_jwk_t *jwk;
		/* Encryption keys and private parts have no business in a signing key set. */
		if (!json_is_object(k) || !jwk_material_ok(k) ||
		    (use != NULL &&
		        !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0)) ||
		    json_object_get(k, "d") != NULL)
			continue;
		if ((text = json_dumps(k, JSON_COMPACT)) == NULL)
			continue;
		jwk = cjose_jwk_import(text, strlen(text), &cerr);
		free(text);
		if (jwk == NULL || cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_OCT) {
			cjose_jwk_release(jwk); /* symmetric keys are never accepted */
			continue;
		}
		ks->keys[ks->n] = jwk;
		ks->kids[ks->n] = json_is_string(kid) ? strdup(json_string_value(kid)) : NULL;
		ks->n++;
	}
	*out = ks;
	ks = NULL;
	rc = FB_OK;
done:
	fb_oidc_keys_free(ks);
	json_decref(doc);
	return rc;
}

static fb_rc refuse_as(struct fb_err *err, const char *what, const char *fmt, ...) FB_PRINTF(3, 4);

static fb_rc
refuse_as(struct fb_err *err, const char *what, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return FB_ERR_SET(err, FB_ERR_INVALID, "%s: %s", what, msg);
}

#define refuse(err, ...) refuse_as((err), "id_token", __VA_ARGS__)

/* The key an alg needs: RSA for RS and PS, EC of the alg's own curve for ES. */
static bool
kty_fits(const cjose_jwk_t *jwk, const char *alg)
{
	cjose_err cerr;
	cjose_jwk_kty_t kty = cjose_jwk_get_kty(jwk, &cerr);

	if (strncmp(alg, "RS", 2) == 0 || strncmp(alg, "PS", 2) == 0)
		return kty == CJOSE_JWK_KTY_RSA;
	if (kty != CJOSE_JWK_KTY_EC)
		return false;
	/* cjose does not tie ES384 to P-384 or ES512 to P-521: checked here. */
	switch (cjose_jwk_EC_get_curve(jwk, &cerr)) {
	case CJOSE_JWK_EC_P_256:
		return strcmp(alg, "ES256") == 0;
	case CJOSE_JWK_EC_P_384:
		return strcmp(alg, "ES384") == 0;
	case CJOSE_JWK_EC_P_521:
		return strcmp(alg, "ES512") == 0;
	default:
		return false;
	}
}

static bool
alg_allowed(const char *alg, const char *const *algs, size_t n_algs)
{
	static const char *const known[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512" };
	bool ok = false;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
		ok = strcmp(alg, known[i]) == 0;
	if (!ok)
		return false; /* none and HS* are never accepted, whatever the list says */
	for (size_t i = 0; i < n_algs; i++)
		if (strcmp(alg, algs[i]) == 0)
			return true;
	return n_algs == 0 && strcmp(alg, "RS256") == 0; /* Core's default */
}

/* The key by kid; without a kid, the one key that fits the alg, if exactly one does. */
static const cjose_jwk_t *
select_key(const struct fb_oidc_keys *ks, const char *kid, const char *alg, bool *unknown_kid,
    const char *what, struct fb_err *err)
{
	const cjose_jwk_t *found = NULL;
	size_t fits = 0;

	for (size_t i = 0; i < ks->n; i++) {
		if (kid != NULL && (ks->kids[i] == NULL || strcmp(ks->kids[i], kid) != 0))
			continue;
		if (!kty_fits(ks->keys[i], alg))
			continue;
		found = ks->keys[i];
		fits++;
	}
	if (fits == 1)
		return found;
	if (fits == 0 && kid != NULL) {
		/* Perhaps the issuer rotated: NOTFOUND lets the caller refetch its keys. */
		*unknown_kid = true;
		refuse_as(err, what, "no key of the issuer has kid \"%s\" and fits %s", kid, alg);
	} else if (fits == 0) {
		refuse_as(err, what, "no key of the issuer fits %s", alg);
	} else
		refuse_as(err, what,
		    "no kid, and %zu keys of the issuer fit %s: which one is unknown", fits, alg);
	return NULL;
}

static bool
aud_ok(json_t *aud, const char *client_id, size_t *n)
{
	size_t i;
	json_t *v;

	*n = 0;
	if (json_is_string(aud)) {
		*n = 1;
		return strcmp(json_string_value(aud), client_id) == 0;
	}
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return false;
	*n = json_array_size(aud);
	/* Every audience must be us: an extra, untrusted one is refused (Core 3.1.3.7 #3). */
	json_array_foreach(aud, i,
	    v) if (!json_is_string(v) || strcmp(json_string_value(v), client_id) != 0) return false;
	return true;
}

/* A JSON integer as int64_t (json_int_t is long long: the same width here). */
static int64_t
json_int(const json_t *v)
{
	return (int64_t)json_integer_value(v);
}

static bool
sub_ok(json_t *sub)
{
	return json_is_string(sub) && json_string_length(sub) > 0 &&
	    json_string_length(sub) <= OIDC_SUB_MAX;
}

#define LOGOUT_TOKEN "logout_token"

/*
 * Back-Channel Logout 1.0, 2.6: the event, a jti, sid or sub, and never a
 * nonce. Without exp (no_exp), the claims get exp = iat + the window of
 * FB_OIDC_LOGOUT_NO_EXP_MAX_AGE: the caller keeps the jti consumed by exp.
 */
static fb_rc
check_logout(json_t *c, bool no_exp, struct fb_err *err)
{
	json_t *events = json_object_get(c, "events"), *sub = json_object_get(c, "sub");
	json_t *sid = json_object_get(c, "sid"), *jti = json_object_get(c, "jti");

	if (!json_is_object(json_object_get(events, FB_OIDC_LOGOUT_EVENT)))
		return refuse_as(err, LOGOUT_TOKEN, "no back-channel logout event");
	if (json_object_get(c, "nonce") != NULL)
		return refuse_as(err, LOGOUT_TOKEN, "a nonce is forbidden");
	if (!json_is_string(jti) || json_string_length(jti) == 0 ||
	    json_string_length(jti) > OIDC_SUB_MAX)
		return refuse_as(err, LOGOUT_TOKEN, "no jti");
	if (sub != NULL && !sub_ok(sub))
		return refuse_as(err, LOGOUT_TOKEN, "sub must be 1 to %d characters", OIDC_SUB_MAX);
	if (sid != NULL && !sub_ok(sid))
		return refuse_as(err, LOGOUT_TOKEN, "sid must be 1 to %d characters", OIDC_SUB_MAX);
	if (sub == NULL && sid == NULL)
		return refuse_as(err, LOGOUT_TOKEN, "neither sid nor sub");
	if (no_exp &&
	    json_object_set_new(c, "exp",
	        json_integer((json_int_t)fb_time_add(
	            json_int(json_object_get(c, "iat")), FB_OIDC_LOGOUT_NO_EXP_MAX_AGE))) != 0)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	return FB_OK;
}

static fb_rc
check_claims(json_t *c, const struct fb_oidc_expect *e, struct fb_err *err)
{
	json_t *iss = json_object_get(c, "iss"), *sub = json_object_get(c, "sub");
	json_t *azp = json_object_get(c, "azp"), *exp = json_object_get(c, "exp");
	json_t *iat = json_object_get(c, "iat"), *nbf = json_object_get(c, "nbf");
	json_t *nonce = json_object_get(c, "nonce");
	const char *what = e->logout_token ? LOGOUT_TOKEN : "id_token";
	/* Logout tokens from before the 2023 errata of Back-Channel Logout 1.0 carry no exp. */
	bool no_exp = e->logout_token && exp == NULL;
	size_t n_aud;

	if (!json_is_string(iss) || strcmp(json_string_value(iss), e->issuer) != 0)
		return refuse_as(err, what, "iss is not %s", e->issuer);
	if (!aud_ok(json_object_get(c, "aud"), e->client_id, &n_aud))
		return refuse_as(err, what, "aud must be exactly this client (%s)", e->client_id);
	if (azp != NULL &&
	    (!json_is_string(azp) || strcmp(json_string_value(azp), e->client_id) != 0))
		return refuse_as(err, what, "azp is not this client");
	if (n_aud > 1 && azp == NULL)
		return refuse_as(err, what, "several audiences and no azp");
	if (!no_exp && (!json_is_integer(exp) || fb_time_add(json_int(exp), e->skew) <= e->now))
		return refuse_as(err, what, "%s", json_is_integer(exp) ? "expired" : "no exp");
	if (!json_is_integer(iat) || fb_time_sub(json_int(iat), e->skew) > e->now)
		return refuse_as(
		    err, what, "%s", json_is_integer(iat) ? "iat is in the future" : "no iat");
	/* Without exp only iat bounds a logout token's life: a short one, so that its jti
	 * need not be remembered for ever. */
	if (no_exp && fb_time_add(json_int(iat), FB_OIDC_LOGOUT_NO_EXP_MAX_AGE + e->skew) < e->now)
		return refuse_as(err, what, "no exp, and iat is more than %d s old",
		    FB_OIDC_LOGOUT_NO_EXP_MAX_AGE);
	/* A token issued before this login began (or long before an exchange) was not issued
	 * for it: a far exp does not make an old token fresh. */
	if (fb_time_add(json_int(iat), e->skew) < e->iat_min)
		return refuse_as(err, what, "iat is too old (%llds before the earliest accepted)",
		    (long long)fb_time_sub(e->iat_min, json_int(iat)));
	if (nbf != NULL && (!json_is_integer(nbf) || fb_time_sub(json_int(nbf), e->skew) > e->now))
		return refuse_as(err, what, "not valid yet (nbf)");
	if (e->logout_token)
		return check_logout(c, no_exp, err);
	if (json_object_get(c, "events") != NULL)
		return refuse(err, "a logout token is not an ID token");
	if (e->nonce != NULL &&
	    (!json_is_string(nonce) || strcmp(json_string_value(nonce), e->nonce) != 0))
		return refuse(err, "%s", nonce ? "nonce does not match" : "no nonce");
	if (!sub_ok(sub))
		return refuse(err, "sub must be 1 to %d characters", OIDC_SUB_MAX);
	return FB_OK;
}

/* Three non-empty parts (the signature may not be empty either) of base64url characters. */
static bool
compact_jws_shape(const char *t, size_t len)
{
	size_t dots = 0, part = 0;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (c == '.') {
			if (part == 0 || ++dots > 2)
				return false;
			part = 0;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_'))
			return false;
		part++;
	}
	return dots == 2 && part > 0;
}

/* True when the first part decodes to a JSON header whose alg is "none". */
static bool
header_alg_is_none(const char *t, size_t len)
{
	const char *dot = memchr(t, '.', len);
	size_t n = dot ? (size_t)(dot - t) : 0, out = 0;
	unsigned char raw[512];
	json_t *h;
	bool none;

	if (n == 0 || n > 600 || fb_b64url_decode(t, n, raw, sizeof(raw), &out) != FB_OK ||
	    (h = json_loadb((const char *)raw, out, 0, NULL)) == NULL)
		return false;
	none = json_is_string(json_object_get(h, "alg")) &&
	    strcmp(json_string_value(json_object_get(h, "alg")), "none") == 0;
	json_decref(h);
	return none;
}

/* The signature part: shape, alg, key, signature; *payload is the JSON object signed. */
static fb_rc
jws_open(const struct fb_oidc_keys *keys, const char *token, size_t len, const char *const *algs,
    size_t n_algs, const char *what, json_t **payload, char alg_out[JWS_ALG_MAX],
    struct fb_err *err)
{
	cjose_jws_t *jws = NULL;
	cjose_header_t *hdr;
	const cjose_jwk_t *key;
	const char *alg, *kid, *crit;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	cjose_err cerr;
	json_t *c = NULL;
	bool unknown_kid = false;
	fb_rc rc = FB_ERR_INVALID;

	*payload = NULL;
	if (len == 0 || len > OIDC_TOKEN_MAX || memchr(token, '\0', len) != NULL)
		return refuse_as(err, what, "empty or larger than %zu bytes", OIDC_TOKEN_MAX);
	/* cjose asserts (aborts) on some malformed input: only a well-formed compact JWS
	 * of base64url parts reaches it. */
	if (!compact_jws_shape(token, len) || (jws = cjose_jws_import(token, len, &cerr)) == NULL) {
		/* An unsigned token (alg none) has an empty signature: say so, not just
		 * "malformed". */
		if (header_alg_is_none(token, len))
			return refuse_as(err, what, "alg none is not allowed for this provider");
		return refuse_as(err, what, "not a compact JWS");
	}
	hdr = cjose_jws_get_protected(jws);
	alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
	kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &cerr) : NULL;
	crit = hdr ? cjose_header_get(hdr, "crit", &cerr) : NULL;
	if (alg == NULL || !alg_allowed(alg, algs, n_algs)) {
		rc = refuse_as(
		    err, what, "alg %s is not allowed for this provider", alg ? alg : "(none)");
		goto done;
	}
	if (crit != NULL) {
		rc = refuse_as(err, what, "crit header parameters are not understood");
		goto done;
	}
	if ((key = select_key(keys, kid, alg, &unknown_kid, what, err)) == NULL) {
		if (unknown_kid && err != NULL)
			err->rc = FB_ERR_NOTFOUND;
		rc = unknown_kid ? FB_ERR_NOTFOUND : FB_ERR_INVALID;
		goto done;
	}
	if (!cjose_jws_verify(jws, key, &cerr)) {
		rc = refuse_as(err, what, "bad signature");
		goto done;
	}
	if (!cjose_jws_get_plaintext(jws, &plain, &plain_len, &cerr) ||
	    (c = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES, NULL)) ==
	        NULL ||
	    !json_is_object(c)) {
		rc = refuse_as(err, what, "the payload is not a JSON object (or repeats a claim)");
		goto done;
	}
	*payload = c;
	c = NULL;
	(void)snprintf(alg_out, JWS_ALG_MAX, "%s", alg); /* one of alg_allowed's: it fits */
	rc = FB_OK;
done:
	json_decref(c);
	cjose_jws_release(jws);
	return rc;
}

/*
 * Core 3.1.3.6 and 3.3.2.11: at_hash, when the ID token has one and the token
 * response an access token, is the base64url left half of the access token's
 * hash under the hash of the token's alg (SHA-256 for RS256, PS256, ES256).
 */
static fb_rc
check_at_hash(json_t *c, const char *alg, const char *access_token, struct fb_err *err)
{
	json_t *at_hash = json_object_get(c, "at_hash");
	const char *bits = alg + 2; /* after RS, PS or ES */
	const EVP_MD *md = strcmp(bits, "384") == 0 ? EVP_sha384()
	    : strcmp(bits, "512") == 0              ? EVP_sha512()
	                                            : EVP_sha256();
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char want[FB_B64URL_ENCODED_LEN(EVP_MAX_MD_SIZE / 2) + 1];

	if (at_hash == NULL || access_token == NULL)
		return FB_OK;
	if (!json_is_string(at_hash))
		return refuse(err, "at_hash is not a string");
	if (!EVP_Digest(access_token, strlen(access_token), h, &n, md, NULL) ||
	    fb_b64url_encode(h, n / 2, want, sizeof(want)) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "id_token: cannot hash the access token");
	if (strcmp(json_string_value(at_hash), want) != 0)
		return refuse(err, "at_hash is not the access token's");
	return FB_OK;
}

fb_rc
fb_oidc_id_token_validate(const struct fb_oidc_keys *keys, const char *token, size_t len,
    const struct fb_oidc_expect *e, json_t **claims, struct fb_err *err)
{
	json_t *c = NULL;
	char alg[JWS_ALG_MAX];
	fb_rc rc;

	*claims = NULL;
	if ((rc = jws_open(keys, token, len, e->algs, e->n_algs,
	         e->logout_token ? LOGOUT_TOKEN : "id_token", &c, alg, err)) != FB_OK)
		return rc;
	if ((rc = check_claims(c, e, err)) != FB_OK ||
	    (!e->logout_token && (rc = check_at_hash(c, alg, e->access_token, err)) != FB_OK)) {
		json_decref(c);
		return rc;
	}
	*claims = c;
	return FB_OK;
}

fb_rc
fb_oidc_client_assertion_validate(const struct fb_oidc_keys *keys, const char *token,
    const char *client_id, const char *audience, int64_t now, int64_t skew, json_t **claims,
    struct fb_err *err)
{
	static const char *const algs[] = { "RS256", "PS256", "ES256" };
	static const char what[] = "client_assertion";
	json_t *c = NULL, *exp, *iat, *nbf, *jti;
	char alg[JWS_ALG_MAX];
	size_t n_aud = 0;
	fb_rc rc;

	*claims = NULL;
	if ((rc = jws_open(keys, token, strlen(token), algs, 3, what, &c, alg, err)) != FB_OK)
		return rc == FB_ERR_NOTFOUND ? FB_ERR_INVALID : rc;
	exp = json_object_get(c, "exp");
	iat = json_object_get(c, "iat");
	nbf = json_object_get(c, "nbf");
	jti = json_object_get(c, "jti");
	/* RFC 7523 3: iss and sub are the client, aud is this endpoint, exp is required. */
	if (!json_is_string(json_object_get(c, "iss")) ||
	    strcmp(json_string_value(json_object_get(c, "iss")), client_id) != 0 ||
	    !json_is_string(json_object_get(c, "sub")) ||
	    strcmp(json_string_value(json_object_get(c, "sub")), client_id) != 0)
		rc = refuse_as(err, what, "iss and sub must be the client");
	else if (!aud_ok(json_object_get(c, "aud"), audience, &n_aud))
		rc = refuse_as(err, what, "aud must be exactly %s", audience);
	else if (!json_is_integer(exp) || fb_time_add(json_int(exp), skew) <= now)
		rc = refuse_as(err, what, "%s", json_is_integer(exp) ? "expired" : "no exp");
	else if (iat != NULL && (!json_is_integer(iat) || fb_time_sub(json_int(iat), skew) > now))
		rc = refuse_as(err, what, "iat is in the future");
	else if (nbf != NULL && (!json_is_integer(nbf) || fb_time_sub(json_int(nbf), skew) > now))
		rc = refuse_as(err, what, "not valid yet (nbf)");
	/* A bounded lifetime (exp - iat, else exp - now with the client's clock ahead by
	 * up to skew): an assertion valid for a year is a long-lived password. */
	else if (iat != NULL
	        ? fb_time_sub(json_int(exp), json_int(iat)) > FB_CLIENT_ASSERTION_LIFETIME_MAX
	        : fb_time_sub(json_int(exp), now) > FB_CLIENT_ASSERTION_LIFETIME_MAX + skew)
		rc = refuse_as(err, what, "its lifetime (exp - %s) is over %d s",
		    iat != NULL ? "iat" : "now", FB_CLIENT_ASSERTION_LIFETIME_MAX);
	else if (!json_is_string(jti) || json_string_length(jti) == 0 ||
	    json_string_length(jti) > OIDC_SUB_MAX)
		rc = refuse_as(err, what, "no jti");
	if (rc != FB_OK) {
		json_decref(c);
		return rc;
	}
	*claims = c;
	return FB_OK;
}
