/*
 * The messenger's federation.yml, read so that `fedbridge import federation`
 * can turn its instances into trusts:
 *
 *   enabled: true
 *   mtlsEnabled: true
 *   localTenant: 7BJqEXMGyEL
 *   instances:
 *   - address: federation.b.example:443
 *     name: installation_B
 *     cert_cn: installation_B
 *     ssl_cert: /opt/certs/client_B.cert.pem   # what our relay presents there
 *     ssl_key: /opt/certs/client_B.key.pem
 *     cacert: /opt/certs/client_B.cacert.pem   # the remote's CA
 *     tenants: [HWqHczeM2P]
 *
 * Read through conf's hardened YAML reader (fb_yaml_parse) as plain data:
 * anchors, aliases, tags and second documents are refused (the format needs
 * none of them, and aliases could fan out). Every error names file:line:col.
 * Keys fedbridge has no use for are reported, not dropped silently.
 */
#include "fb_legacy.h"

#include "fb_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VKFED_FILE_MAX ((size_t)1 << 20)
#define VKFED_INSTANCES_MAX 1000
#define VKFED_TENANTS_MAX 1000 /* of one instance */
#define VKFED_VALUE_MAX 1024
#define VKFED_NOTE_MAX 600 /* bytes of one note before its position */
#define VKFED_KEY_SHOWN 40 /* bytes of a key or tenantID named in a message */
#define VKFED_TOP_KEY_SHOWN 60 /* bytes of an unused top-level key in a note */
#define VKFED_NAME_SHOWN 64 /* an installation name is at most 64 bytes */
#define VKFED_PATH_MAX 96 /* "instances[i].key" */

struct vk_parser {
	const char *name;
	struct fb_err *err;
	struct fb_buf *notes;
};

static fb_rc vk_fail(struct vk_parser *p, const struct fb_yaml_node *n, const char *fmt, ...)
    FB_PRINTF(3, 4);

static fb_rc
vk_fail(struct vk_parser *p, const struct fb_yaml_node *n, const char *fmt, ...)
{
	char msg[FB_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return FB_ERR_SET(
	    p->err, FB_ERR_INVALID, "%s:%u:%u: %s", p->name, fb_yaml_line(n), fb_yaml_col(n), msg);
}

/* What the format never needs, worded as federation.yml's readers always did. */
static const char *
refusal_text(enum fb_yaml_rule rule)
{
	switch (rule) {
	case FB_YAML_RULE_ALIAS:
		return "an alias";
	case FB_YAML_RULE_ANCHOR:
		return "an anchor";
	case FB_YAML_RULE_TAG:
		return "a tag";
	case FB_YAML_RULE_DOCUMENTS:
		return "a second document";
	default:
		return NULL;
	}
}

/* A scalar's value, or NULL with an error naming key. */
static const char *
vk_scalar(struct vk_parser *p, const struct fb_yaml_node *n, const char *key)
{
	const char *s;
	size_t len;

	if ((s = fb_yaml_text(n, &len)) == NULL) {
		vk_fail(p, n, "%s: expected a single value", key);
		return NULL;
	}
	if (len == 0 || len > VKFED_VALUE_MAX || strlen(s) != len) {
		vk_fail(p, n, "%s: expected a value of 1 to %d bytes", key, VKFED_VALUE_MAX);
		return NULL;
	}
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			vk_fail(p, n, "%s: holds a control character", key);
			return NULL;
		}
	return s;
}

static bool
vk_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "no") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static void vk_note(struct vk_parser *p, const struct fb_yaml_node *n, const char *fmt, ...)
    FB_PRINTF(3, 4);

static void
vk_note(struct vk_parser *p, const struct fb_yaml_node *n, const char *fmt, ...)
{
	char msg[VKFED_NOTE_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)fb_buf_printf(
	    p->notes, "%s:%u:%u: %s\n", p->name, fb_yaml_line(n), fb_yaml_col(n), msg);
}

