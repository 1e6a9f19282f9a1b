/*
 * Unit tests for ID token validation (idp/oidc_token.c). A stand-in IdP,
 * inside this test only, signs tokens with cjose using RSA and EC keys made
 * here; each row changes one thing a hostile or broken IdP could send and
 * names the check that must refuse it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fb_idp.h"

#define ISS "https://kc.a.example/realms/corp"
#define CLIENT "fedbridge"
#define NOW 1800000000
#define LOGIN_START (NOW - 60) /* when the browser left for the IdP */
#define TOKEN_URL "https://bridge.a.example/token"
#define BACKEND "backend"

static cjose_jwk_t *rsa1, *rsa2, *ec1, *other;
static struct fb_oidc_keys *keys;

static cjose_jwk_t *
make_key(bool rsa, const char *kid)
{
	static const uint8_t e65537[] = { 0x01, 0x00, 0x01 };
	cjose_err cerr;
	cjose_jwk_t *k = rsa ? cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &cerr)
	                     : cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);

	if (k == NULL || (kid != NULL && !cjose_jwk_set_kid(k, kid, strlen(kid), &cerr)))
		return NULL;
	return k;
}

static int
setup(void **state)
{
	struct fb_err err = { 0 };
	cjose_err cerr;
	char *a, *b, *c, jwks[16384];

	(void)state;
	rsa1 = make_key(true, "rsa-1");
	rsa2 = make_key(true, "rsa-2");
	ec1 = make_key(false, "ec-1");
	other = make_key(true, "rsa-1"); /* same kid, not the IdP's key */
	if (rsa1 == NULL || rsa2 == NULL || ec1 == NULL || other == NULL)
		return -1;
	a = cjose_jwk_to_json(rsa1, false, &cerr);
	b = cjose_jwk_to_json(rsa2, false, &cerr);
	c = cjose_jwk_to_json(ec1, false, &cerr);
	/* An encryption key and a symmetric key in the set must never be used to verify. */
	(void)snprintf(jwks, sizeof(jwks),
	    "{\"keys\":[%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"c2VjcmV0\"}]}", a, b, c);
	free(a);
	free(b);
	free(c);
	return fb_oidc_keys_parse(jwks, strlen(jwks), &keys, &err) == FB_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	fb_oidc_keys_free(keys);
	cjose_jwk_release(rsa1);
	cjose_jwk_release(rsa2);
	cjose_jwk_release(ec1);
	cjose_jwk_release(other);
	return 0;
}

/* Signs payload with key under alg (kid from the key unless no_kid). The result is malloc'd. */
static char *
sign(const cjose_jwk_t *key, const char *alg, const char *payload, bool no_kid)
{
	cjose_err cerr;
	cjose_header_t *h = cjose_header_new(&cerr);
	cjose_jws_t *jws;
	const char *ser = NULL;
	char *out = NULL;

	if (h == NULL || !cjose_header_set(h, CJOSE_HDR_ALG, alg, &cerr) ||
	    (!no_kid && !cjose_header_set(h, CJOSE_HDR_KID, cjose_jwk_get_kid(key, &cerr), &cerr)))
		return NULL;
	jws = cjose_jws_sign(key, h, (const uint8_t *)payload, strlen(payload), &cerr);
	if (jws != NULL && cjose_jws_export(jws, &ser, &cerr))
		out = strdup(ser);
	cjose_jws_release(jws);
	cjose_header_release(h);
	return out;
}

static const char good[] = "{\"iss\":\"" ISS "\",\"sub\":\"f2c1\",\"aud\":\"" CLIENT
                           "\",\"exp\":1800000300,\"iat\":1799999990,\"nonce\":\"n-1\","
                           "\"email\":\"a@a.example\"}";

