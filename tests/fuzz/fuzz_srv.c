/*
 * Fuzz target for reading a DNS answer to an SRV query (what fedbridge does
 * with the bytes libresolv returns): any bytes as the answer. A target that
 * is picked is a host name fit for a URL, with a port.
 */
#include "fb_federation.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_srv_target t;
	struct fb_err err = { 0 };

	if (fb_srv_answer_parse(data, size, "_fedbridge._tcp.fuzz.example", &t, &err) != FB_OK) {
		if (err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (t.port == 0 || t.port > 65535 || t.host[0] == '\0' ||
	    strspn(t.host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
	        strlen(t.host))
		__builtin_trap();
	return 0;
}