static fb_rc
vk_tenants(struct vk_parser *p, const struct fb_yaml_node *k, const struct fb_yaml_node *v,
    const char *key, struct fb_vkfed_instance *in)
{
	size_t n = fb_yaml_count(v);

	if (in->tenants != NULL)
		return vk_fail(p, k, "%s: given twice", key);
	if (fb_yaml_kind(v) != FB_YAML_SEQ)
		return vk_fail(p, v, "%s: expected a list of tenantIDs", key);
	if (n == 0 || n > VKFED_TENANTS_MAX)
		return vk_fail(p, v, "%s: expected 1 to %d tenantIDs", key, VKFED_TENANTS_MAX);
	if ((in->tenants = calloc(n, sizeof(char *))) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct fb_yaml_node *it = fb_yaml_item(v, i);
		const char *s = vk_scalar(p, it, key);
		if (s == NULL)
			return p->err->rc;
		if (!fb_conf_tenant_id_valid(s))
			return vk_fail(p, it,
			    "%s: %.*s is not a tenantID (8 to 16 letters and digits)", key,
			    VKFED_KEY_SHOWN, s);
		if ((in->tenants[i] = strdup(s)) == NULL)
			return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
		in->n_tenants++;
	}
	return FB_OK;
}

static fb_rc
vk_instance(
    struct vk_parser *p, const struct fb_yaml_node *map, size_t idx, struct fb_vkfed_instance *in)
{
	static const char *const keys[] = { "address", "name", "cert_cn", "ssl_cert", "ssl_key",
		"cacert", NULL };
	char **fields[] = { &in->address, &in->name, &in->cert_cn, &in->ssl_cert, &in->ssl_key,
		&in->cacert };
	char key[VKFED_PATH_MAX];
	fb_rc rc;

	if (fb_yaml_kind(map) != FB_YAML_MAP)
		return vk_fail(p, map, "instances[%zu]: expected a mapping", idx);
	in->line = fb_yaml_line(map);
	in->col = fb_yaml_col(map);
	for (size_t pair = 0; pair < fb_yaml_count(map); pair++) {
		const struct fb_yaml_node *k = fb_yaml_key(map, pair),
		                          *v = fb_yaml_value(map, pair);
		const char *ks = vk_scalar(p, k, "a key");
		bool known = false;

		if (ks == NULL)
			return p->err->rc ? p->err->rc : FB_ERR_INVALID;
		(void)snprintf(key, sizeof(key), "instances[%zu].%.*s", idx, VKFED_KEY_SHOWN, ks);
		if (strcmp(ks, "tenants") == 0) {
			if ((rc = vk_tenants(p, k, v, key, in)) != FB_OK)
				return rc;
			continue;
		}
		for (size_t i = 0; keys[i] != NULL && !known; i++) {
			const char *s;
			if (strcmp(ks, keys[i]) != 0)
				continue;
			known = true;
			if (*fields[i] != NULL)
				return vk_fail(p, k, "%s: given twice", key);
			if ((s = vk_scalar(p, v, key)) == NULL)
				return p->err->rc;
			if ((*fields[i] = strdup(s)) == NULL)
				return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
		}
		if (!known)
			vk_note(p, k, "%s: not used by fedbridge, ignored", key);
	}
	for (size_t i = 0; keys[i] != NULL; i++)
		if (*fields[i] == NULL && strcmp(keys[i], "cert_cn") != 0)
			return vk_fail(p, map, "instances[%zu]: missing \"%s\"", idx, keys[i]);
	if (in->tenants == NULL)
		return vk_fail(p, map, "instances[%zu]: missing \"tenants\"", idx);
	if (!fb_conf_install_name_valid(in->name))
		return vk_fail(p, map,
		    "instances[%zu].name: \"%.*s\" cannot name a trust (1 to 64 letters, digits, "
		    "'_', '.', '-'); write the installation's name as its relay certificate's CN "
		    "has it",
		    idx, VKFED_NAME_SHOWN, in->name);
	if (in->cert_cn != NULL && !fb_conf_install_name_valid(in->cert_cn))
		return vk_fail(p, map,
		    "instances[%zu].cert_cn: \"%.*s\" is not an installation name (1 to 64 "
		    "letters, digits, '_', '.', '-')",
		    idx, VKFED_NAME_SHOWN, in->cert_cn);
	return FB_OK;
}

