/*
 * Fuzz target for the configuration loader: YAML parsing, the schema walk
 * and the cross-reference pass. The file system is left out (FB_CONF_NO_FS)
 * so inputs cannot make the loader stat arbitrary paths.
 */
#include "fb_conf.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;

	conf = fb_conf_load_buffer(
	    (const char *)data, size, "fuzz.yaml", "/nonexistent", FB_CONF_NO_FS, &diags);
	/* Either a value or at least one diagnostic, never both, never neither. */
	if ((conf == NULL) == (diags.n == 0 && diags.dropped == 0))
		__builtin_trap();
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	return 0;
}
