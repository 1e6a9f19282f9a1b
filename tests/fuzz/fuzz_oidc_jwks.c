/*
 * Fuzz target for an OpenID Connect issuer's JWKS as fedbridge reads it:
 * any bytes as the document; whatever parses must be usable and freed.
 */
#include "fb_idp.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_oidc_keys *k = NULL;

	if (fb_oidc_keys_parse((const char *)data, size, &k, NULL) != FB_OK)
		return 0;
	if (fb_oidc_keys_count(k) > 64)
		__builtin_trap();
	fb_oidc_keys_free(k);
	return 0;
}
