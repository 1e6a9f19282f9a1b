/* Session identifiers: unguessable, fixed length, canonical base64url. */
#include "fb_sessions.h"

fb_rc
fb_session_id_new(char out[FB_SESSION_ID_LEN + 1])
{
	unsigned char raw[FB_SESSION_ID_BYTES];
	fb_rc rc;

	/* Drawn again while it would start with '-' or '_': an id that looks like an
	 * option cannot be given to the command line (sessions show). Costs 0.05 bit. */
	do {
		if ((rc = fb_random_bytes(raw, sizeof(raw))) != FB_OK)
			break;
		rc = fb_b64url_encode(raw, sizeof(raw), out, FB_SESSION_ID_LEN + 1);
	} while (rc == FB_OK && (out[0] == '-' || out[0] == '_'));
	fb_cleanse(raw, sizeof(raw));
	return rc;
}

bool
fb_session_id_valid(const char *s, size_t len)
{
	unsigned char raw[FB_SESSION_ID_BYTES];
	size_t n = 0;

	return len == FB_SESSION_ID_LEN &&
	    fb_b64url_decode(s, len, raw, sizeof(raw), &n) == FB_OK && n == sizeof(raw);
}