/* Validates; returns NULL on success or the error message. */
static const char *
validate(const char *token, const char *nonce, const char *const *algs, size_t n_algs)
{
	static struct fb_err err;
	struct fb_oidc_expect e = { .issuer = ISS,
		.client_id = CLIENT,
		.nonce = nonce,
		.algs = algs,
		.n_algs = n_algs,
		.now = NOW,
		.skew = 30,
		.iat_min = LOGIN_START };
	json_t *claims = NULL;
	fb_rc rc;

	memset(&err, 0, sizeof(err));
	rc = fb_oidc_id_token_validate(keys, token, token ? strlen(token) : 0, &e, &claims, &err);
	json_decref(claims);
	if (rc == FB_OK && claims == NULL)
		return "ok without claims";
	return rc == FB_OK ? NULL : err.msg;
}

static const char *const rs_es[] = { "RS256", "ES256" };

static void
expect(const char *token, const char *want)
{
	const char *got = validate(token, "n-1", rs_es, 2);

	if (want == NULL && got != NULL)
		fail_msg("expected ok, got %s", got);
	if (want != NULL && (got == NULL || strstr(got, want) == NULL))
		fail_msg("expected \"%s\", got %s", want, got ? got : "ok");
}

static char *
claims_with(const char *from, const char *to)
{
	const char *at = strstr(good, from);
	char *out = malloc(sizeof(good) + strlen(to) + 1);

	if (at == NULL || out == NULL)
		return NULL;
	(void)snprintf(out, sizeof(good) + strlen(to) + 1, "%.*s%s%s", (int)(at - good), good, to,
	    at + strlen(from));
	return out;
}

static void
test_good_tokens(void **state)
{
	char *t;
	json_t *claims = NULL;
	struct fb_err err = { 0 };
	struct fb_oidc_expect e = { .issuer = ISS,
		.client_id = CLIENT,
		.nonce = "n-1",
		.algs = rs_es,
		.n_algs = 2,
		.now = NOW,
		.skew = 30 };

	(void)state;
	assert_int_equal(fb_oidc_keys_count(keys), 3); /* the oct key was left out */
	t = sign(rsa1, "RS256", good, false);
	assert_int_equal(fb_oidc_id_token_validate(keys, t, strlen(t), &e, &claims, &err), FB_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "email")), "a@a.example");
	json_decref(claims);
	free(t);
	t = sign(ec1, "ES256", good, false);
	expect(t, NULL);
	free(t);
	t = sign(rsa2, "RS256", good, false);
	expect(t, NULL);
	free(t);
	/* No kid, and only one EC key fits ES256: that one. */
	t = sign(ec1, "ES256", good, true);
	expect(t, NULL);
	free(t);
}

struct claim_row {
	const char *from, *to, *want;
};

