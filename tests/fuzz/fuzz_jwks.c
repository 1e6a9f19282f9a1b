/*
 * Fuzz target for the JWKS parser of libfedverify: JSON, the per-key member
 * checks, base64url coordinates, curve point validation and duplicate kids.
 * The input is the whole JWKS text (not NUL-terminated).
 */
#include "fb_verify.h"

#include <stddef.h>
#include <stdint.h>

/* JWKS_MAX_KEYS in keyset.c: a keyset never holds more. */
#define FUZZ_JWKS_MAX_KEYS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fb_verify_keyset *const sentinel = (struct fb_verify_keyset *)&sentinel;
	struct fb_verify_keyset *ks = sentinel;
	struct fb_err err = { 0 };
	fb_rc rc;
	size_t n;

	rc = fb_verify_keyset_from_jwks((const char *)data, size, &ks, &err);
	if (rc != FB_OK) {
		/* Failure leaves *out alone and says why. */
		if (ks != sentinel || err.rc != rc || err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (ks == NULL || ks == sentinel)
		__builtin_trap();
	n = fb_verify_keyset_count(ks);
	if (n < 1 || n > FUZZ_JWKS_MAX_KEYS)
		__builtin_trap();
	/* A second reference outlives the first: the count stays readable. */
	if (fb_verify_keyset_ref(ks) != ks)
		__builtin_trap();
	fb_verify_keyset_unref(ks);
	if (fb_verify_keyset_count(ks) != n)
		__builtin_trap();
	fb_verify_keyset_unref(ks);
	return 0;
}
