/*
 * The legacy whitelist files, read so that `fedbridge import whitelist` can
 * keep existing users on their fids:
 *
 *   whitelist.yaml         remoteTenant: <tenantID>
 *                          users: {"<e-mail>": <empty or a mapping>, ...}
 *   remote_whitelist.yaml  users: {"<e-mail>": {fid: fid:0/<tenantID>/<id>}, ...}
 *
 * Read through conf's hardened YAML reader (fb_yaml_parse) as plain data:
 * anchors, aliases, tags and second documents are refused, sizes capped, and
 * every error names file:line:col. A user's other values (the format allows
 * extra ones) are skipped.
 */
#include "fb_legacy.h"

#include "fb_conf.h"
#include "fb_mapping.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WL_FILE_MAX ((size_t)256 << 20)
#define WL_USERS_MAX 10000000
#define WL_USERS_STEP 1024 /* the users array grows by this many */
#define WL_KEY_MAX 320 /* an e-mail address is at most 320 bytes */
#define WL_DEPTH_MAX 16 /* nesting of a user's extra values */
#define WL_QUOTE_MAX 96 /* bytes of a key shown in a message */
#define WL_QUOTE_BUF (WL_QUOTE_MAX * 6 + 16)

struct wl_parser {
	const char *name;
	struct fb_err *err;
	unsigned fail_line, fail_col; /* of the last wl_fail */
};

static fb_rc wl_fail(struct wl_parser *p, const struct fb_yaml_node *at, const char *fmt, ...)
    FB_PRINTF(3, 4);

static fb_rc
wl_fail(struct wl_parser *p, const struct fb_yaml_node *at, const char *fmt, ...)
{
	char msg[FB_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->fail_line = fb_yaml_line(at);
	p->fail_col = fb_yaml_col(at);
	return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s:%u:%u: %s", p->name, fb_yaml_line(at),
	    fb_yaml_col(at), msg);
}

static const char *
kind_text(const struct fb_yaml_node *n)
{
	switch (fb_yaml_kind(n)) {
	case FB_YAML_NULL:
		return "an empty value";
	case FB_YAML_SCALAR:
		return "a string";
	case FB_YAML_SEQ:
		return "a list";
	default:
		return "a mapping";
	}
}

/* A null is a scalar too here: "~:" names a user "~", as the format always read it. */
static bool
is_text(const struct fb_yaml_node *n)
{
	enum fb_yaml_kind k = fb_yaml_kind(n);

	return k == FB_YAML_SCALAR || k == FB_YAML_NULL;
}

/* n is the scalar s exactly: a "\0" escape makes no match. */
static bool
is_scalar(const struct fb_yaml_node *n, const char *s)
{
	size_t len;
	const char *v = fb_yaml_text(n, &len);

	return v != NULL && len == strlen(s) && memcmp(v, s, len) == 0;
}

