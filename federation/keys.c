/*
 * The installation's signing keys: generation, loading, RFC 7638 key ids,
 * JWKS export and JWS signing. Private keys never leave this file's structs
 * except through fb_signing_key_free, which frees them with OpenSSL.
 */
#include "fb_federation.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fb_signing_key {
	EVP_PKEY *pkey;
	enum fb_verify_alg alg;
	char kid[44]; /* base64url SHA-256 */
	char *path;
	char header_b64[160]; /* the protected header is the same for every token it signs */
	/* ES256: a context initialised once for signing, duplicated per token, so
	 * issuance does not pay OpenSSL 3's algorithm fetches every time. */
	EVP_PKEY_CTX *sign_tmpl;
	EVP_MD *sha256;
};

/* The public members of the key's JWK, in RFC 7638's lexicographic order. */
static fb_rc
public_jwk(EVP_PKEY *pkey, enum fb_verify_alg alg, json_t **out, struct fb_err *err)
{
	unsigned char pub[65];
	char x[48], y[48];
	size_t n = 0;

	if (alg == FB_ALG_EDDSA) {
		n = 32;
		if (EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != 32)
			return FB_ERR_SET(err, FB_ERR_CRYPTO, "cannot read the Ed25519 public key");
		(void)fb_b64url_encode(pub, 32, x, sizeof(x));
		*out = json_pack("{s:s, s:s, s:s}", "crv", "Ed25519", "kty", "OKP", "x", x);
	} else {
		if (EVP_PKEY_get_octet_string_param(
		        pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &n) != 1 ||
		    n != 65 || pub[0] != 0x04)
			return FB_ERR_SET(err, FB_ERR_CRYPTO, "cannot read the P-256 public key");
		(void)fb_b64url_encode(pub + 1, 32, x, sizeof(x));
		(void)fb_b64url_encode(pub + 33, 32, y, sizeof(y));
		*out =
		    json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
	}
	return *out ? FB_OK : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
}

static fb_rc
key_alg(EVP_PKEY *pkey, enum fb_verify_alg *alg, struct fb_err *err)
{
	char group[32];
	size_t n = 0;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		*alg = FB_ALG_EDDSA;
		return FB_OK;
	}
	if (EVP_PKEY_is_a(pkey, "EC") &&
	    EVP_PKEY_get_utf8_string_param(
	        pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &n) == 1 &&
	    strcmp(group, "prime256v1") == 0) {
		*alg = FB_ALG_ES256;
		return FB_OK;
	}
	return FB_ERR_SET(err, FB_ERR_INVALID, "only P-256 (ES256) and Ed25519 (EdDSA) keys sign");
}

static fb_rc
key_thumbprint(EVP_PKEY *pkey, enum fb_verify_alg alg, char kid[44], struct fb_err *err)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	json_t *jwk = NULL;
	char *canon;
	fb_rc rc;

	if ((rc = public_jwk(pkey, alg, &jwk, err)) != FB_OK)
		return rc;
	/* RFC 7638: required members only, sorted, no whitespace. */
	canon = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(jwk);
	if (canon == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	SHA256((const unsigned char *)canon, strlen(canon), digest);
	free(canon);
	return fb_b64url_encode(digest, sizeof(digest), kid, 44);
}

fb_rc
fb_signing_key_load(const char *path, struct fb_signing_key **out, struct fb_err *err)
{
	struct fb_signing_key *k;
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	fb_rc rc;

	if ((rc = fb_secret_read(path, FB_SECRET_PEM_MAX, &pem, &len, err)) != FB_OK)
		return rc;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		fb_secret_free(pem);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	/* len <= FB_SECRET_PEM_MAX, so it fits BIO's int. */
	bio = BIO_new_mem_buf(pem, (int)len);
	k->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	fb_secret_free(pem);
	if (k->pkey == NULL) {
		fb_signing_key_free(k);
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: not a PEM private key", path);
	}
	if ((rc = key_alg(k->pkey, &k->alg, err)) != FB_OK ||
	    (rc = key_thumbprint(k->pkey, k->alg, k->kid, err)) != FB_OK) {
		fb_err_prefix(err, "%s", path);
		fb_signing_key_free(k);
		return rc;
	}
	if (k->alg == FB_ALG_ES256 &&
	    ((k->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL)) == NULL ||
	        (k->sign_tmpl = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL)) == NULL ||
	        EVP_PKEY_sign_init(k->sign_tmpl) != 1 ||
	        EVP_PKEY_CTX_set_signature_md(k->sign_tmpl, k->sha256) != 1)) {
		fb_signing_key_free(k);
		return FB_ERR_SET(
		    err, FB_ERR_CRYPTO, "%s: cannot prepare the key for signing", path);
	}
	if ((k->path = strdup(path)) == NULL) {
		fb_signing_key_free(k);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	{
		char hdr[112];
		int n = snprintf(hdr, sizeof(hdr),
		    "{\"alg\":\"%s\",\"typ\":\"fed+jwt\",\"kid\":\"%s\"}",
		    fb_verify_alg_name(k->alg), k->kid);
		(void)fb_b64url_encode(hdr, (size_t)n, k->header_b64, sizeof(k->header_b64));
	}
	*out = k;
	return FB_OK;
}

