/* Strict base64url, UTF-8, query parameter names and random bytes. */
#include "fb_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fb_rc
fb_b64url_encode(const void *in, size_t n, char *out, size_t out_size)
{
	const unsigned char *p = in;
	size_t o = 0, i = 0;

	if (out_size < FB_B64URL_ENCODED_LEN(n) + 1)
		return FB_ERR_LIMIT;
	for (; i + 2 < n; i += 3) {
		out[o++] = b64url_alphabet[p[i] >> 2];
		out[o++] = b64url_alphabet[((p[i] & 0x03) << 4) | (p[i + 1] >> 4)];
		out[o++] = b64url_alphabet[((p[i + 1] & 0x0f) << 2) | (p[i + 2] >> 6)];
		out[o++] = b64url_alphabet[p[i + 2] & 0x3f];
	}
	if (n - i == 1) {
		out[o++] = b64url_alphabet[p[i] >> 2];
		out[o++] = b64url_alphabet[(p[i] & 0x03) << 4];
	} else if (n - i == 2) {
		out[o++] = b64url_alphabet[p[i] >> 2];
		out[o++] = b64url_alphabet[((p[i] & 0x03) << 4) | (p[i + 1] >> 4)];
		out[o++] = b64url_alphabet[(p[i + 1] & 0x0f) << 2];
	}
	out[o] = '\0';
	return FB_OK;
}

/* 0..63 for the base64url alphabet; every other byte is 0 too (see b64url_value). */
static const unsigned char b64url_values[256] = {
	['A'] = 0,
	['B'] = 1,
	['C'] = 2,
	['D'] = 3,
	['E'] = 4,
	['F'] = 5,
	['G'] = 6,
	['H'] = 7,
	['I'] = 8,
	['J'] = 9,
	['K'] = 10,
	['L'] = 11,
	['M'] = 12,
	['N'] = 13,
	['O'] = 14,
	['P'] = 15,
	['Q'] = 16,
	['R'] = 17,
	['S'] = 18,
	['T'] = 19,
	['U'] = 20,
	['V'] = 21,
	['W'] = 22,
	['X'] = 23,
	['Y'] = 24,
	['Z'] = 25,
	['a'] = 26,
	['b'] = 27,
	['c'] = 28,
	['d'] = 29,
	['e'] = 30,
	['f'] = 31,
	['g'] = 32,
	['h'] = 33,
	['i'] = 34,
	['j'] = 35,
	['k'] = 36,
	['l'] = 37,
	['m'] = 38,
	['n'] = 39,
	['o'] = 40,
	['p'] = 41,
	['q'] = 42,
	['r'] = 43,
	['s'] = 44,
	['t'] = 45,
	['u'] = 46,
	['v'] = 47,
	['w'] = 48,
	['x'] = 49,
	['y'] = 50,
	['z'] = 51,
	['0'] = 52,
	['1'] = 53,
	['2'] = 54,
	['3'] = 55,
	['4'] = 56,
	['5'] = 57,
	['6'] = 58,
	['7'] = 59,
	['8'] = 60,
	['9'] = 61,
	['-'] = 62,
	['_'] = 63,
};

/* 'A' maps to 0 like every unlisted byte: tell them apart. */
static inline int
b64url_value(unsigned char c)
{
	int v = (int)b64url_values[c];

	return v != 0 || c == 'A' ? v : -1;
}

