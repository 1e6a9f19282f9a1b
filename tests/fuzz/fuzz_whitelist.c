/*
 * Fuzz target for the legacy whitelist parser (whitelist.yaml and
 * remote_whitelist.yaml): any bytes as the file; what parses must hold
 * well-formed users.
 */
#include "../../bridge/cli_int.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_whitelist w;

	if (fb_whitelist_parse((const char *)data, size, "fuzz.yaml", &w, NULL) != FB_OK)
		return 0;
	for (size_t i = 0; i < w.n; i++)
		if (w.users[i].key == NULL || w.users[i].key[0] == '\0' || w.users[i].line == 0)
			__builtin_trap();
	fb_whitelist_free(&w);
	return 0;
}