/* Walks a user's extra value only to bound its nesting, as before it was skipped. */
static fb_rc
wl_skip(struct wl_parser *p, const struct fb_yaml_node *n, unsigned depth)
{
	bool map = fb_yaml_kind(n) == FB_YAML_MAP;
	fb_rc rc;

	if (is_text(n))
		return FB_OK;
	if (depth > WL_DEPTH_MAX)
		return wl_fail(p, n, "nested deeper than %d levels", WL_DEPTH_MAX);
	for (size_t i = 0; i < fb_yaml_count(n); i++) {
		if (map && (rc = wl_skip(p, fb_yaml_key(n, i), depth + 1)) != FB_OK)
			return rc;
		rc = wl_skip(p, map ? fb_yaml_value(n, i) : fb_yaml_item(n, i), depth + 1);
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
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
wl_add(struct fb_whitelist *w, const char *key, size_t len, const struct fb_yaml_node *at)
{
	struct fb_whitelist_user *v;

	if (w->n == WL_USERS_MAX)
		return FB_ERR_LIMIT;
	if (w->n % WL_USERS_STEP == 0) {
		if ((v = realloc(w->users, (w->n + WL_USERS_STEP) * sizeof(*v))) == NULL)
			return FB_ERR_NOMEM;
		w->users = v;
	}
	v = &w->users[w->n];
	memset(v, 0, sizeof(*v));
	if ((v->key = fb_strndup(key, len)) == NULL)
		return FB_ERR_NOMEM;
	v->line = fb_yaml_line(at);
	v->col = fb_yaml_col(at);
	w->n++;
	return FB_OK;
}

/* The value of a fid: key, a fid of any tenant (the import checks which). */
static fb_rc
wl_fid(
    struct wl_parser *p, struct fb_whitelist_user *u, const struct fb_yaml_node *n, const char *qk)
{
	char qv[WL_QUOTE_BUF];
	struct fb_err ferr = { 0 };
	struct fb_fid fid;
	const char *v;
	size_t len;

	if (fb_yaml_kind(n) != FB_YAML_SCALAR)
		return wl_fail(p, n, "users: %s: fid: expected fid:0/<tenantID>/<id>, got %s", qk,
		    kind_text(n));
	v = fb_yaml_text(n, &len);
	if (fb_fid_parse(v, len, &fid, &ferr) != FB_OK)
		return wl_fail(p, n, "users: %s: fid %s: %s", qk,
		    fb_quote(qv, sizeof(qv), v, len, WL_QUOTE_MAX), ferr.msg);
	if ((u->fid = fb_strndup(v, len)) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "%s: out of memory", p->name);
	u->fid_line = fb_yaml_line(n);
	u->fid_col = fb_yaml_col(n);
	return FB_OK;
}

/* A user's value: empty, or a mapping with an optional fid and other values. */
static fb_rc
wl_user_value(struct wl_parser *p, struct fb_whitelist_user *u, const struct fb_yaml_node *user_at,
    const struct fb_yaml_node *value)
{
	char qk[WL_QUOTE_BUF];
	fb_rc rc;

	(void)fb_quote(qk, sizeof(qk), u->key, strlen(u->key), WL_QUOTE_MAX);
	if (fb_yaml_kind(value) == FB_YAML_NULL)
		return FB_OK;
	/* At the user, not the value: a list under it often starts on the next line. */
	if (fb_yaml_kind(value) != FB_YAML_MAP)
		return wl_fail(p, user_at,
		    "users: %s: expected an empty value or a mapping, got %s", qk,
		    kind_text(value));
	for (size_t i = 0; i < fb_yaml_count(value); i++) {
		const struct fb_yaml_node *k = fb_yaml_key(value, i), *v = fb_yaml_value(value, i);
		bool is_fid;
		if (!is_text(k))
			return wl_fail(p, k, "users: %s: expected a name such as fid, got %s", qk,
			    kind_text(k));
		is_fid = is_scalar(k, "fid");
		if (is_fid && u->fid != NULL)
			return wl_fail(p, k, "users: %s: fid is given twice (first at %u:%u)", qk,
			    u->fid_line, u->fid_col);
		rc = is_fid ? wl_fid(p, u, v, qk) : wl_skip(p, v, 1);
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
}

static fb_rc
wl_users(struct wl_parser *p, struct fb_whitelist *w, const struct fb_yaml_node *users)
{
	char qk[WL_QUOTE_BUF];
	fb_rc rc;

	if (fb_yaml_kind(users) != FB_YAML_MAP)
		return wl_fail(p, users,
		    "users: expected a mapping of e-mails (each followed by ':'), got %s",
		    kind_text(users));
	for (size_t i = 0; i < fb_yaml_count(users); i++) {
		const struct fb_yaml_node *k = fb_yaml_key(users, i);
		const char *key, *why;
		size_t len;
		if (!is_text(k))
			return wl_fail(p, k, "users: expected an e-mail, got %s", kind_text(k));
		key = fb_yaml_text(k, &len);
		if ((why = key_problem(key, len)) != NULL)
			return wl_fail(p, k, "users: %s: %s",
			    fb_quote(qk, sizeof(qk), key, len, WL_QUOTE_MAX), why);
		if ((rc = wl_add(w, key, len, k)) != FB_OK)
			return rc == FB_ERR_LIMIT
			    ? wl_fail(p, k, "more than %d users", WL_USERS_MAX)
			    : FB_ERR_SET(p->err, rc, "%s: out of memory", p->name);
		rc = wl_user_value(p, &w->users[w->n - 1], k, fb_yaml_value(users, i));
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
}

static fb_rc
wl_remote_tenant(struct wl_parser *p, struct fb_whitelist *w, const struct fb_yaml_node *key,
    const struct fb_yaml_node *value)
{
	char qv[WL_QUOTE_BUF];
	const char *v;
	size_t len;

	if (w->remote_tenant != NULL)
		return wl_fail(p, key, "remoteTenant is given twice (first at %u:%u)",
		    w->remote_line, w->remote_col);
	if (fb_yaml_kind(value) != FB_YAML_SCALAR)
		return wl_fail(p, value,
		    "remoteTenant: expected a tenantID (8 to 16 letters and digits), got %s",
		    kind_text(value));
	v = fb_yaml_text(value, &len);
	if (strlen(v) != len || !fb_conf_tenant_id_valid(v))
		return wl_fail(p, value,
		    "remoteTenant: expected a tenantID (8 to 16 letters and digits), got %s",
		    fb_quote(qv, sizeof(qv), v, len, WL_QUOTE_MAX));
	if ((w->remote_tenant = strdup(v)) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "%s: out of memory", p->name);
	w->remote_line = fb_yaml_line(value);
	w->remote_col = fb_yaml_col(value);
	return FB_OK;
}

/* The document's top-level mapping: remoteTenant and users, nothing else. */
static fb_rc
wl_top_keys(struct wl_parser *p, struct fb_whitelist *w, const struct fb_yaml_node *top)
{
	const struct fb_yaml_node *users_at = NULL;
	char qk[WL_QUOTE_BUF];
	fb_rc rc;

	for (size_t i = 0; i < fb_yaml_count(top); i++) {
		const struct fb_yaml_node *k = fb_yaml_key(top, i), *v = fb_yaml_value(top, i);
		const char *text;
		size_t len;
		if (is_scalar(k, "users")) {
			if (users_at != NULL)
				return wl_fail(p, k, "users is given twice (first at %u:%u)",
				    fb_yaml_line(users_at), fb_yaml_col(users_at));
			users_at = k;
			rc = wl_users(p, w, v);
		} else if (is_scalar(k, "remoteTenant")) {
			rc = wl_remote_tenant(p, w, k, v);
		} else if (is_text(k)) {
			text = fb_yaml_text(k, &len);
			rc = wl_fail(p, k,
			    "unknown key %s (a whitelist file has remoteTenant and users)",
			    fb_quote(qk, sizeof(qk), text, len, WL_QUOTE_MAX));
		} else {
			rc = wl_fail(p, k, "expected remoteTenant or users, got %s", kind_text(k));
		}
		if (rc != FB_OK)
			return rc;
	}
	if (users_at == NULL)
		return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s: no users", p->name);
	return FB_OK;
}

/* The whitelist's own reading of a document, or of what came before a refusal. */
static fb_rc
wl_root(struct wl_parser *p, const struct fb_yaml_node *root, struct fb_whitelist *w)
{
	if (root == NULL)
		return FB_ERR_SET(p->err, FB_ERR_INVALID,
		    "%s: the file is empty (expected users, and remoteTenant in a whitelist.yaml)",
		    p->name);
	if (fb_yaml_kind(root) != FB_YAML_MAP)
		return wl_fail(p, root, "expected a mapping with users (and remoteTenant), got %s",
		    kind_text(root));
	return wl_top_keys(p, w, root);
}

/*
 * Problems are reported in file order, as when this reader followed the
 * parser's events: a refused text's earlier part is read first, so that
 * `"a@x"` without its ':' is named as such rather than as the syntax error
 * it causes further down.
 */
static fb_rc
wl_document(struct wl_parser *p, const char *data, size_t len, struct fb_whitelist *w)
{
	struct fb_err refused = { 0 };
	struct fb_yaml_refusal why;
	struct fb_yaml_doc *doc;
	fb_rc rc, parsed;

	parsed = fb_yaml_parse(
	    data, len, p->name, FB_YAML_PLAIN | FB_YAML_PARTIAL, &doc, &why, &refused);
	if (parsed != FB_OK && doc == NULL) {
		rc = parsed;
	} else {
		p->fail_line = 0;
		rc = wl_root(p, fb_yaml_root(doc), w);
		fb_yaml_free(doc);
		if (parsed == FB_OK)
			return rc;
		if (rc != FB_OK && p->fail_line > 0 &&
		    (p->fail_line < why.line ||
		        (p->fail_line == why.line && p->fail_col < why.col)))
			return rc;
		rc = parsed;
	}
	if (why.rule == FB_YAML_RULE_DOCUMENTS)
		return FB_ERR_SET(p->err, FB_ERR_INVALID,
		    "%s:%u:%u: a whitelist file holds one document", p->name, why.line, why.col);
	if (p->err != NULL)
		*p->err = refused;
	return rc;
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
			    fb_quote(qk, sizeof(qk), w->users[i].key, strlen(w->users[i].key),
			        WL_QUOTE_MAX));
	return FB_OK;
}

/*
 * The YAML reader keeps a key written twice, and pins compare keys without
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
			    b->col, fb_quote(qk, sizeof(qk), b->key, strlen(b->key), WL_QUOTE_MAX),
			    a->line, a->col);
	}
	return FB_OK;
}

fb_rc
fb_whitelist_parse(
    const char *data, size_t len, const char *name, struct fb_whitelist *out, struct fb_err *err)
{
	struct wl_parser p = { .name = name, .err = err };
	struct fb_whitelist w = { 0 };
	fb_rc rc;

	if (len > WL_FILE_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: larger than %zu bytes", name, WL_FILE_MAX);
	rc = wl_document(&p, data, len, &w);
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
