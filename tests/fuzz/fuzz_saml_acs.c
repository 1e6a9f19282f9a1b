/*
 * Fuzz target for the ACS: any bytes as the SAML response document (base64
 * encoded here, as the POST binding carries it) through every check of
 * fb_saml_sp_acs. Nothing the fuzzer makes is signed by the IdP's key, so
 * nothing may be accepted; everything must be refused without a crash.
 */
#include "fb_idp.h"
#include "saml_fixture.h"

#include <stdint.h>
#include <time.h>

static struct fb_saml_sp *sp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct saml_fixture fx;
	struct fb_saml_outcome out;
	bool unreachable = false;
	char *b64;

	if (sp == NULL) {
		saml_fixture_init(&fx);
		saml_fixture_metadata(&fx, "https://idp.example");
		if (fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, NULL) != FB_OK)
			abort();
	}
	if ((b64 = malloc(size / 3 * 4 + 8)) == NULL)
		return 0;
	(void)EVP_EncodeBlock((unsigned char *)b64, data, (int)size);
	if (fb_saml_sp_acs(sp, b64, "_req", (int64_t)time(NULL), 30, &out, NULL) == FB_OK)
		__builtin_trap();
	fb_saml_outcome_clear(&out);
	free(b64);
	return 0;
}
