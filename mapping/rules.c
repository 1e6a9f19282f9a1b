/*
 * The admin's rules, compiled once per configuration: per provider the fid
 * candidates, attributes, require and deny conditions and the pin table;
 * per trust the outbound and inbound policies and the release list.
 * Running them is pure: what the IdP said in, a principal and a trace out.
 */
#include "fb_mapping.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULE_PATH_MAX 192

/* One compiled expression and where it came from. */
struct rule_expr {
	struct fb_expr *expr;
	char path[RULE_PATH_MAX]; /* "tenants[0].mapping[1].require[0]" */
};

struct rule_mapping {
	const struct fb_conf_mapping *conf;
	enum fb_conf_provider_type type;
	struct rule_expr *fids;
	size_t n_fids;
	struct rule_expr *attrs; /* conf->attrs order */
	const char **attr_names;
	struct rule_expr *requires;
	size_t n_requires;
	struct rule_expr *denies;
	size_t n_denies;
	struct fb_pins *pins;
	struct rule_expr pin_key; /* compiled from the config or the default */
	char pins_path[RULE_PATH_MAX];
};

struct rule_trust {
	const struct fb_conf_trust *conf;
	struct rule_expr outbound; /* expr NULL: nobody gets tokens for that remote */
	struct rule_expr inbound; /* expr NULL: nobody from that remote gets in */
};

struct rule_tenant {
	const struct fb_conf_tenant *conf;
	struct rule_mapping *mappings;
	size_t n_mappings;
	struct rule_trust *trusts;
	size_t n_trusts;
};

/* (receiving tenant, sender tenant) -> inbound rule, sorted for binary search. */
struct inbound_entry {
	const char *receiving;
	const char *sender;
	const struct rule_trust *trust;
};

struct fb_rules {
	const struct fb_conf *conf;
	unsigned char *fid_secret;
	size_t fid_secret_len;
	struct rule_tenant *tenants;
	size_t n_tenants;
	struct inbound_entry *inbound;
	size_t n_inbound;
	size_t n_exprs;
};

/* Names the principal record gives outbound policies besides the attributes. */
static const char *const principal_fixed[] = { "fid", "tenant", "provider", "legacy_remotes" };
#define PRINCIPAL_FIXED 4

/* ---- compiling ---- */

struct compile_ctx {
	struct fb_rules *r;
	struct fb_conf_diags *diags;
	bool failed;
};

static void path_printf(char *dst, size_t size, const char *fmt, ...) FB_PRINTF(3, 4);

/* Rule paths are short; a longer one is cut, never overflowing. */
static void
path_printf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

static size_t
utf8_chars(const char *s, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			count++;
	return count;
}

/*
 * Where byte `offset` of an expression stands in the file. Plain and quoted
 * one-line scalars map exactly (quotes and escapes counted); for block and
 * multi-line scalars the scalar's own position is the best we know.
 */
static struct fb_conf_pos
expr_file_pos(const struct fb_conf_expr *e, size_t offset)
{
	struct fb_conf_pos pos = e->pos;
	size_t extra = 0;

	if (strchr(e->src, '\n') != NULL || e->style == '|' || e->style == '>')
		return pos;
	if (e->style == '\'' || e->style == '"') {
		extra = 1;
		for (size_t i = 0; i < offset; i++) {
			char ch = e->src[i];
			if ((e->style == '\'' && ch == '\'') ||
			    (e->style == '"' && (ch == '"' || ch == '\\')))
				extra++;
		}
	}
	pos.col += (unsigned)(utf8_chars(e->src, offset) + extra);
	return pos;
}

/* Appends the source line holding offset and a caret under it. */
static void
excerpt(struct fb_buf *b, const char *src, size_t offset)
{
	size_t start = offset, end = offset, len = strlen(src);

	if (offset > len)
		offset = start = end = len;
	while (start > 0 && src[start - 1] != '\n')
		start--;
	while (end < len && src[end] != '\n')
		end++;
	(void)fb_buf_printf(b, "\n    %.*s\n    %*s^", (int)(end - start), src + start,
	    (int)utf8_chars(src + start, offset - start), "");
}

