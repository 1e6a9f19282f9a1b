/*
 * The legacy whitelist files, read so that `fedbridge import whitelist` can
 * keep existing users on their fids:
 *
 *   whitelist.yaml         remoteTenant: <tenantID>
 *                          users: {"<e-mail>": <empty or a mapping>, ...}
 *   remote_whitelist.yaml  users: {"<e-mail>": {fid: fid:0/<tenantID>/<id>}, ...}
 *
 * libyaml's event API with positions, so every error names file:line:col;
 * anchors, aliases, tags and second documents are refused, and sizes capped.
 * A user's other values (the format allows extra ones) are skipped.
 */
#include "fb_legacy.h"

#include "fb_conf.h"
#include "fb_mapping.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define WL_FILE_MAX ((size_t)256 << 20)
#define WL_USERS_MAX 10000000
#define WL_KEY_MAX 320 /* an e-mail address is at most 320 bytes */
#define WL_DEPTH_MAX 16 /* nesting of a user's extra values */
#define WL_QUOTE_MAX 96 /* bytes of a key shown in a message */
#define WL_QUOTE_BUF (WL_QUOTE_MAX * 6 + 16)

struct wl_parser {
	yaml_parser_t yp;
	yaml_event_t ev;
	bool have; /* ev holds an event */
	const char *data;
	size_t len;
	const char *name;
	struct fb_err *err;
};

/*
 * s as a quoted string fit for a message: quotes, backslashes and control
 * characters escaped, cut (at a UTF-8 boundary) after WL_QUOTE_MAX bytes.
 */
static const char *
quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= WL_QUOTE_MAX && (c & 0xc0) != 0x80)
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

static fb_rc wl_fail(struct wl_parser *p, const yaml_mark_t *m, const char *fmt, ...)
    FB_PRINTF(3, 4);

static fb_rc
wl_fail(struct wl_parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[FB_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s:%zu:%zu: %s", p->name, (size_t)m->line + 1,
	    (size_t)m->column + 1, msg);
}

