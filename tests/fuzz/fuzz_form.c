/*
 * Fuzz target for the form reader of POST /token and the back-channel
 * logout endpoint: any bytes as the body. What it accepts must hold its
 * promises: names non-empty and unique, names and values UTF-8 without NUL,
 * and at most FB_FORM_MAX_PARAMS of them.
 */
#include "fb_login.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_form f;

	if (fb_form_parse((const char *)data, size, &f, NULL) != FB_OK)
		return 0;
	if (f.n > FB_FORM_MAX_PARAMS)
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++) {
		if (f.name[i][0] == '\0' || !fb_utf8_valid(f.name[i], strlen(f.name[i])) ||
		    !fb_utf8_valid(f.value[i], strlen(f.value[i])))
			__builtin_trap();
		for (size_t k = 0; k < i; k++)
			if (strcmp(f.name[i], f.name[k]) == 0)
				__builtin_trap();
		if (fb_form_get(&f, f.name[i]) != f.value[i])
			__builtin_trap();
	}
	fb_form_clear(&f);
	return 0;
}