static void
compile_diag(struct compile_ctx *c, const struct fb_conf_expr *e, const char *path, size_t offset,
    const char *msg)
{
	struct fb_buf b;

	fb_buf_init(&b, 8192);
	(void)fb_buf_printf(
	    &b, "%s: %s (column %zu of the expression)", path, msg, utf8_chars(e->src, offset) + 1);
	excerpt(&b, e->src, offset);
	fb_conf_diag_add(
	    c->diags, c->r->conf, expr_file_pos(e, offset), "%s", b.data ? b.data : "");
	fb_buf_free(&b);
	c->failed = true;
}

static bool
compile_one(struct compile_ctx *c, const struct fb_conf_expr *e, unsigned inputs,
    enum fb_expr_want want, const char *path, struct rule_expr *out)
{
	struct fb_expr_error where = { 0 };
	fb_rc rc;

	path_printf(out->path, sizeof(out->path), "%s", path);
	rc = fb_expr_compile(e->src, inputs, want, &out->expr, &where);
	if (rc != FB_OK) {
		compile_diag(c, e, path, where.offset,
		    where.msg[0] ? where.msg : (rc == FB_ERR_NOMEM ? "out of memory" : "invalid"));
		out->expr = NULL;
		return false;
	}
	c->r->n_exprs++;
	return true;
}

static bool
compile_list(struct compile_ctx *c, const struct fb_conf_exprlist *l, unsigned inputs,
    enum fb_expr_want want, const char *base, struct rule_expr **out, size_t *n)
{
	char path[RULE_PATH_MAX];
	bool ok = true;

	*n = 0;
	*out = calloc(l->n ? l->n : 1, sizeof(**out));
	if (*out == NULL)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		path_printf(path, sizeof(path), "%s[%zu]", base, i);
		if (!compile_one(c, &l->v[i], inputs, want, path, &(*out)[i]))
			ok = false;
	}
	*n = l->n;
	return ok;
}

static const struct fb_conf_provider *
provider_find(const struct fb_conf_tenant *t, const char *name)
{
	for (size_t i = 0; i < t->n_providers; i++)
		if (strcmp(t->providers[i].name, name) == 0)
			return &t->providers[i];
	return NULL;
}

static void
load_pins(struct compile_ctx *c, const struct fb_rules_params *params,
    const struct fb_conf_tenant *t, struct rule_mapping *m, const char *base)
{
	struct fb_err err = { 0 };
	char *data = NULL;
	size_t len = 0;

	path_printf(m->pins_path, sizeof(m->pins_path), "%s.pins", base);
	if (m->conf->pins == NULL || params == NULL || params->read_file == NULL)
		return;
	if (params->read_file(params->read_arg, m->conf->pins, &data, &len, &err) != FB_OK ||
	    fb_pins_parse(data, len, m->conf->pins, &m->pins, &err) != FB_OK) {
		fb_conf_diag_add(c->diags, c->r->conf, fb_conf_pos_of(c->r->conf, &m->conf->pins),
		    "%s: %s", m->pins_path, err.msg);
		c->failed = true;
	} else if (strcmp(fb_pins_tenant(m->pins), t->id) != 0) {
		fb_conf_diag_add(c->diags, c->r->conf, fb_conf_pos_of(c->r->conf, &m->conf->pins),
		    "%s: the pin table is for tenant %s, not %s", m->pins_path,
		    fb_pins_tenant(m->pins), t->id);
		c->failed = true;
	}
	free(data);
}

static void
compile_pin_key(struct compile_ctx *c, struct rule_mapping *m, const char *base)
{
	char path[RULE_PATH_MAX];
	struct fb_conf_expr def = { 0 };
	const struct fb_conf_expr *e = &m->conf->pin_key;

	if (m->conf->pins == NULL)
		return;
	path_printf(path, sizeof(path), "%s.pin_key", base);
	if (e->src == NULL) {
		/* The whitelist files were keyed by e-mail; so is the default. */
		def.src = m->type == FB_PROVIDER_OIDC ? "lower(claims.email)" : "lower(nameid)";
		def.pos = fb_conf_pos_of(c->r->conf, &m->conf->pins);
		e = &def;
	}
	(void)compile_one(c, e, FB_EXPR_IN_LOGIN, FB_EXPR_WANT_STRING, path, &m->pin_key);
}

static bool
attr_reserved(const char *name)
{
	for (size_t i = 0; i < PRINCIPAL_FIXED; i++)
		if (strcmp(name, principal_fixed[i]) == 0)
			return true;
	return false;
}

