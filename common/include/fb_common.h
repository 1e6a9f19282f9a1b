/*
 * fedbridge common helpers: the one error convention, logging, and small
 * bounded buffers. Every module links this; it depends on libc alone.
 */
#ifndef FB_COMMON_H
#define FB_COMMON_H

#include "fb_err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Logging: plain text lines on stderr, or JSON lines. Thread-safe. */
enum fb_log_level { FB_LOG_DEBUG, FB_LOG_INFO, FB_LOG_WARN, FB_LOG_ERROR };
enum fb_log_format { FB_LOG_TEXT, FB_LOG_JSON };

void fb_log_setup(enum fb_log_level min, enum fb_log_format format);
void fb_log(enum fb_log_level level, const char *fmt, ...) FB_PRINTF(2, 3);
/* Parses "debug", "info", "warn", "error"; false when unknown. */
bool fb_log_level_parse(const char *s, enum fb_log_level *out);

/*
 * A growable byte buffer with a hard cap (curl's dynbuf idea): appending
 * past the cap fails with FB_ERR_LIMIT instead of growing without bound.
 * Always NUL-terminated when len > 0. Zero-initialise, then fb_buf_init.
 */
struct fb_buf {
	char *data; /* owned */
	size_t len;
	size_t cap_alloc;
	size_t max; /* hard cap on len */
};

void fb_buf_init(struct fb_buf *b, size_t max);
fb_rc fb_buf_append(struct fb_buf *b, const void *data, size_t n);
fb_rc fb_buf_printf(struct fb_buf *b, const char *fmt, ...) FB_PRINTF(2, 3);
/* Appends s as a JSON string literal, quotes included. */
fb_rc fb_buf_append_json_string(struct fb_buf *b, const char *s);
void fb_buf_reset(struct fb_buf *b);
void fb_buf_free(struct fb_buf *b);

/* Allocation helpers that never return NULL silently: NULL means FB_ERR_NOMEM. */
char *fb_strndup(const char *s, size_t n);

/* Overwrites n bytes in a way the compiler keeps (for key material). */
void fb_cleanse(void *p, size_t n);

/* Reads a whole regular file of at most max bytes into *out (owned by the caller, NUL-terminated).
 */
fb_rc fb_file_read(const char *path, size_t max, char **out, size_t *out_len, struct fb_err *err);

/* Caps on secret files: a shared secret or password, and a private key in PEM. */
#define FB_SECRET_SHORT_MAX 4096
#define FB_SECRET_PEM_MAX 65536
/* What a private key file is written with: fb_secret_read refuses anything wider. */
#define FB_SECRET_FILE_MODE 0600

/*
 * Reads a secret file (a private key, the fid secret, a client secret, a password), the one
 * way fedbridge does. The path is opened without following a symbolic link, and on the open
 * descriptor it must be a regular file owned by the effective user or root, with no
 * permission bits beyond 0600, of at most max bytes; each refusal names the file and the
 * reason. On success *out holds *out_len bytes plus a NUL, owned by the caller, who frees it
 * with fb_secret_free (never free: the buffer is not malloc's). On failure *out is NULL and no
 * byte of the file is left in memory.
 */
fb_rc fb_secret_read(const char *path, size_t max, char **out, size_t *out_len, struct fb_err *err);
/* Wipes a buffer from fb_secret_read, whole, and frees it; NULL is fine. */
void fb_secret_free(char *data);

/*
 * Replaces path with data whole: a temporary file in the same folder, written, given mode
 * (not left to the umask), synced, renamed over path, and the folder synced, so readers and
 * a crash see the old content or the new, never a mix.
 */
fb_rc fb_file_write_atomic(
    const char *path, const void *data, size_t len, unsigned mode, struct fb_err *err);

/*
 * base64url without padding (RFC 7515 section 2). Decoding is strict: only
 * the canonical form is accepted (no padding, no whitespace, no non-zero
 * trailing bits), so one value has exactly one encoding.
 */
#define FB_B64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Writes the encoding and a NUL into out (out_size >= FB_B64URL_ENCODED_LEN(n) + 1). */
fb_rc fb_b64url_encode(const void *in, size_t n, char *out, size_t out_size);
/* Decodes len characters into out; *out_len is the byte count. FB_ERR_INVALID when not canonical.
 */
