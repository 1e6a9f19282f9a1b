/* Public keys from a JWKS: EC P-256 for ES256 and OKP Ed25519 for EdDSA. */
#include "verify_int.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

#define JWKS_MAX_KEYS 64
#define JWK_EXP_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

static fb_rc
b64_member(json_t *jwk, const char *name, unsigned char *out, size_t want, struct fb_err *err)
{
	json_t *v = json_object_get(jwk, name);
	size_t n = 0;

	if (!json_is_string(v))
		return FB_ERR_SET(err, FB_ERR_INVALID, "member \"%s\" is missing", name);
	if (fb_b64url_decode(json_string_value(v), json_string_length(v), out, want, &n) != FB_OK ||
	    n != want)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "member \"%s\" is not %zu bytes of canonical base64url", name, want);
	return FB_OK;
}

static EVP_PKEY *
ec_p256_from_xy(const unsigned char x[32], const unsigned char y[32])
{
	unsigned char point[65];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	char group[] = "prime256v1";

	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	if (pkey != NULL) {
		/* fromdata does not prove the point is on the curve: check it. */
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		EVP_PKEY_CTX_free(ctx);
	}
	return pkey;
}

static fb_rc
parse_jwk(json_t *jwk, struct verify_key *k, struct fb_err *err)
{
	static const char *const allowed[] = { "kty", "crv", "x", "y", "kid", "alg", "use",
		"key_ops", "exp", NULL };
	const char *kty, *crv, *kid, *alg, *key, *use;
	unsigned char x[32], y[32];
	json_t *val;
	fb_rc rc;

	if (!json_is_object(jwk))
		return FB_ERR_SET(err, FB_ERR_INVALID, "a key is not a JSON object");
	json_object_foreach(jwk, key, val)
	{
		bool known = false;
		for (size_t i = 0; allowed[i] != NULL; i++)
			known = known || strcmp(key, allowed[i]) == 0;
		if (strcmp(key, "d") == 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "a key holds a private part (\"d\"): publish public keys only");
		if (!known)
			return FB_ERR_SET(
			    err, FB_ERR_INVALID, "a key has an unknown member \"%.40s\"", key);
	}
	/* Members given with another type are refused, not taken as absent. */
	for (size_t i = 0; allowed[i] != NULL; i++) {
		json_t *m = json_object_get(jwk, allowed[i]);
		bool want_string =
		    strcmp(allowed[i], "exp") != 0 && strcmp(allowed[i], "key_ops") != 0;
		if (m != NULL && want_string && !json_is_string(m))
			return FB_ERR_SET(
			    err, FB_ERR_INVALID, "a key's \"%s\" is not a string", allowed[i]);
	}
	kty = json_string_value(json_object_get(jwk, "kty"));
	crv = json_string_value(json_object_get(jwk, "crv"));
	kid = json_string_value(json_object_get(jwk, "kid"));
	alg = json_string_value(json_object_get(jwk, "alg"));
	use = json_string_value(json_object_get(jwk, "use"));
	if (kid == NULL || *kid == '\0' || strlen(kid) > FB_VERIFY_KID_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "every key needs a kid of 1 to %d characters", FB_VERIFY_KID_MAX);
	val = json_object_get(jwk, "exp");
	if (val != NULL &&
	    (!json_is_integer(val) || json_integer_value(val) <= 0 ||
	        json_integer_value(val) > JWK_EXP_MAX))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "key %s: exp must be a time in seconds before the year 10000", kid);
	k->exp = val ? (int64_t)json_integer_value(val) : 0;
	if (use != NULL && strcmp(use, "sig") != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "key %s: use must be \"sig\"", kid);
	if (kty != NULL && crv != NULL && strcmp(kty, "EC") == 0 && strcmp(crv, "P-256") == 0) {
		k->alg = FB_ALG_ES256;
		if ((rc = b64_member(jwk, "x", x, 32, err)) != FB_OK ||
		    (rc = b64_member(jwk, "y", y, 32, err)) != FB_OK) {
			fb_err_prefix(err, "key %s", kid);
			return rc;
		}
		k->pkey = ec_p256_from_xy(x, y);
	} else if (kty != NULL && crv != NULL && strcmp(kty, "OKP") == 0 &&
	    strcmp(crv, "Ed25519") == 0) {
		k->alg = FB_ALG_EDDSA;
		if (json_object_get(jwk, "y") != NULL)
			return FB_ERR_SET(err, FB_ERR_INVALID, "key %s: an OKP key has no y", kid);
		if ((rc = b64_member(jwk, "x", x, 32, err)) != FB_OK) {
			fb_err_prefix(err, "key %s", kid);
			return rc;
		}
		k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
	} else {
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "key %s: only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are accepted", kid);
	}
	if (alg != NULL && strcmp(alg, fb_verify_alg_name(k->alg)) != 0) {
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "key %s: alg \"%.20s\" does not fit a %s key", kid, alg,
		    fb_verify_alg_name(k->alg));
	}
	if (k->pkey == NULL)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "key %s: not a valid public key", kid);
	memcpy(k->kid, kid, strlen(kid) + 1);
	return FB_OK;
}