static void
compile_mapping(struct compile_ctx *c, const struct fb_rules_params *params,
    const struct fb_conf_tenant *t, size_t ti, size_t mi, struct rule_mapping *m)
{
	char base[RULE_PATH_MAX], path[RULE_PATH_MAX];
	const struct fb_conf_provider *p;
	const char *name = NULL;
	size_t offset = 0;

	m->conf = &t->mappings[mi];
	p = provider_find(t, m->conf->provider);
	m->type = p != NULL ? p->type : FB_PROVIDER_OIDC;
	path_printf(base, sizeof(base), "tenants[%zu].mapping[%zu]", ti, mi);
	path_printf(path, sizeof(path), "%s.fid", base);
	(void)compile_list(
	    c, &m->conf->fid, FB_EXPR_IN_LOGIN, FB_EXPR_WANT_STRING, path, &m->fids, &m->n_fids);
	for (size_t i = 0; i < m->n_fids; i++) {
		if (m->fids[i].expr == NULL ||
		    !fb_expr_reads_mutable(m->fids[i].expr, &offset, &name))
			continue;
		char msg[200];
		(void)snprintf(msg, sizeof(msg),
		    "'%s' can change (e-mail, UPN and names do), so it must not become a "
		    "fid: use a stable identifier such as claims.sub, or write mutable(...) "
		    "to accept it explicitly",
		    name);
		compile_diag(c, &m->conf->fid.v[i], m->fids[i].path, offset, msg);
	}
	m->attrs = calloc(m->conf->n_attrs ? m->conf->n_attrs : 1, sizeof(*m->attrs));
	m->attr_names = calloc(m->conf->n_attrs ? m->conf->n_attrs : 1, sizeof(*m->attr_names));
	if (m->attrs == NULL || m->attr_names == NULL) {
		c->failed = true;
		return;
	}
	for (size_t i = 0; i < m->conf->n_attrs; i++) {
		const struct fb_conf_attr *a = &m->conf->attrs[i];
		m->attr_names[i] = a->name;
		path_printf(path, sizeof(path), "%s.attributes.%s", base, a->name);
		if (attr_reserved(a->name)) {
			fb_conf_diag_add(c->diags, c->r->conf, fb_conf_pos_of(c->r->conf, a),
			    "%s: '%s' is a name the principal already has (fid, tenant, "
			    "provider, legacy_remotes); choose another",
			    path, a->name);
			c->failed = true;
			continue;
		}
		(void)compile_one(
		    c, &a->expr, FB_EXPR_IN_LOGIN, FB_EXPR_WANT_VALUE, path, &m->attrs[i]);
	}
	path_printf(path, sizeof(path), "%s.require", base);
	(void)compile_list(c, &m->conf->require, FB_EXPR_IN_LOGIN, FB_EXPR_WANT_BOOL, path,
	    &m->requires, &m->n_requires);
	path_printf(path, sizeof(path), "%s.deny", base);
	(void)compile_list(
	    c, &m->conf->deny, FB_EXPR_IN_LOGIN, FB_EXPR_WANT_BOOL, path, &m->denies, &m->n_denies);
	compile_pin_key(c, m, base);
	load_pins(c, params, t, m, base);
}

static int
inbound_cmp(const void *x, const void *y)
{
	const struct inbound_entry *a = x, *b = y;
	int d = strcmp(a->receiving, b->receiving);

	return d != 0 ? d : strcmp(a->sender, b->sender);
}

static fb_rc
build_inbound(struct fb_rules *r)
{
	size_t n = 0, k = 0;

	for (size_t t = 0; t < r->n_tenants; t++)
		for (size_t x = 0; x < r->tenants[t].n_trusts; x++)
			n += r->tenants[t].trusts[x].conf->tenants.n;
	r->inbound = calloc(n ? n : 1, sizeof(*r->inbound));
	if (r->inbound == NULL)
		return FB_ERR_NOMEM;
	for (size_t t = 0; t < r->n_tenants; t++) {
		const struct rule_tenant *rt = &r->tenants[t];
		for (size_t x = 0; x < rt->n_trusts; x++) {
			for (size_t i = 0; i < rt->trusts[x].conf->tenants.n; i++) {
				r->inbound[k].receiving = rt->conf->id;
				r->inbound[k].sender = rt->trusts[x].conf->tenants.v[i];
				r->inbound[k].trust = &rt->trusts[x];
				k++;
			}
		}
	}
	qsort(r->inbound, k, sizeof(*r->inbound), inbound_cmp);
	r->n_inbound = k;
	return FB_OK;
}