fb_rc fb_b64url_decode(const char *in, size_t len, void *out, size_t out_size, size_t *out_len);

/*
 * Text from outside (a fetched body, a URL from a document) for a log line or an error:
 * at most FB_EXCERPT_MAX - 1 bytes in out, escaped as fb_text_escape escapes (control
 * characters, DEL and non-UTF-8 bytes as \xNN, ...) and quotes and backslashes too,
 * "..." when cut.
 */
#define FB_EXCERPT_MAX 200
/*
 * s (len bytes) as a double-quoted string for a message naming a key or value
 * from a file: quotes and backslashes escaped, control characters as \u00XX,
 * cut at a UTF-8 boundary after max bytes ("..."). buf needs max * 6 + 16
 * bytes to hold max bytes however they escape; returns buf.
 */
const char *fb_quote(char *buf, size_t size, const char *s, size_t len, size_t max);
void fb_excerpt(const char *s, size_t n, char *out, size_t out_size);
/* A JSON parser's error text without the " near '...'" part that quotes the input
 * (a fetched document's content must not reach a log), as fb_excerpt. */
void fb_json_reason(const char *text, char *out, size_t out_size);

/*
 * True when a URL's query string (what follows '?', up to a '#') has a
 * parameter whose name, percent-decoded ('+' a space, "name[...]" as name),
 * is one of names (a NULL-terminated list), or has a name that does not
 * decode: a hostile query must not hide one. Parameters are split at '&'
 * and at ';', which some frameworks also take.
 */
bool fb_query_has_param(const char *query, const char *const *names);

/* The value of a hexadecimal digit (either case), or -1. */
int fb_hex_value(char c);
/*
 * Decodes n bytes of application/x-www-form-urlencoded or URL-escaped text
 * into out (room for n + 1): '+' is a space, %XX a byte. Returns the length,
 * or -1 on a bad escape or a NUL (written or decoded).
 */
long fb_percent_decode(const char *in, size_t n, char *out);
/* Appends s with & < > " ' escaped: text for HTML and XML, in content or attributes. */
fb_rc fb_buf_append_markup(struct fb_buf *b, const char *s);

/* True when s is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
bool fb_utf8_valid(const char *s, size_t len);

/* What a cut escaped text ends with, and the longest escape of one character. */
#define FB_ESCAPE_CUT_MARKER "...[cut]"
#define FB_ESCAPE_UNIT_MAX 16

/*
 * Appends len bytes of s to out as text that cannot break a line or drive a
 * terminal: control characters, DEL and bytes that are not UTF-8 become
 * \xNN, C1 controls, line separators and bidirectional overrides \u{NNNN};
 * the rest passes as it is. At most max bytes are appended: a longer text is
 * cut at a character boundary and ends with FB_ESCAPE_CUT_MARKER. For every
 * value from outside that reaches a log line or an audit record.
 */
fb_rc fb_text_escape(struct fb_buf *out, const char *s, size_t len, size_t max);
/*
 * Time arithmetic on values from outside (exp, iat, nbf, IssueInstant, ...
 * plus or minus the clock skew): a hostile claim near INT64_MAX or INT64_MIN
 * must not overflow, which is undefined and could wrap "expired" into
 * "valid". The result sticks at the bound instead, so a comparison with a
 * real time still comes out on the side the claim is on.
 */
static inline int64_t
fb_time_add(int64_t t, int64_t d)
{
	int64_t r;

	if (__builtin_add_overflow(t, d, &r))
		return d > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline int64_t
fb_time_sub(int64_t t, int64_t d)
{
	int64_t r;

	if (__builtin_sub_overflow(t, d, &r))
		return d > 0 ? INT64_MIN : INT64_MAX;
	return r;
}

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom). */
fb_rc fb_random_bytes(void *buf, size_t n);

/* A retry comes up to delay / FB_BACKOFF_JITTER_PART early. */
#define FB_BACKOFF_JITTER_PART 5
/*
 * Seconds to wait after failing tries in a row (0: after the first failure):
 * first, doubled for each further failure up to max, less a random part of
 * up to a fifth.
 */
int64_t fb_backoff_delay(int64_t first, int64_t max, unsigned failing);

#endif