/* libyaml's reader errors (bad UTF-8, control characters) carry a byte offset only. */
static fb_rc
wl_reader_fail(struct wl_parser *p)
{
	yaml_mark_t m = { 0 };
	size_t off = p->yp.problem_offset;

	for (size_t i = 0; i < off && i < p->len; i++) {
		if (p->data[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)p->data[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return wl_fail(p, &m, "not a YAML file: %s (byte %zu)",
	    p->yp.problem ? p->yp.problem : "unreadable", off);
}

static fb_rc
wl_syntax_fail(struct wl_parser *p)
{
	const char *problem = p->yp.problem ? p->yp.problem : "unknown problem";

	if (p->yp.error == YAML_READER_ERROR)
		return wl_reader_fail(p);
	if (p->yp.context != NULL)
		return wl_fail(p, &p->yp.problem_mark, "YAML syntax error: %s %s (line %zu)",
		    problem, p->yp.context, (size_t)p->yp.context_mark.line + 1);
	return wl_fail(p, &p->yp.problem_mark, "YAML syntax error: %s", problem);
}

static bool
has_props(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return ev->data.scalar.anchor != NULL || ev->data.scalar.tag != NULL;
	case YAML_MAPPING_START_EVENT:
		return ev->data.mapping_start.anchor != NULL || ev->data.mapping_start.tag != NULL;
	case YAML_SEQUENCE_START_EVENT:
		return ev->data.sequence_start.anchor != NULL ||
		    ev->data.sequence_start.tag != NULL;
	default:
		return false;
	}
}

/* The next event; aliases, anchors and tags are refused (a whitelist is plain data). */
static fb_rc
wl_next(struct wl_parser *p)
{
	if (p->have)
		yaml_event_delete(&p->ev);
	p->have = false;
	if (!yaml_parser_parse(&p->yp, &p->ev))
		return wl_syntax_fail(p);
	p->have = true;
	if (p->ev.type == YAML_ALIAS_EVENT)
		return wl_fail(p, &p->ev.start_mark, "aliases (*name) are not allowed here");
	if (has_props(&p->ev))
		return wl_fail(
		    p, &p->ev.start_mark, "anchors (&name) and tags (!tag) are not allowed here");
	return FB_OK;
}

static bool
is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.plain_implicit &&
	    (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	        strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

static const char *
ev_text(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return is_null_scalar(ev) ? "an empty value" : "a string";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "the end";
	}
}

/* The current event is the scalar s (exactly: a "\0" escape makes no match). */
static bool
is_scalar(const yaml_event_t *ev, const char *s)
{
	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == strlen(s) &&
	    memcmp(ev->data.scalar.value, s, ev->data.scalar.length) == 0;
}

/* Skips the node that starts with the current event (extra values of a user). */
static fb_rc
wl_skip(struct wl_parser *p, unsigned depth)
{
	yaml_event_type_t end;
	fb_rc rc;

	if (p->ev.type == YAML_SCALAR_EVENT)
		return FB_OK;
	if (depth > WL_DEPTH_MAX)
		return wl_fail(p, &p->ev.start_mark, "nested deeper than %d levels", WL_DEPTH_MAX);
	end = p->ev.type == YAML_MAPPING_START_EVENT ? YAML_MAPPING_END_EVENT
	                                             : YAML_SEQUENCE_END_EVENT;
	for (;;) {
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == end)
			return FB_OK;
		if ((rc = wl_skip(p, depth + 1)) != FB_OK)
			return rc;
	}
}

/* NULL when k is a usable key, else why not. */
static const char *
key_problem(const char *k, size_t len)
{
	if (len == 0)
		return "a user must not be empty";
	if (len > WL_KEY_MAX)
		return "a user is at most 320 bytes";
	if (!fb_utf8_valid(k, len))
		return "a user must be UTF-8";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return "a user must not hold control characters";
	return NULL;
}

static fb_rc
wl_add(struct fb_whitelist *w, const char *key, size_t len, const yaml_mark_t *m)
{
	struct fb_whitelist_user *v;

	if (w->n == WL_USERS_MAX)
		return FB_ERR_LIMIT;
	if (w->n % 1024 == 0) {
		if ((v = realloc(w->users, (w->n + 1024) * sizeof(*v))) == NULL)
			return FB_ERR_NOMEM;
		w->users = v;
	}
	v = &w->users[w->n];
	memset(v, 0, sizeof(*v));
	if ((v->key = fb_strndup(key, len)) == NULL)
		return FB_ERR_NOMEM;
	v->line = (unsigned)m->line + 1;
	v->col = (unsigned)m->column + 1;
	w->n++;
	return FB_OK;
}

/* The value of a fid: key, a fid of any tenant (the import checks which). */
static fb_rc
wl_fid(struct wl_parser *p, struct fb_whitelist_user *u, const char *qk)
{
	char qv[WL_QUOTE_BUF];
	struct fb_err ferr = { 0 };
	struct fb_fid fid;
	const char *v;
	size_t len;

	if (p->ev.type != YAML_SCALAR_EVENT || is_null_scalar(&p->ev))
		return wl_fail(p, &p->ev.start_mark,
		    "users: %s: fid: expected fid:0/<tenantID>/<id>, got %s", qk, ev_text(&p->ev));
	v = (const char *)p->ev.data.scalar.value;
	len = p->ev.data.scalar.length;
	if (fb_fid_parse(v, len, &fid, &ferr) != FB_OK)
		return wl_fail(p, &p->ev.start_mark, "users: %s: fid %s: %s", qk,
		    quote(qv, sizeof(qv), v, len), ferr.msg);
	if ((u->fid = fb_strndup(v, len)) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "%s: out of memory", p->name);
	u->fid_line = (unsigned)p->ev.start_mark.line + 1;
	u->fid_col = (unsigned)p->ev.start_mark.column + 1;
	return FB_OK;
}

/* A user's value: empty, or a mapping with an optional fid and other values. */
static fb_rc
wl_user_value(struct wl_parser *p, struct fb_whitelist_user *u, const yaml_mark_t *user_at)
{
	char qk[WL_QUOTE_BUF];
	fb_rc rc;

	(void)quote(qk, sizeof(qk), u->key, strlen(u->key));
	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (is_null_scalar(&p->ev))
		return FB_OK;
	/* At the user, not the value: a list under it often starts on the next line. */
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, user_at,
		    "users: %s: expected an empty value or a mapping, got %s", qk, ev_text(&p->ev));
	for (;;) {
		yaml_mark_t km;
		bool is_fid;
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return FB_OK;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return wl_fail(p, &p->ev.start_mark,
			    "users: %s: expected a name such as fid, got %s", qk, ev_text(&p->ev));
		km = p->ev.start_mark;
		is_fid = is_scalar(&p->ev, "fid");
		if (is_fid && u->fid != NULL)
			return wl_fail(p, &km, "users: %s: fid is given twice (first at %u:%u)", qk,
			    u->fid_line, u->fid_col);
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		rc = is_fid ? wl_fid(p, u, qk) : wl_skip(p, 1);
		if (rc != FB_OK)
			return rc;
	}
}

