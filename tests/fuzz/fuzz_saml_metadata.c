/*
 * Fuzz target for loading an IdP's metadata (the file an admin configures,
 * or what a metadata URL serves): any bytes as the document, through
 * fb_saml_sp_new (our hardened parse, the signing certificates, Lasso's
 * loader). It must refuse or accept without a crash or a leak.
 */
#include "fb_idp.h"
#include "saml_fixture.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct saml_fixture fx;
	static bool ready;
	struct fb_saml_sp *sp = NULL;
	bool unreachable = false;

	if (!ready) {
		saml_fixture_init(&fx);
		ready = true;
	}
	fixture_write(fx.metadata, (const char *)data, size, 0644);
	if (fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, NULL) == FB_OK)
		fb_saml_sp_free(sp);
	return 0;
}