static void
test_claims(void **state)
{
	static const struct claim_row rows[] = {
		{ "\"iss\":\"" ISS "\"", "\"iss\":\"" ISS "/\"", "iss is not" },
		{ "\"iss\":\"" ISS "\",", "", "iss is not" },
		{ "\"aud\":\"" CLIENT "\"", "\"aud\":\"other\"",
		    "aud must be exactly this client" },
		{ "\"aud\":\"" CLIENT "\"",
		    "\"aud\":[\"" CLIENT "\",\"evil\"],\"azp\":\"" CLIENT "\"",
		    "aud must be exactly this client" },
		{ "\"aud\":\"" CLIENT "\"", "\"aud\":[\"" CLIENT "\",\"" CLIENT "\"]",
		    "several audiences and no azp" },
		{ "\"aud\":\"" CLIENT "\"", "\"aud\":[\"" CLIENT "\"],\"azp\":\"evil\"",
		    "azp is not this client" },
		{ "\"aud\":\"" CLIENT "\"", "\"aud\":[\"" CLIENT "\"],\"azp\":\"" CLIENT "\"",
		    NULL },
		{ "\"exp\":1800000300", "\"exp\":1799999960", "expired" },
		{ "\"exp\":1800000300", "\"exp\":1799999980", NULL }, /* within the skew */
		{ "\"exp\":1800000300,", "", "no exp" },
		{ "\"exp\":1800000300", "\"exp\":\"1800000300\"", "no exp" },
		{ "\"iat\":1799999990", "\"iat\":1800000100", "iat is in the future" },
		{ "\"iat\":1799999990,", "", "no iat" },
		/* Issued before the login began (a week, or just past the skew): not its token. */
		{ "\"iat\":1799999990", "\"iat\":1799395200", "iat is too old" },
		{ "\"iat\":1799999990", "\"iat\":1799999909", "iat is too old" },
		{ "\"iat\":1799999990", "\"iat\":1799999910", NULL }, /* within the skew */
		{ "\"nonce\":\"n-1\"", "\"nonce\":\"n-2\"", "nonce does not match" },
		{ "\"nonce\":\"n-1\",", "", "no nonce" },
		{ "\"sub\":\"f2c1\",", "", "sub must be" },
		{ "\"sub\":\"f2c1\"", "\"sub\":\"\"", "sub must be" },
		{ "\"email\"", "\"nbf\":1800000100,\"email\"", "not valid yet" },
		{ "\"email\":\"a@a.example\"", "\"email\":\"a\",\"email\":\"b\"",
		    "repeats a claim" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *c = claims_with(rows[i].from, rows[i].to), *t;
		assert_non_null(c);
		t = sign(rsa1, "RS256", c, false);
		assert_non_null(t);
		expect(t, rows[i].want);
		free(t);
		free(c);
	}
}

static void
test_algs_and_keys(void **state)
{
	static const char *const rs_only[] = { "RS256" };
	static const char *const with_hs[] = { "HS256", "RS256" };
	char *t;
	const char *got;
	cjose_err cerr;
	char none[1024], *b64 = NULL;
	size_t b64len = 0;

	(void)state;
	/* alg none, hand-made: never, whatever the allow-list says. */
	assert_true(
	    cjose_base64url_encode((const uint8_t *)good, strlen(good), &b64, &b64len, &cerr));
	(void)snprintf(none, sizeof(none), "eyJhbGciOiJub25lIn0.%.*s.", (int)b64len, b64);
	cjose_get_dealloc()(b64);
	expect(none, "alg none is not allowed"); /* the unsecured form: no signature at all */
	(void)snprintf(none + strlen(none), sizeof(none) - strlen(none), "c2ln");
	expect(none, "alg none is not allowed");
	/* ES256 from an RS256-only provider. */
	t = sign(ec1, "ES256", good, false);
	got = validate(t, "n-1", rs_only, 1);
	assert_non_null(got);
	assert_non_null(strstr(got, "alg ES256 is not allowed"));
	free(t);
	/* HS256 keyed with what an attacker knows: refused even when listed. */
	{
		cjose_jwk_t *hs = cjose_jwk_create_oct_spec((const uint8_t *)"secret", 6, &cerr);
		assert_non_null(hs);
		assert_true(cjose_jwk_set_kid(hs, "hs", 2, &cerr));
		t = sign(hs, "HS256", good, false);
		got = validate(t, "n-1", with_hs, 2);
		assert_non_null(got);
		assert_non_null(strstr(got, "alg HS256 is not allowed"));
		free(t);
		cjose_jwk_release(hs);
	}
	/* A key with a known kid that is not the IdP's: bad signature. */
	t = sign(other, "RS256", good, false);
	expect(t, "bad signature");
	free(t);
	/* No kid with two RSA keys: which one is unknown, so refused. */
	t = sign(rsa1, "RS256", good, true);
	expect(t, "no kid, and 2 keys of the issuer fit RS256");
	free(t);
	/* An unknown kid. */
	{
		cjose_jwk_t *k = make_key(false, "ec-9");
		t = sign(k, "ES256", good, false);
		expect(t, "no key of the issuer has kid \"ec-9\"");
		free(t);
		cjose_jwk_release(k);
	}
	/* ES384 claimed over the P-256 key: the curve does not fit, refused before cjose. */
	{
		static const char *const es384[] = { "ES256", "ES384" };
		t = sign(ec1, "ES256", good, false);
		char *dot = strchr(t, '.');
		char hdr[128], *b = NULL;
		size_t blen = 0;
		const char *h = "{\"alg\":\"ES384\",\"kid\":\"ec-1\"}";
		assert_true(
		    cjose_base64url_encode((const uint8_t *)h, strlen(h), &b, &blen, &cerr));
		(void)snprintf(hdr, sizeof(hdr), "%.*s", (int)blen, b);
		cjose_get_dealloc()(b);
		size_t flen = strlen(hdr) + strlen(dot) + 1;
		char *forged = malloc(flen);
		assert_non_null(forged);
		(void)snprintf(forged, flen, "%s%s", hdr, dot);
		got = validate(forged, "n-1", es384, 2);
		assert_non_null(got);
		assert_non_null(strstr(got, "fits ES384"));
		free(forged);
		free(t);
	}
	/* A signature changed by one character. */
	t = sign(rsa1, "RS256", good, false);
	t[strlen(t) - 5] = t[strlen(t) - 5] == 'A' ? 'B' : 'A';
	expect(t, "bad signature");
	free(t);
	/* Not a JWS at all, and too large. */
	expect("not.a.jws!", "not a compact JWS");
	expect("", "empty");
}

/* Validates a logout token; NULL on success (its claims in *out when not NULL) or the error. */
static const char *
validate_logout_claims(const char *payload, json_t **out)
{
	static struct fb_err err;
	struct fb_oidc_expect e = { .issuer = ISS,
		.client_id = CLIENT,
		.algs = rs_es,
		.n_algs = 2,
		.now = NOW,
		.skew = 30,
		.logout_token = true };
	char *t = sign(rsa1, "RS256", payload, false);
	json_t *claims = NULL;
	fb_rc rc;

	memset(&err, 0, sizeof(err));
	assert_non_null(t);
	rc = fb_oidc_id_token_validate(keys, t, strlen(t), &e, &claims, &err);
	if (out != NULL)
		*out = claims;
	else
		json_decref(claims);
	free(t);
	return rc == FB_OK ? NULL : err.msg;
}

static const char *
validate_logout(const char *payload)
{
	return validate_logout_claims(payload, NULL);
}

#define LOGOUT_HEAD                                                                                \
	"{\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"iat\":1799999990,\"exp\":1800000100,"
#define LOGOUT_EVENT "\"events\":{\"" FB_OIDC_LOGOUT_EVENT "\":{}}"
#define LOGOUT_NO_EXP(iat) "{\"iss\":\"" ISS "\",\"aud\":\"" CLIENT "\",\"iat\":" iat ","

static void
test_logout_tokens(void **state)
{
	static const struct {
		const char *payload, *want; /* want NULL: accepted */
	} cases[] = {
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}", NULL },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sub\":\"u1\"," LOGOUT_EVENT "}", NULL },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sub\":\"u1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    NULL },
		{ LOGOUT_HEAD "\"jti\":\"j1\"," LOGOUT_EVENT "}", "neither sid nor sub" },
		{ LOGOUT_HEAD "\"sid\":\"s1\"," LOGOUT_EVENT "}", "no jti" },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"s1\",\"nonce\":\"n\"," LOGOUT_EVENT "}",
		    "nonce is forbidden" },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"s1\"}", "no back-channel logout event" },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"s1\",\"events\":{\"" FB_OIDC_LOGOUT_EVENT
		              "\":true}}",
		    "no back-channel logout event" },
		{ LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"\"," LOGOUT_EVENT "}", "sid must be" },
		{ "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"iat\":1799999990,\"exp\":1800000100,"
		  "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "aud must be" },
		/* No exp (Back-Channel Logout 1.0 before its 2023 errata): taken while iat is at
		 * most FB_OIDC_LOGOUT_NO_EXP_MAX_AGE plus the skew (30 s) old. */
		{ LOGOUT_NO_EXP("1799999990") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    NULL },
		{ LOGOUT_NO_EXP("1799999850") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    NULL },
		{ LOGOUT_NO_EXP("1799999849") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "logout_token: no exp, and iat is more than 120 s old" },
		{ LOGOUT_NO_EXP("1799395200") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "logout_token: no exp, and iat is more than 120 s old" },
		{ LOGOUT_NO_EXP("1800000031") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "logout_token: iat is in the future" },
		{ "{\"iss\":\"" ISS "\",\"aud\":\"" CLIENT
		  "\",\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "logout_token: no iat" },
		{ LOGOUT_NO_EXP(
		      "1799999990") "\"jti\":\"j1\",\"sid\":\"s1\",\"exp\":\"soon\"," LOGOUT_EVENT
		                    "}",
		    "logout_token: no exp" },
		{ LOGOUT_NO_EXP("1799999990") "\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    "logout_token: no jti" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = validate_logout(cases[i].payload);
		if (cases[i].want == NULL && got != NULL)
			fail_msg("case %zu: expected ok, got %s", i, got);
		if (cases[i].want != NULL && (got == NULL || strstr(got, cases[i].want) == NULL))
			fail_msg("case %zu: expected \"%s\", got %s", i, cases[i].want,
			    got ? got : "ok");
	}
	/* Refusals name the logout token, not an ID token. */
	{
		const char *got = validate_logout(LOGOUT_HEAD "\"jti\":\"j1\"," LOGOUT_EVENT "}");
		assert_non_null(got);
		assert_non_null(strstr(got, "logout_token: "));
		assert_null(strstr(got, "id_token"));
		got = validate_logout("{\"iss\":\"" ISS "\",\"aud\":\"other\",\"iat\":1799999990,"
		                      "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}");
		assert_non_null(got);
		assert_non_null(strstr(got, "logout_token: aud must be"));
	}
	/* Without exp, the claims say until when its jti must stay consumed: iat + the window
	 * (the caller adds the skew, as to any exp). A sent exp stays as it is. */
	{
		json_t *c = NULL;
		assert_null(validate_logout_claims(
		    LOGOUT_NO_EXP("1799999990") "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}",
		    &c));
		assert_int_equal(json_integer_value(json_object_get(c, "exp")),
		    1799999990 + FB_OIDC_LOGOUT_NO_EXP_MAX_AGE);
		json_decref(c);
		assert_null(validate_logout_claims(
		    LOGOUT_HEAD "\"jti\":\"j1\",\"sid\":\"s1\"," LOGOUT_EVENT "}", &c));
		assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1800000100);
		json_decref(c);
	}
	/* An ID token still needs its exp. */
	{
		char *c = claims_with("\"exp\":1800000300,", ""), *t;
		assert_non_null(c);
		t = sign(rsa1, "RS256", c, false);
		expect(t, "id_token: no exp");
		free(t);
		free(c);
	}
	/* A logout token is never taken for an ID token. */
	{
		char *t = sign(rsa1, "RS256",
		    LOGOUT_HEAD "\"jti\":\"j1\",\"sub\":\"u1\"," LOGOUT_EVENT "}", false);
		const char *got = validate(t, NULL, rs_es, 2);
		assert_non_null(got);
		assert_non_null(strstr(got, "a logout token is not an ID token"));
		free(t);
	}
}

