/* Private to the verify core. */
#ifndef FB_VERIFY_INT_H
#define FB_VERIFY_INT_H

#include "fb_common.h"
#include "fb_verify.h"

#include <openssl/evp.h>
#include <stdatomic.h>

struct verify_key {
	char kid[FB_VERIFY_KID_MAX + 1];
	enum fb_verify_alg alg;
	EVP_PKEY *pkey;
	/* ES256: a context initialised once for verification, duplicated per check,
	 * so no check pays OpenSSL 3's algorithm fetches. */
	EVP_PKEY_CTX *verify_tmpl;
	int64_t exp; /* 0: none; it signs no token issued after this */
};

struct fb_verify_keyset {
	atomic_uint refs;
	struct verify_key *keys;
	size_t n;
};

/* The latest exp among the keys, or 0 when some key has none. */
int64_t verify_keyset_newest_exp(const struct fb_verify_keyset *ks);
const struct verify_key *verify_keyset_find(
    const struct fb_verify_keyset *ks, const char *kid, size_t kid_len);

/* Verifies a JWS signature (raw r||s for ES256, 64 bytes for EdDSA) over data. */
bool verify_signature(const struct verify_key *k, const unsigned char *data, size_t len,
    const unsigned char *sig, size_t sig_len);

/* Keyed 64-bit hash for table indexes (never used as proof of equality). */
uint64_t verify_hash(uint64_t seed, const void *data, size_t len);

#endif
