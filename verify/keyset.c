/* Public keys from a JWKS: EC P-256 for ES256 and OKP Ed25519 for EdDSA. */
#include "verify_int.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <pthread.h>
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

static EVP_PKEY_CTX *es256_template(EVP_PKEY *pkey);

/* Fills k; on failure what it allocated stays in k for the caller to free. */
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
		k->verify_tmpl = k->pkey ? es256_template(k->pkey) : NULL;
		if (k->pkey != NULL && k->verify_tmpl == NULL)
			return FB_ERR_SET(err, FB_ERR_CRYPTO, "key %s: cannot prepare it", kid);
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
	if (root == NULL) {
		char reason[FB_EXCERPT_MAX];
		fb_json_reason(jerr.text, reason, sizeof(reason));
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "JWKS is not JSON: %s at line %d", reason, jerr.line);
	}
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
		/* Counted before parsing, so a half-parsed key is freed with the set. */
		ks->n++;
		if ((rc = parse_jwk(json_array_get(keys, i), &ks->keys[i], err)) != FB_OK)
			goto done;
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
	for (size_t i = 0; ks->keys != NULL && i < ks->n; i++) {
		EVP_PKEY_CTX_free(ks->keys[i].verify_tmpl);
		EVP_PKEY_free(ks->keys[i].pkey);
	}
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

/* SHA-256, fetched once: implicit fetches cost more than hashing a token. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

static const EVP_MD *
sha256(void)
{
	(void)pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

static EVP_PKEY_CTX *
es256_template(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

	if (ctx != NULL &&
	    (EVP_PKEY_verify_init(ctx) != 1 || sha256() == NULL ||
	        EVP_PKEY_CTX_set_signature_md(ctx, sha256()) != 1)) {
		EVP_PKEY_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* One DER INTEGER of a 32-byte unsigned big-endian value (never zero here). */
static size_t
der_uint(const unsigned char v[32], unsigned char *out)
{
	size_t skip = 0, n;
	bool pad;

	while (skip < 31 && v[skip] == 0)
		skip++;
	n = 32 - skip;
	pad = (v[skip] & 0x80) != 0;
	out[0] = 0x02;
	out[1] = (unsigned char)(n + pad);
	out[2] = 0;
	memcpy(out + 2 + pad, v + skip, n);
	return 2 + pad + n;
}

bool
verify_signature(const struct verify_key *k, const unsigned char *data, size_t len,
    const unsigned char *sig, size_t sig_len)
{
	static const unsigned char zero[32];
	unsigned char der[2 + 2 * 35], digest[32];
	unsigned int dlen = 0;
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *md;
	size_t n;
	bool ok;

	if (sig_len != 64)
		return false;
	if (k->alg == FB_ALG_EDDSA) {
		if ((md = EVP_MD_CTX_new()) == NULL)
			return false;
		ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
		EVP_MD_CTX_free(md);
		return ok;
	}
	/* JWS carries r||s; OpenSSL wants DER. r or s of zero never verifies. */
	if (memcmp(sig, zero, 32) == 0 || memcmp(sig + 32, zero, 32) == 0)
		return false;
	n = der_uint(sig, der + 2);
	n += der_uint(sig + 32, der + 2 + n);
	der[0] = 0x30;
	der[1] = (unsigned char)n;
	if (k->verify_tmpl == NULL || EVP_Digest(data, len, digest, &dlen, sha256(), NULL) != 1 ||
	    (ctx = EVP_PKEY_CTX_dup(k->verify_tmpl)) == NULL)
		return false;
	ok = EVP_PKEY_verify(ctx, der, n + 2, digest, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

bool
fb_verify_keyset_has_kid(const struct fb_verify_keyset *ks, const char *kid)
{
	return ks != NULL && kid != NULL && verify_keyset_find(ks, kid, strlen(kid)) != NULL;
}
