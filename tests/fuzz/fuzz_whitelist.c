/*
 * Fuzz target for the legacy whitelist parser (whitelist.yaml and
 * remote_whitelist.yaml): any bytes as the file. What parses must hold
 * well-formed users, sorted without case and none twice, and either a
 * remoteTenant or a fid for every user.
 */
#include "fb_conf.h"
#include "fb_legacy.h"
#include "fb_mapping.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_whitelist w;

	if (fb_whitelist_parse((const char *)data, size, "fuzz.yaml", &w, NULL) != FB_OK)
		return 0;
	for (size_t i = 0; i < w.n; i++) {
		const struct fb_whitelist_user *u = &w.users[i];
		if (u->key == NULL || u->key[0] == '\0' || u->line == 0 || u->col == 0)
			__builtin_trap();
		if (w.remote_tenant == NULL && u->fid == NULL)
			__builtin_trap();
		if (u->fid != NULL && (strncmp(u->fid, FB_FID_PREFIX, 6) != 0 || u->fid_line == 0))
			__builtin_trap();
		if (i > 0 && strcasecmp(w.users[i - 1].key, u->key) >= 0)
			__builtin_trap(); /* sorted, and no key twice */
	}
	if (w.remote_tenant != NULL && !fb_conf_tenant_id_valid(w.remote_tenant))
		__builtin_trap();
	fb_whitelist_free(&w);
	return 0;
}