/* OpenID Connect Core 1.0, A.3 and A.4: an access token and its at_hash (SHA-256). */
#define ACCESS_TOKEN "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
#define AT_HASH_SHA256 "77QmUPtjPfzWtF2AnpK9RQ"
#define AT_HASH_SHA384 "jtAeDp945y1dDqU3nkIVGNZP1HjH_MFs" /* the left 24 bytes of SHA-384 */

/* Validates token with the token response's access token; NULL on success or the error. */
static const char *
validate_with_access_token(const char *token, const char *access_token)
{
	static const char *const algs[] = { "RS256", "RS384", "ES256" };
	static struct fb_err err;
	struct fb_oidc_expect e = { .issuer = ISS,
		.client_id = CLIENT,
		.nonce = "n-1",
		.algs = algs,
		.n_algs = 3,
		.now = NOW,
		.skew = 30,
		.iat_min = LOGIN_START,
		.access_token = access_token };
	json_t *claims = NULL;
	fb_rc rc;

	memset(&err, 0, sizeof(err));
	rc = fb_oidc_id_token_validate(keys, token, strlen(token), &e, &claims, &err);
	json_decref(claims);
	return rc == FB_OK ? NULL : err.msg;
}

/* at_hash (Core 3.1.3.6, 3.3.2.11): when present, the access token's, with the alg's hash. */
static void
test_at_hash(void **state)
{
	static const struct {
		const cjose_jwk_t **key;
		const char *alg, *at_hash, *access_token, *want; /* want NULL: accepted */
	} cases[] = {
		{ (const cjose_jwk_t **)&rsa1, "RS256", AT_HASH_SHA256, ACCESS_TOKEN, NULL },
		{ (const cjose_jwk_t **)&ec1, "ES256", AT_HASH_SHA256, ACCESS_TOKEN, NULL },
		{ (const cjose_jwk_t **)&rsa1, "RS384", AT_HASH_SHA384, ACCESS_TOKEN, NULL },
		{ (const cjose_jwk_t **)&rsa1, "RS256", AT_HASH_SHA256, "another-access-token",
		    "id_token: at_hash is not the access token's" },
		{ (const cjose_jwk_t **)&rsa1, "RS256", "AAAAAAAAAAAAAAAAAAAAAA", ACCESS_TOKEN,
		    "id_token: at_hash is not the access token's" },
		/* SHA-256's half under RS384: the hash is the alg's */
		{ (const cjose_jwk_t **)&rsa1, "RS384", AT_HASH_SHA256, ACCESS_TOKEN,
		    "id_token: at_hash is not the access token's" },
		{ (const cjose_jwk_t **)&rsa1, "RS256", NULL, ACCESS_TOKEN, NULL }, /* none sent */
		{ (const cjose_jwk_t **)&rsa1, "RS256", AT_HASH_SHA256, NULL, NULL }, /* no token */
	};
	char claims[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got;
		char *t;
		(void)snprintf(claims, sizeof(claims), "%.*s%s%s%s}", (int)strlen(good) - 1, good,
		    cases[i].at_hash ? ",\"at_hash\":\"" : "",
		    cases[i].at_hash ? cases[i].at_hash : "", cases[i].at_hash ? "\"" : "");
		assert_non_null(t = sign(*cases[i].key, cases[i].alg, claims, false));
		got = validate_with_access_token(t, cases[i].access_token);
		free(t);
		if (cases[i].want == NULL && got != NULL)
			fail_msg("case %zu: expected ok, got %s", i, got);
		if (cases[i].want != NULL && (got == NULL || strstr(got, cases[i].want) == NULL))
			fail_msg("case %zu: expected \"%s\", got %s", i, cases[i].want,
			    got ? got : "ok");
	}
	/* Not a string: refused. */
	{
		char *c = claims_with("\"email\"", "\"at_hash\":42,\"email\""), *t;
		const char *got;
		assert_non_null(c);
		assert_non_null(t = sign(rsa1, "RS256", c, false));
		got = validate_with_access_token(t, ACCESS_TOKEN);
		assert_non_null(got);
		assert_non_null(strstr(got, "at_hash"));
		free(t);
		free(c);
	}
}