fb_rc
fb_b64url_decode(const char *in, size_t len, void *out, size_t out_size, size_t *out_len)
{
	unsigned char *q = out;
	size_t o = 0, need;
	uint32_t acc = 0;
	int v;

	/* A remainder of one character cannot encode a whole byte. */
	if (len % 4 == 1)
		return FB_ERR_INVALID;
	need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (need > out_size)
		return FB_ERR_LIMIT;
	for (size_t i = 0; i < len; i++) {
		if ((v = b64url_value((unsigned char)in[i])) < 0)
			return FB_ERR_INVALID;
		acc = (acc << 6) | (uint32_t)v;
		if (i % 4 == 3) {
			q[o++] = (unsigned char)(acc >> 16);
			q[o++] = (unsigned char)(acc >> 8);
			q[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (len % 4 == 2) {
		/* 12 bits carry 8: the low 4 must be zero in the canonical form. */
		if (acc & 0x0f)
			return FB_ERR_INVALID;
		q[o++] = (unsigned char)(acc >> 4);
	} else if (len % 4 == 3) {
		/* 18 bits carry 16: the low 2 must be zero. */
		if (acc & 0x03)
			return FB_ERR_INVALID;
		q[o++] = (unsigned char)(acc >> 10);
		q[o++] = (unsigned char)(acc >> 2);
	}
	*out_len = o;
	return FB_OK;
}

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * surrogates or > U+10FFFF) and its code point; 0 when there is none.
 */
static size_t
utf8_sequence(const unsigned char *p, const unsigned char *end, uint32_t *cp_out)
{
	unsigned char c = *p;
	size_t n;
	uint32_t cp;

	if (c < 0x80) {
		*cp_out = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) <= n)
		return 0;
	for (size_t i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_out = cp;
	return n + 1;
}

int
fb_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

fb_rc
fb_buf_append_markup(struct fb_buf *b, const char *s)
{
	fb_rc rc = FB_OK;

	for (; s != NULL && *s != '\0' && rc == FB_OK; s++) {
		switch (*s) {
		case '&':
			rc = fb_buf_append(b, "&amp;", 5);
			break;
		case '<':
			rc = fb_buf_append(b, "&lt;", 4);
			break;
		case '>':
			rc = fb_buf_append(b, "&gt;", 4);
			break;
		case '"':
			rc = fb_buf_append(b, "&quot;", 6);
			break;
		case '\'':
			rc = fb_buf_append(b, "&#39;", 5);
			break;
		default:
			rc = fb_buf_append(b, s, 1);
		}
	}
	return rc;
}

long
fb_percent_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? fb_hex_value(in[i + 1]) : -1;
			int lo = hi >= 0 ? fb_hex_value(in[i + 2]) : -1;
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == '\0')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

/* Does the name (n bytes, as written in the query) decode to want? -1: it does not decode. */
static int
query_name_is(const char *name, size_t n, const char *want)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)name[i];
		if (c == '%') {
			int hi = i + 2 < n ? fb_hex_value(name[i + 1]) : -1;
			int lo = hi >= 0 ? fb_hex_value(name[i + 2]) : -1;
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		/* code[] and code[x] are code to PHP and Rails. */
		if (c == '[' && want[w] == '\0')
			return 1;
		if (want[w] == '\0' || (unsigned char)want[w] != c)
			return 0;
		w++;
	}
	return want[w] == '\0';
}

bool
fb_query_has_param(const char *query, const char *const *names)
{
	const char *p = query;

	while (*p != '\0' && *p != '#') {
		size_t seg = strcspn(p, "&;#"), n = strcspn(p, "=&;#");
		for (size_t i = 0; names[i] != NULL; i++)
			if (query_name_is(p, n < seg ? n : seg, names[i]) != 0)
				return true; /* one of names, or a name that does not decode */
		p += seg;
		if (*p == '&' || *p == ';')
			p++;
	}
	return false;
}

bool
fb_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	uint32_t cp;
	size_t n;

	for (; p < end; p += n)
		if ((n = utf8_sequence(p, end, &cp)) == 0)
			return false;
	return true;
}

/*
 * Code points that change how a line reads on a terminal or in a viewer:
 * C1 controls (U+009B starts an escape sequence on some terminals), the
 * Unicode line and paragraph separators, and the bidirectional overrides
 * and isolates that reorder what follows them.
 */