static void
compile_tenant(struct compile_ctx *c, const struct fb_rules_params *params, size_t ti)
{
	const struct fb_conf_tenant *t = &c->r->conf->tenants[ti];
	struct rule_tenant *rt = &c->r->tenants[ti];
	char path[RULE_PATH_MAX];

	rt->conf = t;
	rt->mappings = calloc(t->n_mappings ? t->n_mappings : 1, sizeof(*rt->mappings));
	rt->trusts = calloc(t->n_trusts ? t->n_trusts : 1, sizeof(*rt->trusts));
	if (rt->mappings == NULL || rt->trusts == NULL) {
		c->failed = true;
		return;
	}
	rt->n_mappings = t->n_mappings;
	for (size_t m = 0; m < t->n_mappings; m++)
		compile_mapping(c, params, t, ti, m, &rt->mappings[m]);
	rt->n_trusts = t->n_trusts;
	for (size_t x = 0; x < t->n_trusts; x++) {
		const struct fb_conf_trust *tr = &t->trusts[x];
		struct rule_trust *rx = &rt->trusts[x];
		rx->conf = tr;
		if (tr->outbound.src != NULL) {
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].outbound", ti, x);
			(void)compile_one(c, &tr->outbound, FB_EXPR_IN_OUTBOUND, FB_EXPR_WANT_BOOL,
			    path, &rx->outbound);
		}
		if (tr->inbound.src != NULL) {
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].inbound", ti, x);
			(void)compile_one(c, &tr->inbound, FB_EXPR_IN_INBOUND, FB_EXPR_WANT_BOOL,
			    path, &rx->inbound);
		}
	}
}

fb_rc
fb_rules_compile(const struct fb_conf *conf, const struct fb_rules_params *params,
    struct fb_rules **out, struct fb_conf_diags *diags)
{
	struct compile_ctx c = { 0 };
	struct fb_rules *r;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return FB_ERR_NOMEM;
	r->conf = conf;
	c.r = r;
	c.diags = diags;
	if (params != NULL && params->fid_secret != NULL) {
		if ((r->fid_secret = malloc(params->fid_secret_len)) == NULL)
			goto nomem;
		memcpy(r->fid_secret, params->fid_secret, params->fid_secret_len);
		r->fid_secret_len = params->fid_secret_len;
	}
	r->tenants = calloc(conf->n_tenants ? conf->n_tenants : 1, sizeof(*r->tenants));
	if (r->tenants == NULL)
		goto nomem;
	r->n_tenants = conf->n_tenants;
	for (size_t t = 0; t < conf->n_tenants; t++)
		compile_tenant(&c, params, t);
	if (build_inbound(r) != FB_OK)
		goto nomem;
	if (c.failed) {
		fb_rules_free(r);
		return FB_ERR_CONFIG;
	}
	*out = r;
	return FB_OK;
nomem:
	fb_rules_free(r);
	fb_conf_diag_add(diags, conf, (struct fb_conf_pos){ 0 }, "out of memory");
	return FB_ERR_NOMEM;
}

static void
free_list(struct rule_expr *l, size_t n)
{
	for (size_t i = 0; l != NULL && i < n; i++)
		fb_expr_free(l[i].expr);
	free(l);
}

void
fb_rules_free(struct fb_rules *r)
{
	if (r == NULL)
		return;
	for (size_t t = 0; r->tenants != NULL && t < r->n_tenants; t++) {
		struct rule_tenant *rt = &r->tenants[t];
		for (size_t m = 0; rt->mappings != NULL && m < rt->n_mappings; m++) {
			struct rule_mapping *rm = &rt->mappings[m];
			free_list(rm->fids, rm->n_fids);
			free_list(rm->attrs, rm->conf != NULL ? rm->conf->n_attrs : 0);
			free((void *)rm->attr_names);
			free_list(rm->requires, rm->n_requires);
			free_list(rm->denies, rm->n_denies);
			fb_expr_free(rm->pin_key.expr);
			fb_pins_free(rm->pins);
		}
		for (size_t x = 0; rt->trusts != NULL && x < rt->n_trusts; x++) {
			fb_expr_free(rt->trusts[x].outbound.expr);
			fb_expr_free(rt->trusts[x].inbound.expr);
		}
		free(rt->mappings);
		free(rt->trusts);
	}
	free(r->tenants);
	free(r->inbound);
	if (r->fid_secret != NULL)
		fb_cleanse(r->fid_secret, r->fid_secret_len);
	free(r->fid_secret);
	free(r);
}