void
fb_signing_key_free(struct fb_signing_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_CTX_free(k->sign_tmpl);
	EVP_MD_free(k->sha256);
	EVP_PKEY_free(k->pkey); /* OpenSSL clears private key material on free */
	free(k->path);
	free(k);
}

const char *
fb_signing_key_kid(const struct fb_signing_key *k)
{
	return k->kid;
}

enum fb_verify_alg
fb_signing_key_alg(const struct fb_signing_key *k)
{
	return k->alg;
}

const char *
fb_signing_key_header_b64(const struct fb_signing_key *k)
{
	return k->header_b64;
}

const char *
fb_signing_key_path(const struct fb_signing_key *k)
{
	return k->path;
}

fb_rc
fb_keys_generate(const char *path, enum fb_verify_alg alg, struct fb_err *err)
{
	EVP_PKEY *pkey;
	FILE *f;
	int fd, ok;

	pkey = alg == FB_ALG_EDDSA ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "key generation failed");
	/* Created 0600 and never over an existing file. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		EVP_PKEY_free(pkey);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		(void)close(fd);
		EVP_PKEY_free(pkey);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
	}
	ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	EVP_PKEY_free(pkey);
	if (fclose(f) != 0 || ok != 1) {
		(void)unlink(path);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: cannot write the key", path);
	}
	return FB_OK;
}

fb_rc
fb_keys_jwks(struct fb_signing_key *const *keys, const int64_t *exps, size_t n, char **out,
    struct fb_err *err)
{
	json_t *arr = json_array(), *root, *jwk = NULL;
	fb_rc rc = FB_OK;

	if (arr == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n && rc == FB_OK; i++) {
		if ((rc = public_jwk(keys[i]->pkey, keys[i]->alg, &jwk, err)) != FB_OK ||
		    jwk == NULL)
			break;
		if (json_object_set_new(jwk, "kid", json_string(keys[i]->kid)) != 0 ||
		    json_object_set_new(
		        jwk, "alg", json_string(fb_verify_alg_name(keys[i]->alg))) != 0 ||
		    json_object_set_new(jwk, "use", json_string("sig")) != 0 ||
		    (exps != NULL && exps[i] != 0 &&
		        json_object_set_new(jwk, "exp", json_integer(exps[i])) != 0) ||
		    json_array_append_new(arr, jwk) != 0)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	root = json_pack("{s:o}", "keys", arr);
	if (root == NULL) {
		return rc != FB_OK ? rc : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	if (rc == FB_OK && (*out = json_dumps(root, JSON_COMPACT)) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	json_decref(root);
	return rc;
}

/* JWS signing input -> signature in JWS form (r||s for ES256). */
fb_rc
fb_signing_key_sign(const struct fb_signing_key *k, const void *data, size_t len,
    unsigned char sig[64], struct fb_err *err)
{
	unsigned char der[80];
	const unsigned char *p = der;
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char digest[32];
	unsigned int dlen = 0;
	fb_rc rc = FB_OK;

	if (md == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (k->alg == FB_ALG_EDDSA) {
		size_t sl = 64;
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
		    EVP_DigestSign(md, sig, &sl, data, len) != 1 || sl != 64)
			rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "EdDSA signing failed");
		EVP_MD_CTX_free(md);
		return rc;
	}
	EVP_MD_CTX_free(md);
	if (EVP_Digest(data, len, digest, &dlen, k->sha256, NULL) != 1 ||
	    (ctx = EVP_PKEY_CTX_dup(k->sign_tmpl)) == NULL ||
	    EVP_PKEY_sign(ctx, der, &der_len, digest, dlen) != 1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "ES256 signing failed");
	} else {
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
			rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "ES256 signature out of range");
	}
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}
