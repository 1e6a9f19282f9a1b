/*
 * Fuzz target for OpenID Connect discovery documents: any bytes as what an
 * issuer's /.well-known/openid-configuration returned.
 */
#include "fb_idp.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_oidc_discovery d;

	if (fb_oidc_discovery_parse(
	        (const char *)data, size, "https://kc.a.example/realms/corp", &d, NULL) != FB_OK)
		return 0;
	if (d.token_endpoint == NULL || d.jwks_uri == NULL ||
	    strcmp(d.issuer, "https://kc.a.example/realms/corp") != 0)
		__builtin_trap();
	fb_oidc_discovery_clear(&d);
	return 0;
}