fb_rc
fb_verify_keyset_from_jwks(
    const char *text, size_t len, struct fb_verify_keyset **out, struct fb_err *err)
{
	struct fb_verify_keyset *ks = NULL;
	json_error_t jerr;
	json_t *root, *keys;
	fb_rc rc = FB_OK;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "JWKS is not JSON: %s at line %d", jerr.text, jerr.line);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    json_array_size(keys) > JWKS_MAX_KEYS) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "JWKS needs \"keys\": a list of 1 to %d keys",
		    JWKS_MAX_KEYS);
		goto done;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL ||
	    (ks->keys = calloc(json_array_size(keys), sizeof(*ks->keys))) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	atomic_init(&ks->refs, 1);
	for (size_t i = 0; i < json_array_size(keys); i++) {
		if ((rc = parse_jwk(json_array_get(keys, i), &ks->keys[i], err)) != FB_OK)
			goto done;
		ks->n++;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ks->keys[j].kid, ks->keys[i].kid) == 0) {
				rc = FB_ERR_SET(
				    err, FB_ERR_INVALID, "kid %s appears twice", ks->keys[i].kid);
				goto done;
			}
		}
	}
done:
	json_decref(root);
	if (rc != FB_OK) {
		fb_verify_keyset_unref(ks);
		return rc;
	}
	*out = ks;
	return FB_OK;
}

fb_rc
fb_verify_keyset_empty(struct fb_verify_keyset **out, struct fb_err *err)
{
	struct fb_verify_keyset *ks = calloc(1, sizeof(*ks));

	if (ks == NULL || (ks->keys = calloc(1, sizeof(*ks->keys))) == NULL) {
		free(ks);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	atomic_init(&ks->refs, 1);
	*out = ks;
	return FB_OK;
}

struct fb_verify_keyset *
fb_verify_keyset_ref(struct fb_verify_keyset *ks)
{
	if (ks != NULL)
		atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
	return ks;
}

void
fb_verify_keyset_unref(struct fb_verify_keyset *ks)
{
	if (ks == NULL)
		return;
	if (ks->keys != NULL && atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; ks->keys != NULL && i < ks->n; i++)
		EVP_PKEY_free(ks->keys[i].pkey);
	free(ks->keys);
	free(ks);
}

size_t
fb_verify_keyset_count(const struct fb_verify_keyset *ks)
{
	return ks->n;
}

int64_t
verify_keyset_newest_exp(const struct fb_verify_keyset *ks)
{
	int64_t newest = 0;

	for (size_t i = 0; i < ks->n; i++) {
		if (ks->keys[i].exp == 0)
			return 0;
		if (ks->keys[i].exp > newest)
			newest = ks->keys[i].exp;
	}
	return newest;
}

int64_t
fb_verify_keyset_expiry(const struct fb_verify_keyset *ks)
{
	return verify_keyset_newest_exp(ks);
}

const struct verify_key *
verify_keyset_find(const struct fb_verify_keyset *ks, const char *kid, size_t kid_len)
{
	for (size_t i = 0; i < ks->n; i++)
		if (strlen(ks->keys[i].kid) == kid_len &&
		    memcmp(ks->keys[i].kid, kid, kid_len) == 0)
			return &ks->keys[i];
	return NULL;
}

bool
verify_signature(const struct verify_key *k, const unsigned char *data, size_t len,
    const unsigned char *sig, size_t sig_len)
{
	unsigned char der[80];
	unsigned char *p = der;
	EVP_MD_CTX *md;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int der_len;
	bool ok = false;

	if (sig_len != 64)
		return false;
	if ((md = EVP_MD_CTX_new()) == NULL)
		return false;
	if (k->alg == FB_ALG_EDDSA) {
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
		EVP_MD_CTX_free(md);
		return ok;
	}
	/* JWS carries r||s; OpenSSL wants DER. r or s of zero never verifies. */
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (r == NULL || s == NULL || BN_is_zero(r) || BN_is_zero(s) ||
	    (es = ECDSA_SIG_new()) == NULL)
		goto done;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto done;
	r = s = NULL; /* owned by es now */
	der_len = i2d_ECDSA_SIG(es, &p);
	if (der_len <= 0)
		goto done;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)der_len, data, len) == 1;
done:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok;
}