size_t
fb_rules_expr_count(const struct fb_rules *r)
{
	return r->n_exprs;
}

/* ---- running ---- */

static void
trace_rule(struct fb_buf *trace, const struct rule_expr *re, const char *result)
{
	if (trace != NULL)
		(void)fb_buf_printf(
		    trace, "%s: %s  =>  %s\n", re->path, fb_expr_source(re->expr), result);
}

static const char *
truth_text(enum fb_truth t)
{
	return t == FB_TRUTH_TRUE ? "true" : t == FB_TRUTH_FALSE ? "false" : "undecided";
}

static void refuse(struct fb_principal *out, const char *rule, const char *fmt, ...)
    FB_PRINTF(3, 4);

static void
refuse(struct fb_principal *out, const char *rule, const char *fmt, ...)
{
	va_list ap;

	out->allowed = false;
	out->rule = rule;
	va_start(ap, fmt);
	(void)vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* Evaluates a condition, tracing its values under the rule line. */
static enum fb_truth
run_truth(const struct rule_expr *re, const struct fb_expr_input *in, struct fb_expr_scratch *s,
    struct fb_buf *trace, struct fb_err *why)
{
	struct fb_buf values;
	enum fb_truth t;

	if (trace == NULL)
		return fb_expr_eval_truth(re->expr, in, s, NULL, why);
	fb_buf_init(&values, (size_t)64 * 1024);
	t = fb_expr_eval_truth(re->expr, in, s, &values, why);
	trace_rule(trace, re, truth_text(t));
	if (values.len > 0)
		(void)fb_buf_printf(trace, "%s", values.data);
	fb_buf_free(&values);
	return t;
}

static fb_rc
run_value(const struct rule_expr *re, const struct fb_expr_input *in, struct fb_expr_scratch *s,
    struct fb_value *v, struct fb_buf *trace, struct fb_err *err)
{
	struct fb_buf values, shown;
	fb_rc rc;

	if (trace == NULL)
		return fb_expr_eval(re->expr, in, s, v, NULL, err);
	fb_buf_init(&values, (size_t)64 * 1024);
	fb_buf_init(&shown, 8192);
	rc = fb_expr_eval(re->expr, in, s, v, &values, err);
	if (rc != FB_OK)
		(void)fb_buf_printf(&shown, "error: %s", err->msg);
	else if (v->kind == FB_V_ABSENT)
		(void)fb_buf_printf(&shown, "absent");
	else
		(void)fb_value_append_json(&shown, v);
	trace_rule(trace, re, shown.data ? shown.data : "");
	if (values.len > 0)
		(void)fb_buf_printf(trace, "%s", values.data);
	fb_buf_free(&values);
	fb_buf_free(&shown);
	return rc;
}

/* The first fid candidate that gives a non-empty string wins. */
static bool
run_fid(const struct rule_mapping *m, const char *tenant, const struct fb_expr_input *in,
    struct fb_expr_scratch *s, struct fb_principal *out, struct fb_buf *trace)
{
	struct fb_err err = { 0 };
	struct fb_value v;
	char local[FB_FID_LOCAL_MAX + 1];
	struct fb_fid fid;

	for (size_t i = 0; i < m->n_fids; i++) {
		const struct rule_expr *re = &m->fids[i];
		if (run_value(re, in, s, &v, trace, &err) != FB_OK) {
			refuse(out, re->path, "the fid could not be computed: %s", err.msg);
			return false;
		}
		if (v.kind == FB_V_ABSENT || v.kind == FB_V_NULL ||
		    (v.kind == FB_V_STRING && v.u.s.len == 0))
			continue;
		if (v.kind != FB_V_STRING) {
			refuse(out, re->path, "the fid must be a string, got %s",
			    v.kind == FB_V_LIST ? "a list (use first(...))" : "another type");
			return false;
		}
		/* A whole fid (an attribute that stores one) must be of this tenant. */
		if (v.u.s.len > 4 && memcmp(v.u.s.p, "fid:", 4) == 0) {
			if (fb_fid_parse(v.u.s.p, v.u.s.len, &fid, &err) != FB_OK ||
			    strcmp(fid.tenant, tenant) != 0) {
				refuse(
				    out, re->path, "the value is not a fid of tenant %s", tenant);
				return false;
			}
			(void)snprintf(local, sizeof(local), "%s", fid.local);
		} else if (!fb_fid_local_valid(v.u.s.p, v.u.s.len)) {
			refuse(out, re->path,
			    "the value is not a valid fid local part (1 to 128 of "
			    "A-Z a-z 0-9 . _ -)");
			return false;
		} else {
			memcpy(local, v.u.s.p, v.u.s.len);
			local[v.u.s.len] = '\0';
		}
		if (fb_fid_format(tenant, local, out->fid, sizeof(out->fid), &err) != FB_OK) {
			refuse(out, re->path, "%s", err.msg);
			return false;
		}
		out->fid_source = re->path;
		return true;
	}
	refuse(out, m->n_fids > 0 ? m->fids[m->n_fids - 1].path : "fid",
	    "no fid candidate gave a value");
	return false;
}

static bool
attr_value_ok(const struct fb_value *v)
{
	if (v->kind == FB_V_STRING)
		return v->u.s.len <= FB_RULES_ATTR_BYTES_MAX;
	if (v->kind != FB_V_LIST || v->u.list.n > FB_RULES_ATTR_ITEMS_MAX)
		return false;
	for (size_t i = 0; i < v->u.list.n; i++)
		if (v->u.list.v[i].kind != FB_V_STRING ||
		    v->u.list.v[i].u.s.len > FB_RULES_ATTR_BYTES_MAX)
			return false;
	return true;
}

static bool
run_attrs(const struct rule_mapping *m, const struct fb_expr_input *in, struct fb_expr_scratch *s,
    struct fb_value *values, struct fb_principal *out, struct fb_buf *trace)
{
	struct fb_err err = { 0 };

	for (size_t i = 0; i < m->conf->n_attrs; i++) {
		const struct rule_expr *re = &m->attrs[i];
		if (run_value(re, in, s, &values[i], trace, &err) != FB_OK) {
			refuse(out, re->path, "%s", err.msg);
			return false;
		}
		if (values[i].kind == FB_V_NULL)
			values[i].kind = FB_V_ABSENT;
		if (values[i].kind == FB_V_ABSENT || attr_value_ok(&values[i]))
			continue;
		refuse(out, re->path,
		    "an attribute must be a string of at most %d bytes or a list of at most "
		    "%d such strings",
		    FB_RULES_ATTR_BYTES_MAX, FB_RULES_ATTR_ITEMS_MAX);
		return false;
	}
	return true;
}

static bool
run_conditions(const struct rule_mapping *m, const struct fb_expr_input *in,
    struct fb_expr_scratch *s, struct fb_principal *out, struct fb_buf *trace)
{
	struct fb_err err = { 0 };

	for (size_t i = 0; i < m->n_requires; i++) {
		enum fb_truth t = run_truth(&m->requires[i], in, s, trace, &err);
		if (t == FB_TRUTH_TRUE)
			continue;
		refuse(out, m->requires[i].path, "the condition %s %s",
		    fb_expr_source(m->requires[i].expr),
		    t == FB_TRUTH_FALSE ? "is false"
		                        : "could not be decided (a value it reads is absent or "
		                          "of another type)");
		return false;
	}
	for (size_t i = 0; i < m->n_denies; i++) {
		enum fb_truth t = run_truth(&m->denies[i], in, s, trace, &err);
		if (t == FB_TRUTH_FALSE)
			continue;
		/* A deny rule that cannot be decided refuses too: fail closed. */
		refuse(out, m->denies[i].path, "the deny condition %s %s",
		    fb_expr_source(m->denies[i].expr),
		    t == FB_TRUTH_TRUE ? "holds"
		                       : "could not be decided (a value it reads is absent or "
		                         "of another type)");
		return false;
	}
	return true;
}

static void
run_pins(const struct rule_mapping *m, const struct fb_expr_input *in, struct fb_expr_scratch *s,
    struct fb_principal *out, struct fb_buf *trace)
{
	struct fb_err err = { 0 };
	struct fb_value v;

	if (m->pins == NULL || m->pin_key.expr == NULL)
		return;
	if (run_value(&m->pin_key, in, s, &v, trace, &err) != FB_OK || v.kind != FB_V_STRING)
		return;
	out->pin = fb_pins_find(m->pins, v.u.s.p, v.u.s.len);
	if (trace != NULL)
		(void)fb_buf_printf(trace, "%s: %s\n", m->pins_path,
		    out->pin == NULL    ? "no pin for this key"
		        : out->pin->fid ? out->pin->fid
		                        : "a pin with remotes only");
}

static const struct rule_tenant *
tenant_find(const struct fb_rules *r, const char *id)
{
	for (size_t i = 0; i < r->n_tenants; i++)
		if (strcmp(r->tenants[i].conf->id, id) == 0)
			return &r->tenants[i];
	return NULL;
}

static fb_rc
run_outbound(const struct rule_tenant *t, const struct rule_mapping *m,
    const struct fb_login *login, struct fb_expr_scratch *s, struct fb_principal *out,
    struct fb_buf *trace)
{
	const size_t n = PRINCIPAL_FIXED + m->conf->n_attrs;
	const char **names = fb_expr_scratch_alloc(s, n * sizeof(*names));
	struct fb_value *values = fb_expr_scratch_alloc(s, n * sizeof(*values));
	struct fb_trust_decision *d =
	    fb_expr_scratch_alloc(s, (t->n_trusts ? t->n_trusts : 1) * sizeof(*d));
	struct fb_value *remotes = NULL;
	struct fb_expr_record rec;
	struct fb_expr_input in = { 0 };
	struct fb_err err = { 0 };

	if (names == NULL || values == NULL || d == NULL)
		return FB_ERR_LIMIT;
	for (size_t i = 0; i < PRINCIPAL_FIXED; i++)
		names[i] = principal_fixed[i];
	values[0] = (struct fb_value){ .kind = FB_V_STRING, .u.s = { out->fid, strlen(out->fid) } };
	values[1] =
	    (struct fb_value){ .kind = FB_V_STRING, .u.s = { t->conf->id, strlen(t->conf->id) } };
	values[2] = (struct fb_value){ .kind = FB_V_STRING,
		.u.s = { login->provider, strlen(login->provider) } };
	values[3] = (struct fb_value){ .kind = FB_V_LIST };
	if (out->pin != NULL && out->pin->n_remotes > 0) {
		remotes = fb_expr_scratch_alloc(s, out->pin->n_remotes * sizeof(*remotes));
		if (remotes == NULL)
			return FB_ERR_LIMIT;
		for (size_t i = 0; i < out->pin->n_remotes; i++)
			remotes[i] = (struct fb_value){ .kind = FB_V_STRING,
				.u.s = { out->pin->remotes[i], strlen(out->pin->remotes[i]) } };
		values[3].u.list.v = remotes;
		values[3].u.list.n = out->pin->n_remotes;
	}
	for (size_t i = 0; i < m->conf->n_attrs; i++) {
		names[PRINCIPAL_FIXED + i] = m->attr_names[i];
		values[PRINCIPAL_FIXED + i] = out->attr_values[i];
	}
	rec = (struct fb_expr_record){ names, values, n };
	in.principal = &rec;
	in.provider = login->provider;
	in.tenant = t->conf->id;
	for (size_t x = 0; x < t->n_trusts; x++) {
		d[x].trust = t->trusts[x].conf;
		d[x].outbound = false;
		if (t->trusts[x].outbound.expr == NULL) {
			if (trace != NULL)
				(void)fb_buf_printf(trace,
				    "trust %s: no outbound rule  =>  false\n",
				    t->trusts[x].conf->remote);
			continue;
		}
		d[x].outbound =
		    run_truth(&t->trusts[x].outbound, &in, s, trace, &err) == FB_TRUTH_TRUE;
	}
	out->trusts = d;
	out->n_trusts = t->n_trusts;
	return FB_OK;
}

fb_rc
fb_mapping_run(const struct fb_rules *r, const struct fb_login *login, struct fb_expr_scratch *s,
    struct fb_principal *out, struct fb_buf *trace, struct fb_err *err)
{
	const struct rule_tenant *t;
	const struct rule_mapping *m = NULL;
	struct fb_expr_input in = { 0 };
	struct fb_value *values;

	memset(out, 0, sizeof(*out));
	if (login->tenant == NULL || login->provider == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a login needs a tenant and a provider");
	if ((t = tenant_find(r, login->tenant)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOTFOUND, "no tenant %s", login->tenant);
	for (size_t i = 0; i < t->n_mappings && m == NULL; i++)
		if (strcmp(t->mappings[i].conf->provider, login->provider) == 0)
			m = &t->mappings[i];
	if (m == NULL)
		return FB_ERR_SET(err, FB_ERR_NOTFOUND, "tenant %s has no mapping for provider %s",
		    login->tenant, login->provider);
	in.claims = login->claims;
	in.attrs = login->attrs;
	in.nameid = login->nameid;
	in.issuer = login->issuer;
	in.provider = login->provider;
	in.tenant = login->tenant;
	in.fid_secret = r->fid_secret;
	in.fid_secret_len = r->fid_secret_len;
	values =
	    fb_expr_scratch_alloc(s, (m->conf->n_attrs ? m->conf->n_attrs : 1) * sizeof(*values));
	if (values == NULL)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "the evaluation scratch is full");
	memset(values, 0, (m->conf->n_attrs ? m->conf->n_attrs : 1) * sizeof(*values));
	out->attr_names = m->attr_names;
	out->attr_values = values;
	out->n_attrs = m->conf->n_attrs;
	out->allowed = true;
	run_pins(m, &in, s, out, trace);
	if (out->pin != NULL && out->pin->fid != NULL) {
		(void)snprintf(out->fid, sizeof(out->fid), "%s", out->pin->fid);
		out->fid_source = m->pins_path;
	} else if (!run_fid(m, login->tenant, &in, s, out, trace)) {
		return FB_OK;
	}
	if (!run_attrs(m, &in, s, values, out, trace) || !run_conditions(m, &in, s, out, trace))
		return FB_OK;
	if (run_outbound(t, m, login, s, out, trace) != FB_OK) {
		out->allowed = false;
		return FB_ERR_SET(err, FB_ERR_LIMIT, "the evaluation scratch is full");
	}
	return FB_OK;
}

void
fb_principal_clear(struct fb_principal *p)
{
	memset(p, 0, sizeof(*p));
}

static bool
released(const struct fb_conf_trust *trust, const char *name)
{
	for (size_t i = 0; i < trust->release.n; i++)
		if (strcmp(trust->release.v[i], name) == 0)
			return true;
	return false;
}

json_t *
fb_principal_attrs_json(const struct fb_principal *p, const struct fb_conf_trust *trust)
{
	json_t *obj = json_object(), *v;

	if (obj == NULL)
		return NULL;
	for (size_t i = 0; i < p->n_attrs; i++) {
		if (p->attr_values[i].kind == FB_V_ABSENT ||
		    (trust != NULL && !released(trust, p->attr_names[i])))
			continue;
		if ((v = fb_value_to_json(&p->attr_values[i])) == NULL ||
		    json_object_set_new(obj, p->attr_names[i], v) != 0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

enum fb_truth
fb_rules_inbound(const struct fb_rules *r, const char *receiving_tenant, const char *sender_tid,
    const json_t *token, struct fb_expr_scratch *s, struct fb_buf *trace)
{
	struct inbound_entry key = { receiving_tenant, sender_tid, NULL };
	const struct inbound_entry *e;
	struct fb_expr_input in = { 0 };

	if (receiving_tenant == NULL || sender_tid == NULL)
		return FB_TRUTH_FALSE;
	e = bsearch(&key, r->inbound, r->n_inbound, sizeof(*r->inbound), inbound_cmp);
	if (e == NULL || e->trust->inbound.expr == NULL) {
		if (trace != NULL)
			(void)fb_buf_printf(trace, "%s\n",
			    e == NULL ? "no trust of the receiving tenant names the sender's tenant"
			              : "the trust has no inbound rule");
		return FB_TRUTH_FALSE;
	}
	in.token = token;
	in.tenant = receiving_tenant;
	return run_truth(&e->trust->inbound, &in, s, trace, NULL);
}
