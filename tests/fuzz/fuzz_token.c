/*
 * Fuzz target for the relay check of libfedverify: the compact JWS split,
 * strict base64url and JSON of header and payload, issuer and key lookup,
 * signatures, the per-check rules and the verified-token cache.
 *
 * One fixed trust, built once per process: local tenant HWqHczeM2P trusts
 * issuer https://sso.a.example for remote tenant HZnKEBoqDU, with an ES256
 * and an EdDSA key (public halves only; the seed corpus holds tokens signed
 * by the matching private keys, which were thrown away).
 *
 * Input: the first 32 bytes are the SHA-256 of the peer certificate, the
 * rest is the token. Inputs shorter than 32 bytes are a token alone, checked
 * without a peer certificate.
 */
#include "fb_verify.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW ((time_t)1800000000)
#define FUZZ_LOCAL_TENANT "HWqHczeM2P"
#define FUZZ_REMOTE_TENANT "HZnKEBoqDU"
#define FUZZ_ISSUER "https://sso.a.example"
#define FUZZ_CLOCK_SKEW 30
#define FUZZ_MAX_LIFETIME 900

/* kid sso-a-es256-1 (EC P-256) and kid sso-a-ed25519-1 (OKP Ed25519). */
static const char fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"sso-a-es256-1\",\"alg\":\"ES256\","
    "\"use\":\"sig\",\"x\":\"nPkNGHgjdNLtDkld5JRS7twAQCqlPlnxbIMsHwl8o9c\","
    "\"y\":\"9cUc5ZWI-NyV-1eTh9oDBRUQ5MIHcML8g4SHTcNVDdU\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"sso-a-ed25519-1\",\"alg\":\"EdDSA\","
    "\"use\":\"sig\",\"x\":\"_j0z4d2fYzEY_xHBTnFq__LGORuGzWRL9mR-L1nOhNc\"}"
    "]}";

static struct fb_verifier *fuzz_verifier;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *what, const struct fb_err *err)
{
	fprintf(stderr, "fuzz_token: %s: %s\n", what, err->msg);
	abort();
}

static void
fuzz_cleanup(void)
{
	fb_verifier_free(fuzz_verifier);
	fuzz_verifier = NULL;
}

static void
fuzz_init(void)
{
	static const char *const remote[] = { FUZZ_REMOTE_TENANT };
	const struct fb_verify_opts opts = {
		.clock_skew = FUZZ_CLOCK_SKEW,
		.max_lifetime = FUZZ_MAX_LIFETIME,
		.max_token = 8192,
		.cache_entries = 256,
	};
	struct fb_verify_trust_spec spec = {
		.local_tenant = FUZZ_LOCAL_TENANT,
		.issuer = FUZZ_ISSUER,
		.remote_tenants = remote,
		.n_remote_tenants = 1,
	};
	struct fb_verify_trusts *trusts = NULL;
	struct fb_verify_keyset *keys = NULL;
	struct fb_err err = { 0 };

	if (fb_verify_keyset_from_jwks(fuzz_jwks, sizeof(fuzz_jwks) - 1, &keys, &err) != FB_OK)
		fuzz_fail("embedded JWKS", &err);
	if (fb_verify_keyset_count(keys) != 2)
		fuzz_fail("embedded JWKS", &(struct fb_err){ .msg = "not two keys" });
	spec.keys = keys;
	if (fb_verify_trusts_new(&spec, 1, &trusts, &err) != FB_OK)
		fuzz_fail("trust table", &err);
	fb_verify_keyset_unref(keys); /* the table holds its own reference */
	if (fb_verifier_new(&opts, &fuzz_verifier, &err) != FB_OK)
		fuzz_fail("verifier", &err);
	fb_verifier_set_trusts(fuzz_verifier, trusts);
	(void)atexit(fuzz_cleanup);
}

/* Invariants of one result; thumb is the peer certificate hash given, or NULL. */
static void
fuzz_check_result(
    enum fb_verify_reason reason, const struct fb_verify_result *r, const unsigned char *thumb)
{
	if ((unsigned)reason >= FB_VERIFY_REASONS || r->reason != reason)
		__builtin_trap();
	switch (reason) {
	case FB_VERIFY_ALLOW:
		if (r->fid == NULL || r->tid == NULL || r->attrs_json == NULL)
			__builtin_trap();
		/* Only the trusted remote tenant, bound to a certificate, within its lifetime. */
		if (strcmp(r->tid, FUZZ_REMOTE_TENANT) != 0 || thumb == NULL)
			__builtin_trap();
		if (r->exp <= FUZZ_NOW - FUZZ_CLOCK_SKEW ||
		    r->exp > FUZZ_NOW + FUZZ_CLOCK_SKEW + FUZZ_MAX_LIFETIME)
			__builtin_trap();
		if (r->attrs_json[0] != '{')
			__builtin_trap();
		break;
	case FB_VERIFY_MALFORMED:
	case FB_VERIFY_BAD_SIGNATURE:
	case FB_VERIFY_UNKNOWN_KEY:
	case FB_VERIFY_UNTRUSTED_ISSUER:
		/* Denied before (or at) the signature: nothing unverified leaks out. */
		if (r->fid != NULL || r->tid != NULL || r->attrs_json != NULL)
			__builtin_trap();
		break;
	case FB_VERIFY_WRONG_TENANT:
	case FB_VERIFY_WRONG_AUDIENCE:
	case FB_VERIFY_EXPIRED:
	case FB_VERIFY_NOT_YET_VALID:
	case FB_VERIFY_CERT_MISMATCH:
		/* Denied after the signature: the verified claims are there, for logs. */
		if (r->fid == NULL || r->tid == NULL || r->attrs_json == NULL)
			__builtin_trap();
		break;
	case FB_VERIFY_SENDER_MISMATCH:
	case FB_VERIFY_REVOKED:
	case FB_VERIFY_POLICY_DENIED:
	default:
		/* No sender, no revocations and no policy here. */
		__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialised;
	struct fb_verify_input in = {
		.receiving_tenant = FUZZ_LOCAL_TENANT,
		.sender_fid = NULL,
		.now = FUZZ_NOW,
	};
	struct fb_verify_result r, again;
	enum fb_verify_reason reason;
	char *token;

	if (!initialised) {
		fuzz_init();
		initialised = true;
	}
	if (size >= FB_VERIFY_SHA256_LEN) {
		in.peer_cert_sha256 = data;
		data += FB_VERIFY_SHA256_LEN;
		size -= FB_VERIFY_SHA256_LEN;
	}
	/* An exact-size copy: tokens are not NUL-terminated, and reading past one is a bug. */
	if ((token = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(token, data, size);
	in.token = token;
	in.token_len = size;

	reason = fb_verifier_check(fuzz_verifier, &in, &r);
	fuzz_check_result(reason, &r, in.peer_cert_sha256);
	/* The same bytes again, from the cache once verified: the same answer. */
	if (fb_verifier_check(fuzz_verifier, &in, &again) != reason)
		__builtin_trap();
	fuzz_check_result(reason, &again, in.peer_cert_sha256);
	if ((r.fid == NULL) != (again.fid == NULL) ||
	    (r.fid != NULL && strcmp(r.fid, again.fid) != 0))
		__builtin_trap();
	fb_verify_result_clear(&again);
	fb_verify_result_clear(&r);
	if (r.fid != NULL || r.hold != NULL)
		__builtin_trap();
	free(token);
	return 0;
}
