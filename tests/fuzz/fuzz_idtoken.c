/*
 * Fuzz target for ID token validation: any bytes as the token, against a
 * key set of one RSA and one EC key made at start (so the fuzzer explores
 * the JWS split, header, alg and key choice and the refusals; signatures
 * of its inputs do not verify).
 */
#include "fb_idp.h"

#include <cjose/cjose.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fb_oidc_keys *keys;

static void
setup(void)
{
	static const uint8_t e65537[] = { 0x01, 0x00, 0x01 };
	cjose_err cerr;
	cjose_jwk_t *r = cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &cerr);
	cjose_jwk_t *e = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	char *a, *b, jwks[8192];

	if (r == NULL || e == NULL || !cjose_jwk_set_kid(r, "rsa-1", 5, &cerr) ||
	    !cjose_jwk_set_kid(e, "ec-1", 4, &cerr))
		abort();
	a = cjose_jwk_to_json(r, false, &cerr);
	b = cjose_jwk_to_json(e, false, &cerr);
	(void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s,%s]}", a, b);
	if (fb_oidc_keys_parse(jwks, strlen(jwks), &keys, NULL) != FB_OK)
		abort();
	free(a);
	free(b);
	cjose_jwk_release(r);
	cjose_jwk_release(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const algs[] = { "RS256", "ES256" };
	struct fb_oidc_expect e = { .issuer = "https://kc.a.example",
		.client_id = "fedbridge",
		.nonce = "n",
		.algs = algs,
		.n_algs = 2,
		.now = 1800000000,
		.skew = 30 };
	json_t *claims = NULL;

	if (keys == NULL)
		setup();
	if (fb_oidc_id_token_validate(keys, (const char *)data, size, &e, &claims, NULL) == FB_OK)
		__builtin_trap(); /* nothing the fuzzer makes is signed by these keys */
	json_decref(claims);
	return 0;
}
