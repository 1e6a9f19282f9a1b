/* The one error convention: a status code plus a message with context. */
#include "fb_common.h"

#include <stdio.h>
#include <string.h>

fb_rc
fb_err_set_at(struct fb_err *err, fb_rc rc, const char *func, int line, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return rc;
	err->rc = rc;
	err->func = func;
	err->line = line;
	va_start(ap, fmt);
	(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

void
fb_err_prefix(struct fb_err *err, const char *fmt, ...)
{
	char old[FB_ERR_MSG_MAX];
	va_list ap;
	int n;

	if (err == NULL)
		return;
	memcpy(old, err->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Keep as much of the original detail as fits after "context: ". */
	if (n >= 0 && (size_t)n + 2 < sizeof(err->msg))
		(void)snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %.*s",
		    (int)(sizeof(err->msg) - (size_t)n - 3), old);
}

const char *
fb_rc_name(fb_rc rc)
{
	switch (rc) {
	case FB_OK:
		return "ok";
	case FB_ERR_NOMEM:
		return "nomem";
	case FB_ERR_INVALID:
		return "invalid";
	case FB_ERR_IO:
		return "io";
	case FB_ERR_CONFIG:
		return "config";
	case FB_ERR_LIMIT:
		return "limit";
	case FB_ERR_NOTFOUND:
		return "notfound";
	case FB_ERR_CRYPTO:
		return "crypto";
	case FB_ERR_INTERNAL:
		return "internal";
	}
	return "unknown";
}