/* enabled, mtlsEnabled or localTenant; *used is false for any other key. */
static fb_rc
vk_setting(struct vk_parser *p, const struct fb_yaml_node *k, const char *ks,
    const struct fb_yaml_node *v, struct fb_vkfed *out, bool *used)
{
	bool *flag = NULL;
	const char *s;

	if (strcmp(ks, "enabled") == 0)
		flag = &out->enabled;
	else if (strcmp(ks, "mtlsEnabled") == 0)
		flag = &out->mtls_enabled;
	*used = flag != NULL || strcmp(ks, "localTenant") == 0;
	if (!*used)
		return FB_OK;
	if ((s = vk_scalar(p, v, ks)) == NULL)
		return p->err->rc;
	if (flag != NULL)
		return vk_bool(s, flag) ? FB_OK : vk_fail(p, v, "%s: expected true or false", ks);
	if (out->local_tenant != NULL)
		return vk_fail(p, k, "localTenant: given twice");
	if (!fb_conf_tenant_id_valid(s))
		return vk_fail(p, v,
		    "localTenant: %.*s is not a tenantID (8 to 16 letters and digits)",
		    VKFED_KEY_SHOWN, s);
	if ((out->local_tenant = strdup(s)) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
	out->local_line = fb_yaml_line(v);
	out->local_col = fb_yaml_col(v);
	return FB_OK;
}

static fb_rc
vk_instances(struct vk_parser *p, const struct fb_yaml_node *instances, struct fb_vkfed *out)
{
	size_t n = fb_yaml_count(instances);
	fb_rc rc;

	if (n > VKFED_INSTANCES_MAX)
		return vk_fail(p, instances, "instances: more than %d", VKFED_INSTANCES_MAX);
	if (n > 0 && (out->v = calloc(n, sizeof(*out->v))) == NULL)
		return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		const struct fb_yaml_node *it = fb_yaml_item(instances, i);
		if ((rc = vk_instance(p, it, i, &out->v[i])) != FB_OK)
			return rc;
		for (size_t j = 0; j < i && out->v[i].name != NULL; j++)
			if (out->v[j].name != NULL && strcmp(out->v[j].name, out->v[i].name) == 0)
				return vk_fail(p, it, "instances[%zu]: a second instance named %s",
				    i, out->v[i].name);
	}
	return FB_OK;
}

static fb_rc
vk_document(struct vk_parser *p, const struct fb_yaml_node *root, struct fb_vkfed *out)
{
	const struct fb_yaml_node *instances = NULL;
	fb_rc rc;

	if (root == NULL || fb_yaml_kind(root) != FB_YAML_MAP)
		return FB_ERR_SET(
		    p->err, FB_ERR_INVALID, "%s: expected a mapping (federation.yml)", p->name);
	for (size_t i = 0; i < fb_yaml_count(root); i++) {
		const struct fb_yaml_node *k = fb_yaml_key(root, i), *v = fb_yaml_value(root, i);
		const char *ks = vk_scalar(p, k, "a key");
		bool used;

		if (ks == NULL)
			return p->err->rc ? p->err->rc : FB_ERR_INVALID;
		if (strcmp(ks, "instances") == 0) {
			if (instances != NULL)
				return vk_fail(p, k, "instances: given twice");
			instances = v;
			continue;
		}
		if ((rc = vk_setting(p, k, ks, v, out, &used)) != FB_OK)
			return rc;
		if (!used)
			vk_note(
			    p, k, "%.*s: not used by fedbridge, ignored", VKFED_TOP_KEY_SHOWN, ks);
	}
	if (out->local_tenant == NULL)
		return vk_fail(p, root, "missing \"localTenant\"");
	if (instances == NULL || fb_yaml_kind(instances) != FB_YAML_SEQ)
		return vk_fail(p, instances ? instances : root, "instances: expected a list");
	return vk_instances(p, instances, out);
}

fb_rc
fb_vkfed_parse(const char *data, size_t len, const char *name, struct fb_vkfed *out,
    struct fb_buf *notes, struct fb_err *err)
{
	struct vk_parser p = { .name = name, .err = err, .notes = notes };
	struct fb_yaml_refusal why;
	struct fb_yaml_doc *doc;
	const char *what;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (len > VKFED_FILE_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: more than %zu bytes", name, VKFED_FILE_MAX);
	if ((rc = fb_yaml_parse(data, len, name, FB_YAML_PLAIN, &doc, &why, err)) != FB_OK) {
		if ((what = refusal_text(why.rule)) != NULL)
			return FB_ERR_SET(err, FB_ERR_INVALID, "%s:%u:%u: %s is not supported here",
			    name, why.line, why.col, what);
		return rc;
	}
	rc = vk_document(&p, fb_yaml_root(doc), out);
	fb_yaml_free(doc);
	if (rc != FB_OK)
		fb_vkfed_free(out);
	return rc;
}

void
fb_vkfed_free(struct fb_vkfed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fb_vkfed_instance *in = &f->v[i];
		free(in->address);
		free(in->name);
		free(in->cert_cn);
		free(in->ssl_cert);
		free(in->ssl_key);
		free(in->cacert);
		for (size_t j = 0; j < in->n_tenants; j++)
			free(in->tenants[j]);
		free(in->tenants);
	}
	free(f->v);
	free(f->local_tenant);
	memset(f, 0, sizeof(*f));
}
