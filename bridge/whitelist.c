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
 */
#include "cli_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define WL_FILE_MAX ((size_t)256 << 20)
#define WL_USERS_MAX 10000000
#define WL_KEY_MAX 320
#define WL_DEPTH_MAX 16

struct wl_parser {
	yaml_parser_t yp;
	yaml_event_t ev;
	bool have; /* ev holds an event */
	const char *name;
	struct fb_err *err;
};

static fb_rc wl_fail(struct wl_parser *p, const yaml_mark_t *m, const char *fmt, ...)
    FB_PRINTF(3, 4);

static fb_rc
wl_fail(struct wl_parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s:%zu:%zu: %s", p->name, (size_t)m->line + 1,
	    (size_t)m->column + 1, msg);
}

static fb_rc
wl_next(struct wl_parser *p)
{
	if (p->have)
		yaml_event_delete(&p->ev);
	p->have = false;
	if (!yaml_parser_parse(&p->yp, &p->ev))
		return wl_fail(p, &p->yp.problem_mark, "YAML syntax error: %s",
		    p->yp.problem ? p->yp.problem : "unknown");
	p->have = true;
	switch (p->ev.type) {
	case YAML_ALIAS_EVENT:
		return wl_fail(p, &p->ev.start_mark, "aliases are not allowed here");
	case YAML_SCALAR_EVENT:
		if (p->ev.data.scalar.anchor != NULL || p->ev.data.scalar.tag != NULL)
			return wl_fail(
			    p, &p->ev.start_mark, "anchors and tags are not allowed here");
		break;
	case YAML_MAPPING_START_EVENT:
		if (p->ev.data.mapping_start.anchor != NULL || p->ev.data.mapping_start.tag != NULL)
			return wl_fail(
			    p, &p->ev.start_mark, "anchors and tags are not allowed here");
		break;
	case YAML_SEQUENCE_START_EVENT:
		if (p->ev.data.sequence_start.anchor != NULL ||
		    p->ev.data.sequence_start.tag != NULL)
			return wl_fail(
			    p, &p->ev.start_mark, "anchors and tags are not allowed here");
		break;
	default:
		break;
	}
	return FB_OK;
}

static const char *
ev_text(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a string";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "the end";
	}
}

