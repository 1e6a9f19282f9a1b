/*
 * Fuzz target for the trust export reader of fedbridge trust import: any
 * bytes as the export document. What parses must be complete: a valid
 * installation name, tenantIDs, a CA certificate and a usable key set.
 */
#include "fb_federation.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_trust_export ex;
	struct fb_err err = { 0 };
	struct fb_verify_keyset *ks = NULL;

	if (fb_trust_export_parse((const char *)data, size, "export.json", &ex, &err) != FB_OK) {
		if (err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (!ex.installation || !ex.issuer || !ex.jwks_uri || !ex.relay || !ex.ca_pem || !ex.jwks ||
	    ex.n_tenants == 0)
		__builtin_trap();
	for (size_t i = 0; i < ex.n_tenants; i++)
		if (!fb_conf_tenant_id_valid(ex.tenants[i]))
			__builtin_trap();
	if (fb_verify_keyset_from_jwks(ex.jwks, strlen(ex.jwks), &ks, &err) != FB_OK ||
	    fb_verify_keyset_count(ks) == 0)
		__builtin_trap(); /* the keys were checked once; they must still parse */
	fb_verify_keyset_unref(ks);
	fb_trust_export_free(&ex);
	return 0;
}