static fb_rc
wl_users(struct wl_parser *p, struct fb_whitelist *w)
{
	char qk[WL_QUOTE_BUF];
	fb_rc rc;

	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, &p->ev.start_mark,
		    "users: expected a mapping of e-mails (each followed by ':'), got %s",
		    ev_text(&p->ev));
	for (;;) {
		const char *k, *why;
		yaml_mark_t at;
		size_t len;
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return FB_OK;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return wl_fail(p, &p->ev.start_mark, "users: expected an e-mail, got %s",
			    ev_text(&p->ev));
		k = (const char *)p->ev.data.scalar.value;
		len = p->ev.data.scalar.length;
		at = p->ev.start_mark;
		if ((why = key_problem(k, len)) != NULL)
			return wl_fail(p, &p->ev.start_mark, "users: %s: %s",
			    quote(qk, sizeof(qk), k, len), why);
		if ((rc = wl_add(w, k, len, &p->ev.start_mark)) != FB_OK)
			return rc == FB_ERR_LIMIT
			    ? wl_fail(p, &p->ev.start_mark, "more than %d users", WL_USERS_MAX)
			    : FB_ERR_SET(p->err, rc, "%s: out of memory", p->name);
		if ((rc = wl_user_value(p, &w->users[w->n - 1], &at)) != FB_OK)
			return rc;
	}
}

static fb_rc
wl_remote_tenant(struct wl_parser *p, struct fb_whitelist *w, const yaml_mark_t *km)
{
	char qv[WL_QUOTE_BUF];
	const char *v;
	fb_rc rc;

	if (w->remote_tenant != NULL)
		return wl_fail(p, km, "remoteTenant is given twice (first at %u:%u)",
		    w->remote_line, w->remote_col);
	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (p->ev.type != YAML_SCALAR_EVENT || is_null_scalar(&p->ev))
		return wl_fail(p, &p->ev.start_mark,
		    "remoteTenant: expected a tenantID (8 to 16 letters and digits), got %s",
		    ev_text(&p->ev));
	v = (const char *)p->ev.data.scalar.value;
	if (strlen(v) != p->ev.data.scalar.length || !fb_conf_tenant_id_valid(v))
		return wl_fail(p, &p->ev.start_mark,
		    "remoteTenant: expected a tenantID (8 to 16 letters and digits), got %s",
		    quote(qv, sizeof(qv), v, p->ev.data.scalar.length));
	if ((w->remote_tenant = strdup(v)) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "%s: out of memory", p->name);
	w->remote_line = (unsigned)p->ev.start_mark.line + 1;
	w->remote_col = (unsigned)p->ev.start_mark.column + 1;
	return FB_OK;
}

/* The document's top-level mapping: remoteTenant and users, nothing else. */
static fb_rc
wl_top_keys(struct wl_parser *p, struct fb_whitelist *w, bool *seen_users)
{
	char qk[WL_QUOTE_BUF];
	yaml_mark_t users_at = { 0 };
	fb_rc rc;

	for (;;) {
		yaml_mark_t km;
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return FB_OK;
		km = p->ev.start_mark;
		if (is_scalar(&p->ev, "users")) {
			if (*seen_users)
				return wl_fail(p, &km, "users is given twice (first at %zu:%zu)",
				    (size_t)users_at.line + 1, (size_t)users_at.column + 1);
			*seen_users = true;
			users_at = km;
			rc = wl_users(p, w);
		} else if (is_scalar(&p->ev, "remoteTenant")) {
			rc = wl_remote_tenant(p, w, &km);
		} else if (p->ev.type == YAML_SCALAR_EVENT) {
			rc = wl_fail(p, &km,
			    "unknown key %s (a whitelist file has remoteTenant and users)",
			    quote(qk, sizeof(qk), (const char *)p->ev.data.scalar.value,
			        p->ev.data.scalar.length));
		} else {
			rc = wl_fail(
			    p, &km, "expected remoteTenant or users, got %s", ev_text(&p->ev));
		}
		if (rc != FB_OK)
			return rc;
	}
}

