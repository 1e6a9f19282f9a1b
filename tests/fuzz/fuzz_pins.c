/*
 * Fuzz target for the legacy pin table parser: any bytes as the JSON file.
 * What parses must find every key it was given, in another letter case too,
 * and each pin must have a fid or remotes; a few fixed keys are looked up
 * as well.
 */
#include "fb_mapping.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_key(const struct fb_pins *p, const char *key)
{
	char upper[400];
	size_t len = strlen(key);
	const struct fb_pin *pin = fb_pins_find(p, key, len);

	if (pin == NULL || pin->key == NULL || (pin->fid == NULL && pin->n_remotes == 0))
		__builtin_trap(); /* every key of the table is found, with a fid or remotes */
	if (len >= sizeof(upper))
		return;
	for (size_t i = 0; i <= len; i++)
		upper[i] = (char)(key[i] >= 'a' && key[i] <= 'z' ? key[i] - ('a' - 'A') : key[i]);
	if (fb_pins_find(p, upper, len) != pin)
		__builtin_trap(); /* keys compare without ASCII case */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "i.ivanov@company_domain", "I.IVANOV@COMPANY_DOMAIN",
		"", "x", "a@b" };
	struct fb_pins *p = NULL;
	json_t *doc, *v;
	const char *key;

	if (fb_pins_parse((const char *)data, size, "fuzz.json", &p, NULL) != FB_OK)
		return 0;
	doc = json_loadb((const char *)data, size, 0, NULL);
	json_object_foreach(json_object_get(doc, "pins"), key, v)
	{
		check_key(p, key);
	}
	if (json_object_size(json_object_get(doc, "pins")) != fb_pins_count(p))
		__builtin_trap();
	json_decref(doc);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct fb_pin *pin = fb_pins_find(p, keys[i], strlen(keys[i]));
		if (pin != NULL && pin->fid == NULL && pin->n_remotes == 0)
			__builtin_trap();
	}
	if (fb_pins_tenant(p) == NULL)
		__builtin_trap();
	fb_pins_free(p);
	return 0;
}
