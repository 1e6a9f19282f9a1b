/*
 * fedbridge's one error convention: a status code and, when the caller asks,
 * a message with context. The part of common/ that libfedverify's installed
 * header carries to relays; nothing else of common/ is their ABI.
 */
#ifndef FB_ERR_H
#define FB_ERR_H

/* One status code across fedbridge; 0 is success. */
typedef enum fb_rc {
	FB_OK = 0,
	FB_ERR_NOMEM, /* an allocation failed */
	FB_ERR_INVALID, /* bad input from a caller, a user or a peer */
	FB_ERR_IO, /* a file or socket operation failed */
	FB_ERR_CONFIG, /* the configuration is not valid */
	FB_ERR_LIMIT, /* a size, depth or count cap was hit */
	FB_ERR_NOTFOUND, /* a named thing does not exist */
	FB_ERR_CRYPTO, /* a cryptographic library call failed */
	FB_ERR_INTERNAL, /* a broken invariant: a bug */
} fb_rc;

#define FB_ERR_MSG_MAX 512

/*
 * Detail for a failed call: caller-owned, optional (NULL is fine), filled
 * once by the innermost failing function through FB_ERR_SET. Outer layers
 * may prefix context with fb_err_prefix. Never holds secrets.
 */
struct fb_err {
	fb_rc rc;
	const char *func; /* static string: where it was set */
	int line;
	char msg[FB_ERR_MSG_MAX];
};

#if defined(__GNUC__)
#define FB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FB_PRINTF(a, b)
#endif

/* Sets err (when not NULL) and returns rc, so callers can `return FB_ERR_SET(...)`. */
fb_rc fb_err_set_at(struct fb_err *err, fb_rc rc, const char *func, int line, const char *fmt, ...)
    FB_PRINTF(5, 6);
#define FB_ERR_SET(err, rc, ...) fb_err_set_at((err), (rc), __func__, __LINE__, __VA_ARGS__)

/* Prepends "context: " to err's message; a no-op when err is NULL. */
void fb_err_prefix(struct fb_err *err, const char *fmt, ...) FB_PRINTF(2, 3);

/* A short, stable name for rc ("config", "nomem", ...). */
const char *fb_rc_name(fb_rc rc);

#endif