static fb_rc
wl_document(struct wl_parser *p, struct fb_whitelist *w)
{
	bool seen_users = false;
	fb_rc rc;

	if ((rc = wl_next(p)) != FB_OK) /* stream start */
		return rc;
	if ((rc = wl_next(p)) != FB_OK) /* document start */
		return rc;
	if (p->ev.type == YAML_STREAM_END_EVENT)
		return FB_ERR_SET(p->err, FB_ERR_INVALID,
		    "%s: the file is empty (expected users, and remoteTenant in a whitelist.yaml)",
		    p->name);
	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, &p->ev.start_mark,
		    "expected a mapping with users (and remoteTenant), got %s", ev_text(&p->ev));
	if ((rc = wl_top_keys(p, w, &seen_users)) != FB_OK)
		return rc;
	if ((rc = wl_next(p)) != FB_OK) /* document end */
		return rc;
	if ((rc = wl_next(p)) != FB_OK) /* stream end */
		return rc;
	if (p->ev.type != YAML_STREAM_END_EVENT)
		return wl_fail(p, &p->ev.start_mark, "a whitelist file holds one document");
	if (!seen_users)
		return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s: no users", p->name);
	return FB_OK;
}

/* strcasecmp in ASCII whatever the locale: how pin keys are compared. */
static int
ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = (unsigned char)*a, y = (unsigned char)*b;
		x += x >= 'A' && x <= 'Z' ? 'a' - 'A' : 0;
		y += y >= 'A' && y <= 'Z' ? 'a' - 'A' : 0;
		if (x != y || x == 0)
			return x - y;
	}
}

static int
user_cmp(const void *a, const void *b)
{
	const struct fb_whitelist_user *x = a, *y = b;
	int d = ascii_casecmp(x->key, y->key);

	if (d != 0)
		return d;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->col > y->col) - (x->col < y->col);
}

/*
 * Which format, from what the file holds: remoteTenant makes a
 * whitelist.yaml, a fid a remote_whitelist.yaml, where every user then has
 * one (a user without would silently lose the pin).
 */
static fb_rc
wl_format(const struct fb_whitelist *w, const char *name, struct fb_err *err)
{
	char qk[WL_QUOTE_BUF];

	if (w->remote_tenant != NULL)
		return FB_OK;
	if (!w->has_fids)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: neither a whitelist.yaml (no remoteTenant) nor a remote_whitelist.yaml "
		    "(no user has a fid)",
		    name);
	for (size_t i = 0; i < w->n; i++)
		if (w->users[i].fid == NULL)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s:%u:%u: users: %s: no fid, but this remote_whitelist.yaml gives "
			    "other users one",
			    name, w->users[i].line, w->users[i].col,
			    quote(qk, sizeof(qk), w->users[i].key, strlen(w->users[i].key)));
	return FB_OK;
}

/*
 * libyaml does not see a key written twice, and pins compare keys without
 * letter case, so "A@x" and "a@x" are one user twice. Sorts w->users.
 */
static fb_rc
wl_duplicates(struct fb_whitelist *w, const char *name, struct fb_err *err)
{
	char qk[WL_QUOTE_BUF];

	if (w->n < 2)
		return FB_OK;
	qsort(w->users, w->n, sizeof(*w->users), user_cmp);
	for (size_t i = 1; i < w->n; i++) {
		const struct fb_whitelist_user *a = &w->users[i - 1], *b = &w->users[i];
		if (ascii_casecmp(a->key, b->key) == 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s:%u:%u: users: %s is given twice (first at %u:%u)", name, b->line,
			    b->col, quote(qk, sizeof(qk), b->key, strlen(b->key)), a->line, a->col);
	}
	return FB_OK;
}

fb_rc
fb_whitelist_parse(
    const char *data, size_t len, const char *name, struct fb_whitelist *out, struct fb_err *err)
{
	struct wl_parser p = { .data = data, .len = len, .name = name, .err = err };
	struct fb_whitelist w = { 0 };
	fb_rc rc;

	if (len > WL_FILE_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: larger than %zu bytes", name, WL_FILE_MAX);
	if (!yaml_parser_initialize(&p.yp))
		return FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)data, len);
	rc = wl_document(&p, &w);
	if (p.have)
		yaml_event_delete(&p.ev);
	yaml_parser_delete(&p.yp);
	for (size_t i = 0; rc == FB_OK && i < w.n; i++)
		if (w.users[i].fid != NULL)
			w.has_fids = true;
	if (rc == FB_OK)
		rc = wl_format(&w, name, err);
	if (rc == FB_OK)
		rc = wl_duplicates(&w, name, err);
	if (rc != FB_OK) {
		fb_whitelist_free(&w);
		return rc;
	}
	*out = w;
	return FB_OK;
}

void
fb_whitelist_free(struct fb_whitelist *w)
{
	for (size_t i = 0; w->users != NULL && i < w->n; i++) {
		free(w->users[i].key);
		free(w->users[i].fid);
	}
	free(w->users);
	free(w->remote_tenant);
	memset(w, 0, sizeof(*w));
}