static bool
is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.plain_implicit &&
	    (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
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

static bool
key_ok(const char *k, size_t len)
{
	if (len == 0 || len > WL_KEY_MAX || !fb_utf8_valid(k, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return false;
	return true;
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
	if ((v->key = strndup(key, len)) == NULL)
		return FB_ERR_NOMEM;
	v->line = (unsigned)m->line + 1;
	v->col = (unsigned)m->column + 1;
	w->n++;
	return FB_OK;
}

/* A user's value: empty, or a mapping with an optional fid and other values. */
static fb_rc
wl_user_value(struct wl_parser *p, struct fb_whitelist_user *u)
{
	struct fb_fid fid;
	fb_rc rc;

	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (is_null_scalar(&p->ev))
		return FB_OK;
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, &p->ev.start_mark,
		    "users: \"%s\": expected an empty value or a mapping, got %s", u->key,
		    ev_text(&p->ev));
	for (;;) {
		yaml_mark_t km;
		bool is_fid;
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return FB_OK;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return wl_fail(
			    p, &p->ev.start_mark, "users: \"%s\": keys must be strings", u->key);
		km = p->ev.start_mark;
		is_fid = strcmp((const char *)p->ev.data.scalar.value, "fid") == 0;
		if (is_fid && u->fid != NULL)
			return wl_fail(p, &km, "users: \"%s\": fid is given twice", u->key);
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (!is_fid) {
			if ((rc = wl_skip(p, 1)) != FB_OK)
				return rc;
			continue;
		}
		if (p->ev.type != YAML_SCALAR_EVENT ||
		    fb_fid_parse((const char *)p->ev.data.scalar.value, p->ev.data.scalar.length,
		        &fid, NULL) != FB_OK)
			return wl_fail(p, &p->ev.start_mark,
			    "users: \"%s\": fid must be fid:0/<tenantID>/<id>", u->key);
		if ((u->fid = strdup((const char *)p->ev.data.scalar.value)) == NULL)
			return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
	}
}

static fb_rc
wl_users(struct wl_parser *p, struct fb_whitelist *w)
{
	fb_rc rc;

	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, &p->ev.start_mark,
		    "users: expected a mapping of e-mails (each followed by ':'), got %s",
		    ev_text(&p->ev));
	for (;;) {
		const char *k;
		size_t len;
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return FB_OK;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return wl_fail(p, &p->ev.start_mark, "users: a user must be a string");
		k = (const char *)p->ev.data.scalar.value;
		len = p->ev.data.scalar.length;
		if (!key_ok(k, len))
			return wl_fail(p, &p->ev.start_mark,
			    "users: a user must be 1 to %d bytes of UTF-8 without control "
			    "characters",
			    WL_KEY_MAX);
		if ((rc = wl_add(w, k, len, &p->ev.start_mark)) != FB_OK)
			return FB_ERR_SET(
			    p->err, rc, "%s: too many users or out of memory", p->name);
		if ((rc = wl_user_value(p, &w->users[w->n - 1])) != FB_OK)
			return rc;
	}
}

static fb_rc
wl_top(struct wl_parser *p, struct fb_whitelist *w)
{
	bool seen_users = false;
	fb_rc rc;

	if ((rc = wl_next(p)) != FB_OK) /* stream start */
		return rc;
	if ((rc = wl_next(p)) != FB_OK) /* document start */
		return rc;
	if (p->ev.type == YAML_STREAM_END_EVENT)
		return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s: the file is empty", p->name);
	if ((rc = wl_next(p)) != FB_OK)
		return rc;
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return wl_fail(p, &p->ev.start_mark,
		    "expected a mapping with users (and remoteTenant), got %s", ev_text(&p->ev));
	for (;;) {
		yaml_mark_t km;
		char key[32];
		if ((rc = wl_next(p)) != FB_OK)
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			break;
		km = p->ev.start_mark;
		(void)snprintf(key, sizeof(key), "%s",
		    p->ev.type == YAML_SCALAR_EVENT ? (const char *)p->ev.data.scalar.value : "");
		if (strcmp(key, "users") == 0) {
			if (seen_users)
				return wl_fail(p, &km, "users is given twice");
			seen_users = true;
			if ((rc = wl_users(p, w)) != FB_OK)
				return rc;
		} else if (strcmp(key, "remoteTenant") == 0) {
			if (w->remote_tenant != NULL)
				return wl_fail(p, &km, "remoteTenant is given twice");
			if ((rc = wl_next(p)) != FB_OK)
				return rc;
			if (p->ev.type != YAML_SCALAR_EVENT ||
			    !fb_conf_tenant_id_valid((const char *)p->ev.data.scalar.value))
				return wl_fail(p, &p->ev.start_mark,
				    "remoteTenant: expected a tenantID (8 to 16 letters and "
				    "digits)");
			if ((w->remote_tenant = strdup((const char *)p->ev.data.scalar.value)) ==
			    NULL)
				return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
			w->remote_line = (unsigned)km.line + 1;
		} else {
			return wl_fail(p, &km,
			    "unknown key \"%s\": a whitelist file has remoteTenant and users", key);
		}
	}
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

static int
user_cmp(const void *a, const void *b)
{
	const struct fb_whitelist_user *x = a, *y = b;
	int d = strcasecmp(x->key, y->key);

	return d != 0 ? d : (x->line > y->line) - (x->line < y->line);
}

fb_rc
fb_whitelist_parse(
    const char *data, size_t len, const char *name, struct fb_whitelist *out, struct fb_err *err)
{
	struct wl_parser p = { .name = name, .err = err };
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (len > WL_FILE_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: larger than %zu bytes", name, WL_FILE_MAX);
	if (!yaml_parser_initialize(&p.yp))
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)data, len);
	rc = wl_top(&p, out);
	if (p.have)
		yaml_event_delete(&p.ev);
	yaml_parser_delete(&p.yp);
	for (size_t i = 0; rc == FB_OK && i < out->n; i++)
		if (out->users[i].fid != NULL)
			out->has_fids = true;
	if (rc == FB_OK && out->remote_tenant == NULL && !out->has_fids)
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: neither a whitelist.yaml (no remoteTenant) nor a remote_whitelist.yaml "
		    "(no user has a fid)",
		    name);
	if (rc == FB_OK && out->n > 1) {
		/* libyaml does not see a key written twice; keys compare without case. */
		qsort(out->users, out->n, sizeof(*out->users), user_cmp);
		for (size_t i = 1; i < out->n && rc == FB_OK; i++)
			if (strcasecmp(out->users[i - 1].key, out->users[i].key) == 0)
				rc = FB_ERR_SET(err, FB_ERR_INVALID,
				    "%s:%u:%u: users: \"%s\" is given twice (first at %u:%u)", name,
				    out->users[i].line, out->users[i].col, out->users[i].key,
				    out->users[i - 1].line, out->users[i - 1].col);
	}
	if (rc != FB_OK)
		fb_whitelist_free(out);
	return rc;
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
