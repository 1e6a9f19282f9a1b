/*
 * Fuzz target for the federation.yml reader of fedbridge import federation:
 * any bytes as the file. What parses must name a valid local tenant and
 * complete instances with valid tenantIDs and distinct names.
 */
#include "fb_conf.h"
#include "fb_legacy.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_vkfed f;
	struct fb_err err = { 0 };
	struct fb_buf notes;

	fb_buf_init(&notes, 1 << 16);
	if (fb_vkfed_parse((const char *)data, size, "federation.yml", &f, &notes, &err) != FB_OK) {
		if (err.msg[0] == '\0')
			__builtin_trap(); /* a refusal always says why */
		fb_vkfed_free(&f);
		fb_buf_free(&notes);
		return 0;
	}
	if (f.local_tenant == NULL || !fb_conf_tenant_id_valid(f.local_tenant))
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++) {
		const struct fb_vkfed_instance *in = &f.v[i];
		if (!in->address || !in->name || !in->ssl_cert || !in->ssl_key || !in->cacert ||
		    in->n_tenants == 0 || in->line == 0)
			__builtin_trap();
		for (size_t j = 0; j < in->n_tenants; j++)
			if (!fb_conf_tenant_id_valid(in->tenants[j]))
				__builtin_trap();
		for (size_t j = 0; j < i; j++)
			if (strcmp(f.v[j].name, in->name) == 0)
				__builtin_trap();
	}
	fb_vkfed_free(&f);
	fb_buf_free(&notes);
	return 0;
}