/*
 * Claims at the ends of int64: exp, iat or nbf plus or minus the skew must
 * not overflow (the sanitizer build aborts on it), and each lands on the
 * side that refuses what it should.
 */
static void
test_claims_int64_edges(void **state)
{
	static const struct claim_row rows[] = {
		{ "\"exp\":1800000300", "\"exp\":9223372036854775807", NULL },
		{ "\"exp\":1800000300", "\"exp\":-9223372036854775808", "expired" },
		{ "\"iat\":1799999990", "\"iat\":9223372036854775807", "iat is in the future" },
		{ "\"iat\":1799999990", "\"iat\":-9223372036854775808", "iat is too old" },
		{ "\"email\"", "\"nbf\":9223372036854775807,\"email\"", "not valid yet" },
		{ "\"email\"", "\"nbf\":-9223372036854775808,\"email\"", NULL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *c = claims_with(rows[i].from, rows[i].to), *t;
		assert_non_null(c);
		t = sign(rsa1, "RS256", c, false);
		assert_non_null(t);
		expect(t, rows[i].want);
		free(t);
		free(c);
	}
}

/* Validates a private_key_jwt assertion with payload; NULL on success or the error message. */
static const char *
validate_assertion(const char *payload)
{
	static struct fb_err err;
	char *t = sign(ec1, "ES256", payload, false);
	json_t *claims = NULL;
	fb_rc rc;

	memset(&err, 0, sizeof(err));
	assert_non_null(t);
	rc = fb_oidc_client_assertion_validate(keys, t, BACKEND, TOKEN_URL, NOW, 30, &claims, &err);
	json_decref(claims);
	free(t);
	return rc == FB_OK ? NULL : err.msg;
}

#define ASSERTION_HEAD                                                                             \
	"{\"iss\":\"" BACKEND "\",\"sub\":\"" BACKEND "\",\"aud\":\"" TOKEN_URL "\",\"jti\":"      \
	"\"j1\","

/* RFC 7523 client assertions: a bounded lifetime, and no overflow at the ends of int64. */
static void
test_client_assertion(void **state)
{
	static const struct {
		const char *payload, *want; /* want NULL: accepted */
	} cases[] = {
		{ ASSERTION_HEAD "\"iat\":1800000000,\"exp\":1800000060}", NULL },
		{ ASSERTION_HEAD "\"iat\":1800000000,\"exp\":1800000300}", NULL },
		{ ASSERTION_HEAD "\"exp\":1800000060}", NULL },
		{ ASSERTION_HEAD "\"exp\":1800000330}", NULL }, /* 300 s and the skew ahead */
		{ ASSERTION_HEAD "\"iat\":1800000000,\"exp\":1800000301}", "lifetime" },
		{ ASSERTION_HEAD "\"iat\":1800000000,\"exp\":1831536000}", "lifetime" },
		{ ASSERTION_HEAD "\"exp\":1800000331}", "lifetime" },
		{ ASSERTION_HEAD "\"exp\":1831536000}", "lifetime" },
		{ ASSERTION_HEAD "\"iat\":1800000000,\"exp\":9223372036854775807}", "lifetime" },
		{ ASSERTION_HEAD "\"exp\":9223372036854775807}", "lifetime" },
		{ ASSERTION_HEAD "\"iat\":-9223372036854775808,\"exp\":1800000060}", "lifetime" },
		{ ASSERTION_HEAD "\"iat\":-9223372036854775808,\"exp\":9223372036854775807}",
		    "lifetime" },
		{ ASSERTION_HEAD "\"iat\":9223372036854775807,\"exp\":1800000060}",
		    "iat is in the future" },
		{ ASSERTION_HEAD "\"exp\":-9223372036854775808}", "expired" },
		{ ASSERTION_HEAD "\"exp\":1800000060,\"nbf\":9223372036854775807}",
		    "not valid yet" },
		{ ASSERTION_HEAD "\"exp\":1800000060,\"nbf\":-9223372036854775808}", NULL },
		{ ASSERTION_HEAD "\"iat\":1800000000}", "no exp" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = validate_assertion(cases[i].payload);
		if (cases[i].want == NULL && got != NULL)
			fail_msg("case %zu: expected ok, got %s", i, got);
		if (cases[i].want != NULL && (got == NULL || strstr(got, cases[i].want) == NULL))
			fail_msg("case %zu: expected \"%s\", got %s", i, cases[i].want,
			    got ? got : "ok");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_tokens),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_algs_and_keys),
		cmocka_unit_test(test_logout_tokens),
		cmocka_unit_test(test_claims_int64_edges),
		cmocka_unit_test(test_client_assertion),
		cmocka_unit_test(test_at_hash),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
