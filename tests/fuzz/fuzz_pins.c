/*
 * Fuzz target for the legacy pin table parser: any bytes as the JSON file;
 * what parses is looked up with a few keys, in every letter case.
 */
#include "fb_mapping.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "i.ivanov@company_domain", "I.IVANOV@COMPANY_DOMAIN",
		"", "x", "a@b" };
	struct fb_pins *p = NULL;

	if (fb_pins_parse((const char *)data, size, "fuzz.json", &p, NULL) != FB_OK)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct fb_pin *pin = fb_pins_find(p, keys[i], strlen(keys[i]));
		if (pin != NULL && pin->fid == NULL && pin->n_remotes == 0)
			__builtin_trap(); /* every pin has a fid or remotes */
	}
	(void)fb_pins_count(p);
	(void)fb_pins_tenant(p);
	fb_pins_free(p);
	return 0;
}
