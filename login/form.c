/*
 * application/x-www-form-urlencoded bodies (POST /token, back-channel
 * logout), decoded into one buffer. Strict: OAuth forbids repeating a
 * parameter, and a value that decodes to a NUL or to bytes that are not
 * UTF-8 is refused rather than cut short. Query strings are read the same
 * way, one parameter at a time.
 */
#include "fb_login.h"

#include <stdlib.h>
#include <string.h>

fb_rc
fb_form_parse(const char *body, size_t len, struct fb_form *f, struct fb_err *err)
{
	struct fb_form tmp;
	char *p;
	size_t i = 0;

	memset(&tmp, 0, sizeof(tmp));
	/* Decoding never grows a string: len + one NUL per name and value is enough. */
	tmp.storage_len = len + (size_t)2 * FB_FORM_MAX_PARAMS + 2;
	if ((tmp.storage = malloc(tmp.storage_len)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	p = tmp.storage;
	while (i < len) {
		size_t end = i, eq;
		long nl, vl;
		while (end < len && body[end] != '&')
			end++;
		if (end == i) { /* an empty pair ("a=1&&b=2"): skipped, as browsers do */
			i++;
			continue;
		}
		if (tmp.n == FB_FORM_MAX_PARAMS) {
			fb_form_clear(&tmp);
			return FB_ERR_SET(
			    err, FB_ERR_LIMIT, "more than %d parameters", FB_FORM_MAX_PARAMS);
		}
		for (eq = i; eq < end && body[eq] != '='; eq++)
			;
		nl = fb_percent_decode(body + i, eq - i, p);
		if (nl <= 0 || !fb_utf8_valid(p, (size_t)nl)) {
			fb_form_clear(&tmp);
			return FB_ERR_SET(err, FB_ERR_INVALID, "parameter %zu: %s", tmp.n + 1,
			    nl == 0 ? "empty name" : "bad name encoding");
		}
		tmp.name[tmp.n] = p;
		p += nl + 1;
		vl = eq < end ? fb_percent_decode(body + eq + 1, end - eq - 1, p) : (*p = '\0', 0);
		if (vl < 0 || !fb_utf8_valid(p, (size_t)vl)) {
			/* The message first: clearing frees the name it quotes. */
			fb_rc rc = FB_ERR_SET(err, FB_ERR_INVALID,
			    "parameter %.64s: bad value encoding", tmp.name[tmp.n]);
			fb_form_clear(&tmp);
			return rc;
		}
		tmp.value[tmp.n] = p;
		p += vl + 1;
		for (size_t k = 0; k < tmp.n; k++) {
			if (strcmp(tmp.name[k], tmp.name[tmp.n]) == 0) {
				fb_err_set_at(err, FB_ERR_INVALID, __func__, __LINE__,
				    "parameter %.64s given twice", tmp.name[k]);
				fb_form_clear(&tmp);
				return FB_ERR_INVALID;
			}
		}
		tmp.n++;
		i = end + 1;
	}
	*f = tmp;
	return FB_OK;
}

const char *
fb_form_get(const struct fb_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return NULL;
}

void
fb_form_clear(struct fb_form *f)
{
	if (f->storage != NULL)
		fb_cleanse(f->storage, f->storage_len); /* it held client secrets */
	free(f->storage);
	memset(f, 0, sizeof(*f));
}

fb_rc
fb_query_get(const char *query, const char *name, char **out)
{
	size_t i = 0, len = strlen(query), nlen = strlen(name);

	*out = NULL;
	while (i < len) {
		size_t end = i, eq;
		char *buf;
		long n;
		while (end < len && query[end] != '&')
			end++;
		for (eq = i; eq < end && query[eq] != '='; eq++)
			;
		/* Decoding never grows a string: the pair's length is enough for either part. */
		if ((buf = malloc(end - i + 1)) == NULL)
			return FB_ERR_NOMEM;
		n = fb_percent_decode(query + i, eq - i, buf);
		if (n == (long)nlen && memcmp(buf, name, nlen) == 0) {
			n = eq < end ? fb_percent_decode(query + eq + 1, end - eq - 1, buf)
			             : (*buf = '\0', 0);
			if (n < 0 || !fb_utf8_valid(buf, (size_t)n)) {
				free(buf);
				return FB_ERR_INVALID;
			}
			*out = buf;
			return FB_OK;
		}
		free(buf);
		i = end + 1;
	}
	return FB_ERR_NOTFOUND;
}