static bool
cp_needs_escape(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f || cp == 0x2028 ||
	    cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The escaped form of the character at p into unit; its length. *n: bytes of p taken. */
static size_t
escape_unit(
    const unsigned char *p, const unsigned char *end, char unit[FB_ESCAPE_UNIT_MAX], size_t *n)
{
	uint32_t cp;

	if ((*n = utf8_sequence(p, end, &cp)) == 0) { /* a byte that is not UTF-8: shown */
		*n = 1;
		return (size_t)snprintf(unit, FB_ESCAPE_UNIT_MAX, "\\x%02x", *p);
	}
	if (cp < 0x20 || cp == 0x7f)
		return (size_t)snprintf(unit, FB_ESCAPE_UNIT_MAX, "\\x%02x", (unsigned)cp);
	if (cp_needs_escape(cp))
		return (size_t)snprintf(unit, FB_ESCAPE_UNIT_MAX, "\\u{%04x}", (unsigned)cp);
	memcpy(unit, p, *n);
	return *n;
}

fb_rc
fb_text_escape(struct fb_buf *out, const char *s, size_t len, size_t max)
{
	static const char cut[] = FB_ESCAPE_CUT_MARKER;
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	char unit[FB_ESCAPE_UNIT_MAX];
	size_t total = 0, written = 0, n, ulen;
	fb_rc rc = FB_OK;

	/* Whether it all fits decides whether room for the marker is kept. */
	for (const unsigned char *q = p; q < end && total <= max; q += n)
		total += escape_unit(q, end, unit, &n);
	for (; p < end && rc == FB_OK; p += n, written += ulen) {
		ulen = escape_unit(p, end, unit, &n);
		if (total > max && written + ulen + sizeof(cut) - 1 > max)
			return written + sizeof(cut) - 1 <= max
			    ? fb_buf_append(out, cut, sizeof(cut) - 1)
			    : FB_OK;
		rc = fb_buf_append(out, unit, ulen);
	}
	return rc;
}

fb_rc
fb_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return FB_ERR_INTERNAL;
		}
		p += got;
		n -= (size_t)got;
	}
	return FB_OK;
}

int64_t
fb_backoff_delay(int64_t first, int64_t max, unsigned failing)
{
	int64_t delay = first;
	uint32_t jitter = 0;

	for (unsigned i = 0; i < failing && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	/* Up to a fifth less, so parties that lost a peer together do not retry in step. */
	if (delay > 0 && fb_random_bytes(&jitter, sizeof(jitter)) == FB_OK)
		delay -= (int64_t)(jitter % (uint32_t)(delay / FB_BACKOFF_JITTER_PART + 1));
	return delay;
}

/* Room one escaped byte, the cut mark and the closing quote may need past o. */
#define QUOTE_ROOM 8

const char *
fb_quote(char *buf, size_t size, const char *s, size_t len, size_t max)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o + QUOTE_ROOM < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= max && (c & 0xc0) != 0x80)
			break;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < len)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

#define EXCERPT_CUT "..."

void
fb_excerpt(const char *s, size_t n, char *out, size_t out_size)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char unit[FB_ESCAPE_UNIT_MAX];
	size_t o = 0, room, used, ulen;

	if (out_size == 0)
		return;
	out[0] = '\0';
	if (out_size <= sizeof(EXCERPT_CUT))
		return; /* no room for text and the cut mark */
	if (out_size > FB_EXCERPT_MAX)
		out_size = FB_EXCERPT_MAX;
	/* Leave room for the cut mark and the NUL. */
	room = out_size - sizeof(EXCERPT_CUT);
	for (; p < end; p += used, o += ulen) {
		/* fb_text_escape's characters, and quotes and backslashes too: an excerpt is
		 * shown between quotes. */
		if (*p == '\\' || *p == '"') {
			unit[0] = '\\';
			unit[1] = (char)*p;
			ulen = 2;
			used = 1;
		} else {
			ulen = escape_unit(p, end, unit, &used);
		}
		if (o + ulen > room) {
			memcpy(out + o, EXCERPT_CUT, sizeof(EXCERPT_CUT));
			return;
		}
		memcpy(out + o, unit, ulen);
	}
	out[o] = '\0';
}

void
fb_json_reason(const char *text, char *out, size_t out_size)
{
	const char *near = strstr(text, " near ");

	fb_excerpt(text, near != NULL ? (size_t)(near - text) : strlen(text), out, out_size);
}
